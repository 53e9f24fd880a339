"""Service × customer value, and the channels customers use to reach us (and we them).

Definitions (``as_of`` is a calendar day, everything is measured at the end of it; a window runs from the start of
day ``start`` to the end of day ``as_of``, no ``start`` = all history; no ``as_of`` = the date of the latest order):

- The SLA facts of a ticket (targets, breaches, open, age) are those of :func:`crm_core.support.ticket_facts_expr`
  under an :class:`crm_core.support.SlaPolicy`; nothing here re-decides them. A *breach rate* counts breached
  tickets over the tickets whose outcome is known, as :mod:`crm_core.support` does: a ticket not answered (or not
  resolved) yet and still inside its target is *pending* and left out of the denominator.
- The value tier of a customer is that of :func:`crm_core.value.customer_value` over the same window and filters
  (profit rank; Platinum the top 5% ...). The *top tiers* are ``top_tiers`` (default Platinum and Gold, the top
  20%); the *other tiers* are every other customer with a value row (Loss-making included).
- :func:`service_by_tier`: tickets created in the window by the customers of each tier. The gap between the top
  tiers and the rest (:func:`service_gap`) is the difference of the breach rates with Newcombe's interval
  (:func:`crm_core.campaigns.proportion_lift`, the app's one implementation) and the difference of the CSAT means
  with Welch's interval (:func:`crm_core.campaigns.mean_lift`).
- :func:`breach_by_channel`: the breach rate of each ticket channel with its Wilson interval, and how the breaches
  concentrate: a channel's share of all breaches against its share of the tickets whose outcome is known.
- :func:`action_list`: customers of the top tiers (by profit over the window) with a ticket open at the end of
  ``as_of`` or a breached ticket created in the last ``recent_days`` days; what to do is read from
  ``ACTION_RULES`` (data: the first rule whose conditions all hold gives the action and the urgency).
- Touchpoints (:func:`channel_usage`, :func:`contact_points`): ``orders`` are purchases (not returns) by
  ``orders.channel``; ``support`` tickets by ``support_tickets.channel``; ``campaigns`` are sent campaign contacts
  (``is_sent`` true, or missing on a row outside the control group) by their campaign's ``channel``, dated by
  ``contacted_at`` else the campaign's ``start_date``; ``surveys`` answers by ``surveys.channel``. An event counts
  when it is dated in the window and has a customer (guest orders and anonymous tickets have no segment and are
  left out). Channels are compared trimmed and lower-cased; a blank channel is ``Unknown``. The segment is the
  customer's RFM segment as of ``as_of`` (``No purchases`` without one). Cost per event: tickets by
  ``CostRates.ticket_cost_by_channel`` and contacts by ``contact_cost`` else ``CostRates.contact_cost_by_channel``
  (the definitions of :mod:`crm_core.value`); orders and surveys have no contact cost. A touchpoint whose table is
  missing or empty is skipped; :func:`touchpoints_unavailable` says why.

The region and segment filters keep the chosen customers as :mod:`crm_core.metrics` does. Every aggregation is an
Ibis expression run in the engine (it compiles for PostgreSQL and Spark); the customer → tier map of
:func:`crm_core.value.customer_value` goes back to the engine as a small in-memory table, and only a row per tier,
channel or action-list customer comes back to pandas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from crm_core import value
from crm_core.campaigns import CONTROL_GROUPS, mean_lift, proportion_lift, wilson_interval
from crm_core.metrics import Filters, _customer_scope, _is_return, _scoped, _tickets_unavailable, data_as_of
from crm_core.segments import SEGMENTS, rfm_expr
from crm_core.support import SlaPolicy, ticket_facts_expr

__all__ = [
    "ACTION_COLUMNS",
    "ACTION_RULES",
    "CHANNEL_BREACH_COLUMNS",
    "CHANNEL_USAGE_COLUMNS",
    "CONTACT_POINT_COLUMNS",
    "NO_PURCHASES",
    "OTHER_TIERS",
    "SERVICE_HELP",
    "SERVICE_LABELS",
    "TIER_SERVICE_COLUMNS",
    "TOP_TIERS",
    "TOP_TIERS_GROUP",
    "TOUCHPOINTS",
    "UNKNOWN_CHANNEL",
    "ActionRule",
    "ServiceGap",
    "action_list",
    "breach_by_channel",
    "channel_usage",
    "contact_points",
    "service_by_tier",
    "service_gap",
    "tickets_unavailable",
    "touchpoints_unavailable",
]

DEFAULT_POLICY = SlaPolicy()
DEFAULT_RATES = value.CostRates()
TOP_TIERS: tuple[str, ...] = ("Platinum", "Gold")
TOP_TIERS_GROUP = "Top tiers"
OTHER_TIERS = "Other tiers"
NO_PURCHASES = "No purchases"
UNKNOWN_CHANNEL = "Unknown"  # as crm_core.support names a blank channel
TOUCHPOINTS: tuple[str, ...] = ("orders", "support", "campaigns", "surveys")


# --- the action rules, as data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionRule:
    """What to do for a high-value customer whose flags include every one of ``when`` (and whose tier is one of
    ``tiers``, when given). Rules are read in order and the first that holds wins; its position is the urgency
    (1 = most urgent).

    The flags: ``has_open_breached`` (a ticket open at the end of as_of that breached its SLA),
    ``has_open_complaint`` (an open complaint), ``has_recent_breach`` (a breached ticket created in the last
    ``recent_days`` days, or still open), ``has_open`` (any open ticket).
    """

    when: tuple[str, ...]
    action: str
    tiers: tuple[str, ...] = ()


ACTION_FLAGS: tuple[str, ...] = ("has_open_breached", "has_open_complaint", "has_recent_breach", "has_open")

ACTION_RULES: tuple[ActionRule, ...] = (
    ActionRule(("has_open_breached",), "Platinum customer, breached ticket open: account manager calls today.",
               tiers=("Platinum",)),
    ActionRule(("has_open_breached",), "High value, breached ticket open: call today and resolve it."),
    ActionRule(("has_open_complaint",), "High value, complaint open: a senior agent takes it over and replies today."),
    ActionRule(("has_recent_breach",), "High value, SLA breached recently: call to apologise and check it is solved."),
    ActionRule(("has_open",), "High value, ticket open within SLA: move it to the priority queue."),
)


# --- columns, labels and help ----------------------------------------------------------------------------------

TIER_SERVICE_COLUMNS: tuple[str, ...] = (
    "value_tier", "tier_group", "is_group", "customers", "tickets", "tickets_per_customer", "sla_known_tickets",
    "breaches", "breach_rate", "first_response_known_tickets", "first_response_breaches",
    "first_response_breach_rate", "median_first_response_hours", "csat_mean", "csat_sd", "csat_responses",
    "open_tickets", "service_level",
)
CHANNEL_BREACH_COLUMNS: tuple[str, ...] = (
    "channel", "tickets", "sla_known_tickets", "breaches", "breach_rate", "breach_rate_ci_low",
    "breach_rate_ci_high", "first_response_breach_rate", "share_of_tickets", "share_of_breaches",
    "breach_concentration", "is_breach_hotspot",
)
ACTION_COLUMNS: tuple[str, ...] = (
    "urgency", "customer_id", "name", "email", "value_tier", "profit", "open_tickets", "breached_tickets",
    "oldest_open_age_days", "last_ticket_at", "last_ticket_category", "suggested_action",
)
CHANNEL_USAGE_COLUMNS: tuple[str, ...] = ("segment", "touchpoint", "channel", "customers", "events",
                                          "share_of_events")
CONTACT_POINT_COLUMNS: tuple[str, ...] = ("touchpoint", "channel", "events", "customers", "share_of_events",
                                          "total_cost", "cost_per_event")

SERVICE_LABELS: dict[str, str] = {
    "value_tier": "Value tier",
    "tier_group": "Tier group",
    "is_group": "Group total",
    "customers": "Customers",
    "tickets": "Tickets",
    "tickets_per_customer": "Tickets per customer",
    "sla_known_tickets": "Tickets with a known SLA outcome",
    "breaches": "SLA breaches",
    "breach_rate": "SLA breach rate",
    "first_response_known_tickets": "Tickets with a known first-response outcome",
    "first_response_breaches": "First-response breaches",
    "first_response_breach_rate": "First-response breach rate",
    "median_first_response_hours": "Median first response (hours)",
    "csat_mean": "CSAT (mean, 1-5)",
    "csat_sd": "CSAT standard deviation",
    "csat_responses": "CSAT ratings",
    "open_tickets": "Open tickets",
    "service_level": "Service level",
    "channel": "Channel",
    "breach_rate_ci_low": "Breach rate, 95% CI low",
    "breach_rate_ci_high": "Breach rate, 95% CI high",
    "share_of_tickets": "Share of tickets",
    "share_of_breaches": "Share of breaches",
    "breach_concentration": "Breach concentration",
    "is_breach_hotspot": "Breach hotspot",
    "urgency": "Urgency",
    "customer_id": "Customer",
    "name": "Name",
    "email": "E-mail",
    "profit": "Profit",
    "breached_tickets": "Breached tickets",
    "oldest_open_age_days": "Oldest open ticket (days)",
    "last_ticket_at": "Last ticket",
    "last_ticket_category": "Last ticket category",
    "suggested_action": "Suggested action",
    "segment": "RFM segment",
    "touchpoint": "Touchpoint",
    "events": "Events",
    "share_of_events": "Share of events",
    "total_cost": "Cost",
    "cost_per_event": "Cost per event",
}

SERVICE_HELP: dict[str, str] = {
    "value_tier": ("Value tier by profit rank (Platinum the top 5%, Gold the next 15% ...); 'Top tiers' and "
                   "'Other tiers' are the two groups compared."),
    "tier_group": "Whether the tier counts among the top tiers ('top') or the other tiers ('rest').",
    "is_group": "True on the two rows that add up the top tiers and the other tiers.",
    "customers": "Customers with an order, a ticket or a campaign contact in the period (those that have a tier).",
    "tickets": "Support tickets the customers opened in the period.",
    "tickets_per_customer": "Tickets divided by customers.",
    "sla_known_tickets": ("Tickets whose SLA outcome is known: breached, or answered and resolved within target; "
                          "tickets still inside their targets are pending and left out."),
    "breaches": "Tickets that missed their first-response or resolution target.",
    "breach_rate": "Breaches divided by the tickets with a known SLA outcome.",
    "first_response_known_tickets": "Tickets answered, or not answered and already past the first-response target.",
    "first_response_breaches": "Tickets answered later than the first-response target, or not answered past it.",
    "first_response_breach_rate": "First-response breaches divided by the tickets with a known first-response "
                                  "outcome.",
    "median_first_response_hours": "Median hours from opening to the first reply, over the tickets answered.",
    "csat_mean": "Mean satisfaction rating (1-5) of the rated tickets.",
    "csat_sd": "Standard deviation of the ratings (for the interval of a CSAT difference).",
    "csat_responses": "Tickets with a satisfaction rating.",
    "open_tickets": "Tickets not resolved at the end of the last day.",
    "service_level": "The service the tier should get, as the value page sets it.",
    "channel": "Channel, trimmed and lower-cased; 'Unknown' when blank.",
    "breach_rate_ci_low": "Lower end of the 95% Wilson interval of the breach rate.",
    "breach_rate_ci_high": "Upper end of the 95% Wilson interval of the breach rate.",
    "share_of_tickets": "The channel's share of the tickets with a known SLA outcome.",
    "share_of_breaches": "The channel's share of all breaches.",
    "breach_concentration": ("Share of breaches divided by share of tickets: above 1 the channel has more than its "
                             "share of breaches."),
    "is_breach_hotspot": "The channel whose share of breaches exceeds its share of tickets the most.",
    "urgency": "1 is the most urgent; the position of the first action rule that applies.",
    "customer_id": "The customer's identifier.",
    "name": "The customer's name.",
    "email": "The customer's e-mail address.",
    "profit": "The customer's profit in the period: gross margin minus the cost to serve.",
    "breached_tickets": ("Tickets that breached their SLA among those created in the last 30 days (the recent "
                         "window) or still open."),
    "oldest_open_age_days": "Days the customer's oldest open ticket has been waiting at the end of the last day.",
    "last_ticket_at": "When the customer's latest ticket was opened.",
    "last_ticket_category": "Category of the customer's latest ticket.",
    "suggested_action": "What to do, from the first action rule whose conditions hold.",
    "segment": "The customer's RFM segment at the end of the last day ('No purchases' without one).",
    "touchpoint": ("Where the contact happened: orders (purchases), support (tickets), campaigns (messages sent) "
                   "or surveys (answers)."),
    "events": "Purchases, tickets, campaign messages or survey answers in the period.",
    "share_of_events": "The channel's share of the events of its touchpoint (within the segment, by segment).",
    "total_cost": "What the events cost us: ticket handling or campaign contact costs; empty where not known.",
    "cost_per_event": "Cost divided by events; empty for orders and surveys.",
}


# --- small helpers ---------------------------------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time())


def _as_of(backend, as_of: date | None) -> date:
    if isinstance(as_of, datetime):
        return as_of.date()
    return as_of or data_as_of(backend) or date.today()


def _channel(column: ir.StringValue) -> ir.StringValue:
    """A channel as compared everywhere here: trimmed and lower-cased; ``Unknown`` when null or blank."""
    key = column.strip().lower()
    return ibis.ifelse(key.isnull() | (key == ""), UNKNOWN_CHANNEL, key)


def _flag(condition: ir.BooleanValue) -> ir.IntegerValue:
    return condition.fill_null(False).ifelse(1, 0)


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator.where(denominator > 0)).astype("float64")


def _float_or_none(x) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def _present(backend) -> set[str]:
    return set(backend.list_tables())


def tickets_unavailable(backend: ibis.BaseBackend) -> str | None:
    """Why the ticket views cannot be shown (no ``support_tickets`` table, or no rows), or None when they can."""
    present = _present(backend)
    tables = {"support_tickets": backend.table("support_tickets")} if "support_tickets" in present else {}
    return _tickets_unavailable(backend, tables)


def _tickets(backend) -> ir.Table:
    if "support_tickets" not in _present(backend):
        raise ValueError("The database has no 'support_tickets' table; open it with crm_core.store.connect, which "
                         "creates every canonical table, and import support tickets.")
    return backend.table("support_tickets")


def _window_facts(facts: ir.Table, start: date | None) -> ir.Table:
    """``facts`` restricted to tickets created from the start of ``start`` (all when None)."""
    return facts if start is None else facts.filter(facts.created_at >= _day_start(start))


def _sla_counts(t: ir.Table) -> dict[str, ir.Value]:
    """The per-group SLA counts of ticket facts ``t``: tickets, known outcomes, breaches, first-response ones."""
    fr_known = t.is_first_response_breached | t.first_response_hours.notnull()
    known = t.is_breached | (t.first_response_hours.notnull() & t.resolution_hours.notnull())
    return {
        "tickets": t.count(),
        "sla_known_tickets": _flag(known).sum(),
        "breaches": _flag(t.is_breached).sum(),
        "first_response_known_tickets": _flag(fr_known).sum(),
        "first_response_breaches": _flag(t.is_first_response_breached).sum(),
    }


# --- service by value tier -------------------------------------------------------------------------------------


def _tier_map(values: pd.DataFrame, top: tuple[str, ...]) -> ir.Table:
    """The customer → tier map of a :func:`crm_core.value.customer_value` frame, as an in-memory Ibis table."""
    frame = pd.DataFrame({
        "customer_id": values["customer_id"].astype(str),
        "value_tier": values["value_tier"].astype(str),
        "tier_group_label": np.where(values["value_tier"].isin(top), TOP_TIERS_GROUP, OTHER_TIERS),
    })
    return ibis.memtable(frame, schema={"customer_id": "string", "value_tier": "string",
                                        "tier_group_label": "string"})


def _tier_service_expr(facts: ir.Table, tier_map: ir.Table) -> ir.Table:
    """One row per label (each value tier with tickets, and the two tier groups): tickets, the SLA counts,
    median_first_response_hours, csat_mean, csat_sd, csat_responses, open_tickets."""
    j = facts.inner_join(tier_map, "customer_id")
    columns = ("first_response_hours", "resolution_hours", "is_breached", "is_first_response_breached", "csat",
               "is_open")
    u = ibis.union(j.select(*columns, label=j.value_tier), j.select(*columns, label=j.tier_group_label),
                   distinct=False)
    return u.group_by("label").aggregate(
        **_sla_counts(u),
        median_first_response_hours=u.first_response_hours.median(),
        csat_mean=u.csat.cast("float64").mean(),
        csat_sd=u.csat.cast("float64").std(),
        csat_responses=u.csat.count(),
        open_tickets=_flag(u.is_open).sum(),
    )


def _top_tiers(top_tiers: tuple[str, ...] | int, tiers: tuple[value.Tier, ...]) -> tuple[str, ...]:
    names = [t.name for t in tiers]
    if isinstance(top_tiers, int) and not isinstance(top_tiers, bool):
        if not 1 <= top_tiers < len(names):
            raise ValueError(f"top_tiers: give between 1 and {len(names) - 1} tiers, got {top_tiers}")
        return tuple(names[:top_tiers])
    chosen = (top_tiers,) if isinstance(top_tiers, str) else tuple(top_tiers)
    unknown = [t for t in chosen if t not in names]
    if unknown or not chosen:
        raise ValueError(f"top_tiers: unknown tier(s) {unknown}; choose from {names}")
    return chosen


def service_by_tier(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    start: date | None = None,
    policy: SlaPolicy = DEFAULT_POLICY,
    rates: value.CostRates = DEFAULT_RATES,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
    top_tiers: tuple[str, ...] | int = TOP_TIERS,
    tiers: tuple[value.Tier, ...] = value.DEFAULT_TIERS,
    values: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per value tier (in ``tiers`` order, empty ones included) and then one each for the top tiers and the
    other tiers: the columns of :data:`TIER_SERVICE_COLUMNS` — do our best customers get better service?

    ``top_tiers`` names the top tiers, or gives how many of the first ``tiers`` they are. Rates are NaN where
    there is nothing to divide by. Read the comparison with :func:`service_gap`. ``values`` may pass the
    :func:`crm_core.value.customer_value` frame of the same window, filters, rates and tiers when the caller has it.
    """
    chosen = Filters(start=start, end=as_of, regions=regions, segments=segments)
    as_of = _as_of(backend, as_of)
    top = _top_tiers(top_tiers, tiers)
    if values is None:
        values = value.customer_value(backend, as_of, start, rates, chosen.regions, chosen.segments, tiers)
    facts = _window_facts(ticket_facts_expr(_tickets(backend), as_of, policy), start)
    stats = backend.execute(_tier_service_expr(facts, _tier_map(values, top))).set_index("label")

    customers = values.groupby("value_tier").size()
    is_top = values["value_tier"].isin(top)
    rows = [(t.name, "top" if t.name in top else "rest", False, int(customers.get(t.name, 0)), t.service_level)
            for t in tiers]
    rows += [(TOP_TIERS_GROUP, "top", True, int(is_top.sum()), None),
             (OTHER_TIERS, "rest", True, int((~is_top).sum()), None)]
    out = pd.DataFrame(rows, columns=["value_tier", "tier_group", "is_group", "customers", "service_level"])
    out = out.merge(stats, left_on="value_tier", right_index=True, how="left")
    for name in ("tickets", "sla_known_tickets", "breaches", "first_response_known_tickets",
                 "first_response_breaches", "csat_responses", "open_tickets"):
        out[name] = out[name].astype("Float64").fillna(0).astype("int64")
    for name in ("median_first_response_hours", "csat_mean", "csat_sd"):
        out[name] = out[name].astype("float64")
    out["tickets_per_customer"] = _ratio(out["tickets"], out["customers"])
    out["breach_rate"] = _ratio(out["breaches"], out["sla_known_tickets"])
    out["first_response_breach_rate"] = _ratio(out["first_response_breaches"], out["first_response_known_tickets"])
    return out[list(TIER_SERVICE_COLUMNS)]


