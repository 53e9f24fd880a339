"""Source shapes: export layouts that expand into several canonical tables.

- ``invoice_lines`` (one row per invoice line, as retail and shop systems export it) → orders, order_items,
  products, customers. An invoice id starting with "C" is a cancellation: its order is a return
  (``is_return``, negative amount). Negative quantities keep their sign, so net revenue = Σ amount accounts for
  returns. Lines without a customer id stay as anonymous orders (counted in revenue, not in customer metrics).
  Exact duplicate lines were already dropped by the import and are reported.
- ``transactions`` (customer id, date, amount[, order id]) → orders and customers: enough for RFM and CLV. Without
  an order id, each row gets a stable id from its content and position, so re-importing gives the same ids.

Customers and products found in the file are *added* when missing; existing rows are never overwritten by these
shapes (a customer master file is the place to change them).
"""

from __future__ import annotations

from collections.abc import Callable

from crm_core.schema import TABLES
from crm_core.store import quote_ident as q

__all__ = ["expand"]


def expand(con, shape: str, typed: str, mode: str, write: Callable) -> tuple[dict, dict]:
    """Write the staged shape ``typed`` into canonical tables inside the caller's transaction.

    ``typed`` holds the rows in file order: its ``rowid`` orders the lines of an invoice and the repeats of a
    transaction. Returns (changes per table, facts for the report).
    """
    if shape == "invoice_lines":
        return _invoice_lines(con, typed, mode, write)
    if shape == "transactions":
        return _transactions(con, typed, mode, write)
    raise ValueError(f"unknown source shape {shape!r}")


def _temp(con, name: str, select_sql: str) -> str:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {q(name)} AS {select_sql}")
    return name


def _invoice_lines(con, typed: str, mode: str, write) -> tuple[dict, dict]:
    t = q(typed)
    facts_row = con.execute(
        f"""SELECT count(*),
                   count(DISTINCT invoice_id),
                   count(DISTINCT invoice_id) FILTER (WHERE upper(invoice_id) LIKE 'C%'),
                   count(*) FILTER (WHERE upper(invoice_id) LIKE 'C%'),
                   count(*) FILTER (WHERE quantity < 0),
                   count(*) FILTER (WHERE customer_id IS NULL),
                   coalesce(sum(quantity * unit_price) FILTER (WHERE customer_id IS NULL), 0),
                   count(*) FILTER (WHERE unit_price = 0),
                   count(*) FILTER (WHERE unit_price < 0),
                   coalesce(sum(quantity * unit_price) FILTER (WHERE quantity * unit_price > 0), 0),
                   coalesce(sum(quantity * unit_price) FILTER (WHERE quantity * unit_price < 0), 0)
            FROM {t}"""
    ).fetchone()
    (lines, invoices, cancel_inv, cancel_lines, neg_lines, anon_lines, anon_value, zero_price, neg_price,
     gross, refunds) = facts_row
    net = gross + refunds
    facts = {
        "invoice lines": int(lines),
        "invoices": int(invoices),
        "cancellation invoices (id starts with C)": int(cancel_inv),
        "cancellation lines": int(cancel_lines),
        "lines with negative quantity": int(neg_lines),
        "lines without customer id (kept as anonymous orders)": int(anon_lines),
        "revenue without customer id": round(float(anon_value), 2),
        "lines with zero price (kept)": int(zero_price),
        "lines with negative price (adjustments, kept)": int(neg_price),
        "gross sales": round(float(gross), 2),
        "returns and cancellations": round(float(refunds), 2),
        "net revenue": round(float(net), 2),
    }
    items = _temp(con, typed + "_items", f"""
        SELECT invoice_id AS order_id,
               CAST(row_number() OVER (PARTITION BY invoice_id ORDER BY rowid) AS BIGINT) AS line_number,
               product_id, quantity, unit_price, CAST(NULL AS DOUBLE) AS discount
        FROM {t}""")
    orders = _temp(con, typed + "_orders", f"""
        SELECT invoice_id AS order_id,
               max(customer_id) AS customer_id,
               min(invoiced_at) AS ordered_at,
               round(sum(quantity * unit_price), 2) AS amount,
               CAST(NULL AS VARCHAR) AS channel,
               CASE WHEN upper(invoice_id) LIKE 'C%' THEN 'cancelled'
                    WHEN sum(quantity * unit_price) < 0 THEN 'returned' ELSE 'completed' END AS status,
               (upper(invoice_id) LIKE 'C%' OR sum(quantity * unit_price) < 0) AS is_return,
               CAST(NULL AS VARCHAR) AS currency,
               CAST(NULL AS DOUBLE) AS discount,
               CAST(NULL AS DOUBLE) AS shipping_cost
        FROM {t} GROUP BY invoice_id""")
    products = _temp(con, typed + "_products", f"""
        SELECT product_id,
               mode(description) AS product_name,
               CAST(NULL AS VARCHAR) AS category,
               median(unit_price) FILTER (WHERE unit_price > 0) AS list_price,
               CAST(NULL AS DOUBLE) AS unit_cost
        FROM {t} GROUP BY product_id""")
    customers = _new_customers(con, typed, "country")
    changes = {
        "orders": write(con, TABLES["orders"], orders, mode, TABLES["orders"].column_names),
        "order_items": _write_items(con, items, mode, write),
        "products": write(con, TABLES["products"], products, "append", []),
        "customers": write(con, TABLES["customers"], customers, "append", []),
    }
    for tmp in (items, orders, products, customers):
        con.execute(f"DROP TABLE IF EXISTS {q(tmp)}")
    return changes, facts


