"""Import pipeline: messy real-world files, each with a clear message and earlier data intact."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest

from crm_core import ingest

FIXTURES = Path(__file__).parent / "fixtures"

CUSTOMERS_OK = (
    "customer_id,name,email,signup_date,region\n"
    "A1,Ann,ann@x.com,2024-01-05,North\n"
    "A2,Bob,bob@x.com,2024-02-01,South\n"
)


def write(tmp_path: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return p


def rows(con, sql: str):
    return con.execute(sql).fetchall()


@pytest.fixture
def seeded(con, tmp_path):
    """A store holding two customers, imported from a clean file."""
    report = ingest.import_file(con, write(tmp_path, "seed.csv", CUSTOMERS_OK), "customers")
    assert report.outcome == "committed", report.message
    return con


def assert_intact(con):
    assert rows(con, "SELECT customer_id, name FROM customers ORDER BY 1") == [("A1", "Ann"), ("A2", "Bob")]


def last_log(con):
    return rows(con, "SELECT file_name, outcome, message FROM import_log ORDER BY started_at DESC LIMIT 1")[0]


class TestRefusals:
    def test_empty_file_refused_and_logged(self, seeded, tmp_path):
        r = ingest.import_file(seeded, write(tmp_path, "empty.csv", b""), "customers")
        assert r.outcome == "refused"
        assert "empty.csv" in r.message and "empty (0 bytes)" in r.message
        assert_intact(seeded)
        assert last_log(seeded)[:2] == ("empty.csv", "refused")

    def test_header_only_keeps_data(self, seeded, tmp_path):
        r = ingest.import_file(seeded, write(tmp_path, "h.csv", "customer_id,name\n"), "customers")
        assert r.outcome == "refused" and "0 data rows" in r.message
        assert_intact(seeded)

    def test_unterminated_quote_refused_with_line(self, seeded, tmp_path):
        text = 'customer_id,name\nB1,"Ok"\nB2,"never closed\nB3,Cy\n'
        r = ingest.import_file(seeded, write(tmp_path, "q.csv", text), "customers")
        assert r.outcome == "refused"
        assert "line 3" in r.message and "unterminated quote" in r.message
        assert_intact(seeded)

    def test_header_shorter_than_rows_is_refused_not_guessed(self, seeded, tmp_path):
        text = "customer_id,name\nB1,Ann,x,y\nB2,Bob,z,w\n"
        r = ingest.import_file(seeded, write(tmp_path, "short.csv", text), "customers")
        assert r.outcome == "refused"
        assert "none of the 2 rows" in r.message and "too many fields (4 instead of 2)" in r.message
        assert_intact(seeded)

    def test_missing_required_column_names_the_headers(self, seeded, tmp_path):
        r = ingest.import_file(seeded, write(tmp_path, "o.csv", "Kunde,Datum,Betrag\nA1,2024-01-01,3\n"), "orders")
        assert r.outcome == "refused"
        assert "order_id, ordered_at, amount" in r.message and "'Kunde'" in r.message and "--map" in r.message

    def test_xlsx_renamed_csv_refused(self, seeded, tmp_path):
        r = ingest.import_file(seeded, write(tmp_path, "book.csv", b"PK\x03\x04" + b"\x00" * 100), "customers")
        assert r.outcome == "refused" and "Excel workbook" in r.message
        assert_intact(seeded)

    def test_binary_refused(self, seeded, tmp_path):
        r = ingest.import_file(seeded, write(tmp_path, "b.csv", bytes(range(256)) * 10), "customers")
        assert r.outcome == "refused" and "binary" in r.message

    def test_upload_limit_refused_before_reading(self, seeded, tmp_path):
        r = ingest.import_file(seeded, write(tmp_path, "big.csv", CUSTOMERS_OK), "customers", max_bytes=10)
        assert r.outcome == "refused" and "upload limit" in r.message

    def test_unknown_table(self, con, tmp_path):
        r = ingest.import_file(con, write(tmp_path, "x.csv", CUSTOMERS_OK), "clients")
        assert r.outcome == "refused" and "choose one of: customers" in r.message

    def test_every_row_rejected_is_refused(self, seeded, tmp_path):
        text = "order_id,ordered_at,amount\n1,2024-01-01,abc\n2,2024-01-02,def\n"
        r = ingest.import_file(seeded, write(tmp_path, "o.csv", text), "orders")
        assert r.outcome == "refused" and "none of the 2 rows" not in r.message
        assert "every row was rejected" in r.message and "line 2" in r.message


class TestEncodings:
    def test_utf8_bom_first_column(self, con, tmp_path):
        r = ingest.import_file(con, write(tmp_path, "bom.csv", b"\xef\xbb\xbf" + CUSTOMERS_OK.encode()), "customers")
        assert r.outcome == "committed"
        assert r.mapping["customer_id"] == "customer_id"
        assert r.detected["encoding"] == "utf-8-sig"
        assert_intact(con)

    def test_windows_1252_decoded(self, con, tmp_path):
        text = "customer_id,name,city\nA1,José Müller,Zürich\nA2,Chloé,€uro\n"
        r = ingest.import_file(con, write(tmp_path, "latin.csv", text, encoding="cp1252"), "customers")
        assert r.outcome == "committed", r.message
        assert r.detected["encoding"] == "windows-1252"
        assert rows(con, "SELECT name, city FROM customers ORDER BY 1") == [
            ("Chloé", "€uro"), ("José Müller", "Zürich")]

    def test_invalid_utf8_deep_in_file_refused_with_line(self, seeded, tmp_path):
        body = "customer_id,name\n" + "".join(f"C{i},Renée {i}\n" for i in range(60_000))
        data = body.encode("utf-8").replace(b"C55000,Ren\xc3\xa9e", b"C55000,Ren\xe9e")
        r = ingest.import_file(seeded, write(tmp_path, "bad.csv", data), "customers")
        assert r.outcome == "refused"
        assert "line 55002" in r.message and "not valid UTF-8" not in r.message and "UTF-8" in r.message
        assert_intact(seeded)


class TestDialects:
    def test_semicolon_and_decimal_comma(self, con, tmp_path):
        text = "Order ID;Customer ID;Order Date;Total\n1;A1;2024-01-05;1.234,56\n2;A2;2024-01-06;12,50\n"
        r = ingest.import_file(con, write(tmp_path, "eu.csv", text), "orders")
        assert r.outcome == "committed", r.message
        assert r.detected["delimiter"] == ";" and r.detected["decimal_separator"] == ","
        assert rows(con, "SELECT order_id, amount FROM orders ORDER BY 1") == [("1", 1234.56), ("2", 12.5)]

    def test_thousands_comma_and_null_markers(self, con, tmp_path):
        text = ('order_id,ordered_at,amount,discount\n1,2024-01-05,"1,234.50",N/A\n2,2024-01-06,12,\u2014\n'
                '3,2024-01-07,oops,1\n')
        r = ingest.import_file(con, write(tmp_path, "n.csv", text), "orders")
        assert r.outcome == "committed", r.message
        assert rows(con, "SELECT order_id, amount, discount FROM orders ORDER BY 1") == [
            ("1", 1234.5, None), ("2", 12.0, None)]
        # accepted + rejected = read
        assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (3, 2, 1)
        assert r.rejected[0].line == 4 and r.rejected[0].column == "amount" and r.rejected[0].value == "oops"

    def test_quoted_newlines_commas_and_quotes(self, con, tmp_path):
        text = 'customer_id,name,email\nA1,"Smith, Ann ""Annie""","a@x"\nA2,"Line one\nLine two",b@x\nA3,Cy,c@x\n'
        r = ingest.import_file(con, write(tmp_path, "q.csv", text), "customers")
        assert r.rows_read == 3 and r.rows_accepted == 3
        assert rows(con, "SELECT name FROM customers ORDER BY customer_id") == [
            ('Smith, Ann "Annie"',), ("Line one\nLine two",), ("Cy",)]

    def test_ragged_rows_each_reported(self, con, tmp_path):
        text = "customer_id,name,email\nA1,Ann,a@x\nA2,Bob\nA3,Cy,c@x,extra\nA4,Dee,d@x\n"
        r = ingest.import_file(con, write(tmp_path, "r.csv", text), "customers")
        assert r.outcome == "committed"
        assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (4, 2, 2)
        assert [(x.line, x.reason) for x in r.rejected] == [
            (3, "too few fields (2 instead of 3)"), (4, "too many fields (4 instead of 3)")]
        assert rows(con, "SELECT customer_id FROM customers ORDER BY 1") == [("A1",), ("A4",)]

    def test_duplicate_and_blank_headers_renamed(self, con, tmp_path):
        text = "customer_id,email,email,,name\nA1,a@x,b@x,zz,Ann\n"
        r = ingest.import_file(con, write(tmp_path, "h.csv", text), "customers")
        assert r.outcome == "committed"
        assert r.unmapped_columns == ("email_1", "unnamed_4")
        assert r.mapping["email"] == "email"
        assert any("renamed" in w for w in r.warnings)

    def test_hostile_headers_are_data_not_sql(self, seeded, tmp_path):
        hostile = 'x"; DROP TABLE customers;--'
        long = "h" * 300
        text = f'"{hostile.replace(chr(34), chr(34) * 2)}",select,{long},\U0001f600\nZ1,Zed,1,2\n'
        r = ingest.import_file(seeded, write(tmp_path, "evil.csv", text), "customers", mode="append",
                               mapping={hostile: "customer_id", "select": "name"})
        assert r.outcome == "committed", r.message
        assert rows(seeded, "SELECT count(*) FROM customers") == [(3,)]
        assert rows(seeded, "SELECT name FROM customers WHERE customer_id = 'Z1'") == [("Zed",)]

    def test_bad_value_after_sniff_sample_rejected_with_line(self, con, tmp_path):
        lines = [f"{i},C{i % 50},2024-01-01,{i % 90 + 0.5}" for i in range(40_000)]
        lines[35_000] = "35000,C0,2024-01-01,twelve"
        text = "order_id,customer_id,ordered_at,amount\n" + "\n".join(lines) + "\n"
        r = ingest.import_file(con, write(tmp_path, "big.csv", text), "orders")
        assert r.outcome == "committed"
        assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (40_000, 39_999, 1)
        assert (r.rejected[0].line, r.rejected[0].column, r.rejected[0].value) == (35_002, "amount", "twelve")

    def test_text_ids_keep_zeros_and_digits(self, con, tmp_path):
        text = "customer_id,phone,postcode\n00123,+44 7700 900123,01234\n123456789012345678,0044 20 7946 0000,\n"
        r = ingest.import_file(con, write(tmp_path, "ids.csv", text), "customers")
        assert r.outcome == "committed"
        assert rows(con, "SELECT customer_id, phone, postcode FROM customers ORDER BY 1") == [
            ("00123", "+44 7700 900123", "01234"), ("123456789012345678", "0044 20 7946 0000", None)]

    def test_line_numbers_survive_multiline_fields_and_blank_lines(self, con, tmp_path):
        # header=1, A1 (spans two physical lines)=2, blank=3, A2=4, A3 (nps 11)=5
        text = 'survey_id,responded_at,nps_score,comment\nA1,2024-01-01,9,"good\nservice"\n\nA2,2024-01-02,7,ok\n' \
               "A3,2024-01-03,11,too high\n"
        r = ingest.import_file(con, write(tmp_path, "s.csv", text), "surveys")
        assert r.rows_accepted == 2
        assert [(x.line, x.column, x.reason, x.value) for x in r.rejected] == [
            (5, "nps_score", "NPS score outside 0-10", "11")]


