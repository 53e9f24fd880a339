"""DuckDB hardened for the app (issue 9 point 5): :func:`crm_core.store.harden` and the memory limit.

The app's connection (``ui/frame.py``) is passed through ``store.harden``: DuckDB may read files only under the temp
folder (uploads, converted copies) and ``sample_data/``, may not install or load extensions, and its configuration
is locked. Asserted here on a copy of the sample store:

- reading ``/etc/passwd`` (``read_csv``, ``read_text``, ``read_parquet``, ``glob``, a ``..`` path out of the temp
  folder), ``ATTACH``, ``COPY ... TO`` outside, ``INSTALL`` / ``LOAD`` and a URL all fail — on the connection, on
  its cursors, through Ibis and on a second ``store.connect`` of the same file in the process;
- every ``SET`` / ``RESET`` that would undo it fails with "the configuration has been locked", and the settings
  keep their values;
- imports still work through it: the bundled sample folder (same row counts as the unhardened sample store), and
  an upload in the temp folder as CSV, .csv.gz, .xlsx (converted to a temp CSV) and Parquet; a file outside the
  allowed folders is refused with a message that says so;
- metrics give the same numbers hardened and not (overview KPIs, cohorts — which use an Ibis memtable);
- the whole app runs on a hardened connection (AppTest, ``store.connect`` patched to harden, every page), loading
  the sample into an empty store on first run;
- ``CRM_MEMORY_LIMIT`` (``512MB``, ``50%``, default 4GB) reaches DuckDB, and a bad value is refused by name.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import tempfile
from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from crm_core import churn, ingest, metrics, store
from crm_core.sample import SAMPLE_DIR
from crm_core.schema import TABLES

APP = Path(__file__).parent.parent / "app.py"
AS_OF = dt.date(2026, 6, 30)  # the bundled sample's last order day
REFUSED = r"disabled by configuration|disabled through configuration|Permission Error|requires the extension"
LOCKED = "the configuration has been locked"
CUSTOMERS_CSV = "customer_id,name,email,signup_date,region\nU1,Ann Lee,ann@example.com,2026-01-02,North\n" \
                "U2,Bob Ray,bob@example.com,2026-02-03,South\nU3,Cy Dee,cy@example.com,2026-03-04,North\n"


@pytest.fixture
def store_copy(sample_store, tmp_path) -> Path:
    path = tmp_path / "crm.duckdb"
    shutil.copyfile(sample_store, path)
    return path


@pytest.fixture
def hardened(store_copy):
    """The sample store, opened as the app opens it: connect, then harden with the default folders."""
    con = store.connect(store_copy)
    store.harden(con)
    yield con
    con.close()


def counts(con) -> dict[str, int]:
    return {name: store.table_count(con, name) for name in TABLES}


# --------------------------------------------------------------------------------------------- what is refused
OUTSIDE_READS = {
    "read_csv": "SELECT * FROM read_csv('/etc/passwd')",
    "read_csv_auto": "SELECT * FROM read_csv_auto('/etc/passwd')",
    "read_text": "SELECT * FROM read_text('/etc/passwd')",
    "read_blob": "SELECT * FROM read_blob('/etc/passwd')",
    "read_parquet": "SELECT * FROM read_parquet('/etc/passwd')",
    "read_json": "SELECT * FROM read_json('/etc/passwd')",
    "glob": "SELECT * FROM glob('/etc/*')",
    "dot-dot-out-of-temp": f"SELECT * FROM read_text('{tempfile.gettempdir()}/../etc/passwd')",
    # climbs to / from the sample folder: outside the allowed folders wherever the checkout is (even under /tmp)
    "sample-dir-dot-dot": f"SELECT * FROM read_text('{SAMPLE_DIR}{'/..' * len(SAMPLE_DIR.parts)}/etc/passwd')",
    "attach": "ATTACH '/etc/passwd.duckdb' AS leak",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "url": "SELECT * FROM read_csv('https://example.com/x.csv')",
}


@pytest.mark.parametrize("sql", OUTSIDE_READS.values(), ids=OUTSIDE_READS.keys())
def test_files_outside_the_allowed_folders_are_refused(hardened, sql):
    with pytest.raises(duckdb.Error, match=REFUSED):
        hardened.execute(sql)


def test_refused_on_cursors_through_ibis_and_on_a_second_connection(hardened, store_copy):
    with pytest.raises(duckdb.Error, match=REFUSED):
        hardened.cursor().execute("SELECT * FROM read_csv('/etc/passwd')")
    backend = store.ibis_backend(hardened.cursor())
    with pytest.raises(Exception, match=REFUSED):
        backend.sql("SELECT * FROM read_text('/etc/passwd')").execute()
    again = store.connect(store_copy)  # same file, same process: DuckDB shares the (locked) database instance
    try:
        assert store.is_locked(again)
        assert store.table_count(again, "customers") == 5000
        with pytest.raises(duckdb.Error, match=REFUSED):
            again.execute("SELECT * FROM read_text('/etc/passwd')")
    finally:
        again.close()


def _outside_dir() -> Path:
    """A writable folder outside the allowed ones (the temp folder holds CI's checkout, so not the tests' folder)."""
    temp = Path(tempfile.gettempdir()).resolve()
    for candidate in (Path("/var/tmp"), Path.home()):
        if candidate.is_dir() and temp not in candidate.resolve().parents and candidate.resolve() != temp:
            return candidate
    pytest.skip("no writable folder outside the temp folder")


def test_copy_to_a_file_outside_is_refused(hardened):
    leak = _outside_dir() / f"leak_from_hardening_test_{os.getpid()}.csv"
    try:
        with pytest.raises(duckdb.Error, match=REFUSED):
            hardened.execute(f"COPY customers TO '{leak}'")
        assert not leak.exists()
    finally:
        leak.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------- locked
UNDO = {
    "external-access": "SET enable_external_access = true",
    "allowed-root": "SET allowed_directories = ['/']",
    "allowed-paths": "SET allowed_paths = ['/etc/passwd']",
    "unlock": "SET lock_configuration = false",
    "reset-lock": "RESET lock_configuration",
    "reset-external": "RESET enable_external_access",
    "autoload": "SET autoload_known_extensions = true",
    "autoinstall": "SET autoinstall_known_extensions = true",
    "global-external": "SET GLOBAL enable_external_access = true",
    "memory": "SET memory_limit = '100GB'",
    "pragma-memory": "PRAGMA memory_limit = '100GB'",
    "unsigned": "SET allow_unsigned_extensions = true",
}


@pytest.mark.parametrize("sql", UNDO.values(), ids=UNDO.keys())
def test_settings_cannot_be_changed_back(hardened, sql):
    with pytest.raises(duckdb.Error, match=LOCKED):
        hardened.execute(sql)
    with pytest.raises(duckdb.Error, match=LOCKED):
        hardened.cursor().execute(sql)
    setting = dict(hardened.execute(
        "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', 'lock_configuration', "
        "'autoload_known_extensions', 'autoinstall_known_extensions', 'memory_limit')").fetchall())
    assert setting == {"enable_external_access": "false", "lock_configuration": "true",
                       "autoload_known_extensions": "false", "autoinstall_known_extensions": "false",
                       "memory_limit": "3.7 GiB"}  # 4GB = 4e9 bytes = 3.73 GiB
    with pytest.raises(duckdb.Error, match=REFUSED):
        hardened.execute("SELECT * FROM read_text('/etc/passwd')")


def test_allowed_folders_are_the_temp_and_sample_folders(hardened, store_copy):
    allowed = hardened.execute("SELECT current_setting('allowed_directories')").fetchone()[0]
    temp = str(Path(tempfile.gettempdir()).resolve()).rstrip(os.sep) + os.sep
    sample = str(SAMPLE_DIR.resolve()) + os.sep
    assert temp in allowed and sample in allowed
    # DuckDB adds the database's own spill folder; nothing else
    assert set(allowed) <= {temp, sample, str(Path(tempfile.gettempdir())).rstrip(os.sep) + os.sep,
                            str(SAMPLE_DIR) + os.sep, f"{store_copy}.tmp{os.sep}"}


def test_harden_twice_is_harmless(hardened):
    store.harden(hardened)
    store.harden(hardened, ["/"])  # already locked: left as it is, so this does not widen anything
    with pytest.raises(duckdb.Error, match=REFUSED):
        hardened.execute("SELECT * FROM read_text('/etc/passwd')")


# --------------------------------------------------------------------------------------------- what still works
def test_sample_folder_loads_through_a_hardened_connection(con, sample_store):
    store.harden(con)
    reports = ingest.load_folder(con, SAMPLE_DIR)
    assert [r.outcome for r in reports] == ["committed"] * len(reports), [r.message for r in reports]
    reference = store.connect(sample_store, read_only=True)
    try:
        expected = counts(reference)
    finally:
        reference.close()
    assert counts(con) == expected
    assert expected["customers"] == 5000


def _write(kind: str, folder: Path) -> Path:
    """The three-customer file as an upload of ``kind``, named like the app's uploads (``crm_upload_*``)."""
    frame = pd.read_csv(pd.io.common.StringIO(CUSTOMERS_CSV), dtype=str)
    path = Path(tempfile.NamedTemporaryFile(prefix="crm_upload_", suffix=kind, dir=folder, delete=False).name)
    if kind == ".csv":
        path.write_text(CUSTOMERS_CSV)
    elif kind == ".csv.gz":
        path.write_bytes(gzip.compress(CUSTOMERS_CSV.encode()))
    elif kind == ".xlsx":
        wb = openpyxl.Workbook()
        wb.active.append(list(frame.columns))
        for row in frame.itertuples(index=False):
            wb.active.append(list(row))
        wb.save(path)
    else:
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("kind", [".csv", ".csv.gz", ".xlsx", ".parquet"])
def test_uploads_in_the_temp_folder_import(hardened, kind):
    path = _write(kind, Path(tempfile.gettempdir()))
    try:
        report = ingest.import_file(hardened, path, "customers", mode="append", display_name=f"upload{kind}")
    finally:
        path.unlink(missing_ok=True)
    assert report.outcome == "committed", report.message
    assert (report.rows_read, report.rows_accepted) == (3, 3)
    assert store.table_count(hardened, "customers") == 5003
    assert hardened.execute("SELECT name FROM customers WHERE customer_id = 'U2'").fetchone()[0] == "Bob Ray"