def _write_items(con, items: str, mode: str, write) -> dict:
    """Order lines follow their orders: in append/upsert, the lines of every order in the file are replaced."""
    if mode == "replace":
        return write(con, TABLES["order_items"], items, "replace", [])
    before = con.execute("SELECT count(*) FROM order_items").fetchone()[0]
    if mode == "append":
        con.execute(f"DELETE FROM {q(items)} WHERE order_id IN (SELECT order_id FROM order_items)")
    else:
        con.execute(f"DELETE FROM order_items WHERE order_id IN (SELECT order_id FROM {q(items)})")
    cols = ", ".join(q(c) for c in TABLES["order_items"].column_names)
    con.execute(f"INSERT INTO order_items ({cols}) SELECT {cols} FROM {q(items)}")
    after = con.execute("SELECT count(*) FROM order_items").fetchone()[0]
    return {"rows_before": before, "rows_after": after, "inserted": after - before}


def _new_customers(con, typed: str, country_col: str | None) -> str:
    """Customers seen in the file, one row each; only their id (and country when the shape has it)."""
    cols = []
    for c in TABLES["customers"].columns:
        if c.name == "customer_id":
            cols.append("customer_id")
        elif c.name == "country" and country_col:
            cols.append(f"max({q(country_col)}) AS country")
        else:
            cols.append(f"CAST(NULL AS {c.sql_type}) AS {q(c.name)}")
    return _temp(con, typed + "_customers",
                 f"SELECT {', '.join(cols)} FROM {q(typed)} WHERE customer_id IS NOT NULL GROUP BY customer_id")


def _transactions(con, typed: str, mode: str, write) -> tuple[dict, dict]:
    t = q(typed)
    gen_id = (
        "coalesce(order_id, 'T' || substr(md5(concat_ws('|', customer_id, CAST(ordered_at AS VARCHAR), "
        "CAST(amount AS VARCHAR), CAST(row_number() OVER (PARTITION BY customer_id, ordered_at, amount "
        "ORDER BY rowid) AS VARCHAR))), 1, 16))"
    )
    orders = _temp(con, typed + "_orders", f"""
        SELECT {gen_id} AS order_id, customer_id, ordered_at, amount,
               CAST(NULL AS VARCHAR) AS channel,
               CASE WHEN amount < 0 THEN 'returned' ELSE 'completed' END AS status,
               amount < 0 AS is_return,
               CAST(NULL AS VARCHAR) AS currency, CAST(NULL AS DOUBLE) AS discount,
               CAST(NULL AS DOUBLE) AS shipping_cost
        FROM {t}""")
    dup_ids = con.execute(f"SELECT count(*) - count(DISTINCT order_id) FROM {q(orders)}").fetchone()[0]
    if dup_ids:
        # Several rows of one order id (line-level logs): sum them into one order.
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {q(orders)} AS
            SELECT order_id, max(customer_id) AS customer_id, min(ordered_at) AS ordered_at,
                   round(sum(amount), 2) AS amount, NULL::VARCHAR AS channel,
                   CASE WHEN sum(amount) < 0 THEN 'returned' ELSE 'completed' END AS status,
                   sum(amount) < 0 AS is_return, NULL::VARCHAR AS currency, NULL::DOUBLE AS discount,
                   NULL::DOUBLE AS shipping_cost
            FROM {q(orders)} GROUP BY order_id""")
    row = con.execute(
        f"SELECT count(*), count(DISTINCT customer_id), count(*) FILTER (WHERE amount < 0), "
        f"coalesce(sum(amount), 0), min(ordered_at), max(ordered_at) FROM {q(orders)}"
    ).fetchone()
    facts = {
        "orders": int(row[0]),
        "customers": int(row[1]),
        "refunds (negative amounts)": int(row[2]),
        "net revenue": round(float(row[3]), 2),
        "first order": str(row[4]),
        "last order": str(row[5]),
    }
    if dup_ids:
        facts["rows merged into orders sharing an id"] = int(dup_ids)
    customers = _new_customers(con, typed, None)
    changes = {
        "orders": write(con, TABLES["orders"], orders, mode, TABLES["orders"].column_names),
        "customers": write(con, TABLES["customers"], customers, "append", []),
    }
    for tmp in (orders, customers):
        con.execute(f"DROP TABLE IF EXISTS {q(tmp)}")
    return changes, facts
