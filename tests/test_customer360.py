"""Customer 360: search ranking (accents, '%' and SQL metacharacters), profile numbers, timeline order and kinds,
the next best action from service.ACTION_RULES and notes that persist, on a hand-built fixture; and on the sample."""

import shutil
from datetime import date, datetime

import ibis
import pandas as pd
import pytest
import sqlglot
from ibis.config import Config

from crm_core import customer360 as c360
from crm_core import metrics, service, store, value
from crm_core.value import CostRates

AS_OF = date(2024, 3, 31)  # measured at 2024-04-01 00:00
RATES = CostRates(ticket_cost_by_channel={"email": 1.0, "phone": 1.0}, default_ticket_cost=1.0,
                  default_contact_cost=0.0, default_margin_rate=0.5)


def _fill(con):
    con.execute("""INSERT INTO customers (customer_id, name, first_name, last_name, email, region, signup_date) VALUES
        ('C1', 'Zoë Müller', 'Zoë', 'Müller', 'zoe.m@example.org', 'North', '2023-01-05'),
        ('C10', 'Ann 100% Cotton Ltd', NULL, NULL, 'ann@shop.example', 'South', '2023-02-01'),
        ('C2', NULL, 'Bob', 'Stone', 'C1@Example.org', 'North', '2023-03-01'),
        ('D7', 'Dee Dash', 'Dee', 'Dash', 'd_7@example.org', 'East', NULL)""")
    con.execute("""INSERT INTO orders (order_id, customer_id, ordered_at, amount, channel, status, is_return) VALUES
        ('o1', 'C1', '2024-01-10 10:00', 100, 'web', 'completed', false),
        ('o2', 'C1', '2024-02-20 12:00', 80, 'store', 'completed', false),
        ('o3', 'C1', '2024-03-01 09:00', -30, 'web', 'returned', true),
        ('o4', 'C2', '2024-03-15 10:00', 50, 'web', 'completed', false),
        ('o5', 'C10', '2023-12-01 10:00', 20, 'web', 'completed', false),
        ('o6', 'C1', '2024-04-05 10:00', 999, 'web', 'completed', false)""")
    # Default SLA targets (first response / resolution, hours): normal 24 / 72.
    con.execute("""INSERT INTO support_tickets (ticket_id, customer_id, created_at, first_response_at, resolved_at,
        channel, priority, category, subject, csat) VALUES
        ('t1', 'C1', '2024-03-28 09:00', NULL, NULL, 'email', 'normal', 'delivery', 'Where is my parcel?', NULL),
        ('t2', 'C1', '2024-01-12 09:00', '2024-01-12 10:00', '2024-01-13 09:00', 'phone', 'normal', 'billing',
         NULL, 4),
        ('t3', 'C2', '2024-03-31 20:00', NULL, NULL, 'email', 'normal', 'returns', NULL, NULL)""")
    con.execute("INSERT INTO campaigns (campaign_id, campaign_name, channel, start_date) VALUES "
                "('K1', 'Spring sale', 'email', '2024-03-01')")
    con.execute("""INSERT INTO campaign_contacts (campaign_id, customer_id, contact_group, contacted_at, is_sent,
        is_opened, is_clicked, is_converted, attributed_revenue, contact_cost) VALUES
        ('K1', 'C1', 'treatment', '2024-03-02 08:00', true, true, true, false, 12.5, 0.5)""")
    con.execute("""INSERT INTO shipments (shipment_id, order_id, carrier, promised_date, shipped_at, delivered_at)
        VALUES ('sh1', 'o1', 'FastCo', '2024-01-14', '2024-01-11 08:00', '2024-01-13 15:00'),
               ('sh2', 'o2', 'SlowCo', '2024-02-22', '2024-02-21 08:00', '2024-02-24 11:00'),
               ('sh4', 'o2', 'SlowCo', '2024-03-29', '2024-03-27 08:00', NULL),
               ('sh3', 'o4', 'FastCo', '2024-03-18', '2024-03-16 08:00', '2024-03-17 10:00')""")
    con.execute("""INSERT INTO surveys (survey_id, customer_id, responded_at, nps_score, comment, channel) VALUES
        ('s1', 'C1', '2024-03-05 10:00', 9, 'Great service', 'email')""")
    con.execute("""INSERT INTO customer_notes (note_id, customer_id, created_at, author, note) VALUES
        ('n1', 'C1', '2024-02-01 09:00', 'Sam', 'Prefers phone calls'),
        ('n2', 'C1', '2024-06-01 09:00', 'Kim', 'Moved to Leeds')""")


