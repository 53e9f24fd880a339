"""Goals: metric values on a hand-computed fixture, the gap decomposition, progress and status on hand-made series,
the goals table round trip, validation messages, an older store, and the sample data."""

import math
import shutil
from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest

from crm_core import goals, store
from crm_core.goals import Goal

AS_OF = date(2025, 6, 30)
# The 365 days to AS_OF are 2024-07-01..2025-06-30; the 365 before them 2023-07-02..2024-06-30 (2024 is a leap year).
_ORDERS = [
    ("1", "A", "2024-01-10 10:00", 100, False), ("2", "A", "2025-03-01 10:00", 50, False),
    ("3", "B", "2024-02-01 10:00", 100, False),
    ("4", "C", "2023-12-01 10:00", 100, False), ("5", "C", "2025-06-01 10:00", 80, False),
    ("6", "D", "2024-05-05 10:00", 100, False),
    ("7", "E", "2024-06-01 10:00", 100, False), ("8", "E", "2024-08-01 10:00", -20, True),
    ("9", "F", "2024-03-03 10:00", 100, False), ("10", "F", "2025-01-01 10:00", 30, False),
    ("11", "G", "2025-05-05 10:00", 40, False),
    ("12", None, "2025-02-02 10:00", 40, False),
]
_TICKETS = [  # normal priority: first response target 24 h
    ("T1", "A", "2025-06-01 09:00", "2025-06-01 10:00", "2025-06-02 09:00", "chat", "normal", 5),  # 1 h, met
    ("T2", "C", "2025-06-10 09:00", "2025-06-12 09:00", "2025-06-13 09:00", "email", "normal", 3),  # 48 h, breached
    ("T3", None, "2025-06-20 09:00", "2025-06-20 12:00", "2025-06-21 09:00", "phone", "normal", 4),  # 3 h, met
    ("T4", "A", "2025-03-01 09:00", "2025-03-01 10:00", "2025-03-02 09:00", "chat", "normal", 1),  # before the window
]


