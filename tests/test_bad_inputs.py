"""Bad input on the import and export path (/work/shared/reference/bad-inputs.md, issue 9 point 1).

The contract for every refused file, asserted by :func:`assert_refused` on a copy of the bundled sample store: the
message starts with the file's name and names the exact line where one applies; every canonical table (and the
mapping templates) has the same row count and checksum as before — no partial table, nothing replaced; the import
log holds exactly one new row, ``refused``, with the same message; no staging table and no converted temp copy is
left behind.

Cases already asserted elsewhere are referenced, not repeated; their refusal half is re-run here under the full
contract (the old tests check the message and two customers, not the log, the file name or the whole store).

``R[x]`` is ``test_refused_file_changes_nothing[x]`` here; ``ti.`` is tests/test_ingest.py.

| #  | case                                  | test                                                                  |
|----|---------------------------------------|-----------------------------------------------------------------------|
| 1  | empty file                            | R[empty]; ti.TestRefusals.test_empty_file_refused_and_logged          |
| 2  | header only                           | R[header-only]; ti.TestRefusals.test_header_only_keeps_data           |
| 3  | UTF-8 with BOM                        | ti.TestEncodings.test_utf8_bom_first_column                           |
| 4  | Windows-1252 (é, €)                   | ti.test_windows_1252_decoded; R[cp1252-undefined-byte]                |
| 5  | invalid UTF-8 after row 50,000        | R[invalid-utf8-row-50500] (60,000 rows); ti (row 55,000)              |
| 6  | ``;`` and decimal comma               | ti.TestDialects.test_semicolon_and_decimal_comma                      |
| 7  | quoted newlines, commas, ``""``       | ti.test_quoted_newlines_commas_and_quotes                             |
| 8  | unterminated quote                    | R[unterminated-quote-row-25000]; ti (line 3)                          |
| 9  | missing / extra fields                | ti.test_ragged_rows_each_reported (read 4 = accepted 2 + rejected 2)  |
| 10 | header shorter than the rows          | R[header-shorter-than-rows]; ti                                       |
| 11 | duplicate / blank headers             | ti.test_duplicate_and_blank_headers_renamed; sources doctest          |
| 12 | hostile headers                       | ti.test_hostile_headers_are_data_not_sql                              |
| 13 | ``N/A``, ``—``, ``1,234`` in numbers  | ti.test_thousands_comma_and_null_markers; R[every-row-rejected]       |
| 14 | bad value after the sniffer's sample  | ti.test_bad_value_after_sniff_sample_rejected_with_line; R[...25000]  |
| 15 | ``00123``, ``+44``, 18-digit ids      | ti.test_text_ids_keep_zeros_and_digits                                |
| 16 | ambiguous / mixed dates               | ti.TestDates; R[ambiguous-day-month]                                  |
| 17 | negatives, refunds, zero prices       | ti.test_messy_invoice_line_export; test_refunds_keep_their_sign_...   |
| 18 | duplicate customers                   | ti.test_duplicate_rows_and_keys, ti.test_reimport_same_file_changes_  |
|    |                                       | nothing; test_emails_differing_in_case_are_kept_apart                 |
| 19 | formula cells                         | tests/test_exports.py; test_formula_cells_stored_as_is_and_escaped_...|
| 20 | ``<script>`` / Markdown in names      | UI, not in this suite                                                 |
| 21 | file over the upload limit            | test_oversized_file_refused_before_it_is_read,                        |
|    |                                       | test_upload_limit_from_environment                                    |
| 22 | .xlsx renamed, binary, bomb, 2 MB line| R[xlsx-renamed-csv], R[random-binary], R[one-2mb-line],               |
|    |                                       | R[2mb-data-line], test_gzip_bomb_of_zeros_..., test_gzip_bomb_of_text_|
| 23 | two sessions import at once           | UI/concurrency, not in this suite                                     |
| 24 | SIGKILL / disk full mid-import        | tests/test_crash_safety.py                                            |
| 25 | database locked; browser disconnects  | test_locked_database_names_the_lock, test_converted_copies_are_removed,|
|    |                                       | test_stale_converted_copies_swept,                                    |
|    |                                       | test_interrupted_import_leaves_nothing_behind                         |
| 26 | viewer edits the URL                  | UI, not in this suite                                                 |
"""

