"""The main chart of each view, timed through our layer against bare DuckDB SQL and pandas, with the numbers checked.

    .venv/bin/python bench/charts.py --store bench/.data/1M/crm.duckdb --chart segments     # one JSON line

Each :class:`Chart` is the core call a page makes for its first chart (with the app's default filters: the 30 days
up to the last order, all regions and segments), its page-level cached wrapper (``st.cache_data`` in ``pages/``),
the same metric as bare DuckDB SQL (:mod:`bench.sql_ref`) and as straightforward pandas (:mod:`bench.pandas_ref`),
and a normaliser that turns our result into the comparison frame the two baselines return.

One chart is measured per process (``bench/run.py`` starts one per chart), in this order:

1. a warm-up of each implementation (Python imports, Ibis compilation paths), whose results are kept for the check;
2. ``repeat`` rounds alternating **ours** (a new DuckDB connection to the store — empty buffer pool, the file in
   the OS page cache —, ``store.ibis_backend``, the core call; connection opened and closed outside the timing)
   and **bare** (a new plain ``duckdb.connect`` and the SQL, fetched into pandas);
3. both again on one open connection (a warm engine, no result cache), and one more run of ours counting the
   queries Ibis compiles and the time it spends compiling them;
4. **pandas** on frames already in memory (loaded untimed), ``pandas_repeat`` times;
5. the three results compared column by column (counts exactly, numbers to 1e-9 relative): a mismatch is
   reported and makes ``bench/run.py`` exit non-zero, so a wrong baseline cannot pass;
6. the page's own cached function, as the app calls it on a rerun with the same filters (``frame.data_version()``
   then the ``st.cache_data`` wrapper), outside a Streamlit runtime, where Streamlit keeps the cache in memory as
   it does in the server: first call (a miss: the app's hardened connection and the query) and ``repeat`` hits.
   Last, because hardening locks the database's settings for the rest of the process.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import logging
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
sys.path.insert(0, str(BENCH_DIR))

import pandas_ref  # noqa: E402
import sql_ref  # noqa: E402

from crm_core import campaigns, churn, fulfilment, metrics, segments, store, support, value  # noqa: E402


@dataclass(frozen=True)
class Params:
    """The app's default view: the ``days`` days up to ``as_of`` (the last order's date), every region and segment."""

    as_of: date
    days: int = 30
    months: int = 24  # Retention page: months of cohorts (slider default)
    window: int = 14  # Campaigns page: attribution window (days)

    @property
    def period_start(self) -> date:
        return self.as_of - timedelta(days=self.days - 1)

    @property
    def previous_start(self) -> date:
        return self.period_start - timedelta(days=self.days)

    @property
    def before_previous_start(self) -> date:
        return self.previous_start - timedelta(days=self.days)

    @property
    def trend_start(self) -> date:  # pages/overview.py
        return (self.as_of.replace(day=1) - timedelta(days=365 * 2 - 31)).replace(day=1)

    @property
    def cohort_start(self) -> date:  # pages/retention.py _cohorts
        return self.as_of.replace(day=1) - timedelta(days=31 * self.months)


def params_for(path: Path) -> Params:
    """The default filters the app opens with on this store (``ui.frame.filters``: the 30 days up to the last order)."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        last = con.execute("SELECT max(ordered_at)::DATE FROM orders").fetchone()[0]
    finally:
        con.close()
    return Params(last)


# --------------------------------------------------------------------------------------------- overview KPIs
def kpis_from_rows(rows: dict[str, dict]) -> pd.DataFrame:
    """KPI value and previous value from the raw one-row aggregates (the arithmetic of ``metrics.overview``)."""
    totals, activity, base = rows["order_totals"], rows["customer_activity"], rows["customer_base"]

    def num(v):
        return 0.0 if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)

    def ratio(a, b):
        return None if not b else a / b

    def values(suffix: str) -> dict:
        revenue, orders = num(totals[f"revenue{suffix}"]), num(totals[f"orders{suffix}"])
        active = num(activity[f"active_customers{suffix}"])
        before = num(activity["active_customers_prev" if suffix == "" else "active_before_previous"])
        return {
            "customers": num(base[f"customers{suffix}"]), "new_customers": num(base[f"new_customers{suffix}"]),
            "active_customers": active, "revenue": revenue, "orders": orders, "aov": ratio(revenue, orders),
            "repeat_rate": ratio(num(activity[f"repeat_customers{suffix}"]), active),
            "retention_rate": ratio(num(activity[f"retained_customers{suffix}"]), before),
            "return_rate": ratio(-num(totals[f"refunds{suffix}"]), num(totals[f"gross_sales{suffix}"])),
            "open_tickets": num(rows["open_tickets"][f"open_tickets{suffix}"]),
        }

    now, before = values(""), values("_prev")
    return pd.DataFrame({"key": list(now), "value": [now[k] for k in now], "previous": [before[k] for k in now]})


