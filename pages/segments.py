"""Segments: RFM segment sizes and revenue share, how customers moved between segments, behavioural clusters."""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
import streamlit as st

from crm_core import clusters, narrative, segments
from ui import frame, tables
from ui.charts import SEGMENT_COLORS


@st.cache_data(ttl=3600, show_spinner="Scoring customers by recency, frequency and spend ...", show_time=True)
def _summary(version: str, as_of: dt.date, bins: int, regions: tuple[str, ...]):
    return segments.segment_summary(frame.backend(), as_of, bins, regions)


@st.cache_data(ttl=3600, show_spinner="Scoring customers by recency, frequency and spend ...", show_time=True)
def _rfm(version: str, as_of: dt.date, bins: int, regions: tuple[str, ...]):
    return segments.rfm(frame.backend(), as_of, bins, regions)


@st.cache_data(ttl=3600, show_spinner="Comparing segments between the two dates ...", show_time=True)
def _migration(version: str, since: dt.date, as_of: dt.date, bins: int, regions: tuple[str, ...]):
    return segments.migration(frame.backend(), since, as_of, bins, regions)


@st.cache_data(ttl=3600, show_spinner="Listing the customers who moved ...", show_time=True)
def _movers(version: str, since: dt.date, as_of: dt.date, source: str | None, target: str | None, bins: int,
            regions: tuple[str, ...]):
    return segments.migration_customers(frame.backend(), since, as_of, source, target, bins, regions)


@st.cache_data(ttl=3600, show_spinner="Finding behavioural clusters ...", show_time=True)
def _clusters(version: str, as_of: dt.date, k: int | None):
    return clusters.clusters(frame.backend(), as_of, n_clusters=k)


def _silhouette(result) -> go.Figure:
    ks = list(result.silhouette_by_k)
    fig = go.Figure(go.Bar(x=ks, y=list(result.silhouette_by_k.values()),
                           marker_color=["#1f6feb" if k == result.k else "#8c959f" for k in ks]))
    fig.update_layout(title="Silhouette by number of clusters (higher = better separated)", height=330,
                      xaxis=dict(title="Clusters (k)", dtick=1), yaxis_title="Silhouette", hovermode="x")
    return fig


def _cluster_map(result) -> go.Figure:
    points = result.assignments
    if len(points) > 5000:  # the shape is the same; the browser stays quick
        points = points.sample(5000, random_state=0)
    fig = go.Figure()
    for row in result.profiles.itertuples():
        mine = points[points["cluster"] == row.cluster]
        fig.add_trace(go.Scattergl(x=mine["pc1"], y=mine["pc2"], mode="markers", name=row.cluster_name,
                                   marker=dict(size=4, opacity=0.5), text=mine["customer_id"],
                                   hovertemplate="%{text}<extra>" + row.cluster_name + "</extra>"))
    v1, v2 = result.explained_variance
    fig.update_layout(title="Customers on the two main behaviour axes", height=420, hovermode="closest",
                      xaxis_title=f"Component 1 ({v1:.0%} of variance)", yaxis_title=f"Component 2 ({v2:.0%})")
    return fig


def _treemap(summary) -> go.Figure:
    s = summary[summary["customers"] > 0]
    fig = go.Figure(go.Treemap(
        labels=s["segment"], parents=[""] * len(s), values=s["customers"],
        marker=dict(colors=[SEGMENT_COLORS[x] for x in s["segment"]]),
        customdata=s[["share_of_customers", "share_of_revenue", "revenue"]],
        texttemplate="<b>%{label}</b><br>%{customdata[0]:.0%} of customers<br>%{customdata[1]:.0%} of revenue",
        hovertemplate="%{label}: %{value:,} customers, revenue %{customdata[2]:,.0f}<extra></extra>",
        sort=False,
    ))
    fig.update_layout(title="Customers by segment (area) with their share of revenue", height=430,
                      margin=dict(l=0, r=0, t=40, b=0))
    return fig


def _shares(summary) -> go.Figure:
    s = summary[summary["customers"] > 0]
    fig = go.Figure([
        go.Bar(y=s["segment"], x=s["share_of_customers"], name="Share of customers", orientation="h",
               marker_color="#8c959f"),
        go.Bar(y=s["segment"], x=s["share_of_revenue"], name="Share of revenue", orientation="h",
               marker_color="#1f6feb"),
    ])
    fig.update_layout(title="Share of customers and of revenue", barmode="group", height=430,
                      xaxis=dict(tickformat=".0%", title="Share"), yaxis=dict(autorange="reversed", title=None),
                      hovermode="y unified")
    return fig


def _sankey(flows, since: dt.date, as_of: dt.date) -> go.Figure:
    left = list(dict.fromkeys(flows["from_segment"]))
    right = list(dict.fromkeys(flows["to_segment"]))
    labels = [f"{x} ({narrative.day(since)})" for x in left] + [f"{x} ({narrative.day(as_of)})" for x in right]
    colors = [SEGMENT_COLORS[x] for x in left + right]
    src = [left.index(x) for x in flows["from_segment"]]
    dst = [len(left) + right.index(x) for x in flows["to_segment"]]
    link_colors = [SEGMENT_COLORS[x].replace("#", "") for x in flows["from_segment"]]
    link_colors = [f"rgba({int(c[:2], 16)},{int(c[2:4], 16)},{int(c[4:], 16)},0.35)" for c in link_colors]
    fig = go.Figure(go.Sankey(
        node=dict(label=labels, color=colors, pad=12, thickness=14),
        link=dict(source=src, target=dst, value=flows["customers"], color=link_colors,
                  customdata=flows["share_of_from"],
                  hovertemplate="%{source.label} → %{target.label}: %{value:,} customers "
                                "(%{customdata:.0%} of the segment)<extra></extra>"),
    ))
    fig.update_layout(title=f"Segment moves, {narrative.day(since)} → {narrative.day(as_of)}", height=560)
    return fig


