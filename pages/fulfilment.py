"""Fulfilment: on-time delivery against the promised date, order-to-ship and ship-to-deliver lead times by carrier,
region and month; what a late delivery does to later tickets and repeat purchases, and to the NPS."""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from crm_core import fulfilment, narrative, voice
from crm_core.fulfilment import FULFILMENT_HELP, FULFILMENT_LABELS
from ui import frame, tables

LATE, ON_TIME, OTHER, NEUTRAL = "#cf222e", "#1a7f37", "#8c959f", "#1f6feb"
NPS_COLORS = dict(zip(voice.DELIVERY_GROUPS, (LATE, ON_TIME, OTHER)))


@st.cache_data(ttl=3600, show_spinner="Measuring delivery times and late rates ...", show_time=True)
def _kpis(version: str, start: dt.date, as_of: dt.date, regions: tuple[str, ...], segments: tuple[str, ...],
          by: str | None):
    return fulfilment.fulfilment_kpis(frame.backend(), as_of, start, regions, segments, by=by)


@st.cache_data(ttl=3600, show_spinner="Relating late deliveries to repeat purchases ...", show_time=True)
def _effect(version: str, start: dt.date | None, as_of: dt.date, regions: tuple[str, ...],
            segments: tuple[str, ...], ticket_days: int, repurchase_days: int):
    return fulfilment.late_delivery_effect(frame.backend(), as_of, ticket_days, repurchase_days, start, regions,
                                           segments)


@st.cache_data(ttl=3600, show_spinner="Relating delivery to NPS ...", show_time=True)
def _delivery_nps(version: str, start: dt.date, as_of: dt.date, regions: tuple[str, ...],
                  segments: tuple[str, ...]):
    return voice.nps_after_delivery(frame.backend(), as_of, start=start, regions=regions, segments=segments)


def _errors(f, column: str, low: str, high: str) -> dict:
    return dict(type="data", symmetric=False, array=f[high] - f[column], arrayminus=f[column] - f[low])


def _carrier_chart(by_carrier, worst: str | None) -> go.Figure:
    f = by_carrier
    fig = go.Figure(go.Bar(
        x=f["carrier"], y=f["late_rate"], marker_color=[LATE if c == worst else OTHER for c in f["carrier"]],
        error_y=_errors(f, "late_rate", "late_rate_low", "late_rate_high"), customdata=f[["late", "on_time"]],
        hovertemplate="%{x}: %{y:.1%} late (%{customdata[0]:,} late, %{customdata[1]:,} on time)<extra></extra>"))
    fig.update_layout(title="Late rate by carrier, with 95% intervals", height=340, hovermode="closest",
                      yaxis=dict(title="Late deliveries (share)", tickformat=".0%", rangemode="tozero"))
    return fig


def _region_chart(by_region) -> go.Figure:
    f = by_region  # no highlight: the highest point estimate is often a small region (the reading says so)
    fig = go.Figure(go.Bar(
        x=f["region"], y=f["late_rate"], marker_color=OTHER,
        error_y=_errors(f, "late_rate", "late_rate_low", "late_rate_high"),
        customdata=f[["on_time_rate", "late", "on_time"]],
        hovertemplate="%{x}: %{y:.1%} late, %{customdata[0]:.1%} on time (%{customdata[1]:,} late, "
                      "%{customdata[2]:,} on time)<extra></extra>"))
    fig.update_layout(title="Late rate by customer region, with 95% intervals", height=340, hovermode="closest",
                      yaxis=dict(title="Late deliveries (share)", tickformat=".0%", rangemode="tozero"))
    return fig


def _month_chart(by_month) -> go.Figure:
    f = by_month
    fig = go.Figure([
        go.Scatter(x=f["month"], y=f["late_rate_high"], mode="lines", line=dict(width=0), showlegend=False,
                   hoverinfo="skip"),
        go.Scatter(x=f["month"], y=f["late_rate_low"], mode="lines", line=dict(width=0), fill="tonexty",
                   fillcolor="rgba(207,34,46,0.15)", name="95% interval", hoverinfo="skip"),
        go.Scatter(x=f["month"], y=f["late_rate"], mode="lines+markers", line=dict(color=LATE, width=2),
                   name="Late rate", customdata=f["on_time_rate"],
                   hovertemplate="%{x|%b %Y}: %{y:.1%} late, %{customdata:.1%} on time<extra></extra>"),
    ])
    fig.update_layout(title="Late rate by month of order", height=340,
                      xaxis=dict(title=None, tickformat="%b %Y", dtick="M1"),
                      yaxis=dict(title="Late deliveries (share)", tickformat=".0%", rangemode="tozero"))
    return fig


