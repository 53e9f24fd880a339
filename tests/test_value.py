"""Customer value: hand-computed profit per customer on a small fixture, and the planted truth of the sample."""

import json
from datetime import date

import ibis
import pandas as pd
import pytest
import sqlglot
from ibis.config import Config

from crm_core import store, value
from crm_core.sample import CARRIERS, CATEGORIES, CONTACT_COST, SAMPLE_DIR
from crm_core.value import CostRates, Tier

AS_OF = date(2024, 3, 31)
RATES = CostRates(ticket_cost_by_channel={"phone": 6.0, "email": 4.0, "chat": 3.0}, default_ticket_cost=5.0,
                  contact_cost_by_channel={"email": 0.1, "Direct Mail ": 1.0}, default_contact_cost=0.5,
                  default_margin_rate=0.4)


@pytest.fixture
def backend(con):
    con.execute("""INSERT INTO customers (customer_id, region, signup_date, referred_by) VALUES
        ('A', 'North', '2023-01-01', NULL), ('B', 'North', '2023-01-01', NULL), ('C', 'South', '2023-06-01', 'B'),
        ('D', 'South', '2024-01-01', 'A'), ('E', 'South', '2024-02-01', 'A'), ('F', 'South', NULL, NULL),
        ('G', 'South', '2024-05-01', 'A')""")
    con.execute("""INSERT INTO products (product_id, list_price, unit_cost) VALUES ('P1', 12, 6), ('P2', 12, NULL)""")
    con.execute("""INSERT INTO orders (order_id, customer_id, ordered_at, amount, channel, is_return, shipping_cost)
        VALUES ('o1', 'A', '2024-03-01 10:00', 30, 'web', false, 5),
        ('o2', 'A', '2024-03-10 10:00', -10, 'web', true, 0),
        ('o3', 'B', '2024-02-01 10:00', 50, 'store', false, NULL),
        ('o4', 'B', '2024-02-02 10:00', 20, 'store', false, NULL),
        ('o5', 'D', '2024-03-15 10:00', 100, 'web', false, 7), ('o6', 'E', '2024-04-05 10:00', 60, 'web', false, 3),
        ('o7', NULL, '2024-03-01 10:00', 70, 'web', false, 2),
        ('o8', 'C', '2023-12-01 10:00', 10, 'store', false, NULL)""")
    con.execute("""INSERT INTO order_items (order_id, line_number, product_id, quantity, unit_price) VALUES
        ('o1', 1, 'P1', 3, 10), ('o2', 1, 'P1', -1, 10), ('o4', 1, 'P2', 2, 10), ('o5', 1, 'P1', 10, 10),
        ('o6', 1, 'P1', 6, 10), ('o7', 1, 'P1', 7, 10), ('o8', 1, 'P1', 1, 10)""")
    con.execute("""INSERT INTO shipments (shipment_id, order_id, shipping_cost) VALUES
        ('s1', 'o1', 4.0), ('s2', 'o1', 1.5), ('s3', 'o5', 6.0), ('s4', 'o6', 3.0), ('s5', 'o7', 2.0)""")
    con.execute("""INSERT INTO support_tickets (ticket_id, customer_id, created_at, channel) VALUES
        ('t1', 'A', '2024-03-02 09:00', 'Phone'), ('t2', 'A', '2024-03-05 09:00', 'email'),
        ('t3', 'F', '2024-03-20 09:00', 'chat'), ('t4', 'C', '2024-01-10 09:00', 'fax'),
        ('t5', 'B', '2024-04-02 09:00', 'phone'), ('t6', NULL, '2024-03-01 09:00', 'phone')""")
    con.execute("""INSERT INTO campaigns (campaign_id, channel, start_date) VALUES
        ('K1', 'email', '2024-03-01'), ('K2', 'direct mail', '2024-02-15'), ('K3', 'phone', '2024-03-10')""")
    con.execute("""INSERT INTO campaign_contacts (campaign_id, customer_id, contact_group, contacted_at, is_sent,
        contact_cost) VALUES
        ('K1', 'A', 'treatment', '2024-03-01 09:00', true, 0.03),
        ('K1', 'B', 'control', '2024-03-01 09:00', false, NULL),
        ('K2', 'B', 'treatment', '2024-02-20 09:00', true, NULL), ('K2', 'C', 'treatment', NULL, true, NULL),
        ('K1', 'E', 'treatment', '2024-03-05 09:00', true, 0.03),
        ('K3', 'D', 'treatment', '2024-03-16 09:00', NULL, NULL),
        ('K1', 'F', 'control', '2024-03-01 09:00', NULL, NULL)""")
    return store.ibis_backend(con)


