"""Tests for crm_core.metrics: every expected number is worked out by hand next to its assertion.

The shared fixture (``crm``) is small enough to check on paper. With ``as_of = 2024-03-31`` and ``days = 30``:

    before previous  2024-01-02 .. 2024-01-31
    previous         2024-02-01 .. 2024-03-01
    current          2024-03-02 .. 2024-03-31

customers   region  signup_date  acquired_on (signup, else first order)
C1          North   2023-12-01   2023-12-01
C2          North   2024-02-10   2024-02-10
C3          South   2024-03-05   2024-03-05
C4          South   -            2024-02-20 (O4)
C5          South   -            2024-03-10 (O11)
C6          North   -            never (no orders)

orders  customer  ordered_at         amount  is_return  period
O1      C1        2024-01-10 09:00    100    false      before previous
O2      C1        2024-02-05 09:00     50    false      previous
O3      C2        2024-02-12 09:00     80    false      previous
O15     C2        2024-02-15 09:00     -8    true       previous (return)
O4      C4        2024-02-20 09:00     40    null       previous (null flag, positive: a purchase)
O14     C1        2024-03-01 23:59     10    false      previous (its last minute)
O5      C1        2024-03-03 09:00    120    false      current
O8      C3        2024-03-06 09:00     90    false      current
O10     -         2024-03-10 09:00     30    false      current (anonymous)
O11     C5        2024-03-10 09:00     70    false      current
O6      C1        2024-03-15 09:00     60    false      current
O9      C2        2024-03-25 09:00    -50    true       current (return)
O7      C2        2024-03-31 12:00    200    false      current (its last day)
O12     C3        2024-03-31 23:30    -20    null       current (null flag, negative: a return)
O13     C4        2024-04-01 00:00    999    false      after as_of

tickets  customer  created_at        resolved_at       open at end of 03-01  open at end of 03-31
T1       C1        2024-02-28 10:00  2024-03-31 18:00  yes                   no
T2       C2        2024-02-25 10:00  2024-03-01 12:00  no                    no
T3       C3        2024-03-20 10:00  -                 no (not created)      yes
T4       C4        2024-03-28 10:00  2024-04-02 08:00  no (not created)      yes
"""

from datetime import date, datetime

import ibis
import pandas as pd
import pytest
import sqlglot
from ibis.config import Config

from crm_core import metrics, store
from crm_core.metrics import Filters, Period, current_and_previous

AS_OF = date(2024, 3, 31)

CUSTOMERS = [
    ("C1", "North", date(2023, 12, 1)),
    ("C2", "North", date(2024, 2, 10)),
    ("C3", "South", date(2024, 3, 5)),
    ("C4", "South", None),
    ("C5", "South", None),
    ("C6", "North", None),
]
ORDERS = [
    ("O1", "C1", datetime(2024, 1, 10, 9), 100.0, False),
    ("O2", "C1", datetime(2024, 2, 5, 9), 50.0, False),
    ("O3", "C2", datetime(2024, 2, 12, 9), 80.0, False),
    ("O15", "C2", datetime(2024, 2, 15, 9), -8.0, True),
    ("O4", "C4", datetime(2024, 2, 20, 9), 40.0, None),
    ("O14", "C1", datetime(2024, 3, 1, 23, 59), 10.0, False),
    ("O5", "C1", datetime(2024, 3, 3, 9), 120.0, False),
    ("O8", "C3", datetime(2024, 3, 6, 9), 90.0, False),
    ("O10", None, datetime(2024, 3, 10, 9), 30.0, False),
    ("O11", "C5", datetime(2024, 3, 10, 9), 70.0, False),
    ("O6", "C1", datetime(2024, 3, 15, 9), 60.0, False),
    ("O9", "C2", datetime(2024, 3, 25, 9), -50.0, True),
    ("O7", "C2", datetime(2024, 3, 31, 12), 200.0, False),
    ("O12", "C3", datetime(2024, 3, 31, 23, 30), -20.0, None),
    ("O13", "C4", datetime(2024, 4, 1), 999.0, False),
]
TICKETS = [
    ("T1", "C1", datetime(2024, 2, 28, 10), datetime(2024, 3, 31, 18)),
    ("T2", "C2", datetime(2024, 2, 25, 10), datetime(2024, 3, 1, 12)),
    ("T3", "C3", datetime(2024, 3, 20, 10), None),
    ("T4", "C4", datetime(2024, 3, 28, 10), datetime(2024, 4, 2, 8)),
]