def _overview_frame(ov) -> pd.DataFrame:
    return pd.DataFrame({"key": [k.key for k in ov.kpis], "value": [k.value for k in ov.kpis],
                         "previous": [k.previous for k in ov.kpis]})


# --------------------------------------------------------------------------------------------- the charts
@dataclass(frozen=True)
class Chart:
    key: str
    view: str
    call: str  # what the page calls, for the table
    page: str  # module in pages/
    tables: tuple[str, ...]  # what the pandas baseline reads
    ours: Callable[[Any, Params], Any]  # (ibis backend, params) -> the core's result
    cached: Callable[[Any, str, Params], Any]  # (page module, data version, params) -> the page wrapper's result
    normalise: Callable[[Any], pd.DataFrame]
    sql: Callable[[Any, Params], pd.DataFrame]
    pandas: Callable[[dict, Params], pd.DataFrame]


def _cols(*names: str, sort: tuple[str, ...] = (), where: Callable | None = None):
    def normalise(frame: pd.DataFrame) -> pd.DataFrame:
        if where is not None:
            frame = frame[where(frame)]
        frame = frame[list(names)]
        if sort:
            frame = frame.sort_values(list(sort))
        return frame.reset_index(drop=True)
    return normalise


VALUE_COLUMNS = ("customer_id", "revenue", "orders", "gross_margin", "estimated_margin_revenue", "tickets",
                 "ticket_cost", "shipping_cost", "contacts", "campaign_cost", "profit", "referred_customers",
                 "referred_revenue")
CAMPAIGN_COLUMNS = ("campaign_id", "contacts", "treatment_contacts", "control_contacts", "sent", "opened", "clicked",
                    "responded", "converted", "window_buyers", "attributed_revenue", "window_revenue", "revenue",
                    "cost")
TICKET_TREND_COLUMNS = ("month", "tickets", "first_response_breach_rate", "breach_rate",
                        "median_first_response_hours", "csat_mean", "complaints", "compliments")
FULFILMENT_COLUMNS = ("carrier", "shipments", "delivered", "on_time", "late", "overdue", "avg_days_late",
                      "median_order_to_ship_hours", "p90_order_to_ship_hours", "median_ship_to_deliver_days",
                      "p90_ship_to_deliver_days")

