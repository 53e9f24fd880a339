"""``python -m crm_core``: the same core as the app, from a terminal or a scheduler.

Commands (see ``docs/cli.md``)::

    sample   [--customers N] [--seed S] [--out DIR]     generate (or take the bundled) sample data and load it
    import   FILE --table T [--map SRC=DST ...] [--set COLUMN=VALUE ...] [--mode replace|append|upsert]
             [--template NAME] [--save-template NAME] [--date-format F] [--encoding E] [--sheet S]
             [--format text|json]
    metrics  overview|trend|rfm|segments|migration|value|clusters|cohorts|churn|clv|campaigns|lift|uplift|basket
             [--as-of DATE] [--days N]
             [--region R ...] [--segment S ...] [--format json|csv|text]   (options per metric: --help)
    quality  [--format json|text]
    history  [--format json|csv|text]
    goals    metrics|list|add|update|delete|progress   (options per action: --help)
    invest   [--one-off X] [--yearly X] [--horizon-months N] [--discount-rate R] [--churn-pts P] ...
    report   --out PACK.pdf [--html PACK.html] [--start D] [--as-of D] [--region R ...] [--segment S ...] [--mask]
             [--invest] [investment options as for invest]

The database is ``--db PATH``, else ``$CRM_DB``, else ``data/crm.duckdb``. With ``CRM_BACKEND=pyspark`` or a
connection URL in ``CRM_BACKEND_URL`` (:mod:`crm_core.engines`, docs/scale.md) the commands that read the data
(metrics, customer search/show/timeline, goals, invest, report) run on that engine instead, reading its tables; goals
and the audit log stay in the ``--db`` file; commands that write the data or check imports (import, sample, quality,
history, customer note) are refused there with exit code 2. Exit codes: 0 ok, 1 refused or failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from crm_core import engines, ingest, store

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m crm_core", description="CRM analytics core: import, metrics, quality")
    p.add_argument("--db", help="DuckDB file (default: $CRM_DB or data/crm.duckdb)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sample", help="load sample data (bundled, or generated at another scale)")
    s.add_argument("--customers", type=int, help="generate this many customers instead of the bundled 5,000")
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--as-of", type=_date, help="last day of the generated history (default 2026-06-30)")
    s.add_argument("--out", type=Path, help="folder for the generated CSV files (default: a temp folder)")
    s.add_argument("--no-load", action="store_true", help="only write the files")
    s.add_argument("--format", choices=("text", "json"), default="text")

    i = sub.add_parser("import", help="import a CSV, .csv.gz, Parquet or .xlsx file into a table")
    i.add_argument("file", type=Path)
    i.add_argument("--table", required=True, help="canonical table or source shape (invoice_lines, transactions)")
    i.add_argument("--map", action="append", default=[], metavar="SRC=DST",
                   help="map source header SRC to canonical column DST ('SRC=' skips it); repeatable")
    i.add_argument("--set", action="append", default=[], metavar="COLUMN=VALUE", dest="constants",
                   help="set canonical COLUMN to VALUE on every row, e.g. campaign_id=HILL1 for an export without "
                        "a campaign column; repeatable")
    i.add_argument("--mode", choices=ingest.MODES, default="replace")
    i.add_argument("--template", help="use a saved mapping template")
    i.add_argument("--save-template", help="save the mapping used under this name")
    i.add_argument("--date-format", help="e.g. DD/MM/YYYY, MM/DD/YYYY or a strptime pattern like %%d.%%m.%%Y")
    i.add_argument("--encoding", help="force the text encoding (utf-8, windows-1252, latin-1)")
    i.add_argument("--sheet", help="sheet of an .xlsx workbook (default: the first)")
    i.add_argument("--format", choices=("text", "json"), default="text")

    m = sub.add_parser("metrics", help="compute metrics")
    m.add_argument("name", choices=tuple(_METRICS))
    m.add_argument("--as-of", type=_date, help="last day of the period (default: the latest order date)")
    m.add_argument("--days", type=int, default=30, help="period length in days (default 30)")
    m.add_argument("--start", type=_date, help="trend: first day")
    m.add_argument("--end", type=_date, help="trend: last day")
    m.add_argument("--region", action="append", default=[], help="only customers of this region (repeatable)")
    m.add_argument("--segment", action="append", default=[],
                   help="only customers of this RFM segment as of the period end (repeatable)")
    m.add_argument("--bins", type=int, default=5, help="rfm, segments, migration: number of score bins (default 5)")
    m.add_argument("--since", type=_date, help="migration: the earlier date (default: 182 days before --as-of)")
    m.add_argument("--from-segment", help="migration: list the customers who moved from this segment ...")
    m.add_argument("--to-segment", help="migration: ... to this segment")
    m.add_argument("--view", help="value: summary|customers|tiers|whale|influencers (default summary); "
                                  "clusters: profiles|assignments (default profiles); churn: at-risk|status|summary|"
                                  "drivers|calibration|model (default at-risk); clv: customers|parameters|summary|"
                                  "holdout (default customers); uplift: targets|summary|qini|quintiles|experiments "
                                  "(default targets); basket: rules|next-best (default rules); "
                                  "campaigns: summary|channel|segment|attribution (default summary); "
                                  "support: kpis|trend|backlog|oldest|csat|csat-by-breach|complaints|categories|"
                                  "tickets (default kpis); "
                                  "nps: nps|themes|ticket-themes|after-delivery (default nps); "
                                  "fulfilment: kpis|late-effect (default kpis); "
                                  "service_value: tiers|gap|channels|actions|usage|contact-points (default tiers)")
    m.add_argument("--top", type=int, help="value --view influencers (default 20), churn --view at-risk (default "
                                          "all): how many rows")
    m.add_argument("--inactive-days", type=int, default=180,
                   help="churn: churn definition, no purchase in this many days (default 180)")
    m.add_argument("--months", type=int, default=24, help="cohorts: months after acquisition to follow (default 24)")
    m.add_argument("--horizon-months", type=int, default=12, help="clv: months to predict (default 12)")
    m.add_argument("--discount-rate", type=float, default=0.01, help="clv: discount rate per month (default 0.01)")
    m.add_argument("--time-unit", choices=("D", "W", "M"), default="W",
                   help="clv: the models' time unit, days, weeks or months (default W)")
    m.add_argument("--calibration-end", type=_date,
                   help="clv --view holdout: end of the calibration period (default 182 days before --as-of)")
    m.add_argument("--ticket-cost", action="append", default=[], metavar="CHANNEL=COST",
                   help="value: cost of one support ticket in a channel (repeatable)")
    m.add_argument("--contact-cost", action="append", default=[], metavar="CHANNEL=COST",
                   help="value: cost of one campaign contact in a channel, when the contact has none (repeatable)")
    m.add_argument("--margin-rate", type=float, help="value: gross margin rate where unit costs are missing")
    m.add_argument("--k", type=int, help="clusters: number of clusters (default: best silhouette in 2..10)")
    m.add_argument("--features", help="clusters: comma-separated features (default recency_days,frequency,"
                                      "monetary,web_share)")
    m.add_argument("--campaign", help="uplift: the past randomised campaign to learn from (default: the latest "
                                      "with a control group)")
    m.add_argument("--model", choices=("two_model_logistic", "two_model_gbm", "transformed_outcome"),
                   help="uplift: the model (default two_model_logistic)")
    m.add_argument("--level", choices=("product", "category"), default="product", help="basket: rule level")
    m.add_argument("--window-days", type=int, default=14,
                   help="campaigns, lift: days after a contact in which purchases count (default 14)")
    m.add_argument("--revenue-basis", choices=("auto", "attributed", "window"), default="auto",
                   help="campaigns, lift: attributed revenue from the source, all purchases in the window, or "
                        "attributed when present (default auto)")
    m.add_argument("--min-support", type=float, default=0.001, help="basket: minimum share of baskets (default 0.001)")
    m.add_argument("--min-confidence", type=float, default=0.05, help="basket: minimum confidence (default 0.05)")
    m.add_argument("--max-rules", type=int, default=50, help="basket: most rules to list (default 50)")
    m.add_argument("--customer", action="append", default=[], help="basket --view next-best: only this customer "
                                                                   "(repeatable)")
    m.add_argument("--by", help="support: channel|priority|category|agent|segment|first_response_breach; "
                                "nps: month|segment|channel; fulfilment: carrier|region|month (default: one row)")
    m.add_argument("--first-response-hours", action="append", default=[], metavar="PRIORITY=HOURS",
                   help="support, service_value: first-response target for a priority (repeatable; defaults "
                        "urgent=4 high=8 normal=24 low=48)")
    m.add_argument("--resolution-hours", action="append", default=[], metavar="PRIORITY=HOURS",
                   help="support, service_value: resolution target for a priority (repeatable; defaults urgent=24 "
                        "high=48 normal=72 low=120)")
    m.add_argument("--business-hours", metavar="START-END",
                   help="support, service_value: count the SLA clocks only in these hours on weekdays, e.g. 9-17")
    m.add_argument("--freq", choices=("M", "W"), default="M", help="support --view trend: month or week")
    m.add_argument("--ticket-window-days", type=int, default=14,
                   help="fulfilment --view late-effect: days after a delivery in which a ticket counts (default 14)")
    m.add_argument("--repurchase-days", type=int, default=180,
                   help="fulfilment --view late-effect: days after a delivery in which a purchase counts (default 180)")
    m.add_argument("--survey-window-days", type=int, default=7,
                   help="nps --view after-delivery: days after a delivery in which an answer belongs to it (default 7)")
    m.add_argument("--format", choices=("json", "csv", "text"), default="json")

    c = sub.add_parser("customer", help="customer 360: search, profile, timeline, notes")
    c.add_argument("action", choices=("search", "show", "timeline", "note"),
                   help="search TEXT (id, e-mail or name) | show ID | timeline ID | note ID --author NAME --text TEXT")
    c.add_argument("query", help="the search text, or the customer id")
    c.add_argument("--as-of", type=_date, help="show, timeline: as of the end of this day (default: latest order)")
    c.add_argument("--limit", type=int, default=20, help="search: most matches; timeline: most events (default 20)")
    c.add_argument("--author", help="note: who writes it")
    c.add_argument("--text", help="note: the note")
    c.add_argument("--format", choices=("json", "csv", "text"), default="text")

    q = sub.add_parser("quality", help="data quality: completeness, duplicate customers, unused columns")
    q.add_argument("--format", choices=("text", "json"), default="text")

    h = sub.add_parser("history", help="import history")
    h.add_argument("--format", choices=("text", "json", "csv"), default="text")

    g = sub.add_parser("goals", help="measurable goals: the metric catalogue, list, add, update, delete, progress")
    g.add_argument("action", choices=("metrics", "list", "add", "update", "delete", "progress"),
                   help="metrics | list | add NAME | update ID | delete ID | progress ID")
    g.add_argument("what", nargs="?", help="add: the goal's name; update, delete, progress: the goal id")
    g.add_argument("--metric", help="add, update: a key of `goals metrics` (e.g. retention_rate)")
    g.add_argument("--unit", help="add, update: owning business unit: Sales, Marketing, Service or Support")
    g.add_argument("--start", type=_date, help="add, update: baseline date (the baseline is the metric on that day)")
    g.add_argument("--deadline", type=_date, help="add, update: date the target must be reached")
    g.add_argument("--target", type=_goal_number,
                   help="add, update: target on the metric's scale; rates as fractions (0.55) or percentages (55%%)")
    g.add_argument("--baseline", type=_goal_number, help="add, update: baseline instead of computing it")
    g.add_argument("--monthly", action="append", default=[], metavar="YYYY-MM=VALUE",
                   help="add, update: target at a month's end (repeatable; update replaces them all)")
    g.add_argument("--clear-monthly", action="store_true", help="update: drop the monthly targets")
    g.add_argument("--name", help="update: new name")
    g.add_argument("--author", help="add, update: who set the goal")
    g.add_argument("--as-of", type=_date, help="list, progress: measure at the end of this day (default: latest order)")
    g.add_argument("--drivers", choices=("segment", "region"), help="progress: also the gap split by segment/region")
    g.add_argument("--format", choices=("json", "csv", "text"), default="text")

    v = sub.add_parser("invest", help="investment case: NPV, payback, ROI, sensitivity, formulas from the data")
    _investment_options(v)
    v.add_argument("--as-of", type=_date, help="baselines over the 365 days to this day (default: latest order)")
    v.add_argument("--region", action="append", default=[], help="only customers of this region (repeatable)")
    v.add_argument("--segment", action="append", default=[], help="only customers of this RFM segment (repeatable)")
    v.add_argument("--swing", type=float, default=0.25, help="sensitivity: each input moved down and up by this share")
    v.add_argument("--view", choices=("summary", "cashflow", "sensitivity", "formulas", "baselines"),
                   default="summary")
    v.add_argument("--format", choices=("json", "csv", "text"), default="text")

    r = sub.add_parser("report", help="board pack: goals, the key chart of every view, as PDF (and HTML)")
    r.add_argument("--out", type=Path, required=True, help="the PDF to write")
    r.add_argument("--html", type=Path, help="also write a self-contained HTML file here")
    r.add_argument("--as-of", type=_date, help="last day of the period (default: the latest order date)")
    r.add_argument("--start", type=_date, help="first day of the period (default: 29 days before --as-of)")
    r.add_argument("--region", action="append", default=[], help="only customers of this region (repeatable)")
    r.add_argument("--segment", action="append", default=[],
                   help="only customers of this RFM segment as of the period end (repeatable)")
    r.add_argument("--mask", action="store_true", help="mask customers' names, e-mails and phone numbers")
    r.add_argument("--title", default="CRM board pack", help="title on the first page")
    r.add_argument("--invest", action="store_true", help="add the investment case with the investment options")
    _investment_options(r)
    return p


def _investment_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--one-off", type=float, default=10_000.0, help="one-off programme cost (default 10,000)")
    p.add_argument("--yearly", type=float, default=5_000.0, help="yearly programme cost (default 5,000)")
    p.add_argument("--horizon-months", type=int, default=36, help="months the case covers (default 36)")
    p.add_argument("--discount-rate", type=float, default=0.08, help="annual discount rate as a share (0.08 = 8%%)")
    p.add_argument("--ramp-up-months", type=int, default=6, help="months until the benefits are full (default 6)")
    p.add_argument("--churn-pts", type=float, default=2.0, help="yearly churn down by these points (default 2)")
    p.add_argument("--conversion-pts", type=float, default=1.0, help="campaign conversion up by points (default 1)")
    p.add_argument("--support-cost-pct", type=float, default=10.0, help="support cost down by this %% (default 10)")
    p.add_argument("--aov-pct", type=float, default=0.0, help="average order value up by this %% (default 0)")


def _goal_number(text: str) -> float:
    """``0.55`` → 0.55; ``55%`` → 0.55 (a percentage for a rate metric); anything else refused."""
    t = text.strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from exc


def _json_default(o):
    if isinstance(o, dt.date | dt.datetime):
        return o.isoformat()
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def _clean(obj):
    """NaN → None so the JSON is valid."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _print_frame(df, fmt: str) -> None:
    if fmt == "csv":
        from crm_core.exports import frame_to_csv

        sys.stdout.write(frame_to_csv(df))
    elif fmt == "json":
        print(json.dumps(_clean(df.to_dict(orient="records")), default=_json_default, indent=2))
    else:
        print(df.to_string(index=False))


