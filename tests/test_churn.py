"""Tests for crm_core.churn: hand-computed fixtures for every metric, and the planted truth of the sample data.

The fixture (``crm``), churn definition N = 30 days, feature cut-off c = 2024-03-01 (label window 2024-03-02 ..
2024-03-31; 180-day window 2023-09-04 .. 2024-03-01; 90-day window 2023-12-03 .. 2024-03-01):

customers  region  signup_date  acquired (signup, else first order)
A          North   2024-01-01   2024-01-01
B          North   -            2023-11-15 (order 6)
C          South   2024-02-10   2024-02-10 (first order 2024-02-05 is earlier: tenure counts from it)
D          South   2024-01-10   2024-01-10
E          South   -            2024-01-31 (order 12)
F          North   2024-02-01   2024-02-01
G          South   2024-02-20   2024-02-20 (only a return: never purchased)
H          South   -            never (no orders)

order  customer  ordered_at            amount  is_return  channel
1      A         2024-01-05 10:00       100    false      web
2      A         2024-02-04 10:00        60    false      store
3      A         2024-02-20 10:00        40    null       web     (null flag, positive: a purchase)
4      A         2024-02-25 10:00       -20    null       web     (negative: a return)
5      A         2024-03-10 10:00       500    false      web     (after c: must not leak into features)
6      B         2023-11-15 09:00        30    false      store
7      B         2024-02-10 09:00        20    false      -
8      B         2024-04-15 09:00        90    false      web     (after the label window and every as_of)
9      C         2024-02-05 12:00        45    false      web
10     C         2024-03-31 23:30        35    false      web     (last minute of the label window)
11     D         2024-01-15 08:00        70    false      store
12     E         2024-01-31 08:00        25    false      phone
13     F         2024-02-01 08:00        10    false      web
14     F         2024-03-01 23:59:59     15    false      store   (last second of the cut-off day)
15     G         2024-02-20 08:00       -10    true       -
16     -         2024-02-15 08:00       999    false      web     (anonymous)
"""

import json
import shutil
from datetime import date, datetime
from pathlib import Path

import duckdb
import ibis
import numpy as np
import pandas as pd
import pytest
import sqlglot
from ibis.config import Config
from sklearn.metrics import roc_auc_score

from crm_core import churn, store

SAMPLE_TRUTH = Path(__file__).parent.parent / "sample_data" / "ground_truth.json"
CUTOFF = date(2024, 3, 1)
N = 30
ALL_SOURCES = ("order_channel", "support_tickets", "shipments", "campaign_contacts")


