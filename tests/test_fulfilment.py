"""Fulfilment: hand-computed delivery KPIs and late-delivery effects on a small fixture, portability, and the
planted truth of the sample (the late carrier, tickets and lost repurchases after late deliveries)."""

import json
from datetime import date

import ibis
import pandas as pd
import pytest
import sqlglot
from ibis.config import Config

from crm_core import fulfilment, store
from crm_core.campaigns import proportion_lift, wilson_interval
from crm_core.sample import LATE_CARRIER, SAMPLE_DIR, TICKET_AFTER_LATE, TICKET_AFTER_ON_TIME, TICKET_WINDOW_DAYS

AS_OF = date(2024, 3, 31)

# Customers A, B (North), C (South), D (no region). Shipments, as of 2024-03-31 (hours = order → ship):
#   s1  o1 A  SwiftParcel  promised 03-04  shipped 03-01 22:00 (12 h)  delivered 03-04 16:00 (2.75 d)  on time
#   s2  o1 A  SwiftParcel  promised 03-05  shipped 03-02 10:00 (24 h)  delivered 03-07 11:00 (5.0417 d) late 2 d
#   s3  o3 B  ParcelPoint  promised 03-05  shipped 03-02 18:00 (6 h)   delivered 03-06 09:00 (3.625 d)  late 1 d
#   s4  o4 C  ParcelPoint  promised 02-13  shipped 02-10 20:00 (12 h)  delivered 02-13 14:00 (2.75 d)   on time
#   s5  o5 C  ParcelPoint  promised 03-28  shipped 03-25 20:00 (12 h)  not delivered                    overdue
#   s6  o6 -  ExpressWay   promised 03-07  shipped 03-05 14:00 (4 h)   delivered 03-06 10:00 (0.8333 d) on time
#   s7  o7 B  (order on 04-02, after the date: does not exist yet)
#   s8  o5 C  SwiftParcel  promised 04-02  shipped 03-26 14:00 (30 h)  delivered 04-03 (after the date): in transit
#   s9  oX ?  no carrier, no promise, order unknown: dated by shipped 03-10 09:00, delivered 03-12 09:00 (2.0 d)
#   s10 o9 B  ExpressWay   promised 03-11  shipped 03-08 20:00 (10 h)  delivered 03-09 12:00 (0.6667 d) on time


@pytest.fixture
def backend(con):
    con.execute("""INSERT INTO customers (customer_id, region) VALUES
        ('A', 'North'), ('B', 'North'), ('C', 'South'), ('D', NULL)""")
    con.execute("""INSERT INTO orders (order_id, customer_id, ordered_at, amount, channel, is_return) VALUES
        ('o1', 'A', '2024-03-01 10:00', 100, 'web', false), ('o2', 'A', '2024-03-20 09:00', 50, 'store', false),
        ('o3', 'B', '2024-03-02 12:00', 80, 'web', false), ('o4', 'C', '2024-02-10 08:00', 60, 'web', false),
        ('o5', 'C', '2024-03-25 08:00', 40, 'web', false), ('o6', NULL, '2024-03-05 10:00', 30, 'web', false),
        ('o7', 'B', '2024-04-02 10:00', 70, 'web', false), ('o8', 'A', '2024-03-10 10:00', -20, 'web', true),
        ('o9', 'B', '2024-03-08 10:00', 25, 'web', false), ('o10', 'C', '2024-02-20 10:00', -10, 'web', true)""")
    con.execute("""INSERT INTO shipments (shipment_id, order_id, carrier, promised_date, shipped_at, delivered_at)
        VALUES ('s1', 'o1', 'SwiftParcel', '2024-03-04', '2024-03-01 22:00', '2024-03-04 16:00'),
        ('s2', 'o1', 'SwiftParcel', '2024-03-05', '2024-03-02 10:00', '2024-03-07 11:00'),
        ('s3', 'o3', 'ParcelPoint', '2024-03-05', '2024-03-02 18:00', '2024-03-06 09:00'),
        ('s4', 'o4', 'ParcelPoint', '2024-02-13', '2024-02-10 20:00', '2024-02-13 14:00'),
        ('s5', 'o5', 'ParcelPoint', '2024-03-28', '2024-03-25 20:00', NULL),
        ('s6', 'o6', 'ExpressWay', '2024-03-07', '2024-03-05 14:00', '2024-03-06 10:00'),
        ('s7', 'o7', 'SwiftParcel', '2024-04-05', '2024-04-02 20:00', NULL),
        ('s8', 'o5', 'SwiftParcel', '2024-04-02', '2024-03-26 14:00', '2024-04-03 10:00'),
        ('s9', 'oX', NULL, NULL, '2024-03-10 09:00', '2024-03-12 09:00'),
        ('s10', 'o9', 'ExpressWay', '2024-03-11', '2024-03-08 20:00', '2024-03-09 12:00')""")
    con.execute("""INSERT INTO support_tickets (ticket_id, customer_id, created_at, resolved_at, category) VALUES
        ('k1', 'A', '2024-03-08 09:00', '2024-03-08 17:00', 'delivery'),
        ('k2', 'B', '2024-03-10 12:00', '2024-03-11 09:00', 'billing'),
        ('k3', 'C', '2024-02-01 09:00', '2024-02-02 09:00', 'account'),
        ('k4', 'C', '2024-02-27 14:00', '2024-03-15 09:00', 'Delivery'),
        ('k5', NULL, '2024-03-05 09:00', NULL, 'other')""")
    return store.ibis_backend(con)


