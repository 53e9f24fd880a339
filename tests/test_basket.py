"""Tests for crm_core.basket: association rules and next-best products on a fixture checked on paper, a brute-force
pandas computation of the same rules, the bundled sample, and compilation for PostgreSQL and Spark.

The fixture (``shop``): products P1, P2 (Books), P3 (Garden), P4 (Home), P5 (no category); customers A, C (North)
and B, D (South).

order  customer  ordered_at   lines (product × quantity)        basket items
1      A         2024-01-05   P1 × 1, P2 × 1                    P1 P2
2      A         2024-01-20   P1 × 1, P3 × 2                    P1 P3
3      B         2024-02-01   P1 × 1, P2 × 1, P2 × 3, P3 × 1    P1 P2 P3   (P2 on two lines counts once)
4      B         2024-02-10   P2 × 1, P4 × 1                    P2 P4
5      C         2024-02-15   P1 × 1, P2 × 1                    P1 P2
6      C         2024-02-20   P3 × -1 (a return, amount -30)    -          (returns are not baskets)
7      -         2024-03-01   P3 × 1, P4 × 1                    P3 P4      (anonymous: a basket, nobody's history)
8      D         2024-03-05   P4 × 1, P2 × 0                    P4         (a zero-quantity line is no purchase)
9      D         2024-03-10   P5 × 1                            P5

Product level: N = 8 baskets (1-5, 7, 8, 9). Baskets with P1 = 4 (1, 2, 3, 5), P2 = 4 (1, 3, 4, 5), P3 = 3 (2, 3, 7),
P4 = 3 (4, 7, 8), P5 = 1. Pairs: P1P2 = 3 (1, 3, 5), P1P3 = 2 (2, 3), P2P3 = 1, P2P4 = 1, P3P4 = 1.

rule      support     confidence   lift = N × both / (A × B)
P1 → P2   3/8         3/4          8·3/(4·4) = 1.5
P2 → P1   3/8         3/4          1.5
P3 → P1   2/8         2/3          8·2/(3·4) = 4/3
P1 → P3   2/8         2/4          4/3
P3 → P4   1/8         1/3          8/(3·3) = 8/9
P4 → P3   1/8         1/3          8/9
P3 → P2   1/8         1/3          8/(3·4) = 2/3
P4 → P2   1/8         1/3          2/3
P2 → P3   1/8         1/4          2/3
P2 → P4   1/8         1/4          2/3
(ordered by lift, confidence, support, antecedent, consequent)
"""

import itertools
from datetime import date

import ibis
import pandas as pd
import pytest
import sqlglot
from ibis.config import Config

from crm_core import basket, segments, store

ALL = {"min_support": 0.01, "min_confidence": 0.0, "max_rules": None}


@pytest.fixture
def shop(con):
    con.execute("""INSERT INTO products (product_id, product_name, category) VALUES
        ('P1', 'Novel', 'Books'), ('P2', 'Cookbook', 'Books'), ('P3', 'Spade', 'Garden'), ('P4', 'Lamp', 'Home'),
        ('P5', 'Mystery box', NULL)""")
    con.execute("""INSERT INTO customers (customer_id, region) VALUES
        ('A', 'North'), ('B', 'South'), ('C', 'North'), ('D', 'South')""")
    con.execute("""INSERT INTO orders (order_id, customer_id, ordered_at, amount, is_return) VALUES
        ('1', 'A', '2024-01-05 10:00', 30, false), ('2', 'A', '2024-01-20 10:00', 40, false),
        ('3', 'B', '2024-02-01 10:00', 80, false), ('4', 'B', '2024-02-10 10:00', 50, NULL),
        ('5', 'C', '2024-02-15 10:00', 30, false), ('6', 'C', '2024-02-20 10:00', -30, true),
        ('7', NULL, '2024-03-01 10:00', 45, false), ('8', 'D', '2024-03-05 10:00', 25, false),
        ('9', 'D', '2024-03-10 10:00', 15, false)""")
    con.execute("""INSERT INTO order_items (order_id, line_number, product_id, quantity, unit_price) VALUES
        ('1', 1, 'P1', 1, 10), ('1', 2, 'P2', 1, 20),
        ('2', 1, 'P1', 1, 10), ('2', 2, 'P3', 2, 15),
        ('3', 1, 'P1', 1, 10), ('3', 2, 'P2', 1, 20), ('3', 3, 'P2', 3, 20), ('3', 4, 'P3', 1, 15),
        ('4', 1, 'P2', 1, 20), ('4', 2, 'P4', 1, 30),
        ('5', 1, 'P1', 1, 10), ('5', 2, 'P2', 1, 20),
        ('6', 1, 'P3', -1, 30),
        ('7', 1, 'P3', 1, 15), ('7', 2, 'P4', 1, 30),
        ('8', 1, 'P4', 1, 25), ('8', 2, 'P2', 0, 20),
        ('9', 1, 'P5', 1, 15)""")
    return store.ibis_backend(con)


