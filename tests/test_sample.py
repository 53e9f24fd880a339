"""Tests for crm_core.sample: determinism, fit to the schema, integrity across tables, and planted truth that the
data really shows (each check compares numbers, so a generator that stops planting makes it fail)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re

import duckdb
import numpy as np
import pandas as pd
import pytest
from rapidfuzz.distance import OSA

from crm_core.sample import SAMPLE_DIR, SampleData, generate, write_sample
from crm_core.schema import TABLES
from crm_core.store import quote_ident

AS_OF = dt.date(2026, 6, 30)
SEEDS = (7, 42)


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def data(request) -> SampleData:
    """5,000 customers: enough for the planted effects to stand several standard errors clear of the noise."""
    return generate(n_customers=5000, seed=request.param)


@pytest.fixture(scope="module")
def small() -> SampleData:
    return generate(n_customers=2000, seed=3)


def _purchases(data: SampleData) -> pd.DataFrame:
    orders = data.tables["orders"]
    return orders[~orders["is_return"]]


def _cents(values: pd.Series) -> pd.Series:
    return (values * 100).round().astype("int64")


# ---------------------------------------------------------------------------------------------------------------
class TestApi:
    def test_same_seed_gives_identical_frames_and_truth(self, small):
        again = generate(n_customers=2000, seed=3)
        for name, frame in small.tables.items():
            pd.testing.assert_frame_equal(frame, again.tables[name], check_exact=True, obj=name)
        assert json.dumps(small.truth) == json.dumps(again.truth)

    def test_different_seed_gives_different_data(self, small):
        other = generate(n_customers=2000, seed=4)
        a, b = small.tables["customers"], other.tables["customers"]
        assert len(a) == len(b) == 2000
        assert (a["name"] != b["name"]).mean() > 0.9
        assert len(small.tables["orders"]) != len(other.tables["orders"])

    def test_as_of_and_years_bound_every_event(self):
        as_of = dt.date(2024, 1, 31)
        d = generate(n_customers=400, seed=1, as_of=as_of, years=1.0)
        end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
        for name, frame in d.tables.items():
            for col in TABLES[name].columns:
                if col.type in ("date", "ts") and len(frame) and col.name != "promised_date":  # promises may be ahead
                    assert frame[col.name].max() < end, f"{name}.{col.name} after as_of"
        assert d.tables["customers"]["signup_date"].min() >= pd.Timestamp(as_of) - pd.Timedelta(days=366)
        assert d.truth["generator"]["as_of"] == "2024-01-31"

    @pytest.mark.parametrize(("kwargs", "error", "message"), [
        ({"n_customers": 10}, ValueError, "n_customers must be between 50 and 5,000,000"),
        ({"years": 0.1}, ValueError, "years must be between 0.5 and 30"),
        ({"seed": "x"}, TypeError, "seed must be a non-negative integer"),
        ({"as_of": "2026-06-30"}, TypeError, "as_of must be a datetime.date"),
    ], ids=["too-few-customers", "too-short", "seed-not-int", "as-of-text"])
    def test_bad_arguments_say_what_is_wrong(self, kwargs, error, message):
        with pytest.raises(error, match=message):
            generate(**kwargs)


# ---------------------------------------------------------------------------------------------------------------
class TestSchemaFit:
    @pytest.mark.parametrize("name", list(TABLES), ids=list(TABLES))
    def test_columns_are_exactly_the_schema_in_order(self, small, name):
        assert list(small.tables[name].columns) == TABLES[name].column_names

    @pytest.mark.parametrize("name", list(TABLES), ids=list(TABLES))
    def test_pandas_types_follow_logical_types(self, small, name):
        frame = small.tables[name]
        for col in TABLES[name].columns:
            s = frame[col.name]
            if col.type in ("id", "text"):
                assert pd.api.types.is_string_dtype(s.dtype) and s.dtype != object, col.name
            elif col.type in ("date", "ts"):
                assert s.dtype == "datetime64[s]", col.name
            elif col.type == "bool":
                assert s.dtype == bool, col.name
            elif col.type == "money":
                assert s.dtype == "float64", col.name
            else:
                assert pd.api.types.is_integer_dtype(s.dtype) or s.dtype == "float64", col.name

    @pytest.mark.parametrize("name", list(TABLES), ids=list(TABLES))
    def test_keys_are_unique(self, small, name):
        frame = small.tables[name]
        key = list(TABLES[name].key)
        assert not frame.duplicated(key).any()
        assert not frame[key].isna().any().any()

    def test_every_table_but_goals_has_rows(self, small):
        sizes = {name: len(frame) for name, frame in small.tables.items()}
        assert sizes.pop("goals") == 0
        assert min(sizes.values()) > 0, sizes

    @pytest.mark.parametrize("name", [n for n in TABLES if n != "goals"], ids=[n for n in TABLES if n != "goals"])
    def test_schema_checks_hold(self, small, name):
        """The schema's own column checks and row checks, run by DuckDB on the frame."""
        con = duckdb.connect()
        con.register("t", small.tables[name])
        table = TABLES[name]
        predicates = [c.check.format(c=quote_ident(c.name)) for c in table.columns if c.check]
        predicates += [p for p, _ in table.row_checks]
        for predicate in predicates:
            bad = con.execute(f"SELECT count(*) FROM t WHERE NOT ({predicate})").fetchone()[0]
            assert bad == 0, f"{name}: {bad} rows fail {predicate}"

    def test_ids_are_text_with_leading_zeros(self, small):
        customers = small.tables["customers"]["customer_id"]
        assert customers.iloc[122] == "C00123"
        assert customers.str.fullmatch(r"C\d{5}").all()
        assert small.tables["orders"]["order_id"].str.fullmatch(r"0\d{7}").all()
        assert small.tables["customers"]["phone"].dropna().str.contains(r"[+ (]").all()


