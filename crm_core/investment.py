"""The investment case for a CRM programme: incremental profit, NPV, payback, ROI and a sensitivity table, computed
from the data's own baselines.

**Baselines** (:func:`baselines`, the 12 months ending on ``as_of``; every number comes from an existing module):

- ``active_customers``: customers not churned at ``as_of`` (:func:`crm_core.churn.churn_status`, a purchase in the
  ``inactive_days`` ending on ``as_of``; equals ``churn_summary``'s customers − churned_customers).
- ``annual_churn_rate``: of the customers active (not churned) 365 days before ``as_of``, the share churned at
  ``as_of`` — the same churn status, read at two dates a year apart.
- ``profit_per_customer_year``: mean 12-month ``profit`` (:func:`crm_core.value.customer_value`: gross margin −
  cost to serve) over the active customers (an active customer without a value row counts 0).
- ``revenue_year``, ``gross_margin_rate``: :func:`crm_core.value.value_totals` of the same 12 months.
- ``campaign_contacts_year``, ``conversion_rate``: treated contacts and converted ÷ treated of the campaigns that
  started in the 12 months (:func:`crm_core.campaigns.campaign_summary`); ``profit_per_conversion`` = their revenue
  ÷ conversions × ``gross_margin_rate``. The campaign summary has no region or segment filter: with a filter, the
  contacts are scaled by the filtered share of active customers (rates unchanged).
- ``tickets_year``, ``support_cost_year``, ``cost_per_ticket``: :func:`crm_core.support.ticket_kpis` of the 12 months
  (tickets × the handling cost of a ticket in its channel, :class:`crm_core.value.CostRates`).

**Programme.** Month 0 carries the one-off cost; months 1..H (H = ``horizon_months``) each carry yearly cost ÷ 12.
Benefits start in month 1. **Ramp-up**: a lever's benefit in month m is scaled by ``min(1, m / R)`` (R =
``ramp_up_months``; no ramp when R = 0), so month R is the first at full strength.

**Levers** (improvements are given as positive numbers: ``churn_pts=2`` means the annual churn rate falls by 2
percentage points; ``support_cost_pct=10`` means support costs fall by 10%):

- *Churn*: each month, active × Δchurn ÷ 12 × ramp more customers are kept. A kept customer stays kept for the
  rest of the horizon, subject to the base churn: the stock of kept customers is
  ``kept_m = kept_{m-1} × (1 − churn)^(1/12) + active × Δchurn/12 × ramp_m`` and earns kept_m × profit per
  customer ÷ 12 in month m. The active base is held constant (acquisition replaces churn).
- *Conversion*: contacts per year ÷ 12 × Δconversion × profit per conversion × ramp per month (same contact volume).
- *Support*: support cost per year ÷ 12 × Δ% × ramp per month (same ticket volume, cheaper handling or fewer tickets).
- *Average order value*: revenue per year ÷ 12 × Δ% × gross margin rate × ramp per month (same orders, same margin
  rate, costs to serve unchanged).

**Totals.** Monthly discount rate i = (1 + r)^(1/12) − 1; month m is discounted by (1 + i)^−m (month 0 not at all).
``npv`` = Σ discounted net (benefit − cost) over months 0..H. ``incremental_profit`` = Σ benefits, ``total_cost`` =
Σ costs, both undiscounted; ``roi`` = (incremental_profit − total_cost) ÷ total_cost, undiscounted (None without
costs). ``payback_month`` is the first month m ≥ 1 where the cumulative discounted net is ≥ 0 (None if none within
the horizon). :func:`sensitivity` moves one input at a time by ± ``swing`` (a share of its value) and recomputes the
NPV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import NamedTuple

import ibis
import numpy as np
import pandas as pd

from crm_core.campaigns import campaign_summary
from crm_core.churn import _resolve_as_of, churn_status
from crm_core.support import ticket_kpis
from crm_core.value import CostRates, customer_value, value_totals

__all__ = [
    "BASELINE_LABELS",
    "CASHFLOW_LABELS",
    "SENSITIVITY_LABELS",
    "Baselines",
    "Formula",
    "Improvements",
    "InvestmentCase",
    "Programme",
    "baselines",
    "investment_case",
    "reading",
    "sensitivity",
]

BASELINE_LABELS: dict[str, str] = {
    "active_customers": "Active customers",
    "annual_churn_rate": "Annual churn rate",
    "profit_per_customer_year": "Profit per active customer, per year",
    "campaign_contacts_year": "Campaign contacts per year",
    "conversion_rate": "Campaign conversion rate",
    "profit_per_conversion": "Profit per conversion",
    "tickets_year": "Support tickets per year",
    "cost_per_ticket": "Cost per ticket",
    "support_cost_year": "Support cost per year",
    "revenue_year": "Net revenue per year",
    "gross_margin_rate": "Gross margin rate",
}

CASHFLOW_LABELS: dict[str, str] = {
    "month": "Month",
    "ramp_factor": "Share of full benefit (ramp-up)",
    "customers_kept": "Customers kept (stock)",
    "benefit_churn": "Benefit: lower churn",
    "benefit_conversion": "Benefit: higher conversion",
    "benefit_support": "Benefit: lower support cost",
    "benefit_aov": "Benefit: higher order value",
    "benefit": "Benefit",
    "cost": "Programme cost",
    "net": "Net cash flow",
    "discount_factor": "Discount factor",
    "discounted_net": "Discounted net cash flow",
    "cumulative_discounted_net": "Cumulative discounted net",
}

SENSITIVITY_LABELS: dict[str, str] = {
    "churn_pts": "Churn reduction (pts)",
    "conversion_pts": "Conversion gain (pts)",
    "support_cost_pct": "Support cost saving (%)",
    "aov_pct": "Order value gain (%)",
    "yearly_cost": "Yearly cost",
    "one_off_cost": "One-off cost",
    "discount_rate_annual": "Discount rate",
    "profit_per_customer_year": "Profit per customer",
    "horizon_months": "Horizon (months)",
}

_LEVERS = ("churn", "conversion", "support", "aov")
_DEFAULT_RATES = CostRates()  # crm_core.value's default cost rates


# --- inputs ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baselines:
    """The yearly baselines an investment case starts from (see the module docstring); ``sources`` says, per
    field, how it was computed (for help tooltips)."""

    active_customers: int
    annual_churn_rate: float
    profit_per_customer_year: float
    campaign_contacts_year: float = 0.0
    conversion_rate: float = 0.0
    profit_per_conversion: float = 0.0
    support_cost_year: float = 0.0
    revenue_year: float = 0.0
    gross_margin_rate: float = 0.0
    tickets_year: int = 0
    cost_per_ticket: float = 0.0
    as_of: date | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False)


def _finite(name: str, value, *, low: float | None = None, high: float | None = None, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)):
        raise ValueError(f"{owner}.{name} must be a finite number, got {value!r}")
    value = float(value)
    if low is not None and value < low:
        raise ValueError(f"{owner}.{name} must be {low:g} or more, got {value:g}")
    if high is not None and value > high:
        raise ValueError(f"{owner}.{name} must be {high:g} or less, got {value:g}")
    return value


def _whole(name: str, value, low: int, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{owner}.{name} must be a whole number of at least {low}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Programme:
    """What the CRM programme costs and how its case is judged.

    ``one_off_cost`` is paid in month 0; ``yearly_cost`` ÷ 12 in each month 1..``horizon_months``;
    ``discount_rate_annual`` is a share (0.08 = 8% a year); benefits ramp linearly to full over ``ramp_up_months``.
    """

    one_off_cost: float
    yearly_cost: float
    horizon_months: int = 36
    discount_rate_annual: float = 0.08
    ramp_up_months: int = 0

    def __post_init__(self) -> None:
        for name in ("one_off_cost", "yearly_cost"):
            object.__setattr__(self, name, _finite(name, getattr(self, name), low=0, owner="Programme"))
        rate = _finite("discount_rate_annual", self.discount_rate_annual, low=0, high=1, owner="Programme")
        object.__setattr__(self, "discount_rate_annual", rate)
        object.__setattr__(self, "horizon_months", _whole("horizon_months", self.horizon_months, 1, "Programme"))
        object.__setattr__(self, "ramp_up_months", _whole("ramp_up_months", self.ramp_up_months, 0, "Programme"))


@dataclass(frozen=True)
class Improvements:
    """Expected improvements, each a positive number for a gain (0 = lever not used).

    ``churn_pts``: annual churn rate down by this many percentage points; ``conversion_pts``: campaign conversion
    rate up by this many points; ``support_cost_pct``: support cost down by this percentage; ``aov_pct``: average
    order value up by this percentage.
    """

    churn_pts: float = 0.0
    conversion_pts: float = 0.0
    support_cost_pct: float = 0.0
    aov_pct: float = 0.0

    def __post_init__(self) -> None:
        highs = {"churn_pts": 100, "conversion_pts": 100, "support_cost_pct": 100, "aov_pct": None}
        for name, high in highs.items():
            object.__setattr__(self, name, _finite(name, getattr(self, name), low=0, high=high, owner="Improvements"))


def _check_against(b: Baselines, imp: Improvements) -> None:
    """Improvements that the baselines cannot carry raise a ValueError saying which and what to do."""
    if imp.churn_pts / 100 > b.annual_churn_rate + 1e-12:
        raise ValueError(
            f"The churn reduction of {imp.churn_pts:g} pts is larger than the annual churn rate of "
            f"{b.annual_churn_rate:.1%}: churn cannot fall below 0. Choose at most "
            f"{100 * b.annual_churn_rate:.1f} pts.")
    if imp.churn_pts > 0 and b.active_customers <= 0:
        raise ValueError("A churn reduction needs active customers, and the baseline has none; import orders or "
                         "set the churn reduction to 0.")
    if imp.conversion_pts > 0 and b.campaign_contacts_year <= 0:
        raise ValueError("A conversion gain needs campaign contacts, and no campaign started in the baseline year; "
                         "import campaigns or set the conversion gain to 0.")
    if b.conversion_rate + imp.conversion_pts / 100 > 1 + 1e-12:
        raise ValueError(
            f"The conversion gain of {imp.conversion_pts:g} pts would lift the conversion rate of "
            f"{b.conversion_rate:.1%} above 100%. Choose at most {100 * (1 - b.conversion_rate):.1f} pts.")
    if imp.support_cost_pct > 0 and b.support_cost_year <= 0:
        raise ValueError("A support cost saving needs support costs, and the baseline year has no tickets; import "
                         "support tickets or set the saving to 0.")
    if imp.aov_pct > 0 and b.revenue_year <= 0:
        raise ValueError("An order value gain needs revenue, and the baseline year has none; set it to 0.")


# --- baselines from the data -----------------------------------------------------------------------------------


def baselines(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    *,
    regions: str | tuple[str, ...] = (),
    segments: str | tuple[str, ...] = (),
    inactive_days: int = 180,
    rates: CostRates = _DEFAULT_RATES,
) -> Baselines:
    """One set of yearly baselines for the customers in view, over the 365 days ending on ``as_of`` (default: the
    latest order day), from :mod:`crm_core.churn`, :mod:`crm_core.value`, :mod:`crm_core.campaigns` and
    :mod:`crm_core.support`."""
    as_of = _resolve_as_of(backend, as_of)
    start = as_of - timedelta(days=364)
    year_ago = as_of - timedelta(days=365)

    now = churn_status(backend, as_of, inactive_days, regions=regions, segments=segments)
    active_ids = set(now.loc[~now["is_churned"].astype(bool), "customer_id"].astype(str))
    then = churn_status(backend, year_ago, inactive_days)
    in_view = set(now["customer_id"].astype(str))
    then = then[~then["is_churned"].astype(bool) & then["customer_id"].astype(str).isin(in_view)]
    then_ids = set(then["customer_id"].astype(str))
    churned_since = len(then_ids - active_ids)
    churn_rate = churned_since / len(then_ids) if then_ids else 0.0

    values = customer_value(backend, as_of, start, rates, regions=regions, segments=segments)
    totals = value_totals(values)
    active_profit = float(values.loc[values["customer_id"].isin(active_ids), "profit"].sum())
    profit_per_customer = active_profit / len(active_ids) if active_ids else 0.0
    margin_rate = totals.gross_margin_rate or 0.0

    summary = campaign_summary(backend)
    recent = summary[summary["start_date"].notna()]
    recent = recent[(recent["start_date"] >= start) & (recent["start_date"] <= as_of)]
    treated = float(recent["treatment_contacts"].sum())
    known = recent[recent["converted"].notna()]
    converted = float(known["converted"].sum())
    conversion_base = float(known["treatment_contacts"].sum())
    conversion_rate = converted / conversion_base if conversion_base else 0.0
    revenue = float(known["revenue"].fillna(0).sum())
    profit_per_conversion = revenue / converted * margin_rate if converted else 0.0
    scale, scale_note = 1.0, ""
    if regions or segments:
        all_now = churn_status(backend, as_of, inactive_days)
        all_active = int((~all_now["is_churned"].astype(bool)).sum())
        scale = len(active_ids) / all_active if all_active else 0.0
        scale_note = (f" Campaigns are not filtered by region or segment, so the contacts are scaled by the "
                      f"filtered share of active customers ({scale:.1%}).")

    kpis = ticket_kpis(backend, as_of, start, regions=regions, segments=segments, rates=rates).iloc[0]
    tickets = int(kpis["tickets"])
    support_cost = float(kpis["ticket_cost"]) if tickets else 0.0
    cost_per_ticket = support_cost / tickets if tickets else 0.0

    window = f"the 365 days ending on {as_of}"
    sources = {
        "active_customers": f"Customers with a purchase in the {inactive_days} days ending on {as_of} (not churned; "
                            "churn status of the Churn page).",
        "annual_churn_rate": f"Of the {len(then_ids)} customers active on {year_ago}, {churned_since} had churned by "
                             f"{as_of} (no purchase in {inactive_days} days).",
        "profit_per_customer_year": f"Profit (gross margin − cost to serve, Customer value page) over {window}, "
                                    f"summed over the {len(active_ids)} active customers and divided by them.",
        "campaign_contacts_year": f"Treated contacts of the {len(recent)} campaigns that started in {window}."
                                  + scale_note,
        "conversion_rate": f"{converted:.0f} conversions ÷ {conversion_base:.0f} treated contacts of those campaigns.",
        "profit_per_conversion": f"Campaign revenue {revenue:,.2f} ÷ {converted:.0f} conversions × gross margin rate "
                                 f"{margin_rate:.1%}.",
        "tickets_year": f"Support tickets created in {window}.",
        "cost_per_ticket": "Support cost ÷ tickets (handling cost of a ticket by its channel).",
        "support_cost_year": f"Tickets created in {window} × the handling cost of a ticket in its channel.",
        "revenue_year": f"Net revenue (returns subtracted) over {window}.",
        "gross_margin_rate": f"Gross margin ÷ net revenue over {window}.",
    }
    return Baselines(
        active_customers=len(active_ids), annual_churn_rate=churn_rate, profit_per_customer_year=profit_per_customer,
        campaign_contacts_year=treated * scale, conversion_rate=conversion_rate,
        profit_per_conversion=profit_per_conversion, support_cost_year=support_cost, revenue_year=totals.revenue,
        gross_margin_rate=margin_rate, tickets_year=tickets, cost_per_ticket=cost_per_ticket, as_of=as_of,
        sources=sources,
    )


# --- the case --------------------------------------------------------------------------------------------------


class Formula(NamedTuple):
    """One formula of the case: its name, the formula in words, and the formula with this case's numbers."""

    name: str
    formula: str
    example: str