def _rules(result: basket.BasketRules) -> list[tuple[str, str]]:
    return list(zip(result.rules["antecedent"], result.rules["consequent"]))


class TestRules:
    def test_product_rules_hand_computed(self, shop):
        result = basket.association_rules(shop, **ALL)
        assert result.n_baskets == 8 and result.level == "product"
        assert _rules(result) == [("P1", "P2"), ("P2", "P1"), ("P3", "P1"), ("P1", "P3"), ("P3", "P4"),
                                  ("P4", "P3"), ("P3", "P2"), ("P4", "P2"), ("P2", "P3"), ("P2", "P4")]
        r = result.rules
        assert r["baskets_with_both"].tolist() == [3, 3, 2, 2, 1, 1, 1, 1, 1, 1]
        assert r["baskets_with_antecedent"].tolist() == [4, 4, 3, 4, 3, 3, 3, 3, 4, 4]
        assert r["baskets_with_consequent"].tolist() == [4, 4, 4, 3, 3, 3, 4, 4, 3, 3]
        assert r["support"].tolist() == pytest.approx([3 / 8, 3 / 8, 2 / 8, 2 / 8] + [1 / 8] * 6)
        assert r["confidence"].tolist() == pytest.approx([3 / 4, 3 / 4, 2 / 3, 1 / 2, 1 / 3, 1 / 3, 1 / 3, 1 / 3,
                                                          1 / 4, 1 / 4])
        assert r["lift"].tolist() == pytest.approx([1.5, 1.5, 4 / 3, 4 / 3, 8 / 9, 8 / 9] + [2 / 3] * 4)
        assert r["antecedent_name"].tolist()[:2] == ["Novel", "Cookbook"]
        assert r["consequent_name"].tolist()[:2] == ["Cookbook", "Novel"]
        assert list(r.columns) == list(basket.RULE_LABELS)

    def test_thresholds_and_cut(self, shop):
        # support >= 0.25 keeps the pairs in 2+ of 8 baskets (P1P2, P1P3); confidence >= 0.6 drops P1 → P3 (1/2)
        result = basket.association_rules(shop, min_support=0.25, min_confidence=0.6, max_rules=None)
        assert _rules(result) == [("P1", "P2"), ("P2", "P1"), ("P3", "P1")]
        assert _rules(basket.association_rules(shop, min_support=0.01, min_confidence=0.0, max_rules=3)) == \
            [("P1", "P2"), ("P2", "P1"), ("P3", "P1")]
        assert basket.association_rules(shop, min_support=0.5, min_confidence=0.0).rules.empty  # 3/8 < 0.5

    def test_category_rules_hand_computed(self, shop):
        # baskets by category: 1 Books; 2 Books Garden; 3 Books Garden; 4 Books Home; 5 Books; 7 Garden Home;
        # 8 Home; order 9 holds only P5, which has no category, so it is no basket: N = 7.
        # Books 5, Garden 3, Home 3; Books-Garden 2, Books-Home 1, Garden-Home 1.
        result = basket.association_rules(shop, level="category", **ALL)
        assert result.n_baskets == 7
        assert _rules(result) == [("Garden", "Books"), ("Books", "Garden"), ("Garden", "Home"), ("Home", "Garden"),
                                  ("Home", "Books"), ("Books", "Home")]
        r = result.rules
        assert r["confidence"].tolist() == pytest.approx([2 / 3, 2 / 5, 1 / 3, 1 / 3, 1 / 3, 1 / 5])
        # lift: 7·2/(3·5) = 14/15; 7·1/(3·3) = 7/9; 7·1/(3·5) = 7/15
        assert r["lift"].tolist() == pytest.approx([14 / 15, 14 / 15, 7 / 9, 7 / 9, 7 / 15, 7 / 15])
        assert r["antecedent_name"].tolist() == r["antecedent"].tolist()  # a category names itself

    def test_period_filter(self, shop):
        # from 1 Feb: baskets 3, 4, 5, 7, 8, 9 (N = 6); P1 in 3, 5; P2 in 3, 4, 5; P1P2 in 3, 5
        # P1 → P2: support 2/6, confidence 2/2, lift 6·2/(2·3) = 2
        result = basket.association_rules(shop, start=date(2024, 2, 1), **ALL)
        assert result.n_baskets == 6
        top = result.rules.iloc[0]
        assert (top.antecedent, top.consequent) == ("P1", "P2")
        assert (top.support, top.confidence, top.lift) == pytest.approx((2 / 6, 1.0, 2.0))
        # up to 31 Jan: baskets 1 and 2 only, both with P1: P1 → P2 and P1 → P3 have confidence 1/2, lift 1
        early = basket.association_rules(shop, end=date(2024, 1, 31), **ALL)
        assert early.n_baskets == 2
        assert early.rules["lift"].tolist() == pytest.approx([1.0] * 4)

    def test_region_filter(self, shop):
        # North = A and C: baskets 1, 2, 5 (C's return is no basket); P1 is in all three, so every lift is 1
        result = basket.association_rules(shop, regions=("North",), **ALL)
        assert result.n_baskets == 3
        r = result.rules.set_index(["antecedent", "consequent"])
        assert r.loc[("P1", "P2"), "baskets_with_both"] == 2 and r.loc[("P2", "P1"), "confidence"] == 1.0
        assert r["lift"].tolist() == pytest.approx([1.0] * 4)

    def test_segment_filter(self, shop):
        # RFM as of 10 Mar (see test_segments for the scoring): recency A 50, B 29, C 24, D 0 days → R 1, 2, 4, 5;
        # purchases A 2, B 2, C 1, D 2 → F 2, 2, 1, 2; net spend A 70, B 130, C 0, D 40 → M 4, 5, 1, 2;
        # FM = floor((F + M) / 2): 3, 3, 1, 2 → A and B are "At risk", C "Promising", D "Potential loyalists".
        # At risk → baskets 1-4: P1 in 3, P2 in 3, P1P2 in 2 (1, 3): lift 4·2/(3·3) = 8/9
        assert segments.rfm(shop, date(2024, 3, 10))["segment"].tolist() == [
            "At risk", "At risk", "Promising", "Potential loyalists"]
        result = basket.association_rules(shop, segments=("At risk",), end=date(2024, 3, 10), **ALL)
        assert result.n_baskets == 4
        r = result.rules.set_index(["antecedent", "consequent"])
        assert r.loc[("P1", "P2"), "baskets_with_both"] == 2
        assert r.loc[("P1", "P2"), "lift"] == pytest.approx(8 / 9)
        promising = basket.association_rules(shop, segments=("Promising",), end=date(2024, 3, 10), **ALL)
        # C's one basket (5: P1 P2): P1 → P2 and P2 → P1, each with support, confidence and lift 1
        assert promising.n_baskets == 1
        assert promising.rules[["support", "confidence", "lift"]].to_numpy().tolist() == [[1.0, 1.0, 1.0]] * 2

    def test_matches_brute_force(self, shop, con):
        expected = _brute_force(con, "product", ALL["min_support"])
        got = basket.association_rules(shop, **ALL).rules
        pd.testing.assert_frame_equal(got[expected.columns].reset_index(drop=True), expected, check_dtype=False)

    def test_bad_parameters(self, shop):
        with pytest.raises(ValueError, match="Unknown basket level 'brand'"):
            basket.association_rules(shop, level="brand")
        with pytest.raises(ValueError, match="min_support must be a share above 0"):
            basket.association_rules(shop, min_support=0)
        with pytest.raises(ValueError, match="min_confidence must be a share from 0 to 1"):
            basket.association_rules(shop, min_confidence=1.5)
        with pytest.raises(ValueError, match="max_rules must be a whole number"):
            basket.association_rules(shop, max_rules=0)
        with pytest.raises(ValueError, match="k must be a whole number"):
            basket.next_best_products(shop, k=0)

    def test_empty_order_items_gives_no_rules(self, con):
        result = basket.association_rules(store.ibis_backend(con))
        assert result.n_baskets == 0 and result.rules.empty
        assert list(result.rules.columns) == list(basket.RULE_LABELS)


