"""Tests for crm_core.quality: normalisation rules, duplicate customers, keys, completeness and column usage."""

import json

import pandas as pd
import pytest

from crm_core import quality, store
from crm_core.schema import TABLES

# Ten customers. Pairs the rules must find (ids ordered a < b):
#   C01~C02 exact copy (every non-key column equal) → also same e-mail, phone, name+postcode:
#           rule 'exact+email+phone+name_postcode', score 100; C02 has 3 orders, C01 1 → keep C02
#   C03~C04 e-mail differs only in case and surrounding spaces → 'email'; names differ (Bob / Robert) and the
#           postcodes too; no orders; C04 signed up earlier → keep C04
#   C05~C06, C05~C07, C06~C07 the same phone written '+44 7700 900123', '0044 7700-900123', '07700 900123' →
#           'phone' ×3; C05 and C06 have 2 orders each and the same signup → keep the smaller id C05 in C05~C06;
#           C07 has none → keep C05 and C06 in the other two
#   C08~C09 'Dominic Fairweather' vs first+last 'Dominic' 'Fairwether' (one letter missing) in 'EH1 1YZ' /
#           'eh11yz' → 'name_postcode', token_sort_ratio = (1 - 1/37) × 100 = 97.3; C08 has no signup date →
#           keep C09 (a missing date counts as latest)
# Must NOT match: C10 'Dominic Fairweather' in EH2 2AB (another postcode); C05 'Cara Diaz' vs C07 'Caroline Diaz'
# in the same postcode (ratio 72.7 < 90).
# 6 pairs; by rule: exact 1, email 2 (C01~C02, C03~C04), phone 4 (C01~C02 + 3), name_postcode 2 (C01~C02,
# C08~C09). Customers involved C01..C09 = 9 in 4 groups → merging removes 9 - 4 = 5 of 10 records (50%).
CUSTOMERS_SQL = """
INSERT INTO customers (customer_id, name, first_name, last_name, email, phone, postcode, signup_date, city) VALUES
('C01', 'Ann Lee', NULL, NULL, 'ann.lee@example.com', '020 7946 0001', 'SW1A 1AA', '2024-01-10', 'London'),
('C02', 'Ann Lee', NULL, NULL, 'ann.lee@example.com', '020 7946 0001', 'SW1A 1AA', '2024-01-10', 'London'),
('C03', 'Bob Stone', NULL, NULL, 'Bob.Stone@Example.com ', NULL, 'M1 1AE', '2024-03-01', NULL),
('C04', 'Robert Stone', NULL, NULL, ' bob.stone@example.COM', NULL, 'M2 2BB', '2024-02-01', NULL),
('C05', 'Cara Diaz', NULL, NULL, '', '+44 7700 900123', 'LS1 4AP', '2024-04-01', 'Leeds'),
('C06', 'C. Diaz-Ruiz', NULL, NULL, '   ', '0044 7700-900123', NULL, '2024-04-01', NULL),
('C07', 'Caroline Diaz', NULL, NULL, NULL, '07700 900123', 'LS1 4AP', '2024-05-01', NULL),
('C08', 'Dominic Fairweather', NULL, NULL, 'dom@example.org', NULL, 'EH1 1YZ', NULL, NULL),
('C09', NULL, 'Dominic', 'Fairwether', NULL, NULL, 'eh11yz', '2024-06-01', NULL),
('C10', 'Dominic Fairweather', NULL, NULL, 'dominic@example.net', NULL, 'EH2 2AB', '2024-06-02', NULL)
"""
# Orders: C01 1, C02 3, C05 2, C06 2, one guest order (no customer) → 9 orders; all have a channel.
ORDERS_SQL = """
INSERT INTO orders (order_id, customer_id, ordered_at, amount, channel) VALUES
('O1', 'C01', '2024-01-10', 10, 'web'), ('O2', 'C02', '2024-01-11', 20, 'web'),
('O3', 'C02', '2024-02-11', 30, 'store'), ('O4', 'C02', '2024-03-11', 40, 'web'),
('O5', 'C05', '2024-04-02', 15, 'web'), ('O6', 'C05', '2024-04-03', 25, 'web'),
('O7', 'C06', '2024-04-04', 35, 'web'), ('O8', 'C06', '2024-04-05', 45, 'web'),
('O9', NULL, '2024-04-06', 5, 'store')
"""

