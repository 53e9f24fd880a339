"""One sentence that reads a result for a manager, and the number formats the app shows.

Pages call these instead of composing numbers themselves, so every reading is tested with the metric it reads.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from crm_core.metrics import Overview
from crm_core.segments import AT_RISK_SEGMENTS

__all__ = ["attribution_reading", "basket_reading", "calibration_reading", "campaign_segment_reading",
           "channel_reading", "churn_model_reading", "churn_reading", "cluster_reading", "clv_reading",
           "cohort_reading", "day", "drivers_reading", "format_delta", "format_value", "funnel_reading",
           "holdout_reading", "influence_reading", "migration_reading", "next_best_reading", "no_control_reading",
           "overview_reading", "qini_reading", "quadrant_reading", "quintile_reading", "segment_reading",
           "targets_reading", "tier_reading", "trend_reading", "value_reading", "whale_reading"]


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
