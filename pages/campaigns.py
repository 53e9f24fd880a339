"""Campaigns: funnel, ROI and conversion by campaign, channel and segment; control-group lift with confidence;
uplift targeting learnt from a past randomised campaign; multi-touch attribution."""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
import streamlit as st

from crm_core import campaigns, narrative, uplift
from ui import frame, tables


@st.cache_data(ttl=3600, show_spinner="Measuring each campaign's conversion and return ...", show_time=True)
def _summary(version: str, window: int, basis: str):
    return campaigns.campaign_summary(frame.backend(), window, basis)


@st.cache_data(ttl=3600, show_spinner="Comparing channels ...", show_time=True)
def _channels(version: str, window: int, basis: str):
    return campaigns.by_channel(frame.backend(), window, basis)


@st.cache_data(ttl=3600, show_spinner="Scoring each campaign's contacts by RFM segment ...", show_time=True)
def _segments(version: str):
    return campaigns.by_segment(frame.backend())


@st.cache_data(ttl=3600, show_spinner="Measuring each campaign's lift over its control group ...", show_time=True)
def _lifts(version: str, window: int, basis: str):
    return campaigns.lift_all(frame.backend(), window, basis)


@st.cache_data(ttl=3600, show_spinner="Attributing orders to campaign touches ...", show_time=True)
def _attribution(version: str, window: int):
    return campaigns.attribution(frame.backend(), window)


@st.cache_data(ttl=3600, show_spinner="Reading the campaign experiments ...", show_time=True)
def _experiments(version: str):
    return uplift.experiment_campaigns(frame.backend())


@st.cache_data(ttl=3600, show_spinner="Training the uplift model on the experiment ...", show_time=True)
def _uplift(version: str, campaign_id: str, as_of: dt.date, top_n: int, regions: tuple[str, ...],
            segments: tuple[str, ...]):
    return uplift.train_uplift_model(frame.backend(), campaign_id, as_of=as_of, top_n=top_n, regions=regions,
                                     segments=segments)


def _trend(summary) -> go.Figure:
    fig = go.Figure([
        go.Bar(x=summary["campaign_id"], y=summary["conversion_rate"], name="Conversion rate",
               marker_color="#1a7f37", customdata=summary["campaign_name"],
               hovertemplate="%{x} %{customdata}: %{y:.1%}<extra></extra>"),
        go.Scatter(x=summary["campaign_id"], y=summary["roi"], name="ROI", yaxis="y2", mode="lines+markers",
                   line=dict(color="#1f6feb", width=2), hovertemplate="%{x}: ROI %{y:.2f}<extra></extra>"),
    ])
    fig.update_layout(title="Conversion rate and ROI by campaign, in start order", height=360,
                      yaxis=dict(title="Conversion rate", tickformat=".0%"),
                      yaxis2=dict(title="ROI", overlaying="y", side="right", showgrid=False, zeroline=True))
    return fig


def _funnel(steps) -> go.Figure:
    shown = steps[steps["is_available"]]
    fig = go.Figure(go.Funnel(y=shown["step"], x=shown["count"], textinfo="value+percent initial",
                              marker_color="#8250df"))
    fig.update_layout(title="Funnel of the treated contacts", height=360)
    return fig


def _channel_chart(channels) -> go.Figure:
    fig = go.Figure([
        go.Bar(x=channels["channel"], y=channels["conversion_rate"], name="Conversion rate", marker_color="#1a7f37"),
        go.Bar(x=channels["channel"], y=channels["response_rate"], name="Response rate", marker_color="#bf8700"),
    ])
    fig.update_layout(title="Response and conversion by channel", barmode="group", height=340,
                      yaxis=dict(tickformat=".0%", title="Share of treated contacts"))
    return fig


def _heatmap(grid) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=grid.to_numpy(), x=list(grid.columns), y=list(grid.index), colorscale="Greens",
                               colorbar=dict(title="Conversion", tickformat=".0%"), hoverongaps=False,
                               hovertemplate="%{y}, %{x}: %{z:.1%}<extra></extra>"))
    fig.update_layout(title="Conversion rate by campaign and RFM segment (as of each campaign's start)", height=380,
                      hovermode="closest", yaxis=dict(autorange="reversed"))
    return fig


