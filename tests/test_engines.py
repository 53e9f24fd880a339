"""Tests for crm_core.engines, and the metric suite on PostgreSQL and Apache Spark against the embedded DuckDB.

The first part needs no server: mapping files and settings are validated with messages that say what to write, and
:class:`~crm_core.engines.MappedBackend` presents a small foreign layout in DuckDB (hand-checked below) as the
canonical tables.

The second part (marker ``engines``) copies the bundled sample data into a throw-away PostgreSQL cluster and a local
Spark session (``tests/engine_support.py``: one of each per module), runs every SQL-side metric function in
``CASES`` on DuckDB and on each engine, and asserts identical results: the same columns and rows, counts and text
exactly equal, floats within 1e-9 relative (1e-9 absolute near zero). Order is compared too: every function here
documents its order. PostgreSQL runs every case; Spark, whose queries cost about a second each on this data, runs
the cases marked ``spark`` (every module but the composed goal metrics and investment baselines, with both filter
sets: a period and a region), to keep the suite within three minutes. A last test reads a foreign layout
(``crm.sales_orders`` with ``order_ts`` ...; decimal amounts, timestamp signup dates, an extra column) through a
mapping file on both engines and gets the same numbers.

Without a server's binaries its tests skip with the reason, unless ``CRM_REQUIRE_ENGINES=1`` (CI) makes them fail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from crm_core import (
    basket,
    campaigns,
    churn,
    clusters,
    clv,
    customer360,
    engines,
    fulfilment,
    goals,
    investment,
    metrics,
    segments,
    service,
    store,
    support,
    uplift,
    value,
    voice,
)
from crm_core.engines import EngineSettings, MappedBackend, parse_mapping, settings_from_env
from tests.engine_support import (
    PostgresServer,
    canonical_tables,
    copy_to_postgres,
    copy_to_spark,
    postgres_missing,
    spark_missing,
    spark_session,
    stop_spark,
    unavailable,
)

# pyspark 4.0 passes pandas 3 a deprecated copy= keyword on every result it converts
pytestmark = pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:Warning")

AS_OF = dt.date(2026, 6, 30)  # the sample's last order day
PERIOD_START = dt.date(2026, 1, 1)  # filter set 1: the first half of 2026 (181 days)
PERIOD_DAYS = (AS_OF - PERIOD_START).days + 1
REGION = ("London",)  # filter set 2: one region (936 of 5,000 customers), whole history
CUSTOMER = "C01161"  # has orders, tickets, surveys, campaign contacts and a note


# --------------------------------------------------------------------------------------------- comparing results


def _missing(x) -> bool:
    return x is None or x is pd.NA or x is pd.NaT or (isinstance(x, float | np.floating) and math.isnan(x))


def _plain(x):
    """A cell as a plain Python value: numpy scalars unwrapped, dates and timestamps as pandas Timestamps."""
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, dt.datetime | dt.date | np.datetime64):
        return pd.Timestamp(x)
    return x


def differences(expected, actual, *, ordered: bool = True, path: str = "result", rel: float = 1e-9) -> list[str]:
    """Where ``actual`` differs from ``expected`` (empty when they agree): frames by columns, rows and cells,
    dataclasses by field, dicts by key, sequences by position; ints, text, bools and dates exactly, floats within
    ``rel`` (absolute ``rel`` near zero). ``ordered=False`` compares a frame's rows as a multiset."""
    out: list[str] = []
    _diff(expected, actual, path, out, rel, ordered)
    return out


