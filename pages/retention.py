"""Retention & churn: cohort retention by acquisition month, churn under a chosen definition, and a churn model
tested out of time with the customers most at risk and the revenue they carry."""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
import streamlit as st

from crm_core import churn, narrative
from ui import frame, tables


@st.cache_data(ttl=3600, show_spinner="Building the cohort table ...", show_time=True)
def _cohorts(version: str, as_of: dt.date, months: int, regions: tuple[str, ...], segments: tuple[str, ...]):
    start = as_of.replace(day=1) - dt.timedelta(days=31 * months)
    return churn.cohort_retention(frame.backend(), as_of, start=start, months=months, regions=regions,
                                  segments=segments)


@st.cache_data(ttl=3600, show_spinner="Measuring retention and churn ...", show_time=True)
def _summary(version: str, as_of: dt.date, days: int, regions: tuple[str, ...], segments: tuple[str, ...]):
    return churn.churn_summary(frame.backend(), as_of, days, regions=regions, segments=segments)


@st.cache_data(ttl=3600, show_spinner="Finding customers who stopped buying ...", show_time=True)
def _status(version: str, as_of: dt.date, days: int, regions: tuple[str, ...], segments: tuple[str, ...]):
    return churn.churn_status(frame.backend(), as_of, days, regions=regions, segments=segments)


@st.cache_data(ttl=3600, show_spinner="Training the churn model on an earlier cut-off ...", show_time=True)
def _model(version: str, as_of: dt.date, days: int, regions: tuple[str, ...], segments: tuple[str, ...]):
    return churn.train_churn_model(frame.backend(), as_of, days, regions=regions, segments=segments)


def _heatmap(grid) -> go.Figure:
    labels = [f"{d:%b %Y}" for d in grid.index]
    fig = go.Figure(go.Heatmap(
        z=grid.to_numpy(), x=list(grid.columns), y=labels, colorscale="Blues", zmin=0, zmax=0.6,
        colorbar=dict(title="Retention", tickformat=".0%"), hoverongaps=False,
        hovertemplate="Acquired %{y}, month %{x}: %{z:.1%} bought<extra></extra>"))
    fig.update_layout(title="Share of each month's new customers who buy again, by months since acquisition",
                      height=max(360, 18 * len(labels) + 120), hovermode="closest",
                      xaxis=dict(title="Months since acquisition", dtick=1),
                      yaxis=dict(title="Acquisition month", autorange="reversed"))
    return fig


def _calibration(cal) -> go.Figure:
    fig = go.Figure([
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#8c959f", dash="dot"), name="Perfect"),
        go.Scatter(x=cal["mean_predicted_probability"], y=cal["observed_churn_rate"], mode="lines+markers",
                   line=dict(color="#cf222e", width=2), name="Model"),
    ])
    fig.update_layout(title="Calibration on the test cut-off", height=360, hovermode="closest",
                      xaxis=dict(title="Predicted churn probability (bin mean)", tickformat=".0%", range=[0, 1]),
                      yaxis=dict(title="Observed churn rate", tickformat=".0%", range=[0, 1]))
    return fig


def _drivers(drivers) -> go.Figure:
    d = drivers.head(8).iloc[::-1]
    fig = go.Figure(go.Bar(x=d["importance"], y=d["label"], orientation="h", text=d["reading"], textposition="none",
                           error_x=dict(type="data", array=d["importance_std"]),
                           marker_color=["#cf222e" if x > 0 else "#1a7f37" for x in d["direction"]],
                           hovertemplate="%{text}<br>AUC drop when shuffled: %{x:.3f}<extra></extra>"))
    fig.update_layout(title="Top drivers (drop in ROC AUC when the feature is shuffled)", height=360,
                      xaxis_title="Importance", yaxis_title=None, hovermode="closest")
    return fig