@dataclass(frozen=True)
class ServiceGap:
    """The top tiers against the other tiers: breach rates and CSAT means, and their differences (top − rest).

    ``breach_rate_difference`` has Newcombe's 95% interval (``breach_ci_low``/``_high``) and the two-proportion
    z-test p-value; ``csat_difference`` has Welch's interval. A negative breach difference means the top tiers
    breach less often. ``is_better_served`` is True when the breach interval lies below 0, False when above, None
    when it holds 0 or cannot be computed (then ``note`` says why). ``sentence`` reads it for a manager.
    """

    top_tiers: tuple[str, ...]
    top_tickets: int
    rest_tickets: int
    top_breach_rate: float | None
    rest_breach_rate: float | None
    breach_rate_difference: float | None
    breach_ci_low: float | None
    breach_ci_high: float | None
    breach_p_value: float | None
    top_csat_mean: float | None
    rest_csat_mean: float | None
    csat_difference: float | None
    csat_ci_low: float | None
    csat_ci_high: float | None
    is_better_served: bool | None
    sentence: str
    note: str = ""


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _gap_sentence(top: tuple[str, ...], g: dict, better: bool | None, confidence: float) -> str:
    who = " and ".join(top)
    if g["top_breach_rate"] is None or g["rest_breach_rate"] is None:
        return f"There are not enough tickets with a known SLA outcome to compare {who} with the other customers."
    text = (f"{who} customers had {_pct(g['top_breach_rate'])} of their tickets breach the SLA, against "
            f"{_pct(g['rest_breach_rate'])} for the other customers")
    if g["breach_ci_low"] is not None:
        text += (f" (difference {100 * g['breach_rate_difference']:+.1f} points, {confidence:.0%} CI "
                 f"{100 * g['breach_ci_low']:+.1f} to {100 * g['breach_ci_high']:+.1f})")
    verdict = {True: "our best customers do get better service (fewer SLA breaches)",
               False: "our best customers get worse service than the rest (more SLA breaches)",
               None: "no clear difference in service"}[better]
    text += f": {verdict}."
    if g["top_csat_mean"] is not None and g["rest_csat_mean"] is not None:
        text += f" CSAT {g['top_csat_mean']:.2f} against {g['rest_csat_mean']:.2f}."
    return text