def _lead_time_chart(by_carrier) -> go.Figure:
    f = by_carrier
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Order to ship (hours)", "Ship to delivery (days)"))
    for col, (median, p90, unit) in enumerate((("median_order_to_ship_hours", "p90_order_to_ship_hours", "h"),
                                               ("median_ship_to_deliver_days", "p90_ship_to_deliver_days", "d")),
                                              start=1):
        fig.add_trace(go.Bar(x=f["carrier"], y=f[median], name="Median", marker_color=NEUTRAL,
                             legendgroup="median", showlegend=col == 1,
                             hovertemplate=f"%{{x}}: median %{{y:.1f}} {unit}<extra></extra>"), row=1, col=col)
        fig.add_trace(go.Bar(x=f["carrier"], y=f[p90], name="90th percentile", marker_color=OTHER,
                             legendgroup="p90", showlegend=col == 1,
                             hovertemplate=f"%{{x}}: 9 in 10 within %{{y:.1f}} {unit}<extra></extra>"), row=1, col=col)
    fig.update_layout(title="Lead times by carrier", barmode="group", height=360, hovermode="closest")
    fig.update_yaxes(title_text="Hours", row=1, col=1)
    fig.update_yaxes(title_text="Days", row=1, col=2)
    return fig


def _effect_chart(effect_frame, ticket_days: int, repurchase_days: int) -> go.Figure:
    outcomes = [f"Ticket within {ticket_days} days", f"Bought again within {repurchase_days} days"]
    traces = []
    for group, name, color in (("late", "After a late delivery", LATE), ("on time", "After an on-time delivery",
                                                                          ON_TIME)):
        row = effect_frame.set_index("group").loc[group]
        y = [row["ticket_rate"], row["repurchase_rate"]]
        traces.append(go.Bar(
            x=outcomes, y=y, name=name, marker_color=color,
            error_y=dict(type="data", symmetric=False,
                         array=[row["ticket_rate_high"] - y[0], row["repurchase_rate_high"] - y[1]],
                         arrayminus=[y[0] - row["ticket_rate_low"], y[1] - row["repurchase_rate_low"]]),
            customdata=[[row["with_ticket"], row["ticket_shipments"]], [row["repurchased"],
                                                                        row["repurchase_shipments"]]],
            hovertemplate=f"{name}: %{{y:.1%}} (%{{customdata[0]:,}} of %{{customdata[1]:,}})<extra></extra>"))
    fig = go.Figure(traces)
    fig.update_layout(title="What follows a delivery: late against on time, with 95% intervals", barmode="group",
                      height=360, hovermode="closest",
                      yaxis=dict(title="Share of delivered shipments", tickformat=".0%", rangemode="tozero"))
    return fig


def _nps_chart(groups) -> go.Figure:
    g = groups
    fig = go.Figure(go.Bar(
        x=g["group"], y=g["nps"], marker_color=[NPS_COLORS.get(x, OTHER) for x in g["group"]],
        error_y=_errors(g, "nps", "nps_low", "nps_high"), customdata=g[["responses", "mean_score"]],
        hovertemplate="%{x}: NPS %{y:+.0f} (%{customdata[0]:,} answers, mean score %{customdata[1]:.1f})"
                      "<extra></extra>"))
    fig.update_layout(title="NPS by what came before the answer, with 95% intervals", height=340,
                      hovermode="closest", yaxis=dict(title="NPS (-100 to 100)", range=[-100, 100], zeroline=True))
    return fig


def _cards(kpis) -> None:
    k = kpis.iloc[0]
    p90_ship = narrative.format_value(k["p90_order_to_ship_hours"], "ratio")
    p90_transit = narrative.format_value(k["p90_ship_to_deliver_days"], "ratio")
    interval = (f" 95% interval {narrative.format_value(k['late_rate_low'], 'pct')} to "
                f"{narrative.format_value(k['late_rate_high'], 'pct')}.")
    cards = [
        ("shipments", "count", ""),
        ("on_time_rate", "pct", ""),
        ("late_rate", "pct", interval),
        ("overdue", "count", ""),
        ("median_order_to_ship_hours", "ratio", f" 90th percentile: {p90_ship} hours."),
        ("median_ship_to_deliver_days", "ratio", f" 90th percentile: {p90_transit} days."),
    ]
    for col, (key, unit, extra) in zip(st.columns(len(cards)), cards):
        col.metric(FULFILMENT_LABELS[key], narrative.format_value(k[key], unit), help=FULFILMENT_HELP[key] + extra,
                   border=True)