EXPECTED_PAIRS = [
    # customer_id_a, customer_id_b, rule, score, orders_a, orders_b, keep_id
    ("C01", "C02", "exact+email+phone+name_postcode", 100.0, 1, 3, "C02"),
    ("C03", "C04", "email", 100.0, 0, 0, "C04"),
    ("C05", "C06", "phone", 100.0, 2, 2, "C05"),
    ("C05", "C07", "phone", 100.0, 2, 0, "C05"),
    ("C06", "C07", "phone", 100.0, 2, 0, "C06"),
    ("C08", "C09", "name_postcode", 97.3, 0, 0, "C09"),
]


@pytest.fixture
def crm(con):
    con.execute(CUSTOMERS_SQL)
    con.execute(ORDERS_SQL)
    return con


def _pair_tuples(pairs: pd.DataFrame) -> list[tuple]:
    cols = ["customer_id_a", "customer_id_b", "rule", "score", "orders_a", "orders_b", "keep_id"]
    return [tuple(r) for r in pairs[cols].itertuples(index=False)]


class TestNormalisation:
    @pytest.mark.parametrize("raw, expected", [
        ("+44 7700 900123", "447700900123"),
        ("0044 7700-900123", "447700900123"),
        ("07700 900123", "447700900123"),
        ("+44 (0)7700 900123", "447700900123"),
        ("447700900123", "447700900123"),
        ("(+44) 7700.900.123", "447700900123"),
        ("12345", None),
        ("0", None),
        ("", None),
        (None, None),
    ], ids=["plus", "double-zero", "trunk-zero", "plus-paren-zero", "bare-with-code", "paren-plus", "too-short",
            "zero", "blank", "none"])
    def test_phone(self, raw, expected):
        assert quality.normalize_phone(raw) == expected

    def test_phone_country_code_is_configurable(self):
        assert quality.normalize_phone("07700 900123", country_code="1") == "17700900123"
        assert quality.normalize_phone("07700 900123", country_code="+49") == "497700900123"
        assert quality.normalize_phone("+44 7700 900123", country_code="1") == "447700900123"

    @pytest.mark.parametrize("bad", ["UK", "4444", "", "4 4"], ids=["letters", "four-digits", "empty", "space"])
    def test_bad_country_code(self, bad):
        with pytest.raises(ValueError, match="country_code must be 1 to 3 digits"):
            quality.normalize_phone("07700 900123", country_code=bad)

    def test_email_name_postcode(self):
        assert quality.normalize_email("\u00a0 Ann.Lee@Example.COM\t") == "ann.lee@example.com"
        assert quality.normalize_email(" \t ") is None
        assert quality.normalize_name("Smith, John") == quality.normalize_name("john  SMITH") == "john smith"
        assert quality.normalize_name("José O'Brien") == "brien josé o"
        assert quality.normalize_postcode("sw1a-1aa") == quality.normalize_postcode("SW1A 1AA") == "SW1A1AA"


EXAMPLES = [
    None, "", "   ", "\u00a0x@Y.org ", "  Ann.Lee@Example.COM ", "+44 7700 900123", "0044 7700-900123",
    "07700 900123", "+44 (0)20 7946 0001", "(+44) 20.7946.0001", "447700900123", "(555) 123-4567", "0", "n/a",
    "Smith, John", "José  O'Brien-Ruiz", "O'Brien\"; DROP TABLE customers;--", "a_b", "Ünal çelik", "日本 太郎",
    "sw1a-1aa", "  M1 1AE ", "e\u0301clair", "Line\nBreak",
]


class TestSqlMatchesPython:
    """The SQL expressions used in the queries give the same answer as the Python functions."""

    @pytest.mark.parametrize("country_code", ["44", "1"], ids=["uk", "us"])
    def test_examples(self, con, country_code):
        sql = (f"SELECT v, {quality.email_sql('v')}, {quality.phone_sql('v')}, {quality.name_sql('v')}, "
               f"{quality.postcode_sql('v')} FROM (SELECT unnest($vals::VARCHAR[]) AS v)")
        rows = con.execute(sql, {"vals": EXAMPLES, "country_code": country_code}).fetchall()
        assert len(rows) == len(EXAMPLES)
        for v, email, phone, name, postcode in rows:
            assert email == quality.normalize_email(v), v
            assert phone == quality.normalize_phone(v, country_code), v
            assert name == quality.normalize_name(v), v
            assert postcode == quality.normalize_postcode(v), v


