"""The board pack: the goals, the key chart of every view and the investment case, for one set of filters and one
date, as a PDF and as a self-contained HTML file a strategy workshop can take away.

- :func:`board_pack` computes every section from the core (the same functions and readings as the pages) and
  returns a :class:`BoardPack`; a view without data gets a section that says so.
- :func:`chart_images` renders every chart of a pack to PNG in **one** headless-browser session (kaleido 1.x over
  Debian's Chromium, ``/usr/bin/chromium`` unless ``BROWSER_PATH`` names another; kaleido never downloads one).
- :func:`to_pdf` writes an A4 landscape PDF with reportlab: a title page (title, date, filters, contents), then one
  page per section with its page number. :func:`to_html` returns one HTML document with inline CSS and the charts
  as ``data:image/png;base64`` URIs: no external link, font or script.

Filters are the app's: ``start`` .. ``as_of`` (the period), ``regions`` and ``segments`` (RFM segment as of
``as_of``). Views that the app reads over other windows say so in their note (segments ignore the segment filter;
campaigns are read over their own dates; customer value and cross-sell use all history up to ``as_of``).
With ``mask=True`` every table goes through :func:`crm_core.privacy.mask_frame` (names, e-mails, phones).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import html
import io
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import ibis
import pandas as pd
import plotly.graph_objects as go

from crm_core import figures, narrative

__all__ = ["CHROMIUM", "BoardPack", "ChartRenderError", "Section", "board_pack", "chart_images", "to_html", "to_pdf"]

CHROMIUM = "/usr/bin/chromium"  # Debian's package; BROWSER_PATH overrides it
IMAGE_WIDTH = 1100  # px at scale 1; rendered at scale 2 for print
INACTIVE_DAYS = 180  # churn definition, as the Retention page's default
TOP_ROWS = 10


class ChartRenderError(RuntimeError):
    """The charts could not be drawn: no browser for kaleido, or the browser failed."""


@dataclass(frozen=True)
class Section:
    """One page of the pack: a heading, the sentence that reads it, a chart and/or tables, and a definition note.

    ``tables`` holds (caption, frame) pairs whose cells are display text already. ``available`` is False when
    the view had no data; ``reading`` then says what to import.
    """

    heading: str
    reading: str
    figure: go.Figure | None = None
    tables: tuple[tuple[str, pd.DataFrame], ...] = ()
    note: str = ""
    available: bool = True


@dataclass(frozen=True)
class BoardPack:
    """A dated pack for one set of filters: ``sections`` in print order (goals, the views, the investment case)."""

    title: str
    date: dt.date
    generated_at: dt.datetime
    start: dt.date
    as_of: dt.date
    regions: tuple[str, ...]
    segments: tuple[str, ...]
    filters: str
    masked: bool
    sections: tuple[Section, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------------------------- small helpers
def describe_filters(start: dt.date, as_of: dt.date, regions: Sequence[str] = (), segments: Sequence[str] = ()) -> str:
    """``1 Jun 2026 – 30 Jun 2026 (30 days); regions North, South; segments Champions (as of 30 Jun 2026)``."""
    days = (as_of - start).days + 1
    text = f"{narrative.day(start)} – {narrative.day(as_of)} ({days} days); "
    text += ("regions " + ", ".join(regions)) if regions else "all regions"
    text += (f"; segments {', '.join(segments)} (as of {narrative.day(as_of)})") if segments else "; all segments"
    return text


def _display(frame: pd.DataFrame, columns: dict[str, tuple[str, str]], mask: bool) -> pd.DataFrame:
    """The chosen ``columns`` ({column: (label, unit)}) as display text; unit "text" leaves a value as it is."""
    if mask:
        from crm_core.privacy import mask_frame

        frame = mask_frame(frame)
    out = pd.DataFrame(index=frame.index)
    for column, (label, unit) in columns.items():
        values = frame[column]
        out[label] = [("–" if narrative._missing(v) else str(v)) if unit == "text"
                      else narrative.format_value(v, unit) for v in values]
    return out.reset_index(drop=True)


def _missing_section(heading: str, what: str) -> Section:
    return Section(heading, what, available=False)


def _scope_note(regions: tuple[str, ...], segments: tuple[str, ...]) -> str:
    text = ", ".join(regions) if regions else "all regions"
    return text + (f"; segments {', '.join(segments)}" if segments else "")


# --------------------------------------------------------------------------------------------- view sections
def _overview(backend, start, as_of, regions, segments, mask) -> Section:
    from crm_core import metrics

    days = (as_of - start).days + 1
    ov = metrics.overview(backend, as_of=as_of, days=days, regions=regions, segments=segments)
    heading = "Overview: revenue and customers"
    if not any(k.value for k in ov.kpis if k.key in ("revenue", "orders", "customers")):
        return _missing_section(heading, "No customers or orders in this view: import orders, or widen the period.")
    trend_start = (as_of.replace(day=1) - dt.timedelta(days=365 * 2 - 31)).replace(day=1)
    trend = metrics.monthly_trend(backend, start=trend_start, end=as_of, regions=regions, segments=segments)
    kpis = pd.DataFrame([{"kpi": k.label, "value": narrative.format_value(k.value, k.unit),
                          "previous": narrative.format_value(k.previous, k.unit),
                          "change": narrative.format_delta(k.delta, k.unit) or "–"} for k in ov.kpis if k.available])
    table = kpis.rename(columns={"kpi": "KPI", "value": "This period", "previous": "Previous period",
                                 "change": "Change"})
    revenue_help = ov["revenue"].help
    return Section(
        heading, narrative.overview_reading(ov),
        figures.trend_figure(trend, "revenue", metrics.TREND_LABELS["revenue"], "bar"),
        (("KPIs against the previous period of the same length", table),),
        f"{revenue_help} Chart: {trend_start:%b %Y} – {as_of:%b %Y} by calendar month; the last month counts the "
        f"days up to {narrative.day(as_of)}. "
        + narrative.trend_reading(trend, "revenue", metrics.TREND_LABELS["revenue"], "currency"))


def _segments(backend, start, as_of, regions, segments, mask) -> Section:
    from crm_core import segments as seg

    heading = "Segments: who holds the revenue"
    summary = seg.segment_summary(backend, as_of, 5, regions)
    if summary["customers"].sum() == 0:
        return _missing_section(heading, "No customer has a purchase by this date: import orders.")
    table = _display(summary[summary["customers"] > 0],
                     {"segment": ("Segment", "text"), "customers": ("Customers", "count"),
                      "share_of_customers": ("Share of customers", "pct"), "revenue": ("Revenue", "currency"),
                      "share_of_revenue": ("Share of revenue", "pct")}, mask)
    return Section(heading, narrative.segment_reading(summary), figures.segment_shares_figure(summary),
                   (("Segments", table),),
                   f"RFM as of {narrative.day(as_of)}, {_scope_note(regions, ())}: recency, frequency and net "
                   "spend scored 1-5 by quantile over the whole history; the segment filter does not apply here, "
                   "since this view compares all segments.")


def _value(backend, start, as_of, regions, segments, mask) -> Section:
    from crm_core import value

    heading = "Customer value: the whale curve"
    values = value.customer_value(backend, as_of, regions=regions, segments=segments)
    if values.empty:
        return _missing_section(heading, "No customer has orders, tickets or campaign contacts: import orders.")
    tiers = value.tier_summary(values)
    tier_table = _display(tiers, {"value_tier": ("Tier", "text"), "customers": ("Customers", "count"),
                                  "share_of_customers": ("Share of customers", "pct"),
                                  "profit": ("Profit", "currency"), "share_of_profit": ("Share of profit", "pct"),
                                  "service_level": ("Service level", "text")}, mask)
    top = values.nlargest(5, "profit")[["customer_id", "profit", "revenue"]]
    people = (backend.table("customers").filter(ibis._.customer_id.isin(top["customer_id"].tolist()))
              .select("customer_id", "name", "email").to_pandas())
    top = top.merge(people, on="customer_id", how="left")
    top_table = _display(top, {"customer_id": ("Customer", "text"), "name": ("Name", "text"),
                               "email": ("E-mail", "text"), "revenue": ("Net revenue", "currency"),
                               "profit": ("Profit", "currency")}, mask)
    return Section(heading, narrative.whale_reading(value.whale_summary(values)),
                   figures.whale_figure(value.whale_curve(values)),
                   (("Value tiers", tier_table), ("The five most profitable customers", top_table)),
                   f"All history to {narrative.day(as_of)}, {_scope_note(regions, segments)}. Profit = gross margin "
                   "(price − unit cost on each order line) − cost to serve (support tickets, shipping, campaign "
                   "contacts at the default cost rates). " + narrative.tier_reading(tiers))


def _churn(backend, start, as_of, regions, segments, mask) -> Section:
    from crm_core import churn

    heading = "Retention: cohorts and churn"
    summary = churn.churn_summary(backend, as_of, INACTIVE_DAYS, regions=regions, segments=segments)
    cohort_start = as_of.replace(day=1) - dt.timedelta(days=31 * 24)
    cohorts = churn.cohort_retention(backend, as_of, start=cohort_start, months=24, regions=regions,
                                     segments=segments)
    if not summary.customers or cohorts.empty:
        return _missing_section(heading, "No customer was acquired or bought in this range: import orders.")
    facts = pd.DataFrame({
        "Customers who bought": [narrative.format_value(summary.customers, "count")],
        "Churned": [narrative.format_value(summary.churned_customers, "count")],
        "Churn rate": [narrative.format_value(summary.churn_rate, "pct")],
        "Churned customers' revenue, last 365 days": [
            narrative.format_value(summary.churned_revenue_last_365_days, "currency")]})
    return Section(heading, narrative.cohort_reading(churn.cohort_curve(cohorts)),
                   figures.cohort_figure(churn.cohort_matrix(cohorts)), (("Churn", facts),),
                   f"{narrative.churn_reading(summary, INACTIVE_DAYS)} A customer is churned after {INACTIVE_DAYS} "
                   "days without a purchase; cohorts are the months of acquisition over the 24 months to "
                   f"{narrative.day(as_of)}, {_scope_note(regions, segments)}; the last column of each row may be a "
                   "month still in progress.")


def _campaigns(backend, start, as_of, regions, segments, mask) -> Section:
    from crm_core import campaigns

    heading = "Campaigns: conversion and ROI"
    summary = campaigns.campaign_summary(backend)
    if summary.empty:
        return _missing_section(heading, "No campaigns in the data: import campaigns and campaign contacts to see "
                                         "response, ROI and lift.")
    table = _display(summary.tail(TOP_ROWS), {
        "campaign_id": ("Campaign", "text"), "campaign_name": ("Name of campaign", "text"),
        "contacts": ("Contacts", "count"), "conversion_rate": ("Conversion rate", "pct"),
        "revenue": ("Revenue", "currency"), "cost": ("Cost", "currency"), "roi": ("ROI", "ratio")}, mask)
    return Section(heading, campaigns.read_summary(summary), figures.campaign_figure(summary),
                   (("Latest campaigns", table),),
                   "All campaigns in the data: each is read over its own dates and a "
                   f"{campaigns.DEFAULT_WINDOW_DAYS}-day window after each contact (the period, region and segment "
                   "filters do not apply). ROI = (revenue − cost) ÷ cost.")


def _basket(backend, start, as_of, regions, segments, mask) -> Section:
    from crm_core import basket

    heading = "Cross-sell: products bought together"
    result = basket.association_rules(backend, max_rules=200, end=as_of, regions=regions, segments=segments)
    if result.n_baskets == 0 or result.rules.empty:
        return _missing_section(heading, "No pair of products reaches the thresholds, or there are no baskets: "
                                         "import orders with their order lines.")
    rules = result.rules.head(TOP_ROWS).assign(
        first=lambda r: r["antecedent_name"].fillna(r["antecedent"]),
        second=lambda r: r["consequent_name"].fillna(r["consequent"]))
    table = _display(rules, {"first": (basket.RULE_LABELS["antecedent"], "text"),
                             "second": (basket.RULE_LABELS["consequent"], "text"),
                             "support": ("Support", "pct"), "confidence": ("Confidence", "pct"),
                             "lift": ("Lift", "ratio")}, mask)
    return Section(heading, narrative.basket_reading(result.rules, result.n_baskets),
                   figures.rule_map_figure(result.rules), (("Top rules", table),),
                   f"Baskets (purchases; returns left out) up to {narrative.day(as_of)}, "
                   f"{_scope_note(regions, segments)}. " + basket.RULE_HELP["confidence"] + " "
                   + basket.RULE_HELP["lift"])


def _support(backend, start, as_of, regions, segments, mask) -> Section:
    from crm_core import support

    heading = "Support: SLA breaches by channel"
    kpis = support.ticket_kpis(backend, as_of, start, regions=regions, segments=segments, by="channel")
    if kpis.empty or not kpis["tickets"].sum():
        return _missing_section(heading, "No support tickets were created in this period: import tickets, or "
                                         "widen the period.")
    labels = support.KPI_LABELS
    table = _display(kpis, {"channel": (labels.get("channel", "Channel"), "text"), "tickets": ("Tickets", "count"),
                            "breach_rate": (labels["breach_rate"], "pct"),
                            "median_first_response_hours": (labels["median_first_response_hours"], "ratio")}, mask)
    return Section(heading, narrative.breakdown_reading(kpis, "channel"),
                   figures.support_breakdown_figure(kpis, "channel", labels.get("channel", "Channel"),
                                                    labels["breach_rate"], labels["median_first_response_hours"]),
                   (("Tickets by channel", table),),
                   f"Tickets created {narrative.day(start)} – {narrative.day(as_of)}, "
                   f"{_scope_note(regions, segments)}. {support.KPI_HELP['breach_rate']}")


def _fulfilment(backend, start, as_of, regions, segments, mask) -> Section:
    from crm_core import fulfilment

    heading = "Fulfilment: on-time delivery by carrier"
    by_carrier = fulfilment.fulfilment_kpis(backend, as_of, start, regions, segments, by="carrier")
    if by_carrier.empty or not by_carrier["shipments"].sum():
        return _missing_section(heading, "No shipments for the orders placed in this period: import shipments, or "
                                         "widen the period.")
    table = _display(by_carrier, {"carrier": ("Carrier", "text"), "shipments": ("Shipments", "count"),
                                  "on_time": ("On time", "count"), "late": ("Late", "count"),
                                  "late_rate": (fulfilment.FULFILMENT_LABELS["late_rate"], "pct")}, mask)
    return Section(heading, narrative.carrier_reading(by_carrier),
                   figures.carrier_figure(by_carrier, narrative.highest_late_rate(by_carrier, "carrier")),
                   (("Carriers", table),),
                   f"Shipments of the orders placed {narrative.day(start)} – {narrative.day(as_of)}, "
                   f"{_scope_note(regions, segments)}. {fulfilment.FULFILMENT_HELP['late_rate']}")


def _nps(backend, start, as_of, regions, segments, mask) -> Section:
    from crm_core import voice

    heading = "Voice of the customer: NPS by month"
    by_month = voice.nps(backend, as_of, start, regions, segments, by="month")
    if by_month.empty or not by_month["responses"].sum():
        return _missing_section(heading, "No survey answers with a score in this period: import surveys, or widen "
                                         "the period.")
    table = _display(by_month.assign(month=pd.to_datetime(by_month["month"]).dt.strftime("%b %Y")),
                     {"month": ("Month", "text"), "responses": ("Answers", "count"), "nps": ("NPS", "ratio"),
                      "nps_low": ("95% low", "ratio"), "nps_high": ("95% high", "ratio")}, mask)
    return Section(heading, narrative.nps_trend_reading(by_month), figures.nps_month_figure(by_month),
                   (("NPS by month", table.tail(TOP_ROWS)),),
                   f"Answers {narrative.day(start)} – {narrative.day(as_of)}, {_scope_note(regions, segments)}. "
                   f"{voice.VOICE_HELP['nps']}")


VIEWS: tuple[Callable[..., Section], ...] = (_overview, _segments, _value, _churn, _campaigns, _basket, _support,
                                             _fulfilment, _nps)

# --------------------------------------------------------------------------------------------- goals, investment
_STATUS_ORDER = {"off track": 0, "at risk": 1, "on track": 2, "achieved": 3}


def _metric_label(metric: str) -> str:
    """A goal metric's label from ``goals.METRICS``; the key itself for a metric that module does not know."""
    try:
        from crm_core import goals as goals_module

        return goals_module.METRICS[metric].label
    except (ImportError, KeyError, AttributeError):
        return metric


