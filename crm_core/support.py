"""Support ticket KPIs: SLA clocks and breaches, resolution, reopens, first-contact resolution, CSAT, cost, backlog.

Definitions (``as_of`` is a calendar day and everything is measured at the *end* of it, i.e. at midnight after it;
the window holds the tickets *created* from the start of day ``start`` to the end of day ``as_of``, no ``start`` =
all history):

- The *SLA policy* (:class:`SlaPolicy`) gives a first-response and a resolution target in hours per priority. A
  ticket's ``priority_level`` is its ``priority`` trimmed and lower-cased, or ``SlaPolicy.default_priority`` when
  that is blank or not a level of the policy.
- The *clock* between two timestamps counts wall-clock hours, or, when the policy has :class:`BusinessHours`, only
  the hours inside the working day on the chosen weekdays (a ticket opened on Saturday starts its clock on Monday
  at the opening hour). Clocks use the timestamps as written (local wall time; no time-zone or holiday calendar).
- ``first_response_hours``: the clock from ``created_at`` to ``first_response_at``, when that is on or before the
  end of ``as_of`` (null otherwise); ``resolution_hours`` likewise to ``resolved_at`` (null while open).
- A ticket is *open* when it is not resolved by the end of ``as_of``; ``age_days`` is the calendar days from
  ``created_at`` to the end of ``as_of`` (open tickets only) and ``age_hours`` the clock over the same span.
- *First response breached*: answered after more than the target, or not answered yet and already waiting longer
  than the target at the end of ``as_of``. *Resolution breached*: the same for resolution. *Breached*: either.
  A missing clock never counts as met: a ticket not answered yet and still inside its target is *pending*; it is
  neither breached nor met and is left out of the breach rates (their denominator is the tickets whose outcome is
  known: met, or breached). This is the sample generator's rule (response time > target) with the undecided
  tickets set aside.
- ``reopen_rate``: tickets flagged ``is_reopened`` among the tickets resolved by ``as_of``.
- ``first_contact_resolution_rate`` (FCR): among the tickets resolved by ``as_of`` that record a ``contact_count``,
  the share resolved in one contact: ``contact_count`` <= 1 and not reopened (a missing ``is_reopened`` counts as
  not reopened).
- ``csat_mean`` is the mean 1-5 rating of the rated tickets; ``csat_response_rate`` = rated tickets / tickets
  resolved by ``as_of`` (ratings are asked for on resolution).
- ``ticket_cost``: every ticket × the handling cost of its channel, the one definition of
  :class:`crm_core.CostRates` (``ticket_cost_by_channel``, else ``default_ticket_cost``).
- Medians and 90th percentiles are *exact, linearly interpolated* quantiles (DuckDB ``quantile_cont``,
  PostgreSQL ``percentile_cont``, Spark ``percentile``), the same as ``numpy.quantile``'s default, over the
  tickets that have the clock (answered / resolved by ``as_of``).
- ``is_complaint`` / ``is_compliment``: the category contains "complaint" / "compliment", in any case.
- The region and segment filters keep the tickets of the chosen customers, as :mod:`crm_core.metrics` does
  (segment = RFM segment as of ``as_of``); tickets without a known customer drop out of a filtered view.

Every aggregate is one Ibis expression that runs in the engine (DuckDB here; it compiles for PostgreSQL and Spark);
only the small result reaches pandas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from crm_core.metrics import Filters, _customer_scope, _scoped
from crm_core.segments import SEGMENTS, rfm_expr
from crm_core.value import CostRates, _channel_cost

__all__ = [
    "AGE_BANDS",
    "BREACH_GROUPS",
    "KPI_COLUMNS",
    "KPI_HELP",
    "KPI_LABELS",
    "NO_PURCHASES",
    "TICKET_KPI_BY",
    "UNKNOWN",
    "Backlog",
    "BusinessHours",
    "SlaPolicy",
    "backlog",
    "complaints",
    "csat_by_breach",
    "csat_distribution",
    "ticket_facts",
    "ticket_facts_expr",
    "ticket_kpis",
    "ticket_kpis_expr",
    "ticket_trend",
]

# --- the SLA policy -----------------------------------------------------------------------------------------------


def _first_response_targets() -> dict[str, float]:
    return {"urgent": 4.0, "high": 8.0, "normal": 24.0, "low": 48.0}


def _resolution_targets() -> dict[str, float]:
    return {"urgent": 24.0, "high": 48.0, "normal": 72.0, "low": 120.0}


@dataclass(frozen=True)
class BusinessHours:
    """The working week the SLA clocks run in: ``start_hour`` to ``end_hour`` (0-24, local wall time) on
    ``weekdays`` (Monday = 0 ... Sunday = 6). Holidays are not modelled."""

    start_hour: int = 9
    end_hour: int = 17
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)

    def __post_init__(self) -> None:
        for name in ("start_hour", "end_hour"):
            hour = getattr(self, name)
            if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 24:
                raise ValueError(f"BusinessHours.{name} must be a whole hour from 0 to 24, got {hour!r}")
        if self.start_hour >= self.end_hour:
            raise ValueError(f"BusinessHours: the day must start before it ends, got {self.start_hour}:00 to "
                             f"{self.end_hour}:00")
        days = tuple(sorted(set(self.weekdays)))
        if not days or any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in days):
            raise ValueError(f"BusinessHours.weekdays must be one or more of 0 (Monday) .. 6 (Sunday), "
                             f"got {self.weekdays!r}")
        object.__setattr__(self, "weekdays", days)

    @property
    def hours_per_day(self) -> int:
        return self.end_hour - self.start_hour


def _targets(name: str, targets: Mapping[str, float]) -> dict[str, float]:
    cleaned: dict[str, float] = {}
    for key, hours in dict(targets).items():
        level = str(key).strip().lower()
        try:
            number = float(hours)
        except (TypeError, ValueError):
            number = math.nan
        if not level or not number > 0 or math.isinf(number):
            raise ValueError(f"SlaPolicy.{name}: every priority needs a name and a target above 0 hours, "
                             f"got {key!r}: {hours!r}")
        cleaned[level] = number
    if not cleaned:
        raise ValueError(f"SlaPolicy.{name}: give a target for at least one priority")
    return cleaned


@dataclass(frozen=True)
class SlaPolicy:
    """Service-level targets in hours by priority (keys trimmed and lower-cased), the priority used for a blank
    or unknown one, and optional business hours for the clocks. Hashable, so it can key a cache."""

    first_response_hours: Mapping[str, float] = field(default_factory=_first_response_targets)
    resolution_hours: Mapping[str, float] = field(default_factory=_resolution_targets)
    default_priority: str = "normal"
    business_hours: BusinessHours | None = None

    def __post_init__(self) -> None:
        first = _targets("first_response_hours", self.first_response_hours)
        resolution = _targets("resolution_hours", self.resolution_hours)
        if set(first) != set(resolution):
            raise ValueError(f"SlaPolicy: first_response_hours and resolution_hours must name the same priorities, "
                             f"got {sorted(first)} and {sorted(resolution)}")
        default = str(self.default_priority).strip().lower()
        if default not in first:
            raise ValueError(f"SlaPolicy.default_priority {self.default_priority!r} is not one of the priorities "
                             f"{sorted(first)}")
        if self.business_hours is not None and not isinstance(self.business_hours, BusinessHours):
            raise ValueError("SlaPolicy.business_hours must be a BusinessHours or None")
        object.__setattr__(self, "first_response_hours", first)
        object.__setattr__(self, "resolution_hours", resolution)
        object.__setattr__(self, "default_priority", default)

    def __hash__(self) -> int:  # the dicts are copied and never changed, so the policy can key a cache
        return hash((tuple(sorted(self.first_response_hours.items())), tuple(sorted(self.resolution_hours.items())),
                     self.default_priority, self.business_hours))

    @property
    def priorities(self) -> tuple[str, ...]:
        """The priority levels, most urgent (shortest first-response target) first."""
        return tuple(sorted(self.first_response_hours, key=lambda p: (self.first_response_hours[p],
                                                                      self.resolution_hours[p], p)))


# --- clocks -------------------------------------------------------------------------------------------------------

_EPOCH = date(1900, 1, 1)  # a Monday, before any ticket: day numbers counted from it are >= 0 and day 0 is Monday


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time())


def _end_of(day: date) -> datetime:
    return _day_start(day + timedelta(days=1))


def _clock_position(ts: ir.TimestampValue, hours: BusinessHours | None) -> ir.FloatingValue:
    """Clock hours from the epoch to ``ts``: the clock between two timestamps is the difference of their positions.

    Without business hours it is days × 24 + the hour of the day (wall-clock hours, no time-zone arithmetic).
    With business hours it is: whole weeks × working hours per week + the working hours of the earlier working
    days of ``ts``'s week + the working hours already gone on ``ts``'s own day (its hour of day clipped to the
    working day; nothing on a non-working day). The difference of two positions is thus the working hours of the
    whole days between the two dates minus the part of the first day before the start and of the last day after
    the end, counting only the chosen weekdays.
    """
    days = ts.date().delta(ibis.date(_EPOCH), unit="day").cast("int64")
    hour_of_day = ts.hour().cast("float64") + ts.minute().cast("float64") / 60 + ts.second().cast("float64") / 3600
    if hours is None:
        return days.cast("float64") * 24 + hour_of_day
    per_day = float(hours.hours_per_day)
    weekday = days % 7
    weeks = ((days - weekday) / 7).cast("int64")  # exact: days - weekday is a multiple of 7
    earlier_days = ibis.cases(*[(weekday == d, sum(1 for w in hours.weekdays if w < d)) for d in range(7)])
    is_working = weekday.isin(hours.weekdays)
    today = ibis.greatest(ibis.least(hour_of_day, float(hours.end_hour)), float(hours.start_hour)) - hours.start_hour
    return (weeks.cast("float64") * (len(hours.weekdays) * per_day) + earlier_days.cast("float64") * per_day
            + is_working.ifelse(today, 0.0))


def _clock_hours(start: ir.TimestampValue, end: ir.TimestampValue, hours: BusinessHours | None) -> ir.FloatingValue:
    """Clock hours from ``start`` to ``end`` (wall-clock, or working hours only); null when either is null."""
    return _clock_position(end, hours) - _clock_position(start, hours)


def _target(level: ir.StringValue, targets: Mapping[str, float]) -> ir.FloatingValue:
    return ibis.cases(*[(level == name, ibis.literal(float(h))) for name, h in sorted(targets.items())])


# --- one row per ticket -------------------------------------------------------------------------------------------


def _position_at(moment: datetime, hours: BusinessHours | None) -> float:
    """:func:`_clock_position` of a Python timestamp, computed here so the engine compares with a constant."""
    days = (moment.date() - _EPOCH).days
    hour_of_day = moment.hour + moment.minute / 60 + moment.second / 3600
    if hours is None:
        return days * 24.0 + hour_of_day
    weekday, per_day = days % 7, float(hours.hours_per_day)
    earlier_days = sum(1 for w in hours.weekdays if w < weekday)
    today = min(max(hour_of_day, hours.start_hour), hours.end_hour) - hours.start_hour
    return ((days - weekday) // 7 * len(hours.weekdays) * per_day + earlier_days * per_day
            + (today if weekday in hours.weekdays else 0.0))


def ticket_facts_expr(tickets: ir.Table, as_of: date, policy: SlaPolicy = SlaPolicy()) -> ir.Table:
    """One row per ticket created on or before the end of ``as_of``: every ticket column plus priority_level,
    first_response_hours, resolution_hours, first_response_target_hours, resolution_target_hours, is_open,
    age_days, age_hours, is_first_response_breached, is_resolution_breached, is_breached, is_complaint,
    is_compliment (definitions in the module docstring; every ``is_*`` is true or false, never null).

    Built as two projections over the ticket table (clock positions first, then their differences), which keeps
    the expression small to compile.
    """
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    end = _end_of(as_of)
    clock = policy.business_hours
    t = tickets.filter(tickets.created_at < end)
    level = t.priority.strip().lower()
    level = level.isin(tuple(policy.first_response_hours)).fill_null(False).ifelse(level, policy.default_priority)
    answered = (t.first_response_at < end).fill_null(False)
    resolved = (t.resolved_at < end).fill_null(False)
    category = t.category.lower()
    no_hours = ibis.null("float64")
    t = t.mutate(
        priority_level=level,
        first_response_target_hours=_target(level, policy.first_response_hours),
        resolution_target_hours=_target(level, policy.resolution_hours),
        is_open=~resolved,
        is_complaint=category.contains("complaint").fill_null(False),
        is_compliment=category.contains("compliment").fill_null(False),
        _created=_clock_position(t.created_at, clock),
        _answered=answered.ifelse(_clock_position(t.first_response_at, clock), no_hours),
        _resolved=resolved.ifelse(_clock_position(t.resolved_at, clock), no_hours),
        _created_wall=_clock_position(t.created_at, None) if clock is not None else ibis.literal(0.0),
    )
    end_position = ibis.literal(_position_at(end, clock))
    waited_first = ibis.coalesce(t._answered, end_position) - t._created
    waited_resolution = ibis.coalesce(t._resolved, end_position) - t._created
    fr_breached = (waited_first > t.first_response_target_hours).fill_null(False)
    res_breached = (waited_resolution > t.resolution_target_hours).fill_null(False)
    created_wall = t._created_wall if clock is not None else t._created
    return t.select(
        *tickets.columns,
        "priority_level",
        first_response_hours=t._answered - t._created,
        resolution_hours=t._resolved - t._created,
        first_response_target_hours=t.first_response_target_hours,
        resolution_target_hours=t.resolution_target_hours,
        is_open=t.is_open,
        age_days=t.is_open.ifelse((_position_at(end, None) - created_wall) / 24, no_hours),
        age_hours=t.is_open.ifelse(end_position - t._created, no_hours),
        is_first_response_breached=fr_breached,
        is_resolution_breached=res_breached,
        is_breached=fr_breached | res_breached,
        is_complaint=t.is_complaint,
        is_compliment=t.is_compliment,
    )


# --- labels and help ----------------------------------------------------------------------------------------------

NO_PURCHASES = "No purchases"  # the segment of tickets whose customer has no RFM segment (no purchase by as_of)
BREACH_GROUPS: tuple[str, ...] = ("Met", "Breached", "Pending")  # values of by="first_response_breach"
TICKET_KPI_BY: tuple[str, ...] = ("channel", "priority", "category", "agent", "segment", "first_response_breach")
_DEFAULT_RATES = CostRates()  # crm_core.value's default handling cost of a ticket by channel
UNKNOWN = "Unknown"  # the group of a ticket with a blank channel, category or agent

# Age bands of open tickets, in days since created: (label, from, to), from inclusive, to exclusive.
AGE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("0-1 days", 0.0, 1.0),
    ("1-3 days", 1.0, 3.0),
    ("3-7 days", 3.0, 7.0),
    ("7-30 days", 7.0, 30.0),
    ("30+ days", 30.0, math.inf),
)

KPI_COLUMNS: tuple[str, ...] = (
    "tickets", "median_first_response_hours", "p90_first_response_hours", "median_resolution_hours",
    "p90_resolution_hours", "first_response_breach_rate", "resolution_breach_rate", "breach_rate", "open_tickets",
    "resolved_tickets", "reopen_rate", "first_contact_resolution_rate", "contacts_per_ticket", "csat_mean",
    "csat_responses", "csat_response_rate", "ticket_cost", "cost_per_ticket",
)
_KPI_COUNTS = ("tickets", "open_tickets", "resolved_tickets", "csat_responses")

KPI_LABELS: dict[str, str] = {
    "tickets": "Tickets",
    "median_first_response_hours": "Median first response (h)",
    "p90_first_response_hours": "90th percentile first response (h)",
    "median_resolution_hours": "Median resolution time (h)",
    "p90_resolution_hours": "90th percentile resolution time (h)",
    "first_response_breach_rate": "First-response SLA breach rate",
    "resolution_breach_rate": "Resolution SLA breach rate",
    "breach_rate": "SLA breach rate",
    "open_tickets": "Open tickets",
    "resolved_tickets": "Resolved tickets",
    "reopen_rate": "Reopen rate",
    "first_contact_resolution_rate": "First-contact resolution",
    "contacts_per_ticket": "Contacts per ticket",
    "csat_mean": "Average CSAT (1-5)",
    "csat_responses": "CSAT responses",
    "csat_response_rate": "CSAT response rate",
    "ticket_cost": "Support cost",
    "cost_per_ticket": "Cost per ticket",
    "complaints": "Complaints",
    "compliments": "Compliments",
    "complaint_share": "Complaint share",
    "compliment_share": "Compliment share",
    "age_band": "Age of open ticket",
    "age_days": "Age (days)",
    "age_hours": "Age (SLA clock hours)",
    "awaiting_first_response": "Awaiting first response",
    "first_response_breached": "First response overdue",
    "resolution_breached": "Resolution overdue",
    "share_of_open": "Share of open tickets",
    "oldest_age_days": "Oldest (days)",
    "rating": "CSAT rating",
    "responses": "Responses",
    "share_of_responses": "Share of responses",
    "month": "Month created",
    "week": "Week created",
    "channel": "Channel",
    "priority": "Priority",
    "category": "Category",
    "agent": "Agent",
    "segment": "RFM segment",
    "first_response_breach": "First response",
}

KPI_HELP: dict[str, str] = {
    "tickets": "Support tickets created in the period.",
    "median_first_response_hours": (
        "Half of the answered tickets got their first reply within this many hours (business hours when the SLA "
        "policy sets them); tickets not answered yet are not included."),
    "p90_first_response_hours": "Nine in ten answered tickets got their first reply within this many hours.",
    "median_resolution_hours": "Half of the resolved tickets were resolved within this many hours of being opened.",
    "p90_resolution_hours": "Nine in ten resolved tickets were resolved within this many hours.",
    "first_response_breach_rate": (
        "Share of tickets whose first reply came later than the SLA target for their priority, or that are still "
        "unanswered past it; tickets still unanswered but within the target are left out until they are decided."),
    "resolution_breach_rate": (
        "Share of tickets resolved later than the resolution target for their priority, or still open past it; "
        "open tickets within the target are left out until they are decided."),
    "breach_rate": (
        "Share of tickets that missed either SLA target (first reply or resolution), among the tickets that missed "
        "one or met both."),
    "open_tickets": "Tickets of the period not resolved by the end of the last day.",
    "resolved_tickets": "Tickets of the period resolved by the end of the last day.",
    "reopen_rate": "Share of resolved tickets that were reopened after being resolved.",
    "first_contact_resolution_rate": (
        "Share of resolved tickets solved in one contact: at most one contact recorded and not reopened (tickets "
        "without a contact count are left out)."),
    "contacts_per_ticket": "Average number of contacts (messages, calls) per ticket that records them.",
    "csat_mean": "Average satisfaction rating (1 = very unhappy, 5 = very happy) of the rated tickets.",
    "csat_responses": "Tickets with a satisfaction rating.",
    "csat_response_rate": "Share of resolved tickets that received a satisfaction rating.",
    "ticket_cost": "Tickets × the handling cost of a ticket in their channel (the cost rates of Customer value).",
    "cost_per_ticket": "Support cost divided by the number of tickets.",
    "complaints": "Tickets whose category contains 'complaint'.",
    "compliments": "Tickets whose category contains 'compliment'.",
    "complaint_share": "Complaints as a share of all tickets.",
    "compliment_share": "Compliments as a share of all tickets.",
    "age_band": "How long the open ticket has been open at the end of the day, in calendar days.",
    "age_days": "Calendar days from the ticket's creation to the end of the day.",
    "age_hours": "Hours on the SLA clock (business hours when the policy sets them) since the ticket was opened.",
    "awaiting_first_response": "Open tickets that have had no reply yet.",
    "first_response_breached": "Tickets whose first reply is later than the SLA target, or still missing past it.",
    "resolution_breached": "Open tickets already past their resolution target.",
    "share_of_open": "Share of all open tickets.",
    "oldest_age_days": "Age of the oldest of these open tickets, in days.",
    "rating": "Satisfaction rating, 1 (very unhappy) to 5 (very happy).",
    "responses": "Tickets rated with this score.",
    "share_of_responses": "Share of all ratings that gave this score.",
    "month": "Calendar month the tickets were created in.",
    "week": "Week (starting Monday) the tickets were created in.",
    "channel": "Channel the ticket came in through (lower case).",
    "priority": "Priority level of the SLA policy (a blank or unknown priority counts as the default level).",
    "category": "Ticket topic (lower case).",
    "agent": "Agent or team that handled the ticket.",
    "segment": "RFM segment of the customer at the end of the period; 'No purchases' when they have none.",
    "first_response_breach": (
        "Whether the first reply met the SLA target ('Met'), missed it ('Breached'), or is still due ('Pending')."),
}


# --- expressions over the ticket facts ----------------------------------------------------------------------------


def _rate(numerator: ir.IntegerValue, denominator: ir.IntegerValue) -> ir.FloatingValue:
    return numerator.cast("float64") / denominator.nullif(0).cast("float64")


def _kpi_metrics(f: ir.Table, rates: CostRates) -> dict[str, ir.Value]:
    """The aggregates of :data:`KPI_COLUMNS` over the ticket facts ``f`` (for ``aggregate``)."""
    fr_decided = f.first_response_hours.notnull() | f.is_first_response_breached
    res_decided = f.resolution_hours.notnull() | f.is_resolution_breached
    resolved = ~f.is_open
    counted = f.contact_count.notnull()
    one_contact = counted & (f.contact_count <= 1) & ~f.is_reopened.fill_null(False)
    rated = f.csat.notnull()
    cost = _channel_cost(f.channel, rates.ticket_cost_by_channel, rates.default_ticket_cost)
    tickets = f.count()
    resolved_n = f.count(where=resolved)
    return {
        "tickets": tickets,
        "median_first_response_hours": f.first_response_hours.quantile(0.5),
        "p90_first_response_hours": f.first_response_hours.quantile(0.9),
        "median_resolution_hours": f.resolution_hours.quantile(0.5),
        "p90_resolution_hours": f.resolution_hours.quantile(0.9),
        "first_response_breach_rate": _rate(f.count(where=f.is_first_response_breached), f.count(where=fr_decided)),
        "resolution_breach_rate": _rate(f.count(where=f.is_resolution_breached), f.count(where=res_decided)),
        "breach_rate": _rate(f.count(where=f.is_breached),
                             f.count(where=f.is_breached | (fr_decided & res_decided))),
        "open_tickets": f.count(where=f.is_open),
        "resolved_tickets": resolved_n,
        "reopen_rate": _rate(f.count(where=resolved & f.is_reopened.fill_null(False)), resolved_n),
        "first_contact_resolution_rate": _rate(f.count(where=resolved & one_contact),
                                               f.count(where=resolved & counted)),
        "contacts_per_ticket": f.contact_count.cast("float64").mean(),
        "csat_mean": f.csat.cast("float64").mean(),
        "csat_responses": f.count(where=rated),
        "csat_response_rate": _rate(f.count(where=resolved & rated), resolved_n),
        "ticket_cost": cost.sum(),
        "cost_per_ticket": cost.sum() / tickets.nullif(0).cast("float64"),
    }


def _group_key(f: ir.Table, by: str) -> ir.StringValue:
    """The value that names a ticket's row in ``ticket_kpis(by=...)``."""
    if by == "priority":
        return f.priority_level
    if by in ("channel", "category"):
        key = f[by].strip().lower()
    elif by == "agent":
        key = f.agent.strip()
    elif by == "segment":
        return f.segment.fill_null(NO_PURCHASES)
    elif by == "first_response_breach":
        return ibis.cases((f.is_first_response_breached, "Breached"), (f.first_response_hours.notnull(), "Met"),
                          else_="Pending")
    else:
        raise ValueError(f"by must be one of {', '.join(TICKET_KPI_BY)} or None, got {by!r}")
    return (key.length() > 0).fill_null(False).ifelse(key, UNKNOWN)