@pytest.fixture
def backend(con):
    _fill(con)
    return store.ibis_backend(con)


def _ids(backend, query):
    return c360.search_customers(backend, query)["customer_id"].tolist()


class TestSearch:
    def test_ranking_exact_id_then_prefix_then_contains(self, backend):
        df = c360.search_customers(backend, "C1")
        # C1 is the id; C10 starts with it; C2's e-mail "C1@Example.org" contains it (case-insensitive)
        assert df["customer_id"].tolist() == ["C1", "C10", "C2"]
        assert df["match_rank"].tolist() == [0, 2, 3]
        assert df["match"].tolist() == ["customer id", "customer id starts with", "name or e-mail"]
        assert list(df.columns) == list(c360.SEARCH_COLUMNS)
        # C2 has no full name: first and last name stand in
        assert df.set_index("customer_id").loc["C2", "name"] == "Bob Stone"

    def test_exact_email_ranks_before_prefix(self, backend):
        df = c360.search_customers(backend, "  c1@example.ORG ")
        assert df["customer_id"].tolist() == ["C2"]
        assert df["match_rank"].tolist() == [1]

    @pytest.mark.parametrize("query", ["zoe", "ZOE MULLER", "müller", "Zoë", "mul"],
                             ids=["plain", "upper", "umlaut", "accented", "part"])
    def test_case_and_accent_insensitive(self, backend, query):
        assert _ids(backend, query) == ["C1"]

    def test_percent_is_a_literal_character(self, backend):
        assert _ids(backend, "%") == ["C10"]
        assert _ids(backend, "100% c") == ["C10"]

    def test_underscore_is_a_literal_character(self, backend):
        assert _ids(backend, "_") == ["D7"]

    @pytest.mark.parametrize("query", ["' OR 1=1 --", "'; DROP TABLE customers; --", "b.s", "(", "[a", "\\", "*",
                                       "a|b", '"'],
                             ids=["or-1=1", "drop", "dot", "paren", "bracket", "backslash", "star", "pipe", "quote"])
    def test_metacharacters_find_nothing_and_raise_nothing(self, backend, query):
        # "b.s" as a pattern would match "Bob Stone" ("b s"); as text nobody has it
        assert _ids(backend, query) == []
        assert _ids(backend, "C1") == ["C1", "C10", "C2"]  # the table is intact

    def test_empty_query_and_limit(self, backend):
        assert c360.search_customers(backend, "   ").empty
        assert _ids(backend, "example") == ["C1", "C10", "C2", "D7"]  # every e-mail; ties by customer_id
        assert c360.search_customers(backend, "e", limit=2)["customer_id"].tolist() == ["C1", "C10"]
        with pytest.raises(ValueError, match="limit must be"):
            c360.search_customers(backend, "a", limit=0)
        with pytest.raises(ValueError, match="at most 200"):
            c360.search_customers(backend, "x" * 201)

    def test_accent_pattern(self):
        pattern = c360._accent_pattern(c360._fold_text("Zoë.S"))
        assert pattern.startswith("[z") and "\\." in pattern and "|œ)" in pattern