def _diff(a, b, path: str, out: list[str], rel: float, ordered: bool) -> None:
    if len(out) >= 10:
        return
    if isinstance(a, pd.Series):
        a = a.to_frame()
        b = b.to_frame() if isinstance(b, pd.Series) else b
    if isinstance(a, pd.DataFrame):
        if not isinstance(b, pd.DataFrame):
            out.append(f"{path}: a frame on DuckDB, {type(b).__name__} here")
            return
        if list(a.columns) != list(b.columns):
            out.append(f"{path}: columns {list(a.columns)} on DuckDB, {list(b.columns)} here")
            return
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} rows on DuckDB, {len(b)} here")
            return
        rows_a = [[_plain(v) for v in row] for row in a.itertuples(index=False)]
        rows_b = [[_plain(v) for v in row] for row in b.itertuples(index=False)]
        if not ordered:
            rows_a, rows_b = sorted(rows_a, key=repr), sorted(rows_b, key=repr)
        for i, (ra, rb) in enumerate(zip(rows_a, rows_b, strict=True)):
            for column, x, y in zip(a.columns, ra, rb, strict=True):
                _diff(x, y, f"{path}[{i}].{column}", out, rel, ordered)
        return
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        for f in dataclasses.fields(a):
            _diff(getattr(a, f.name), getattr(b, f.name, "<missing>"), f"{path}.{f.name}", out, rel, ordered)
        return
    if isinstance(a, dict):
        if not isinstance(b, dict) or set(a) != set(b):
            out.append(f"{path}: keys {sorted(a)} on DuckDB, {sorted(b) if isinstance(b, dict) else b!r} here")
            return
        for key in a:
            _diff(a[key], b[key], f"{path}[{key!r}]", out, rel, ordered)
        return
    if isinstance(a, list | tuple):
        if not isinstance(b, list | tuple) or len(a) != len(b):
            out.append(f"{path}: {a!r:.80} on DuckDB, {b!r:.80} here")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{i}]", out, rel, ordered)
        return
    a, b = _plain(a), _plain(b)
    if _missing(a) or _missing(b):
        if not (_missing(a) and _missing(b)):
            out.append(f"{path}: {a!r} on DuckDB, {b!r} here")
    elif isinstance(a, float) or isinstance(b, float):
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
        if not numbers or not math.isclose(a, b, rel_tol=rel, abs_tol=rel):
            out.append(f"{path}: {a!r} on DuckDB, {b!r} here")
    elif type(a) is not type(b) or a != b:
        out.append(f"{path}: {a!r} ({type(a).__name__}) on DuckDB, {b!r} ({type(b).__name__}) here")


class TestDifferences:
    """The comparison itself must catch what the engine tests exist for."""

    frame = pd.DataFrame({"customer_id": ["A", "B"], "orders": [2, 1], "revenue": [100.0, 0.1 + 0.2]})

    def test_equal_within_float_noise(self):
        other = self.frame.assign(revenue=[100.0, 0.3])  # 0.1 + 0.2 = 0.30000000000000004
        assert differences(self.frame, other) == []

    @pytest.mark.parametrize(("change", "where"), [
        ({"orders": [2, 2]}, "result[1].orders: 1"),
        ({"revenue": [100.000001, 0.3]}, "result[0].revenue: 100.0"),
        ({"customer_id": ["A", "b"]}, "result[1].customer_id: 'B'"),
    ], ids=["count", "float beyond 1e-9", "text"])
    def test_a_changed_cell_is_reported(self, change, where):
        (problem,) = differences(self.frame, self.frame.assign(**change))
        assert problem.startswith(where)

    def test_order_counts_unless_unordered(self):
        swapped = self.frame.iloc[::-1].reset_index(drop=True)
        assert differences(self.frame, swapped)
        assert differences(self.frame, swapped, ordered=False) == []

    def test_types_rows_and_dataclass_fields(self):
        assert differences(self.frame, self.frame.iloc[:1]) == ["result: 2 rows on DuckDB, 1 here"]
        assert differences(1, 1.0) == []  # an int count that one engine returns as a whole float
        assert differences(True, 1) != []
        kpi = metrics.Kpi("orders", "Orders", 3, 2, 1, 0.5, "count", "")
        assert differences(kpi, dataclasses.replace(kpi, previous=None)) == ["result.previous: 2 on DuckDB, None here"]


# --------------------------------------------------------------------------------------------- engines.py alone


class TestUnavailable:
    def test_skips_unless_engines_are_required(self, monkeypatch):
        monkeypatch.delenv("CRM_REQUIRE_ENGINES", raising=False)
        with pytest.raises(pytest.skip.Exception, match="^Java is not installed$"):
            unavailable("Java is not installed")
        monkeypatch.setenv("CRM_REQUIRE_ENGINES", "1")
        with pytest.raises(pytest.fail.Exception, match=r"Java is not installed \(CRM_REQUIRE_ENGINES=1: the engine"):
            unavailable("Java is not installed")

MAPPING_TOML = """\
database = "crm"

[tables.orders]
table = "sales_orders"
columns = { order_id = "order_no", customer_id = "buyer", ordered_at = "order_ts", amount = "net_amount" }

[tables.customers]
table = "clients"
columns = { customer_id = "client_id", region = "sales_region", signup_date = "joined" }
"""