class _StopsTicker:
    """A stdout/stderr that stops :func:`_working`'s line before the first thing the command writes."""

    def __init__(self, target, stop) -> None:
        self._target, self._stop = target, stop

    def write(self, text: str) -> int:
        self._stop()
        return self._target.write(text)

    def __getattr__(self, name: str):
        return getattr(self._target, name)


@contextmanager
def _working(label: str, stream=None, delay: float = 1.0, every: float = 1.0):
    """On a terminal, a line on stderr saying what runs and for how long, from ``delay`` seconds on and rewritten
    every ``every`` second: a query over millions of orders is never a silent wait. The line is erased, and stops,
    before the command writes anything (its result or a message) and at the end. Nothing when stderr is not a
    terminal (pipes and files get only the result). ``stream``: where to draw it instead (tests); then the
    command's own output is not watched."""
    watch = stream is None
    stream = stream or sys.stderr
    if not stream.isatty():
        yield
        return
    done, started, lock = threading.Event(), time.monotonic(), threading.Lock()
    shown = []

    def tick() -> None:
        while not done.wait(delay if not shown else every):
            with lock:
                if done.is_set():
                    return
                text = f"\r{label} ... {time.monotonic() - started:.0f} s"
                shown.append(len(text))
                stream.write(text)
                stream.flush()

    def stop() -> None:
        with lock:
            if done.is_set():
                return
            done.set()
            if shown:
                stream.write("\r" + " " * max(shown) + "\r")
                stream.flush()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    saved = sys.stdout, sys.stderr
    if watch:
        sys.stdout, sys.stderr = _StopsTicker(sys.stdout, stop), _StopsTicker(sys.stderr, stop)
    try:
        yield
    finally:
        if watch:
            sys.stdout, sys.stderr = saved
        stop()
        thread.join()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "import":  # prints its own progress (_stderr_progress)
            return _run(args)
        what = " ".join(str(v) for v in (args.command, getattr(args, "name", None) or getattr(args, "action", None))
                        if v and isinstance(v, str))
        with _working(f"working: {what}"):
            return _run(args)
    except RuntimeError as exc:  # e.g. database locked by another process
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _engine_refusal(args, settings) -> str | None:
    """Why ``args``' command cannot run on the configured engine (it writes the data or checks imports), or None."""
    unavailable = engines.writes_unavailable(settings)
    if unavailable is None:
        return None
    if args.command in ("import", "history") or (args.command == "sample" and not args.no_load) or (
            args.command == "customer" and args.action == "note"):
        return unavailable
    if args.command == "quality":
        return ("Data quality checks are DuckDB SQL over the embedded store and run on what is imported into it; "
                "check the engine's data where it is loaded. " + unavailable)
    return None


