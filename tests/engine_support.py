"""Support for the engine tests: a throw-away PostgreSQL cluster, a local Spark session, and the sample data
copied into them.

- :class:`PostgresServer` runs ``initdb`` into a fresh temp folder and ``pg_ctl start`` on a free loopback port,
  with its Unix socket in that folder (never ``/var/run/postgresql``), ``trust`` authentication (loopback only,
  throw-away data) and durability off; stopped and removed on exit. ``initdb`` refuses to run as root, so as root
  every server command runs as the ``postgres`` user (created by Debian's ``postgresql`` package) via ``runuser``.
- :func:`spark_session` starts one local Spark (``local[2]``, ``SPARK_LOCAL_IP=127.0.0.1``, UI off, two shuffle
  partitions, an in-memory catalog and a fresh ``spark.sql.warehouse.dir``, session time zone UTC).
- :func:`canonical_tables` reads the canonical tables out of a DuckDB store as Arrow tables;
  :func:`copy_tables` writes them into another Ibis backend with the same column types.

When a server's binaries are missing, :func:`unavailable` skips the tests with the reason, or fails them when
``CRM_REQUIRE_ENGINES=1`` (CI sets it, so a broken install fails instead of silently skipping). Nothing here
imports pyspark or psycopg at module level: pytest imports this file for doctests whether or not they are there.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from crm_core.schema import TABLES

POSTGRES_START_S = 60  # pg_ctl -w waits this long for the server to accept connections
REQUIRE_ENV = "CRM_REQUIRE_ENGINES"


def engines_required() -> bool:
    """True when ``CRM_REQUIRE_ENGINES=1``: a missing engine fails the tests instead of skipping them."""
    return os.environ.get(REQUIRE_ENV, "").strip() == "1"


def unavailable(reason: str):
    """Skip with ``reason``, or fail when ``CRM_REQUIRE_ENGINES=1``."""
    if engines_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: the engine tests must run here)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------- PostgreSQL


def postgres_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on ``PATH``, else Debian's newest ``/usr/lib/postgresql/N/bin``."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    found = [d for d in Path("/usr/lib/postgresql").glob("*/bin")
             if (d / "initdb").exists() and (d / "pg_ctl").exists()]
    found.sort(key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)
    return found[-1] if found else None


def postgres_missing() -> str | None:
    """Why a PostgreSQL server cannot be started here, or None when it can."""
    if postgres_bin_dir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found (apt-get install postgresql)"
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed (pip install -r requirements-dev.txt)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user for initdb (apt-get install postgresql creates it)"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing, so initdb cannot run as the postgres user"
    return None


class PostgresServer:
    """A throw-away PostgreSQL cluster on 127.0.0.1 with its socket and data in one temp folder.

    Use as a context manager; :attr:`url` is a ``postgresql://`` URL for :func:`crm_core.engines.connect`.
    """

    user = "crm_test"  # not the name of a schema: "$user" leads the default search_path
    database = "postgres"

    def __init__(self) -> None:
        self.bin_dir = postgres_bin_dir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="crm_pg_"))
        self.data_dir = self.root / "data"
        self.log_path = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        self._started = False

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=POSTGRES_START_S + 30)
        if done.returncode != 0:
            log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()}\n{log}")

    def __enter__(self) -> PostgresServer:
        if self._as_postgres:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
        try:
            self._run("initdb", "-D", str(self.data_dir), "-U", self.user, "-A", "trust", "-E", "UTF8",
                      "--locale=C", "--no-sync")
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c TimeZone=UTC")
            self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t",
                      str(POSTGRES_START_S), "-o", options, "start")
            self._started = True
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self._started:
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
                self._started = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# --------------------------------------------------------------------------------------------- Spark


def spark_missing() -> str | None:
    """Why a local Spark session cannot be started here, or None when it can."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -r requirements-dev.txt)"
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and (Path(java_home) / "bin" / "java").exists()):
        return "Java is not installed, so Spark cannot start (apt-get install openjdk-17-jre-headless)"
    return None