@dataclass(frozen=True, eq=False)  # eq=False: a frame inside
class InvestmentCase:
    """The investment case: ``cashflow`` has one row per month 0..H (columns of :data:`CASHFLOW_LABELS`); totals are
    defined in the module docstring; ``benefit_by_lever`` holds Σ undiscounted benefit per lever."""

    baselines: Baselines
    programme: Programme
    improvements: Improvements
    cashflow: pd.DataFrame
    incremental_profit: float
    total_cost: float
    net_profit: float
    pv_benefits: float
    pv_costs: float
    npv: float
    roi: float | None
    payback_month: int | None
    benefit_by_lever: dict[str, float]
    formulas: tuple[Formula, ...]
    roi_basis: str = "undiscounted: (Σ benefits − Σ costs) ÷ Σ costs over the horizon"


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _npv_only(b: Baselines, p: Programme, imp: Improvements) -> float:
    return float(_cashflow(b, p, imp)["discounted_net"].sum())


def _cashflow(b: Baselines, p: Programme, imp: Improvements) -> pd.DataFrame:
    h = p.horizon_months
    months = np.arange(0, h + 1)
    ramp = np.ones(h + 1) if p.ramp_up_months == 0 else np.minimum(1.0, months / p.ramp_up_months)
    ramp[0] = 0.0
    survival = (1 - b.annual_churn_rate) ** (1 / 12)
    newly_kept = b.active_customers * imp.churn_pts / 100 / 12 * ramp
    kept = np.zeros(h + 1)
    for m in range(1, h + 1):
        kept[m] = kept[m - 1] * survival + newly_kept[m]
    benefits = {
        "churn": kept * b.profit_per_customer_year / 12,
        "conversion": b.campaign_contacts_year / 12 * imp.conversion_pts / 100 * b.profit_per_conversion * ramp,
        "support": b.support_cost_year / 12 * imp.support_cost_pct / 100 * ramp,
        "aov": b.revenue_year / 12 * imp.aov_pct / 100 * b.gross_margin_rate * ramp,
    }
    cost = np.full(h + 1, p.yearly_cost / 12)
    cost[0] = p.one_off_cost
    monthly_rate = (1 + p.discount_rate_annual) ** (1 / 12) - 1
    frame = pd.DataFrame({"month": months, "ramp_factor": ramp, "customers_kept": kept})
    for lever in _LEVERS:
        frame[f"benefit_{lever}"] = benefits[lever]
    frame["benefit"] = sum(benefits[lever] for lever in _LEVERS)
    frame["cost"] = cost
    frame["net"] = frame["benefit"] - frame["cost"]
    frame["discount_factor"] = (1 + monthly_rate) ** -months.astype(float)
    frame["discounted_net"] = frame["net"] * frame["discount_factor"]
    frame["cumulative_discounted_net"] = frame["discounted_net"].cumsum()
    return frame


