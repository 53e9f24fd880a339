"""Goals & investment: the goals a workshop sets (progress, forecast to the deadline, status, the segments holding
them back), the investment case for the programme that should reach them, and the board pack to take away."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crm_core import audit, figures, goals, investment
from ui import auth, frame, tables

TABS = ("Goals", "Investment case", "Board pack")
STATUS_ICONS = {"achieved": "🏁", "on track": "🟢", "at risk": "🟠", "off track": "🔴", "no data": "⚪"}
GOAL_LABELS = {"name": "Goal", "business_unit": "Owner", "metric": "Metric", "start_date": "Start",
               "deadline": "Deadline", "baseline": "Baseline", "target": "Target", "current": "Now",
               "planned": "Planned now", "forecast": "Forecast at deadline", "status": "Status",
               "goal_id": "Goal id"}
GOAL_HELP = {
    "baseline": "The metric at the start date, computed from the data when the goal was set.",
    "current": "The metric at the end of the period in the sidebar.",
    "planned": "Where the plan expects the metric now: the monthly targets if set, else a straight line from the "
               "baseline at the start to the target at the deadline.",
    "forecast": "The least-squares trend of the monthly values since the start (the last 12 months when there are "
                "fewer than 3), carried to the deadline.",
    "status": "achieved: the target is reached now; on track: the trend reaches it by the deadline; at risk: it does "
              f"not, but today's value is within {goals.TOLERANCE:.0%} of the way from the plan; off track: further "
              "behind.",
}
DRIVER_LABELS = {"group": "Segment", "base": "Base", "weight": "Share of the base", "value": "Value",
                 "gap_to_target": "Gap to target", "contribution": "Contribution to the gap",
                 "share_of_gap": "Share of the gap"}
DRIVER_HELP = {
    "base": "Customers, tickets, answers or shipments the segment's value is over.",
    "weight": "The segment's share of the whole base.",
    "gap_to_target": "Target − the segment's value (in the goal's direction).",
    "contribution": "Share of the base × gap to target; the contributions add up to the whole gap.",
    "share_of_gap": "The segment's contribution as a share of the whole gap.",
}


# --------------------------------------------------------------------------------------------- cached core calls
def _goals() -> list[goals.Goal]:
    """Read every run (one small query), not cached: another session may have just changed a goal. Goals live in the
    embedded store even when the metrics run on another engine (docs/scale.md)."""
    return goals.list_goals(frame.store_backend())


@st.cache_data(ttl=3600, show_spinner="Measuring the goal's metric month by month ...", show_time=True)
def _progress(version: str, goal: goals.Goal, as_of: dt.date) -> goals.GoalProgress:
    return goals.progress(frame.backend(), goal, as_of)


@st.cache_data(ttl=3600, show_spinner="Finding the segments that drive the goal ...", show_time=True)
def _drivers(version: str, goal: goals.Goal, as_of: dt.date, by: str) -> pd.DataFrame:
    return goals.gap_drivers(frame.backend(), goal, as_of, by=by)


@st.cache_data(ttl=3600, show_spinner="Reading the baselines from the data ...", show_time=True)
def _baselines(version: str, as_of: dt.date, regions: tuple[str, ...], segments: tuple[str, ...]):
    return investment.baselines(frame.backend(), as_of, regions=regions, segments=segments)


def _actor() -> str | None:
    return frame.user_name()


# --------------------------------------------------------------------------------------------- goals tab
def _scale(metric: str) -> float:
    """Rates are stored as fractions and typed as percentages."""
    return 100.0 if goals.METRICS[metric].unit == "%" else 1.0


def _unit_suffix(metric: str) -> str:
    return {"%": " (%)", "h": " (hours)", "money": "", "score": "", "ratio": " (ratio)"}[goals.METRICS[metric].unit]


def _metric_label(metric: str) -> str:
    return goals.METRICS[metric].label if metric in goals.METRICS else metric


def _parse_monthly(text: str, metric: str) -> dict[str, float]:
    """``2026-09: 55`` lines → {"2026-09": 0.55} (typed in display units); ValueError names the bad line."""
    out: dict[str, float] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        month, sep, value = line.partition(":") if ":" in line else line.partition("=")
        try:
            if not sep:
                raise ValueError
            out[month.strip()] = float(value.strip().replace(",", "")) / _scale(metric)
        except ValueError:
            raise ValueError(f"Monthly targets, line {number}: write 'YYYY-MM: value', got {line.strip()!r}.") from None
    return out


def _monthly_text(goal: goals.Goal) -> str:
    return "\n".join(f"{m}: {v * _scale(goal.metric):g}" for m, v in goal.monthly_targets)


def _goal_form(key: str, as_of: dt.date, goal: goals.Goal | None = None) -> dict | None:
    """The fields of a new or edited goal; the submitted values, or None."""
    metrics = list(goals.METRICS)
    with st.form(key):
        name = st.text_input("Goal", value=goal.name if goal else "", max_chars=goals.MAX_NAME_LENGTH,
                             placeholder="e.g. Lift retention to 55% by June", key=f"{key}_name")
        c1, c2 = st.columns(2)
        metric = c1.selectbox("Metric", metrics, index=metrics.index(goal.metric) if goal else 0,
                              format_func=_metric_label, key=f"{key}_metric",
                              help=" · ".join(f"{m.label}: {m.definition}" for m in goals.METRICS.values()))
        units = list(goals.BUSINESS_UNITS)
        unit = c2.selectbox("Owner (business unit)", units, key=f"{key}_unit",
                            index=units.index(goal.business_unit) if goal else 0)
        c3, c4, c5 = st.columns(3)
        start = c3.date_input("Start (baseline date)", value=goal.start_date if goal else as_of - dt.timedelta(90),
                              key=f"{key}_start", help=GOAL_HELP["baseline"])
        deadline = c4.date_input("Deadline", value=goal.deadline if goal else as_of + dt.timedelta(182),
                                 key=f"{key}_deadline")
        target = c5.number_input("Target (in the metric's unit: % for rates)", key=f"{key}_target",
                                 value=float(goal.target * _scale(goal.metric)) if goal else 0.0, format="%.2f")
        monthly = st.text_area("Monthly targets (optional, one per line: YYYY-MM: value)", key=f"{key}_monthly",
                               value=_monthly_text(goal) if goal else "", height=80,
                               help="Where the metric should be at each month's end; the plan runs through them.")
        author = st.text_input("Set by", value=(goal.author or "") if goal else (_actor() or ""),
                               key=f"{key}_author")
        submitted = st.form_submit_button("Save changes" if goal else "Set the goal")
    if not submitted:
        return None
    return dict(name=name, metric=metric, business_unit=unit, start_date=start, deadline=deadline,
                target=target / _scale(metric), monthly_text=monthly, author=author.strip() or None)


def _save(values: dict, goal: goals.Goal | None) -> None:
    con = frame.cursor()
    action = "goal_update" if goal else "goal_create"
    if not auth.require("manage_goals", action, target=goal.goal_id if goal else values.get("name")):
        return
    try:
        monthly = _parse_monthly(values.pop("monthly_text"), values["metric"])
        if goal is None:
            saved = goals.create_goal(con, values["name"], values["metric"], values["business_unit"],
                                      values["start_date"], values["deadline"], values["target"],
                                      monthly_targets=monthly, author=values["author"], backend=frame.backend())
        else:
            saved = goals.update_goal(con, goal.goal_id, monthly_targets=monthly, backend=frame.backend(), **values)
    except ValueError as exc:
        audit.record(con, action, actor=_actor(), target=goal.goal_id if goal else values.get("name"),
                     outcome="failed", detail=str(exc))
        st.error(str(exc))
        return
    audit.record(con, action, actor=_actor(), target=saved.goal_id, detail=saved.name)
    baseline = goals.format_value(saved.metric, saved.baseline)
    st.session_state["_goal_saved"] = f"Saved “{saved.name}” (baseline {baseline})."
    st.rerun()


def _delete(goal: goals.Goal) -> None:
    if not auth.require("manage_goals", "goal_delete", target=goal.goal_id):
        return
    con = frame.cursor()
    goals.delete_goal(con, goal.goal_id)
    audit.record(con, "goal_delete", actor=_actor(), target=goal.goal_id, detail=goal.name)
    st.session_state["_goal_saved"] = f"Deleted “{goal.name}”."
    st.rerun()


def _summary(version: str, listed: list[goals.Goal], as_of: dt.date) -> pd.DataFrame:
    rows = []
    for g in listed:
        p = _progress(version, g, as_of)
        rows.append({"name": g.name, "business_unit": g.business_unit, "metric": _metric_label(g.metric),
                     "start_date": g.start_date, "deadline": g.deadline,
                     "baseline": goals.format_value(g.metric, g.baseline),
                     "target": goals.format_value(g.metric, g.target),
                     "current": goals.format_value(g.metric, p.current),
                     "planned": goals.format_value(g.metric, p.planned),
                     "forecast": goals.format_value(g.metric, p.forecast),
                     "status": f"{STATUS_ICONS.get(p.status, '')} {p.status}", "goal_id": g.goal_id})
    return pd.DataFrame(rows)


def _drivers_figure(gap: pd.DataFrame, goal: goals.Goal) -> go.Figure:
    """Each segment's share of the gap to target, the largest on top (red: holds the goal back; green: ahead)."""
    g = gap.iloc[::-1]
    fig = go.Figure(go.Bar(x=g["share_of_gap"], y=g["group"].astype(str), orientation="h",
                           marker_color=["#cf222e" if c > 0 else "#1a7f37" for c in g["share_of_gap"]],
                           hovertemplate="%{y}: %{x:.0%} of the gap<extra></extra>"))
    fig.update_layout(height=max(220, 28 * len(g) + 80), margin=dict(l=10, r=10, t=30, b=10),
                      xaxis=dict(title="Share of the gap to target", tickformat=".0%"), yaxis_title=None,
                      title="Where the gap comes from")
    return fig