def _goal_value(metric: str, value) -> str:
    """A goal number in its metric's unit (``goals.format_value``: 52.3%, 4.2 h, 1,234.50)."""
    if narrative._missing(value):
        return "–"
    try:
        from crm_core import goals as goals_module

        return goals_module.format_value(metric, value)
    except (ImportError, KeyError, ValueError, AttributeError):
        return narrative.format_value(value, "ratio")


def _goal_name(goal) -> str:
    # the planned API said goal_name; crm_core.goals.Goal calls it name
    return getattr(goal, "goal_name", None) or goal.name


def goals_section(goals: Sequence[tuple[Any, Any]], mask: bool = False) -> Section:
    """The goals page: one row per (goal, progress) pair — name, owner, baseline, target, current, forecast,
    status — and the actual-against-planned chart of the goal furthest off track (the first on a tie)."""
    heading = "Goals: where we stand"
    if not goals:
        return _missing_section(heading, "No goals are set: add goals with a metric, a baseline, a target and a "
                                         "deadline to track them here.")
    rows = []
    for goal, progress in goals:
        m = goal.metric
        rows.append({"goal_name": _goal_name(goal), "business_unit": goal.business_unit,
                     "metric": _metric_label(m), "deadline": narrative.day(goal.deadline),
                     "baseline": _goal_value(m, progress.baseline), "target": _goal_value(m, progress.target),
                     "current": _goal_value(m, progress.current), "forecast": _goal_value(m, progress.forecast),
                     "status": progress.status})
    frame = pd.DataFrame(rows)
    table = _display(frame, {"goal_name": ("Goal", "text"), "business_unit": ("Owner", "text"),
                             "metric": ("Metric", "text"), "deadline": ("Deadline", "text"),
                             "baseline": ("Baseline", "text"),
                             "target": ("Target", "text"), "current": ("Current", "text"),
                             "forecast": ("Forecast at deadline", "text"), "status": ("Status", "text")}, mask)
    worst_goal, worst = min(goals, key=lambda gp: _STATUS_ORDER.get(gp[1].status, 4))
    figure = None
    if worst.series is not None and not worst.series.empty:
        figure = figures.goal_progress_figure(worst.series, f"{_goal_name(worst_goal)}: actual against plan",
                                              _metric_label(worst_goal.metric))
    counts = frame["status"].value_counts()
    summary = ", ".join(f"{counts[s]} {s}" for s in _STATUS_ORDER if s in counts)
    return Section(heading, worst.reading, figure, (("Goals", table),),
                   f"{len(goals)} goal{'s' if len(goals) != 1 else ''}: {summary}. Planned = the straight path from "
                   "the baseline at the start date to the target at the deadline; forecast = the current trend "
                   "carried to the deadline. The chart shows the goal furthest off track.")


