"""Campaign analytics on imported data: exports written as CSV files by the test and loaded with
``ingest.import_file`` — a customer master file, a transaction log, a campaigns file, a Hillstrom-style campaign
export (no campaign column: constants and a saved template) and a retail invoice-line export — then lift, uplift and
basket rules read the store. Nothing is inserted with SQL: every row went through the import.

The effects are planted by numpy with a fixed seed, and the expected numbers are computed from the generated rows,
never from the store:

- 4,000 customers; purchases in the year before the campaign ~ Poisson(3); half have a web account. The
  *persuadable* customers have a web account and at least 3 purchases before the campaign (about 29%); the *sure
  things* have at least 3 purchases and no web account (about 29%).
- The campaign (start 1 March 2024) contacts all of them; 1,000 chosen at random are held out ("No E-Mail"), the
  rest get a "Mens E-Mail" or a "Womens E-Mail". Conversion probability 0.20 for a sure thing whatever its group
  (they buy anyway), 0.03 for everyone else, plus 0.15 for a treated persuadable customer — the only uplift. So
  neither "who converts" nor "who buys often" is the answer: only the difference between the groups is.
- 2,000 invoices from April to June 2024 over 20 products; in 30% of them products A and B are bought together,
  otherwise each appears with probability 0.05 on its own. Cancellation invoices and exact duplicate lines are mixed
  in, as real exports have them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from crm_core import basket, campaigns, ingest, store, uplift

SEED = 20240301
N_CUSTOMERS = 4_000
N_CONTROL = 1_000
START = date(2024, 3, 1)
BASE_RATE = 0.03
SURE_THING_RATE = 0.20
PERSUADABLE_LIFT = 0.15
N_INVOICES = 2_000
PAIR_SHARE = 0.30
ALONE_SHARE = 0.05
PRODUCT_A, PRODUCT_B = "22423", "85099B"
OTHER_PRODUCTS = tuple(f"2{i:04d}" for i in range(1, 19))
EXPORT_HEADER = ("customer_id", "recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie",
                 "channel", "segment", "visit", "conversion", "spend")
BY_HAND = {"segment": "contact_group", "visit": "is_responded"}
# Held-out ROC AUC of predicted uplift against persuadable membership, measured over data seeds SEED and 1-4 with
# split seeds 0-4 each: 0.90-1.00 (0.98-0.995 with SEED). Rankings that do not model uplift stay below 0.86 on the
# same held-out customers: purchases alone 0.79-0.80, the web account alone 0.85, a conversion model fitted on the
# treated (who converts when contacted) 0.67-0.83. The threshold sits between the two.
MIN_PERSUADABLE_AUC = 0.88
# Mean predicted uplift of the persuadable minus that of the others, same runs: 0.078-0.125 (planted 0.15; the
# model's L2 shrinkage pulls it down).
MIN_UPLIFT_GAP = 0.06


@dataclass(frozen=True)
class Imported:
    """The store file, the generated truth (one row per contact) and the clean baskets the invoices hold."""

    path: Path
    contacts: pd.DataFrame
    baskets: list[frozenset[str]]
    reports: dict[str, ingest.ImportReport]


def _csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def _customers_and_history(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Customer master rows, the transaction log and the truth per customer."""
    ids = np.array([f"C{i:05d}" for i in range(1, N_CUSTOMERS + 1)])
    web = rng.random(N_CUSTOMERS) < 0.5
    purchases = rng.poisson(3.0, N_CUSTOMERS)
    signup = [START - timedelta(days=int(d)) for d in rng.integers(400, 1_200, N_CUSTOMERS)]
    customers = pd.DataFrame({
        "Customer ID": ids,
        "Signup Date": [d.isoformat() for d in signup],
        "Region": rng.choice(["North", "South", "East", "West"], N_CUSTOMERS),
        "Online Account": np.where(web, "Y", "N"),
    })
    owner = np.repeat(ids, purchases)
    n = len(owner)
    minutes = rng.integers(1, 365 * 24 * 60, n)  # within the year before the campaign, never on its start
    when = [datetime.combine(START, datetime.min.time()) - timedelta(minutes=int(m)) for m in minutes]
    log = pd.DataFrame({"Customer ID": owner, "Date": [w.strftime("%Y-%m-%d %H:%M") for w in when],
                        "Amount": np.round(rng.gamma(2.0, 20.0, n) + 5, 2)})
    # refunds for some customers: returns, not purchases, so the persuadable rule is unchanged
    refunders = rng.choice(ids[purchases > 0], 150, replace=False)
    refunds = pd.DataFrame({"Customer ID": refunders, "Date": "2024-02-20 10:00",
                            "Amount": -np.round(rng.uniform(5, 30, len(refunders)), 2)})
    log = pd.concat([log, refunds], ignore_index=True).sample(frac=1.0, random_state=SEED)
    truth = pd.DataFrame({"customer_id": ids, "purchases": purchases, "is_web_registered": web,
                          "is_persuadable": web & (purchases >= 3)})
    return customers, log, truth


