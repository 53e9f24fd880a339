"""Campaign response: funnel, revenue, cost and ROI per campaign; control-group lift; multi-touch attribution.

Inputs: ``campaigns`` (one row per campaign), ``campaign_contacts`` (one row per campaign and targeted customer)
and, for window-based revenue and attribution, ``orders``. Definitions:

- **Control group.** A contact is in the control group when ``contact_group``, trimmed and lower-cased, is one of
  ``CONTROL_GROUPS`` ("control", "holdout", "no e-mail" ...); every other contact (including a blank group) is
  *treated*. A campaign *has a control group* when it has at least one control contact.
- **Funnel** (treated contacts only; the control group was not sent anything): ``sent`` → ``opened`` →
  ``clicked`` → ``responded`` → ``converted``, each the number of treated contacts whose ``is_*`` flag is true. A
  step whose flag is null for every treated contact of a campaign is *unavailable* and reported as missing (NA),
  never as 0. A step's ``*_step_rate`` is its count divided by the count of the previous *available* step (the
  treated contacts for ``sent``), so a direct-mail funnel without opens reads sent → clicked.
- ``response_rate`` = responded ÷ treated contacts; ``conversion_rate`` = converted ÷ treated contacts.
- **Revenue.** ``attributed_revenue`` is the sum of the column of the same name over treated contacts (what the
  source system attributed to the campaign). ``window_revenue`` is the value of the purchases (orders that are
  not returns) a treated customer made in ``(touched_at, touched_at + window_days]``, where ``touched_at`` is
  ``contacted_at`` or, when that is blank, the campaign's ``start_date``. ``revenue`` — what the page shows and
  what ROI uses — is ``attributed_revenue`` when the campaign has any, else ``window_revenue`` (see
  ``revenue_basis``). Attributed revenue is the default because the window counts every purchase the customer
  made in the window, including those they would have made anyway, so it overstates what the campaign caused
  (on the sample data 3 to 20 times the attributed revenue); window revenue is the fallback for exports with no
  attribution, and the basis of the multi-touch attribution below.
- **Cost** = ``campaigns.cost`` (the campaign's total cost) when given, else the sum of ``contact_cost`` of its
  contacts (see ``cost_basis``). ``roi`` = (revenue − cost) ÷ cost; ``cost_per_acquisition`` = cost ÷ converted.
- **RFM segment** of a contact: the customer's segment (:func:`crm_core.segments.rfm_expr`) as of the day before
  the campaign's start (so the campaign's own orders do not count); customers with no purchase by then are
  ``NOT_YET_CUSTOMER``.
- **Lift** (:func:`lift`): treated against control for the conversion rate and the response rate (proportions)
  and revenue per contact (a mean over every contact, zeros included). Proportions: absolute lift = p_t − p_c
  with Newcombe's hybrid score interval (method 10, built from the two Wilson score intervals); relative lift =
  p_t ÷ p_c − 1 with the Katz log-ratio interval; two-sided p-value of the pooled two-proportion z-test, which is
  the chi-square test of the 2 × 2 table without continuity correction. Revenue per contact: Welch's t interval
  and p-value for the difference of means; the relative lift's interval by the delta method on the log of the
  ratio of means. Incremental conversions = conversion lift × treated contacts; incremental revenue = revenue
  lift per contact × treated contacts; incremental ROI = (incremental revenue − cost) ÷ cost, the cost being the
  campaign's cost (all of it is spent on the treated). The minimum detectable effect of the conversion rate is
  (z₁₋α/₂ + z_power) × √(p̄(1 − p̄)(1/n_t + 1/n_c)) at 80% power and α = 5%, p̄ the pooled rate.
- **Multi-touch attribution** (:func:`attribution`): a purchase is a conversion of every treated, sent contact of
  the same customer whose window it falls in (``touched_at < ordered_at <= touched_at + window_days``; a null
  ``is_sent`` counts as sent). Last touch gives the whole order to the latest of those contacts; linear splits it
  equally among them. The rules, as sentences for the page, are in ``ATTRIBUTION_RULES``.

Every aggregation over the tables is one Ibis expression run in the engine (DuckDB, PostgreSQL, Spark); only a
row per campaign (or per campaign and segment, group, channel) is pulled, and the rates and statistics are
computed on those few rows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd
from scipy import stats

from crm_core.segments import NOT_YET_CUSTOMER, SEGMENTS, rfm_expr

__all__ = [
    "ATTRIBUTION_HELP",
    "ATTRIBUTION_LABELS",
    "ATTRIBUTION_RULES",
    "CONTROL_GROUPS",
    "DEFAULT_WINDOW_DAYS",
    "FUNNEL_STEPS",
    "LIFT_HELP",
    "LIFT_LABELS",
    "SEGMENT_HELP",
    "SEGMENT_LABELS",
    "SUMMARY_HELP",
    "SUMMARY_LABELS",
    "LiftResult",
    "MetricLift",
    "attribution",
    "attribution_rule",
    "by_channel",
    "by_segment",
    "campaign_summary",
    "funnel",
    "lift",
    "lift_all",
    "lift_frame",
    "mean_lift",
    "minimum_detectable_effect",
    "proportion_lift",
    "read_summary",
    "segment_heatmap",
    "wilson_interval",
]

DEFAULT_WINDOW_DAYS = 14
FUNNEL_STEPS: tuple[str, ...] = ("sent", "opened", "clicked", "responded", "converted")
CONTROL_GROUPS: tuple[str, ...] = ("control", "holdout", "hold-out", "hold out", "held out", "no e-mail",
                                   "no email", "no mail", "no contact", "not contacted")
REVENUE_BASES: tuple[str, ...] = ("auto", "attributed", "window")
_TABLES = ("campaigns", "campaign_contacts", "orders")

# --------------------------------------------------------------------------------------------- labels and help
SUMMARY_LABELS: dict[str, str] = {
    "campaign_id": "Campaign",
    "campaign_name": "Name",
    "channel": "Channel",
    "campaigns": "Campaigns",
    "start_date": "Start",
    "end_date": "End",
    "contacts": "Contacts",
    "treatment_contacts": "Treated contacts",
    "control_contacts": "Control contacts",
    "sent": "Sent",
    "opened": "Opened",
    "clicked": "Clicked",
    "responded": "Responded",
    "converted": "Converted",
    "sent_step_rate": "Sent rate",
    "opened_step_rate": "Open rate",
    "clicked_step_rate": "Click rate",
    "responded_step_rate": "Response step rate",
    "converted_step_rate": "Conversion step rate",
    "response_rate": "Response rate",
    "conversion_rate": "Conversion rate",
    "window_buyers": "Buyers in window",
    "attributed_revenue": "Attributed revenue",
    "window_revenue": "Revenue in window",
    "revenue": "Revenue",
    "revenue_basis": "Revenue basis",
    "cost": "Cost",
    "cost_basis": "Cost basis",
    "roi": "ROI",
    "cost_per_acquisition": "Cost per acquisition",
}

SUMMARY_HELP: dict[str, str] = {
    "campaign_id": "Campaign identifier.",
    "campaign_name": "Campaign name.",
    "channel": "Channel of the campaign (email, sms, direct mail ...); 'unknown' when not given.",
    "campaigns": "Campaigns in the channel.",
    "start_date": "First day of the campaign (else the day of its first contact).",
    "end_date": "Last day of the campaign.",
    "contacts": "Customers targeted, treated and control together.",
    "treatment_contacts": "Contacts outside the control group: those the campaign was aimed at.",
    "control_contacts": "Contacts held out at random (contact group control, holdout ...) and not sent anything.",
    "sent": "Treated contacts the message was sent to. Missing when the export has no sent flag.",
    "opened": "Treated contacts who opened it. Missing when the export has no open flag.",
    "clicked": "Treated contacts who clicked. Missing when the export has no click flag.",
    "responded": "Treated contacts who responded. Missing when the export has no response flag.",
    "converted": "Treated contacts who bought because of the campaign (the source system's conversion flag). "
                 "Missing when the export has no conversion flag.",
    "sent_step_rate": "Sent ÷ treated contacts.",
    "opened_step_rate": "Opened ÷ sent.",
    "clicked_step_rate": "Clicked ÷ the previous available step (opened, else sent).",
    "responded_step_rate": "Responded ÷ the previous available step (clicked, else opened, else sent).",
    "converted_step_rate": "Converted ÷ the previous available step (responded, else clicked ...).",
    "response_rate": "Responded ÷ treated contacts.",
    "conversion_rate": "Converted ÷ treated contacts.",
    "window_buyers": "Treated contacts who made a purchase within the attribution window after the contact.",
    "attributed_revenue": "Revenue the source system attributed to the treated contacts. Missing when the export "
                          "has none.",
    "window_revenue": "Value of every purchase (returns excluded) the treated customers made within the window "
                      "after their contact — including purchases they would have made anyway.",
    "revenue": "Attributed revenue when the campaign has any, else revenue in the window: the revenue ROI uses.",
    "revenue_basis": "Which revenue 'Revenue' is: 'attributed' or 'window'.",
    "cost": "The campaign's total cost when given, else the sum of its contacts' costs.",
    "cost_basis": "Which cost 'Cost' is: 'campaign' (the campaign's cost) or 'contacts' (sum of contact costs).",
    "roi": "Return on investment: (revenue − cost) ÷ cost; 0.5 means every 1 spent brought 1.50 back.",
    "cost_per_acquisition": "Cost ÷ converted contacts.",
}

SEGMENT_LABELS: dict[str, str] = {
    "campaign_id": "Campaign",
    "segment": "RFM segment at start",
    "treatment_contacts": "Treated contacts",
    "converted": "Converted",
    "conversion_rate": "Conversion rate",
    "responded": "Responded",
    "response_rate": "Response rate",
}

SEGMENT_HELP: dict[str, str] = {
    "campaign_id": "Campaign identifier.",
    "segment": "The customer's RFM segment as of the day before the campaign started ('Not yet a customer' "
               "without a purchase by then).",
    "treatment_contacts": "Treated contacts of the campaign in the segment.",
    "converted": "Of them, converted (missing when the export has no conversion flag).",
    "conversion_rate": "Converted ÷ treated contacts in the segment.",
    "responded": "Of them, responded (missing when the export has no response flag).",
    "response_rate": "Responded ÷ treated contacts in the segment.",
}

LIFT_LABELS: dict[str, str] = {
    "campaign_id": "Campaign",
    "metric": "Metric",
    "treatment": "Treatment",
    "control": "Control",
    "absolute_lift": "Lift",
    "ci_low": "Lift, lower 95%",
    "ci_high": "Lift, upper 95%",
    "relative_lift": "Relative lift",
    "relative_ci_low": "Relative lift, lower 95%",
    "relative_ci_high": "Relative lift, upper 95%",
    "p_value": "p-value",
    "interval_method": "Interval",
    "test": "Test",
    "note": "Note",
}

LIFT_HELP: dict[str, str] = {
    "campaign_id": "Campaign identifier.",
    "metric": "conversion_rate, response_rate (shares of contacts) or revenue_per_contact (mean over every "
              "contact, zeros included).",
    "treatment": "The metric in the treated group.",
    "control": "The metric in the control group (held out, not sent anything).",
    "absolute_lift": "Treatment − control: for a rate, in fraction points (0.03 = 3 points).",
    "ci_low": "Lower end of the 95% confidence interval of the lift (Newcombe hybrid score for rates, Welch for "
              "revenue).",
    "ci_high": "Upper end of the 95% confidence interval of the lift.",
    "relative_lift": "Treatment ÷ control − 1: 0.5 means 50% more than without the campaign.",
    "relative_ci_low": "Lower end of the 95% interval of the relative lift (Katz log-ratio for rates, delta "
                       "method on the log ratio for revenue).",
    "relative_ci_high": "Upper end of the 95% interval of the relative lift.",
    "p_value": "Two-sided p-value for 'no difference': the chance of a gap at least this large if the campaign "
               "changed nothing (two-proportion z-test = chi-square without continuity correction; Welch's t for "
               "revenue). Below 0.05 is the usual bar.",
    "interval_method": "How the interval of the lift was computed.",
    "test": "Which test gave the p-value.",
    "note": "Why a number is missing or needs care.",
}

ATTRIBUTION_RULES: dict[str, str] = {
    "last_touch": "Last touch: a purchase within {window} days after one or more campaign contacts of the same "
                  "customer counts entirely for the latest of those contacts.",
    "linear": "Linear: a purchase within {window} days after one or more campaign contacts of the same customer "
              "is shared equally among them (two contacts get half each).",
}

ATTRIBUTION_LABELS: dict[str, str] = {
    "campaign_id": "Campaign",
    "campaign_name": "Name",
    "touched_orders": "Purchases touched",
    "multi_touch_orders": "Of them, multi-touch",
    "last_touch_orders": "Last-touch conversions",
    "last_touch_revenue": "Last-touch revenue",
    "linear_orders": "Linear conversions",
    "linear_revenue": "Linear revenue",
}

ATTRIBUTION_HELP: dict[str, str] = {
    "campaign_id": "Campaign identifier.",
    "campaign_name": "Campaign name.",
    "touched_orders": "Purchases made within the window after one of the campaign's (treated, sent) contacts.",
    "multi_touch_orders": "Of those, purchases that fell in the windows of more than one contact.",
    "last_touch_orders": "Purchases whose latest preceding contact was this campaign's.",
    "last_touch_revenue": "Value of those purchases (the whole order to the last touch).",
    "linear_orders": "Purchases credited with equal shares: 1 ÷ number of contacts whose window each fell in.",
    "linear_revenue": "Order value credited with equal shares among the contacts whose window it fell in.",
}


def attribution_rule(rule: str, window_days: int = DEFAULT_WINDOW_DAYS) -> str:
    """The sentence that states an attribution ``rule`` ('last_touch' or 'linear') for the page."""
    if rule not in ATTRIBUTION_RULES:
        raise ValueError(f"Unknown attribution rule {rule!r}; choose from {list(ATTRIBUTION_RULES)}")
    return ATTRIBUTION_RULES[rule].format(window=window_days)


# --------------------------------------------------------------------------------------------- expressions
def _check_window(window_days: int) -> None:
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1:
        raise ValueError(f"window_days must be a whole number of at least 1, got {window_days!r}")


def _check_basis(revenue_basis: str) -> None:
    if revenue_basis not in REVENUE_BASES:
        raise ValueError(f"Unknown revenue_basis {revenue_basis!r}; choose from {list(REVENUE_BASES)}")


def _purchases(orders: ir.Table) -> ir.Table:
    """Orders with a customer that are not returns (``is_return`` true or a negative amount)."""
    is_return = orders.amount.fill_null(0) < 0
    if "is_return" in orders.columns:
        is_return = is_return | orders.is_return.fill_null(False)
    known = orders.filter(orders.customer_id.notnull() & orders.ordered_at.notnull() & ~is_return)
    return known.select(o_customer_id="customer_id", o_order_id="order_id", ordered_at="ordered_at",
                        amount=known.amount.fill_null(0))


def _is_control(contacts: ir.Table) -> ir.BooleanValue:
    """The contact is in the control group: ``contact_group`` (trimmed, lower-cased) is one of CONTROL_GROUPS."""
    return contacts.contact_group.strip().lower().isin(CONTROL_GROUPS).fill_null(False)


def _contacts_expr(contacts: ir.Table, campaigns: ir.Table) -> ir.Table:
    """One row per contact: the contact's columns plus is_control, touched_at (contacted_at, else the campaign's
    start) and campaign_start (the campaign's start_date)."""
    info = campaigns.select(c_campaign_id="campaign_id", c_start="start_date")
    c = contacts.left_join(info, contacts.campaign_id == info.c_campaign_id)
    start_ts = c.c_start.cast("timestamp")
    return c.select(
        *contacts.columns,
        is_control=_is_control(c),
        touched_at=ibis.coalesce(c.contacted_at, start_ts),
        campaign_start=c.c_start,
    )


def _window_revenue_expr(c: ir.Table, orders: ir.Table, window_days: int) -> ir.Table:
    """One row per contact with a purchase in its window: campaign_id, customer_id, window_revenue."""
    p = _purchases(orders)
    c = c.view()  # a fresh relation: ibis 12 cannot join a projection of a join on a computed column otherwise
    j = c.join(p, [c.customer_id == p.o_customer_id, p.ordered_at > c.touched_at,
                   p.ordered_at <= c.touched_at + ibis.interval(days=window_days)])
    return j.group_by(["campaign_id", "customer_id"]).aggregate(window_revenue=j.amount.sum())


def _facts_expr(tables: dict[str, ir.Table], window_days: int) -> ir.Table:
    """One row per contact: campaign_id, customer_id, is_control, touched_at, the funnel flags,
    attributed_revenue, contact_cost, window_revenue (0 without a purchase in the window)."""
    c = _contacts_expr(tables["campaign_contacts"], tables["campaigns"])
    w = _window_revenue_expr(c, tables["orders"], window_days).rename(w_campaign_id="campaign_id",
                                                                       w_customer_id="customer_id")
    j = c.left_join(w, [c.campaign_id == w.w_campaign_id, c.customer_id == w.w_customer_id])
    return j.select(
        "campaign_id", "customer_id", "is_control", "touched_at",
        *[f"is_{s}" for s in FUNNEL_STEPS], "attributed_revenue", "contact_cost",
        window_revenue=j.window_revenue.fill_null(0.0),
        has_window_purchase=j.window_revenue.notnull(),
    )


def _flag_count(flag: ir.BooleanColumn, where: ir.BooleanValue) -> ir.IntegerScalar:
    """Number of true values among ``where``; NULL when every value there is null (the step is unavailable)."""
    return flag.sum(where=where & flag.notnull())


def _campaign_expr(tables: dict[str, ir.Table], window_days: int, revenue_basis: str) -> ir.Table:
    """One row per campaign (those with contacts, and those in ``campaigns`` without any): the counts, revenue and
    cost columns of :func:`campaign_summary` (rates are computed on the pulled rows)."""
    f = _facts_expr(tables, window_days)
    t = ~f.is_control
    per = f.group_by("campaign_id").aggregate(
        contacts=f.count(),
        treatment_contacts=t.sum(),
        control_contacts=f.is_control.sum(),
        first_touch_at=f.touched_at.min(),
        **{s: _flag_count(f[f"is_{s}"], t) for s in FUNNEL_STEPS},
        window_buyers=f.has_window_purchase.sum(where=t),
        attributed_revenue=f.attributed_revenue.sum(where=t),
        window_revenue=f.window_revenue.sum(where=t),
        contact_cost_total=f.contact_cost.sum(),
    )
    campaigns = tables["campaigns"]
    ids = campaigns.select("campaign_id").union(per.select("campaign_id"), distinct=True)
    info = campaigns.select(k_campaign_id="campaign_id", campaign_name="campaign_name", channel="channel",
                            start_date="start_date", end_date="end_date", campaign_cost="cost")
    j = ids.left_join(info, ids.campaign_id == info.k_campaign_id).drop("k_campaign_id")
    per = per.rename(p_campaign_id="campaign_id")
    j = j.left_join(per, j.campaign_id == per.p_campaign_id).drop("p_campaign_id")
    if revenue_basis == "auto":
        use_attributed = j.attributed_revenue.notnull()
    else:
        use_attributed = ibis.literal(revenue_basis == "attributed")
    revenue = use_attributed.ifelse(j.attributed_revenue, j.window_revenue)
    basis = use_attributed.ifelse(ibis.literal("attributed"), ibis.literal("window"))
    cost = ibis.coalesce(j.campaign_cost, j.contact_cost_total)
    cost_basis = ibis.cases((j.campaign_cost.notnull(), "campaign"), (j.contact_cost_total.notnull(), "contacts"),
                            else_=ibis.null("string"))
    base = j.treatment_contacts.fill_null(0)
    out = j.mutate(
        channel=j.channel.fill_null("unknown"),
        start_date=ibis.coalesce(j.start_date, j.first_touch_at.date()),
        contacts=j.contacts.fill_null(0),
        treatment_contacts=base,
        control_contacts=j.control_contacts.fill_null(0),
        window_buyers=j.window_buyers.fill_null(0),
        window_revenue=j.window_revenue.fill_null(0.0),
        revenue=revenue, revenue_basis=basis, cost=cost, cost_basis=cost_basis,
    )
    # the base of each step's rate: the previous available step, else the treated contacts
    bases = {}
    previous: list[ir.Value] = []
    for step in FUNNEL_STEPS:
        bases[f"{step}_base"] = ibis.coalesce(*reversed(previous), out.treatment_contacts) if previous \
            else out.treatment_contacts
        previous.append(out[step])
    return out.mutate(**bases).drop("first_touch_at", "campaign_cost", "contact_cost_total")


def _tables(backend) -> dict[str, ir.Table]:
    return {name: backend.table(name) for name in _TABLES}


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    num = pd.to_numeric(num, errors="coerce").astype("Float64")
    den = pd.to_numeric(den, errors="coerce").astype("Float64")
    return (num / den.where(den != 0)).astype("Float64")


_SUMMARY_COLUMNS = (
    "campaign_id", "campaign_name", "channel", "start_date", "end_date", "contacts", "treatment_contacts",
    "control_contacts", *FUNNEL_STEPS, *[f"{s}_step_rate" for s in FUNNEL_STEPS], "response_rate",
    "conversion_rate", "window_buyers", "attributed_revenue", "window_revenue", "revenue", "revenue_basis",
    "cost", "cost_basis", "roi", "cost_per_acquisition",
)
_INT_COLUMNS = ("contacts", "treatment_contacts", "control_contacts", "window_buyers", "campaigns")


def _with_rates(df: pd.DataFrame) -> pd.DataFrame:
    """Rates, ROI and CPA on pulled per-campaign (or per-channel) counts; missing counts stay missing."""
    df = df.copy()
    for col in (*FUNNEL_STEPS, *[f"{s}_base" for s in FUNNEL_STEPS]):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in _INT_COLUMNS:
        if col in df:
            df[col] = df[col].fillna(0).astype("int64")
    for step in FUNNEL_STEPS:
        df[f"{step}_step_rate"] = _ratio(df[step], df[f"{step}_base"])
    df["response_rate"] = _ratio(df["responded"], df["responded_base_contacts"]) \
        if "responded_base_contacts" in df else _ratio(df["responded"], df["treatment_contacts"])
    df["conversion_rate"] = _ratio(df["converted"], df["converted_base_contacts"]) \
        if "converted_base_contacts" in df else _ratio(df["converted"], df["treatment_contacts"])
    for col in ("attributed_revenue", "window_revenue", "revenue", "cost"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Float64")
    df["roi"] = _ratio(df["revenue"] - df["cost"], df["cost"])
    df["cost_per_acquisition"] = _ratio(df["cost"], df["converted"])
    return df


def campaign_summary(backend, window_days: int = DEFAULT_WINDOW_DAYS, revenue_basis: str = "auto") -> pd.DataFrame:
    """One row per campaign, in start-date order (the trend across campaigns): contacts, treated and control
    contacts, the funnel counts and step rates, response and conversion rates, buyers and revenue in the window,
    attributed revenue, revenue (and its basis), cost (and its basis), ROI and cost per acquisition (see
    ``SUMMARY_HELP``). Unavailable funnel steps are NA, not 0.

    ``revenue_basis``: 'auto' (attributed revenue when the campaign has any, else revenue in the window),
    'attributed' or 'window'.
    """
    _check_window(window_days)
    _check_basis(revenue_basis)
    df = backend.execute(_campaign_expr(_tables(backend), window_days, revenue_basis))
    df = _with_rates(df)
    df["start_date"] = pd.to_datetime(df["start_date"]).dt.date
    df["end_date"] = pd.to_datetime(df["end_date"]).dt.date
    df = df.sort_values(["start_date", "campaign_id"], na_position="last").reset_index(drop=True)
    return df[list(_SUMMARY_COLUMNS)]


_CHANNEL_COLUMNS = (
    "channel", "campaigns", "contacts", "treatment_contacts", "control_contacts", *FUNNEL_STEPS,
    *[f"{s}_step_rate" for s in FUNNEL_STEPS], "response_rate", "conversion_rate", "window_buyers",
    "attributed_revenue", "window_revenue", "revenue", "cost", "roi", "cost_per_acquisition",
)


def by_channel(backend, window_days: int = DEFAULT_WINDOW_DAYS, revenue_basis: str = "auto") -> pd.DataFrame:
    """One row per channel, in channel order: campaigns and the sums of :func:`campaign_summary`'s counts, revenue
    and cost, with rates of the sums.

    A funnel step is summed over the channel's campaigns where it is available, and its rate divides by its
    base over the same campaigns; the response and conversion rates divide by the treated contacts of those
    campaigns. Campaigns without a cost are left out of the ROI and CPA (their revenue too).
    """
    _check_window(window_days)
    _check_basis(revenue_basis)
    per = _campaign_expr(_tables(backend), window_days, revenue_basis)
    has_cost = per.cost.notnull()
    sums = {}
    for step in FUNNEL_STEPS:
        known = per[step].notnull()
        sums[step] = per[step].sum(where=known)
        sums[f"{step}_base"] = per[f"{step}_base"].sum(where=known)
    agg = per.group_by("channel").aggregate(
        campaigns=per.count(),
        contacts=per.contacts.sum(),
        treatment_contacts=per.treatment_contacts.sum(),
        control_contacts=per.control_contacts.sum(),
        responded_base_contacts=per.treatment_contacts.sum(where=per.responded.notnull()),
        converted_base_contacts=per.treatment_contacts.sum(where=per.converted.notnull()),
        window_buyers=per.window_buyers.sum(),
        attributed_revenue=per.attributed_revenue.sum(),
        window_revenue=per.window_revenue.sum(),
        revenue=per.revenue.sum(where=has_cost),
        cost=per.cost.sum(),
        cpa_cost=per.cost.sum(where=per.converted.notnull()),
        **sums,
    )
    df = backend.execute(agg.order_by("channel"))
    df = _with_rates(df)
    df["cost_per_acquisition"] = _ratio(df["cpa_cost"], df["converted"])
    return df[list(_CHANNEL_COLUMNS)]


def funnel(summary: pd.DataFrame, campaign_id: str) -> pd.DataFrame:
    """One row per funnel step of one campaign of a :func:`campaign_summary` frame: step, count, step_rate (of the
    previous available step), share_of_contacts (of the treated contacts), is_available. Unavailable steps keep
    their row with NA numbers, so a chart can say 'not in the data' instead of drawing a zero."""
    row = summary.loc[summary["campaign_id"] == campaign_id]
    if row.empty:
        raise ValueError(f"Unknown campaign {campaign_id!r}; choose from {list(summary['campaign_id'])}")
    row = row.iloc[0]
    treated = row["treatment_contacts"]
    out = []
    for step in FUNNEL_STEPS:
        count = row[step]
        available = not pd.isna(count)
        out.append({"step": step, "count": count if available else pd.NA,
                    "step_rate": row[f"{step}_step_rate"],
                    "share_of_contacts": (count / treated) if available and treated else pd.NA,
                    "is_available": available})
    df = pd.DataFrame(out)
    df["count"] = df["count"].astype("Int64")
    df["step_rate"] = df["step_rate"].astype("Float64")
    df["share_of_contacts"] = df["share_of_contacts"].astype("Float64")
    return df


# --------------------------------------------------------------------------------------------- RFM segments
def _campaign_starts(backend, tables: dict[str, ir.Table]) -> dict[str, date]:
    """campaign_id → start date (the campaign's start_date, else the day of its first contact) of the campaigns
    with contacts, in start order."""
    c = _contacts_expr(tables["campaign_contacts"], tables["campaigns"])
    per = c.group_by("campaign_id").aggregate(start=ibis.coalesce(c.campaign_start.min(), c.touched_at.min().date()))
    df = backend.execute(per).dropna(subset=["start"])
    df["start"] = pd.to_datetime(df["start"]).dt.date
    return {r.campaign_id: r.start for r in df.sort_values(["start", "campaign_id"]).itertuples()}


def _empty(columns) -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(dtype="object") for k in columns})