class TestMappingFile:
    def test_toml_and_json_read_the_same(self, tmp_path):
        (tmp_path / "tables.toml").write_text(MAPPING_TOML)
        from_toml = engines.load_mapping(tmp_path / "tables.toml")
        import tomllib

        (tmp_path / "tables.json").write_text(json.dumps(tomllib.loads(MAPPING_TOML)))
        from_json = engines.load_mapping(tmp_path / "tables.json")
        for m in (from_toml, from_json):
            assert m.source("orders").qualified == "crm.sales_orders"
            assert dict(m.source("orders").columns)["ordered_at"] == "order_ts"
            assert m.source("support_tickets").qualified == "crm.support_tickets"  # not listed: canonical name

    @pytest.mark.parametrize(("data", "message"), [
        ({"tables": {"order": {"table": "x"}}},
         r"tables\.toml: \[tables\]: 'order' is not a canonical table \(did you mean 'orders'\?\); choose from: "
         r"customers, orders"),
        ({"tables": {"orders": {"columns": {"order_date": "d"}}}},
         r"\[tables\.orders\] columns: 'order_date' is not a column of orders \(did you mean 'ordered_at'\?\); "
         r"choose from: order_id, customer_id, ordered_at, amount"),
        ({"tables": {"orders": {"name": "x"}}},
         r"\[tables\.orders\]: 'name' is not a setting here; choose from: table, database, columns"),
        ({"schema": "crm"}, r"top level: 'schema' is not a setting here; choose from: database, tables"),
        ({"tables": {"orders": {"table": ""}}}, r"\[tables\.orders\] table must be a name \(non-empty text\)"),
        ({"tables": {"orders": {"columns": {"amount": 3}}}},
         r"\[tables\.orders\] columns\.amount must be a name \(non-empty text\), got 3"),
        ({"tables": {"orders": {"table": "a\nb"}}}, "contains a control character"),
    ], ids=["unknown table", "unknown column", "unknown key", "unknown top key", "empty name", "number",
            "newline"])
    def test_refused_with_what_to_write(self, data, message):
        with pytest.raises(ValueError, match=message):
            parse_mapping(data, "tables.toml")

    def test_bad_toml_names_the_file(self, tmp_path):
        path = tmp_path / "tables.toml"
        path.write_text("[tables.orders\n")
        with pytest.raises(ValueError, match=r"tables\.toml: not valid TOML"):
            engines.load_mapping(path)
        with pytest.raises(ValueError, match=r"missing\.toml: cannot read the table mapping"):
            engines.load_mapping(tmp_path / "missing.toml")


class TestSettings:
    def test_default_is_the_embedded_store(self):
        settings = settings_from_env({})
        assert settings.is_embedded and engines.writes_unavailable(settings) is None

    @pytest.mark.parametrize("env", [
        {"CRM_BACKEND_URL": "postgresql://app:s3cret@db.example.com:5433/crm"},
        {"CRM_BACKEND": "postgres://app:s3cret@db.example.com:5433/crm"},
        {"CRM_BACKEND": "postgresql", "CRM_BACKEND_URL": "postgresql://app:s3cret@db.example.com:5433/crm"},
    ], ids=["url", "url in CRM_BACKEND", "both"])
    def test_postgres_url(self, env):
        settings = settings_from_env(env)
        assert settings.kind == "postgres" and not settings.is_embedded
        text = settings.describe()  # the URL as given, without its password
        assert text.startswith("PostgreSQL at postgres") and text.endswith("://app@db.example.com:5433/crm")
        assert "s3cret" not in engines.writes_unavailable(settings)

    def test_spark_with_master_conf_and_mapping(self, tmp_path):
        (tmp_path / "tables.toml").write_text(MAPPING_TOML)
        settings = settings_from_env({"CRM_BACKEND": "pyspark", "CRM_SPARK_MASTER": "local[2]",
                                      "CRM_SPARK_CONF": '{"spark.sql.shuffle.partitions": 4}',
                                      "CRM_TABLE_MAP": str(tmp_path / "tables.toml")})
        assert (settings.kind, settings.url, settings.spark_master) == ("pyspark", None, "local[2]")
        assert dict(settings.spark_conf) == {"spark.sql.shuffle.partitions": "4"}
        assert settings.mapping.source("orders").qualified == "crm.sales_orders"
        assert settings.describe() == f"Apache Spark (master local[2]), tables as mapped in {tmp_path / 'tables.toml'}"

    @pytest.mark.parametrize(("env", "message"), [
        ({"CRM_BACKEND": "oracle"}, r"CRM_BACKEND='oracle' is not an engine; use duckdb"),
        ({"CRM_BACKEND": "postgres"}, r"CRM_BACKEND=postgres needs CRM_BACKEND_URL=postgresql://"),
        ({"CRM_BACKEND": "pyspark", "CRM_BACKEND_URL": "postgresql://h/db"},
         r"CRM_BACKEND=pyspark but CRM_BACKEND_URL is a postgres URL"),
        ({"CRM_BACKEND_URL": "db.example.com:5432"}, r"is not a connection URL"),
        ({"CRM_BACKEND": "pyspark", "CRM_SPARK_CONF": "shuffle=2"}, r"CRM_SPARK_CONF is not JSON"),
        ({"CRM_TABLE_MAP": "x.toml"}, r"x\.toml: cannot read the table mapping"),
    ], ids=["unknown engine", "postgres without url", "conflict", "not a url", "bad spark conf", "missing map"])
    def test_bad_settings(self, env, message):
        with pytest.raises(ValueError, match=message):
            settings_from_env(env)

    def test_an_unreachable_server_is_named_without_its_password(self):
        pytest.importorskip("psycopg", reason="psycopg is not installed (requirements-dev.txt)")
        with pytest.raises(RuntimeError, match=r"^cannot connect to PostgreSQL at postgresql://app@127\.0\.0\.1:1/db: "
                                               r"connection failed") as info:
            engines.connect(settings_from_env({"CRM_BACKEND_URL": "postgresql://app:s3cret@127.0.0.1:1/db"}))
        assert "s3cret" not in str(info.value)

    def test_embedded_store_is_not_opened_here(self):
        with pytest.raises(ValueError, match=r"store\.connect\(\)"):
            engines.connect(EngineSettings())


