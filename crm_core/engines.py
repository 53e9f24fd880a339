"""Where the metrics run: the embedded DuckDB store, or an engine that already holds the data (Apache Spark,
PostgreSQL, and — untested here — anything else Ibis connects to: Snowflake, BigQuery, Trino ...).

Every metric takes an Ibis backend and reads the canonical tables (``docs/data-model.md``) by name. On another
engine the data rarely sits under those names: :class:`MappedBackend` wraps the engine's backend and presents each
canonical table as an Ibis expression over the engine's own table — renamed columns, the canonical column types
(ids as text, money as double, a ``DATE`` timestamp column cast ...), nothing else — so the metric runs in that
engine and only its small result comes back. No data is copied into DuckDB. Identifiers go through Ibis, which
quotes them; no SQL is built from the settings or the mapping file.

Settings (environment, read by :func:`settings_from_env`):

- ``CRM_BACKEND``: ``duckdb`` (default: the embedded store of :mod:`crm_core.store`), ``pyspark``, or a URL;
- ``CRM_BACKEND_URL``: an Ibis connection URL — ``postgresql://user:password@host:5432/database``,
  ``snowflake://...``, ``bigquery://project/dataset``, ``trino://user@host:8080/catalog/schema``,
  ``duckdb:///path/to/warehouse.duckdb`` ...; the URL's scheme names the engine;
- ``CRM_SPARK_MASTER`` (``local[*]``, ``spark://host:7077``, ``yarn`` ...) and ``CRM_SPARK_CONF`` (a JSON object
  of Spark settings) for ``CRM_BACKEND=pyspark``; an already running session (a notebook's) is reused;
- ``CRM_TABLE_MAP``: a TOML or JSON file saying where each canonical table lives and what its columns are called::

      database = "crm"                 # schema (PostgreSQL) or database (Spark) of every table; optional

      [tables.orders]
      table = "sales_orders"           # the engine's table; default: the canonical name
      columns = { ordered_at = "order_ts", amount = "net_amount" }   # canonical = engine column

      [tables.customers]
      database = "master_data"         # this table's own schema

  A table not listed is looked up under its canonical name; a column not listed under its canonical name. Unknown
  tables, columns and keys are refused with the file and what to write instead (:func:`parse_mapping`).

Imports, notes and goals write to the embedded store only (:func:`writes_unavailable` says so for the app and CLI).
One :class:`MappedBackend` may be shared by threads when its engine backend may (Spark's session may; Ibis'
PostgreSQL backend, one psycopg connection in transaction blocks, may not): its table look-ups are locked.
"""

from __future__ import annotations

import difflib
import json
import os
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from crm_core.schema import TABLES

__all__ = [
    "BACKEND_ENV",
    "MAPPING_ENV",
    "SPARK_CONF_ENV",
    "SPARK_MASTER_ENV",
    "URL_ENV",
    "EngineSettings",
    "MappedBackend",
    "TableMapping",
    "TableSource",
    "connect",
    "data_bounds",
    "load_mapping",
    "parse_mapping",
    "settings_from_env",
    "writes_unavailable",
]

BACKEND_ENV = "CRM_BACKEND"
URL_ENV = "CRM_BACKEND_URL"
MAPPING_ENV = "CRM_TABLE_MAP"
SPARK_MASTER_ENV = "CRM_SPARK_MASTER"
SPARK_CONF_ENV = "CRM_SPARK_CONF"

EMBEDDED = "duckdb"
_ENGINE_NAMES = {"postgresql": "postgres", "spark": "pyspark"}
_LABELS = {"duckdb": "DuckDB", "pyspark": "Apache Spark", "postgres": "PostgreSQL", "snowflake": "Snowflake",
           "bigquery": "BigQuery", "trino": "Trino"}


# --------------------------------------------------------------------------------------------- the mapping


@dataclass(frozen=True)
class TableSource:
    """Where one canonical table lives on the engine: its table, its database (schema), and its column names
    (``columns``: canonical name → engine name, only those that differ)."""

    table: str
    database: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        """``database.table`` (or ``table``) for messages."""
        return f"{self.database}.{self.table}" if self.database else self.table


@dataclass(frozen=True)
class TableMapping:
    """Where the canonical tables live: ``tables`` by canonical name; the rest are under their own names in
    ``database`` (None: the connection's default schema or database)."""

    database: str | None = None
    tables: Mapping[str, TableSource] = field(default_factory=dict)
    origin: str = "the table mapping"

    def source(self, name: str) -> TableSource:
        """The engine table that holds canonical table ``name``."""
        return self.tables.get(name) or TableSource(name, self.database)


