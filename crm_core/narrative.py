"""One sentence that reads a result for a manager, and the number formats the app shows.

Pages call these instead of composing numbers themselves, so every reading is tested with the metric it reads.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from crm_core.metrics import Overview
from crm_core.segments import AT_RISK_SEGMENTS

__all__ = ["action_list_reading", "attribution_reading", "backlog_reading", "basket_reading", "breakdown_reading",
           "calibration_reading", "campaign_segment_reading", "carrier_reading", "channel_breach_reading",
           "channel_reading", "channel_usage_reading", "churn_model_reading", "churn_reading", "cluster_reading",
           "clv_reading", "cohort_reading", "complaint_category_reading", "complaints_reading",
           "contact_points_reading", "csat_distribution_reading", "csat_reading", "day", "delivery_nps_reading",
           "drivers_reading", "format_delta", "format_value", "fulfilment_month_reading", "fulfilment_reading",
           "fulfilment_region_reading", "funnel_reading", "highest_late_rate", "holdout_reading", "influence_reading",
           "late_effect_reading", "lead_time_reading", "migration_reading", "next_best_reading", "no_control_reading",
           "nps_reading", "nps_segment_reading", "nps_trend_reading", "overview_reading", "qini_reading",
           "quadrant_reading", "quintile_reading", "segment_reading", "support_reading", "targets_reading",
           "themes_reading", "ticket_trend_reading", "tier_reading", "tier_service_reading", "trend_reading",
           "value_reading", "whale_reading"]


def _missing(x) -> bool:
    """None, NaN, NaT or pandas' NA (a nullable column's empty cell)."""
    if x is None:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):  # not a scalar
        return False


def format_value(value, unit: str) -> str:
    """A KPI value as people read it: counts with thousands separators, money whole from 100 up (2 decimals
    below), fractions as percentages.

    >>> format_value(1234, "count"), format_value(1234.5, "currency"), format_value(0.2346, "pct")
    ('1,234', '1,234', '23.5%')
    >>> format_value(None, "pct"), format_value(pd.NA, "currency"), format_value(7.333, "ratio")
    ('–', '–', '7.33')
    """
    if _missing(value):
        return "–"
    if unit == "pct":
        return f"{value:.1%}"
    if unit == "ratio":
        return f"{value:,.2f}"
    if unit == "currency":
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,.0f}"


def format_delta(delta, unit: str) -> str | None:
    """The change against the previous period, signed; percentage points for rates.

    >>> format_delta(0.031, "pct"), format_delta(-120, "count"), format_delta(None, "count")
    ('+3.1 pts', '-120', None)
    >>> format_delta(-0.0004, "pct"), format_delta(0.2, "count")
    ('0.0 pts', '0')
    """
    if _missing(delta):
        return None
    if unit == "pct":
        return "0.0 pts" if abs(delta) < 0.0005 else f"{delta * 100:+.1f} pts"
    if unit == "count" and abs(delta) < 0.5:
        return "0"
    if unit == "currency":
        return f"{delta:+,.2f}" if abs(delta) < 100 else f"{delta:+,.0f}"
    return f"{delta:+,.0f}"


def day(d: date) -> str:
    """A date as people write it: ``1 May 2026``."""
    return f"{d.day} {d:%b %Y}"


def _change(pct) -> str:
    if _missing(pct):
        return "with nothing to compare in the previous period"
    if abs(pct) < 0.005:
        return "flat on the previous period"
    return f"{'up' if pct > 0 else 'down'} {abs(pct):.0%} on the previous period"


def overview_reading(ov: Overview) -> str:
    """E.g. "In the 30 days to 30 Jun 2026, net revenue was 41,520, up 6% on the previous period, from 512 orders
    by 430 active customers; 38% of the previous period's active customers bought again."
    """
    k = {x.key: x for x in ov.kpis}
    days = (ov.period.end - ov.period.start).days + 1
    rev, orders, active = k["revenue"], k["orders"], k["active_customers"]
    if not orders.value and not rev.value:
        return f"No orders in the {days} days to {day(ov.period.end)}; widen the date range or import orders."
    text = (f"In the {days} days to {day(ov.period.end)}, net revenue was {format_value(rev.value, 'currency')}, "
            f"{_change(rev.delta_pct)}, from {format_value(orders.value, 'count')} orders by "
            f"{format_value(active.value, 'count')} active customers")
    ret = k["retention_rate"]
    if not _missing(ret.value):
        text += f"; {ret.value:.0%} of the previous period's active customers bought again"
    return text + "."


def trend_reading(trend: pd.DataFrame, column: str, label: str, unit: str = "count") -> str:
    """Where the monthly series peaked and how the last three months compare with the three before.

    The first and last months may be partial; the comparison uses full months only when there are enough.
    """
    if trend.empty or column not in trend or trend[column].fillna(0).eq(0).all():
        return f"No {label.lower()} in this range."
    s = trend.set_index("month")[column].astype("float64")
    peak_month = s.idxmax()
    text = f"{label} peaked in {pd.Timestamp(peak_month):%b %Y} at {format_value(s.max(), unit)}"
    if len(s) >= 7:
        full = s.iloc[1:-1] if len(s) >= 8 else s.iloc[:-1]
        last3, prev3 = full.iloc[-3:].mean(), full.iloc[-6:-3].mean()
        if prev3:
            change = last3 / prev3 - 1
            direction = "above" if change > 0 else "below"
            text += (f"; the last three full months averaged {format_value(last3, unit)}, "
                     f"{abs(change):.0%} {direction} the three months before")
    return text + "."


def segment_reading(summary: pd.DataFrame) -> str:
    """Who holds the revenue: the segment with the largest revenue share against its share of customers, and the
    customers at risk of being lost.

    >>> s = pd.DataFrame({"segment": ["Champions", "At risk", "Can't lose them", "Lost"],
    ...                   "customers": [40, 90, 10, 860], "share_of_customers": [0.04, 0.09, 0.01, 0.86],
    ...                   "share_of_revenue": [0.31, 0.15, 0.04, 0.50]})
    >>> import textwrap
    >>> print(textwrap.fill(segment_reading(s), 110))
    Lost are 86% of customers and 50% of revenue; Champions are 4% of customers and 31%. At risk and Can't lose
    them, 100 customers, hold 19% of revenue.
    """
    s = summary[summary["customers"] > 0].sort_values("share_of_revenue", ascending=False)
    if s.empty:
        return "No customer has a purchase by this date; import orders to see segments."
    top = s.iloc[0]
    text = (f"{top.segment} are {top.share_of_customers:.0%} of customers and {top.share_of_revenue:.0%} of "
            "revenue")
    champions = s[s.segment == "Champions"]
    if top.segment != "Champions" and not champions.empty:
        c = champions.iloc[0]
        text += f"; Champions are {c.share_of_customers:.0%} of customers and {c.share_of_revenue:.0%}"
    text += "."
    risk = s[s.segment.isin(AT_RISK_SEGMENTS)]
    if not risk.empty:
        text += (f" {' and '.join(risk.segment)}, {format_value(risk.customers.sum(), 'count')} customers, hold "
                 f"{risk.share_of_revenue.sum():.0%} of revenue.")
    return text


def migration_reading(flows: pd.DataFrame, from_date: date, to_date: date) -> str:
    """How many scored customers changed segment between two dates, and the largest move between two segments.

    >>> f = pd.DataFrame({"from_segment": ["Not yet a customer", "Loyal", "Loyal", "Lost"],
    ...                   "to_segment": ["New", "Loyal", "At risk", "Lost"], "customers": [50, 70, 30, 100]})
    >>> import textwrap
    >>> print(textwrap.fill(migration_reading(f, date(2026, 1, 1), date(2026, 6, 30)), 110))
    Between 1 Jan 2026 and 30 Jun 2026, 30 of 200 existing customers (15%) changed segment; the largest move was
    30 from Loyal to At risk. 50 new customers were scored.
    """
    existing = flows[flows.from_segment != "Not yet a customer"]
    new = int(flows.customers.sum() - existing.customers.sum())
    if existing.empty:
        return f"No customer had a purchase by {day(from_date)}; pick an earlier start date."
    moved = existing[existing.from_segment != existing.to_segment]
    n, total = int(moved.customers.sum()), int(existing.customers.sum())
    text = (f"Between {day(from_date)} and {day(to_date)}, {format_value(n, 'count')} of "
            f"{format_value(total, 'count')} existing customers ({n / total:.0%}) changed segment")
    if not moved.empty:
        big = moved.sort_values("customers", ascending=False).iloc[0]
        text += f"; the largest move was {format_value(big.customers, 'count')} from {big.from_segment} to " \
                f"{big.to_segment}"
    text += "."
    if new:
        text += f" {format_value(new, 'count')} new customers were scored."
    return text


def cluster_reading(profiles: pd.DataFrame, k: int, silhouette: float) -> str:
    """The group that brings the most revenue against its size, and how well the groups separate.

    >>> p = pd.DataFrame({"cluster_name": ["frequent big spenders", "buyers, mostly web"],
    ...                   "share_of_customers": [0.23, 0.77], "revenue_share": [0.63, 0.37]})
    >>> import textwrap
    >>> print(textwrap.fill(cluster_reading(p, 2, 0.29), 110))
    Frequent big spenders are 23% of customers and bring 63% of revenue. 2 groups were found (silhouette 0.29:
    groups overlap, read them as tendencies).
    """
    if profiles.empty:
        return "No customer has a purchase by this date; import orders to see clusters."
    top = profiles.sort_values("revenue_share", ascending=False).iloc[0]
    name = top.cluster_name[:1].upper() + top.cluster_name[1:]
    quality = ("well separated" if silhouette >= 0.5 else "distinct but overlapping" if silhouette >= 0.35
               else "groups overlap, read them as tendencies")
    return (f"{name} are {top.share_of_customers:.0%} of customers and bring {top.revenue_share:.0%} of revenue. "
            f"{k} groups were found (silhouette {silhouette:.2f}: {quality}).")


def value_reading(totals) -> str:
    """Profit after the cost of goods and the cost to serve (a ``value.ValueTotals``).

    >>> from types import SimpleNamespace as T
    >>> import textwrap
    >>> t = T(customers=4998, revenue=1247046.9, gross_margin=442117.9, gross_margin_rate=0.3545, cost_to_serve=70155.3,
    ...       profit=371962.6, estimated_margin_share=0.0)
    >>> print(textwrap.fill(value_reading(t), 110))
    4,998 customers brought 1,247,047 of net revenue and 442,118 of gross margin (35%); serving them cost 70,155,
    leaving 371,963 of profit.
    """
    if not totals.customers:
        return "No customer has orders, tickets or contacts in this window; import orders or widen the window."
    rate = "" if totals.gross_margin_rate is None else f" ({totals.gross_margin_rate:.0%})"
    text = (f"{format_value(totals.customers, 'count')} customers brought {format_value(totals.revenue, 'currency')}"
            f" of net revenue and {format_value(totals.gross_margin, 'currency')} of gross margin{rate}; serving "
            f"them cost {format_value(totals.cost_to_serve, 'currency')}, leaving "
            f"{format_value(totals.profit, 'currency')} of profit.")
    if totals.estimated_margin_share:
        text += (f" The margin on {totals.estimated_margin_share:.0%} of revenue is estimated at the default rate "
                 "(no unit cost).")
    return text


def whale_reading(whale) -> str:
    """The whale curve in one sentence (a ``value.WhaleSummary``).

    >>> from types import SimpleNamespace as W
    >>> import textwrap
    >>> w = W(customers=1000, total_profit=100.0, peak_profit=180.0, peak_share_of_total=1.8, customers_at_peak=700,
    ...       share_of_customers_at_peak=0.7, loss_making_customers=300, loss_making_share=0.3, profit_destroyed=80.0,
    ...       top_20_share_of_profit=1.2)
    >>> print(textwrap.fill(whale_reading(w), 110))
    The most profitable 20% of customers earn 120% of total profit. Profit peaks at 180% of the total with the
    best 70% of customers; the other 300 customers (30%) destroy 80.00.
    """
    if not whale.customers:
        return "No customers in this window."
    if whale.total_profit <= 0:
        return (f"Customers lose money in total ({format_value(whale.total_profit, 'currency')}); "
                f"{format_value(whale.loss_making_customers, 'count')} of {format_value(whale.customers, 'count')} "
                "are loss-making.")
    text = f"The most profitable 20% of customers earn {whale.top_20_share_of_profit:.0%} of total profit."
    if whale.loss_making_customers:
        text += (f" Profit peaks at {whale.peak_share_of_total:.0%} of the total with the best "
                 f"{whale.share_of_customers_at_peak:.0%} of customers; the other "
                 f"{format_value(whale.loss_making_customers, 'count')} customers ({whale.loss_making_share:.0%}) "
                 f"destroy {format_value(whale.profit_destroyed, 'currency')}.")
    else:
        text += " No customer destroys profit."
    return text


def tier_reading(tiers: pd.DataFrame) -> str:
    """The top tier's share of profit against its share of customers (a ``value.tier_summary`` frame).

    >>> t = pd.DataFrame({"value_tier": ["Platinum", "Gold", "Bronze"], "customers": [50, 150, 800],
    ...                   "share_of_customers": [0.05, 0.15, 0.8], "share_of_profit": [0.33, 0.30, 0.37]})
    >>> tier_reading(t)
    'Platinum customers are 5% of customers and earn 33% of profit; Platinum and Gold together earn 63%.'
    """
    t = tiers[tiers["customers"] > 0]
    if t.empty:
        return "No customers in this window."
    top = t.iloc[0]
    text = f"{top.value_tier} customers are {top.share_of_customers:.0%} of customers and earn " \
           f"{top.share_of_profit:.0%} of profit"
    if len(t) > 1:
        second = t.iloc[1]
        text += f"; {top.value_tier} and {second.value_tier} together earn " \
                f"{top.share_of_profit + second.share_of_profit:.0%}"
    return text + "."


def influence_reading(top: pd.DataFrame) -> str:
    """The customer whose referrals brought the most revenue (a ``value.influencers`` frame).

    >>> t = pd.DataFrame({"customer_id": ["C7"], "referred_customers": [38], "referred_revenue": [16120.4],
    ...                   "revenue": [117.1]})
    >>> influence_reading(t)
    'C7 referred 38 customers who brought 16,120 of revenue, against 117 of their own.'
    """
    if top.empty:
        return "No referrals in the data."
    first = top.iloc[0]
    return (f"{first.customer_id} referred {format_value(first.referred_customers, 'count')} customers who brought "
            f"{format_value(first.referred_revenue, 'currency')} of revenue, against "
            f"{format_value(first.revenue, 'currency')} of their own.")


def cohort_reading(curve: pd.DataFrame) -> str:
    """How many of a typical cohort buy again after 1, 3 and 12 months (a ``churn.cohort_curve`` frame).

    >>> c = pd.DataFrame({"months_since": [0, 1, 3, 12], "cohorts": [24, 23, 21, 12],
    ...                   "retention_rate": [1.0, 0.31, 0.22, 0.12]})
    >>> cohort_reading(c)
    '31% of newly acquired customers buy again in the month after; 22% buy in month 3 and 12% in month 12.'
    """
    rates = curve.set_index("months_since")["retention_rate"]
    if 1 not in rates.index:
        return "No cohort has a full month after its acquisition month yet; widen the date range."
    text = f"{rates[1]:.0%} of newly acquired customers buy again in the month after"
    months = [m for m in (3, 12) if m in rates.index]
    later = [f"{rates[m]:.0%} buy in month {m}" if i == 0 else f"{rates[m]:.0%} in month {m}"
             for i, m in enumerate(months)]
    if later:
        text += "; " + " and ".join(later)
    return text + "."


def churn_reading(summary, inactive_days: int) -> str:
    """The churn rate under the chosen definition (a ``churn.ChurnSummary``).

    >>> from types import SimpleNamespace as S
    >>> s = S(customers=4964, churned_customers=2496, churn_rate=0.503, churned_revenue_last_365_days=120520.7)
    >>> churn_reading(s, 180)
    '2,496 of 4,964 customers (50%) have not bought for 180 days or more; they spent 120,521 in the last year.'
    """
    if not summary.customers:
        return "No customer has a purchase yet; import orders to see churn."
    return (f"{format_value(summary.churned_customers, 'count')} of {format_value(summary.customers, 'count')} "
            f"customers ({summary.churn_rate:.0%}) have not bought for {inactive_days} days or more; they spent "
            f"{format_value(summary.churned_revenue_last_365_days, 'currency')} in the last year.")


def churn_model_reading(model) -> str:
    """How good the churn model is out of time, and what is at stake (a ``churn.ChurnModel``).

    >>> from types import SimpleNamespace as M
    >>> import pandas as pd, textwrap
    >>> m = M(roc_auc=0.714, test_cutoff=date(2026, 1, 1), n_test=1929, test_churn_rate=0.48, inactive_days=180,
    ...       at_risk=pd.DataFrame({"churn_probability": [0.8, 0.2, 0.6]}), revenue_at_risk=5000.0)
    >>> print(textwrap.fill(churn_model_reading(m), 110))
    Trained on an earlier cut-off and tested on the 1,929 customers active on 1 Jan 2026, the model ranks a
    churner above a stayer 71% of the time (ROC AUC; 50% is chance). 2 of 3 active customers are more likely than
    not to churn in the next 180 days; 5,000 of revenue is at risk.
    """
    likely = int((model.at_risk["churn_probability"] >= 0.5).sum())
    return (f"Trained on an earlier cut-off and tested on the {format_value(model.n_test, 'count')} customers active "
            f"on {day(model.test_cutoff)}, the model ranks a churner above a stayer {model.roc_auc:.0%} of the time "
            f"(ROC AUC; 50% is chance). {format_value(likely, 'count')} of "
            f"{format_value(len(model.at_risk), 'count')} active customers are more likely than not to churn in the "
            f"next {model.inactive_days} days; {format_value(model.revenue_at_risk, 'currency')} of revenue is at "
            "risk.")


def calibration_reading(calibration: pd.DataFrame) -> str:
    """How far predicted churn probabilities are from the observed churn rates, bin by bin.

    >>> c = pd.DataFrame({"mean_predicted_probability": [0.1, 0.5, 0.8], "observed_churn_rate": [0.13, 0.45, 0.79]})
    >>> calibration_reading(c)
    'Predicted probabilities are within 5 points of the observed churn rate in every bin (largest gap 5 points).'
    """
    if calibration.empty:
        return "Too few customers to check the calibration."
    gap = (calibration["mean_predicted_probability"] - calibration["observed_churn_rate"]).abs()
    worst = gap.max() * 100
    if worst <= 5.0000001:
        return (f"Predicted probabilities are within 5 points of the observed churn rate in every bin (largest "
                f"gap {worst:.0f} points).")
    return (f"Predicted probabilities are off the observed churn rate by up to {worst:.0f} points; read them as a "
            "ranking more than as exact odds.")


def drivers_reading(drivers: pd.DataFrame) -> str:
    """The strongest driver of the churn model in words (a ``churn.ChurnModel.drivers`` frame).

    >>> d = pd.DataFrame({"reading": ["More days between purchases → more churn", "Longer as a customer → less churn"],
    ...                   "importance": [0.12, 0.06]})
    >>> drivers_reading(d)
    'Strongest signals: more days between purchases → more churn; then longer as a customer → less churn.'
    """
    top = drivers[drivers["importance"] > 0].head(2)
    if top.empty:
        return "No feature changes the model's ranking noticeably."
    parts = [r[:1].lower() + r[1:] for r in top["reading"]]
    return "Strongest signals: " + "; then ".join(parts) + "."


def clv_reading(result) -> str:
    """What the CLV model predicts over its horizon (a ``clv.ClvResult``).

    >>> from types import SimpleNamespace as R
    >>> import textwrap
    >>> r = R(horizon_months=12, totals={"customers": 4964.0, "clv": 397858.2, "expected_purchases": 6732.7,
    ...                                  "mean_p_alive": 0.518})
    >>> print(textwrap.fill(clv_reading(r), 110))
    Over the next 12 months the 4,964 customers are expected to make 6,733 purchases worth 397,858 (discounted);
    on average a customer is 52% likely to still be buying.
    """
    t = result.totals
    return (f"Over the next {result.horizon_months} months the {format_value(t['customers'], 'count')} customers are "
            f"expected to make {format_value(t['expected_purchases'], 'count')} purchases worth "
            f"{format_value(t['clv'], 'currency')} (discounted); on average a customer is {t['mean_p_alive']:.0%} "
            "likely to still be buying.")


def holdout_reading(cal) -> str:
    """Predicted against actual repeat purchases in the holdout period (a ``clv.CalibrationResult``).

    >>> from types import SimpleNamespace as C
    >>> import textwrap
    >>> c = C(calibration_end=date(2025, 12, 31), as_of=date(2026, 6, 30), total_actual=3197.0,
    ...       total_predicted=2993.4, n_customers=3722)
    >>> print(textwrap.fill(holdout_reading(c), 110))
    Fitted on purchases up to 31 Dec 2025 only, the model predicted 2,993 repeat purchases for 1 Jan 2026 – 30 Jun
    2026; the customers made 3,197 (the prediction was 6% low).
    """
    start = cal.calibration_end + timedelta(days=1)
    text = (f"Fitted on purchases up to {day(cal.calibration_end)} only, the model predicted "
            f"{format_value(cal.total_predicted, 'count')} repeat purchases for {day(start)} – {day(cal.as_of)}; the "
            f"customers made {format_value(cal.total_actual, 'count')}")
    if cal.total_actual:
        error = cal.total_predicted / cal.total_actual - 1
        text += (" (on target)" if abs(error) < 0.005 else
                 f" (the prediction was {abs(error):.0%} {'high' if error > 0 else 'low'})")
    return text + "."


def quadrant_reading(quads: pd.DataFrame) -> str:
    """Where profit and potential diverge (a ``value.quadrant_summary`` frame).

    >>> q = pd.DataFrame({"potential_quadrant": ["Retain", "Grow", "Maintain", "Reduce cost to serve"],
    ...                   "customers": [1500, 900, 1000, 1500], "share_of_customers": [0.31, 0.18, 0.2, 0.31],
    ...                   "potential_value": [300000.0, 60000, 20000, 10000]})
    >>> quad = quadrant_reading(q)
    >>> quad[:95]
    '900 customers (18%) are worth more later than now (Grow): below-median profit so far, above-med'
    """
    by = quads.set_index("potential_quadrant")
    if "Grow" not in by.index or not by.loc["Grow", "customers"]:
        return "No customer combines low profit so far with high predicted value."
    g = by.loc["Grow"]
    return (f"{format_value(g.customers, 'count')} customers ({g.share_of_customers:.0%}) are worth more later than "
            "now (Grow): below-median profit so far, above-median predicted value, "
            f"{format_value(g.potential_value, 'currency')} in all.")


def funnel_reading(steps: pd.DataFrame, campaign_id: str) -> str:
    """Where a campaign's funnel loses most people (a ``campaigns.funnel`` frame).

    >>> s = pd.DataFrame({"step": ["sent", "opened", "clicked", "converted"], "count": [1000, 350, 120, 60],
    ...                   "step_rate": [1.0, 0.35, 0.343, 0.5], "is_available": [True, True, True, True]})
    >>> funnel_reading(s, "CMP07")
    'CMP07: 6.0% of the 1,000 contacts sent converted; the biggest loss is from opened to clicked (34% go on).'
    """
    shown = steps[steps["is_available"]].reset_index(drop=True)
    if len(shown) < 2 or not shown["count"].iloc[0]:
        return f"{campaign_id}: the data has too few funnel steps to draw a funnel."
    first, last = shown.iloc[0], shown.iloc[-1]
    worst = shown.iloc[1:]["step_rate"].astype(float).idxmin()
    return (f"{campaign_id}: {last['count'] / first['count']:.1%} of the {format_value(first['count'], 'count')} "
            f"contacts {first.step} {last.step}; the biggest loss is from {shown.iloc[worst - 1].step} to "
            f"{shown.iloc[worst].step} ({shown.iloc[worst].step_rate:.0%} go on).")


def channel_reading(channels: pd.DataFrame) -> str:
    """The channel that converts best (a ``campaigns.by_channel`` frame).

    >>> c = pd.DataFrame({"channel": ["email", "sms"], "conversion_rate": [0.03, 0.02], "roi": [1.5, -0.2]})
    >>> channel_reading(c)
    'email converts best (3.0% of treated contacts) with an ROI of 1.50; sms converts 2.0%.'
    """
    c = channels.dropna(subset=["conversion_rate"]).sort_values("conversion_rate", ascending=False)
    if c.empty:
        return "No channel has conversions recorded."
    best = c.iloc[0]
    text = f"{best.channel} converts best ({best.conversion_rate:.1%} of treated contacts)"
    if pd.notna(best.roi):
        text += f" with an ROI of {best.roi:.2f}"
    if len(c) > 1:
        text += "; " + ", ".join(f"{r.channel} converts {r.conversion_rate:.1%}" for r in c.iloc[1:].itertuples())
    return text + "."


def campaign_segment_reading(segments_frame: pd.DataFrame) -> str:
    """The RFM segment that converts best across campaigns (a ``campaigns.by_segment`` frame).

    >>> s = pd.DataFrame({"segment": ["Champions", "Lost", "Champions"], "treatment_contacts": [100, 300, 50],
    ...                   "converted": [8, 3, 4]})
    >>> campaign_segment_reading(s)
    'Across campaigns, Champions convert best (8.0% of 150 contacts) and Lost worst (1.0% of 300).'
    """
    per = segments_frame.groupby("segment")[["treatment_contacts", "converted"]].sum()
    per = per[per["treatment_contacts"] > 0]
    if per.empty:
        return "No treated contacts to compare segments."
    rate = (per["converted"] / per["treatment_contacts"]).sort_values(ascending=False)
    best, worst = rate.index[0], rate.index[-1]
    return (f"Across campaigns, {best} convert best ({rate.iloc[0]:.1%} of "
            f"{format_value(per.loc[best, 'treatment_contacts'], 'count')} contacts) and {worst} worst "
            f"({rate.iloc[-1]:.1%} of {format_value(per.loc[worst, 'treatment_contacts'], 'count')}).")


def qini_reading(result) -> str:
    """What targeting by predicted uplift gains over random targeting (an ``uplift.UpliftResult``)."""
    q, s = result.qini, result.qini_score
    row = q.iloc[(q["share_targeted"] - 0.3).abs().argmin()]
    return (f"On {format_value(s.customers, 'count')} held-out contacts, targeting the {row.share_targeted:.0%} with "
            f"the highest predicted uplift brings {row.incremental_conversions:.1f} incremental conversions against "
            f"{row.random_incremental_conversions:.1f} at random (Qini coefficient {s.qini_coefficient:.2f}; 0 = "
            "random, 1 = perfect).")


def quintile_reading(quintiles: pd.DataFrame) -> str:
    """Observed uplift in the top and bottom fifth (an ``uplift.UpliftResult.uplift_by_quintile`` frame).

    >>> q = pd.DataFrame({"quintile": [1, 5], "observed_uplift": [0.144, -0.088], "predicted_uplift": [0.105, -0.03]})
    >>> import textwrap
    >>> print(textwrap.fill(quintile_reading(q), 110))
    In the fifth with the highest predicted uplift, treated customers converted 14.4 points more than the control;
    in the lowest fifth -8.8 points.
    """
    top, bottom = quintiles.iloc[0], quintiles.iloc[-1]
    return (f"In the fifth with the highest predicted uplift, treated customers converted "
            f"{top.observed_uplift * 100:.1f} points more than the control; in the lowest fifth "
            f"{bottom.observed_uplift * 100:.1f} points.")


def targets_reading(result) -> str:
    """The next campaign's target list in one sentence (an ``uplift.UpliftResult``)."""
    return (f"Target these {format_value(len(result.targets), 'count')} customers next (scored on "
            f"{day(result.as_of)}): the model expects {result.expected_incremental_conversions:.0f} conversions that "
            "would not happen without the contact. Predictions for the very top extrapolate and are likely "
            "optimistic; the ranking is what the model is tested on.")