def _with_segment(facts: ir.Table, orders: ir.Table, as_of: date) -> ir.Table:
    segments = rfm_expr(orders, as_of).select(_rfm_customer_id="customer_id", segment="segment")
    joined = facts.left_join(segments, facts.customer_id == segments._rfm_customer_id)
    return joined.drop("_rfm_customer_id")


def ticket_kpis_expr(facts: ir.Table, by: str | None = None, rates: CostRates = _DEFAULT_RATES) -> ir.Table:
    """One row (``by=None``) or one row per value of ``by`` over ticket facts (:func:`ticket_facts_expr`, already
    restricted to the tickets in view): [by,] and every column of :data:`KPI_COLUMNS`.

    ``by="segment"`` needs a ``segment`` column on ``facts`` (see :func:`ticket_kpis`).
    """
    if by is None:
        return facts.aggregate(**_kpi_metrics(facts, rates))
    f = facts.mutate(_group=_group_key(facts, by))
    return f.group_by(f._group.name(by)).aggregate(**_kpi_metrics(f, rates))


# --- running the expressions --------------------------------------------------------------------------------------

_TICKETS = "support_tickets"


def _tables(backend: ibis.BaseBackend) -> dict[str, ir.Table]:
    present = set(backend.list_tables())
    for name in ("customers", "orders", _TICKETS):
        if name not in present:
            raise ValueError(f"The database has no {name!r} table; open it with crm_core.store.connect, which "
                             f"creates every canonical table, and import {name}.")
    return {name: backend.table(name) for name in ("customers", "orders", _TICKETS)}


