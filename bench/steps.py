"""Benchmark steps that ``bench/run.py`` runs each in a process of its own, so their peak memory is their own.

    .venv/bin/python bench/steps.py import-ours --csv orders.csv --db fresh.duckdb --rows 997016
    .venv/bin/python bench/steps.py import-bare --csv orders.csv --db fresh.duckdb --rows 997016
    .venv/bin/python bench/steps.py clv --store bench/.data/1M/crm.duckdb --repeat 5
    .venv/bin/python bench/steps.py apptest --db sample.duckdb

Each prints one JSON line on stdout: the seconds of the timed part (wall clock, and CPU seconds of every thread),
the process's peak resident memory
(``getrusage(RUSAGE_SELF).ru_maxrss``, which covers DuckDB's threads) and its resident memory just before the timed
part (the interpreter and the imports), so the two imports are compared on equal terms.

- ``import-ours``: ``crm_core.ingest.import_file(con, csv, "orders")`` into a fresh store made by ``store.connect``
  (the app's settings: 4 GB memory limit, writes through the WAL): hashing, sniffing, mapping, typed load with
  rejects, duplicate checks, the transaction with the import log; then ``CHECKPOINT``, so the rows are in the file.
- ``import-bare``: a plain ``duckdb.connect(fresh)`` and ``CREATE TABLE t AS SELECT * FROM read_csv(csv)`` (DuckDB's
  defaults: its own sniffer and types, 80% of memory), then ``CHECKPOINT``.
- ``clv``: the CLV refresh of ``bench/clv_bench.py`` on the benchmark store: ``clv.clv(backend, as_of)`` ``repeat``
  times (median of the total and of each step), and the BG/NBD fit on the same (frequency, recency, T) arrays by
  ``crm_core.clv.BetaGeoModel`` (``repeat`` times) and by lifetimes' ``BetaGeoFitter`` (once, per-customer rows,
  as it is usually called), with the largest relative difference of the four parameters.
- ``apptest``: the server's part of opening the app, without a browser: ``app.py`` run by Streamlit's ``AppTest``
  for a first session in this fresh process (imports, connection, the Overview's queries and figures), then for a
  second session.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
sys.path.insert(0, str(BENCH_DIR))


def _rss_mb() -> float:
    """Resident memory now (MiB), from /proc/self/statm."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu() -> float:
    """CPU seconds of this process so far, every thread (DuckDB's included), user and system."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def import_ours(csv: Path, db: Path, rows: int) -> dict:
    os.environ["CRM_MAX_UPLOAD_MB"] = "1000000"  # the web upload limit is not what is measured here
    from crm_core import ingest, store

    con = store.connect(db)
    before = _rss_mb()
    t0, c0 = time.perf_counter(), _cpu()
    report = ingest.import_file(con, csv, "orders")
    con.execute("CHECKPOINT")
    secs, cpu = time.perf_counter() - t0, _cpu() - c0
    if report.outcome != "committed" or report.rows_accepted != rows:
        raise SystemExit(f"import {report.outcome}: {report.rows_accepted:,} of {rows:,} rows: {report.message}")
    n = con.execute("SELECT count(*) FROM orders").fetchone()[0]
    con.close()
    return {"seconds": secs, "cpu": cpu, "peak_mb": _peak_mb(), "before_mb": before, "rows": n}


def import_bare(csv: Path, db: Path, rows: int) -> dict:
    import duckdb

    con = duckdb.connect(str(db))
    before = _rss_mb()
    path = str(csv).replace("'", "''")  # our own file name, not user text
    t0, c0 = time.perf_counter(), _cpu()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{path}')")
    con.execute("CHECKPOINT")
    secs, cpu = time.perf_counter() - t0, _cpu() - c0
    n = con.execute("SELECT count(*) FROM t").fetchone()[0]
    con.close()
    if n != rows:
        raise SystemExit(f"bare DuckDB read {n:,} of {rows:,} rows")
    return {"seconds": secs, "cpu": cpu, "peak_mb": _peak_mb(), "before_mb": before, "rows": n}


def clv_step(path: Path, repeat: int) -> dict:
    import clv_bench
    import numpy as np
    from charts import params_for

    from crm_core import clv, store

    np.seterr(all="ignore")
    as_of = params_for(path).as_of
    con = store.connect(path)
    backend = store.ibis_backend(con)
    customers = con.execute("SELECT count(*) FROM customers").fetchone()[0]
    s = clv.summary(backend, as_of)
    x, tx, t = s["frequency"].to_numpy(), s["recency"].to_numpy(float), s["T"].to_numpy(float)
    ours_s = []
    for _ in range(repeat):
        secs, ours = clv_bench._timed(lambda: clv.BetaGeoModel().fit(x, tx, t))
        ours_s.append(secs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter

        lt_s, lt = clv_bench._timed(lambda: BetaGeoFitter().fit(x, tx, t))
    runs, cpu = [], []
    for _ in range(repeat):
        c0 = _cpu()
        runs.append(clv.clv(backend, as_of).timings)
        cpu.append(_cpu() - c0)
    con.close()
    return {
        "customers": int(customers), "buyers": int(len(s)), "repeat_buyers": int((x > 0).sum()),
        "fit_ours": ours_s, "fit_lifetimes": lt_s, "max_rel_diff": clv_bench._max_rel_diff(ours.params_, lt.params_),
        "params": ours.params_, "refresh": [r["total"] for r in runs], "refresh_cpu": cpu,
        "steps": {k: statistics.median(r[k] for r in runs) for k in runs[0]},
    }


def apptest(db: Path) -> dict:
    """The server's share of opening the app: the Overview's script run (``app.py`` as Streamlit runs it for a new
    session, without a browser) in this fresh process — app imports, connection, queries, figures — then a
    second session's run (modules imported, caches warm)."""
    os.environ["CRM_DB"] = str(db)
    os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # no "missing ScriptRunContext" warnings
    import logging

    from streamlit.testing.v1 import AppTest

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    out = {}
    for kind in ("cold", "warm"):
        at = AppTest.from_file(str(BENCH_DIR.parent / "app.py"), default_timeout=120)
        t0 = time.perf_counter()
        at.run()
        out[kind] = time.perf_counter() - t0
        if at.exception:
            raise SystemExit(f"app.py raised: {at.exception[0].value}")
        out[f"{kind}_charts"] = len(at.get("plotly_chart"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("import-ours", "import-bare", "clv", "apptest"))
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--store", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if args.step == "import-ours":
        out = import_ours(args.csv, args.db, args.rows)
    elif args.step == "import-bare":
        out = import_bare(args.csv, args.db, args.rows)
    elif args.step == "apptest":
        out = apptest(args.db)
    else:
        out = clv_step(args.store, args.repeat)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