# ---------------------------------------------------------------------------------------------------------------
class TestIntegrity:
    def test_references_point_at_existing_rows(self, small):
        t = small.tables
        customers = set(t["customers"]["customer_id"])
        orders = set(t["orders"]["order_id"])
        assert set(t["orders"]["customer_id"]) <= customers
        assert set(t["order_items"]["order_id"]) == orders  # every order has lines
        assert set(t["order_items"]["product_id"]) <= set(t["products"]["product_id"])
        assert set(t["shipments"]["order_id"]) <= orders
        assert set(t["campaign_contacts"]["customer_id"]) <= customers
        assert set(t["campaign_contacts"]["campaign_id"]) == set(t["campaigns"]["campaign_id"])
        for name in ("support_tickets", "surveys", "customer_notes"):
            assert set(t[name]["customer_id"]) <= customers, name
        assert set(t["customers"]["referred_by"].dropna()) <= customers

    def test_order_amount_is_the_sum_of_its_lines_to_the_penny(self, data):
        items = data.tables["order_items"]
        orders = data.tables["orders"].set_index("order_id")
        line_cents = _cents(items["unit_price"]) * items["quantity"]
        total = line_cents.groupby(items["order_id"]).sum()
        assert (total.reindex(orders.index) == _cents(orders["amount"])).all()
        discount = _cents(items["discount"]).groupby(items["order_id"]).sum()
        assert (discount.reindex(orders.index) == _cents(orders["discount"])).all()

    def test_shipping_cost_is_the_sum_of_shipments_and_only_shipped_channels_ship(self, data):
        orders = data.tables["orders"].set_index("order_id")
        ships = data.tables["shipments"]
        cost = _cents(ships["shipping_cost"]).groupby(ships["order_id"]).sum()
        assert (cost.reindex(orders.index, fill_value=0) == _cents(orders["shipping_cost"])).all()
        shipped = orders.loc[ships["order_id"].unique()]
        assert set(shipped["channel"]) == {"web", "phone"} and not shipped["is_return"].any()
        web = orders[(orders["channel"] == "web") & ~orders["is_return"]]
        assert web.index.isin(ships["order_id"]).all()

    def test_returns_are_negative_orders_with_negative_lines(self, data):
        orders = data.tables["orders"]
        share = orders["is_return"].mean()
        assert 0.03 <= share <= 0.06
        assert ((orders["amount"] < 0) == orders["is_return"]).all()
        assert ((orders["status"] == "returned") == orders["is_return"]).all()
        items = data.tables["order_items"].merge(orders[["order_id", "is_return"]], on="order_id")
        assert ((items["quantity"] < 0) == items["is_return"]).all()
        assert data.truth["returns"]["share_of_orders"] == pytest.approx(share, abs=1e-4)

    def test_orders_start_on_the_signup_day(self, data):
        purchases = _purchases(data)
        first = purchases.groupby("customer_id")["ordered_at"].min().dt.normalize()
        signup = data.tables["customers"].set_index("customer_id")["signup_date"]
        assert (first >= signup.reindex(first.index)).all()
        primary = pd.Series(data.truth["customers"]["customer_id"])
        assert (first.reindex(primary).to_numpy() == signup.reindex(primary).to_numpy()).all()

    def test_campaign_funnel_is_consistent(self, data):
        c = data.tables["campaign_contacts"]
        treat = c[c["contact_group"] == "treatment"]
        for later, earlier in [("is_converted", "is_responded"), ("is_responded", "is_clicked"),
                               ("is_clicked", "is_opened"), ("is_opened", "is_sent")]:
            assert not (treat[later] & ~treat[earlier]).any(), f"{later} without {earlier}"
        control = c[c["contact_group"] == "control"]
        assert len(control) > 0 and not control[["is_sent", "is_opened", "is_clicked"]].any().any()
        assert ((c["attributed_revenue"] > 0) == c["is_converted"]).all()
        assert ((c["contact_cost"] > 0) == c["is_sent"]).all()
        cost = c.groupby("campaign_id")["contact_cost"].sum()
        campaigns = data.tables["campaigns"].set_index("campaign_id")
        assert (campaigns["cost"] >= cost.reindex(campaigns.index) + 500).all()

    def test_every_conversion_is_an_order_within_the_window(self, data):
        c = data.tables["campaign_contacts"]
        converted = c[c["is_converted"]]
        assert len(converted) > 100
        window = pd.Timedelta(days=data.truth["campaigns"]["conversion_window_days"])
        m = converted.merge(_purchases(data), on="customer_id")
        m = m[(m["ordered_at"] > m["contacted_at"]) & (m["ordered_at"] <= m["contacted_at"] + window)
              & (m["amount"] == m["attributed_revenue"])]
        assert m[["campaign_id", "customer_id"]].drop_duplicates().shape[0] == len(converted)
        assert set(data.truth["campaigns"]["campaign_order_ids"]) <= set(m["order_id"])