def _is_missing(x) -> bool:
    return x is None or x is pd.NA or x is pd.NaT or (isinstance(x, float) and math.isnan(x))


def _latest_ticket_day(backend: ibis.BaseBackend, tickets: ir.Table) -> date | None:
    """The calendar day of the latest ticket event (created, first response or resolved); None without tickets."""
    row = backend.execute(tickets.aggregate(a=tickets.created_at.max(), b=tickets.first_response_at.max(),
                                            c=tickets.resolved_at.max())).iloc[0]
    days = [pd.Timestamp(v).date() for v in row.tolist() if not _is_missing(v)]
    return max(days) if days else None


@dataclass(frozen=True)
class _View:
    """The tickets in view and the as_of they were measured at."""

    facts: ir.Table
    as_of: date


def _view(backend: ibis.BaseBackend, as_of: date | None, start: date | None, policy: SlaPolicy,
          regions, segments, with_segment: bool = False) -> _View:
    tables = _tables(backend)
    tickets = tables[_TICKETS]
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    if isinstance(start, datetime):
        start = start.date()
    if as_of is None:
        as_of = _latest_ticket_day(backend, tickets) or date.today()
    chosen = Filters(start=start, end=as_of, regions=regions, segments=segments)
    facts = ticket_facts_expr(tickets, as_of, policy)
    if start is not None:
        facts = facts.filter(facts.created_at >= _day_start(start))
    scope = _customer_scope(tables["customers"], tables["orders"], chosen.regions, chosen.segments, as_of)
    facts = _scoped(facts, scope)
    if with_segment:
        facts = _with_segment(facts, tables["orders"], as_of)
    return _View(facts, as_of)


