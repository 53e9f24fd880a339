"""The fulfilment readings in crm_core.narrative: small hand-made results and the exact sentence each must give."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from crm_core import narrative
from crm_core.campaigns import MetricLift
from crm_core.fulfilment import LateDeliveryEffect
from crm_core.voice import DELIVERY_GROUPS, DeliveryNps

NAN = float("nan")


def _kpis(**columns) -> pd.DataFrame:
    # 2 late of 8 judged: 25%, Wilson interval 7.15% to 59.07%
    base = dict(shipments=[10], delivered=[8], on_time=[6], late=[2], overdue=[1], late_rate=[0.25],
                late_rate_low=[0.0715], late_rate_high=[0.5907], avg_days_late=[1.5],
                median_order_to_ship_hours=[12.0], p90_order_to_ship_hours=[20.0],
                median_ship_to_deliver_days=[2.0], p90_ship_to_deliver_days=[4.0])
    base.update(columns)
    return pd.DataFrame(base)


def _lift(treatment, control, low, high, rel=None, rel_low=None, rel_high=None) -> MetricLift:
    return MetricLift("rate", treatment, control, treatment - control, low, high, rel, rel_low, rel_high, 0.01,
                      "interval", "test")


class TestFulfilmentReading:
    def test_counts_rate_and_delay(self):
        # 2 late of 6 + 2 = 8 judged deliveries: 25.0%
        assert narrative.fulfilment_reading(_kpis()) == (
            "Of 10 shipments, 8 were delivered: 6 on time and 2 late (25.0%, 95% interval 7.1% to 59.1%), on average "
            "1.5 days after the promised date; 1 is overdue.")

    def test_nothing_late_nothing_overdue(self):
        k = _kpis(on_time=[8], late=[0], overdue=[0], late_rate=[0.0], late_rate_low=[0.0], late_rate_high=[0.324],
                  avg_days_late=[NAN])
        assert narrative.fulfilment_reading(k) == (
            "Of 10 shipments, 8 were delivered: 8 on time and 0 late (0.0%, 95% interval 0.0% to 32.4%); none is "
            "overdue.")

    def test_no_promised_dates(self):
        k = _kpis(on_time=[0], late=[0], overdue=[0], late_rate=[NAN])
        assert narrative.fulfilment_reading(k) == (
            "Of 10 shipments, 8 were delivered, none with a promised date, so on-time delivery cannot be measured; "
            "none is overdue.")

    def test_no_shipments(self):
        assert narrative.fulfilment_reading(_kpis(shipments=[0])) == (
            "No shipments of the orders placed in the period; import shipments or widen the period.")


def _carriers(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["carrier", "on_time", "late", "late_rate", "late_rate_low", "late_rate_high"])


class TestCarrierReading:
    def test_worst_carrier_clearly_above(self):
        c = _carriers([("A", 95, 5, 0.05, 0.02, 0.11), ("B", 70, 30, 0.30, 0.22, 0.40),
                       ("C", 90, 10, 0.10, 0.05, 0.17)])
        assert narrative.highest_late_rate(c, "carrier") == "B"
        assert narrative.carrier_reading(c) == (
            "B is late most often: 30 of 100 deliveries (30.0%, 95% interval 22.0% to 40.0%), against 5.0% to 10.0% "
            "for the other carriers; its interval lies above every other carrier's.")

    def test_overlapping_intervals_with_one_other(self):
        c = _carriers([("A", 18, 2, 0.10, 0.03, 0.30), ("B", 17, 3, 0.15, 0.05, 0.36)])
        assert narrative.carrier_reading(c) == (
            "B is late most often: 3 of 20 deliveries (15.0%, 95% interval 5.0% to 36.0%), against 10.0% for A; "
            "the intervals overlap, so the gap may be chance.")

    def test_carriers_without_judged_deliveries_are_ignored(self):
        # C delivered nothing with a promised date: its NaN rate is neither the worst nor "the other carriers"
        c = _carriers([("A", 8, 2, 0.2, 0.06, 0.51), ("C", 0, 0, NAN, NAN, NAN)])
        assert narrative.highest_late_rate(c, "carrier") == "A"
        assert narrative.carrier_reading(c) == (
            "All 10 deliveries with a promised date were by A: 20.0% were late (95% interval 6.0% to 51.0%).")

    def test_a_tie_names_the_first(self):
        c = _carriers([("A", 9, 1, 0.1, 0.02, 0.4), ("B", 9, 1, 0.1, 0.02, 0.4)])
        assert narrative.highest_late_rate(c, "carrier") == "A"

    def test_nothing_judged(self):
        c = _carriers([("A", 0, 0, NAN, NAN, NAN)])
        assert narrative.highest_late_rate(c, "carrier") is None
        assert narrative.carrier_reading(c) == (
            "No delivery with a promised date in the period, so carriers cannot be compared.")


class TestRegionReading:
    def test_no_region_clearly_above(self):
        # overall: (2 + 1) / (10 + 10) = 15.0%; A's interval starts at 5.7%, below it
        r = pd.DataFrame({"region": ["A", "B"], "on_time": [8, 9], "late": [2, 1], "late_rate": [0.2, 0.1],
                          "late_rate_low": [0.057, 0.018], "late_rate_high": [0.51, 0.404]})
        assert narrative.fulfilment_region_reading(r) == (
            "The late rate is highest in A (20.0% of 10 deliveries) and lowest in B (10.0% of 10); no region's 95% "
            "interval lies wholly above the overall 15.0%, so the differences may be chance.")

    def test_two_regions_clearly_above(self):
        # overall: (30 + 30 + 10) / (100 + 100 + 1000) = 70 / 1200 = 5.8%
        r = pd.DataFrame({"region": ["A", "B", "C"], "on_time": [70, 70, 990], "late": [30, 30, 10],
                          "late_rate": [0.3, 0.3, 0.01], "late_rate_low": [0.22, 0.22, 0.005],
                          "late_rate_high": [0.4, 0.4, 0.018]})
        assert narrative.fulfilment_region_reading(r) == (
            "The late rate is highest in A (30.0% of 100 deliveries) and lowest in C (1.0% of 1,000); A and B are "
            "clearly above the overall 5.8% (their 95% interval lies above it).")

    def test_one_region_and_none(self):
        one = pd.DataFrame({"region": ["A"], "on_time": [3], "late": [1], "late_rate": [0.25],
                            "late_rate_low": [0.05], "late_rate_high": [0.7]})
        assert narrative.fulfilment_region_reading(one) == "All 4 deliveries were in A: 25.0% late."
        assert narrative.fulfilment_region_reading(one.iloc[0:0]) == (
            "No delivery with a promised date in the period, so regions cannot be compared.")


class TestMonthReading:
    def test_range_and_pending(self):
        m = pd.DataFrame({"month": pd.to_datetime(["2026-04-01", "2026-05-01"]), "shipments": [10, 12],
                          "delivered": [10, 11], "on_time": [9, 8], "late": [1, 2], "late_rate": [0.1, 0.2]})
        # May: 12 shipments, 11 delivered → 1 still on its way
        assert narrative.fulfilment_month_reading(m) == (
            "Month by month the late rate ran from 10.0% (Apr 2026) to 20.0% (May 2026); 1 shipment of May 2026's "
            "orders is not delivered yet, so that month may still change.")

    def test_one_month_all_delivered(self):
        m = pd.DataFrame({"month": pd.to_datetime(["2026-06-01"]), "shipments": [4], "delivered": [4],
                          "on_time": [3], "late": [1], "late_rate": [0.25]})
        assert narrative.fulfilment_month_reading(m) == "In Jun 2026 25.0% of 4 deliveries were late."


class TestLeadTimeReading:
    def test_both_lead_times_and_the_slowest_carrier(self):
        c = pd.DataFrame({"carrier": ["A", "B"], "median_ship_to_deliver_days": [1.5, 3.0],
                          "p90_ship_to_deliver_days": [2.0, 6.0]})
        assert narrative.lead_time_reading(_kpis(), c) == (
            "Orders left the warehouse after a median 12.0 hours (9 in 10 within 20.0) and spent a median 2.0 days "
            "in transit (9 in 10 within 4.0); B is slowest in transit (median 3.0 days, 9 in 10 within 6.0).")

    def test_nothing_delivered_yet(self):
        k = _kpis(median_ship_to_deliver_days=[NAN], p90_ship_to_deliver_days=[NAN])
        c = pd.DataFrame({"carrier": ["A", "B"], "median_ship_to_deliver_days": [NAN, NAN],
                          "p90_ship_to_deliver_days": [NAN, NAN]})
        assert narrative.lead_time_reading(k, c) == (
            "Orders left the warehouse after a median 12.0 hours (9 in 10 within 20.0).")
        k = _kpis(median_order_to_ship_hours=[NAN], median_ship_to_deliver_days=[NAN])
        assert narrative.lead_time_reading(k, c) == (
            "No shipment in the period has its ship and delivery times yet, so lead times cannot be measured.")


def _effect(ticket, repurchase, counts=(100, 40, 1000, 80, 50, 30, 500, 400)) -> LateDeliveryEffect:
    return LateDeliveryEffect(date(2026, 6, 30), 14, 180, *counts, ticket, repurchase)


class TestLateEffectReading:
    def test_difference_and_ratio(self):
        # tickets 40/100 against 80/1000; repurchase 30/50 = 0.6 against 400/500 = 0.8: ratio 0.75
        e = _effect(_lift(0.4, 0.08, 0.22, 0.41), _lift(0.6, 0.8, -0.34, -0.07, -0.25, -0.4, -0.06))
        assert e.repurchase_ratio == pytest.approx(0.75)
        assert narrative.late_effect_reading(e) == (
            "40.0% of late deliveries were followed by a ticket from the customer within 14 days, against 8.0% of "
            "on-time ones: +32.0 points (95% interval +22.0 to +41.0). 60.0% were followed by another purchase "
            "within 180 days, against 80.0%: 0.75 times as often (95% interval 0.60 to 0.94).")

    def test_no_ratio_interval_falls_back_to_points(self):
        e = _effect(_lift(0.4, 0.08, 0.22, 0.41), _lift(0.6, 0.8, -0.34, -0.07))
        assert narrative.late_effect_reading(e).endswith(
            "60.0% were followed by another purchase within 180 days, against 80.0%: -20.0 points (95% interval "
            "-34.0 to -7.0).")

    def test_windows_not_observed(self):
        # 30 Jun 2026 - 180 days = 1 Jan 2026; 30 Jun 2026 - 14 days = 16 Jun 2026
        e = _effect(_lift(0.4, 0.08, 0.22, 0.41), None, counts=(100, 40, 1000, 80, 0, 0, 0, 0))
        assert narrative.late_effect_reading(e).endswith(
            " No delivery in view has had its whole 180-day window by 30 Jun 2026 (only deliveries up to 1 Jan 2026 "
            "count), so repurchase cannot be compared: start the period earlier or shorten the window.")
        e = _effect(None, None, counts=(0, 0, 1000, 80, 50, 30, 0, 0))
        assert narrative.late_effect_reading(e) == (
            "No late delivery in view has had its whole 14-day window by 30 Jun 2026 (only deliveries up to 16 Jun "
            "2026 count), so tickets cannot be compared: start the period earlier or shorten the window. No on-time "
            "delivery in view has had its whole 180-day window by 30 Jun 2026 (only deliveries up to 1 Jan 2026 "
            "count), so repurchase cannot be compared: start the period earlier or shorten the window.")


def _nps(responses, nps, effect, excluded=0, note="") -> DeliveryNps:
    groups = pd.DataFrame({"group": list(DELIVERY_GROUPS), "responses": responses, "nps": nps})
    return DeliveryNps(date(2026, 6, 30), 7, 7, excluded, groups, effect, note)


class TestDeliveryNpsReading:
    def test_groups_and_score_gap(self):
        # late: 10 answers, NPS -40; on time: 50, +20; no recent delivery: 1, +100; mean score 2.5 points lower
        d = _nps([10, 50, 1], [-40.0, 20.0, 100.0], _lift(5.5, 8.0, -3.6, -1.4), excluded=1)
        assert narrative.delivery_nps_reading(d) == (
            "NPS is -40 in the 7 days after a late delivery (10 answers), +20 after an on-time delivery (50) and "
            "+100 with no recent delivery (1); the mean score after a late delivery is 2.5 points lower than the "
            "other answers' (95% interval -3.6 to -1.4). 1 answer given within 7 days of a support ticket is left "
            "out.")

    def test_too_few_answers_after_a_late_delivery(self):
        note = "0 answers after a late delivery and 60 others: at least 2 of each are needed to compare the scores"
        d = _nps([0, 40, 20], [NAN, 10.0, 30.0], None, note=note)
        assert narrative.delivery_nps_reading(d) == (
            "No answers in the 7 days after a late delivery; NPS is +10 after an on-time delivery (40) and +30 with "
            f"no recent delivery (20) ({note}).")

    def test_no_answers(self):
        d = _nps([0, 0, 0], [NAN, NAN, NAN], None)
        assert narrative.delivery_nps_reading(d) == (
            "No survey answers in the period; import surveys to see how deliveries move the score.")