def _run_on_engine(args, settings) -> int:
    """Run a reading command with the metrics on the engine; goals and the audit log in the ``--db`` store."""
    refused = _engine_refusal(args, settings)
    if refused:
        print(f"error: {args.command}: {refused}", file=sys.stderr)
        return 2
    if args.command == "sample":  # --no-load: only writes the files
        return _cmd_sample(args)
    backend = engines.connect(settings)  # RuntimeError (unreachable, backend not installed): exit 1 in main
    try:
        if args.command == "metrics":
            return _cmd_metrics(None, args, backend)
        if args.command == "customer":
            return _cmd_customer(None, args, backend)
        if args.command == "invest":
            return _cmd_invest(None, args, backend)
        con = store.connect(args.db)  # the embedded store: goals and the audit log
        try:
            if args.command == "report":
                return _cmd_report(con, args, backend)
            if args.command == "goals":
                return _cmd_goals(con, args, backend)
        finally:
            con.close()
    finally:
        if backend.name != "pyspark":  # a Spark session belongs to the process (and may be a notebook's)
            backend.disconnect()
    return 2


def _run(args) -> int:
    try:
        settings = engines.settings_from_env()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not settings.is_embedded:
        return _run_on_engine(args, settings)
    if args.command == "sample":
        return _cmd_sample(args)
    con = store.connect(args.db)
    try:
        if args.command == "import":
            return _cmd_import(con, args)
        if args.command in ("metrics", "quality", "report", "goals", "invest"):
            ingest.load_sample_if_fresh(con)
        if args.command == "metrics":
            return _cmd_metrics(con, args)
        if args.command == "quality":
            return _cmd_quality(con, args)
        if args.command == "customer":
            return _cmd_customer(con, args)
        if args.command == "history":
            _print_frame(ingest.import_history(con), args.format)
            return 0
        if args.command == "report":
            return _cmd_report(con, args)
        if args.command == "goals":
            return _cmd_goals(con, args)
        if args.command == "invest":
            return _cmd_invest(con, args)
    finally:
        con.close()
    return 2