from __future__ import annotations

import gzip
import io
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from crm_core import ingest, store
from crm_core.exports import frame_to_csv
from crm_core.schema import TABLES
from crm_core.sources import CHUNK

REPO = Path(__file__).parent.parent
CUSTOMERS_HEAD = "customer_id,name,email,signup_date,region\n"


# --------------------------------------------------------------------------------------------- the contract
@pytest.fixture
def temp_dir(tmp_path, monkeypatch) -> Path:
    """A private temp dir for converted copies (``crm_import_*``), so a test sees exactly its own."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


@pytest.fixture
def sample_con(sample_store, tmp_path, temp_dir):
    """A copy of the sample store (5,000 customers, ~20k orders), open read-write."""
    path = tmp_path / "store" / "crm.duckdb"
    path.parent.mkdir()
    shutil.copy(sample_store, path)
    con = store.connect(path)
    yield con
    con.close()


def snapshot(con) -> dict[str, tuple[int, int]]:
    """(row count, order-free checksum of every column of every row) per canonical table and the templates."""
    out = {}
    for name in [*TABLES, "mapping_templates"]:
        out[name] = con.execute(f"SELECT count(*), coalesce(bit_xor(hash(t)), 0) FROM {store.quote_ident(name)} t"
                                ).fetchone()
    return out


def log_count(con) -> int:
    return con.execute("SELECT count(*) FROM import_log").fetchone()[0]


def staging_tables(con) -> list:
    return con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'crm_%'").fetchall()


def assert_refused(con, before, n_log, report, file_name: str, table: str, *fragments: str, line: int | None = None,
                   temp: Path | None = None):
    assert report.outcome == "refused", report.message
    assert report.message.startswith(f"{file_name}: "), report.message
    for f in fragments:
        assert f in report.message, report.message
    if line is not None:
        assert re.search(rf"\bline {line}\b", report.message), report.message
    assert snapshot(con) == before  # no partial table, nothing replaced, templates untouched
    assert log_count(con) == n_log + 1
    assert con.execute("SELECT file_name, table_name, outcome, message, rows_accepted FROM import_log "
                       "WHERE import_id = ?", [report.import_id]).fetchall() == [
        (file_name, table, "refused", report.message, 0)]
    assert staging_tables(con) == []
    if temp is not None:
        assert list(temp.glob("crm_import_*")) == []


# --------------------------------------------------------------------------------------------- file builders
def _customers(n: int) -> list[str]:
    return [f"Z{i:05d},Name {i},z{i}@example.com,2024-01-01,North" for i in range(n)]


def empty(tmp):
    return tmp / "empty.csv", b""


def header_only(tmp):
    return tmp / "header_only.csv", CUSTOMERS_HEAD.encode()


def cp1252_undefined_byte(tmp):
    # é is 0xe9 in Windows-1252 (no UTF-8 anywhere); 0x81 is undefined in Windows-1252: line 3
    return tmp / "legacy.csv", b"customer_id,name\nA1,Jos\xe9\nA2,Caf\x81\nA3,Cy\n"


def invalid_utf8_deep(tmp):
    # 60,000 UTF-8 rows with é; data row 50,500 (header = line 1, so line 50,502) has a lone Latin-1 é
    body = "customer_id,name\n" + "".join(f"C{i},Renée {i}\n" for i in range(60_000))
    return tmp / "deep.csv", body.encode().replace(b"C50500,Ren\xc3\xa9e", b"C50500,Ren\xe9e")


def unterminated_quote_deep(tmp):
    # beyond the sniffer's 20,000-row sample: data row 25,000 is line 25,002
    lines = _customers(30_000)
    lines[25_000] = 'Z25000,"never closed,z@x,2024-01-01,North'
    return tmp / "quote.csv", (CUSTOMERS_HEAD + "\n".join(lines) + "\n").encode()


def header_shorter(tmp):
    return tmp / "short_header.csv", b"customer_id,name\nB1,Ann,x,y\nB2,Bob,z,w\n"


def every_row_rejected(tmp):
    return tmp / "amounts.csv", "order_id,ordered_at,amount\n1,2024-01-01,N/A\n2,2024-01-02,\u2014\n".encode()


def ambiguous_dates(tmp):
    return tmp / "dates.csv", b"order_id,ordered_at,amount\n1,01/02/24,5\n2,03/04/24,6\n"


def xlsx_renamed(tmp):
    wb = openpyxl.Workbook()
    wb.active.append(["customer_id", "name"])
    wb.active.append(["A1", "Ann"])
    p = tmp / "workbook.xlsx"
    wb.save(p)
    return tmp / "workbook.csv", p.read_bytes()


def random_binary(tmp):
    return tmp / "noise.csv", random.Random(20260901).randbytes(200_000)


def one_2mb_line(tmp):
    return tmp / "one_line.csv", b"customer_id;" + b"x" * 2_000_000


def data_line_2mb(tmp):
    # line 3 is 2.2 MB: DuckDB's sniffer says "line 1"; the import names line 3
    return tmp / "long_line.csv", b"customer_id,name\nA1,a\nA2," + b"x" * 2_200_000 + b"\nA3,b\n"


REFUSALS = [
    # (id, builder, table, message fragments, line)
    ("empty", empty, "customers", ("empty (0 bytes)",), None),
    ("header-only", header_only, "customers", ("0 data rows", "existing data kept"), None),
    ("cp1252-undefined-byte", cp1252_undefined_byte, "customers", ("byte 0x81 is neither UTF-8 nor windows-1252",), 3),
    ("invalid-utf8-row-50500", invalid_utf8_deep, "customers",
     ("invalid UTF-8 byte 0xe9", "Nothing was imported"), 50_502),
    ("unterminated-quote-row-25000", unterminated_quote_deep, "customers",
     ("unterminated quote", "nothing was imported"), 25_002),
    ("header-shorter-than-rows", header_shorter, "customers",
     ("none of the 2 rows", "too many fields (4 instead of 2)"), 2),
    ("every-row-rejected", every_row_rejected, "orders",
     ("every row was rejected", "column 'amount': required value is missing"), 2),
    ("ambiguous-day-month", ambiguous_dates, "orders", ("'ordered_at'", "day/month", "--date-format DD/MM/YY"), None),
    ("xlsx-renamed-csv", xlsx_renamed, "customers", ("Excel workbook, not a CSV file",), None),
    ("random-binary", random_binary, "customers", ("binary data, not a text CSV file",), None),
    ("one-2mb-line", one_2mb_line, "customers", ("line 1 is longer than 1 MB",), 1),
    ("2mb-data-line", data_line_2mb, "customers", ("longer than 2 MB", "Nothing was imported"), 3),
]


@pytest.mark.parametrize(("builder", "table", "fragments", "line"), [r[1:] for r in REFUSALS],
                         ids=[r[0] for r in REFUSALS])
def test_refused_file_changes_nothing(sample_con, tmp_path, temp_dir, builder, table, fragments, line):
    path, data = builder(tmp_path)
    path.write_bytes(data)
    before, n_log = snapshot(sample_con), log_count(sample_con)
    assert before["customers"][0] == 5_000 and before["orders"][0] > 19_000  # the sample really is there
    for mode in ("replace", "upsert"):
        report = ingest.import_file(sample_con, path, table, mode=mode)
        assert report.mode == mode
        assert_refused(sample_con, before, n_log, report, path.name, table, *fragments, line=line, temp=temp_dir)
        n_log += 1
    assert report.rows_accepted == 0


# --------------------------------------------------------------------------------------------- 21 size limit
def test_oversized_file_refused_before_it_is_read(sample_con, tmp_path, temp_dir, monkeypatch):
    big = tmp_path / "huge.csv"
    with open(big, "wb") as fh:
        fh.write(CUSTOMERS_HEAD.encode())
    os.truncate(big, 2 * 1024**3)  # sparse: 2 GB that cost no disk
    assert big.stat().st_size == 2_147_483_648
    monkeypatch.delenv("CRM_MAX_UPLOAD_MB", raising=False)

    def must_not_read(*args, **kwargs):
        raise AssertionError("the file was opened")

    monkeypatch.setattr(ingest, "inspect_file", must_not_read)  # the first read of an import (hash, encoding)
    before, n_log = snapshot(sample_con), log_count(sample_con)
    report = ingest.import_file(sample_con, big, "customers")
    # 2 GiB = 2,048.0 MiB; the default limit is 200 MiB, as in the web upload
    assert_refused(sample_con, before, n_log, report, "huge.csv", "customers",
                   "the file is 2,048.0 MB, over the upload limit of 200.0 MB", "nothing was read", "CRM_MAX_UPLOAD_MB",
                   temp=temp_dir)
    with pytest.raises(ingest.ImportRefused, match=r"huge\.csv: the file is 2,048\.0 MB, over the upload limit"):
        ingest.preview(sample_con, big, "customers")


def test_upload_limit_from_environment(sample_con, tmp_path, monkeypatch):
    monkeypatch.delenv("CRM_MAX_UPLOAD_MB", raising=False)
    assert ingest.max_import_bytes() == 200 * 1024 * 1024
    path = tmp_path / "mid.csv"
    path.write_text(CUSTOMERS_HEAD + "\n".join(_customers(15_000)) + "\n")  # 15,000 rows of 53 bytes: 0.76 MiB
    size = path.stat().st_size
    assert 512 * 1024 < size < 1024 * 1024
    monkeypatch.setenv("CRM_MAX_UPLOAD_MB", "0.5")
    assert ingest.max_import_bytes() == 512 * 1024
    before, n_log = snapshot(sample_con), log_count(sample_con)
    report = ingest.import_file(sample_con, path, "customers")
    assert_refused(sample_con, before, n_log, report, "mid.csv", "customers", "over the upload limit of 0.5 MB")
    monkeypatch.setenv("CRM_MAX_UPLOAD_MB", "1")
    report = ingest.import_file(sample_con, path, "customers")
    assert report.outcome == "committed" and report.rows_accepted == 15_000
    # an explicit max_bytes (the web page passes its own) wins over the environment
    assert ingest.import_file(sample_con, path, "customers", max_bytes=size - 1).outcome == "refused"


# --------------------------------------------------------------------------------------------- 22 gzip bombs
class _CountReads:
    """Counts the decompressed bytes handed out by every GzipFile.read."""

    def __init__(self, monkeypatch):
        self.total = 0
        original = gzip.GzipFile.read

        def read(gz, *args, **kwargs):
            data = original(gz, *args, **kwargs)
            self.total += len(data)
            return data

        monkeypatch.setattr(gzip.GzipFile, "read", read)


def _bomb(path: Path, member_bytes: bytes, members: int) -> Path:
    """A multi-member gzip file: one compressed member repeated (a valid .gz that expands members × its size)."""
    member = gzip.compress(member_bytes, compresslevel=9)
    with open(path, "wb") as fh:
        for _ in range(members):
            fh.write(member)
    return path


def test_gzip_bomb_of_zeros_refused_in_the_first_chunk(sample_con, tmp_path, temp_dir, monkeypatch):
    # 64 members of 16 MiB of zero bytes: 1 GiB expanded from ~1 MB on disk
    path = _bomb(tmp_path / "bomb.csv.gz", bytes(16 * 1024 * 1024), 64)
    assert path.stat().st_size < 2_000_000
    counter = _CountReads(monkeypatch)
    before, n_log = snapshot(sample_con), log_count(sample_con)
    report = ingest.import_file(sample_con, path, "customers")
    assert_refused(sample_con, before, n_log, report, "bomb.csv.gz", "customers", "binary data", temp=temp_dir)
    # bounded by design: the header check reads 1 MiB and the encoding check stops at its first 16 MiB chunk
    assert counter.total <= 1024 * 1024 + 1 + CHUNK
    assert counter.total < 1024**3 // 32


@pytest.mark.slow
def test_gzip_bomb_of_text_refused_by_its_expansion(sample_con, tmp_path, temp_dir, monkeypatch):
    # 70 members of 16 MiB of "A1,xx\n": 1.1 GiB of valid CSV text from ~1.7 MB
    path = _bomb(tmp_path / "textbomb.csv.gz", b"A1,xx\n" * (16 * 1024 * 1024 // 6), 70)
    counter = _CountReads(monkeypatch)
    before, n_log = snapshot(sample_con), log_count(sample_con)
    report = ingest.import_file(sample_con, path, "customers")
    assert_refused(sample_con, before, n_log, report, "textbomb.csv.gz", "customers", "expands more than 200x",
                   temp=temp_dir)
    # bounded: the ratio guard (over 200x and over 1e9 bytes) stops the stream one chunk after 1e9 bytes
    assert counter.total <= 1024 * 1024 + 1 + 1_000_000_000 + CHUNK


# --------------------------------------------------------------------------------------------- 25 locks, temp files
LOCK_HOLDER = """
import sys
from crm_core import store
con = store.connect(sys.argv[1])
print("OPEN", flush=True)
sys.stdin.read()
con.close()
"""


def test_locked_database_names_the_lock(sample_con, tmp_path):
    before = snapshot(sample_con)
    sample_con.close()
    db = tmp_path / "store" / "crm.duckdb"
    child = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(db)], cwd=REPO, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "OPEN"
        for read_only in (False, True):
            with pytest.raises(RuntimeError) as err:
                store.connect(db, read_only=read_only)
            message = str(err.value)
            assert message.startswith(f"{db}: the database is locked: it is in use by another process (PID "
                                      f"{child.pid}, ")
            assert "close that process" in message and "Could not set lock" not in message
    finally:
        child.stdin.close()
        assert child.wait(timeout=60) == 0
    with store.connect(db) as con:  # free again, and untouched
        assert snapshot(con) == before


def _latin_customers(tmp: Path, good: bool) -> Path:
    text = CUSTOMERS_HEAD + "A1,José Müller,j@x,2024-01-05,Zürich\nA2,Chloé,c@x,2024-01-06,€uro\n"
    if not good:
        text = text.replace("customer_id", "kunde")  # refused after the conversion: no customer_id column
    p = tmp / ("latin_ok.csv" if good else "latin_bad.csv")
    p.write_bytes(text.encode("cp1252"))
    return p


def _workbook(tmp: Path, good: bool) -> Path:
    wb = openpyxl.Workbook()
    wb.active.append(["customer_id" if good else "kunde", "name"])
    wb.active.append(["A1", "Zoë"])
    p = tmp / ("book_ok.xlsx" if good else "book_bad.xlsx")
    wb.save(p)
    return p


@pytest.mark.parametrize("good", [True, False], ids=["success", "failure"])
@pytest.mark.parametrize("make", [_latin_customers, _workbook], ids=["windows-1252", "xlsx"])
def test_converted_copies_are_removed(con, tmp_path, temp_dir, monkeypatch, make, good):
    path = make(tmp_path, good)
    made: list[Path] = []  # each converted copy, seen to exist when it is handed to the import

    def spy(func, pick):
        def wrapper(*args, **kwargs):
            out = func(*args, **kwargs)
            copy = pick(out)
            if copy is not None:
                assert copy.exists() and copy.parent == temp_dir and copy.name.startswith("crm_import_")
                made.append(copy)
            return out
        return wrapper

    monkeypatch.setattr(ingest, "inspect_file", spy(ingest.inspect_file,
                                                    lambda f: f.readable_path if f.is_temp_copy else None))
    monkeypatch.setattr(ingest, "xlsx_to_csv", spy(ingest.xlsx_to_csv, lambda out: out[0]))
    report = ingest.import_file(con, path, "customers")
    assert report.outcome == ("committed" if good else "refused"), report.message
    if not good:
        assert report.message.startswith(f"{path.name}: required column(s) customer_id")
    assert len(made) == 1  # one converted copy (transcoded, or the sheet as CSV) ...
    assert list(temp_dir.iterdir()) == []  # ... removed, success or failure
    assert con.execute("SELECT count(*) FROM customers").fetchone()[0] == (2 if make is _latin_customers else 1) * good
    pv = ingest.preview(con, path, "customers")  # the preview converts too, and cleans up too
    assert pv.missing_required == (() if good else ("customer_id",))
    assert len(made) == 2 and list(temp_dir.iterdir()) == []


def test_stale_converted_copies_swept(con, tmp_path, temp_dir):
    old, fresh, other = (temp_dir / "crm_import_dead.csv", temp_dir / "crm_import_live.csv",
                         temp_dir / "someone_else.csv")
    for p in (old, fresh, other):
        p.write_text("customer_id,name\nP1,personal data\n")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    os.utime(other, (two_hours_ago, two_hours_ago))
    seed = tmp_path / "seed.csv"
    seed.write_text(CUSTOMERS_HEAD + "A1,Ann,a@x,2024-01-05,North\n")
    assert ingest.import_file(con, seed, "customers").outcome == "committed"
    # the copy a killed process left 2 h ago is gone; one of a running import (fresh) and other files stay
    assert sorted(p.name for p in temp_dir.iterdir()) == ["crm_import_live.csv", "someone_else.csv"]
    assert ingest.sweep_stale_temp_files(max_age_seconds=0) == [fresh]


def test_abandoned_uploads_swept_after_a_day(temp_dir):
    """The Data page's upload copies (crm_upload_*) that a closed browser left: a day old goes, younger stays."""
    old, young = temp_dir / "crm_upload_old.csv", temp_dir / "crm_upload_young.csv"
    for p in (old, young):
        p.write_text("customer_id,email\nP1,p@example.com\n")
    day_and_a_bit = time.time() - 25 * 3600
    os.utime(old, (day_and_a_bit, day_and_a_bit))
    assert ingest.sweep_stale_temp_files(24 * 3600, prefix="crm_upload_") == [old]
    assert sorted(p.name for p in temp_dir.iterdir()) == ["crm_upload_young.csv"]