def _first(frame: pd.DataFrame, *names: str) -> str:
    return next(n for n in names if n in frame.columns)


def investment_sections(case: Any, sensitivity: pd.DataFrame | None) -> tuple[Section, ...]:
    """The investment case (key numbers, cumulative discounted cash flow, formulas) and, with a sensitivity
    frame, the tornado chart of what moves the NPV.

    Reads ``case``: npv, payback_month, roi, incremental_profit, total_cost, formulas ((name, formula, worked
    example) triples) and the monthly cash flows (``cashflows`` as planned, or ``cashflow`` as
    ``crm_core.investment`` names it: month, ..., cumulative_discounted_net); ``sensitivity``: input [, label],
    low/low_value, high/high_value, npv_low, npv_high.
    """
    cashflows = getattr(case, "cashflows", None)
    cashflows = case.cashflow if cashflows is None else cashflows
    payback = "not within the horizon" if case.payback_month is None else f"in month {case.payback_month}"
    numbers = pd.DataFrame({
        "Figure": ["Net present value", "Payback", "Return on investment", "Incremental profit", "Total cost"],
        "Value": [narrative.format_value(case.npv, "currency"), payback, narrative.format_value(case.roi, "pct"),
                  narrative.format_value(case.incremental_profit, "currency"),
                  narrative.format_value(case.total_cost, "currency")]})
    formulas = pd.DataFrame([tuple(f) for f in case.formulas], columns=["Quantity", "Formula", "Worked example"])
    reading = (f"The investment returns a net present value of {narrative.format_value(case.npv, 'currency')} on a "
               f"cost of {narrative.format_value(case.total_cost, 'currency')} (ROI "
               f"{narrative.format_value(case.roi, 'pct')}); "
               + ("it does not pay back within the horizon." if case.payback_month is None
                  else f"it pays back {payback}."))
    out = [Section("Investment case", reading,
                   figures.cashflow_figure(cashflows, _first(cashflows, "cumulative_discounted_net")),
                   (("Key numbers", numbers), ("How each number is computed", formulas)),
                   "Cash flows are discounted monthly; payback is the first month the cumulative discounted net "
                   "cash flow is at or above zero.")]
    if sensitivity is not None and not sensitivity.empty:
        low, high = _first(sensitivity, "low", "low_value"), _first(sensitivity, "high", "high_value")
        name = _first(sensitivity, "label", "input")
        s = sensitivity.assign(input=sensitivity[name], low=sensitivity[low], high=sensitivity[high])
        s = s.assign(swing=(s["npv_high"] - s["npv_low"]).abs()).sort_values("swing", ascending=False)
        top = s.iloc[0]
        table = pd.DataFrame({"Input": s["input"].astype(str),
                              "Low": [narrative.format_value(v, "ratio") for v in s["low"]],
                              "High": [narrative.format_value(v, "ratio") for v in s["high"]],
                              "NPV at low": [narrative.format_value(v, "currency") for v in s["npv_low"]],
                              "NPV at high": [narrative.format_value(v, "currency") for v in s["npv_high"]]})
        out.append(Section(
            "Investment sensitivity", f"{top['input']} moves the NPV most: from "
            f"{narrative.format_value(top['npv_low'], 'currency')} to "
            f"{narrative.format_value(top['npv_high'], 'currency')} across its range.",
            figures.tornado_figure(s[["input", "low", "high", "npv_low", "npv_high"]], case.npv),
            (("Sensitivity", table),),
            "Each input is moved to its low and high value with the others at their base value."))
    return tuple(out)