def _segments_expr(tables: dict[str, ir.Table], starts: dict[str, date], bins: int) -> ir.Table:
    """One row per (campaign, customer) with a segment as of the day before the campaign's start."""
    parts = []
    for campaign_id, start in starts.items():
        r = rfm_expr(tables["orders"], start - timedelta(days=1), bins)
        parts.append(r.select(s_campaign_id=ibis.literal(campaign_id, type="string"), s_customer_id=r.customer_id,
                              segment=r.segment))
    return ibis.union(*parts) if len(parts) > 1 else parts[0]


def _segment_rates_expr(tables: dict[str, ir.Table], starts: dict[str, date], bins: int) -> ir.Table:
    c = tables["campaign_contacts"]
    c = c.filter(~_is_control(c))
    s = _segments_expr(tables, starts, bins)
    j = c.left_join(s, [c.campaign_id == s.s_campaign_id, c.customer_id == s.s_customer_id])
    j = j.mutate(segment=j.segment.fill_null(NOT_YET_CUSTOMER))
    return j.group_by(["campaign_id", "segment"]).aggregate(
        treatment_contacts=j.count(),
        converted=_flag_count(j.is_converted, ibis.literal(True)),
        responded=_flag_count(j.is_responded, ibis.literal(True)),
    )


def by_segment(backend, bins: int = 5) -> pd.DataFrame:
    """One row per campaign and RFM segment (as of the day before the campaign's start) with treated contacts:
    campaign_id, segment, treatment_contacts, converted, conversion_rate, responded, response_rate (see
    ``SEGMENT_HELP``); campaigns in start-date order, segments in ``SEGMENTS`` order, 'Not yet a customer' last."""
    tables = _tables(backend)
    starts = _campaign_starts(backend, tables)
    if not starts:
        return _empty(SEGMENT_LABELS)
    df = backend.execute(_segment_rates_expr(tables, starts, bins))
    order_c = {cid: i for i, cid in enumerate(starts)}
    order_s = {s: i for i, s in enumerate((*SEGMENTS, NOT_YET_CUSTOMER))}
    df = df.assign(_c=df["campaign_id"].map(order_c), _s=df["segment"].map(order_s))
    df = df.sort_values(["_c", "_s"]).drop(columns=["_c", "_s"]).reset_index(drop=True)
    df["treatment_contacts"] = df["treatment_contacts"].astype("int64")
    df["converted"] = pd.to_numeric(df["converted"]).astype("Int64")
    df["responded"] = pd.to_numeric(df["responded"]).astype("Int64")
    df["conversion_rate"] = _ratio(df["converted"], df["treatment_contacts"])
    df["response_rate"] = _ratio(df["responded"], df["treatment_contacts"])
    return df[list(SEGMENT_LABELS)]