def attribution_reading(attr: pd.DataFrame) -> str:
    """How much multi-touch matters (a ``campaigns.attribution`` frame).

    >>> a = pd.DataFrame({"campaign_id": ["A", "B"], "touched_orders": [40, 60], "multi_touch_orders": [0, 10],
    ...                   "last_touch_revenue": [100.0, 300.0], "linear_revenue": [120.0, 280.0]})
    >>> import textwrap
    >>> print(textwrap.fill(attribution_reading(a), 110))
    10 of 100 campaign-touched purchases followed more than one campaign; B gets the most revenue either way (300
    last-touch, 280 linear).
    """
    if attr.empty or not attr["touched_orders"].sum():
        return "No purchase followed a campaign contact within the window."
    multi, total = int(attr["multi_touch_orders"].sum()), int(attr["touched_orders"].sum())
    top = attr.sort_values("last_touch_revenue", ascending=False).iloc[0]
    return (f"{format_value(multi, 'count')} of {format_value(total, 'count')} campaign-touched purchases followed "
            f"more than one campaign; {top.campaign_id} gets the most revenue either way "
            f"({format_value(top.last_touch_revenue, 'currency')} last-touch, "
            f"{format_value(top.linear_revenue, 'currency')} linear).")


def no_control_reading(results) -> str:
    """The campaigns without a control group, in one sentence (``campaigns.LiftResult`` objects).

    >>> from types import SimpleNamespace as L
    >>> import textwrap
    >>> print(textwrap.fill(no_control_reading([L(campaign_id="A", has_control=False),
    ...                                         L(campaign_id="B", has_control=False)]), 110))
    A and B have no control group: everyone targeted was contacted, so their effect cannot be told apart from what
    would have happened anyway. Hold out a random 10-20% next time.
    """
    names = [r.campaign_id for r in results if not r.has_control]
    if not names:
        return "Every campaign has a control group."
    who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    verb = "has" if len(names) == 1 else "have"
    its = "its" if len(names) == 1 else "their"
    return (f"{who} {verb} no control group: everyone targeted was contacted, so {its} effect cannot be told apart "
            "from what would have happened anyway. Hold out a random 10-20% next time.")


