"""Cross-sell: market-basket rules from order lines, and the next-best products for each customer.

Definitions:

- A **basket** is a purchase (an order that is not a return: ``is_return`` true or a negative ``amount``, as in
  :mod:`crm_core.metrics`) with at least one line of positive quantity. Its **items** are its products (level
  ``"product"``) or their categories (level ``"category"``, from ``products.category``; lines whose product has no
  category are left out). A basket counts once per item, even when the item is on several lines.
- For items A and B among N baskets: ``support`` = baskets with both ÷ N; ``confidence`` (A → B) = baskets with
  both ÷ baskets with A; ``lift`` = confidence ÷ (baskets with B ÷ N) = N × both ÷ (A × B). A lift above 1 means
  B is in baskets with A more often than in baskets at large. Every pair gives two rules, A → B and B → A (same
  support and lift, different confidence).
- Rules are kept when support ≥ ``min_support`` and confidence ≥ ``min_confidence``; they are ordered by lift, then
  confidence, support, antecedent and consequent, and cut at ``max_rules``.
- **Filters.** ``start``/``end`` keep baskets ordered on those calendar days (inclusive); ``regions`` and RFM
  ``segments`` (as of ``end``, else the latest order date) keep baskets of those customers only. Anonymous orders
  count while no region or segment is chosen.
- **Next-best products.** For each customer with a basket in view, the candidates are the consequents of rules
  with lift > 1 (after the support and confidence thresholds, before ``max_rules``) whose antecedent the customer
  has bought and whose consequent they have not (bought = in any of their baskets up to ``end``, whatever
  ``start``). A candidate's ``score`` is lift × confidence of its best rule (the largest over the antecedents the
  customer bought); the top ``k`` per customer are kept, ties broken by confidence, then item id.
  Lift × confidence = P(B | A)² ÷ P(B): confidence alone favours best sellers the customer would meet anyway
  (lift near 1), lift alone favours rare items bought together in a handful of baskets; the product needs both.

Everything is Ibis expressions (a self-join of the basket items on order_id with item_a < item_b, counted per
pair), so it runs in the engine; only the rules and recommendations reach pandas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from crm_core.metrics import Filters, _customer_scope, _is_return, data_as_of

__all__ = [
    "LEVELS",
    "NEXT_BEST_HELP",
    "NEXT_BEST_LABELS",
    "RULE_HELP",
    "RULE_LABELS",
    "BasketRules",
    "association_rules",
    "association_rules_expr",
    "basket_items_expr",
    "next_best_products",
    "next_best_products_expr",
]

LEVELS: tuple[str, ...] = ("product", "category")
DEFAULT_MIN_SUPPORT = 0.001
DEFAULT_MIN_CONFIDENCE = 0.05
DEFAULT_MAX_RULES = 50

RULE_LABELS: dict[str, str] = {
    "antecedent": "If the basket has",
    "antecedent_name": "If the basket has (name)",
    "consequent": "It also has",
    "consequent_name": "It also has (name)",
    "baskets_with_both": "Baskets with both",
    "baskets_with_antecedent": "Baskets with the first",
    "baskets_with_consequent": "Baskets with the second",
    "support": "Support",
    "confidence": "Confidence",
    "lift": "Lift",
}

RULE_HELP: dict[str, str] = {
    "support": "Share of all baskets that hold both items.",
    "confidence": "Of the baskets with the first item, the share that also hold the second.",
    "lift": (
        "Confidence ÷ the share of all baskets with the second item: how many times more often the second item is "
        "bought with the first than in any basket (1 = no link)."
    ),
    "baskets_with_both": "Purchases (not returns) holding both items; an order counts once per item.",
    "n_baskets": "Purchases (not returns) with at least one item, in the period and customers in view.",
}

NEXT_BEST_LABELS: dict[str, str] = {
    "customer_id": "Customer",
    "rank": "Rank",
    "recommended": "Offer",
    "recommended_name": "Offer (name)",
    "because_bought": "Because they bought",
    "because_bought_name": "Because they bought (name)",
    "confidence": RULE_LABELS["confidence"],
    "lift": RULE_LABELS["lift"],
    "score": "Score (lift × confidence)",
}

NEXT_BEST_HELP: dict[str, str] = {
    "recommended": "An item the customer has not bought, the consequent of a rule whose first item they bought.",
    "because_bought": "The item they bought whose rule recommends the offer most strongly.",
    "score": (
        "Lift × confidence of that rule: high when the offer is both likely (confidence) and linked to what they "
        "bought (lift)."
    ),
}


@dataclass(frozen=True, eq=False)  # eq=False: a frame inside; compare by fields
class BasketRules:
    """Association rules at one ``level``: ``n_baskets`` baskets in view, the thresholds used, and ``rules``
    (one row per rule, best first; columns as in ``RULE_LABELS``)."""

    level: str
    n_baskets: int
    min_support: float
    min_confidence: float
    rules: pd.DataFrame


# --- expressions ----------------------------------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time())


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise ValueError(f"Unknown basket level {level!r}; choose from {list(LEVELS)}")
    return level


def basket_items_expr(tables: Mapping[str, ir.Table], level: str = "product", *, start: date | None = None,
                      end: date | None = None, scope: ir.Table | None = None) -> ir.Table:
    """One row per (basket, item): order_id, customer_id, item (a product_id, or a category at level
    ``"category"``), for purchases ordered from ``start`` to ``end`` (inclusive, either open) by customers in
    ``scope`` (a table with customer_id; all orders when None)."""
    level = _check_level(level)
    orders, lines = tables["orders"], tables["order_items"]
    o = orders.filter(~_is_return(orders))
    if start is not None:
        o = o.filter(o.ordered_at >= _day_start(start))
    if end is not None:
        o = o.filter(o.ordered_at < _day_start(end + timedelta(days=1)))
    if scope is not None:
        o = o.filter(o.customer_id.isin(scope.customer_id))
    lines = lines.filter(lines.quantity > 0, lines.product_id.notnull())
    if level == "category":
        p = tables["products"]
        category = p.category.strip()
        p = p.filter(category.notnull() & (category != "")).select(_product_id=p.product_id, item=category)
        lines = lines.join(p, lines.product_id == p._product_id).select("order_id", "item")
    else:
        lines = lines.select("order_id", item=lines.product_id)
    o = o.select(_order_id=o.order_id, customer_id=o.customer_id)
    joined = lines.join(o, lines.order_id == o._order_id)
    return joined.select("order_id", "customer_id", "item").distinct()


def _pair_counts(baskets: ir.Table) -> ir.Table:
    """One row per pair of items bought together (item_a < item_b): item_a, item_b, baskets_with_both."""
    a = baskets.select(_order_a=baskets.order_id, item_a=baskets.item)
    b = baskets.select(_order_b=baskets.order_id, item_b=baskets.item)
    pairs = a.join(b, (a._order_a == b._order_b) & (a.item_a < b.item_b))
    return pairs.group_by(["item_a", "item_b"]).aggregate(baskets_with_both=pairs.count())


def association_rules_expr(baskets: ir.Table, *, min_support: float = DEFAULT_MIN_SUPPORT,
                           min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                           max_rules: int | None = DEFAULT_MAX_RULES) -> ir.Table:
    """One row per rule antecedent → consequent among ``baskets`` (from :func:`basket_items_expr`), best first:
    antecedent, consequent, baskets_with_both, baskets_with_antecedent, baskets_with_consequent, support,
    confidence, lift (see the module docstring)."""
    _check_thresholds(min_support, min_confidence, max_rules)
    total = baskets.aggregate(_n=baskets.order_id.nunique())
    counts = baskets.group_by("item").aggregate(_count=baskets.count())
    pairs = _pair_counts(baskets).cross_join(total)
    pairs = pairs.filter(pairs.baskets_with_both.cast("float64") >= min_support * pairs._n.cast("float64"))
    forward = pairs.select(antecedent=pairs.item_a, consequent=pairs.item_b,
                           baskets_with_both=pairs.baskets_with_both, _n=pairs._n)
    backward = pairs.select(antecedent=pairs.item_b, consequent=pairs.item_a,
                            baskets_with_both=pairs.baskets_with_both, _n=pairs._n)
    rules = forward.union(backward, distinct=False)
    ca = counts.select(_a=counts.item, baskets_with_antecedent=counts._count)
    cb = counts.select(_b=counts.item, baskets_with_consequent=counts._count)
    rules = rules.join(ca, rules.antecedent == ca._a).join(cb, rules.consequent == cb._b)
    both = rules.baskets_with_both.cast("float64")
    n, with_a = rules._n.cast("float64"), rules.baskets_with_antecedent.cast("float64")
    with_b = rules.baskets_with_consequent.cast("float64")
    rules = rules.select(
        "antecedent", "consequent",
        baskets_with_both=rules.baskets_with_both.cast("int64"),
        baskets_with_antecedent=rules.baskets_with_antecedent.cast("int64"),
        baskets_with_consequent=rules.baskets_with_consequent.cast("int64"),
        support=both / n, confidence=both / with_a, lift=both * n / (with_a * with_b))
    rules = rules.filter(rules.confidence >= min_confidence)
    rules = rules.order_by([ibis.desc("lift"), ibis.desc("confidence"), ibis.desc("support"), "antecedent",
                            "consequent"])
    return rules.limit(max_rules) if max_rules is not None else rules


def next_best_products_expr(history: ir.Table, rules: ir.Table, k: int = 3, *, min_lift: float = 1.0) -> ir.Table:
    """One row per (customer, recommendation), at most ``k`` per customer: customer_id, rank (1 = best),
    recommended, because_bought, confidence, lift, score.

    ``history`` is the customers' baskets (order_id, customer_id, item), ``rules`` an
    :func:`association_rules_expr` (uncut); rules with lift ≤ ``min_lift`` are not used.
    """
    _check_k(k)
    bought = history.filter(history.customer_id.notnull()).select("customer_id", "item").distinct()
    r = rules.filter(rules.lift > min_lift)
    cand = bought.join(r, bought.item == r.antecedent)
    cand = cand.select(customer_id=cand.customer_id, recommended=cand.consequent, because_bought=cand.antecedent,
                       confidence=cand.confidence, lift=cand.lift, score=cand.lift * cand.confidence)
    owned = bought.select(_customer_id=bought.customer_id, _item=bought.item)
    cand = cand.anti_join(owned, (cand.customer_id == owned._customer_id) & (cand.recommended == owned._item))
    best_rule = ibis.row_number().over(group_by=[cand.customer_id, cand.recommended],
                                       order_by=[ibis.desc(cand.score), ibis.desc(cand.confidence),
                                                 cand.because_bought])
    cand = cand.mutate(_best=best_rule)
    cand = cand.filter(cand._best == 0)
    rank = ibis.row_number().over(group_by=cand.customer_id,
                                  order_by=[ibis.desc(cand.score), ibis.desc(cand.confidence), cand.recommended])
    cand = cand.mutate(rank=(rank + 1).cast("int64"))
    cand = cand.filter(cand.rank <= k)
    return cand.select("customer_id", "rank", "recommended", "because_bought", "confidence", "lift", "score")


# --- public functions -----------------------------------------------------------------------------------------


def _check_thresholds(min_support: float, min_confidence: float, max_rules: int | None) -> None:
    if not 0 < min_support <= 1:
        raise ValueError(f"min_support must be a share above 0 and at most 1 (0.001 = 1 basket in 1,000), got "
                         f"{min_support!r}")
    if not 0 <= min_confidence <= 1:
        raise ValueError(f"min_confidence must be a share from 0 to 1, got {min_confidence!r}")
    if max_rules is not None and (isinstance(max_rules, bool) or not isinstance(max_rules, int) or max_rules < 1):
        raise ValueError(f"max_rules must be a whole number of at least 1 (or None for all), got {max_rules!r}")


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a whole number of at least 1, got {k!r}")


def _tables(backend: ibis.BaseBackend, level: str) -> dict[str, ir.Table]:
    present = set(backend.list_tables())
    for name, what in (("orders", "orders"), ("order_items", "order lines (order_items)")):
        if name not in present:
            raise ValueError(f"The database has no {name!r} table; import {what} to see cross-sell rules.")
    tables = {name: backend.table(name) for name in ("customers", "orders", "order_items", "products")
              if name in present}
    if level == "category" and ("products" not in tables or "category" not in tables["products"].columns):
        raise ValueError("Category rules need a products table with a 'category' column; import products or "
                         "choose level 'product'.")
    return tables


def _baskets(backend: ibis.BaseBackend, tables: Mapping[str, ir.Table], level: str, start: date | None,
             end: date | None, regions: tuple[str, ...], segments: tuple[str, ...],
             from_start: bool = True) -> ir.Table:
    scope = None
    if regions or segments:
        if "customers" not in tables:
            raise ValueError("Filtering by region or segment needs a customers table; import customers.")
        as_of = end or data_as_of(backend) or date.today()
        scope = _customer_scope(tables["customers"], tables["orders"], regions, segments, as_of)
    return basket_items_expr(tables, level, start=start if from_start else None, end=end, scope=scope)


def _names(tables: Mapping[str, ir.Table], level: str) -> ir.Table | None:
    """item → name (product_name) at product level when products has names; None otherwise."""
    if level != "product" or "products" not in tables or "product_name" not in tables["products"].columns:
        return None
    p = tables["products"]
    return p.select(_item=p.product_id, _name=p.product_name)


def _with_names(expr: ir.Table, names: ir.Table | None, columns: tuple[str, ...]) -> ir.Table:
    """``expr`` with ``<column>_name`` after each of ``columns`` (the item itself when there is no name)."""
    for column in columns:
        if names is None:
            expr = expr.mutate(**{f"{column}_name": expr[column]})
            continue
        n = names.select(**{f"_k_{column}": names._item, f"_n_{column}": names._name})
        expr = expr.left_join(n, expr[column] == n[f"_k_{column}"])
        expr = expr.mutate(**{f"{column}_name": ibis.coalesce(expr[f"_n_{column}"], expr[column])})
        expr = expr.drop(f"_k_{column}", f"_n_{column}")
    return expr


def association_rules(
    backend: ibis.BaseBackend,
    *,
    level: str = "product",
    min_support: float = DEFAULT_MIN_SUPPORT,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    max_rules: int | None = DEFAULT_MAX_RULES,
    start: date | None = None,
    end: date | None = None,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
) -> BasketRules:
    """One row per association rule at ``level`` ("product" or "category"), best first (see the module docstring),
    with the number of baskets it was mined from; computed in the engine."""
    level = _check_level(level)
    _check_thresholds(min_support, min_confidence, max_rules)
    chosen = Filters(start=start, end=end, regions=regions, segments=segments)
    tables = _tables(backend, level)
    baskets = _baskets(backend, tables, level, chosen.start, chosen.end, chosen.regions, chosen.segments)
    rules = association_rules_expr(baskets, min_support=min_support, min_confidence=min_confidence,
                                   max_rules=max_rules)
    rules = _with_names(rules, _names(tables, level), ("antecedent", "consequent"))
    rules = rules.order_by([ibis.desc("lift"), ibis.desc("confidence"), ibis.desc("support"), "antecedent",
                            "consequent"])
    frame = backend.execute(rules.select(*RULE_LABELS)).reset_index(drop=True)
    n = backend.execute(baskets.order_id.nunique())
    return BasketRules(level=level, n_baskets=0 if pd.isna(n) else int(n), min_support=min_support,
                       min_confidence=min_confidence, rules=frame)


def next_best_products(
    backend: ibis.BaseBackend,
    *,
    k: int = 3,
    level: str = "product",
    min_support: float = DEFAULT_MIN_SUPPORT,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    min_lift: float = 1.0,
    start: date | None = None,
    end: date | None = None,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
    customer_ids: Iterable[str] | None = None,
) -> pd.DataFrame:
    """One row per (customer, recommendation), at most ``k`` per customer, ordered by customer_id and rank:
    customer_id, rank, recommended, recommended_name, because_bought, because_bought_name, confidence, lift, score.

    Rules come from the baskets in view (period, regions, segments); only rules with lift above ``min_lift`` are
    used; what a customer has bought is read from all their baskets up to ``end``. ``customer_ids`` narrows the
    output to those customers.
    """
    level = _check_level(level)
    _check_k(k)
    _check_thresholds(min_support, min_confidence, None)
    chosen = Filters(start=start, end=end, regions=regions, segments=segments)
    tables = _tables(backend, level)
    baskets = _baskets(backend, tables, level, chosen.start, chosen.end, chosen.regions, chosen.segments)
    history = _baskets(backend, tables, level, chosen.start, chosen.end, chosen.regions, chosen.segments,
                       from_start=False)
    if customer_ids is not None:
        wanted = [str(c) for c in customer_ids]
        history = history.filter(history.customer_id.isin(wanted))
    rules = association_rules_expr(baskets, min_support=min_support, min_confidence=min_confidence, max_rules=None)
    best = _with_names(next_best_products_expr(history, rules, k, min_lift=min_lift), _names(tables, level),
                       ("recommended", "because_bought"))
    best = best.order_by(["customer_id", "rank"])
    return backend.execute(best.select(*NEXT_BEST_LABELS)).reset_index(drop=True)
