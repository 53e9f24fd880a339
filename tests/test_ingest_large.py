"""The import at a size where DuckDB reads a file in parallel (several 32 MB buffers), and the paths that only large
files take: the date format chosen from the first 20,000 rows and confirmed (or re-chosen) on every value, and a
replaced table staged inside the import's transaction and swapped in at commit.

Expected numbers come from how each file is built (comments); no time is measured.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from crm_core import ingest

REPO = Path(__file__).parent.parent
N = 700_000  # ~42 MB: more than one 32 MB read buffer

# Planted problems, by row number i (1-based; row i is on line i + 1 until the blank line after line 400,000):
BAD_AMOUNT, BAD_DATE, NO_DATE = 100_000, 300_000, 500_000
EXACT_COPY_OF, EXACT_AT = 10, 650_000  # row 650,000 repeats row 10 exactly
KEY_OF, KEY_AT = 20, 690_000  # row 690,000 repeats row 20's order id with amount 777.25
BLANK_AFTER_LINE = 400_000


@pytest.fixture(scope="module")
def big_orders(tmp_path_factory) -> Path:
    """700,000 orders O0000001 ... with the planted problems above and a blank line after line 400,000."""
    folder = tmp_path_factory.mktemp("large")
    plain, path = folder / "plain.csv", folder / "orders.csv"
    with duckdb.connect() as con:
        con.execute(f"""COPY (
            SELECT CASE WHEN i = {KEY_AT} THEN 'O' || lpad('{KEY_OF}', 7, '0')
                        ELSE 'O' || lpad(CAST(j AS VARCHAR), 7, '0') END AS order_id,
                   'C' || CAST(j % 5000 AS VARCHAR) AS customer_id,
                   CASE WHEN i = {BAD_DATE} THEN '2024-13-45 10:00:00' WHEN i = {NO_DATE} THEN ''
                        ELSE strftime(TIMESTAMP '2023-01-01' + to_minutes(j), '%Y-%m-%d %H:%M:%S') END AS ordered_at,
                   CASE WHEN i = {BAD_AMOUNT} THEN 'twelve' WHEN i = {KEY_AT} THEN '777.25'
                        ELSE CAST((j % 1000) / 4 AS VARCHAR) END AS amount,
                   'web' AS channel
            FROM (SELECT i, CASE WHEN i = {EXACT_AT} THEN {EXACT_COPY_OF} ELSE i END AS j FROM range(1, {N} + 1) t(i))
            ) TO '{plain}' (HEADER, DELIMITER ',', QUOTE '')""")
    with open(plain, "rb") as src, open(path, "wb") as out:
        for n, line in enumerate(src, start=1):
            out.write(line)
            if n == BLANK_AFTER_LINE:
                out.write(b"\n")
    plain.unlink()
    return path


def stored(con) -> tuple:
    return con.execute("SELECT count(*), count(DISTINCT order_id), sum(amount), "
                       "max(amount) FILTER (WHERE order_id = 'O0000020') FROM orders").fetchone()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["replace", "append"])
def test_planted_problems_found_on_their_lines(con, big_orders, mode):
    if mode == "append":  # the temp-table path: a row already stored stays, the file's new keys are added
        con.execute("INSERT INTO orders (order_id, amount) VALUES ('X1', 1.0)")
    r = ingest.import_file(con, big_orders, "orders", mode=mode)
    assert r.outcome == "committed", r.message
    # read 700,000 = accepted 699,995 + 3 rejected + 1 exact duplicate + 1 repeated key
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (N, N - 5, 3)
    assert (r.exact_duplicates, r.duplicate_keys, r.duplicate_key_examples) == (1, 1, ("O0000020",))
    # rows after the blank line (after line 400,000) sit one line further down: row 500,000 is on line 500,002
    assert [(x.line, x.column, x.reason, x.value) for x in r.rejected] == [
        (100_001, "amount", "not a number", "twelve"),
        (300_001, "ordered_at", "not a date in the format YYYY-MM-DD used by this column", "2024-13-45 10:00:00"),
        (500_002, "ordered_at", "required value is missing", None),
    ]
    count, ids, total, kept = stored(con)
    extra = 1 if mode == "append" else 0
    assert (count, ids) == (N - 5 + extra, N - 5 + extra)
    # amounts are (i % 1000) / 4: each residue 0..999 occurs 700 times in 1..700,000, so the file sums to
    # 700 * (0 + ... + 999) / 4 = 700 * 499,500 / 4 = 87,412,500; less the rejected/dropped rows' amounts
    # (row 100,000 'twelve' and row 500,000 rejected: 0 and 0; row 300,000: 0; row 650,000 (copy of row 10): 2.5;
    # row 690,000's 0 was replaced by 777.25, which is kept instead of row 20's 5.0), plus X1's 1.0 in append
    assert total == pytest.approx(87_412_500 - 2.5 - 5.0 + 777.25 + extra * 1.0)
    assert kept == 777.25  # the last occurrence of a repeated key is kept


def write_orders(path: Path, dates: list[str]) -> Path:
    path.write_text("order_id,ordered_at,amount\n" + "".join(f"O{i},{d},1\n" for i, d in enumerate(dates)))
    return path


class TestDateFormatOnEveryValue:
    """The first 20,000 rows choose a date format before the load; every value confirms it or it is re-chosen."""

    def test_iso_first_rows_then_day_first_rows_are_read_again_day_first(self, con, tmp_path):
        # 25,000 ISO dates then 35,000 day-first: on all values DD/MM/YYYY fails fewer (25,000 < 35,000)
        dates = ["2024-01-02"] * 25_000 + ["25/12/2024"] * 35_000
        r = ingest.import_file(con, write_orders(tmp_path / "o.csv", dates), "orders")
        assert r.detected["date_format[ordered_at]"] == "DD/MM/YYYY"
        assert (r.rows_accepted, r.rows_rejected) == (35_000, 25_000)
        assert (r.rejected[0].line, r.rejected[0].value) == (2, "2024-01-02")
        assert con.execute("SELECT DISTINCT ordered_at FROM orders").fetchall() == [
            (dt.datetime(2024, 12, 25),)]

    def test_day_first_settled_only_after_the_first_rows(self, con, tmp_path):
        # 30,000 dates read both ways (3/4/2024) before one settles it (13/04/2024 can only be day-first)
        dates = ["03/04/2024"] * 30_000 + ["13/04/2024"]
        r = ingest.import_file(con, write_orders(tmp_path / "o.csv", dates), "orders")
        assert r.outcome == "committed" and r.detected["date_format[ordered_at]"] == "DD/MM/YYYY"
        assert con.execute("SELECT min(ordered_at), max(ordered_at) FROM orders").fetchone() == (
            dt.datetime(2024, 4, 3), dt.datetime(2024, 4, 13))

    def test_never_settled_is_refused_and_the_table_kept(self, con, tmp_path):
        ingest.import_file(con, write_orders(tmp_path / "first.csv", ["2024-01-01"] * 3), "orders")
        r = ingest.import_file(con, write_orders(tmp_path / "o.csv", ["03/04/2024"] * 30_000), "orders")
        assert r.outcome == "refused" and "read both as day/month and month/day" in r.message
        assert con.execute("SELECT count(*) FROM orders").fetchone()[0] == 3
        assert con.execute("SELECT outcome FROM import_log ORDER BY started_at").fetchall() == [
            ("committed",), ("refused",)]

    def test_a_few_bad_values_keep_the_format_of_the_rest(self, con, tmp_path):
        # month-first, settled in the first rows (12/25); 2 values of 40,000 read in no format
        dates = ["12/25/2024"] * 40_000
        dates[30_000] = dates[39_999] = "31/31/2024"
        r = ingest.import_file(con, write_orders(tmp_path / "o.csv", dates), "orders")
        assert r.detected["date_format[ordered_at]"] == "MM/DD/YYYY"
        assert [(x.line, x.value) for x in r.rejected] == [(30_002, "31/31/2024"), (40_001, "31/31/2024")]


class TestReplaceInTheTransaction:
    """A replaced table is staged in the database inside the import's transaction and renamed into place."""

    def staging(self, con) -> list:
        return con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'crm\\_%' ESCAPE '\\'"
                           ).fetchall()

    def test_refused_replace_keeps_the_table_and_leaves_nothing_open(self, con, tmp_path):
        ingest.import_file(con, write_orders(tmp_path / "a.csv", ["2024-01-01"] * 4), "orders")
        bad = tmp_path / "b.csv"
        bad.write_text("order_id,ordered_at,amount\nO1,2024-01-01,x\nO2,2024-01-01,y\n")  # every row rejected
        r = ingest.import_file(con, bad, "orders")
        assert r.outcome == "refused"
        assert con.execute("SELECT count(*) FROM orders").fetchone()[0] == 4
        assert self.staging(con) == []
        con.execute("BEGIN TRANSACTION")  # no transaction was left open on the connection
        con.execute("ROLLBACK")

    def test_dry_run_changes_nothing_but_saves_its_template(self, con, tmp_path):
        ingest.import_file(con, write_orders(tmp_path / "a.csv", ["2024-01-01"] * 4), "orders")
        r = ingest.import_file(con, write_orders(tmp_path / "b.csv", ["2024-02-01"] * 7), "orders", dry_run=True,
                               save_as_template="shop")
        assert (r.outcome, r.rows_accepted, r.changes["orders"]) == (
            "validated", 7, {"rows_before": 4, "rows_after": 7, "inserted": 7, "deleted": 4})
        assert con.execute("SELECT count(*) FROM orders").fetchone()[0] == 4
        assert con.execute("SELECT template_name FROM mapping_templates").fetchall() == [("shop",)]
        assert self.staging(con) == []

    def test_replaced_table_has_the_canonical_columns_and_types(self, con, tmp_path):
        before = con.execute("DESCRIBE orders").fetchall()
        dates = ["2024-01-01", "soon"]  # a value that fails to convert: the staging column holding it is dropped
        ingest.import_file(con, write_orders(tmp_path / "a.csv", dates), "orders")
        assert con.execute("DESCRIBE orders").fetchall() == before


def test_an_import_does_not_load_ibis():
    """Importing a file (the CLI's ``import``, the benchmark) needs no Ibis: the store loads it for metrics only
    (about 30 MB and a quarter of a second)."""
    code = ("import sys, tempfile, pathlib; from crm_core import ingest, store; "
            "d = pathlib.Path(tempfile.mkdtemp()); (d / 'c.csv').write_text('customer_id\\nC1\\n'); "
            "con = store.connect(d / 'crm.duckdb'); r = ingest.import_file(con, d / 'c.csv', 'customers'); "
            "print(r.outcome, 'ibis' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "committed False"