def spark_session(warehouse: Path):
    """One local Spark session with its warehouse (and catalog) in ``warehouse``; stop it with ``.stop()``."""
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    from pyspark.sql import SparkSession

    settings = {
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.sql.catalogImplementation": "in-memory",  # no Hive metastore: nothing written to the cwd
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        # Small data: planning and code generation cost more than the work. Without adaptive re-planning and
        # whole-stage code generation the suite runs in about half the time; results are the same.
        "spark.sql.adaptive.enabled": "false",
        "spark.sql.codegen.wholeStage": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.sql.session.timeZone": "UTC",
        # Parquet timestamps without a zone read as Spark's usual TIMESTAMP (not TIMESTAMP_NTZ), as in most lakes
        "spark.sql.parquet.inferTimestampNTZ.enabled": "false",
        # a short-lived JVM: the quick JIT tier only and one GC thread halve the CPU time on two cores
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }
    builder = SparkSession.builder.master("local[2]").appName("crm-engine-tests")
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


# --------------------------------------------------------------------------------------------- copying data


def canonical_tables(duckdb_path: Path, names: Iterable[str] | None = None) -> dict[str, pa.Table]:
    """The canonical tables of a DuckDB store (all that exist, or ``names``) as Arrow tables, by name."""
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                             "WHERE table_schema = 'main'").fetchall()}
        chosen = [n for n in (names or TABLES) if n in TABLES and n in present]
        return {name: con.table(name).to_arrow_table() for name in chosen}
    finally:
        con.close()


def _renamed(tables: Mapping[str, pa.Table], renames: Mapping[str, tuple[str, Mapping[str, str]]] | None):
    """(name to create, Arrow table with its columns renamed) per table; ``renames`` maps a canonical table name to
    (the name to create, {canonical column: column name to create}) for a foreign layout."""
    for name, table in tables.items():
        target, columns = (renames or {}).get(name, (name, {}))
        yield target, table.rename_columns([columns.get(c, c) for c in table.column_names])


def copy_to_postgres(backend, tables: Mapping[str, pa.Table], *, database: str | None = None,
                     renames: Mapping[str, tuple[str, Mapping[str, str]]] | None = None) -> None:
    """Create each Arrow table in the PostgreSQL ``backend`` (in schema ``database`` when given): ``CREATE TABLE``
    from the Arrow schema through Ibis, then the rows by ``COPY`` (Ibis' own insert sends one statement per row:
    9 s for the sample instead of 1 s)."""
    import ibis
    from psycopg import sql

    if database:
        backend.create_database(database, force=True)
    for name, table in _renamed(tables, renames):
        backend.create_table(name, schema=ibis.schema(table.schema), database=database, overwrite=True)
        target = sql.Identifier(database, name) if database else sql.Identifier(name)
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            target, sql.SQL(", ").join(sql.Identifier(c) for c in table.column_names))
        with backend.con.cursor() as cursor, cursor.copy(statement) as copy:
            for batch in table.to_batches(max_chunksize=10_000):
                for row in zip(*(column.to_pylist() for column in batch.columns), strict=True):
                    copy.write_row(row)
        backend.con.commit()


def copy_to_spark(session, tables: Mapping[str, pa.Table], folder: Path, *, database: str | None = None,
                  renames: Mapping[str, tuple[str, Mapping[str, str]]] | None = None) -> None:
    """Write each Arrow table as a Parquet file under ``folder`` and register it as a Spark table (in ``database``
    when given): what a data lake holds. Much faster than Ibis' ``create_table`` from Arrow (pandas → Spark rows →
    a write job per table)."""
    import pyarrow.parquet as pq

    if database:
        session.catalog.setCurrentDatabase("default")
        if not session.catalog.databaseExists(database):
            session.sql(f"CREATE DATABASE {database}")  # a constant of the tests, not user text
    for name, table in _renamed(tables, renames):
        location = Path(folder) / (database or "default") / name
        location.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, location / "part-0.parquet")
        session.catalog.createTable(f"{database}.{name}" if database else name, path=str(location),
                                    source="parquet")


def stop_spark(session) -> None:
    """Stop ``session`` and the JVM that pyspark started for it (pyspark leaves it running until Python exits)."""
    from pyspark import SparkContext

    session.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    proc = getattr(gateway, "proc", None)
    gateway.shutdown()
    if proc is not None:
        if proc.stdin:
            proc.stdin.close()  # the JVM exits when its stdin closes
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=30)
    SparkContext._gateway = None
    SparkContext._jvm = None