class TestDates:
    def test_ambiguous_day_month_refused(self, seeded, tmp_path):
        text = "order_id,ordered_at,amount\n1,01/02/2024,5\n2,03/04/2024,6\n"
        r = ingest.import_file(seeded, write(tmp_path, "d.csv", text), "orders")
        assert r.outcome == "refused"
        assert "'ordered_at'" in r.message and "day/month" in r.message and "--date-format DD/MM/YYYY" in r.message

    def test_explicit_format_resolves(self, con, tmp_path):
        text = "order_id,ordered_at,amount\n1,01/02/2024,5\n2,03/04/2024,6\n"
        r = ingest.import_file(con, write(tmp_path, "d.csv", text), "orders", date_format="DD/MM/YYYY")
        assert r.outcome == "committed"
        assert rows(con, "SELECT CAST(ordered_at AS DATE)::VARCHAR FROM orders ORDER BY 1") == [
            ("2024-02-01",), ("2024-04-03",)]

    def test_day_first_settled_by_data(self, con, tmp_path):
        text = "order_id,ordered_at,amount\n1,01/02/2024,5\n2,13/02/2024 14:30,6\n"
        r = ingest.import_file(con, write(tmp_path, "d.csv", text), "orders")
        assert r.detected["date_format[ordered_at]"] == "DD/MM/YYYY"
        assert rows(con, "SELECT ordered_at::VARCHAR FROM orders ORDER BY 1") == [
            ("2024-02-01 00:00:00",), ("2024-02-13 14:30:00",)]

    def test_mixed_formats_rejected_with_reason(self, con, tmp_path):
        text = "order_id,ordered_at,amount\n1,13/02/2024,5\n2,2024-02-01,6\n3,14/02/2024,7\n4,01/02/24,8\n"
        r = ingest.import_file(con, write(tmp_path, "d.csv", text), "orders")
        assert r.outcome == "committed"
        assert [(x.line, x.value) for x in r.rejected] == [(3, "2024-02-01"), (5, "01/02/24")]
        assert r.rejected[0].reason == "not a date in the format DD/MM/YYYY used by this column"

    def test_resolved_before_created_rejected(self, con, tmp_path):
        text = ("ticket_id,created_at,resolved_at,priority\nT1,2024-01-01 10:00,2024-01-01 12:00,high\n"
                "T2,2024-01-02 10:00,2024-01-01 09:00,low\n")
        r = ingest.import_file(con, write(tmp_path, "t.csv", text), "support_tickets")
        assert r.rows_accepted == 1
        assert [(x.line, x.reason) for x in r.rejected] == [(3, "resolved before created")]


