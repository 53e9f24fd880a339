"""Overview KPIs and the monthly trend, as Ibis expressions that run on any SQL engine Ibis supports.

Every public function takes an Ibis backend (``store.ibis_backend(con)`` for the embedded DuckDB file, or an
``ibis.postgres`` / ``ibis.pyspark`` connection), never a raw connection and never SQL text. The work is done in the
engine: each query returns one row (KPIs) or one row per month (trend), and only that small result reaches pandas.
The expressions are built by private ``_*_expr`` functions that take Ibis tables, so they can be compiled for another
dialect without a server (see ``tests/test_metrics.py``).

Conventions shared by every metric:

- An order belongs to a day by the calendar date of ``ordered_at``; periods are inclusive date ranges.
- An order is a *return* when ``is_return`` is true or its ``amount`` is negative (``is_return`` may be null in
  imported data). A *purchase* is an order that is not a return.
- Net revenue is the sum of ``amount`` with returns included (they are negative) and anonymous orders included.
- A customer is *acquired* on ``signup_date``, or on the date of their first order (of any kind) when
  ``signup_date`` is missing; a customer with neither is never counted as acquired.
- The segment filter keeps customers whose RFM segment (:mod:`crm_core.segments`) *as of the last day of the
  period* is one of the chosen segments; the previous period is measured on the same customers, so the deltas
  compare like with like.
- The region filter keeps customers whose ``region`` equals one of the chosen regions (case-sensitive); orders and
  tickets follow their customer, so anonymous orders and orders of unknown customers drop out of a filtered view.
- ``support_tickets`` is optional: when it is absent or empty, ticket KPIs are reported as unavailable with a reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from crm_core.segments import segment_of_customers_expr

__all__ = [
    "KPI_HELP",
    "KPI_KEYS",
    "KPI_LABELS",
    "KPI_UNITS",
    "TREND_LABELS",
    "Filters",
    "Kpi",
    "Overview",
    "Period",
    "current_and_previous",
    "data_as_of",
    "monthly_trend",
    "overview",
    "overview_frame",
]

KPI_KEYS: tuple[str, ...] = (
    "customers",
    "new_customers",
    "active_customers",
    "revenue",
    "orders",
    "aov",
    "repeat_rate",
    "retention_rate",
    "return_rate",
    "open_tickets",
)

KPI_LABELS: dict[str, str] = {
    "customers": "Customers",
    "new_customers": "New customers",
    "active_customers": "Active customers",
    "revenue": "Net revenue",
    "orders": "Orders",
    "aov": "Average order value",
    "repeat_rate": "Repeat rate",
    "retention_rate": "Retention rate",
    "return_rate": "Return rate",
    "open_tickets": "Open tickets",
}

# 'count' is a whole number, 'currency' is in the data's own currency, 'pct' is a fraction between 0 and 1.
KPI_UNITS: dict[str, str] = {
    "customers": "count",
    "new_customers": "count",
    "active_customers": "count",
    "revenue": "currency",
    "orders": "count",
    "aov": "currency",
    "repeat_rate": "pct",
    "retention_rate": "pct",
    "return_rate": "pct",
    "open_tickets": "count",
}

KPI_HELP: dict[str, str] = {
    "customers": (
        "Customers acquired on or before the last day of the period: by their signup date, or by their first "
        "order when the signup date is missing."
    ),
    "new_customers": (
        "Customers acquired during the period: signup date in the period, or first order in the period when the "
        "signup date is missing."
    ),
    "active_customers": (
        "Customers with at least one purchase (not a return) in the period. Anonymous orders are not counted."
    ),
    "revenue": (
        "Net revenue: the sum of all order amounts in the period, with returns subtracted and anonymous orders "
        "included."
    ),
    "orders": "Purchases in the period; returns (flagged as a return or with a negative amount) are not counted.",
    "aov": "Average order value: net revenue divided by the number of purchases in the period.",
    "repeat_rate": (
        "Share of active customers who have made at least two purchases up to the end of the period, counting "
        "this period's; e.g. 0.4 means 4 in 10 active customers had bought before."
    ),
    "retention_rate": "Share of the customers active in the previous period who bought again in this period.",
    "return_rate": (
        "Share of gross sales refunded: the value of returns (negative amounts) divided by the value of sales "
        "(positive amounts) in the period."
    ),
    "open_tickets": (
        "Support tickets created on or before the last day of the period and not yet resolved at the end of that "
        "day."
    ),
}

TREND_LABELS: dict[str, str] = {
    "month": "Month",
    **{key: KPI_LABELS[key] for key in ("revenue", "orders", "active_customers", "new_customers", "aov",
                                         "open_tickets")},
}

_REQUIRED_TABLES = ("customers", "orders")
_TICKETS = "support_tickets"


# --- periods and filters ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """An inclusive range of calendar days, ``start`` to ``end``."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"Period starts on {self.start} after it ends on {self.end}; swap the dates.")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length that ends the day before this one starts."""
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end)


