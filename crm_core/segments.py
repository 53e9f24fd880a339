"""RFM: recency, frequency and monetary value per customer as of a date, scored 1-5, with named segments.

Definitions (as of the end of day ``as_of``; only orders on or before it count):

- ``recency_days``: days from the customer's last purchase (a non-return order) to ``as_of``;
- ``frequency``: number of purchases (returns are not purchases);
- ``monetary``: net revenue of the customer, returns subtracted (may be zero or negative);
- scores 1-5 by quantile: ``score = 1 + floor(bins * percent_rank)``, capped at ``bins``, where the rank orders
  customers from worst to best (long ago → recent, few → many, little → much). Ties share a score, so when 40% of
  customers bought once they all get frequency score 1; ``customer_id`` is never used to break a tie. Spend is
  ranked rounded to 1e-6: a sum of amounts depends on the order the engine adds them in (its last bits differ
  between runs on several threads), and two customers who spent the same must tie on every run and engine.
- the segment is read from ``SEGMENT_RULES`` (data, not branches) by the recency score and the FM score, the
  floor of the mean of the frequency and monetary scores — the usual R × FM grid.

Customers without a purchase by ``as_of`` have no RFM row. All of it is one Ibis expression, so it runs in the
engine (DuckDB, PostgreSQL, Spark) and only the result is pulled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

__all__ = ["AT_RISK_SEGMENTS", "NOT_YET_CUSTOMER", "SEGMENTS", "SEGMENT_DESCRIPTIONS", "SEGMENT_RULES",
           "SUMMARY_HELP", "SegmentRule", "migration", "migration_customers", "revenue_share_at_risk", "rfm",
           "rfm_expr", "segment_of_customers_expr", "segment_summary"]


@dataclass(frozen=True)
class SegmentRule:
    """A segment covers recency scores ``r_min..r_max`` and FM scores ``fm_min..fm_max`` (inclusive)."""

    segment: str
    r_min: int
    r_max: int
    fm_min: int
    fm_max: int
    description: str


# The R × FM grid on 5 bins; every one of the 25 cells belongs to exactly one rule (a test checks it):
#
#   R \ FM   1               2                  3                  4                 5
#   5        New             Potential loyal.   Potential loyal.   Champions         Champions
#   4        Promising       Potential loyal.   Potential loyal.   Loyal             Champions
#   3        About to sleep  Need attention     Need attention     Loyal             Loyal
#   2        Hibernating     Hibernating        At risk            At risk           Can't lose them
#   1        Lost            Lost               At risk            Can't lose them   Can't lose them
_D = {
    "Champions": "Bought recently, buy often and spend the most.",
    "Loyal": "Buy regularly and spend well; responsive to loyalty offers.",
    "Potential loyalists": "Recent customers with average frequency and spend.",
    "New": "Bought for the first time very recently.",
    "Promising": "Recent buyers of little value so far.",
    "Need attention": "Average on all three; slipping without a reason to come back.",
    "About to sleep": "Below average recency, frequency and spend.",
    "At risk": "Spent well and often, but long ago.",
    "Can't lose them": "Were among the best customers; have not come back for a long time.",
    "Hibernating": "Last purchase long ago, few orders, low spend.",
    "Lost": "Lowest recency, frequency and spend.",
}
_GRID = (
    ("Champions", 5, 5, 4, 5), ("Champions", 4, 4, 5, 5),
    ("Loyal", 4, 4, 4, 4), ("Loyal", 3, 3, 4, 5),
    ("Potential loyalists", 4, 5, 2, 3),
    ("New", 5, 5, 1, 1),
    ("Promising", 4, 4, 1, 1),
    ("Need attention", 3, 3, 2, 3),
    ("About to sleep", 3, 3, 1, 1),
    ("At risk", 2, 2, 3, 4), ("At risk", 1, 1, 3, 3),
    ("Can't lose them", 2, 2, 5, 5), ("Can't lose them", 1, 1, 4, 5),
    ("Hibernating", 2, 2, 1, 2),
    ("Lost", 1, 1, 1, 2),
)
SEGMENT_RULES: tuple[SegmentRule, ...] = tuple(SegmentRule(n, a, b, c, d, _D[n]) for n, a, b, c, d in _GRID)
SEGMENTS: tuple[str, ...] = tuple(_D)
SEGMENT_DESCRIPTIONS: dict[str, str] = dict(_D)


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time())


def _score(value: ir.NumericValue, bins: int, descending: bool = False) -> ir.IntegerValue:
    order = ibis.desc(value) if descending else ibis.asc(value)
    rank = ibis.percent_rank().over(order_by=order)
    return ibis.least(bins, (rank * bins).floor().cast("int64") + 1)


def rfm_expr(orders: ir.Table, as_of: date, bins: int = 5) -> ir.Table:
    """One row per customer with a purchase by ``as_of``: customer_id, last_purchase_at, recency_days, frequency,
    monetary, r_score, f_score, m_score, fm_score, segment."""
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    known = orders.filter(orders.customer_id.notnull() & (orders.ordered_at < _end_of(as_of)))
    is_return = known.amount.fill_null(0) < 0
    if "is_return" in known.columns:
        is_return = is_return | known.is_return.fill_null(False)
    known = known.mutate(_purchase=~is_return)
    per = known.group_by("customer_id").aggregate(
        last_purchase_at=known.ordered_at.max(where=known._purchase),
        frequency=known._purchase.sum().cast("int64"),
        monetary=known.amount.fill_null(0).sum(),
    )
    per = per.filter(per.frequency > 0)
    as_of_ts = ibis.literal(datetime.combine(as_of, time()))
    per = per.mutate(recency_days=(as_of_ts.date() - per.last_purchase_at.date()).cast("int64"))
    # recency: a long time since the last purchase ranks first (worst)
    per = per.mutate(r_score=_score(per.recency_days, bins, descending=True), f_score=_score(per.frequency, bins),
                     m_score=_score(per.monetary.round(6), bins))
    per = per.mutate(fm_score=((per.f_score + per.m_score) / 2).floor().cast("int64"))
    r_grid, fm_grid = _grid(per.r_score, bins), _grid(per.fm_score, bins)
    segment = ibis.cases(*[(r_grid.between(r.r_min, r.r_max) & fm_grid.between(r.fm_min, r.fm_max), r.segment)
                           for r in SEGMENT_RULES])
    return per.mutate(segment=segment).select(
        "customer_id", "last_purchase_at", "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score",
        "fm_score", "segment")


def _grid(score: ir.IntegerValue, bins: int) -> ir.IntegerValue:
    """A 1..bins score on the 1..5 grid of ``SEGMENT_RULES``: ceil(score * 5 / bins) (identity for 5 bins)."""
    if bins == 5:
        return score
    return (score * 5 / bins).ceil().cast("int64")


def segment_of_customers_expr(orders: ir.Table, as_of: date, segments: tuple[str, ...]) -> ir.Table:
    """customer_id of the customers whose RFM segment as of ``as_of`` is one of ``segments``."""
    unknown = [s for s in segments if s not in SEGMENTS]
    if unknown:
        raise ValueError(f"Unknown segment(s) {unknown}; choose from {list(SEGMENTS)}")
    r = rfm_expr(orders, as_of)
    return r.filter(r.segment.isin(segments)).select("customer_id")


def _in_regions(backend, expr: ir.Table, regions: tuple[str, ...]) -> ir.Table:
    """``expr`` (with a customer_id) restricted to customers whose region is one of ``regions``; all when empty."""
    if not regions:
        return expr
    customers = backend.table("customers")
    if "region" not in customers.columns:
        raise ValueError("customers has no 'region' column, so it cannot be filtered by region; "
                         "import customers with a region or clear the region filter.")
    chosen = customers.filter(customers.region.isin(regions))
    return expr.filter(expr.customer_id.isin(chosen.customer_id))


def rfm(backend, as_of: date, bins: int = 5, regions: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per customer with a purchase by ``as_of``: :func:`rfm_expr` on ``backend``'s orders, ordered by
    customer_id, optionally only customers of ``regions``."""
    expr = _in_regions(backend, rfm_expr(backend.table("orders"), as_of, bins), regions)
    return backend.execute(expr.order_by("customer_id"))


