"""Customer value: profit per customer after the cost of goods and the cost to serve, the whale curve, value tiers
with their service levels, influence through referrals, and predicted lifetime value."""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
import streamlit as st

from crm_core import clv, narrative, value
from ui import frame, tables

TIER_COLORS = {"Platinum": "#6e7781", "Gold": "#bf8700", "Silver": "#afb8c1", "Bronze": "#953800",
               "Loss-making": "#cf222e"}


@st.cache_data(ttl=3600, show_spinner="Computing profit per customer ...", show_time=True)
def _values(version: str, start: dt.date | None, end: dt.date, rates: value.CostRates, regions: tuple[str, ...],
            segments: tuple[str, ...]):
    return value.customer_value(frame.backend(), end, start=start, rates=rates, regions=regions, segments=segments)


@st.cache_data(ttl=3600, show_spinner="Fitting the BG/NBD and Gamma-Gamma models ...", show_time=True)
def _clv(version: str, end: dt.date, horizon: int, discount: float, unit: str):
    return clv.clv(frame.backend(), end, horizon_months=horizon, discount_rate=discount, time_unit=unit)


@st.cache_data(ttl=3600, show_spinner="Checking the model on a holdout period ...", show_time=True)
def _holdout(version: str, calibration_end: dt.date, end: dt.date, unit: str):
    return clv.calibration_holdout(frame.backend(), calibration_end, end, unit)


def _rates() -> value.CostRates:
    """Cost rates from the sidebar (defaults: ``value.CostRates()``)."""
    d = value.CostRates()
    with st.sidebar.expander("Cost rates"):
        st.caption("What serving a customer costs, in the data's currency. Change them to your own.")
        tickets = {ch: st.number_input(f"Ticket by {ch}", 0.0, 1000.0, cost, 0.5, key=f"vr_t_{ch}")
                   for ch, cost in d.ticket_cost_by_channel.items()}
        other_ticket = st.number_input("Ticket, other channels", 0.0, 1000.0, d.default_ticket_cost, 0.5,
                                       key="vr_t_other")
        contacts = {ch: st.number_input(f"Contact by {ch}", 0.0, 100.0, cost, 0.01, key=f"vr_c_{ch}",
                                        help="Used when a contact has no cost of its own.")
                    for ch, cost in d.contact_cost_by_channel.items()}
        shipping = st.number_input("Shipping, when a cost is missing", 0.0, 1000.0, d.default_shipping_cost, 0.5,
                                   key="vr_ship")
        margin = st.slider("Margin rate where unit costs are missing", 0.0, 1.0, d.default_margin_rate, 0.05,
                           key="vr_margin")
    return value.CostRates(ticket_cost_by_channel=tickets, default_ticket_cost=other_ticket,
                           contact_cost_by_channel=contacts, default_shipping_cost=shipping,
                           default_margin_rate=margin)


def _bridge(bridge) -> go.Figure:
    fig = go.Figure(go.Waterfall(
        x=bridge["step"], y=bridge["amount"], measure=bridge["measure"],
        increasing=dict(marker_color="#1a7f37"), decreasing=dict(marker_color="#cf222e"),
        totals=dict(marker_color="#1f6feb"), texttemplate="%{y:,.0f}", textposition="outside",
    ))
    fig.update_layout(title="From net revenue to profit", height=380, yaxis_title="Amount", hovermode="x")
    return fig


def _whale(curve) -> go.Figure:
    fig = go.Figure(go.Scatter(x=curve["share_of_customers"], y=curve["cumulative_profit_share"], mode="lines",
                               line=dict(color="#1f6feb", width=3), name="Cumulative profit",
                               hovertemplate="Best %{x:.0%} of customers: %{y:.0%} of profit<extra></extra>"))
    fig.add_hline(y=1, line_dash="dot", line_color="#57606a", annotation_text="total profit")
    fig.update_layout(title="Whale curve: cumulative profit, customers ranked by profit", height=380,
                      xaxis=dict(title="Customers ranked by profit (share)", tickformat=".0%"),
                      yaxis=dict(title="Share of total profit", tickformat=".0%"), hovermode="closest")
    return fig


