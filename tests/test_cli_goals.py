"""CLI: ``goals`` and ``invest`` print what ``crm_core.goals`` and ``crm_core.investment`` compute, goal changes are
stored and audited, and ``report --invest`` puts a stored goal and the investment case in the board pack."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pypdf
import pytest

from crm_core import audit, goals, investment, report, store
from crm_core.cli import main

AS_OF = dt.date(2026, 6, 30)
TINY_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVO"
                            "RK5CYII=")


@pytest.fixture
def db(sample_store, tmp_path) -> Path:
    path = tmp_path / "crm.duckdb"
    shutil.copyfile(sample_store, path)
    return path


def run_json(capsys, *argv) -> object:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_goal_add_list_progress_update_delete(db, capsys):
    d = ["--db", str(db)]
    added = run_json(capsys, *d, "goals", "add", "Churn under 45%", "--metric", "churn_rate", "--start",
                     "2026-03-31", "--deadline", "2026-12-31", "--target", "45%", "--monthly", "2026-09=0.47",
                     "--author", "Ana", "--format", "json")
    con = store.connect(db)
    try:
        backend = store.ibis_backend(con)
        baseline = goals.metric_value(backend, "churn_rate", dt.date(2026, 3, 31))
        (goal,) = goals.list_goals(con)
        expected = goals.progress(backend, goal, AS_OF)
    finally:
        con.close()
    assert added["goal_id"] == goal.goal_id == "G1"
    assert added["target"] == pytest.approx(0.45)  # "45%" is a percentage of a rate metric
    assert added["baseline"] == pytest.approx(baseline)
    assert added["monthly_targets"] == {"2026-09": 0.47}

    listed = run_json(capsys, *d, "goals", "list", "--as-of", "2026-06-30", "--format", "json")
    assert [(g["name"], g["status"]) for g in listed] == [("Churn under 45%", expected.status)]
    assert listed[0]["forecast"] == pytest.approx(expected.forecast)

    shown = run_json(capsys, *d, "goals", "progress", "G1", "--as-of", "2026-06-30", "--drivers", "region",
                     "--format", "json")
    assert shown["reading"] == expected.reading
    assert len(shown["series"]) == len(expected.series)
    gap = goal.target - expected.current
    assert sum(r["contribution"] for r in shown["drivers"]) == pytest.approx(gap)  # contributions add up to the gap

    updated = run_json(capsys, *d, "goals", "update", "G1", "--target", "0.44", "--clear-monthly",
                       "--format", "json")
    assert (updated["target"], updated["monthly_targets"], updated["baseline"]) == (
        pytest.approx(0.44), {}, pytest.approx(baseline))
    assert main([*d, "goals", "delete", "G1"]) == 0
    assert main([*d, "goals", "delete", "G1"]) == 1
    con = store.connect(db)
    try:
        assert goals.list_goals(con) == []
        log = audit.entries(con)
        assert list(log["action"])[::-1] == ["goal_create", "goal_update", "goal_delete"]
        assert log["actor"].iloc[-1] == "Ana"
    finally:
        con.close()


@pytest.mark.parametrize("argv, message", [
    (["add", "x", "--metric", "nope", "--start", "2026-01-01", "--deadline", "2026-02-01", "--target", "1"],
     "Unknown metric 'nope'"),
    (["add", "x", "--metric", "nps"], "goals add needs --start, --deadline, --target"),
    (["add", "x", "--metric", "nps", "--start", "2026-05-01", "--deadline", "2026-04-01", "--target", "10"],
     "is not after the start date"),
    (["update", "G9", "--target", "1"], "No goal with id 'G9'"),
])
def test_goal_errors_are_clear_and_store_nothing(db, capsys, argv, message):
    assert main(["--db", str(db), "goals", *argv]) == 2
    assert message in capsys.readouterr().err
    con = store.connect(db)
    try:
        assert goals.list_goals(con) == []
    finally:
        con.close()


def test_invest_prints_the_core_case(db, capsys):
    out = run_json(capsys, "--db", str(db), "invest", "--one-off", "20000", "--yearly", "6000", "--churn-pts", "3",
                   "--as-of", "2026-06-30", "--format", "json")
    con = store.connect(db)
    try:
        base = investment.baselines(store.ibis_backend(con), AS_OF)
    finally:
        con.close()
    case = investment.investment_case(
        base, investment.Programme(one_off_cost=20_000, yearly_cost=6_000, horizon_months=36,
                                   discount_rate_annual=0.08, ramp_up_months=6),
        investment.Improvements(churn_pts=3, conversion_pts=1, support_cost_pct=10, aov_pct=0))
    assert out["npv"] == pytest.approx(case.npv)
    assert out["payback_month"] == case.payback_month
    assert out["reading"] == investment.reading(case)
    assert main(["--db", str(db), "invest", "--churn-pts", "99"]) == 2  # more than the churn rate
    assert "churn" in capsys.readouterr().err.lower()


def test_report_with_a_stored_goal_and_the_investment_case(db, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(report, "chart_images",
                        lambda pack, **_: tuple(TINY_PNG if s.figure is not None else None for s in pack.sections))
    assert main(["--db", str(db), "goals", "add", "Lift NPS to 40", "--metric", "nps", "--start", "2026-03-31",
                 "--deadline", "2026-12-31", "--target", "40"]) == 0
    out = tmp_path / "pack.pdf"
    assert main(["--db", str(db), "report", "--out", str(out), "--as-of", "2026-06-30", "--invest",
                 "--one-off", "15000"]) == 0
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(out).pages)
    assert "Lift NPS to 40" in text
    assert "NPV" in text and "15,000" in text
    assert re.search(r"board pack of 12 sections", capsys.readouterr().err)