def render() -> None:
    f = frame.current_filters()
    version = frame.data_version()
    st.title("Retention & churn")
    days = int(st.sidebar.number_input("Churn definition: no purchase in (days)", 30, 730, 180, 15, key="ch_days",
                                       help="A customer is churned after this many days without a purchase. "
                                            "The churn model predicts churn over the same number of days."))
    scope = ", ".join(f.regions) if f.regions else "all regions"
    if f.segments:
        scope += "; segments " + ", ".join(f.segments)
    st.caption(f"As of {narrative.day(f.end)} (the end of the period), {scope}. A customer is churned after {days} "
               "days without a purchase.")
    summary = _summary(version, f.end, days, f.regions, f.segments)
    if not summary.customers:
        st.info("No customer has a purchase by this date. Import orders on the Data page, or move the period later.")
        st.stop()

    cols = st.columns(4)
    cols[0].metric("Customers who bought", narrative.format_value(summary.customers, "count"), border=True,
                   help="Customers with at least one purchase on or before the date.")
    cols[1].metric("Churned", narrative.format_value(summary.churned_customers, "count"), border=True,
                   help=f"Customers whose last purchase is {days} days or more before the date.")
    cols[2].metric("Churn rate", narrative.format_value(summary.churn_rate, "pct"), border=True,
                   help="Churned customers ÷ customers who bought.")
    cols[3].metric("Churned customers' revenue, last year",
                   narrative.format_value(summary.churned_revenue_last_365_days, "currency"), border=True,
                   help="Net revenue of the churned customers in the 365 days to the date.")
    st.caption(narrative.churn_reading(summary, days))

    st.subheader("Cohort retention")
    months = int(st.slider("Months of cohorts", 6, 36, 24, 6, key="ch_months"))
    cohorts = _cohorts(version, f.end, months, f.regions, f.segments)
    if cohorts.empty:
        st.info("No customer was acquired in this range.")
    else:
        st.plotly_chart(_heatmap(churn.cohort_matrix(cohorts)), width="stretch")
        st.caption(narrative.cohort_reading(churn.cohort_curve(cohorts)) + " The last column of each row may be "
                   "a month still in progress.")
        tables.download("Download cohort retention (CSV)", cohorts, "cohort_retention.csv")

    st.subheader("Churn model and the customers at risk")
    try:
        model = _model(version, f.end, days, f.regions, f.segments)
    except churn.ChurnModelRefused as exc:
        st.info(f"The churn model was not trained: {exc}")
        status = _status(version, f.end, days, f.regions, f.segments)
        tables.download("Download churn status (CSV)", status, "churn_status.csv")
        return
    st.caption(f"{model.model_name}, trained on the customers active on {narrative.day(model.train_cutoff)} "
               f"(whether they bought in the next {days} days) and tested on those active on "
               f"{narrative.day(model.test_cutoff)}; features use only what was known on the cut-off.")
    cols = st.columns(4)
    cols[0].metric("ROC AUC (out of time)", f"{model.roc_auc:.3f}", border=True,
                   help="Chance that a random churner gets a higher probability than a random stayer, on the later "
                        "cut-off the model never saw. 0.5 is chance, 1 is perfect.")
    cols[1].metric("Brier score", f"{model.brier_score:.3f}", border=True,
                   help=f"Mean squared error of the probabilities (lower is better); always predicting the base "
                        f"rate scores {model.test_churn_rate * (1 - model.test_churn_rate):.3f}.")
    cols[2].metric("Active customers scored", narrative.format_value(len(model.at_risk), "count"), border=True,
                   help=f"Customers with a purchase in the {days} days to the date.")
    cols[3].metric("Revenue at risk", narrative.format_value(model.revenue_at_risk, "currency"), border=True,
                   help="Σ churn probability × the customer's net revenue of the last 365 days.")
    st.markdown(f"**{narrative.churn_model_reading(model)}**")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(_calibration(model.calibration), width="stretch")
        st.caption(narrative.calibration_reading(model.calibration))
    with right:
        st.plotly_chart(_drivers(model.drivers), width="stretch")
        st.caption(narrative.drivers_reading(model.drivers))

    st.markdown(f"**Customers at risk**, by revenue at risk ({len(model.at_risk):,} scored)")
    tables.show(model.at_risk, churn.AT_RISK_LABELS, churn.CHURN_HELP, rows=500)
    tables.download("Download the at-risk list (CSV)", model.at_risk, "churn_at_risk.csv")
    with st.expander("Drivers and calibration tables"):
        tables.show(model.drivers, churn.DRIVER_LABELS)
        tables.download("Download drivers (CSV)", model.drivers, "churn_drivers.csv")
        tables.show(model.calibration, churn.CALIBRATION_LABELS)
        tables.download("Download calibration (CSV)", model.calibration, "churn_calibration.csv")


if __name__ == "__main__":  # opened by its own URL on a fresh server: run the whole app frame
    frame.run_app()