# --------------------------------------------------------------------------------------------- the pack
def board_pack(backend: ibis.BaseBackend, *, start: dt.date, as_of: dt.date, regions: Iterable[str] = (),
               segments: Iterable[str] = (), goals: Sequence[tuple[Any, Any]] = (),
               investment: tuple[Any, pd.DataFrame | None] | None = None, mask: bool = False,
               title: str = "CRM board pack", generated_at: dt.datetime | None = None) -> BoardPack:
    """One pack for the filters: a goals section, one section per view, then the investment case (when given).

    ``goals`` are (goal, progress) pairs from ``crm_core.goals``; ``investment`` is (InvestmentCase, sensitivity
    frame or None) from ``crm_core.investment``. Nothing is rendered here (see :func:`to_pdf`, :func:`to_html`).
    """
    if start > as_of:
        raise ValueError(f"start {start} is after as_of {as_of}: choose a start on or before the end of the period")
    regions, segments = tuple(regions), tuple(segments)
    generated_at = generated_at or dt.datetime.now().replace(microsecond=0)
    sections = [goals_section(goals, mask)]
    for build in VIEWS:
        sections.append(build(backend, start, as_of, regions, segments, mask))
    if investment is not None:
        sections.extend(investment_sections(*investment))
    return BoardPack(title=title, date=generated_at.date(), generated_at=generated_at, start=start, as_of=as_of,
                     regions=regions, segments=segments, filters=describe_filters(start, as_of, regions, segments),
                     masked=mask, sections=tuple(sections))