class TestNextBest:
    def test_hand_computed(self, shop):
        # rules with lift > 1: P1 → P2 (score 1.5·3/4 = 1.125), P2 → P1 (1.125), P3 → P1 (4/3·2/3 = 8/9),
        # P1 → P3 (4/3·1/2 = 2/3). Bought: A P1 P2 P3, B P1 P2 P3 P4 (nothing left to offer); C P1 P2 (the
        # returned P3 was not bought) → P3 because of P1; D P4 P5 (the zero-quantity P2 was not bought) → none.
        got = basket.next_best_products(shop, **{k: v for k, v in ALL.items() if k != "max_rules"})
        assert got[["customer_id", "rank", "recommended", "because_bought"]].values.tolist() == [["C", 1, "P3", "P1"]]
        row = got.iloc[0]
        assert (row.confidence, row.lift, row.score) == pytest.approx((0.5, 4 / 3, 2 / 3))
        assert (row.recommended_name, row.because_bought_name) == ("Spade", "Novel")
        assert list(got.columns) == list(basket.NEXT_BEST_LABELS)

    def test_best_rule_per_offer_and_top_k(self, shop):
        # with lift > 0.5 every rule counts. A (P1 P2 P3): P4 by P3 → P4 (8/9·1/3 = 8/27) beats P2 → P4
        # (2/3·1/4 = 1/6). B bought all four. C (P1 P2): P3 by P1 → P3 (4/3·1/2 = 2/3) beats P2 → P3 (1/6); P4 by
        # P2 → P4 (1/6). D (P4 P5): P3 by P4 → P3 (8/27), P2 by P4 → P2 (2/3·1/3 = 2/9).
        got = basket.next_best_products(shop, min_support=0.01, min_confidence=0.0, min_lift=0.5)
        assert got[["customer_id", "rank", "recommended", "because_bought"]].values.tolist() == [
            ["A", 1, "P4", "P3"], ["C", 1, "P3", "P1"], ["C", 2, "P4", "P2"], ["D", 1, "P3", "P4"],
            ["D", 2, "P2", "P4"]]
        assert got["score"].tolist() == pytest.approx([8 / 27, 2 / 3, 1 / 6, 8 / 27, 2 / 9])
        top1 = basket.next_best_products(shop, k=1, min_support=0.01, min_confidence=0.0, min_lift=0.5)
        assert top1["recommended"].tolist() == ["P4", "P3", "P3"]
        only_d = basket.next_best_products(shop, min_support=0.01, min_confidence=0.0, min_lift=0.5,
                                           customer_ids=["D"])
        assert only_d["customer_id"].unique().tolist() == ["D"]

    def test_history_ignores_the_period_start(self, shop):
        # from 10 Jan: baskets 2-5, 7-9 (N = 7); P1, P2, P3, P4 in 3 each; P1P2 and P1P3 in 2 → lift 7·2/(3·3) = 14/9
        # for P1 ↔ P2 and P1 ↔ P3, the only rules above 1. In the period A bought P1 P3 (basket 2), which would
        # earn P2; but A's basket of 5 Jan holds P2, so A is offered nothing. C (P1 P2) gets P3 by P1 → P3.
        got = basket.next_best_products(shop, start=date(2024, 1, 10), min_support=0.01, min_confidence=0.0)
        assert got[["customer_id", "recommended", "because_bought"]].values.tolist() == [["C", "P3", "P1"]]
        assert got["score"].tolist() == pytest.approx([14 / 9 * 2 / 3])