def _by_customer(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("customer_id")


class TestCustomerValue:
    def test_hand_computed(self, backend):
        v = value.customer_value(backend, AS_OF, rates=RATES)
        assert list(v.columns) == list(value.VALUE_COLUMNS)
        # most profitable first; G (no activity) and the anonymous order have no row
        assert list(v.customer_id) == ["D", "B", "E", "C", "F", "A"]
        v = _by_customer(v)
        # A: o1 30 + return o2 -10; B: o3 50 + o4 20; C: o8 10; D: o5 100; E's o6 is after AS_OF
        assert v.revenue.tolist() == pytest.approx([100, 70, 0, 10, 0, 20])
        assert v.orders.tolist() == [1, 2, 0, 1, 0, 1]
        # A: 3 x (10 - 6) - 1 x (10 - 6) = 8; B: o3 has no lines, 50 x 0.4 = 20, o4's P2 has no cost, 20 x 0.4 = 8;
        # C: 1 x 4; D: 10 x 4
        assert v.gross_margin.tolist() == pytest.approx([40, 28, 0, 4, 0, 8])
        assert v.estimated_margin_revenue.tolist() == pytest.approx([0, 70, 0, 0, 0, 0])
        assert v.is_margin_estimated.tolist() == [False, True, False, False, False, False]
        # A: Phone 6 + email 4; C: fax is no known channel, 5; F: chat 3; B's ticket is after AS_OF
        assert v.tickets.tolist() == [0, 0, 0, 1, 1, 2]
        assert v.ticket_cost.tolist() == pytest.approx([0, 0, 0, 5, 3, 10])
        # shipments: A 4.0 + 1.5 (split), D 6.0; store orders have none
        assert v.shipping_cost.tolist() == pytest.approx([6, 0, 0, 0, 0, 5.5])
        # D: K3 'phone' has no contact rate, sent (treatment, is_sent missing) 0.5; B: control 0 + direct mail 1.0;
        # E, A: 0.03 given; C: K2 contact dated by the campaign start, 1.0; F: control row, is_sent missing, 0
        assert v.contacts.tolist() == [1, 2, 1, 1, 1, 1]
        assert v.campaign_cost.tolist() == pytest.approx([0.5, 1.0, 0.03, 1.0, 0, 0.03])
        assert v.cost_to_serve.tolist() == pytest.approx([6.5, 1.0, 0.03, 6.0, 3.0, 15.53])
        assert v.profit.tolist() == pytest.approx([33.5, 27.0, -0.03, -2.0, -3.0, -7.53])
        # A referred D and E (G signed up after AS_OF): D's 100 + E's 0; B referred C: 10
        assert v.referred_customers.tolist() == [0, 1, 0, 0, 0, 2]
        assert v.referred_revenue.tolist() == pytest.approx([0, 10, 0, 0, 0, 100])
        # 6 customers: D has 0/6 ranked above (< 5%), B 1/6 = 17% (< 20%); the rest lose money
        assert v.value_tier.tolist() == ["Platinum", "Gold"] + ["Loss-making"] * 4

    def test_shipping_from_orders(self, backend):
        v = _by_customer(value.customer_value(backend, AS_OF, rates=CostRates(use_shipments=False)))
        # orders.shipping_cost: A 5 (o1) + 0 (return), D 7; B's and C's missing costs count 0
        assert v.shipping_cost.to_dict() == pytest.approx({"A": 5, "B": 0, "C": 0, "D": 7, "E": 0, "F": 0})
        priced = CostRates(use_shipments=False, default_shipping_cost=2.5)
        v = _by_customer(value.customer_value(backend, AS_OF, rates=priced))
        # a missing cost on a purchase is 2.5: B's two purchases 5.0, C's one 2.5
        assert v.shipping_cost.to_dict() == pytest.approx({"A": 5, "B": 5, "C": 2.5, "D": 7, "E": 0, "F": 0})

    def test_no_shipment_costs_falls_back_to_orders(self, con, backend):
        con.execute("UPDATE shipments SET shipping_cost = NULL")
        v = _by_customer(value.customer_value(backend, AS_OF, rates=RATES))
        assert v.shipping_cost["A"] == pytest.approx(5) and v.shipping_cost["D"] == pytest.approx(7)

    def test_window(self, backend):
        v = _by_customer(value.customer_value(backend, AS_OF, start=date(2024, 3, 1), rates=RATES))
        # from 1 March: C has nothing (o8 December, t4 January, K2 dated 15 February); B only its K1 control row
        assert sorted(v.index) == ["A", "B", "D", "E", "F"]
        assert v.loc["B", "revenue"] == 0 and v.loc["B", "contacts"] == 1 and v.loc["B", "profit"] == 0
        # referred revenue is the referred customers' revenue in the window: C bought nothing since 1 March
        assert v.loc["B", "referred_revenue"] == 0 and v.loc["B", "referred_customers"] == 1
        assert v.loc["A", "referred_revenue"] == pytest.approx(100)
        assert v.loc["A", "profit"] == pytest.approx(-7.53)

    def test_region_scope_keeps_referrals_of_other_regions(self, backend):
        v = _by_customer(value.customer_value(backend, AS_OF, rates=RATES, regions="North"))
        assert sorted(v.index) == ["A", "B"]
        assert v.loc["A", "referred_revenue"] == pytest.approx(100)  # D is in the South
        # tiers rank within the rows shown: B 0/2 above → Platinum; A loses money
        assert v.value_tier.tolist() == ["Platinum", "Loss-making"]

    def test_empty_database(self, con):
        v = value.customer_value(store.ibis_backend(con), AS_OF)
        assert v.empty and list(v.columns) == list(value.VALUE_COLUMNS)
        assert value.whale_summary(v).customers == 0
        assert value.value_totals(v).gross_margin_rate is None
        assert value.tier_summary(v).customers.tolist() == [0] * 5

    def test_bad_rates_are_refused(self):
        with pytest.raises(ValueError, match="default_margin_rate must be between 0 and 1"):
            CostRates(default_margin_rate=40)
        with pytest.raises(ValueError, match=r"ticket_cost_by_channel: costs must be 0 or more, got \{'phone': -1.0\}"):
            CostRates(ticket_cost_by_channel={"Phone": -1})

    def test_rates_are_hashable_and_normalised(self):
        assert RATES.contact_cost_by_channel == {"email": 0.1, "direct mail": 1.0}
        assert hash(CostRates()) == hash(CostRates())
        assert CostRates() != CostRates(default_ticket_cost=1.0)


class TestSummaries:
    @pytest.fixture
    def values(self, backend):
        return value.customer_value(backend, AS_OF, rates=RATES)

    def test_whale_curve(self, values):
        curve = value.whale_curve(values)
        assert curve["rank"].tolist() == [1, 2, 3, 4, 5, 6]
        assert curve["customer_id"].tolist() == ["D", "B", "E", "C", "F", "A"]
        # 33.5, +27, -0.03, -2, -3, -7.53
        assert curve["cumulative_profit"].tolist() == pytest.approx([33.5, 60.5, 60.47, 58.47, 55.47, 47.94])
        assert curve["share_of_customers"].tolist() == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1])
        assert curve["cumulative_profit_share"].iloc[1] == pytest.approx(60.5 / 47.94)
        assert curve["cumulative_profit_share"].iloc[-1] == pytest.approx(1.0)

    def test_whale_summary(self, values):
        s = value.whale_summary(values)
        assert s.customers == 6
        assert s.total_profit == pytest.approx(47.94)
        assert s.peak_profit == pytest.approx(60.5)
        assert s.peak_share_of_total == pytest.approx(60.5 / 47.94)  # 126%: the best two earn more than the total
        assert s.customers_at_peak == 2 and s.share_of_customers_at_peak == pytest.approx(1 / 3)
        assert s.loss_making_customers == 4 and s.loss_making_share == pytest.approx(4 / 6)
        assert s.profit_destroyed == pytest.approx(0.03 + 2 + 3 + 7.53)
        assert s.top_20_share_of_profit == pytest.approx(60.5 / 47.94)  # ceil(20% of 6) = 2 customers

    def test_whale_summary_of_nothing(self, values):
        s = value.whale_summary(values.iloc[:0])
        assert s.customers == 0 and s.peak_share_of_total is None and s.total_profit == 0

    def test_tier_summary(self, values):
        t = value.tier_summary(values).set_index("value_tier")
        assert list(t.index) == ["Platinum", "Gold", "Silver", "Bronze", "Loss-making"]
        assert t.customers.tolist() == [1, 1, 0, 0, 4]
        assert t.revenue.tolist() == pytest.approx([100, 70, 0, 0, 30])  # loss-makers: A 20 + C 10
        assert t.profit.tolist() == pytest.approx([33.5, 27, 0, 0, -12.56])
        assert t.share_of_profit["Platinum"] == pytest.approx(33.5 / 47.94)
        # loss-makers' cost to serve: (15.53 + 6 + 0.03 + 3) / 4
        assert t.avg_cost_to_serve["Loss-making"] == pytest.approx(6.14)
        assert t.service_level["Platinum"].startswith("Dedicated account manager")

    def test_custom_tiers(self, values):
        tiers = (Tier("Top half", 0.5, "a"), Tier("Rest", 1.0, "b"))  # no loss-making tier
        # 6 customers: 0, 1 and 2 ranked above the first three (< 50%)
        assert value.assign_tiers(values["profit"], tiers).tolist() == ["Top half"] * 3 + ["Rest"] * 3
        with pytest.raises(ValueError, match="top_share must increase"):
            value.assign_tiers(values["profit"], (Tier("x", 0.5, ""), Tier("y", 0.2, "")))

    def test_tied_profits_share_a_tier(self):
        profit = pd.Series([5.0] * 10)
        assert set(value.assign_tiers(profit)) == {"Platinum"}  # nobody is ranked above anybody

    def test_totals(self, values):
        t = value.value_totals(values)
        assert t.customers == 6
        assert t.revenue == pytest.approx(200)
        assert t.gross_margin == pytest.approx(80) and t.gross_margin_rate == pytest.approx(0.4)
        assert (t.ticket_cost, t.shipping_cost, t.campaign_cost) == pytest.approx((18, 11.5, 2.56))
        assert t.profit == pytest.approx(80 - 32.06)
        assert t.loss_making_customers == 4
        assert t.estimated_margin_share == pytest.approx(70 / 200)  # B's 70

    def test_profit_bridge_adds_up(self, values):
        bridge = value.profit_bridge(value.value_totals(values))
        # 200 revenue - 120 cost of goods = 80 margin; - 18 support - 11.5 shipping - 2.56 contacts = 47.94 profit
        assert bridge["amount"].tolist() == pytest.approx([200, -120, 80, -18, -11.5, -2.56, 47.94])
        relative = bridge["measure"] == "relative"
        assert bridge["amount"][0] + bridge["amount"][relative].sum() == pytest.approx(bridge["amount"].iloc[-1])

    def test_influencers(self, values):
        top = value.influencers(values)
        assert top["customer_id"].tolist() == ["A", "B"]
        assert top["referred_revenue"].tolist() == pytest.approx([100, 10])
        assert value.influencers(values, top=1)["customer_id"].tolist() == ["A"]

    def test_potential(self, values):
        clv = pd.DataFrame({"customer_id": ["A", "B", "C", "D", "E"], "clv": [500.0, 50, 20, 300, 400]})
        out = _by_customer(value.add_potential(values, clv))
        assert out.potential_value.to_dict() == pytest.approx(
            {"A": 500, "B": 50, "C": 20, "D": 300, "E": 400, "F": float("nan")}, nan_ok=True)
        # profit median of 6: (-2 + -0.03) / 2 = -1.015 → D, B, E high; CLV median of 5: 300 → A, D, E high
        assert out.potential_quadrant.drop("F").to_dict() == {"D": "Retain", "B": "Maintain", "E": "Retain",
                                                              "C": "Reduce cost to serve", "A": "Grow"}
        assert pd.isna(out.potential_quadrant["F"])  # no prediction, no quadrant
        fixed = _by_customer(value.add_potential(values, clv, profit_threshold=0, potential_threshold=450))
        assert fixed.potential_quadrant["E"] == "Reduce cost to serve" and fixed.potential_quadrant["A"] == "Grow"
        quads = value.quadrant_summary(value.add_potential(values, clv)).set_index("potential_quadrant")
        assert list(quads.index) == ["Retain", "Grow", "Maintain", "Reduce cost to serve"]
        # Retain D + E, Grow A, Maintain B, Reduce C; F has no prediction and is left out of the shares
        assert quads["customers"].tolist() == [2, 1, 1, 1]
        assert quads.loc["Retain", "share_of_customers"] == pytest.approx(2 / 5)
        assert quads.loc["Retain", "potential_value"] == pytest.approx(700)
        assert quads.loc["Retain", "profit"] == pytest.approx(33.5 - 0.03)

    def test_potential_needs_clv(self, values):
        with pytest.raises(ValueError, match="Required column clv missing"):
            value.add_potential(values, pd.DataFrame({"customer_id": ["A"], "value": [1.0]}))

    def test_missing_column_is_named(self):
        with pytest.raises(ValueError, match="Required column profit missing"):
            value.whale_curve(pd.DataFrame({"customer_id": ["A"]}))

    def test_every_column_has_a_label_and_help(self):
        for name in value.VALUE_COLUMNS:
            assert value.VALUE_LABELS[name] and value.VALUE_HELP[name], name