def _cmd_sample(args) -> int:
    from crm_core import sample

    if args.customers is None and args.out is None and args.as_of is None and args.seed == 42:
        folder = sample.SAMPLE_DIR
    else:
        import tempfile

        folder = args.out or Path(tempfile.mkdtemp(prefix="crm_sample_"))
        kwargs = {"n_customers": args.customers or 5000, "seed": args.seed}
        if args.as_of:
            kwargs["as_of"] = args.as_of
        print(f"generating {kwargs['n_customers']:,} customers into {folder} ...", file=sys.stderr)
        data = sample.generate(**kwargs)
        sample.write_sample(folder, data)
    if args.no_load:
        print(folder)
        return 0
    con = store.connect(args.db)
    try:
        reports = ingest.load_folder(con, folder, progress=_stderr_progress)
    finally:
        con.close()
    ok = all(r.ok for r in reports)
    if args.format == "json":
        print(json.dumps([r.to_dict() for r in reports], default=_json_default, indent=2))
    else:
        for r in reports:
            print(f"{r.table:18s} {r.outcome:9s} {r.rows_accepted:>10,} rows  {r.message}")
        print(f"database: {store.db_path(args.db)}")
    return 0 if ok else 1


def _stderr_progress(fraction: float, message: str) -> None:
    if sys.stderr.isatty():
        print(f"\r{fraction:4.0%} {message:40s}", end="", file=sys.stderr, flush=True)


def _cmd_import(con, args) -> int:
    overrides = {}
    for item in args.map:
        if "=" not in item:
            print(f"error: --map {item!r}: use SRC=DST (source header = canonical column)", file=sys.stderr)
            return 2
        src, dst = item.split("=", 1)
        overrides[src] = dst.strip()
    constants = _constants(args.constants, args.table)
    if constants is None:
        return 2
    report = ingest.import_file(
        con, args.file, args.table, mode=args.mode, mapping=overrides, constants=constants, template=args.template,
        save_as_template=args.save_template, date_format=args.date_format, encoding=args.encoding,
        sheet=args.sheet, progress=_stderr_progress,
    )
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if args.format == "json":
        print(json.dumps(_clean(report.to_dict()), default=_json_default, indent=2))
    else:
        print(report.summary())
    return 0 if report.ok else 1


def _constants(items: list[str], table: str) -> dict[str, str] | None:
    """``--set COLUMN=VALUE`` options as a dict; None (after saying why on stderr) when one is malformed, names a
    column the table does not have, or repeats a column."""
    from crm_core.schema import get_table

    try:
        columns = get_table(table).column_names
    except ValueError:
        columns = None  # an unknown table: the import refuses it with its own message
    constants: dict[str, str] = {}
    for item in items:
        column, sep, value = item.partition("=")
        column = column.strip()
        if not sep or not column:
            print(f"error: --set {item!r}: use COLUMN=VALUE (canonical column = the value for every row)",
                  file=sys.stderr)
            return None
        if columns is not None and column not in columns:
            print(f"error: --set {item!r}: {column!r} is not a column of {table}; choose from: {', '.join(columns)}",
                  file=sys.stderr)
            return None
        if column in constants:
            print(f"error: --set {column} is given twice", file=sys.stderr)
            return None
        constants[column] = value
    return constants


def _as_of(backend, args) -> dt.date:
    from crm_core import metrics

    return args.as_of or metrics.data_as_of(backend) or dt.date.today()


def _m_overview(backend, args):
    from crm_core import metrics

    ov = metrics.overview(backend, as_of=args.as_of, days=args.days, regions=tuple(args.region),
                          segments=tuple(args.segment))
    return metrics.overview_frame(ov)


def _m_trend(backend, args):
    from crm_core import metrics

    return metrics.monthly_trend(backend, start=args.start, end=args.end, regions=tuple(args.region),
                                 segments=tuple(args.segment))


def _m_rfm(backend, args):
    from crm_core import segments

    return segments.rfm(backend, _as_of(backend, args), args.bins, tuple(args.region))


def _m_segments(backend, args):
    from crm_core import segments

    return segments.segment_summary(backend, _as_of(backend, args), args.bins, tuple(args.region))


def _m_migration(backend, args):
    from crm_core import segments

    as_of = _as_of(backend, args)
    since = args.since or as_of - dt.timedelta(days=182)
    if args.from_segment or args.to_segment:
        return segments.migration_customers(backend, since, as_of, args.from_segment, args.to_segment, args.bins,
                                            tuple(args.region))
    return segments.migration(backend, since, as_of, args.bins, tuple(args.region))


def _costs(pairs: list[str], option: str, key: str = "CHANNEL", example: str = "phone=6.5") -> dict[str, float]:
    """``KEY=NUMBER`` pairs as a dict (keys trimmed and lower-cased); a clear error naming the option otherwise."""
    out = {}
    for pair in pairs:
        name, sep, number = pair.partition("=")
        try:
            out[name.strip().lower()] = float(number)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            what = "COST" if key == "CHANNEL" else "HOURS"
            raise ValueError(f"{option} {pair!r}: use {key}={what}, e.g. {option} {example}")
    return out