def _lift_chart(result) -> go.Figure:
    f = result.frame()
    f = f[f["metric"] != "revenue_per_contact"]
    fig = go.Figure(go.Scatter(
        x=f["absolute_lift"], y=f["metric"].map(campaigns.LIFT_LABELS.get).fillna(f["metric"]), mode="markers",
        marker=dict(size=12, color="#1f6feb"),
        error_x=dict(type="data", symmetric=False, array=f["ci_high"] - f["absolute_lift"],
                     arrayminus=f["absolute_lift"] - f["ci_low"]),
        hovertemplate="%{y}: %{x:+.1%}<extra></extra>"))
    fig.add_vline(x=0, line_dash="dot", line_color="#57606a")
    fig.update_layout(title="Lift over the control group, with 95% intervals", height=260, hovermode="closest",
                      xaxis=dict(title="Treated minus control (points)", tickformat="+.0%"), yaxis_title=None)
    return fig


def _qini(result) -> go.Figure:
    q = result.qini
    fig = go.Figure([
        go.Scatter(x=q["share_targeted"], y=q["incremental_conversions"], name="Targeting by predicted uplift",
                   mode="lines", line=dict(color="#1f6feb", width=3)),
        go.Scatter(x=q["share_targeted"], y=q["random_incremental_conversions"], name="Random targeting",
                   mode="lines", line=dict(color="#8c959f", dash="dot")),
    ])
    fig.update_layout(title="Qini curve on held-out contacts", height=360,
                      xaxis=dict(title="Share of customers targeted", tickformat=".0%"),
                      yaxis_title="Incremental conversions")
    return fig


def _quintiles(result) -> go.Figure:
    q = result.uplift_by_quintile
    fig = go.Figure([
        go.Bar(x=q["quintile"], y=q["predicted_uplift"], name="Predicted", marker_color="#1f6feb"),
        go.Bar(x=q["quintile"], y=q["observed_uplift"], name="Observed", marker_color="#8c959f"),
    ])
    fig.update_layout(title="Uplift by fifth of held-out customers (1 = highest predicted)", barmode="group",
                      height=360, yaxis=dict(tickformat="+.0%", title="Conversion uplift"),
                      xaxis=dict(title="Fifth", dtick=1))
    return fig