# --- support, service and the voice of the customer -------------------------------------------------------------

_GROUP_NOUNS = {"channel": ("channel", "channels"), "priority": ("priority", "priorities"),
                "category": ("category", "categories"), "agent": ("agent", "agents"),
                "segment": ("RFM segment", "RFM segments"),
                "first_response_breach": ("first-response outcome", "first-response outcomes")}
_TOUCHPOINT_NOUNS = {"orders": "orders", "support": "tickets", "campaigns": "campaign messages",
                     "surveys": "survey answers"}


def _support_row(result):
    """The single row of a one-row frame (or the row itself)."""
    return result.iloc[0] if isinstance(result, pd.DataFrame) else result


def _counted(n, noun: str) -> str:
    """``n`` and the noun, plural unless ``n`` is 1: ``1 ticket``, ``1,200 tickets``."""
    return f"{format_value(n, 'count')} {noun}{'' if n == 1 else 's'}"


def _upper_first(text: str) -> str:
    """``text`` with its first letter in upper case (a channel or category starts a sentence)."""
    return text[:1].upper() + text[1:]


def _month_name(stamp) -> str:
    return f"{pd.Timestamp(stamp):%b %Y}"


def support_reading(kpis) -> str:
    """The ticket KPI cards in one sentence (the one-row ``support.ticket_kpis`` frame, ``by=None``).

    >>> k = pd.DataFrame({"tickets": [396], "median_first_response_hours": [2.562], "breach_rate": [0.4293],
    ...                   "first_response_breach_rate": [0.1781], "resolution_breach_rate": [0.365],
    ...                   "open_tickets": [73], "csat_mean": [3.9096], "csat_responses": [188],
    ...                   "ticket_cost": [1656.0], "cost_per_ticket": [4.1818]})
    >>> import textwrap
    >>> print(textwrap.fill(support_reading(k), 110))
    396 tickets were opened in the period; half got a first reply within 2.6 hours; 42.9% missed an SLA target
    (first reply 17.8%, resolution 36.5%) and 73 are still open. Average CSAT 3.91 from 188 ratings; handling cost
    1,656 (4.18 a ticket).
    """
    k = _support_row(kpis)
    if _missing(k["tickets"]) or not k["tickets"]:
        return "No support tickets were opened in this period; widen the date range or import tickets."
    text = f"{_counted(k['tickets'], 'ticket')} {'was' if k['tickets'] == 1 else 'were'} opened in the period"
    if not _missing(k["median_first_response_hours"]):
        text += f"; half got a first reply within {k['median_first_response_hours']:.1f} hours"
    if not _missing(k["breach_rate"]):
        text += (f"; {format_value(k['breach_rate'], 'pct')} missed an SLA target (first reply "
                 f"{format_value(k['first_response_breach_rate'], 'pct')}, resolution "
                 f"{format_value(k['resolution_breach_rate'], 'pct')})")
    text += f" and {format_value(k['open_tickets'], 'count')} are still open."
    if not _missing(k["csat_mean"]):
        text += f" Average CSAT {k['csat_mean']:.2f} from {_counted(k['csat_responses'], 'rating')};"
    else:
        text += " No ratings yet;"
    return text + (f" handling cost {format_value(k['ticket_cost'], 'currency')} "
                   f"({format_value(k['cost_per_ticket'], 'currency')} a ticket).")