def segment_heatmap(segments: pd.DataFrame, value: str = "conversion_rate") -> pd.DataFrame:
    """Campaign × segment matrix of ``value`` from a :func:`by_segment` frame: one row per campaign (in the
    frame's order), one column per segment present (in ``SEGMENTS`` order); NA where a campaign reached nobody of
    a segment or the value is unavailable."""
    if value not in segments.columns:
        raise ValueError(f"Unknown value {value!r}; choose from {list(segments.columns[2:])}")
    campaigns = list(dict.fromkeys(segments["campaign_id"]))
    present = [s for s in (*SEGMENTS, NOT_YET_CUSTOMER) if s in set(segments["segment"])]
    wide = segments.pivot(index="campaign_id", columns="segment", values=value)
    return wide.reindex(index=campaigns, columns=present)


# --------------------------------------------------------------------------------------------- lift statistics
def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (no continuity correction) of the proportion ``successes / n``.

    >>> [round(v, 4) for v in wilson_interval(3, 10)]
    [0.1078, 0.6032]
    """
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes} of {n}")
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class MetricLift:
    """Treatment against control for one metric: the two values, the absolute lift with its interval, the relative
    lift with its interval, the p-value, and how each was computed. A number that cannot be computed is None and
    ``note`` says why."""

    metric: str
    treatment: float
    control: float
    absolute_lift: float
    ci_low: float
    ci_high: float
    relative_lift: float | None
    relative_ci_low: float | None
    relative_ci_high: float | None
    p_value: float | None
    interval_method: str
    test: str
    note: str = ""

    @property
    def is_significant(self) -> bool:
        """True when the two-sided p-value is below 0.05."""
        return self.p_value is not None and self.p_value < 0.05


_NEWCOMBE = "Newcombe hybrid score interval (from two Wilson intervals)"
_KATZ = "Katz log-ratio interval"
_ZTEST = "two-proportion z-test, pooled (= chi-square without continuity correction)"
_WELCH = "Welch's t interval"
_WELCH_TEST = "Welch's t-test (unequal variances)"
_DELTA_LOG = "delta method on the log of the ratio of means"


def proportion_lift(x_t: int, n_t: int, x_c: int, n_c: int, metric: str = "conversion_rate",
                    confidence: float = 0.95) -> MetricLift:
    """Lift of the proportion ``x_t / n_t`` (treatment) over ``x_c / n_c`` (control): Newcombe's hybrid score
    interval of the difference, the Katz log-ratio interval of the relative lift and the two-sided p-value of the
    pooled two-proportion z-test.

    >>> r = proportion_lift(30, 100, 20, 100)
    >>> round(r.absolute_lift, 2), round(r.ci_low, 4), round(r.ci_high, 4), round(r.p_value, 4)
    (0.1, -0.0202, 0.2167, 0.1025)
    """
    if n_t <= 0 or n_c <= 0:
        raise ValueError(f"both groups need contacts, got {n_t} treated and {n_c} control")
    z = _z(confidence)
    p_t, p_c = x_t / n_t, x_c / n_c
    l_t, u_t = wilson_interval(x_t, n_t, confidence)
    l_c, u_c = wilson_interval(x_c, n_c, confidence)
    diff = p_t - p_c
    low = diff - math.sqrt((p_t - l_t) ** 2 + (u_c - p_c) ** 2)
    high = diff + math.sqrt((u_t - p_t) ** 2 + (p_c - l_c) ** 2)
    notes = []
    rel = rel_low = rel_high = None
    if x_t > 0 and x_c > 0:
        rr = p_t / p_c
        se = math.sqrt(1 / x_t - 1 / n_t + 1 / x_c - 1 / n_c)
        rel, rel_low, rel_high = rr - 1, math.exp(math.log(rr) - z * se) - 1, math.exp(math.log(rr) + z * se) - 1
    elif x_c == 0:
        notes.append("no successes in the control group, so a relative lift is not defined")
    else:
        notes.append("no successes in the treated group, so the relative lift's interval is not defined")
        rel = -1.0
    pooled = (x_t + x_c) / (n_t + n_c)
    p_value = None
    if 0 < pooled < 1:
        se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
        p_value = float(2 * stats.norm.sf(abs(diff) / se0))
    else:
        notes.append("every contact in both groups had the same outcome, so no test is possible")
    return MetricLift(metric, p_t, p_c, diff, low, high, rel, rel_low, rel_high, p_value, _NEWCOMBE,
                      _ZTEST, "; ".join(notes))


def mean_lift(mean_t: float, var_t: float, n_t: int, mean_c: float, var_c: float, n_c: int,
              metric: str = "revenue_per_contact", confidence: float = 0.95) -> MetricLift:
    """Lift of a mean (treatment over control) from each group's mean, sample variance (ddof 1) and size:
    Welch's t interval and two-sided p-value of the difference; the relative lift's interval by the delta method
    on the log of the ratio of means (when both means are positive)."""
    if n_t < 2 or n_c < 2:
        raise ValueError(f"each group needs at least 2 contacts, got {n_t} treated and {n_c} control")
    diff = mean_t - mean_c
    a, b = var_t / n_t, var_c / n_c
    se = math.sqrt(a + b)
    notes = []
    if se > 0:
        df = (a + b) ** 2 / (a * a / (n_t - 1) + b * b / (n_c - 1))
        q = float(stats.t.ppf(0.5 + confidence / 2, df))
        low, high = diff - q * se, diff + q * se
        p_value = float(2 * stats.t.sf(abs(diff) / se, df))
    else:
        low = high = diff
        p_value = None
        notes.append("every contact has the same value, so no test is possible")
    rel = rel_low = rel_high = None
    if mean_c > 0 and mean_t > 0:
        z = _z(confidence)
        ratio = mean_t / mean_c
        se_log = math.sqrt(var_t / (n_t * mean_t ** 2) + var_c / (n_c * mean_c ** 2))
        rel = ratio - 1
        rel_low, rel_high = math.exp(math.log(ratio) - z * se_log) - 1, math.exp(math.log(ratio) + z * se_log) - 1
    elif mean_c > 0:
        rel = mean_t / mean_c - 1
        notes.append("the treated mean is not positive, so the relative lift's interval is not defined")
    else:
        notes.append("the control mean is not positive, so a relative lift is not defined")
    return MetricLift(metric, mean_t, mean_c, diff, low, high, rel, rel_low, rel_high, p_value, _WELCH,
                      _WELCH_TEST, "; ".join(notes))


def minimum_detectable_effect(rate: float, n_t: int, n_c: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest absolute difference of proportions a two-sided test at level ``alpha`` detects with ``power``,
    for groups of ``n_t`` and ``n_c`` around a base ``rate``: (z₁₋α/₂ + z_power) × √(rate(1 − rate)(1/n_t + 1/n_c)).

    >>> round(minimum_detectable_effect(0.05, 1000, 40), 3)
    0.098
    """
    if n_t <= 0 or n_c <= 0:
        raise ValueError(f"both groups need contacts, got {n_t} treated and {n_c} control")
    rate = min(max(rate, 0.0), 1.0)
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(z * math.sqrt(rate * (1 - rate) * (1 / n_t + 1 / n_c)))


