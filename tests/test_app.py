"""AppTest: every page renders from ``app.py`` over the bundled sample data, and the URL filters are honoured.

The expected KPIs come from ``crm_core.metrics.overview`` on the same store (formatted by ``crm_core.narrative``),
plus a few literals from the bundled sample that a plain SQL query reproduces. One sample store per module
(loaded once, ~5 s); a test that changes data works on its own copy.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from unittest.mock import patch

import pytest
from streamlit.testing.v1 import AppTest

from crm_core import ingest, metrics, narrative, store

APP = Path(__file__).parent.parent / "app.py"
TIMEOUT = 60  # seconds per script run; a cold run over the sample takes 2-4 s

# The bundled sample's latest order is on 30 Jun 2026, so the default period is the 30 days to then.
DEFAULT_START, LAST_DAY = dt.date(2026, 6, 1), dt.date(2026, 6, 30)
Q2 = {"start": "2026-04-01", "end": "2026-06-30"}


# --------------------------------------------------------------------------------------------- fixtures, helpers
pytestmark = pytest.mark.usefixtures("release_app_caches")  # the app's caches go with the module


def run_app(db: Path, monkeypatch, **query) -> AppTest:
    """Run ``app.py`` once, as a browser opening ``/?<query>`` does (a list value repeats the parameter)."""
    monkeypatch.setenv("CRM_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for name, value in query.items():
        at.query_params[name] = value
    return at.run()


def open_page(at: AppTest, title: str) -> AppTest:
    """Rerun the app on the navigation page called ``title``, as a click in the sidebar menu does.

    ``AppTest.switch_page("pages/data.py")`` cannot do this in Streamlit 1.67: it resolves a page by its script
    file, and our pages are functions (``st.Page(data.render)``, see ui/frame.py), so it raises "Could not find a
    navigation page". A click sends the hash ``st.navigation`` registered for the page; request that hash.
    """
    hashes = [h for h, info in at._registered_pages.items() if info.get("page_name") == title]
    assert len(hashes) == 1, f"no page {title!r} in the navigation: {at._registered_pages}"
    at._page_hash = hashes[0]
    return at.run()


def expected_overview(db: Path, start: dt.date, end: dt.date, regions=()) -> metrics.Overview:
    """What the Overview must show for these filters, computed by the core on the same store."""
    con = store.connect(db)
    try:
        return metrics.overview(store.ibis_backend(con), as_of=end, days=(end - start).days + 1, regions=regions)
    finally:
        con.close()


def shown_kpis(at: AppTest) -> dict[str, tuple[str, str]]:
    """KPI card label → (value, delta) as displayed."""
    return {m.label: (m.value, m.delta) for m in at.main.metric}


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def sidebar_filters(at: AppTest) -> tuple[tuple[dt.date, ...], list[str]]:
    return at.date_input(key="f_range").value, at.multiselect(key="f_regions").value


# --------------------------------------------------------------------------------------------- Overview
class TestOverview:
    def test_kpis_match_the_core_for_the_url_filters(self, sample_store, monkeypatch):
        at = run_app(sample_store, monkeypatch, **Q2, region="London")
        assert_clean(at)
        assert at.title[0].value == "Overview"

        ov = expected_overview(sample_store, dt.date(2026, 4, 1), LAST_DAY, ("London",))
        assert len(at.main.metric) == 10
        assert [m.label for m in at.main.metric] == [metrics.KPI_LABELS[key] for key in metrics.KPI_KEYS]
        assert shown_kpis(at) == {
            k.label: (narrative.format_value(k.value, k.unit), narrative.format_delta(k.delta, k.unit) or "")
            for k in ov.kpis
        }
        assert [m.help for m in at.main.metric] == [metrics.KPI_HELP[key] for key in metrics.KPI_KEYS]

    def test_kpis_by_hand(self, sample_store, monkeypatch):
        # London, 1 Apr - 30 Jun 2026 in the bundled sample (a plain query gives the same):
        #   SELECT count(*) FILTER (WHERE NOT coalesce(is_return, false) AND amount >= 0), round(sum(amount))
        #   FROM orders JOIN customers USING (customer_id)
        #   WHERE region = 'London' AND ordered_at::DATE BETWEEN '2026-04-01' AND '2026-06-30'
        #   → 624 purchases, 40,062 net revenue; 40,062 / 624 = 64.20 average order value.
        at = run_app(sample_store, monkeypatch, **Q2, region="London")
        shown = shown_kpis(at)
        assert shown["Orders"][0] == "624"
        assert shown["Net revenue"][0] == "40,062"
        assert shown["Average order value"][0] == "64.20"

        con = store.connect(sample_store)
        try:
            purchases, revenue = con.execute(
                "SELECT count(*) FILTER (WHERE NOT coalesce(is_return, false) AND amount >= 0), sum(amount) "
                "FROM orders JOIN customers USING (customer_id) "
                "WHERE region = 'London' AND ordered_at::DATE BETWEEN DATE '2026-04-01' AND DATE '2026-06-30'"
            ).fetchone()
        finally:
            con.close()
        assert (purchases, round(revenue)) == (624, 40_062)

    def test_reading_sentence_and_period_caption(self, sample_store, monkeypatch):
        at = run_app(sample_store, monkeypatch, **Q2, region="London")
        ov = expected_overview(sample_store, dt.date(2026, 4, 1), LAST_DAY, ("London",))
        reading = narrative.overview_reading(ov)
        assert reading.startswith("In the 91 days to 30 Jun 2026, net revenue was 40,062")
        assert f"**{reading}**" in [m.value for m in at.main.markdown]
        assert any("1 Apr 2026 – 30 Jun 2026 (91 days), London" in c.value for c in at.main.caption)

    def test_url_filters_fill_the_sidebar_and_stay_in_the_url(self, sample_store, monkeypatch):
        at = run_app(sample_store, monkeypatch, **Q2, region=["London", "Leinster"])
        assert_clean(at)
        assert sidebar_filters(at) == ((dt.date(2026, 4, 1), LAST_DAY), ["London", "Leinster"])
        assert at.query_params == {**Q2, "region": ["London", "Leinster"]}

    def test_region_changes_the_kpis(self, sample_store, monkeypatch):
        everyone = shown_kpis(run_app(sample_store, monkeypatch, **Q2))
        london = shown_kpis(run_app(sample_store, monkeypatch, **Q2, region="London"))
        assert everyone["Customers"][0] == "5,000"  # every sample customer signed up by 30 Jun 2026
        for label in ("Customers", "Active customers", "Net revenue", "Orders"):
            assert london[label] != everyone[label], label

    def test_no_query_params_means_the_last_30_days_of_data(self, sample_store, monkeypatch):
        at = run_app(sample_store, monkeypatch)
        assert_clean(at)
        assert sidebar_filters(at) == ((DEFAULT_START, LAST_DAY), [])
        assert at.query_params == {"start": "2026-06-01", "end": "2026-06-30"}
        ov = expected_overview(sample_store, DEFAULT_START, LAST_DAY)
        assert shown_kpis(at)["Net revenue"][0] == narrative.format_value(ov["revenue"].value, "currency")

    @pytest.mark.parametrize(
        ("query", "period", "regions"),
        [
            ({"start": "garbage", "end": "2026-06-30"}, (DEFAULT_START, LAST_DAY), []),
            ({"start": "2026-04-01", "end": "30/06/2026"}, (dt.date(2026, 4, 1), LAST_DAY), []),
            ({"start": "2026-06-30", "end": "2026-04-01"}, (DEFAULT_START, LAST_DAY), []),
            ({**Q2, "region": "Atlantis"}, (dt.date(2026, 4, 1), LAST_DAY), []),
            ({**Q2, "region": ["Atlantis", "London"]}, (dt.date(2026, 4, 1), LAST_DAY), ["London"]),
            ({**Q2, "region": "london"}, (dt.date(2026, 4, 1), LAST_DAY), []),
            ({**Q2, "segment": "Nonsense"}, (dt.date(2026, 4, 1), LAST_DAY), []),
        ],
        ids=["bad-start", "bad-end", "start-after-end", "unknown-region", "one-unknown-region",
             "region-wrong-case", "unknown-segment"],
    )
    def test_bad_query_params_fall_back_without_error(self, sample_store, monkeypatch, query, period, regions):
        at = run_app(sample_store, monkeypatch, **query)
        assert_clean(at)
        assert len(at.main.metric) == 10
        assert sidebar_filters(at) == (period, regions)
        expected_url = {"start": period[0].isoformat(), "end": period[1].isoformat()}
        if regions:
            expected_url["region"] = regions[0] if len(regions) == 1 else regions
        assert at.query_params == expected_url  # the cleaned filters replace the bad ones in the URL


# --------------------------------------------------------------------------------------------- Data
class TestDataPage:
    def test_renders_import_quality_and_history(self, sample_store, monkeypatch):
        at = open_page(run_app(sample_store, monkeypatch, **Q2, region="London"), "Data")
        assert_clean(at)
        assert at.title[0].value == "Data"
        assert [t.label for t in at.tabs] == ["Import", "Quality and duplicates", "History"]
        assert [s.value for s in at.subheader] == ["Import an export", "Data quality", "Import history"]
        assert len(at.main.metric) == 0  # no KPI cards leaked from the Overview

        import_tab, quality_tab, history_tab = at.tabs
        assert import_tab.selectbox(key="imp_table").value == "customers"
        assert quality_tab.markdown[0].value.startswith("**Duplicate customers.**")
        frames = [d.value for d in quality_tab.dataframe]
        assert any("completeness_pct" in f.columns and len(f) for f in frames), [list(f.columns) for f in frames]
        history = history_tab.dataframe[0].value
        assert set(history["table_name"]) >= {"customers", "orders"}
        assert set(history["outcome"]) == {"committed"}

        # the page keeps the filters: in the sidebar and in the URL
        assert sidebar_filters(at) == ((dt.date(2026, 4, 1), LAST_DAY), ["London"])
        assert at.query_params == {**Q2, "region": "London"}

    def test_back_to_the_overview_keeps_the_filters(self, sample_store, monkeypatch):
        at = open_page(run_app(sample_store, monkeypatch, **Q2, region="London"), "Data")
        at = open_page(at, "Overview")
        assert_clean(at)
        assert at.title[0].value == "Overview"
        assert shown_kpis(at)["Orders"][0] == "624"

    def test_an_import_keeps_every_sessions_own_filters(self, store_copy, tmp_path, monkeypatch):
        """An import (here, or in another session: the same data version changes) must not reset a session's
        filters: its next menu click, which clears the URL, still shows its own period and regions."""
        at = run_app(store_copy, monkeypatch, **Q2, region="London")
        people = tmp_path / "people.csv"
        people.write_text("customer_id,name,region\nSOAK-1,New Person,Wales\n")
        from ui import frame  # the app's own shared connection (AppTest runs the app in this process)

        report = ingest.import_file(frame.cursor(), people, "customers", mode="append")
        assert report.outcome == "committed", report.message
        at.query_params.clear()  # what st.navigation does to the URL on a menu click
        at = open_page(at, "Data")
        assert_clean(at)
        assert sidebar_filters(at) == ((dt.date(2026, 4, 1), LAST_DAY), ["London"])
        assert at.query_params == {**Q2, "region": "London"}

    def test_a_period_left_at_the_default_follows_new_data(self, store_copy, tmp_path, monkeypatch):
        at = run_app(store_copy, monkeypatch)
        assert sidebar_filters(at) == ((DEFAULT_START, LAST_DAY), [])
        later = tmp_path / "later.csv"  # one order a month after the sample's last day
        later.write_text("customer_id,date,amount\nC-1,2026-07-30,10.00\n")
        from ui import frame

        report = ingest.import_file(frame.cursor(), later, "transactions", mode="append")
        assert report.outcome == "committed", report.message
        at = open_page(at, "Overview")
        assert_clean(at)
        assert sidebar_filters(at) == ((dt.date(2026, 7, 1), dt.date(2026, 7, 30)), [])  # the new last 30 days

    def test_reset_reloads_the_sample_data(self, store_copy, sample_store, tmp_path, monkeypatch):
        # Replace the orders by a two-purchase transaction log: the Overview then shows 2 orders and 150 revenue.
        log = tmp_path / "transactions.csv"
        log.write_text("customer_id,date,amount\nC-1,2026-06-10,100.00\nC-2,2026-06-20,50.00\n")
        con = store.connect(store_copy)
        try:
            assert ingest.import_file(con, log, "transactions", mode="replace").outcome == "committed"
        finally:
            con.close()
        at = run_app(store_copy, monkeypatch, start="2026-06-01", end="2026-06-30")
        assert (shown_kpis(at)["Orders"][0], shown_kpis(at)["Net revenue"][0]) == ("2", "150")

        at = open_page(at, "Data")
        at.button(key="reset").click().run()
        assert_clean(at)
        assert [s.value for s in at.success] == ["Sample data loaded."]
        history = at.tabs[2].dataframe[0].value  # newest first
        orders = history[history["table_name"] == "orders"]
        assert orders["file_name"].iloc[0] == "orders.csv.gz" and orders["outcome"].iloc[0] == "committed"
        replaced_at = history.loc[history["file_name"] == "transactions.csv", "started_at"].max()
        assert orders["started_at"].iloc[0] > replaced_at

        at = open_page(at, "Overview")
        assert_clean(at)
        ov = expected_overview(sample_store, DEFAULT_START, LAST_DAY)
        assert shown_kpis(at) == {
            k.label: (narrative.format_value(k.value, k.unit), narrative.format_delta(k.delta, k.unit) or "")
            for k in ov.kpis
        }


# --------------------------------------------------------------------------------------------- Segments
def core(db: Path, fn, *args, **kwargs):
    """Call a core function on a backend over ``db`` (what a page must show, computed independently)."""
    con = store.connect(db)
    try:
        return fn(store.ibis_backend(con), *args, **kwargs)
    finally:
        con.close()


class TestSegmentsPage:
    def test_cards_reading_and_migration_match_the_core(self, sample_store, monkeypatch):
        from crm_core import segments

        at = open_page(run_app(sample_store, monkeypatch, **Q2, region="London"), "Segments")
        assert_clean(at)
        assert at.title[0].value == "Segments"
        summary = core(sample_store, segments.segment_summary, LAST_DAY, regions=("London",))
        cards = shown_kpis(at)
        assert cards["Scored customers"][0] == narrative.format_value(summary["customers"].sum(), "count")
        champions = summary.set_index("segment").loc["Champions"]
        assert cards["Champions' share of revenue"][0] == narrative.format_value(champions.share_of_revenue, "pct")
        captions = [c.value for c in at.main.caption]
        assert narrative.segment_reading(summary) in captions
        since = LAST_DAY - dt.timedelta(days=182)
        flows = core(sample_store, segments.migration, since, LAST_DAY, regions=("London",))
        assert narrative.migration_reading(flows, since, LAST_DAY) in captions
        # the default pick is Loyal → At risk, and the list is the core's list
        movers = core(sample_store, segments.migration_customers, since, LAST_DAY, "Loyal", "At risk",
                      regions=("London",))
        assert f"**{len(movers):,} customers moved from Loyal to At risk**" in at.main.markdown[0].value
        # behavioural clusters on all customers, k by silhouette
        from crm_core import clusters

        found = core(sample_store, clusters.clusters, LAST_DAY)
        assert narrative.cluster_reading(found.profiles, found.k, found.silhouette_by_k[found.k]) in captions
        assert at.query_params == {**Q2, "region": "London"}

    def test_no_orders_gets_advice(self, con, tmp_path, monkeypatch):
        people = tmp_path / "customers.csv"
        people.write_text("customer_id,region\nC-1,North\n")
        assert ingest.import_file(con, people, "customers").outcome == "committed"
        con.close()
        at = open_page(run_app(tmp_path / "crm.duckdb", monkeypatch), "Segments")
        assert_clean(at)
        assert any("No customer has a purchase" in i.value for i in at.info)


# --------------------------------------------------------------------------------------------- Customer value
class TestValuePage:
    def test_cards_and_readings_match_the_core(self, sample_store, monkeypatch):
        from crm_core import value

        at = open_page(run_app(sample_store, monkeypatch, **Q2, region="London"), "Customer value")
        assert_clean(at)
        assert at.title[0].value == "Customer value"
        values = core(sample_store, value.customer_value, LAST_DAY, regions=("London",))
        totals = value.value_totals(values)
        cards = shown_kpis(at)
        assert cards["Profit"][0] == narrative.format_value(totals.profit, "currency")
        assert cards["Loss-making customers"][0] == narrative.format_value(totals.loss_making_customers, "count")
        captions = [c.value for c in at.main.caption]
        assert narrative.whale_reading(value.whale_summary(values)) in captions
        assert narrative.tier_reading(value.tier_summary(values)) in captions
        # predicted value: fitted on all customers, checked on the last 182 days
        from crm_core import clv

        predicted = core(sample_store, clv.clv, LAST_DAY)
        assert narrative.clv_reading(predicted) in captions
        assert cards["Predicted CLV, all customers"][0] == narrative.format_value(predicted.totals["clv"], "currency")
        holdout = core(sample_store, clv.calibration_holdout, LAST_DAY - dt.timedelta(days=182), LAST_DAY)
        assert narrative.holdout_reading(holdout) in captions
        quads = value.quadrant_summary(value.add_potential(values, predicted.customers[["customer_id", "clv"]]))
        assert narrative.quadrant_reading(quads) in captions
        assert not at.warning  # the sample has enough history and repeat buyers

    def test_rates_and_window_change_the_numbers(self, sample_store, monkeypatch):
        from crm_core import value

        at = open_page(run_app(sample_store, monkeypatch, **Q2), "Customer value")
        at.number_input(key="vr_t_email").set_value(40.0)
        at.radio(key="v_window").set_value("The period").run()
        assert_clean(at)
        rates = value.CostRates(ticket_cost_by_channel={**value.CostRates().ticket_cost_by_channel, "email": 40.0})
        values = core(sample_store, value.customer_value, LAST_DAY, start=dt.date(2026, 4, 1), rates=rates)
        assert shown_kpis(at)["Cost to serve"][0] == narrative.format_value(value.value_totals(values).cost_to_serve,
                                                                            "currency")


# --------------------------------------------------------------------------------------------- Retention & churn
class TestRetentionPage:
    def test_cards_and_readings_match_the_core(self, sample_store, monkeypatch):
        from crm_core import churn

        at = open_page(run_app(sample_store, monkeypatch, **Q2), "Retention & churn")
        assert_clean(at)
        assert at.title[0].value == "Retention & churn"
        summary = core(sample_store, churn.churn_summary, LAST_DAY, 180)
        model = core(sample_store, churn.train_churn_model, LAST_DAY, 180)
        cards = shown_kpis(at)
        assert cards["Churn rate"][0] == narrative.format_value(summary.churn_rate, "pct")
        assert cards["ROC AUC (out of time)"][0] == f"{model.roc_auc:.3f}"
        assert cards["Revenue at risk"][0] == narrative.format_value(model.revenue_at_risk, "currency")
        captions = [c.value for c in at.main.caption]
        assert narrative.churn_reading(summary, 180) in captions
        assert narrative.drivers_reading(model.drivers) in captions
        assert at.dataframe[0].value["customer_id"].tolist() == model.at_risk["customer_id"].head(500).tolist()

    def test_a_short_history_refuses_the_model_with_its_reason(self, store_copy, monkeypatch):
        # a definition of 400 days needs 800 days of history before the end of the period; the sample has ~3 years,
        # so ending the period in early 2025 leaves too little
        at = open_page(run_app(store_copy, monkeypatch, start="2024-12-01", end="2024-12-31"), "Retention & churn")
        at.number_input(key="ch_days").set_value(400).run()
        assert_clean(at)
        assert any(i.value.startswith("The churn model was not trained:") for i in at.info), [i.value for i in at.info]


# --------------------------------------------------------------------------------------------- a bare transaction log
@pytest.fixture(scope="module")
def cdnow_store(tmp_path_factory) -> Path:
    """A store holding only the CDNOW sample (2,357 customers, 1997-01 .. 1998-06) imported as a transaction log:
    no customers file, no products, no tickets — what an analyst with a shop's order export has."""
    import pandas as pd

    folder = tmp_path_factory.mktemp("cdnow")
    raw = pd.read_csv(Path(__file__).parent / "fixtures" / "cdnow" / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["master_id", "customer", "date", "cds", "dollars"], dtype={"date": str})
    log = folder / "cdnow_transactions.csv"
    raw[["customer", "date", "dollars"]].rename(columns={"customer": "Customer ID", "date": "Date",
                                                         "dollars": "Amount"}).to_csv(log, index=False)
    path = folder / "crm.duckdb"
    con = store.connect(path)
    try:
        report = ingest.import_file(con, log, "transactions")
        assert report.outcome == "committed", report.message
    finally:
        con.close()
    return path