def render() -> None:
    f = frame.current_filters()
    version = frame.data_version()
    st.title("Campaigns")
    window = int(st.sidebar.number_input("Attribution window (days)", 1, 90, campaigns.DEFAULT_WINDOW_DAYS, 1,
                                         key="cmp_window", help="Purchases this many days after a contact count "
                                                                "towards the campaign."))
    basis = st.sidebar.selectbox("Revenue", campaigns.REVENUE_BASES, key="cmp_basis",
                                 help=campaigns.SUMMARY_HELP.get("revenue_basis", ""),
                                 format_func={"auto": "attributed by the source (else window)",
                                              "attributed": "attributed by the source",
                                              "window": "all purchases in the window"}.get)
    summary = _summary(version, window, basis)
    if summary.empty:
        st.info("No campaigns in the data. Import campaigns and campaign contacts (one row per contacted or held-out "
                "customer) on the Data page to see response, ROI and lift.")
        st.stop()
    st.caption("All campaigns in the data (the period filter does not apply: each campaign is read over its own "
               f"dates and a {window}-day window after each contact).")

    tab_perf, tab_lift, tab_uplift, tab_attr = st.tabs(["Performance", "Lift", "Uplift targeting", "Attribution"])
    with tab_perf:
        st.plotly_chart(_trend(summary), width="stretch")
        st.caption(campaigns.read_summary(summary))
        names = summary["campaign_id"].tolist()
        chosen = st.selectbox("Campaign", names, index=len(names) - 1, key="cmp_pick",
                              format_func=lambda c: f"{c} — {summary.set_index('campaign_id').loc[c, 'campaign_name']}")
        row = summary.set_index("campaign_id").loc[chosen]
        cards = [("Contacts", row["contacts"], "count", campaigns.SUMMARY_HELP.get("contacts")),
                 ("Conversion rate", row["conversion_rate"], "pct", campaigns.SUMMARY_HELP.get("conversion_rate")),
                 ("Revenue", row["revenue"], "currency", campaigns.SUMMARY_HELP.get("revenue")),
                 ("Cost", row["cost"], "currency", campaigns.SUMMARY_HELP.get("cost")),
                 ("ROI", row["roi"], "ratio", campaigns.SUMMARY_HELP.get("roi"))]
        for col, (label, number, unit, help_text) in zip(st.columns(5), cards):
            col.metric(label, narrative.format_value(number, unit), help=help_text, border=True)
        left, right = st.columns(2)
        steps = campaigns.funnel(summary, chosen)
        with left:
            st.plotly_chart(_funnel(steps), width="stretch")
            st.caption(narrative.funnel_reading(steps, chosen))
        channels = _channels(version, window, basis)
        with right:
            st.plotly_chart(_channel_chart(channels), width="stretch")
            st.caption(narrative.channel_reading(channels))
        segs = _segments(version)
        if not segs.empty:
            grid = campaigns.segment_heatmap(segs)
            st.plotly_chart(_heatmap(grid), width="stretch")
            st.caption(narrative.campaign_segment_reading(segs))
        tables.show(summary, campaigns.SUMMARY_LABELS, campaigns.SUMMARY_HELP)
        tables.download("Download campaign summary (CSV)", summary, "campaigns.csv")
        tables.download("Download channels (CSV)", channels, "campaign_channels.csv")

    with tab_lift:
        results = _lifts(version, window, basis)
        with_control = [r for r in results if r.has_control]
        if not with_control:
            st.info("No campaign has a control group, so none can show what it changed. Hold out a random share of "
                    "the audience (say 20%) next time: their purchases are the baseline.")
        for r in with_control:
            with st.container(border=True):
                st.markdown(f"**{r.campaign_id} — {r.campaign_name or ''}**")
                st.plotly_chart(_lift_chart(r), width="stretch", key=f"lift_{r.campaign_id}")
                st.caption(r.verdict)
        if len(with_control) < len(results):
            st.caption(narrative.no_control_reading(results))
        frames = campaigns.lift_frame(results)
        if not frames.empty:
            tables.show(frames, campaigns.LIFT_LABELS, campaigns.LIFT_HELP)
            tables.download("Download lift (CSV)", frames, "campaign_lift.csv")

    with tab_uplift:
        experiments = _experiments(version)
        if experiments.empty:
            st.info("Uplift targeting learns from a past campaign with a random control group; none is in the data.")
        else:
            pick = st.selectbox("Learn from", experiments["campaign_id"].tolist(), key="upl_campaign")
            top_n = int(st.number_input("Customers to target next", 50, 100_000, 500, 50, key="upl_top"))
            try:
                result = _uplift(version, pick, f.end, top_n, f.regions, f.segments)
            except uplift.UpliftRefused as exc:
                st.info(str(exc))
            else:
                st.caption(f"{result.model_name}; trained on {result.n_train:,} contacts of {result.campaign_id}, "
                           f"evaluated on {result.n_test:,} held out. {result.treatment_rule}")
                left, right = st.columns(2)
                with left:
                    st.plotly_chart(_qini(result), width="stretch")
                    st.caption(narrative.qini_reading(result))
                with right:
                    st.plotly_chart(_quintiles(result), width="stretch")
                    st.caption(narrative.quintile_reading(result.uplift_by_quintile))
                st.markdown(f"**{narrative.targets_reading(result)}**")
                tables.show(result.targets, uplift.TARGET_LABELS, uplift.UPLIFT_HELP, rows=500)
                tables.download("Download the target list (CSV)", result.targets, "uplift_targets.csv")

    with tab_attr:
        attr = _attribution(version, window)
        for rule in ("last_touch", "linear"):
            st.caption(campaigns.attribution_rule(rule, window))
        fig = go.Figure([
            go.Bar(x=attr["campaign_id"], y=attr["last_touch_revenue"], name="Last touch", marker_color="#1f6feb"),
            go.Bar(x=attr["campaign_id"], y=attr["linear_revenue"], name="Linear", marker_color="#8c959f"),
        ])
        fig.update_layout(title="Revenue attributed to each campaign", barmode="group", height=340,
                          yaxis_title="Revenue")
        st.plotly_chart(fig, width="stretch")
        st.caption(narrative.attribution_reading(attr))
        tables.show(attr, campaigns.ATTRIBUTION_LABELS, campaigns.ATTRIBUTION_HELP)
        tables.download("Download attribution (CSV)", attr, "campaign_attribution.csv")


if __name__ == "__main__":  # opened by its own URL on a fresh server: run the whole app frame
    frame.run_app()
