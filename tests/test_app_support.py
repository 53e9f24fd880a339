"""AppTest: the Support page over the bundled sample shows what the core computes for the URL's period.

Each expected number or sentence comes from ``crm_core.support`` / ``service`` / ``voice`` (and
``crm_core.narrative``) called on the same store for the same filters; a few literals of the bundled sample are
checked by a plain SQL query too. The page runs only its open tab (``st.tabs(..., on_change="rerun")``): a test
opens another tab by setting ``st.session_state["sup_tab"]``, as a click on the tab does.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from crm_core import ingest, narrative, service, store, support, voice
from crm_core.support import BusinessHours, SlaPolicy

APP = Path(__file__).parent.parent / "app.py"
TIMEOUT = 60  # seconds per script run
START, END = dt.date(2026, 4, 1), dt.date(2026, 6, 30)
Q2 = {"start": START.isoformat(), "end": END.isoformat()}
CARDS = (  # as pages/support.py shows them: KPI column, unit
    ("tickets", "count"), ("median_first_response_hours", "ratio"), ("first_response_breach_rate", "pct"),
    ("resolution_breach_rate", "pct"), ("open_tickets", "count"), ("reopen_rate", "pct"),
    ("first_contact_resolution_rate", "pct"), ("csat_mean", "ratio"), ("cost_per_ticket", "currency"),
)


pytestmark = pytest.mark.usefixtures("release_app_caches")  # the app's caches go with the module


def open_support(db: Path, monkeypatch, tab: str | None = None, **query) -> AppTest:
    """Open ``/?<query>``, then the Support page from the navigation (and ``tab`` in it)."""
    monkeypatch.setenv("CRM_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    hashes = [h for h, info in at._registered_pages.items() if info.get("page_name") == "Support"]
    assert len(hashes) == 1, at._registered_pages
    at._page_hash = hashes[0]
    if tab is not None:
        at.session_state["sup_tab"] = tab
    return at.run()


def core(db: Path, fn, *args, **kwargs):
    con = store.connect(db)
    try:
        return fn(store.ibis_backend(con), *args, **kwargs)
    finally:
        con.close()


def cards(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.main.metric}


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.main.caption]


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def expected_cards(kpis) -> dict[str, str]:
    row = kpis.iloc[0]
    return {support.KPI_LABELS[key]: narrative.format_value(row[key], unit) for key, unit in CARDS}


# --------------------------------------------------------------------------------------------- Tickets
class TestTicketsTab:
    def test_cards_and_readings_match_the_core(self, sample_store, monkeypatch):
        at = open_support(sample_store, monkeypatch, **Q2)
        assert_clean(at)
        assert at.title[0].value == "Support"
        assert [t.label for t in at.tabs] == ["Tickets", "Complaints & NPS", "Service × value", "Channels"]
        kpis = core(sample_store, support.ticket_kpis, END, START)
        assert cards(at) == expected_cards(kpis)
        assert [m.help for m in at.main.metric] == [support.KPI_HELP[key] for key, _ in CARDS]
        shown = captions(at)
        trend = core(sample_store, support.ticket_trend, END, START)
        by_channel = core(sample_store, support.ticket_kpis, END, START, by="channel")
        backlog = core(sample_store, support.backlog, END, top=20)
        for reading in (narrative.support_reading(kpis), narrative.ticket_trend_reading(trend),
                        narrative.breakdown_reading(by_channel, "channel"), narrative.backlog_reading(backlog),
                        narrative.csat_distribution_reading(core(sample_store, support.csat_distribution, END, START)),
                        narrative.csat_reading(core(sample_store, support.csat_by_breach, END, START))):
            assert reading in shown
        # the breakdown table and the oldest open tickets are the core's frames
        frames = [d.value for d in at.dataframe]
        assert frames[0]["channel"].tolist() == by_channel["channel"].tolist()
        assert frames[0]["breach_rate"].tolist() == pytest.approx(by_channel["breach_rate"].tolist())
        assert frames[1]["ticket_id"].tolist() == backlog.oldest["ticket_id"].tolist()
        assert at.query_params == Q2

    def test_ticket_count_by_hand(self, sample_store, monkeypatch):
        # SELECT count(*) FROM support_tickets WHERE created_at >= '2026-04-01' AND created_at < '2026-07-01' → 396
        con = store.connect(sample_store)
        try:
            n = con.execute("SELECT count(*) FROM support_tickets WHERE created_at >= TIMESTAMP '2026-04-01' "
                            "AND created_at < TIMESTAMP '2026-07-01'").fetchone()[0]
        finally:
            con.close()
        at = open_support(sample_store, monkeypatch, **Q2)
        assert n == 396
        assert cards(at)["Tickets"] == "396"

    def test_a_tighter_target_raises_the_breach_rate_to_the_cores_value(self, sample_store, monkeypatch):
        at = open_support(sample_store, monkeypatch, **Q2)
        before = cards(at)["First-response SLA breach rate"]
        at.number_input(key="sla_fr_normal").set_value(1.0).run()
        assert_clean(at)
        policy = SlaPolicy(first_response_hours={**SlaPolicy().first_response_hours, "normal": 1.0})
        kpis = core(sample_store, support.ticket_kpis, END, START, policy)
        assert cards(at) == expected_cards(kpis)
        assert cards(at)["First-response SLA breach rate"] != before
        assert kpis["first_response_breach_rate"].iloc[0] > core(
            sample_store, support.ticket_kpis, END, START)["first_response_breach_rate"].iloc[0]
        assert narrative.support_reading(kpis) in captions(at)

    def test_business_hours_change_the_clocks(self, sample_store, monkeypatch):
        at = open_support(sample_store, monkeypatch, **Q2)
        at.checkbox(key="sla_bh").check().run()
        at.number_input(key="sla_bh_end").set_value(18).run()
        assert_clean(at)
        policy = SlaPolicy(business_hours=BusinessHours(9, 18))
        kpis = core(sample_store, support.ticket_kpis, END, START, policy)
        assert cards(at) == expected_cards(kpis)
        wall = core(sample_store, support.ticket_kpis, END, START)
        assert kpis["median_first_response_hours"].iloc[0] != wall["median_first_response_hours"].iloc[0]
        assert any("business hours (9:00-18:00, Monday to Friday)" in c for c in captions(at))

    def test_breakdown_by_priority(self, sample_store, monkeypatch):
        at = open_support(sample_store, monkeypatch, **Q2)
        at.selectbox(key="sup_by").set_value("priority").run()
        assert_clean(at)
        by_priority = core(sample_store, support.ticket_kpis, END, START, by="priority")
        assert at.dataframe[0].value["priority"].tolist() == ["urgent", "high", "normal", "low"]
        assert narrative.breakdown_reading(by_priority, "priority") in captions(at)

    def test_region_filter(self, sample_store, monkeypatch):
        at = open_support(sample_store, monkeypatch, **Q2, region="London")
        assert_clean(at)
        kpis = core(sample_store, support.ticket_kpis, END, START, regions=("London",))
        assert cards(at) == expected_cards(kpis)
        assert cards(at)["Tickets"] != "396"


# --------------------------------------------------------------------------------------------- the other tabs
class TestOtherTabs:
    def test_complaints_and_nps(self, sample_store, monkeypatch):
        at = open_support(sample_store, monkeypatch, "Complaints & NPS", **Q2)
        assert_clean(at)
        overall = core(sample_store, voice.nps, END, START)
        row = overall.iloc[0]
        assert {m.label: (m.value, m.delta) for m in at.main.metric} == {
            "NPS": (f"{row.nps:+.0f}", f"95% CI {row.nps_low:+.0f} to {row.nps_high:+.0f}"),
            "Answers": (narrative.format_value(row.responses, "count"), ""),
            "Promoters (share)": (narrative.format_value(row.promoter_share, "pct"), ""),
            "Detractors (share)": (narrative.format_value(row.detractor_share, "pct"), ""),
        }  # and no ticket card: the Tickets tab did not run
        readings = captions(at)
        for reading in (
            narrative.complaints_reading(core(sample_store, support.complaints, END, START, by="month")),
            narrative.complaint_category_reading(core(sample_store, support.complaints, END, START, by="category")),
            narrative.nps_reading(overall),
            narrative.nps_trend_reading(core(sample_store, voice.nps, END, START, by="month")),
            narrative.nps_segment_reading(core(sample_store, voice.nps, END, START, by="segment")),
            narrative.themes_reading(core(sample_store, voice.comment_themes, END, START)),
        ):
            assert reading in readings
        assert [m.value for m in at.main.markdown if m.value in ("**Promoters**", "**Passives**", "**Detractors**")] \
            == ["**Promoters**", "**Passives**", "**Detractors**"]
        # the ticket subjects instead, grouped by CSAT
        at.radio(key="sup_theme_source").set_value("tickets").run(timeout=TIMEOUT)
        assert_clean(at)
        assert narrative.themes_reading(core(sample_store, voice.comment_themes, END, START, source="tickets")) \
            in captions(at)
        assert "**Satisfied tickets**" in [m.value for m in at.main.markdown]

    def test_service_by_value(self, sample_store, monkeypatch):
        at = open_support(sample_store, monkeypatch, "Service × value", **Q2)
        assert_clean(at)
        by_tier = core(sample_store, service.service_by_tier, END, START)
        gap = service.service_gap(by_tier)
        assert cards(at) == {
            "SLA breach rate, top tiers": narrative.format_value(gap.top_breach_rate, "pct"),
            "SLA breach rate, other tiers": narrative.format_value(gap.rest_breach_rate, "pct"),
            "CSAT, top tiers": narrative.format_value(gap.top_csat_mean, "ratio"),
            "CSAT, other tiers": narrative.format_value(gap.rest_csat_mean, "ratio"),
        }
        assert f"**{gap.sentence}**" in [m.value for m in at.main.markdown]
        channels = core(sample_store, service.breach_by_channel, END, START)
        actions = core(sample_store, service.action_list, END, start=START)
        readings = captions(at)
        assert narrative.tier_service_reading(by_tier) in readings
        assert narrative.channel_breach_reading(channels) in readings
        assert narrative.action_list_reading(actions) in readings
        assert channels.loc[channels["is_breach_hotspot"], "channel"].tolist() == ["email"]  # the planted channel
        shown = next(d.value for d in at.dataframe if "suggested_action" in d.value.columns)
        assert shown["customer_id"].tolist() == actions["customer_id"].tolist()
        assert set(shown["value_tier"]) <= {"Platinum", "Gold"}

    def test_channels(self, sample_store, monkeypatch):
        at = open_support(sample_store, monkeypatch, "Channels", **Q2)
        assert_clean(at)
        points = core(sample_store, service.contact_points, END, START)
        usage = core(sample_store, service.channel_usage, END, START)
        readings = captions(at)
        assert narrative.contact_points_reading(points) in readings
        assert narrative.channel_usage_reading(usage, "orders") in readings  # the first touchpoint is the default
        # no campaign contact is dated in Q2: the touchpoint is skipped, not an error
        assert set(points["touchpoint"]) == {"orders", "support", "surveys"}
        shown = next(d.value for d in at.dataframe if "cost_per_event" in d.value.columns)
        assert shown["events"].tolist() == points["events"].tolist()

        at.selectbox(key="sup_touchpoint").set_value("support").run()
        assert_clean(at)
        assert narrative.channel_usage_reading(usage, "support") in captions(at)


# --------------------------------------------------------------------------------------------- no tickets
class TestWithoutTickets:
    @pytest.fixture
    def no_tickets(self, store_copy) -> Path:
        con = store.connect(store_copy)
        try:
            con.execute("DELETE FROM support_tickets")
        finally:
            con.close()
        return store_copy

    @pytest.mark.parametrize("tab", ["Tickets", "Service × value"])
    def test_ticket_tabs_say_why(self, no_tickets, monkeypatch, tab):
        at = open_support(no_tickets, monkeypatch, tab, **Q2)
        assert_clean(at)
        reason = core(no_tickets, service.tickets_unavailable)
        assert reason == "No support tickets have been imported yet; import support tickets to see this."
        assert [i.value for i in at.info] == [reason]
        assert cards(at) == {}

    @pytest.mark.parametrize("tab", ["Tickets", "Complaints & NPS", "Service × value", "Channels"])
    def test_a_bare_transaction_log(self, con, tmp_path, monkeypatch, tab):
        # only orders (and the customers they name): no tickets, no surveys, no campaigns; every tab says so
        log = tmp_path / "transactions.csv"
        log.write_text("customer_id,date,amount\nC-1,2026-06-10,100.00\nC-2,2026-06-20,50.00\n")
        assert ingest.import_file(con, log, "transactions").outcome == "committed"
        con.close()
        at = open_support(tmp_path / "crm.duckdb", monkeypatch, tab, start="2026-06-01", end="2026-06-30")
        assert_clean(at)
        no_tickets = "No support tickets have been imported yet; import support tickets to see this."
        expected_info = {
            "Tickets": [no_tickets],
            "Complaints & NPS": ["No survey answers with a score in this period. Import surveys (one row per answer "
                                 "with an NPS score of 0-10) on the Data page, or widen the date range."],
            "Service × value": [no_tickets],
            "Channels": [],
        }[tab]
        assert [i.value for i in at.info] == expected_info
        if tab == "Channels":  # 2 orders without a channel
            assert "The main channel for orders is Unknown (100%)." in captions(at)
            assert "No survey answers have been imported yet; import them to see this touchpoint." in captions(at)

    def test_nps_and_channels_still_render(self, no_tickets, sample_store, monkeypatch):
        at = open_support(no_tickets, monkeypatch, "Complaints & NPS", **Q2)
        assert_clean(at)
        row = core(sample_store, voice.nps, END, START).iloc[0]  # surveys are untouched
        assert cards(at)["NPS"] == f"{row.nps:+.0f}"
        assert any(c.startswith("Complaints and compliments come from the support tickets.") for c in captions(at))

        at.session_state["sup_tab"] = "Channels"
        at.run()
        assert_clean(at)
        reasons = core(no_tickets, service.touchpoints_unavailable)
        assert set(reasons) == {"support"}  # campaign contacts exist, though none is dated in Q2
        assert reasons["support"] in captions(at)
        points = core(no_tickets, service.contact_points, END, START)
        assert "support" not in set(points["touchpoint"])
        assert narrative.contact_points_reading(points) in captions(at)