def _goal_detail(version: str, goal: goals.Goal, as_of: dt.date) -> None:
    p = _progress(version, goal, as_of)
    fmt = lambda x: goals.format_value(goal.metric, x)  # noqa: E731
    st.markdown(f"#### {STATUS_ICONS.get(p.status, '')} {goal.name}")
    st.caption(f"{_metric_label(goal.metric)} · owner {goal.business_unit} · {goal.start_date:%d %b %Y} → "
               f"{goal.deadline:%d %b %Y}" + (f" · set by {goal.author}" if goal.author else "") +
               f" · {goals.METRICS[goal.metric].definition}")
    c = st.columns(5)
    c[0].metric("Baseline", fmt(p.baseline), help=GOAL_HELP["baseline"], border=True)
    c[1].metric("Now", fmt(p.current), help=GOAL_HELP["current"], border=True,
                delta=None if math.isnan(p.current - p.baseline) else fmt(p.current - p.baseline),
                delta_color="normal" if goal.higher_is_better else "inverse")
    c[2].metric("Planned now", fmt(p.planned), help=GOAL_HELP["planned"], border=True)
    interval = ("" if p.forecast_low is None or p.forecast_high is None
                else f"80% interval {fmt(p.forecast_low)} – {fmt(p.forecast_high)}. ")
    c[3].metric("Forecast at deadline", fmt(p.forecast), help=interval + GOAL_HELP["forecast"], border=True)
    c[4].metric("Target", fmt(p.target), help=GOAL_HELP["status"], border=True)
    chart, drivers = st.columns([3, 2])
    with chart:
        st.plotly_chart(figures.goal_progress_figure(p.series, goal.name, _unit_suffix(goal.metric).strip(" ()")),
                        width="stretch", key=f"goal_chart_{goal.goal_id}")
        st.caption(p.reading)
    with drivers:
        by = st.segmented_control("Split the gap by", ["segment", "region"], default="segment",
                                  key=f"goal_by_{goal.goal_id}", format_func=str.capitalize,
                                  help="RFM segment as of the end of the period, or the customer's region. Recency "
                                       "decides the segment, so for purchase metrics recent-buyer segments score "
                                       "well by definition: read the shares of the base as well as the values.")
        gap = _drivers(version, goal, as_of, by or "segment")
        if gap.empty:
            st.caption("Segments driving the gap: " + gap.attrs.get("reason", "not available for this metric."))
        else:
            st.markdown(f"**{'Segments' if by != 'region' else 'Regions'} driving the gap**")
            st.plotly_chart(_drivers_figure(gap, goal), width="stretch", key=f"goal_drivers_chart_{goal.goal_id}")
            top = gap.iloc[0]
            st.caption(f"{top['group']} holds the goal back most: {top['weight']:.0%} of the base at "
                       f"{fmt(top['value'])}, {top['share_of_gap']:.0%} of the gap. Contribution = the segment's "
                       "share of the base × (target − its value); the contributions add up to the whole gap.")
            shown = gap.assign(**{c: gap[c].map(fmt) for c in ("value", "gap_to_target", "contribution")})
            tables.show(shown, {**DRIVER_LABELS, "group": (by or "segment").capitalize()}, DRIVER_HELP)
            tables.download("Download gap drivers (CSV)", gap, f"goal_{goal.goal_id}_drivers.csv",
                            key=f"goal_drivers_{goal.goal_id}")
    if not auth.allowed("manage_goals"):
        return
    with st.expander("Edit or delete this goal"):
        values = _goal_form(f"goal_edit_{goal.goal_id}", as_of, goal)
        if values is not None:
            _save(values, goal)
        sure = st.checkbox("Yes, delete this goal", key=f"goal_sure_{goal.goal_id}")
        if st.button("Delete the goal", key=f"goal_delete_{goal.goal_id}", disabled=not sure, type="secondary"):
            _delete(goal)