@pytest.fixture
def foreign_duckdb(tmp_path) -> Path:
    """A small warehouse file in another layout: crm.clients and crm.sales_orders.

    clients      client_id (int!)  sales_region  joined (timestamp)     extra
                 1                 North         2024-01-05 08:30       x
                 2                 South         2024-02-01 00:00       y
    sales_orders order_no  buyer  order_ts (date!)  net_amount (decimal)  is_return (0/1 int)
                 10        1      2024-03-01        100.50                0
                 11        1      2024-03-10        -20.25                1
                 12        2      2024-03-31         40.00                null
    support_tickets (canonical name and columns; created_at with a time zone)
                 ticket_id 7, customer_id '2', created_at 2024-03-02 10:00+01:00, resolved_at null
    """
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA crm")
    con.execute("CREATE TABLE crm.clients (client_id INTEGER, sales_region VARCHAR, joined TIMESTAMP, extra VARCHAR)")
    con.execute("INSERT INTO crm.clients VALUES (1, 'North', '2024-01-05 08:30', 'x'), "
                "(2, 'South', '2024-02-01', 'y')")
    con.execute("CREATE TABLE crm.sales_orders (order_no INTEGER, buyer INTEGER, order_ts DATE, "
                "net_amount DECIMAL(10, 2), is_return INTEGER)")
    con.execute("INSERT INTO crm.sales_orders VALUES (10, 1, '2024-03-01', 100.50, 0), "
                "(11, 1, '2024-03-10', -20.25, 1), (12, 2, '2024-03-31', 40.00, NULL)")
    con.execute("CREATE TABLE crm.support_tickets (ticket_id INTEGER, customer_id VARCHAR, created_at TIMESTAMPTZ, "
                "resolved_at TIMESTAMP)")
    con.execute("INSERT INTO crm.support_tickets VALUES (7, '2', '2024-03-02 10:00:00+01:00', NULL)")
    con.close()
    return path


@pytest.fixture
def mapped(foreign_duckdb, tmp_path):
    (tmp_path / "tables.toml").write_text(MAPPING_TOML)
    backend = engines.connect(settings_from_env({"CRM_BACKEND_URL": f"duckdb:///{foreign_duckdb}",
                                                 "CRM_TABLE_MAP": str(tmp_path / "tables.toml")}))
    yield backend
    backend.disconnect()


