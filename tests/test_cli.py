"""The CLI end to end, in a subprocess, on a real DuckDB file: `python -m crm_core ...`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"


def cli(*args, db: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "CRM_DB": str(db)}
    proc = subprocess.run([sys.executable, "-m", "crm_core", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}")
    return proc


def test_import_messy_invoice_export_then_overview(tmp_path):
    db = tmp_path / "crm.duckdb"
    out = cli("import", str(FIXTURES / "online_retail_messy.csv"), "--table", "invoice_lines", "--format", "json",
              db=db)
    report = json.loads(out.stdout)
    assert report["outcome"] == "committed"
    assert (report["rows_read"], report["rows_accepted"], report["rows_rejected"]) == (17, 15, 1)
    assert report["facts"]["net revenue"] == pytest.approx(147.60)
    ov = json.loads(cli("metrics", "overview", "--as-of", "2010-12-13", "--days", "30", "--format", "json",
                        db=db).stdout)
    by_key = {row["key"]: row for row in ov}
    # all ten invoices fall in 14 Nov - 13 Dec 2010
    assert by_key["revenue"]["value"] == pytest.approx(147.60)
    # purchases: 8 invoices that are not cancellations (0-value 536414 included; 537626 nets positive)
    assert by_key["orders"]["value"] == 8
    # customers with a purchase: 17850, 13047, 18074, 12347 (anonymous orders do not count)
    assert by_key["active_customers"]["value"] == 4
    assert by_key["open_tickets"]["available"] is False


def test_refused_import_exits_nonzero_and_prints_reason(tmp_path):
    db = tmp_path / "crm.duckdb"
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    proc = cli("import", str(empty), "--table", "customers", db=db, check=False)
    assert proc.returncode == 1
    assert "REFUSED" in proc.stdout and "empty (0 bytes)" in proc.stdout


def test_map_option_and_csv_metrics(tmp_path):
    db = tmp_path / "crm.duckdb"
    src = tmp_path / "de.csv"
    src.write_text("Kunde;Datum;Betrag;Beleg\nA1;05.01.2024;10,50;B1\nA2;06.01.2024;=1+1;B2\n", encoding="utf-8")
    proc = cli("import", str(src), "--table", "orders", "--map", "Kunde=customer_id", "--map", "Datum=ordered_at",
               "--map", "Betrag=amount", "--map", "Beleg=order_id", db=db)
    assert "1 of 2 rows imported" in proc.stdout and "line 3" in proc.stdout
    csv_out = cli("metrics", "overview", "--as-of", "2024-01-31", "--format", "csv", db=db).stdout
    header, *lines = csv_out.splitlines()
    assert header.startswith("key,label,value,previous")
    revenue = next(line for line in lines if line.startswith("revenue,"))
    assert revenue.split(",")[2] == "10.5"


def test_sample_load_quality_and_history(tmp_path):
    db = tmp_path / "crm.duckdb"
    proc = cli("sample", db=db)
    assert "customers" in proc.stdout and "committed" in proc.stdout
    q = json.loads(cli("quality", "--format", "json", db=db).stdout)
    assert q["tables"]["customers"] > 4000
    hist = json.loads(cli("history", "--format", "json", db=db).stdout)
    assert {h["table_name"] for h in hist} >= {"customers", "orders", "support_tickets"}
    # re-loading the same sample changes nothing
    again = cli("sample", db=db)
    assert "unchanged" in again.stdout


def test_db_in_use_by_another_process_is_a_clear_error(tmp_path):
    import duckdb

    db = tmp_path / "crm.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(db)!r}); "
                               "print('ready', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        proc = cli("metrics", "overview", db=db, check=False)
        assert proc.returncode == 1
        assert "in use by another process" in proc.stderr
    finally:
        holder.kill()
        holder.wait()
    assert duckdb.connect(str(db)).execute("SELECT 1").fetchone() == (1,)


@pytest.fixture(scope="module")
def sample_db(sample_store, tmp_path_factory) -> Path:
    import shutil

    path = tmp_path_factory.mktemp("cli_sample") / "crm.duckdb"
    shutil.copyfile(sample_store, path)
    return path


def _core(db: Path, fn, *args, **kwargs):
    from crm_core import store

    con = store.connect(db)
    try:
        return fn(store.ibis_backend(con), *args, **kwargs)
    finally:
        con.close()


def test_segments_and_migration_equal_the_core(sample_db):
    import datetime as dt

    from crm_core import segments

    out = json.loads(cli("metrics", "segments", "--as-of", "2026-06-30", "--format", "json", db=sample_db).stdout)
    expected = _core(sample_db, segments.segment_summary, dt.date(2026, 6, 30))
    assert [r["customers"] for r in out] == expected["customers"].tolist()
    moved = cli("metrics", "migration", "--as-of", "2026-06-30", "--since", "2025-12-31", "--from-segment", "Loyal",
                "--to-segment", "At risk", "--format", "csv", db=sample_db).stdout.splitlines()
    who = _core(sample_db, segments.migration_customers, dt.date(2025, 12, 31), dt.date(2026, 6, 30), "Loyal",
                "At risk")
    assert [line.split(",")[0] for line in moved[1:]] == who["customer_id"].tolist()
    bad = cli("metrics", "migration", "--since", "2027-01-01", "--as-of", "2026-06-30", db=sample_db, check=False)
    assert bad.returncode == 2 and "must be before" in bad.stderr


def test_value_views_and_rates(sample_db):
    import datetime as dt

    from crm_core import value

    summary = {r["fact"]: r["value"] for r in json.loads(cli("metrics", "value", "--as-of", "2026-06-30",
                                                             "--ticket-cost", "email=40", db=sample_db).stdout)}
    rates = value.CostRates(ticket_cost_by_channel={**value.CostRates().ticket_cost_by_channel, "email": 40.0})
    expected = value.value_totals(_core(sample_db, value.customer_value, dt.date(2026, 6, 30), rates=rates))
    assert summary["profit"] == pytest.approx(expected.profit)
    assert summary["ticket_cost"] == pytest.approx(expected.ticket_cost)
    tiers = json.loads(cli("metrics", "value", "--view", "tiers", db=sample_db).stdout)
    assert [t["value_tier"] for t in tiers] == ["Platinum", "Gold", "Silver", "Bronze", "Loss-making"]
    bad = cli("metrics", "value", "--ticket-cost", "phone", db=sample_db, check=False)
    assert bad.returncode == 2 and "use CHANNEL=COST" in bad.stderr


def test_clusters_profiles(sample_db):
    proc = cli("metrics", "clusters", "--k", "3", "--format", "json", db=sample_db)
    profiles = json.loads(proc.stdout)
    assert len(profiles) == 3 and "k=3" in proc.stderr
    assert sum(p["customers"] for p in profiles) == 4964  # everyone with a purchase by 30 Jun 2026


def test_churn_and_cohorts(sample_db):
    import datetime as dt

    from crm_core import churn

    proc = cli("metrics", "churn", "--as-of", "2026-06-30", "--top", "5", "--format", "json", db=sample_db)
    model = _core(sample_db, churn.train_churn_model, dt.date(2026, 6, 30), 180)
    assert [r["customer_id"] for r in json.loads(proc.stdout)] == model.at_risk["customer_id"].head(5).tolist()
    assert f"out-of-time ROC AUC {model.roc_auc:.3f}" in proc.stderr
    summary = {r["fact"]: r["value"] for r in json.loads(cli("metrics", "churn", "--view", "summary",
                                                             "--inactive-days", "90", db=sample_db).stdout)}
    assert summary["churned_customers"] == _core(sample_db, churn.churn_summary, dt.date(2026, 6, 30),
                                                 90).churned_customers
    cohorts = json.loads(cli("metrics", "cohorts", "--months", "2", db=sample_db).stdout)
    assert {c["months_since"] for c in cohorts} == {0, 1, 2}
    refused = cli("metrics", "churn", "--as-of", "2024-01-01", "--inactive-days", "400", db=sample_db, check=False)
    assert refused.returncode == 2 and "Not enough history to train a churn model" in refused.stderr


def test_clv_on_an_imported_cdnow_log_reproduces_the_paper(tmp_path):
    raw = (FIXTURES / "cdnow" / "CDNOW_sample.txt").read_text().split("\n")
    rows = [line.split() for line in raw if line.strip()]  # master id, sample id, YYYYMMDD, CDs, dollars
    log = tmp_path / "cdnow.csv"
    log.write_text("customer,date,dollar_value\n" + "".join(f"{r[1]},{r[2]},{r[4]}\n" for r in rows))
    db = tmp_path / "crm.duckdb"
    cli("import", str(log), "--table", "transactions", db=db)
    proc = cli("metrics", "clv", "--as-of", "1997-09-30", "--view", "parameters", "--format", "json", db=db)
    params = {(p["model"], p["parameter"]): p["estimate"] for p in json.loads(proc.stdout)}
    published = {("BG/NBD", "r"): 0.243, ("BG/NBD", "alpha"): 4.414, ("BG/NBD", "a"): 0.793, ("BG/NBD", "b"): 2.426}
    for key, estimate in published.items():
        assert params[key] == pytest.approx(estimate, rel=0.005), key
    holdout = cli("metrics", "clv", "--as-of", "1998-06-30", "--calibration-end", "1997-09-30", "--view", "holdout",
                  db=db)
    assert "actual 1,882" in holdout.stderr  # the README's holdout repeat transactions, same-day purchases merged


def test_campaigns_lift_uplift_basket(sample_db):
    from crm_core import basket, campaigns

    summary = cli("metrics", "campaigns", "--format", "json", db=sample_db)
    rows = json.loads(summary.stdout)
    assert [r["campaign_id"] for r in rows] == [f"CMP0{i}" for i in range(1, 9)]
    assert "8 campaigns from 2023-12-05 to 2026-03-25" in summary.stderr
    lift = cli("metrics", "lift", "--campaign", "CMP07", "--format", "json", db=sample_db)
    conversion = next(r for r in json.loads(lift.stdout) if r["metric"] == "conversion_rate")
    expected = _core(sample_db, campaigns.lift, "CMP07").conversion
    assert (conversion["ci_low"], conversion["ci_high"]) == pytest.approx((expected.ci_low, expected.ci_high))
    assert "CMP07 (Loyalty voucher test)" in lift.stderr
    up = cli("metrics", "uplift", "--top", "10", "--format", "json", db=sample_db)
    assert len(json.loads(up.stdout)) == 10 and up.stderr.startswith("CMP07: observed lift")
    refused = cli("metrics", "uplift", "--campaign", "CMP01", db=sample_db, check=False)
    assert refused.returncode == 2 and "has no control group" in refused.stderr
    rules = json.loads(cli("metrics", "basket", "--level", "category", "--format", "json", db=sample_db).stdout)
    expected_rules = _core(sample_db, basket.association_rules, level="category").rules
    assert [r["lift"] for r in rules] == pytest.approx(expected_rules["lift"].tolist())


def test_support_kpis_targets_and_business_hours_equal_the_core(sample_db):
    import datetime as dt

    from crm_core import support

    as_of, start = dt.date(2026, 6, 30), dt.date(2026, 4, 1)
    rows = json.loads(cli("metrics", "support", "--as-of", "2026-06-30", "--start", "2026-04-01", "--by", "channel",
                          "--first-response-hours", "normal=12", "--business-hours", "9-17", db=sample_db).stdout)
    policy = support.SlaPolicy(first_response_hours={**support.SlaPolicy().first_response_hours, "normal": 12},
                               business_hours=support.BusinessHours(9, 17))
    expected = _core(sample_db, support.ticket_kpis, as_of, start, policy, by="channel")
    assert [r["channel"] for r in rows] == expected["channel"].tolist()
    assert [r["tickets"] for r in rows] == expected["tickets"].tolist()
    assert [r["first_response_breach_rate"] for r in rows] == pytest.approx(
        expected["first_response_breach_rate"].tolist())
    # the default policy breaches more: a 24-hour clock runs through nights and weekends
    default = _core(sample_db, support.ticket_kpis, as_of, start, by="channel")
    assert (default["first_response_breach_rate"].to_numpy() >= expected["first_response_breach_rate"].to_numpy()).all()
    backlog = cli("metrics", "support", "--view", "backlog", "--as-of", "2026-06-30", "--format", "csv", db=sample_db)
    assert backlog.stdout.splitlines()[0].startswith("age_band,open_tickets")
    core_backlog = _core(sample_db, support.backlog, as_of)
    assert f"{core_backlog.open_tickets:,} tickets open at the end of 2026-06-30" in backlog.stderr
    bad = cli("metrics", "support", "--first-response-hours", "normal", db=sample_db, check=False)
    assert bad.returncode == 2 and "use PRIORITY=HOURS" in bad.stderr
    bad = cli("metrics", "support", "--business-hours", "nine", db=sample_db, check=False)
    assert bad.returncode == 2 and "START-END" in bad.stderr


def test_service_value_gap_channels_and_actions_equal_the_core(sample_db):
    import datetime as dt

    from crm_core import service

    as_of = dt.date(2026, 6, 30)
    gap = cli("metrics", "service_value", "--view", "gap", "--as-of", "2026-06-30", db=sample_db)
    expected = service.service_gap(_core(sample_db, service.service_by_tier, as_of))
    assert expected.sentence in gap.stderr
    facts = {r["fact"]: r["value"] for r in json.loads(gap.stdout)}
    assert facts["top_breach_rate"] == pytest.approx(expected.top_breach_rate)
    channels = json.loads(cli("metrics", "service_value", "--view", "channels", "--as-of", "2026-06-30",
                              db=sample_db).stdout)
    assert channels[0]["channel"] == "email" and channels[0]["is_breach_hotspot"] is True
    actions = json.loads(cli("metrics", "service_value", "--view", "actions", "--as-of", "2026-06-30", "--top", "5",
                             db=sample_db).stdout)
    core_actions = _core(sample_db, service.action_list, as_of, limit=5)
    assert [a["customer_id"] for a in actions] == core_actions["customer_id"].tolist()


def test_nps_and_fulfilment_equal_the_core_and_name_the_planted_effects(sample_db):
    import datetime as dt

    from crm_core import fulfilment, voice

    as_of = dt.date(2026, 6, 30)
    rows = json.loads(cli("metrics", "nps", "--by", "month", "--as-of", "2026-06-30", db=sample_db).stdout)
    expected = _core(sample_db, voice.nps, as_of, by="month")
    assert [r["nps"] for r in rows] == pytest.approx(expected["nps"].tolist())
    after = cli("metrics", "nps", "--view", "after-delivery", "--as-of", "2026-06-30", db=sample_db)
    effect = _core(sample_db, voice.nps_after_delivery, as_of).effect
    assert f"{effect.absolute_lift:+.2f} points" in after.stderr and effect.absolute_lift < -2
    carriers = json.loads(cli("metrics", "fulfilment", "--by", "carrier", "--as-of", "2026-06-30",
                              db=sample_db).stdout)
    worst = max(carriers, key=lambda r: r["late_rate"])
    assert worst["carrier"] == "ParcelPoint"
    core = _core(sample_db, fulfilment.fulfilment_kpis, as_of, by="carrier")
    assert [r["late"] for r in carriers] == core["late"].tolist()
    late = cli("metrics", "fulfilment", "--view", "late-effect", "--ticket-window-days", "7", "--as-of", "2026-06-30",
               "--format", "csv", db=sample_db)
    effect = _core(sample_db, fulfilment.late_delivery_effect, as_of, ticket_window_days=7)
    assert late.stdout.splitlines()[1].split(",")[:3] == ["late", str(effect.late_ticket_shipments),
                                                          str(effect.late_with_ticket)]
    assert "tickets within 7 days" in late.stderr
    bad = cli("metrics", "nps", "--view", "themes", "--by", "month", db=sample_db, check=False)
    assert bad.returncode == 2 and "--by works with --view nps only" in bad.stderr


def test_customer_search_show_timeline_and_a_note_that_persists(sample_db):
    import datetime as dt

    from crm_core import customer360, service

    # the most urgent customer of the service action list: their profile gives the same action
    top = _core(sample_db, service.action_list, dt.date(2026, 6, 30), limit=1).iloc[0]
    email = top["email"]
    found = json.loads(cli("customer", "search", email.upper(), "--format", "json", db=sample_db).stdout)
    assert found[0]["customer_id"] == top["customer_id"] and found[0]["match"] == "e-mail"
    shown = cli("customer", "show", top["customer_id"], "--format", "json", db=sample_db)
    facts = {r["fact"]: r["value"] for r in json.loads(shown.stdout)}
    assert facts["value_tier"] == top["value_tier"] and facts["next_best_action"] == top["suggested_action"]
    assert f"next best action: {top['suggested_action']}" in shown.stderr
    events = json.loads(cli("customer", "timeline", top["customer_id"], "--limit", "5", "--format", "json",
                            db=sample_db).stdout)
    expected = _core(sample_db, customer360.timeline, top["customer_id"], limit=5)
    assert [e["source_id"] for e in events] == expected["source_id"].tolist()
    text = "Called about the open ticket'; DROP TABLE customers; --"
    cli("customer", "note", top["customer_id"], "--author", "Ana", "--text", text, db=sample_db)
    notes = _core(sample_db, customer360.notes, top["customer_id"])  # a new connection: the note was stored
    assert text in notes["note"].tolist()
    bad = cli("customer", "note", "NO-SUCH-ID", "--author", "Ana", "--text", "x", db=sample_db, check=False)
    assert bad.returncode == 2 and "the note was not saved" in bad.stderr


class _Terminal:
    """A stderr that says it is a terminal, recording what is written."""

    def __init__(self, tty: bool = True):
        self.tty, self.parts = tty, []

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_long_command_says_it_is_working_on_a_terminal_only():
    import threading

    from crm_core.cli import _working

    term, release = _Terminal(), threading.Event()
    with _working("working: metrics overview", term, delay=0.01, every=0.01):
        # wait (without a clock) until the line has been written twice, as it is while a long query runs
        for _ in range(500):
            if sum("working: metrics overview ..." in p for p in term.parts) >= 2:
                break
            release.wait(0.01)
    text = "".join(term.parts)
    assert "\rworking: metrics overview ... 0 s" in text
    assert text.endswith("\r")  # the line is erased at the end, so the result is not mixed with it
    quiet = _Terminal(tty=False)
    with _working("working: metrics overview", quiet, delay=0.0, every=0.0):
        release.wait(0.05)
    assert quiet.parts == []  # a pipe or a file gets only the result


def test_working_line_is_erased_before_the_command_writes(monkeypatch):
    import sys
    import threading

    from crm_core.cli import _working

    err, wait = _Terminal(), threading.Event()
    seen = []

    class Out(_Terminal):
        def write(self, text: str) -> int:
            seen.append(len(err.parts))  # how much of stderr was written when the result came
            return super().write(text)

    out = Out()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(sys, "stdout", out)
    with _working("working: metrics overview", delay=0.01, every=0.01):
        for _ in range(500):
            if any("working:" in p for p in err.parts):
                break
            wait.wait(0.01)
        print("revenue 1,234")  # the result, while the line is shown
        wait.wait(0.05)  # no tick may follow it
    text = "".join(err.parts)
    assert "\rworking: metrics overview ... 0 s" in text
    assert seen[0] == len(err.parts)  # nothing was drawn after the result started ...
    assert err.parts[-1].startswith("\r ") and err.parts[-1].endswith("\r")  # ... the line erased before it
    assert "".join(out.parts) == "revenue 1,234\n"
    assert sys.stderr is err and sys.stdout is out  # restored
