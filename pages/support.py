"""Support: ticket KPIs under an editable SLA policy, complaints and NPS, service by customer value, and the channels
customers use to reach us."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crm_core import narrative, service, support, value
from ui import frame, tables

TICKETS_COLOR = "#0a7f86"
BREACH_COLOR = "#cf222e"  # breaches and complaints: red, as open tickets are on the Overview
REPLY_COLOR = "#1f6feb"
GOOD_COLOR = "#1a7f37"
NEUTRAL_COLOR = "#8c959f"
GROUP_COLORS = {"top": "#1f6feb", "rest": NEUTRAL_COLOR}  # top value tiers against the other tiers
TABS = ("Tickets", "Complaints & NPS", "Service × value", "Channels")
BREAKDOWNS = ("channel", "priority", "category", "agent", "segment")
CARDS = (  # (KPI column, unit for narrative.format_value)
    ("tickets", "count"), ("median_first_response_hours", "ratio"), ("first_response_breach_rate", "pct"),
    ("resolution_breach_rate", "pct"), ("open_tickets", "count"), ("reopen_rate", "pct"),
    ("first_contact_resolution_rate", "pct"), ("csat_mean", "ratio"), ("cost_per_ticket", "currency"),
)
TICKET_LABELS = {**service.SERVICE_LABELS, **support.KPI_LABELS}
MONTH_AXIS = dict(dtick="M1", tickformat="%b %Y", title=None)
LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.18, x=0)  # clear of a right-hand axis


# --------------------------------------------------------------------------------------------- cached core calls
@st.cache_data(ttl=3600, show_spinner="Checking the ticket data ...", show_time=True)
def _tickets_unavailable(version: str) -> str | None:
    return service.tickets_unavailable(frame.backend())


@st.cache_data(ttl=3600, show_spinner="Measuring response and resolution times ...", show_time=True)
def _kpis(version: str, start: dt.date, end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...],
          policy: support.SlaPolicy, by: str | None = None):
    return support.ticket_kpis(frame.backend(), end, start, policy, regions, segments, by=by)


@st.cache_data(ttl=3600, show_spinner="Counting tickets and SLA breaches by month ...", show_time=True)
def _trend(version: str, start: dt.date, end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...],
           policy: support.SlaPolicy):
    return support.ticket_trend(frame.backend(), end, start, policy, regions, segments)


@st.cache_data(ttl=3600, show_spinner="Ageing the open tickets ...", show_time=True)
def _backlog(version: str, end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...],
             policy: support.SlaPolicy):
    return support.backlog(frame.backend(), end, policy, top=20, regions=regions, segments=segments)


@st.cache_data(ttl=3600, show_spinner="Measuring satisfaction ...", show_time=True)
def _csat(version: str, start: dt.date, end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...],
          policy: support.SlaPolicy):
    backend = frame.backend()
    return (support.csat_distribution(backend, end, start, policy, regions, segments),
            support.csat_by_breach(backend, end, start, policy, regions, segments))


@st.cache_data(ttl=3600, show_spinner="Counting complaints ...", show_time=True)
def _complaints(version: str, start: dt.date, end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...],
                by: str):
    return support.complaints(frame.backend(), end, start, by=by, regions=regions, segments=segments)


@st.cache_data(ttl=3600, show_spinner="Measuring NPS ...", show_time=True)
def _nps(version: str, start: dt.date, end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...],
         by: str | None = None):
    from crm_core import voice  # scikit-learn (for the themes) loads when this tab first runs

    return voice.nps(frame.backend(), end, start, regions, segments, by=by)


@st.cache_data(ttl=3600, show_spinner="Reading the themes of comments ...", show_time=True)
def _themes(version: str, start: dt.date, end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...],
            source: str = "surveys"):
    from crm_core import voice

    return voice.comment_themes(frame.backend(), end, start, regions, segments, source=source)


@st.cache_data(ttl=3600, show_spinner="Computing profit per customer ...", show_time=True)
def _values(version: str, start: dt.date, end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...]):
    return value.customer_value(frame.backend(), end, start=start, regions=regions, segments=segments)


@st.cache_data(ttl=3600, show_spinner="Comparing service by customer value tier ...", show_time=True)
def _by_tier(version: str, start: dt.date, end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...],
             policy: support.SlaPolicy):
    values = _values(version, start, end, regions, segments)
    return service.service_by_tier(frame.backend(), end, start, policy, regions=regions, segments=segments,
                                   values=values)


@st.cache_data(ttl=3600, show_spinner="Ranking service actions ...", show_time=True)
def _actions(version: str, start: dt.date, end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...],
             policy: support.SlaPolicy):
    values = _values(version, start, end, regions, segments)
    return service.action_list(frame.backend(), end, policy, start=start, regions=regions, segments=segments,
                               values=values)


@st.cache_data(ttl=3600, show_spinner="Comparing contact channels ...", show_time=True)
def _by_channel(version: str, start: dt.date, end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...],
                policy: support.SlaPolicy):
    return service.breach_by_channel(frame.backend(), end, start, policy, regions, segments)


@st.cache_data(ttl=3600, show_spinner="Checking the contact data ...", show_time=True)
def _touchpoints_unavailable(version: str) -> dict[str, str]:
    return service.touchpoints_unavailable(frame.backend())


@st.cache_data(ttl=3600, show_spinner="Counting contacts per customer ...", show_time=True)
def _contact_points(version: str, start: dt.date, end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...]):
    return service.contact_points(frame.backend(), end, start, regions=regions, segments=segments)


@st.cache_data(ttl=3600, show_spinner="Measuring channel usage ...", show_time=True)
def _channel_usage(version: str, start: dt.date, end: dt.date, regions: tuple[str, ...], segments: tuple[str, ...]):
    return service.channel_usage(frame.backend(), end, start, regions, segments)


# --------------------------------------------------------------------------------------------- sidebar
def _policy() -> support.SlaPolicy:
    """The SLA policy from the sidebar (defaults: ``support.SlaPolicy()``)."""
    d = support.SlaPolicy()
    with st.sidebar.expander("SLA targets"):
        st.caption("Hours allowed for the first reply and for resolution, by ticket priority. A blank or unknown "
                   f"priority counts as {d.default_priority}.")
        first, resolution = {}, {}
        for level in d.priorities:
            first[level] = st.number_input(f"{level.capitalize()}: first reply (hours)", 0.25, 2000.0,
                                           float(d.first_response_hours[level]), 0.25, key=f"sla_fr_{level}")
            resolution[level] = st.number_input(f"{level.capitalize()}: resolution (hours)", 0.25, 5000.0,
                                                float(d.resolution_hours[level]), 1.0, key=f"sla_res_{level}")
        hours = None
        if st.checkbox("Count business hours only", key="sla_bh",
                       help="SLA clocks run only in the working day, Monday to Friday (no holiday calendar); a "
                            "ticket opened at the weekend starts its clock on Monday morning."):
            day_start = st.number_input("Working day starts (hour)", 0, 23, 9, 1, key="sla_bh_start")
            day_end = st.number_input("Working day ends (hour)", 1, 24, 17, 1, key="sla_bh_end")
            try:
                hours = support.BusinessHours(int(day_start), int(day_end))
            except ValueError as exc:
                st.warning(f"{exc}. Counting every hour instead.")
    return support.SlaPolicy(first, resolution, d.default_priority, hours)


# --------------------------------------------------------------------------------------------- charts
def _trend_chart(trend) -> go.Figure:
    fig = go.Figure([
        go.Bar(x=trend["month"], y=trend["tickets"], name=support.KPI_LABELS["tickets"], marker_color=TICKETS_COLOR,
               hovertemplate="%{x|%b %Y}: %{y:,} tickets<extra></extra>"),
        go.Scatter(x=trend["month"], y=trend["breach_rate"], name=support.KPI_LABELS["breach_rate"], yaxis="y2",
                   mode="lines+markers", line=dict(color=BREACH_COLOR, width=2),
                   hovertemplate="%{x|%b %Y}: %{y:.1%} breached<extra></extra>"),
    ])
    fig.update_layout(title="Tickets created and SLA breach rate by month", height=360, xaxis=MONTH_AXIS,
                      legend=LEGEND_BELOW, yaxis=dict(title="Tickets"),
                      yaxis2=dict(title="SLA breach rate", overlaying="y", side="right", showgrid=False,
                                  tickformat=".0%", rangemode="tozero"))
    return fig


def _breakdown_chart(kpis, by: str) -> go.Figure:
    fig = go.Figure([
        go.Bar(x=kpis[by], y=kpis["breach_rate"], name=support.KPI_LABELS["breach_rate"], marker_color=BREACH_COLOR,
               customdata=kpis["tickets"], hovertemplate="%{x}: %{y:.1%} of %{customdata:,} tickets<extra></extra>"),
        go.Scatter(x=kpis[by], y=kpis["median_first_response_hours"], yaxis="y2", mode="markers",
                   name=support.KPI_LABELS["median_first_response_hours"],
                   marker=dict(color=REPLY_COLOR, size=11, symbol="diamond"),
                   hovertemplate="%{x}: median first reply %{y:.1f} h<extra></extra>"),
    ])
    fig.update_layout(title=f"SLA breach rate and median first response by {support.KPI_LABELS[by].lower()}",
                      height=380, hovermode="closest", legend=LEGEND_BELOW,
                      yaxis=dict(title="SLA breach rate", tickformat=".0%", rangemode="tozero"),
                      yaxis2=dict(title="Median first response (hours)", overlaying="y", side="right",
                                  showgrid=False, rangemode="tozero", tickformat=".0f"))
    return fig


def _backlog_chart(by_age) -> go.Figure:
    fig = go.Figure([
        go.Bar(x=by_age["age_band"], y=by_age["open_tickets"], name=support.KPI_LABELS["open_tickets"],
               marker_color=TICKETS_COLOR),
        go.Bar(x=by_age["age_band"], y=by_age["resolution_breached"], name=support.KPI_LABELS["resolution_breached"],
               marker_color=BREACH_COLOR),
    ])
    fig.update_layout(title="Open tickets by age", barmode="group", height=340, legend=LEGEND_BELOW,
                      xaxis_title=None, yaxis_title="Tickets")
    return fig


def _csat_chart(distribution) -> go.Figure:
    fig = go.Figure(go.Bar(x=distribution["rating"], y=distribution["responses"], marker_color=TICKETS_COLOR,
                           customdata=distribution["share_of_responses"],
                           hovertemplate="Rating %{x}: %{y:,} (%{customdata:.0%})<extra></extra>"))
    fig.update_layout(title="Satisfaction ratings", height=320, hovermode="closest",
                      xaxis=dict(title=support.KPI_LABELS["rating"], dtick=1), yaxis_title="Ratings")
    return fig


def _csat_breach_chart(by_breach) -> go.Figure:
    colors = {"Met": GOOD_COLOR, "Breached": BREACH_COLOR, "Pending": NEUTRAL_COLOR}
    fig = go.Figure(go.Bar(x=by_breach["first_response_breach"], y=by_breach["csat_mean"],
                           marker_color=[colors.get(g, NEUTRAL_COLOR) for g in by_breach["first_response_breach"]],
                           customdata=by_breach["csat_responses"],
                           hovertemplate="%{x}: %{y:.2f} from %{customdata:,} ratings<extra></extra>"))
    fig.update_layout(title="Average CSAT by first-response SLA outcome", height=320, hovermode="closest",
                      xaxis_title=support.KPI_LABELS["first_response_breach"],
                      yaxis=dict(title=support.KPI_LABELS["csat_mean"], range=[1, 5]))
    return fig


def _complaints_chart(by_month) -> go.Figure:
    fig = go.Figure([
        go.Scatter(x=by_month["month"], y=by_month["complaints"], name=support.KPI_LABELS["complaints"],
                   mode="lines+markers", line=dict(color=BREACH_COLOR, width=2)),
        go.Scatter(x=by_month["month"], y=by_month["compliments"], name=support.KPI_LABELS["compliments"],
                   mode="lines+markers", line=dict(color=GOOD_COLOR, width=2)),
    ])
    fig.update_layout(title="Complaints and compliments by month", height=340, xaxis=MONTH_AXIS,
                      legend=LEGEND_BELOW, yaxis=dict(title="Tickets", rangemode="tozero"))
    return fig


def _complaint_category_chart(by_category) -> go.Figure:
    shown = by_category[(by_category["complaints"] > 0) | (by_category["compliments"] > 0)]
    fig = go.Figure([
        go.Bar(x=shown["category"], y=shown["complaints"], name=support.KPI_LABELS["complaints"],
               marker_color=BREACH_COLOR),
        go.Bar(x=shown["category"], y=shown["compliments"], name=support.KPI_LABELS["compliments"],
               marker_color=GOOD_COLOR),
    ])
    fig.update_layout(title="Complaints and compliments by category", barmode="group", height=340,
                      legend=LEGEND_BELOW,
                      xaxis_title=None, yaxis_title="Tickets")
    return fig


def _nps_error(frame_):
    """Plotly error bars from the NPS interval columns (a drawing detail: the interval itself is the core's)."""
    return dict(type="data", symmetric=False, array=frame_["nps_high"] - frame_["nps"],
                arrayminus=frame_["nps"] - frame_["nps_low"], color="#57606a")


def _nps_month_chart(by_month) -> go.Figure:
    fig = go.Figure(go.Scatter(x=by_month["month"], y=by_month["nps"], mode="lines+markers", name="NPS",
                               line=dict(color=REPLY_COLOR, width=2), error_y=_nps_error(by_month),
                               customdata=by_month["responses"],
                               hovertemplate="%{x|%b %Y}: NPS %{y:+.0f} from %{customdata:,} answers"
                                             "<extra></extra>"))
    fig.add_hline(y=0, line_dash="dot", line_color="#57606a")
    fig.update_layout(title="NPS by month, with 95% intervals", height=340, hovermode="closest", xaxis=MONTH_AXIS,
                      yaxis=dict(title="NPS", range=[-105, 105]))
    return fig


def _nps_segment_chart(by_segment) -> go.Figure:
    from ui.charts import SEGMENT_COLORS

    fig = go.Figure(go.Bar(x=by_segment["segment"], y=by_segment["nps"], error_y=_nps_error(by_segment),
                           marker_color=[SEGMENT_COLORS.get(s, NEUTRAL_COLOR) for s in by_segment["segment"]],
                           customdata=by_segment["responses"],
                           hovertemplate="%{x}: NPS %{y:+.0f} from %{customdata:,} answers<extra></extra>"))
    fig.update_layout(title="NPS by RFM segment, with 95% intervals", height=340, hovermode="closest",
                      yaxis=dict(title="NPS", range=[-105, 105]), xaxis_title=None)
    return fig


def _tier_chart(tiers) -> go.Figure:
    fig = go.Figure(go.Bar(x=tiers["value_tier"], y=tiers["breach_rate"],
                           marker_color=[GROUP_COLORS[g] for g in tiers["tier_group"]],
                           customdata=tiers["sla_known_tickets"],
                           hovertemplate="%{x}: %{y:.1%} of %{customdata:,} tickets<extra></extra>"))
    fig.update_layout(title="SLA breach rate by value tier (top tiers in blue)", height=340, hovermode="closest",
                      yaxis=dict(title=service.SERVICE_LABELS["breach_rate"], tickformat=".0%", rangemode="tozero"),
                      xaxis_title=service.SERVICE_LABELS["value_tier"])
    return fig


def _channel_chart(channels) -> go.Figure:
    fig = go.Figure(go.Bar(
        x=channels["channel"], y=channels["breach_rate"],
        marker_color=[BREACH_COLOR if hot else NEUTRAL_COLOR for hot in channels["is_breach_hotspot"]],
        error_y=dict(type="data", symmetric=False, array=channels["breach_rate_ci_high"] - channels["breach_rate"],
                     arrayminus=channels["breach_rate"] - channels["breach_rate_ci_low"], color="#57606a"),
        customdata=channels[["sla_known_tickets", "share_of_breaches"]],
        hovertemplate="%{x}: %{y:.1%} of %{customdata[0]:,} tickets; %{customdata[1]:.0%} of all breaches"
                      "<extra></extra>"))
    fig.update_layout(title="SLA breach rate by channel (red: the hotspot), 95% CI", height=340,
                      hovermode="closest", xaxis_title=service.SERVICE_LABELS["channel"],
                      yaxis=dict(title=service.SERVICE_LABELS["breach_rate"], tickformat=".0%", rangemode="tozero"))
    return fig


def _contact_heatmap(points) -> go.Figure:
    hover = [f"{e:,} events, {c:,} customers"
             + ("" if pd.isna(cost) else f"; {narrative.format_value(cost, 'currency')} per event")
             for e, c, cost in zip(points["events"], points["customers"], points["cost_per_event"])]
    fig = go.Figure(go.Heatmap(x=points["channel"], y=points["touchpoint"], z=points["events"], hovertext=hover,
                               colorscale="Blues", colorbar=dict(title="Events"), hoverongaps=False,
                               hovertemplate="%{y} by %{x}: %{hovertext}<extra></extra>"))
    fig.update_layout(title="Contact points: events by touchpoint and channel", height=320, hovermode="closest",
                      xaxis_title=service.SERVICE_LABELS["channel"], yaxis=dict(title=None, autorange="reversed"))
    return fig


def _usage_heatmap(usage) -> go.Figure:
    hover = [f"{s:.0%} of the segment's events ({e:,})" for s, e in zip(usage["share_of_events"], usage["events"])]
    fig = go.Figure(go.Heatmap(x=usage["channel"], y=usage["segment"], z=usage["share_of_events"], hovertext=hover,
                               colorscale="Greens", zmin=0, zmax=1, hoverongaps=False,
                               colorbar=dict(title="Share", tickformat=".0%"),
                               hovertemplate="%{y}, %{x}: %{hovertext}<extra></extra>"))
    fig.update_layout(title="Channel mix by RFM segment", height=max(320, 26 * usage["segment"].nunique() + 120),
                      hovermode="closest", xaxis_title=service.SERVICE_LABELS["channel"],
                      yaxis=dict(title=None, autorange="reversed"))
    return fig


# --------------------------------------------------------------------------------------------- tabs
def _download(frame_, label: str, file_name: str) -> None:
    tables.download(f"Download {label} (CSV)", frame_, file_name)


def _tickets_tab(version: str, f, policy: support.SlaPolicy) -> None:
    scope = (version, f.start, f.end, f.regions, f.segments)
    kpis = _kpis(*scope, policy)
    row = kpis.iloc[0]
    if not row["tickets"]:
        st.info("No support tickets were created in this period. Widen the date range or the filters, or import "
                "tickets on the Data page.")
        return
    for columns, cards in ((st.columns(5), CARDS[:5]), (st.columns(4), CARDS[5:])):
        for col, (key, unit) in zip(columns, cards):
            col.metric(support.KPI_LABELS[key], narrative.format_value(row[key], unit), help=support.KPI_HELP[key],
                       border=True)
    st.caption(narrative.support_reading(kpis))

    trend = _trend(*scope, policy)
    st.plotly_chart(_trend_chart(trend), width="stretch")
    st.caption(narrative.ticket_trend_reading(trend))

    st.subheader("Breakdown")
    by = st.selectbox("Break down by", BREAKDOWNS, key="sup_by", format_func=support.KPI_LABELS.get)
    breakdown = _kpis(*scope, policy, by)
    st.plotly_chart(_breakdown_chart(breakdown, by), width="stretch")
    st.caption(narrative.breakdown_reading(breakdown, by))
    tables.show(breakdown, support.KPI_LABELS, support.KPI_HELP)
    _download(breakdown, f"tickets by {by}", f"tickets_by_{by}.csv")

    st.subheader("Backlog")
    backlog = _backlog(version, f.end, f.regions, f.segments, policy)
    left, right = st.columns(2)
    with left:
        st.plotly_chart(_backlog_chart(backlog.by_age), width="stretch")
        st.caption(narrative.backlog_reading(backlog))
    with right:
        st.markdown(f"**Oldest open tickets** at the end of {narrative.day(backlog.as_of)}")
        tables.show(backlog.oldest, TICKET_LABELS, support.KPI_HELP)
        _download(backlog.oldest, "the oldest open tickets", "oldest_open_tickets.csv")

    st.subheader("Satisfaction")
    distribution, by_breach = _csat(*scope, policy)
    left, right = st.columns(2)
    with left:
        st.plotly_chart(_csat_chart(distribution), width="stretch")
        st.caption(narrative.csat_distribution_reading(distribution))
    with right:
        st.plotly_chart(_csat_breach_chart(by_breach), width="stretch")
        st.caption(narrative.csat_reading(by_breach))


def _voice_tab(version: str, f, unavailable: str | None) -> None:
    from crm_core import voice

    scope = (version, f.start, f.end, f.regions, f.segments)
    if unavailable:
        st.caption(f"Complaints and compliments come from the support tickets. {unavailable}")
    else:
        st.subheader("Complaints and compliments")
        by_month, by_category = _complaints(*scope, "month"), _complaints(*scope, "category")
        left, right = st.columns(2)
        with left:
            st.plotly_chart(_complaints_chart(by_month), width="stretch")
            st.caption(narrative.complaints_reading(by_month))
        with right:
            st.plotly_chart(_complaint_category_chart(by_category), width="stretch")
            st.caption(narrative.complaint_category_reading(by_category))
        _download(by_category, "complaints by category", "complaints_by_category.csv")

    st.subheader("Net Promoter Score")
    overall = _nps(*scope)
    row = overall.iloc[0]
    if not row["responses"]:
        st.info("No survey answers with a score in this period. Import surveys (one row per answer with an NPS "
                "score of 0-10) on the Data page, or widen the date range.")
        return
    cols = st.columns(4)
    cols[0].metric("NPS", f"{row['nps']:+.0f}", f"95% CI {row['nps_low']:+.0f} to {row['nps_high']:+.0f}",
                   "off", delta_arrow="off", border=True,
                   help=f"{voice.VOICE_HELP['nps']} {voice.VOICE_HELP['nps_low']}")
    cards = (("responses", "count"), ("promoter_share", "pct"), ("detractor_share", "pct"))
    for col, (key, unit) in zip(cols[1:], cards):
        col.metric(voice.VOICE_LABELS[key], narrative.format_value(row[key], unit), help=voice.VOICE_HELP[key],
                   border=True)
    st.caption(narrative.nps_reading(overall))
    by_month, by_segment = _nps(*scope, "month"), _nps(*scope, "segment")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(_nps_month_chart(by_month), width="stretch")
        st.caption(narrative.nps_trend_reading(by_month))
    with right:
        st.plotly_chart(_nps_segment_chart(by_segment), width="stretch")
        st.caption(narrative.nps_segment_reading(by_segment))
    _download(by_segment, "NPS by segment", "nps_by_segment.csv")

    st.subheader("What they write about")
    source = st.radio("Comments from", ("surveys", "tickets"), horizontal=True, key="sup_theme_source",
                      format_func={"surveys": "Survey answers (by NPS group)",
                                   "tickets": "Support tickets (subject, by CSAT: 4-5, 3, 1-2)"}.get,
                      help="Survey comments grouped by the answer's NPS group, or ticket subjects grouped by the "
                           "ticket's satisfaction rating (satisfied 4-5, neutral 3, dissatisfied 1-2; unrated "
                           "tickets left out).")
    themes = _themes(*scope, source=source)
    st.caption(narrative.themes_reading(themes))
    if not themes.empty:
        shown = ["rank", "term", "comments", "share_of_group", "share_of_rest", "example_comments", "related_terms",
                 "z_score"]  # the download has every column
        for group in voice.THEME_SOURCES[source]:
            rows = themes[themes["group"] == group]
            if not rows.empty:
                st.markdown(f"**{group.capitalize()}{'s' if source == 'surveys' else ' tickets'}**")
                tables.show(rows[shown], voice.VOICE_LABELS, voice.VOICE_HELP)
        _download(themes, "comment themes", "comment_themes.csv")


def _value_tab(version: str, f, policy: support.SlaPolicy) -> None:
    scope = (version, f.start, f.end, f.regions, f.segments)
    by_tier = _by_tier(*scope, policy)
    gap = service.service_gap(by_tier)
    cards = ((f"SLA breach rate, {service.TOP_TIERS_GROUP.lower()}", gap.top_breach_rate, "pct", "breach_rate"),
             (f"SLA breach rate, {service.OTHER_TIERS.lower()}", gap.rest_breach_rate, "pct", "breach_rate"),
             (f"CSAT, {service.TOP_TIERS_GROUP.lower()}", gap.top_csat_mean, "ratio", "csat_mean"),
             (f"CSAT, {service.OTHER_TIERS.lower()}", gap.rest_csat_mean, "ratio", "csat_mean"))
    for col, (label, number, unit, key) in zip(st.columns(4), cards):
        col.metric(label, narrative.format_value(number, unit), help=service.SERVICE_HELP[key], border=True)
    st.markdown(f"**{gap.sentence}**")
    st.caption(f"Top tiers: {' and '.join(gap.top_tiers)}, by profit over the period at the default cost rates "
               "(see Customer value)." + (f" Note: {gap.note}." if gap.note else ""))

    left, right = st.columns(2)
    with left:
        tiers = by_tier[~by_tier["is_group"]]
        st.plotly_chart(_tier_chart(tiers), width="stretch")
        st.caption(narrative.tier_service_reading(by_tier))
    with right:
        channels = _by_channel(*scope, policy)
        st.plotly_chart(_channel_chart(channels), width="stretch")
        st.caption(narrative.channel_breach_reading(channels))
    with st.expander("Service by tier and by channel, tables"):
        tables.show(by_tier, service.SERVICE_LABELS, service.SERVICE_HELP)
        _download(by_tier, "service by tier", "service_by_tier.csv")
        tables.show(channels, service.SERVICE_LABELS, service.SERVICE_HELP)
        _download(channels, "breaches by channel", "breaches_by_channel.csv")

    st.subheader("Who to call")
    actions = _actions(*scope, policy)
    st.caption(narrative.action_list_reading(actions))
    if not actions.empty:
        tables.show(actions, service.SERVICE_LABELS, service.SERVICE_HELP)
        _download(actions, "the action list", "support_action_list.csv")


def _channels_tab(version: str, f) -> None:
    scope = (version, f.start, f.end, f.regions, f.segments)
    for reason in _touchpoints_unavailable(version).values():
        st.caption(reason)
    points = _contact_points(*scope)
    if points.empty:
        st.info("No orders, tickets, campaign messages or survey answers in this period; widen the date range.")
        return
    st.plotly_chart(_contact_heatmap(points), width="stretch")
    st.caption(narrative.contact_points_reading(points))
    tables.show(points, service.SERVICE_LABELS, service.SERVICE_HELP)
    _download(points, "contact points", "contact_points.csv")

    st.subheader("Channel mix by segment")
    usage = _channel_usage(*scope)
    touchpoints = [t for t in service.TOUCHPOINTS if t in set(usage["touchpoint"])]
    if not touchpoints:
        st.info("No customer with a segment has events in this period.")
        return
    touchpoint = st.selectbox("Touchpoint", touchpoints, key="sup_touchpoint",
                              format_func=str.capitalize,
                              help=service.SERVICE_HELP["touchpoint"])
    chosen = usage[usage["touchpoint"] == touchpoint]
    st.plotly_chart(_usage_heatmap(chosen), width="stretch")
    st.caption(narrative.channel_usage_reading(usage, touchpoint))
    _download(usage, "channel usage by segment", "channel_usage.csv")


def render() -> None:
    f = frame.current_filters()
    version = frame.data_version()
    st.title("Support")
    policy = _policy()
    scope = ", ".join(f.regions) if f.regions else "all regions"
    if f.segments:
        scope += "; segments " + ", ".join(f.segments)
    hours = policy.business_hours
    clock = ("wall-clock hours" if hours is None else
             f"business hours ({hours.start_hour}:00-{hours.end_hour}:00, Monday to Friday)")
    st.caption(f"Tickets created {narrative.day(f.start)} – {narrative.day(f.end)} ({f.days} days), {scope}; "
               f"each measured at the end of {narrative.day(f.end)}, SLA clocks in {clock}. SLA targets are in the "
               "sidebar.")
    unavailable = _tickets_unavailable(version)
    # Only the open tab runs (a tab switch reruns the page; results are cached), so the first view stays fast.
    tab_tickets, tab_voice, tab_value, tab_channels = st.tabs(TABS, key="sup_tab", on_change="rerun")
    if tab_tickets.open:
        with tab_tickets:
            if unavailable:
                st.info(unavailable)
            else:
                _tickets_tab(version, f, policy)
    if tab_voice.open:
        with tab_voice:
            _voice_tab(version, f, unavailable)
    if tab_value.open:
        with tab_value:
            if unavailable:
                st.info(unavailable)
            else:
                _value_tab(version, f, policy)
    if tab_channels.open:
        with tab_channels:
            _channels_tab(version, f)


if __name__ == "__main__":  # opened by its own URL on a fresh server: run the whole app frame
    frame.run_app()