def service_gap(by_tier: pd.DataFrame, confidence: float = 0.95) -> ServiceGap:
    """Top tiers against the other tiers, from a :func:`service_by_tier` frame (see :class:`ServiceGap`)."""
    missing = [c for c in TIER_SERVICE_COLUMNS if c not in by_tier.columns]
    if missing:
        raise ValueError(f"Required column {missing[0]} missing; pass the frame service_by_tier() returns")
    groups = by_tier[by_tier["is_group"]].set_index("tier_group")
    top_names = tuple(by_tier.loc[~by_tier["is_group"] & (by_tier["tier_group"] == "top"), "value_tier"])
    t, r = groups.loc["top"], groups.loc["rest"]
    notes = []
    g = {"top_breach_rate": _float_or_none(t["breach_rate"]), "rest_breach_rate": _float_or_none(r["breach_rate"]),
         "top_csat_mean": _float_or_none(t["csat_mean"]), "rest_csat_mean": _float_or_none(r["csat_mean"]),
         "breach_rate_difference": None, "breach_ci_low": None, "breach_ci_high": None, "breach_p_value": None,
         "csat_difference": None, "csat_ci_low": None, "csat_ci_high": None}
    n_t, n_r = int(t["sla_known_tickets"]), int(r["sla_known_tickets"])
    if n_t and n_r:
        lift = proportion_lift(int(t["breaches"]), n_t, int(r["breaches"]), n_r, "breach_rate", confidence)
        g.update(breach_rate_difference=lift.absolute_lift, breach_ci_low=lift.ci_low, breach_ci_high=lift.ci_high,
                 breach_p_value=lift.p_value)
    else:
        notes.append("a group has no tickets with a known SLA outcome, so the breach rates cannot be compared")
    c_t, c_r = int(t["csat_responses"]), int(r["csat_responses"])
    if c_t >= 2 and c_r >= 2:
        csat = mean_lift(float(t["csat_mean"]), float(t["csat_sd"]) ** 2, c_t, float(r["csat_mean"]),
                         float(r["csat_sd"]) ** 2, c_r, "csat_mean", confidence)
        g.update(csat_difference=csat.absolute_lift, csat_ci_low=csat.ci_low, csat_ci_high=csat.ci_high)
    else:
        if g["top_csat_mean"] is not None and g["rest_csat_mean"] is not None:
            g["csat_difference"] = g["top_csat_mean"] - g["rest_csat_mean"]
        notes.append("a group has fewer than 2 CSAT ratings, so the CSAT difference has no interval")
    better = None
    if g["breach_ci_high"] is not None and g["breach_ci_high"] < 0:
        better = True
    elif g["breach_ci_low"] is not None and g["breach_ci_low"] > 0:
        better = False
    return ServiceGap(top_tiers=top_names, top_tickets=int(t["tickets"]), rest_tickets=int(r["tickets"]),
                      is_better_served=better, sentence=_gap_sentence(top_names, g, better, confidence),
                      note="; ".join(notes), **g)