def _formulas(b: Baselines, p: Programme, imp: Improvements, cf: pd.DataFrame, case: dict) -> tuple[Formula, ...]:
    i = (1 + p.discount_rate_annual) ** (1 / 12) - 1
    full = 1.0  # the worked examples show a month at full strength (after the ramp)
    per_month_kept = b.active_customers * imp.churn_pts / 100 / 12
    survival = (1 - b.annual_churn_rate) ** (1 / 12)
    m1 = cf.iloc[1] if len(cf) > 1 else cf.iloc[0]
    roi = case["roi"]
    payback = case["payback_month"]
    return (
        Formula("Ramp-up", "share of full benefit in month m = min(1, m ÷ ramp-up months)",
                "no ramp-up: every month at full strength" if p.ramp_up_months == 0 else
                f"month 1 = min(1, 1 ÷ {p.ramp_up_months}) = {min(1.0, 1 / p.ramp_up_months):.3f}; "
                f"full from month {p.ramp_up_months}"),
        Formula("Customers kept per month",
                "active customers × churn reduction ÷ 12 × ramp",
                f"{b.active_customers:,} × {imp.churn_pts:g}% ÷ 12 × {full:g} = {per_month_kept:,.2f} customers"),
        Formula("Customers kept (stock)",
                "kept in month m = kept in month m−1 × (1 − annual churn)^(1/12) + kept this month",
                f"(1 − {b.annual_churn_rate:.4f})^(1/12) = {survival:.5f}; month 1: 0 × {survival:.5f} + "
                f"{m1['customers_kept']:,.2f} = {m1['customers_kept']:,.2f}; month {p.horizon_months}: "
                f"{cf['customers_kept'].iloc[-1]:,.2f}"),
        Formula("Churn benefit",
                "customers kept (stock) × profit per customer per year ÷ 12",
                f"month 1: {m1['customers_kept']:,.2f} × {_money(b.profit_per_customer_year)} ÷ 12 = "
                f"{_money(m1['benefit_churn'])}"),
        Formula("Conversion benefit",
                "campaign contacts per year ÷ 12 × conversion gain × profit per conversion × ramp",
                f"{b.campaign_contacts_year:,.0f} ÷ 12 × {imp.conversion_pts:g}% × "
                f"{_money(b.profit_per_conversion)} × {full:g} = "
                f"{_money(b.campaign_contacts_year / 12 * imp.conversion_pts / 100 * b.profit_per_conversion)} "
                "per month"),
        Formula("Support benefit",
                "support cost per year ÷ 12 × saving % × ramp",
                f"{_money(b.support_cost_year)} ÷ 12 × {imp.support_cost_pct:g}% × {full:g} = "
                f"{_money(b.support_cost_year / 12 * imp.support_cost_pct / 100)} per month"),
        Formula("Order value benefit",
                "revenue per year ÷ 12 × order value gain % × gross margin rate × ramp",
                f"{_money(b.revenue_year)} ÷ 12 × {imp.aov_pct:g}% × {b.gross_margin_rate:.1%} × {full:g} = "
                f"{_money(b.revenue_year / 12 * imp.aov_pct / 100 * b.gross_margin_rate)} per month"),
        Formula("Programme cost",
                "month 0: one-off cost; months 1..H: yearly cost ÷ 12",
                f"month 0: {_money(p.one_off_cost)}; months 1..{p.horizon_months}: {_money(p.yearly_cost)} ÷ 12 = "
                f"{_money(p.yearly_cost / 12)}; total {_money(case['total_cost'])}"),
        Formula("Monthly discount rate", "i = (1 + annual rate)^(1/12) − 1; month m × 1 ÷ (1 + i)^m",
                f"(1 + {p.discount_rate_annual:g})^(1/12) − 1 = {i:.6f}; month {p.horizon_months} factor "
                f"{cf['discount_factor'].iloc[-1]:.4f}"),
        Formula("NPV", "Σ over months 0..H of (benefit − cost) × discount factor",
                f"PV benefits {_money(case['pv_benefits'])} − PV costs {_money(case['pv_costs'])} = "
                f"{_money(case['npv'])}"),
        Formula("ROI", "(Σ benefits − Σ costs) ÷ Σ costs, undiscounted",
                "no costs: ROI undefined" if roi is None else
                f"({_money(case['incremental_profit'])} − {_money(case['total_cost'])}) ÷ "
                f"{_money(case['total_cost'])} = {roi:.1%}"),
        Formula("Payback month", "first month m ≥ 1 whose cumulative discounted net cash flow is ≥ 0",
                f"month {payback}" if payback is not None else
                f"never within {p.horizon_months} months (cumulative discounted net at the end: "
                f"{_money(cf['cumulative_discounted_net'].iloc[-1])})"),
    )