def _name(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be a name (non-empty text), got {value!r}")
    if any(ch in value for ch in "\x00\r\n"):
        raise ValueError(f"{where} {value!r} contains a control character; write the name as the engine shows it")
    return value.strip()


def _unknown(kind: str, key: str, choices, where: str) -> ValueError:
    close = difflib.get_close_matches(key, list(choices), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ValueError(f"{where}: {key!r} is not {kind}{hint}; choose from: {', '.join(choices)}")


def _check_keys(section: Mapping, allowed: tuple[str, ...], where: str) -> None:
    for key in section:
        if key not in allowed:
            raise _unknown("a setting here", str(key), allowed, where)


def parse_mapping(data: Mapping, origin: str = "the table mapping") -> TableMapping:
    """Validate a mapping read from TOML or JSON (see the module docstring) into a :class:`TableMapping`.

    >>> m = parse_mapping({"database": "crm", "tables": {"orders": {"table": "sales_orders",
    ...                    "columns": {"ordered_at": "order_ts"}}}})
    >>> m.source("orders").qualified, dict(m.source("orders").columns), m.source("customers").qualified
    ('crm.sales_orders', {'ordered_at': 'order_ts'}, 'crm.customers')
    >>> parse_mapping({"tables": {"order": {"table": "x"}}}, "tables.toml")
    Traceback (most recent call last):
    ...
    ValueError: tables.toml: [tables]: 'order' is not a canonical table (did you mean 'orders'?); choose from: ...
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{origin}: expected a table of settings (database, tables), got {type(data).__name__}")
    _check_keys(data, ("database", "tables"), f"{origin}: top level")
    database = _name(data["database"], f"{origin}: database") if data.get("database") is not None else None
    sections = data.get("tables", {})
    if not isinstance(sections, Mapping):
        raise ValueError(f"{origin}: [tables] must be a table of canonical table names, got {sections!r}")
    tables: dict[str, TableSource] = {}
    for name, section in sections.items():
        if name not in TABLES:
            raise _unknown("a canonical table", str(name), list(TABLES), f"{origin}: [tables]")
        where = f"{origin}: [tables.{name}]"
        if not isinstance(section, Mapping):
            raise ValueError(f"{where} must be a table with table, database and columns, got {section!r}")
        _check_keys(section, ("table", "database", "columns"), where)
        columns = section.get("columns", {})
        if not isinstance(columns, Mapping):
            raise ValueError(f"{where} columns must map canonical column = engine column, got {columns!r}")
        canonical = TABLES[name].column_names
        renamed: dict[str, str] = {}
        for column, engine_column in columns.items():
            if column not in canonical:
                raise _unknown(f"a column of {name}", str(column), canonical, f"{where} columns")
            renamed[column] = _name(engine_column, f"{where} columns.{column}")
        table = _name(section["table"], f"{where} table") if "table" in section else name
        db = _name(section["database"], f"{where} database") if section.get("database") is not None else database
        tables[name] = TableSource(table, db, MappingProxyType(renamed))
    return TableMapping(database, MappingProxyType(tables), origin)


def load_mapping(path: str | os.PathLike) -> TableMapping:
    """Read and validate a mapping file: ``.json`` as JSON, anything else as TOML."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the table mapping ({exc.strerror or exc}); set {MAPPING_ENV} to a "
                         "TOML or JSON file") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ValueError(f"{path}: not valid {kind}: {exc}") from exc
    return parse_mapping(data, str(path))


# --------------------------------------------------------------------------------------------- the canonical view


def _conform(column: ir.Value, logical: str) -> ir.Value:
    """``column`` with the canonical column type of ``logical`` (schema.SQL_TYPES); unchanged when it has it."""
    t = column.type()
    if logical in ("id", "text"):
        return column if t.is_string() else column.cast("string")
    if logical == "int":
        return column if t.is_integer() else column.cast("int64")
    if logical in ("number", "money"):
        return column if t.is_float64() else column.cast("float64")
    if logical == "date":
        if t.is_date():
            return column
        return column.date() if t.is_timestamp() else column.cast("date")
    if logical == "ts":
        if t.is_timestamp():
            return column if t.timezone is None else column.cast(dt.Timestamp())
        return column.cast("timestamp")
    if logical == "bool":
        if t.is_boolean():
            return column
        return column != 0 if t.is_numeric() else column.cast("boolean")
    raise ValueError(f"unknown logical type {logical!r}")


def _database(name: str | None):
    """A database as Ibis takes it: ``"catalog.schema"`` becomes the tuple ``("catalog", "schema")``."""
    if name is None or "." not in name:
        return name
    return tuple(name.split("."))


def _find(name: str, names) -> str | None:
    """``name`` among ``names``: exactly, else the one name equal to it ignoring case (Spark lower-cases)."""
    if name in names:
        return name
    folded = [n for n in names if n.lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None


def _spark_trim_fixed(backend) -> None:
    """Give a PySpark backend a compiler whose ``strip()`` trims whitespace, not the letters ``v`` and ``f``.

    Ibis 12 compiles ``strip()`` to ``TRIM(' \\t\\n\\r\\v\\f' FROM x)``; Spark's SQL parser knows no ``\\v`` or
    ``\\f`` escape and reads them as the letters, so on Spark ``'staff'.strip()`` was ``'sta'`` and an agent called
    Jeff became ``Je``. This backend's compiler trims spaces, tabs and line breaks instead (a vertical tab or form
    feed at the end of a CRM value stays). Only this backend instance changes; a fixed Ibis makes it a no-op.
    """
    base = type(backend.compiler)
    probe = backend.compile(ibis.table({"x": "string"}, name="t").x.strip().name("x").as_table())
    if "\\v" not in probe or getattr(base, "_trims_whitespace_only", False):
        return
    whitespace = " \t\n\r"

    class _Compiler(base):
        _trims_whitespace_only = True

        def visit_Strip(self, op, *, arg):
            return self.f.trim(arg, whitespace)

        def visit_LStrip(self, op, *, arg):
            return self.f.ltrim(arg, whitespace)

        def visit_RStrip(self, op, *, arg):
            return self.f.rtrim(arg, whitespace)

    backend.compiler = _Compiler()


class MappedBackend:
    """An Ibis backend whose canonical tables are views over the engine's own tables (see the module docstring).

    ``list_tables()`` lists the canonical tables the engine has; ``table(name)`` returns one as an Ibis expression
    with the canonical column names and types (columns the engine lacks are left out; a required one missing is an
    error naming it). Every other attribute (``execute``, ``to_pyarrow``, ``name`` ...) is the engine backend's.
    Table look-ups are cached: build a new one to see tables created since.
    """

    def __init__(self, backend, mapping: TableMapping | None = None) -> None:
        self.backend = backend
        self.mapping = mapping or TableMapping()
        if backend.name == "pyspark":
            _spark_trim_fixed(backend)
        self._views: dict[str, ir.Table] = {}
        self._listed: dict[object, list[str]] = {}
        self._lock = threading.RLock()  # look-ups fill the caches (and Spark switches databases for them)

    def __getattr__(self, name: str):
        return getattr(self.backend, name)

    def __repr__(self) -> str:
        return f"MappedBackend({self.backend.name}, {self.mapping.origin})"

    def _engine_tables(self, database: str | None) -> list[str]:
        key = _database(database)
        with self._lock:
            if key not in self._listed:
                try:
                    listed = self.backend.list_tables(database=key) if key else self.backend.list_tables()
                except Exception as exc:  # a missing schema raises engine-specific errors
                    first = str(exc).splitlines()[0] if str(exc) else ""
                    raise ValueError(f"{self.backend.name}: cannot list the tables of "
                                     f"{database or 'the default database'} ({type(exc).__name__}: {first}); check "
                                     f"the database in {self.mapping.origin}") from exc
                self._listed[key] = list(listed)
            return self._listed[key]

    def _engine_table(self, source: TableSource) -> str | None:
        return _find(source.table, self._engine_tables(source.database))

    def list_tables(self, like: str | None = None, database=None) -> list[str]:
        """The canonical tables present on the engine (``like``/``database`` are passed to the engine as is)."""
        if like is not None or database is not None:
            return self.backend.list_tables(like=like, database=database)
        return sorted(n for n in TABLES if self._engine_table(self.mapping.source(n)) is not None)

    def to_pyarrow(self, expr: ir.Expr, /, **kwargs) -> pa.Table:
        """``expr``'s result as Arrow with the types Ibis gives it, through :meth:`execute`.

        The engine's own Arrow export takes the values as the engine sends them: PostgreSQL types a float literal
        such as ``26.0`` as NUMERIC, and Ibis 12's Arrow conversion then fails ("Could not convert Decimal('26.0')
        ... to double") where its pandas conversion casts. On an engine the rows come over the wire either way.
        """
        if isinstance(expr, ir.Table | ir.Column):
            frame = self.backend.execute(expr, **kwargs)
            table = expr.as_table()
            frame = frame.to_frame() if isinstance(frame, pd.Series) else frame
            return pa.Table.from_pandas(frame, schema=table.schema().to_pyarrow(), preserve_index=False)
        return self.backend.to_pyarrow(expr, **kwargs)

    def table(self, name: str, database=None) -> ir.Table:
        """Canonical table ``name`` over its engine table; other names (or a ``database``) go to the engine."""
        if name not in TABLES or database is not None:
            return self.backend.table(name, database=database or _database(self.mapping.database))
        with self._lock:
            if name not in self._views:
                self._views[name] = self._view(name)
            return self._views[name]

    def _view(self, name: str) -> ir.Table:
        source = self.mapping.source(name)
        found = self._engine_table(source)
        if found is None:
            raise ValueError(f"The database has no {name!r} table: {self.backend.name} has no table "
                             f"{source.qualified}; create it there or map {name} to the engine's table in "
                             f"{self.mapping.origin} ([tables.{name}] table = \"...\")")
        raw = self.backend.table(found, database=_database(source.database))
        columns, missing = {}, []
        for column in TABLES[name].columns:
            wanted = source.columns.get(column.name, column.name)
            engine_column = _find(wanted, raw.columns)
            if engine_column is not None:
                columns[column.name] = _conform(raw[engine_column], column.type)
            elif column.name in source.columns:
                raise ValueError(f"{source.qualified} has no column {wanted!r} (mapped to {name}.{column.name} in "
                                 f"{self.mapping.origin}); its columns are: {', '.join(raw.columns)}")
            elif column.required:
                missing.append(column.name)
        if missing:
            raise ValueError(f"{source.qualified} (the {name} table) has no column for {', '.join(missing)} "
                             f"(required); map them in {self.mapping.origin} under [tables.{name}] columns, e.g. "
                             f"columns = {{ {missing[0]} = \"...\" }}")
        return raw.select(**columns)


# --------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class EngineSettings:
    """Which engine the metrics run on; ``kind`` is ``duckdb`` with no ``url`` for the embedded store."""

    kind: str = EMBEDDED
    url: str | None = None
    spark_master: str | None = None
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    mapping: TableMapping | None = None

    @property
    def is_embedded(self) -> bool:
        """True for the app's own DuckDB file (imports, notes and goals work only there)."""
        return self.kind == EMBEDDED and self.url is None

    def describe(self) -> str:
        """The engine for people, never with a password: ``PostgreSQL at postgresql://app@db:5432/crm``.

        >>> EngineSettings("postgres", "postgresql://app:secret@db:5432/crm").describe()
        'PostgreSQL at postgresql://app@db:5432/crm'
        """
        if self.is_embedded:
            return "the embedded DuckDB store"
        label = _LABELS.get(self.kind, self.kind)
        if self.url is None:
            where = f"Apache Spark (master {self.spark_master})" if self.spark_master else "Apache Spark"
        else:
            parts = urlsplit(self.url)
            host = parts.hostname or ""
            user = f"{parts.username}@" if parts.username else ""
            port = f":{parts.port}" if parts.port else ""
            where = f"{label} at {parts.scheme}://{user}{host}{port}{parts.path}"
        if self.mapping is not None:
            where += f", tables as mapped in {self.mapping.origin}"
        return where


def _kind_of_url(url: str, variable: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    if not scheme or "://" not in url:
        raise ValueError(f"{variable}={url.split('@')[-1]!r} is not a connection URL; use e.g. "
                         "postgresql://user@host:5432/database")
    return _ENGINE_NAMES.get(scheme, scheme)


def settings_from_env(environ: Mapping[str, str] | None = None) -> EngineSettings:
    """The engine settings from the environment (variables in the module docstring); a clear error for a bad one.

    >>> settings_from_env({"CRM_BACKEND": "pyspark", "CRM_SPARK_MASTER": "local[2]"}).describe()
    'Apache Spark (master local[2])'
    >>> settings_from_env({}).is_embedded
    True
    """
    env = os.environ if environ is None else environ
    named = env.get(BACKEND_ENV, "").strip()
    url = env.get(URL_ENV, "").strip() or None
    if "://" in named:
        if url and url != named:
            raise ValueError(f"{BACKEND_ENV} and {URL_ENV} name two different URLs; set only one of them")
        url, named = named, ""
    named = _ENGINE_NAMES.get(named.lower(), named.lower())
    if url:
        kind = _kind_of_url(url, URL_ENV)
        if named and named != kind:
            raise ValueError(f"{BACKEND_ENV}={named} but {URL_ENV} is a {kind} URL; set only {URL_ENV}")
    elif named in ("", EMBEDDED, "pyspark"):
        kind = named or EMBEDDED
    elif named == "postgres":
        raise ValueError(f"{BACKEND_ENV}=postgres needs {URL_ENV}=postgresql://user:password@host:5432/database")
    else:
        raise ValueError(f"{BACKEND_ENV}={named!r} is not an engine; use duckdb (the embedded store), pyspark, or "
                         f"a connection URL in {URL_ENV} (postgresql://, snowflake://, bigquery://, trino:// ...)")
    conf_text = env.get(SPARK_CONF_ENV, "").strip()
    try:
        conf = json.loads(conf_text) if conf_text else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"{SPARK_CONF_ENV} is not JSON ({exc}); write e.g. "
                         '{"spark.sql.shuffle.partitions": "8"}') from exc
    if not isinstance(conf, dict):
        raise ValueError(f"{SPARK_CONF_ENV} must be a JSON object of Spark settings, got {conf_text!r}")
    master = env.get(SPARK_MASTER_ENV, "").strip() or None
    mapping_path = env.get(MAPPING_ENV, "").strip()
    mapping = load_mapping(mapping_path) if mapping_path else None
    settings = EngineSettings(kind, url, master, MappingProxyType({str(k): str(v) for k, v in conf.items()}), mapping)
    if settings.is_embedded and mapping is not None:
        raise ValueError(f"{MAPPING_ENV} maps tables of another engine, but {BACKEND_ENV} is the embedded store; "
                         f"set {BACKEND_ENV}/{URL_ENV} too, or unset {MAPPING_ENV}")
    return settings


def _spark_session(settings: EngineSettings):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("crm-dashboard")
    if settings.spark_master:
        builder = builder.master(settings.spark_master)
    for key, value in settings.spark_conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def connect(settings: EngineSettings | None = None) -> MappedBackend:
    """The metrics' backend on the configured engine (default: :func:`settings_from_env`).

    The embedded store is opened by :func:`crm_core.store.connect` instead; asking for it here is an error.
    """
    settings = settings or settings_from_env()
    if settings.is_embedded:
        raise ValueError("the embedded DuckDB store is opened with crm_core.store.connect(); set "
                         f"{BACKEND_ENV}=pyspark or {URL_ENV} to use another engine")
    try:
        if settings.url is None:
            backend = ibis.pyspark.connect(_spark_session(settings))
        else:
            backend = ibis.connect(settings.url)
    except ImportError as exc:
        raise RuntimeError(f"{settings.describe()}: Ibis' {settings.kind} backend is not installed; pip install "
                           f"'ibis-framework[{settings.kind}]==12.0.0' (docs/scale.md)") from exc
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RuntimeError(f"cannot connect to {settings.describe()}: {first}") from exc
    return MappedBackend(backend, settings.mapping)


def writes_unavailable(settings: EngineSettings | None = None) -> str | None:
    """Why imports, the sample reset and new notes are off (another engine is configured), or None; goals stay."""
    settings = settings or settings_from_env()
    if settings.is_embedded:
        return None
    return (f"The app reads {settings.describe()}. Imports, notes, goals and the sample reset write to the embedded "
            "DuckDB store only: goals are kept there and work as usual, but imports, the sample reset and new notes "
            "would not reach the data shown here, so they are off. Load data into that engine with its own tools, "
            f"or unset {BACKEND_ENV} and {URL_ENV} to work on the embedded store.")


def data_bounds(backend) -> tuple[date | None, date | None, tuple[str, ...]]:
    """The first and last order dates and the customers' regions (sorted): the app's filter bounds, on any engine."""
    present = set(backend.list_tables())
    first = last = None
    if "orders" in present:
        orders = backend.table("orders")
        bounds = backend.execute(orders.aggregate(first=orders.ordered_at.min(), last=orders.ordered_at.max()))
        first, last = (None if pd.isna(v) else pd.Timestamp(v).date() for v in bounds.iloc[0][["first", "last"]])
    regions: tuple[str, ...] = ()
    if "customers" in present and "region" in backend.table("customers").columns:
        customers = backend.table("customers")
        known = customers.filter(customers.region.notnull())
        frame = backend.execute(known.select("region").distinct())
        regions = tuple(sorted(str(r) for r in frame["region"]))
    return first, last, regions