class TestProfile:
    def test_hand_computed(self, backend):
        p = c360.profile(backend, "C1", AS_OF, rates=RATES)
        assert (p.customer_id, p.name, p.email, p.region) == ("C1", "Zoë Müller", "zoe.m@example.org", "North")
        assert p.signup_date == date(2023, 1, 5)
        # purchases by AS_OF: o1, o2 (o3 is a return, o6 is after): last 2024-02-20, 40 days before 2024-03-31
        assert (p.frequency, p.monetary, p.recency_days) == (2, pytest.approx(150.0), 40)
        assert p.last_order_at == datetime(2024, 2, 20, 12, 0)
        # recency C10 121 d, C1 40, C2 16 → R 1, 3, 5; frequency C1 2 > 1, 1 → F 5; spend 150 > 50 > 20 → M 5
        assert (p.r_score, p.f_score, p.m_score, p.segment) == (3, 5, 5, "Loyal")
        # margin 0.5 x 150 = 75; tickets t1 + t2 at 1 each; the contact costs 0.5: profit 72.5
        # (C2 25 - 1 = 24, C10 10): C1 is ranked first of 3 → Platinum
        assert (p.revenue, p.orders, p.profit, p.value_tier) == (pytest.approx(150.0), 2, pytest.approx(72.5),
                                                                 "Platinum")
        # t1 open 87 h without a reply (> 24 h): open and breached; t2 answered in 1 h, resolved in 24 h
        assert (p.tickets, p.open_tickets, p.breached_tickets, p.open_breached_tickets) == (2, 1, 1, 1)
        assert p.next_best_action == service.ACTION_RULES[0].action
        assert p.next_best_action.startswith("Platinum customer, breached ticket open")
        assert p.action_urgency == 1
        assert (p.clv, p.p_alive, p.churn_risk) == (None, None, None)

    def test_same_action_as_the_action_list(self, backend):
        actions = service.action_list(backend, AS_OF, rates=RATES).set_index("customer_id")
        assert c360.profile(backend, "C1", AS_OF, rates=RATES).next_best_action == \
            actions.loc["C1", "suggested_action"]

    def test_no_action(self, backend):
        # C2: Silver (profit 24, ranked 2nd of 3) with an open ticket inside its SLA: not a top tier
        p = c360.profile(backend, "C2", AS_OF, rates=RATES)
        assert (p.value_tier, p.open_tickets, p.breached_tickets) == ("Silver", 1, 0)
        assert p.name == "Bob Stone"  # no full name: first and last name
        assert (p.next_best_action, p.action_urgency) == (c360.NO_ACTION, None)
        # D7 has never bought: no segment, no value row
        d = c360.profile(backend, "D7", AS_OF, rates=RATES)
        assert (d.segment, d.frequency, d.value_tier, d.revenue, d.tickets) == (None, 0, None, 0.0, 0)
        assert d.next_best_action == c360.NO_ACTION

    def test_clv_frame(self, backend):
        frame = pd.DataFrame({"customer_id": ["C1", "C2"], "p_alive": [0.8, 0.3], "expected_purchases": [2.5, 0.2],
                              "clv": [310.0, 12.0]})
        p = c360.profile(backend, "C1", AS_OF, clv_frame=frame, rates=RATES)
        assert (p.clv, p.p_alive, p.churn_risk, p.expected_purchases) == (310.0, 0.8, pytest.approx(0.2), 2.5)

    def test_unknown_customer(self, backend):
        with pytest.raises(ValueError, match="No customer 'nobody'"):
            c360.profile(backend, "nobody", AS_OF)


