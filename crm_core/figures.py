"""The key chart of every view as a pure Plotly figure (no Streamlit): the app's pages and the board pack draw the
same charts with the same colours and template.

Each builder takes a crm_core result frame and returns a ``go.Figure``; it does no arithmetic beyond picking
columns. Colours: one per quantity (:data:`COLORS`), one per RFM segment (:data:`SEGMENT_COLORS`); the Plotly
template ``"crm"`` is registered here (``ui.charts`` makes it the app's default).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

__all__ = ["COLORS", "SEGMENT_COLORS", "TEMPLATE", "TIER_COLORS", "campaign_figure", "carrier_figure",
           "cashflow_figure", "cohort_figure", "goal_progress_figure", "nps_month_figure", "rule_map_figure",
           "segment_shares_figure", "support_breakdown_figure", "tornado_figure", "trend_figure", "whale_figure"]

COLORS = {
    "revenue": "#1f6feb",
    "orders": "#8250df",
    "active_customers": "#1a7f37",
    "new_customers": "#bf8700",
    "aov": "#0a7f86",
    "open_tickets": "#cf222e",
    "accepted": "#1a7f37",
    "rejected": "#cf222e",
}

# One colour per RFM segment on every page (best → worst, green → red; "Not yet a customer" grey).
SEGMENT_COLORS = {
    "Champions": "#116329",
    "Loyal": "#1a7f37",
    "Potential loyalists": "#4ac26b",
    "New": "#0969da",
    "Promising": "#54aeff",
    "Need attention": "#bf8700",
    "About to sleep": "#d4a72c",
    "At risk": "#e16f24",
    "Can't lose them": "#cf222e",
    "Hibernating": "#8c959f",
    "Lost": "#57606a",
    "Not yet a customer": "#d0d7de",
}

TIER_COLORS = {"Platinum": "#6e7781", "Gold": "#bf8700", "Silver": "#afb8c1", "Bronze": "#953800",
               "Loss-making": "#cf222e"}

# Colours the pages use for one meaning each (kept equal to pages/support.py and pages/fulfilment.py).
_BREACH, _REPLY, _NEUTRAL, _GOOD, _LATE = "#cf222e", "#1f6feb", "#8c959f", "#1a7f37", "#cf222e"
_MONTH_AXIS = dict(dtick="M1", tickformat="%b %Y", title=None)
_LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.18, x=0)

pio.templates["crm"] = go.layout.Template(
    layout=go.Layout(
        font=dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=13),
        margin=dict(l=10, r=10, t=40, b=10),
        hovermode="x unified",
        xaxis=dict(showgrid=False),
        yaxis=dict(gridcolor="#eaeef2", zeroline=False),
        legend=dict(orientation="h", y=-0.2),
        colorway=list(COLORS.values()),
    )
)
TEMPLATE = "plotly_white+crm"


def _fig(traces, **layout) -> go.Figure:
    fig = go.Figure(traces)
    fig.update_layout(template=TEMPLATE, **layout)
    return fig


def trend_figure(trend: pd.DataFrame, column: str, label: str, kind: str = "bar") -> go.Figure:
    """A ``metrics.monthly_trend`` column by month, as a bar or a line (the Overview's charts)."""
    color = COLORS.get(column, COLORS["revenue"])
    trace = (go.Bar(x=trend["month"], y=trend[column], name=label, marker_color=color) if kind == "bar"
             else go.Scatter(x=trend["month"], y=trend[column], name=label, mode="lines+markers",
                             line=dict(color=color, width=2)))
    return _fig(trace, title=label, height=300, xaxis_title=None, yaxis_title=label)


def segment_shares_figure(summary: pd.DataFrame) -> go.Figure:
    """Share of customers and of revenue by RFM segment (a ``segments.segment_summary`` frame)."""
    s = summary[summary["customers"] > 0]
    return _fig([
        go.Bar(y=s["segment"], x=s["share_of_customers"], name="Share of customers", orientation="h",
               marker_color="#8c959f"),
        go.Bar(y=s["segment"], x=s["share_of_revenue"], name="Share of revenue", orientation="h",
               marker_color=[SEGMENT_COLORS.get(x, COLORS["revenue"]) for x in s["segment"]]),
    ], title="Share of customers (grey) and of revenue (segment colour)", barmode="group", height=430,
        xaxis=dict(tickformat=".0%", title="Share"), yaxis=dict(autorange="reversed", title=None),
        hovermode="y unified")


def whale_figure(curve: pd.DataFrame) -> go.Figure:
    """Cumulative share of profit against the share of customers ranked by profit (a ``value.whale_curve``)."""
    fig = _fig(go.Scatter(x=curve["share_of_customers"], y=curve["cumulative_profit_share"], mode="lines",
                          line=dict(color="#1f6feb", width=3), name="Cumulative profit",
                          hovertemplate="Best %{x:.0%} of customers: %{y:.0%} of profit<extra></extra>"),
               title="Whale curve: cumulative profit, customers ranked by profit", height=380,
               xaxis=dict(title="Customers ranked by profit (share)", tickformat=".0%"),
               yaxis=dict(title="Share of total profit", tickformat=".0%"), hovermode="closest")
    fig.add_hline(y=1, line_dash="dot", line_color="#57606a", annotation_text="total profit")
    return fig


def cohort_figure(grid: pd.DataFrame) -> go.Figure:
    """Retention by acquisition month and months since (a ``churn.cohort_matrix`` grid)."""
    labels = [f"{d:%b %Y}" for d in grid.index]
    return _fig(go.Heatmap(
        z=grid.to_numpy(), x=list(grid.columns), y=labels, colorscale="Blues", zmin=0, zmax=0.6,
        colorbar=dict(title="Retention", tickformat=".0%"), hoverongaps=False,
        hovertemplate="Acquired %{y}, month %{x}: %{z:.1%} bought<extra></extra>"),
        title="Share of each month's new customers who buy again, by months since acquisition",
        height=max(360, 18 * len(labels) + 120), hovermode="closest",
        xaxis=dict(title="Months since acquisition", dtick=1),
        yaxis=dict(title="Acquisition month", autorange="reversed"))


def campaign_figure(summary: pd.DataFrame) -> go.Figure:
    """Conversion rate (bars) and ROI (line) by campaign in start order (a ``campaigns.campaign_summary``)."""
    return _fig([
        go.Bar(x=summary["campaign_id"], y=summary["conversion_rate"], name="Conversion rate",
               marker_color="#1a7f37", customdata=summary["campaign_name"],
               hovertemplate="%{x} %{customdata}: %{y:.1%}<extra></extra>"),
        go.Scatter(x=summary["campaign_id"], y=summary["roi"], name="ROI", yaxis="y2", mode="lines+markers",
                   line=dict(color="#1f6feb", width=2), hovertemplate="%{x}: ROI %{y:.2f}<extra></extra>"),
    ], title="Conversion rate and ROI by campaign, in start order", height=360,
        yaxis=dict(title="Conversion rate", tickformat=".0%"),
        yaxis2=dict(title="ROI", overlaying="y", side="right", showgrid=False, zeroline=True))


def rule_map_figure(rules: pd.DataFrame) -> go.Figure:
    """Support against confidence of cross-sell rules, coloured by lift (a ``basket.association_rules`` frame)."""
    r = rules.head(200)
    label = r["antecedent_name"].fillna(r["antecedent"]) + " → " + r["consequent_name"].fillna(r["consequent"])
    return _fig(go.Scatter(
        x=r["support"], y=r["confidence"], mode="markers", text=label,
        marker=dict(size=9, color=r["lift"], colorscale="Viridis", showscale=True, colorbar=dict(title="Lift")),
        hovertemplate="%{text}<br>support %{x:.2%}, confidence %{y:.1%}<extra></extra>"),
        title="Rules: how common (support) and how reliable (confidence); colour = lift", height=420,
        hovermode="closest", xaxis=dict(title="Support (share of baskets)", tickformat=".1%"),
        yaxis=dict(title="Confidence", tickformat=".0%"))


def support_breakdown_figure(kpis: pd.DataFrame, by: str, by_label: str, breach_label: str = "SLA breach rate",
                             reply_label: str = "Median first response (hours)") -> go.Figure:
    """SLA breach rate (bars) and median first response (diamonds) by a ticket attribute (a
    ``support.ticket_kpis(by=...)`` frame)."""
    return _fig([
        go.Bar(x=kpis[by], y=kpis["breach_rate"], name=breach_label, marker_color=_BREACH,
               customdata=kpis["tickets"], hovertemplate="%{x}: %{y:.1%} of %{customdata:,} tickets<extra></extra>"),
        go.Scatter(x=kpis[by], y=kpis["median_first_response_hours"], yaxis="y2", mode="markers", name=reply_label,
                   marker=dict(color=_REPLY, size=11, symbol="diamond"),
                   hovertemplate="%{x}: median first reply %{y:.1f} h<extra></extra>"),
    ], title=f"SLA breach rate and median first response by {by_label.lower()}", height=380, hovermode="closest",
        legend=_LEGEND_BELOW, yaxis=dict(title="SLA breach rate", tickformat=".0%", rangemode="tozero"),
        yaxis2=dict(title="Median first response (hours)", overlaying="y", side="right", showgrid=False,
                    rangemode="tozero", tickformat=".0f"))


def carrier_figure(by_carrier: pd.DataFrame, worst: str | None) -> go.Figure:
    """Late rate by carrier with 95% intervals, the worst carrier in red (a ``fulfilment.fulfilment_kpis(by=
    "carrier")`` frame)."""
    f = by_carrier
    return _fig(go.Bar(
        x=f["carrier"], y=f["late_rate"], marker_color=[_LATE if c == worst else _NEUTRAL for c in f["carrier"]],
        error_y=dict(type="data", symmetric=False, array=f["late_rate_high"] - f["late_rate"],
                     arrayminus=f["late_rate"] - f["late_rate_low"]),
        customdata=f[["late", "on_time"]],
        hovertemplate="%{x}: %{y:.1%} late (%{customdata[0]:,} late, %{customdata[1]:,} on time)<extra></extra>"),
        title="Late rate by carrier, with 95% intervals", height=340, hovermode="closest",
        yaxis=dict(title="Late deliveries (share)", tickformat=".0%", rangemode="tozero"))


def nps_month_figure(by_month: pd.DataFrame) -> go.Figure:
    """NPS by month with 95% intervals (a ``voice.nps(by="month")`` frame)."""
    fig = _fig(go.Scatter(
        x=by_month["month"], y=by_month["nps"], mode="lines+markers", name="NPS", line=dict(color=_REPLY, width=2),
        error_y=dict(type="data", symmetric=False, array=by_month["nps_high"] - by_month["nps"],
                     arrayminus=by_month["nps"] - by_month["nps_low"], color="#57606a"),
        customdata=by_month["responses"],
        hovertemplate="%{x|%b %Y}: NPS %{y:+.0f} from %{customdata:,} answers<extra></extra>"),
        title="NPS by month, with 95% intervals", height=340, hovermode="closest", xaxis=_MONTH_AXIS,
        yaxis=dict(title="NPS", range=[-105, 105]))
    fig.add_hline(y=0, line_dash="dot", line_color="#57606a")
    return fig


def goal_progress_figure(series: pd.DataFrame, title: str, unit_label: str = "") -> go.Figure:
    """A goal's actual value against its planned path by period end (``GoalProgress.series``: period_end, actual,
    planned)."""
    return _fig([
        go.Scatter(x=series["period_end"], y=series["planned"], name="Planned", mode="lines",
                   line=dict(color=_NEUTRAL, width=2, dash="dash")),
        go.Scatter(x=series["period_end"], y=series["actual"], name="Actual", mode="lines+markers",
                   line=dict(color=COLORS["revenue"], width=3)),
    ], title=title, height=360, yaxis_title=unit_label or None, xaxis_title=None, legend=_LEGEND_BELOW)


def cashflow_figure(cashflows: pd.DataFrame, column: str = "cumulative_discounted_net") -> go.Figure:
    """Cumulative discounted net cash flow by month (``InvestmentCase.cashflows``); the break-even line at 0."""
    values = cashflows[column]
    fig = _fig(go.Bar(x=cashflows["month"], y=values, name="Cumulative discounted net",
                      marker_color=[_GOOD if v >= 0 else _BREACH for v in values]),
               title="Cumulative discounted cash flow by month", height=360, hovermode="closest",
               xaxis_title="Month", yaxis_title="Cumulative discounted net")
    fig.add_hline(y=0, line_dash="dot", line_color="#57606a")
    return fig


def tornado_figure(sensitivity: pd.DataFrame, base_npv: float) -> go.Figure:
    """NPV when each input is set to its low and its high value, widest swing on top (``investment.sensitivity``:
    input, low, high, npv_low, npv_high)."""
    s = sensitivity.assign(_swing=(sensitivity["npv_high"] - sensitivity["npv_low"]).abs())
    s = s.sort_values("_swing", ascending=True)
    labels = s["input"].astype(str)
    fig = _fig([
        go.Bar(y=labels, x=s["npv_low"] - base_npv, base=base_npv, orientation="h", name="Input at its low value",
               marker_color=_BREACH, customdata=s["low"], hovertemplate="%{y} = %{customdata}: NPV %{x:,.0f}"),
        go.Bar(y=labels, x=s["npv_high"] - base_npv, base=base_npv, orientation="h", name="Input at its high value",
               marker_color=_GOOD, customdata=s["high"], hovertemplate="%{y} = %{customdata}: NPV %{x:,.0f}"),
    ], title="What moves the NPV: each input at its low and high value", barmode="overlay",
        height=max(300, 40 * len(s) + 140), hovermode="closest", xaxis_title="NPV", yaxis_title=None,
        legend=_LEGEND_BELOW)
    fig.add_vline(x=base_npv, line_dash="dot", line_color="#57606a")
    return fig
