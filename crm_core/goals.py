"""Measurable goals: a catalogue of goal metrics, goals kept in the store, progress, forecast and gap drivers.

Every metric is computed by the core module that owns it (nothing is re-defined here); ``METRICS`` states each one's
window. Rates are fractions between 0 and 1 (unit ``"%"`` says how to show them), ``"h"`` is hours, ``"money"`` is in
the data's own currency, ``"score"`` is on the metric's own scale (CSAT 1-5, NPS -100..100), ``"ratio"`` is a plain
ratio (ROI 0.5 = 50% return on cost). Targets and baselines are on the same scale as the metric.

Progress of a goal at ``as_of`` (:func:`progress`):

- ``achieved_share`` = (current - baseline) / (target - baseline): 0 at the baseline, 1 at the target (NaN when the
  target equals the baseline).
- *planned* value: the straight line from the baseline at ``start_date`` to the target at ``deadline``; with monthly
  targets, the line through (start_date, baseline), each month's target at that month's end and (deadline, target).
- *forecast*: the least-squares line through the monthly series (:func:`metric_series`, month ends from
  ``start_date`` to ``as_of``) evaluated at the deadline; with fewer than 3 points since the start, the last 12
  months to ``as_of`` are used instead (``trend_basis`` says which). The 80% interval is the line's prediction
  interval with its variance multiplied by n / n_eff, n_eff = 1 + span / window the number of non-overlapping
  windows in the span (a window of 365 days for the all-history metrics), because points of rolling windows share
  data; with n_eff < 3 no interval is given.
- *status*, in the goal's direction (for a lower-is-better metric "reaches" means "is at or below"):
  ``achieved`` when the current value reaches the target; else ``on track`` when the forecast reaches it; else
  ``at risk`` when the current value is no further behind the planned value than ``TOLERANCE`` × |target -
  baseline|; else ``off track``. ``no data`` when the metric has no value at ``as_of``.

Gap drivers (:func:`gap_drivers`): for a metric that is a mean or a rate over a base (customers, tickets, answers,
shipments), the base splits into RFM segments (as of ``as_of``, the core modules' segment filter) or regions; with
n_s the base in group s, w_s = n_s / N and v_s the group's value, overall = Σ w_s v_s, so the gap to target
target - overall = Σ w_s (target - v_s) and ``contribution`` = w_s (target - v_s). The part of the base with no
group (anonymous tickets, customers without a purchase or region) is one more row whose value is the remainder
(or, when it has no base, as anonymous revenue per active customer, a row of weight 0 carrying that remainder), so
the contributions add up to the gap exactly. The median response time, the Champions share (a share of the
segments themselves), campaign ROI (over campaigns, not customers) and average CLV (a model fit) do not decompose:
they return an empty frame whose ``attrs["reason"]`` says so. Note that recency decides the RFM segment, so for
the purchase metrics the segments with a recent purchase necessarily score well: read the weights, not only the
values.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import duckdb
import ibis
import numpy as np
import pandas as pd
from scipy import stats

from crm_core import campaigns, churn, clv, fulfilment, metrics, support, voice
from crm_core import segments as rfm_segments
from crm_core.schema import GOALS, table_ddl
from crm_core.store import ibis_backend, quote_ident

__all__ = [
    "BUSINESS_UNITS",
    "MAX_NAME_LENGTH",
    "METRICS",
    "NO_GROUP",
    "STATUSES",
    "TOLERANCE",
    "Goal",
    "GoalMetric",
    "GoalProgress",
    "Measurement",
    "create_goal",
    "delete_goal",
    "ensure_goals_table",
    "format_value",
    "gap_drivers",
    "get_goal",
    "list_goals",
    "measure",
    "metric_series",
    "metric_value",
    "planned_value",
    "progress",
    "progress_from_series",
    "update_goal",
]

BUSINESS_UNITS: tuple[str, ...] = ("Sales", "Marketing", "Service", "Support")
STATUSES: tuple[str, ...] = ("achieved", "on track", "at risk", "off track", "no data")
TOLERANCE = 0.10  # share of |target - baseline| the current value may lag the plan and still be "at risk"
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class GoalMetric:
    """One metric a goal can be set on: how to show it, which way is better, and how it is computed."""

    key: str
    label: str
    unit: str  # "%", "h", "money", "score" or "ratio"
    higher_is_better: bool
    definition: str
    business_unit: str
    window_days: int | None  # the data window ending on as_of; None = all history up to as_of
    decomposes: bool = True  # a mean or rate over a base that splits into segments (see gap_drivers)
    filterable: bool = True  # accepts the region and segment filters
    expensive: bool = False  # a model fit per point: series use quarter ends


def _m(key, label, unit, higher, definition, unit_owner, window, decomposes=True, filterable=True, expensive=False):
    return GoalMetric(key, label, unit, higher, definition, unit_owner, window, decomposes, filterable, expensive)


METRICS: dict[str, GoalMetric] = {m.key: m for m in (
    _m("retention_rate", "Retention rate", "%", True,
       "Share of the customers who bought in the 365 days before the last 365 days to as_of and bought again in "
       "the 365 days to as_of (crm_core.metrics overview, days=365).", "Sales", 365),
    _m("churn_rate", "Churn rate", "%", False,
       "Share of the customers who ever bought that made no purchase in the 180 days to as_of "
       "(crm_core.churn churn_summary, inactive_days=180).", "Sales", 180),
    _m("repeat_purchase_rate", "Repeat purchase rate", "%", True,
       "Share of the customers active in the 365 days to as_of who have made at least two purchases by as_of "
       "(crm_core.metrics overview repeat_rate, days=365).", "Marketing", 365),
    _m("revenue_per_customer", "Revenue per active customer", "money", True,
       "Net revenue of the 365 days to as_of divided by the customers active in them (crm_core.metrics overview, "
       "days=365; anonymous orders count in the revenue).", "Sales", 365),
    _m("champions_share", "Champions share", "%", True,
       "Share of the customers with a purchase by as_of whose RFM segment is Champions (crm_core.segments "
       "segment_summary).", "Marketing", None, decomposes=False),
    _m("csat_mean", "CSAT", "score", True,
       "Mean 1-5 satisfaction rating of the tickets created in the 90 days to as_of (crm_core.support "
       "ticket_kpis).", "Service", 90),
    _m("first_response_hours_median", "Median first response", "h", False,
       "Median hours to the first response of the tickets created in the 90 days to as_of and answered by then "
       "(crm_core.support ticket_kpis).", "Support", 90, decomposes=False),
    _m("first_response_breach_rate", "First-response SLA breach rate", "%", False,
       "Share of the tickets created in the 90 days to as_of whose first response broke the SLA, among those "
       "whose outcome is known (crm_core.support ticket_kpis).", "Support", 90),
    _m("nps", "Net Promoter Score", "score", True,
       "100 × (promoters - detractors) / answers for the survey answers of the 90 days to as_of "
       "(crm_core.voice nps).", "Service", 90),
    _m("on_time_rate", "On-time delivery rate", "%", True,
       "Share of the delivered shipments with a promised date, of the orders placed in the 90 days to as_of, "
       "delivered on or before that date (crm_core.fulfilment fulfilment_kpis).", "Service", 90),
    _m("campaign_roi", "Campaign ROI", "ratio", True,
       "(revenue - cost) / cost summed over the campaigns that started in the 365 days to as_of "
       "(crm_core.campaigns campaign_summary; attributed revenue where the campaign has it).", "Marketing", 365,
       decomposes=False, filterable=False),
    _m("average_clv", "Average predicted CLV", "money", True,
       "Mean 12-month discounted CLV of the customers with a purchase by as_of, BG/NBD and Gamma-Gamma fitted on "
       "the history to as_of (crm_core.clv clv).", "Sales", None, decomposes=False, filterable=False,
       expensive=True),
)}


# --- measuring ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One metric at ``as_of``: its value (NaN with a ``reason`` when the data has none) and ``base``, the number
    of customers, tickets, answers or shipments the mean or rate is over (None where that means nothing)."""

    metric: str
    as_of: date
    value: float
    base: int | None = None
    reason: str | None = None