class TestDuplicateCustomers:
    def test_pairs_rules_scores_and_keep_ids(self, crm):
        pairs = quality.duplicate_customers(crm)
        assert list(pairs.columns) == quality.PAIR_COLUMNS
        # sorted by score, then number of rules, then ids
        assert _pair_tuples(pairs) == EXPECTED_PAIRS

    def test_display_columns(self, crm):
        pairs = quality.duplicate_customers(crm).set_index(["customer_id_a", "customer_id_b"])
        assert pairs.loc[("C08", "C09"), ["name_a", "name_b"]].tolist() == ["Dominic Fairweather",
                                                                            "Dominic Fairwether"]
        assert pairs.loc[("C03", "C04"), ["email_a", "email_b"]].tolist() == ["Bob.Stone@Example.com ",
                                                                              " bob.stone@example.COM"]

    def test_similar_name_in_other_postcode_is_not_a_duplicate(self, crm):
        pairs = quality.duplicate_customers(crm)
        involved = set(pairs["customer_id_a"]) | set(pairs["customer_id_b"])
        assert "C10" not in involved
        assert not ((pairs["customer_id_a"] == "C05") & (pairs["customer_id_b"] == "C07")
                    & pairs["rule"].str.contains("name")).any()

    @pytest.mark.parametrize("threshold, has_typo_pair", [(90, True), (97, True), (98, False)],
                             ids=["default", "just-below-97.3", "above-97.3"])
    def test_name_threshold(self, crm, threshold, has_typo_pair):
        pairs = quality.duplicate_customers(crm, name_threshold=threshold)
        found = ((pairs["customer_id_a"] == "C08") & (pairs["customer_id_b"] == "C09")).any()
        assert found == has_typo_pair
        assert len(pairs) == (6 if has_typo_pair else 5)

    def test_non_ascii_names(self, con):
        # 'александра константинова' (24 letters) vs 'алесандра констатинова' (22): two letters dropped →
        # ratio (1 - 2/46) × 100 = 95.7. DuckDB's Levenshtein counts bytes (4 here, Cyrillic letters are 2 bytes),
        # so the prefilter must give non-ASCII names room, or this pair is lost at threshold 95.
        con.execute("INSERT INTO customers (customer_id, name, postcode) VALUES "
                    "('R1', 'Александра Константинова', '101000'), ('R2', 'Алесандра Констатинова', '101000')")
        pairs = quality.duplicate_customers(con, name_threshold=95)
        assert _pair_tuples(pairs) == [("R1", "R2", "name_postcode", 95.7, 0, 0, "R1")]

    def test_country_code_reaches_the_sql(self, crm):
        # with country code 1, '07700 900123' → 17700900123, no longer the 44... of C05 and C06
        pairs = quality.duplicate_customers(crm, country_code="1")
        phone_pairs = pairs[pairs["rule"] == "phone"]
        assert list(zip(phone_pairs["customer_id_a"], phone_pairs["customer_id_b"])) == [("C05", "C06")]

    def test_exact_needs_every_column_equal(self, crm):
        crm.execute("UPDATE customers SET city = 'Londres' WHERE customer_id = 'C02'")
        pairs = quality.duplicate_customers(crm)
        assert pairs.loc[0, "rule"] == "email+phone+name_postcode"

    def test_bare_ids_are_not_exact_duplicates(self, con):
        # customers derived from a transaction log: ids and a signup date only, nothing that names a person
        con.execute("INSERT INTO customers (customer_id, signup_date) VALUES ('A', '2024-01-01'), ('B', '2024-01-01')")
        assert quality.duplicate_customers(con).empty

    def test_placeholder_values_are_left_out(self, con):
        # 25 customers (different names) share 'noemail@example.com' (> 20) → no e-mail pairs, one shared
        # value; 2 others share a real address → one pair
        con.execute("INSERT INTO customers (customer_id, name, email) SELECT 'P' || lpad(i::VARCHAR, 2, '0'), "
                    "'Person ' || i, 'NoEmail@example.com' FROM range(25) t(i)")
        con.execute("INSERT INTO customers (customer_id, email) VALUES ('X1', 'x@y.com'), ('X2', 'X@Y.com')")
        pairs = quality.duplicate_customers(con)
        assert _pair_tuples(pairs) == [("X1", "X2", "email", 100.0, 0, 0, "X1")]
        shared = quality.shared_values(con)
        assert shared.to_dict(orient="records") == [
            {"rule": "email", "value": "noemail@example.com", "count_customers": 25}]
        assert len(quality.duplicate_customers(con, max_group_size=25)) == 1 + 25 * 24 // 2

    def test_large_postcode_compares_neighbours_in_name_and_reversed_order(self, con, monkeypatch):
        # a postcode over the block limit: each name meets only its neighbour (NEIGHBOURS = 1).
        # Sorted names: 'ann lee', 'ann leeb', 'ann leec' → L1~L2 (ratio 1 - 1/15 = 93.3); L2~L3 is 87.5 < 90.
        # Sorted reversed: 'beel nna', 'ceel nna', 'eel nna' → L3~L1 (93.3) is found only in this order.
        # 'Zed Zulu' (reversed 'uluz dez', last in both orders) in the same postcode matches nobody.
        monkeypatch.setattr(quality, "FUZZY_BLOCK_SIZE", 2)
        monkeypatch.setattr(quality, "NEIGHBOURS", 1)
        con.execute("INSERT INTO customers (customer_id, name, postcode) VALUES ('L1', 'Ann Lee', 'Z1'), "
                    "('L2', 'Ann Leeb', 'Z1'), ('L3', 'Ann Leec', 'Z1'), ('L4', 'Zed Zulu', 'Z1')")
        pairs = quality.duplicate_customers(con)
        assert _pair_tuples(pairs) == [("L1", "L2", "name_postcode", 93.3, 0, 0, "L1"),
                                       ("L1", "L3", "name_postcode", 93.3, 0, 0, "L1")]

    def test_large_postcode_mode_keeps_the_fixture_pairs(self, crm, monkeypatch):
        monkeypatch.setattr(quality, "FUZZY_BLOCK_SIZE", 1)
        assert _pair_tuples(quality.duplicate_customers(crm)) == EXPECTED_PAIRS

    def test_identical_placeholder_rows_are_left_out_as_exact(self, con):
        # 21 rows that hold nothing but the same e-mail are exact copies too: both groups are too big (> 20)
        con.execute("INSERT INTO customers (customer_id, email) SELECT 'P' || i, 'none@none.com' FROM range(21) t(i)")
        assert quality.duplicate_customers(con).empty
        assert quality.shared_values(con)[["rule", "value"]].to_dict(orient="records") == [
            {"rule": "email", "value": "none@none.com"}, {"rule": "exact", "value": "none@none.com"}]

    def test_empty_store(self, con):
        pairs = quality.duplicate_customers(con)
        assert pairs.empty and list(pairs.columns) == quality.PAIR_COLUMNS

    @pytest.mark.parametrize("kwargs, message", [
        ({"name_threshold": 0}, "name_threshold must be between 1 and 100"),
        ({"name_threshold": 101}, "name_threshold must be between 1 and 100"),
        ({"max_group_size": 1}, "max_group_size must be at least 2"),
        ({"country_code": "x"}, "country_code must be 1 to 3 digits"),
    ], ids=["threshold-0", "threshold-101", "group-1", "country"])
    def test_bad_arguments(self, con, kwargs, message):
        with pytest.raises(ValueError, match=message):
            quality.duplicate_customers(con, **kwargs)