def _m_value(backend, args):
    from crm_core import value

    d = value.CostRates()
    rates = value.CostRates(
        ticket_cost_by_channel={**d.ticket_cost_by_channel, **_costs(args.ticket_cost, "--ticket-cost")},
        contact_cost_by_channel={**d.contact_cost_by_channel, **_costs(args.contact_cost, "--contact-cost")},
        default_margin_rate=d.default_margin_rate if args.margin_rate is None else args.margin_rate)
    values = value.customer_value(backend, _as_of(backend, args), start=args.start, rates=rates,
                                  regions=tuple(args.region), segments=tuple(args.segment))
    view = args.view or "summary"
    if view == "summary":
        return _facts({**vars(value.value_totals(values)), **vars(value.whale_summary(values))})
    views = {"customers": lambda: values, "tiers": lambda: value.tier_summary(values),
             "whale": lambda: value.whale_curve(values),
             "influencers": lambda: value.influencers(values, args.top or 20)}
    if view not in views:
        raise ValueError(f"--view {view!r}: choose summary, customers, tiers, whale or influencers")
    return views[view]()


def _m_clusters(backend, args):
    from crm_core import clusters

    features = tuple(x.strip() for x in args.features.split(",")) if args.features else clusters.DEFAULT_FEATURES
    result = clusters.clusters(backend, _as_of(backend, args), n_clusters=args.k, features=features)
    view = args.view or "profiles"
    if view not in ("profiles", "assignments"):
        raise ValueError(f"--view {view!r}: choose profiles or assignments")
    if view == "profiles":
        print(f"k={result.k} (silhouette {result.silhouette_by_k.get(result.k, float('nan')):.3f})", file=sys.stderr)
        return result.profiles
    return result.assignments


def _facts(facts: dict):
    import pandas as pd

    return pd.DataFrame({"fact": list(facts), "value": pd.Series(list(facts.values()), dtype=object)})


def _m_cohorts(backend, args):
    from crm_core import churn

    return churn.cohort_retention(backend, _as_of(backend, args), start=args.start, months=args.months,
                                  regions=tuple(args.region), segments=tuple(args.segment))


def _m_churn(backend, args):
    from crm_core import churn

    as_of, days, scope = _as_of(backend, args), args.inactive_days, dict(regions=tuple(args.region),
                                                                        segments=tuple(args.segment))
    view = args.view or "at-risk"
    if view == "status":
        return churn.churn_status(backend, as_of, days, **scope)
    if view == "summary":
        return _facts(vars(churn.churn_summary(backend, as_of, days, **scope)))
    if view not in ("at-risk", "drivers", "calibration", "model"):
        raise ValueError(f"--view {view!r}: choose at-risk, status, summary, drivers, calibration or model")
    model = churn.train_churn_model(backend, as_of, days, **scope)
    print(f"out-of-time ROC AUC {model.roc_auc:.3f}, Brier {model.brier_score:.3f}, base rate "
          f"{model.test_churn_rate:.3f} (trained on {model.n_train} customers active on {model.train_cutoff}, tested "
          f"on {model.n_test} active on {model.test_cutoff})", file=sys.stderr)
    if view == "model":
        return _facts({k: getattr(model, k) for k in (
            "as_of", "inactive_days", "train_cutoff", "test_cutoff", "n_train", "n_test", "train_churn_rate",
            "test_churn_rate", "roc_auc", "brier_score", "revenue_at_risk", "model_name")}
            | {"features": ", ".join(model.features)})
    if view == "at-risk":
        return model.at_risk if args.top is None else model.at_risk.head(args.top)
    return model.drivers if view == "drivers" else model.calibration


def _m_clv(backend, args):
    from crm_core import clv

    as_of, view = _as_of(backend, args), args.view or "customers"
    if view == "holdout":
        cal = clv.calibration_holdout(backend, args.calibration_end or as_of - dt.timedelta(days=182), as_of,
                                      args.time_unit)
        print(f"holdout {cal.calibration_end} .. {cal.as_of}: predicted {cal.total_predicted:,.1f} repeat purchases, "
              f"actual {cal.total_actual:,.0f}", file=sys.stderr)
        return cal.frame
    if view not in ("customers", "parameters", "summary"):
        raise ValueError(f"--view {view!r}: choose customers, parameters, summary or holdout")
    result = clv.clv(backend, as_of, horizon_months=args.horizon_months, discount_rate=args.discount_rate,
                     time_unit=args.time_unit)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if view == "parameters":
        return result.parameters()
    if view == "summary":
        return _facts({**result.totals, "population_mean_spend": result.population_mean_spend,
                       "return_rate": result.return_rate, "horizon_months": result.horizon_months,
                       "discount_rate": result.discount_rate, "time_unit": result.time_unit,
                       **{f"seconds_{k}": v for k, v in result.timings.items()}})
    return result.customers.sort_values("clv", ascending=False) if args.top is None else \
        result.customers.sort_values("clv", ascending=False).head(args.top)


def _m_uplift(backend, args):
    from crm_core import uplift

    view = args.view or "targets"
    if view == "experiments":
        return uplift.experiment_campaigns(backend)
    if view not in ("targets", "summary", "qini", "quintiles"):
        raise ValueError(f"--view {view!r}: choose targets, summary, qini, quintiles or experiments")
    r = uplift.train_uplift_model(backend, args.campaign, as_of=_as_of(backend, args), top_n=args.top or 500,
                                  model=args.model or "two_model_logistic", regions=tuple(args.region),
                                  segments=tuple(args.segment))
    print(f"{r.campaign_id}: observed lift {r.observed_lift:+.3f} (95% {r.observed_lift_low:+.3f} to "
          f"{r.observed_lift_high:+.3f}); held-out Qini coefficient {r.qini_score.qini_coefficient:.2f}; top "
          f"{len(r.targets)}: {r.expected_incremental_conversions:.1f} expected incremental conversions",
          file=sys.stderr)
    if view == "summary":
        return _facts({k: getattr(r, k) for k in (
            "campaign_id", "start_date", "treatment_rule", "n_treatment", "n_control", "conversions_treatment",
            "conversions_control", "observed_lift", "observed_lift_low", "observed_lift_high", "model_name",
            "n_train", "n_test", "mean_predicted_uplift", "as_of", "n_scored", "top_n",
            "expected_incremental_conversions")} | vars(r.qini_score) | {"features": ", ".join(r.features)})
    return {"targets": r.targets, "qini": r.qini, "quintiles": r.uplift_by_quintile}[view]