def current_and_previous(as_of: date, days: int) -> tuple[Period, Period]:
    """The ``days`` days ending on ``as_of`` (inclusive) and the ``days`` days immediately before.

    >>> current, previous = current_and_previous(date(2024, 3, 31), 30)
    >>> current.start, current.end, previous.start, previous.end
    (datetime.date(2024, 3, 2), datetime.date(2024, 3, 31), datetime.date(2024, 2, 1), datetime.date(2024, 3, 1))
    """
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a whole number of at least 1, got {days!r}")
    current = Period(as_of - timedelta(days=days - 1), as_of)
    return current, current.previous()


@dataclass(frozen=True)
class Filters:
    """What the dashboard's sidebar selects: an inclusive date range and customer regions.

    ``start``/``end`` are calendar dates (either may be open). ``regions`` are compared to ``customers.region``
    with case-sensitive equality; an empty tuple means all regions. ``segments`` are RFM segment names
    (:data:`crm_core.segments.SEGMENTS`), evaluated as of the end of the period.
    """

    start: date | None = None
    end: date | None = None
    regions: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "regions", _as_regions(self.regions))
        object.__setattr__(self, "segments", _as_regions(self.segments))
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"Filter start {self.start} is after end {self.end}; swap the dates.")


def _as_regions(regions: str | Iterable[str] | None) -> tuple[str, ...]:
    if regions is None:
        return ()
    if isinstance(regions, str):
        return (regions,)
    return tuple(regions)


# --- results ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpi:
    """One KPI for the current period with its value in the previous period.

    ``delta`` is ``value - previous``; ``delta_pct`` is ``delta / |previous|`` (None when previous is 0 or None).
    Rates (unit ``pct``) are fractions between 0 and 1, so their ``delta`` is in fraction points.
    """

    key: str
    label: str
    value: float | int | None
    previous: float | int | None
    delta: float | int | None
    delta_pct: float | None
    unit: str
    help: str
    available: bool = True
    reason: str | None = None


@dataclass(frozen=True)
class Overview:
    """The overview KPIs: one :class:`Kpi` per key of ``KPI_KEYS``, in that order."""

    period: Period
    previous_period: Period
    regions: tuple[str, ...]
    kpis: tuple[Kpi, ...]
    segments: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> Kpi:
        for kpi in self.kpis:
            if kpi.key == key:
                return kpi
        raise KeyError(f"no KPI {key!r}; choose one of: {', '.join(k.key for k in self.kpis)}")


def _kpi(key: str, value, previous) -> Kpi:
    delta = value - previous if value is not None and previous is not None else None
    delta_pct = delta / abs(previous) if delta is not None and previous else None
    return Kpi(key, KPI_LABELS[key], value, previous, delta, delta_pct, KPI_UNITS[key], KPI_HELP[key])


def _unavailable(key: str, reason: str) -> Kpi:
    return Kpi(key, KPI_LABELS[key], None, None, None, None, KPI_UNITS[key], KPI_HELP[key], False, reason)


# --- expression building blocks (take Ibis tables, return Ibis expressions) ------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time())


def _in_period(ts: ir.TimestampValue, period: Period) -> ir.BooleanValue:
    """``ts`` falls on a calendar day of ``period`` (a half-open timestamp range, so indexes still apply)."""
    return (ts >= _day_start(period.start)) & (ts < _day_start(period.end + timedelta(days=1)))


def _by_end_of(ts: ir.TimestampValue, day: date) -> ir.BooleanValue:
    """``ts`` is on or before the calendar day ``day``."""
    return ts < _day_start(day + timedelta(days=1))


def _is_return(orders: ir.Table) -> ir.BooleanValue:
    """True for returns: ``is_return`` true (null counts as false) or a negative amount."""
    negative = orders.amount.fill_null(0) < 0
    if "is_return" in orders.columns:
        return orders.is_return.fill_null(False) | negative
    return negative