class TestModesAndDuplicates:
    def test_replace_append_upsert(self, seeded, tmp_path):
        more = "customer_id,name,region\nA2,Bobby,West\nA3,Cy,East\n"
        r = ingest.import_file(seeded, write(tmp_path, "more.csv", more), "customers", mode="append")
        assert r.changes["customers"]["inserted"] == 1 and r.changes["customers"]["skipped_existing_keys"] == 1
        assert rows(seeded, "SELECT customer_id, name, region FROM customers ORDER BY 1") == [
            ("A1", "Ann", "North"), ("A2", "Bob", "South"), ("A3", "Cy", "East")]
        upd = "customer_id,region\nA1,Central\nA4,South\n"
        r = ingest.import_file(seeded, write(tmp_path, "upd.csv", upd), "customers", mode="upsert")
        assert r.changes["customers"] == {"rows_before": 3, "rows_after": 4, "inserted": 1, "updated": 1}
        # upsert changes only the mapped columns: Ann keeps her name and email
        assert rows(seeded, "SELECT name, email, region FROM customers WHERE customer_id = 'A1'") == [
            ("Ann", "ann@x.com", "Central")]
        r = ingest.import_file(seeded, write(tmp_path, "seed2.csv", CUSTOMERS_OK), "customers", mode="replace")
        assert rows(seeded, "SELECT count(*) FROM customers") == [(2,)]

    def test_reimport_same_file_changes_nothing(self, seeded, tmp_path):
        p = write(tmp_path, "more.csv", "customer_id,name\nA9,Zed\n")
        assert ingest.import_file(seeded, p, "customers", mode="append").outcome == "committed"
        again = ingest.import_file(seeded, p, "customers", mode="append")
        assert again.outcome == "unchanged" and again.ok
        assert rows(seeded, "SELECT count(*) FROM customers") == [(3,)]
        seed_again = ingest.import_file(seeded, write(tmp_path, "s.csv", CUSTOMERS_OK), "customers")
        assert seed_again.outcome == "committed"  # a replace after other imports restores exactly the file
        assert_intact(seeded)

    def test_duplicate_rows_and_keys(self, con, tmp_path):
        text = ("customer_id,name,email\nA1,Ann,a@x\nA1,Ann,a@x\nA2,Bob,old@x\nA2,Bob,new@x\nA3,Cy,c@x\n")
        r = ingest.import_file(con, write(tmp_path, "d.csv", text), "customers")
        assert (r.rows_read, r.exact_duplicates, r.duplicate_keys, r.rows_accepted) == (5, 1, 1, 3)
        assert r.duplicate_key_examples == ("A2",)
        assert rows(con, "SELECT email FROM customers WHERE customer_id = 'A2'") == [("new@x",)]