INSERTS = {
    "customers": "INSERT INTO customers (customer_id, region, signup_date) VALUES (?, ?, ?)",
    "orders": "INSERT INTO orders (order_id, customer_id, ordered_at, amount, is_return) VALUES (?, ?, ?, ?, ?)",
    "support_tickets": (
        "INSERT INTO support_tickets (ticket_id, customer_id, created_at, resolved_at) VALUES (?, ?, ?, ?)"
    ),
}


def insert(con, customers=(), orders=(), tickets=()):
    for table, rows in (("customers", customers), ("orders", orders), ("support_tickets", tickets)):
        if rows:
            con.executemany(INSERTS[table], list(rows))


@pytest.fixture
def crm(con):
    insert(con, CUSTOMERS, ORDERS, TICKETS)
    return con


@pytest.fixture
def backend(crm):
    return store.ibis_backend(crm)


def values(result: metrics.Overview) -> dict[str, tuple]:
    return {k.key: (k.value, k.previous) for k in result.kpis}


class TestPeriods:
    def test_current_and_previous_are_adjacent_and_inclusive(self):
        current, previous = current_and_previous(AS_OF, 30)
        # 30 days ending 03-31 start on 03-02 (March has 31 days); the 30 days before end on 03-01 and start on
        # 02-01 (29 days of February 2024 + 03-01 = 30).
        assert current == Period(date(2024, 3, 2), date(2024, 3, 31))
        assert previous == Period(date(2024, 2, 1), date(2024, 3, 1))
        assert current.days == previous.days == 30

    def test_one_day_period(self):
        current, previous = current_and_previous(AS_OF, 1)
        assert (current.start, current.end, previous.start, previous.end) == (AS_OF, AS_OF, date(2024, 3, 30),
                                                                              date(2024, 3, 30))

    @pytest.mark.parametrize("days", [0, -3, 2.5], ids=["zero", "negative", "fraction"])
    def test_days_must_be_a_positive_whole_number(self, days):
        with pytest.raises(ValueError, match="days must be a whole number of at least 1"):
            current_and_previous(AS_OF, days)

    def test_filters_normalise_regions_and_reject_reversed_dates(self):
        assert Filters(regions="North").regions == ("North",)
        assert Filters(regions=["North", "South"]).regions == ("North", "South")
        with pytest.raises(ValueError, match="Filter start 2024-03-02 is after end 2024-03-01"):
            Filters(date(2024, 3, 2), date(2024, 3, 1))


class TestDataAsOf:
    def test_latest_order_date(self, backend):
        # O13 at 2024-04-01 00:00 is the latest order.
        assert metrics.data_as_of(backend) == date(2024, 4, 1)

    def test_empty_database(self, con):
        assert metrics.data_as_of(store.ibis_backend(con)) is None


