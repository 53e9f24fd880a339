"""RFM scores and segments on a fixture whose ranks can be checked on paper."""

from datetime import date

import pytest

from crm_core import metrics, segments, store

AS_OF = date(2024, 3, 31)


@pytest.fixture
def backend(con):
    con.execute("""INSERT INTO customers (customer_id, region) VALUES
        ('A', 'North'), ('B', 'North'), ('C', 'South'), ('D', 'South'), ('E', 'South'), ('F', 'North')""")
    con.execute("""INSERT INTO orders (order_id, customer_id, ordered_at, amount, is_return) VALUES
        ('1', 'A', '2024-03-30 10:00', 100, false), ('2', 'A', '2024-03-01 09:00', 50, false),
        ('3', 'A', '2024-02-01 09:00', 50, false),
        ('4', 'B', '2024-03-20 12:00', 30, NULL),
        ('5', 'C', '2023-12-01 08:00', 500, false), ('6', 'C', '2023-11-01 08:00', 400, false),
        ('7', 'C', '2023-12-05 08:00', -100, true),
        ('8', 'D', '2023-06-01 08:00', 20, false),
        ('9', 'E', '2024-01-01 08:00', -10, true),
        ('10', 'F', '2024-04-05 08:00', 99, false),
        ('11', NULL, '2024-03-15 08:00', 70, false)""")
    return store.ibis_backend(con)


def test_rfm_hand_computed(backend):
    df = segments.rfm(backend, AS_OF).set_index("customer_id")
    # E has only a return, F buys after AS_OF, the anonymous order has no customer: none has an RFM row
    assert list(df.index) == ["A", "B", "C", "D"]
    assert list(df.recency_days) == [1, 11, 121, 304]
    assert list(df.frequency) == [3, 1, 2, 1]
    assert list(df.monetary) == pytest.approx([200, 30, 800, 20])  # C: 500 + 400 - 100
    # percent_rank over 4 customers is 0, 1/3, 2/3, 1 → score 1 + floor(5 * pr), capped at 5
    # recency, worst first: D 304 → 1, C 121 → 2, B 11 → 4, A 1 → 5
    assert list(df.r_score) == [5, 4, 2, 1]
    # frequency: B and D tie at 1 (both pr 0 → 1), C 2 → 4, A 3 → 5
    assert list(df.f_score) == [5, 1, 4, 1]
    # monetary: D 20 → 1, B 30 → 2, A 200 → 4, C 800 → 5
    assert list(df.m_score) == [4, 2, 5, 1]
    # FM = floor((F + M) / 2): A 4, B 1, C 4, D 1
    assert list(df.fm_score) == [4, 1, 4, 1]
    assert list(df.segment) == ["Champions", "Promising", "At risk", "Lost"]


def test_every_grid_cell_has_exactly_one_segment():
    for r in range(1, 6):
        for fm in range(1, 6):
            hits = [rule.segment for rule in segments.SEGMENT_RULES
                    if rule.r_min <= r <= rule.r_max and rule.fm_min <= fm <= rule.fm_max]
            assert len(hits) == 1, (r, fm, hits)
    assert set(segments.SEGMENTS) == {rule.segment for rule in segments.SEGMENT_RULES}
    assert len(segments.SEGMENTS) == 11


def test_three_bins(backend):
    df = segments.rfm(backend, AS_OF, bins=3).set_index("customer_id")
    # pr 0, 1/3, 2/3, 1 → 1 + floor(3 * pr) = 1, 2, 3, 3(capped)
    assert list(df.r_score) == [3, 3, 2, 1]


def test_overview_segment_filter(backend):
    ov = metrics.overview(backend, as_of=AS_OF, days=30, segments=("Champions",))
    # Champions = {A}; period 2 Mar - 31 Mar: A bought 100 on 30 Mar; previous period 1 Feb - 1 Mar: 50 + 50
    assert ov["revenue"].value == pytest.approx(100)
    assert ov["revenue"].previous == pytest.approx(100)
    assert ov["active_customers"].value == 1
    assert ov.segments == ("Champions",)
    both = metrics.overview(backend, as_of=AS_OF, days=30, segments=("Champions", "Promising"), regions=("North",))
    assert both["revenue"].value == pytest.approx(130)  # A 100 + B 30, both in North


def test_unknown_segment_is_a_clear_error(backend):
    with pytest.raises(ValueError, match=r"Unknown segment\(s\) \['Whales'\]"):
        metrics.overview(backend, as_of=AS_OF, segments=("Whales",))