def _goals_tab(version: str, f) -> None:
    as_of = f.end
    if message := st.session_state.pop("_goal_saved", None):
        st.success(message)
    listed = _goals()
    editable = auth.allowed("manage_goals")
    if editable:
        with st.expander("Set a new goal", expanded=not listed):
            st.caption("The baseline is the metric at the start date, computed from the data. Rates are typed as "
                       "percentages (55 = 55%).")
            values = _goal_form("goal_new", as_of)
            if values is not None:
                _save(values, None)
    else:
        st.caption(f"Goals are read-only for your role: setting, editing or deleting a goal "
                   f"{auth.NEEDS['manage_goals']}.")
    if not listed:
        st.info("No goals yet. Set the first one above: a metric, a target and a deadline." if editable
                else "No goals yet. An admin sets them here.")
        return
    st.caption(f"Goals measured at the end of {as_of:%d %b %Y} (the end of the period in the sidebar), on all the "
               "data: goals are company goals, the region and segment filters do not apply to them.")
    summary = _summary(version, listed, as_of)
    tables.show(summary, GOAL_LABELS, GOAL_HELP)
    tables.download("Download goals (CSV)", summary, "goals.csv")
    for goal in listed:
        st.divider()
        _goal_detail(version, goal, as_of)


# --------------------------------------------------------------------------------------------- investment tab
INVESTMENT_DEFAULTS = {"inv_one_off": 10_000.0, "inv_yearly": 5_000.0, "inv_horizon": 36, "inv_discount": 8.0,
                       "inv_ramp": 6, "inv_churn": 2.0, "inv_conversion": 1.0, "inv_support": 10.0, "inv_aov": 0.0}