class TestMappedBackend:
    def test_canonical_names_and_types(self, mapped):
        assert isinstance(mapped, MappedBackend)
        assert mapped.list_tables() == ["customers", "orders", "support_tickets"]  # by canonical name
        customers = mapped.table("customers")
        assert dict(customers.schema().items()) == {
            "customer_id": ibis.dtype("string"), "signup_date": ibis.dtype("date"), "region": ibis.dtype("string")}
        orders = mapped.table("orders")
        assert orders.columns == ("order_id", "customer_id", "ordered_at", "amount", "is_return")
        assert [str(t) for t in orders.schema().types] == ["string", "string", "timestamp", "float64", "boolean"]
        frame = mapped.execute(orders.order_by("order_id"))
        assert frame["customer_id"].tolist() == ["1", "1", "2"]
        assert frame["amount"].tolist() == [100.5, -20.25, 40.0]
        assert frame["is_return"].tolist()[:2] == [False, True] and _missing(frame["is_return"].iloc[2])
        tickets = mapped.table("support_tickets")
        assert tickets.schema()["created_at"] == ibis.dtype("timestamp")  # no time zone: UTC wall-clock time
        assert mapped.execute(tickets)["created_at"].tolist() == [pd.Timestamp("2024-03-02 09:00:00")]

    def test_metrics_read_the_mapped_tables(self, mapped):
        # March 2024, 31 days: net revenue 100.50 - 20.25 + 40.00 = 120.25; purchases O10 and O12 (O11 is a
        # return) = 2; active customers 1 and 2 = 2. Region South: customer 2 only, 40.00 from 1 purchase.
        assert metrics.data_as_of(mapped) == dt.date(2024, 3, 31)
        ov = metrics.overview(mapped, as_of=dt.date(2024, 3, 31), days=31)
        assert (ov["revenue"].value, ov["orders"].value, ov["active_customers"].value) == (120.25, 2, 2)
        assert ov["new_customers"].value == 0 and ov["customers"].value == 2  # joined in January and February
        assert ov["open_tickets"].value == 1  # ticket 7: created 2 March, never resolved
        south = metrics.overview(mapped, as_of=dt.date(2024, 3, 31), days=31, regions="South")
        assert (south["revenue"].value, south["orders"].value) == (40.0, 1)
        assert engines.data_bounds(mapped) == (dt.date(2024, 3, 1), dt.date(2024, 3, 31), ("North", "South"))

    def test_a_mapped_column_the_engine_lacks(self, foreign_duckdb):
        raw = ibis.duckdb.connect(str(foreign_duckdb))
        mapping = parse_mapping({"database": "crm", "tables": {"orders": {"table": "sales_orders", "columns": {
            "ordered_at": "order_date", "customer_id": "buyer", "order_id": "order_no", "amount": "net_amount"}}}},
            "tables.toml")
        with pytest.raises(ValueError, match=r"crm\.sales_orders has no column 'order_date' \(mapped to "
                                             r"orders\.ordered_at in tables\.toml\); its columns are: order_no, "):
            MappedBackend(raw, mapping).table("orders")

    def test_a_required_column_left_unmapped(self, foreign_duckdb):
        raw = ibis.duckdb.connect(str(foreign_duckdb))
        mapping = parse_mapping({"database": "crm", "tables": {"orders": {"table": "sales_orders"}}}, "tables.toml")
        with pytest.raises(ValueError, match=r"crm\.sales_orders \(the orders table\) has no column for order_id, "
                                             r"ordered_at, amount \(required\); map them in tables\.toml"):
            MappedBackend(raw, mapping).table("orders")

    def test_a_missing_table(self, foreign_duckdb):
        raw = ibis.duckdb.connect(str(foreign_duckdb))
        backend = MappedBackend(raw, parse_mapping({"database": "crm"}, "tables.toml"))
        assert backend.list_tables() == ["support_tickets"]  # the only canonical name in crm
        with pytest.raises(ValueError, match=r"The database has no 'orders' table: duckdb has no table crm\.orders"):
            backend.table("orders")
        with pytest.raises(ValueError, match=r"no 'customers' table; import customers"):  # the metrics' message
            metrics.overview(backend)

    def test_writes_are_refused_with_the_engine_named(self):
        text = engines.writes_unavailable(EngineSettings("pyspark"))
        assert text.startswith("The app reads Apache Spark. Imports, notes, goals and the sample reset write to")


# --------------------------------------------------------------------------------------------- the metric suite


@dataclass(frozen=True)
class Case:
    """One metric call; ``spark``: also run on Spark (all run on PostgreSQL)."""

    id: str
    run: Callable
    spark: bool = False


def _clv_result(backend):
    r = clv.clv(backend, AS_OF)  # the fitted models, not the timings
    return r.customers, r.parameters(), r.totals, r.warnings, r.return_rate, r.population_mean_spend


