"""The scale benchmark: our pipeline, charts, CLV refresh and start-up, each against a baseline on the same machine.

    .venv/bin/python bench/run.py --scale 100k          # a few minutes
    .venv/bin/python bench/run.py --scale 1M            # ~15 minutes, most of it pandas and lifetimes
    .venv/bin/python bench/run.py --scale 10M           # several GB in bench/.data/10M; see bench/README.md
    .venv/bin/python bench/run.py --scale 1M --only charts,startup --skip-browser

Steps (each shown with the elapsed time while it runs; every timed step waits first until the machine is quiet —
CPU at least ``--quiet-idle`` idle for 3 s, at most ``--quiet-timeout`` s — and records the load it ran under):

1. **data** — ``bench/datagen.py`` generates the scale once (``crm_core.sample.generate``; 100k / 1M / 10M orders),
   writes plain CSVs and imports them into ``bench/.data/<scale>/crm.duckdb`` with the app's pipeline; reused after.
2. **import** — the orders CSV through ``crm_core.ingest.import_file`` into a fresh store, against bare DuckDB
   ``CREATE TABLE AS SELECT * FROM read_csv`` into a fresh file, alternating, each in its own process
   (``bench/steps.py``): median seconds and peak memory. Goals: ≤1.3× bare, ≤0.6 GB peak at 10M.
3. **charts** — the first chart of each view (``bench/charts.py``, one process per chart): on a fresh connection
   (goal ≤1.0 s), repeated with the same filters through the page's ``st.cache_data`` wrapper (goal ≤0.1 s), against
   the same metric as bare DuckDB SQL (ours ≤1.3×) and as pandas on frames already in memory (ours ≥3× faster); the
   three results are asserted equal.
4. **clv** — ``clv.clv`` refresh (goal ≤2 s per million customers, at least 2 s) and the BG/NBD fit against
   lifetimes (≥10× faster), as ``bench/clv_bench.py`` does, on the benchmark store.
5. **startup** — ``import ui.frame, pages.overview`` (what the app imports before its first chart) in a fresh
   interpreter against ``import streamlit`` alone (goal ≤1.0 s), and the biggest contributors by
   ``python -X importtime``.
6. **browser** — ``streamlit run app.py`` on loopback over a store with the bundled sample data, Playwright with
   Debian's ``/usr/bin/chromium``: from ``page.goto`` to the first visible Plotly chart on a server that has not
   run the app yet (goal ≤3 s), and again in a new browser context (caches warm). ``--skip-browser`` skips it.

The table is printed and written as this scale's section of ``bench/RESULTS.md`` (other scales' sections are kept),
with the machine (cores, memory, CPU, Python, DuckDB), the date and the load average. The exit code is 1 when a
check found different numbers in a baseline (the table says WRONG), else 0 — missed goals are reported, not failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
sys.path.insert(0, str(PROJECT_DIR))
sys.path.insert(0, str(BENCH_DIR))

import datagen  # noqa: E402

RESULTS = BENCH_DIR / "RESULTS.md"
STEPS = ("data", "import", "charts", "clv", "startup", "browser")
GB = 1024.0  # MiB per GiB


# --------------------------------------------------------------------------------------------- the machine
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> dict:
    import duckdb
    import ibis
    import pandas as pd

    return {"cores": os.cpu_count(), "memory_gib": round(_memory_gib(), 1), "cpu": _cpu_model(),
            "python": platform.python_version(), "duckdb": duckdb.__version__, "ibis": ibis.__version__,
            "pandas": pd.__version__, "load": _load(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return idle, sum(fields)


def cpu_idle(seconds: float = 1.0) -> float:
    """Share of CPU time idle over the next ``seconds`` (all cores)."""
    i0, t0 = _cpu_times()
    time.sleep(seconds)
    i1, t1 = _cpu_times()
    return (i1 - i0) / max(t1 - t0, 1)


@dataclass
class Quiet:
    waited: float
    idle: float
    load: str
    at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%H:%M"))

    @property
    def text(self) -> str:
        return f"{self.at} load {self.load.split()[0]}, {self.idle:.0%} idle" + (
            f", waited {self.waited:.0f} s" if self.waited >= 1 else "")


def wait_quiet(min_idle: float, timeout: float, say) -> Quiet:
    """Wait until the CPU has been at least ``min_idle`` idle for 3 consecutive seconds (or ``timeout`` passed)."""
    t0 = time.monotonic()
    streak, idle, told = 0, 0.0, False
    while True:
        idle = cpu_idle(1.0)
        streak = streak + 1 if idle >= min_idle else 0
        if streak >= 3:
            break
        if time.monotonic() - t0 > timeout:
            say(f"machine still busy after {timeout:.0f} s ({idle:.0%} idle, load {_load()}); measuring anyway")
            break
        if not told and time.monotonic() - t0 > 5:
            say(f"waiting for a quiet machine ({idle:.0%} idle, load {_load()}) ...")
            told = True
    return Quiet(time.monotonic() - t0, idle, _load())


# --------------------------------------------------------------------------------------------- results
@dataclass
class Row:
    measurement: str
    ours: str
    baseline: str = "—"
    ratio: str = "—"
    goal: str = "—"
    result: str = "—"
    load: str = ""
    notes: list[str] = field(default_factory=list)


def _s(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


def _cpu_note(ours: float, base: float) -> str:
    """CPU seconds (every thread) of ours and the baseline: less sensitive than wall time to other jobs' load."""
    return f"CPU ours {ours:.2f} s, baseline {base:.2f} s: ratio {ours / base:.2f}" if base else ""