class TestOverview:
    def test_every_kpi_by_hand(self, backend):
        result = metrics.overview(backend, as_of=AS_OF, days=30)
        assert (result.period, result.previous_period) == current_and_previous(AS_OF, 30)
        assert [k.key for k in result.kpis] == list(metrics.KPI_KEYS)
        got = values(result)
        # acquired by 03-31: C1..C5 = 5 (C6 has no signup and no order); by 03-01: C1, C2, C4 = 3
        assert got["customers"] == (5, 3)
        # acquired in current: C3 (03-05), C5 (03-10) = 2; in previous: C2 (02-10), C4 (02-20) = 2
        assert got["new_customers"] == (2, 2)
        # purchases in current by C1, C2, C3, C5 (O10 anonymous) = 4; in previous by C1, C2, C4 = 3
        assert got["active_customers"] == (4, 3)
        # current: 120 + 90 + 30 + 70 + 60 - 50 + 200 - 20 = 500 (O13 on 04-01 is out, O14 on 03-01 is previous)
        # previous: 50 + 80 - 8 + 40 + 10 = 172
        assert got["revenue"] == (pytest.approx(500.0), pytest.approx(172.0))
        # current purchases: O5, O8, O10, O11, O6, O7 = 6 (O9 flagged, O12 negative; O7 on the last day counts)
        # previous: O2, O3, O4, O14 = 4
        assert got["orders"] == (6, 4)
        # 500 / 6 = 83.33; 172 / 4 = 43
        assert got["aov"] == (pytest.approx(500 / 6), pytest.approx(43.0))
        # current: C1 (5 purchases by 03-31) and C2 (O3, O7) repeat, C3 and C5 (1 each) do not: 2 / 4
        # previous: C1 (O1, O2, O14) repeats, C2 (O3) and C4 (O4) do not: 1 / 3
        assert got["repeat_rate"] == (pytest.approx(0.5), pytest.approx(1 / 3))
        # current: of C1, C2, C4 active in previous, C1 and C2 bought again: 2 / 3
        # previous: of C1 active before previous (O1), C1 bought again (O2): 1 / 1
        assert got["retention_rate"] == (pytest.approx(2 / 3), pytest.approx(1.0))
        # current: refunds 50 + 20 = 70 of sales 120 + 90 + 30 + 70 + 60 + 200 = 570; previous: 8 of 180
        assert got["return_rate"] == (pytest.approx(70 / 570), pytest.approx(8 / 180))
        # end of 03-31: T3 (never resolved), T4 (resolved 04-02) = 2; end of 03-01: T1 = 1 (T2 resolved 03-01 noon)
        assert got["open_tickets"] == (2, 1)
        assert all(k.available and k.reason is None for k in result.kpis)

    def test_deltas(self, backend):
        result = metrics.overview(backend, as_of=AS_OF, days=30)
        revenue, new_customers = result["revenue"], result["new_customers"]
        # 500 - 172 = 328; 328 / 172 = 1.907
        assert revenue.delta == pytest.approx(328.0)
        assert revenue.delta_pct == pytest.approx(328 / 172)
        # 2 - 2 = 0, and 0 / 2 = 0
        assert (new_customers.delta, new_customers.delta_pct) == (0, 0)
        # rates: delta in fraction points, 0.5 - 1/3 = 1/6
        assert result["repeat_rate"].delta == pytest.approx(1 / 6)

    def test_delta_pct_is_none_when_previous_is_zero(self, backend):
        # 30 days ending 2024-01-30: revenue 100 (O1); the previous period (2023-12-02 .. 2023-12-31) has no orders
        revenue = metrics.overview(backend, as_of=date(2024, 1, 30), days=30)["revenue"]
        assert (revenue.value, revenue.previous, revenue.delta, revenue.delta_pct) == (100.0, 0.0, 100.0, None)

    def test_region_filter(self, backend):
        got = values(metrics.overview(backend, as_of=AS_OF, days=30, regions=("North",)))
        # North = C1, C2, C6. Acquired by 03-31: C1, C2 = 2; by 03-01: C1, C2 = 2 (C6 never)
        assert got["customers"] == (2, 2)
        # in current: none; in previous: C2 = 1
        assert got["new_customers"] == (0, 1)
        # current: C1, C2; previous: C1, C2
        assert got["active_customers"] == (2, 2)
        # current: 120 + 60 + 200 - 50 = 330 (the anonymous O10 has no region); previous: 50 + 80 - 8 + 10 = 132
        assert got["revenue"] == (pytest.approx(330.0), pytest.approx(132.0))
        # current: O5, O6, O7 = 3; previous: O2, O3, O14 = 3
        assert got["orders"] == (3, 3)
        # 330 / 3 = 110; 132 / 3 = 44
        assert got["aov"] == (pytest.approx(110.0), pytest.approx(44.0))
        # current: C1 and C2 both have 2+ purchases: 2 / 2; previous: C1 yes, C2 (O3 only) no: 1 / 2
        assert got["repeat_rate"] == (pytest.approx(1.0), pytest.approx(0.5))
        # current: C1, C2 active in previous and again now: 2 / 2; previous: C1 before previous and again: 1 / 1
        assert got["retention_rate"] == (pytest.approx(1.0), pytest.approx(1.0))
        # current: 50 of 120 + 60 + 200 = 380; previous: 8 of 50 + 80 + 10 = 140
        assert got["return_rate"] == (pytest.approx(50 / 380), pytest.approx(8 / 140))
        # end of 03-31: T1 resolved 03-31 18:00, T2 resolved: 0; end of 03-01: T1 = 1 (T3, T4 are South)
        assert got["open_tickets"] == (0, 1)

    def test_region_filter_is_case_sensitive(self, backend):
        got = values(metrics.overview(backend, as_of=AS_OF, days=30, regions=("north",)))
        # no customer's region equals "north": nothing is counted, and rates have no denominator
        assert got["customers"] == (0, 0)
        assert got["revenue"] == (0.0, 0.0)
        assert got["repeat_rate"] == (None, None)

    def test_null_is_return_with_negative_amount_is_a_return(self, con):
        insert(
            con,
            customers=[("X", "North", date(2024, 3, 1))],
            orders=[
                ("A", "X", datetime(2024, 3, 10), 100.0, None),  # null flag, positive: a purchase
                ("B", "X", datetime(2024, 3, 12), -20.0, None),  # null flag, negative: a return
            ],
        )
        got = values(metrics.overview(store.ibis_backend(con), as_of=AS_OF, days=30))
        # purchases: A only = 1; if B counted as a purchase this would be 2
        assert got["orders"][0] == 1
        # net revenue 100 - 20 = 80; AOV 80 / 1
        assert got["revenue"][0] == pytest.approx(80.0)
        assert got["aov"][0] == pytest.approx(80.0)
        # refunds 20 of sales 100
        assert got["return_rate"][0] == pytest.approx(0.2)
        # X has a single purchase, so is not a repeat customer: 0 / 1
        assert got["repeat_rate"][0] == pytest.approx(0.0)

    def test_customer_without_signup_is_acquired_at_first_order_even_a_return(self, con):
        insert(
            con,
            customers=[("Y", "South", None)],
            orders=[
                ("R", "Y", datetime(2024, 2, 20), -15.0, True),  # a refund of an earlier, unrecorded purchase
                ("P", "Y", datetime(2024, 3, 10), 40.0, False),
            ],
        )
        got = values(metrics.overview(store.ibis_backend(con), as_of=AS_OF, days=30))
        # Y's first order of any kind is R on 02-20, in the previous period: new (0, 1), a customer by both ends
        assert got["new_customers"] == (0, 1)
        assert got["customers"] == (1, 1)

    def test_empty_database_gives_zeros_and_nones(self, con):
        result = metrics.overview(store.ibis_backend(con))
        got = values(result)
        assert result.period.end == date.today()  # no orders: "as of" falls back to today
        for key in ("customers", "new_customers", "active_customers", "orders"):
            assert got[key] == (0, 0), key
        assert got["revenue"] == (0.0, 0.0)
        for key in ("aov", "repeat_rate", "retention_rate", "return_rate"):
            assert got[key] == (None, None), key
        tickets = result["open_tickets"]
        assert not tickets.available
        assert tickets.reason.startswith("No support tickets have been imported yet")

    def test_absent_tickets_table_makes_open_tickets_unavailable(self, crm):
        crm.execute("DROP TABLE support_tickets")
        result = metrics.overview(store.ibis_backend(crm), as_of=AS_OF, days=30)
        tickets = result["open_tickets"]
        assert (tickets.available, tickets.value, tickets.previous, tickets.delta) == (False, None, None, None)
        assert tickets.reason == (
            "There is no support_tickets table in this database; import support tickets to see this."
        )
        # the other KPIs are unaffected: 6 purchases as in test_every_kpi_by_hand
        assert result["orders"].value == 6

    def test_missing_orders_table_is_a_clear_error(self, con):
        con.execute("DROP TABLE orders")
        with pytest.raises(ValueError, match="The database has no 'orders' table; import orders"):
            metrics.overview(store.ibis_backend(con), as_of=AS_OF)

    def test_region_filter_without_region_column(self, crm):
        crm.execute("ALTER TABLE customers DROP COLUMN region")
        with pytest.raises(ValueError, match="customers has no 'region' column"):
            metrics.overview(store.ibis_backend(crm), as_of=AS_OF, regions=("North",))

    def test_labels_help_and_units_cover_every_kpi(self):
        for mapping in (metrics.KPI_LABELS, metrics.KPI_HELP, metrics.KPI_UNITS):
            assert set(mapping) == set(metrics.KPI_KEYS)
        assert set(metrics.KPI_UNITS.values()) <= {"count", "currency", "pct"}


