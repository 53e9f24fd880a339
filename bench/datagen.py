"""Benchmark data: the sample generator at 100k / 1M / 10M orders, written once as CSV and loaded into a store.

    .venv/bin/python bench/datagen.py --scale 1M            # bench/.data/1M/csv/*.csv and bench/.data/1M/crm.duckdb

``crm_core.sample.generate(n_customers)`` makes about four orders per customer (a BG/NBD purchase process over three
years), so the scales are set by the number of customers: 25,000 → ~100k orders, 250,000 → ~1M, 2,500,000 → ~10M
(with ~0.5 tickets, ~2 campaign contacts, ~2.7 shipments and ~7 order lines per customer).

1. **CSV** (``<folder>/csv/<table>.csv``): one plain UTF-8 file per canonical table, written the way
   ``sample.write_sample`` writes the bundled ``.csv.gz`` files (ISO dates and timestamps, ``true``/``false``, money
   with two decimals, empty for null) but uncompressed, so the import benchmark reads a plain CSV as the goal's
   bare-DuckDB figure does. ``ground_truth.json`` is not written (nothing here checks it).
2. **Store** (``<folder>/crm.duckdb``): every CSV imported through the app's own pipeline,
   ``crm_core.ingest.load_folder`` (replace mode, one import-log row per table), into a fresh store; the chart
   benchmarks read it.

Each step is skipped when its ``.done`` marker exists, so the data are generated once per scale and reused; a step
cut short leaves no marker and is redone. Run in its own process by ``bench/run.py`` so that the generator's
memory (about 1.2 GB at 1M orders, ten times that at 10M) is returned to the machine before anything is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / ".data"
sys.path.insert(0, str(PROJECT_DIR))

# orders wanted → customers to generate (about 4.0 orders per customer at these sizes)
SCALES: dict[str, int] = {"100k": 25_000, "1M": 250_000, "10M": 2_500_000}
SEED = 7


def scale_dir(scale: str) -> Path:
    return DATA_DIR / scale


def csv_dir(scale: str) -> Path:
    return scale_dir(scale) / "csv"


def store_path(scale: str) -> Path:
    return scale_dir(scale) / "crm.duckdb"


def counts(scale: str) -> dict[str, int]:
    """Rows per table of the generated CSVs (written with them)."""
    return json.loads((csv_dir(scale) / ".done").read_text())["rows"]


def _say(t0: float, text: str) -> None:
    print(f"  [{time.perf_counter() - t0:6.1f} s] {text}", file=sys.stderr, flush=True)


def write_csvs(scale: str, t0: float) -> None:
    """Generate the scale's data and write one CSV per canonical table (skipped when already written)."""
    from crm_core import sample
    from crm_core.schema import TABLES

    folder = csv_dir(scale)
    if (folder / ".done").exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    n = SCALES[scale]
    _say(t0, f"generating {n:,} customers (seed {SEED}) ...")
    data = sample.generate(n, seed=SEED)
    rows = {name: len(df) for name, df in data.tables.items()}
    _say(t0, "generated: " + ", ".join(f"{k} {v:,}" for k, v in rows.items() if v))
    for name in TABLES:
        df = data.tables.pop(name)
        path = folder / f"{name}.csv"
        with open(path, "w", encoding="utf-8", newline="") as out:
            step = 500_000
            for start in range(0, max(len(df), 1), step):
                chunk = sample._csv_frame(name, df.iloc[start:start + step])  # the bundled files' value format
                out.write(chunk.to_csv(index=False, header=start == 0, lineterminator="\n", float_format="%.2f",
                                       na_rep=""))
        del df
        _say(t0, f"wrote {path.name} ({path.stat().st_size / 2**20:,.0f} MiB)")
    (folder / ".done").write_text(json.dumps({"customers_generated": n, "seed": SEED, "rows": rows}))


def build_store(scale: str, t0: float) -> None:
    """Import every CSV into a fresh store with the app's pipeline (skipped when already built)."""
    from crm_core import ingest, store

    path = store_path(scale)
    done = path.with_suffix(".done")
    if done.exists() and path.exists():
        return
    for p in (path, path.with_suffix(".duckdb.wal"), done):
        p.unlink(missing_ok=True)
    os.environ["CRM_MAX_UPLOAD_MB"] = "1000000"  # the web upload limit (200 MB) does not apply to a local load
    con = store.connect(path)
    for r in ingest.load_folder(con, csv_dir(scale)):
        _say(t0, f"imported {r.table}: {r.outcome}, {r.rows_accepted:,} rows accepted, {r.rows_rejected:,} rejected")
        if r.outcome != "committed":
            raise SystemExit(f"{r.table}: import {r.outcome}: {r.message}")
    con.execute("CHECKPOINT")
    con.close()
    done.write_text("ok\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=list(SCALES), required=True)
    parser.add_argument("--csv-only", action="store_true", help="write the CSVs, do not build the store")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    write_csvs(args.scale, t0)
    if not args.csv_only:
        build_store(args.scale, t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