@pytest.fixture
def crm(con):
    con.execute("""INSERT INTO customers (customer_id, region, signup_date) VALUES
        ('A', 'North', '2024-01-01'), ('B', 'North', NULL), ('C', 'South', '2024-02-10'),
        ('D', 'South', '2024-01-10'), ('E', 'South', NULL), ('F', 'North', '2024-02-01'),
        ('G', 'South', '2024-02-20'), ('H', 'South', NULL)""")
    con.execute("""INSERT INTO orders (order_id, customer_id, ordered_at, amount, is_return, channel) VALUES
        ('1', 'A', '2024-01-05 10:00', 100, false, 'web'), ('2', 'A', '2024-02-04 10:00', 60, false, 'store'),
        ('3', 'A', '2024-02-20 10:00', 40, NULL, 'web'), ('4', 'A', '2024-02-25 10:00', -20, NULL, 'web'),
        ('5', 'A', '2024-03-10 10:00', 500, false, 'web'),
        ('6', 'B', '2023-11-15 09:00', 30, false, 'store'), ('7', 'B', '2024-02-10 09:00', 20, false, NULL),
        ('8', 'B', '2024-04-15 09:00', 90, false, 'web'),
        ('9', 'C', '2024-02-05 12:00', 45, false, 'web'), ('10', 'C', '2024-03-31 23:30', 35, false, 'web'),
        ('11', 'D', '2024-01-15 08:00', 70, false, 'store'),
        ('12', 'E', '2024-01-31 08:00', 25, false, 'phone'),
        ('13', 'F', '2024-02-01 08:00', 10, false, 'web'), ('14', 'F', '2024-03-01 23:59:59', 15, false, 'store'),
        ('15', 'G', '2024-02-20 08:00', -10, true, NULL),
        ('16', NULL, '2024-02-15 08:00', 999, false, 'web')""")
    # tickets: T1 in the window; T2 after c; T3 before the window (starts 2023-09-04); T4 on its first day;
    # T5 on the cut-off day, a complaint by its category text
    con.execute("""INSERT INTO support_tickets (ticket_id, customer_id, created_at, category) VALUES
        ('T1', 'A', '2024-02-01 10:00', 'Complaint'), ('T2', 'A', '2024-03-05 10:00', 'billing'),
        ('T3', 'B', '2023-08-01 10:00', 'delivery'), ('T4', 'B', '2023-09-04 00:00', 'delivery'),
        ('T5', 'F', '2024-03-01 20:00', 'complaint about delivery')""")
    # shipments: S2 (A's order 3) and S4 (B's order 6) late and known by c; S7 (F's order 13) promised 02-04 and
    # delivered only after c: already known late at c; S6 promised after c: not known; S3 is of an order after c
    con.execute("""INSERT INTO shipments (shipment_id, order_id, promised_date, delivered_at) VALUES
        ('S1', '1', '2024-01-08', '2024-01-07 12:00'), ('S2', '3', '2024-02-23', '2024-02-27 12:00'),
        ('S3', '5', '2024-03-12', '2024-03-20 12:00'), ('S4', '6', '2023-11-18', '2023-11-25 12:00'),
        ('S5', '7', '2024-02-13', '2024-02-13 18:00'), ('S6', '14', '2024-03-04', NULL),
        ('S7', '13', '2024-02-04', '2024-03-05 12:00')""")
    # campaign contacts: A's control row is held out; C's contact is after c; B's before the window;
    # F's row has no group and no sent flag: counted as sent
    con.execute("""INSERT INTO campaign_contacts (campaign_id, customer_id, contact_group, contacted_at, is_sent)
        VALUES ('CMP1', 'A', 'treatment', '2024-02-15 09:00', true),
        ('CMP2', 'A', 'control', '2024-02-16 09:00', false),
        ('CMP3', 'C', 'treatment', '2024-03-02 09:00', true), ('CMP1', 'B', 'treatment', '2023-08-20 09:00', true),
        ('CMP1', 'F', NULL, '2024-01-10 09:00', NULL)""")
    return store.ibis_backend(con)


# --- cohort retention ------------------------------------------------------------------------------------------


def _cells(frame: pd.DataFrame) -> dict[tuple[str, int], tuple[int, int, bool]]:
    return {(row.cohort_month.strftime("%Y-%m"), row.months_since): (row.cohort_size, row.active_customers,
                                                                     bool(row.is_partial_month))
            for row in frame.itertuples()}