class TestMappingTemplates:
    def test_override_and_template_reuse(self, con, tmp_path):
        text = "Kunde,Datum,Betrag,Beleg\nA1,2024-01-05,10,B1\nA1,2024-02-05,20,B2\n"
        p = write(tmp_path, "de.csv", text)
        mapping = {"Kunde": "customer_id", "Datum": "ordered_at", "Betrag": "amount", "Beleg": "order_id"}
        r = ingest.import_file(con, p, "orders", mapping=mapping, save_as_template="german shop")
        assert r.outcome == "committed"
        templates = ingest.list_templates(con)
        assert list(templates.template_name) == ["german shop"]
        # a new file with the same headers picks the template by itself
        p2 = write(tmp_path, "de2.csv", text + "A2,2024-03-01,5,B3\n")
        r2 = ingest.import_file(con, p2, "orders")
        assert r2.detected["template"] == "german shop" and r2.rows_accepted == 3

    def test_map_to_unknown_column_refused(self, con, tmp_path):
        r = ingest.import_file(con, write(tmp_path, "x.csv", CUSTOMERS_OK), "customers", mapping={"name": "nom"})
        assert r.outcome == "refused" and "'nom' is not a column of customers" in r.message


class TestFormats:
    def test_csv_gz(self, con, tmp_path):
        p = tmp_path / "c.csv.gz"
        p.write_bytes(gzip.compress(CUSTOMERS_OK.encode()))
        assert ingest.import_file(con, p, "customers").rows_accepted == 2
        assert_intact(con)

    def test_parquet_with_conversion_rejects(self, con, tmp_path):
        p = tmp_path / "o.parquet"
        duckdb.connect().execute(
            f"COPY (SELECT * FROM (VALUES ('1', 'A1', '2024-01-05', '10.5'), ('2', 'A2', '2024-01-06', 'bad')) "
            f"t(order_id, customer_id, order_date, total)) TO '{p}' (FORMAT parquet)")
        r = ingest.import_file(con, p, "orders")
        assert (r.rows_read, r.rows_accepted) == (2, 1)
        assert (r.rejected[0].line, r.rejected[0].column) == (2, "total")
        assert rows(con, "SELECT order_id, amount FROM orders") == [("1", 10.5)]

    def test_xlsx(self, con, tmp_path):
        import datetime as dt

        import openpyxl

        wb = openpyxl.Workbook()
        ws = wb.active
        ws.append(["Order ID", "Customer ID", "Order Date", "Total"])
        ws.append(["1001", "00123", dt.datetime(2024, 3, 1, 9, 30), 19.99])
        ws.append(["1002", "00124", dt.datetime(2024, 3, 2), -5])
        p = tmp_path / "orders.xlsx"
        wb.save(p)
        r = ingest.import_file(con, p, "orders")
        assert r.outcome == "committed", r.message
        assert rows(con, "SELECT order_id, customer_id, ordered_at::VARCHAR, amount FROM orders ORDER BY 1") == [
            ("1001", "00123", "2024-03-01 09:30:00", 19.99), ("1002", "00124", "2024-03-02 00:00:00", -5.0)]