def test_segment_summary_hand_computed(backend):
    df = segments.segment_summary(backend, AS_OF).set_index("segment")
    assert list(df.index) == list(segments.SEGMENTS)  # all 11, empty ones too
    # A Champions 200, B Promising 30, C At risk 800, D Lost 20: 4 customers, 1,050 net revenue
    assert df.loc[["Champions", "Promising", "At risk", "Lost"], "customers"].tolist() == [1, 1, 1, 1]
    assert df["customers"].sum() == 4
    assert df.loc["Loyal", "customers"] == 0 and df.loc["Loyal", "revenue"] == 0
    assert df.loc["At risk", "share_of_revenue"] == pytest.approx(800 / 1050)
    assert df.loc["Champions", "share_of_customers"] == pytest.approx(0.25)
    assert df.loc["At risk", "avg_recency_days"] == pytest.approx(121)
    assert segments.revenue_share_at_risk(df.reset_index()) == pytest.approx(800 / 1050)  # C; nobody Can't lose
    north = segments.segment_summary(backend, AS_OF, regions=("North",)).set_index("segment")
    # scores stay global (A is a Champion among all four); the region only picks who is counted: A and B
    assert north["customers"].sum() == 2
    assert north.loc["Champions", "share_of_revenue"] == pytest.approx(200 / 230)


def test_migration_hand_computed(backend):
    # On 31 Jan only C (2 purchases, 800, last 1 Dec) and D (1 purchase, 20, last 1 Jun) are scored: with two
    # customers percent_rank is 0 or 1, so C scores 5/5/5 (Champions) and D 1/1/1 (Lost).
    # On 31 Mar: A Champions, B Promising, C At risk, D Lost (see test_rfm_hand_computed).
    df = segments.migration(backend, date(2024, 1, 31), AS_OF)
    got = [tuple(r) for r in df[["from_segment", "to_segment", "customers"]].itertuples(index=False)]
    assert got == [(segments.NOT_YET_CUSTOMER, "Champions", 1), (segments.NOT_YET_CUSTOMER, "Promising", 1),
                   ("Champions", "At risk", 1), ("Lost", "Lost", 1)]
    assert df["share_of_from"].tolist() == pytest.approx([0.5, 0.5, 1.0, 1.0])
    # revenue between the dates: A 200 (all new), B 30, C 0 (no orders since 31 Jan), D 0
    assert df["revenue"].tolist() == pytest.approx([200, 30, 0, 0])
    moved = segments.migration_customers(backend, date(2024, 1, 31), AS_OF, "Champions", "At risk")
    assert moved["customer_id"].tolist() == ["C"]
    assert moved[["from_recency_days", "to_recency_days"]].iloc[0].tolist() == [61, 121]
    south = segments.migration(backend, date(2024, 1, 31), AS_OF, regions=("South",))
    assert south["customers"].sum() == 2  # C and D; E never bought


def test_migration_rejects_bad_input(backend):
    with pytest.raises(ValueError, match="must be before"):
        segments.migration(backend, AS_OF, date(2024, 1, 1))
    with pytest.raises(ValueError, match="Unknown segment 'Whales'"):
        segments.migration_customers(backend, date(2024, 1, 1), AS_OF, "Whales")


def test_migration_on_sample_conserves_customers(sample_store):
    import duckdb
    con = duckdb.connect(str(sample_store), read_only=True)
    try:
        backend = store.ibis_backend(con)
        flows = segments.migration(backend, date(2025, 12, 31), date(2026, 6, 30))
        summary = segments.segment_summary(backend, date(2026, 6, 30))
        before = segments.segment_summary(backend, date(2025, 12, 31))
    finally:
        con.close()
    # everyone scored at the end is in exactly one flow; everyone scored at the start is still scored at the end
    assert flows["customers"].sum() == summary["customers"].sum()
    by_from = flows.groupby("from_segment")["customers"].sum()
    for seg, n in before.set_index("segment")["customers"].items():
        assert by_from.get(seg, 0) == n, seg
    assert flows.groupby("to_segment")["customers"].sum().to_dict() == {
        s: n for s, n in summary.set_index("segment")["customers"].items() if n}
    assert summary["share_of_revenue"].sum() == pytest.approx(1.0)


def test_equal_spend_ties_whatever_the_float_sum(con):
    # X spent 0.1 + 0.2, Y spent 0.3 in one order: the same money, but in binary floating point
    # 0.1 + 0.2 = 0.30000000000000004 > 0.3. Ranked on the raw sums, Y's percent_rank would be 0 (score 1) and X's 1
    # (score 5); an engine adding in another order could flip them. Equal spend must tie: both pr 0 → score 1.
    con.execute("INSERT INTO customers (customer_id) VALUES ('X'), ('Y')")
    con.execute("""INSERT INTO orders (order_id, customer_id, ordered_at, amount) VALUES
        ('1', 'X', '2024-03-01 09:00', 0.1), ('2', 'X', '2024-03-02 09:00', 0.2),
        ('3', 'Y', '2024-03-01 09:00', 0.3)""")
    df = segments.rfm(store.ibis_backend(con), AS_OF).set_index("customer_id")
    assert df.loc["X", "monetary"] != df.loc["Y", "monetary"]  # the sums do differ in their last bits ...
    assert list(df.m_score) == [1, 1]  # ... and still tie