def _number(column, label: str, key: str, **kwargs) -> None:
    """A number input whose value outlives the tab: kept under ``key`` (the widget's own state, ``w_<key>``, is
    dropped by Streamlit whenever the Investment tab is not drawn, e.g. while the board pack is built)."""
    st.session_state.setdefault(key, INVESTMENT_DEFAULTS[key])
    if f"w_{key}" not in st.session_state:  # first drawing, or the tab was hidden: restore the kept value
        st.session_state[f"w_{key}"] = st.session_state[key]
    st.session_state[key] = column.number_input(label, key=f"w_{key}", **kwargs)


def _investment_inputs() -> None:
    st.markdown("**The programme**")
    c = st.columns(5)
    _number(c[0], "One-off cost", "inv_one_off", min_value=0.0, step=5_000.0,
            help="Set-up: software, integration, training.")
    _number(c[1], "Yearly cost", "inv_yearly", min_value=0.0, step=5_000.0,
            help="Running cost per year: licences, staff.")
    _number(c[2], "Horizon (months)", "inv_horizon", min_value=1, max_value=120, step=6)
    _number(c[3], "Discount rate (% a year)", "inv_discount", min_value=0.0, max_value=50.0, step=0.5)
    _number(c[4], "Ramp-up (months)", "inv_ramp", min_value=0, max_value=60, step=1,
            help="Benefits grow in a straight line from nothing to full over these months.")
    st.markdown("**Expected improvements**")
    c = st.columns(4)
    _number(c[0], "Churn down by (points)", "inv_churn", min_value=0.0, max_value=100.0, step=0.5,
            help="Percentage points off the yearly churn rate.")
    _number(c[1], "Campaign conversion up by (points)", "inv_conversion", min_value=0.0, max_value=100.0, step=0.5)
    _number(c[2], "Support cost down by (%)", "inv_support", min_value=0.0, max_value=100.0, step=1.0)
    _number(c[3], "Average order value up by (%)", "inv_aov", min_value=0.0, max_value=100.0, step=1.0)


