"""Fulfilment: on-time delivery, lead times and overdue shipments per carrier, region or month, and what a late
delivery does to support tickets and repeat purchases.

Inputs: ``shipments`` (one row per shipment; an order may ship in several), ``orders`` (for the customer and the
order time), ``customers`` (region), ``support_tickets``. Definitions, as of the end of day ``as_of``:

- A shipment *counts* from its order's ``ordered_at`` (its ``shipped_at`` when the order is not in ``orders``);
  shipments dated after ``as_of`` do not exist yet (nor do shipments with neither date). The period filter
  (``start``) and ``by="month"`` use that date too, so "March" means the shipments of the orders placed in March.
- ``shipped_at`` and ``delivered_at`` later than ``as_of`` are treated as not happened yet.
- *Delivered*: ``delivered_at`` on or before ``as_of``. *Late*: delivered on a calendar day after
  ``promised_date`` (the date of ``delivered_at`` after the promised date); *on time*: delivered on or before the
  promised date. Shipments without a promised date are neither. ``days_late`` = days from the promised date to the
  delivery date, 0 when on time.
- *Overdue*: not delivered and ``promised_date`` before ``as_of``: it should have arrived and has not.
- ``order_to_ship_hours`` = ``shipped_at`` − the order's ``ordered_at``, in hours; ``ship_to_deliver_days`` =
  ``delivered_at`` − ``shipped_at``, in days. Medians and 90th percentiles are continuous (linear interpolation:
  DuckDB ``quantile_cont``, PostgreSQL ``percentile_cont``, Spark ``percentile``).
- ``on_time_rate`` = on time ÷ (on time + late), among delivered shipments with a promised date; ``late_rate`` =
  1 − on_time_rate, with a 95% Wilson interval.

Late-delivery effect (:func:`late_delivery_effect`), among delivered shipments with a promised date, of known
customers, whose outcome window ends on or before ``as_of`` (a shipment delivered in the last 14 days cannot show
its tickets yet):

- *followed by a ticket*: the same customer created a support ticket in ``[delivered_at, delivered_at +
  ticket_window_days)``;
- *followed by a purchase*: the same customer placed a purchase (an order that is not a return, as in
  :mod:`crm_core.metrics`) in ``(delivered_at, delivered_at + repurchase_days]``.

Late against on-time shipments: the difference of the ticket rates with Newcombe's interval and the ratio of the
repurchase rates with the Katz log-ratio interval (both from :func:`crm_core.campaigns.proportion_lift`). A
customer's shipments are not independent (frequent buyers have many), so the intervals are somewhat too narrow;
lateness itself is a property of the carrier and the day, not of the customer, so the comparison is not confounded
by who the customer is.

Every aggregation is an Ibis expression run in the engine (DuckDB, PostgreSQL, Spark); only a row per group is
pulled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from crm_core.campaigns import MetricLift, proportion_lift, wilson_interval
from crm_core.metrics import Filters, _customer_scope, _is_return, _scoped, data_as_of

__all__ = [
    "FULFILMENT_BY",
    "FULFILMENT_HELP",
    "FULFILMENT_LABELS",
    "KPI_COLUMNS",
    "LateDeliveryEffect",
    "delivery_facts_expr",
    "fulfilment_kpis",
    "fulfilment_kpis_expr",
    "late_delivery_effect",
    "late_effect_exprs",
]

FULFILMENT_BY: tuple[str, ...] = ("carrier", "region", "month")
UNKNOWN = "Unknown"

KPI_COLUMNS: tuple[str, ...] = (
    "shipments", "delivered", "on_time", "late", "overdue", "on_time_rate", "late_rate", "late_rate_low",
    "late_rate_high", "avg_days_late", "median_order_to_ship_hours", "p90_order_to_ship_hours",
    "median_ship_to_deliver_days", "p90_ship_to_deliver_days",
)

FULFILMENT_LABELS: dict[str, str] = {
    "carrier": "Carrier",
    "region": "Region",
    "month": "Month",
    "shipments": "Shipments",
    "delivered": "Delivered",
    "on_time": "Delivered on time",
    "late": "Delivered late",
    "overdue": "Overdue",
    "on_time_rate": "On-time rate",
    "late_rate": "Late rate",
    "late_rate_low": "Late rate, 95% low",
    "late_rate_high": "Late rate, 95% high",
    "avg_days_late": "Average days late",
    "median_order_to_ship_hours": "Median order to ship (hours)",
    "p90_order_to_ship_hours": "90th percentile order to ship (hours)",
    "median_ship_to_deliver_days": "Median ship to delivery (days)",
    "p90_ship_to_deliver_days": "90th percentile ship to delivery (days)",
    "group": "Deliveries",
    "ticket_shipments": "Shipments (ticket window observed)",
    "with_ticket": "Followed by a ticket",
    "ticket_rate": "Ticket rate",
    "ticket_rate_low": "Ticket rate, 95% low",
    "ticket_rate_high": "Ticket rate, 95% high",
    "repurchase_shipments": "Shipments (repurchase window observed)",
    "repurchased": "Followed by a purchase",
    "repurchase_rate": "Repurchase rate",
    "repurchase_rate_low": "Repurchase rate, 95% low",
    "repurchase_rate_high": "Repurchase rate, 95% high",
}

FULFILMENT_HELP: dict[str, str] = {
    "shipment_id": "The shipment's identifier.",
    "order_id": "The order shipped.",
    "customer_id": "The customer who placed the order (blank for an anonymous order or an unknown order).",
    "region": "The customer's region.",
    "carrier": "The carrier that delivered the shipment.",
    "dated_at": "When the shipment counts: its order's order time, or its ship time when the order is unknown.",
    "ordered_at": "When the order was placed.",
    "promised_date": "The delivery date promised to the customer.",
    "shipped_at": "When the shipment left the warehouse (blank if not yet by the date).",
    "delivered_at": "When it was delivered (blank if not yet by the date).",
    "is_delivered": "Delivered on or before the date.",
    "is_late": ("Delivered on a day after the promised date (blank when not delivered yet or no date was "
                "promised)."),
    "is_overdue": "Not delivered, and the promised date is before the date: it should have arrived.",
    "days_late": "Days from the promised date to the delivery date; 0 when delivered on time.",
    "order_to_ship_hours": "Hours from the order to the shipment leaving the warehouse.",
    "ship_to_deliver_days": "Days from leaving the warehouse to delivery.",
    "shipping_cost": "What the shipment cost us.",
    "month": "The month the shipments' orders were placed.",
    "shipments": "Shipments of the orders placed in the period (an order may ship in several parcels).",
    "delivered": "Of those, shipments delivered by the date.",
    "on_time": "Delivered on or before the promised date.",
    "late": "Delivered on a day after the promised date.",
    "overdue": "Not delivered although the promised date has passed.",
    "on_time_rate": ("On-time deliveries ÷ deliveries with a promised date: delivered on or before the promised "
                     "date."),
    "late_rate": "Late deliveries ÷ deliveries with a promised date (1 − on-time rate).",
    "late_rate_low": "Lower end of the 95% Wilson interval of the late rate.",
    "late_rate_high": "Upper end of the 95% Wilson interval of the late rate.",
    "avg_days_late": "Mean days past the promised date, over late deliveries.",
    "median_order_to_ship_hours": "Median hours from the order to the shipment leaving the warehouse.",
    "p90_order_to_ship_hours": "9 in 10 shipments left the warehouse within this many hours of the order.",
    "median_ship_to_deliver_days": "Median days in transit, from leaving the warehouse to delivery.",
    "p90_ship_to_deliver_days": "9 in 10 deliveries took at most this many days in transit.",
    "group": "Late deliveries or on-time deliveries.",
    "ticket_shipments": ("Delivered shipments of known customers whose whole ticket window ended by the date (the "
                         "base of the ticket rate)."),
    "with_ticket": "Of those, shipments whose customer opened a support ticket within the window after delivery.",
    "ticket_rate": "Shipments followed by a ticket ÷ shipments with the window observed.",
    "ticket_rate_low": "Lower end of the 95% Wilson interval of the ticket rate.",
    "ticket_rate_high": "Upper end of the 95% Wilson interval of the ticket rate.",
    "repurchase_shipments": ("Delivered shipments of known customers whose whole repurchase window ended by the "
                             "date (the base of the repurchase rate)."),
    "repurchased": "Of those, shipments whose customer bought again (not a return) within the window after delivery.",
    "repurchase_rate": "Shipments followed by a purchase ÷ shipments with the window observed.",
    "repurchase_rate_low": "Lower end of the 95% Wilson interval of the repurchase rate.",
    "repurchase_rate_high": "Upper end of the 95% Wilson interval of the repurchase rate.",
}

_TABLES = ("customers", "orders", "shipments", "support_tickets")


# --- expressions -----------------------------------------------------------------------------------------------


def _end_of(day: date) -> datetime:
    """The first instant after the calendar day ``day``."""
    return datetime.combine(day + timedelta(days=1), time())


def _seconds_between(later: ir.TimestampValue, earlier: ir.TimestampValue) -> ir.FloatingValue:
    return (later.epoch_seconds() - earlier.epoch_seconds()).cast("float64")


def delivery_facts_expr(tables: Mapping[str, ir.Table], as_of: date) -> ir.Table:
    """One row per shipment dated on or before ``as_of``: shipment_id, order_id, customer_id, region, carrier,
    dated_at, ordered_at, promised_date, shipped_at, delivered_at, is_delivered, is_late, is_overdue, days_late,
    order_to_ship_hours, ship_to_deliver_days, shipping_cost (see ``FULFILMENT_HELP``).

    ``tables`` holds ``shipments``, ``orders`` and ``customers``. Times after ``as_of`` are blank.
    """
    shipments, orders, customers = tables["shipments"], tables["orders"], tables["customers"]
    end = _end_of(as_of)
    o = orders.select(_order_id=orders.order_id, customer_id=orders.customer_id, ordered_at=orders.ordered_at)
    j = shipments.left_join(o, shipments.order_id == o._order_id)
    c = customers.select(_customer_id=customers.customer_id, region=customers.region)
    j = j.left_join(c, j.customer_id == c._customer_id)
    dated_at = ibis.coalesce(j.ordered_at, j.shipped_at)
    j = j.filter(dated_at < end)
    no_ts = ibis.null("timestamp")
    shipped_at = (j.shipped_at < end).ifelse(j.shipped_at, no_ts)
    delivered_at = (j.delivered_at < end).ifelse(j.delivered_at, no_ts)
    f = j.select(
        shipment_id=j.shipment_id, order_id=j.order_id, customer_id=j.customer_id, region=j.region,
        carrier=j.carrier, dated_at=ibis.coalesce(j.ordered_at, j.shipped_at), ordered_at=j.ordered_at,
        promised_date=j.promised_date.cast("date"), shipped_at=shipped_at, delivered_at=delivered_at,
        shipping_cost=j.shipping_cost,
    )
    is_delivered = f.delivered_at.notnull()
    judged = is_delivered & f.promised_date.notnull()
    days = f.delivered_at.date().delta(f.promised_date, unit="day")
    return f.select(
        "shipment_id", "order_id", "customer_id", "region", "carrier", "dated_at", "ordered_at", "promised_date",
        "shipped_at", "delivered_at",
        is_delivered=is_delivered,
        is_late=judged.ifelse(days > 0, ibis.null("boolean")),
        is_overdue=~is_delivered & f.promised_date.notnull() & (f.promised_date < as_of),
        days_late=judged.ifelse(ibis.greatest(days, 0), ibis.null("int64")).cast("int64"),
        order_to_ship_hours=_seconds_between(f.shipped_at, f.ordered_at) / 3600.0,
        ship_to_deliver_days=_seconds_between(f.delivered_at, f.shipped_at) / 86400.0,
        shipping_cost=f.shipping_cost,
    )


def _facts_in_view(tables: Mapping[str, ir.Table], as_of: date, start: date | None, regions: tuple[str, ...],
                   segments: tuple[str, ...]) -> ir.Table:
    f = delivery_facts_expr(tables, as_of)
    if start is not None:
        f = f.filter(f.dated_at >= datetime.combine(start, time()))
    scope = _customer_scope(tables["customers"], tables["orders"], regions, segments, as_of)
    return _scoped(f, scope)


def _group_key(f: ir.Table, by: str | None) -> dict[str, ir.Value]:
    if by is None:
        return {}
    if by == "month":
        return {"month": f.dated_at.truncate("M")}
    return {by: f[by].fill_null(UNKNOWN)}


def fulfilment_kpis_expr(tables: Mapping[str, ir.Table], as_of: date, start: date | None = None,
                         regions: tuple[str, ...] = (), segments: tuple[str, ...] = (),
                         by: str | None = None) -> ir.Table:
    """One row (or one per ``by`` value): shipments, delivered, on_time, late, overdue, avg_days_late and the
    lead-time quantiles; the rates are computed from these counts by :func:`fulfilment_kpis`."""
    _check_by(by)
    f = _facts_in_view(tables, as_of, start, regions, segments)
    metrics = dict(
        shipments=f.count(),
        delivered=f.count(where=f.is_delivered),
        on_time=f.count(where=~f.is_late),  # null (not judged) stays out
        late=f.count(where=f.is_late),
        overdue=f.count(where=f.is_overdue),
        avg_days_late=f.days_late.mean(where=f.is_late),
        median_order_to_ship_hours=f.order_to_ship_hours.quantile(0.5),
        p90_order_to_ship_hours=f.order_to_ship_hours.quantile(0.9),
        median_ship_to_deliver_days=f.ship_to_deliver_days.quantile(0.5),
        p90_ship_to_deliver_days=f.ship_to_deliver_days.quantile(0.9),
    )
    key = _group_key(f, by)
    return f.group_by(**key).aggregate(**metrics) if key else f.aggregate(**metrics)


def _check_by(by: str | None) -> None:
    if by is not None and by not in FULFILMENT_BY:
        raise ValueError(f"Unknown grouping by={by!r}; choose one of {list(FULFILMENT_BY)} or None.")


# --- running ---------------------------------------------------------------------------------------------------


def _tables(backend: ibis.BaseBackend, names: tuple[str, ...] = _TABLES) -> dict[str, ir.Table]:
    present = set(backend.list_tables())
    missing = [name for name in names if name not in present]
    if missing:
        raise ValueError(f"The database has no {', '.join(repr(m) for m in missing)} table; import it (the store "
                         "creates every canonical table when opened with crm_core.store.connect).")
    return {name: backend.table(name) for name in names}


def _as_of(backend: ibis.BaseBackend, as_of: date | None) -> date:
    if as_of is None:
        return data_as_of(backend) or date.today()
    return as_of.date() if isinstance(as_of, datetime) else as_of


def _counts(frame: pd.DataFrame, names: Iterable[str]) -> None:
    # Spark compiles count(where=...) to SUM(CAST(...)), which is NULL on no rows.
    for name in names:
        frame[name] = pd.to_numeric(frame[name]).fillna(0).astype("int64")


def fulfilment_kpis(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    start: date | None = None,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
    by: str | None = None,
) -> pd.DataFrame:
    """One row of fulfilment KPIs for the shipments of the orders placed from ``start`` to ``as_of`` (or one row
    per carrier, region or month with ``by``): the columns of ``KPI_COLUMNS`` (see ``FULFILMENT_HELP``).

    ``as_of`` defaults to the date of the latest order. Carriers and regions are sorted by name (a blank one is
    ``"Unknown"``), months in time order (``month`` is the first day, datetime64). ``regions``/``segments`` keep
    the shipments of those customers, as the overview does. Rates are NaN where nothing was delivered.
    """
    as_of = _as_of(backend, as_of)
    chosen = Filters(start=start, end=as_of, regions=regions, segments=segments)
    expr = fulfilment_kpis_expr(_tables(backend, _TABLES[:3]), as_of, start, chosen.regions, chosen.segments, by)
    frame = backend.execute(expr)
    _counts(frame, ("shipments", "delivered", "on_time", "late", "overdue"))
    judged = frame["on_time"] + frame["late"]
    frame["on_time_rate"] = (frame["on_time"] / judged.where(judged > 0)).astype("float64")
    frame["late_rate"] = (frame["late"] / judged.where(judged > 0)).astype("float64")
    bounds = [wilson_interval(int(x), int(n)) if n > 0 else (float("nan"), float("nan"))
              for x, n in zip(frame["late"], judged)]
    frame["late_rate_low"] = [b[0] for b in bounds]
    frame["late_rate_high"] = [b[1] for b in bounds]
    for name in KPI_COLUMNS:
        if name not in ("shipments", "delivered", "on_time", "late", "overdue"):
            frame[name] = frame[name].astype("float64")
    if by == "month":
        frame["month"] = pd.to_datetime(frame["month"]).dt.to_period("M").dt.to_timestamp().astype("datetime64[ns]")
    if by is not None:
        frame = frame.sort_values(by, kind="stable").reset_index(drop=True)
    return frame[[*([by] if by else []), *KPI_COLUMNS]]


# --- what a late delivery does ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LateDeliveryEffect:
    """Late against on-time deliveries: how often the customer opened a ticket soon after, and bought again.

    The counts are of delivered shipments whose window was fully observed before ``as_of`` (each outcome has its
    own window, hence its own counts). ``ticket`` is the difference of ticket rates (late − on time, Newcombe
    interval); ``repurchase`` compares repurchase rates, its ``relative_lift`` + 1 being the ratio late ÷ on time
    (Katz interval); either is None when a group has no shipments, and ``note`` says why.
    """

    as_of: date
    ticket_window_days: int
    repurchase_days: int
    late_ticket_shipments: int
    late_with_ticket: int
    on_time_ticket_shipments: int
    on_time_with_ticket: int
    late_repurchase_shipments: int
    late_repurchased: int
    on_time_repurchase_shipments: int
    on_time_repurchased: int
    ticket: MetricLift | None
    repurchase: MetricLift | None
    note: str = ""

    @property
    def repurchase_ratio(self) -> float | None:
        """Repurchase rate after a late delivery ÷ after an on-time one."""
        r = self.repurchase
        return None if r is None or r.relative_lift is None else r.relative_lift + 1

    @property
    def repurchase_ratio_interval(self) -> tuple[float, float] | None:
        """The 95% Katz interval of :attr:`repurchase_ratio`."""
        r = self.repurchase
        if r is None or r.relative_ci_low is None:
            return None
        return r.relative_ci_low + 1, r.relative_ci_high + 1

    def frame(self) -> pd.DataFrame:
        """Two rows (group "late", "on time"): ticket_shipments, with_ticket, ticket_rate with its Wilson
        interval, repurchase_shipments, repurchased, repurchase_rate with its Wilson interval."""
        rows = []
        for group, counts in (("late", (self.late_ticket_shipments, self.late_with_ticket,
                                         self.late_repurchase_shipments, self.late_repurchased)),
                              ("on time", (self.on_time_ticket_shipments, self.on_time_with_ticket,
                                           self.on_time_repurchase_shipments, self.on_time_repurchased))):
            n_t, x_t, n_r, x_r = counts
            row = {"group": group, "ticket_shipments": n_t, "with_ticket": x_t}
            row.update(_rate("ticket_rate", x_t, n_t))
            row.update({"repurchase_shipments": n_r, "repurchased": x_r})
            row.update(_rate("repurchase_rate", x_r, n_r))
            rows.append(row)
        return pd.DataFrame(rows)


def _rate(name: str, x: int, n: int) -> dict[str, float]:
    if n <= 0:
        nan = float("nan")
        return {name: nan, f"{name}_low": nan, f"{name}_high": nan}
    low, high = wilson_interval(x, n)
    return {name: x / n, f"{name}_low": low, f"{name}_high": high}


def _check_days(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of days of at least 1, got {value!r}")


def late_effect_exprs(tables: Mapping[str, ir.Table], as_of: date, ticket_window_days: int = 14,
                      repurchase_days: int = 180, start: date | None = None, regions: tuple[str, ...] = (),
                      segments: tuple[str, ...] = (),
                      ticket_categories: tuple[str, ...] = ()) -> dict[str, ir.Table]:
    """Two expressions, ``"ticket"`` and ``"repurchase"``, each one row per is_late value (true, false):
    shipments (delivered, known customer, window observed by ``as_of``) and hits (followed by the outcome)."""
    f = _facts_in_view(tables, as_of, start, regions, segments)
    f = f.filter(f.is_late.notnull(), f.customer_id.notnull()).select(
        "shipment_id", "customer_id", "delivered_at", "is_late")
    end = _end_of(as_of)

    tickets = tables["support_tickets"]
    if ticket_categories:
        wanted = [c.strip().lower() for c in ticket_categories]
        tickets = tickets.filter(tickets.category.strip().lower().isin(wanted))
    k = tickets.select(_customer=tickets.customer_id, _at=tickets.created_at)
    d = f.filter(f.delivered_at < end - timedelta(days=ticket_window_days))
    d = d.left_join(k, [d.customer_id == k._customer, k._at >= d.delivered_at,
                        k._at < d.delivered_at + ibis.interval(days=ticket_window_days)])

    orders = tables["orders"]
    purchases = orders.filter(~_is_return(orders), orders.customer_id.notnull())
    p = purchases.select(_customer=purchases.customer_id, _at=purchases.ordered_at)
    r = f.filter(f.delivered_at < end - timedelta(days=repurchase_days))
    r = r.left_join(p, [r.customer_id == p._customer, p._at > r.delivered_at,
                        p._at <= r.delivered_at + ibis.interval(days=repurchase_days)])

    def per_group(joined: ir.Table) -> ir.Table:
        # one row per shipment (how many outcomes followed it), then one per is_late value
        per = joined.group_by(["shipment_id", "is_late"]).aggregate(_n=joined._at.count())
        return per.group_by("is_late").aggregate(shipments=per.count(), hits=per.count(where=per._n > 0))

    return {"ticket": per_group(d), "repurchase": per_group(r)}


def late_delivery_effect(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    ticket_window_days: int = 14,
    repurchase_days: int = 180,
    start: date | None = None,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
    ticket_categories: Iterable[str] = (),
) -> LateDeliveryEffect:
    """Late against on-time deliveries (one result for the whole view): the share followed by a support ticket of
    the same customer within ``ticket_window_days`` of delivery, and the share followed by another purchase within
    ``repurchase_days``; differences and ratios with 95% intervals.

    Only deliveries whose window ended by ``as_of`` count (``start`` keeps the shipments of orders placed from
    then). ``ticket_categories`` (compared trimmed and lower-case) restricts the tickets, e.g. to
    ``("delivery",)``; all tickets by default.
    """
    _check_days("ticket_window_days", ticket_window_days)
    _check_days("repurchase_days", repurchase_days)
    as_of = _as_of(backend, as_of)
    chosen = Filters(start=start, end=as_of, regions=regions, segments=segments)
    categories = (ticket_categories,) if isinstance(ticket_categories, str) else tuple(ticket_categories)
    exprs = late_effect_exprs(_tables(backend), as_of, ticket_window_days, repurchase_days, start, chosen.regions,
                              chosen.segments, categories)
    counts = {}
    for name, expr in exprs.items():
        frame = backend.execute(expr)
        _counts(frame, ("shipments", "hits"))
        for is_late, n, x in zip(frame["is_late"], frame["shipments"], frame["hits"]):
            counts[(name, bool(is_late))] = (int(n), int(x))
    notes = []

    def compare(name: str, metric: str, window: int) -> tuple[MetricLift | None, tuple[int, int, int, int]]:
        n_l, x_l = counts.get((name, True), (0, 0))
        n_o, x_o = counts.get((name, False), (0, 0))
        if n_l == 0 or n_o == 0:
            which = "late" if n_l == 0 else "on-time"
            notes.append(f"no {which} deliveries with {window} days observed before {as_of}, so the {metric} "
                         "cannot be compared")
            return None, (n_l, x_l, n_o, x_o)
        return proportion_lift(x_l, n_l, x_o, n_o, metric=metric), (n_l, x_l, n_o, x_o)

    ticket, (ntl, xtl, nto, xto) = compare("ticket", "ticket_rate", ticket_window_days)
    repurchase, (nrl, xrl, nro, xro) = compare("repurchase", "repurchase_rate", repurchase_days)
    return LateDeliveryEffect(as_of, ticket_window_days, repurchase_days, ntl, xtl, nto, xto, nrl, xrl, nro, xro,
                              ticket, repurchase, "; ".join(notes))