def test_file_outside_the_allowed_folders_is_refused_by_name(con, tmp_path):
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    store.harden(con, [allowed])
    (outside / "customers.csv").write_text(CUSTOMERS_CSV)
    (allowed / "customers.csv").write_text(CUSTOMERS_CSV)
    report = ingest.import_file(con, outside / "customers.csv", "customers")
    assert report.outcome == "refused"
    assert report.message.startswith("customers.csv: "), report.message
    assert "may only read uploaded files" in report.message, report.message
    assert "Permission Error" not in report.message and str(outside) not in report.message
    assert store.table_count(con, "customers") == 0
    report = ingest.import_file(con, allowed / "customers.csv", "customers")
    assert report.outcome == "committed", report.message
    assert store.table_count(con, "customers") == 3


def test_metrics_are_the_same_hardened(hardened, sample_store):
    plain = store.connect(sample_store, read_only=True)
    try:
        want_kpis = metrics.overview(store.ibis_backend(plain), as_of=AS_OF, days=30)
        want_cohorts = churn.cohort_retention(store.ibis_backend(plain), AS_OF, months=6)
    finally:
        plain.close()
    backend = store.ibis_backend(hardened.cursor())
    assert type(backend).__name__ == "_LockedBackend"
    assert metrics.overview(backend, as_of=AS_OF, days=30) == want_kpis
    pd.testing.assert_frame_equal(churn.cohort_retention(backend, AS_OF, months=6), want_cohorts)


