"""AppTest: the Fulfilment page renders over the bundled sample and shows the core's numbers for the URL filters.

Every expected number comes from ``crm_core.fulfilment`` / ``crm_core.voice`` on the same store, formatted by
``crm_core.narrative``; the planted truth (ParcelPoint is the late carrier) is checked through the reading.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from crm_core import fulfilment, ingest, narrative, store, voice
from crm_core.fulfilment import FULFILMENT_HELP, FULFILMENT_LABELS

APP = Path(__file__).parent.parent / "app.py"
TIMEOUT = 60  # seconds per script run
START, END = dt.date(2026, 4, 1), dt.date(2026, 6, 30)
Q2 = {"start": "2026-04-01", "end": "2026-06-30"}
CARDS = ("shipments", "on_time_rate", "late_rate", "overdue", "median_order_to_ship_hours",
         "median_ship_to_deliver_days")
UNITS = {"shipments": "count", "overdue": "count", "on_time_rate": "pct", "late_rate": "pct"}


pytestmark = pytest.mark.usefixtures("release_app_caches")  # the app's caches go with the module


def open_fulfilment(db: Path, monkeypatch, **query) -> AppTest:
    """Open the app at ``/?<query>``, then the Fulfilment page as a click in the sidebar menu does."""
    monkeypatch.setenv("CRM_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    hashes = [h for h, info in at._registered_pages.items() if info.get("page_name") == "Fulfilment"]
    assert len(hashes) == 1, at._registered_pages
    at._page_hash = hashes[0]
    return at.run()


def core(db: Path, fn, *args, **kwargs):
    con = store.connect(db)
    try:
        return fn(store.ibis_backend(con), *args, **kwargs)
    finally:
        con.close()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.main.caption]


def effect_table(at: AppTest):
    return next(d.value for d in at.dataframe if "ticket_rate" in d.value.columns)


class TestFulfilmentPage:
    def test_cards_and_readings_match_the_core(self, sample_store, monkeypatch):
        at = open_fulfilment(sample_store, monkeypatch, **Q2)
        assert_clean(at)
        assert at.title[0].value == "Fulfilment"
        kpis = core(sample_store, fulfilment.fulfilment_kpis, END, START)
        k = kpis.iloc[0]
        assert [m.label for m in at.main.metric] == [FULFILMENT_LABELS[c] for c in CARDS]
        assert {m.label: m.value for m in at.main.metric} == {
            FULFILMENT_LABELS[c]: narrative.format_value(k[c], UNITS.get(c, "ratio")) for c in CARDS}
        # the sample's Q2: 2,109 shipments, 192 of 2,042 judged deliveries late (9.4%)
        assert (k.shipments, k.late, k.on_time + k.late) == (2109, 192, 2042)
        assert all(m.help.startswith(FULFILMENT_HELP[c]) for m, c in zip(at.main.metric, CARDS))
        assert at.main.metric[4].help.endswith(
            f"90th percentile: {narrative.format_value(k.p90_order_to_ship_hours, 'ratio')} hours.")

        shown = captions(at)
        by = {name: core(sample_store, fulfilment.fulfilment_kpis, END, START, by=name)
              for name in ("carrier", "region", "month")}
        carrier_text = narrative.carrier_reading(by["carrier"])
        assert carrier_text.startswith("ParcelPoint is late most often")  # the planted late carrier
        for text in (narrative.fulfilment_reading(kpis), carrier_text,
                     narrative.fulfilment_region_reading(by["region"]),
                     narrative.fulfilment_month_reading(by["month"]),
                     narrative.lead_time_reading(kpis, by["carrier"])):
            assert text in shown
        carriers = next(d.value for d in at.dataframe if "carrier" in d.value.columns)
        assert carriers["late_rate"].tolist() == pytest.approx(by["carrier"]["late_rate"].tolist())

        # late effect over the period (14 / 180 days): tickets compare, repurchase has no observed window yet
        effect = core(sample_store, fulfilment.late_delivery_effect, END, 14, 180, START)
        assert effect.repurchase is None
        assert narrative.late_effect_reading(effect) in shown
        assert effect_table(at)["with_ticket"].tolist() == [effect.late_with_ticket, effect.on_time_with_ticket]

        nps = core(sample_store, voice.nps_after_delivery, END, start=START)
        assert narrative.delivery_nps_reading(nps) in shown
        assert nps.effect.absolute_lift < 0  # answers after a late delivery score lower (planted penalty)
        assert at.query_params == Q2

    def test_region_from_the_url_scopes_the_cards(self, sample_store, monkeypatch):
        at = open_fulfilment(sample_store, monkeypatch, **Q2, region="London")
        assert_clean(at)
        k = core(sample_store, fulfilment.fulfilment_kpis, END, START, regions=("London",)).iloc[0]
        everyone = core(sample_store, fulfilment.fulfilment_kpis, END, START).iloc[0]
        assert k.shipments < everyone.shipments
        shown = {m.label: m.value for m in at.main.metric}
        assert shown[FULFILMENT_LABELS["shipments"]] == narrative.format_value(k.shipments, "count")
        assert shown[FULFILMENT_LABELS["late_rate"]] == narrative.format_value(k.late_rate, "pct")

    def test_windows_change_the_effect_to_the_core(self, sample_store, monkeypatch):
        at = open_fulfilment(sample_store, monkeypatch, **Q2)
        before = effect_table(at)
        at.number_input(key="ful_ticket_days").set_value(7).run()
        assert_clean(at)
        effect = core(sample_store, fulfilment.late_delivery_effect, END, 7, 180, START)
        after = effect_table(at)
        assert after["ticket_shipments"].tolist() == [effect.late_ticket_shipments, effect.on_time_ticket_shipments]
        assert after["with_ticket"].tolist() == [effect.late_with_ticket, effect.on_time_with_ticket]
        assert after["ticket_rate"].tolist() != pytest.approx(before["ticket_rate"].tolist())
        assert narrative.late_effect_reading(effect) in captions(at)

        # every delivery up to the end of the period: the 90-day repurchase window is observed, with its ratio
        at.number_input(key="ful_repurchase_days").set_value(90).run()
        at.toggle(key="ful_effect_all").set_value(True).run()
        assert_clean(at)
        effect = core(sample_store, fulfilment.late_delivery_effect, END, 7, 90, None)
        assert effect.repurchase_ratio < 1  # fewer repurchases after a late delivery (planted factor 0.85)
        reading = narrative.late_effect_reading(effect)
        assert f"{effect.repurchase_ratio:.2f} times as often" in reading
        assert reading in captions(at)
        assert effect_table(at)["repurchased"].tolist() == [effect.late_repurchased, effect.on_time_repurchased]

    def test_no_shipments_gets_advice(self, con, tmp_path, monkeypatch):
        log = tmp_path / "t.csv"
        log.write_text("customer_id,date,amount\nC-1,2026-06-10,100.00\n")
        assert ingest.import_file(con, log, "transactions").outcome == "committed"
        con.close()
        at = open_fulfilment(tmp_path / "crm.duckdb", monkeypatch)
        assert_clean(at)
        assert any("No shipments for the orders placed in this period" in i.value for i in at.info)
        assert not at.main.metric