# ---------------------------------------------------------------------------------------------------------------
class TestPlantedPurchases:
    def test_customer_parameters_follow_the_planted_populations(self, data):
        truth = data.truth
        lam = np.array(truth["customers"]["lambda_per_week"])
        p = np.array(truth["customers"]["dropout_probability"])
        b = truth["purchases"]
        assert lam.mean() == pytest.approx(b["r"] / b["alpha"], rel=0.08)
        assert p.mean() == pytest.approx(b["a"] / (b["a"] + b["b"]), rel=0.08)
        spend = np.array(truth["customers"]["mean_spend"])
        assert np.median(spend) == pytest.approx(np.median(_purchases(data)["amount"]), rel=0.25)

    def test_purchase_rate_and_spend_are_recoverable_per_customer(self, data):
        truth = pd.DataFrame(data.truth["customers"]).set_index("customer_id")
        purchases = _purchases(data)
        per = purchases.groupby("customer_id").agg(n=("order_id", "size"), first=("ordered_at", "min"),
                                                   spend=("amount", "mean"))
        per = per.join(truth, how="inner")
        weeks = (pd.Timestamp(AS_OF) + pd.Timedelta(days=1) - per["first"]).dt.days / 7
        settled = per[per["is_alive"] & (weeks > 52)]
        assert len(settled) > 300
        assert np.corrcoef(settled["lambda_per_week"], (settled["n"] - 1) / weeks[settled.index])[0, 1] > 0.7
        frequent = per[per["n"] >= 4]
        assert np.corrcoef(frequent["mean_spend"], frequent["spend"])[0, 1] > 0.7

    def test_true_churners_stop_buying_at_their_dropout_date(self, data):
        truth = pd.DataFrame(data.truth["customers"]).set_index("customer_id")
        dead = truth[~truth["is_alive"]]
        assert 0.3 < len(dead) / len(truth) < 0.8
        assert set(dead.index) == set(data.truth["churn"]["true_churner_ids"])
        last = _purchases(data).groupby("customer_id")["ordered_at"].max().dt.normalize()
        assert (last.reindex(dead.index) == pd.to_datetime(dead["dropout_date"])).all()

    def test_died_after_cutoff_were_alive_at_the_cutoff(self, data):
        churn = data.truth["churn"]
        cutoff = pd.Timestamp(churn["cutoff_date"])
        truth = pd.DataFrame(data.truth["customers"]).set_index("customer_id")
        died = truth.loc[churn["died_after_cutoff_ids"]]
        assert len(died) > 100 and not died["is_alive"].any()
        assert (pd.to_datetime(died["dropout_date"]) > cutoff).all()
        signup = data.tables["customers"].set_index("customer_id")["signup_date"]
        assert (signup.reindex(died.index) <= cutoff).all()
        after = _purchases(data)
        bought_after = set(after.loc[after["ordered_at"] >= cutoff + pd.Timedelta(days=1), "customer_id"])
        assert set(died.index) <= bought_after  # a BG/NBD customer dies right after a purchase
        assert churn["alive_at_cutoff_count"] > len(died)

    def test_late_deliveries_end_some_customers(self, data):
        ids = data.truth["churn"]["late_delivery_dropout_ids"]
        assert 0.01 < len(ids) / len(data.truth["customers"]["customer_id"]) < 0.08
        assert set(ids) <= set(data.truth["churn"]["true_churner_ids"])