def _programme_from_state() -> tuple[investment.Programme, investment.Improvements]:
    s = {k: st.session_state.get(k, v) for k, v in INVESTMENT_DEFAULTS.items()}
    programme = investment.Programme(one_off_cost=float(s["inv_one_off"]), yearly_cost=float(s["inv_yearly"]),
                                     horizon_months=int(s["inv_horizon"]),
                                     discount_rate_annual=float(s["inv_discount"]) / 100,
                                     ramp_up_months=int(s["inv_ramp"]))
    improvements = investment.Improvements(churn_pts=float(s["inv_churn"]), conversion_pts=float(s["inv_conversion"]),
                                           support_cost_pct=float(s["inv_support"]), aov_pct=float(s["inv_aov"]))
    return programme, improvements


def _case(version: str, f) -> tuple[investment.InvestmentCase, pd.DataFrame] | str:
    """The case for the inputs in the session, or the message saying why there is none."""
    try:
        base = _baselines(version, f.end, f.regions, f.segments)
        programme, improvements = _programme_from_state()
        case = investment.investment_case(base, programme, improvements)
        return case, investment.sensitivity(base, programme, improvements)
    except ValueError as exc:
        return str(exc)


def _investment_tab(version: str, f) -> None:
    st.caption("Benefits are computed from this data's own baselines (the last 12 months to the end of the period, "
               "for the regions and segments in the sidebar) and the improvements you expect; every formula is "
               "listed below with its numbers.")
    _investment_inputs()
    result = _case(version, f)
    if isinstance(result, str):
        st.error(result)
        return
    case, sens = result
    c = st.columns(5)
    c[0].metric("NPV", f"{case.npv:,.0f}", border=True, help="Present value of the benefits minus that of the costs.")
    c[1].metric("Payback", "not within the horizon" if case.payback_month is None else f"month {case.payback_month}",
                border=True, help="First month in which the cumulative discounted net is at least zero.")
    c[2].metric("ROI", "n/a" if case.roi is None else f"{case.roi:.0%}", border=True, help=case.roi_basis)
    c[3].metric("Incremental profit", f"{case.incremental_profit:,.0f}", border=True,
                help="Undiscounted benefit of all levers over the horizon.")
    c[4].metric("Total cost", f"{case.total_cost:,.0f}", border=True,
                help="One-off plus yearly costs over the horizon.")
    st.caption(investment.reading(case))
    left, right = st.columns(2)
    with left:
        st.plotly_chart(figures.cashflow_figure(case.cashflow), width="stretch")
        st.caption("The cumulative discounted net: where it crosses zero the programme has paid for itself.")
    with right:
        st.plotly_chart(figures.tornado_figure(sens, case.npv), width="stretch")
        top = sens.iloc[0] if len(sens) else None
        if top is not None:
            st.caption(f"The NPV is most sensitive to {top['label']}: from {top['npv_low']:,.0f} to "
                       f"{top['npv_high']:,.0f} when it moves down or up by the swing.")
    st.markdown("**Formulas**")
    formulas = pd.DataFrame(case.formulas, columns=["name", "formula", "example"])
    tables.show(formulas, {"name": "Quantity", "formula": "Formula", "example": "With this data"})
    st.markdown("**Baselines from the data**")
    base = case.baselines
    baseline_rows = pd.DataFrame([{"baseline": k, "value": v, "source": base.sources.get(k, "")}
                                  for k, v in vars(base).items() if k not in ("sources", "as_of")])
    tables.show(baseline_rows.astype({"value": str}), {"baseline": "Baseline", "value": "Value", "source": "Source"})
    tables.download("Download the cash flow (CSV)", case.cashflow, "investment_cashflow.csv")
    tables.download("Download the sensitivity (CSV)", sens, "investment_sensitivity.csv")


