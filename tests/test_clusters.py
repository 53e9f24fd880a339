"""Behavioural clusters: features by hand, two obvious groups and their words, and the sample's planted behaviour."""

import json
from datetime import date

import ibis
import numpy as np
import pandas as pd
import pytest
import sqlglot

from crm_core import clusters, store
from crm_core.clusters import BehaviourClusters
from crm_core.sample import SAMPLE_DIR

AS_OF = date(2024, 3, 31)


@pytest.fixture
def backend(con):
    con.execute("""INSERT INTO orders (order_id, customer_id, ordered_at, amount, channel, is_return) VALUES
        ('1', 'A', '2024-01-01 10:00', 100, 'web', false), ('2', 'A', '2024-03-01 10:00', 50, 'store', false),
        ('3', 'A', '2024-03-11 10:00', -25, 'web', true),
        ('4', 'B', '2023-12-31 10:00', 40, NULL, false), ('5', 'B', '2024-04-02 10:00', 99, 'web', false),
        ('6', 'C', '2024-02-01 10:00', -10, 'web', true),
        ('7', 'D', '2024-03-31 23:00', 20, ' Web ', NULL),
        ('8', NULL, '2024-03-01 10:00', 70, 'web', false)""")
    con.execute("""INSERT INTO support_tickets (ticket_id, customer_id, created_at) VALUES
        ('t1', 'A', '2024-02-01 09:00'), ('t2', 'A', '2024-04-01 09:00'), ('t3', 'C', '2024-02-02 09:00')""")
    return store.ibis_backend(con)


class TestFeatures:
    def test_hand_computed(self, backend):
        f = clusters.cluster_features(backend, AS_OF, clusters.ALL_FEATURES).set_index("customer_id")
        # C only returned; B's second order and A's second ticket come after AS_OF; order 8 has no customer
        assert list(f.index) == ["A", "B", "D"]
        # A: last purchase 1 Mar → 30 days, first 1 Jan → 90 days (31 + 29 + 30); B: 31 Dec → 91; D: on AS_OF
        assert f.recency_days.tolist() == [30, 91, 0]
        assert f.tenure_days.tolist() == [90, 91, 0]
        assert f.frequency.tolist() == [2, 1, 1]
        assert f.monetary.tolist() == pytest.approx([125, 40, 20])  # A: 100 + 50 - 25
        assert f.avg_order_value.tolist() == pytest.approx([75, 40, 20])  # A: (100 + 50) / 2
        # A: one of two purchases on the web; B: no channel is not web; D: ' Web ' is web
        assert f.web_share.tolist() == pytest.approx([0.5, 0, 1])
        assert f.return_rate.tolist() == pytest.approx([25 / 150, 0, 0])
        assert f.tickets_per_order.tolist() == pytest.approx([0.5, 0, 0])

    def test_chosen_features_only(self, backend):
        f = clusters.cluster_features(backend, AS_OF, ("frequency", "web_share"))
        assert list(f.columns) == ["customer_id", "frequency", "web_share"]

    def test_unknown_feature(self, backend):
        with pytest.raises(ValueError, match=r"Unknown feature\(s\) \['spend'\]"):
            clusters.cluster_features(backend, AS_OF, ("frequency", "spend"))

    def test_empty_database_says_why(self, con):
        message = r"Only 0 customer\(s\) have bought by 2024-03-31; clustering needs at least 3"
        with pytest.raises(ValueError, match=message):
            clusters.clusters(store.ibis_backend(con), AS_OF)

    def test_compiles_for_postgres(self, backend):
        expr = clusters.cluster_features_expr(backend.table("orders"), backend.table("support_tickets"), AS_OF,
                                              clusters.ALL_FEATURES)
        sql = ibis.to_sql(expr, dialect="postgres")
        sqlglot.parse_one(sql, read="postgres")
        assert '"support_tickets"' in sql


def two_groups() -> pd.DataFrame:
    """Ten recent, frequent, big web spenders and ten lapsed one-time small buyers in store."""
    rng = np.random.default_rng(7)
    n = 10
    big = pd.DataFrame({"recency_days": rng.integers(2, 20, n), "frequency": rng.integers(15, 30, n),
                        "monetary": rng.uniform(1500, 3000, n), "web_share": rng.uniform(0.8, 1.0, n)})
    small = pd.DataFrame({"recency_days": rng.integers(300, 700, n), "frequency": np.ones(n, dtype=int),
                          "monetary": rng.uniform(10, 40, n), "web_share": np.zeros(n)})
    frame = pd.concat([small, big], ignore_index=True)
    frame.insert(0, "customer_id", [f"C{i:02d}" for i in range(2 * n)])
    return frame