class TestSourceShapes:
    def test_messy_invoice_line_export(self, con):
        r = ingest.import_file(con, FIXTURES / "online_retail_messy.csv", "invoice_lines")
        assert r.outcome == "committed", r.message
        # 17 data lines: line 18 has quantity "four" (rejected); line 5 repeats line 4 exactly (dropped)
        assert (r.rows_read, r.rows_rejected, r.exact_duplicates, r.rows_accepted) == (17, 1, 1, 15)
        assert (r.rejected[0].line, r.rejected[0].column) == (18, "Quantity")
        assert r.detected["date_format[InvoiceDate]"] == "MM/DD/YYYY"  # settled by 12/13/2010
        f = r.facts
        assert f["invoices"] == 10
        assert f["cancellation invoices (id starts with C)"] == 2
        assert f["lines with negative quantity"] == 3  # two cancellations + one partial return in 537626
        assert f["lines without customer id (kept as anonymous orders)"] == 4
        assert f["revenue without customer id"] == pytest.approx(17.48)  # 0 + 2.51 + 5.02 + 9.95
        assert f["lines with zero price (kept)"] == 1
        assert f["gross sales"] == pytest.approx(187.25)
        assert f["returns and cancellations"] == pytest.approx(-39.65)  # -27.50 - 4.65 - 7.50
        assert f["net revenue"] == pytest.approx(147.60)
        assert rows(con, "SELECT count(*), round(sum(amount), 2), count(*) FILTER (WHERE is_return) FROM orders") == [
            (10, 147.6, 2)]
        assert rows(con, "SELECT amount, status FROM orders WHERE order_id = 'C536379'") == [(-27.5, "cancelled")]
        assert rows(con, "SELECT count(*) FROM order_items") == [(15,)]
        assert rows(con, "SELECT count(*) FROM customers") == [(6,)]
        assert rows(con, "SELECT count(*) FROM products") == [(14,)]
        assert rows(con, "SELECT country FROM customers WHERE customer_id = '12347'") == [("Iceland",)]
        # orders and their lines agree to the cent
        mismatched = """SELECT count(*) FROM orders o JOIN (SELECT order_id, round(sum(quantity * unit_price), 2) AS s
                        FROM order_items GROUP BY 1) i USING (order_id) WHERE abs(o.amount - i.s) > 0.001"""
        assert rows(con, mismatched) == [(0,)]

    def test_bare_transaction_log(self, con, tmp_path):
        text = "cust_id,date,value\n7,2024-01-01,10\n7,2024-01-01,10\n7,2024-02-01,-4\n8,2024-01-03,5\n"
        p = write(tmp_path, "tx.csv", text)
        r = ingest.import_file(con, p, "transactions")
        assert r.outcome == "committed"
        assert r.facts["orders"] == 4 and r.facts["net revenue"] == pytest.approx(21.0)
        ids = rows(con, "SELECT order_id FROM orders ORDER BY order_id")
        assert len({i for (i,) in ids}) == 4
        assert rows(con, "SELECT count(*) FROM orders WHERE is_return") == [(1,)]
        assert rows(con, "SELECT count(*) FROM customers") == [(2,)]
        # generated ids are stable: the same file through another route gives the same ids
        con.execute("DELETE FROM import_log")
        ingest.import_file(con, p, "transactions")
        assert rows(con, "SELECT order_id FROM orders ORDER BY order_id") == ids


def test_history_records_every_attempt(seeded, tmp_path):
    ingest.import_file(seeded, write(tmp_path, "empty.csv", b""), "customers")
    hist = ingest.import_history(seeded)
    assert list(hist.outcome) == ["refused", "committed"]
    assert list(hist.file_name) == ["empty.csv", "seed.csv"]
    assert int(hist.rows_accepted.iloc[1]) == 2


def test_no_staging_tables_left_behind(seeded, tmp_path):
    ingest.import_file(seeded, write(tmp_path, "r.csv", "customer_id,name\nA5,x,y\nA6,z\n"), "customers",
                       mode="append")
    left = rows(seeded, "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'crm_%'")
    assert left == []


class TestPreviewAndDryRun:
    def test_preview_proposes_mapping_without_loading(self, con):
        pv = ingest.preview(con, FIXTURES / "online_retail_messy.csv", "invoice_lines", sample_rows=3)
        assert pv.headers[:3] == ("InvoiceNo", "StockCode", "Description")
        assert pv.mapping["invoice_id"] == "InvoiceNo" and pv.mapping["invoiced_at"] == "InvoiceDate"
        assert pv.missing_required == ()
        assert list(pv.sample["InvoiceNo"]) == ["536365", "536365", "536365"]
        assert rows(con, "SELECT count(*) FROM orders") == [(0,)]

    def test_preview_lists_missing_required(self, con, tmp_path):
        pv = ingest.preview(con, write(tmp_path, "x.csv", "Kunde,Betrag\nA,1\n"), "orders")
        assert pv.missing_required == ("order_id", "ordered_at", "amount")

    def test_dry_run_reports_changes_and_rolls_back(self, seeded, tmp_path):
        more = write(tmp_path, "m.csv", "customer_id,name\nA2,Bobby\nA3,Cy\n")
        r = ingest.import_file(seeded, more, "customers", mode="append", dry_run=True)
        assert r.outcome == "validated"
        assert r.changes["customers"]["inserted"] == 1
        assert_intact(seeded)
        assert list(ingest.import_history(seeded).file_name) == ["seed.csv"]
        # the real import afterwards is not mistaken for a re-import
        assert ingest.import_file(seeded, more, "customers", mode="append").outcome == "committed"


class TestHostileShapes:
    def test_one_giant_line_refused_before_sniffing(self, seeded, tmp_path):
        # a million fields on one line once made the sniffer allocate all memory: refused up front
        r = ingest.import_file(seeded, write(tmp_path, "one.csv", "customer_id,name" + ",x" * 1_100_000), "customers")
        assert r.outcome == "refused" and "line 1 is longer than 1 MB" in r.message
        assert_intact(seeded)

    def test_too_many_columns_refused(self, seeded, tmp_path):
        r = ingest.import_file(seeded, write(tmp_path, "wide.csv", ",".join(f"c{i}" for i in range(5000)) + "\n"),
                               "customers")
        assert r.outcome == "refused" and "5,000 fields" in r.message

    def test_two_mb_data_line_refused_with_clear_message(self, seeded, tmp_path):
        text = "customer_id,name\n1," + "x" * 2_200_000 + "\n2,b\n"
        r = ingest.import_file(seeded, write(tmp_path, "long.csv", text), "customers")
        assert r.outcome == "refused" and "longer than 2 MB" in r.message and len(r.message) < 300
        assert_intact(seeded)