@dataclass(frozen=True)
class LiftResult:
    """Control-group lift of one campaign. Without a control group every number is None and ``verdict`` says so.

    ``conversion``, ``response`` and ``revenue`` (revenue per contact) are :class:`MetricLift` or None when the
    metric is not in the data. ``incremental_*`` = lift × treated contacts, with the interval's ends likewise;
    ``incremental_roi`` = (incremental revenue − cost) ÷ cost. ``mde_conversion`` is the smallest absolute
    conversion lift the groups could detect (80% power, 5% two-sided). ``verdict`` reads the result in words.
    """

    campaign_id: str
    campaign_name: str | None
    has_control: bool
    treatment_contacts: int
    control_contacts: int
    conversion: MetricLift | None
    response: MetricLift | None
    revenue: MetricLift | None
    revenue_basis: str | None
    incremental_conversions: float | None
    incremental_conversions_low: float | None
    incremental_conversions_high: float | None
    incremental_revenue: float | None
    incremental_revenue_low: float | None
    incremental_revenue_high: float | None
    cost: float | None
    incremental_roi: float | None
    mde_conversion: float | None
    verdict: str

    @property
    def is_significant(self) -> bool | None:
        """Whether the conversion lift (else the revenue lift) is significant at 5%; None without a control."""
        main = self.conversion or self.revenue
        return None if main is None else main.is_significant

    def frame(self) -> pd.DataFrame:
        """One row per measured metric with the columns of ``LIFT_LABELS``; empty without a control group."""
        rows = [{"campaign_id": self.campaign_id, **asdict(m)} for m in (self.conversion, self.response, self.revenue)
                if m is not None]
        return pd.DataFrame(rows, columns=list(LIFT_LABELS))