def _tidy_kpis(frame: pd.DataFrame) -> pd.DataFrame:
    for name in _KPI_COUNTS:
        frame[name] = frame[name].astype("Float64").fillna(0).astype("int64")
    for name in KPI_COLUMNS:
        if name not in _KPI_COUNTS:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame


def _order_groups(frame: pd.DataFrame, by: str, policy: SlaPolicy) -> pd.DataFrame:
    if by == "priority":
        order = {p: i for i, p in enumerate(policy.priorities)}
    elif by == "segment":
        order = {s: i for i, s in enumerate((*SEGMENTS, NO_PURCHASES))}
    elif by == "first_response_breach":
        order = {s: i for i, s in enumerate(BREACH_GROUPS)}
    else:
        frame = frame.sort_values(["tickets", by], ascending=[False, True], kind="stable")
        return frame.reset_index(drop=True)
    frame = frame.sort_values(by, key=lambda c: c.map(order), kind="stable")
    return frame.reset_index(drop=True)


def ticket_kpis(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    start: date | None = None,
    policy: SlaPolicy = SlaPolicy(),
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
    by: str | None = None,
    rates: CostRates = _DEFAULT_RATES,
) -> pd.DataFrame:
    """One row (``by=None``) or one row per ``by`` value with tickets, for the tickets created from ``start`` to
    ``as_of``: [by,] then :data:`KPI_COLUMNS` (definitions in the module docstring and :data:`KPI_HELP`).

    ``by`` is one of :data:`TICKET_KPI_BY`: ``channel`` and ``category`` lower-cased, ``agent`` trimmed (blank →
    "Unknown"), ``priority`` the policy's level (rows most urgent first), ``segment`` the customer's RFM segment as
    of ``as_of`` ("No purchases" without one), ``first_response_breach`` Met / Breached / Pending. Other groupings
    are sorted by tickets, most first. ``as_of`` defaults to the day of the latest ticket event.
    """
    if by is not None and by not in TICKET_KPI_BY:
        raise ValueError(f"by must be one of {', '.join(TICKET_KPI_BY)} or None, got {by!r}")
    view = _view(backend, as_of, start, policy, regions, segments, with_segment=by == "segment")
    frame = _tidy_kpis(backend.execute(ticket_kpis_expr(view.facts, by, rates)))
    if by is None:
        return frame[list(KPI_COLUMNS)]
    frame[by] = frame[by].astype(str)
    return _order_groups(frame[[by, *KPI_COLUMNS]], by, policy)