class TestDeliveryFacts:
    def test_one_row_per_shipment_with_flags(self, backend):
        f = backend.execute(fulfilment.delivery_facts_expr(fulfilment._tables(backend), AS_OF))
        f = f.set_index("shipment_id").sort_index()
        # s7's order is after the date
        assert sorted(f.index) == sorted(["s1", "s2", "s3", "s4", "s5", "s6", "s8", "s9", "s10"])
        assert f.is_delivered.to_dict() == {"s1": True, "s10": True, "s2": True, "s3": True, "s4": True,
                                            "s5": False, "s6": True, "s8": False, "s9": True}
        # s8 arrives on 04-03: not delivered yet, and its promise (04-02) has not passed, so not overdue either
        assert f.loc["s8", "delivered_at"] is pd.NaT or pd.isna(f.loc["s8", "delivered_at"])
        assert f.is_late.dropna().astype(bool).to_dict() == {"s1": False, "s10": False, "s2": True, "s3": True,
                                                             "s4": False, "s6": False}
        assert f.is_overdue[f.is_overdue].index.tolist() == ["s5"]
        assert f.days_late.dropna().astype(int).to_dict() == {"s1": 0, "s10": 0, "s2": 2, "s3": 1, "s4": 0, "s6": 0}
        assert f.order_to_ship_hours.dropna().to_dict() == pytest.approx(
            {"s1": 12, "s10": 10, "s2": 24, "s3": 6, "s4": 12, "s5": 12, "s6": 4, "s8": 30})
        assert f.ship_to_deliver_days.dropna().to_dict() == pytest.approx(
            {"s1": 2.75, "s10": 16 / 24, "s2": 5 + 1 / 24, "s3": 3.625, "s4": 2.75, "s6": 20 / 24, "s9": 2.0})
        # s9's order is unknown: dated by its ship time, no customer, no region
        assert str(f.loc["s9", "dated_at"]) == "2024-03-10 09:00:00" and pd.isna(f.loc["s9", "customer_id"])
        assert f.region.fillna("-").to_dict() == {"s1": "North", "s10": "North", "s2": "North", "s3": "North",
                                                  "s4": "South", "s5": "South", "s6": "-", "s8": "South", "s9": "-"}