# --------------------------------------------------------------------------------------------- board pack tab
def _board_pack_tab(version: str, f) -> None:
    from crm_core import report  # kaleido and reportlab load only when a pack is built

    if not auth.allowed("export"):
        st.caption(f"The board pack is a download: it {auth.NEEDS['export']}.")
        return
    st.caption("One PDF (and a self-contained HTML page) with the goals, the key chart of every view and the "
               "investment case with the inputs above, for the filters in the sidebar, dated today."
               + (" Presentation mode is on: names, e-mails and phones are masked in the pack." if frame.masking()
                  else ""))
    if st.button("Build the board pack", type="primary", key="pack_build"):
        listed = _goals()
        with st.status("Building the board pack ...", expanded=True) as status:
            st.write(f"Measuring {len(listed)} goal(s) ...")
            pairs = [(g, _progress(version, g, f.end)) for g in listed]
            result = _case(version, f)
            st.write("Computing every view's key chart ...")
            pack = report.board_pack(frame.backend(), start=f.start, as_of=f.end, regions=f.regions,
                                     segments=f.segments, goals=pairs,
                                     investment=None if isinstance(result, str) else result, mask=frame.masking())
            st.write("Rendering the charts and the PDF ...")
            try:
                images = report.chart_images(pack)
            except report.ChartRenderError as exc:
                status.update(label="The charts could not be drawn", state="error")
                audit.record(frame.cursor(), "report", actor=_actor(), outcome="failed", detail=str(exc))
                st.error(str(exc))
                return
            import io

            pdf = io.BytesIO()
            report.to_pdf(pack, pdf, images=images)
            html = report.to_html(pack, images=images)
            status.update(label=f"Board pack ready: {len(pack.sections)} sections.", state="complete")
        audit.record(frame.cursor(), "report", actor=_actor(), target=f"{pack.title} {f.start}–{f.end}",
                     detail=f"{len(pack.sections)} sections, masked={frame.masking()}")
        st.session_state["pack"] = (pdf.getvalue(), html, f"crm-board-pack-{f.end:%Y-%m-%d}")
    if "pack" in st.session_state:
        pdf_bytes, html, stem = st.session_state["pack"]
        c1, c2 = st.columns(2)
        c1.download_button("Download the board pack (PDF)", pdf_bytes, f"{stem}.pdf", "application/pdf",
                           key="pack_pdf", on_click=auth.record_export, args=(f"{stem}.pdf",))
        c2.download_button("Download the board pack (HTML)", html, f"{stem}.html", "text/html", key="pack_html",
                           on_click=auth.record_export, args=(f"{stem}.html",))


def render() -> None:
    f = frame.current_filters()
    version = frame.data_version()
    st.title("Goals & investment")
    tab_goals, tab_case, tab_pack = st.tabs(TABS, key="goals_tab", on_change="rerun")
    if tab_goals.open:
        with tab_goals:
            _goals_tab(version, f)
    if tab_case.open:
        with tab_case:
            _investment_tab(version, f)
    if tab_pack.open:
        with tab_pack:
            _board_pack_tab(version, f)


if __name__ == "__main__":  # opened by its own URL on a fresh server: run the whole app frame
    frame.run_app()