@pytest.mark.parametrize("phase", ["loading rows", "checking values", "committing", "done"])
def test_interrupted_import_leaves_nothing_behind(sample_con, tmp_path, temp_dir, phase):
    """A browser that goes away mid-import makes Streamlit raise inside the progress callback: at any phase,
    including between the write and the COMMIT, the store is unchanged, the connection holds no open transaction,
    no staging table or temp copy is left and the next import runs."""
    path = tmp_path / "latin.csv"
    path.write_bytes((CUSTOMERS_HEAD + "\n".join(_customers(300)) + "\nA1,José,j@x,2024-01-05,Zürich\n")
                     .encode("cp1252"))
    before, n_log = snapshot(sample_con), log_count(sample_con)

    class Disconnected(Exception):
        pass

    def progress(fraction, message):
        if message == phase:
            raise Disconnected(message)

    with pytest.raises(Disconnected):
        ingest.import_file(sample_con, path, "customers", progress=progress)
    assert snapshot(sample_con) == before and log_count(sample_con) == n_log
    assert staging_tables(sample_con) == [] and list(temp_dir.iterdir()) == []
    sample_con.execute("BEGIN TRANSACTION")  # raises if the import left one open
    sample_con.execute("ROLLBACK")
    report = ingest.import_file(sample_con, path, "customers")
    assert report.outcome == "committed" and report.rows_accepted == 301
    assert sample_con.execute("SELECT count(*) FROM customers").fetchone()[0] == 301