class TestKpis:
    def test_hand_computed(self, backend):
        k = fulfilment.fulfilment_kpis(backend, AS_OF)
        assert list(k.columns) == list(fulfilment.KPI_COLUMNS) and len(k) == 1
        row = k.iloc[0]
        # 9 shipments; delivered s1 s2 s3 s4 s6 s9 s10; on time s1 s4 s6 s10, late s2 s3 (s9 has no promise)
        assert (row.shipments, row.delivered, row.on_time, row.late, row.overdue) == (9, 7, 4, 2, 1)
        assert row.on_time_rate == pytest.approx(4 / 6) and row.late_rate == pytest.approx(2 / 6)
        assert (row.late_rate_low, row.late_rate_high) == pytest.approx(wilson_interval(2, 6))
        assert row.avg_days_late == pytest.approx(1.5)  # (2 + 1) / 2
        # order → ship hours sorted: 4 6 10 12 12 12 24 30; median (12 + 12) / 2; p90 at 0.9 × 7 = 6.3:
        # 24 + 0.3 × (30 − 24) = 25.8
        assert row.median_order_to_ship_hours == pytest.approx(12)
        assert row.p90_order_to_ship_hours == pytest.approx(25.8)
        # ship → delivery days sorted: 0.6667 0.8333 2.0 2.75 2.75 3.625 5.0417; median the 4th = 2.75;
        # p90 at 0.9 × 6 = 5.4: 3.625 + 0.4 × (5.0417 − 3.625) = 4.191667
        assert row.median_ship_to_deliver_days == pytest.approx(2.75)
        assert row.p90_ship_to_deliver_days == pytest.approx(3.625 + 0.4 * (5 + 1 / 24 - 3.625))

    def test_by_carrier(self, backend):
        k = fulfilment.fulfilment_kpis(backend, AS_OF, by="carrier")
        assert k.carrier.tolist() == ["ExpressWay", "ParcelPoint", "SwiftParcel", "Unknown"]
        assert k.shipments.tolist() == [2, 3, 3, 1]
        assert k.delivered.tolist() == [2, 2, 2, 1]
        assert k.late.tolist() == [0, 1, 1, 0] and k.overdue.tolist() == [0, 1, 0, 0]
        # s9 (no carrier) has no promised date: its late rate is unknown, not 0
        assert k.late_rate.tolist()[:3] == pytest.approx([0.0, 0.5, 0.5]) and pd.isna(k.late_rate.iloc[3])

    def test_by_region_and_month(self, backend):
        k = fulfilment.fulfilment_kpis(backend, AS_OF, by="region")
        # North: s1 s2 s3 s10; South: s4 s5 s8; Unknown: s6 (anonymous order) and s9 (unknown order)
        assert k.region.tolist() == ["North", "South", "Unknown"] and k.shipments.tolist() == [4, 3, 2]
        assert k.on_time_rate.tolist() == pytest.approx([0.5, 1.0, 1.0])
        m = fulfilment.fulfilment_kpis(backend, AS_OF, by="month")
        assert m.month.tolist() == [pd.Timestamp("2024-02-01"), pd.Timestamp("2024-03-01")]
        assert m.shipments.tolist() == [1, 8] and m.month.dtype == "datetime64[ns]"

    def test_filters(self, backend):
        north = fulfilment.fulfilment_kpis(backend, AS_OF, regions="North").iloc[0]
        assert (north.shipments, north.on_time, north.late) == (4, 2, 2)
        march = fulfilment.fulfilment_kpis(backend, AS_OF, start=date(2024, 3, 1)).iloc[0]
        assert march.shipments == 8  # s4's order was placed in February

    def test_as_of_in_the_past(self, backend):
        # on 03-06: shipments of orders placed by then are s1 s2 s3 s4 s6; s2 (promised 03-05) arrives on 03-07,
        # so it is overdue; s3 (03-06 09:00) is delivered and late
        row = fulfilment.fulfilment_kpis(backend, date(2024, 3, 6)).iloc[0]
        assert (row.shipments, row.delivered, row.late, row.overdue) == (5, 4, 1, 1)
        assert row.late_rate == pytest.approx(0.25)

    def test_bad_grouping(self, backend):
        with pytest.raises(ValueError, match=r"Unknown grouping by='week'"):
            fulfilment.fulfilment_kpis(backend, AS_OF, by="week")

    def test_empty_database(self, con):
        k = fulfilment.fulfilment_kpis(store.ibis_backend(con), AS_OF)
        assert k.shipments.tolist() == [0] and pd.isna(k.on_time_rate.iloc[0])
        assert fulfilment.fulfilment_kpis(store.ibis_backend(con), AS_OF, by="carrier").empty

    def test_every_column_has_help(self):
        for name in (*fulfilment.KPI_COLUMNS, *fulfilment.FULFILMENT_BY):
            assert fulfilment.FULFILMENT_HELP[name] and fulfilment.FULFILMENT_LABELS[name], name