class TestOverviewFrame:
    def test_one_row_per_kpi(self, backend):
        frame = metrics.overview_frame(metrics.overview(backend, as_of=AS_OF, days=30))
        assert list(frame.columns) == ["key", "label", "value", "previous", "delta", "delta_pct", "unit",
                                       "period_start", "period_end", "help", "available", "reason"]
        assert list(frame["key"]) == list(metrics.KPI_KEYS)
        row = frame.set_index("key").loc["orders"]
        # 6 purchases now, 4 before: delta 2, +50 %
        assert (row["value"], row["previous"], row["delta"], row["delta_pct"]) == (6, 4, 2, 0.5)
        assert (row["period_start"], row["period_end"]) == (date(2024, 3, 2), AS_OF)
        assert row["label"] == metrics.KPI_LABELS["orders"]
        # counts stay whole numbers in JSON
        assert '"value":6,' in frame.to_json(orient="records")


class TestMonthlyTrend:
    def test_calendar_is_completed_with_zeros(self, backend):
        trend = metrics.monthly_trend(backend, start=date(2023, 11, 1), end=date(2024, 4, 30))
        assert list(trend.columns) == ["month", "revenue", "orders", "active_customers", "new_customers", "aov",
                                       "open_tickets"]
        assert list(trend["month"]) == list(pd.date_range("2023-11-01", "2024-04-01", freq="MS"))
        # Nov, Dec: no orders. Jan: O1 100. Feb: 50 + 80 - 8 + 40 = 162.
        # Mar: O14 10 + 120 + 90 + 30 + 70 + 60 + 200 - 50 - 20 = 510. Apr: O13 999.
        assert list(trend["revenue"]) == pytest.approx([0, 0, 100, 162, 510, 999])
        # Feb: O2, O3, O4. Mar: O14, O5, O8, O10, O11, O6, O7 = 7.
        assert list(trend["orders"]) == [0, 0, 1, 3, 7, 1]
        # Feb: C1, C2, C4. Mar: C1, C2, C3, C5 (O10 anonymous). Apr: C4.
        assert list(trend["active_customers"]) == [0, 0, 1, 3, 4, 1]
        # Dec: C1 signed up. Feb: C2 (signup), C4 (first order). Mar: C3 (signup), C5 (first order).
        assert list(trend["new_customers"]) == [0, 1, 0, 2, 2, 0]
        # AOV: no orders, no value; 100 / 1; 162 / 3 = 54; 510 / 7; 999 / 1
        assert trend["aov"].iloc[:2].isna().all()
        assert list(trend["aov"].iloc[2:]) == pytest.approx([100, 54, 510 / 7, 999])
        # end of Feb: T1, T2 open. End of Mar: T3, T4 (T1 resolved 03-31 18:00). End of Apr: T3 (T4 resolved 04-02).
        assert list(trend["open_tickets"]) == [0, 0, 0, 2, 2, 1]

    def test_gap_month_inside_the_data(self, con):
        insert(
            con,
            customers=[("X", "North", date(2024, 1, 1))],
            orders=[("A", "X", datetime(2024, 1, 5), 10.0, False), ("B", "X", datetime(2024, 3, 5), 30.0, False)],
        )
        trend = metrics.monthly_trend(store.ibis_backend(con))
        # default range: first order (01-05) to last order (03-05); February has no orders but is listed
        assert list(trend["month"]) == list(pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]))
        assert list(trend["orders"]) == [1, 0, 1]
        assert list(trend["revenue"]) == pytest.approx([10, 0, 30])
        # tickets table exists but is empty: no open_tickets column
        assert "open_tickets" not in trend.columns

    def test_range_end_inside_a_month(self, backend):
        trend = metrics.monthly_trend(backend, end=date(2024, 3, 15))
        # default start = first order (01-10); March counts 03-01 .. 03-15 only
        march = trend.set_index("month").loc[pd.Timestamp("2024-03-01")]
        # O14 10 + O5 120 + O8 90 + O10 30 + O11 70 + O6 60 = 380, 6 purchases, customers C1, C3, C5
        assert (march["revenue"], march["orders"], march["active_customers"]) == (380.0, 6, 3)
        # open at the end of 03-15: T1 (resolved 03-31); T2 resolved 03-01, T3 not yet created
        assert march["open_tickets"] == 1

    def test_region_filter(self, backend):
        trend = metrics.monthly_trend(backend, start=date(2024, 1, 1), end=date(2024, 4, 30), regions=("South",))
        # South = C3, C4, C5. Feb: O4 40. Mar: O8 90 + O11 70 - O12 20 = 140. Apr: O13 999.
        assert list(trend["revenue"]) == pytest.approx([0, 40, 140, 999])
        # Feb: C4 (first order). Mar: C3 (signup), C5 (first order).
        assert list(trend["new_customers"]) == [0, 1, 2, 0]
        # end of Mar: T3, T4; end of Apr: T3
        assert list(trend["open_tickets"]) == [0, 0, 2, 1]

    def test_empty_database(self, con):
        trend = metrics.monthly_trend(store.ibis_backend(con))
        assert trend.empty
        assert list(trend.columns) == ["month", "revenue", "orders", "active_customers", "new_customers", "aov"]