def render() -> None:
    f = frame.current_filters()
    version = frame.data_version()
    st.title("Fulfilment")
    ticket_days = int(st.sidebar.number_input(
        "Ticket within (days after delivery)", 1, 90, 14, 1, key="ful_ticket_days",
        help="A delivery is followed by a ticket when the same customer opens one within this many days of it. Only "
             "deliveries at least this many days before the end of the period count."))
    repurchase_days = int(st.sidebar.number_input(
        "Bought again within (days after delivery)", 1, 730, 180, 15, key="ful_repurchase_days",
        help="A delivery is followed by a purchase when the same customer buys again (not a return) within this many "
             "days of it. Only deliveries at least this many days before the end of the period count."))
    scope = ", ".join(f.regions) if f.regions else "all regions"
    if f.segments:
        scope += "; segments " + ", ".join(f.segments)
    st.caption(f"Shipments of the orders placed from {narrative.day(f.start)} to {narrative.day(f.end)}, {scope}; "
               f"delivered, late and overdue as of the end of {narrative.day(f.end)}.")

    kpis = _kpis(version, f.start, f.end, f.regions, f.segments, None)
    if not kpis["shipments"].iloc[0]:
        st.info("No shipments for the orders placed in this period. Import shipments on the Data page (one row per "
                "parcel: order, carrier, promised date, shipped and delivered times) to see on-time delivery, lead "
                "times and what a late delivery costs; if you have, widen the period.")
        st.stop()
    _cards(kpis)
    st.caption(narrative.fulfilment_reading(kpis))

    st.subheader("Carriers")
    by_carrier = _kpis(version, f.start, f.end, f.regions, f.segments, "carrier")
    st.plotly_chart(_carrier_chart(by_carrier, narrative.highest_late_rate(by_carrier, "carrier")), width="stretch")
    st.caption(narrative.carrier_reading(by_carrier))
    tables.show(by_carrier, FULFILMENT_LABELS, FULFILMENT_HELP)
    tables.download("Download carriers (CSV)", by_carrier, "fulfilment_carriers.csv")

    left, right = st.columns(2)
    by_region = _kpis(version, f.start, f.end, f.regions, f.segments, "region")
    with left:
        st.plotly_chart(_region_chart(by_region), width="stretch")
        st.caption(narrative.fulfilment_region_reading(by_region))
    by_month = _kpis(version, f.start, f.end, f.regions, f.segments, "month")
    with right:
        st.plotly_chart(_month_chart(by_month), width="stretch")
        st.caption(narrative.fulfilment_month_reading(by_month))
    with st.expander("Regions and months tables"):
        tables.show(by_region, FULFILMENT_LABELS, FULFILMENT_HELP)
        tables.download("Download regions (CSV)", by_region, "fulfilment_regions.csv")
        tables.show(by_month, FULFILMENT_LABELS, FULFILMENT_HELP)
        tables.download("Download months (CSV)", by_month, "fulfilment_months.csv")

    st.subheader("Lead times")
    st.plotly_chart(_lead_time_chart(by_carrier), width="stretch")
    st.caption(narrative.lead_time_reading(kpis, by_carrier))

    st.subheader("What a late delivery costs")
    whole_history = st.toggle(
        "Compare every delivery up to the end of the period, not only the period's", key="ful_effect_all",
        help="A delivery counts only once its whole window has passed, so a short period rarely holds deliveries "
             f"{repurchase_days} days old. Switch on to compare all deliveries before the end of the period.")
    st.caption("Delivered shipments with a promised date, of known customers, "
               + ("up to" if whole_history else f"of the orders placed from {narrative.day(f.start)} to")
               + f" {narrative.day(f.end)}; each outcome counts only the deliveries whose whole window ended by "
                 "then (a delivery in the last days cannot show its tickets yet). A ticket counts from the delivery "
                 "time; a purchase (not a return) after it.")
    effect = _effect(version, None if whole_history else f.start, f.end, f.regions, f.segments, ticket_days,
                     repurchase_days)
    effect_frame = effect.frame()
    st.plotly_chart(_effect_chart(effect_frame, ticket_days, repurchase_days), width="stretch")
    st.caption(narrative.late_effect_reading(effect))
    tables.show(effect_frame, FULFILMENT_LABELS, FULFILMENT_HELP)
    tables.download("Download the late-delivery comparison (CSV)", effect_frame, "late_delivery_effect.csv")

    st.subheader("NPS after a delivery")
    nps = _delivery_nps(version, f.start, f.end, f.regions, f.segments)
    groups = nps.frame()
    if not groups["responses"].sum():
        st.info("No survey answers in this period. Import surveys (NPS score 0-10 per answer) on the Data page to see "
                "how a late delivery moves the score.")
        return
    st.caption(f"Survey answers given in the period, grouped by the latest delivery to the customer in the "
               f"{nps.window_days} days before the answer; answers within {nps.exclude_after_ticket_days} days of a "
               "support ticket are left out (they rate the support contact).")
    st.plotly_chart(_nps_chart(groups), width="stretch")
    st.caption(narrative.delivery_nps_reading(nps))
    tables.show(groups, voice.VOICE_LABELS, voice.VOICE_HELP)
    tables.download("Download NPS by delivery (CSV)", groups, "nps_after_delivery.csv")


if __name__ == "__main__":  # opened by its own URL on a fresh server: run the whole app frame
    frame.run_app()