class TestLateDeliveryEffect:
    def test_hand_computed(self, backend):
        e = fulfilment.late_delivery_effect(backend, AS_OF, ticket_window_days=14, repurchase_days=20)
        # Ticket window observed: delivered before 03-18 → s1 s2 s3 s4 s10 (s6 anonymous, s9 unknown customer).
        # s1 (03-04 16:00) and s2 (03-07 11:00): A's k1 on 03-08; s3 (03-06 09:00) and s10 (03-09 12:00): B's k2 on
        # 03-10; s4 (02-13 14:00): k3 came before the delivery, k4 exactly 14 days after (outside [d, d + 14 d)).
        # late: s2, s3 both → 2/2; on time: s1, s10 of s1 s4 s10 → 2/3
        assert (e.late_ticket_shipments, e.late_with_ticket) == (2, 2)
        assert (e.on_time_ticket_shipments, e.on_time_with_ticket) == (3, 2)
        assert e.ticket == proportion_lift(2, 2, 2, 3, metric="ticket_rate")
        # Repurchase window observed: delivered before 03-12 → s1 s2 s3 s4 s10. A bought o2 on 03-20 (after s1 and
        # s2; the return o8 does not count); B bought o9 on 03-08 (after s3, before s10; o7 is after 03-29);
        # C only returned o10 after s4. late 2/2, on time 1/3: ratio 1 / (1/3) = 3
        assert (e.late_repurchase_shipments, e.late_repurchased) == (2, 2)
        assert (e.on_time_repurchase_shipments, e.on_time_repurchased) == (3, 1)
        assert e.repurchase_ratio == pytest.approx(3.0)
        assert e.repurchase == proportion_lift(2, 2, 1, 3, metric="repurchase_rate")
        frame = e.frame()
        assert frame.group.tolist() == ["late", "on time"]
        assert frame.ticket_rate.tolist() == pytest.approx([1.0, 2 / 3])
        assert frame.repurchase_rate.tolist() == pytest.approx([1.0, 1 / 3])
        assert (frame.loc[1, "ticket_rate_low"], frame.loc[1, "ticket_rate_high"]) == pytest.approx(
            wilson_interval(2, 3))
        for name in frame.columns:
            assert fulfilment.FULFILMENT_HELP[name], name

    def test_ticket_categories(self, backend):
        e = fulfilment.late_delivery_effect(backend, AS_OF, repurchase_days=20, ticket_categories=(" delivery",))
        # only k1 (delivery) and k4 ('Delivery', at the window's end) count: s1 and s2 (A) → late 1/2, on time 1/3
        assert (e.late_with_ticket, e.on_time_with_ticket) == (1, 1)

    def test_window_not_observed_yet(self, backend):
        e = fulfilment.late_delivery_effect(backend, AS_OF)  # 180 days: no delivery is that old on 03-31
        assert e.repurchase is None and e.repurchase_ratio is None
        assert "no late deliveries with 180 days observed before 2024-03-31" in e.note
        assert e.ticket is not None

    def test_bad_window(self, backend):
        with pytest.raises(ValueError, match="ticket_window_days must be a whole number of days of at least 1"):
            fulfilment.late_delivery_effect(backend, AS_OF, ticket_window_days=0)

    def test_empty_database(self, con):
        e = fulfilment.late_delivery_effect(store.ibis_backend(con), AS_OF)
        assert e.ticket is None and e.repurchase is None and e.frame().ticket_shipments.tolist() == [0, 0]


class _SparkOptions(Config):
    treat_nan_as_null: bool = False