class TestCohortRetention:
    def test_cells_hand_computed(self, crm):
        df = churn.cohort_retention(crm, date(2024, 3, 15))
        # as_of 2024-03-15: purchases up to then; March is partial. H has no acquisition date; G's only order is a
        # return, so G is in the February cohort but never active. A's return (order 4) is no purchase.
        assert _cells(df) == {
            # B (Nov 2023): bought in Nov (m0) and Feb (m3); Dec, Jan and Mar (partial) are zero, m5+ absent
            ("2023-11", 0): (1, 1, False), ("2023-11", 1): (1, 0, False), ("2023-11", 2): (1, 0, False),
            ("2023-11", 3): (1, 1, False), ("2023-11", 4): (1, 0, True),
            # A, D, E (Jan): all bought in January; only A in February (orders 2, 3) and March (order 5)
            ("2024-01", 0): (3, 3, False), ("2024-01", 1): (3, 1, False), ("2024-01", 2): (3, 1, True),
            # C, F, G (Feb): C and F bought in February; F on 03-01; C's 03-31 order is after as_of
            ("2024-02", 0): (3, 2, False), ("2024-02", 1): (3, 1, True),
        }
        assert list(df.columns) == list(churn.COHORT_LABELS)
        rates = df.set_index([df.cohort_month.dt.strftime("%Y-%m"), "months_since"]).retention_rate
        assert rates[("2024-01", 1)] == pytest.approx(1 / 3)
        assert rates[("2024-02", 0)] == pytest.approx(2 / 3)
        assert df.retention_rate.between(0, 1).all()

    def test_month_over_is_not_partial_and_sees_its_last_minute(self, crm):
        df = churn.cohort_retention(crm, date(2024, 3, 31))
        cells = _cells(df)
        assert not df.is_partial_month.any()
        assert cells[("2024-02", 1)] == (3, 2, False)  # F (03-01) and now C (03-31 23:30)

    def test_months_and_start_limit_the_table(self, crm):
        short = churn.cohort_retention(crm, date(2024, 3, 15), months=2)
        assert len(short) == 3 + 3 + 2  # Nov keeps m0..m2
        assert short.months_since.max() == 2
        later = churn.cohort_retention(crm, date(2024, 3, 15), start=date(2024, 1, 20))
        # start 2024-01-20 keeps the whole January cohort (by month) and February
        assert sorted(set(later.cohort_month.dt.strftime("%Y-%m"))) == ["2024-01", "2024-02"]
        assert len(later) == 5

    def test_region_filter(self, crm):
        df = churn.cohort_retention(crm, date(2024, 3, 15), regions=("North",))
        cells = _cells(df)
        # North: A (Jan), B (Nov), F (Feb)
        assert cells[("2024-01", 0)] == (1, 1, False)
        assert cells[("2024-02", 0)] == (1, 1, False)
        assert cells[("2024-02", 1)] == (1, 1, True)
        assert len(df) == 5 + 3 + 2

    def test_matrix_and_curve(self, crm):
        df = churn.cohort_retention(crm, date(2024, 3, 15))
        grid = churn.cohort_matrix(df)
        assert [d.strftime("%Y-%m") for d in grid.index] == ["2023-11", "2024-01", "2024-02"]
        assert list(grid.columns) == [0, 1, 2, 3, 4]
        assert grid.iloc[1].tolist()[:3] == pytest.approx([1.0, 1 / 3, 1 / 3])
        assert grid.iloc[2, 2:].isna().all()  # February has no month 2 yet
        curve = churn.cohort_curve(df).set_index("months_since")
        # full months only: m0 = Nov 1/1 + Jan 3/3 + Feb 2/3 = 6/7; m1 = Nov 0/1 + Jan 1/3 = 1/4 (Feb m1 partial)
        assert curve.loc[0, "retention_rate"] == pytest.approx(6 / 7)
        assert curve.loc[1, "retention_rate"] == pytest.approx(1 / 4)
        assert (curve.loc[1, "cohorts"], curve.loc[1, "customers"]) == (2, 4)
        assert 4 not in curve.index  # Nov m4 is the partial March
        assert churn.cohort_matrix(df.iloc[0:0]).empty

    def test_months_must_be_whole(self, crm):
        with pytest.raises(ValueError, match="months must be a whole number"):
            churn.cohort_retention(crm, date(2024, 3, 15), months=-1)


# --- churn status ----------------------------------------------------------------------------------------------


class TestChurnStatus:
    def test_hand_computed(self, crm):
        df = churn.churn_status(crm, date(2024, 3, 31), inactive_days=N).set_index("customer_id")
        # G (only a return) and H (no orders) have no row; order 8 (04-15) is after as_of
        assert list(df.index) == ["A", "B", "C", "D", "E", "F"]
        # last purchases: A 03-10, B 02-10, C 03-31, D 01-15, E 01-31, F 03-01 → days to 03-31
        assert list(df.days_since_purchase) == [21, 50, 0, 76, 60, 30]
        # churned = no purchase in the 30 days ending 03-31 (03-02 .. 03-31): days >= 30, so F (exactly 30) is
        assert list(df.is_churned) == [False, True, False, True, True, True]
        assert df.loc["C", "last_purchase_at"] == pd.Timestamp("2024-03-31 23:30")
        # net revenue 2023-04-02 .. 2024-03-31: A 100 + 60 + 40 - 20 + 500; B 30 + 20; C 45 + 35; D; E; F 10 + 15
        assert list(df.revenue_last_365_days) == pytest.approx([680, 50, 80, 70, 25, 25])
        assert list(df.reset_index().columns) == list(churn.CHURN_STATUS_LABELS)

    def test_summary(self, crm):
        s = churn.churn_summary(crm, date(2024, 3, 31), inactive_days=N)
        assert (s.customers, s.churned_customers) == (6, 4)
        assert s.churn_rate == pytest.approx(4 / 6)
        assert s.churned_revenue_last_365_days == pytest.approx(50 + 70 + 25 + 25)  # B, D, E, F
        north = churn.churn_summary(crm, date(2024, 3, 31), inactive_days=N, regions="North")
        assert (north.customers, north.churned_customers) == (3, 2)  # A, B, F; B and F churned
        assert north.churned_revenue_last_365_days == pytest.approx(75)

    def test_longer_definition_churns_fewer(self, crm):
        s = churn.churn_summary(crm, date(2024, 3, 31), inactive_days=60)
        assert s.churned_customers == 2  # only D (76 days) and E (60 days)

    def test_empty_store_has_no_rate(self, con):
        s = churn.churn_summary(store.ibis_backend(con), date(2024, 3, 31))
        assert (s.customers, s.churned_customers, s.churn_rate, s.churned_revenue_last_365_days) == (0, 0, None, 0)

    def test_inactive_days_must_be_positive(self, crm):
        with pytest.raises(ValueError, match="inactive_days must be a whole number of days of at least 1, got 0"):
            churn.churn_status(crm, date(2024, 3, 31), inactive_days=0)