def test_preview_applies_a_named_template(con, tmp_path):
    ingest.save_template(con, "shop", "orders", {"order_id": "Beleg", "customer_id": "Kunde", "ordered_at": "Datum",
                                                 "amount": "Betrag"})
    pv = ingest.preview(con, write(tmp_path, "x.csv", "Beleg,Kunde,Datum,Betrag,Extra\nB1,A,2024-01-01,3,x\n"),
                        "orders", template="shop")
    assert pv.template == "shop" and pv.missing_required == ()
    assert pv.mapping == {"order_id": "Beleg", "customer_id": "Kunde", "ordered_at": "Datum", "amount": "Betrag"}


# --------------------------------------------------------------------------------------------- constants
# A campaign export without a campaign column. Line 3 has 'maybe' as a conversion (rejected by the reader); line 6
# has no customer id (rejected by the required-value rule, after the constant column was added to the staging).
CONTACTS_NO_CAMPAIGN = (
    "customer_id,segment,visit,conversion,spend\n"
    "H1,Mens E-Mail,1,1,30\n"
    "H2,No E-Mail,0,maybe,0\n"
    "H3,Womens E-Mail,1,0,0\n"
    "H4,No E-Mail,0,1,12.5\n"
    ",Mens E-Mail,1,1,9\n"
)
BY_HAND = {"segment": "contact_group"}


