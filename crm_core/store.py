"""The embedded store: one DuckDB file holding the canonical tables, the import log and mapping templates.

The file is chosen by ``--db PATH``, else the ``CRM_DB`` environment variable, else ``data/crm.duckdb`` in the
project folder. Metrics never touch DuckDB directly: they take the Ibis backend from :func:`ibis_backend`, so the
same expressions run on PostgreSQL or Spark when a user's data lives there.

Every connection gets a memory limit (``$CRM_MEMORY_LIMIT``, default 4GB). The app's connection is also passed
through :func:`harden`: DuckDB may then read files only under the temp folder (uploads and converted copies) and the
bundled sample folder, may not install or load extensions, and its configuration is locked, so no query — whatever
text reached it — can read ``/etc/passwd``, write a file elsewhere, attach another database or undo these settings.
The CLI is not hardened: reading the files its user names is its job.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import duckdb

from crm_core.schema import TABLES, table_ddl

__all__ = [
    "DEFAULT_DB",
    "db_path",
    "connect",
    "ensure_schema",
    "harden",
    "is_locked",
    "memory_limit",
    "ibis_backend",
    "quote_ident",
    "table_exists",
    "table_count",
]

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DB = PROJECT_DIR / "data" / "crm.duckdb"
DEFAULT_MEMORY_LIMIT = "4GB"

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


def memory_limit() -> str:
    """DuckDB's memory limit: ``$CRM_MEMORY_LIMIT`` (``4GB``, ``512MB``, or ``50%`` of physical memory), else 4GB."""
    text = os.environ.get("CRM_MEMORY_LIMIT", "").strip() or DEFAULT_MEMORY_LIMIT
    if not text.endswith("%"):
        return text
    share = float(text[:-1]) / 100  # ValueError for "abc%"
    if not 0 < share <= 1:
        raise ValueError(f"{text}: a share of memory must be above 0% and at most 100%")
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{max(1, int(total * share) // 2**20)}MiB"


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
    if is_locked(con):  # this process already opened and hardened the same file: its settings hold and are locked
        if not read_only:
            ensure_schema(con)
        return con
    # A bound on memory: a hostile upload must fail with an error, not take the machine down.
    try:
        con.execute("SET memory_limit = ?", [memory_limit()])
    except (ValueError, duckdb.Error) as exc:
        con.close()
        raise RuntimeError(f"CRM_MEMORY_LIMIT={os.environ.get('CRM_MEMORY_LIMIT')!r} is not a memory size; use e.g. "
                           "4GB, 512MB or 50% (of this machine's memory)") from exc
    if not read_only:
        # Crash safety: with optimistic writes (DuckDB's default), a large INSERT is written to the database file
        # before COMMIT and the WAL only points at it; a process killed early in that COMMIT (DuckDB 1.5.6) reopens
        # with the inserted rows but without the same transaction's DELETE and import-log row — a replace import
        # half applied. Writing the rows through the WAL keeps every transaction all-or-nothing
        # (tests/test_crash_safety.py kills imports to prove it); bulk loads are no slower.
        con.execute("SET enable_optimistic_write = false")
        ensure_schema(con)
    return con


def is_locked(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the connection's database was hardened: its configuration can no longer be changed."""
    return bool(con.execute("SELECT current_setting('lock_configuration')").fetchone()[0])


def default_allowed_dirs() -> tuple[Path, ...]:
    """Where the app's DuckDB may read files: the temp folder (uploads, converted copies) and the sample folder."""
    from crm_core.sample import SAMPLE_DIR

    return Path(tempfile.gettempdir()), SAMPLE_DIR


def harden(con: duckdb.DuckDBPyConnection, allowed_dirs: Iterable[str | os.PathLike] | None = None) -> None:
    """Confine the connection's database to ``allowed_dirs`` (default :func:`default_allowed_dirs`), then lock it.

    Sets, for the whole database (every cursor of ``con``, every later connection to the same file in this process):
    ``allowed_directories`` (each folder as given and resolved), ``enable_external_access = false`` — file readers,
    ``COPY``, ``ATTACH`` and ``glob`` refuse any other path (``..`` included), ``INSTALL`` and ``LOAD`` are refused —,
    ``autoinstall_known_extensions`` and ``autoload_known_extensions`` off, the two settings Ibis would set on each
    backend (``TimeZone = 'UTC'``, ``python_enable_replacements = false``), and last ``lock_configuration = true``:
    any later ``SET`` or ``RESET`` fails. DuckDB itself still writes the database file, its WAL and its spill folder.
    Idempotent: a connection already locked is left as it is.
    """
    if is_locked(con):
        return
    dirs: list[str] = []
    for d in default_allowed_dirs() if allowed_dirs is None else allowed_dirs:
        for form in (Path(d).absolute(), Path(d).resolve()):
            text = str(form).rstrip(os.sep) + os.sep  # a folder, so /tmp does not also allow /tmpfoo
            if text not in dirs:
                dirs.append(text)
    con.execute("SET allowed_directories = ?", [dirs])
    for statement in (
        "SET GLOBAL TimeZone = 'UTC'",
        "SET GLOBAL python_enable_replacements = false",
        "SET enable_external_access = false",
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        "SET lock_configuration = true",
    ):
        con.execute(statement)


_LOCKED_BACKEND: type | None = None


def _locked_backend_class() -> type:
    """Ibis over a hardened connection: :func:`harden` already made the settings Ibis would otherwise ``SET``.

    Built on first use: Ibis is imported only by code that runs metrics, so a process that only imports files (the
    CLI's ``import``, the benchmark) does not load it (about 30 MB).
    """
    global _LOCKED_BACKEND
    if _LOCKED_BACKEND is None:
        import ibis.backends.duckdb

        class _LockedBackend(ibis.backends.duckdb.Backend):
            def _post_connect(self, extensions=None) -> None:
                self._record_batch_readers_consumed = {}

        _LOCKED_BACKEND = _LockedBackend
    return _LOCKED_BACKEND


def ibis_backend(con: duckdb.DuckDBPyConnection):
    """An Ibis backend over an open DuckDB connection (metrics take this, never the raw connection)."""
    import ibis

    if not is_locked(con):
        return ibis.duckdb.from_connection(con)
    backend = _locked_backend_class()()
    backend.con = con
    backend._can_reconnect = False
    backend._post_connect()
    return backend


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?", [name]
    ).fetchone()
    return bool(row and row[0])


def table_count(con: duckdb.DuckDBPyConnection, name: str) -> int:
    if not table_exists(con, name):
        return 0
    return int(con.execute(f"SELECT count(*) FROM {quote_ident(name)}").fetchone()[0])
