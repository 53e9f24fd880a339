"""The benchmarked charts' metrics written as bare DuckDB SQL: the baseline our layer (Ibis, caching, page code) is
measured against.

One function per chart, ``(con, p) -> DataFrame``: ``con`` a plain ``duckdb`` connection to the store, ``p`` the
chart parameters (:class:`bench.charts.Params`). Each is what someone who knows the metric's definition (the
docstrings of ``crm_core``) would write by hand in one query — no Ibis, no caching — and returns the same comparison
frame as the matching ``bench.charts`` normaliser of our result, so ``bench/charts.py`` can assert the numbers are
equal. Dates and cut-offs are bound as parameters; the SQL text holds only constants from this file and from
``crm_core`` (segment grid, cost rates, SLA targets).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pandas as pd

from crm_core.campaigns import CONTROL_GROUPS
from crm_core.segments import SEGMENT_RULES
from crm_core.support import SlaPolicy
from crm_core.value import CostRates

IS_RETURN = "(coalesce(is_return, false) OR coalesce(amount, 0) < 0)"


def _ts(day) -> datetime:
    return datetime.combine(day, time())


def _lit(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _kpi_rows(con, sql: str, params: list) -> dict:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchone()))


# --------------------------------------------------------------------------------------------- overview
def overview_rows(con, p) -> dict[str, dict]:
    """The four one-row aggregates behind the overview KPIs (the KPIs are computed from them by
    ``bench.charts.kpis_from_rows``)."""
    cs, ce = _ts(p.period_start), _ts(p.as_of + timedelta(days=1))
    ps, bs = _ts(p.previous_start), _ts(p.before_previous_start)
    totals = _kpi_rows(con, f"""
        SELECT sum(amount) FILTER (ordered_at >= $cs) AS revenue,
               count(*) FILTER (ordered_at >= $cs AND NOT {IS_RETURN}) AS orders,
               sum(amount) FILTER (ordered_at >= $cs AND amount > 0) AS gross_sales,
               sum(amount) FILTER (ordered_at >= $cs AND amount < 0) AS refunds,
               sum(amount) FILTER (ordered_at < $cs) AS revenue_prev,
               count(*) FILTER (ordered_at < $cs AND NOT {IS_RETURN}) AS orders_prev,
               sum(amount) FILTER (ordered_at < $cs AND amount > 0) AS gross_sales_prev,
               sum(amount) FILTER (ordered_at < $cs AND amount < 0) AS refunds_prev
        FROM orders WHERE ordered_at >= $ps AND ordered_at < $ce""", {"cs": cs, "ce": ce, "ps": ps})
    activity = _kpi_rows(con, f"""
        WITH per AS (
            SELECT customer_id,
                   count(*) FILTER (ordered_at >= $cs) AS n_cur,
                   count(*) FILTER (ordered_at >= $ps AND ordered_at < $cs) AS n_prev,
                   count(*) FILTER (ordered_at >= $bs AND ordered_at < $ps) AS n_bp,
                   count(*) AS n_all,
                   count(*) FILTER (ordered_at < $cs) AS n_to_prev
            FROM orders
            WHERE NOT {IS_RETURN} AND customer_id IS NOT NULL AND ordered_at < $ce
            GROUP BY customer_id)
        SELECT count(*) FILTER (n_cur > 0) AS active_customers,
               count(*) FILTER (n_prev > 0) AS active_customers_prev,
               count(*) FILTER (n_cur > 0 AND n_all >= 2) AS repeat_customers,
               count(*) FILTER (n_prev > 0 AND n_to_prev >= 2) AS repeat_customers_prev,
               count(*) FILTER (n_cur > 0 AND n_prev > 0) AS retained_customers,
               count(*) FILTER (n_prev > 0 AND n_bp > 0) AS retained_customers_prev,
               count(*) FILTER (n_bp > 0) AS active_before_previous
        FROM per""", {"cs": cs, "ce": ce, "ps": ps, "bs": bs})
    base = _kpi_rows(con, """
        WITH first AS (SELECT customer_id, min(ordered_at) AS first_at FROM orders
                       WHERE customer_id IS NOT NULL GROUP BY customer_id),
             a AS (SELECT c.customer_id, coalesce(c.signup_date, f.first_at::DATE) AS acquired_on
                   FROM customers c LEFT JOIN first f ON c.customer_id = f.customer_id)
        SELECT count(DISTINCT customer_id) FILTER (acquired_on <= $ce) AS customers,
               count(DISTINCT customer_id) FILTER (acquired_on <= $pe) AS customers_prev,
               count(DISTINCT customer_id) FILTER (acquired_on BETWEEN $cs AND $ce) AS new_customers,
               count(DISTINCT customer_id) FILTER (acquired_on BETWEEN $ps AND $pe) AS new_customers_prev
        FROM a""", {"cs": p.period_start, "ce": p.as_of, "ps": p.previous_start,
                    "pe": p.period_start - timedelta(days=1)})
    tickets = _kpi_rows(con, """
        SELECT count(*) FILTER (created_at < $ce AND (resolved_at IS NULL OR resolved_at >= $ce)) AS open_tickets,
               count(*) FILTER (created_at < $cs AND (resolved_at IS NULL OR resolved_at >= $cs)) AS open_tickets_prev
        FROM support_tickets""", {"cs": cs, "ce": ce})
    return {"order_totals": totals, "customer_activity": activity, "customer_base": base, "open_tickets": tickets}


# --------------------------------------------------------------------------------------------- monthly trend
def monthly_trend(con, p) -> pd.DataFrame:
    """month, revenue, orders, active_customers, new_customers, open_tickets for every month of the trend range."""
    end = _ts(p.as_of + timedelta(days=1))
    return con.execute(f"""
        WITH months AS (
            SELECT unnest(generate_series($m0, $m1, INTERVAL 1 MONTH)) AS month),
        o AS (
            SELECT date_trunc('month', ordered_at) AS month, sum(amount) AS revenue,
                   count(*) FILTER (NOT {IS_RETURN}) AS orders,
                   count(DISTINCT customer_id) FILTER (NOT {IS_RETURN}) AS active_customers
            FROM orders WHERE ordered_at >= $start AND ordered_at < $end GROUP BY 1),
        first AS (SELECT customer_id, min(ordered_at) AS first_at FROM orders
                  WHERE customer_id IS NOT NULL GROUP BY customer_id),
        a AS (SELECT c.customer_id, coalesce(c.signup_date, f.first_at::DATE) AS acquired_on
              FROM customers c LEFT JOIN first f ON c.customer_id = f.customer_id),
        n AS (SELECT date_trunc('month', acquired_on) AS month, count(DISTINCT customer_id) AS new_customers
              FROM a WHERE acquired_on >= $start_day AND acquired_on <= $end_day GROUP BY 1),
        t AS (SELECT date_trunc('month', created_at) AS created_month,
                     date_trunc('month', CASE WHEN resolved_at < $end THEN resolved_at END) AS resolved_month,
                     count(*) AS n
              FROM support_tickets WHERE created_at < $end GROUP BY ALL),
        open AS (SELECT m.month, sum(t.n) FILTER (t.created_month <= m.month
                                                  AND NOT coalesce(t.resolved_month <= m.month, false)) AS open_tickets
                 FROM months m CROSS JOIN t GROUP BY m.month)
        SELECT m.month::TIMESTAMP AS month, coalesce(o.revenue, 0) AS revenue, coalesce(o.orders, 0) AS orders,
               coalesce(o.active_customers, 0) AS active_customers, coalesce(n.new_customers, 0) AS new_customers,
               coalesce(open.open_tickets, 0) AS open_tickets
        FROM months m LEFT JOIN o ON o.month = m.month LEFT JOIN n ON n.month = m.month
             LEFT JOIN open ON open.month = m.month
        ORDER BY m.month""", {"m0": _ts(p.trend_start.replace(day=1)), "m1": _ts(p.as_of.replace(day=1)),
                              "start": _ts(p.trend_start), "end": end, "start_day": p.trend_start,
                              "end_day": p.as_of}).df()


# --------------------------------------------------------------------------------------------- RFM segments
def _segment_case(r: str, fm: str) -> str:
    whens = " ".join(f"WHEN {r} BETWEEN {s.r_min} AND {s.r_max} AND {fm} BETWEEN {s.fm_min} AND {s.fm_max} "
                     f"THEN {_lit(s.segment)}" for s in SEGMENT_RULES)
    return f"CASE {whens} END"


def segment_summary(con, p) -> pd.DataFrame:
    """One row per segment with customers: segment, customers, revenue, avg_recency_days, avg_frequency,
    avg_monetary (RFM on 5 bins as of ``p.as_of``)."""
    return con.execute(f"""
        WITH per AS (
            SELECT customer_id,
                   max(ordered_at) FILTER (NOT {IS_RETURN}) AS last_purchase_at,
                   count(*) FILTER (NOT {IS_RETURN}) AS frequency,
                   sum(coalesce(amount, 0)) AS monetary
            FROM orders WHERE customer_id IS NOT NULL AND ordered_at < $end
            GROUP BY customer_id HAVING count(*) FILTER (NOT {IS_RETURN}) > 0),
        scored AS (
            SELECT *, least(5, floor(percent_rank() OVER (ORDER BY recency_days DESC) * 5)::BIGINT + 1) AS r_score,
                      least(5, floor(percent_rank() OVER (ORDER BY frequency) * 5)::BIGINT + 1) AS f_score,
                      least(5, floor(percent_rank() OVER (ORDER BY round(monetary, 6)) * 5)::BIGINT + 1) AS m_score
            FROM (SELECT *, ($as_of::DATE - last_purchase_at::DATE) AS recency_days FROM per)),
        seg AS (
            SELECT *, {_segment_case('r_score', 'floor((f_score + m_score) / 2)')} AS segment FROM scored)
        SELECT segment, count(*) AS customers, sum(monetary) AS revenue, avg(recency_days) AS avg_recency_days,
               avg(frequency) AS avg_frequency, avg(monetary) AS avg_monetary
        FROM seg GROUP BY segment ORDER BY segment""",
                       {"end": _ts(p.as_of + timedelta(days=1)), "as_of": p.as_of}).df()


# --------------------------------------------------------------------------------------------- customer value
def _cost_case(expr: str, costs: dict[str, float], default: float) -> str:
    whens = " ".join(f"WHEN {_lit(k)} THEN {float(v)!r}" for k, v in sorted(costs.items()))
    return f"CASE lower(trim({expr})) {whens} ELSE {float(default)!r} END"


def customer_value(con, p) -> pd.DataFrame:
    """One row per customer with an order, ticket or campaign contact up to ``p.as_of`` (all history, default cost
    rates, shipping from shipments): the per-customer value columns, by customer_id."""
    r = CostRates()
    return con.execute(f"""
        WITH o AS (
            SELECT order_id, customer_id, coalesce(amount, 0) AS amount, NOT {IS_RETURN} AS is_purchase
            FROM orders WHERE customer_id IS NOT NULL AND ordered_at < $end),
        lines AS (
            SELECT i.order_id,
                   sum(coalesce(i.quantity, 0) * (coalesce(i.unit_price, 0) - pr.unit_cost))
                       FILTER (pr.unit_cost IS NOT NULL) AS known_margin,
                   sum(coalesce(i.quantity, 0) * coalesce(i.unit_price, 0))
                       FILTER (pr.unit_cost IS NULL) AS estimated_line_revenue,
                   count(*) FILTER (pr.unit_cost IS NULL) AS n_estimated_lines
            FROM order_items i LEFT JOIN products pr ON i.product_id = pr.product_id
            WHERE i.order_id IN (SELECT order_id FROM o)
            GROUP BY i.order_id),
        m AS (
            SELECT o.customer_id, o.amount, o.is_purchase,
                   CASE WHEN l.n_estimated_lines IS NOT NULL THEN coalesce(l.estimated_line_revenue, 0)
                        ELSE o.amount END AS estimated_revenue,
                   coalesce(l.known_margin, 0) AS known_margin,
                   CASE WHEN l.n_estimated_lines IS NOT NULL THEN l.n_estimated_lines ELSE 1 END AS n_estimated
            FROM o LEFT JOIN lines l ON o.order_id = l.order_id),
        parts AS (
            SELECT customer_id, amount AS revenue, is_purchase::BIGINT AS orders,
                   known_margin + estimated_revenue * {r.default_margin_rate!r} AS gross_margin,
                   estimated_revenue AS estimated_margin_revenue, n_estimated,
                   0 AS tickets, 0.0 AS ticket_cost, 0.0 AS shipping_cost, 0 AS contacts, 0.0 AS campaign_cost
            FROM m
            UNION ALL
            SELECT customer_id, 0, 0, 0, 0, 0, 1,
                   {_cost_case('channel', r.ticket_cost_by_channel, r.default_ticket_cost)}, 0, 0, 0
            FROM support_tickets WHERE customer_id IS NOT NULL AND created_at < $end
            UNION ALL
            SELECT o.customer_id, 0, 0, 0, 0, 0, 0, 0, coalesce(s.shipping_cost, {r.default_shipping_cost!r}), 0, 0
            FROM shipments s JOIN o ON s.order_id = o.order_id
            UNION ALL
            SELECT cc.customer_id, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                   coalesce(cc.contact_cost,
                            CASE WHEN coalesce(cc.is_sent,
                                               NOT (coalesce(lower(trim(cc.contact_group)), '') = 'control'))
                                 THEN {_cost_case("coalesce(ca.channel, '')", r.contact_cost_by_channel,
                                                  r.default_contact_cost)}
                                 ELSE 0.0 END)
            FROM campaign_contacts cc LEFT JOIN campaigns ca ON cc.campaign_id = ca.campaign_id
            WHERE cc.customer_id IS NOT NULL AND coalesce(cc.contacted_at, ca.start_date::TIMESTAMP) < $end),
        per AS (
            SELECT customer_id, sum(revenue) AS revenue, sum(orders) AS orders, sum(gross_margin) AS gross_margin,
                   sum(estimated_margin_revenue) AS estimated_margin_revenue, sum(tickets) AS tickets,
                   sum(ticket_cost) AS ticket_cost, sum(shipping_cost) AS shipping_cost, sum(contacts) AS contacts,
                   sum(campaign_cost) AS campaign_cost
            FROM parts GROUP BY customer_id),
        window_revenue AS (SELECT customer_id, sum(amount) AS revenue FROM o GROUP BY customer_id),
        referrals AS (
            SELECT c.referred_by AS referrer_id, count(*) AS referred_customers,
                   sum(coalesce(w.revenue, 0)) AS referred_revenue
            FROM customers c LEFT JOIN window_revenue w ON c.customer_id = w.customer_id
            WHERE c.referred_by IS NOT NULL AND (c.signup_date IS NULL OR c.signup_date <= $as_of)
            GROUP BY c.referred_by)
        SELECT per.customer_id, revenue, orders, gross_margin, estimated_margin_revenue, tickets, ticket_cost,
               shipping_cost, contacts, campaign_cost,
               gross_margin - (ticket_cost + shipping_cost + campaign_cost) AS profit,
               coalesce(referred_customers, 0) AS referred_customers,
               coalesce(referred_revenue, 0) AS referred_revenue
        FROM per LEFT JOIN referrals ON per.customer_id = referrals.referrer_id
        ORDER BY per.customer_id""", {"end": _ts(p.as_of + timedelta(days=1)), "as_of": p.as_of}).df()


# --------------------------------------------------------------------------------------------- cohorts
def cohort_retention(con, p) -> pd.DataFrame:
    """cohort_month, months_since, cohort_size, active_customers, retention_rate (acquisition months from the month
    of ``p.cohort_start``, offsets 0..``p.months``, up to the month of ``p.as_of``)."""
    as_of_index = p.as_of.year * 12 + p.as_of.month
    return con.execute(f"""
        WITH first AS (SELECT customer_id, min(ordered_at) AS first_at FROM orders
                       WHERE customer_id IS NOT NULL GROUP BY customer_id),
        a AS (SELECT c.customer_id, coalesce(c.signup_date, f.first_at::DATE) AS acquired_on
              FROM customers c LEFT JOIN first f ON c.customer_id = f.customer_id),
        cohort AS (SELECT customer_id, date_trunc('month', acquired_on) AS cohort_month,
                          year(acquired_on) * 12 + month(acquired_on) AS cohort_index
                   FROM a WHERE acquired_on IS NOT NULL AND acquired_on <= $as_of AND acquired_on >= $first_month),
        sizes AS (SELECT cohort_month, cohort_index, count(DISTINCT customer_id) AS cohort_size
                  FROM cohort GROUP BY ALL),
        bought AS (SELECT c.cohort_month,
                          year(o.ordered_at) * 12 + month(o.ordered_at) - c.cohort_index AS months_since,
                          count(DISTINCT o.customer_id) AS active_customers
                   FROM orders o JOIN cohort c ON o.customer_id = c.customer_id
                   WHERE NOT {IS_RETURN} AND o.ordered_at < $end
                   GROUP BY 1, 2 HAVING months_since BETWEEN 0 AND $months)
        SELECT s.cohort_month::TIMESTAMP AS cohort_month, r.months_since, s.cohort_size,
               coalesce(b.active_customers, 0) AS active_customers,
               coalesce(b.active_customers, 0) / s.cohort_size AS retention_rate
        FROM sizes s CROSS JOIN (SELECT range AS months_since FROM range(0, $months + 1)) r
             LEFT JOIN bought b ON b.cohort_month = s.cohort_month AND b.months_since = r.months_since
        WHERE s.cohort_index + r.months_since <= {as_of_index}
        ORDER BY 1, 2""", {"as_of": p.as_of, "first_month": p.cohort_start.replace(day=1), "months": p.months,
                           "end": _ts(p.as_of + timedelta(days=1))}).df()


# --------------------------------------------------------------------------------------------- campaigns
def campaign_summary(con, p) -> pd.DataFrame:
    """One row per campaign: contacts, treated and control contacts, funnel counts, window buyers, attributed and
    window revenue, revenue (attributed when any, else window) and cost (``p.window`` days after each contact)."""
    controls = ", ".join(_lit(g) for g in CONTROL_GROUPS)
    flags = ",\n".join(f"sum(is_{s}::BIGINT) FILTER (NOT is_control AND is_{s} IS NOT NULL) AS {s}"
                       for s in ("sent", "opened", "clicked", "responded", "converted"))
    return con.execute(f"""
        WITH c AS (
            SELECT cc.*, coalesce(lower(trim(cc.contact_group)) IN ({controls}), false) AS is_control,
                   coalesce(cc.contacted_at, ca.start_date::TIMESTAMP) AS touched_at
            FROM campaign_contacts cc LEFT JOIN campaigns ca ON cc.campaign_id = ca.campaign_id),
        p AS (
            SELECT customer_id, ordered_at, coalesce(amount, 0) AS amount FROM orders
            WHERE customer_id IS NOT NULL AND ordered_at IS NOT NULL AND NOT {IS_RETURN}),
        w AS (
            SELECT c.campaign_id, c.customer_id, sum(p.amount) AS window_revenue
            FROM c JOIN p ON c.customer_id = p.customer_id AND p.ordered_at > c.touched_at
                         AND p.ordered_at <= c.touched_at + to_days($window)
            GROUP BY ALL),
        f AS (
            SELECT c.*, coalesce(w.window_revenue, 0) AS window_revenue, w.window_revenue IS NOT NULL AS has_buy
            FROM c LEFT JOIN w ON c.campaign_id = w.campaign_id AND c.customer_id = w.customer_id),
        per AS (
            SELECT campaign_id, count(*) AS contacts, sum((NOT is_control)::BIGINT) AS treatment_contacts,
                   sum(is_control::BIGINT) AS control_contacts,
                   {flags},
                   sum(has_buy::BIGINT) FILTER (NOT is_control) AS window_buyers,
                   sum(attributed_revenue) FILTER (NOT is_control) AS attributed_revenue,
                   sum(window_revenue) FILTER (NOT is_control) AS window_revenue,
                   sum(contact_cost) AS contact_cost_total
            FROM f GROUP BY campaign_id),
        ids AS (SELECT campaign_id FROM campaigns UNION SELECT campaign_id FROM per)
        SELECT ids.campaign_id, coalesce(contacts, 0) AS contacts,
               coalesce(treatment_contacts, 0) AS treatment_contacts,
               coalesce(control_contacts, 0) AS control_contacts, sent, opened, clicked, responded, converted,
               coalesce(window_buyers, 0) AS window_buyers, attributed_revenue,
               coalesce(per.window_revenue, 0) AS window_revenue,
               CASE WHEN attributed_revenue IS NOT NULL THEN attributed_revenue
                    ELSE coalesce(per.window_revenue, 0) END AS revenue,
               coalesce(ca.cost, contact_cost_total) AS cost
        FROM ids LEFT JOIN campaigns ca ON ids.campaign_id = ca.campaign_id
                 LEFT JOIN per ON ids.campaign_id = per.campaign_id
        ORDER BY ids.campaign_id""", {"window": p.window}).df()


# --------------------------------------------------------------------------------------------- support tickets
def _position(ts: str) -> str:
    """Wall-clock hours from 1900-01-01 to ``ts`` (crm_core.support's clock without business hours)."""
    return (f"(({ts})::DATE - DATE '1900-01-01') * 24.0 + (hour({ts}) + minute({ts}) / 60.0"
            f" + second({ts}) / 3600.0)")


def ticket_trend(con, p) -> pd.DataFrame:
    """One row per month with tickets created from ``p.period_start`` to ``p.as_of``: month, tickets,
    first_response_breach_rate, breach_rate, median_first_response_hours, csat_mean, complaints, compliments."""
    policy = SlaPolicy()
    levels = ", ".join(_lit(k) for k in policy.first_response_hours)

    def target(targets: dict[str, float]) -> str:
        return "CASE level " + " ".join(f"WHEN {_lit(k)} THEN {float(v)!r}" for k, v in targets.items()) + " END"

    end = _ts(p.as_of + timedelta(days=1))
    end_position = ((p.as_of + timedelta(days=1)) - datetime(1900, 1, 1).date()).days * 24.0
    return con.execute(f"""
        WITH t AS (
            SELECT *, CASE WHEN lower(trim(priority)) IN ({levels}) THEN lower(trim(priority))
                           ELSE {_lit(policy.default_priority)} END AS level
            FROM support_tickets WHERE created_at < $end AND created_at >= $start),
        pos AS (
            SELECT created_at, csat, category, {target(policy.first_response_hours)} AS fr_target,
                   {target(policy.resolution_hours)} AS res_target,
                   {_position('created_at')} AS created,
                   CASE WHEN first_response_at < $end THEN {_position('first_response_at')} END AS answered,
                   CASE WHEN resolved_at < $end THEN {_position('resolved_at')} END AS resolved
            FROM t),
        f AS (
            SELECT created_at, csat, category, answered - created AS first_response_hours,
                   resolved - created AS resolution_hours,
                   coalesce(coalesce(answered, {end_position!r}) - created > fr_target, false) AS fr_breached,
                   coalesce(coalesce(resolved, {end_position!r}) - created > res_target, false) AS res_breached
            FROM pos)
        SELECT date_trunc('month', created_at)::TIMESTAMP AS month, count(*) AS tickets,
               count(*) FILTER (fr_breached)
                   / nullif(count(*) FILTER (first_response_hours IS NOT NULL OR fr_breached), 0)
                   AS first_response_breach_rate,
               count(*) FILTER (fr_breached OR res_breached)
                   / nullif(count(*) FILTER (fr_breached OR res_breached
                                             OR ((first_response_hours IS NOT NULL OR fr_breached)
                                                 AND (resolution_hours IS NOT NULL OR res_breached))), 0)
                   AS breach_rate,
               quantile_cont(first_response_hours, 0.5) AS median_first_response_hours,
               avg(csat::DOUBLE) AS csat_mean,
               count(*) FILTER (coalesce(contains(lower(category), 'complaint'), false)) AS complaints,
               count(*) FILTER (coalesce(contains(lower(category), 'compliment'), false)) AS compliments
        FROM f GROUP BY 1 ORDER BY 1""", {"end": end, "start": _ts(p.period_start)}).df()


# --------------------------------------------------------------------------------------------- fulfilment
def fulfilment_by_carrier(con, p) -> pd.DataFrame:
    """One row per carrier for the shipments of orders placed from ``p.period_start`` to ``p.as_of``: shipments,
    delivered, on_time, late, overdue, avg_days_late and the lead-time quantiles."""
    return con.execute("""
        WITH j AS (
            SELECT s.carrier, s.promised_date, o.ordered_at, coalesce(o.ordered_at, s.shipped_at) AS dated_at,
                   CASE WHEN s.shipped_at < $end THEN s.shipped_at END AS shipped_at,
                   CASE WHEN s.delivered_at < $end THEN s.delivered_at END AS delivered_at
            FROM shipments s LEFT JOIN orders o ON s.order_id = o.order_id),
        f AS (
            SELECT *, delivered_at::DATE - promised_date AS days
            FROM j WHERE dated_at < $end AND dated_at >= $start)
        SELECT coalesce(carrier, 'Unknown') AS carrier, count(*) AS shipments,
               count(delivered_at) AS delivered,
               count(*) FILTER (days <= 0) AS on_time,
               count(*) FILTER (days > 0) AS late,
               count(*) FILTER (delivered_at IS NULL AND promised_date < $as_of) AS overdue,
               avg(days) FILTER (days > 0) AS avg_days_late,
               quantile_cont((epoch(shipped_at) - epoch(ordered_at)) / 3600, 0.5) AS median_order_to_ship_hours,
               quantile_cont((epoch(shipped_at) - epoch(ordered_at)) / 3600, 0.9) AS p90_order_to_ship_hours,
               quantile_cont((epoch(delivered_at) - epoch(shipped_at)) / 86400, 0.5) AS median_ship_to_deliver_days,
               quantile_cont((epoch(delivered_at) - epoch(shipped_at)) / 86400, 0.9) AS p90_ship_to_deliver_days
        FROM f GROUP BY 1 ORDER BY 1""", {"end": _ts(p.as_of + timedelta(days=1)), "start": _ts(p.period_start),
                                          "as_of": p.as_of}).df()