class TestModel:
    def test_two_obvious_groups(self):
        model = BehaviourClusters().fit(two_groups())
        assert model.k_ == 2
        assert model.silhouette_by_k_[2] == max(model.silhouette_by_k_.values())
        assert set(model.silhouette_by_k_) == set(range(2, 11))
        # numbered by revenue: the big spenders (rows 10-19) are cluster 0
        assert model.labels_.tolist() == [1] * 10 + [0] * 10
        assert model.names_ == {0: "recent frequent big spenders, mostly web",
                                1: "lapsed one-time low spenders, mostly in store or by phone"}
        p = model.profiles_.set_index("cluster")
        assert p.customers.tolist() == [10, 10]
        assert p.share_of_customers.tolist() == pytest.approx([0.5, 0.5])
        assert p.revenue_share.sum() == pytest.approx(1.0) and p.revenue_share[0] > 0.95
        assert p.median_frequency[1] == 1 and p.median_web_share[1] == 0

    def test_fixed_seed_same_labels(self, sample_features):
        first = BehaviourClusters(random_state=3).fit(sample_features)
        second = BehaviourClusters(random_state=3).fit(sample_features)
        assert np.array_equal(first.labels_, second.labels_)
        assert first.silhouette_by_k_ == second.silhouette_by_k_

    def test_n_clusters_is_respected(self, sample_features):
        model = BehaviourClusters(n_clusters=6).fit(sample_features)
        assert model.k_ == 6
        assert list(model.silhouette_by_k_) == [6]
        assert sorted(np.unique(model.labels_)) == list(range(6))
        assert model.profiles_.customers.sum() == len(sample_features)
        # numbered by revenue, largest first
        assert model.profiles_.revenue.is_monotonic_decreasing
        # predict gives the fitted clusters back, in the same numbering
        assert np.array_equal(model.predict(sample_features), model.labels_)

    def test_words_come_from_the_feature_table(self, monkeypatch):
        monkeypatch.setitem(clusters.FEATURES, "web_share", clusters.Feature(
            "web_share", "Web", "", "none", "offline", "online", "qualifier", 1))
        model = BehaviourClusters().fit(two_groups())
        assert model.names_[0] == "recent frequent big spenders, online"

    def test_bad_input(self):
        with pytest.raises(ValueError, match="Required column web_share missing"):
            BehaviourClusters().fit(two_groups().drop(columns="web_share"))
        with pytest.raises(ValueError, match="k_range must be"):
            BehaviourClusters(k_range=(1, 3)).fit(two_groups())
        with pytest.raises(ValueError, match="at least two features"):
            BehaviourClusters(features=("frequency",)).fit(two_groups())


@pytest.fixture(scope="module")
def sample_backend(sample_store):
    con = store.connect(sample_store)  # the same configuration as the other tests' connections in this process
    yield store.ibis_backend(con)
    con.close()


@pytest.fixture(scope="module")
def sample_features(sample_backend):
    return clusters.cluster_features(sample_backend, date(2026, 6, 30))


@pytest.fixture(scope="module")
def planted(sample_backend):
    """The default clusters of the sample, with each customer's planted λ and web registration."""
    result = clusters.clusters(sample_backend, date(2026, 6, 30))
    truth = json.loads((SAMPLE_DIR / "ground_truth.json").read_text(encoding="utf-8"))
    lam = pd.DataFrame({"customer_id": truth["customers"]["customer_id"],
                        "lambda_per_week": truth["customers"]["lambda_per_week"]})
    web = sample_backend.execute(sample_backend.table("customers").select("customer_id", "is_web_registered"))
    return result, result.assignments.merge(lam, on="customer_id", how="left").merge(web, on="customer_id")


class TestSample:
    """The generator plants each customer's purchase rate λ and a web or store habit (is_web_registered)."""

    def test_result_shape(self, planted, sample_features):
        result, a = planted
        assert len(result.assignments) == len(sample_features)
        assert set(result.silhouette_by_k) == set(range(2, 11))
        assert result.k == max(result.silhouette_by_k, key=result.silhouette_by_k.get)
        assert result.profiles.customers.sum() == len(sample_features)
        assert result.profiles.revenue_share.sum() == pytest.approx(1.0)
        assert {"median_tenure_days", "median_return_rate"} <= set(result.profiles.columns)  # every feature described
        assert a[["pc1", "pc2"]].notna().all().all() and sum(result.explained_variance) < 1

    def test_frequent_cluster_has_the_high_planted_rate(self, planted):
        _, a = planted
        frequent = a.cluster_name.str.contains(r"\bfrequent\b")
        assert frequent.any()
        # measured: mean true λ 0.196 per week in "frequent big spenders" against 0.109 in the rest
        assert a.lambda_per_week[frequent].mean() > 1.5 * a.lambda_per_week[~frequent].mean()

    def test_channel_clusters_follow_web_registration(self, planted):
        _, a = planted
        by_name = a.groupby("cluster_name").is_web_registered.mean()
        web = by_name[by_name.index.str.contains("mostly web")]
        store_ = by_name[by_name.index.str.contains("mostly in store")]
        assert len(web) >= 1 and len(store_) >= 1
        # measured: 82% web-registered in "buyers, mostly web", 24% in "buyers, mostly in store or by phone"
        # (the planted web shares of orders are 75% for web-registered and 25% for other customers)
        assert web.min() > 0.7 and store_.max() < 0.35

    def test_same_seed_same_result(self, planted, sample_backend):
        result, _ = planted
        again = clusters.clusters(sample_backend, date(2026, 6, 30))
        pd.testing.assert_frame_equal(again.assignments, result.assignments)
        assert again.silhouette_by_k == result.silhouette_by_k