def _m_basket(backend, args):
    from crm_core import basket

    common = dict(level=args.level, min_support=args.min_support, min_confidence=args.min_confidence,
                  start=args.start, end=args.end, regions=tuple(args.region), segments=tuple(args.segment))
    view = args.view or "rules"
    if view == "rules":
        result = basket.association_rules(backend, max_rules=args.max_rules, **common)
        print(f"{len(result.rules)} rules from {result.n_baskets:,} baskets ({result.level} level)", file=sys.stderr)
        return result.rules
    if view == "next-best":
        return basket.next_best_products(backend, k=args.k or 3, customer_ids=args.customer or None, **common)
    raise ValueError(f"--view {view!r}: choose rules or next-best")


def _m_campaigns(backend, args):
    from crm_core import campaigns

    view = args.view or "summary"
    if view == "summary":
        summary = campaigns.campaign_summary(backend, args.window_days, args.revenue_basis)
        print(campaigns.read_summary(summary), file=sys.stderr)
        return summary
    if view == "channel":
        return campaigns.by_channel(backend, args.window_days, args.revenue_basis)
    if view == "segment":
        return campaigns.by_segment(backend, args.bins)
    if view == "attribution":
        for rule in ("last_touch", "linear"):
            print(campaigns.attribution_rule(rule, args.window_days), file=sys.stderr)
        return campaigns.attribution(backend, args.window_days)
    raise ValueError(f"--view {view!r}: choose summary, channel, segment or attribution")


def _m_lift(backend, args):
    from crm_core import campaigns

    if args.campaign:
        results = [campaigns.lift(backend, args.campaign, args.window_days, args.revenue_basis)]
    else:
        results = list(campaigns.lift_all(backend, args.window_days, args.revenue_basis))
    for r in results:
        print(r.verdict, file=sys.stderr)
    return campaigns.lift_frame(results)


def _policy(args):
    from crm_core import support

    d = support.SlaPolicy()
    hours = None
    if args.business_hours:
        try:
            start, end = (int(x) for x in args.business_hours.split("-"))
        except ValueError:
            raise ValueError(f"--business-hours {args.business_hours!r}: write START-END in whole hours, "
                             "e.g. 9-17") from None
        hours = support.BusinessHours(start, end)
    return support.SlaPolicy(
        first_response_hours={**d.first_response_hours, **_costs(args.first_response_hours, "--first-response-hours",
                                                                      "PRIORITY", "normal=12")},
        resolution_hours={**d.resolution_hours, **_costs(args.resolution_hours, "--resolution-hours", "PRIORITY",
                                                                 "normal=48")},
        business_hours=hours)


def _scope(args) -> dict:
    return dict(regions=tuple(args.region), segments=tuple(args.segment))


def _m_support(backend, args):
    from crm_core import support

    policy, view = _policy(args), args.view or "kpis"
    common = dict(as_of=args.as_of, start=args.start, policy=policy, **_scope(args))
    if view == "kpis":
        return support.ticket_kpis(backend, by=args.by, **common)
    if args.by is not None:
        raise ValueError("--by works with --view kpis only")
    if view in ("backlog", "oldest"):
        b = support.backlog(backend, as_of=args.as_of, policy=policy, top=args.top or 10, **_scope(args))
        print(f"{b.open_tickets:,} tickets open at the end of {b.as_of}", file=sys.stderr)
        return b.by_age if view == "backlog" else b.oldest
    views = {"trend": lambda: support.ticket_trend(backend, freq=args.freq, **common),
             "csat": lambda: support.csat_distribution(backend, **common),
             "csat-by-breach": lambda: support.csat_by_breach(backend, **common),
             "complaints": lambda: support.complaints(backend, as_of=args.as_of, start=args.start, by="month",
                                                      **_scope(args)),
             "categories": lambda: support.complaints(backend, as_of=args.as_of, start=args.start, by="category",
                                                      **_scope(args)),
             "tickets": lambda: support.ticket_facts(backend, **common)}
    if view not in views:
        raise ValueError(f"--view {view!r}: choose kpis, trend, backlog, oldest, csat, csat-by-breach, complaints, "
                         "categories or tickets")
    return views[view]()


def _m_service_value(backend, args):
    from crm_core import service, value

    d = value.CostRates()
    rates = value.CostRates(ticket_cost_by_channel={**d.ticket_cost_by_channel, **_costs(args.ticket_cost,
                                                                                         "--ticket-cost")},
                            contact_cost_by_channel={**d.contact_cost_by_channel, **_costs(args.contact_cost,
                                                                                           "--contact-cost")})
    policy, view = _policy(args), args.view or "tiers"
    as_of = _as_of(backend, args)
    common = dict(as_of=as_of, start=args.start, **_scope(args))
    if view in ("tiers", "gap"):
        tiers = service.service_by_tier(backend, policy=policy, rates=rates, **common)
        if view == "tiers":
            return tiers
        gap = service.service_gap(tiers)
        print(gap.sentence, file=sys.stderr)
        return _facts(vars(gap))
    views = {"channels": lambda: service.breach_by_channel(backend, policy=policy, **common),
             "actions": lambda: service.action_list(backend, policy=policy, rates=rates, limit=args.top or 50,
                                                    **common),
             "usage": lambda: service.channel_usage(backend, **common),
             "contact-points": lambda: service.contact_points(backend, rates=rates, **common)}
    if view not in views:
        raise ValueError(f"--view {view!r}: choose tiers, gap, channels, actions, usage or contact-points")
    for touchpoint, reason in service.touchpoints_unavailable(backend).items():
        if view in ("usage", "contact-points"):
            print(f"{touchpoint}: {reason}", file=sys.stderr)
    return views[view]()


def _m_nps(backend, args):
    from crm_core import voice

    view = args.view or "nps"
    common = dict(as_of=args.as_of, start=args.start, **_scope(args))
    if view == "nps":
        return voice.nps(backend, by=args.by, **common)
    if args.by is not None:
        raise ValueError("--by works with --view nps only")
    if view in ("themes", "ticket-themes"):
        return voice.comment_themes(backend, top=args.top or 10, source="surveys" if view == "themes" else "tickets",
                                    **common)
    if view == "after-delivery":
        result = voice.nps_after_delivery(backend, window_days=args.survey_window_days, **common)
        if result.effect is not None:
            e = result.effect
            print(f"mean score after a late delivery {e.treatment:.2f} against {e.control:.2f} for every other answer: "
                  f"{e.absolute_lift:+.2f} points (95% CI {e.ci_low:+.2f} to {e.ci_high:+.2f})", file=sys.stderr)
        elif result.note:
            print(result.note, file=sys.stderr)
        return result.frame()
    raise ValueError(f"--view {view!r}: choose nps, themes, ticket-themes or after-delivery")