class _SparkOptions(Config):
    treat_nan_as_null: bool = False


class TestPortability:
    @pytest.mark.parametrize("from_shipments", [True, False], ids=["shipments", "orders"])
    def test_compiles_for_postgres_and_spark(self, backend, monkeypatch, from_shipments):
        if ibis.options.pyspark is None:
            monkeypatch.setattr(ibis.options, "pyspark", _SparkOptions())
        tables = value._value_tables(backend)
        expr = value.customer_value_expr(tables, AS_OF, date(2024, 1, 1), RATES, ("North",), ("Champions",),
                                         from_shipments)
        for dialect, read in (("postgres", "postgres"), ("pyspark", "spark")):
            sql = ibis.to_sql(expr, dialect=dialect)
            sqlglot.parse_one(sql, read=read)
            assert ("shipments" in sql) == from_shipments


@pytest.fixture(scope="module")
def sample(sample_store):
    """A connection to the sample store (nothing is written) and the customer value of its whole history."""
    con = store.connect(sample_store)  # the same configuration as the other tests' connections in this process
    yield con, value.customer_value(store.ibis_backend(con), date(2026, 6, 30))
    con.close()


class TestSample:
    """The sample generator's planted costs and referrals, recovered."""

    def test_revenue_and_shipping_totals_match_the_tables(self, sample):
        con, v = sample
        orders_revenue, shipped = con.execute(
            "SELECT (SELECT sum(amount) FROM orders), (SELECT sum(shipping_cost) FROM shipments)").fetchone()
        assert v.revenue.sum() == pytest.approx(orders_revenue)  # every sample order has a customer
        assert v.shipping_cost.sum() == pytest.approx(shipped)
        # the planted carrier costs: 2.85-6.50 per shipment (±30% noise), so the mean lies between the extremes
        n_shipments = con.execute("SELECT count(*) FROM shipments").fetchone()[0]
        costs = [c[3] for c in CARRIERS.values()]
        assert min(costs) < v.shipping_cost.sum() / n_shipments < max(costs)

    def test_campaign_cost_is_the_planted_cost_per_sent_contact(self, sample):
        con, v = sample
        sent = dict(con.execute("""SELECT c.channel, count(*) FROM campaign_contacts k JOIN campaigns c
            USING (campaign_id) WHERE k.is_sent GROUP BY 1""").fetchall())
        assert v.campaign_cost.sum() == pytest.approx(sum(n * CONTACT_COST[ch] for ch, n in sent.items()))

    def test_gross_margin_rate_is_the_planted_category_margins(self, sample):
        con, v = sample
        # planted: unit_cost = list_price x (1 - category margin x U(0.85, 1.15)); lines sell at a discount from the
        # list price, so the expected margin of a line is quantity x (unit_price - list_price x (1 - margin))
        margins = pd.DataFrame({"category": list(CATEGORIES), "margin": [c[2] for c in CATEGORIES.values()]})
        con.register("planted_margins", margins)
        expected = con.execute("""SELECT sum(i.quantity * (i.unit_price - p.list_price * (1 - m.margin)))
                / sum(i.quantity * i.unit_price)
            FROM order_items i JOIN products p USING (product_id) JOIN planted_margins m USING (category)
            """).fetchone()[0]
        con.unregister("planted_margins")
        totals = value.value_totals(v)
        # measured: 0.3545 realised against 0.3549 planted
        assert totals.gross_margin_rate == pytest.approx(expected, abs=0.005)
        assert totals.estimated_margin_share == 0  # every product has a unit cost
        # the cheapest-margin category (Electronics 18%) and the richest (Accessories 62%) bound the mix
        planted = [c[2] for c in CATEGORIES.values()]
        assert min(planted) < totals.gross_margin_rate < max(planted)

    def test_some_customers_destroy_profit(self, sample):
        _, v = sample
        s = value.whale_summary(v)
        # measured: 183 of 4,998 customers lose 703.88 in total; the curve peaks at 100.2% of total profit
        assert 50 <= s.loss_making_customers <= 500
        assert s.peak_profit > s.total_profit > 0
        assert s.customers_at_peak == (v.profit > 0).sum()  # the curve peaks after the last profitable customer
        # measured 63% of profit from the top 20% of customers
        assert 0.5 < s.top_20_share_of_profit < 0.8

    def test_planted_influencers_lead(self, sample):
        _, v = sample
        truth = json.loads((SAMPLE_DIR / "ground_truth.json").read_text(encoding="utf-8"))
        planted = truth["referrals"]["influencers"]  # customer_id → customers referred
        top = value.influencers(v, top=len(planted))
        assert set(top.customer_id) == set(planted)
        counts = v.set_index("customer_id").referred_customers
        assert {c: int(counts[c]) for c in planted} == planted
        # measured: the 5th influencer brought 4,954, the best ordinary referrer 2,113
        assert top.referred_revenue.min() > 2 * value.influencers(v, top=6).referred_revenue.iloc[-1]

    def test_tiers_on_the_sample(self, sample):
        _, v = sample
        t = value.tier_summary(v).set_index("value_tier")
        n = len(v)
        assert t.customers["Platinum"] == pytest.approx(0.05 * n, abs=1)
        assert t.customers["Gold"] == pytest.approx(0.15 * n, abs=1)
        assert t.customers["Loss-making"] == (v.profit < 0).sum()
        # measured: Platinum, 5% of customers, makes 33% of profit
        assert t.share_of_profit["Platinum"] > 0.25


def test_order_is_profit_then_customer_id_as_python_sorts(sample):
    # On DuckDB the engine sorts (a pandas sort of millions of string ids was a tenth of the time at scale): the
    # order must be exactly pandas' stable sort on profit to 1e-6, descending, then customer_id by code point.
    frame = sample[1]
    expected = frame.assign(_r=frame["profit"].round(6)).sort_values(
        ["_r", "customer_id"], ascending=[False, True], kind="stable")["customer_id"].tolist()
    assert frame["customer_id"].tolist() == expected
    ties = frame["profit"].round(6).duplicated(keep=False)
    assert ties.sum() > 10  # the sample has customers of equal profit, so the tie-break is exercised