def _metric(key: str) -> GoalMetric:
    if key not in METRICS:
        raise ValueError(f"Unknown metric {key!r}; choose one of: {', '.join(METRICS)}")
    return METRICS[key]


def _as_date(value, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{name} must be a date (YYYY-MM-DD), got {value!r}")


def _num(x) -> float:
    try:
        return float("nan") if x is None or pd.isna(x) else float(x)
    except (TypeError, ValueError):
        return float("nan")


_WINDOW_90 = 89  # days before as_of that start the 90-day windows (as_of counts as a day)


def _point_expr(backend, key: str, as_of: date, regions: tuple[str, ...], segments: tuple[str, ...]):
    """One-row Ibis expression with what ``_finish`` needs for ``key`` at ``as_of``, built by the owning module's
    own expressions (so a series is one query: the union of its points)."""
    start90 = as_of - timedelta(days=_WINDOW_90)
    if key in ("retention_rate", "repeat_purchase_rate", "revenue_per_customer"):
        tables = metrics._tables(backend)
        current, previous = metrics.current_and_previous(as_of, 365)
        scope = metrics._customer_scope(tables["customers"], tables["orders"], regions, segments, as_of)
        orders = metrics._scoped(tables["orders"], scope)
        activity = metrics._customer_activity_expr(orders, current, previous)
        return activity.cross_join(metrics._order_totals_expr(orders, current, previous).select("revenue"))
    if key == "churn_rate":
        _, orders = churn._scope(metrics._tables(backend), regions, segments, as_of)
        s = churn.churn_status_expr(orders, as_of, 180)
        return s.aggregate(customers=s.count(), churned=s.count(where=s.is_churned))
    if key == "champions_share":
        if segments:
            raise ValueError("Champions share cannot be filtered by segment; clear the segment filter.")
        r = rfm_segments._in_regions(backend, rfm_segments.rfm_expr(backend.table("orders"), as_of), regions)
        return r.aggregate(customers=r.count(), champions=r.count(where=r.segment == "Champions"))
    if key in ("csat_mean", "first_response_hours_median", "first_response_breach_rate"):
        facts = support._view(backend, as_of, start90, support.SlaPolicy(), regions, segments).facts
        kpis = support.ticket_kpis_expr(facts).select("csat_mean", "csat_responses", "median_first_response_hours",
                                                      "first_response_breach_rate")
        if key != "first_response_breach_rate":
            return kpis
        # the rate's base: tickets whose first response is decided (met or breached), as ticket_kpis groups them
        g = support.ticket_kpis_expr(facts, by="first_response_breach")
        return kpis.cross_join(g.aggregate(
            fr_decided=g.tickets.sum(where=g.first_response_breach.isin(["Met", "Breached"]))))
    if key == "nps":
        return voice.nps_expr(voice._tables(backend, voice._TABLES[:3]), as_of, start90, regions, segments)
    if key == "on_time_rate":
        tables = fulfilment._tables(backend, fulfilment._TABLES[:3])
        return fulfilment.fulfilment_kpis_expr(tables, as_of, start90, regions, segments).select("on_time", "late")
    raise AssertionError(key)  # pragma: no cover - the other metrics are not expressions


_EXPRESSION_METRICS = ("retention_rate", "repeat_purchase_rate", "revenue_per_customer", "churn_rate",
                       "champions_share", "csat_mean", "first_response_hours_median", "first_response_breach_rate",
                       "nps", "on_time_rate")


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def _finish(key: str, as_of: date, row: Mapping) -> Measurement:
    """A :class:`Measurement` from one row of :func:`_point_expr`'s result."""
    count = metrics._count
    if key in ("retention_rate", "repeat_purchase_rate", "revenue_per_customer"):
        active, before = count(row["active_customers"]), count(row["active_customers_prev"])
        if key == "retention_rate":
            value, base = _ratio(count(row["retained_customers"]), before), before
            why = "no customer bought in the 365 days before the last 365 days"
        else:
            value = (_ratio(count(row["repeat_customers"]), active) if key == "repeat_purchase_rate"
                     else _ratio(metrics._amount(row["revenue"]), active))
            base, why = active, "no customer bought in the 365 days to as_of"
    elif key == "churn_rate":
        base = count(row["customers"])
        value, why = _ratio(count(row["churned"]), base), "no customer has a purchase by as_of"
    elif key == "champions_share":
        base = count(row["customers"])
        value, why = _ratio(count(row["champions"]), base), "no customer has a purchase by as_of"
    elif key in ("csat_mean", "first_response_hours_median", "first_response_breach_rate"):
        value = _num(row["median_first_response_hours" if key == "first_response_hours_median" else key])
        base = {"csat_mean": count(row["csat_responses"]), "first_response_hours_median": None}.get(key)
        if key == "first_response_breach_rate":
            base = count(row["fr_decided"])
        why = "no ticket with this measure was created in the 90 days to as_of"
    elif key == "nps":
        base, value = count(row["responses"]), _num(row["nps"])
        why = "no survey answers in the 90 days to as_of"
    else:  # on_time_rate, as fulfilment_kpis computes it from the same counts
        base = count(row["on_time"]) + count(row["late"])
        value, why = _ratio(count(row["on_time"]), base), "no delivered shipment with a promised date in the 90 days"
    return Measurement(key, as_of, value, base, why if math.isnan(value) else None)


def _missing_table(exc: ValueError) -> bool:
    return "has no" in str(exc) and "table" in str(exc)


class _CachedTables:
    """A backend whose table list and table handles are looked up once: building one expression per point asks
    for the same tables many times, and each catalog look-up costs a query."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self._tables: dict[str, object] = {}
        self._names: list[str] | None = None

    def list_tables(self, *args, **kwargs):
        if args or kwargs:
            return self._backend.list_tables(*args, **kwargs)
        if self._names is None:
            self._names = self._backend.list_tables()
        return self._names

    def table(self, name: str, *args, **kwargs):
        if args or kwargs:
            return self._backend.table(name, *args, **kwargs)
        if name not in self._tables:
            self._tables[name] = self._backend.table(name)
        return self._tables[name]

    def __getattr__(self, name: str):
        return getattr(self._backend, name)


def _measure_points(backend, key: str, days: list[date], regions, segments) -> list[Measurement]:
    """``key`` at each of ``days``: one query for the expression metrics, one campaign summary for ROI."""
    return _measure_many(backend, key, [(d, regions, segments) for d in days])


def _measure_many(backend, key: str, points: list[tuple[date, tuple, tuple]]) -> list[Measurement]:
    """``key`` at each (as_of, regions, segments) point; the expression metrics in one query."""
    days = [d for d, _, _ in points]
    if key in _EXPRESSION_METRICS:
        backend = backend if isinstance(backend, _CachedTables) else _CachedTables(backend)
        try:
            exprs = [_point_expr(backend, key, d, r, s).mutate(_point=i) for i, (d, r, s) in enumerate(points)]
        except ValueError as exc:
            if not _missing_table(exc):
                raise
            return [Measurement(key, d, float("nan"), 0, str(exc)) for d in days]
        frame = backend.execute(ibis.union(*exprs, distinct=False) if len(exprs) > 1 else exprs[0])
        if key == "nps":
            frame = voice._with_shares(frame)
        rows = {int(r["_point"]): r for r in frame.to_dict("records")}
        return [_finish(key, d, rows[i]) for i, d in enumerate(days)]
    if key == "campaign_roi":
        try:
            summary = campaigns.campaign_summary(backend)
        except ValueError as exc:
            return [Measurement(key, d, float("nan"), 0, str(exc)) for d in days]
        started = pd.to_datetime(summary["start_date"]).dt.date
        cost = pd.to_numeric(summary["cost"], errors="coerce")
        revenue = pd.to_numeric(summary["revenue"], errors="coerce").fillna(0.0)
        out = []
        for d in days:
            inside = (started > d - timedelta(days=365)) & (started <= d) & (cost > 0)
            total = float(cost[inside].sum())
            value = _ratio(float(revenue[inside].sum()) - total, total)
            out.append(Measurement(key, d, value, int(inside.sum()), "no campaign with a cost started in the 365 "
                                   "days to as_of" if math.isnan(value) else None))
        return out
    out = []
    for d in days:  # average_clv: a model fit per point
        try:
            result = clv.clv(backend, d)
        except ValueError as exc:
            out.append(Measurement(key, d, float("nan"), 0, str(exc)))
            continue
        n = int(result.totals.get("customers", 0))
        out.append(Measurement(key, d, _ratio(float(result.totals.get("clv", float("nan"))), n), n))
    return out


def _filters(m: GoalMetric, regions, segments) -> tuple[tuple[str, ...], tuple[str, ...]]:
    chosen = metrics.Filters(regions=tuple(regions), segments=tuple(segments))
    if (chosen.regions or chosen.segments) and not m.filterable:
        raise ValueError(f"{m.label} cannot be filtered by region or segment; clear the filters.")
    return chosen.regions, chosen.segments


def measure(backend, metric: str, as_of: date, *, regions: Iterable[str] = (),
            segments: Iterable[str] = ()) -> Measurement:
    """One value of ``metric`` at ``as_of`` for the customers in view (``METRICS`` gives each definition), with
    its base and, when it is NaN, the reason. A metric that cannot be filtered raises ``ValueError`` on filters."""
    m = _metric(metric)
    regions, segments = _filters(m, regions, segments)
    return _measure_points(backend, m.key, [_as_date(as_of, "as_of")], regions, segments)[0]


def metric_value(backend, metric: str, as_of: date, *, regions: Iterable[str] = (),
                 segments: Iterable[str] = ()) -> float:
    """One number: ``metric`` at ``as_of`` (NaN when the data has none; :func:`measure` gives the reason)."""
    return measure(backend, metric, as_of, regions=regions, segments=segments).value


def _period_ends(start: date, end: date, freq: str) -> list[date]:
    """Month (or quarter) ends from ``start`` to ``end``, and ``end`` itself when it is not one."""
    alias = {"M": "ME", "MS": "ME", "ME": "ME", "Q": "QE", "QS": "QE", "QE": "QE"}.get(freq)
    if alias is None:
        raise ValueError(f"freq must be 'M' (month ends) or 'Q' (quarter ends), got {freq!r}")
    if start > end:
        raise ValueError(f"Series start {start} is after its end {end}; swap the dates.")
    ends = [d.date() for d in pd.date_range(start, end, freq=alias)]
    if not ends or ends[-1] != end:
        ends.append(end)
    return ends


def metric_series(backend, metric: str, start: date, end: date, freq: str = "M", *,
                  regions: Iterable[str] = (), segments: Iterable[str] = ()) -> pd.DataFrame:
    """One row per month end from ``start`` to ``end`` (and ``end`` itself): period_end, value.

    Each value is :func:`metric_value` at that day, so it covers the metric's window ending there. ``freq='Q'``
    gives quarter ends; the expensive ``average_clv`` always uses quarter ends.
    """
    m = _metric(metric)
    start, end = _as_date(start, "start"), _as_date(end, "end")
    regions, segments = _filters(m, regions, segments)
    ends = _period_ends(start, end, "Q" if m.expensive else freq)
    values = [p.value for p in _measure_points(backend, m.key, ends, regions, segments)]
    return pd.DataFrame({"period_end": pd.to_datetime(ends), "value": pd.Series(values, dtype="float64")})


def format_value(metric: str, value: float) -> str:
    """``value`` as a person reads it in the metric's unit: 52.3%, 4.2 h, 1,234.50, 3.91, 0.45."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    unit = _metric(metric).unit
    if unit == "%":
        return f"{value * 100:.1f}%"
    if unit == "h":
        return f"{value:.1f} h"
    if unit == "money":
        return f"{value:,.2f}"
    return f"{value:.2f}"


# --- goals in the store ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    """One goal as stored: ``monthly_targets`` are (YYYY-MM, value planned at that month's end) pairs, in order."""

    goal_id: str
    name: str
    metric: str
    business_unit: str
    start_date: date
    deadline: date
    baseline: float
    target: float
    monthly_targets: tuple[tuple[str, float], ...] = ()
    author: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric].higher_is_better if self.metric in METRICS else True