def csat_by_breach(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    start: date | None = None,
    policy: SlaPolicy = SlaPolicy(),
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
) -> pd.DataFrame:
    """One row per first-response outcome with tickets (Met, Breached, Pending): first_response_breach, tickets,
    csat_responses, csat_mean — how much a late first reply costs in satisfaction."""
    kpis = ticket_kpis(backend, as_of, start, policy, regions, segments, by="first_response_breach")
    return kpis[["first_response_breach", "tickets", "csat_responses", "csat_mean"]]


def ticket_facts(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    start: date | None = None,
    policy: SlaPolicy = SlaPolicy(),
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
) -> pd.DataFrame:
    """One row per ticket created from ``start`` to ``as_of``: the columns of :func:`ticket_facts_expr`, oldest
    first (for a ticket list or an export; the KPIs never pull this)."""
    view = _view(backend, as_of, start, policy, regions, segments)
    return backend.execute(view.facts.order_by(["created_at", "ticket_id"]))


_PERIODS = {"M": "month", "W": "week"}


def _periods(first: date, last: date, freq: str) -> pd.DataFrame:
    if freq == "M":
        index = pd.date_range(pd.Timestamp(first.year, first.month, 1), pd.Timestamp(last.year, last.month, 1),
                              freq="MS")
    else:
        monday = pd.Timestamp(first) - pd.Timedelta(days=first.weekday())
        index = pd.date_range(monday, pd.Timestamp(last), freq="W-MON")
    return pd.DataFrame({_PERIODS[freq]: index.astype("datetime64[ns]")})