# --- breaches by channel ---------------------------------------------------------------------------------------


def _scoped_facts(backend, as_of: date, start: date | None, policy: SlaPolicy, regions: tuple[str, ...],
                  segments: tuple[str, ...]) -> ir.Table:
    """Ticket facts of the window, restricted to the customers in view (all tickets when nothing is filtered)."""
    scope = _customer_scope(backend.table("customers"), backend.table("orders"), regions, segments, as_of)
    facts = _window_facts(ticket_facts_expr(_tickets(backend), as_of, policy), start)
    return _scoped(facts, scope)


def _channel_breach_expr(facts: ir.Table) -> ir.Table:
    """One row per ticket channel (normalised): tickets and the SLA counts."""
    f = facts.mutate(channel=_channel(facts.channel))
    return f.group_by("channel").aggregate(**_sla_counts(f))


def breach_by_channel(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    start: date | None = None,
    policy: SlaPolicy = DEFAULT_POLICY,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per ticket channel, highest breach rate first: the columns of :data:`CHANNEL_BREACH_COLUMNS`.

    ``breach_concentration`` = share of breaches ÷ share of tickets (both over the tickets with a known outcome);
    ``is_breach_hotspot`` marks the one channel whose share of breaches exceeds its share of tickets the most
    (none when no channel has more than its share). No tickets: an empty frame.
    """
    chosen = Filters(start=start, end=as_of, regions=regions, segments=segments)
    as_of = _as_of(backend, as_of)
    facts = _scoped_facts(backend, as_of, start, policy, chosen.regions, chosen.segments)
    out = backend.execute(_channel_breach_expr(facts))
    for name in ("tickets", "sla_known_tickets", "breaches", "first_response_known_tickets",
                 "first_response_breaches"):
        out[name] = out[name].astype("Float64").fillna(0).astype("int64")
    out["breach_rate"] = _ratio(out["breaches"], out["sla_known_tickets"])
    bounds = [wilson_interval(int(x), int(n), confidence) if n > 0 else (np.nan, np.nan)
              for x, n in zip(out["breaches"], out["sla_known_tickets"])]
    out["breach_rate_ci_low"] = pd.Series([b[0] for b in bounds], index=out.index, dtype="float64")
    out["breach_rate_ci_high"] = pd.Series([b[1] for b in bounds], index=out.index, dtype="float64")
    out["first_response_breach_rate"] = _ratio(out["first_response_breaches"], out["first_response_known_tickets"])
    known, breaches = out["sla_known_tickets"].sum(), out["breaches"].sum()
    out["share_of_tickets"] = out["sla_known_tickets"] / known if known else np.nan
    out["share_of_breaches"] = out["breaches"] / breaches if breaches else np.nan
    out["breach_concentration"] = _ratio(out["share_of_breaches"], out["share_of_tickets"])
    out = out.sort_values(["breach_rate", "channel"], ascending=[False, True], na_position="last", kind="stable")
    out = out.reset_index(drop=True)
    excess = (out["share_of_breaches"] - out["share_of_tickets"]).fillna(0.0)
    out["is_breach_hotspot"] = False
    if len(out) and excess.max() > 0:
        out.loc[excess.idxmax(), "is_breach_hotspot"] = True  # the first (highest breach rate) of equal excesses
    return out[list(CHANNEL_BREACH_COLUMNS)]


# --- the action list -------------------------------------------------------------------------------------------


def _action_facts_expr(facts: ir.Table, as_of: date, recent_days: int) -> ir.Table:
    """One row per customer with a ticket open at the end of ``as_of`` or a breached ticket created in the last
    ``recent_days`` days: open_tickets, open_breached_tickets, open_complaints, breached_tickets (breached, and
    recent or open), oldest_open_age_days, last_ticket_at, last_ticket_category."""
    f = facts.filter(facts.customer_id.notnull())
    recent = f.created_at >= _day_start(as_of - timedelta(days=recent_days - 1))
    per = f.group_by("customer_id").aggregate(
        open_tickets=_flag(f.is_open).sum(),
        open_breached_tickets=_flag(f.is_open & f.is_breached).sum(),
        open_complaints=_flag(f.is_open & f.is_complaint).sum(),
        breached_tickets=_flag(f.is_breached & (recent | f.is_open)).sum(),
        oldest_open_age_days=f.age_days.max(),
        last_ticket_at=f.created_at.max(),
        last_ticket_category=f.category.argmax(f.created_at),
    )
    return per.filter((per.open_tickets > 0) | (per.breached_tickets > 0))


def _apply_rules(frame: pd.DataFrame, rules: tuple[ActionRule, ...]) -> tuple[pd.Series, pd.Series]:
    """The urgency (1-based rule position) and action of the first rule that holds for each row (NaN/None if none)."""
    urgency = pd.Series(np.nan, index=frame.index, dtype="float64")
    action = pd.Series(None, index=frame.index, dtype=object)
    for position, rule in enumerate(rules, start=1):
        unknown = [f for f in rule.when if f not in ACTION_FLAGS]
        if unknown:
            raise ValueError(f"ActionRule: unknown condition(s) {unknown}; use {list(ACTION_FLAGS)}")
        holds = pd.Series(True, index=frame.index)
        for flag in rule.when:
            holds &= frame[flag]
        if rule.tiers:
            holds &= frame["value_tier"].isin(rule.tiers)
        new = holds & urgency.isna()
        urgency[new] = position
        action[new] = rule.action
    return urgency, action


def action_list(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    policy: SlaPolicy = DEFAULT_POLICY,
    rates: value.CostRates = DEFAULT_RATES,
    top_tiers: tuple[str, ...] | int = TOP_TIERS,
    limit: int = 50,
    *,
    start: date | None = None,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
    recent_days: int = 30,
    tiers: tuple[value.Tier, ...] = value.DEFAULT_TIERS,
    rules: tuple[ActionRule, ...] = ACTION_RULES,
    values: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per high-value customer (a tier of ``top_tiers`` by profit from ``start`` to ``as_of``) with a
    ticket open at the end of ``as_of`` or a breached ticket created in the last ``recent_days`` days: the columns
    of :data:`ACTION_COLUMNS`, most urgent first, then most profitable; at most ``limit`` rows.

    Tickets of any age count (an open ticket may be old); ``name`` and ``email`` are empty when the customers
    table has no such column. A customer no rule covers gets no action and comes last. ``values`` may pass the
    :func:`crm_core.value.customer_value` frame of the same window, filters and rates when the caller has it.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a whole number of at least 1, got {limit!r}")
    if isinstance(recent_days, bool) or not isinstance(recent_days, int) or recent_days < 1:
        raise ValueError(f"recent_days must be a whole number of at least 1, got {recent_days!r}")
    chosen = Filters(start=start, end=as_of, regions=regions, segments=segments)
    as_of = _as_of(backend, as_of)
    top = _top_tiers(top_tiers, tiers)
    if values is None:
        values = value.customer_value(backend, as_of, start, rates, chosen.regions, chosen.segments, tiers)
    best = values.loc[values["value_tier"].isin(top), ["customer_id", "value_tier", "profit"]]
    facts = ticket_facts_expr(_tickets(backend), as_of, policy)
    per = _action_facts_expr(facts, as_of, recent_days)
    customers = backend.table("customers")
    contact = [c for c in ("name", "email") if c in customers.columns]
    if contact:
        per = per.left_join(customers.select("customer_id", *contact), "customer_id")
    frame = backend.execute(per)  # the customers with an open or a recently breached ticket: a few hundred rows
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame = frame.merge(best, on="customer_id", how="inner", validate="one_to_one")
    for name in ("name", "email"):
        if name not in frame.columns:
            frame[name] = None
    for name in ("open_tickets", "open_breached_tickets", "open_complaints", "breached_tickets"):
        frame[name] = frame[name].astype("Float64").fillna(0).astype("int64")
    frame["oldest_open_age_days"] = frame["oldest_open_age_days"].astype("float64")
    frame["profit"] = frame["profit"].astype("float64")
    frame["has_open_breached"] = frame["open_breached_tickets"] > 0
    frame["has_open_complaint"] = frame["open_complaints"] > 0
    frame["has_recent_breach"] = frame["breached_tickets"] > 0
    frame["has_open"] = frame["open_tickets"] > 0
    urgency, action = _apply_rules(frame, rules)
    frame["urgency"] = urgency.astype("Int64")
    frame["suggested_action"] = action
    frame = frame.sort_values(["urgency", "profit", "customer_id"], ascending=[True, False, True],
                              na_position="last", kind="stable")
    return frame.head(limit).reset_index(drop=True)[list(ACTION_COLUMNS)]


# --- channels and contact points -------------------------------------------------------------------------------

_TOUCHPOINT_TABLES: dict[str, tuple[str, ...]] = {
    "orders": ("orders",),
    "support": ("support_tickets",),
    "campaigns": ("campaign_contacts", "campaigns"),
    "surveys": ("surveys",),
}
_TOUCHPOINT_WHAT = {"orders": "orders", "support": "support tickets", "campaigns": "campaign contacts",
                    "surveys": "survey answers"}


def touchpoints_unavailable(backend: ibis.BaseBackend) -> dict[str, str]:
    """For each touchpoint of :data:`TOUCHPOINTS` that :func:`channel_usage` and :func:`contact_points` skip, why:
    its table is missing, or has no rows (campaign contacts also need the campaigns table, which may be empty)."""
    present = _present(backend)
    reasons: dict[str, str] = {}
    probes: dict[str, ir.Table] = {}
    for touchpoint, names in _TOUCHPOINT_TABLES.items():
        missing = [n for n in names if n not in present]
        if missing:
            reasons[touchpoint] = (f"There is no {missing[0]} table in this database; import "
                                   f"{_TOUCHPOINT_WHAT[touchpoint]} to see this touchpoint.")
        else:  # one row when the table has any; every table is probed in the same query
            probes[touchpoint] = backend.table(names[0]).limit(1).select(touchpoint=ibis.literal(touchpoint))
    if probes:
        union = ibis.union(*probes.values(), distinct=False) if len(probes) > 1 else next(iter(probes.values()))
        with_rows = set(backend.execute(union)["touchpoint"])
        for touchpoint in probes:
            if touchpoint not in with_rows:
                reasons[touchpoint] = (f"No {_TOUCHPOINT_WHAT[touchpoint]} have been imported yet; import them to "
                                       "see this touchpoint.")
    return {t: reasons[t] for t in TOUCHPOINTS if t in reasons}


def _in_window(ts: ir.TimestampValue, start: date | None, as_of: date) -> ir.BooleanValue:
    inside = ts < _day_start(as_of + timedelta(days=1))
    return inside if start is None else inside & (ts >= _day_start(start))


def _touch_events_expr(tables: Mapping[str, ir.Table], touchpoints: tuple[str, ...], as_of: date,
                       start: date | None, rates: value.CostRates, scope: ir.Table | None) -> ir.Table:
    """One row per event of the chosen touchpoints in the window with a customer in ``scope``: customer_id,
    touchpoint, channel (normalised), cost (null where the touchpoint has no contact cost)."""
    no_cost = ibis.null("float64")
    parts = []
    if "orders" in touchpoints:
        o = tables["orders"]
        o = o.filter(o.customer_id.notnull(), ~_is_return(o), _in_window(o.ordered_at, start, as_of))
        parts.append(o.select("customer_id", touchpoint=ibis.literal("orders"), channel=_channel(o.channel),
                              cost=no_cost))
    if "support" in touchpoints:
        t = tables["support_tickets"]
        t = t.filter(t.customer_id.notnull(), _in_window(t.created_at, start, as_of))
        cost = value._channel_cost(t.channel, rates.ticket_cost_by_channel, rates.default_ticket_cost)
        parts.append(t.select("customer_id", touchpoint=ibis.literal("support"), channel=_channel(t.channel),
                              cost=cost.cast("float64")))
    if "campaigns" in touchpoints:
        campaigns = tables["campaigns"].select("campaign_id", campaign_channel="channel", campaign_start="start_date")
        c = tables["campaign_contacts"].left_join(campaigns, "campaign_id")
        is_control = c.contact_group.strip().lower().isin(CONTROL_GROUPS).fill_null(False)
        sent = c.is_sent.fill_null(~is_control)
        dated_at = ibis.coalesce(c.contacted_at, c.campaign_start.cast("timestamp"))
        c = c.filter(c.customer_id.notnull(), sent, _in_window(dated_at, start, as_of))
        by_channel = value._channel_cost(c.campaign_channel.fill_null(""), rates.contact_cost_by_channel,
                                         rates.default_contact_cost)
        parts.append(c.select("customer_id", touchpoint=ibis.literal("campaigns"),
                              channel=_channel(c.campaign_channel),
                              cost=ibis.coalesce(c.contact_cost, by_channel).cast("float64")))
    if "surveys" in touchpoints:
        s = tables["surveys"]
        s = s.filter(s.customer_id.notnull(), _in_window(s.responded_at, start, as_of))
        parts.append(s.select("customer_id", touchpoint=ibis.literal("surveys"), channel=_channel(s.channel),
                              cost=no_cost))
    if not parts:
        raise ValueError("no touchpoint to read")
    events = ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]
    return _scoped(events, scope)


def _channel_usage_expr(events: ir.Table, orders: ir.Table, as_of: date) -> ir.Table:
    """One row per (segment, touchpoint, channel): customers, events, share_of_events within (segment,
    touchpoint)."""
    segments = rfm_expr(orders, as_of).select("customer_id", "segment")
    e = events.left_join(segments, "customer_id")
    e = e.mutate(segment=e.segment.fill_null(NO_PURCHASES))
    per = e.group_by(["segment", "touchpoint", "channel"]).aggregate(customers=e.customer_id.nunique(),
                                                                     events=e.count())
    total = per.events.sum().over(group_by=[per.segment, per.touchpoint])
    return per.mutate(share_of_events=per.events.cast("float64") / total)


def _contact_points_expr(events: ir.Table) -> ir.Table:
    """One row per (touchpoint, channel): events, customers, share_of_events within the touchpoint, total_cost."""
    per = events.group_by(["touchpoint", "channel"]).aggregate(
        events=events.count(), customers=events.customer_id.nunique(), total_cost=events.cost.sum())
    total = per.events.sum().over(group_by=per.touchpoint)
    return per.mutate(share_of_events=per.events.cast("float64") / total)


def _touch_setup(backend, as_of: date | None, start: date | None, regions, segments, rates: value.CostRates
                 ) -> tuple[date, ir.Table | None, ir.Table | None]:
    """(as_of, the events expression or None when no touchpoint has data, the orders table or None)."""
    chosen = Filters(start=start, end=as_of, regions=regions, segments=segments)
    as_of = _as_of(backend, as_of)
    skipped = touchpoints_unavailable(backend)
    available = tuple(t for t in TOUCHPOINTS if t not in skipped)
    present = _present(backend)
    tables = {name: backend.table(name) for names in _TOUCHPOINT_TABLES.values() for name in names
              if name in present}
    orders = backend.table("orders") if "orders" in present else None
    if not available:
        return as_of, None, orders
    scope = None
    if chosen.regions or chosen.segments:
        scope = _customer_scope(backend.table("customers"), orders, chosen.regions, chosen.segments, as_of)
    return as_of, _touch_events_expr(tables, available, as_of, start, rates, scope), orders


def _ordered(frame: pd.DataFrame, by_segment: bool) -> pd.DataFrame:
    """Rows in segment order (``SEGMENTS``, then ``No purchases``), touchpoint order, most events first."""
    keys = {"_tp": frame["touchpoint"].map({t: i for i, t in enumerate(TOUCHPOINTS)})}
    if by_segment:
        keys["_seg"] = frame["segment"].map({s: i for i, s in enumerate((*SEGMENTS, NO_PURCHASES))})
    frame = frame.assign(**keys)
    order = [*(["_seg"] if by_segment else []), "_tp", "events", "channel"]
    frame = frame.sort_values(order, ascending=[True] * (len(order) - 2) + [False, True], kind="stable")
    return frame.drop(columns=list(keys)).reset_index(drop=True)


def channel_usage(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    start: date | None = None,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
) -> pd.DataFrame:
    """One row per (RFM segment, touchpoint, channel) with events in the window: the columns of
    :data:`CHANNEL_USAGE_COLUMNS`; ``share_of_events`` sums to 1 within each (segment, touchpoint).

    Rows are in segment order (:data:`crm_core.segments.SEGMENTS`, then ``No purchases``), then touchpoint order
    (:data:`TOUCHPOINTS`), then most events first. Touchpoints without data are skipped
    (:func:`touchpoints_unavailable`); none at all gives an empty frame.
    """
    as_of, events, orders = _touch_setup(backend, as_of, start, regions, segments, DEFAULT_RATES)
    if events is None or orders is None:
        return _empty(CHANNEL_USAGE_COLUMNS)
    frame = backend.execute(_channel_usage_expr(events, orders, as_of))
    frame = _typed(frame, ("customers", "events"), ("share_of_events",))
    return _ordered(frame, by_segment=True)[list(CHANNEL_USAGE_COLUMNS)]


def contact_points(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    start: date | None = None,
    rates: value.CostRates = DEFAULT_RATES,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
) -> pd.DataFrame:
    """One row per (touchpoint, channel) with events in the window — the map of contact points, for a heatmap or
    a touchpoint → channel Sankey: the columns of :data:`CONTACT_POINT_COLUMNS`.

    ``total_cost`` and ``cost_per_event`` are known for support (ticket handling cost by channel) and campaigns
    (contact costs), NaN for orders and surveys. Rows in touchpoint order, most events first; touchpoints without
    data are skipped (:func:`touchpoints_unavailable`).
    """
    as_of, events, _ = _touch_setup(backend, as_of, start, regions, segments, rates)
    if events is None:
        return _empty(CONTACT_POINT_COLUMNS)
    frame = backend.execute(_contact_points_expr(events))
    frame = _typed(frame, ("events", "customers"), ("share_of_events", "total_cost"))
    frame["cost_per_event"] = _ratio(frame["total_cost"], frame["events"].astype("float64"))
    return _ordered(frame, by_segment=False)[list(CONTACT_POINT_COLUMNS)]


def _typed(frame: pd.DataFrame, counts: tuple[str, ...], floats: tuple[str, ...]) -> pd.DataFrame:
    for name in counts:
        frame[name] = frame[name].astype("Float64").fillna(0).astype("int64")
    for name in floats:
        frame[name] = frame[name].astype("float64")
    return frame


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