def ensure_goals_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``goals`` if missing and add the columns an older store lacks. Idempotent."""
    con.execute(table_ddl(GOALS))
    for c in GOALS.columns:
        con.execute(f"ALTER TABLE goals ADD COLUMN IF NOT EXISTS {quote_ident(c.name)} {c.sql_type}")


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _month_key(key) -> str:
    if isinstance(key, (date, datetime, pd.Timestamp)):
        return f"{key.year:04d}-{key.month:02d}"
    text = str(key).strip()
    match = _MONTH.match(text) or _MONTH.match(text[:7])
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"Monthly target month {key!r} is not a month; write it as YYYY-MM.")
    return f"{match.group(1)}-{match.group(2)}"


def _finite(value, name: str) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def _validate(name, metric, business_unit, start_date, deadline, target, baseline, monthly_targets) -> dict:
    text = "" if name is None else str(name).strip()
    if not text:
        raise ValueError("Goal name is empty; say what the goal is, e.g. 'Lift retention to 55%'.")
    if len(text) > MAX_NAME_LENGTH:
        raise ValueError(f"Goal name is {len(text)} characters long; keep it to {MAX_NAME_LENGTH}.")
    m = _metric(metric)
    unit = m.business_unit if business_unit is None or not str(business_unit).strip() else str(business_unit)
    canonical = {u.lower(): u for u in BUSINESS_UNITS}.get(unit.strip().lower())
    if canonical is None:
        raise ValueError(f"Unknown business unit {unit!r}; choose one of: {', '.join(BUSINESS_UNITS)}")
    start, end = _as_date(start_date, "start_date"), _as_date(deadline, "deadline")
    if end <= start:
        raise ValueError(f"The deadline {end} is not after the start date {start}; choose a later deadline.")
    months: dict[str, float] = {}
    for key, value in dict(monthly_targets or {}).items():
        month = _month_key(key)
        if not f"{start:%Y-%m}" <= month <= f"{end:%Y-%m}":
            raise ValueError(f"Monthly target for {month} is outside the goal's months {start:%Y-%m} to "
                             f"{end:%Y-%m}; drop it or move the dates.")
        months[month] = _finite(value, f"Monthly target for {month}")
    return dict(goal_name=text, metric=m.key, business_unit=canonical, start_date=start, deadline=end,
                target=_finite(target, "target"), baseline=None if baseline is None else _finite(baseline, "baseline"),
                monthly_targets=tuple(sorted(months.items())))


def _baseline(con, backend, metric: str, start: date) -> float:
    backend = backend or ibis_backend(con)
    m = measure(backend, metric, start)
    if math.isnan(m.value):
        raise ValueError(f"{METRICS[metric].label} has no value at the start date {start} ({m.reason}); "
                         "give the baseline yourself or choose a later start date.")
    return m.value


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _next_id(con) -> str:
    ids = [r[0] for r in con.execute("SELECT goal_id FROM goals").fetchall()]
    numbers = [int(i[1:]) for i in ids if isinstance(i, str) and re.fullmatch(r"G\d+", i)]
    return f"G{max(numbers, default=0) + 1}"


def _row_to_goal(row: Mapping) -> Goal:
    raw = row.get("monthly_targets")
    months: tuple[tuple[str, float], ...] = ()
    if raw is not None and not (isinstance(raw, float) and math.isnan(raw)) and str(raw).strip():
        try:
            months = tuple(sorted((_month_key(k), float(v)) for k, v in json.loads(raw).items()))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"goals: goal {row['goal_id']!r} has monthly_targets that are not a JSON object of "
                             f"YYYY-MM to numbers ({raw!r}); fix or clear them.") from exc

    def stamp(v):
        return None if v is None or pd.isna(v) else pd.Timestamp(v).to_pydatetime()

    def text(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)

    return Goal(
        goal_id=str(row["goal_id"]), name=text(row.get("goal_name")) or "", metric=str(row["metric"]),
        business_unit=text(row.get("business_unit")) or "", start_date=pd.Timestamp(row["start_date"]).date(),
        deadline=pd.Timestamp(row["deadline"]).date(), baseline=_num(row.get("baseline")), target=_num(row["target"]),
        monthly_targets=months, author=text(row.get("author")), created_at=stamp(row.get("created_at")),
        updated_at=stamp(row.get("updated_at")))


_WRITE_COLUMNS = ("goal_id", "goal_name", "metric", "business_unit", "start_date", "deadline", "baseline", "target",
                  "created_at", "updated_at", "author", "monthly_targets")


def _params(goal: Goal) -> list:
    months = json.dumps(dict(goal.monthly_targets)) if goal.monthly_targets else None
    return [goal.goal_id, goal.name, goal.metric, goal.business_unit, goal.start_date, goal.deadline, goal.baseline,
            goal.target, goal.created_at, goal.updated_at, goal.author, months]


def create_goal(con: duckdb.DuckDBPyConnection, name: str, metric: str, business_unit: str | None,
                start_date: date, deadline: date, target: float, *, baseline: float | None = None,
                monthly_targets: Mapping | None = None, author: str | None = None, backend=None) -> Goal:
    """Store a new goal and return it; the baseline is the metric at ``start_date`` when not given.

    ``business_unit`` None takes the metric's default. Raises ``ValueError`` with what to fix on bad input.
    """
    v = _validate(name, metric, business_unit, start_date, deadline, target, baseline, monthly_targets)
    ensure_goals_table(con)
    if v["baseline"] is None:
        v["baseline"] = _baseline(con, backend, v["metric"], v["start_date"])
    now = _now()
    goal = Goal(_next_id(con), v["goal_name"], v["metric"], v["business_unit"], v["start_date"], v["deadline"],
                v["baseline"], v["target"], v["monthly_targets"], None if author is None else str(author), now, now)
    columns = ", ".join(quote_ident(c) for c in _WRITE_COLUMNS)
    con.execute(f"INSERT INTO goals ({columns}) VALUES ({', '.join('?' * len(_WRITE_COLUMNS))})", _params(goal))
    return goal


def get_goal(con_or_backend, goal_id: str) -> Goal | None:
    """The goal with ``goal_id``, or None."""
    for goal in list_goals(con_or_backend):
        if goal.goal_id == str(goal_id):
            return goal
    return None


def list_goals(con_or_backend) -> list[Goal]:
    """Every stored goal, by deadline then id; works on a store whose ``goals`` table lacks the newer columns."""
    if isinstance(con_or_backend, duckdb.DuckDBPyConnection):
        con = con_or_backend
        present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                             "WHERE table_schema = 'main'").fetchall()}
        frame = con.execute("SELECT * FROM goals").df() if "goals" in present else pd.DataFrame()
    else:
        backend = con_or_backend
        frame = backend.execute(backend.table("goals")) if "goals" in backend.list_tables() else pd.DataFrame()
    if frame.empty:
        return []
    frame = frame.astype(object).where(frame.notna(), None)
    goals = [_row_to_goal(row) for row in frame.to_dict("records")]
    return sorted(goals, key=lambda g: (g.deadline, g.goal_id))


_UPDATABLE = ("name", "metric", "business_unit", "start_date", "deadline", "target", "baseline", "monthly_targets",
              "author", "backend")


def update_goal(con: duckdb.DuckDBPyConnection, goal_id: str, **changes) -> Goal:
    """Change some fields of a goal and return it; the baseline is recomputed at the (new) start date when the
    metric or the start date changes and no baseline is given."""
    unknown = sorted(set(changes) - set(_UPDATABLE))
    if unknown:
        raise ValueError(f"Cannot change {', '.join(unknown)}; changeable: {', '.join(_UPDATABLE[:-1])}")
    ensure_goals_table(con)
    old = get_goal(con, goal_id)
    if old is None:
        raise ValueError(f"No goal with id {goal_id!r}; list the goals to see their ids.")
    backend = changes.pop("backend", None)
    merged = dict(name=old.name, metric=old.metric, business_unit=old.business_unit, start_date=old.start_date,
                  deadline=old.deadline, target=old.target, baseline=old.baseline,
                  monthly_targets=dict(old.monthly_targets), author=old.author)
    merged.update(changes)
    moved = merged["metric"] != old.metric or _as_date(merged["start_date"], "start_date") != old.start_date
    if "baseline" not in changes and (moved or math.isnan(old.baseline)):
        merged["baseline"] = None  # recomputed at the (new) start date
    v = _validate(merged["name"], merged["metric"], merged["business_unit"], merged["start_date"],
                  merged["deadline"], merged["target"], merged["baseline"], merged["monthly_targets"])
    if v["baseline"] is None:
        v["baseline"] = _baseline(con, backend, v["metric"], v["start_date"])
    goal = Goal(old.goal_id, v["goal_name"], v["metric"], v["business_unit"], v["start_date"], v["deadline"],
                v["baseline"], v["target"], v["monthly_targets"],
                None if merged["author"] is None else str(merged["author"]), old.created_at, _now())
    sets = ", ".join(f"{quote_ident(c)} = ?" for c in _WRITE_COLUMNS[1:])
    con.execute(f"UPDATE goals SET {sets} WHERE goal_id = ?", [*_params(goal)[1:], goal.goal_id])
    return goal


def delete_goal(con: duckdb.DuckDBPyConnection, goal_id: str) -> bool:
    """Remove the goal; True when there was one to remove."""
    ensure_goals_table(con)
    deleted = con.execute("DELETE FROM goals WHERE goal_id = ? RETURNING goal_id", [str(goal_id)]).fetchall()
    return bool(deleted)


# --- progress ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GoalProgress:
    """A goal at ``as_of``: current value, plan, trend forecast at the deadline, status and a chart frame.

    ``series`` has one row per month end from the start to the deadline: period_end, actual (NaN after
    ``as_of``), planned, trend (the fitted line; NaN without a fit).
    """

    goal: Goal
    as_of: date
    current: float
    baseline: float
    target: float
    achieved_share: float
    planned: float
    forecast: float
    forecast_low: float | None
    forecast_high: float | None
    slope_per_month: float
    trend_basis: str
    status: str
    reading: str
    series: pd.DataFrame = field(repr=False)


def _day_number(d) -> float:
    return float(pd.Timestamp(d).toordinal())


def planned_value(goal: Goal, day: date) -> float:
    """The value the plan expects at ``day``: the line through the baseline, the monthly targets and the target."""
    day = min(max(day, goal.start_date), goal.deadline)
    knots = [(goal.start_date, goal.baseline)]
    for month, value in goal.monthly_targets:
        end = (pd.Timestamp(f"{month}-01") + pd.offsets.MonthEnd(0)).date()
        knots.append((min(max(end, goal.start_date), goal.deadline), value))
    knots.append((goal.deadline, goal.target))  # the target holds at the deadline, whatever the month's plan
    knots = sorted(dict(knots).items())
    xs = [_day_number(d) for d, _ in knots]
    return float(np.interp(_day_number(day), xs, [v for _, v in knots]))


def _reaches(value: float, target: float, higher_is_better: bool) -> bool:
    return value >= target if higher_is_better else value <= target


def _fit(series: pd.DataFrame, at: date, window_days: int | None) -> tuple[float, float, float | None, float | None]:
    """Least-squares line through (period_end, value): value at ``at``, slope per month, 80% interval or None."""
    s = series.dropna(subset=["value"])
    if len(s) < 2:
        return float("nan"), float("nan"), None, None
    x = np.array([_day_number(d) for d in s["period_end"]])
    y = s["value"].to_numpy(float)
    slope, intercept = np.polyfit(x, y, 1)
    x0 = _day_number(at)
    forecast = float(intercept + slope * x0)
    n = len(s)
    span = x.max() - x.min()
    n_eff = min(n, 1 + span / (window_days or 365))  # an all-history metric moves as slowly as a yearly one
    low = high = None
    if n >= 3 and n_eff >= 3:
        resid = y - (intercept + slope * x)
        s2 = float(resid @ resid) / (n - 2)
        sxx = float(((x - x.mean()) ** 2).sum())
        var = s2 * (1 + 1 / n + (x0 - x.mean()) ** 2 / sxx) * (n / n_eff)
        half = float(stats.t.ppf(0.9, n - 2)) * math.sqrt(var)
        low, high = forecast - half, forecast + half
    return forecast, float(slope * 30.4375), low, high


def _status(goal: Goal, current: float, planned: float, forecast: float) -> str:
    higher = goal.higher_is_better
    if math.isnan(current):
        return "no data"
    if _reaches(current, goal.target, higher):
        return "achieved"
    if not math.isnan(forecast) and _reaches(forecast, goal.target, higher):
        return "on track"
    tolerance = TOLERANCE * abs(goal.target - goal.baseline)
    behind = (planned - current) if higher else (current - planned)
    return "at risk" if behind <= tolerance else "off track"


def progress_from_series(goal: Goal, series: pd.DataFrame, as_of: date) -> GoalProgress:
    """A goal's progress from its metric's values (period_end, value; :func:`metric_series`) up to ``as_of``.

    The current value is the one at ``as_of`` (a row must be dated ``as_of``). The trend is fitted on the points
    from ``start_date`` to ``as_of`` when there are at least 3 with a value, else on the last 12 months to as_of.
    """
    m = _metric(goal.metric)
    as_of = _as_date(as_of, "as_of")
    series = series.assign(period_end=pd.to_datetime(series["period_end"])).sort_values("period_end")
    series = series[series["period_end"] <= pd.Timestamp(as_of)]
    at = series.loc[series["period_end"] == pd.Timestamp(as_of), "value"]
    current = float(at.iloc[-1]) if len(at) else float("nan")
    actual = series[series["period_end"] >= pd.Timestamp(goal.start_date)]
    trend, basis = actual, "since the start"
    if actual["value"].notna().sum() < 3:
        trend = series[series["period_end"] > pd.Timestamp(as_of - timedelta(days=366))]
        basis = "last 12 months"
    span = goal.target - goal.baseline
    achieved = (current - goal.baseline) / span if span else float("nan")
    planned = planned_value(goal, as_of)
    forecast, slope, low, high = _fit(trend, goal.deadline, m.window_days)
    status = _status(goal, current, planned, forecast)
    ends = pd.to_datetime(_period_ends(goal.start_date, goal.deadline, "M"))
    chart = pd.DataFrame({"period_end": ends}).merge(actual[["period_end", "value"]], on="period_end", how="outer")
    chart = chart.rename(columns={"value": "actual"}).sort_values("period_end").reset_index(drop=True)
    chart["planned"] = [planned_value(goal, d.date()) for d in chart["period_end"]]
    fitted = trend.dropna(subset=["value"])
    if len(fitted) >= 2:
        coef = np.polyfit([_day_number(d) for d in fitted["period_end"]], fitted["value"].to_numpy(float), 1)
        chart["trend"] = [float(coef[1] + coef[0] * _day_number(d)) for d in chart["period_end"]]
    else:
        chart["trend"] = float("nan")
    reading = _reading(goal, as_of, current, achieved, forecast, status)
    return GoalProgress(goal, as_of, current, goal.baseline, goal.target, achieved, planned, forecast, low, high,
                        slope, basis, status, reading, chart[["period_end", "actual", "planned", "trend"]])


def _reading(goal: Goal, as_of: date, current: float, achieved: float, forecast: float, status: str) -> str:
    label, fmt = METRICS[goal.metric].label, (lambda v: format_value(goal.metric, v))
    if status == "no data":
        return f"{label} has no value on {as_of}, so the goal '{goal.name}' cannot be tracked yet."
    if math.isnan(achieved):
        share = ""
    elif achieved < 0:
        share = f", further from it than the baseline {fmt(goal.baseline)} was"
    else:
        share = f", {achieved:.0%} of the way from the baseline {fmt(goal.baseline)}"
    trend = "" if math.isnan(forecast) else f"; the trend points to {fmt(forecast)} by {goal.deadline}"
    return (f"{label} is {fmt(current)} against a target of {fmt(goal.target)} by {goal.deadline}{share}{trend}: "
            f"{status}.")


def progress(backend, goal: Goal, as_of: date) -> GoalProgress:
    """One goal at ``as_of``: current value, achieved share, plan, forecast at the deadline and status (rules in
    the module docstring), with the monthly series from the start for a chart (:func:`progress_from_series`)."""
    as_of = _as_date(as_of, "as_of")
    m = _metric(goal.metric)
    if math.isnan(goal.baseline):  # an imported goal without a baseline: the metric at its start
        goal = replace(goal, baseline=metric_value(backend, goal.metric, goal.start_date))
    freq = "Q" if m.expensive else "M"
    series = metric_series(backend, goal.metric, min(goal.start_date, as_of), as_of, freq)
    if series.loc[series["period_end"] >= pd.Timestamp(goal.start_date), "value"].notna().sum() < 3:
        before = min(goal.start_date, as_of) - timedelta(days=1)
        year_ago = as_of - timedelta(days=365)
        if year_ago <= before:
            earlier = metric_series(backend, goal.metric, year_ago, before, freq)
            series = pd.concat([earlier, series]).drop_duplicates("period_end", keep="last")
    return progress_from_series(goal, series, as_of)


# --- gap drivers -------------------------------------------------------------------------------------------------

NO_GROUP = "No segment or region"
_DRIVER_COLUMNS = ("group", "base", "weight", "value", "gap_to_target", "contribution", "share_of_gap")


def gap_drivers(backend, goal: Goal, as_of: date, by: str = "segment") -> pd.DataFrame:
    """One row per RFM segment (``by="segment"``) or region (``by="region"``) with a base: group, base, weight,
    value, gap_to_target (target - value), contribution (weight × gap_to_target), share_of_gap; the groups that
    hold the goal back most first. Contributions add up to target - overall (see the module docstring).

    Metrics that do not decompose give an empty frame with ``attrs["reason"]``.
    """
    as_of = _as_date(as_of, "as_of")
    m = _metric(goal.metric)
    empty = pd.DataFrame({c: pd.Series(dtype="object" if c == "group" else "float64") for c in _DRIVER_COLUMNS})
    if not m.decomposes:
        empty.attrs["reason"] = (f"{m.label} is not a mean or rate over customers or tickets, so it does not split "
                                 "into segment contributions.")
        return empty
    backend = _CachedTables(backend)
    if by == "segment":
        groups, arg = list(rfm_segments.SEGMENTS), "segments"
    elif by == "region":
        customers = backend.table("customers")
        if "region" not in customers.columns:
            empty.attrs["reason"] = "customers have no region column."
            return empty
        r = backend.execute(customers.select("region").distinct())["region"].dropna().astype(str)
        groups, arg = sorted(x for x in r if x.strip()), "regions"
    else:
        raise ValueError(f"by must be 'segment' or 'region', got {by!r}")
    points = [(as_of, (), ())] + [(as_of, (g,), ()) if arg == "regions" else (as_of, (), (g,)) for g in groups]
    overall, *parts = _measure_many(backend, m.key, points)
    if math.isnan(overall.value) or not overall.base:
        empty.attrs["reason"] = overall.reason or f"{m.label} has no value on {as_of}."
        return empty
    rows = [(g, part.base, part.value) for g, part in zip(groups, parts) if part.base and not math.isnan(part.value)]
    rest = overall.base - sum(n for _, n, _ in rows)
    unassigned = overall.value * overall.base - sum(n * v for _, n, v in rows)  # the total the groups leave out
    if rest > 0:
        rows.append((NO_GROUP, rest, unassigned / rest))
    frame = pd.DataFrame(rows, columns=["group", "base", "value"])
    frame["base"] = frame["base"].astype("int64")
    frame["weight"] = frame["base"] / overall.base
    frame["gap_to_target"] = goal.target - frame["value"]
    frame["contribution"] = frame["weight"] * frame["gap_to_target"]
    if rest <= 0 and abs(unassigned) > 1e-9 * max(1.0, abs(overall.value) * overall.base):
        # e.g. anonymous revenue: in the overall value, in no group's, with no base of its own
        extra = pd.DataFrame({"group": [NO_GROUP], "base": [0], "weight": [0.0], "value": [float("nan")],
                              "gap_to_target": [float("nan")], "contribution": [-unassigned / overall.base]})
        frame = pd.concat([frame, extra], ignore_index=True)
    gap = goal.target - overall.value
    frame["share_of_gap"] = frame["contribution"] / gap if gap else float("nan")
    drag = frame["contribution"] if m.higher_is_better else -frame["contribution"]
    frame = frame.assign(_drag=drag).sort_values("_drag", ascending=False, kind="stable").drop(columns="_drag")
    frame = frame.reset_index(drop=True)[list(_DRIVER_COLUMNS)]
    frame.attrs["overall"] = overall.value
    frame.attrs["gap"] = gap
    return frame
