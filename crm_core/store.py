"""The embedded store: one DuckDB file holding the canonical tables, the import log and mapping templates.

The file is chosen by ``--db PATH``, else the ``CRM_DB`` environment variable, else ``data/crm.duckdb`` in the
project folder. Metrics never touch DuckDB directly: they take the Ibis backend from :func:`ibis_backend`, so the
same expressions run on PostgreSQL or Spark when a user's data lives there.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import ibis

from crm_core.schema import TABLES, table_ddl

__all__ = [
    "DEFAULT_DB",
    "db_path",
    "connect",
    "ensure_schema",
    "ibis_backend",
    "quote_ident",
    "table_exists",
    "table_count",
]

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DB = PROJECT_DIR / "data" / "crm.duckdb"

META_DDL = (
    """CREATE TABLE IF NOT EXISTS import_log (
        import_id VARCHAR PRIMARY KEY,
        file_name VARCHAR,
        file_sha256 VARCHAR,
        table_name VARCHAR,
        mode VARCHAR,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        rows_read BIGINT,
        rows_accepted BIGINT,
        rows_rejected BIGINT,
        outcome VARCHAR,
        message VARCHAR,
        report_json VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS mapping_templates (
        template_name VARCHAR PRIMARY KEY,
        table_name VARCHAR NOT NULL,
        mapping_json VARCHAR NOT NULL,
        source_columns_json VARCHAR,
        created_at TIMESTAMP
    )""",
)


def db_path(path: str | os.PathLike | None = None) -> Path:
    """The database file: ``path`` if given, else ``$CRM_DB``, else ``data/crm.duckdb`` in the project."""
    if path:
        return Path(path)
    env = os.environ.get("CRM_DB")
    return Path(env) if env else DEFAULT_DB


def quote_ident(name: str) -> str:
    """A SQL identifier, double-quoted with embedded quotes doubled: never build SQL from raw user text."""
    return '"' + str(name).replace('"', '""') + '"'


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the canonical tables (empty) and the meta tables if they are missing. Idempotent."""
    for table in TABLES.values():
        con.execute(table_ddl(table))
    for ddl in META_DDL:
        con.execute(ddl)


def connect(path: str | os.PathLike | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the store and make sure its tables exist.

    A database held by another process raises a ``RuntimeError`` that says so, instead of DuckDB's lock error.
    """
    target = db_path(path)
    if target != Path(":memory:"):
        target.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(target), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            m = re.search(r"Conflicting lock is held in (.*?) \(PID (\d+)\)", str(exc))
            holder = f" (PID {m.group(2)}, {Path(m.group(1)).name})" if m else ""
            raise RuntimeError(f"{target}: the database is locked: it is in use by another process{holder}; close "
                               "that process (or the other app or notebook using this file) and try again") from exc
        raise
    # A bound on memory: a hostile upload must fail with an error, not take the machine down.
    con.execute("SET memory_limit = ?", [os.environ.get("CRM_MEMORY_LIMIT", "4GB")])
    if not read_only:
        # Crash safety: with optimistic writes (DuckDB's default), a large INSERT is written to the database file
        # before COMMIT and the WAL only points at it; a process killed early in that COMMIT (DuckDB 1.5.6) reopens
        # with the inserted rows but without the same transaction's DELETE and import-log row — a replace import
        # half applied. Writing the rows through the WAL keeps every transaction all-or-nothing
        # (tests/test_crash_safety.py kills imports to prove it); bulk loads are no slower.
        con.execute("SET enable_optimistic_write = false")
        ensure_schema(con)
    return con


def ibis_backend(con: duckdb.DuckDBPyConnection):
    """An Ibis backend over an open DuckDB connection (metrics take this, never the raw connection)."""
    return ibis.duckdb.from_connection(con)


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?", [name]
    ).fetchone()
    return bool(row and row[0])


def table_count(con: duckdb.DuckDBPyConnection, name: str) -> int:
    if not table_exists(con, name):
        return 0
    return int(con.execute(f"SELECT count(*) FROM {quote_ident(name)}").fetchone()[0])
