"""Crash safety of the import: a process killed (SIGKILL) in the middle of a large import leaves the store as it was.

One store (a copy of the bundled sample) is imported into again and again by a child process that is killed at a
seeded random moment of each phase of the import — reading, staging, checking values, the write inside the
transaction, the COMMIT (with DuckDB's checkpoint) and after the COMMIT. After every kill the store must open
read-write, hold either exactly the previous orders or exactly the whole file (never a mix), keep every other
table, hold no staging table, and its import log must tell the truth: an interrupted import leaves no row (the log
row is written inside the commit's transaction), a committed one leaves exactly one.

Time is never asserted: the kill moments are read from the child's progress lines, not from a clock.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from crm_core import ingest, store
from crm_core.schema import TABLES

REPO = Path(__file__).parent.parent
N_ROWS = 1_200_000
SEED = 20260901

# The child: open the store, import with progress lines, say RESULT, then wait to be killed (never close cleanly,
# so a kill after the COMMIT also finds the data in the WAL, not yet in a cleanly closed file).
CHILD = """
import sys
from crm_core import ingest, store
con = store.connect(sys.argv[1])
print("OPEN", flush=True)
report = ingest.import_file(con, sys.argv[2], "orders", mode="replace",
                            progress=lambda f, m: print("PROGRESS", m, flush=True))
print("RESULT", report.outcome, report.message, flush=True)
sys.stdin.read()
con.close()
"""

# Phase markers in the order the import prints them; a kill aimed at a phase lands between its marker and the next.
PHASES = ("reading file", "loading rows", "checking values", "committing", "done", "RESULT")
# (phase, fraction of the phase's measured length within which the kill lands). A kill in each phase, more at the
# start of the COMMIT: "done" is printed just before the import-log row and COMMIT, and a kill in the first tens of
# milliseconds of that COMMIT once reopened a half-applied replace (DuckDB's optimistic writes; store.connect now
# turns them off).
PLAN = (("loading rows", 1.0), ("checking values", 1.0), ("committing", 1.0), ("done", 0.2), ("RESULT", 1.0),
        ("done", 0.2), ("done", 1.0))

CHECKSUM = ("SELECT count(*), sum(CAST(round(amount * 100) AS BIGINT)), min(order_id), max(order_id), "
            "bit_xor(hash(order_id, customer_id, ordered_at, amount, channel)) FROM {src}")


def write_orders_csv(path: Path, prefix: str, n: int, salt: int) -> None:
    """A large orders export streamed to disk by DuckDB (no pandas): ids ``<prefix>00000001`` ... one per minute."""
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT $prefix || lpad(CAST(i + 1 AS VARCHAR), 8, '0') AS order_id, "
            f"'C' || lpad(CAST((i * 31 + $salt) % 50000 AS VARCHAR), 6, '0') AS customer_id, "
            f"TIMESTAMP '2024-01-01' + to_minutes(i) AS order_date, "
            f"round(((i * 7919 + $salt) % 100000) / 100.0, 2) AS amount, "
            f"CASE i % 3 WHEN 0 THEN 'web' WHEN 1 THEN 'store' ELSE 'phone' END AS channel "
            f"FROM range({int(n)}) t(i)) TO '{path}' (HEADER, DELIMITER ',')",
            {"prefix": prefix, "salt": salt},
        )


def file_checksum(path: Path) -> tuple:
    """The orders checksum of the CSV itself, read with the canonical types (independent of the importer)."""
    cols = {"order_id": "VARCHAR", "customer_id": "VARCHAR", "ordered_at": "TIMESTAMP", "amount": "DOUBLE",
            "channel": "VARCHAR"}
    with duckdb.connect() as con:
        src = "read_csv($path, columns = $columns, header = true, auto_detect = false)"
        return con.execute(CHECKSUM.format(src=src), {"path": str(path), "columns": cols}).fetchone()


def snapshot(con) -> dict:
    """What must survive a kill: the orders checksum, every other table's row count, the import log."""
    return {
        "orders": con.execute(CHECKSUM.format(src="orders")).fetchone(),
        "others": {t: store.table_count(con, t) for t in TABLES if t != "orders"},
        "log": con.execute("SELECT import_id, file_sha256, table_name, outcome, finished_at FROM import_log "
                           "ORDER BY started_at, import_id").fetchall(),
    }