def _campaign_export(rng: np.random.Generator, truth: pd.DataFrame) -> pd.DataFrame:
    """One row per contacted customer, Hillstrom columns; adds is_treated, is_converted, spend, visit to truth."""
    n = len(truth)
    is_treated = np.ones(n, dtype=bool)
    is_treated[rng.permutation(n)[:N_CONTROL]] = False
    persuadable = truth["is_persuadable"].to_numpy()
    sure_thing = (truth["purchases"].to_numpy() >= 3) & ~truth["is_web_registered"].to_numpy()
    p = np.where(sure_thing, SURE_THING_RATE, BASE_RATE) + PERSUADABLE_LIFT * (is_treated & persuadable)
    converted = rng.random(n) < p
    spend = np.where(converted, np.round(rng.gamma(2.0, 25.0, n) + 10, 2), 0.0)
    visit = converted | (rng.random(n) < 0.10 + 0.05 * is_treated)
    mail = np.where(rng.random(n) < 0.5, "Mens E-Mail", "Womens E-Mail")
    truth["is_treated"], truth["is_converted"], truth["spend"], truth["visit"] = is_treated, converted, spend, visit
    history = np.round(rng.gamma(2.0, 120.0, n), 2)
    return pd.DataFrame({
        "customer_id": truth["customer_id"],
        "recency": rng.integers(1, 13, n),
        "history_segment": np.select([history < 100, history < 200, history < 350],
                                     ["1) $0 - $100", "2) $100 - $200", "3) $200 - $350"], "4) $350 - $500"),
        "history": history,
        "mens": rng.integers(0, 2, n),
        "womens": rng.integers(0, 2, n),
        "zip_code": rng.choice(["Urban", "Surburban", "Rural"], n),
        "newbie": rng.integers(0, 2, n),
        "channel": rng.choice(["Phone", "Web", "Multichannel"], n),
        "segment": np.where(is_treated, mail, "No E-Mail"),
        "visit": visit.astype(int),
        "conversion": converted.astype(int),
        "spend": spend,
    }, columns=list(EXPORT_HEADER))