CDNOW_VIEW = {"start": "1998-04-01", "end": "1998-06-30"}


class TestOnAnImportedTransactionLog:
    def test_segments(self, cdnow_store, monkeypatch):
        at = open_page(run_app(cdnow_store, monkeypatch, **CDNOW_VIEW), "Segments")
        assert_clean(at)
        assert shown_kpis(at)["Scored customers"][0] == "2,357"  # every CDNOW customer bought at least once

    def test_value_says_the_margin_is_estimated(self, cdnow_store, monkeypatch):
        from crm_core import value

        at = open_page(run_app(cdnow_store, monkeypatch, **CDNOW_VIEW), "Customer value")
        assert_clean(at)
        totals = value.value_totals(core(cdnow_store, value.customer_value, dt.date(1998, 6, 30)))
        assert totals.estimated_margin_share == pytest.approx(1.0)  # no order lines, no unit costs
        assert shown_kpis(at)["Net revenue"][0] == "244,092"  # Σ dollars of CDNOW_sample.txt: 244,091.94
        assert totals.revenue == pytest.approx(244091.94)
        assert any("The margin on 100% of revenue is estimated" in c.value for c in at.main.caption)

    def test_retention(self, cdnow_store, monkeypatch):
        from crm_core import churn

        at = open_page(run_app(cdnow_store, monkeypatch, **CDNOW_VIEW), "Retention & churn")
        assert_clean(at)
        summary = core(cdnow_store, churn.churn_summary, dt.date(1998, 6, 30), 180)
        assert summary.customers == 2357
        assert shown_kpis(at)["Churn rate"][0] == narrative.format_value(summary.churn_rate, "pct")

    def test_value_page_reproduces_the_published_cdnow_estimates(self, cdnow_store, monkeypatch):
        # the end of the period closes the observation (calibration) period of Fader, Hardie & Lee (2005)
        at = open_page(run_app(cdnow_store, monkeypatch, start="1997-07-01", end="1997-09-30"), "Customer value")
        assert_clean(at)
        params = next(d.value for d in at.dataframe if "parameter" in d.value.columns).set_index("parameter")
        published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
        for name, estimate in published.items():
            assert params.loc[name, "estimate"] == pytest.approx(estimate, rel=0.005), name