def _as_period(values: pd.Series, freq: str) -> pd.Series:
    stamps = pd.to_datetime(values)
    if freq == "M":
        return stamps.dt.to_period("M").dt.to_timestamp().astype("datetime64[ns]")
    return (stamps.dt.normalize() - pd.to_timedelta(stamps.dt.day_of_week, unit="D")).astype("datetime64[ns]")


def _trend_expr(facts: ir.Table, freq: str) -> ir.Table:
    """One row per period created with tickets: the columns of :func:`ticket_trend`."""
    f = facts
    fr_decided = f.first_response_hours.notnull() | f.is_first_response_breached
    res_decided = f.resolution_hours.notnull() | f.is_resolution_breached
    return f.group_by(f.created_at.truncate(freq).name(_PERIODS[freq])).aggregate(
        tickets=f.count(),
        first_response_breach_rate=_rate(f.count(where=f.is_first_response_breached), f.count(where=fr_decided)),
        breach_rate=_rate(f.count(where=f.is_breached), f.count(where=f.is_breached | (fr_decided & res_decided))),
        median_first_response_hours=f.first_response_hours.quantile(0.5),
        csat_mean=f.csat.cast("float64").mean(),
        complaints=f.count(where=f.is_complaint),
        compliments=f.count(where=f.is_compliment),
    )


