"""The benchmarked charts' metrics as straightforward pandas: the baseline our layer must beat by 3×.

One function per chart, ``(frames, p) -> DataFrame``: ``frames`` maps a canonical table name to a pandas frame
already in memory (read from the store once, untimed — the most favourable case for pandas: no CSV parsing is
timed), ``p`` the chart parameters (:class:`bench.charts.Params`). Each is the plain pandas an analyst would write
from the metric's definition (boolean masks, ``groupby``, ``merge``; no tricks), and returns the same comparison
frame as the matching ``bench.sql_ref`` function and ``bench.charts`` normaliser, so the three can be asserted equal.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from crm_core.campaigns import CONTROL_GROUPS
from crm_core.segments import SEGMENT_RULES
from crm_core.support import SlaPolicy
from crm_core.value import CostRates


def _ts(day) -> pd.Timestamp:
    return pd.Timestamp(day)


def _is_return(o: pd.DataFrame) -> pd.Series:
    return o["is_return"].fillna(False).astype(bool) | (o["amount"].fillna(0) < 0)


def _acquisitions(customers: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    first = orders[orders["customer_id"].notna()].groupby("customer_id", as_index=False)["ordered_at"].min()
    a = customers[["customer_id", "signup_date"]].merge(first, on="customer_id", how="left")
    a["acquired_on"] = a["signup_date"].fillna(a["ordered_at"].dt.normalize())
    return a[["customer_id", "acquired_on"]]


# --------------------------------------------------------------------------------------------- overview
def overview_rows(frames, p) -> dict[str, dict]:
    """The four one-row aggregates behind the overview KPIs (see ``bench.sql_ref.overview_rows``)."""
    o, customers, tickets = frames["orders"], frames["customers"], frames["support_tickets"]
    cs, ce = _ts(p.period_start), _ts(p.as_of + timedelta(days=1))
    ps, bs = _ts(p.previous_start), _ts(p.before_previous_start)
    ret = _is_return(o)
    totals = {}
    for suffix, lo, hi in (("", cs, ce), ("_prev", ps, cs)):
        inside = (o["ordered_at"] >= lo) & (o["ordered_at"] < hi)
        amount = o.loc[inside, "amount"]
        totals[f"revenue{suffix}"] = amount.sum() if inside.any() else None
        totals[f"orders{suffix}"] = int((inside & ~ret).sum())
        totals[f"gross_sales{suffix}"] = amount[amount > 0].sum() if (amount > 0).any() else None
        totals[f"refunds{suffix}"] = amount[amount < 0].sum() if (amount < 0).any() else None

    buys = o[~ret & o["customer_id"].notna() & (o["ordered_at"] < ce)]
    ts = buys["ordered_at"]
    per = pd.DataFrame({
        "customer_id": buys["customer_id"],
        "n_cur": ts >= cs, "n_prev": (ts >= ps) & (ts < cs), "n_bp": (ts >= bs) & (ts < ps), "n_all": True,
        "n_to_prev": ts < cs,
    }).groupby("customer_id").sum()
    activity = {
        "active_customers": int((per.n_cur > 0).sum()),
        "active_customers_prev": int((per.n_prev > 0).sum()),
        "repeat_customers": int(((per.n_cur > 0) & (per.n_all >= 2)).sum()),
        "repeat_customers_prev": int(((per.n_prev > 0) & (per.n_to_prev >= 2)).sum()),
        "retained_customers": int(((per.n_cur > 0) & (per.n_prev > 0)).sum()),
        "retained_customers_prev": int(((per.n_prev > 0) & (per.n_bp > 0)).sum()),
        "active_before_previous": int((per.n_bp > 0).sum()),
    }

    a = _acquisitions(customers, o)
    on, pe = a["acquired_on"], _ts(p.period_start - timedelta(days=1))
    base = {
        "customers": a.loc[on <= _ts(p.as_of), "customer_id"].nunique(),
        "customers_prev": a.loc[on <= pe, "customer_id"].nunique(),
        "new_customers": a.loc[(on >= cs) & (on <= _ts(p.as_of)), "customer_id"].nunique(),
        "new_customers_prev": a.loc[(on >= ps) & (on <= pe), "customer_id"].nunique(),
    }
    open_rows = {}
    for suffix, boundary in (("", ce), ("_prev", cs)):
        is_open = (tickets["created_at"] < boundary) & (tickets["resolved_at"].isna()
                                                        | (tickets["resolved_at"] >= boundary))
        open_rows[f"open_tickets{suffix}"] = int(is_open.sum())
    return {"order_totals": totals, "customer_activity": activity, "customer_base": base, "open_tickets": open_rows}


# --------------------------------------------------------------------------------------------- monthly trend
def monthly_trend(frames, p) -> pd.DataFrame:
    """month, revenue, orders, active_customers, new_customers, open_tickets for every month of the trend range."""
    o, customers, tickets = frames["orders"], frames["customers"], frames["support_tickets"]
    start, end = _ts(p.trend_start), _ts(p.as_of + timedelta(days=1))
    months = pd.DataFrame({"month": pd.date_range(start.replace(day=1), _ts(p.as_of).replace(day=1), freq="MS")})
    inside = o[(o["ordered_at"] >= start) & (o["ordered_at"] < end)].copy()
    inside["month"] = inside["ordered_at"].dt.to_period("M").dt.to_timestamp()
    inside["purchase"] = ~_is_return(inside)
    g = inside.groupby("month")
    by_month = pd.DataFrame({
        "revenue": g["amount"].sum(),
        "orders": g["purchase"].sum(),
        "active_customers": inside[inside["purchase"]].groupby("month")["customer_id"].nunique(),
    }).reset_index()
    a = _acquisitions(customers, o)
    a = a[(a["acquired_on"] >= start) & (a["acquired_on"] <= _ts(p.as_of))].copy()
    a["month"] = a["acquired_on"].dt.to_period("M").dt.to_timestamp()
    new = a.groupby("month")["customer_id"].nunique().rename("new_customers").reset_index()
    open_tickets = []
    for month in months["month"]:
        boundary = min(month + pd.offsets.MonthBegin(1), end)
        is_open = (tickets["created_at"] < boundary) & (tickets["resolved_at"].isna()
                                                        | (tickets["resolved_at"] >= boundary))
        open_tickets.append(int(is_open.sum()))
    out = months.merge(by_month, on="month", how="left").merge(new, on="month", how="left")
    out = out.fillna({"revenue": 0.0, "orders": 0, "active_customers": 0, "new_customers": 0})
    out["open_tickets"] = open_tickets
    return out


# --------------------------------------------------------------------------------------------- RFM segments
def _score(values: pd.Series, ascending: bool) -> pd.Series:
    rank = values.rank(method="min", ascending=ascending)
    n = len(values)
    pct = (rank - 1) / (n - 1) if n > 1 else rank * 0.0
    return np.minimum(5, np.floor(pct * 5).astype("int64") + 1)


def segment_summary(frames, p) -> pd.DataFrame:
    """One row per segment with customers (see ``bench.sql_ref.segment_summary``)."""
    o = frames["orders"]
    known = o[o["customer_id"].notna() & (o["ordered_at"] < _ts(p.as_of + timedelta(days=1)))].copy()
    known["purchase"] = ~_is_return(known)
    known["purchase_at"] = known["ordered_at"].where(known["purchase"])
    known["amount0"] = known["amount"].fillna(0)
    per = known.groupby("customer_id").agg(last_purchase_at=("purchase_at", "max"), frequency=("purchase", "sum"),
                                           monetary=("amount0", "sum"))
    per = per[per["frequency"] > 0].copy()
    per["recency_days"] = (_ts(p.as_of) - per["last_purchase_at"].dt.normalize()).dt.days
    per["r_score"] = _score(per["recency_days"], ascending=False)
    per["f_score"] = _score(per["frequency"], ascending=True)
    per["m_score"] = _score(per["monetary"].round(6), ascending=True)
    fm = np.floor((per["f_score"] + per["m_score"]) / 2)
    per["segment"] = None
    for rule in SEGMENT_RULES:
        hit = per["r_score"].between(rule.r_min, rule.r_max) & fm.between(rule.fm_min, rule.fm_max)
        per.loc[hit, "segment"] = rule.segment
    out = per.groupby("segment").agg(customers=("frequency", "size"), revenue=("monetary", "sum"),
                                     avg_recency_days=("recency_days", "mean"),
                                     avg_frequency=("frequency", "mean"), avg_monetary=("monetary", "mean"))
    return out.reset_index().sort_values("segment").reset_index(drop=True)


# --------------------------------------------------------------------------------------------- customer value
def _cost(channel: pd.Series, costs: dict[str, float], default: float) -> pd.Series:
    return channel.str.strip().str.lower().map(costs).fillna(default).astype("float64")


def customer_value(frames, p) -> pd.DataFrame:
    """One row per customer with an order, ticket or campaign contact up to ``p.as_of`` (all history, default cost
    rates, shipping from shipments), by customer_id (see ``bench.sql_ref.customer_value``)."""
    r = CostRates()
    end = _ts(p.as_of + timedelta(days=1))
    orders = frames["orders"]
    o = orders[orders["customer_id"].notna() & (orders["ordered_at"] < end)].copy()
    o["amount"] = o["amount"].fillna(0)
    o["is_purchase"] = ~_is_return(o)

    items = frames["order_items"]
    items = items[items["order_id"].isin(o["order_id"])].merge(
        frames["products"][["product_id", "unit_cost"]], on="product_id", how="left")
    q, price = items["quantity"].fillna(0), items["unit_price"].fillna(0)
    known = items["unit_cost"].notna()
    lines = pd.DataFrame({"order_id": items["order_id"],
                          "known_margin": (q * (price - items["unit_cost"])).where(known),
                          "estimated_line_revenue": (q * price).where(~known),
                          "n_estimated_lines": (~known).astype("int64")})
    lines = lines.groupby("order_id").agg(known_margin=("known_margin", "sum"),
                                          estimated_line_revenue=("estimated_line_revenue", "sum"),
                                          n_estimated_lines=("n_estimated_lines", "sum"))
    m = o.merge(lines, left_on="order_id", right_index=True, how="left")
    has_lines = m["n_estimated_lines"].notna()
    estimated = m["estimated_line_revenue"].fillna(0).where(has_lines, m["amount"])
    parts = [pd.DataFrame({
        "customer_id": m["customer_id"], "revenue": m["amount"], "orders": m["is_purchase"].astype("int64"),
        "gross_margin": m["known_margin"].fillna(0) + estimated * r.default_margin_rate,
        "estimated_margin_revenue": estimated})]

    t = frames["support_tickets"]
    t = t[t["customer_id"].notna() & (t["created_at"] < end)]
    parts.append(pd.DataFrame({"customer_id": t["customer_id"], "tickets": 1,
                               "ticket_cost": _cost(t["channel"], r.ticket_cost_by_channel, r.default_ticket_cost)}))

    s = frames["shipments"].merge(o[["order_id", "customer_id"]], on="order_id")
    parts.append(pd.DataFrame({"customer_id": s["customer_id"],
                               "shipping_cost": s["shipping_cost"].fillna(r.default_shipping_cost)}))

    c = frames["campaign_contacts"].merge(
        frames["campaigns"][["campaign_id", "channel", "start_date"]], on="campaign_id", how="left")
    dated = c["contacted_at"].fillna(c["start_date"])
    c = c[c["customer_id"].notna() & (dated < end)]
    is_control = c["contact_group"].str.strip().str.lower().fillna("") == "control"
    is_sent = c["is_sent"].astype("boolean").fillna(~is_control).astype(bool)
    by_channel = _cost(c["channel"].fillna(""), r.contact_cost_by_channel, r.default_contact_cost)
    parts.append(pd.DataFrame({"customer_id": c["customer_id"], "contacts": 1,
                               "campaign_cost": c["contact_cost"].fillna(by_channel.where(is_sent, 0.0))}))

    per = pd.concat(parts, ignore_index=True).fillna(0).groupby("customer_id").sum()
    per["profit"] = per["gross_margin"] - (per["ticket_cost"] + per["shipping_cost"] + per["campaign_cost"])

    customers = frames["customers"]
    referred = customers[customers["referred_by"].notna()
                         & (customers["signup_date"].isna() | (customers["signup_date"] <= _ts(p.as_of)))]
    window_revenue = o.groupby("customer_id")["amount"].sum()
    referred = referred.assign(revenue=referred["customer_id"].map(window_revenue).fillna(0))
    refs = referred.groupby("referred_by").agg(referred_customers=("customer_id", "size"),
                                               referred_revenue=("revenue", "sum"))
    per = per.join(refs)
    per["referred_customers"] = per["referred_customers"].fillna(0)
    per["referred_revenue"] = per["referred_revenue"].fillna(0.0)
    return per.reset_index().sort_values("customer_id").reset_index(drop=True)


# --------------------------------------------------------------------------------------------- cohorts
def cohort_retention(frames, p) -> pd.DataFrame:
    """cohort_month, months_since, cohort_size, active_customers, retention_rate (see
    ``bench.sql_ref.cohort_retention``)."""
    o, customers = frames["orders"], frames["customers"]
    a = _acquisitions(customers, o)
    a = a[a["acquired_on"].notna() & (a["acquired_on"] <= _ts(p.as_of))
          & (a["acquired_on"] >= _ts(p.cohort_start.replace(day=1)))].copy()
    a["cohort_month"] = a["acquired_on"].dt.to_period("M").dt.to_timestamp()
    a["cohort_index"] = a["acquired_on"].dt.year * 12 + a["acquired_on"].dt.month
    sizes = a.groupby(["cohort_month", "cohort_index"])["customer_id"].nunique().rename("cohort_size").reset_index()
    buys = o[~_is_return(o) & o["customer_id"].notna() & (o["ordered_at"] < _ts(p.as_of + timedelta(days=1)))]
    buys = buys[["customer_id", "ordered_at"]].merge(a[["customer_id", "cohort_month", "cohort_index"]],
                                                     on="customer_id")
    buys["months_since"] = buys["ordered_at"].dt.year * 12 + buys["ordered_at"].dt.month - buys["cohort_index"]
    buys = buys[(buys["months_since"] >= 0) & (buys["months_since"] <= p.months)]
    active = buys.groupby(["cohort_month", "months_since"])["customer_id"].nunique().rename("active_customers")
    grid = sizes.merge(pd.DataFrame({"months_since": range(p.months + 1)}), how="cross")
    grid = grid[grid["cohort_index"] + grid["months_since"] <= p.as_of.year * 12 + p.as_of.month]
    out = grid.merge(active.reset_index(), on=["cohort_month", "months_since"], how="left")
    out["active_customers"] = out["active_customers"].fillna(0).astype("int64")
    out["retention_rate"] = out["active_customers"] / out["cohort_size"]
    out = out[["cohort_month", "months_since", "cohort_size", "active_customers", "retention_rate"]]
    return out.sort_values(["cohort_month", "months_since"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------- campaigns
STEPS = ("sent", "opened", "clicked", "responded", "converted")


def campaign_summary(frames, p) -> pd.DataFrame:
    """One row per campaign (see ``bench.sql_ref.campaign_summary``)."""
    campaigns = frames["campaigns"]
    c = frames["campaign_contacts"].merge(campaigns[["campaign_id", "start_date"]], on="campaign_id", how="left")
    c["is_control"] = c["contact_group"].str.strip().str.lower().isin(CONTROL_GROUPS) & c["contact_group"].notna()
    c["touched_at"] = c["contacted_at"].fillna(c["start_date"])
    o = frames["orders"]
    buys = o[o["customer_id"].notna() & o["ordered_at"].notna() & ~_is_return(o)]
    buys = pd.DataFrame({"customer_id": buys["customer_id"], "ordered_at": buys["ordered_at"],
                         "amount": buys["amount"].fillna(0)})
    j = c[["campaign_id", "customer_id", "touched_at"]].merge(buys, on="customer_id")
    j = j[(j["ordered_at"] > j["touched_at"]) & (j["ordered_at"] <= j["touched_at"] + pd.Timedelta(days=p.window))]
    w = j.groupby(["campaign_id", "customer_id"])["amount"].sum().rename("window_revenue").reset_index()
    f = c.merge(w, on=["campaign_id", "customer_id"], how="left")
    f["has_buy"] = f["window_revenue"].notna()
    f["window_revenue"] = f["window_revenue"].fillna(0.0)
    t = f[~f["is_control"]]
    per = pd.DataFrame({
        "contacts": f.groupby("campaign_id").size(),
        "treatment_contacts": (~f["is_control"]).groupby(f["campaign_id"]).sum(),
        "control_contacts": f["is_control"].groupby(f["campaign_id"]).sum(),
    })
    for step in STEPS:
        flag = t[f"is_{step}"]
        per[step] = flag.astype("Float64").groupby(t["campaign_id"]).sum(min_count=1)
    tg = t.groupby("campaign_id")
    per["window_buyers"] = tg["has_buy"].sum()
    per["attributed_revenue"] = tg["attributed_revenue"].sum(min_count=1)
    per["window_revenue"] = tg["window_revenue"].sum()
    per["contact_cost_total"] = f.groupby("campaign_id")["contact_cost"].sum(min_count=1)
    ids = pd.Index(sorted(set(campaigns["campaign_id"]) | set(per.index)), name="campaign_id")
    out = per.reindex(ids)
    out["cost"] = campaigns.set_index("campaign_id")["cost"].reindex(ids).fillna(out["contact_cost_total"])
    for col in ("contacts", "treatment_contacts", "control_contacts", "window_buyers"):
        out[col] = out[col].fillna(0).astype("int64")
    out["window_revenue"] = out["window_revenue"].fillna(0.0)
    out["revenue"] = out["attributed_revenue"].fillna(out["window_revenue"])
    return out.drop(columns="contact_cost_total").reset_index()


# --------------------------------------------------------------------------------------------- support tickets
def _position(ts: pd.Series) -> pd.Series:
    days = (ts.dt.normalize() - pd.Timestamp(1900, 1, 1)).dt.days.astype("float64")
    return days * 24 + (ts.dt.hour + ts.dt.minute / 60 + ts.dt.second / 3600)


def ticket_trend(frames, p) -> pd.DataFrame:
    """One row per month with tickets created from ``p.period_start`` to ``p.as_of`` (see
    ``bench.sql_ref.ticket_trend``)."""
    policy = SlaPolicy()
    end = _ts(p.as_of + timedelta(days=1))
    t = frames["support_tickets"]
    t = t[(t["created_at"] < end) & (t["created_at"] >= _ts(p.period_start))].copy()
    level = t["priority"].str.strip().str.lower()
    level = level.where(level.isin(list(policy.first_response_hours)), policy.default_priority)
    fr_target = level.map(policy.first_response_hours)
    res_target = level.map(policy.resolution_hours)
    created = _position(t["created_at"])
    answered = _position(t["first_response_at"]).where(t["first_response_at"] < end)
    resolved = _position(t["resolved_at"]).where(t["resolved_at"] < end)
    end_position = float((end - pd.Timestamp(1900, 1, 1)).days * 24)
    t["first_response_hours"] = answered - created
    t["resolution_hours"] = resolved - created
    t["fr_breached"] = (answered.fillna(end_position) - created) > fr_target
    t["res_breached"] = (resolved.fillna(end_position) - created) > res_target
    t["breached"] = t["fr_breached"] | t["res_breached"]
    fr_decided = t["first_response_hours"].notna() | t["fr_breached"]
    res_decided = t["resolution_hours"].notna() | t["res_breached"]
    t["fr_decided"] = fr_decided
    t["decided"] = t["breached"] | (fr_decided & res_decided)
    category = t["category"].str.lower()
    t["complaint"] = category.str.contains("complaint", regex=False).fillna(False).astype(bool)
    t["compliment"] = category.str.contains("compliment", regex=False).fillna(False).astype(bool)
    t["csat"] = t["csat"].astype("float64")
    t["month"] = t["created_at"].dt.to_period("M").dt.to_timestamp()
    g = t.groupby("month")
    out = pd.DataFrame({
        "tickets": g.size(),
        "first_response_breach_rate": g["fr_breached"].sum() / g["fr_decided"].sum().replace(0, np.nan),
        "breach_rate": g["breached"].sum() / g["decided"].sum().replace(0, np.nan),
        "median_first_response_hours": g["first_response_hours"].median(),
        "csat_mean": g["csat"].mean(),
        "complaints": g["complaint"].sum(),
        "compliments": g["compliment"].sum(),
    })
    return out.reset_index()


# --------------------------------------------------------------------------------------------- fulfilment
def fulfilment_by_carrier(frames, p) -> pd.DataFrame:
    """One row per carrier (see ``bench.sql_ref.fulfilment_by_carrier``)."""
    end = _ts(p.as_of + timedelta(days=1))
    s = frames["shipments"].merge(frames["orders"][["order_id", "ordered_at"]], on="order_id", how="left")
    s["dated_at"] = s["ordered_at"].fillna(s["shipped_at"])
    s = s[(s["dated_at"] < end) & (s["dated_at"] >= _ts(p.period_start))].copy()
    s["shipped_at"] = s["shipped_at"].where(s["shipped_at"] < end)
    s["delivered_at"] = s["delivered_at"].where(s["delivered_at"] < end)
    days = (s["delivered_at"].dt.normalize() - s["promised_date"]).dt.days
    s["on_time"] = days <= 0
    s["late"] = days > 0
    s["days_late"] = days.where(days > 0)
    s["delivered"] = s["delivered_at"].notna()
    s["overdue"] = ~s["delivered"] & s["promised_date"].notna() & (s["promised_date"] < _ts(p.as_of))
    s["order_to_ship_hours"] = (s["shipped_at"] - s["ordered_at"]).dt.total_seconds() / 3600
    s["ship_to_deliver_days"] = (s["delivered_at"] - s["shipped_at"]).dt.total_seconds() / 86400
    s["carrier"] = s["carrier"].fillna("Unknown")
    g = s.groupby("carrier")
    out = pd.DataFrame({
        "shipments": g.size(), "delivered": g["delivered"].sum(), "on_time": g["on_time"].sum(),
        "late": g["late"].sum(), "overdue": g["overdue"].sum(), "avg_days_late": g["days_late"].mean(),
        "median_order_to_ship_hours": g["order_to_ship_hours"].quantile(0.5),
        "p90_order_to_ship_hours": g["order_to_ship_hours"].quantile(0.9),
        "median_ship_to_deliver_days": g["ship_to_deliver_days"].quantile(0.5),
        "p90_ship_to_deliver_days": g["ship_to_deliver_days"].quantile(0.9),
    })
    return out.reset_index()