# --------------------------------------------------------------------------------------------- Campaigns, Cross-sell
class TestCampaignsPage:
    def test_readings_lift_and_targets_match_the_core(self, sample_store, monkeypatch):
        from crm_core import campaigns, uplift

        at = open_page(run_app(sample_store, monkeypatch, **Q2), "Campaigns")
        assert_clean(at)
        assert [t.label for t in at.tabs] == ["Performance", "Lift", "Uplift targeting", "Attribution"]
        summary = core(sample_store, campaigns.campaign_summary)
        captions = [c.value for c in at.main.caption]
        assert campaigns.read_summary(summary) in captions
        lift = core(sample_store, campaigns.lift, "CMP07")
        assert lift.verdict in captions  # the planted experiment: lift 1.8 points, interval holds the planted 3
        assert lift.conversion.ci_low < 0.03 < lift.conversion.ci_high
        assert any(c.startswith("CMP01, CMP02, CMP03, CMP04, CMP05, CMP06 and CMP08 have no control group")
                   for c in captions)
        result = core(sample_store, uplift.train_uplift_model, "CMP07", as_of=LAST_DAY, top_n=500)
        targets = next(d.value for d in at.dataframe if "predicted_uplift" in d.value.columns)
        assert targets["customer_id"].tolist() == result.targets["customer_id"].tolist()
        assert narrative.qini_reading(result) in captions

    def test_no_campaigns_gets_advice(self, con, tmp_path, monkeypatch):
        log = tmp_path / "t.csv"
        log.write_text("customer_id,date,amount\nC-1,2026-06-10,100.00\n")
        assert ingest.import_file(con, log, "transactions").outcome == "committed"
        con.close()
        at = open_page(run_app(tmp_path / "crm.duckdb", monkeypatch), "Campaigns")
        assert_clean(at)
        assert any("No campaigns in the data" in i.value for i in at.info)