def _brute_force(con, level: str, min_support: float) -> pd.DataFrame:
    """The rules by plain Python over the baskets: every pair of each basket, counted."""
    lines = con.execute("""SELECT i.order_id, i.product_id, p.category FROM order_items i
        JOIN orders o USING (order_id) LEFT JOIN products p USING (product_id)
        WHERE i.quantity > 0 AND NOT coalesce(o.is_return, false) AND o.amount >= 0""").df()
    item = "product_id" if level == "product" else "category"
    baskets = lines.dropna(subset=[item]).groupby("order_id")[item].apply(lambda s: sorted(set(s)))
    n = len(baskets)
    single = pd.Series([i for b in baskets for i in b]).value_counts()
    pairs = pd.Series([p for b in baskets for p in itertools.combinations(b, 2)]).value_counts()
    rows = []
    for (a, b), both in pairs.items():
        if both / n < min_support:
            continue
        for x, y in ((a, b), (b, a)):
            rows.append({"antecedent": x, "consequent": y, "baskets_with_both": both, "support": both / n,
                         "confidence": both / single[x], "lift": both * n / (single[x] * single[y])})
    frame = pd.DataFrame(rows)
    return frame.sort_values(["lift", "confidence", "support", "antecedent", "consequent"],
                             ascending=[False, False, False, True, True]).reset_index(drop=True)