def render() -> None:
    f = frame.current_filters()
    version = frame.data_version()
    st.title("Segments")
    with st.sidebar:
        bins = st.number_input("RFM score bins", min_value=2, max_value=10, value=5, step=1,
                               help="Recency, frequency and spend are each scored 1..bins by quantile; the named "
                                    "segments are read on a 5 × 5 grid (other bin counts are rescaled to it).")
    as_of = f.end
    region_text = ", ".join(f.regions) if f.regions else "all regions"
    st.caption(f"RFM as of {narrative.day(as_of)} (the end of the period), {region_text}. Recency, frequency and "
               "net spend are scored on the whole history up to that day; the segment filter does not apply here, "
               "since this page compares all segments.")
    summary = _summary(version, as_of, int(bins), f.regions)
    if summary["customers"].sum() == 0:
        st.info("No customer has a purchase on or before this date. Import orders on the Data page, or move the "
                "end of the period later.")
        st.stop()

    total = summary["customers"].sum()
    champions = summary.set_index("segment").loc["Champions"]
    cols = st.columns(4)
    cols[0].metric("Scored customers", narrative.format_value(total, "count"), border=True,
                   help="Customers with at least one purchase (returns are not purchases) on or before the date.")
    cols[1].metric("Champions", narrative.format_value(champions["share_of_customers"], "pct"), border=True,
                   help="Share of scored customers in Champions: bought recently, buy often, spend the most.")
    cols[2].metric("Champions' share of revenue", narrative.format_value(champions["share_of_revenue"], "pct"),
                   border=True, help=segments.SUMMARY_HELP["share_of_revenue"])
    cols[3].metric("Revenue share at risk", narrative.format_value(segments.revenue_share_at_risk(summary), "pct"),
                   border=True,
                   help="Share of revenue held by At risk and Can't lose them: good customers who have not bought "
                        "for a long time.")
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(_treemap(summary), width="stretch")
    with right:
        st.plotly_chart(_shares(summary), width="stretch")
    st.caption(narrative.segment_reading(summary))
    with st.expander("What the segments mean, and the table"):
        table = summary.assign(description=summary["segment"].map(segments.SEGMENT_DESCRIPTIONS))
        tables.show(table, help=segments.SUMMARY_HELP)
        tables.download("Download segment summary (CSV)", table, "segment_summary.csv")
        scores = _rfm(version, as_of, int(bins), f.regions)
        tables.download(f"Download RFM scores of {len(scores):,} customers (CSV)", scores, "rfm_scores.csv")

    st.subheader("Segment migration")
    default_since = as_of - dt.timedelta(days=182)
    since = st.date_input("Compare with the segments of", value=default_since, max_value=as_of - dt.timedelta(days=1),
                          key="seg_since", help="Each customer's segment on this date against the end of the period.")
    flows = _migration(version, since, as_of, int(bins), f.regions)
    if flows.empty:
        st.info("No customers were scored on either date.")
    else:
        st.plotly_chart(_sankey(flows, since, as_of), width="stretch")
        st.caption(narrative.migration_reading(flows, since, as_of))
        c1, c2 = st.columns(2)
        sources = list(dict.fromkeys(flows["from_segment"]))
        source = c1.selectbox("Moved from", sources, index=sources.index("Loyal") if "Loyal" in sources else 0)
        targets = list(dict.fromkeys(flows.loc[flows["from_segment"] == source, "to_segment"]))
        target = c2.selectbox("to", targets, index=targets.index("At risk") if "At risk" in targets else 0)
        movers = _movers(version, since, as_of, source, target, int(bins), f.regions)
        st.markdown(f"**{len(movers):,} customers moved from {source} to {target}**, highest spend first.")
        tables.show(movers, rows=500)
        tables.download("Download these customers (CSV)", movers, "segment_moves.csv")
        tables.download("Download all flows (CSV)", flows, "segment_flows.csv")

    st.subheader("Behavioural clusters")
    st.caption("Customers grouped by how they buy (" + ", ".join(clusters.FEATURES[x].label.lower() for x in
               clusters.DEFAULT_FEATURES) + "), log-scaled and standardised, with k-means; the number of groups "
               "is the one with the best silhouette from 2 to 10 unless you set it. Regions are not filtered here: "
               "the groups are found on all customers.")
    choice = st.selectbox("Number of clusters", ["Best by silhouette", *range(2, 11)], key="seg_k")
    try:
        result = _clusters(version, as_of, None if isinstance(choice, str) else int(choice))
    except ValueError as exc:
        st.info(f"{exc} Import more orders to find groups.")
        return
    best = result.silhouette_by_k.get(result.k, float("nan"))
    left, right = st.columns(2)
    with left:
        st.plotly_chart(_silhouette(result), width="stretch")
    with right:
        st.plotly_chart(_cluster_map(result), width="stretch")
    st.caption(narrative.cluster_reading(result.profiles, result.k, best))
    tables.show(result.profiles, clusters.PROFILE_LABELS)
    tables.download("Download cluster profiles (CSV)", result.profiles, "cluster_profiles.csv")
    tables.download(f"Download the cluster of {len(result.assignments):,} customers (CSV)", result.assignments,
                    "customer_clusters.csv")


if __name__ == "__main__":  # opened by its own URL on a fresh server: run the whole app frame
    frame.run_app()