def ticket_trend_reading(trend: pd.DataFrame) -> str:
    """The busiest month and how the SLA breach rate moved (a ``support.ticket_trend`` frame, monthly)."""
    if trend.empty or not trend["tickets"].sum():
        return "No tickets in this range."
    s = trend.set_index("month")
    text = f"Tickets peaked in {_month_name(s['tickets'].idxmax())} at {format_value(s['tickets'].max(), 'count')}"
    rates = s["breach_rate"].dropna()
    if len(rates) == 1:
        text += f"; the SLA breach rate was {format_value(rates.iloc[0], 'pct')}"
    elif len(rates) > 1:
        text += (f"; the SLA breach rate went from {format_value(rates.iloc[0], 'pct')} in "
                 f"{_month_name(rates.index[0])} to {format_value(rates.iloc[-1], 'pct')} in "
                 f"{_month_name(rates.index[-1])}")
        high = rates.idxmax()
        if high not in (rates.index[0], rates.index[-1]):
            text += f", highest in {_month_name(high)} ({format_value(rates.max(), 'pct')})"
    return text + "."


def breakdown_reading(frame: pd.DataFrame, by: str, min_tickets: int = 10) -> str:
    """Which group breaches the SLA most and least, and which is slowest to reply (a ``support.ticket_kpis``
    frame with ``by``). Groups with fewer than ``min_tickets`` tickets are left out of the comparison when at
    least two groups have that many."""
    one, many = _GROUP_NOUNS.get(by, (by, f"{by} values"))
    if frame.empty or not frame["tickets"].sum():
        return "No tickets to break down."
    rated = frame.dropna(subset=["breach_rate"])
    if rated.empty:
        return f"No {one} has tickets with a known SLA outcome yet."
    lead = f"By {one}"
    large = rated[rated["tickets"] >= min_tickets]
    if 2 <= len(large) < len(rated):
        rated, lead = large, f"Among the {many} with {min_tickets} or more tickets"
    if len(rated) == 1:
        r = rated.iloc[0]
        return (f"Only one {one}, {r[by]}, has tickets with a known SLA outcome: breach rate "
                f"{format_value(r.breach_rate, 'pct')} of {_counted(r.tickets, 'ticket')}.")
    worst, best = rated.loc[rated["breach_rate"].idxmax()], rated.loc[rated["breach_rate"].idxmin()]
    text = (f"{lead}, {worst[by]} has the highest SLA breach rate ({format_value(worst.breach_rate, 'pct')} of "
            f"{_counted(worst.tickets, 'ticket')}) and {best[by]} the lowest "
            f"({format_value(best.breach_rate, 'pct')} of {format_value(best.tickets, 'count')})")
    replied = rated.dropna(subset=["median_first_response_hours"])
    if not replied.empty:
        slow = replied.loc[replied["median_first_response_hours"].idxmax()]
        also = " also" if slow[by] == worst[by] else ""
        text += f"; {slow[by]} is{also} slowest to reply (median {slow.median_first_response_hours:.1f} hours)"
    return text + "."