class TestConstants:
    def test_constant_fills_a_required_column_csv(self, con, tmp_path):
        r = ingest.import_file(con, write(tmp_path, "c.csv", CONTACTS_NO_CAMPAIGN), "campaign_contacts",
                               mapping=BY_HAND, constants={"campaign_id": " HILL1 "})
        assert r.outcome == "committed", r.message
        assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (5, 3, 2)
        assert [(x.line, x.column, x.reason) for x in r.rejected] == [
            (3, "conversion", "not a yes/no value"), (6, "customer_id", "required value is missing")]
        assert r.constants == {"campaign_id": "HILL1"}  # trimmed
        assert "campaign_id" not in r.mapping and "campaign_id='HILL1'" in r.summary()
        assert rows(con, "SELECT campaign_id, customer_id, contact_group, is_converted, attributed_revenue "
                         "FROM campaign_contacts ORDER BY customer_id") == [
            ("HILL1", "H1", "Mens E-Mail", True, 30.0), ("HILL1", "H3", "Womens E-Mail", False, 0.0),
            ("HILL1", "H4", "No E-Mail", True, 12.5)]

    def test_constant_on_parquet(self, con, tmp_path):
        p = tmp_path / "c.parquet"
        duckdb.connect().execute(
            "COPY (SELECT * FROM (VALUES ('P1', '1', 30.0), (NULL, '0', 0.0), ('P3', 'x', 5.0), ('P4', 'no', 0.0)) "
            f"t(customer_id, conversion, spend)) TO '{p}' (FORMAT parquet)")
        r = ingest.import_file(con, p, "campaign_contacts", constants={"campaign_id": "PQ", "is_sent": "yes"})
        assert r.outcome == "committed", r.message
        # Parquet rows are numbered from 1: row 2 has no customer, row 3 a conversion that is not yes/no
        assert [(x.line, x.column) for x in r.rejected] == [(2, "customer_id"), (3, "conversion")]
        assert rows(con, "SELECT campaign_id, customer_id, is_sent, is_converted FROM campaign_contacts "
                         "ORDER BY customer_id") == [("PQ", "P1", True, True), ("PQ", "P4", True, False)]

    def test_typed_constants_are_converted_and_take_part_in_row_rules(self, con, tmp_path):
        text = "campaign_id,start_date\nA,13/02/2024\nB,01/03/2024\nC,20/02/2024\n"  # day first, settled by 13/02
        r = ingest.import_file(con, write(tmp_path, "camp.csv", text), "campaigns",
                               constants={"end_date": "2024-02-20", "cost": "1250.50", "channel": "email"})
        assert r.outcome == "committed", r.message
        # B starts on 1 March, after the end date set for every row: the row rule rejects line 3
        assert [(x.line, x.reason) for x in r.rejected] == [(3, "end_date before start_date")]
        assert rows(con, "SELECT campaign_id, start_date::VARCHAR, end_date::VARCHAR, cost, channel FROM campaigns "
                         "ORDER BY 1") == [("A", "2024-02-13", "2024-02-20", 1250.5, "email"),
                                           ("C", "2024-02-20", "2024-02-20", 1250.5, "email")]
        # a timestamp and a money constant on campaign_contacts; an ISO constant is read as ISO whatever format
        # is given for the file's date columns
        r = ingest.import_file(con, write(tmp_path, "k.csv", "customer_id\nK1\n"), "campaign_contacts",
                               date_format="DD/MM/YYYY",
                               constants={"campaign_id": "A", "contacted_at": "2024-02-13 09:30", "contact_cost": 0.03})
        assert r.outcome == "committed", r.message
        assert rows(con, "SELECT contacted_at::VARCHAR, contact_cost FROM campaign_contacts") == [
            ("2024-02-13 09:30:00", 0.03)]
        # a day/month date settles only with the format
        r = ingest.import_file(con, write(tmp_path, "k2.csv", "customer_id\nK2\n"), "campaign_contacts",
                               constants={"campaign_id": "A", "contacted_at": "01/02/2024"}, mode="append")
        assert r.outcome == "refused" and "read both as day/month and month/day" in r.message
        r = ingest.import_file(con, write(tmp_path, "k2.csv", "customer_id\nK2\n"), "campaign_contacts",
                               constants={"campaign_id": "A", "contacted_at": "01/02/2024"}, mode="append",
                               date_format="DD/MM/YYYY")
        assert r.outcome == "committed", r.message
        assert rows(con, "SELECT contacted_at::VARCHAR FROM campaign_contacts WHERE customer_id = 'K2'") == [
            ("2024-02-01 00:00:00",)]

    @pytest.mark.parametrize(("table", "text", "constants", "message"), [
        ("campaign_contacts", "customer_id\nH1\n", {"campaign_id": "X", "is_sent": "maybe"},
         "the value 'maybe' set for is_sent on every row is not a yes/no value"),
        ("campaign_contacts", "customer_id\nH1\n", {"campaign_id": "X", "contact_cost": "abc"},
         "the value 'abc' set for contact_cost on every row is not a number"),
        ("campaign_contacts", "customer_id\nH1\n", {"campaign_id": "X", "contacted_at": "soon"},
         "the value 'soon' set for contacted_at on every row is not a date"),
        ("support_tickets", "ticket_id,created_at\nT1,2024-01-01\n", {"csat": "7"},
         "the value '7' set for csat on every row is CSAT outside 1-5"),
        ("campaign_contacts", "customer_id\nH1\n", {"campaign": "X"},
         "'campaign' is not a column of campaign_contacts, so it cannot be set for every row; choose from: "
         "campaign_id, customer_id"),
        ("campaign_contacts", "customer_id\nH1\n", {"campaign_id": " "}, "no value given for campaign_id"),
    ], ids=["bool", "money", "timestamp", "range", "unknown column", "blank"])
    def test_bad_constant_refuses_and_changes_nothing(self, seeded, tmp_path, table, text, constants, message):
        r = ingest.import_file(seeded, write(tmp_path, "bad.csv", text), table, constants=constants)
        assert r.outcome == "refused" and message in r.message, r.message
        assert last_log(seeded)[:2] == ("bad.csv", "refused")
        assert rows(seeded, f"SELECT count(*) FROM {table}") == [(0,)]
        assert_intact(seeded)

    def test_constant_values_are_data_not_sql(self, con, tmp_path):
        hostile = "x'); DROP TABLE customers; --"
        r = ingest.import_file(con, write(tmp_path, "c.csv", "customer_id\nH1\n"), "campaign_contacts",
                               constants={"campaign_id": hostile, "contact_group": "$path"})
        assert r.outcome == "committed", r.message
        assert rows(con, "SELECT campaign_id, contact_group FROM campaign_contacts") == [(hostile, "$path")]
        assert rows(con, "SELECT count(*) FROM customers") == [(0,)]

    def test_constant_replaces_a_column_the_file_has(self, con, tmp_path):
        text = "campaign,customer_id,converted\nOLD,H1,1\nOLD,H2,0\n"
        p = write(tmp_path, "c.csv", text)
        r = ingest.import_file(con, p, "campaign_contacts", constants={"campaign_id": "NEW"})
        assert r.outcome == "committed", r.message
        assert "campaign" in r.unmapped_columns and "campaign_id" not in r.mapping
        assert "column 'campaign' is not imported: campaign_id is set to 'NEW' on every row" in r.warnings
        assert rows(con, "SELECT DISTINCT campaign_id FROM campaign_contacts") == [("NEW",)]
        # mapping the header by hand and setting the column as well is a contradiction: refused
        r = ingest.import_file(con, p, "campaign_contacts", mapping={"campaign": "campaign_id"},
                               constants={"campaign_id": "NEW2"}, mode="append")
        assert r.outcome == "refused"
        assert "campaign_id is mapped from a header by hand and also set to 'NEW2' for every row" in r.message

    def test_missing_required_column_suggests_a_constant(self, con, tmp_path):
        r = ingest.import_file(con, write(tmp_path, "c.csv", CONTACTS_NO_CAMPAIGN), "campaign_contacts")
        assert r.outcome == "refused" and "required column(s) campaign_id" in r.message
        assert "--set campaign_id=VALUE" in r.message

    def test_template_remembers_constants_and_an_import_overrides_them(self, con, tmp_path):
        first = write(tmp_path, "week1.csv", CONTACTS_NO_CAMPAIGN)
        r1 = ingest.import_file(con, first, "campaign_contacts", mapping=BY_HAND,
                                constants={"campaign_id": "W1", "contact_cost": "0.03"}, save_as_template="export")
        assert r1.outcome == "committed", r1.message
        t = ingest.list_templates(con).iloc[0]
        assert json.loads(t.constants_json) == {"campaign_id": "W1", "contact_cost": "0.03"}
        assert "campaign_id" not in json.loads(t.mapping_json)
        # preview: the template's constants count as mapped; given constants win over the template's
        second = write(tmp_path, "week2.csv", CONTACTS_NO_CAMPAIGN.replace("H", "J"))
        pv = ingest.preview(con, second, "campaign_contacts", constants={"campaign_id": "W2"})
        assert pv.template == "export" and pv.missing_required == ()
        assert pv.constants == {"campaign_id": "W2", "contact_cost": "0.03"}
        r2 = ingest.import_file(con, second, "campaign_contacts", mode="append", constants={"campaign_id": "W2"})
        assert r2.outcome == "committed" and r2.detected["template"] == "export" and r2.rows_accepted == 3
        assert r2.mapping == r1.mapping and r2.constants == {"campaign_id": "W2", "contact_cost": "0.03"}
        assert "template 'export' sets contact_cost='0.03' on every row; give another value to change it" in (
            r2.warnings)
        # with nothing given, the template's campaign applies, and the report says so
        third = write(tmp_path, "week3.csv", CONTACTS_NO_CAMPAIGN.replace("H", "L"))
        r3 = ingest.import_file(con, third, "campaign_contacts", mode="append")
        assert r3.constants == {"campaign_id": "W1", "contact_cost": "0.03"}
        assert any("campaign_id='W1'" in w for w in r3.warnings)
        assert rows(con, "SELECT campaign_id, count(*), sum(contact_cost) FROM campaign_contacts GROUP BY 1 "
                         "ORDER BY 1") == [("W1", 6, pytest.approx(0.18)), ("W2", 3, pytest.approx(0.09))]
        # without the template, a preview says the campaign is missing
        pv = ingest.preview(con, write(tmp_path, "other.csv", "customer_id,x\nH1,1\n"), "campaign_contacts")
        assert pv.missing_required == ("campaign_id",) and pv.constants == {}

    def test_same_file_with_other_constants_is_not_a_reimport(self, con, tmp_path):
        p = write(tmp_path, "c.csv", "customer_id,converted\nH1,1\nH2,0\n")
        assert ingest.import_file(con, p, "campaign_contacts", constants={"campaign_id": "A"},
                                  mode="append").outcome == "committed"
        again = ingest.import_file(con, p, "campaign_contacts", constants={"campaign_id": "A"}, mode="append")
        assert again.outcome == "unchanged"
        other = ingest.import_file(con, p, "campaign_contacts", constants={"campaign_id": "B"}, mode="append")
        assert other.outcome == "committed" and other.changes["campaign_contacts"]["inserted"] == 2
        # upsert updates the columns a constant sets
        up = ingest.import_file(con, p, "campaign_contacts", constants={"campaign_id": "B", "contact_cost": "0.5"},
                                mode="upsert")
        assert up.outcome == "committed" and up.changes["campaign_contacts"]["updated"] == 2
        assert rows(con, "SELECT campaign_id, count(*), sum(contact_cost) FROM campaign_contacts GROUP BY 1 "
                         "ORDER BY 1") == [("A", 2, None), ("B", 2, 1.0)]