def _invoice_lines(rng: np.random.Generator, ids: np.ndarray) -> tuple[pd.DataFrame, list[frozenset[str]]]:
    """Invoice lines (with cancellations and duplicate lines mixed in) and the clean baskets they hold."""
    price = {p: round(float(rng.uniform(0.5, 9.0)), 2) for p in (PRODUCT_A, PRODUCT_B, *OTHER_PRODUCTS)}
    lines, baskets = [], []
    first = datetime(2024, 4, 1, 8, 0)
    for k in range(N_INVOICES):
        items = set(rng.choice(OTHER_PRODUCTS, int(rng.integers(1, 5)), replace=False))
        if rng.random() < PAIR_SHARE:
            items |= {PRODUCT_A, PRODUCT_B}
        else:
            items |= {p for p in (PRODUCT_A, PRODUCT_B) if rng.random() < ALONE_SHARE}
        baskets.append(frozenset(items))
        when = first + timedelta(minutes=int(rng.integers(0, 90 * 24 * 60)))
        customer = "" if rng.random() < 0.1 else str(rng.choice(ids))
        for product in sorted(items):
            lines.append((str(540_001 + k), product, f"ITEM {product}", int(rng.integers(1, 7)),
                          f"{when.month}/{when.day}/{when.year} {when.hour}:{when.minute:02d}", price[product],
                          customer, "United Kingdom"))
    frame = pd.DataFrame(lines, columns=["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
                                         "UnitPrice", "CustomerID", "Country"])
    # 40 invoices cancelled afterwards (a 'C' invoice repeating their lines with negative quantities): returns,
    # not baskets; and 30 lines exported twice (exact duplicates, dropped by the import)
    cancelled = frame[frame["InvoiceNo"].isin(rng.choice(frame["InvoiceNo"].unique(), 40, replace=False))].copy()
    cancelled["InvoiceNo"] = "C" + cancelled["InvoiceNo"]
    cancelled["Quantity"] = -cancelled["Quantity"]
    cancelled["InvoiceDate"] = "7/1/2024 9:00"
    twice = frame.iloc[rng.choice(len(frame), 30, replace=False)]
    return pd.concat([frame, twice, cancelled], ignore_index=True), baskets


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Imported:
    folder = tmp_path_factory.mktemp("imported_campaigns")
    rng = np.random.default_rng(SEED)
    customers, log, truth = _customers_and_history(rng)
    export = _campaign_export(rng, truth)
    invoices, baskets = _invoice_lines(rng, truth["customer_id"].to_numpy())
    # The same export as a tool that writes its arms as 'treatment' / 'control' would have it.
    labelled = export.assign(segment=np.where(truth["is_treated"], "treatment", "control"))
    campaign_rows = pd.DataFrame({"campaign_id": ["HILL1", "EXP1"], "campaign_name": ["Spring e-mail test"] * 2,
                                  "channel": ["email", "email"], "start_date": [START.isoformat()] * 2,
                                  "cost": [900.0, 900.0]})

    path = folder / "crm.duckdb"
    con = store.connect(path)
    try:
        reports = {
            "customers": ingest.import_file(con, _csv(folder / "customers.csv", customers), "customers"),
            "transactions": ingest.import_file(con, _csv(folder / "purchases.csv", log), "transactions"),
            "campaigns": ingest.import_file(con, _csv(folder / "campaigns.csv", campaign_rows), "campaigns"),
            "HILL1": ingest.import_file(con, _csv(folder / "hillstrom_export.csv", export), "campaign_contacts",
                                        mapping=BY_HAND, constants={"campaign_id": "HILL1"},
                                        save_as_template="hillstrom"),
            # same headers: the saved template maps it; only the campaign differs
            "EXP1": ingest.import_file(con, _csv(folder / "labelled_export.csv", labelled), "campaign_contacts",
                                       mode="append", constants={"campaign_id": "EXP1"}),
            # invoices are appended: a replace would drop the orders of the transaction log
            "invoice_lines": ingest.import_file(con, _csv(folder / "invoices.csv", invoices), "invoice_lines",
                                                mode="append"),
        }
    finally:
        con.close()
    return Imported(path, truth, baskets, reports)


@pytest.fixture
def backend(imported):
    con = store.connect(imported.path)
    yield store.ibis_backend(con)
    con.close()


def test_every_file_was_imported(imported):
    r = imported.reports
    assert all(x.outcome == "committed" for x in r.values()), {k: x.message for k, x in r.items() if not x.ok}
    assert r["customers"].rows_accepted == N_CUSTOMERS
    assert r["customers"].mapping["is_web_registered"] == "Online Account"
    n_purchases = int(imported.contacts["purchases"].sum())
    assert r["transactions"].rows_accepted == n_purchases + 150  # purchases and refunds
    assert r["HILL1"].rows_accepted == r["EXP1"].rows_accepted == N_CUSTOMERS
    assert r["EXP1"].detected["template"] == "hillstrom" and r["EXP1"].mapping == r["HILL1"].mapping
    assert r["EXP1"].constants == {"campaign_id": "EXP1"}
    inv = r["invoice_lines"]
    lines = sum(len(b) for b in imported.baskets)
    assert inv.facts["cancellation invoices (id starts with C)"] == 40
    assert (inv.rows_read, inv.exact_duplicates) == (lines + 30 + inv.facts["cancellation lines"], 30)