def _lift_expr(tables: dict[str, ir.Table], window_days: int, campaign_id: str | None) -> ir.Table:
    """One row per campaign and group (is_control): contacts, the flag counts (with how many are known), sent,
    mean and sample variance of attributed revenue (nulls as 0) and of revenue in the window."""
    f = _facts_expr(tables, window_days)
    if campaign_id is not None:
        f = f.filter(f.campaign_id == campaign_id)
    attributed = f.attributed_revenue.fill_null(0.0)
    return f.group_by(["campaign_id", "is_control"]).aggregate(
        n=f.count(),
        converted=f.is_converted.sum(), converted_known=f.is_converted.count(),
        responded=f.is_responded.sum(), responded_known=f.is_responded.count(),
        sent=f.is_sent.sum(),
        attributed_known=f.attributed_revenue.count(),
        attributed_mean=attributed.mean(), attributed_var=attributed.var(),
        window_mean=f.window_revenue.mean(), window_var=f.window_revenue.var(),
        contact_cost=f.contact_cost.sum(),
    )


def _pts(x: float) -> str:
    """A difference of proportions in points: 0.0177 → '1.8', 0.12 → '12'."""
    v = x * 100
    return f"{v:.0f}" if abs(v) >= 10 else f"{v:.1f}"


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _p(p: float | None) -> str:
    if p is None:
        return "no test possible"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def _lift_result(campaign_id: str, name: str | None, cost: float | None, g: pd.DataFrame, revenue_basis: str,
                 window_days: int) -> LiftResult:
    t = g.loc[~g["is_control"]]
    c = g.loc[g["is_control"]]
    n_t = int(t["n"].sum())
    n_c = int(c["n"].sum())
    none = dict(conversion=None, response=None, revenue=None, revenue_basis=None, incremental_conversions=None,
                incremental_conversions_low=None, incremental_conversions_high=None, incremental_revenue=None,
                incremental_revenue_low=None, incremental_revenue_high=None, incremental_roi=None,
                mde_conversion=None)
    label = f"{campaign_id}" + (f" ({name})" if name else "")
    if n_c == 0 or n_t == 0:
        if n_c == 0:
            verdict = (f"{label} has no control group: everyone targeted was sent the campaign, so what it caused "
                       "cannot be told apart from what would have happened anyway. Hold out a random 10-20% of the "
                       "audience next time to measure its lift.")
        else:
            verdict = f"{label} has only control contacts, so there is no treated group to compare."
        return LiftResult(campaign_id, name, False, n_t, n_c, cost=cost, verdict=verdict, **none)
    t, c = t.iloc[0], c.iloc[0]

    def known(col: str) -> bool:
        return bool(t[f"{col}_known"] > 0 and c[f"{col}_known"] > 0)

    conversion = response = revenue = None
    if known("converted"):
        conversion = proportion_lift(int(t["converted"]), n_t, int(c["converted"]), n_c, "conversion_rate")
    if known("responded"):
        response = proportion_lift(int(t["responded"]), n_t, int(c["responded"]), n_c, "response_rate")
        if int(c["responded"]) == 0 and not (c["sent"] > 0):
            response = _with_note(response, "the control group was not sent anything, so it could not respond: "
                                            "this lift is the treated response rate, not an incremental effect")
    basis = revenue_basis
    if basis == "auto":
        basis = "attributed" if known("attributed") else "window"
    if n_t >= 2 and n_c >= 2:
        revenue = mean_lift(float(t[f"{basis}_mean"]), float(t[f"{basis}_var"]), n_t, float(c[f"{basis}_mean"]),
                            float(c[f"{basis}_var"]), n_c, "revenue_per_contact")
        if basis == "window":
            revenue = _with_note(revenue, f"revenue per contact is the value of purchases within {window_days} "
                                          "days after the contact")
    inc = {}
    if conversion is not None:
        inc.update(incremental_conversions=conversion.absolute_lift * n_t,
                   incremental_conversions_low=conversion.ci_low * n_t,
                   incremental_conversions_high=conversion.ci_high * n_t)
    if revenue is not None:
        inc.update(incremental_revenue=revenue.absolute_lift * n_t, incremental_revenue_low=revenue.ci_low * n_t,
                   incremental_revenue_high=revenue.ci_high * n_t)
        if cost:
            inc["incremental_roi"] = (revenue.absolute_lift * n_t - cost) / cost
    mde = None
    if conversion is not None:
        pooled = (int(t["converted"]) + int(c["converted"])) / (n_t + n_c)
        mde = minimum_detectable_effect(pooled, n_t, n_c)
    fields = {**none, "conversion": conversion, "response": response, "revenue": revenue,
              "revenue_basis": basis if revenue is not None else None, "mde_conversion": mde, **inc}
    verdict = _verdict(label, n_t, n_c, fields, cost)
    return LiftResult(campaign_id, name, True, n_t, n_c, cost=cost, verdict=verdict, **fields)