@pytest.fixture
def backend(con):
    con.execute("""INSERT INTO customers (customer_id, region) VALUES
        ('A', 'North'), ('B', 'North'), ('C', 'South'), ('D', 'South'), ('E', 'South'), ('F', NULL), ('G', 'North')""")
    con.executemany("INSERT INTO orders (order_id, customer_id, ordered_at, amount, is_return) VALUES (?, ?, ?, ?, ?)",
                    [list(r) for r in _ORDERS])
    con.executemany("INSERT INTO support_tickets (ticket_id, customer_id, created_at, first_response_at, resolved_at, "
                    "channel, priority, csat) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [list(r) for r in _TICKETS])
    return store.ibis_backend(con)


class TestMetricValues:
    def test_retention_rate(self, backend):
        # bought in the previous 365 days: A, B, C, D, E, F (G is new); bought again since: A, C, F
        # (E's only later order is a return) → 3 / 6
        m = goals.measure(backend, "retention_rate", AS_OF)
        assert m.value == pytest.approx(0.5)
        assert m.base == 6

    def test_churn_rate_counts_the_180th_day(self, backend):
        # last purchases: A 2025-03-01 (121 days), B 2024-02-01, C 2025-06-01, D 2024-05-05, E 2024-06-01,
        # F 2025-01-01 (exactly 180 days: churned), G 2025-05-05 → churned B, D, E, F of 7
        m = goals.measure(backend, "churn_rate", AS_OF)
        assert (m.value, m.base) == (pytest.approx(4 / 7), 7)

    def test_repeat_rate_and_revenue_per_customer(self, backend):
        # active in the 365 days: A, C, F, G; with two purchases by AS_OF: A, C, F → 3 / 4
        assert goals.metric_value(backend, "repeat_purchase_rate", AS_OF) == pytest.approx(0.75)
        # revenue 50 + 80 + 30 + 40 - 20 (E's return) + 40 (anonymous) = 220 over 4 active customers
        assert goals.metric_value(backend, "revenue_per_customer", AS_OF) == pytest.approx(55.0)

    def test_ticket_metrics(self, backend):
        # tickets created 2025-04-02..2025-06-30: T1, T2, T3 (T4 is older)
        assert goals.metric_value(backend, "csat_mean", AS_OF) == pytest.approx(4.0)  # (5 + 3 + 4) / 3
        assert goals.metric_value(backend, "first_response_hours_median", AS_OF) == pytest.approx(3.0)  # 1, 3, 48
        m = goals.measure(backend, "first_response_breach_rate", AS_OF)
        assert (m.value, m.base) == (pytest.approx(1 / 3), 3)  # T2 breached of 3 decided

    def test_region_filter(self, backend):
        # North's previous-year buyers A, B; A came back
        assert goals.metric_value(backend, "retention_rate", AS_OF, regions=["North"]) == pytest.approx(0.5)
        assert goals.metric_value(backend, "retention_rate", AS_OF, regions=["South"]) == pytest.approx(1 / 3)

    def test_no_data_is_nan_with_a_reason(self, backend):
        m = goals.measure(backend, "nps", AS_OF)
        assert math.isnan(m.value) and "survey" in m.reason
        m = goals.measure(backend, "retention_rate", date(2020, 1, 1))
        assert math.isnan(m.value) and "no customer bought" in m.reason

    def test_unfilterable_metric_says_so(self, backend):
        with pytest.raises(ValueError, match="Campaign ROI cannot be filtered by region or segment"):
            goals.metric_value(backend, "campaign_roi", AS_OF, regions=["North"])

    def test_series_has_one_value_per_month_end(self, backend):
        s = goals.metric_series(backend, "retention_rate", date(2025, 4, 15), AS_OF)
        assert list(s["period_end"].dt.date) == [date(2025, 4, 30), date(2025, 5, 31), date(2025, 6, 30)]
        assert s["value"].iloc[-1] == pytest.approx(0.5)

    def test_unknown_metric(self, backend):
        with pytest.raises(ValueError, match="Unknown metric 'sales'; choose one of: retention_rate"):
            goals.metric_value(backend, "sales", AS_OF)


def _goal(metric="retention_rate", baseline=0.40, target=0.60, start=date(2025, 1, 1), deadline=date(2025, 12, 31),
          months=()) -> Goal:
    return Goal("G1", "Test goal", metric, "Sales", start, deadline, baseline, target, tuple(months))


class TestGapDrivers:
    def test_by_region_hand_computed(self, backend):
        # retention: North {A, B} 1/2, South {C, D, E} 1/3, F without a region 1/1; overall 3/6 = 0.5
        # target 0.6: contributions North 2/6 × 0.1 = 0.0333, South 3/6 × 0.2667 = 0.1333, rest 1/6 × -0.4 = -0.0667
        d = goals.gap_drivers(backend, _goal(target=0.6), AS_OF, by="region")
        assert list(d["group"]) == ["South", "North", goals.NO_GROUP]
        assert list(d["base"]) == [3, 2, 1]
        assert list(d["value"]) == pytest.approx([1 / 3, 1 / 2, 1.0])
        assert list(d["contribution"]) == pytest.approx([0.4 / 3, 0.1 / 3, -0.4 / 6])
        assert d["contribution"].sum() == pytest.approx(0.6 - 0.5)
        assert d["share_of_gap"].sum() == pytest.approx(1.0)

    def test_lower_is_better_sorts_by_drag(self, backend):
        # breach rate: North {T1} 0, South {T2} 1, anonymous T3 0; target 0.1, overall 1/3
        d = goals.gap_drivers(backend, _goal("first_response_breach_rate", 0.5, 0.1), AS_OF, by="region")
        assert d["group"].iloc[0] == "South"
        assert d["contribution"].iloc[0] == pytest.approx(1 / 3 * (0.1 - 1))
        assert d["contribution"].sum() == pytest.approx(0.1 - 1 / 3)

    def test_by_segment_adds_up_to_the_gap(self, backend):
        d = goals.gap_drivers(backend, _goal("csat_mean", 3.5, 4.5), AS_OF)
        assert d["contribution"].sum() == pytest.approx(4.5 - 4.0)  # csat 4.0 overall
        assert d["base"].sum() == 3

    def test_anonymous_revenue_has_its_own_row(self, backend):
        # revenue per active customer 220 / 4 = 55; by region: North A + G (50 + 40) / 2 = 45, South C with E's
        # return (80 - 20) / 1 = 60, F without a region carries F's 30 and the anonymous 40: 70 / 1
        d = goals.gap_drivers(backend, _goal("revenue_per_customer", 40, 60), AS_OF, by="region").set_index("group")
        assert d.loc[["North", "South", goals.NO_GROUP], "value"].tolist() == pytest.approx([45, 60, 70])
        # by segment every active customer has one (Loyal A, F: 40; New G: 40; Champions C: 80); E's -20 (Hibernating,
        # not active) and the anonymous 40 are in no group: 20 / 4 customers = 5, a row of weight 0
        d = goals.gap_drivers(backend, _goal("revenue_per_customer", 40, 60), AS_OF).set_index("group")
        assert d.loc[["Loyal", "New", "Champions"], "value"].tolist() == pytest.approx([40, 40, 80])
        assert d.loc[goals.NO_GROUP, ["base", "contribution"]].tolist() == pytest.approx([0, -5])
        assert d["contribution"].sum() == pytest.approx(60 - 55)

    def test_metric_that_does_not_decompose(self, backend):
        d = goals.gap_drivers(backend, _goal("first_response_hours_median", 10, 4), AS_OF)
        assert d.empty and "does not split" in d.attrs["reason"]


def _series(values_by_day: dict) -> pd.DataFrame:
    return pd.DataFrame({"period_end": pd.to_datetime(list(values_by_day)), "value": list(values_by_day.values())})


def _month_ends(start: date, end: date) -> list[date]:
    return goals._period_ends(start, end, "M")


AS_OF_MID = date(2025, 6, 30)  # 180 days after the start of _goal(); the plan is at 0.40 + 0.2 × 180 / 364


class TestProgress:
    def test_steady_improvement_is_on_track(self):
        # 0.40 + 0.001 per day → 0.58 at AS_OF_MID, 0.764 at the deadline (364 days); a straight line is fitted exactly
        s = _series({d: 0.40 + 0.001 * (d - date(2025, 1, 1)).days for d in _month_ends(date(2025, 1, 1), AS_OF_MID)})
        p = goals.progress_from_series(_goal(), s, AS_OF_MID)
        assert p.current == pytest.approx(0.58)
        assert p.achieved_share == pytest.approx(0.9)  # (0.58 - 0.40) / 0.20
        assert p.planned == pytest.approx(0.40 + 0.2 * 180 / 364)
        assert p.forecast == pytest.approx(0.764)
        assert p.slope_per_month == pytest.approx(0.001 * 30.4375)
        assert p.status == "on track" and p.trend_basis == "since the start"
        assert p.forecast_low is None  # 365-day windows over 5 months: fewer than 3 independent windows
        assert "on track" in p.reading and "58.0%" in p.reading
        assert len(p.series) == 12 and p.series["actual"].notna().sum() == 6

    def test_flat_behind_plan_is_off_track(self):
        s = _series({d: 0.40 for d in _month_ends(date(2025, 1, 1), AS_OF_MID)})
        assert goals.progress_from_series(_goal(), s, AS_OF_MID).status == "off track"  # 0.099 behind, tol 0.02

    def test_flat_near_plan_is_at_risk(self):
        s = _series({d: 0.49 for d in _month_ends(date(2025, 1, 1), AS_OF_MID)})
        p = goals.progress_from_series(_goal(), s, AS_OF_MID)
        assert p.forecast == pytest.approx(0.49)
        assert p.status == "at risk"  # plan 0.4989: 0.0089 behind, within 10% of the 0.2 move

    def test_achieved(self):
        s = _series({d: 0.65 for d in _month_ends(date(2025, 1, 1), AS_OF_MID)})
        assert goals.progress_from_series(_goal(), s, AS_OF_MID).status == "achieved"

    def test_lower_is_better(self):
        churn = _goal("churn_rate", baseline=0.50, target=0.40)
        falling = _series({d: 0.50 - 0.0003 * (d - date(2025, 1, 1)).days
                           for d in _month_ends(date(2025, 1, 1), AS_OF_MID)})
        p = goals.progress_from_series(churn, falling, AS_OF_MID)
        assert p.current == pytest.approx(0.446)
        assert p.achieved_share == pytest.approx(0.54)  # (0.446 - 0.50) / (0.40 - 0.50)
        assert p.forecast == pytest.approx(0.50 - 0.0003 * 364)  # 0.3908 <= 0.40
        assert p.status == "on track"
        rising = _series({d: 0.50 + 0.0003 * (d - date(2025, 1, 1)).days
                          for d in _month_ends(date(2025, 1, 1), AS_OF_MID)})
        worse = goals.progress_from_series(churn, rising, AS_OF_MID)
        assert worse.status == "off track"
        # 0.554 now against 0.50 at the start: the reading says it moved away, not "-54% of the way"
        assert worse.achieved_share == pytest.approx(-0.54)
        assert "further from it than the baseline 50.0% was" in worse.reading

    def test_monthly_targets_set_the_plan(self):
        g = _goal(months=(("2025-03", 0.55),))
        assert goals.planned_value(g, date(2025, 3, 31)) == pytest.approx(0.55)
        # between (2025-01-01, 0.40) and (2025-03-31, 0.55): 44 of 89 days
        assert goals.planned_value(g, date(2025, 2, 14)) == pytest.approx(0.40 + 0.15 * 44 / 89)
        # after March, the line to (2025-12-31, 0.60)
        assert goals.planned_value(g, date(2025, 8, 15)) == pytest.approx(0.55 + 0.05 * 137 / 275)
        flat = _series({d: 0.50 for d in _month_ends(date(2025, 1, 1), date(2025, 3, 31))})
        assert goals.progress_from_series(g, flat, date(2025, 3, 31)).status == "off track"  # 0.05 behind 0.55
        # without the monthly target the plan at 2025-03-31 is 0.40 + 0.2 × 89 / 364 = 0.449: 0.50 is ahead
        assert goals.progress_from_series(_goal(), flat, date(2025, 3, 31)).status == "at risk"

    def test_few_points_use_the_last_12_months(self):
        # the goal started this month: the trend comes from the year before
        g = _goal(start=date(2025, 6, 15), deadline=date(2025, 12, 31))
        s = _series({d: 0.30 + 0.0005 * (d - date(2024, 7, 1)).days for d in _month_ends(date(2024, 7, 1), AS_OF_MID)})
        p = goals.progress_from_series(g, s, AS_OF_MID)
        assert p.trend_basis == "last 12 months"
        assert p.forecast == pytest.approx(0.30 + 0.0005 * (date(2025, 12, 31) - date(2024, 7, 1)).days)

    def test_interval_when_the_windows_do_not_overlap_much(self):
        # csat (90-day window) over 11 months: about 4.7 independent windows → an 80% interval around the fit
        days = _month_ends(date(2024, 8, 1), AS_OF_MID)
        noise = [0.05, -0.04, 0.02, -0.06, 0.03, 0.01, -0.02, 0.04, -0.03, 0.0, 0.02]
        s = _series({d: 3.8 + 0.01 * i + e for i, (d, e) in enumerate(zip(days, noise))})
        p = goals.progress_from_series(_goal("csat_mean", 3.8, 4.2, date(2024, 8, 1)), s, AS_OF_MID)
        assert p.forecast_low < p.forecast < p.forecast_high
        assert p.forecast_high - p.forecast_low < 1.0

    def test_no_value_at_as_of(self):
        s = _series({date(2025, 5, 31): 0.5, AS_OF_MID: float("nan")})
        p = goals.progress_from_series(_goal(), s, AS_OF_MID)
        assert p.status == "no data" and "cannot be tracked" in p.reading


HOSTILE = 'Q3 "retention"\'); DROP TABLE goals; --'


class TestStore:
    def test_round_trip_through_a_reopened_file(self, tmp_path):
        path = tmp_path / "crm.duckdb"
        con = store.connect(path)
        g = goals.create_goal(con, HOSTILE, "retention_rate", "sales", "2025-01-01", date(2025, 12, 31), 0.6,
                              baseline=0.5, monthly_targets={"2025-06": 0.55, date(2025, 9, 1): 0.58}, author="ana")
        assert g.goal_id == "G1" and g.business_unit == "Sales"
        g2 = goals.create_goal(con, "Faster answers", "first_response_hours_median", None, date(2025, 1, 1),
                               date(2025, 6, 30), 4.0, baseline=6.0)
        assert g2.goal_id == "G2" and g2.business_unit == "Support"  # the metric's default unit
        con.close()

        con = store.connect(path)
        listed = goals.list_goals(con)
        assert [x.goal_id for x in listed] == ["G2", "G1"]  # by deadline
        back = goals.get_goal(con, "G1")
        assert back.name == HOSTILE
        assert back.monthly_targets == (("2025-06", 0.55), ("2025-09", 0.58))
        assert (back.baseline, back.target, back.author) == (0.5, 0.6, "ana")
        assert back.created_at is not None
        updated = goals.update_goal(con, "G1", target=0.65, name="Retention to 65%")
        assert (updated.target, updated.baseline, updated.name) == (0.65, 0.5, "Retention to 65%")
        assert goals.list_goals(store.ibis_backend(con))[1].target == 0.65  # an Ibis backend reads it too
        assert goals.delete_goal(con, "G2") is True
        assert goals.delete_goal(con, "G2") is False
        assert goals.get_goal(con, "G2") is None
        con.close()
        con = store.connect(path)
        assert [(x.goal_id, x.target) for x in goals.list_goals(con)] == [("G1", 0.65)]
        con.close()

    def test_baseline_is_computed_at_the_start(self, backend, con):
        g = goals.create_goal(con, "Keep customers", "retention_rate", "Sales", AS_OF, date(2025, 12, 31), 0.6,
                              backend=backend)
        assert g.baseline == pytest.approx(0.5)
        moved = goals.update_goal(con, g.goal_id, metric="churn_rate", target=0.4)
        assert moved.baseline == pytest.approx(4 / 7)  # recomputed for the new metric
        kept = goals.update_goal(con, g.goal_id, start_date=date(2025, 1, 1), baseline=0.55)
        assert kept.baseline == 0.55

    def test_baseline_without_data_asks_for_one(self, con):
        with pytest.raises(ValueError, match="has no value at the start date 2025-01-01.*give the baseline"):
            goals.create_goal(con, "x", "retention_rate", "Sales", date(2025, 1, 1), date(2025, 12, 31), 0.6)

    @pytest.mark.parametrize(("kwargs", "message"), [
        ({"metric": "sales"}, "Unknown metric 'sales'; choose one of"),
        ({"business_unit": "Finance"}, "Unknown business unit 'Finance'; choose one of: Sales, Marketing, Service, "
                                       "Support"),
        ({"deadline": date(2024, 12, 31)}, "deadline 2024-12-31 is not after the start date 2025-01-01"),
        ({"target": float("nan")}, "target must be a finite number"),
        ({"target": "high"}, "target must be a number"),
        ({"name": "  "}, "Goal name is empty"),
        ({"name": "x" * 201}, "Goal name is 201 characters long; keep it to 200"),
        ({"monthly_targets": {"2026-01": 0.5}}, "Monthly target for 2026-01 is outside the goal's months 2025-01 to "
                                                "2025-12"),
        ({"monthly_targets": {"June": 0.5}}, "Monthly target month 'June' is not a month; write it as YYYY-MM"),
        ({"start_date": "01/02/2025"}, "start_date must be a date"),
    ], ids=["metric", "unit", "deadline", "nan-target", "text-target", "empty-name", "long-name", "month-outside",
            "month-text", "date-format"])
    def test_validation(self, con, kwargs, message):
        args = dict(name="Goal", metric="retention_rate", business_unit="Sales", start_date=date(2025, 1, 1),
                    deadline=date(2025, 12, 31), target=0.6, baseline=0.5)
        args.update(kwargs)
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            goals.create_goal(con, **args)
        assert goals.list_goals(con) == []

    def test_update_validation(self, con):
        g = goals.create_goal(con, "Goal", "nps", "Service", date(2025, 1, 1), date(2025, 12, 31), 30, baseline=20)
        with pytest.raises(ValueError, match="Cannot change colour"):
            goals.update_goal(con, g.goal_id, colour="red")
        with pytest.raises(ValueError, match="No goal with id 'G9'"):
            goals.update_goal(con, "G9", target=1)
        with pytest.raises(ValueError, match="is not after the start date"):
            goals.update_goal(con, g.goal_id, deadline=date(2024, 1, 1))
        assert goals.get_goal(con, g.goal_id).deadline == date(2025, 12, 31)

    def test_an_older_goals_table_still_works(self, tmp_path):
        path = tmp_path / "old.duckdb"
        raw = duckdb.connect(str(path))
        raw.execute("CREATE TABLE goals (goal_id VARCHAR, goal_name VARCHAR, metric VARCHAR, business_unit VARCHAR, "
                    "start_date DATE, deadline DATE, baseline DOUBLE, target DOUBLE, created_at TIMESTAMP)")
        raw.execute("INSERT INTO goals VALUES ('G7', 'Old goal', 'nps', 'Service', '2025-01-01', '2025-12-31', 20, "
                    "30, NULL)")
        raw.close()
        con = store.connect(path)
        (old,) = goals.list_goals(con)
        assert (old.goal_id, old.monthly_targets, old.author, old.updated_at) == ("G7", (), None, None)
        new = goals.create_goal(con, "New", "nps", None, date(2025, 1, 1), date(2025, 6, 30), 40, baseline=20,
                                monthly_targets={"2025-03": 30})
        assert new.goal_id == "G8"
        assert goals.get_goal(con, "G8").monthly_targets == (("2025-03", 30.0),)
        assert goals.update_goal(con, "G7", author="bo").author == "bo"
        con.close()


@pytest.fixture(scope="module")
def sample(sample_store, tmp_path_factory):
    """A copy of the sample store (goals are written to it)."""
    path = tmp_path_factory.mktemp("goals") / "crm.duckdb"
    shutil.copy(sample_store, path)
    con = store.connect(path)
    yield con
    con.close()


class TestSample:
    SAMPLE_AS_OF = date(2026, 6, 30)

    def test_every_metric_has_a_finite_value(self, sample):
        backend = store.ibis_backend(sample)
        values = {k: goals.measure(backend, k, self.SAMPLE_AS_OF) for k in goals.METRICS}
        assert all(math.isfinite(m.value) for m in values.values()), {k: m.reason for k, m in values.items()}
        assert 0 < values["retention_rate"].value < 1
        assert 1 <= values["csat_mean"].value <= 5
        assert -100 <= values["nps"].value <= 100
        assert values["average_clv"].value > 0

    def test_a_goal_on_the_sample_gets_a_status(self, sample):
        backend = store.ibis_backend(sample)
        g = goals.create_goal(sample, "Retention to 60%", "retention_rate", "Sales", date(2026, 1, 1),
                              date(2026, 12, 31), 0.60, backend=backend)
        p = goals.progress(backend, g, self.SAMPLE_AS_OF)
        assert p.status in ("achieved", "on track", "at risk", "off track")
        assert p.current == pytest.approx(goals.metric_value(backend, "retention_rate", self.SAMPLE_AS_OF))
        assert math.isfinite(p.forecast) and p.trend_basis == "since the start"
        assert p.series["period_end"].iloc[-1] == pd.Timestamp(2026, 12, 31)
        d = goals.gap_drivers(backend, g, self.SAMPLE_AS_OF)
        assert d["contribution"].sum() == pytest.approx(0.60 - p.current)
        assert set(d["group"]) <= {*goals.rfm_segments.SEGMENTS, goals.NO_GROUP}

    def test_a_goal_started_today_forecasts_from_the_last_year(self, sample):
        backend = store.ibis_backend(sample)
        g = Goal("X", "Fewer breaches", "first_response_breach_rate", "Support", self.SAMPLE_AS_OF - timedelta(days=10),
                 date(2026, 12, 31), 0.2, 0.1)
        p = goals.progress(backend, g, self.SAMPLE_AS_OF)
        assert p.trend_basis == "last 12 months" and math.isfinite(p.forecast)