def _m_fulfilment(backend, args):
    from crm_core import fulfilment

    view = args.view or "kpis"
    common = dict(as_of=args.as_of, start=args.start, **_scope(args))
    if view == "kpis":
        return fulfilment.fulfilment_kpis(backend, by=args.by, **common)
    if args.by is not None:
        raise ValueError("--by works with --view kpis only")
    if view == "late-effect":
        effect = fulfilment.late_delivery_effect(backend, ticket_window_days=args.ticket_window_days,
                                                 repurchase_days=args.repurchase_days, **common)
        if effect.ticket is not None:
            t = effect.ticket
            print(f"tickets within {args.ticket_window_days} days: {t.treatment:.1%} after a late delivery against "
                  f"{t.control:.1%} after an on-time one ({t.absolute_lift * 100:+.1f} points, 95% CI "
                  f"{t.ci_low * 100:+.1f} to {t.ci_high * 100:+.1f})", file=sys.stderr)
        if effect.repurchase_ratio is not None:
            print(f"bought again within {args.repurchase_days} days: {effect.repurchase_ratio:.2f} times as often "
                  "after a late delivery as after an on-time one", file=sys.stderr)
        if effect.note:
            print(effect.note, file=sys.stderr)
        return effect.frame()
    raise ValueError(f"--view {view!r}: choose kpis or late-effect")


_METRICS = {"overview": _m_overview, "trend": _m_trend, "rfm": _m_rfm, "segments": _m_segments,
            "migration": _m_migration, "value": _m_value, "clusters": _m_clusters, "cohorts": _m_cohorts,
            "churn": _m_churn, "clv": _m_clv, "uplift": _m_uplift, "basket": _m_basket,
            "campaigns": _m_campaigns, "lift": _m_lift, "support": _m_support,
            "service_value": _m_service_value, "nps": _m_nps, "fulfilment": _m_fulfilment}