class TestPlantedExperiment:
    def _experiment(self, data):
        c = data.tables["campaign_contacts"]
        return c[c["campaign_id"] == data.truth["campaigns"]["campaign_id"]]

    def test_control_is_a_fifth_held_out(self, data):
        e = self._experiment(data)
        assert len(e) > 1500
        assert (e["contact_group"] == "control").mean() == pytest.approx(0.20, abs=0.03)
        others = data.tables["campaign_contacts"].drop(e.index)
        assert (others["contact_group"] == "treatment").all()

    def test_observed_lift_matches_the_planted_lift(self, data):
        e = self._experiment(data)
        rate = e.groupby("contact_group")["is_converted"].agg(["mean", "size"])
        diff = rate.loc["treatment", "mean"] - rate.loc["control", "mean"]
        se = np.sqrt((rate["mean"] * (1 - rate["mean"]) / rate["size"]).sum())
        planted = data.truth["campaigns"]["absolute_lift"]
        assert planted == pytest.approx(0.03)
        assert abs(diff - planted) < 3.3 * se  # 99.9% interval
        assert rate.loc["control", "mean"] == pytest.approx(0.04, abs=3.3 * np.sqrt(0.04 * 0.96 / rate.loc[
            "control", "size"]))

    def test_the_lift_sits_on_the_persuadables(self, data):
        e = self._experiment(data)
        truth = data.truth["campaigns"]
        persuadable = e["customer_id"].isin(set(truth["persuadable_ids"]))
        assert 0.15 < persuadable.mean() < 0.45
        assert truth["persuadable_lift"] == pytest.approx(0.10) and abs(truth["other_lift"]) < 0.01

        def lift(rows):
            r = rows.groupby("contact_group")["is_converted"].agg(["mean", "size"])
            return r.loc["treatment", "mean"] - r.loc["control", "mean"], np.sqrt(
                (r["mean"] * (1 - r["mean"]) / r["size"]).sum())

        (lift_p, se_p), (lift_r, se_r) = lift(e[persuadable]), lift(e[~persuadable])
        assert abs(lift_p - truth["persuadable_lift"]) < 3.3 * se_p
        assert abs(lift_r - truth["other_lift"]) < 3.3 * se_r
        assert lift_p - lift_r > 3 * np.hypot(se_p, se_r)  # much greater, not just noise

    def test_persuadable_rule_is_visible_in_the_data(self, data):
        truth = data.truth["campaigns"]
        start = data.tables["campaigns"].set_index("campaign_id").loc[truth["campaign_id"], "start_date"]
        purchases = _purchases(data)
        before = purchases[purchases["ordered_at"] < start].groupby("customer_id").size()
        e = self._experiment(data)
        customers = data.tables["customers"].set_index("customer_id")
        rule = customers.loc[e["customer_id"], "is_web_registered"].to_numpy() & (
            before.reindex(e["customer_id"], fill_value=0).to_numpy() >= 3)
        assert set(e["customer_id"][rule]) == set(truth["persuadable_ids"])