CASES: tuple[Case, ...] = (
    Case("metrics.data_as_of", metrics.data_as_of, spark=True),
    Case("metrics.overview.period", lambda b: metrics.overview(b, as_of=AS_OF, days=PERIOD_DAYS), spark=True),
    Case("metrics.overview.region", lambda b: metrics.overview(b, as_of=AS_OF, days=90, regions=REGION), spark=True),
    Case("metrics.overview.segment", lambda b: metrics.overview(b, as_of=AS_OF, days=90,
                                                                segments=("Champions", "At risk"))),
    Case("metrics.monthly_trend.period", lambda b: metrics.monthly_trend(b, start=PERIOD_START, end=AS_OF)),
    Case("metrics.monthly_trend.region", lambda b: metrics.monthly_trend(b, regions=REGION), spark=True),
    Case("segments.rfm", lambda b: segments.rfm(b, AS_OF), spark=True),
    Case("segments.segment_summary.region", lambda b: segments.segment_summary(b, AS_OF, regions=REGION),
         spark=True),
    Case("segments.migration", lambda b: segments.migration(b, dt.date(2025, 12, 31), AS_OF)),
    Case("segments.migration_customers", lambda b: segments.migration_customers(b, dt.date(2025, 12, 31), AS_OF,
                                                                                "Loyal")),
    Case("value.customer_value.period", lambda b: value.customer_value(b, AS_OF, PERIOD_START), spark=True),
    Case("value.customer_value.region", lambda b: value.customer_value(b, AS_OF, regions=REGION)),
    Case("value.whale_curve", lambda b: value.whale_curve(value.customer_value(b, AS_OF))),
    Case("churn.cohort_retention", lambda b: churn.cohort_retention(b, AS_OF)),
    Case("churn.cohort_retention.region", lambda b: churn.cohort_retention(b, AS_OF, regions=REGION), spark=True),
    Case("churn.churn_status", lambda b: churn.churn_status(b, AS_OF)),
    Case("churn.churn_summary.region", lambda b: churn.churn_summary(b, AS_OF, regions=REGION), spark=True),
    Case("churn.churn_features", lambda b: churn.churn_features(b, dt.date(2025, 12, 31)), spark=True),
    Case("support.ticket_kpis.period", lambda b: support.ticket_kpis(b, AS_OF, PERIOD_START), spark=True),
    Case("support.ticket_kpis.channel.region", lambda b: support.ticket_kpis(b, AS_OF, regions=REGION, by="channel"),
         spark=True),
    Case("support.csat_by_breach", lambda b: support.csat_by_breach(b, AS_OF, PERIOD_START)),
    Case("support.ticket_facts", lambda b: support.ticket_facts(b, AS_OF, PERIOD_START)),
    Case("support.ticket_trend", lambda b: support.ticket_trend(b, AS_OF), spark=True),
    Case("support.backlog", lambda b: support.backlog(b, AS_OF), spark=True),
    Case("support.csat_distribution.region", lambda b: support.csat_distribution(b, AS_OF, regions=REGION)),
    Case("support.complaints", lambda b: support.complaints(b, AS_OF), spark=True),
    Case("support.complaints.category", lambda b: support.complaints(b, AS_OF, by="category")),
    Case("fulfilment.fulfilment_kpis.period", lambda b: fulfilment.fulfilment_kpis(b, AS_OF, PERIOD_START),
         spark=True),
    Case("fulfilment.fulfilment_kpis.carrier.region",
         lambda b: fulfilment.fulfilment_kpis(b, AS_OF, regions=REGION, by="carrier"), spark=True),
    Case("fulfilment.fulfilment_kpis.month", lambda b: fulfilment.fulfilment_kpis(b, AS_OF, by="month")),
    Case("fulfilment.late_delivery_effect", lambda b: fulfilment.late_delivery_effect(b, AS_OF), spark=True),
    Case("service.tickets_unavailable", service.tickets_unavailable),
    Case("service.service_by_tier.period", lambda b: service.service_by_tier(b, AS_OF, PERIOD_START)),
    Case("service.breach_by_channel.region", lambda b: service.breach_by_channel(b, AS_OF, regions=REGION),
         spark=True),
    Case("service.action_list", lambda b: service.action_list(b, AS_OF)),
    Case("service.touchpoints_unavailable", service.touchpoints_unavailable),
    Case("service.channel_usage.period", lambda b: service.channel_usage(b, AS_OF, PERIOD_START)),
    Case("service.contact_points.region", lambda b: service.contact_points(b, AS_OF, regions=REGION)),
    Case("campaigns.campaign_summary", campaigns.campaign_summary, spark=True),
    Case("campaigns.by_channel", campaigns.by_channel),
    Case("campaigns.by_segment", campaigns.by_segment),
    Case("campaigns.lift_all", campaigns.lift_all, spark=True),
    Case("campaigns.attribution", campaigns.attribution),
    Case("basket.association_rules", basket.association_rules, spark=True),
    Case("basket.association_rules.category.region.period",
         lambda b: basket.association_rules(b, level="category", regions=REGION, start=PERIOD_START)),
    Case("basket.next_best_products", basket.next_best_products),
    Case("clusters.cluster_features", lambda b: clusters.cluster_features(b, AS_OF), spark=True),
    Case("clv.summary", lambda b: clv.summary(b, AS_OF), spark=True),
    Case("clv.return_rate", lambda b: clv.return_rate(b, AS_OF)),
    Case("clv.clv", _clv_result),
    Case("customer360.search_customers", lambda b: customer360.search_customers(b, "smith"), spark=True),
    Case("customer360.profile", lambda b: customer360.profile(b, CUSTOMER, AS_OF)),
    Case("customer360.timeline", lambda b: customer360.timeline(b, CUSTOMER, AS_OF), spark=True),
    Case("customer360.notes", lambda b: customer360.notes(b, CUSTOMER)),
    Case("goals.metric_value", lambda b: [goals.metric_value(b, key, AS_OF) for key in goals.METRICS]),
    Case("goals.metric_series", lambda b: goals.metric_series(b, "retention_rate", PERIOD_START, AS_OF)),
    Case("uplift.experiment_campaigns", uplift.experiment_campaigns),
    Case("uplift.campaign_features", lambda b: uplift.campaign_features(b, "CMP07")),
    Case("voice.nps.period", lambda b: voice.nps(b, AS_OF, PERIOD_START), spark=True),
    Case("voice.nps.month.region", lambda b: voice.nps(b, AS_OF, regions=REGION, by="month"), spark=True),
    Case("voice.nps.segment", lambda b: voice.nps(b, AS_OF, by="segment")),
    Case("voice.comment_themes", lambda b: voice.comment_themes(b, AS_OF), spark=True),
    Case("voice.nps_after_delivery", lambda b: voice.nps_after_delivery(b, AS_OF), spark=True),
    Case("investment.baselines", lambda b: investment.baselines(b, AS_OF)),
)
CASES_BY_ID = {case.id: case for case in CASES}