def _verdict(ok: bool) -> str:
    return "pass" if ok else "MISS"


def _run_child(cmd: list[str], say, what: str) -> dict:
    """Run a benchmark child process (its progress goes to our stderr) and return its JSON line."""
    proc = subprocess.run(cmd, cwd=PROJECT_DIR, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {proc.stdout[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.t0 = time.perf_counter()
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.wrong = False
        self.py = sys.executable

    def say(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.t0:7.1f} s] {text}", file=sys.stderr, flush=True)

    def quiet(self) -> Quiet:
        return wait_quiet(self.args.quiet_idle, self.args.quiet_timeout, self.say)

    # ----------------------------------------------------------------------------------------- 1. data
    def data(self) -> None:
        scale = self.args.scale
        self.say(f"data: {scale} orders in {datagen.scale_dir(scale)} (generated once, then reused)")
        subprocess.run([self.py, str(BENCH_DIR / "datagen.py"), "--scale", scale], cwd=PROJECT_DIR, check=True)
        rows = datagen.counts(scale)
        self.data_rows = rows
        sizes = {p.stem: p.stat().st_size for p in datagen.csv_dir(scale).glob("*.csv")}
        self.notes.append(
            f"Data: `crm_core.sample.generate({datagen.SCALES[scale]:,}, seed={datagen.SEED})` — "
            + ", ".join(f"{rows[t]:,} {t.replace('_', ' ')}" for t in
                        ("customers", "orders", "order_items", "shipments", "campaign_contacts", "support_tickets"))
            + f"; orders CSV {sizes['orders'] / 2**20:,.0f} MiB, store "
            + f"{datagen.store_path(scale).stat().st_size / 2**20:,.0f} MiB.")

    # ----------------------------------------------------------------------------------------- 2. import
    def import_(self) -> None:
        scale, n = self.args.scale, self.args.import_repeat
        csv = datagen.csv_dir(scale) / "orders.csv"
        rows = datagen.counts(scale)["orders"]
        tmp = Path(tempfile.mkdtemp(prefix="import_", dir=datagen.scale_dir(scale)))
        runs: dict[str, list[dict]] = {"ours": [], "bare": []}
        try:
            for i in range(n):
                for kind in ("ours", "bare"):
                    q = self.quiet()
                    self.say(f"import {i + 1}/{n}: {'crm_core.ingest.import_file' if kind == 'ours' else 'bare DuckDB'}"
                             f" ({rows:,} rows; {q.text})")
                    db = tmp / f"{kind}{i}.duckdb"
                    out = _run_child([self.py, str(BENCH_DIR / "steps.py"), f"import-{kind}", "--csv", str(csv),
                                      "--db", str(db), "--rows", str(rows)], self.say, f"import {kind}")
                    out["load"] = q.text
                    runs[kind].append(out)
                    for p in tmp.glob(f"{kind}{i}.*"):
                        p.unlink()
                    self.say(f"  {kind}: {out['seconds']:.2f} s, peak {out['peak_mb']:,.0f} MiB")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
        cpu = {k: statistics.median(r["cpu"] for r in v) for k, v in runs.items()}
        peak = {k: max(r["peak_mb"] for r in v) for k, v in runs.items()}
        before = {k: statistics.median(r["before_mb"] for r in v) for k, v in runs.items()}
        ratio = med["ours"] / med["bare"]
        loads = "; ".join(sorted({r["load"] for v in runs.values() for r in v}))
        self.rows.append(Row(f"Import orders CSV ({rows:,} rows), median of {n}", _s(med["ours"]), _s(med["bare"]),
                             f"{ratio:.2f}", "≤ 1.30", _verdict(ratio <= 1.3), loads,
                             [f"fastest: ours {min(r['seconds'] for r in runs['ours']):.2f} s, "
                              f"bare {min(r['seconds'] for r in runs['bare']):.2f} s",
                              _cpu_note(cpu["ours"], cpu["bare"]),
                              "all runs: ours " + ", ".join(f"{r['seconds']:.2f}" for r in runs["ours"]) + "; bare "
                              + ", ".join(f"{r['seconds']:.2f}" for r in runs["bare"])]))
        goal_gb = 0.6
        self.rows.append(Row("Import orders CSV: peak memory of the process", f"{peak['ours'] / GB:.2f} GB",
                             f"{peak['bare'] / GB:.2f} GB", f"{peak['ours'] / peak['bare']:.2f}",
                             f"≤ {goal_gb} GB at 10M",
                             _verdict(peak["ours"] / GB <= goal_gb) if self.args.scale == "10M" else
                             ("pass" if peak["ours"] / GB <= goal_gb else "(MISS)"), loads,
                             [f"resident before the import (interpreter and imports): ours {before['ours']:.0f} MiB, "
                              f"bare {before['bare']:.0f} MiB"]))

    # ----------------------------------------------------------------------------------------- 3. charts
    def charts(self) -> None:
        import charts

        path = datagen.store_path(self.args.scale)
        only = set(self.args.charts.split(",")) if self.args.charts else None
        for chart in charts.CHARTS:
            if only and chart.key not in only:
                continue
            q = self.quiet()
            self.say(f"chart {chart.key}: {chart.call} ({q.text})")
            cmd = [self.py, str(BENCH_DIR / "charts.py"), "--store", str(path), "--chart", chart.key,
                   "--repeat", str(self.args.repeat), "--pandas-repeat", str(self.args.pandas_repeat)]
            try:
                r = _run_child(cmd, self.say, f"chart {chart.key}")
            except RuntimeError as exc:  # e.g. the pandas baseline ran out of memory: report it, go on
                self.say(str(exc))
                self.rows.append(Row(f"{chart.view}: {chart.call} — fresh connection", "—", result="failed",
                                     load=q.text, notes=[str(exc)[:300]]))
                continue
            self._chart_rows(chart, r, q)

    def _chart_rows(self, chart, r: dict, q: Quiet) -> None:
        cpu = {k: statistics.median(v) for k, v in r["cpu"].items()}
        med = {k: statistics.median(r[k]) for k in ("ours_fresh", "bare_fresh", "ours_warm", "bare_warm",
                                                       "cached_repeat") if r.get(k)}
        pandas_s = statistics.median(r["pandas"]) if r.get("pandas") else None
        name = f"{chart.view}: {chart.call}"
        wrong = r["problems"]
        if wrong:
            self.wrong = True
            self.notes.append(f"**{chart.key}: the numbers differ** — " + " | ".join(wrong))
        fresh = med["ours_fresh"]
        self.rows.append(Row(f"{name} — fresh connection", _s(fresh), goal="≤ 1.0 s",
                             result=_verdict(fresh <= 1.0), load=q.text,
                             notes=[f"fastest {_s(min(r['ours_fresh']))}",
                                    f"{r['rows']:,} result rows; {r['queries']} queries, Ibis compiling them "
                                    f"{_s(r['compile_seconds'])} (of a warm run of {_s(r['ours_instrumented'])})"]))
        self.rows.append(Row(f"{name} — repeated, same filters (page cache)", _s(med["cached_repeat"]),
                             goal="≤ 0.1 s", result=_verdict(med["cached_repeat"] <= 0.1), load=q.text,
                             notes=[f"first call through the page wrapper {_s(r['cached_first'])}"]))
        ratio = fresh / med["bare_fresh"]
        self.rows.append(Row(f"{name} — vs bare DuckDB SQL", _s(fresh), _s(med["bare_fresh"]), f"{ratio:.2f}",
                             "≤ 1.30", "WRONG" if any(w.startswith("bare") for w in wrong) else _verdict(ratio <= 1.3),
                             q.text, [f"fastest: ours {_s(min(r['ours_fresh']))}, bare {_s(min(r['bare_fresh']))}",
                                      _cpu_note(cpu["ours_fresh"], cpu["bare_fresh"]),
                                      f"warm engine: ours {_s(med['ours_warm'])}, bare {_s(med['bare_warm'])}"]))
        if pandas_s is not None:
            ratio = fresh / pandas_s
            self.rows.append(Row(f"{name} — vs pandas", _s(fresh), _s(pandas_s), f"{ratio:.2f}",
                                 "≤ 0.33 (3× faster)",
                                 "WRONG" if any(w.startswith("pandas") for w in wrong) else _verdict(ratio <= 1 / 3),
                                 q.text, [f"pandas {1 / ratio:.1f}× slower",
                                          _cpu_note(cpu["ours_fresh"], cpu["pandas"])]))

    # ----------------------------------------------------------------------------------------- 4. CLV
    def clv(self) -> None:
        path = datagen.store_path(self.args.scale)
        q = self.quiet()
        self.say(f"clv: clv.clv refresh x{self.args.repeat} and the BG/NBD fit against lifetimes ({q.text})")
        r = _run_child([self.py, str(BENCH_DIR / "steps.py"), "clv", "--store", str(path), "--repeat",
                        str(self.args.repeat)], self.say, "clv")
        total = statistics.median(r["refresh"])
        goal = 2.0 * max(1.0, r["customers"] / 1e6)
        steps = ", ".join(f"{k} {v:.2f}" for k, v in r["steps"].items() if k != "total")
        steps += f"; CPU {statistics.median(r['refresh_cpu']):.2f} s"
        self.rows.append(Row(f"CLV refresh clv.clv ({r['customers']:,} customers, {r['buyers']:,} buyers)",
                             _s(total), goal=f"≤ {goal:.1f} s (2 s per 1M customers)", result=_verdict(total <= goal),
                             load=q.text, notes=[f"median of {len(r['refresh'])}: {steps}; runs "
                                                 + ", ".join(f"{x:.2f}" for x in r["refresh"])]))
        fit = statistics.median(r["fit_ours"])
        ratio = fit / r["fit_lifetimes"]
        self.rows.append(Row(f"CLV BG/NBD fit ({r['repeat_buyers']:,} repeat buyers) vs lifetimes", _s(fit),
                             _s(r["fit_lifetimes"]), f"{ratio:.3f}", "≤ 0.10 (10× faster)", _verdict(ratio <= 0.1),
                             q.text, [f"ours {1 / ratio:.0f}× faster; largest relative parameter difference "
                                      f"{r['max_rel_diff']:.1e}"]))

    # ----------------------------------------------------------------------------------------- 5. start-up
    def _import_seconds(self, modules: str, n: int) -> tuple[list[float], list[float]]:
        """Seconds to ``import modules`` in a fresh interpreter, timed inside it (interpreter start-up and exit are
        not the app's), ``n`` times: (wall, CPU)."""
        code = ("import time; t, c = time.perf_counter(), time.process_time(); import " + modules
                + "; print(time.perf_counter() - t, time.process_time() - c)")
        wall, cpu = [], []
        for _ in range(n):
            proc = subprocess.run([self.py, "-c", code], cwd=PROJECT_DIR, check=True, capture_output=True, text=True)
            w, c = proc.stdout.split()[-2:]
            wall.append(float(w))
            cpu.append(float(c))
        return wall, cpu

    def startup(self) -> None:
        q = self.quiet()
        n = self.args.repeat
        self.say(f"startup: app imports in a fresh interpreter x{n} ({q.text})")
        app = "ui.frame, pages.overview"
        ours, ours_cpu = self._import_seconds(app, n)
        bare, bare_cpu = self._import_seconds("streamlit", n)
        proc = subprocess.run([self.py, "-X", "importtime", "-c", f"import {app}"], cwd=PROJECT_DIR, check=True,
                              capture_output=True, text=True)
        top = top_importers(proc.stderr)
        heavy = [m for m in ("sklearn", "scipy", "lifetimes", "statsmodels", "kaleido", "reportlab")
                 if m in loaded_modules(proc.stderr)]
        med, base = statistics.median(ours), statistics.median(bare)
        self.rows.append(Row("Start-up: `import ui.frame, pages.overview` (what the app imports before its first "
                             "chart) in a fresh interpreter", _s(med), _s(base), f"{med / base:.2f}", "≤ 1.0 s",
                             _verdict(med <= 1.0), q.text,
                             [f"baseline `import streamlit` alone; fastest: ours {_s(min(ours))}, streamlit "
                              f"{_s(min(bare))}",
                              _cpu_note(statistics.median(ours_cpu), statistics.median(bare_cpu)),
                              "import time by package (-X importtime, own time of its modules): "
                              + ", ".join(f"{k} {v:.2f} s" for k, v in top[:9])
                              + (f"; also loaded: {', '.join(heavy)}" if heavy else
                                 "; scikit-learn, scipy and lifetimes are not loaded")]))

    # ----------------------------------------------------------------------------------------- 6. browser
    def browser(self) -> None:
        from crm_core import ingest, store
        from crm_core.sample import SAMPLE_DIR

        chromium = Path("/usr/bin/chromium")
        if not chromium.exists():
            self.notes.append("Browser: skipped, /usr/bin/chromium is not installed (apt-get install chromium).")
            return
        sys.path.insert(0, str(PROJECT_DIR / "tests"))
        from browser_support import CHROMIUM_ARGS, AppServer
        from playwright.sync_api import sync_playwright

        tmp = Path(tempfile.mkdtemp(prefix="bench_browser_"))
        db = tmp / "crm.duckdb"
        con = store.connect(db)
        ingest.load_folder(con, SAMPLE_DIR)
        con.close()
        server_runs = []
        for i in range(self.args.browser_repeat):
            q = self.quiet()
            self.say(f"browser: the Overview's script run without a browser (AppTest) {i + 1}/"
                     f"{self.args.browser_repeat} ({q.text})")
            server_runs.append(_run_child([self.py, str(BENCH_DIR / "steps.py"), "apptest", "--db", str(db)],
                                          self.say, "apptest"))
        visits: dict[str, list[dict]] = {"cold": [], "warm": []}
        loads = []
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
                try:
                    for i in range(self.args.browser_repeat):
                        q = self.quiet()
                        loads.append(q.text)
                        self.say(f"browser {i + 1}/{self.args.browser_repeat}: streamlit run, then the first chart "
                                 f"({q.text})")
                        with AppServer(db, tmp / f"server{i}.log") as server:
                            for kind in ("cold", "warm"):
                                visits[kind].append(first_chart(browser, server.url))
                            server.assert_no_tracebacks()
                        c, w = visits["cold"][-1], visits["warm"][-1]
                        self.say(f"  first chart after {c['chart']:.2f} s (fresh server), {w['chart']:.2f} s (again)")
                finally:
                    browser.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

        def med(kind: str, key: str) -> float:
            return statistics.median(v[key] for v in visits[kind])

        cold = [v["chart"] for v in visits["cold"]]
        server_cold = statistics.median(r["cold"] for r in server_runs)
        self.rows.append(Row("Browser: open the app → first chart visible (sample data, fresh server)",
                             _s(statistics.median(cold)), goal="≤ 3.0 s", result=_verdict(statistics.median(cold) <= 3),
                             load="; ".join(sorted(set(loads))),
                             notes=[f"median of {len(cold)}: " + ", ".join(f"{x:.2f}" for x in cold),
                                    f"the server's part (the Overview's script run for a first session in a fresh "
                                    f"process, AppTest, no browser) {server_cold:.2f} s; the browser's: page loaded "
                                    f"{med('cold', 'load'):.2f} s, Plotly's script "
                                    f"(4.7 MB) arrived {med('cold', 'plotly_js'):.2f} s, main thread busy in long "
                                    f"tasks {med('cold', 'long_tasks'):.2f} s",
                                    f"a second visit to the same server {med('warm', 'chart'):.2f} s (its script run "
                                    f"{statistics.median(r['warm'] for r in server_runs):.2f} s, long tasks "
                                    f"{med('warm', 'long_tasks'):.2f} s)"]))


LONG_TASKS_JS = """
window.__longTasks = [];
new PerformanceObserver(list => { for (const e of list.getEntries()) window.__longTasks.push(e.duration); })
    .observe({entryTypes: ['longtask']});
"""


def first_chart(browser, url: str) -> dict:
    """Open ``url`` in a new browser context; seconds from ``goto`` to the page's load event, to the Plotly script's
    arrival, to the first visible chart; and the seconds the page's main thread spent in long tasks (over 50 ms:
    parsing scripts, laying out and drawing)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(LONG_TASKS_JS)
    page = context.new_page()
    t0 = time.perf_counter()
    marks: dict[str, float] = {}
    page.on("load", lambda: marks.setdefault("load", time.perf_counter() - t0))
    page.goto(url)
    page.locator(".js-plotly-plot").first.wait_for(state="visible", timeout=60_000)
    marks["chart"] = time.perf_counter() - t0
    timing = page.evaluate("""() => ({
        plotly: Math.max(0, ...performance.getEntriesByType('resource').filter(e => e.name.includes('PlotlyChart'))
                                .map(e => e.responseEnd)) / 1000,
        long: window.__longTasks.reduce((a, b) => a + b, 0) / 1000})""")
    marks["plotly_js"], marks["long_tasks"] = timing["plotly"], timing["long"]
    context.close()
    return marks


def top_importers(importtime: str) -> list[tuple[str, float]]:
    """(top-level package, seconds) by the summed own import time of its modules (``-X importtime``), largest
    first: where the start-up goes, whichever module imported it first."""
    totals: dict[str, float] = {}
    for line in importtime.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)", line)
        if m:
            pkg = m.group(3).split(".")[0]
            totals[pkg] = totals.get(pkg, 0.0) + int(m.group(1)) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])


def loaded_modules(importtime: str) -> set[str]:
    return {m.group(1).split(".")[0] for m in re.finditer(r"\|\s+(\S+)\s*$", importtime, re.M)}


# --------------------------------------------------------------------------------------------- output
HEADER = ("measurement", "ours", "baseline", "ratio", "goal", "result")


def table_text(rows: list[Row]) -> str:
    cells = [HEADER] + [(r.measurement, r.ours, r.baseline, r.ratio, r.goal, r.result) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = ["  ".join(c[i].ljust(widths[i]) if i == 0 else c[i].rjust(widths[i]) for i in range(len(HEADER)))
             for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


TABLE_HEAD = ["| measurement | ours | baseline | ratio | goal | result | load | notes |",
              "|---|---:|---:|---:|---|---|---|---|"]


def markdown_section(scale: str, info: dict, rows: list[Row], notes: list[str], argv: list[str]) -> str:
    out = [f"<!-- scale {scale} -->", f"## {scale} orders — {info['date']}", "",
           f"Machine: {info['cores']} cores ({info['cpu']}), {info['memory_gib']} GiB memory; Python {info['python']}, "
           f"DuckDB {info['duckdb']}, Ibis {info['ibis']}, pandas {info['pandas']}. Load average at the start "
           f"{info['load']}. Last command: `python bench/run.py {' '.join(argv)}`.", ""]
    out += [f"{n}" for n in notes] + [""]
    out += TABLE_HEAD
    for r in rows:
        cells = (r.measurement, r.ours, r.baseline, r.ratio, r.goal, f"**{r.result}**" if r.result != "pass"
                 else r.result, r.load, "; ".join(r.notes))
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out += ["", f"<!-- end {scale} -->"]
    return "\n".join(out)


RESULTS_HEAD = """# Benchmark results

Written by `bench/run.py` (see `bench/README.md` for what each line measures and for the analysis of the misses);
one section per scale; a run replaces the rows it measured and keeps the others (the load column says when each row
was measured). Ratios are ours ÷ baseline, so lower is better:
≤ 1.30 means our layer adds at most 30%, ≤ 0.33 means we are at least 3× faster. Times are medians; "load" is the
load average and CPU idle share when the measurement started (the machine is shared with other jobs).
"""


def _merge_rows(old: str, new: str) -> str:
    """``new`` section with the table rows of ``old`` that ``new`` did not measure kept (a run of some steps or
    charts updates only their rows; each row's load column says when it was measured)."""
    def rows(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| measurement")]

    def key(line: str) -> str:
        return line.split(" | ")[0]

    fresh = {key(r): r for r in rows(new)}
    merged = [fresh.pop(key(r), r) for r in rows(old)] + list(fresh.values())
    head = new.partition("\n| measurement")[0]
    return "\n".join([head, *TABLE_HEAD, *merged])


def write_results(scale: str, section: str, partial: bool) -> None:
    """Put ``section`` in ``bench/RESULTS.md`` as the ``scale``'s section (other scales kept); with ``partial``, the
    rows of the old section that this run did not measure are kept."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else RESULTS_HEAD
    sections = dict(re.findall(r"<!-- scale (\S+) -->\n(.*?)\n<!-- end \1 -->", text, re.S))
    body = section.split("\n", 1)[1].rsplit("\n", 1)[0]
    if partial and scale in sections:
        body = _merge_rows(sections[scale], body)
    sections[scale] = body
    order = [s for s in datagen.SCALES if s in sections]
    body = "\n\n".join(f"<!-- scale {s} -->\n{sections[s]}\n<!-- end {s} -->" for s in order)
    RESULTS.write_text(RESULTS_HEAD + "\n" + body + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=list(datagen.SCALES), required=True, help="orders to generate")
    parser.add_argument("--only", default=",".join(STEPS), help=f"steps to run, of {','.join(STEPS)}")
    parser.add_argument("--charts", default="", help="only these charts (keys of bench/charts.py), comma-separated")
    parser.add_argument("--skip-browser", action="store_true", help="skip the browser step")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each chart query, CLV refresh and import")
    parser.add_argument("--pandas-repeat", type=int, default=3, help="runs of each pandas baseline (0: skip)")
    parser.add_argument("--import-repeat", type=int, default=3, help="runs of each import (ours and bare)")
    parser.add_argument("--browser-repeat", type=int, default=3, help="fresh servers for the browser step")
    parser.add_argument("--quiet-idle", type=float, default=0.85, help="CPU idle share that counts as quiet")
    parser.add_argument("--quiet-timeout", type=float, default=180, help="longest wait for quiet, seconds")
    parser.add_argument("--no-write", action="store_true", help="print the table only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    steps = [s for s in args.only.split(",") if s]
    unknown = set(steps) - set(STEPS)
    if unknown:
        parser.error(f"unknown step(s) {sorted(unknown)}; choose from {','.join(STEPS)}")
    if args.skip_browser and "browser" in steps:
        steps.remove("browser")
    if "data" not in steps:
        steps.insert(0, "data")  # cheap when the data exist; the other steps need it

    info = machine()
    bench = Bench(args)
    bench.say(f"machine: {info['cores']} cores, {info['cpu']}, {info['memory_gib']} GiB; Python {info['python']}, "
              f"DuckDB {info['duckdb']}; load average {info['load']}")
    for step in STEPS:
        if step in steps:
            getattr(bench, "import_" if step == "import" else step)()
    bench.say(f"done; load average {_load()}")
    print()
    print(table_text(bench.rows))
    print()
    for note in bench.notes:
        print(note)
    for r in bench.rows:
        print(f"- {r.measurement} [{r.load}]: " + "; ".join(n for n in r.notes if n))
    if not args.no_write:
        partial = set(steps) != set(STEPS) or bool(args.charts)
        write_results(args.scale, markdown_section(args.scale, info, bench.rows, bench.notes, argv), partial)
        print(f"\nwritten to {RESULTS.relative_to(PROJECT_DIR)}")
    return 1 if bench.wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