def _cmd_metrics(con, args, backend=None) -> int:
    backend = store.ibis_backend(con) if backend is None else backend
    try:
        df = _METRICS[args.name](backend, args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_frame(df, args.format)
    return 0


def _cmd_customer(con, args, backend=None) -> int:
    from crm_core import customer360

    backend = store.ibis_backend(con) if backend is None else backend
    try:
        if args.action == "search":
            df = customer360.search_customers(backend, args.query, limit=args.limit)
        elif args.action == "timeline":
            df = customer360.timeline(backend, args.query, as_of=args.as_of, limit=args.limit)
        elif args.action == "show":
            prof = customer360.profile(backend, args.query, as_of=args.as_of)
            print(f"next best action: {prof.next_best_action}", file=sys.stderr)
            df = _facts({k: v for k, v in vars(prof).items() if k != "customer"})
        else:
            if not args.author or not args.text:
                raise ValueError("note needs --author NAME and --text TEXT")
            note_id = customer360.add_note(con, args.query, args.author, args.text)
            print(f"saved note {note_id} for customer {args.query}", file=sys.stderr)
            df = customer360.notes(backend, args.query)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_frame(df, args.format)
    return 0


def _cmd_quality(con, args) -> int:
    from crm_core import quality

    report = quality.quality_report(con)
    if args.format == "json":
        print(json.dumps(_clean(report), default=_json_default, indent=2))
    else:
        print(quality.format_report(report))
    return 0


def _cmd_report(con, args, backend=None) -> int:
    import time

    from crm_core import report

    backend = store.ibis_backend(con) if backend is None else backend
    as_of = _as_of(backend, args)
    start = args.start or as_of - dt.timedelta(days=29)
    goal_pairs = []
    try:  # crm_core.goals is new: a store from before it (or a checkout without it) has no goals to show
        from crm_core import goals
    except ImportError:
        goals = None
    if goals is not None:
        goal_pairs = [(g, goals.progress(backend, g, as_of)) for g in goals.list_goals(con)]
    investment_case = None
    if args.invest:
        try:
            investment_case = _investment(backend, as_of, args)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    started = time.perf_counter()
    try:
        pack = report.board_pack(backend, start=start, as_of=as_of, regions=tuple(args.region),
                                 segments=tuple(args.segment), goals=goal_pairs, investment=investment_case,
                                 mask=args.mask, title=args.title)
        images = report.chart_images(pack)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except report.ChartRenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report.to_pdf(pack, args.out, images=images)
    written = [str(args.out)]
    if args.html:
        args.html.write_text(report.to_html(pack, images=images), encoding="utf-8")
        written.append(str(args.html))
    print(f"board pack of {len(pack.sections)} sections ({pack.filters}) in {time.perf_counter() - started:.1f} s: "
          + ", ".join(written), file=sys.stderr)
    return 0


def _investment(backend, as_of: dt.date, args, regions=(), segments=()):
    """(case, sensitivity) for the investment options in ``args``; ValueError with what to fix."""
    from crm_core import investment

    base = investment.baselines(backend, as_of, regions=tuple(regions), segments=tuple(segments))
    programme = investment.Programme(one_off_cost=args.one_off, yearly_cost=args.yearly,
                                     horizon_months=args.horizon_months, discount_rate_annual=args.discount_rate,
                                     ramp_up_months=args.ramp_up_months)
    improvements = investment.Improvements(churn_pts=args.churn_pts, conversion_pts=args.conversion_pts,
                                           support_cost_pct=args.support_cost_pct, aov_pct=args.aov_pct)
    case = investment.investment_case(base, programme, improvements)
    return case, investment.sensitivity(base, programme, improvements, swing=getattr(args, "swing", 0.25))


def _cmd_invest(con, args, backend=None) -> int:
    import pandas as pd

    from crm_core import investment

    backend = store.ibis_backend(con) if backend is None else backend
    as_of = _as_of(backend, args)
    try:
        case, sens = _investment(backend, as_of, args, args.region, args.segment)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.view == "cashflow":
        _print_frame(case.cashflow, args.format)
    elif args.view == "sensitivity":
        _print_frame(sens, args.format)
    elif args.view == "formulas":
        _print_frame(pd.DataFrame(case.formulas, columns=["name", "formula", "example"]), args.format)
    elif args.view == "baselines":
        b = case.baselines
        _print_frame(pd.DataFrame([{"baseline": k, "value": v, "source": b.sources.get(k, "")}
                                   for k, v in vars(b).items() if k not in ("sources", "as_of")]), args.format)
    else:
        summary = {"as_of": as_of, "npv": case.npv, "payback_month": case.payback_month, "roi": case.roi,
                   "incremental_profit": case.incremental_profit, "total_cost": case.total_cost,
                   "pv_benefits": case.pv_benefits, "pv_costs": case.pv_costs,
                   "benefit_by_lever": case.benefit_by_lever, "reading": investment.reading(case)}
        if args.format == "json":
            print(json.dumps(_clean(summary), default=_json_default, indent=2))
        elif args.format == "csv":
            flat = {k: v for k, v in summary.items() if k != "benefit_by_lever"}
            flat.update({f"benefit_{k}": v for k, v in case.benefit_by_lever.items()})
            _print_frame(pd.DataFrame([flat]), "csv")
        else:
            print(investment.reading(case))
            payback = "not within the horizon" if case.payback_month is None else f"month {case.payback_month}"
            roi = "n/a" if case.roi is None else f"{case.roi:.1%}"
            print(f"NPV {case.npv:,.0f} · payback {payback} · ROI {roi} · incremental profit "
                  f"{case.incremental_profit:,.0f} · total cost {case.total_cost:,.0f}")
            for f in case.formulas:
                print(f"- {f.name}: {f.formula}\n    {f.example}")
    return 0


def _goal_row(g, p=None) -> dict:
    row = {"goal_id": g.goal_id, "name": g.name, "metric": g.metric, "business_unit": g.business_unit,
           "start_date": g.start_date, "deadline": g.deadline, "baseline": g.baseline, "target": g.target,
           "monthly_targets": dict(g.monthly_targets), "author": g.author}
    if p is not None:
        row.update(as_of=p.as_of, current=p.current, planned=p.planned, forecast=p.forecast,
                   forecast_low=p.forecast_low, forecast_high=p.forecast_high, status=p.status, reading=p.reading)
    return row


def _monthly(items: list[str]) -> dict[str, float] | None:
    out = {}
    for item in items:
        month, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--monthly {item!r}: use YYYY-MM=VALUE")
        try:
            out[month.strip()] = _goal_number(value)
        except argparse.ArgumentTypeError as exc:  # not parsed by argparse here: say it like the other refusals
            raise ValueError(f"--monthly {item!r}: {exc}; use YYYY-MM=VALUE") from None
    return out


def _cmd_goals(con, args, backend=None) -> int:
    import pandas as pd

    from crm_core import audit, goals

    backend = store.ibis_backend(con) if backend is None else backend
    if args.action == "metrics":
        _print_frame(pd.DataFrame([{"metric": m.key, "label": m.label, "unit": m.unit,
                                    "better": "higher" if m.higher_is_better else "lower", "owner": m.business_unit,
                                    "window_days": m.window_days, "definition": m.definition}
                                   for m in goals.METRICS.values()]), args.format)
        return 0
    if args.action == "list":
        listed = goals.list_goals(con)
        as_of = args.as_of
        rows = [_goal_row(g, goals.progress(backend, g, as_of) if as_of else None) for g in listed]
        if args.format == "text" and not rows:
            print("no goals yet: python -m crm_core goals add NAME --metric M --start D --deadline D --target T")
            return 0
        _print_frame(pd.DataFrame(rows), args.format)
        return 0
    if not args.what:
        print(f"error: goals {args.action} needs {'a name' if args.action == 'add' else 'a goal id'}",
              file=sys.stderr)
        return 2
    try:
        if args.action == "add":
            missing = [o for o in ("metric", "start", "deadline", "target") if getattr(args, o) is None]
            if missing:
                print("error: goals add needs " + ", ".join(f"--{o}" for o in missing), file=sys.stderr)
                return 2
            goal = goals.create_goal(con, args.what, args.metric, args.unit, args.start, args.deadline, args.target,
                                     baseline=args.baseline, monthly_targets=_monthly(args.monthly),
                                     author=args.author, backend=backend)
            audit.record(con, "goal_create", actor=args.author, target=goal.goal_id, detail=f"CLI: {goal.name}")
        elif args.action == "update":
            changes = {k: v for k, v in (("name", args.name), ("metric", args.metric), ("business_unit", args.unit),
                                         ("start_date", args.start), ("deadline", args.deadline),
                                         ("target", args.target), ("baseline", args.baseline),
                                         ("author", args.author)) if v is not None}
            if args.monthly or args.clear_monthly:
                changes["monthly_targets"] = _monthly(args.monthly) if args.monthly else {}
            goal = goals.update_goal(con, args.what, backend=backend, **changes)
            audit.record(con, "goal_update", actor=args.author, target=goal.goal_id, detail=f"CLI: {goal.name}")
        elif args.action == "delete":
            if not goals.delete_goal(con, args.what):
                print(f"error: no goal with id {args.what!r}", file=sys.stderr)
                return 1
            audit.record(con, "goal_delete", target=args.what, detail="CLI")
            print(f"deleted {args.what}")
            return 0
        else:  # progress
            goal = goals.get_goal(con, args.what)
            if goal is None:
                print(f"error: no goal with id {args.what!r}", file=sys.stderr)
                return 1
            as_of = _as_of(backend, args)
            p = goals.progress(backend, goal, as_of)
            if args.format == "json":
                out = _goal_row(goal, p)
                out["series"] = p.series.to_dict(orient="records")
                if args.drivers:
                    out["drivers"] = goals.gap_drivers(backend, goal, as_of, by=args.drivers).to_dict("records")
                print(json.dumps(_clean(out), default=_json_default, indent=2))
            elif args.format == "csv":
                _print_frame(p.series, "csv")
            else:
                print(p.reading)
                print(p.series.to_string(index=False))
                if args.drivers:
                    print(goals.gap_drivers(backend, goal, as_of, by=args.drivers).to_string(index=False))
            return 0
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(_clean(_goal_row(goal)), default=_json_default, indent=2))
    else:
        print(f"{goal.goal_id}: {goal.name} — {goals.METRICS[goal.metric].label} from "
              f"{goals.format_value(goal.metric, goal.baseline)} on {goal.start_date} to "
              f"{goals.format_value(goal.metric, goal.target)} by {goal.deadline} (owner {goal.business_unit})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