# --------------------------------------------------------------------------------------------- 17, 18, 19
def test_refunds_keep_their_sign_through_import_and_export(con, tmp_path):
    # 100 sale + (-40) refund + 0 free sample = net 60; the refund is a number, not text to escape
    path = tmp_path / "orders.csv"
    path.write_text("order_id,customer_id,ordered_at,amount,is_return\nO1,A1,2024-01-05,100.00,false\n"
                    "O2,A1,2024-01-09,-40.00,true\nO3,A2,2024-01-10,0,false\n")
    report = ingest.import_file(con, path, "orders")
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (3, 3, 0)
    assert con.execute("SELECT sum(amount), count(*) FILTER (WHERE amount < 0), min(amount) FROM orders"
                       ).fetchone() == (60.0, 1, -40.0)
    df = con.execute("SELECT order_id, amount FROM orders ORDER BY order_id").df()
    assert frame_to_csv(df).splitlines() == ["order_id,amount", "O1,100.0", "O2,-40.0", "O3,0.0"]


def test_emails_differing_in_case_are_kept_apart(con, tmp_path):
    # documented policy: different ids are never merged on import (the quality report suggests merges)
    path = tmp_path / "dupes.csv"
    path.write_text(CUSTOMERS_HEAD + "A1,Ann,ann@x.com,2024-01-05,North\nA2,Ann,\" ANN@X.COM \",2024-01-05,North\n"
                    "A1,Ann,ann@x.com,2024-01-05,North\n")
    report = ingest.import_file(con, path, "customers")
    assert (report.rows_read, report.exact_duplicates, report.rows_accepted) == (3, 1, 2)
    assert con.execute("SELECT customer_id, email FROM customers ORDER BY 1").fetchall() == [
        ("A1", "ann@x.com"), ("A2", " ANN@X.COM ")]
    before = snapshot(con)
    assert ingest.import_file(con, path, "customers").outcome == "unchanged"
    assert snapshot(con) == before