def _region_customers(customers: ir.Table, regions: tuple[str, ...]) -> ir.Table:
    if "region" not in customers.columns:
        raise ValueError("customers has no 'region' column, so it cannot be filtered by region; "
                         "import customers with a region or clear the region filter.")
    return customers.filter(customers.region.isin(regions))


def _customer_scope(customers: ir.Table, orders: ir.Table, regions: tuple[str, ...], segments: tuple[str, ...],
                    as_of: date) -> ir.Table | None:
    """The customers in view (region and RFM segment as of ``as_of``), or None when nothing is filtered."""
    scope = _region_customers(customers, regions) if regions else None
    if segments:
        chosen = segment_of_customers_expr(orders, as_of, segments)
        base = customers if scope is None else scope
        scope = base.filter(base.customer_id.isin(chosen.customer_id))
    return scope


def _scoped(table: ir.Table, scope: ir.Table | None) -> ir.Table:
    """``table`` (anything with a ``customer_id``) restricted to the customers in ``scope``; all rows when None."""
    if scope is None:
        return table
    return table.filter(table.customer_id.isin(scope.customer_id))


def _acquisitions(customers: ir.Table, orders: ir.Table) -> ir.Table:
    """One row per customer: customer_id, acquired_on (signup_date, else the date of the first order)."""
    first = (
        orders.filter(orders.customer_id.notnull())
        .group_by("customer_id")
        .aggregate(first_ordered_at=orders.ordered_at.min())
    )
    joined = customers.left_join(first, "customer_id")
    first_on = joined.first_ordered_at.date()
    acquired_on = ibis.coalesce(joined.signup_date, first_on) if "signup_date" in customers.columns else first_on
    return joined.select(customer_id=joined.customer_id, acquired_on=acquired_on)


def _order_totals_expr(orders: ir.Table, current: Period, previous: Period) -> ir.Table:
    """One row: net revenue, purchases, gross sales and refunds (negative) for the current and previous period."""
    recent = orders.filter(_in_period(orders.ordered_at, Period(previous.start, current.end)))
    ts, amount, purchase = recent.ordered_at, recent.amount, ~_is_return(recent)
    metrics = {}
    for suffix, period in (("", current), ("_prev", previous)):
        inside = _in_period(ts, period)
        metrics[f"revenue{suffix}"] = amount.sum(where=inside)
        metrics[f"orders{suffix}"] = recent.count(where=inside & purchase)
        metrics[f"gross_sales{suffix}"] = amount.sum(where=inside & (amount > 0))
        metrics[f"refunds{suffix}"] = amount.sum(where=inside & (amount < 0))
    return recent.aggregate(**metrics)


def _customer_activity_expr(orders: ir.Table, current: Period, previous: Period) -> ir.Table:
    """One row: active, repeat and retained customers for the current and previous period.

    Built from one row per customer with their purchase counts in the current period, the previous period, the
    period before that, and in all history up to each period's end.
    """
    before_previous = previous.previous()
    purchases = orders.filter(
        ~_is_return(orders), orders.customer_id.notnull(), _by_end_of(orders.ordered_at, current.end)
    )
    ts = purchases.ordered_at
    per_customer = purchases.group_by("customer_id").aggregate(
        n_current=purchases.count(where=_in_period(ts, current)),
        n_previous=purchases.count(where=_in_period(ts, previous)),
        n_before_previous=purchases.count(where=_in_period(ts, before_previous)),
        n_to_current_end=purchases.count(),
        n_to_previous_end=purchases.count(where=_by_end_of(ts, previous.end)),
    )
    c = per_customer
    return c.aggregate(
        active_customers=c.count(where=c.n_current > 0),
        active_customers_prev=c.count(where=c.n_previous > 0),
        repeat_customers=c.count(where=(c.n_current > 0) & (c.n_to_current_end >= 2)),
        repeat_customers_prev=c.count(where=(c.n_previous > 0) & (c.n_to_previous_end >= 2)),
        retained_customers=c.count(where=(c.n_current > 0) & (c.n_previous > 0)),
        retained_customers_prev=c.count(where=(c.n_previous > 0) & (c.n_before_previous > 0)),
        active_before_previous=c.count(where=c.n_before_previous > 0),
    )


def _customer_base_expr(customers: ir.Table, orders: ir.Table, current: Period, previous: Period) -> ir.Table:
    """One row: customers acquired by each period's end, and customers acquired within each period."""
    a = _acquisitions(customers, orders)
    on = a.acquired_on
    return a.aggregate(
        customers=a.customer_id.nunique(where=on <= current.end),
        customers_prev=a.customer_id.nunique(where=on <= previous.end),
        new_customers=a.customer_id.nunique(where=(on >= current.start) & (on <= current.end)),
        new_customers_prev=a.customer_id.nunique(where=(on >= previous.start) & (on <= previous.end)),
    )


