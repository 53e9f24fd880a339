"""Overview: KPI cards with period-over-period deltas, monthly trends, one sentence that reads them."""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
import streamlit as st

from crm_core import metrics, narrative
from ui import frame, tables
from ui.charts import COLORS


@st.cache_data(ttl=3600, show_spinner="Computing the KPIs for the period ...", show_time=True)
def _overview(version: str, end: dt.date, days: int, regions: tuple[str, ...], segments: tuple[str, ...]):
    return metrics.overview(frame.backend(), as_of=end, days=days, regions=regions, segments=segments)


@st.cache_data(ttl=3600, show_spinner="Computing the monthly trend ...", show_time=True)
def _trend(version: str, start: dt.date, end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...]):
    return metrics.monthly_trend(frame.backend(), start=start, end=end, regions=regions, segments=segments)


def _bar_or_line(trend, column: str, kind: str) -> go.Figure:
    label = metrics.TREND_LABELS[column]
    trace = (go.Bar(x=trend["month"], y=trend[column], name=label, marker_color=COLORS[column]) if kind == "bar"
             else go.Scatter(x=trend["month"], y=trend[column], name=label, mode="lines+markers",
                             line=dict(color=COLORS[column], width=2)))
    fig = go.Figure(trace)
    fig.update_layout(title=label, height=300, xaxis_title=None, yaxis_title=label)
    return fig


def render() -> None:
    f = frame.current_filters()
    version = frame.data_version()
    st.title("Overview")
    ov = _overview(version, f.end, f.days, f.regions, f.segments)
    region_text = ", ".join(f.regions) if f.regions else "all regions"
    if f.segments:
        region_text += "; segments " + ", ".join(f.segments) + f" as of {narrative.day(ov.period.end)}"
    st.caption(f"{narrative.day(ov.period.start)} – {narrative.day(ov.period.end)} ({f.days} days), {region_text}; "
               f"compared with {narrative.day(ov.previous_period.start)} – {narrative.day(ov.previous_period.end)}.")
    if not any(k.value for k in ov.kpis if k.key in ("revenue", "orders", "customers")):
        st.info("No customers or orders in this view. Import orders on the Data page, or widen the period.")
    st.markdown(f"**{narrative.overview_reading(ov)}**")

    kpis = list(ov.kpis)
    for row in (kpis[:5], kpis[5:]):
        cols = st.columns(len(row))
        for col, k in zip(cols, row):
            help_text = k.help if k.available else f"{k.help} Not available: {k.reason}"
            col.metric(k.label, narrative.format_value(k.value, k.unit), narrative.format_delta(k.delta, k.unit),
                       help=help_text, delta_color="inverse" if k.key in ("return_rate", "open_tickets") else "normal",
                       border=True)

    trend_start = (f.end.replace(day=1) - dt.timedelta(days=365 * 2 - 31)).replace(day=1)
    trend = _trend(version, trend_start, f.end, f.regions, f.segments)
    st.subheader("Monthly trend")
    st.caption(f"{trend_start:%b %Y} – {f.end:%b %Y}; the last month counts the days up to {f.end:%d %b}.")
    charts = [("revenue", "bar", "currency"), ("orders", "bar", "count"),
              ("active_customers", "line", "count"), ("new_customers", "line", "count")]
    for pair in (charts[:2], charts[2:]):
        cols = st.columns(2)
        for col, (column, kind, unit) in zip(cols, pair):
            with col:
                st.plotly_chart(_bar_or_line(trend, column, kind), width="stretch")
                st.caption(narrative.trend_reading(trend, column, metrics.TREND_LABELS[column], unit))
    if "open_tickets" in trend:
        st.plotly_chart(_bar_or_line(trend, "open_tickets", "line"), width="stretch")
        st.caption(narrative.trend_reading(trend, "open_tickets", "Open tickets at month end", "count"))

    with st.expander("Tables"):
        kpi_table = metrics.overview_frame(ov)
        st.dataframe(kpi_table, hide_index=True)
        tables.download("Download KPIs (CSV)", kpi_table, "overview_kpis.csv")
        st.dataframe(trend, hide_index=True)
        tables.download("Download monthly trend (CSV)", trend, "monthly_trend.csv")


if __name__ == "__main__":  # opened by its own URL on a fresh server: run the whole app frame
    frame.run_app()