def _with_note(m: MetricLift, note: str) -> MetricLift:
    return MetricLift(**{**asdict(m), "note": "; ".join(x for x in (m.note, note) if x)})


def _verdict(label: str, n_t: int, n_c: int, f: dict, cost: float | None) -> str:
    conversion, revenue = f["conversion"], f["revenue"]
    parts = []
    main = conversion or revenue
    if main is None:
        return (f"{label}: the export has neither conversions nor revenue for both groups, so no lift can be "
                "measured.")
    if conversion is not None:
        m = conversion
        parts.append(f"{label}: treated customers converted at {_pct(m.treatment)} against {_pct(m.control)} in "
                     f"the control group, a lift of {_pts(m.absolute_lift)} points (95% CI {_pts(m.ci_low)} to "
                     f"{_pts(m.ci_high)}; {_p(m.p_value)}).")
    else:
        m = revenue
        parts.append(f"{label}: revenue per contact was {m.treatment:,.2f} treated against {m.control:,.2f} in the "
                     f"control group, a lift of {m.absolute_lift:,.2f} (95% CI {m.ci_low:,.2f} to {m.ci_high:,.2f}; "
                     f"{_p(m.p_value)}).")
    if main.is_significant:
        if main.absolute_lift > 0:
            extra = []
            if f["incremental_conversions"] is not None:
                extra.append(f"about {f['incremental_conversions']:,.0f} extra conversions")
            if f["incremental_revenue"] is not None:
                extra.append(f"{f['incremental_revenue']:,.0f} extra revenue")
            tail = f" ({' and '.join(extra)}" if extra else ""
            if tail and f["incremental_roi"] is not None:
                tail += f"; incremental ROI {f['incremental_roi']:.2f}"
            parts.append("The campaign made a real difference" + (tail + ")." if tail else "."))
        else:
            parts.append("The treated group did worse than the control group: the campaign appears to have hurt.")
    else:
        parts.append("That is not enough evidence that the campaign changed anything.")
        if f["mde_conversion"] is not None:
            parts.append(f"With {n_c:,} control and {n_t:,} treated contacts, only a lift of "
                         f"{_pts(f['mde_conversion'])} points or more could be detected reliably (80% power, 5% "
                         "significance).")
    if revenue is not None and conversion is not None:
        parts.append(f"Revenue per contact: {revenue.absolute_lift:+,.2f} (95% CI {revenue.ci_low:,.2f} to "
                     f"{revenue.ci_high:,.2f}; {_p(revenue.p_value)}).")
    return " ".join(parts)


