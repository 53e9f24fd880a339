"""Customer value and profitability: gross margin, cost to serve, profit per customer, the whale curve, value tiers,
influence (referrals) and potential value.

Definitions (a window runs from the start of day ``start`` to the end of day ``as_of``; no ``start`` = all history):

- ``revenue``: the customer's net revenue in the window, the sum of ``orders.amount`` with returns (negative) in it.
  ``orders`` counts purchases (an order that is not a return, as in :mod:`crm_core.metrics`).
- ``gross_margin``: Σ quantity × (unit_price − unit_cost) over the window's ``order_items`` joined to ``products``;
  return lines carry negative quantities and reduce it. ``unit_price`` is the price charged (the line's
  ``discount`` column is informational and not subtracted again). A line whose product has no ``unit_cost``, and an
  order without lines (margin from its ``amount``), is *estimated* at ``CostRates.default_margin_rate``; the
  revenue concerned is ``estimated_margin_revenue`` and the customer is flagged ``is_margin_estimated``.
- ``ticket_cost``: support tickets created in the window × the cost of a ticket in its channel
  (``CostRates.ticket_cost_by_channel``, channel compared lower-case and trimmed; ``default_ticket_cost`` otherwise).
- ``shipping_cost``: what shipping the window's orders cost us: Σ ``shipments.shipping_cost`` of their shipments
  (dated by the order) when ``CostRates.use_shipments`` and any shipment has a cost; else ``orders.shipping_cost``.
  A missing cost counts ``CostRates.default_shipping_cost`` (per shipment, or per purchase on the orders route).
- ``campaign_cost``: campaign contacts dated in the window (``contacted_at``, else the campaign's ``start_date``):
  ``contact_cost`` when given; else nothing for a contact not sent (``is_sent`` false, or a ``control`` row when
  ``is_sent`` is missing), else ``CostRates.contact_cost_by_channel`` of the campaign's channel (or
  ``default_contact_cost``). Campaign fixed costs (creative, agency) are not allocated to customers.
- ``cost_to_serve`` = ticket_cost + shipping_cost + campaign_cost; ``profit`` = gross_margin − cost_to_serve.
- ``referred_customers``: customers (signed up by ``as_of`` or with no sign-up date) whose ``referred_by`` is this
  customer; ``referred_revenue``: their revenue in the window. Referrals are counted over every customer, also when
  the rows are scoped to a region or segment.

A customer has a row when they have an order, a ticket or a contact in the window. Anonymous orders are left out.
The aggregation is one Ibis expression (it compiles for DuckDB, PostgreSQL and Spark); only the per-customer result
is pulled, and the tiers, the whale curve and the summaries are computed on that frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from crm_core.metrics import Filters, _customer_scope, _is_return, _scoped

__all__ = [
    "DEFAULT_TIERS",
    "POTENTIAL_QUADRANTS",
    "VALUE_COLUMNS",
    "VALUE_HELP",
    "VALUE_LABELS",
    "CostRates",
    "PotentialQuadrant",
    "Tier",
    "ValueTotals",
    "WhaleSummary",
    "add_potential",
    "assign_tiers",
    "customer_value",
    "customer_value_expr",
    "influencers",
    "profit_bridge",
    "quadrant_summary",
    "tier_summary",
    "value_totals",
    "whale_curve",
    "whale_summary",
]


# --- rates ------------------------------------------------------------------------------------------------------


def _ticket_costs() -> dict[str, float]:
    return {"phone": 6.0, "email": 4.0, "chat": 3.0, "web": 3.0, "social": 3.0}


def _contact_costs() -> dict[str, float]:
    return {"email": 0.03, "sms": 0.06, "direct mail": 0.95, "phone": 2.5, "social": 0.10}


@dataclass(frozen=True)
class CostRates:
    """What serving a customer costs, in the data's currency. Every default is a round ballpark; set your own.

    - ``ticket_cost_by_channel``: handling cost of one support ticket by ticket channel (lower-case keys); a phone
      call costs more agent time than a chat. ``default_ticket_cost`` is used for any other channel.
    - ``use_shipments``: take shipping costs from ``shipments.shipping_cost`` when any shipment has one; otherwise
      (or when False) from ``orders.shipping_cost``. ``default_shipping_cost`` replaces a missing cost (per
      shipment, or per purchase on the orders route); 0 means "unknown costs nothing".
    - ``contact_cost_by_channel``: cost of one sent campaign contact by campaign channel, used when
      ``campaign_contacts.contact_cost`` is missing; ``default_contact_cost`` for any other channel.
    - ``default_margin_rate``: gross margin as a share of revenue, used ONLY where unit costs are missing (a
      product without ``unit_cost``, or an order without lines); the revenue so estimated is reported.
    """

    ticket_cost_by_channel: dict[str, float] = field(default_factory=_ticket_costs)
    default_ticket_cost: float = 4.0
    use_shipments: bool = True
    default_shipping_cost: float = 0.0
    contact_cost_by_channel: dict[str, float] = field(default_factory=_contact_costs)
    default_contact_cost: float = 0.05
    default_margin_rate: float = 0.40

    def __post_init__(self) -> None:
        for name in ("ticket_cost_by_channel", "contact_cost_by_channel"):
            costs = {str(k).strip().lower(): float(v) for k, v in dict(getattr(self, name)).items()}
            bad = {k: v for k, v in costs.items() if not v >= 0}
            if bad:
                raise ValueError(f"CostRates.{name}: costs must be 0 or more, got {bad}")
            object.__setattr__(self, name, costs)
        for name in ("default_ticket_cost", "default_shipping_cost", "default_contact_cost"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"CostRates.{name} must be 0 or more, got {getattr(self, name)!r}")
        if not 0 <= float(self.default_margin_rate) <= 1:
            raise ValueError(f"CostRates.default_margin_rate must be between 0 and 1, got {self.default_margin_rate!r}")

    def __hash__(self) -> int:  # the dicts are copied and never changed, so the rates can key a cache
        return hash((tuple(sorted(self.ticket_cost_by_channel.items())), self.default_ticket_cost,
                     self.use_shipments, self.default_shipping_cost,
                     tuple(sorted(self.contact_cost_by_channel.items())), self.default_contact_cost,
                     self.default_margin_rate))


# --- tiers and the potential matrix, as data -------------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    """A value tier: customers ranked by profit whose share of customers ranked above them is below ``top_share``.

    ``top_share`` is cumulative (Platinum 0.05 = the top 5%, Gold 0.20 = the next 15% ...). ``top_share=None`` marks
    the tier of customers with negative profit, whatever their rank; it must be the last tier.
    """

    name: str
    top_share: float | None
    service_level: str


DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("Platinum", 0.05, "Dedicated account manager; proactive contact; free premium delivery."),
    Tier("Gold", 0.20, "Priority support queue and early access to offers."),
    Tier("Silver", 0.50, "Standard service in every channel."),
    Tier("Bronze", 1.00, "Self-service and digital channels first; automated campaigns."),
    Tier("Loss-making", None, "Review the cost to serve: move support to cheaper channels, stop costly mailings, "
                              "set minimum order values."),
)


@dataclass(frozen=True)
class PotentialQuadrant:
    """A cell of the current-profit × potential-value matrix and what to do with the customers in it."""

    name: str
    is_high_profit: bool
    is_high_potential: bool
    action: str


POTENTIAL_QUADRANTS: tuple[PotentialQuadrant, ...] = (
    PotentialQuadrant("Retain", True, True, "Valuable now and later: protect the relationship, best service."),
    PotentialQuadrant("Grow", False, True, "Worth more later than now: develop with cross-sell and upgrades."),
    PotentialQuadrant("Maintain", True, False, "Profitable now, little growth ahead: keep service efficient."),
    PotentialQuadrant("Reduce cost to serve", False, False,
                      "Low profit and low potential: digital self-service, fewer costly contacts."),
)


# --- labels and help -------------------------------------------------------------------------------------------

VALUE_COLUMNS: tuple[str, ...] = (
    "customer_id", "revenue", "orders", "gross_margin", "estimated_margin_revenue", "is_margin_estimated",
    "tickets", "ticket_cost", "shipping_cost", "contacts", "campaign_cost", "cost_to_serve", "profit",
    "referred_customers", "referred_revenue", "value_tier",
)

VALUE_LABELS: dict[str, str] = {
    "customer_id": "Customer",
    "revenue": "Net revenue",
    "orders": "Orders",
    "gross_margin": "Gross margin",
    "estimated_margin_revenue": "Revenue with estimated margin",
    "is_margin_estimated": "Margin estimated",
    "tickets": "Support tickets",
    "ticket_cost": "Support cost",
    "shipping_cost": "Shipping cost",
    "contacts": "Campaign contacts",
    "campaign_cost": "Campaign contact cost",
    "cost_to_serve": "Cost to serve",
    "profit": "Profit",
    "referred_customers": "Customers referred",
    "referred_revenue": "Revenue from referrals",
    "value_tier": "Value tier",
    "potential_value": "Potential value (predicted CLV)",
    "potential_quadrant": "Profit × potential",
    "rank": "Rank by profit",
    "share_of_customers": "Share of customers",
    "cumulative_profit": "Cumulative profit",
    "cumulative_profit_share": "Cumulative share of total profit",
}

VALUE_HELP: dict[str, str] = {
    "customer_id": "The customer's identifier.",
    "revenue": "Net revenue in the period: the sum of order amounts with returns subtracted.",
    "orders": "Purchases in the period; returns are not counted.",
    "gross_margin": ("Revenue minus the cost of the goods: quantity × (price − unit cost) over the order lines, "
                     "returns subtracted. Where a unit cost or the order lines are missing, the margin is estimated "
                     "at the default margin rate."),
    "estimated_margin_revenue": "Revenue whose margin was estimated at the default rate (no unit cost or no lines).",
    "is_margin_estimated": "Part of this customer's margin was estimated at the default rate.",
    "tickets": "Support tickets the customer opened in the period.",
    "ticket_cost": "Support tickets in the period × the handling cost of a ticket in its channel.",
    "shipping_cost": "What shipping the customer's orders in the period cost us.",
    "contacts": "Campaign contacts (including held-out control rows) dated in the period.",
    "campaign_cost": "Cost of the campaign messages sent to the customer in the period (fixed costs not allocated).",
    "cost_to_serve": "Support cost + shipping cost + campaign contact cost.",
    "profit": "Gross margin minus cost to serve.",
    "referred_customers": "Customers who name this customer as their referrer.",
    "referred_revenue": "Net revenue in the period of the customers this customer referred.",
    "value_tier": ("Tier by profit rank: Platinum the top 5% of customers, Gold the next 15%, Silver the next 30%, "
                   "Bronze the rest with profit of 0 or more; customers with negative profit are Loss-making."),
    "potential_value": "Predicted customer lifetime value from the CLV model.",
    "potential_quadrant": ("Current profit and potential value each compared with the median customer: Retain "
                           "(both high), Grow (potential high), Maintain (profit high), Reduce cost to serve "
                           "(both low)."),
    "rank": "Position when customers are sorted from the most to the least profitable (1 = most profitable).",
    "share_of_customers": "Share of all customers ranked at or above this position.",
    "cumulative_profit": "Profit of the customers ranked at or above this position, added up.",
    "cumulative_profit_share": ("Cumulative profit as a share of total profit; above 100% means the customers "
                                "below this point destroy profit."),
}


# --- expression building blocks --------------------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time())


def _in_window(ts: ir.TimestampValue, start: date | None, as_of: date) -> ir.BooleanValue:
    inside = ts < _day_start(as_of + timedelta(days=1))
    return inside if start is None else inside & (ts >= _day_start(start))


def _channel_cost(channel: ir.StringValue, costs: Mapping[str, float], default: float) -> ir.FloatingValue:
    key = channel.strip().lower()
    cases = [(key == name, ibis.literal(float(cost))) for name, cost in sorted(costs.items())]
    fallback = ibis.literal(float(default))
    return ibis.cases(*cases, else_=fallback) if cases else fallback


_PARTS = ("revenue", "orders", "gross_margin", "estimated_margin_revenue", "n_estimated", "tickets", "ticket_cost",
          "shipping_cost", "contacts", "campaign_cost")
_COUNTS = {"orders", "n_estimated", "tickets", "contacts"}


def _part(table: ir.Table, **values) -> ir.Table:
    """``table`` as rows of the union below: customer_id and every column of ``_PARTS`` (zero when not given)."""
    columns = {}
    for name in _PARTS:
        kind = "int64" if name in _COUNTS else "float64"
        value = values.get(name)
        columns[name] = (ibis.literal(0, kind) if value is None else value).cast(kind)
    return table.select(customer_id=table.customer_id, **columns)


def _order_margins(orders: ir.Table, items: ir.Table, products: ir.Table, rates: CostRates) -> ir.Table:
    """One row per order of ``orders``: customer_id, amount, is_purchase, gross_margin, estimated_margin_revenue,
    n_estimated (lines, or 1 for an order without lines, whose margin is estimated)."""
    items = items.filter(items.order_id.isin(orders.order_id))
    costed = items.left_join(products.select("product_id", "unit_cost"), "product_id")
    line_revenue = costed.quantity.fill_null(0) * costed.unit_price.fill_null(0)
    known = costed.unit_cost.notnull()
    per_order = costed.group_by("order_id").aggregate(
        known_margin=(costed.quantity.fill_null(0) * (costed.unit_price.fill_null(0) - costed.unit_cost)).sum(
            where=known),
        estimated_line_revenue=line_revenue.sum(where=~known),
        n_estimated_lines=costed.count(where=~known),
    )
    o = orders.mutate(_purchase=~_is_return(orders)).left_join(per_order, "order_id")
    has_lines = o.n_estimated_lines.notnull()
    amount = o.amount.fill_null(0)
    estimated_revenue = has_lines.ifelse(o.estimated_line_revenue.fill_null(0), amount)
    rate = ibis.literal(float(rates.default_margin_rate))
    return o.select(
        customer_id=o.customer_id,
        amount=amount,
        is_purchase=o._purchase,
        gross_margin=o.known_margin.fill_null(0) + estimated_revenue * rate,
        estimated_margin_revenue=estimated_revenue,
        n_estimated=has_lines.ifelse(o.n_estimated_lines, 1),
    )


def customer_value_expr(
    tables: Mapping[str, ir.Table],
    as_of: date,
    start: date | None = None,
    rates: CostRates = CostRates(),
    regions: tuple[str, ...] = (),
    segments: tuple[str, ...] = (),
    shipping_from_shipments: bool = True,
) -> ir.Table:
    """One row per customer with an order, ticket or contact in the window: every column of :data:`VALUE_COLUMNS`
    except ``value_tier`` and ``is_margin_estimated`` (the expression has ``n_estimated`` instead).

    ``tables`` holds the canonical tables by name: customers, orders, order_items, products, support_tickets,
    shipments, campaigns and campaign_contacts. ``shipping_from_shipments`` picks the shipping route (the caller
    decides from the data; see :func:`customer_value`).
    """
    customers, orders = tables["customers"], tables["orders"]
    scope = _customer_scope(customers, orders, regions, segments, as_of)
    window_orders = orders.filter(orders.customer_id.notnull(), _in_window(orders.ordered_at, start, as_of))
    margins = _order_margins(_scoped(window_orders, scope), tables["order_items"], tables["products"], rates)
    parts = [_part(margins, revenue=margins.amount, orders=margins.is_purchase.ifelse(1, 0),
                   gross_margin=margins.gross_margin, estimated_margin_revenue=margins.estimated_margin_revenue,
                   n_estimated=margins.n_estimated)]

    tickets = tables["support_tickets"]
    tickets = _scoped(tickets.filter(tickets.customer_id.notnull(), _in_window(tickets.created_at, start, as_of)),
                      scope)
    parts.append(_part(tickets, tickets=ibis.literal(1),
                       ticket_cost=_channel_cost(tickets.channel, rates.ticket_cost_by_channel,
                                                 rates.default_ticket_cost)))

    default_shipping = ibis.literal(float(rates.default_shipping_cost))
    scoped_orders = _scoped(window_orders, scope)
    if shipping_from_shipments:
        shipments = tables["shipments"]
        shipped = shipments.inner_join(scoped_orders.select("order_id", "customer_id"), "order_id")
        parts.append(_part(shipped, shipping_cost=shipped.shipping_cost.fill_null(default_shipping)))
    else:
        o = scoped_orders
        missing = _is_return(o).ifelse(ibis.literal(0.0), default_shipping)
        parts.append(_part(o, shipping_cost=o.shipping_cost.fill_null(missing)))

    contacts, campaigns = tables["campaign_contacts"], tables["campaigns"]
    c = contacts.left_join(campaigns.select("campaign_id", campaign_channel="channel",
                                            campaign_start="start_date"), "campaign_id")
    dated_at = ibis.coalesce(c.contacted_at, c.campaign_start.cast("timestamp"))
    c = _scoped(c.filter(c.customer_id.notnull(), _in_window(dated_at, start, as_of)), scope)
    is_control = c.contact_group.strip().lower().fill_null("") == "control"
    is_sent = c.is_sent.fill_null(~is_control)
    by_channel = _channel_cost(c.campaign_channel.fill_null(""), rates.contact_cost_by_channel,
                               rates.default_contact_cost)
    parts.append(_part(c, contacts=ibis.literal(1),
                       campaign_cost=ibis.coalesce(c.contact_cost, is_sent.ifelse(by_channel, 0.0))))

    union = ibis.union(*parts, distinct=False)
    per = union.group_by("customer_id").aggregate(**{name: union[name].sum() for name in _PARTS})
    per = per.mutate(cost_to_serve=per.ticket_cost + per.shipping_cost + per.campaign_cost)
    per = per.mutate(profit=per.gross_margin - per.cost_to_serve)

    referrals = _referrals_expr(customers, orders, start, as_of)
    joined = per.left_join(referrals, per.customer_id == referrals.referrer_id)
    return joined.select(
        "customer_id", "revenue", "orders", "gross_margin", "estimated_margin_revenue", "n_estimated", "tickets",
        "ticket_cost", "shipping_cost", "contacts", "campaign_cost", "cost_to_serve", "profit",
        referred_customers=joined.referred_customers.fill_null(0),
        referred_revenue=joined.referred_revenue.fill_null(0.0),
    )


def _referrals_expr(customers: ir.Table, orders: ir.Table, start: date | None, as_of: date) -> ir.Table:
    """One row per referrer: referrer_id, referred_customers, referred_revenue (their net revenue in the window)."""
    referred = customers.filter(customers.referred_by.notnull(),
                                customers.signup_date.isnull() | (customers.signup_date <= as_of))
    window = orders.filter(orders.customer_id.notnull(), _in_window(orders.ordered_at, start, as_of))
    revenue = window.group_by("customer_id").aggregate(window_revenue=window.amount.fill_null(0).sum())
    r = referred.select("customer_id", "referred_by").left_join(revenue, "customer_id")
    return r.group_by(referrer_id=r.referred_by).aggregate(
        referred_customers=r.count(),
        referred_revenue=r.window_revenue.fill_null(0).sum(),
    )


_VALUE_TABLES = ("customers", "orders", "order_items", "products", "support_tickets", "shipments", "campaigns",
                 "campaign_contacts")


def _value_tables(backend: ibis.BaseBackend) -> dict[str, ir.Table]:
    present = set(backend.list_tables())
    for name in ("customers", "orders"):
        if name not in present:
            raise ValueError(f"The database has no {name!r} table; import {name} before looking at customer value.")
    missing = [name for name in _VALUE_TABLES if name not in present]
    if missing:
        raise ValueError(f"The database has no {', '.join(repr(m) for m in missing)} table; the store creates every "
                         "canonical table, so open it with crm_core.store.connect.")
    return {name: backend.table(name) for name in _VALUE_TABLES}


def _has_shipment_costs(backend: ibis.BaseBackend, shipments: ir.Table) -> bool:
    costed = shipments.filter(shipments.shipping_cost.notnull()).limit(1).count()
    return int(backend.execute(costed) or 0) > 0


def customer_value(
    backend: ibis.BaseBackend,
    as_of: date,
    start: date | None = None,
    rates: CostRates = CostRates(),
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
    tiers: tuple[Tier, ...] = DEFAULT_TIERS,
) -> pd.DataFrame:
    """One row per customer with an order, a support ticket or a campaign contact from ``start`` to ``as_of``:
    the columns of :data:`VALUE_COLUMNS`, most profitable first (ties by customer_id).

    ``regions``/``segments`` scope the customers as the overview does (:class:`crm_core.metrics.Filters`).
    Shipping comes from ``shipments`` when ``rates.use_shipments`` and any shipment has a cost, else from
    ``orders.shipping_cost``. ``value_tier`` follows ``tiers`` (:func:`assign_tiers`).
    """
    chosen = Filters(start=start, end=as_of, regions=regions, segments=segments)
    tables = _value_tables(backend)
    from_shipments = rates.use_shipments and _has_shipment_costs(backend, tables["shipments"])
    expr = customer_value_expr(tables, as_of, start, rates, chosen.regions, chosen.segments, from_shipments)
    # On DuckDB through Arrow, not Ibis's pandas conversion: one row per customer is millions of rows at scale, and
    # Ibis's per-column conversion cost a third as much as the query itself (bench/README.md). Other engines hand
    # Ibis Python objects (PostgreSQL's numerics as Decimal), which its pandas conversion handles.
    on_duckdb = getattr(backend, "name", None) == "duckdb"
    if on_duckdb:  # sorted there too: DuckDB orders strings by code point, as Python does, on both cores
        frame = backend.to_pyarrow(expr.order_by([ibis.desc(expr.profit.round(6)), expr.customer_id])).to_pandas()
    else:
        frame = backend.execute(expr)
    for name in ("orders", "tickets", "contacts", "referred_customers", "n_estimated"):
        frame[name] = frame[name].astype("int64")
    for name in ("revenue", "gross_margin", "estimated_margin_revenue", "ticket_cost", "shipping_cost",
                 "campaign_cost", "cost_to_serve", "profit", "referred_revenue"):
        frame[name] = frame[name].astype("float64")
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame["is_margin_estimated"] = frame.pop("n_estimated") > 0
    # Ranked on profit to 1e-6: the same amounts summed in another order (another engine, more threads) differ in
    # the last bits, which must not reorder customers of equal profit or move one across a tier boundary.
    frame["_rank_profit"] = frame["profit"].round(6)
    if not on_duckdb:
        frame = frame.sort_values(["_rank_profit", "customer_id"], ascending=[False, True], kind="stable")
        frame = frame.reset_index(drop=True)
    frame["value_tier"] = assign_tiers(frame.pop("_rank_profit"), tiers)
    return frame[list(VALUE_COLUMNS)]


# --- tiers -----------------------------------------------------------------------------------------------------


def _check_tiers(tiers: tuple[Tier, ...]) -> None:
    ranked = [t for t in tiers if t.top_share is not None]
    if not ranked or any(t.top_share is None for t in tiers[:len(ranked)]):
        raise ValueError("tiers: list the ranked tiers (with top_share) first and the loss-making tier (top_share "
                         "None) last")
    shares = [t.top_share for t in ranked]
    if shares != sorted(shares) or shares[-1] < 1 or shares[0] <= 0:
        raise ValueError(f"tiers: top_share must increase and the last ranked tier must reach 1.0, got {shares}")
    if len(tiers) - len(ranked) > 1:
        raise ValueError("tiers: at most one tier may have top_share None (the loss-making tier)")


def assign_tiers(profit: pd.Series, tiers: tuple[Tier, ...] = DEFAULT_TIERS) -> pd.Series:
    """The tier of each customer from their profit: rank customers by profit (ties share the better rank); a
    customer is in the first tier whose ``top_share`` is above the share of customers ranked strictly above them;
    negative profit goes to the ``top_share=None`` tier when there is one.

    Ten customers: 0/10 ranked above the first (< 5%: Platinum), 1/10 above the second (< 20%: Gold), 2-4/10 above
    the next three (< 50%: Silver), the rest Bronze, and the negative one Loss-making:

    >>> assign_tiers(pd.Series([9.0, 8, 7, 6, 5, 4, 3, 2, 1, -1])).tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['Platinum', 'Gold', 'Silver', 'Silver', 'Silver', 'Bronze', 'Bronze', 'Bronze', 'Bronze',
     'Loss-making']
    """
    _check_tiers(tiers)
    n = len(profit)
    ranked = [t for t in tiers if t.top_share is not None]
    above = (profit.rank(method="min", ascending=False) - 1) / max(n, 1)
    names = np.array([t.name for t in ranked], dtype=object)
    bounds = np.array([t.top_share for t in ranked], dtype=float)
    index = np.searchsorted(bounds, above.to_numpy(dtype=float), side="right").clip(0, len(ranked) - 1)
    result = pd.Series(names[index], index=profit.index, dtype=object)
    loss = [t for t in tiers if t.top_share is None]
    if loss:
        result[profit < 0] = loss[0].name
    return result


def tier_summary(values: pd.DataFrame, tiers: tuple[Tier, ...] = DEFAULT_TIERS) -> pd.DataFrame:
    """One row per tier (in ``tiers`` order, empty tiers included): value_tier, customers, share_of_customers,
    revenue, profit, share_of_profit, avg_profit, avg_cost_to_serve, service_level.

    ``share_of_profit`` is the tier's profit over total profit (NaN when total profit is not positive).
    """
    _need(values, ("value_tier", "revenue", "profit", "cost_to_serve"))
    grouped = values.groupby("value_tier", sort=False).agg(
        customers=("profit", "size"), revenue=("revenue", "sum"), profit=("profit", "sum"),
        avg_profit=("profit", "mean"), avg_cost_to_serve=("cost_to_serve", "mean"))
    rows = pd.DataFrame({"value_tier": [t.name for t in tiers], "service_level": [t.service_level for t in tiers]})
    out = rows.merge(grouped, left_on="value_tier", right_index=True, how="left")
    out["customers"] = out["customers"].fillna(0).astype("int64")
    out[["revenue", "profit"]] = out[["revenue", "profit"]].fillna(0.0)
    total_profit = float(values["profit"].sum())
    out["share_of_customers"] = out["customers"] / len(values) if len(values) else np.nan
    out["share_of_profit"] = out["profit"] / total_profit if total_profit > 0 else np.nan
    return out[["value_tier", "customers", "share_of_customers", "revenue", "profit", "share_of_profit",
                "avg_profit", "avg_cost_to_serve", "service_level"]]


# --- the whale curve -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WhaleSummary:
    """What the whale curve says, in numbers.

    ``peak_profit`` is the highest cumulative profit along the curve, reached with the ``customers_at_peak`` most
    profitable customers; ``peak_share_of_total`` is it over ``total_profit`` (2.0 = the best customers earn twice
    the company's profit and the rest destroy the difference; None when total profit is not positive).
    ``profit_destroyed`` is the (positive) sum of the losses of the ``loss_making_customers``.
    ``top_20_share_of_profit`` is the profit of the top 20% of customers over total profit.
    """

    customers: int
    total_profit: float
    peak_profit: float
    peak_share_of_total: float | None
    customers_at_peak: int
    share_of_customers_at_peak: float
    loss_making_customers: int
    loss_making_share: float
    profit_destroyed: float
    top_20_share_of_profit: float | None


def whale_curve(values: pd.DataFrame) -> pd.DataFrame:
    """One row per customer, most profitable first: rank (1 = most profitable), customer_id, profit,
    share_of_customers, cumulative_profit, cumulative_profit_share (NaN when total profit is not positive)."""
    _need(values, ("customer_id", "profit"))
    ordered = values[["customer_id", "profit"]].assign(_rank_profit=values["profit"].round(6))  # as customer_value
    ordered = ordered.sort_values(["_rank_profit", "customer_id"], ascending=[False, True], kind="stable")
    ordered = ordered.drop(columns="_rank_profit").reset_index(drop=True)
    n = len(ordered)
    ordered.insert(0, "rank", np.arange(1, n + 1, dtype=np.int64))
    ordered["share_of_customers"] = ordered["rank"] / n if n else pd.Series(dtype="float64")
    ordered["cumulative_profit"] = ordered["profit"].cumsum()
    total = float(ordered["profit"].sum())
    ordered["cumulative_profit_share"] = ordered["cumulative_profit"] / total if total > 0 else np.nan
    return ordered


def whale_summary(values: pd.DataFrame) -> WhaleSummary:
    """The peak of the whale curve, total profit and the customers who destroy profit (see :class:`WhaleSummary`).

    An empty frame gives zeros.
    """
    curve = whale_curve(values)
    n = len(curve)
    if n == 0:
        return WhaleSummary(0, 0.0, 0.0, None, 0, 0.0, 0, 0.0, 0.0, None)
    total = float(curve["profit"].sum())
    peak_at = int(curve["cumulative_profit"].to_numpy().argmax())  # first position of the maximum
    peak = float(curve["cumulative_profit"].iloc[peak_at])
    losses = curve["profit"] < 0
    top_n = math.ceil(0.2 * n)
    top_20 = float(curve["profit"].iloc[:top_n].sum())
    return WhaleSummary(
        customers=n,
        total_profit=total,
        peak_profit=peak,
        peak_share_of_total=peak / total if total > 0 else None,
        customers_at_peak=peak_at + 1,
        share_of_customers_at_peak=(peak_at + 1) / n,
        loss_making_customers=int(losses.sum()),
        loss_making_share=float(losses.mean()),
        profit_destroyed=float(-curve["profit"][losses].sum()),
        top_20_share_of_profit=top_20 / total if total > 0 else None,
    )


# --- totals, influence, potential ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValueTotals:
    """Totals over the customers of a :func:`customer_value` frame (for KPI cards).

    ``gross_margin_rate`` is gross margin over revenue (None without revenue); ``estimated_margin_share`` is the
    share of revenue whose margin was estimated at the default rate (0 when every unit cost was known).
    """

    customers: int
    revenue: float
    gross_margin: float
    gross_margin_rate: float | None
    ticket_cost: float
    shipping_cost: float
    campaign_cost: float
    cost_to_serve: float
    profit: float
    loss_making_customers: int
    estimated_margin_share: float | None


def value_totals(values: pd.DataFrame) -> ValueTotals:
    """Sums over ``values`` (one row per customer): revenue, margin, each cost, profit, loss-makers."""
    _need(values, ("revenue", "gross_margin", "ticket_cost", "shipping_cost", "campaign_cost", "cost_to_serve",
                   "profit", "estimated_margin_revenue"))
    s = values[["revenue", "gross_margin", "ticket_cost", "shipping_cost", "campaign_cost", "cost_to_serve",
                "profit", "estimated_margin_revenue"]].sum()
    revenue = float(s["revenue"])
    return ValueTotals(
        customers=len(values),
        revenue=revenue,
        gross_margin=float(s["gross_margin"]),
        gross_margin_rate=float(s["gross_margin"]) / revenue if revenue else None,
        ticket_cost=float(s["ticket_cost"]),
        shipping_cost=float(s["shipping_cost"]),
        campaign_cost=float(s["campaign_cost"]),
        cost_to_serve=float(s["cost_to_serve"]),
        profit=float(s["profit"]),
        loss_making_customers=int((values["profit"] < 0).sum()),
        estimated_margin_share=float(s["estimated_margin_revenue"]) / revenue if revenue else None,
    )


def profit_bridge(totals: ValueTotals) -> pd.DataFrame:
    """One row per step from net revenue to profit (for a waterfall): step, amount, measure ("absolute" for the
    start, "relative" for a cost, which is negative, and "total" for the subtotals gross margin and profit)."""
    return pd.DataFrame({
        "step": ["Net revenue", "Cost of goods", "Gross margin", "Support", "Shipping", "Campaign contacts",
                 "Profit"],
        "amount": [totals.revenue, totals.gross_margin - totals.revenue, totals.gross_margin, -totals.ticket_cost,
                   -totals.shipping_cost, -totals.campaign_cost, totals.profit],
        "measure": ["absolute", "relative", "total", "relative", "relative", "relative", "total"],
    })


def influencers(values: pd.DataFrame, top: int = 20) -> pd.DataFrame:
    """The ``top`` customers whose referrals brought the most revenue (only those with referred revenue above 0):
    customer_id, referred_customers, referred_revenue, revenue, profit, value_tier; ties by referred_customers,
    then customer_id."""
    _need(values, ("customer_id", "referred_customers", "referred_revenue", "revenue", "profit"))
    columns = ["customer_id", "referred_customers", "referred_revenue", "revenue", "profit"]
    if "value_tier" in values.columns:
        columns.append("value_tier")
    chosen = values.loc[values["referred_revenue"] > 0, columns]
    chosen = chosen.sort_values(["referred_revenue", "referred_customers", "customer_id"],
                                ascending=[False, False, True], kind="stable")
    return chosen.head(top).reset_index(drop=True)


def add_potential(
    values: pd.DataFrame,
    clv_frame: pd.DataFrame,
    profit_threshold: float | None = None,
    potential_threshold: float | None = None,
    quadrants: tuple[PotentialQuadrant, ...] = POTENTIAL_QUADRANTS,
) -> pd.DataFrame:
    """``values`` with potential_value (the ``clv`` of ``clv_frame``, joined on customer_id), is_high_profit,
    is_high_potential and potential_quadrant; one row per row of ``values``.

    "High" means at or above the threshold, by default the median over the customers of ``values`` (profit) and
    over those with a prediction (potential). Customers without a prediction get no quadrant (None).
    """
    _need(values, ("customer_id", "profit"))
    for name in ("customer_id", "clv"):
        if name not in clv_frame.columns:
            raise ValueError(f"Required column {name} missing from the CLV frame (it needs customer_id and clv)")
    if clv_frame["customer_id"].duplicated().any():
        raise ValueError("The CLV frame has more than one row for some customer_id; give one prediction per customer")
    clv = clv_frame[["customer_id", "clv"]].rename(columns={"clv": "potential_value"})
    clv = clv.assign(customer_id=clv["customer_id"].astype(str))
    out = values.drop(columns=[c for c in ("potential_value", "is_high_profit", "is_high_potential",
                                           "potential_quadrant") if c in values.columns])
    out = out.merge(clv, on="customer_id", how="left", validate="one_to_one")
    out["potential_value"] = out["potential_value"].astype("float64")
    p_cut = float(out["profit"].median()) if profit_threshold is None else float(profit_threshold)
    v_cut = float(out["potential_value"].median()) if potential_threshold is None else float(potential_threshold)
    has = out["potential_value"].notna()
    out["is_high_profit"] = out["profit"] >= p_cut
    out["is_high_potential"] = out["potential_value"] >= v_cut
    names = {(q.is_high_profit, q.is_high_potential): q.name for q in quadrants}
    out["potential_quadrant"] = [names.get((hp, hv)) if h else None
                                 for hp, hv, h in zip(out["is_high_profit"], out["is_high_potential"], has)]
    return out


def quadrant_summary(frame: pd.DataFrame, quadrants: tuple[PotentialQuadrant, ...] = POTENTIAL_QUADRANTS
                     ) -> pd.DataFrame:
    """One row per quadrant of an :func:`add_potential` frame, in ``quadrants`` order: potential_quadrant,
    customers, share_of_customers (of those with a quadrant), profit, potential_value (sums) and the action."""
    _need(frame, ("potential_quadrant", "profit", "potential_value"))
    known = frame[frame["potential_quadrant"].notna()]
    per = known.groupby("potential_quadrant").agg(customers=("profit", "size"), profit=("profit", "sum"),
                                                   potential_value=("potential_value", "sum"))
    out = pd.DataFrame({"potential_quadrant": [q.name for q in quadrants], "action": [q.action for q in quadrants]})
    out = out.merge(per, left_on="potential_quadrant", right_index=True, how="left")
    out["customers"] = out["customers"].fillna(0).astype("int64")
    out[["profit", "potential_value"]] = out[["profit", "potential_value"]].fillna(0.0)
    out["share_of_customers"] = out["customers"] / len(known) if len(known) else 0.0
    return out[["potential_quadrant", "customers", "share_of_customers", "profit", "potential_value", "action"]]


def _need(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"Required column {missing[0]} missing; pass the frame customer_value() returns")