def _is_open_at_end_of(tickets: ir.Table, day: date) -> ir.BooleanValue:
    end_of_day = _day_start(day + timedelta(days=1))
    return (tickets.created_at < end_of_day) & (tickets.resolved_at.isnull() | (tickets.resolved_at >= end_of_day))


def _open_tickets_expr(tickets: ir.Table, current: Period, previous: Period) -> ir.Table:
    """One row: tickets open at the end of the current and of the previous period."""
    return tickets.aggregate(
        open_tickets=tickets.count(where=_is_open_at_end_of(tickets, current.end)),
        open_tickets_prev=tickets.count(where=_is_open_at_end_of(tickets, previous.end)),
    )


def _overview_exprs(
    tables: Mapping[str, ir.Table], current: Period, previous: Period, regions: tuple[str, ...] = (),
    segments: tuple[str, ...] = (),
) -> dict[str, ir.Table]:
    """The one-row expressions behind :func:`overview`, by name; ``support_tickets`` is used when in ``tables``."""
    customers, orders = tables["customers"], tables["orders"]
    scope = _customer_scope(customers, orders, regions, segments, current.end)
    scoped_orders = _scoped(orders, scope)
    scoped_customers = customers if scope is None else scope
    exprs = {
        "order_totals": _order_totals_expr(scoped_orders, current, previous),
        "customer_activity": _customer_activity_expr(scoped_orders, current, previous),
        "customer_base": _customer_base_expr(scoped_customers, orders, current, previous),
    }
    if _TICKETS in tables:
        exprs["open_tickets"] = _open_tickets_expr(_scoped(tables[_TICKETS], scope), current, previous)
    return exprs


def _monthly_orders_expr(orders: ir.Table, start: date, end: date) -> ir.Table:
    """One row per month with orders in ``start``..``end``: revenue, orders, active_customers."""
    inside = orders.filter(_in_period(orders.ordered_at, Period(start, end)))
    purchase = ~_is_return(inside)
    return inside.group_by(month=inside.ordered_at.truncate("M")).aggregate(
        revenue=inside.amount.sum(),
        orders=inside.count(where=purchase),
        active_customers=inside.customer_id.nunique(where=purchase),
    )


def _monthly_new_customers_expr(customers: ir.Table, orders: ir.Table, start: date, end: date) -> ir.Table:
    """One row per month with acquisitions in ``start``..``end``: new_customers."""
    a = _acquisitions(customers, orders)
    a = a.filter(a.acquired_on >= start, a.acquired_on <= end)
    return a.group_by(month=a.acquired_on.truncate("M")).aggregate(new_customers=a.customer_id.nunique())


def _monthly_tickets_expr(tickets: ir.Table, end: date) -> ir.Table:
    """Tickets created by the end of ``end``, counted by month created and month resolved (null: not by ``end``).

    A ticket is open at the end of month M when it was created in M or earlier and not resolved in M or earlier,
    so these counts give every month's open tickets without a row per month per ticket.
    """
    end_of_day = _day_start(end + timedelta(days=1))
    created = tickets.filter(tickets.created_at < end_of_day)
    resolved_at = (created.resolved_at < end_of_day).ifelse(created.resolved_at, ibis.null("timestamp"))
    return created.group_by(
        created_month=created.created_at.truncate("M"), resolved_month=resolved_at.truncate("M")
    ).aggregate(n_tickets=created.count())


# --- running the expressions -----------------------------------------------------------------------------------


def _tables(backend: ibis.BaseBackend) -> dict[str, ir.Table]:
    """The canonical tables the metrics read; a clear error when a required one is missing."""
    present = set(backend.list_tables())
    for name in _REQUIRED_TABLES:
        if name not in present:
            raise ValueError(f"The database has no {name!r} table; import {name} before looking at metrics.")
    return {name: backend.table(name) for name in (*_REQUIRED_TABLES, _TICKETS) if name in present}


def _tickets_unavailable(backend: ibis.BaseBackend, tables: Mapping[str, ir.Table]) -> str | None:
    """Why ticket metrics cannot be shown (no table, or no rows), or None when they can."""
    if _TICKETS not in tables:
        return "There is no support_tickets table in this database; import support tickets to see this."
    if _count(backend.execute(tables[_TICKETS].limit(1).count())) == 0:
        return "No support tickets have been imported yet; import support tickets to see this."
    return None