def test_lift_on_the_imported_export_matches_the_generated_rows(imported, backend):
    t = imported.contacts
    treated, control = t[t["is_treated"]], t[~t["is_treated"]]
    r = campaigns.lift(backend, "HILL1")
    # "No E-Mail" is the control group, both e-mail versions the treatment
    assert (r.treatment_contacts, r.control_contacts) == (N_CUSTOMERS - N_CONTROL, N_CONTROL)
    assert (r.conversion.treatment, r.conversion.control) == pytest.approx(
        (treated["is_converted"].mean(), control["is_converted"].mean()))
    assert (r.response.treatment, r.response.control) == pytest.approx(
        (treated["visit"].mean(), control["visit"].mean()))
    assert r.revenue_basis == "attributed"
    assert (r.revenue.treatment, r.revenue.control) == pytest.approx((treated["spend"].mean(), control["spend"].mean()))
    # the planted lift: 0.15 for the persuadable share of the treated (about 29%), about +0.043; its 95% interval
    # holds it and excludes 0
    planted = PERSUADABLE_LIFT * treated["is_persuadable"].mean()
    assert r.conversion.ci_low < planted < r.conversion.ci_high
    assert r.conversion.ci_low > 0 and r.conversion.p_value < 0.01
    # the same numbers whatever the export calls its arms
    same = campaigns.lift(backend, "EXP1")
    assert (same.conversion.absolute_lift, same.revenue.absolute_lift) == pytest.approx(
        (r.conversion.absolute_lift, r.revenue.absolute_lift))


@pytest.mark.parametrize("campaign_id", ["EXP1", "HILL1"], ids=["treatment-control labels", "Hillstrom labels"])
def test_uplift_ranks_the_planted_persuadable_group(imported, backend, campaign_id):
    result = uplift.train_uplift_model(backend, campaign_id, top_n=400)
    t = imported.contacts
    assert (result.n_treatment, result.n_control) == (N_CUSTOMERS - N_CONTROL, N_CONTROL)
    assert "is_web_registered" in result.features  # from the imported customer file
    observed = t.loc[t["is_treated"], "is_converted"].mean() - t.loc[~t["is_treated"], "is_converted"].mean()
    assert result.observed_lift == pytest.approx(observed)
    got = result.contacts.merge(t[["customer_id", "is_persuadable"]], on="customer_id", validate="one_to_one")
    held_out = got[got["is_test"]]
    assert len(held_out) == 1_200  # 30% of 4,000
    auc = roc_auc_score(held_out["is_persuadable"], held_out["predicted_uplift"])
    assert auc > MIN_PERSUADABLE_AUC
    by_group = got.groupby("is_persuadable")["predicted_uplift"].mean()
    assert by_group[True] - by_group[False] > MIN_UPLIFT_GAP
    assert result.qini_score.qini_coefficient > 0  # measured 0.08-0.25 over the runs above
    # the targets for the next campaign are mostly persuadable (29% of all customers; measured 68-100%)
    targets = result.targets.merge(t[["customer_id", "is_persuadable"]], on="customer_id")
    assert targets["is_persuadable"].mean() > 0.6


def test_basket_rules_on_imported_invoices_find_the_planted_pair(imported, backend):
    clean = imported.baskets
    n = len(clean)
    with_a = sum(PRODUCT_A in b for b in clean)
    with_b = sum(PRODUCT_B in b for b in clean)
    both = sum({PRODUCT_A, PRODUCT_B} <= b for b in clean)
    # planted: P(A) = P(B) = 0.3 + 0.7 x 0.05 = 0.335, P(A and B) = 0.3 + 0.7 x 0.05² ≈ 0.302, lift ≈ 2.69
    assert n * both / (with_a * with_b) == pytest.approx(0.302 / 0.335**2, rel=0.1)
    rules = basket.association_rules(backend, min_support=0.01, min_confidence=0.1, max_rules=None)
    # cancellation invoices are returns, not baskets; duplicate lines were dropped; the transaction log has no lines
    assert rules.n_baskets == n
    top = rules.rules.head(2)
    assert set(zip(top["antecedent"], top["consequent"])) == {(PRODUCT_A, PRODUCT_B), (PRODUCT_B, PRODUCT_A)}
    a_to_b = top[top["antecedent"] == PRODUCT_A].iloc[0]
    assert (a_to_b.baskets_with_both, a_to_b.baskets_with_antecedent, a_to_b.baskets_with_consequent) == (
        both, with_a, with_b)
    assert (a_to_b.support, a_to_b.confidence, a_to_b.lift) == pytest.approx(
        (both / n, both / with_a, n * both / (with_a * with_b)))
    # every other pair of products was drawn independently: lift near 1
    others = rules.rules[~rules.rules["antecedent"].isin([PRODUCT_A, PRODUCT_B])
                         & ~rules.rules["consequent"].isin([PRODUCT_A, PRODUCT_B])]
    assert others["lift"].max() < 1.6