# --------------------------------------------------------------------------------------------- rendering
def _browser(browser_path: str | None) -> str:
    path = browser_path or os.environ.get("BROWSER_PATH") or CHROMIUM
    if not Path(path).is_file():
        raise ChartRenderError(
            f"No Chromium found at {path}: the board pack draws its charts with a headless Chromium. Install it "
            "with `apt-get install chromium` (Debian/Ubuntu), or set BROWSER_PATH to a Chrome or Chromium "
            "executable.")
    return path


def _image_size(fig: go.Figure) -> tuple[int, int]:
    return IMAGE_WIDTH, int(fig.layout.height or 420)


async def _render(figs: list[go.Figure], path: str) -> list[bytes]:
    import kaleido

    out = []
    async with kaleido.Kaleido(path=path, mathjax=False) as k:  # one browser for every chart
        for fig in figs:
            width, height = _image_size(fig)
            out.append(await k.calc_fig(fig, opts=dict(format="png", width=width, height=height, scale=2)))
    return out


def _run(coro_factory: Callable[[], Any]):
    """Run a coroutine to the end, also when the caller already runs an event loop (then in its own thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    box: dict[str, Any] = {}

    def target():
        try:
            box["value"] = asyncio.run(coro_factory())
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def chart_images(pack: BoardPack, *, browser_path: str | None = None) -> tuple[bytes | None, ...]:
    """One PNG per section (None where a section has no chart), all drawn in one headless-browser session."""
    figs = [s.figure for s in pack.sections if s.figure is not None]
    if not figs:
        return tuple(None for _ in pack.sections)
    path = _browser(browser_path)
    try:
        pngs = iter(_run(lambda: _render(figs, path)))
    except Exception as exc:  # kaleido/choreographer errors: say what to check
        raise ChartRenderError(f"Drawing the charts with {path} failed: {exc}. Check that `{path} --version` runs; "
                               "reinstall it with `apt-get install chromium`.") from exc
    return tuple(next(pngs) if s.figure is not None else None for s in pack.sections)


# --------------------------------------------------------------------------------------------- PDF
def _fonts() -> tuple[str, str]:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if "PackSans" in pdfmetrics.getRegisteredFontNames():
        return "PackSans", "PackSans-Bold"
    candidates = [("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                   "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")]
    import reportlab

    vera = Path(reportlab.__file__).parent / "fonts"
    candidates.append((str(vera / "Vera.ttf"), str(vera / "VeraBd.ttf")))
    for regular, bold in candidates:
        if Path(regular).is_file() and Path(bold).is_file():
            pdfmetrics.registerFont(TTFont("PackSans", regular))
            pdfmetrics.registerFont(TTFont("PackSans-Bold", bold))
            return "PackSans", "PackSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def _esc(text: str) -> str:
    return html.escape(str(text), quote=False)


def to_pdf(pack: BoardPack, path_or_file: str | Path | BinaryIO, *, images: Sequence[bytes | None] | None = None,
           browser_path: str | None = None) -> None:
    """Write the pack as an A4 landscape PDF: a title page, then one page per section, numbered.

    ``images`` from :func:`chart_images` lets the PDF and the HTML share one rendering.
    """
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        Image,
        KeepInFrame,
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    if images is None:
        images = chart_images(pack, browser_path=browser_path)
    regular, bold = _fonts()
    page_w, page_h = landscape(A4)
    margin = 14 * mm
    frame_w, frame_h = page_w - 2 * margin, page_h - 2 * margin - 8 * mm
    title_style = ParagraphStyle("t", fontName=bold, fontSize=26, leading=32, spaceAfter=10)
    h_style = ParagraphStyle("h", fontName=bold, fontSize=16, leading=20, spaceAfter=4)
    read_style = ParagraphStyle("r", fontName=bold, fontSize=11, leading=14, spaceAfter=6,
                                textColor=colors.HexColor("#24292f"))
    body = ParagraphStyle("b", fontName=regular, fontSize=10, leading=13, spaceAfter=4)
    note_style = ParagraphStyle("n", fontName=regular, fontSize=8, leading=10, textColor=colors.HexColor("#57606a"))
    cell = ParagraphStyle("c", fontName=regular, fontSize=7.5, leading=9)
    head_cell = ParagraphStyle("hc", fontName=bold, fontSize=7.5, leading=9)

    def table_flowable(frame: pd.DataFrame) -> Table:
        data = [[Paragraph(_esc(c), head_cell) for c in frame.columns]]
        data += [[Paragraph(_esc(v), cell) for v in row] for row in frame.astype(str).itertuples(index=False)]
        t = Table(data, repeatRows=1, hAlign="LEFT")
        t.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f6f8fa")),
                               ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#d0d7de")),
                               ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#eaeef2")),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
        return t

    story: list = [Spacer(1, 30 * mm), Paragraph(_esc(pack.title), title_style),
                   Paragraph(_esc(f"Date: {narrative.day(pack.date)} (generated {pack.generated_at:%Y-%m-%d %H:%M})"),
                             body),
                   Paragraph(_esc(f"Filters: {pack.filters}"), body)]
    if pack.masked:
        story.append(Paragraph("Customers' names, e-mails and phone numbers are masked.", body))
    story.append(Spacer(1, 8 * mm))
    story.append(Paragraph("Contents", h_style))
    for i, s in enumerate(pack.sections, start=2):
        story.append(Paragraph(_esc(f"{i}. {s.heading}" + ("" if s.available else " (no data)")), body))
    for section, png in zip(pack.sections, images):
        story.append(PageBreak())
        content: list = [Paragraph(_esc(section.heading), h_style), Paragraph(_esc(section.reading), read_style)]
        tables = list(section.tables)
        if png is not None:
            img = Image(io.BytesIO(png))
            ratio = img.imageHeight / img.imageWidth
            width = frame_w * (0.62 if tables else 0.9)
            img.drawWidth, img.drawHeight = width, width * ratio
            img.hAlign = "LEFT"
            content.append(img)
        for caption, frame in tables:
            content += [Spacer(1, 3 * mm), Paragraph(_esc(caption), ParagraphStyle("cap", parent=body, fontName=bold,
                                                                                   fontSize=9)),
                        table_flowable(frame)]
        if section.note:
            content += [Spacer(1, 3 * mm), Paragraph(_esc(section.note), note_style)]
        story.append(KeepInFrame(frame_w, frame_h, content, mode="shrink"))

    def footer(canvas, doc):
        canvas.saveState()
        canvas.setFont(regular, 8)
        canvas.setFillColor(colors.HexColor("#57606a"))
        canvas.drawString(margin, 8 * mm, f"{pack.title} · {narrative.day(pack.date)} · {pack.filters}"[:150])
        canvas.drawRightString(page_w - margin, 8 * mm, f"Page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(path_or_file if not isinstance(path_or_file, Path) else str(path_or_file),
                            pagesize=landscape(A4), leftMargin=margin, rightMargin=margin, topMargin=margin,
                            bottomMargin=margin + 8 * mm, title=pack.title, author="CRM analytics",
                            subject=pack.filters)
    doc.build(story, onFirstPage=footer, onLaterPages=footer)


# --------------------------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:Inter,"Segoe UI",Helvetica,Arial,sans-serif;color:#24292f;max-width:1100px;margin:2em auto;
padding:0 1em;line-height:1.45}
h1{font-size:2em;margin-bottom:.2em}h2{border-top:1px solid #d0d7de;padding-top:1em;margin-top:2em}
.meta{color:#57606a}.reading{font-weight:600}.note{color:#57606a;font-size:.85em}.missing{color:#9a6700}
img{max-width:100%;height:auto}table{border-collapse:collapse;font-size:.85em;margin:.5em 0 1em}
th,td{border-bottom:1px solid #eaeef2;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f6f8fa}caption{text-align:left;font-weight:600;padding:.3em 0}
@media print{section{page-break-before:always}}
"""