class TestDuplicateSummary:
    def test_counts_and_reading(self, crm):
        s = quality.duplicate_summary(crm)
        assert (s.customers, s.pairs, s.customers_involved, s.duplicate_records) == (10, 6, 9, 5)
        assert s.pairs_by_rule == {"exact": 1, "email": 2, "phone": 4, "name_postcode": 2}
        assert s.duplicate_pct == pytest.approx(50.0)
        assert s.shared_values == 0
        assert s.reading == ("5 customers (50.0%) look like duplicates of another record; merging them would leave "
                             "5 customers instead of 10.")

    def test_reuses_given_pairs(self, crm):
        pairs = quality.duplicate_customers(crm, name_threshold=98)  # without C08~C09: 7 involved in 3 groups
        s = quality.duplicate_summary(crm, pairs=pairs)
        assert (s.pairs, s.customers_involved, s.duplicate_records) == (5, 7, 4)

    def test_reading_for_one_duplicate(self, con):
        con.execute("INSERT INTO customers (customer_id, email) VALUES ('A', 'a@x.com'), ('B', 'A@x.com')")
        assert quality.duplicate_summary(con).reading == (
            "1 customer (50.0%) looks like a duplicate of another record; merging them would leave 1 customer "
            "instead of 2.")

    def test_no_customers(self, con):
        s = quality.duplicate_summary(con)
        assert (s.customers, s.pairs, s.duplicate_pct) == (0, 0, None)
        assert s.reading == "No customers yet; import customers to look for duplicates."

    def test_no_duplicates_mentions_placeholders(self, con):
        # 21 customers (different names) share one placeholder e-mail (> 20) → left out; nothing else matches
        con.execute("INSERT INTO customers (customer_id, name, email) SELECT 'P' || i, 'Person ' || i, "
                    "'none@none.com' FROM range(21) t(i)")
        s = quality.duplicate_summary(con)
        assert (s.pairs, s.shared_values) == (0, 1)
        assert s.reading.startswith("No duplicates found among 21 customers")
        assert "1 value shared by more than 20 customers, such as placeholder e-mails, was left out" in s.reading

    def test_frozen(self, crm):
        s = quality.duplicate_summary(crm)
        with pytest.raises(AttributeError):
            s.pairs = 0