# --------------------------------------------------------------------------------------------- sizes and moves
SUMMARY_HELP: dict[str, str] = {
    "segment": "RFM segment (recency score × the floor of the mean of the frequency and spend scores).",
    "customers": "Customers in the segment: everyone with a purchase on or before the date.",
    "share_of_customers": "Customers in the segment ÷ all customers with an RFM score.",
    "revenue": "Net revenue of the segment's customers over their whole history up to the date (returns "
               "subtracted): the sum of their RFM monetary values.",
    "share_of_revenue": "Segment revenue ÷ the revenue of all scored customers.",
    "avg_recency_days": "Mean days since the last purchase.",
    "avg_frequency": "Mean number of purchases (returns are not purchases).",
    "avg_monetary": "Mean net revenue per customer.",
}


def segment_summary(backend, as_of: date, bins: int = 5, regions: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per segment (all 11, in ``SEGMENTS`` order, empty ones with zeros): customers, share_of_customers,
    revenue, share_of_revenue, avg_recency_days, avg_frequency, avg_monetary (see ``SUMMARY_HELP``).

    Aggregated in the engine; only the 11 rows are pulled.
    """
    r = _in_regions(backend, rfm_expr(backend.table("orders"), as_of, bins), regions)
    per = r.group_by("segment").aggregate(
        customers=r.count(), revenue=r.monetary.sum(), avg_recency_days=r.recency_days.mean(),
        avg_frequency=r.frequency.mean(), avg_monetary=r.monetary.mean())
    df = backend.execute(per).set_index("segment").reindex(list(SEGMENTS))
    df["customers"] = df["customers"].fillna(0).astype("int64")
    df["revenue"] = df["revenue"].fillna(0.0)
    n, revenue = df["customers"].sum(), df["revenue"].sum()
    df["share_of_customers"] = df["customers"] / n if n else 0.0
    df["share_of_revenue"] = df["revenue"] / revenue if revenue else 0.0
    df = df.rename_axis("segment").reset_index()
    return df[["segment", "customers", "share_of_customers", "revenue", "share_of_revenue", "avg_recency_days",
               "avg_frequency", "avg_monetary"]]


AT_RISK_SEGMENTS: tuple[str, ...] = ("At risk", "Can't lose them")  # good customers who stopped coming


def revenue_share_at_risk(summary: pd.DataFrame) -> float:
    """Share of revenue held by the ``AT_RISK_SEGMENTS`` in a :func:`segment_summary` frame."""
    return float(summary.loc[summary["segment"].isin(AT_RISK_SEGMENTS), "share_of_revenue"].sum())


NOT_YET_CUSTOMER = "Not yet a customer"


def _moves_expr(orders: ir.Table, from_date: date, to_date: date, bins: int) -> ir.Table:
    """One row per customer scored at ``to_date``: customer_id, from_segment (``NOT_YET_CUSTOMER`` when they had
    no purchase by ``from_date``), to_segment, and both dates' recency, frequency and monetary."""
    if from_date >= to_date:
        raise ValueError(f"The first date ({from_date}) must be before the second ({to_date}).")
    before = rfm_expr(orders, from_date, bins).select(
        "customer_id", from_segment="segment", from_recency_days="recency_days", from_frequency="frequency",
        from_monetary="monetary")
    after = rfm_expr(orders, to_date, bins).select(
        "customer_id", to_segment="segment", to_recency_days="recency_days", to_frequency="frequency",
        to_monetary="monetary")
    j = after.left_join(before, "customer_id")
    return j.select(
        customer_id=j.customer_id, from_segment=j.from_segment.fill_null(NOT_YET_CUSTOMER), to_segment=j.to_segment,
        from_recency_days=j.from_recency_days, to_recency_days=j.to_recency_days, from_frequency=j.from_frequency,
        to_frequency=j.to_frequency, from_monetary=j.from_monetary, to_monetary=j.to_monetary)


def migration(backend, from_date: date, to_date: date, bins: int = 5,
              regions: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per (from_segment, to_segment) pair with customers: how customers moved between the RFM segments
    of ``from_date`` and of ``to_date``; customers, share_of_from (of the from-segment's customers) and revenue
    (net revenue between the two dates, returns subtracted).

    Customers with no purchase by ``from_date`` come from ``NOT_YET_CUSTOMER``. Every customer keeps a segment
    once scored (RFM only grows with time), so nobody leaves the table. Rows are in segment order.
    """
    orders = backend.table("orders")
    moves = _in_regions(backend, _moves_expr(orders, from_date, to_date, bins), regions)
    moves = moves.mutate(between=moves.to_monetary - moves.from_monetary.fill_null(0))
    flows = moves.group_by(["from_segment", "to_segment"]).aggregate(customers=moves.count(),
                                                                      revenue=moves.between.sum())
    df = backend.execute(flows)
    order = {s: i for i, s in enumerate((NOT_YET_CUSTOMER, *SEGMENTS))}
    df = df.sort_values(["from_segment", "to_segment"], key=lambda c: c.map(order)).reset_index(drop=True)
    df["share_of_from"] = df["customers"] / df.groupby("from_segment")["customers"].transform("sum")
    return df[["from_segment", "to_segment", "customers", "share_of_from", "revenue"]]


def migration_customers(backend, from_date: date, to_date: date, from_segment: str | None = None,
                        to_segment: str | None = None, bins: int = 5, regions: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per customer who moved from ``from_segment`` to ``to_segment`` (either may be None for any) between
    the two dates, with both dates' recency, frequency and monetary; ordered by spend at ``to_date``, highest
    first — who moved from Loyal to At risk, and how much they are worth."""
    for name in (from_segment, to_segment):
        if name is not None and name not in (NOT_YET_CUSTOMER, *SEGMENTS):
            raise ValueError(f"Unknown segment {name!r}; choose from {[NOT_YET_CUSTOMER, *SEGMENTS]}")
    moves = _in_regions(backend, _moves_expr(backend.table("orders"), from_date, to_date, bins), regions)
    if from_segment is not None:
        moves = moves.filter(moves.from_segment == from_segment)
    if to_segment is not None:
        moves = moves.filter(moves.to_segment == to_segment)
    return backend.execute(moves.order_by([ibis.desc("to_monetary"), "customer_id"]))