CHARTS: tuple[Chart, ...] = (
    Chart("overview_kpis", "Overview", "metrics.overview (KPI cards)", "overview",
          ("orders", "customers", "support_tickets"),
          lambda b, p: metrics.overview(b, as_of=p.as_of, days=p.days),
          lambda m, v, p: m._overview(v, p.as_of, p.days, (), ()),
          _overview_frame, lambda con, p: kpis_from_rows(sql_ref.overview_rows(con, p)),
          lambda f, p: kpis_from_rows(pandas_ref.overview_rows(f, p))),
    Chart("monthly_trend", "Overview", "metrics.monthly_trend (first chart)", "overview",
          ("orders", "customers", "support_tickets"),
          lambda b, p: metrics.monthly_trend(b, start=p.trend_start, end=p.as_of),
          lambda m, v, p: m._trend(v, p.trend_start, p.as_of, (), ()),
          _cols("month", "revenue", "orders", "active_customers", "new_customers", "open_tickets"),
          sql_ref.monthly_trend, pandas_ref.monthly_trend),
    Chart("segments", "Segments", "segments.segment_summary (treemap)", "segments", ("orders",),
          lambda b, p: segments.segment_summary(b, p.as_of, 5),
          lambda m, v, p: m._summary(v, p.as_of, 5, ()),
          _cols("segment", "customers", "revenue", "avg_recency_days", "avg_frequency", "avg_monetary",
                sort=("segment",), where=lambda f: f["customers"] > 0),
          sql_ref.segment_summary, pandas_ref.segment_summary),
    Chart("value", "Customer value", "value.customer_value (profit bridge)", "value",
          ("orders", "order_items", "products", "support_tickets", "shipments", "campaigns", "campaign_contacts",
           "customers"),
          lambda b, p: value.customer_value(b, p.as_of),
          lambda m, v, p: m._values(v, None, p.as_of, value.CostRates(), (), ()),
          _cols(*VALUE_COLUMNS, sort=("customer_id",)), sql_ref.customer_value, pandas_ref.customer_value),
    Chart("cohorts", "Retention & churn", "churn.cohort_retention (cohort heatmap)", "retention",
          ("orders", "customers"),
          lambda b, p: churn.cohort_retention(b, p.as_of, start=p.cohort_start, months=p.months),
          lambda m, v, p: m._cohorts(v, p.as_of, p.months, (), ()),
          _cols("cohort_month", "months_since", "cohort_size", "active_customers", "retention_rate",
                sort=("cohort_month", "months_since")),
          sql_ref.cohort_retention, pandas_ref.cohort_retention),
    Chart("campaigns", "Campaigns", "campaigns.campaign_summary (conversion and ROI)", "campaigns",
          ("campaigns", "campaign_contacts", "orders"),
          lambda b, p: campaigns.campaign_summary(b, p.window),
          lambda m, v, p: m._summary(v, p.window, "auto"),
          _cols(*CAMPAIGN_COLUMNS, sort=("campaign_id",)), sql_ref.campaign_summary, pandas_ref.campaign_summary),
    Chart("support", "Support", "support.ticket_trend (tickets and breaches by month)", "support",
          ("support_tickets",),
          lambda b, p: support.ticket_trend(b, p.as_of, p.period_start),
          lambda m, v, p: m._trend(v, p.period_start, p.as_of, (), (), support.SlaPolicy()),
          _cols(*TICKET_TREND_COLUMNS, where=lambda f: f["tickets"] > 0), sql_ref.ticket_trend,
          pandas_ref.ticket_trend),
    Chart("fulfilment", "Fulfilment", "fulfilment.fulfilment_kpis by carrier (late rate)", "fulfilment",
          ("shipments", "orders"),
          lambda b, p: fulfilment.fulfilment_kpis(b, p.as_of, p.period_start, by="carrier"),
          lambda m, v, p: m._kpis(v, p.period_start, p.as_of, (), (), "carrier"),
          _cols(*FULFILMENT_COLUMNS, sort=("carrier",)), sql_ref.fulfilment_by_carrier,
          pandas_ref.fulfilment_by_carrier),
)
BY_KEY = {c.key: c for c in CHARTS}


# --------------------------------------------------------------------------------------------- checking
def compare(ours: pd.DataFrame, other: pd.DataFrame, name: str) -> list[str]:
    """Differences between two comparison frames (empty when equal): same rows and columns, counts and labels
    exactly, numbers to 1e-9 relative (1e-6 absolute), NaN/None equal to NaN/None."""
    problems = []
    missing = [c for c in ours.columns if c not in other.columns]
    if missing:
        return [f"{name}: no column(s) {missing}"]
    if len(ours) != len(other):
        return [f"{name}: {len(other)} rows, ours {len(ours)}"]
    other = other[list(ours.columns)].reset_index(drop=True)
    ours = ours.reset_index(drop=True)
    for col in ours.columns:
        a, b = ours[col], other[col]
        if pd.api.types.is_datetime64_any_dtype(a) or pd.api.types.is_datetime64_any_dtype(b):
            same = (pd.to_datetime(a).astype("datetime64[ns]") == pd.to_datetime(b).astype("datetime64[ns]")).all()
        else:
            x = pd.to_numeric(a.astype(object).where(a.notna(), np.nan), errors="coerce")
            y = pd.to_numeric(b.astype(object).where(b.notna(), np.nan), errors="coerce")
            if x.notna().sum() == a.notna().sum() and y.notna().sum() == b.notna().sum():
                same = np.allclose(x.to_numpy(float), y.to_numpy(float), rtol=1e-9, atol=1e-6, equal_nan=True)
            else:
                same = (a.astype(str) == b.astype(str)).all()
        if not same:
            diff = pd.DataFrame({"ours": a, name: b})
            diff = diff[~(diff["ours"].astype(str) == diff[name].astype(str))].head(3)
            problems.append(f"{name}: column {col} differs, e.g. " + "; ".join(
                f"row {i}: {r['ours']!r} vs {r[name]!r}" for i, r in diff.iterrows()))
    return problems


# --------------------------------------------------------------------------------------------- timing
CPU: dict[str, list[float]] = {}  # CPU seconds (all threads) of the last _timed calls, by label