def test_formula_cells_stored_as_is_and_escaped_on_export(con, tmp_path):
    cells = ['=HYPERLINK("http://evil","click")', "@SUM(A1:A9)", "+cmd|' /C calc'!A0", "\tTabbed", "\rReturn",
             "-2+3", "Plain"]
    quoted = ['"' + c.replace('"', '""') + '"' for c in cells]
    path = tmp_path / "formulas.csv"
    path.write_text("customer_id,name\n" + "".join(f"F{i},{c}\n" for i, c in enumerate(quoted)), newline="")
    report = ingest.import_file(con, path, "customers")
    assert report.rows_accepted == 7, report.summary()
    stored = [r[0] for r in con.execute("SELECT name FROM customers ORDER BY customer_id").fetchall()]
    assert stored == cells  # as-is: nothing stripped or escaped in the store
    df = con.execute("SELECT customer_id, name AS \"=name\" FROM customers ORDER BY customer_id").df()
    text = frame_to_csv(df)
    assert text.startswith("customer_id,'=name\r\n")  # headers are escaped too; RFC 4180 line ends
    assert "F4,\"'\rReturn\"\r\n" in text  # a cell holding a CR is quoted, so it stays one row
    escaped = list(pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)["'=name"])
    assert escaped == ["'" + c for c in cells[:6]] + ["Plain"]