class TestPlantedService:
    def test_sla_breaches_concentrate_in_the_planted_channel(self, data):
        t = data.tables["support_tickets"]
        sla = pd.Series(data.truth["support"]["sla_first_response_hours"])
        hours = (t["first_response_at"] - t["created_at"]).dt.total_seconds() / 3600
        breached = hours > t["priority"].map(sla).astype(float)
        rate = breached.groupby(t["channel"]).mean().sort_values(ascending=False)
        assert rate.index[0] == data.truth["support"]["slow_channel"] == "email"
        assert rate.iloc[0] > 3 * rate.iloc[1]
        csat = t["csat"].astype("float64")
        assert csat[~breached].mean() - csat[breached].mean() > 0.8

    def test_a_few_recent_tickets_are_still_open(self, data):
        t = data.tables["support_tickets"]
        open_ = t[t["resolved_at"].isna()]
        assert 0.02 <= len(open_) / len(t) <= 0.04
        assert (open_["created_at"] >= pd.Timestamp(AS_OF) - pd.Timedelta(days=60)).all()
        assert open_["csat"].isna().all()
        assert {"complaint", "compliment", "delivery"} <= set(t["category"])

    def _deliveries(self, data) -> pd.DataFrame:
        ships = data.tables["shipments"].dropna(subset=["delivered_at"])
        ships = ships.merge(data.tables["orders"][["order_id", "customer_id"]], on="order_id")
        ships["late"] = ships["delivered_at"].dt.normalize() > ships["promised_date"]
        return ships

    def test_one_carrier_is_late_far_more_often(self, data):
        ships = self._deliveries(data)
        rate = ships.groupby("carrier")["late"].mean().sort_values(ascending=False)
        assert rate.index[0] == data.truth["fulfilment"]["late_carrier"]
        assert rate.iloc[0] > 3 * rate.iloc[1]

    def test_late_deliveries_raise_the_ticket_rate(self, data):
        ships = self._deliveries(data).reset_index(drop=True)
        tickets = data.tables["support_tickets"]
        delivery = tickets.loc[tickets["category"] == "delivery", ["customer_id", "created_at"]]
        m = ships.reset_index().merge(delivery, on="customer_id")
        window = pd.Timedelta(days=data.truth["fulfilment"]["ticket_window_days"])
        hit = m[(m["created_at"] >= m["delivered_at"]) & (m["created_at"] <= m["delivered_at"] + window)]
        ships["ticket"] = ships.index.isin(hit["index"])
        rate = ships.groupby("late")["ticket"].mean()
        assert rate[True] == pytest.approx(data.truth["fulfilment"]["ticket_probability_after_late"], abs=0.06)
        assert rate[True] > 4 * rate[False]

    def test_nps_is_lower_after_late_deliveries(self, data):
        ships = self._deliveries(data)
        surveys = data.tables["surveys"]
        m = surveys.merge(ships[["customer_id", "delivered_at", "late"]], on="customer_id")
        m = m[(m["responded_at"] > m["delivered_at"]) & (m["responded_at"] <= m["delivered_at"]
                                                         + pd.Timedelta(days=7))]
        by = m.drop_duplicates("survey_id").groupby("late")["nps_score"].mean()
        assert by[False] - by[True] > 1.5

    def test_survey_comments_come_from_the_theme_phrases(self, data):
        themes = data.truth["surveys"]["themes"]
        phrase_theme = {p: th for th, phrases in themes.items() for p in phrases}
        s = data.tables["surveys"].dropna(subset=["comment"])
        assert set(s["comment"]) <= set(phrase_theme)
        theme = s["comment"].map(phrase_theme)
        assert (s.loc[theme == "praise", "nps_score"] >= 9).all()
        assert (s.loc[theme.isin(["late_delivery", "slow_support", "product_quality"]), "nps_score"] <= 6).all()