def _lift_results(backend, window_days: int, revenue_basis: str, campaign_id: str | None) -> list[LiftResult]:
    tables = _tables(backend)
    groups = backend.execute(_lift_expr(tables, window_days, campaign_id))
    camps = tables["campaigns"]
    if campaign_id is not None:
        camps = camps.filter(camps.campaign_id == campaign_id)
    info = backend.execute(camps.select("campaign_id", "campaign_name", "start_date", "cost"))
    if campaign_id is not None and groups.empty and info.empty:
        known = backend.execute(tables["campaigns"].select("campaign_id").order_by("campaign_id"))
        raise ValueError(f"Unknown campaign {campaign_id!r}; choose from {list(known['campaign_id'])}")
    contact_cost = groups.groupby("campaign_id")["contact_cost"].sum(min_count=1)
    info = info.set_index("campaign_id")
    order = _start_order(info, groups)
    results = []
    for cid in order:
        g = groups.loc[groups["campaign_id"] == cid]
        name = info["campaign_name"].get(cid) if cid in info.index else None
        cost = info["cost"].get(cid) if cid in info.index else None
        if cost is None or pd.isna(cost):
            cost = contact_cost.get(cid)
        cost = None if cost is None or pd.isna(cost) else float(cost)
        name = None if name is None or pd.isna(name) else str(name)
        results.append(_lift_result(cid, name, cost, g, revenue_basis, window_days))
    return results