def backlog_reading(backlog) -> str:
    """The open tickets at the end of the day, how overdue and how old (a ``support.Backlog``)."""
    if not backlog.open_tickets:
        return f"No ticket was open at the end of {day(backlog.as_of)}."
    a = backlog.by_age
    overdue, waiting = int(a["resolution_breached"].sum()), int(a["awaiting_first_response"].sum())
    band = a.loc[a["open_tickets"].idxmax()]
    who = "most have" if band.share_of_open > 0.5 else "the largest group has"
    were = "was" if backlog.open_tickets == 1 else "were"
    text = (f"{_counted(backlog.open_tickets, 'ticket')} {were} open at the end of {day(backlog.as_of)}: "
            f"{format_value(overdue, 'count')} past their resolution target and {format_value(waiting, 'count')} "
            f"still without a first reply; {who} waited {band.age_band} ({format_value(band.open_tickets, 'count')}, "
            f"{band.share_of_open:.0%})")
    oldest = backlog.by_priority["oldest_age_days"].max()
    if not _missing(oldest):
        text += f", the oldest {oldest:.0f} days"
    return text + "."


def csat_distribution_reading(distribution: pd.DataFrame) -> str:
    """How happy the rated tickets are (a ``support.csat_distribution`` frame)."""
    total = int(distribution["responses"].sum())
    if not total:
        return "No ticket has a satisfaction rating in this period."
    happy = distribution.loc[distribution["rating"] >= 4, "responses"].sum() / total
    unhappy = distribution.loc[distribution["rating"] <= 2, "responses"].sum() / total
    mode = distribution.loc[distribution["responses"].idxmax()]
    return (f"{happy:.0%} of the {_counted(total, 'rating')} are 4 or 5 and {unhappy:.0%} are 1 or 2; "
            f"the most common rating is {int(mode.rating)} ({mode.responses / total:.0%}).")


def csat_reading(by_breach: pd.DataFrame) -> str:
    """What a late first reply costs in satisfaction (a ``support.csat_by_breach`` frame)."""
    b = by_breach.set_index("first_response_breach")
    rows = [b.loc[g] if g in b.index else None for g in ("Met", "Breached")]
    if any(r is None or _missing(r.csat_mean) for r in rows):
        return "Too few rated tickets to compare first replies that met the SLA with those that missed it."
    met, late = rows
    gap = met.csat_mean - late.csat_mean
    how = "the same" if abs(gap) < 0.005 else f"{abs(gap):.2f} points {'lower' if gap > 0 else 'higher'}"
    return (f"Tickets whose first reply met the SLA were rated {met.csat_mean:.2f} on average "
            f"({_counted(met.csat_responses, 'rating')}), those that missed it {late.csat_mean:.2f} "
            f"({format_value(late.csat_responses, 'count')}): {how}.")


def complaints_reading(by_month: pd.DataFrame) -> str:
    """Complaints and compliments over the months (a ``support.complaints`` frame, ``by="month"``)."""
    if by_month.empty or not by_month["tickets"].sum():
        return "No tickets in this range."
    complaints, compliments = int(by_month["complaints"].sum()), int(by_month["compliments"].sum())
    months = len(by_month)
    text = (f"{format_value(complaints, 'count')} complaint{'s' if complaints != 1 else ''} and "
            f"{format_value(compliments, 'count')} compliment{'s' if compliments != 1 else ''} in {months} "
            f"month{'s' if months != 1 else ''}")
    if complaints:
        peak = by_month.loc[by_month["complaints"].idxmax()]
        text += (f"; complaints peaked in {_month_name(peak.month)} at {format_value(peak.complaints, 'count')} "
                 f"({format_value(peak.complaint_share, 'pct')} of that month's tickets)")
    return text + "."


def complaint_category_reading(by_category: pd.DataFrame) -> str:
    """Where the complaints are filed (a ``support.complaints`` frame, ``by="category"``)."""
    c = by_category[by_category["complaints"] > 0].sort_values("complaints", ascending=False, kind="stable")
    if c.empty:
        return "No complaints in this range (a ticket is a complaint when its category contains 'complaint')."
    total = int(c["complaints"].sum())
    top = c.iloc[0]
    if len(c) == 1:
        return f"All {format_value(total, 'count')} complaints are filed under '{top.category}'."
    second = c.iloc[1]
    return (f"'{top.category}' holds the most complaints ({format_value(top.complaints, 'count')} of "
            f"{format_value(total, 'count')}, {top.complaints / total:.0%}); then '{second.category}' "
            f"({format_value(second.complaints, 'count')}).")


def _nps_signed(x) -> str:
    """NPS points with their sign, whole: ``+23``, ``-5``, ``0``."""
    points = round(float(x))
    return f"{points:+d}" if points else "0"


def nps_reading(result) -> str:
    """The NPS with its interval and the groups behind it (the one-row ``voice.nps`` frame)."""
    r = _support_row(result)
    if not r["responses"]:
        return "No survey answers with a score in this period; import surveys to see the NPS."
    text = (f"NPS {_nps_signed(r.nps)} (95% interval {_nps_signed(r.nps_low)} to {_nps_signed(r.nps_high)}) from "
            f"{_counted(r.responses, 'answer')}: {r.promoter_share:.0%} promoters, "
            f"{r.detractor_share:.0%} detractors.")
    if r["responses"] < 30:
        text += " Fewer than 30 answers: read the interval as rough."
    return text


def nps_trend_reading(by_month: pd.DataFrame) -> str:
    """How the NPS moved from the first month with answers to the last (a ``voice.nps`` frame, ``by="month"``)."""
    m = by_month[by_month["responses"] > 0]
    if m.empty:
        return "No survey answers in this range."
    first, last = m.iloc[0], m.iloc[-1]
    if len(m) == 1:
        return f"All answers fall in {_month_name(first.month)}: NPS {_nps_signed(first.nps)}."
    text = (f"NPS went from {_nps_signed(first.nps)} in {_month_name(first.month)} to {_nps_signed(last.nps)} in "
            f"{_month_name(last.month)}")
    if first.nps_low <= last.nps_high and last.nps_low <= first.nps_high:
        return text + "; their 95% intervals overlap: no clear change."
    return text + f"; their 95% intervals do not overlap: a clear {'rise' if last.nps > first.nps else 'fall'}."


def nps_segment_reading(by_segment: pd.DataFrame, min_responses: int = 10) -> str:
    """The RFM segments with the highest and lowest NPS (a ``voice.nps`` frame, ``by="segment"``), among the
    segments with at least ``min_responses`` answers."""
    s = by_segment[by_segment["responses"] >= min_responses]
    if by_segment["responses"].sum() == 0:
        return "No survey answers in this range."
    if s.empty:
        return f"No segment has {min_responses} answers or more; the segment scores are too uncertain to compare."
    if len(s) == 1:
        only = s.iloc[0]
        return (f"Only {only.segment} has {min_responses} answers or more: NPS {_nps_signed(only.nps)} "
                f"({_counted(only.responses, 'answer')}).")
    best, worst = s.loc[s["nps"].idxmax()], s.loc[s["nps"].idxmin()]
    return (f"Among segments with at least {min_responses} answers, {best.segment} score highest (NPS "
            f"{_nps_signed(best.nps)}, {format_value(best.responses, 'count')} answers) and {worst.segment} lowest "
            f"({_nps_signed(worst.nps)}, {format_value(worst.responses, 'count')}).")