class TestPlantedCustomers:
    def test_referrals_point_back_in_time_and_influencers_refer_many(self, data):
        c = data.tables["customers"].set_index("customer_id")
        referred = c[c["referred_by"].notna()]
        assert 0.08 < len(referred) / len(c) < 0.12
        assert (c.loc[referred["referred_by"], "signup_date"].to_numpy() < referred["signup_date"].to_numpy()).all()
        assert (referred["acquisition_channel"] == "referral").all()
        counts = referred["referred_by"].value_counts()
        influencers = data.truth["referrals"]["influencers"]
        assert counts.reindex(list(influencers)).tolist() == list(influencers.values())
        assert min(influencers.values()) >= 5 * counts.drop(list(influencers)).median()

    def test_duplicate_pairs_really_match(self, data):
        c = data.tables["customers"].set_index("customer_id")
        pairs = data.truth["duplicates"]["pairs"]
        assert len(pairs) == pytest.approx(0.01 * len(c), abs=2)
        kinds = {kind for _, _, kind in pairs}
        assert kinds == {"email", "phone", "name_postcode"}
        for original, duplicate, kind in pairs:
            a, b = c.loc[original], c.loc[duplicate]
            assert a["signup_date"] <= b["signup_date"]
            if kind == "email":
                assert a["email"] != b["email"] and _email(a["email"]) == _email(b["email"])
            elif kind == "phone":
                assert a["phone"] != b["phone"] and _phone(a["phone"], a["country"]) == _phone(b["phone"], b["country"])
            else:
                assert a["postcode"] == b["postcode"] and OSA.distance(a["name"], b["name"]) == 1

    def test_no_accidental_duplicates_and_duplicates_barely_buy(self, data):
        c = data.tables["customers"]
        pairs = data.truth["duplicates"]["pairs"]
        emails = c["email"].map(_email)
        planted_email = {d for _, d, k in pairs if k == "email"}
        assert not emails[~c["customer_id"].isin(planted_email)].duplicated().any()
        phones = pd.Series([_phone(p, k) for p, k in zip(c["phone"], c["country"])]).dropna()
        assert phones.duplicated().sum() == sum(k == "phone" for _, _, k in pairs)
        counts = _purchases(data)["customer_id"].value_counts()
        assert counts.reindex([d for _, d, _ in pairs], fill_value=0).max() <= 1

    def test_customer_fields_are_filled_like_a_crm(self, data):
        c = data.tables["customers"]
        assert set(c["country"]) == {"United Kingdom", "Ireland"}
        assert c["region"].nunique() >= 10
        assert c["email"].notna().all() and c["phone"].isna().mean() < 0.1
        assert (c["name"] == c["first_name"] + " " + c["last_name"]).all()
        signup = c["signup_date"]
        first_year = (signup < signup.min() + pd.Timedelta(days=365)).sum()
        last_year = (signup >= pd.Timestamp(AS_OF) - pd.Timedelta(days=364)).sum()
        assert last_year > 1.5 * first_year  # growing acquisition


def _email(text: str) -> str:
    return text.strip().lower()