class TestCrossSellPage:
    def test_rules_and_offers_match_the_core(self, sample_store, monkeypatch):
        from crm_core import basket

        at = open_page(run_app(sample_store, monkeypatch, **Q2, segment="Champions"), "Cross-sell")
        assert_clean(at)
        rules = core(sample_store, basket.association_rules, level="product", min_support=0.001,
                     min_confidence=0.05, max_rules=200, end=LAST_DAY, segments=("Champions",))
        captions = [c.value for c in at.main.caption]
        assert narrative.basket_reading(rules.rules, rules.n_baskets) in captions
        shown = next(d.value for d in at.dataframe if "lift" in d.value.columns)
        assert shown["lift"].tolist() == pytest.approx(rules.rules["lift"].tolist())

    def test_category_level(self, sample_store, monkeypatch):
        at = open_page(run_app(sample_store, monkeypatch, **Q2), "Cross-sell")
        at.radio(key="xs_level").set_value("category").run()
        assert_clean(at)
        shown = next(d.value for d in at.dataframe if "lift" in d.value.columns)
        assert set(shown["antecedent"]) <= {"Accessories", "Beauty", "Books", "Apparel", "Home", "Garden", "Sports",
                                            "Electronics"}


def test_every_page_url_is_its_file_name():
    """A page opened by URL on a fresh server is found by its file name (Streamlit's pages/ folder mode), so each
    navigation page's url_path must be the stem of its file in pages/ (the Overview is the root URL), and every file
    in pages/ must be in the navigation."""
    from ui import frame

    stems = sorted(p.stem for p in (APP.parent / "pages").glob("*.py") if p.stem != "__init__")
    assert stems, "no pages found"
    assert sorted(module for _, module in frame.PAGES) == stems
    assert frame.PAGES[0][1] == "overview"
    with patch.object(frame.st, "Page", side_effect=lambda page, **kw: (page.__name__, kw.get("url_path"))):
        registered = frame._pages()
    assert registered[0] == ("overview", None)  # the root URL
    assert all(name == url for name, url in registered[1:])


def test_pages_are_imported_only_when_they_run():
    """Opening the app imports no page module and no scikit-learn (app start-up stays light)."""
    code = ("import sys; from ui import frame; frame._pages(); "
            "print(sorted(m for m in sys.modules if m.startswith('pages.') or m.split('.')[0] == 'sklearn'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=APP.parent, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_cached_page_call_says_what_it_is_doing():
    """Progress on large data: each page's cached computation shows a spinner naming the work and its elapsed time
    when it misses the cache (Streamlit shows it after 0.5 s), so a 10M-order first run is never a silent page."""
    import ast

    quiet = []
    for path in sorted((APP.parent / "pages").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and ast.unparse(deco.func) in ("st.cache_data", "st.cache_resource"):
                    kw = {k.arg: k.value for k in deco.keywords}
                    spinner = kw.get("show_spinner")
                    named = isinstance(spinner, ast.Constant) and isinstance(spinner.value, str) and spinner.value
                    timed = isinstance(kw.get("show_time"), ast.Constant) and kw["show_time"].value is True
                    if not (named and timed):
                        quiet.append(f"{path.name}:{node.lineno} {node.name}")
    assert quiet == []