class TestPortability:
    @pytest.fixture
    def exprs(self, backend):
        tables = fulfilment._tables(backend)
        built = {"facts": fulfilment.delivery_facts_expr(tables, AS_OF)}
        for by in (None, *fulfilment.FULFILMENT_BY):
            built[f"kpis_{by}"] = fulfilment.fulfilment_kpis_expr(tables, AS_OF, date(2024, 1, 1), ("North",),
                                                                  ("Champions",), by)
        built.update(fulfilment.late_effect_exprs(tables, AS_OF, 14, 180, None, ("North",), (), ("delivery",)))
        return built

    def test_compiles_for_postgres_and_spark(self, exprs, monkeypatch):
        if ibis.options.pyspark is None:
            monkeypatch.setattr(ibis.options, "pyspark", _SparkOptions())
        assert {"ticket", "repurchase", "kpis_month"} <= set(exprs)
        for name, expr in exprs.items():
            for dialect, read, quote in (("postgres", "postgres", '"'), ("pyspark", "spark", "`")):
                sql = ibis.to_sql(expr, dialect=dialect)
                sqlglot.parse_one(sql, read=read)
                assert f"{quote}shipments{quote}" in sql, (name, dialect)


@pytest.fixture(scope="module")
def sample(sample_store):
    con = store.connect(sample_store)
    yield store.ibis_backend(con)
    con.close()


@pytest.fixture(scope="module")
def truth():
    return json.loads((SAMPLE_DIR / "ground_truth.json").read_text(encoding="utf-8"))


class TestSample:
    def test_late_carrier_and_its_rate(self, sample, truth):
        k = fulfilment.fulfilment_kpis(sample, by="carrier").set_index("carrier")
        planted = truth["fulfilment"]
        # the same rule as the generator (date of delivered_at after promised_date, among delivered), so the
        # observed rates match to the 4 decimals the truth keeps
        assert k.late_rate.round(4).to_dict() == planted["observed_late_rate_by_carrier"]
        assert k.late_rate.idxmax() == LATE_CARRIER == planted["late_carrier"]
        others = k.drop(index=LATE_CARRIER)
        assert k.loc[LATE_CARRIER, "late_rate_low"] > others.late_rate_high.max()

    def test_every_shipment_counts(self, sample):
        shipments = int(sample.execute(sample.table("shipments").count()))
        assert fulfilment.fulfilment_kpis(sample).shipments.iloc[0] == shipments

    def test_tickets_after_late_deliveries(self, sample, truth):
        e = fulfilment.late_delivery_effect(sample, ticket_window_days=TICKET_WINDOW_DAYS)
        planted = TICKET_AFTER_LATE - TICKET_AFTER_ON_TIME  # 0.32
        # A delivery-triggered ticket comes within the window (delivered + min(Exp(2 days), 13.5 days)). Both groups
        # share the same background (baseline tickets at 0.35 a year, return tickets, tickets triggered by the
        # customer's other shipments nearby), since lateness does not depend on the customer, so the difference of
        # the rates is the planted 0.32 up to sampling error: it must lie in the 95% Newcombe interval.
        assert e.ticket.ci_low < planted < e.ticket.ci_high
        # each rate is its planted probability plus that background (about 0.04 on this sample)
        background = e.ticket.control - TICKET_AFTER_ON_TIME
        assert 0 < background < 0.06
        assert e.ticket.treatment == pytest.approx(TICKET_AFTER_LATE + background, abs=0.04)
        assert truth["fulfilment"]["ticket_probability_after_late"] == TICKET_AFTER_LATE

    def test_fewer_repurchases_after_late_deliveries(self, sample, truth):
        e = fulfilment.late_delivery_effect(sample)
        factor = truth["fulfilment"]["repurchase_factor_after_late_delivery"]  # 0.85
        # The generator ends a customer's purchases at a late delivery with probability 0.15, so purchases after a
        # late delivery happen 0.85 times as often as after an on-time one. Measured from the delivery, late parcels
        # start their window ~2 days later than on-time ones, which costs a little on its own: with the dropout
        # switched off the ratio is 0.984 ± 0.003 (12 seeds at 5,000 customers); with it, seeds 1-8 give
        # 0.838 ± 0.020 (sd), and shipments of one customer are not independent, so the Katz interval is a little
        # narrow. Honest checks: the planted 0.85 lies in the 95% interval, the interval excludes 1 (the effect is
        # detected), and the ratio is within 3 seed-to-seed standard deviations of 0.85 × 0.984.
        low, high = e.repurchase_ratio_interval
        assert low < factor < high < 1
        assert e.repurchase_ratio == pytest.approx(factor * 0.984, abs=0.06)
        assert e.late_repurchase_shipments > 500 and e.on_time_repurchase_shipments > 5000