class Child:
    """The importing child process; its stdout lines are collected by a thread as they arrive."""

    def __init__(self, db: Path, csv: Path, stderr: Path):
        self._err = open(stderr, "wb")  # noqa: SIM115 - closed in finish()
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(csv)], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err, text=True)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stderr_path = stderr

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.strip()))

    def seen(self, marker: str) -> float | None:
        """When ``marker`` (a phase name or RESULT) first appeared, else None."""
        for at, line in list(self.lines):
            if line == f"PROGRESS {marker}" or (marker == "RESULT" and line.startswith("RESULT")):
                return at
        return None

    def wait_for(self, marker: str, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while (at := self.seen(marker)) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.finish(kill=True)
                pytest.fail(f"the import never reached {marker!r}; output {self.lines}; "
                            f"stderr {self.stderr_path.read_text()[-2000:]}")
            time.sleep(0.002)
        return at

    def finish(self, kill: bool) -> int:
        if kill:
            self.proc.send_signal(signal.SIGKILL)
        else:
            self.proc.stdin.close()
        code = self.proc.wait(timeout=120)
        self._reader.join(timeout=10)
        self._err.close()
        return code


@pytest.fixture
def big_files(tmp_path) -> dict[str, tuple[Path, tuple]]:
    """Two large orders exports A and B (different ids and amounts) and their checksums."""
    folder = tmp_path / "exports"
    folder.mkdir()
    out = {}
    for prefix, salt in (("A", 17), ("B", 4242)):
        path = folder / f"orders_{prefix}.csv"
        write_orders_csv(path, prefix, N_ROWS, salt)
        out[prefix] = (path, file_checksum(path))
    return out


def test_store_writes_through_the_wal(tmp_path):
    """The crash-safety setting: a read-write store keeps large inserts out of the file until COMMIT."""
    with store.connect(tmp_path / "crm.duckdb") as con:
        assert con.execute("SELECT current_setting('enable_optimistic_write')").fetchone()[0] is False


def test_big_files_are_what_they_claim(big_files):
    """The checksums the crash test compares with: 1,200,000 distinct rows each, ids A00000001..A01200000."""
    sum_a, sum_b = big_files["A"][1], big_files["B"][1]
    assert sum_a[0] == sum_b[0] == N_ROWS
    assert sum_a[2:4] == ("A00000001", "A01200000") and sum_b[2:4] == ("B00000001", "B01200000")
    # amount cents = (i * 7919 + salt) % 100000 for i in 0..N-1, summed here in Python as a cross-check
    assert sum_a[1] == sum((i * 7919 + 17) % 100_000 for i in range(N_ROWS))
    assert sum_a != sum_b


@pytest.mark.slow
def test_sigkill_during_import_leaves_the_store_whole(tmp_path, sample_store, big_files):
    db = tmp_path / "store" / "crm.duckdb"
    db.parent.mkdir()
    shutil.copy(sample_store, db)
    with store.connect(db) as con:
        before = snapshot(con)
    assert before["orders"][0] > 10_000  # the sample's orders (~20k): distinct from both big files
    states = {"sample": before["orders"], "A": big_files["A"][1], "B": big_files["B"][1]}

    # A full import, to learn how long each phase takes (kill moments are drawn inside these windows).
    ref_db = tmp_path / "ref" / "crm.duckdb"
    ref_db.parent.mkdir()
    shutil.copy(sample_store, ref_db)
    ref = Child(ref_db, big_files["A"][0], tmp_path / "ref.err")
    times = {m: ref.wait_for(m) for m in PHASES}
    assert ref.finish(kill=False) == 0
    assert any(line.startswith("RESULT committed") for _, line in ref.lines), ref.lines
    window = {m: times[nxt] - times[m] for m, nxt in zip(PHASES, PHASES[1:])}
    window["RESULT"] = 0.2
    with store.connect(ref_db) as con:
        assert con.execute(CHECKSUM.format(src="orders")).fetchone() == states["A"]

    rng = random.Random(SEED)
    current = "sample"
    outcomes = []
    for trial, (phase, fraction) in enumerate(PLAN):
        target = "B" if current == "A" else "A"
        delay = rng.uniform(0, fraction * window[phase])
        child = Child(db, big_files[target][0], tmp_path / f"trial{trial}.err")
        child.wait_for(phase)
        time.sleep(delay)
        assert child.finish(kill=True) == -signal.SIGKILL, child.stderr_path.read_text()[-2000:]
        # Read after the kill: a line the child flushed before dying is in the pipe, so a missing "committing"
        # means the transaction never began, and a RESULT line means COMMIT had returned.
        committing_seen = child.seen("committing") is not None
        result_seen = child.seen("RESULT") is not None
        where = f"trial {trial}: killed {delay:.3f} s into {phase!r} (last line {child.lines[-1][1]!r})"

        # The store opens read-write (DuckDB replays or discards its WAL) and the file lock died with the child.
        with store.connect(db) as con:
            after = snapshot(con)
            staging = con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'crm\\_%' ESCAPE '\\' "
                "UNION ALL SELECT view_name FROM duckdb_views() WHERE view_name LIKE 'crm\\_%' ESCAPE '\\'"
            ).fetchall()
        assert staging == [], where

        # Orders are exactly the previous data or exactly the whole file, never a mix.
        assert after["orders"] in (states[current], states[target]), where
        committed = after["orders"] == states[target]
        if not committing_seen:
            assert not committed, where  # nothing is written before the transaction starts
        if result_seen:
            assert committed, where  # a reported commit survives the kill
        assert after["others"] == before["others"], where

        # The log: one new 'committed' row naming the file if and only if the data changed, nothing otherwise
        # (no row stuck "in progress"; every row finished).
        new_rows = after["log"][len(before["log"]):]
        assert after["log"][: len(before["log"])] == before["log"], where
        assert all(r[3] in ("committed", "refused", "unchanged") and r[4] is not None for r in after["log"]), where
        if committed:
            assert [(r[2], r[3]) for r in new_rows] == [("orders", "committed")], where
            current = target
        else:
            assert new_rows == [], where
        before = after
        outcomes.append((phase, "committed" if committed else "rolled back"))

    # Kills before the commit rolled back; the one after RESULT kept its commit.
    assert [o for p, o in outcomes if p in ("loading rows", "checking values")] == ["rolled back"] * 2
    assert ("RESULT", "committed") in outcomes

    # The store takes the next import normally (no lock left behind, no stale staging names).
    target = "B" if current == "A" else "A"
    with store.connect(db) as con:
        report = ingest.import_file(con, big_files[target][0], "orders", mode="replace")
        assert report.outcome == "committed", report.message
        assert report.rows_accepted == N_ROWS
        assert con.execute(CHECKSUM.format(src="orders")).fetchone() == states[target]
        assert snapshot(con)["others"] == before["others"]
    # A torn WAL left by a kill is ignored when the store opens and replaced by the next write: once the store is
    # closed cleanly nothing is left beside the database file (no WAL, no temp spill folder).
    assert sorted(p.name for p in db.parent.iterdir()) == ["crm.duckdb"]