def _one_row(backend: ibis.BaseBackend, expr: ir.Table) -> dict:
    frame = backend.execute(expr)
    return frame.iloc[0].to_dict()


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _count(value) -> int:
    # Some engines (Spark) compile ``count(where=...)`` to ``SUM(CAST(... AS BIGINT))``, which is NULL on no rows.
    return 0 if _is_missing(value) else int(value)


def _amount(value) -> float:
    return 0.0 if _is_missing(value) else float(value)


def _ratio(numerator, denominator) -> float | None:
    if _is_missing(denominator) or denominator == 0 or _is_missing(numerator):
        return None
    return float(numerator) / float(denominator)


def data_as_of(backend: ibis.BaseBackend) -> date | None:
    """The calendar date of the latest order (the default "as of" date); None when there are no orders."""
    orders = _tables(backend)["orders"]
    latest = backend.execute(orders.ordered_at.max())
    if _is_missing(latest):
        return None
    return pd.Timestamp(latest).date()


def overview(
    backend: ibis.BaseBackend,
    *,
    as_of: date | None = None,
    days: int = 30,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
) -> Overview:
    """The overview KPIs: one :class:`Kpi` per ``KPI_KEYS`` entry for the ``days`` days ending on ``as_of``.

    ``as_of`` defaults to :func:`data_as_of` (today when there are no orders). Each KPI carries its value in the
    previous period of the same length; ``retention_rate``'s previous value compares the previous period with the
    one before it. Ticket KPIs are unavailable, with a reason, when ``support_tickets`` is absent or empty.
    """
    chosen = Filters(regions=regions, segments=segments)
    regions, segments = chosen.regions, chosen.segments
    if as_of is None:
        as_of = data_as_of(backend) or date.today()
    current, previous = current_and_previous(as_of, days)
    tables = _tables(backend)
    tickets_reason = _tickets_unavailable(backend, tables)
    if tickets_reason:
        tables.pop(_TICKETS, None)
    rows = {name: _one_row(backend, expr) for name, expr in _overview_exprs(tables, current, previous, regions,
                                                                                    segments).items()}
    totals, activity, base = rows["order_totals"], rows["customer_activity"], rows["customer_base"]

    def values(suffix: str) -> dict[str, float | int | None]:
        revenue, orders = _amount(totals[f"revenue{suffix}"]), _count(totals[f"orders{suffix}"])
        active = _count(activity[f"active_customers{suffix}"])
        active_before = _count(activity["active_customers_prev" if suffix == "" else "active_before_previous"])
        return {
            "customers": _count(base[f"customers{suffix}"]),
            "new_customers": _count(base[f"new_customers{suffix}"]),
            "active_customers": active,
            "revenue": revenue,
            "orders": orders,
            "aov": _ratio(revenue, orders),
            "repeat_rate": _ratio(_count(activity[f"repeat_customers{suffix}"]), active),
            "retention_rate": _ratio(_count(activity[f"retained_customers{suffix}"]), active_before),
            "return_rate": _ratio(-_amount(totals[f"refunds{suffix}"]), _amount(totals[f"gross_sales{suffix}"])),
        }

    now, before = values(""), values("_prev")
    kpis = [_kpi(key, now[key], before[key]) for key in now]
    if tickets_reason:
        kpis.append(_unavailable("open_tickets", tickets_reason))
    else:
        tickets = rows["open_tickets"]
        kpis.append(_kpi("open_tickets", _count(tickets["open_tickets"]), _count(tickets["open_tickets_prev"])))
    return Overview(current, previous, regions, tuple(kpis), segments)


def overview_frame(result: Overview) -> pd.DataFrame:
    """One row per KPI: key, label, value, previous, delta, delta_pct, unit, period_start, period_end, help,
    available, reason (numbers keep their Python type, so counts stay whole in JSON)."""
    rows = [
        {
            "key": k.key,
            "label": k.label,
            "value": k.value,
            "previous": k.previous,
            "delta": k.delta,
            "delta_pct": k.delta_pct,
            "unit": k.unit,
            "period_start": result.period.start,
            "period_end": result.period.end,
            "help": k.help,
            "available": k.available,
            "reason": k.reason,
        }
        for k in result.kpis
    ]
    return pd.DataFrame(rows, dtype=object)