class _SparkOptions(Config):
    treat_nan_as_null: bool = False


class TestPortability:
    """The expressions compile for PostgreSQL and Spark without a server: nothing DuckDB-only is used."""

    @pytest.fixture
    def exprs(self, backend):
        tables = {name: backend.table(name) for name in ("customers", "orders", "support_tickets")}
        current, previous = current_and_previous(AS_OF, 30)
        built = metrics._overview_exprs(tables, current, previous, ("North",))
        customers, orders, tickets = tables["customers"], tables["orders"], tables["support_tickets"]
        start, end = date(2024, 1, 1), AS_OF
        built["monthly_orders"] = metrics._monthly_orders_expr(orders, start, end)
        built["monthly_new_customers"] = metrics._monthly_new_customers_expr(customers, orders, start, end)
        built["monthly_tickets"] = metrics._monthly_tickets_expr(tickets, end)
        return built

    def test_compiles_for_postgres(self, exprs):
        assert set(exprs) >= {"order_totals", "customer_activity", "customer_base", "open_tickets"}
        for name, expr in exprs.items():
            sql = ibis.to_sql(expr, dialect="postgres")
            sqlglot.parse_one(sql, read="postgres")  # the text is valid PostgreSQL syntax
            assert '"orders"' in sql or '"support_tickets"' in sql, name

    def test_compiles_for_spark(self, exprs, monkeypatch):
        # ibis registers ``options.pyspark`` only when pyspark itself is imported; the compiler reads it.
        if ibis.options.pyspark is None:
            monkeypatch.setattr(ibis.options, "pyspark", _SparkOptions())
        for name, expr in exprs.items():
            sql = ibis.to_sql(expr, dialect="pyspark")
            sqlglot.parse_one(sql, read="spark")
            assert "`orders`" in sql or "`support_tickets`" in sql, name

    def test_results_match_the_expressions(self, backend, exprs):
        # the overview reads the same expressions the compile tests check: North's current revenue is 330
        assert backend.execute(exprs["order_totals"])["revenue"].iloc[0] == pytest.approx(330.0)