class TestTimeline:
    def test_order_and_kinds(self, backend):
        t = c360.timeline(backend, "C1", AS_OF)
        assert list(t.columns) == list(c360.TIMELINE_COLUMNS)
        assert list(zip(t["kind"], t["source_id"])) == [
            ("note", "n2"),                   # 2024-06-01: notes are shown whatever their date
            ("shipment late", "sh4"),         # promised 2024-03-29, not delivered: late from 2024-03-30 00:00
            ("ticket opened", "t1"),          # 2024-03-28 09:00
            ("survey", "s1"),                 # 2024-03-05
            ("campaign contact", "K1"),       # 2024-03-02
            ("return", "o3"),                 # 2024-03-01
            ("shipment late", "sh2"),         # delivered 2024-02-24, promised 02-22
            ("order", "o2"),                  # 2024-02-20
            ("note", "n1"),                   # 2024-02-01
            ("shipment delivered", "sh1"),    # 2024-01-13 15:00, promised 01-14
            ("ticket resolved", "t2"),        # 2024-01-13 09:00
            ("ticket opened", "t2"),          # 2024-01-12
            ("order", "o1"),                  # 2024-01-10; o6 (2024-04-05) is after AS_OF
        ]
        assert t["at"].is_monotonic_decreasing
        assert t["at"].iloc[1] == pd.Timestamp("2024-03-30")
        rows = t.set_index(["kind", "source_id"])
        assert rows.loc[("order", "o2"), "amount"] == 80.0
        assert rows.loc[("return", "o3"), "amount"] == -30.0
        assert rows.loc[("campaign contact", "K1"), "amount"] == 12.5
        assert pd.isna(rows.loc[("survey", "s1"), "amount"])
        assert rows.loc[("order", "o2"), "title"] == "Order o2"
        assert rows.loc[("order", "o2"), "detail"] == "store · completed"
        assert rows.loc[("campaign contact", "K1"), "title"] == "Campaign Spring sale"
        assert rows.loc[("campaign contact", "K1"), "detail"] == "email · opened · clicked"
        assert rows.loc[("ticket opened", "t1"), "title"] == "Ticket t1: Where is my parcel?"
        assert rows.loc[("ticket opened", "t1"), "detail"] == "email · normal priority · delivery · open · SLA breached"
        assert rows.loc[("ticket resolved", "t2"), "detail"] == "after 24.0 h · CSAT 4"
        assert rows.loc[("shipment late", "sh2"), "detail"] == "SlowCo · promised 2024-02-22 · days late: 2"
        assert rows.loc[("survey", "s1"), "title"] == "NPS 9"
        assert rows.loc[("survey", "s1"), "detail"] == "email · Great service"
        assert rows.loc[("note", "n1"), "title"] == "Note by Sam"
        assert rows.loc[("note", "n1"), "detail"] == "Prefers phone calls"
        assert set(t["kind"]) <= set(c360.TIMELINE_KINDS)

    def test_limit_and_later_as_of(self, backend):
        assert c360.timeline(backend, "C1", AS_OF, limit=3)["source_id"].tolist() == ["n2", "sh4", "t1"]
        # by 2024-04-05 o6 exists (and becomes the newest event but the note)
        later = c360.timeline(backend, "C1", date(2024, 4, 5))
        assert later["source_id"].tolist()[:2] == ["n2", "o6"]
        assert c360.timeline(backend, "nobody", AS_OF).empty


class TestNotes:
    def test_add_persists_across_reconnect(self, tmp_path):
        path = tmp_path / "crm.duckdb"
        con = store.connect(path)
        _fill(con)
        text = "Call after 5pm; '); DROP TABLE customers; -- was her joke"
        note_id = c360.add_note(con, "C2", "  Priya ", text, at=datetime(2024, 4, 2, 10, 30, 15, 999))
        con.close()
        con = store.connect(path, read_only=True)
        try:
            df = c360.notes(store.ibis_backend(con), "C2")
            assert df["note_id"].tolist() == [note_id]
            assert df["author"].tolist() == ["Priya"]
            assert df["note"].tolist() == [text]
            assert df["created_at"].tolist() == [pd.Timestamp("2024-04-02 10:30:15")]
            assert con.execute("SELECT count(*) FROM customers").fetchone()[0] == 4
            # the note is on the timeline too
            t = c360.timeline(store.ibis_backend(con), "C2", AS_OF)
            assert t.loc[t["kind"] == "note", "source_id"].tolist() == [note_id]
        finally:
            con.close()

    def test_notes_newest_first(self, backend):
        assert c360.notes(backend, "C1")["note_id"].tolist() == ["n2", "n1"]

    @pytest.mark.parametrize("customer_id, author, text, message", [
        ("C1", "Sam", "   ", "note is empty"),
        ("C1", " ", "Likes tea", "needs an author"),
        ("nobody", "Sam", "Likes tea", "No customer 'nobody'"),
        ("C1", "Sam", "x" * 5001, "keep it under 5,000"),
    ], ids=["empty-text", "empty-author", "unknown-customer", "too-long"])
    def test_validation(self, con, customer_id, author, text, message):
        _fill(con)
        with pytest.raises(ValueError, match=message):
            c360.add_note(con, customer_id, author, text)
        assert con.execute("SELECT count(*) FROM customer_notes").fetchone()[0] == 2


