"""Audit log: events are appended with bound values, read back newest first, and survive a reopen."""

from __future__ import annotations

from datetime import datetime

import pytest

from crm_core import audit, store


def test_events_round_trip_newest_first_across_a_reopen(tmp_path):
    path = tmp_path / "crm.duckdb"
    con = store.connect(path)
    audit.record(con, "import", actor="ana@example.com", target="orders", detail="1,000 rows",
                 at=datetime(2026, 3, 1, 9, 0))
    audit.record(con, "goal_create", actor="  ", target="G1", at=datetime(2026, 3, 2, 10, 30))
    hostile = "x'); DROP TABLE audit_log; --"
    audit.record(con, "export", actor=hostile, target="customers.csv", outcome="denied",
                 at=datetime(2026, 3, 3, 11, 0))
    con.close()

    con = store.connect(path, read_only=True)
    try:
        log = audit.entries(con)
        assert list(log["action"]) == ["export", "goal_create", "import"]
        assert list(log["actor"]) == [hostile, audit.ANONYMOUS, "ana@example.com"]  # blank actor = anonymous
        assert list(log["outcome"]) == ["denied", "ok", "ok"]
        assert log["occurred_at"].iloc[2] == datetime(2026, 3, 1, 9, 0)
        assert list(audit.entries(con, action="import")["detail"]) == ["1,000 rows"]
        assert len(audit.entries(con, actor=hostile)) == 1
        assert len(audit.entries(con, limit=2)) == 2
    finally:
        con.close()


def test_a_store_without_a_log_reads_empty(tmp_path):
    con = store.connect(tmp_path / "crm.duckdb")
    con.close()
    con = store.connect(tmp_path / "crm.duckdb", read_only=True)
    try:
        log = audit.entries(con)
        assert log.empty and tuple(log.columns) == audit.COLUMNS
    finally:
        con.close()


def test_long_text_is_cut_and_unknown_actions_refused(tmp_path):
    con = store.connect(tmp_path / "crm.duckdb")
    try:
        audit.record(con, "import", detail="x" * 5000)
        assert len(audit.entries(con)["detail"].iloc[0]) == audit.MAX_TEXT
        with pytest.raises(ValueError, match="Unknown audit action 'drop'"):
            audit.record(con, "drop")
        with pytest.raises(ValueError, match="Unknown audit outcome 'maybe'"):
            audit.record(con, "import", outcome="maybe")
        assert len(audit.entries(con)) == 1
    finally:
        con.close()