def _timed(fn: Callable[[], Any], label: str | None = None) -> tuple[float, Any]:
    """(wall seconds, result); the CPU seconds of the process (every thread) go to ``CPU[label]``."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if label:
        CPU.setdefault(label, []).append(cpu)
    return wall, out


class CompileClock:
    """Counts the queries Ibis compiles and the seconds it spends compiling them (``SQLBackend.compile``)."""

    def __enter__(self) -> CompileClock:
        from ibis.backends.sql import SQLBackend

        self.seconds, self.calls, self._original = 0.0, 0, SQLBackend.compile
        clock = self

        def compile(backend, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return clock._original(backend, *args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - t0
                clock.calls += 1

        SQLBackend.compile = compile
        return self

    def __exit__(self, *exc) -> None:
        from ibis.backends.sql import SQLBackend

        SQLBackend.compile = self._original


def _ours_fresh(chart: Chart, path: Path, p: Params, label: str | None = None) -> tuple[float, Any]:
    con = store.connect(path)
    try:
        def run():
            return chart.ours(store.ibis_backend(con), p)
        return _timed(run, label)
    finally:
        con.close()
        gc.collect()


def _bare_fresh(chart: Chart, path: Path, p: Params, label: str | None = None) -> tuple[float, Any]:
    import duckdb

    con = duckdb.connect(str(path))
    try:
        return _timed(lambda: chart.sql(con, p), label)
    finally:
        con.close()
        gc.collect()


def _frames(path: Path, tables: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"SELECT * FROM {store.quote_ident(t)}").df() for t in tables}
    finally:
        con.close()


def measure(chart: Chart, path: Path, repeat: int, pandas_repeat: int, progress=None) -> dict:
    say = progress or (lambda text: None)
    p = params_for(path)
    out: dict[str, Any] = {"key": chart.key, "as_of": p.as_of.isoformat(), "problems": []}
    say("warm-up")
    _, ours = _ours_fresh(chart, path, p)
    _, bare = _bare_fresh(chart, path, p)
    ours_frame = chart.normalise(ours)
    out["rows"] = len(ours_frame)
    out["problems"] += compare(ours_frame, bare, "bare SQL")

    say(f"fresh connection x{repeat}, ours and bare SQL alternating")
    out["ours_fresh"], out["bare_fresh"] = [], []
    for _ in range(repeat):
        out["ours_fresh"].append(_ours_fresh(chart, path, p, "ours_fresh")[0])
        out["bare_fresh"].append(_bare_fresh(chart, path, p, "bare_fresh")[0])

    say("warm engine")
    con = store.connect(path)
    backend = store.ibis_backend(con)
    chart.ours(backend, p)
    out["ours_warm"] = [_timed(lambda: chart.ours(store.ibis_backend(con), p), "ours_warm")[0]
                        for _ in range(repeat)]
    with CompileClock() as clock:  # a separate run, so the timed ones carry no instrumentation
        out["ours_instrumented"] = _timed(lambda: chart.ours(store.ibis_backend(con), p))[0]
    out["compile_seconds"], out["queries"] = clock.seconds, clock.calls
    con.close()
    import duckdb

    con = duckdb.connect(str(path))
    chart.sql(con, p)
    out["bare_warm"] = [_timed(lambda: chart.sql(con, p), "bare_warm")[0] for _ in range(repeat)]
    con.close()
    gc.collect()

    if pandas_repeat:
        say(f"pandas x{pandas_repeat} (frames loaded untimed)")
        frames = _frames(path, chart.tables)
        out["pandas"], result = [], None
        for _ in range(pandas_repeat):
            secs, result = _timed(lambda: chart.pandas(frames, p), "pandas")
            out["pandas"].append(secs)
        out["problems"] += compare(ours_frame, result, "pandas")
        del frames, result
        gc.collect()

    say("the page's cached call")
    os.environ["CRM_DB"] = str(path)
    os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # outside a runtime Streamlit warns on every cache call
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        page = importlib.import_module(f"pages.{chart.page}")
        from ui import frame

        def rerun():
            return chart.cached(page, frame.data_version(), p)

        out["cached_first"], first = _timed(rerun)
        out["cached_repeat"] = [_timed(rerun)[0] for _ in range(repeat)]
    out["problems"] += compare(ours_frame, chart.normalise(first), "page cache")
    out["cpu"] = CPU
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--chart", choices=list(BY_KEY), required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pandas-repeat", type=int, default=3)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()

    def say(text: str) -> None:
        print(f"    [{time.perf_counter() - t0:6.1f} s] {args.chart}: {text}", file=sys.stderr, flush=True)

    result = measure(BY_KEY[args.chart], args.store, args.repeat, args.pandas_repeat, say)
    for k in ("ours_fresh", "bare_fresh", "ours_warm", "bare_warm", "pandas", "cached_repeat"):
        if k in result:
            say(f"{k}: median {statistics.median(result[k]):.3f} s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
