"""Cross-sell: which products (or categories) are bought together — support, confidence, lift, computed in the
database — and the next best product for each customer."""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
import streamlit as st

from crm_core import basket, narrative
from ui import frame, tables


@st.cache_data(ttl=3600, show_spinner="Finding products bought together ...", show_time=True)
def _rules(version: str, level: str, min_support: float, min_confidence: float, start: dt.date | None,
           end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...]):
    return basket.association_rules(frame.backend(), level=level, min_support=min_support,
                                    min_confidence=min_confidence, max_rules=200, start=start, end=end,
                                    regions=regions, segments=segments)


@st.cache_data(ttl=3600, show_spinner="Choosing each customer's next best offer ...", show_time=True)
def _next_best(version: str, level: str, min_support: float, min_confidence: float, start: dt.date | None,
               end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...]):
    return basket.next_best_products(frame.backend(), k=3, level=level, min_support=min_support,
                                     min_confidence=min_confidence, start=start, end=end, regions=regions,
                                     segments=segments)


def _rule_map(rules) -> go.Figure:
    r = rules.head(200)
    label = r["antecedent_name"].fillna(r["antecedent"]) + " → " + r["consequent_name"].fillna(r["consequent"])
    fig = go.Figure(go.Scatter(
        x=r["support"], y=r["confidence"], mode="markers", text=label,
        marker=dict(size=9, color=r["lift"], colorscale="Viridis", showscale=True, colorbar=dict(title="Lift")),
        hovertemplate="%{text}<br>support %{x:.2%}, confidence %{y:.1%}<extra></extra>"))
    fig.update_layout(title="Rules: how common (support) and how reliable (confidence); colour = lift", height=420,
                      hovermode="closest", xaxis=dict(title="Support (share of baskets)", tickformat=".1%"),
                      yaxis=dict(title="Confidence", tickformat=".0%"))
    return fig


def render() -> None:
    f = frame.current_filters()
    version = frame.data_version()
    st.title("Cross-sell")
    level = st.sidebar.radio("Rules between", ["product", "category"], key="xs_level",
                             format_func={"product": "products", "category": "categories"}.get)
    min_support = st.sidebar.select_slider("Minimum support", [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02], 0.001,
                                           key="xs_support", help=basket.RULE_HELP["support"],
                                           format_func=lambda x: f"{x:.2%}")
    min_confidence = st.sidebar.slider("Minimum confidence", 0.0, 0.5, 0.05, 0.01, key="xs_conf",
                                       help=basket.RULE_HELP["confidence"])
    window = st.sidebar.radio("Baskets from", ["All history", "The period"], key="xs_window")
    start = None if window == "All history" else f.start
    scope = ", ".join(f.regions) if f.regions else "all regions"
    if f.segments:
        scope += "; customers in " + ", ".join(f.segments)
    st.caption(f"Baskets (purchases; returns left out) up to {narrative.day(f.end)}"
               f"{'' if start is None else ' from ' + narrative.day(start)}, {scope}.")
    result = _rules(version, level, float(min_support), float(min_confidence), start, f.end, f.regions, f.segments)
    if result.n_baskets == 0:
        st.info("No baskets in this view. Import orders with their order lines (order_items) on the Data page.")
        st.stop()
    if result.rules.empty:
        st.info(f"No pair of {level}s reaches the thresholds in {result.n_baskets:,} baskets; lower the minimum "
                "support or confidence in the sidebar.")
        st.stop()
    st.plotly_chart(_rule_map(result.rules), width="stretch")
    st.caption(narrative.basket_reading(result.rules, result.n_baskets))
    tables.show(result.rules, basket.RULE_LABELS, basket.RULE_HELP)
    tables.download("Download rules (CSV)", result.rules, f"basket_rules_{level}.csv")

    st.subheader("Next best offer per customer")
    offers = _next_best(version, level, float(min_support), float(min_confidence), start, f.end, f.regions,
                        f.segments)
    if offers.empty:
        st.info("No customer has bought an item with a rule to recommend from.")
        return
    st.caption(narrative.next_best_reading(offers))
    tables.show(offers, basket.NEXT_BEST_LABELS, basket.NEXT_BEST_HELP, rows=1000)
    tables.download("Download next best offers (CSV)", offers, "next_best_offers.csv")


if __name__ == "__main__":  # opened by its own URL on a fresh server: run the whole app frame
    frame.run_app()