@pytest.fixture(scope="module")
def sample(sample_store):
    con = store.connect(sample_store, read_only=True)
    yield con, store.ibis_backend(con)
    con.close()


class TestSample:
    def test_product_rules_match_brute_force(self, sample):
        con, backend = sample
        result = basket.association_rules(backend, min_support=0.001, min_confidence=0.0, max_rules=None)
        # 19,825 purchases with lines (20,664 orders less 839 returns)
        assert result.n_baskets == 19825
        expected = _brute_force(con, "product", 0.001)
        assert len(expected) == 224  # 112 pairs in at least 20 baskets
        got = result.rules[expected.columns]
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)

    def test_defaults_yield_linked_products(self, sample):
        _, backend = sample
        result = basket.association_rules(backend)
        r = result.rules
        assert len(r) == basket.DEFAULT_MAX_RULES
        assert (r["lift"] > 1).all() and r["lift"].iloc[0] > 2  # measured: 50 rules, lift 1.23-2.43
        assert (r["support"] >= basket.DEFAULT_MIN_SUPPORT).all()
        assert (r["confidence"] >= basket.DEFAULT_MIN_CONFIDENCE).all()
        assert r["lift"].is_monotonic_decreasing

    def test_category_rules_match_brute_force(self, sample):
        con, backend = sample
        result = basket.association_rules(backend, level="category", min_support=1e-6, min_confidence=0.0,
                                          max_rules=None)
        expected = _brute_force(con, "category", 1e-6)
        assert len(expected) == 56  # 8 categories: 28 pairs, both directions
        pd.testing.assert_frame_equal(result.rules[expected.columns], expected, check_dtype=False)

    def test_next_best_on_sample(self, sample):
        con, backend = sample
        got = basket.next_best_products(backend, k=3)
        assert got.groupby("customer_id")["rank"].max().max() == 3
        assert (got["lift"] > 1).all()
        # an offer is never something the customer already bought
        bought = con.execute("""SELECT DISTINCT o.customer_id, i.product_id AS recommended FROM order_items i
            JOIN orders o USING (order_id) WHERE i.quantity > 0 AND NOT coalesce(o.is_return, false)
            AND o.amount >= 0""").df()
        assert got.merge(bought, on=["customer_id", "recommended"]).empty
        # ranks are by score within each customer
        first = got[got["rank"] == 1].set_index("customer_id")["score"]
        second = got[got["rank"] == 2].set_index("customer_id")["score"]
        assert (first.loc[second.index] >= second).all()


class _SparkOptions(Config):
    treat_nan_as_null: bool = False


class TestPortability:
    @pytest.fixture
    def exprs(self, shop):
        tables = {name: shop.table(name) for name in ("customers", "orders", "order_items", "products")}
        scope = basket._customer_scope(tables["customers"], tables["orders"], ("North",), ("Champions",),
                                       date(2024, 3, 10))
        items = basket.basket_items_expr(tables, "category", start=date(2024, 1, 1), end=date(2024, 3, 31),
                                         scope=scope)
        return {"rules": basket.association_rules_expr(items),
                "next_best": basket.next_best_products_expr(
                    items, basket.association_rules_expr(items, max_rules=None), 3)}

    def test_compiles_for_postgres(self, exprs):
        for expr in exprs.values():
            sql = ibis.to_sql(expr, dialect="postgres")
            sqlglot.parse_one(sql, read="postgres")
            assert '"order_items"' in sql and '"products"' in sql

    def test_compiles_for_spark(self, exprs, monkeypatch):
        if ibis.options.pyspark is None:
            monkeypatch.setattr(ibis.options, "pyspark", _SparkOptions())
        for expr in exprs.values():
            sqlglot.parse_one(ibis.to_sql(expr, dialect="pyspark"), read="spark")
