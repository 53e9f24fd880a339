"""The app and the CLI on another engine: with ``CRM_BACKEND_URL`` pointing at a PostgreSQL copy of the bundled
sample, they compute every metric there (docs/scale.md) and show DuckDB's numbers.

One throw-away PostgreSQL cluster per module (``tests/engine_support.py``) holds the sample's canonical tables; the
app's own DuckDB file (``CRM_DB``) starts empty and stays without customer data: it keeps only goals and the audit
log. Each page is run twice, on the DuckDB sample store and on the engine, and must show the same KPI cards and
readings. Writes to the analysed tables (imports, the sample reset, new notes) are off on an engine with
``crm_core.engines.writes_unavailable()``'s message; goals work and are kept in the embedded store.

Marker ``engines``: without PostgreSQL's binaries these tests skip, unless ``CRM_REQUIRE_ENGINES=1`` (CI).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import ibis
import pytest
from streamlit.testing.v1 import AppTest

from crm_core import engines, goals, metrics, narrative, store
from tests.engine_support import PostgresServer, canonical_tables, copy_to_postgres, postgres_missing, unavailable

ROOT = Path(__file__).parent.parent
APP = ROOT / "app.py"
TIMEOUT = 60  # seconds per script run
PASSWORD = "s3cret-pw"  # in the URL (the test cluster trusts loopback, so any password is accepted): never shown
Q2 = {"start": "2026-04-01", "end": "2026-06-30"}  # the sample's last quarter
CUSTOMER = "C01161"  # has orders, tickets, surveys, campaign contacts and a note

pytestmark = [pytest.mark.engines, pytest.mark.usefixtures("release_app_caches")]


@pytest.fixture(scope="module")
def pg_url(sample_store):
    """The sample's canonical tables in a throw-away PostgreSQL cluster; the URL carries a password."""
    reason = postgres_missing()
    if reason:
        unavailable(reason)
    with PostgresServer() as server:
        raw = ibis.connect(server.url)
        copy_to_postgres(raw, canonical_tables(sample_store))
        raw.disconnect()
        yield server.url.replace(f"//{server.user}@", f"//{server.user}:{PASSWORD}@")


@pytest.fixture
def app_state(tmp_path) -> Path:
    """The app's own DuckDB file on the engine: not there yet (the app creates it for goals and the audit log)."""
    return tmp_path / "app_state.duckdb"


def run(monkeypatch, db: Path, url: str | None, page: str | None = None, **query) -> AppTest:
    """Run ``app.py`` once with ``CRM_DB=db`` (and ``CRM_BACKEND_URL=url`` when given), then open ``page`` as a
    click in the menu does (the hash ``st.navigation`` registered for it; see tests/test_app.py ``open_page``)."""
    monkeypatch.setenv("CRM_DB", str(db))
    for name in (engines.BACKEND_ENV, engines.URL_ENV, engines.MAPPING_ENV):
        monkeypatch.delenv(name, raising=False)
    if url:
        monkeypatch.setenv(engines.URL_ENV, url)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for name, value in query.items():
        at.query_params[name] = value
    at = at.run()
    if page is not None:
        hashes = [h for h, info in at._registered_pages.items() if info.get("page_name") == page]
        assert len(hashes) == 1, f"no page {page!r}: {at._registered_pages}"
        at._page_hash = hashes[0]
        at = at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def shown(at: AppTest) -> dict[str, list]:
    """What a page says with numbers: its KPI cards (label, value, delta), readings and captions (a model fit's
    "in 0.17 s" left out: timings differ run to run)."""
    return {"metrics": [(m.label, m.value, m.delta) for m in at.main.metric],
            "markdown": [m.value for m in at.main.markdown],
            "captions": [re.sub(r"\d+(\.\d+)? s\b", "(time)", c.value) for c in at.main.caption],
            "subheaders": [s.value for s in at.main.subheader]}