def themes_reading(themes: pd.DataFrame) -> str:
    """The most distinctive term of each NPS group, or of each CSAT group for ticket themes (a
    ``voice.comment_themes`` frame)."""
    if themes.empty:
        return "Too few comments to find themes."
    parts = []
    for group, name in (("detractor", "detractors"), ("passive", "passives"), ("promoter", "promoters"),
                        ("dissatisfied", "dissatisfied tickets"), ("neutral", "neutral tickets"),
                        ("satisfied", "satisfied tickets")):
        top = themes[(themes["group"] == group) & (themes["rank"] == 1)]
        if not top.empty:
            t = top.iloc[0]
            parts.append(f"{name} '{t.term}' ({format_value(t.comments, 'count')} comments, {t.share_of_group:.0%} "
                         "of theirs)")
    return "The most distinctive words: " + ", ".join(parts) + "."


def tier_service_reading(by_tier: pd.DataFrame) -> str:
    """Which value tier's tickets breach the SLA most and least, and which tier opens the most tickets (a
    ``service.service_by_tier`` frame)."""
    t = by_tier[~by_tier["is_group"].astype(bool) & (by_tier["sla_known_tickets"] > 0)]
    if t.empty:
        return "No tickets with a known SLA outcome from customers with a value tier in this period."
    worst, best = t.loc[t["breach_rate"].idxmax()], t.loc[t["breach_rate"].idxmin()]
    if worst.value_tier == best.value_tier:
        text = (f"Only {worst.value_tier} customers have tickets with a known SLA outcome: breach rate "
                f"{format_value(worst.breach_rate, 'pct')} of {format_value(worst.sla_known_tickets, 'count')}")
    else:
        text = (f"{worst.value_tier} customers' tickets breach the SLA most often "
                f"({format_value(worst.breach_rate, 'pct')} of {format_value(worst.sla_known_tickets, 'count')}) "
                f"and {best.value_tier} customers' least ({format_value(best.breach_rate, 'pct')} of "
                f"{format_value(best.sla_known_tickets, 'count')})")
    busy = t.loc[t["tickets_per_customer"].idxmax()]
    return text + f"; {busy.value_tier} customers open the most tickets ({busy.tickets_per_customer:.2f} each)."


def channel_breach_reading(by_channel: pd.DataFrame) -> str:
    """The channel that concentrates the SLA breaches (a ``service.breach_by_channel`` frame)."""
    c = by_channel.dropna(subset=["breach_rate"])
    if c.empty:
        return "No tickets with a known SLA outcome in this period."
    hot = c[c["is_breach_hotspot"].astype(bool)]
    if hot.empty:
        top = c.iloc[0]
        return (f"{_upper_first(top.channel)} has the highest breach rate ({format_value(top.breach_rate, 'pct')}), "
                "but no channel has more than its share of the breaches.")
    h = hot.iloc[0]
    text = (f"{_upper_first(h.channel)} breaches the SLA on {format_value(h.breach_rate, 'pct')} of its tickets "
            f"(95% CI {format_value(h.breach_rate_ci_low, 'pct')} to {format_value(h.breach_rate_ci_high, 'pct')}) and "
            f"holds {h.share_of_breaches:.0%} of all breaches from {h.share_of_tickets:.0%} of the tickets")
    rest = c[c["channel"] != h.channel]
    if len(rest) == 1:
        text += f"; {rest.iloc[0].channel} breaches {format_value(rest.iloc[0].breach_rate, 'pct')}"
    elif len(rest) > 1:
        text += (f"; the other channels breach {format_value(rest['breach_rate'].min(), 'pct')} to "
                 f"{format_value(rest['breach_rate'].max(), 'pct')}")
    return text + "."


def action_list_reading(actions: pd.DataFrame) -> str:
    """How many high-value customers need a call, and who first (a ``service.action_list`` frame)."""
    if actions.empty:
        return "No high-value customer has an open or recently breached ticket: nothing to chase."
    top = actions.iloc[0]
    urgent = int((actions["urgency"] == top.urgency).sum()) if not _missing(top.urgency) else 0
    name = top["name"] if isinstance(top["name"], str) and top["name"].strip() else top.customer_id
    who = name if name == top.customer_id else f"{name} ({top.customer_id})"
    action = top.suggested_action if isinstance(top.suggested_action, str) else "no rule applies."
    n = len(actions)
    return (f"{format_value(n, 'count')} high-value customer{'s have' if n != 1 else ' has'} an open or recently "
            f"breached ticket, {format_value(urgent, 'count')} at the most urgent level. First: {who}, "
            f"{top.value_tier}, profit {format_value(top.profit, 'currency')} — {action}")


def contact_points_reading(points: pd.DataFrame) -> str:
    """The main channel of each touchpoint and the dearest contact (a ``service.contact_points`` frame)."""
    if points.empty:
        return "No orders, tickets, campaign messages or survey answers in this period."
    parts = []
    for touchpoint, rows in points.groupby("touchpoint", sort=False):
        top = rows.sort_values("events", ascending=False, kind="stable").iloc[0]
        verb = "" if parts else " is"
        parts.append(f"{_TOUCHPOINT_NOUNS.get(touchpoint, touchpoint)}{verb} {top.channel} "
                     f"({top.share_of_events:.0%})")
    text = "The main channel for " + ", for ".join(parts)
    costed = points.dropna(subset=["cost_per_event"])
    if not costed.empty:
        dear = costed.loc[costed["cost_per_event"].idxmax()]
        text += (f"; {dear.channel} {_TOUCHPOINT_NOUNS.get(dear.touchpoint, dear.touchpoint)} cost the most per "
                 f"contact ({format_value(dear.cost_per_event, 'currency')})")
    return text + "."


def channel_usage_reading(usage: pd.DataFrame, touchpoint: str, min_events: int = 10) -> str:
    """The main channel of one touchpoint and the RFM segments that use it most and least (a
    ``service.channel_usage`` frame), among the segments with at least ``min_events`` events."""
    noun = _TOUCHPOINT_NOUNS.get(touchpoint, touchpoint)
    u = usage[usage["touchpoint"] == touchpoint]
    if u.empty:
        return f"No {noun} in this period."
    per_channel = u.groupby("channel")["events"].sum().sort_values(ascending=False, kind="stable")
    channel, total = per_channel.index[0], per_channel.sum()
    text = f"{_upper_first(channel)} carries {per_channel.iloc[0] / total:.0%} of {noun}"
    per_segment = u.groupby("segment", sort=False)["events"].sum()
    large = per_segment[per_segment >= min_events].index
    shares = (u[u["channel"] == channel].set_index("segment")["share_of_events"]
              .reindex(large, fill_value=0.0).astype("float64"))
    if len(shares) >= 2 and shares.max() > shares.min():
        text += (f"; among segments with {min_events} or more, {shares.idxmax()} use it most ({shares.max():.0%}) "
                 f"and {shares.idxmin()} least ({shares.min():.0%})")
    return text + "."


def basket_reading(rules: pd.DataFrame, n_baskets: int) -> str:
    """The strongest rule in words (a ``basket.BasketRules.rules`` frame, best first).

    >>> r = pd.DataFrame({"antecedent": ["P1"], "antecedent_name": ["Wallet"], "consequent": ["P2"],
    ...                   "consequent_name": ["Scarf"], "confidence": [0.081], "lift": [2.43], "support": [0.001]})
    >>> basket_reading(r, 19825)
    'In 19,825 baskets, 8.1% of those with Wallet also hold Scarf, 2.4 times as often as baskets in general.'
    """
    if rules.empty:
        return f"No rule reaches the thresholds in {format_value(n_baskets, 'count')} baskets."
    top = rules.sort_values("lift", ascending=False).iloc[0]
    a = top.antecedent_name if isinstance(top.antecedent_name, str) else top.antecedent
    c = top.consequent_name if isinstance(top.consequent_name, str) else top.consequent
    return (f"In {format_value(n_baskets, 'count')} baskets, {top.confidence:.1%} of those with {a} also hold {c}, "
            f"{top.lift:.1f} times as often as baskets in general.")