# A foreign layout: tables and columns renamed, other types (decimal money, timestamp signup dates) and an extra
# column; every table (the other eight under their canonical names) in database/schema "crm".
FOREIGN = {
    "orders": ("sales_orders", {"order_id": "order_no", "customer_id": "buyer", "ordered_at": "order_ts",
                                "amount": "net_amount"}),
    "customers": ("clients", {"customer_id": "client_id", "region": "sales_region", "signup_date": "joined"}),
}
MAPPED_CASES = ("metrics.overview.region", "value.customer_value.period")  # customers' and orders' columns


def _foreign_layout(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """The sample in the foreign layout's types (names are changed by the copy): amounts as DECIMAL(12,2) (every
    sample amount has at most two decimals), signup dates as timestamps, and a column no metric knows."""
    out = dict(tables)
    orders = tables["orders"]
    i = orders.schema.get_field_index("amount")
    orders = orders.set_column(i, "amount", orders["amount"].cast(pa.decimal128(12, 2)))
    out["orders"] = orders.append_column("loaded_at", pa.array([dt.datetime(2026, 7, 1)] * orders.num_rows))
    customers = tables["customers"]
    i = customers.schema.get_field_index("signup_date")
    out["customers"] = customers.set_column(i, "signup_date", customers["signup_date"].cast(pa.timestamp("us")))
    return out


@pytest.fixture(scope="module")
def sample_copy(sample_store, tmp_path_factory) -> Path:
    """This module's own copy of the sample store (opened read-only here, so nothing else's connection clashes)."""
    path = tmp_path_factory.mktemp("engines") / "crm.duckdb"
    shutil.copyfile(sample_store, path)
    return path


@pytest.fixture(scope="module")
def sample_tables(sample_copy) -> dict[str, pa.Table]:
    return canonical_tables(sample_copy)


@pytest.fixture(scope="module")
def reference(sample_copy):
    """Each case's result on the embedded DuckDB, computed once."""
    con = store.connect(sample_copy, read_only=True)
    backend = store.ibis_backend(con)
    results: dict[str, object] = {}

    def result(case_id: str):
        if case_id not in results:
            results[case_id] = CASES_BY_ID[case_id].run(backend)
        return results[case_id]

    yield result
    con.close()


@dataclass(frozen=True)
class Engine:
    """A running engine with the sample loaded: the backend :func:`engines.connect` opened from ``env``."""

    backend: MappedBackend
    env: dict[str, str]


@pytest.fixture(scope="module")
def postgres(sample_tables):
    """The sample in a throw-away PostgreSQL cluster: canonical tables in ``public``, the foreign layout in
    ``crm``; the backend is what :func:`engines.connect` opens from ``CRM_BACKEND_URL``."""
    reason = postgres_missing()
    if reason:
        unavailable(reason)
    with PostgresServer() as server:
        raw = ibis.connect(server.url)
        copy_to_postgres(raw, sample_tables)
        copy_to_postgres(raw, _foreign_layout(sample_tables), database="crm", renames=FOREIGN)
        raw.disconnect()
        env = {"CRM_BACKEND_URL": server.url}
        backend = engines.connect(settings_from_env(env))
        yield Engine(backend, env)
        backend.disconnect()


@pytest.fixture(scope="module")
def pyspark(sample_tables, tmp_path_factory):
    """The sample as Parquet tables of a local Spark session (``default``, and the foreign layout in ``crm``);
    the backend is what :func:`engines.connect` opens for ``CRM_BACKEND=pyspark`` (it reuses the session)."""
    reason = spark_missing()
    if reason:
        unavailable(reason)
    folder = tmp_path_factory.mktemp("spark")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        session = spark_session(folder / "warehouse")
        try:
            copy_to_spark(session, sample_tables, folder / "lake")
            copy_to_spark(session, _foreign_layout(sample_tables), folder / "lake", database="crm", renames=FOREIGN)
            env = {"CRM_BACKEND": "pyspark"}
            yield Engine(engines.connect(settings_from_env(env)), env)
        finally:
            stop_spark(session)


def _size(result) -> int:
    if isinstance(result, pd.DataFrame):
        return len(result)
    if isinstance(result, list | tuple):
        return sum(_size(x) for x in result) or len(result)
    return 1


ENGINE_CASES = [pytest.param(engine, case.id, id=f"{engine}-{case.id}")
                for engine in ("postgres", "pyspark") for case in CASES if engine == "postgres" or case.spark]


@pytest.mark.engines
@pytest.mark.parametrize(("engine", "case_id"), ENGINE_CASES)
def test_same_results_as_duckdb(engine, case_id, request, reference):
    backend = request.getfixturevalue(engine).backend
    case = CASES_BY_ID[case_id]
    expected = reference(case_id)
    assert _size(expected) > 0, f"{case_id} is empty on the sample: the comparison would prove nothing"
    problems = differences(expected, case.run(backend))  # in order: every function here documents its order
    assert not problems, f"{case_id} on {engine} differs from DuckDB:\n" + "\n".join(problems)


@pytest.mark.engines
@pytest.mark.parametrize("engine", ["postgres", "pyspark"])
def test_every_canonical_table_is_seen(engine, request, sample_tables):
    # the sample's 11 canonical tables (goals empty); the foreign layout in crm is not listed
    assert request.getfixturevalue(engine).backend.list_tables() == sorted(sample_tables)


@pytest.mark.engines
@pytest.mark.parametrize("engine", ["postgres", "pyspark"])
def test_mapped_foreign_layout_gives_the_same_numbers(engine, request, reference, tmp_path):
    """crm.sales_orders (order_no, buyer, order_ts, net_amount DECIMAL, loaded_at) and crm.clients (client_id,
    sales_region, joined TIMESTAMP) read through a TOML mapping give DuckDB's numbers."""
    running = request.getfixturevalue(engine)
    (tmp_path / "tables.toml").write_text(MAPPING_TOML)
    mapped = engines.connect(settings_from_env({**running.env, "CRM_TABLE_MAP": str(tmp_path / "tables.toml")}))
    try:
        raw_orders = mapped.backend.table("sales_orders", database="crm")
        assert raw_orders.schema()["net_amount"].is_decimal() and "loaded_at" in raw_orders.columns
        orders = mapped.table("orders")
        assert orders.schema()["amount"] == ibis.dtype("float64") and "loaded_at" not in orders.columns
        assert mapped.table("customers").schema()["signup_date"] == ibis.dtype("date")
        for case_id in MAPPED_CASES:
            problems = differences(reference(case_id), CASES_BY_ID[case_id].run(mapped))
            assert not problems, f"{case_id} on the mapped {engine} layout:\n" + "\n".join(problems)
    finally:
        if engine == "postgres":  # its own connection; Spark's disconnect would stop the shared session
            mapped.disconnect()


@pytest.mark.engines
def test_spark_strip_keeps_letters(pyspark):
    # Ibis 12 compiles strip() to TRIM(' \t\n\r\v\f' FROM x), which Spark reads as trimming 'v' and 'f' too.
    t = ibis.memtable({"name": [" Jeff\t", "staff ", "vivid"]})
    assert pyspark.backend.execute(t.select(name=t.name.strip()))["name"].tolist() == ["Jeff", "staff", "vivid"]