_TREND_COLUMNS = ("month", "revenue", "orders", "active_customers", "new_customers", "aov")
_TREND_DTYPES = {"month": "datetime64[ns]", "revenue": "float64", "aov": "float64"}  # the rest are int64


def monthly_trend(
    backend: ibis.BaseBackend,
    *,
    start: date | None = None,
    end: date | None = None,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
) -> pd.DataFrame:
    """One row per calendar month from ``start`` to ``end``: month, revenue, orders, active_customers,
    new_customers, aov [, open_tickets].

    ``month`` is the first day of the month (datetime64). The range defaults to the first and last order dates; the
    first and last months only count the days inside the range. Months without orders appear with zeros (``aov``
    is NaN there). ``open_tickets`` counts tickets open at the end of each month (at ``end`` for the last month)
    and is present only when support tickets have been imported. No orders and no range: an empty frame.
    """
    filters = Filters(start, end, regions, segments)
    tables = _tables(backend)
    customers, orders = tables["customers"], tables["orders"]
    start, end = filters.start, filters.end
    if start is None or end is None:
        first, last = _order_date_range(backend, orders)
        start = start or (min(first, end) if first and end else first) or end
        end = end or (max(last, start) if last and start else last) or start
    with_tickets = _tickets_unavailable(backend, tables) is None
    columns = [*_TREND_COLUMNS, *(["open_tickets"] if with_tickets else [])]
    if start is None or end is None:
        return pd.DataFrame({name: pd.Series(dtype=_TREND_DTYPES.get(name, "int64")) for name in columns})
    filters = Filters(start, end, filters.regions, filters.segments)

    months = pd.DataFrame({"month": pd.date_range(_month_start(start), _month_start(end), freq="MS")})
    scope = _customer_scope(customers, orders, filters.regions, filters.segments, end)
    scoped_orders = _scoped(orders, scope)
    scoped_customers = customers if scope is None else scope
    frames = [
        backend.execute(_monthly_orders_expr(scoped_orders, start, end)),
        backend.execute(_monthly_new_customers_expr(scoped_customers, orders, start, end)),
    ]
    trend = months
    for frame in frames:
        frame["month"] = _as_month(frame["month"])
        trend = trend.merge(frame, on="month", how="left")
    trend["revenue"] = trend["revenue"].astype("float64").fillna(0.0)
    for name in ("orders", "active_customers", "new_customers"):
        trend[name] = trend[name].astype("Float64").fillna(0).astype("int64")
    trend["aov"] = (trend["revenue"] / trend["orders"].where(trend["orders"] > 0)).astype("float64")
    if with_tickets:
        tickets = _scoped(tables[_TICKETS], scope)
        trend["open_tickets"] = _open_at_month_ends(backend.execute(_monthly_tickets_expr(tickets, end)), months)
    return trend[columns]


def _order_date_range(backend: ibis.BaseBackend, orders: ir.Table) -> tuple[date | None, date | None]:
    """The calendar dates of the first and the last order (None, None without orders)."""
    bounds = backend.execute(orders.aggregate(first=orders.ordered_at.min(), last=orders.ordered_at.max()))
    first, last = bounds["first"].iloc[0], bounds["last"].iloc[0]
    return (None if _is_missing(first) else pd.Timestamp(first).date(),
            None if _is_missing(last) else pd.Timestamp(last).date())


def _month_start(day: date) -> pd.Timestamp:
    return pd.Timestamp(day.year, day.month, 1)


def _as_month(values: pd.Series) -> pd.Series:
    """Engine month values (date or timestamp, by engine) → first-of-month datetime64[ns]."""
    return pd.to_datetime(values).dt.to_period("M").dt.to_timestamp().astype("datetime64[ns]")


def _open_at_month_ends(counts: pd.DataFrame, months: pd.DataFrame) -> pd.Series:
    """Open tickets at each month's end from ticket counts by (created_month, resolved_month)."""
    if counts.empty:
        return pd.Series(0, index=months.index, dtype="int64")
    counts = counts.assign(created_month=_as_month(counts["created_month"]),
                           resolved_month=_as_month(counts["resolved_month"]))
    pairs = months.merge(counts, how="cross")
    is_open = (pairs["created_month"] <= pairs["month"]) & ~(pairs["resolved_month"] <= pairs["month"])
    open_by_month = pairs["n_tickets"].where(is_open, 0).groupby(pairs["month"]).sum()
    return months["month"].map(open_by_month).fillna(0).astype("int64")