# --------------------------------------------------------------------------------------------- the app
@pytest.fixture
def hardened_app(tmp_path, monkeypatch):
    """``store.connect`` patched to harden, as ui/frame.py's ``_connection`` will; the app's caches dropped after."""
    connect = store.connect
    opened = []

    def connect_and_harden(path=None, **kwargs):
        c = connect(path, **kwargs)
        store.harden(c)
        opened.append(c)
        return c

    monkeypatch.setattr(store, "connect", connect_and_harden)
    db = tmp_path / "app" / "crm.duckdb"
    monkeypatch.setenv("CRM_DB", str(db))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield opened
    st.cache_data.clear()
    st.cache_resource.clear()


def test_the_app_runs_on_a_hardened_connection(hardened_app):
    at = AppTest.from_file(str(APP), default_timeout=120).run()  # an empty store: the sample loads on first run
    assert not at.exception, [e.value for e in at.exception]
    assert len(hardened_app) == 1 and store.is_locked(hardened_app[0])
    assert store.table_count(hardened_app[0], "customers") == 5000
    titles = [info["page_name"] for info in at._registered_pages.values()]
    assert len(titles) == 11
    for title in titles:
        at._page_hash = next(h for h, info in at._registered_pages.items() if info.get("page_name") == title)
        at.run()
        assert not at.exception, (title, [e.value for e in at.exception])
    assert len(hardened_app) == 1  # one cached connection served every page
    with pytest.raises(duckdb.Error, match=REFUSED):
        hardened_app[0].execute("SELECT * FROM read_text('/etc/passwd')")


# --------------------------------------------------------------------------------------------- memory limit
@pytest.mark.parametrize("value, shown", [("512MB", "488.2 MiB"), ("2GiB", "2.0 GiB"), (None, "3.7 GiB")],
                         ids=["512MB", "2GiB", "default-4GB"])
def test_memory_limit_from_the_environment(tmp_path, monkeypatch, value, shown):
    if value is None:
        monkeypatch.delenv("CRM_MEMORY_LIMIT", raising=False)
    else:
        monkeypatch.setenv("CRM_MEMORY_LIMIT", value)
    c = store.connect(tmp_path / "m.duckdb")
    try:
        assert c.execute("SELECT current_setting('memory_limit')").fetchone()[0] == shown
    finally:
        c.close()


def test_memory_limit_as_a_share_of_memory(monkeypatch):
    monkeypatch.setenv("CRM_MEMORY_LIMIT", "50%")
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert store.memory_limit() == f"{int(total * 0.5) // 2**20}MiB"
    monkeypatch.setenv("CRM_MEMORY_LIMIT", "25 %")
    assert store.memory_limit() == f"{int(total * 0.25) // 2**20}MiB"


@pytest.mark.parametrize("value", ["lots", "150%", "abc%", "0%"])
def test_bad_memory_limit_is_refused_by_name(tmp_path, monkeypatch, value):
    monkeypatch.setenv("CRM_MEMORY_LIMIT", value)
    with pytest.raises(RuntimeError, match=f"CRM_MEMORY_LIMIT='{value}' is not a memory size; use e.g. 4GB"):
        store.connect(tmp_path / "m.duckdb")