class TestDuplicateKeys:
    def test_single_and_composite_keys(self, con):
        con.execute("INSERT INTO customers (customer_id) VALUES ('A'), ('A'), ('A'), ('B'), ('C'), ('C'), (NULL), "
                    "(NULL)")
        con.execute("INSERT INTO order_items (order_id, line_number, product_id, quantity, unit_price) VALUES "
                    "('O1', 1, 'P', 1, 1), ('O1', 2, 'P', 1, 1), ('O1', 1, 'Q', 1, 1), ('O2', 1, 'P', 1, 1)")
        # A three times, C twice; NULL keys are not counted
        assert quality.duplicate_keys(con, "customers").to_dict(orient="records") == [
            {"customer_id": "A", "count_rows": 3}, {"customer_id": "C", "count_rows": 2}]
        # (O1, 1) twice; (O1, 2) and (O2, 1) once
        assert quality.duplicate_keys(con, "order_items").to_dict(orient="records") == [
            {"order_id": "O1", "line_number": 1, "count_rows": 2}]
        assert quality.duplicate_keys(con, "orders").empty

    def test_unknown_table(self, con):
        with pytest.raises(ValueError, match="Unknown table 'clients'; choose one of: customers, orders"):
            quality.duplicate_keys(con, "clients")


class TestCompleteness:
    def test_customer_columns(self, crm):
        comp = quality.completeness(crm).set_index(["table_name", "column_name"])
        # e-mail filled for C01-C04, C08, C10 = 6 of 10 (C05 '' and C06 '   ' are blank, C07 and C09 NULL);
        # distinct raw values: ann.lee (twice), the two Bob spellings, dom@, dominic@ = 5
        email = comp.loc[("customers", "email")]
        assert (email["rows"], email["non_null"], email["distinct_values"]) == (10, 6, 5)
        assert email["completeness_pct"] == pytest.approx(60.0)
        assert email["used_by"] == "data quality"
        assert bool(email["is_required"]) is False
        # phone 5 of 10; name 9 of 10 (C09 has first/last only); first_name 1 of 10; signup 9 of 10 (not C08)
        assert comp.loc[("customers", "phone"), "completeness_pct"] == pytest.approx(50.0)
        assert comp.loc[("customers", "name"), "completeness_pct"] == pytest.approx(90.0)
        assert comp.loc[("customers", "first_name"), "completeness_pct"] == pytest.approx(10.0)
        assert comp.loc[("customers", "signup_date"), "used_by"] == "overview, data quality"
        assert comp.loc[("customers", "signup_date"), "non_null"] == 9
        assert bool(comp.loc[("customers", "customer_id"), "is_required"]) is True
        # orders: 9 rows; customer_id 8 of 9 (one guest order) = 88.9%
        assert comp.loc[("orders", "customer_id"), "completeness_pct"] == pytest.approx(800 / 9)
        assert comp.loc[("orders", "channel"), "distinct_values"] == 2

    def test_one_row_per_canonical_column_and_empty_tables(self, crm):
        comp = quality.completeness(crm)
        assert len(comp) == sum(len(t.columns) for t in TABLES.values())
        assert list(comp.columns) == ["table_name", "column_name", "is_required", "rows", "non_null",
                                      "completeness_pct", "distinct_values", "used_by"]
        tickets = comp[comp["table_name"] == "support_tickets"]
        assert (tickets["rows"] == 0).all() and tickets["completeness_pct"].isna().all()


