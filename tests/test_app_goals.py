"""AppTest: the Goals & investment page sets, edits and deletes goals in the store, shows what ``crm_core.goals``
and ``crm_core.investment`` compute, and logs every change in the audit log. Each test works on a copy of the
sample store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from crm_core import audit, goals, investment, store

APP = Path(__file__).parent.parent / "app.py"
TIMEOUT = 120
END = dt.date(2026, 6, 30)
Q2 = {"start": "2026-04-01", "end": END.isoformat()}
NEW = "FormSubmitter:goal_new-Set the goal"


pytestmark = pytest.mark.usefixtures("release_app_caches")  # the app's caches go with the module


def open_goals(db: Path, monkeypatch, **query) -> AppTest:
    """A fresh session opening ``/goals?<query>`` (a shared link or a reload)."""
    monkeypatch.setenv("CRM_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for name, value in {**Q2, **query}.items():
        at.query_params[name] = value
    at._page_hash = calc_hash("goals")
    return at.run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def stored(db: Path) -> list[goals.Goal]:
    con = store.connect(db)
    try:
        return goals.list_goals(con)
    finally:
        con.close()


def logged(db: Path) -> list[tuple[str, str]]:
    con = store.connect(db)
    try:
        log = audit.entries(con)
        return list(zip(log["action"], log["outcome"]))[::-1]  # oldest first
    finally:
        con.close()


def set_goal(at: AppTest, name: str, metric: str, target: float, deadline: dt.date | None = None) -> AppTest:
    at.text_input(key="goal_new_name").set_value(name)
    at.selectbox(key="goal_new_metric").set_value(metric)
    at.number_input(key="goal_new_target").set_value(target)
    if deadline is not None:
        at.date_input(key="goal_new_deadline").set_value(deadline)
    return at.button(key=NEW).click().run()


def test_a_goal_set_on_the_page_is_stored_measured_and_survives_a_reload(store_copy, monkeypatch):
    at = open_goals(store_copy, monkeypatch)
    assert_clean(at)
    assert [i.value for i in at.info] == ["No goals yet. Set the first one above: a metric, a target and a deadline."]
    at = set_goal(at, "Lift retention to 60%", "retention_rate", 60.0)
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    (goal,) = stored(store_copy)
    # typed as a percentage, stored as a fraction; the baseline is the metric at the start date (as_of - 90 days)
    assert (goal.name, goal.metric, goal.target, goal.start_date) == (
        "Lift retention to 60%", "retention_rate", pytest.approx(0.60), END - dt.timedelta(days=90))
    con = store.connect(store_copy)
    try:
        backend = store.ibis_backend(con)
        assert goal.baseline == pytest.approx(goals.metric_value(backend, "retention_rate", goal.start_date))
        expected = goals.progress(backend, goal, END)
    finally:
        con.close()
    assert [s.value for s in at.success] == [f"Saved “Lift retention to 60%” (baseline "
                                             f"{goals.format_value('retention_rate', goal.baseline)})."]
    cards = {m.label: m.value for m in at.main.metric}
    fmt = lambda x: goals.format_value("retention_rate", x)  # noqa: E731
    assert cards == {"Baseline": fmt(expected.baseline), "Now": fmt(expected.current),
                     "Planned now": fmt(expected.planned), "Forecast at deadline": fmt(expected.forecast),
                     "Target": "60.0%"}
    assert expected.reading in [c.value for c in at.caption]
    assert logged(store_copy) == [("goal_create", "ok")]

    again = open_goals(store_copy, monkeypatch)  # a reload is a new session: the goal comes from the database
    assert_clean(again)
    summary = again.dataframe[0].value
    assert list(summary["name"]) == ["Lift retention to 60%"]
    assert summary["status"].iloc[0].endswith(expected.status)


def test_a_bad_goal_shows_the_reason_and_stores_nothing(store_copy, monkeypatch):
    at = open_goals(store_copy, monkeypatch)
    at = set_goal(at, "Churn down", "churn_rate", 20.0, deadline=END - dt.timedelta(days=200))
    assert_clean(at)
    assert len(at.error) == 1 and "is not after the start date" in at.error[0].value
    assert stored(store_copy) == []
    assert logged(store_copy) == [("goal_create", "failed")]
    at = set_goal(at, "   ", "churn_rate", 20.0, deadline=END + dt.timedelta(days=100))
    assert [e.value for e in at.error] == ["Goal name is empty; say what the goal is, e.g. 'Lift retention to 55%'."]
    assert stored(store_copy) == []


def test_a_goal_is_edited_and_deleted_from_the_page(store_copy, monkeypatch):
    con = store.connect(store_copy)
    try:
        goal = goals.create_goal(con, "CSAT to 4.5", "csat_mean", "Service", END - dt.timedelta(days=60),
                                 END + dt.timedelta(days=120), 4.5)
    finally:
        con.close()
    at = open_goals(store_copy, monkeypatch)
    assert_clean(at)
    key = f"goal_edit_{goal.goal_id}"
    at.number_input(key=f"{key}_target").set_value(4.2)
    at.text_area(key=f"{key}_monthly").set_value(f"{END:%Y-%m}: 4.1\n{END + dt.timedelta(days=31):%Y-%m}: 4.15")
    at = at.button(key=f"FormSubmitter:{key}-Save changes").click().run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    (edited,) = stored(store_copy)
    assert edited.target == pytest.approx(4.2) and edited.baseline == pytest.approx(goal.baseline)
    assert edited.monthly_targets == ((f"{END:%Y-%m}", 4.1), (f"{END + dt.timedelta(days=31):%Y-%m}", 4.15))
    # a malformed monthly line names the line and stores nothing
    at.text_area(key=f"{key}_monthly").set_value("2026-07 4.1")
    at = at.button(key=f"FormSubmitter:{key}-Save changes").click().run()
    assert [e.value for e in at.error] == ["Monthly targets, line 1: write 'YYYY-MM: value', got '2026-07 4.1'."]
    assert stored(store_copy) == [edited]
    # delete needs the confirmation box
    assert at.button(key=f"goal_delete_{goal.goal_id}").disabled
    at.checkbox(key=f"goal_sure_{goal.goal_id}").check().run()
    at = at.button(key=f"goal_delete_{goal.goal_id}").click().run()
    assert_clean(at)
    assert stored(store_copy) == []
    assert [s.value for s in at.success] == ["Deleted “CSAT to 4.5”."]
    assert logged(store_copy) == [("goal_update", "ok"), ("goal_update", "failed"), ("goal_delete", "ok")]


def test_the_investment_case_shows_the_core_numbers_for_the_inputs(sample_store, monkeypatch):
    at = open_goals(sample_store, monkeypatch)
    at.session_state["goals_tab"] = "Investment case"  # as a click on the tab does (only the open tab runs)
    at = at.run()
    at.number_input(key="w_inv_one_off").set_value(80_000.0)
    at.number_input(key="w_inv_churn").set_value(3.0)
    at = at.run()
    assert_clean(at)
    con = store.connect(sample_store)
    try:
        base = investment.baselines(store.ibis_backend(con), END)
    finally:
        con.close()
    case = investment.investment_case(
        base, investment.Programme(one_off_cost=80_000, yearly_cost=5_000, horizon_months=36,
                                   discount_rate_annual=0.08, ramp_up_months=6),
        investment.Improvements(churn_pts=3.0, conversion_pts=1.0, support_cost_pct=10.0, aov_pct=0.0))
    cards = {m.label: m.value for m in at.main.metric}
    assert cards["NPV"] == f"{case.npv:,.0f}"
    assert cards["Total cost"] == f"{case.total_cost:,.0f}"
    assert cards["Payback"] == ("not within the horizon" if case.payback_month is None
                                else f"month {case.payback_month}")
    assert investment.reading(case) in [c.value for c in at.caption]


def test_investment_inputs_outlive_a_switch_to_another_tab(sample_store, monkeypatch):
    at = open_goals(sample_store, monkeypatch)
    at.session_state["goals_tab"] = "Investment case"
    at = at.run()
    at.number_input(key="w_inv_yearly").set_value(12_345.0)
    at = at.run()
    at.session_state["goals_tab"] = "Board pack"  # the inputs are not drawn in this run
    at = at.run()
    assert at.session_state["inv_yearly"] == 12_345.0
    at.session_state["goals_tab"] = "Investment case"
    at = at.run()
    assert_clean(at)
    assert at.number_input(key="w_inv_yearly").value == 12_345.0