class _SparkOptions(Config):
    treat_nan_as_null: bool = False


class TestPortability:
    @pytest.fixture
    def exprs(self, backend):
        tables = {n: backend.table(n) for n in (*c360._TIMELINE_TABLES, "customers")}
        return {"search": c360._search_expr(tables["customers"], "Zoë 100%", 20),
                "timeline": c360._timeline_expr(tables, "C1", AS_OF, service.DEFAULT_POLICY)}

    def test_compiles_for_postgres(self, exprs):
        for expr in exprs.values():
            sqlglot.parse_one(ibis.to_sql(expr, dialect="postgres"), read="postgres")

    def test_compiles_for_spark(self, exprs, monkeypatch):
        if ibis.options.pyspark is None:
            monkeypatch.setattr(ibis.options, "pyspark", _SparkOptions())
        for expr in exprs.values():
            sqlglot.parse_one(ibis.to_sql(expr, dialect="pyspark"), read="spark")


@pytest.fixture(scope="module")
def sample(sample_store, tmp_path_factory):
    path = tmp_path_factory.mktemp("c360") / "crm.duckdb"
    shutil.copy(sample_store, path)
    con = store.connect(path)
    yield con, store.ibis_backend(con)
    con.close()


class TestSample:
    def test_search_by_email_finds_the_customer_first(self, sample):
        con, backend = sample
        customer_id, email = con.execute(
            "SELECT customer_id, email FROM customers WHERE email IS NOT NULL ORDER BY customer_id LIMIT 1 OFFSET 99"
        ).fetchone()
        df = c360.search_customers(backend, email.upper())
        assert df["customer_id"].iloc[0] == customer_id
        assert df["match_rank"].iloc[0] == 1

    def test_timeline_counts_every_order(self, sample):
        con, backend = sample
        customer_id, purchases, returns = con.execute("""
            SELECT customer_id, count(*) FILTER (WHERE NOT (coalesce(is_return, false) OR amount < 0)),
                   count(*) FILTER (WHERE coalesce(is_return, false) OR amount < 0)
            FROM orders WHERE customer_id IS NOT NULL GROUP BY customer_id
            ORDER BY count(*) DESC, customer_id LIMIT 1""").fetchone()
        t = c360.timeline(backend, customer_id)
        assert (t["kind"] == "order").sum() == purchases > 5
        assert (t["kind"] == "return").sum() == returns
        assert t["at"].is_monotonic_decreasing

    def test_profile_agrees_with_the_action_list(self, sample):
        _, backend = sample
        as_of = metrics.data_as_of(backend)
        values = value.customer_value(backend, as_of)  # the page passes its cached frame the same way
        actions = service.action_list(backend, as_of, limit=5, values=values)
        assert len(actions) == 5
        for row in actions.itertuples():
            p = c360.profile(backend, row.customer_id, values=values)
            assert p.as_of == as_of
            assert (p.next_best_action, p.value_tier) == (row.suggested_action, row.value_tier)
            assert p.open_tickets == row.open_tickets