def _html_table(caption: str, frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in frame.astype(str).itertuples(index=False))
    return (f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def to_html(pack: BoardPack, *, images: Sequence[bytes | None] | None = None, browser_path: str | None = None) -> str:
    """The pack as one self-contained HTML document (inline CSS, charts as base64 PNG data URIs, no scripts)."""
    if images is None:
        images = chart_images(pack, browser_path=browser_path)
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(pack.title)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<header><h1>{e(pack.title)}</h1><p class=\"meta\">Date: {e(narrative.day(pack.date))} (generated "
             f"{pack.generated_at:%Y-%m-%d %H:%M})</p><p class=\"meta\">Filters: {e(pack.filters)}</p>"]
    if pack.masked:
        parts.append("<p class=\"meta\">Customers' names, e-mails and phone numbers are masked.</p>")
    parts.append("<ol>" + "".join(f"<li>{e(s.heading)}</li>" for s in pack.sections) + "</ol></header>")
    for section, png in zip(pack.sections, images):
        cls = "reading" if section.available else "reading missing"
        parts.append(f"<section><h2>{e(section.heading)}</h2><p class=\"{cls}\">{e(section.reading)}</p>")
        if png is not None:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f"<img alt=\"{e(section.heading)}\" src=\"data:image/png;base64,{data}\">")
        parts += [_html_table(caption, frame) for caption, frame in section.tables]
        if section.note:
            parts.append(f"<p class=\"note\">{e(section.note)}</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