_TREND_COUNTS = ("tickets", "complaints", "compliments")


def ticket_trend(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    start: date | None = None,
    policy: SlaPolicy = SlaPolicy(),
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
    freq: str = "M",
) -> pd.DataFrame:
    """One row per calendar month (``freq="M"``) or week from Monday (``"W"``) created, from the first ticket (or
    ``start``) to ``as_of``: month|week, tickets, first_response_breach_rate, breach_rate,
    median_first_response_hours, csat_mean, complaints, compliments.

    Periods without tickets appear with zero counts and NaN rates; the first and last periods only count the days
    inside the range. No tickets: an empty frame with these columns.
    """
    if freq not in _PERIODS:
        raise ValueError(f"freq must be 'M' (months) or 'W' (weeks), got {freq!r}")
    view = _view(backend, as_of, start, policy, regions, segments)
    frame = backend.execute(_trend_expr(view.facts, freq))
    column = _PERIODS[freq]
    columns = [column, "tickets", "first_response_breach_rate", "breach_rate", "median_first_response_hours",
               "csat_mean", "complaints", "compliments"]
    if frame.empty:
        empty = {name: pd.Series(dtype="int64" if name in _TREND_COUNTS else "float64") for name in columns}
        empty[column] = pd.Series(dtype="datetime64[ns]")
        return pd.DataFrame(empty)
    frame[column] = _as_period(frame[column], freq)
    first = start or frame[column].min().date()
    trend = _periods(first, view.as_of, freq).merge(frame, on=column, how="left")
    for name in _TREND_COUNTS:
        trend[name] = trend[name].astype("Float64").fillna(0).astype("int64")
    for name in ("first_response_breach_rate", "breach_rate", "median_first_response_hours", "csat_mean"):
        trend[name] = pd.to_numeric(trend[name], errors="coerce").astype("float64")
    return trend[columns]