def stored_rows(db: Path, table: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # a constant table name of this test
    finally:
        con.close()


@pytest.fixture(scope="module")
def duckdb_copy(sample_store, tmp_path_factory) -> Path:
    """This module's copy of the sample store: the app on DuckDB, to compare with."""
    path = tmp_path_factory.mktemp("engines_app") / "crm.duckdb"
    shutil.copyfile(sample_store, path)
    return path


# --------------------------------------------------------------------------------------------- the app


def test_overview_on_the_engine_shows_duckdbs_kpis(pg_url, sample_store, app_state, monkeypatch):
    at = run(monkeypatch, app_state, pg_url, **Q2, region="London")
    assert at.title[0].value == "Overview"
    con = store.connect(sample_store, read_only=True)
    try:
        expected = metrics.overview(store.ibis_backend(con), as_of=dt.date(2026, 6, 30), days=91, regions=("London",))
        regions = [r[0] for r in con.execute("SELECT DISTINCT region FROM customers WHERE region IS NOT NULL "
                                             "ORDER BY 1").fetchall()]
    finally:
        con.close()
    assert {m.label: (m.value, m.delta) for m in at.main.metric} == {
        k.label: (narrative.format_value(k.value, k.unit), narrative.format_delta(k.delta, k.unit) or "")
        for k in expected.kpis}
    assert {m.label: m.value for m in at.main.metric}["Orders"] == "624"  # tests/test_app.py: 624 London orders
    # the filters' bounds come from the engine: its regions, and its last order day as the default end
    assert at.multiselect(key="f_regions").options == regions and len(regions) > 5
    # the embedded store (opened for goals and logs only, not by the Overview) got no sample data
    assert not app_state.exists() or stored_rows(app_state, "orders") == stored_rows(app_state, "customers") == 0


def test_default_period_is_the_engines_last_30_days(pg_url, app_state, monkeypatch):
    at = run(monkeypatch, app_state, pg_url)  # no filters in the URL: the 30 days to the last order (30 Jun 2026)
    assert at.date_input(key="f_range").value == (dt.date(2026, 6, 1), dt.date(2026, 6, 30))


def test_sidebar_names_the_engine_without_the_password(pg_url, app_state, monkeypatch):
    at = run(monkeypatch, app_state, pg_url)
    captions = " ".join(c.value for c in at.sidebar.caption)
    described = engines.settings_from_env({engines.URL_ENV: pg_url}).describe()
    assert described.startswith("PostgreSQL at postgresql://crm_test@127.0.0.1:")
    assert f"Data: `{described}`" in captions
    assert PASSWORD not in captions and all(PASSWORD not in str(e.value) for e in at.main.info)


@pytest.mark.parametrize(("page", "query"), [
    ("Segments", {**Q2, "region": "London"}),
    ("Customer value", Q2),
    ("Customer 360", {**Q2, "customer": CUSTOMER}),
], ids=["segments", "value", "customer360"])
def test_pages_show_the_same_numbers_as_on_duckdb(pg_url, duckdb_copy, app_state, monkeypatch, page, query):
    on_duckdb = shown(run(monkeypatch, duckdb_copy, None, page, **query))
    on_engine = shown(run(monkeypatch, app_state, pg_url, page, **query))
    assert len(on_duckdb["metrics"]) >= 4, on_duckdb["metrics"]  # cards to compare
    assert on_engine == on_duckdb


def test_customer_360_reads_notes_from_the_engine_and_cannot_add_them(pg_url, app_state, monkeypatch):
    at = run(monkeypatch, app_state, pg_url, "Customer 360", **Q2, customer=CUSTOMER)
    assert at.main.get("form") == []  # no note form: a note written to the embedded store would not be shown
    assert at.info[-1].value == engines.writes_unavailable(engines.settings_from_env({engines.URL_ENV: pg_url}))
    assert at.dataframe[-1].value["note_id"].tolist()  # the sample's notes about the customer, from the engine


def test_data_page_says_imports_are_off(pg_url, app_state, monkeypatch):
    at = run(monkeypatch, app_state, pg_url, "Data")
    message = engines.writes_unavailable(engines.settings_from_env({engines.URL_ENV: pg_url}))
    assert message.startswith("The app reads PostgreSQL at postgresql://crm_test@127.0.0.1:")
    assert [i.value for i in at.main.info] == [message]
    assert len(at.tabs) == 0 and at.main.get("file_uploader") == []  # no import form, no reset, no quality tabs
    assert [b.key for b in at.button] == []
    assert at.subheader[0].value == "Audit log"  # kept in the embedded store


def test_goals_page_lists_goals_of_the_embedded_store(pg_url, sample_store, app_state, monkeypatch):
    # a goal set in the app's own store (baseline given, so nothing is measured here): listed with its progress
    # measured on the engine (repeat purchase rate to 30 Jun 2026, as on DuckDB)
    con = store.connect(app_state)
    try:
        goals.create_goal(con, "More repeat buyers", "repeat_purchase_rate", None, dt.date(2026, 1, 1),
                          dt.date(2026, 12, 31), 0.5, baseline=0.3)
    finally:
        con.close()
    at = run(monkeypatch, app_state, pg_url, "Goals & investment", **Q2)
    table = at.dataframe[0].value
    assert table["goal_id"].tolist() == ["G1"]
    duck = store.connect(sample_store, read_only=True)
    try:
        now = goals.metric_value(store.ibis_backend(duck), "repeat_purchase_rate", dt.date(2026, 6, 30))
    finally:
        duck.close()
    assert table["current"].tolist() == [goals.format_value("repeat_purchase_rate", now)]


def test_concurrent_runs_each_borrow_a_connection_and_give_it_back(pg_url, sample_store, monkeypatch):
    """Two script runs at once (threads) query the engine together without error: each borrowed its own connection
    (one shared Ibis PostgreSQL backend fails here: psycopg's transaction blocks of two threads nest). A later run
    reuses a connection given back by a finished thread instead of opening another."""
    from ui import frame

    monkeypatch.setenv(engines.URL_ENV, pg_url)
    con = duckdb.connect(str(sample_store), read_only=True)
    try:
        expected = con.execute("SELECT count(*) FROM orders WHERE ordered_at >= TIMESTAMP '2026-01-01'").fetchone()[0]
    finally:
        con.close()
    both_hold_one = threading.Barrier(2, timeout=30)
    got: dict[str, tuple] = {}

    def script_run(name: str) -> None:
        backend = frame.backend()
        both_hold_one.wait()
        orders = backend.table("orders")
        try:  # 20 queries each, interleaved with the other thread's: the orders of 2026, as on DuckDB
            counts = [backend.execute(orders.filter(orders.ordered_at >= dt.datetime(2026, 1, 1)).count())
                      for _ in range(20)]
            got[name] = (backend, counts, None)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            got[name] = (backend, [], exc)

    threads = [threading.Thread(target=script_run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got["a"][2] is None and got["b"][2] is None, (got["a"][2], got["b"][2])
    assert got["a"][0] is not got["b"][0]
    assert got["a"][1] == got["b"][1] == [expected] * 20 and expected > 0
    del threads, t
    gc.collect()  # the finished threads are gone: their connections are back in the pool
    settings = engines.settings_from_env()
    pool = frame._engine_pool(repr(settings), settings)
    assert got["a"][0] in pool._idle and got["b"][0] in pool._idle
    opened = list(pool._opened)
    later = threading.Thread(target=lambda: got.update(c=(frame.backend(),)))
    later.start()
    later.join()
    assert pool._opened == opened and any(got["c"][0] is b for b in opened)  # reused, none opened


# --------------------------------------------------------------------------------------------- the CLI


def cli(*args: str, db: Path, url: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in (engines.BACKEND_ENV, engines.URL_ENV, engines.MAPPING_ENV)}
    env["CRM_DB"] = str(db)
    if url:
        env[engines.URL_ENV] = url
    return subprocess.run([sys.executable, "-m", "crm_core", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_metrics_on_the_engine_equal_duckdb(pg_url, sample_store, app_state, tmp_path):
    args = ("metrics", "overview", "--as-of", "2026-06-30", "--days", "91", "--region", "London")
    on_duckdb = cli(*args, db=Path(shutil.copyfile(sample_store, tmp_path / "crm.duckdb")))
    on_engine = cli(*args, db=app_state, url=pg_url)
    assert on_duckdb.returncode == 0 and on_engine.returncode == 0, on_engine.stderr
    kpis = json.loads(on_engine.stdout)
    assert kpis == json.loads(on_duckdb.stdout)
    assert {row["key"]: row["value"] for row in kpis}["orders"] == 624
    assert not app_state.exists()  # the embedded store is not even opened for a metric


def test_cli_import_is_refused_on_the_engine(pg_url, app_state):
    done = cli("import", str(ROOT / "sample_data" / "customers.csv"), "--table", "customers", db=app_state, url=pg_url)
    message = engines.writes_unavailable(engines.settings_from_env({engines.URL_ENV: pg_url}))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: import: {message}"
    assert PASSWORD not in done.stderr and not app_state.exists()
    note = cli("customer", "note", CUSTOMER, "--author", "Ann", "--text", "Called", db=app_state, url=pg_url)
    assert note.returncode == 2 and note.stderr.strip() == f"error: customer: {message}"


def test_cli_goal_baseline_is_measured_on_the_engine(pg_url, sample_store, app_state):
    done = cli("goals", "add", "Retention up", "--metric", "retention_rate", "--start", "2026-03-31",
               "--deadline", "2026-12-31", "--target", "60%", "--format", "json", db=app_state, url=pg_url)
    assert done.returncode == 0, done.stderr
    con = store.connect(sample_store, read_only=True)
    try:
        expected = goals.metric_value(store.ibis_backend(con), "retention_rate", dt.date(2026, 3, 31))
    finally:
        con.close()
    kept = store.connect(app_state, read_only=True)
    try:
        (goal,) = goals.list_goals(kept)  # stored in the embedded store
    finally:
        kept.close()
    assert goal.baseline == pytest.approx(expected, rel=1e-9) and 0 < expected < 1