def next_best_reading(offers: pd.DataFrame) -> str:
    """How many customers get an offer, and the most frequent first offer (a ``basket.next_best_products`` frame).

    >>> o = pd.DataFrame({"customer_id": ["A", "A", "B"], "rank": [1, 2, 1], "recommended": ["P2", "P3", "P2"],
    ...                   "recommended_name": ["Scarf", "Hat", "Scarf"]})
    >>> next_best_reading(o)
    '2 customers have an offer; the most frequent first offer is Scarf (2 customers).'
    """
    first = offers[offers["rank"] == 1]
    names = first["recommended_name"].fillna(first["recommended"]) if "recommended_name" in first else \
        first["recommended"]
    top = names.value_counts()
    return (f"{format_value(first['customer_id'].nunique(), 'count')} customers have an offer; the most frequent "
            f"first offer is {top.index[0]} ({format_value(top.iloc[0], 'count')} customers).")


# --- fulfilment ------------------------------------------------------------------------------------------------


def _judged(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a ``fulfilment.fulfilment_kpis`` frame with at least one delivery judged on time or late."""
    return frame[(frame["on_time"] + frame["late"]) > 0]


def _interval(low, high, fmt: str = ".1%") -> str:
    return f"95% interval {low:{fmt}} to {high:{fmt}}"


def fulfilment_reading(kpis: pd.DataFrame) -> str:
    """What happened to the period's shipments (a one-row ``fulfilment.fulfilment_kpis`` frame).

    >>> k = pd.DataFrame({"shipments": [2109], "delivered": [2042], "on_time": [1850], "late": [192],
    ...                   "overdue": [3], "late_rate": [0.094025], "late_rate_low": [0.082118],
    ...                   "late_rate_high": [0.107458], "avg_days_late": [2.15625]})
    >>> import textwrap
    >>> print(textwrap.fill(fulfilment_reading(k), 110))
    Of 2,109 shipments, 2,042 were delivered: 1,850 on time and 192 late (9.4%, 95% interval 8.2% to 10.7%), on
    average 2.2 days after the promised date; 3 are overdue.
    """
    if kpis.empty or not kpis["shipments"].iloc[0]:
        return "No shipments of the orders placed in the period; import shipments or widen the period."
    k = kpis.iloc[0]
    text = (f"Of {format_value(k.shipments, 'count')} shipments, {format_value(k.delivered, 'count')} were "
            "delivered")
    if not k.on_time + k.late:
        text += ", none with a promised date, so on-time delivery cannot be measured"
    else:
        text += (f": {format_value(k.on_time, 'count')} on time and {format_value(k.late, 'count')} late "
                 f"({k.late_rate:.1%}, {_interval(k.late_rate_low, k.late_rate_high)})")
        if k.late and not _missing(k.avg_days_late):
            text += f", on average {k.avg_days_late:.1f} days after the promised date"
    overdue = int(k.overdue)
    text += ("; none is overdue" if not overdue else
             f"; {format_value(overdue, 'count')} {'is' if overdue == 1 else 'are'} overdue")
    return text + "."


def highest_late_rate(frame: pd.DataFrame, key: str) -> str | None:
    """The ``key`` value (carrier, region) with the highest late rate, the first in the frame's order on a tie;
    None when nothing was delivered with a promised date. The carrier the reading names and the chart highlights.

    >>> f = pd.DataFrame({"carrier": ["A", "B", "C"], "on_time": [9, 7, 0], "late": [1, 3, 0],
    ...                   "late_rate": [0.1, 0.3, float("nan")]})
    >>> highest_late_rate(f, "carrier")
    'B'
    """
    judged = _judged(frame)
    if judged.empty:
        return None
    return judged.loc[judged["late_rate"].idxmax(), key]


def carrier_reading(by_carrier: pd.DataFrame) -> str:
    """The carrier that is late most often against the others, and whether the intervals separate them (a
    ``fulfilment.fulfilment_kpis(by="carrier")`` frame).

    >>> c = pd.DataFrame({"carrier": ["ExpressWay", "ParcelPoint", "SwiftParcel"], "on_time": [286, 273, 678],
    ...                   "late": [9, 122, 37], "late_rate": [0.030508, 0.308861, 0.051748],
    ...                   "late_rate_low": [0.016132, 0.265321, 0.037774],
    ...                   "late_rate_high": [0.056955, 0.356082, 0.070513]})
    >>> import textwrap
    >>> print(textwrap.fill(carrier_reading(c), 110))
    ParcelPoint is late most often: 122 of 395 deliveries (30.9%, 95% interval 26.5% to 35.6%), against 3.1% to
    5.2% for the other carriers; its interval lies above every other carrier's.
    """
    judged = _judged(by_carrier)
    worst = highest_late_rate(by_carrier, "carrier")
    if worst is None:
        return "No delivery with a promised date in the period, so carriers cannot be compared."
    w = judged[judged["carrier"] == worst].iloc[0]
    n = int(w.on_time + w.late)
    if len(judged) == 1:
        return (f"All {format_value(n, 'count')} deliveries with a promised date were by {worst}: {w.late_rate:.1%} "
                f"were late ({_interval(w.late_rate_low, w.late_rate_high)}).")
    stats = f"{w.late_rate:.1%}, {_interval(w.late_rate_low, w.late_rate_high)}"
    rest = judged[judged["carrier"] != worst]
    text = f"{worst} is late most often: {format_value(w.late, 'count')} of {format_value(n, 'count')} deliveries " \
           f"({stats}), against "
    if len(rest) == 1:
        text += f"{rest['late_rate'].iloc[0]:.1%} for {rest['carrier'].iloc[0]}"
    else:
        text += f"{rest['late_rate'].min():.1%} to {rest['late_rate'].max():.1%} for the other carriers"
    if w.late_rate_low > rest["late_rate_high"].max():
        text += "; its interval lies above every other carrier's"
    else:
        text += "; the intervals overlap, so the gap may be chance"
    return text + "."


def fulfilment_region_reading(by_region: pd.DataFrame) -> str:
    """The regions with the highest and lowest late rate, and those clearly above the overall rate (a
    ``fulfilment.fulfilment_kpis(by="region")`` frame; the overall rate pools every region's deliveries).

    >>> r = pd.DataFrame({"region": ["North", "South", "West"], "on_time": [80, 190, 19], "late": [20, 10, 1],
    ...                   "late_rate": [0.2, 0.05, 0.05], "late_rate_low": [0.133, 0.027, 0.009],
    ...                   "late_rate_high": [0.289, 0.090, 0.236]})
    >>> import textwrap
    >>> print(textwrap.fill(fulfilment_region_reading(r), 110))
    The late rate is highest in North (20.0% of 100 deliveries) and lowest in South (5.0% of 200); North is
    clearly above the overall 9.7% (its 95% interval lies above it).
    """
    judged = _judged(by_region)
    if judged.empty:
        return "No delivery with a promised date in the period, so regions cannot be compared."
    n = judged["on_time"] + judged["late"]
    if len(judged) == 1:
        r = judged.iloc[0]
        return f"All {format_value(n.iloc[0], 'count')} deliveries were in {r.region}: {r.late_rate:.1%} late."
    high = judged.loc[judged["late_rate"].idxmax()]
    low = judged.loc[judged["late_rate"].idxmin()]
    overall = judged["late"].sum() / n.sum()
    text = (f"The late rate is highest in {high.region} ({high.late_rate:.1%} of "
            f"{format_value(high.on_time + high.late, 'count')} deliveries) and lowest in {low.region} "
            f"({low.late_rate:.1%} of {format_value(low.on_time + low.late, 'count')})")
    above = judged[judged["late_rate_low"] > overall]["region"].tolist()
    if above:
        who = above[0] if len(above) == 1 else ", ".join(above[:-1]) + " and " + above[-1]
        verb, its = ("is", "its") if len(above) == 1 else ("are", "their")
        text += f"; {who} {verb} clearly above the overall {overall:.1%} ({its} 95% interval lies above it)"
    else:
        text += f"; no region's 95% interval lies wholly above the overall {overall:.1%}, so the differences may " \
                "be chance"
    return text + "."


def fulfilment_month_reading(by_month: pd.DataFrame) -> str:
    """The range of the monthly late rate, and how many of the last month's shipments are still on their way (a
    ``fulfilment.fulfilment_kpis(by="month")`` frame, months in time order).

    >>> m = pd.DataFrame({"month": pd.to_datetime(["2026-04-01", "2026-05-01", "2026-06-01"]),
    ...                   "shipments": [677, 713, 719], "delivered": [677, 713, 652], "on_time": [616, 636, 598],
    ...                   "late": [61, 77, 54], "late_rate": [0.090103, 0.107994, 0.082822]})
    >>> import textwrap
    >>> print(textwrap.fill(fulfilment_month_reading(m), 110))
    Month by month the late rate ran from 8.3% (Jun 2026) to 10.8% (May 2026); 67 shipments of Jun 2026's orders
    are not delivered yet, so that month may still change.
    """
    judged = _judged(by_month)
    if judged.empty:
        return "No delivery with a promised date in the period, so months cannot be compared."
    if len(judged) == 1:
        r = judged.iloc[0]
        text = (f"In {pd.Timestamp(r.month):%b %Y} {r.late_rate:.1%} of "
                f"{format_value(r.on_time + r.late, 'count')} deliveries were late")
    else:
        high = judged.loc[judged["late_rate"].idxmax()]
        low = judged.loc[judged["late_rate"].idxmin()]
        text = (f"Month by month the late rate ran from {low.late_rate:.1%} ({pd.Timestamp(low.month):%b %Y}) to "
                f"{high.late_rate:.1%} ({pd.Timestamp(high.month):%b %Y})")
    last = by_month.iloc[-1]
    pending = int(last.shipments - last.delivered)
    if pending:
        text += (f"; {format_value(pending, 'count')} shipment{'s' if pending != 1 else ''} of "
                 f"{pd.Timestamp(last.month):%b %Y}'s orders {'are' if pending != 1 else 'is'} not delivered yet, "
                 "so that month may still change")
    return text + "."


def lead_time_reading(kpis: pd.DataFrame, by_carrier: pd.DataFrame) -> str:
    """Median and 90th-percentile lead times, and the carrier slowest in transit (a one-row
    ``fulfilment.fulfilment_kpis`` frame and its ``by="carrier"`` frame).

    >>> k = pd.DataFrame({"median_order_to_ship_hours": [13.68], "p90_order_to_ship_hours": [22.63],
    ...                   "median_ship_to_deliver_days": [1.74], "p90_ship_to_deliver_days": [3.07]})
    >>> c = pd.DataFrame({"carrier": ["ExpressWay", "ParcelPoint"], "median_ship_to_deliver_days": [1.28, 2.32],
    ...                   "p90_ship_to_deliver_days": [1.82, 4.78]})
    >>> import textwrap
    >>> print(textwrap.fill(lead_time_reading(k, c), 110))
    Orders left the warehouse after a median 13.7 hours (9 in 10 within 22.6) and spent a median 1.7 days in
    transit (9 in 10 within 3.1); ParcelPoint is slowest in transit (median 2.3 days, 9 in 10 within 4.8).
    """
    k = kpis.iloc[0] if not kpis.empty else None
    parts = []
    if k is not None and not _missing(k.median_order_to_ship_hours):
        parts.append(f"left the warehouse after a median {k.median_order_to_ship_hours:.1f} hours (9 in 10 within "
                     f"{k.p90_order_to_ship_hours:.1f})")
    if k is not None and not _missing(k.median_ship_to_deliver_days):
        parts.append(f"spent a median {k.median_ship_to_deliver_days:.1f} days in transit (9 in 10 within "
                     f"{k.p90_ship_to_deliver_days:.1f})")
    if not parts:
        return "No shipment in the period has its ship and delivery times yet, so lead times cannot be measured."
    text = "Orders " + " and ".join(parts)
    timed = by_carrier.dropna(subset=["median_ship_to_deliver_days"])
    if len(timed) > 1:
        slow = timed.loc[timed["median_ship_to_deliver_days"].idxmax()]
        text += (f"; {slow.carrier} is slowest in transit (median {slow.median_ship_to_deliver_days:.1f} days, 9 in "
                 f"10 within {slow.p90_ship_to_deliver_days:.1f})")
    return text + "."


def _not_observed(outcome: str, window: int, as_of: date, n_late: int, n_on_time: int) -> str:
    which = "delivery" if not n_late and not n_on_time else "late delivery" if not n_late else "on-time delivery"
    return (f"No {which} in view has had its whole {window}-day window by {day(as_of)} (only deliveries up to "
            f"{day(as_of - timedelta(days=window))} count), so {outcome} cannot be compared: start the period "
            "earlier or shorten the window.")


def late_effect_reading(effect) -> str:
    """What follows a late delivery against an on-time one: tickets within the ticket window (difference in points)
    and repeat purchases within the repurchase window (ratio), with 95% intervals (a
    ``fulfilment.LateDeliveryEffect``).

    >>> from types import SimpleNamespace as S
    >>> import textwrap
    >>> e = S(as_of=date(2026, 6, 30), ticket_window_days=14, repurchase_days=180,
    ...       ticket=S(treatment=0.4136, control=0.0815, absolute_lift=0.3321, ci_low=0.2576, ci_high=0.4101),
    ...       repurchase=S(treatment=0.6178, control=0.7541, absolute_lift=-0.1363, ci_low=-0.17, ci_high=-0.10),
    ...       repurchase_ratio=0.8192, repurchase_ratio_interval=(0.7732, 0.868))
    >>> print(textwrap.fill(late_effect_reading(e), 110))
    41.4% of late deliveries were followed by a ticket from the customer within 14 days, against 8.2% of on-time
    ones: +33.2 points (95% interval +25.8 to +41.0). 61.8% were followed by another purchase within 180 days,
    against 75.4%: 0.82 times as often (95% interval 0.77 to 0.87).
    """
    t, r = effect.ticket, effect.repurchase
    if t is not None:
        text = (f"{t.treatment:.1%} of late deliveries were followed by a ticket from the customer within "
                f"{effect.ticket_window_days} days, against {t.control:.1%} of on-time ones: "
                f"{t.absolute_lift * 100:+.1f} points ({_interval(t.ci_low * 100, t.ci_high * 100, '+.1f')}).")
    else:
        text = _not_observed("tickets", effect.ticket_window_days, effect.as_of, effect.late_ticket_shipments,
                             effect.on_time_ticket_shipments)
    if r is None:
        return text + " " + _not_observed("repurchase", effect.repurchase_days, effect.as_of,
                                          effect.late_repurchase_shipments, effect.on_time_repurchase_shipments)
    text += (f" {r.treatment:.1%} were followed by another purchase within {effect.repurchase_days} days, against "
             f"{r.control:.1%}: ")
    ratio, bounds = effect.repurchase_ratio, effect.repurchase_ratio_interval
    if ratio is None or bounds is None:
        text += f"{r.absolute_lift * 100:+.1f} points ({_interval(r.ci_low * 100, r.ci_high * 100, '+.1f')})."
    else:
        text += f"{ratio:.2f} times as often ({_interval(bounds[0], bounds[1], '.2f')})."
    return text


def delivery_nps_reading(result) -> str:
    """NPS after a late delivery, after an on-time one and with no recent delivery, and the gap in mean score after
    a late delivery against all other answers (a ``voice.DeliveryNps``).

    >>> from types import SimpleNamespace as S
    >>> import textwrap
    >>> g = pd.DataFrame({"group": ["after a late delivery", "after an on-time delivery", "no recent delivery"],
    ...                   "responses": [16, 123, 47], "nps": [-62.5, 23.577, 55.319]})
    >>> d = S(window_days=7, exclude_after_ticket_days=7, excluded=59, groups=g, note="",
    ...       effect=S(absolute_lift=-2.8757, ci_low=-3.9171, ci_high=-1.8343))
    >>> print(textwrap.fill(delivery_nps_reading(d), 110))
    NPS is -62 in the 7 days after a late delivery (16 answers), +24 after an on-time delivery (123) and +55 with
    no recent delivery (47); the mean score after a late delivery is 2.9 points lower than the other answers' (95%
    interval -3.9 to -1.8). 59 answers given within 7 days of a support ticket are left out.
    """
    g = result.groups
    if not g["responses"].sum():
        return "No survey answers in the period; import surveys to see how deliveries move the score."
    parts = []
    for i, row in enumerate(g.itertuples()):
        n = int(row.responses)
        where = row.group if row.group.startswith("after") else f"with {row.group}"
        if i == 0:
            where = f"in the {result.window_days} days {where}"
        if not n:
            parts.append(f"no answers {where}")
        else:
            answers = f"{format_value(n, 'count')} answer{'s' if n != 1 else ''}" if i == 0 else \
                format_value(n, 'count')
            parts.append(f"{row.nps:+.0f} {where} ({answers})")
    if parts[0].startswith("no answers"):
        text = parts[0][:1].upper() + parts[0][1:] + "; NPS is " + " and ".join(parts[1:])
    else:
        text = "NPS is " + ", ".join(parts[:-1]) + " and " + parts[-1]
    e = result.effect
    if e is not None:
        text += (f"; the mean score after a late delivery is {abs(e.absolute_lift):.1f} points "
                 f"{'lower' if e.absolute_lift < 0 else 'higher'} than the other answers' "
                 f"({_interval(e.ci_low, e.ci_high, '+.1f')})")
    elif result.note:
        text += f" ({result.note})"
    text += "."
    if result.excluded:
        text += (f" {format_value(result.excluded, 'count')} answer{'s' if result.excluded != 1 else ''} given "
                 f"within {result.exclude_after_ticket_days} days of a support ticket "
                 f"{'are' if result.excluded != 1 else 'is'} left out.")
    return text