# --- features and labels at a cut-off --------------------------------------------------------------------------


class TestFeatures:
    @pytest.fixture
    def features(self, crm):
        return churn.churn_features(crm, CUTOFF, N).set_index("customer_id")

    def test_population(self, features):
        # not churned at 03-01 = a purchase in 2024-01-31 .. 03-01: A (02-20), B (02-10), C (02-05), F (03-01);
        # D (01-15) and E (01-31, exactly 30 days) are already churned; G never purchased
        assert list(features.index) == ["A", "B", "C", "F"]

    def test_order_features(self, features):
        f = features
        assert list(f.recency_days) == [10, 20, 25, 0]  # F's order at 23:59:59 on the cut-off day counts
        assert list(f.frequency) == [3, 2, 1, 2]  # A: orders 1-3 (4 is a return, 5 after c); B: 6, 7
        # gaps: A 01-05 → 02-20 = 46 days / 2; B 2023-11-15 → 2024-02-10 = 87 / 1; C one purchase: days since it;
        # F 02-01 → 03-01 = 29 / 1
        assert list(f.days_between_purchases) == pytest.approx([23, 87, 25, 29])
        assert list(f.recency_gap_ratio) == pytest.approx([10 / 23, 20 / 87, 0, 0])
        # tenure: A from signup 01-01 (60 days, 2024 is a leap year); B from order 6 (2023-11-15: 107 days);
        # C from order 9 (02-05, before its signup 02-10: 25 days); F from signup 02-01 (29 days)
        assert list(f.tenure_days) == [60, 107, 25, 29]
        assert list(f.avg_order_value) == pytest.approx([200 / 3, 25, 45, 12.5])
        assert list(f.purchases_last_90_days) == [3, 1, 1, 2]  # B's order 6 is before 12-03
        assert list(f.returns_per_purchase) == pytest.approx([1 / 3, 0, 0, 0])
        # web purchases: A orders 1 and 3; B none (store, null); C 9; F 13 (14 is store)
        assert list(f.web_order_share) == pytest.approx([2 / 3, 0, 1, 0.5])
        # net revenue of 2023-03-03 .. 2024-03-01: A 100 + 60 + 40 - 20 (not the 500 of 03-10)
        assert list(f.revenue_last_365_days) == pytest.approx([180, 50, 45, 25])

    def test_optional_source_features(self, features):
        f = features
        assert list(f.tickets_last_180_days) == [1, 1, 0, 1]  # A: T1; B: T4 (T3 too old); F: T5
        assert list(f.complaints_last_180_days) == [1, 0, 0, 1]  # 'Complaint', 'complaint about delivery'
        assert list(f.late_deliveries) == [1, 1, 0, 1]  # A: S2; B: S4; F: S7 (known late by c); not S3 or S6
        assert list(f.is_last_purchase_late) == [1, 0, 0, 0]  # only A's last purchase (order 3) was late
        assert list(f.campaign_contacts_last_180_days) == [1, 0, 0, 1]  # A: CMP1; F: CMP1 (null group)

    def test_labels(self, features):
        # churned = no purchase in 03-02 .. 03-31: A bought 03-10, C at 03-31 23:30; B's next order is 04-15
        assert list(features.is_churned) == [0, 1, 0, 1]

    def test_later_data_never_leaks_into_features(self, crm, con, features):
        # the world as it was at the end of the cut-off day: nothing created later, no delivery known later
        end = datetime(2024, 3, 2)
        con.execute("DELETE FROM orders WHERE ordered_at >= ?", [end])
        con.execute("DELETE FROM support_tickets WHERE created_at >= ?", [end])
        con.execute("DELETE FROM campaign_contacts WHERE contacted_at >= ?", [end])
        con.execute("UPDATE shipments SET delivered_at = NULL WHERE delivered_at >= ?", [end])
        truncated = churn.churn_features(crm, CUTOFF, N, with_label=False).set_index("customer_id")
        assert "is_churned" not in truncated.columns
        pd.testing.assert_frame_equal(truncated, features.drop(columns="is_churned"))

    def test_without_optional_data_only_order_features(self, con):
        con.execute("INSERT INTO customers (customer_id) VALUES ('A')")
        con.execute("""INSERT INTO orders (order_id, customer_id, ordered_at, amount) VALUES
            ('1', 'A', '2024-01-05 10:00', 100), ('2', 'A', '2024-02-20 10:00', 40)""")
        f = churn.churn_features(store.ibis_backend(con), CUTOFF, N)
        assert list(f.columns) == ["customer_id", "recency_days", *churn._BASE_FEATURES, "revenue_last_365_days",
                                   "is_churned"]
        # no signup date: tenure from the first order, 01-05 → 03-01 = 56 days
        assert (f.tenure_days.iloc[0], f.days_between_purchases.iloc[0], f.is_churned.iloc[0]) == (56, 46, 1)

    def test_unknown_source_is_named(self, crm):
        tables = {name: crm.table(name) for name in ("customers", "orders")}
        with pytest.raises(ValueError, match=r"Unknown feature source\(s\) \['tickets'\]"):
            churn.churn_features_expr(tables, CUTOFF, N, sources=("tickets",))