class TestColumnUsage:
    def test_registry_names_canonical_columns(self):
        for view, tables in quality.VIEW_COLUMNS.items():
            for table, columns in tables.items():
                assert table in TABLES, f"{view}: unknown table {table}"
                unknown = set(columns) - set(TABLES[table].column_names)
                assert not unknown, f"{view}: {table} has no columns {unknown}"

    def test_unused_columns(self, crm):
        # city (3 of 10 customers) and orders.channel hold data no view reads; everything else filled is used
        unused = quality.unused_columns(crm)
        assert list(zip(unused["table_name"], unused["column_name"])) == [("customers", "city"),
                                                                          ("orders", "channel")]
        assert unused.loc[0, "non_null"] == 3

    def test_missing_for_views(self, crm):
        missing = quality.missing_for_views(crm)
        assert list(zip(missing["view"], missing["table_name"], missing["column_name"])) == [
            ("overview", "orders", "is_return"),
            ("overview", "customers", "region"),
            ("overview", "customers", "country"),
            ("overview", "support_tickets", "ticket_id"),
            ("overview", "support_tickets", "created_at"),
            ("overview", "support_tickets", "resolved_at"),
        ]
        advice = dict(zip(missing["column_name"], missing["advice"]))
        assert advice["region"] == "re-import customers with a column mapped to 'region' (empty in all 10 rows)"
        assert advice["ticket_id"] == "import support_tickets (the table is empty)"


class TestQualityReport:
    def test_json_and_contents(self, crm):
        report = quality.quality_report(crm)
        text = json.dumps(report, allow_nan=False)  # plain JSON: no NaN, dates as text
        assert json.loads(text) == report
        assert report["tables"]["customers"] == 10 and report["tables"]["orders"] == 9
        assert all(c["completeness_pct"] < 100 for c in report["completeness"])
        assert {"table_name": "customers", "column_name": "email"}.items() <= next(
            c for c in report["completeness"] if c["column_name"] == "email").items()
        assert not any(c["table_name"] == "support_tickets" for c in report["completeness"])
        assert report["duplicates"]["pairs"] == 6 and len(report["duplicate_pairs"]) == 6
        assert report["duplicate_pairs"][0]["keep_id"] == "C02"
        assert report["duplicate_keys"] == {}
        assert [u["column_name"] for u in report["unused_columns"]] == ["city", "channel"]
        assert len(report["missing_for_views"]) == 6
        assert "look like duplicates" in quality.format_report(report)

    def test_top_pairs_capped_and_keys_listed(self, con):
        # 30 customers in 15 e-mail pairs → 20 listed; customer 'K' twice → a repeated key
        con.execute("INSERT INTO customers (customer_id, email) SELECT 'C' || lpad(i::VARCHAR, 2, '0'), "
                    "'p' || (i // 2) || '@x.com' FROM range(30) t(i)")
        con.execute("INSERT INTO customers (customer_id) VALUES ('K'), ('K')")
        report = quality.quality_report(con)
        assert report["duplicates"]["pairs"] == 15
        assert len(report["duplicate_pairs"]) == 15
        con.execute("INSERT INTO customers (customer_id, email) SELECT 'D' || lpad(i::VARCHAR, 2, '0'), "
                    "'q' || (i // 2) || '@x.com' FROM range(20) t(i)")
        report = quality.quality_report(con)
        assert report["duplicates"]["pairs"] == 25 and len(report["duplicate_pairs"]) == 20
        assert report["duplicate_keys"] == {"customers": [{"customer_id": "K", "count_rows": 2}]}


def test_sql_metacharacters_in_values_survive(con):
    evil = "O'Brien\"; DROP TABLE customers;--"
    con.execute("INSERT INTO customers (customer_id, name, email, postcode) VALUES (?, ?, ?, ?), (?, ?, ?, ?)",
                ["X'1", evil, "a'b@x.com", "Q'1 \"2", "X\"2", evil.upper(), "A'B@X.COM ", "q'1 \"2"])
    pairs = quality.duplicate_customers(con)
    assert _pair_tuples(pairs) == [("X\"2", "X'1", "email+name_postcode", 100.0, 0, 0, "X\"2")]
    assert evil in set(pairs[["name_a", "name_b"]].to_numpy().ravel())
    quality.quality_report(con)
    quality.duplicate_keys(con, "customers")
    assert store.table_count(con, "customers") == 2
    assert all(store.table_exists(con, t) for t in TABLES)