def _tiers(tiers) -> go.Figure:
    fig = go.Figure([
        go.Bar(x=tiers["value_tier"], y=tiers["share_of_customers"], name="Share of customers",
               marker_color="#8c959f"),
        go.Bar(x=tiers["value_tier"], y=tiers["share_of_profit"], name="Share of profit",
               marker_color=[TIER_COLORS.get(t, "#1f6feb") for t in tiers["value_tier"]]),
    ])
    fig.update_layout(title="Value tiers: share of customers and of profit", barmode="group", height=360,
                      yaxis=dict(tickformat=".0%", title="Share"))
    return fig


def _holdout_chart(cal) -> go.Figure:
    f = cal.frame
    fig = go.Figure([
        go.Bar(x=f["calibration_purchases"], y=f["mean_actual"], name="Actual", marker_color="#8c959f"),
        go.Scatter(x=f["calibration_purchases"], y=f["mean_predicted"], name="Predicted", mode="lines+markers",
                   line=dict(color="#1f6feb", width=3)),
    ])
    fig.update_layout(title="Holdout check: repeat purchases per customer, predicted vs actual", height=380,
                      xaxis=dict(title="Repeat purchases in the calibration period", type="category"),
                      yaxis_title="Mean repeat purchases in the holdout")
    return fig


def _quadrants(frame) -> go.Figure:
    fig = go.Figure()
    colors = {"Retain": "#1a7f37", "Grow": "#1f6feb", "Maintain": "#bf8700", "Reduce cost to serve": "#cf222e"}
    points = frame[frame["potential_quadrant"].notna()]
    if len(points) > 5000:
        points = points.sample(5000, random_state=0)
    for name, color in colors.items():
        mine = points[points["potential_quadrant"] == name]
        fig.add_trace(go.Scattergl(x=mine["profit"], y=mine["potential_value"], mode="markers", name=name,
                                   marker=dict(color=color, size=5, opacity=0.55), text=mine["customer_id"],
                                   hovertemplate="%{text}: profit %{x:,.0f}, predicted CLV %{y:,.0f}<extra></extra>"))
    fig.update_layout(title="Profit so far against predicted value", height=420, hovermode="closest",
                      xaxis=dict(title="Profit so far", type="linear"), yaxis=dict(title="Predicted CLV"))
    return fig


def _clv_section(f, version: str, values) -> None:
    st.subheader("Predicted lifetime value")
    c1, c2, c3 = st.columns(3)
    horizon = int(c1.slider("Horizon (months)", 3, 36, 12, 3, key="clv_h"))
    discount = float(c2.number_input("Discount rate per month", 0.0, 0.1, 0.01, 0.005, format="%.3f", key="clv_d",
                                     help="Future value is discounted by this rate each month (0.01 ≈ 12.7% a "
                                          "year)."))
    unit = c3.selectbox("Time unit", list(clv.TIME_UNITS), index=1, format_func=clv.UNIT_NAMES.get, key="clv_u",
                        help="The unit the models count time in; the predictions barely change with it.")
    try:
        result = _clv(version, f.end, horizon, discount, unit)
    except ValueError as exc:
        st.info(f"{exc}")
        return
    for warning in result.warnings:
        st.warning(warning)
    t = result.totals
    cards = [("Predicted CLV, all customers", t["clv"], "currency", clv.COLUMN_HELP["clv"]),
             ("Expected purchases", t["expected_purchases"], "count", clv.COLUMN_HELP["expected_purchases"]),
             ("Mean P(alive)", t["mean_p_alive"], "pct", clv.COLUMN_HELP["p_alive"]),
             ("Expected spend, new buyer", result.population_mean_spend, "currency",
              "What a customer without a repeat purchase is expected to spend per purchase (Gamma-Gamma's "
              "population mean).")]
    for col, (label, number, kind, help_text) in zip(st.columns(4), cards):
        col.metric(label, narrative.format_value(number, kind), help=help_text, border=True)
    st.caption(f"Model fitted on every customer with a purchase by {narrative.day(f.end)} (regions and segments are "
               "not filtered here); BG/NBD for repeat purchases and P(alive), Gamma-Gamma for spend, by maximum "
               f"likelihood in {result.timings['total']:.2f} s.")

    left, right = st.columns(2)
    with left:
        potential = value.add_potential(values, result.customers[["customer_id", "clv"]])
        st.plotly_chart(_quadrants(potential), width="stretch")
        quads = value.quadrant_summary(potential)
        st.caption(narrative.quadrant_reading(quads))
    with right:
        calibration_end = f.end - dt.timedelta(days=182)
        try:
            cal = _holdout(version, calibration_end, f.end, unit)
        except ValueError as exc:
            st.info(f"No holdout check: {exc}")
        else:
            st.plotly_chart(_holdout_chart(cal), width="stretch")
            st.caption(narrative.holdout_reading(cal))
    st.caption(narrative.clv_reading(result))
    tables.show(quads, value.VALUE_LABELS | {"action": "What to do"})

    with st.expander("Model parameters with standard errors"):
        tables.show(result.parameters(), {"standard_error": "Standard error", "lower_95": "95% low",
                                          "upper_95": "95% high"})
        tables.download("Download parameters (CSV)", result.parameters(), "clv_parameters.csv")
    ranked = result.customers.sort_values("clv", ascending=False)
    with st.expander(f"Predicted value of each of the {len(ranked):,} customers"):
        tables.show(ranked, help=clv.COLUMN_HELP, rows=1000)
        tables.download("Download predicted CLV (CSV)", ranked, "customer_clv.csv")