def _phone(text, country: str) -> str | None:
    if not isinstance(text, str):
        return None
    digits = re.sub(r"\D", "", text)
    if digits.startswith("00"):
        return digits[2:]
    if digits.startswith("0"):
        return {"United Kingdom": "44", "Ireland": "353"}[country] + digits[1:]
    return digits


# ---------------------------------------------------------------------------------------------------------------
class TestWriteSample:
    def test_files_are_deterministic_and_read_back(self, small, tmp_path):
        first = write_sample(tmp_path / "a", small)
        second = write_sample(tmp_path / "b", small)
        assert [p.name for p in first] == [f"{n}.csv.gz" for n in TABLES] + ["ground_truth.json"]
        for a, b in zip(first, second):
            assert a.read_bytes() == b.read_bytes(), a.name
        for name in TABLES:
            back = pd.read_csv(tmp_path / "a" / f"{name}.csv.gz", dtype=str, keep_default_na=False)
            assert list(back.columns) == TABLES[name].column_names
            assert len(back) == len(small.tables[name])
        assert json.loads((tmp_path / "a" / "ground_truth.json").read_text("utf-8")) == small.truth

    def test_text_formats(self, small, tmp_path):
        write_sample(tmp_path, small)

        def read(name):
            return pd.read_csv(tmp_path / f"{name}.csv.gz", dtype=str, keep_default_na=False)

        customers, orders, tickets = read("customers"), read("orders"), read("support_tickets")
        assert customers["signup_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
        assert orders["ordered_at"].str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}").all()
        assert set(orders["is_return"]) == {"true", "false"}
        assert orders["order_id"].str.startswith("0").all()
        assert orders["amount"].str.fullmatch(r"-?\d+\.\d{2}").all()
        assert (tickets["resolved_at"] == "").sum() == small.tables["support_tickets"]["resolved_at"].isna().sum()
        assert (customers["referred_by"] == "").sum() == small.tables["customers"]["referred_by"].isna().sum()
        raw = gzip.decompress((tmp_path / "customers.csv.gz").read_bytes())
        assert raw.startswith(b"customer_id,name,") and b"\r" not in raw
        raw.decode("utf-8")

    def test_duckdb_reads_the_files_with_the_right_types(self, small, tmp_path):
        write_sample(tmp_path, small)
        path = str(tmp_path / "orders.csv.gz")
        con = duckdb.connect()
        row = con.execute("SELECT typeof(ordered_at), typeof(is_return), sum(amount) FROM read_csv(?, "
                          "types={'order_id': 'VARCHAR'}) GROUP BY ALL", [path]).fetchall()
        assert row[0][:2] == ("TIMESTAMP", "BOOLEAN")
        assert row[0][2] == pytest.approx(small.tables["orders"]["amount"].sum(), abs=0.01)

    def test_bundled_sample_is_the_seed_42_dataset(self, tmp_path):
        bundled = sorted(p.name for p in SAMPLE_DIR.iterdir())
        assert bundled == sorted([f"{n}.csv.gz" for n in TABLES] + ["ground_truth.json"])
        assert sum(p.stat().st_size for p in SAMPLE_DIR.iterdir()) < 6_000_000
        fresh = write_sample(tmp_path, generate(n_customers=5000, seed=42, as_of=AS_OF))
        for path in fresh:
            assert path.read_bytes() == (SAMPLE_DIR / path.name).read_bytes(), f"{path.name} is stale"
        truth = json.loads((SAMPLE_DIR / "ground_truth.json").read_text(encoding="utf-8"))
        assert truth["generator"] == {**truth["generator"], "n_customers": 5000, "seed": 42, "as_of": "2026-06-30"}


@pytest.mark.slow
def test_fifty_thousand_customers_generate():
    """Scale smoke test (time is not asserted; 1,000,000 customers take well under a minute)."""
    d = generate(n_customers=50_000, seed=11)
    assert len(d.tables["customers"]) == 50_000
    assert len(d.tables["orders"]) > 150_000
    assert len(d.truth["customers"]["customer_id"]) == 50_000 - len(d.truth["duplicates"]["pairs"])