# --- the backlog --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    """Open tickets at the end of ``as_of``.

    - ``by_age``: one row per :data:`AGE_BANDS` band (all five, zeros included): age_band, open_tickets,
      share_of_open, awaiting_first_response, first_response_breached, resolution_breached.
    - ``by_priority``: one row per priority level of the policy, most urgent first (zeros included): priority,
      open_tickets, awaiting_first_response, first_response_breached, resolution_breached, oldest_age_days
      (NaN without open tickets).
    - ``oldest``: the ``top`` oldest open tickets: ticket_id, customer_id, created_at, priority_level, channel,
      category, agent, subject, age_days, age_hours, first_response_at, is_first_response_breached,
      is_resolution_breached.
    """

    as_of: date
    open_tickets: int
    by_age: pd.DataFrame
    by_priority: pd.DataFrame
    oldest: pd.DataFrame


def _age_band(age_days: ir.FloatingValue) -> ir.StringValue:
    return ibis.cases(*[(age_days < upper, label) for label, _, upper in AGE_BANDS[:-1]], else_=AGE_BANDS[-1][0])


def _backlog_counts(f: ir.Table) -> dict[str, ir.Value]:
    return {
        "open_tickets": f.count(),
        "awaiting_first_response": f.count(where=f.first_response_hours.isnull()),
        "first_response_breached": f.count(where=f.is_first_response_breached),
        "resolution_breached": f.count(where=f.is_resolution_breached),
    }


_OLDEST_COLUMNS = ("ticket_id", "customer_id", "created_at", "priority_level", "channel", "category", "agent",
                   "subject", "age_days", "age_hours", "first_response_at", "is_first_response_breached",
                   "is_resolution_breached")


def backlog(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    policy: SlaPolicy = SlaPolicy(),
    top: int = 10,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
) -> Backlog:
    """The open tickets at the end of ``as_of``, by age band and by priority, with the ``top`` oldest
    (see :class:`Backlog`). ``as_of`` defaults to the day of the latest ticket event."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise ValueError(f"top must be a whole number of 0 or more, got {top!r}")
    view = _view(backend, as_of, None, policy, regions, segments)
    f = view.facts.filter(view.facts.is_open)
    f = f.mutate(age_band=_age_band(f.age_days))
    cells = backend.execute(f.group_by(["age_band", "priority_level"]).aggregate(
        **_backlog_counts(f), oldest_age_days=f.age_days.max()))
    counts = ["open_tickets", "awaiting_first_response", "first_response_breached", "resolution_breached"]
    for name in counts:
        cells[name] = cells[name].astype("Float64").fillna(0).astype("int64")
    cells["oldest_age_days"] = pd.to_numeric(cells["oldest_age_days"], errors="coerce").astype("float64")

    labels = [label for label, _, _ in AGE_BANDS]
    by_age = cells.groupby("age_band")[counts].sum().reindex(labels, fill_value=0)
    by_age = by_age.rename_axis("age_band").reset_index()
    total = int(by_age["open_tickets"].sum())
    by_age.insert(2, "share_of_open", by_age["open_tickets"] / total if total else 0.0)
    per = cells.groupby("priority_level").agg(**{name: (name, "sum") for name in counts},
                                              oldest_age_days=("oldest_age_days", "max"))
    by_priority = per.reindex(list(policy.priorities)).rename_axis("priority").reset_index()
    for name in counts:
        by_priority[name] = by_priority[name].fillna(0).astype("int64")
    oldest = backend.execute(f.order_by(["created_at", "ticket_id"]).limit(top).select(*_OLDEST_COLUMNS))
    return Backlog(view.as_of, total, by_age, by_priority, oldest.reset_index(drop=True))


# --- satisfaction and the voice of the customer -------------------------------------------------------------------


def csat_distribution(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    start: date | None = None,
    policy: SlaPolicy = SlaPolicy(),
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
) -> pd.DataFrame:
    """One row per rating 1..5 (all five, zeros included) of the tickets created from ``start`` to ``as_of``:
    rating, responses, share_of_responses (0 for every rating when there are none)."""
    view = _view(backend, as_of, start, policy, regions, segments)
    f = view.facts.filter(view.facts.csat.notnull())
    counts = backend.execute(f.group_by(rating=f.csat.cast("int64")).aggregate(responses=f.count()))
    frame = pd.DataFrame({"rating": range(1, 6)}).merge(counts.astype({"rating": "int64"}), on="rating", how="left")
    frame["responses"] = frame["responses"].astype("Float64").fillna(0).astype("int64")
    total = int(frame["responses"].sum())
    frame["share_of_responses"] = frame["responses"] / total if total else 0.0
    return frame


_COMPLAINT_BY = ("month", "category")


def complaints(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    start: date | None = None,
    by: str = "month",
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
) -> pd.DataFrame:
    """Complaints and compliments of the tickets created from ``start`` to ``as_of``: one row per month created
    (``by="month"``, every month from the first ticket, zeros included) or per category with tickets
    (``by="category"``, lower-cased, most complaints first): month|category, tickets, complaints, compliments,
    complaint_share, compliment_share."""
    if by not in _COMPLAINT_BY:
        raise ValueError(f"by must be 'month' or 'category', got {by!r}")
    view = _view(backend, as_of, start, SlaPolicy(), regions, segments)
    f = view.facts
    key = f.created_at.truncate("M") if by == "month" else _group_key(f, "category")
    frame = backend.execute(f.group_by(key.name(by)).aggregate(
        tickets=f.count(), complaints=f.count(where=f.is_complaint), compliments=f.count(where=f.is_compliment)))
    columns = [by, "tickets", "complaints", "compliments", "complaint_share", "compliment_share"]
    if by == "month":
        if frame.empty:
            frame = pd.DataFrame({"month": pd.Series(dtype="datetime64[ns]"), "tickets": [], "complaints": [],
                                  "compliments": []})
        else:
            frame["month"] = _as_period(frame["month"], "M")
            first = start or frame["month"].min().date()
            frame = _periods(first, view.as_of, "M").merge(frame, on="month", how="left")
    for name in ("tickets", "complaints", "compliments"):
        frame[name] = frame[name].astype("Float64").fillna(0).astype("int64")
    tickets = frame["tickets"].where(frame["tickets"] > 0)
    frame["complaint_share"] = (frame["complaints"] / tickets).astype("float64")
    frame["compliment_share"] = (frame["compliments"] / tickets).astype("float64")
    if by == "category":
        frame[by] = frame[by].astype(str)
        frame = frame.sort_values(["complaints", "compliments", "tickets", "category"],
                                  ascending=[False, False, False, True], kind="stable")
    return frame[columns].reset_index(drop=True)