# --- the model on the fixture: refusals and the at-risk arithmetic ---------------------------------------------


class TestModelOnFixture:
    def test_refuses_short_history(self, crm):
        # N = 90 needs orders on or before 2024-03-31 - 180 days = 2023-10-03; the first is 2023-11-15
        with pytest.raises(churn.ChurnModelRefused, match=(
                r"Not enough history to train a churn model: with a churn definition of 90 days it needs orders "
                r"from 2023-10-03 or earlier .* the data has orders from 2023-11-15 \(137 days before 2024-03-31\)\. "
                r"Import more history or shorten the churn definition\.")):
            churn.train_churn_model(crm, date(2024, 3, 31), inactive_days=90)

    def test_refuses_small_class(self, crm):
        # training cut-off 2024-01-31: active A (01-05), D (01-15), E (01-31); in 02-01 .. 03-01 only A buys again
        with pytest.raises(churn.ChurnModelRefused, match=(
                r"^Only 1 customer stayed in the training window: of the 3 customers active on 2024-01-31, 2 made no "
                r"purchase in the next 30 days and 1 did; at least 30 of each are needed to train the churn model\. "
                r"Import more customers or history, or lengthen the churn definition \(more inactive days\)\.$")):
            churn.train_churn_model(crm, date(2024, 3, 31), inactive_days=N)

    def test_refusal_is_a_value_error(self):
        assert issubclass(churn.ChurnModelRefused, ValueError)

    def test_trains_when_allowed_and_prices_the_risk(self, crm):
        model = churn.train_churn_model(crm, date(2024, 3, 31), inactive_days=N, min_class_size=1)
        assert (model.train_cutoff, model.test_cutoff) == (date(2024, 1, 31), date(2024, 3, 1))
        assert (model.n_train, model.n_test) == (3, 4)
        assert model.train_churn_rate == pytest.approx(2 / 3)  # D and E
        assert model.test_churn_rate == pytest.approx(0.5)  # B and F of A, B, C, F
        assert model.features == ("frequency", "days_between_purchases", "recency_gap_ratio", "tenure_days",
                                  "avg_order_value", "purchases_last_90_days", "returns_per_purchase",
                                  "web_order_share", "tickets_last_180_days", "complaints_last_180_days",
                                  "late_deliveries", "is_last_purchase_late", "campaign_contacts_last_180_days")
        risk = model.at_risk.set_index("customer_id")
        # scored: not churned at 03-31 = A (21 days) and C (0 days)
        assert sorted(risk.index) == ["A", "C"]
        assert list(risk.loc[["A", "C"], "revenue_last_365_days"]) == pytest.approx([680, 80])
        assert list(risk.revenue_at_risk) == pytest.approx(list(risk.churn_probability * risk.revenue_last_365_days))
        assert model.at_risk.revenue_at_risk.is_monotonic_decreasing
        assert model.revenue_at_risk == pytest.approx(680 * risk.loc["A", "churn_probability"]
                                                      + 80 * risk.loc["C", "churn_probability"])
        assert list(model.at_risk.columns) == list(churn.AT_RISK_LABELS)
        assert set(model.drivers.feature) == set(model.features)

    def test_filters_narrow_only_the_at_risk_list(self, crm):
        everyone = churn.train_churn_model(crm, date(2024, 3, 31), inactive_days=N, min_class_size=1)
        south = churn.train_churn_model(crm, date(2024, 3, 31), inactive_days=N, min_class_size=1,
                                        regions=("South",))
        assert list(south.at_risk.customer_id) == ["C"]
        assert south.n_train == everyone.n_train  # trained on all customers
        c_everyone = everyone.at_risk.set_index("customer_id").loc["C", "churn_probability"]
        assert south.at_risk.churn_probability.iloc[0] == pytest.approx(c_everyone)

    def test_negative_revenue_puts_nothing_at_risk(self):
        frame = pd.DataFrame({"customer_id": ["X"], "revenue_last_365_days": [-30.0], "recency_days": [3],
                              **{f: [1.0] for f in churn._BASE_FEATURES}})
        x = churn._matrix(pd.concat([frame] * 4, ignore_index=True), churn._BASE_FEATURES) * [[1], [2], [3], [4]]
        pipeline = churn._pipeline().fit(x, [0, 1, 0, 1])
        risk = churn._at_risk(pipeline, frame, churn._BASE_FEATURES)
        assert risk.revenue_at_risk.iloc[0] == 0