def _start_order(info: pd.DataFrame, groups: pd.DataFrame) -> list[str]:
    ids = list(dict.fromkeys([*info.index, *groups["campaign_id"]]))
    start = {cid: info["start_date"].get(cid) if cid in info.index else None for cid in ids}
    return sorted(ids, key=lambda k: (start[k] is None or pd.isna(start[k]),
                                      pd.Timestamp(start[k]) if start[k] is not None and not pd.isna(start[k])
                                      else pd.Timestamp(0), k))


def lift(backend, campaign_id: str, window_days: int = DEFAULT_WINDOW_DAYS, revenue_basis: str = "auto") -> LiftResult:
    """Control-group lift of one campaign (see the module docstring for the statistics) as a :class:`LiftResult`.

    Revenue per contact uses attributed revenue when both groups have some ('auto'), else the value of purchases
    within ``window_days`` after the contact; ``revenue_basis`` 'attributed' or 'window' forces one.
    """
    _check_window(window_days)
    _check_basis(revenue_basis)
    return _lift_results(backend, window_days, revenue_basis, campaign_id)[0]


def lift_all(backend, window_days: int = DEFAULT_WINDOW_DAYS, revenue_basis: str = "auto") -> tuple[LiftResult, ...]:
    """One :class:`LiftResult` per campaign, in start-date order (campaigns without a control group included,
    with a verdict that says so)."""
    _check_window(window_days)
    _check_basis(revenue_basis)
    return tuple(_lift_results(backend, window_days, revenue_basis, None))


def lift_frame(results) -> pd.DataFrame:
    """One row per campaign and measured metric of :class:`LiftResult` s (columns of ``LIFT_LABELS``)."""
    frames = [r.frame() for r in results]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=list(LIFT_LABELS))
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------------- attribution
def _attribution_expr(tables: dict[str, ir.Table], window_days: int) -> ir.Table:
    """One row per campaign with a touched purchase: touched_orders, multi_touch_orders, last_touch_orders,
    last_touch_revenue, linear_orders, linear_revenue."""
    c = _contacts_expr(tables["campaign_contacts"], tables["campaigns"])
    c = c.filter(~c.is_control & c.is_sent.fill_null(True) & c.touched_at.notnull()).view()
    p = _purchases(tables["orders"])
    j = c.join(p, [c.customer_id == p.o_customer_id, p.ordered_at > c.touched_at,
                   p.ordered_at <= c.touched_at + ibis.interval(days=window_days)])
    j = j.select("campaign_id", "touched_at", "o_order_id", "amount")
    per_order = ibis.window(group_by="o_order_id")
    latest = ibis.window(group_by="o_order_id", order_by=[ibis.desc("touched_at"), ibis.desc("campaign_id")])
    j = j.mutate(touches=j.campaign_id.count().over(per_order), rank=ibis.row_number().over(latest))
    is_last = j["rank"] == 0
    return j.group_by("campaign_id").aggregate(
        touched_orders=j.count(),
        multi_touch_orders=(j.touches > 1).sum(),
        last_touch_orders=is_last.sum(),
        last_touch_revenue=j.amount.sum(where=is_last),
        linear_orders=(1.0 / j.touches).sum(),
        linear_revenue=(j.amount / j.touches).sum(),
    )


def attribution(backend, window_days: int = DEFAULT_WINDOW_DAYS) -> pd.DataFrame:
    """One row per campaign, in start-date order: purchases within ``window_days`` after its treated, sent contacts
    (touched_orders, of them multi_touch_orders) and the conversions and revenue credited to it by last-touch and
    by linear attribution (see ``ATTRIBUTION_RULES``, ``ATTRIBUTION_HELP``). Campaigns without a touched purchase
    have zeros. Over all campaigns, each rule credits every touched purchase exactly once."""
    _check_window(window_days)
    tables = _tables(backend)
    df = backend.execute(_attribution_expr(tables, window_days))
    info = backend.execute(tables["campaigns"].select("campaign_id", "campaign_name", "start_date"))
    order = _start_order(info.set_index("campaign_id"), df)
    df = df.set_index("campaign_id").reindex(order).rename_axis("campaign_id").reset_index()
    df = df.merge(info[["campaign_id", "campaign_name"]], on="campaign_id", how="left")
    for col in ("touched_orders", "multi_touch_orders", "last_touch_orders"):
        df[col] = df[col].fillna(0).astype("int64")
    for col in ("last_touch_revenue", "linear_orders", "linear_revenue"):
        df[col] = df[col].astype("float64").fillna(0.0)
    return df[list(ATTRIBUTION_LABELS)]


# --------------------------------------------------------------------------------------------- reading
def read_summary(summary: pd.DataFrame) -> str:
    """One sentence that reads a :func:`campaign_summary` frame for a manager."""
    if summary.empty:
        return "No campaigns yet: import campaigns and campaign contacts to see their response."
    n = len(summary)
    rated = summary.dropna(subset=["conversion_rate"])
    parts = [f"{n} campaign{'s' if n != 1 else ''} from {summary['start_date'].min()} to "
             f"{summary['start_date'].max()}"]
    if not rated.empty:
        lo = rated.loc[rated["conversion_rate"].astype(float).idxmin()]
        hi = rated.loc[rated["conversion_rate"].astype(float).idxmax()]
        if len(rated) == 1 or lo["conversion_rate"] == hi["conversion_rate"]:
            parts.append(f"conversion was {_pct(hi['conversion_rate'])} in "
                         + (f"{hi['campaign_id']}" if len(rated) == 1 else f"each of the {len(rated)} with a "
                            "conversion flag"))
        else:
            parts.append(f"conversion ranged from {_pct(lo['conversion_rate'])} ({lo['campaign_id']}) to "
                         f"{_pct(hi['conversion_rate'])} ({hi['campaign_id']})")
    with_roi = summary.dropna(subset=["roi"])
    if not with_roi.empty:
        best = with_roi.loc[with_roi["roi"].astype(float).idxmax()]
        paid = int((with_roi["roi"].astype(float) > 0).sum())
        parts.append(f"{paid} of {len(with_roi)} paid for themselves; best ROI {best['roi']:.2f} "
                     f"({best['campaign_id']}, on {best['revenue_basis']} revenue)")
    return "; ".join(parts) + "."