def investment_case(baselines: Baselines, programme: Programme, improvements: Improvements) -> InvestmentCase:
    """One investment case: the monthly cash flow (one row per month 0..H), its totals and every formula with this
    case's numbers (definitions in the module docstring)."""
    _check_against(baselines, improvements)
    cf = _cashflow(baselines, programme, improvements)
    benefit = float(cf["benefit"].sum())
    cost = float(cf["cost"].sum())
    pv_benefits = float((cf["benefit"] * cf["discount_factor"]).sum())
    pv_costs = float((cf["cost"] * cf["discount_factor"]).sum())
    after = cf[(cf["month"] >= 1) & (cf["cumulative_discounted_net"] >= -1e-9)]
    totals = {
        "incremental_profit": benefit,
        "total_cost": cost,
        "net_profit": benefit - cost,
        "pv_benefits": pv_benefits,
        "pv_costs": pv_costs,
        "npv": float(cf["discounted_net"].sum()),
        "roi": (benefit - cost) / cost if cost > 0 else None,
        "payback_month": int(after["month"].iloc[0]) if len(after) else None,
    }
    by_lever = {lever: float(cf[f"benefit_{lever}"].sum()) for lever in _LEVERS}
    return InvestmentCase(
        baselines=baselines, programme=programme, improvements=improvements, cashflow=cf,
        benefit_by_lever=by_lever, formulas=_formulas(baselines, programme, improvements, cf, totals), **totals)