def test_auc_matches_sklearn():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 500)
    score = np.round(rng.random(500) + 0.3 * y, 1)  # rounded: many ties
    assert churn._auc(y, score) == pytest.approx(roc_auc_score(y, score))


def test_every_feature_and_column_has_a_label():
    features = set(churn._feature_names(ALL_SOURCES))
    # recency_days is a column of the feature table (and of the at-risk list) but not a model input
    assert set(churn.FEATURE_LABELS) == set(churn.FEATURE_HELP) == features | {"recency_days"}
    assert set(churn._MORE) == set(churn._REASONS) == features
    assert all(any(side) for side in churn._REASONS.values())  # every model feature can be a reason
    assert set(churn.DRIVER_LABELS) == {"feature", "label", "importance", "importance_std", "direction", "reading"}
    assert {"retention_rate", "churn_rate", "churn_probability", "revenue_at_risk", "top_reason", "roc_auc",
            "brier_score", "importance"} <= set(churn.CHURN_HELP)


# --- portability -------------------------------------------------------------------------------------------------


class _SparkOptions(Config):
    treat_nan_as_null: bool = False


class TestPortability:
    """The expressions compile for PostgreSQL and Spark without a server: nothing DuckDB-only is used."""

    @pytest.fixture
    def exprs(self, crm):
        tables = {name: crm.table(name) for name in ("customers", "orders", "support_tickets", "shipments",
                                                     "campaign_contacts")}
        customers, orders = tables["customers"], tables["orders"]
        return {
            "cohorts": churn.cohort_retention_expr(customers, orders, date(2024, 3, 15)),
            "status": churn.churn_status_expr(orders, date(2024, 3, 31), N),
            "features": churn.churn_features_expr(tables, CUTOFF, N, sources=ALL_SOURCES),
        }

    def test_compiles_for_postgres(self, exprs):
        for name, expr in exprs.items():
            sql = ibis.to_sql(expr, dialect="postgres")
            sqlglot.parse_one(sql, read="postgres")
            assert '"orders"' in sql, name

    def test_compiles_for_spark(self, exprs, monkeypatch):
        if ibis.options.pyspark is None:
            monkeypatch.setattr(ibis.options, "pyspark", _SparkOptions())
        for name, expr in exprs.items():
            sql = ibis.to_sql(expr, dialect="pyspark")
            sqlglot.parse_one(sql, read="spark")
            assert "`orders`" in sql, name

    def test_features_expression_is_what_the_model_reads(self, crm, exprs):
        # the compiled expression, run here, gives the hand-computed labels of TestFeatures
        df = crm.execute(exprs["features"].order_by("customer_id"))
        assert list(df.is_churned) == [0, 1, 0, 1]


# --- planted truth of the sample data ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads(SAMPLE_TRUTH.read_text())


@pytest.fixture(scope="module")
def sample(sample_store):
    con = duckdb.connect(str(sample_store), read_only=True)
    yield store.ibis_backend(con)
    con.close()


@pytest.fixture(scope="module")
def model(sample) -> churn.ChurnModel:
    return churn.train_churn_model(sample)  # as_of = the last order day, 2026-06-30; N = 180