def render() -> None:
    f = frame.current_filters()
    version = frame.data_version()
    st.title("Customer value")
    window = st.sidebar.radio("Value window", ["All history", "The period"], key="v_window",
                              help="Profit over every order up to the end of the period, or only within it.")
    rates = _rates()
    start = None if window == "All history" else f.start
    scope = ", ".join(f.regions) if f.regions else "all regions"
    if f.segments:
        scope += "; segments " + ", ".join(f.segments)
    span = (f"all history to {narrative.day(f.end)}" if start is None
            else f"{narrative.day(f.start)} – {narrative.day(f.end)}")
    st.caption(f"Profit per customer over {span}, {scope}. Profit = gross margin (price − unit cost on each order "
               "line) − cost to serve (support tickets, shipping, campaign contacts; rates in the sidebar).")
    values = _values(version, start, f.end, rates, f.regions, f.segments)
    if values.empty:
        st.info("No customer has orders, tickets or campaign contacts in this window. Import orders on the Data "
                "page, or widen the window.")
        st.stop()

    totals = value.value_totals(values)
    whale = value.whale_summary(values)
    cards = [
        ("Customers", totals.customers, "count", "Customers with an order, ticket or campaign contact in the window."),
        ("Net revenue", totals.revenue, "currency", value.VALUE_HELP["revenue"]),
        ("Gross margin", totals.gross_margin, "currency", value.VALUE_HELP["gross_margin"]),
        ("Cost to serve", totals.cost_to_serve, "currency", value.VALUE_HELP["cost_to_serve"]),
        ("Profit", totals.profit, "currency", value.VALUE_HELP["profit"]),
        ("Loss-making customers", totals.loss_making_customers, "count",
         "Customers whose cost to serve is more than the gross margin they bring."),
    ]
    for row in (cards[:3], cards[3:]):
        for col, (label, number, unit, help_text) in zip(st.columns(3), row):
            col.metric(label, narrative.format_value(number, unit), help=help_text, border=True)

    left, right = st.columns(2)
    with left:
        st.plotly_chart(_bridge(value.profit_bridge(totals)), width="stretch")
        st.caption(narrative.value_reading(totals))
    with right:
        curve = value.whale_curve(values)
        st.plotly_chart(_whale(curve), width="stretch")
        st.caption(narrative.whale_reading(whale))

    st.subheader("Value tiers and the service each should get")
    tiers = value.tier_summary(values)
    st.plotly_chart(_tiers(tiers), width="stretch")
    st.caption(narrative.tier_reading(tiers))
    tables.show(tiers, value.VALUE_LABELS | {"value_tier": "Tier", "service_level": "Service level"})
    tables.download("Download tiers (CSV)", tiers, "value_tiers.csv")

    st.subheader("Influence: customers whose referrals bring revenue")
    top = value.influencers(values, top=20)
    if top.empty:
        st.caption("No referrals in the data: customers.referred_by is empty. Import customers with their referrer "
                   "to see who brings new business.")
    else:
        tables.show(top, value.VALUE_LABELS, value.VALUE_HELP)
        st.caption(narrative.influence_reading(top))
        tables.download("Download influencers (CSV)", top, "influencers.csv")

    with st.expander(f"Profit of each of the {len(values):,} customers"):
        tables.show(values, value.VALUE_LABELS, value.VALUE_HELP, rows=1000)
        tables.download("Download profit per customer (CSV)", values, "customer_value.csv")

    _clv_section(f, version, values)


if __name__ == "__main__":  # opened by its own URL on a fresh server: run the whole app frame
    frame.run_app()