# --- sensitivity -----------------------------------------------------------------------------------------------


def _moved(b: Baselines, p: Programme, imp: Improvements, name: str, factor: float):
    """The inputs with ``name`` multiplied by ``factor`` (the horizon rounded to whole months, at least 1; the
    churn reduction capped at the churn rate, the conversion gain at 100% conversion), and the value used."""
    if name in ("churn_pts", "conversion_pts", "support_cost_pct", "aov_pct"):
        value = getattr(imp, name) * factor
        cap = {"churn_pts": 100 * b.annual_churn_rate, "conversion_pts": 100 * (1 - b.conversion_rate),
               "support_cost_pct": 100.0}.get(name)
        value = value if cap is None else min(value, cap)
        return b, p, replace(imp, **{name: value}), value
    if name == "horizon_months":
        value = max(1, int(round(p.horizon_months * factor)))
        return b, replace(p, horizon_months=value), imp, value
    if name == "profit_per_customer_year":
        value = b.profit_per_customer_year * factor
        return replace(b, profit_per_customer_year=value), p, imp, value
    value = min(getattr(p, name) * factor, 1.0) if name == "discount_rate_annual" else getattr(p, name) * factor
    return b, replace(p, **{name: value}), imp, value


def sensitivity(baselines: Baselines, programme: Programme, improvements: Improvements,
                swing: float = 0.25) -> pd.DataFrame:
    """One row per input (for a tornado chart), widest NPV range first: input, label, base, low,
    high, npv_low, npv_high, npv_range, base_npv.

    Each input is multiplied by 1 − ``swing`` (low) and 1 + ``swing`` (high), one at a time; inputs at 0 (a lever
    not used, a cost of 0) cannot move and are left out. The profit per customer only acts through the churn lever.
    """
    swing = _finite("swing", swing, low=0, high=1, owner="sensitivity")
    _check_against(baselines, improvements)
    base_npv = _npv_only(baselines, programme, improvements)
    bases = {**{name: getattr(improvements, name) for name in ("churn_pts", "conversion_pts", "support_cost_pct",
                                                               "aov_pct")},
             "yearly_cost": programme.yearly_cost, "one_off_cost": programme.one_off_cost,
             "discount_rate_annual": programme.discount_rate_annual,
             "profit_per_customer_year": baselines.profit_per_customer_year,
             "horizon_months": programme.horizon_months}
    rows = []
    for name, base in bases.items():
        if base == 0:
            continue
        if name == "profit_per_customer_year" and improvements.churn_pts == 0:
            continue
        low = _moved(baselines, programme, improvements, name, 1 - swing)
        high = _moved(baselines, programme, improvements, name, 1 + swing)
        npv_low, npv_high = _npv_only(*low[:3]), _npv_only(*high[:3])
        rows.append({"input": name, "label": SENSITIVITY_LABELS[name], "base": float(base),
                     "low": float(low[3]), "high": float(high[3]), "npv_low": npv_low,
                     "npv_high": npv_high, "npv_range": abs(npv_high - npv_low), "base_npv": base_npv})
    columns = ["input", "label", "base", "low", "high", "npv_low", "npv_high", "npv_range",
               "base_npv"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("npv_range", ascending=False, kind="stable").reset_index(drop=True)


_LEVER_NAMES = {"churn": "lower churn", "conversion": "higher conversion", "support": "cheaper support",
                "aov": "higher order value"}


def reading(case: InvestmentCase) -> str:
    """One sentence that reads the case for a manager."""
    h = case.programme.horizon_months
    payback = (f"pays back in month {case.payback_month}" if case.payback_month is not None
               else f"does not pay back within {h} months")
    roi = "" if case.roi is None else f", ROI {case.roi:.0%}"
    if case.incremental_profit > 0:
        lever, amount = max(case.benefit_by_lever.items(), key=lambda kv: kv[1])
        lead = f"; {_LEVER_NAMES[lever]} brings {amount / case.incremental_profit:.0%} of the benefit"
    else:
        lead = "; no improvement is assumed, so it only costs"
    return f"Over {h} months the programme has an NPV of {case.npv:,.0f}{roi}, and {payback}{lead}."