def _dead_by(truth: dict, day: date) -> set[str]:
    """Customers whose planted dropout (the date of their last purchase) is on or before ``day``."""
    customers = truth["customers"]
    return {cid for cid, alive, dropout in zip(customers["customer_id"], customers["is_alive"],
                                               customers["dropout_date"])
            if not alive and date.fromisoformat(dropout) <= day}


class TestSampleTruth:
    def test_model_setup(self, model, truth):
        assert model.as_of == date.fromisoformat(truth["generator"]["as_of"]) == date(2026, 6, 30)
        # the test cut-off is the generator's churn cut-off: the same 180-day horizon
        assert model.test_cutoff == date.fromisoformat(truth["churn"]["cutoff_date"])
        assert model.inactive_days == truth["churn"]["horizon_days"]
        assert len(model.features) == 13  # every optional source is in the sample

    def test_out_of_time_quality(self, model):
        # measured on the bundled sample: ROC AUC 0.714, Brier 0.215, base rate 0.480 (Brier of the base rate:
        # 0.480 * 0.520 = 0.250), calibration bins within 0.04 of the diagonal. Thresholds sit a little below.
        assert model.roc_auc > 0.69
        base = model.test_churn_rate
        assert model.brier_score < base * (1 - base) - 0.025
        assert 0.4 < base < 0.55
        gap = (model.calibration.mean_predicted_probability - model.calibration.observed_churn_rate).abs()
        assert len(model.calibration) == 10
        assert list(model.calibration.columns) == list(churn.CALIBRATION_LABELS)
        assert gap.max() < 0.06
        assert model.calibration.mean_predicted_probability.is_monotonic_increasing

    def test_true_churners_rank_high(self, model, truth):
        # Among the customers scored at as_of (a purchase in the last 180 days), the planted dead ones dropped out at
        # their last purchase. Alive customers with a low purchase rate go just as quiet, and one-time buyers are
        # alive by construction (BG/NBD drops out only after a repeat purchase) yet churn often under the
        # operational label, so the truth AUC stays well below 1: measured 0.703 (0.81 for the planted BG/NBD
        # P(alive) with the true parameters, the ceiling). Threshold a little below the measurement.
        dead = set(truth["churn"]["true_churner_ids"])
        risk = model.at_risk
        is_dead = risk.customer_id.isin(dead)
        assert 0.2 < is_dead.mean() < 0.35  # measured 0.279 of 2,468
        assert roc_auc_score(is_dead, risk.churn_probability) > 0.68
        decile = pd.qcut(risk.churn_probability.rank(method="first"), 10, labels=False)
        by_decile = is_dead.groupby(decile).mean()
        assert by_decile.iloc[-1] > 0.5 > 0.1 > by_decile.iloc[0]  # measured 0.58 and 0.06

    def test_labels_agree_with_the_planted_lives(self, sample, truth):
        cutoff = date.fromisoformat(truth["churn"]["cutoff_date"])
        labels = churn.churn_features(sample, cutoff, truth["churn"]["horizon_days"]).set_index("customer_id")
        dead = labels.index.isin(list(_dead_by(truth, cutoff)))
        died_after = labels.index.isin(truth["churn"]["died_after_cutoff_ids"])
        # dead by the cut-off → never buys again → labelled churned, every one (measured 569 of 1,929)
        assert dead.sum() > 500 and (labels.is_churned[dead] == 1).all()
        # died after the cut-off = bought after it → labelled stayed, every one (318 of the 377 are in the population)
        assert died_after.sum() > 300 and (labels.is_churned[died_after] == 0).all()
        # label rate = dead share + the alive who went quiet: 0.480 = 0.295 + 0.705 * 0.262
        rate, dead_share = labels.is_churned.mean(), dead.mean()
        quiet = labels.is_churned[~dead].mean()
        assert rate == pytest.approx(dead_share + (1 - dead_share) * quiet)
        assert dead_share < rate < dead_share + 0.5 * (1 - dead_share)

    def test_status_agrees_with_the_planted_lives(self, sample, truth):
        as_of, horizon = date(2026, 6, 30), truth["churn"]["horizon_days"]
        status = churn.churn_status(sample, as_of, horizon).set_index("customer_id")
        long_dead = status.index.isin(list(_dead_by(truth, date.fromisoformat(truth["churn"]["cutoff_date"]))))
        assert long_dead.sum() > 1500 and status.is_churned[long_dead].all()  # measured 1,759
        true_churners = status.index.isin(truth["churn"]["true_churner_ids"])
        assert status.is_churned[true_churners].mean() > 0.6 > 0.4 > status.is_churned[~true_churners].mean()

    def test_late_deliveries_are_seen(self, model, sample, truth):
        # planted: a late delivery ends a customer's purchases with probability 0.15, so a late last purchase marks
        # a dropout: 96% of the late-delivery dropouts active at as_of have one, 6% of the others
        current = churn.churn_features(sample, model.as_of, model.inactive_days, with_label=False)
        late = current.customer_id.isin(truth["churn"]["late_delivery_dropout_ids"])
        assert late.sum() > 30
        assert current.is_last_purchase_late[late].mean() > 0.9
        assert current.is_last_purchase_late[~late].mean() < 0.1
        drivers = model.drivers.set_index("feature")
        assert drivers.loc["is_last_purchase_late", "direction"] == 1
        assert drivers.loc["is_last_purchase_late", "importance"] > 0
        risk = model.at_risk
        is_late = risk.customer_id.isin(truth["churn"]["late_delivery_dropout_ids"])
        assert risk.churn_probability[is_late].mean() > risk.churn_probability[~is_late].mean() + 0.08

    def test_drivers_read_like_the_generator(self, model):
        drivers = model.drivers.set_index("feature")
        # the BG/NBD signal: being overdue by one's own rhythm, then a slow rhythm, then a short life so far
        assert list(model.drivers.feature[:3]) == ["recency_gap_ratio", "days_between_purchases", "tenure_days"]
        assert drivers.loc["recency_gap_ratio", "reading"] == "Longer overdue by their own rhythm → more churn"
        assert drivers.loc["tenure_days", "reading"] == "Longer as a customer → less churn"
        assert model.drivers.importance.is_monotonic_decreasing

    def test_at_risk_list(self, model, sample):
        risk = model.at_risk
        status = churn.churn_status(sample, model.as_of, model.inactive_days)
        assert len(risk) == (~status.is_churned).sum() == 2468
        assert risk.customer_id.is_unique
        assert risk.churn_probability.between(0, 1).all()
        assert risk.revenue_at_risk.is_monotonic_decreasing
        assert (risk.top_reason != churn.NO_REASON).mean() > 0.9
        top = risk.iloc[0]
        assert top.top_reason.startswith("Overdue: ")

    def test_cohorts(self, sample, truth):
        df = churn.cohort_retention(sample, date(2026, 6, 30))
        # 36 monthly cohorts (2023-07 .. 2026-06), every customer has a signup date
        assert df.cohort_month.nunique() == 36
        first = df[df.months_since == 0]
        assert first.cohort_size.sum() == truth["generator"]["n_customers"] == 5000
        # every sample customer's first purchase is on the signup day, so month 0 holds every buyer
        buyers = len(churn.churn_status(sample, date(2026, 6, 30)))
        assert first.active_customers.sum() == buyers >= len(truth["customers"]["customer_id"])
        # the newest cohort has only month 0; 2026-06-30 ends its month, so nothing is partial
        assert len(df[df.cohort_month == pd.Timestamp("2026-06-01")]) == 1
        assert not df.is_partial_month.any()
        pooled = df.groupby("months_since").active_customers.sum() / df.groupby("months_since").cohort_size.sum()
        # buy-till-you-die: retention falls from month 1 to month 12 (measured 0.30 and 0.10)
        assert pooled[1] > 0.25 > 0.12 > pooled[12]


def test_sample_features_do_not_leak(sample_store, tmp_path, truth):
    """On a copy of the sample, erasing everything after the cut-off day changes no feature."""
    cutoff = date.fromisoformat(truth["churn"]["cutoff_date"])
    path = tmp_path / "crm.duckdb"
    shutil.copy(sample_store, path)
    con = duckdb.connect(str(path))
    try:
        backend = store.ibis_backend(con)
        before = churn.churn_features(backend, cutoff, 180).drop(columns="is_churned")  # reads the label window
        end = datetime(2026, 1, 2)
        con.execute("DELETE FROM orders WHERE ordered_at >= ?", [end])
        con.execute("DELETE FROM support_tickets WHERE created_at >= ?", [end])
        con.execute("DELETE FROM campaign_contacts WHERE contacted_at >= ?", [end])
        con.execute("UPDATE shipments SET delivered_at = NULL WHERE delivered_at >= ?", [end])
        after = churn.churn_features(backend, cutoff, 180, with_label=False)
    finally:
        con.close()
    assert len(before) == 1929
    pd.testing.assert_frame_equal(before, after)