class TestSetOption:
    """``python -m crm_core import --set``, run in process."""

    def run(self, tmp_path, capsys, *args):
        from crm_core import cli

        code = cli.main(["--db", str(tmp_path / "cli.duckdb"), "import", *args])
        return code, capsys.readouterr()

    def test_set_imports_a_campaign_export(self, tmp_path, capsys):
        p = write(tmp_path, "c.csv", CONTACTS_NO_CAMPAIGN)
        code, out = self.run(tmp_path, capsys, str(p), "--table", "campaign_contacts", "--map",
                             "segment=contact_group", "--set", "campaign_id=HILL1", "--set", "contact_cost=0.03")
        assert code == 0, out
        assert "3 of 5 rows imported" in out.out
        assert "same value on every row: campaign_id='HILL1', contact_cost='0.03'" in out.out

    @pytest.mark.parametrize(("option", "message"), [
        ("campaign=HILL1", "'campaign' is not a column of campaign_contacts; choose from: campaign_id, customer_id"),
        ("campaign_id", "use COLUMN=VALUE"),
    ], ids=["unknown column", "no equals sign"])
    def test_bad_set_exits_2(self, tmp_path, capsys, option, message):
        p = write(tmp_path, "c.csv", CONTACTS_NO_CAMPAIGN)
        code, out = self.run(tmp_path, capsys, str(p), "--table", "campaign_contacts", "--set", option)
        assert code == 2 and message in out.err and out.out == ""


def test_a_second_import_while_one_runs_is_told_busy_and_can_try_again(seeded, tmp_path):
    """Imports into one database run one at a time: a second one, from another cursor while the first holds the
    lock, returns at once with outcome ``busy``, reads nothing, and succeeds when retried after the first ends."""
    other = seeded.cursor()
    second = write(tmp_path, "second.csv", "customer_id,name\nB1,Cy\n")
    seen = []

    def meanwhile(fraction, message):  # runs inside the first import, which holds the lock
        if not seen:
            seen.append(ingest.import_file(other, second, "customers", mode="append", dry_run=True))
            seen.append(ingest.import_file(other, second, "customers", mode="append"))

    first = ingest.import_file(seeded, write(tmp_path, "first.csv", "customer_id,name\nA3,Di\n"), "customers",
                               mode="append", progress=meanwhile)
    assert first.outcome == "committed", first.message
    assert [(r.outcome, r.message, r.rows_read) for r in seen] == [("busy", ingest.BUSY_MESSAGE, 0)] * 2
    # the refused commit attempt is logged (who tried to change data, and when); the busy dry run is not
    hist = ingest.import_history(seeded)
    assert list(zip(hist.file_name, hist.outcome)) == [("second.csv", "busy"), ("first.csv", "committed"),
                                                        ("seed.csv", "committed")]  # newest start first
    retry = ingest.import_file(other, second, "customers", mode="append")
    assert retry.outcome == "committed", retry.message
    assert rows(seeded, "SELECT customer_id FROM customers ORDER BY 1") == [("A1",), ("A2",), ("A3",), ("B1",)]
