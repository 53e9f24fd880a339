"""Data quality: duplicate customers, duplicate keys, completeness and which columns the views use.

Every function takes an open DuckDB connection holding the canonical tables (see :mod:`crm_core.store`) and
returns a pandas frame or a small frozen dataclass. The heavy work runs in DuckDB; only candidate pairs come back
to Python, so the checks stay usable at a million customers.

Matching rules (the same rules exist twice: as Python functions for people and tests, and as SQL expressions for
the queries; ``tests/test_quality.py`` checks that both give the same answer on a list of examples):

* e-mail: leading/trailing whitespace (space, tab, line breaks, no-break space) removed, lower-cased.
* phone: a ``(0)`` written after the country code is dropped, then only the digits 0-9 are kept. A number
  written with ``+`` before its first digit already carries its country code; ``00`` starts an international
  number (``0044 ...`` → ``44 ...``); a single leading ``0`` is the national trunk prefix and is replaced by the
  default country code (``07700 ...`` → ``44 7700 ...``); any other number is kept as written (exports often drop
  the ``+``). Fewer than 7 digits is not a usable phone number. Countries whose national numbers do not start
  with ``0`` (the US and Canada) match only when written the same way, with or without the country code.
* name: ``name``, else ``first_name`` + ``last_name``; Unicode NFC, lower-cased, every run of characters that
  are not letters or digits becomes one space, words sorted (``"Smith, John"`` = ``"john smith"``).
* postcode: letters and digits only, upper-cased (``"sw1a 1aa"`` = ``"SW1A1AA"``).

Names are compared with every other name in the same postcode; in a postcode with more than ``FUZZY_BLOCK_SIZE``
named customers, with the ``NEIGHBOURS`` names next to it in name order and in reversed-name order (bounded work;
a typo can then be missed in such a postcode).

A value shared by more than ``max_group_size`` customers (``noemail@example.com``, ``0000000000``, thirty
identical "Test Customer" rows) is a placeholder, not a person: it is left out of pair matching and listed by
:func:`shared_values` instead.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from dataclasses import asdict, dataclass

import duckdb
import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from crm_core.schema import TABLES
from crm_core.store import quote_ident, table_exists

__all__ = [
    "DEFAULT_COUNTRY_CODE",
    "MAX_GROUP_SIZE",
    "RULES",
    "VIEW_COLUMNS",
    "DuplicateSummary",
    "normalize_email",
    "normalize_phone",
    "normalize_name",
    "normalize_postcode",
    "email_sql",
    "phone_sql",
    "name_sql",
    "postcode_sql",
    "duplicate_customers",
    "shared_values",
    "duplicate_summary",
    "duplicate_keys",
    "completeness",
    "unused_columns",
    "missing_for_views",
    "quality_report",
    "format_report",
]

DEFAULT_COUNTRY_CODE = "44"
MIN_PHONE_DIGITS = 7
MAX_GROUP_SIZE = 20  # more customers than this sharing one value → a placeholder, not a duplicate
FUZZY_BLOCK_SIZE = 2000  # in a postcode with more named customers, names are compared with their neighbours only
NEIGHBOURS = 50  # ... the names within this many places in name order or in reversed-name order
TOP_PAIRS = 20

RULES: tuple[str, ...] = ("exact", "email", "phone", "name_postcode")  # the order rules are listed in 'email+phone'

# Which columns each view reads: view → table → columns. Add a view here when it is built; nothing else changes.
VIEW_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "overview": {
        "orders": ("order_id", "customer_id", "ordered_at", "amount", "is_return"),
        "customers": ("customer_id", "signup_date", "region", "country"),
        "support_tickets": ("ticket_id", "created_at", "resolved_at"),
    },
    "data quality": {
        "customers": ("customer_id", "name", "first_name", "last_name", "email", "phone", "postcode", "signup_date"),
    },
}

_WS = " \t\n\r\f\v\u00a0"  # what "blank" means, in Python and in SQL alike
_COUNTRY_CODE = re.compile(r"[0-9]{1,3}")
_TRUNK_IN_PARENS = re.compile(r"\( *0 *\)")  # '+44 (0)20 ...'
_PLUS_FIRST = re.compile(r"^[^0-9]*\+")
_NOT_DIGIT = re.compile(r"[^0-9]+")
_NOT_ALNUM = re.compile(r"[\W_]+")  # Python's \w is Unicode letters, digits and '_' ↔ RE2 [\p{L}\p{N}]

PAIR_COLUMNS = ["customer_id_a", "customer_id_b", "rule", "score", "name_a", "name_b", "email_a", "email_b",
                "orders_a", "orders_b", "keep_id"]


# ---------------------------------------------------------------------------------------------- Python rules


def _check_country_code(country_code: str) -> str:
    code = str(country_code).lstrip("+")
    if not _COUNTRY_CODE.fullmatch(code):
        raise ValueError(f"country_code must be 1 to 3 digits such as '44' or '1', got {country_code!r}")
    return code


def normalize_email(s: str | None) -> str | None:
    """E-mail → comparable form: surrounding whitespace removed, lower-cased; blank → ``None``.

    >>> normalize_email("  Ann.Lee@Example.COM ")
    'ann.lee@example.com'
    >>> normalize_email("   ") is None
    True
    """
    if s is None:
        return None
    text = str(s).strip(_WS).lower()
    return text or None


def normalize_phone(s: str | None, country_code: str = DEFAULT_COUNTRY_CODE) -> str | None:
    """Phone → digits with the country code in front (rule in the module docstring); unusable → ``None``.

    >>> [normalize_phone(p) for p in ("+44 7700 900123", "0044 7700-900123", "07700 900123", "+44 (0)7700 900123")]
    ['447700900123', '447700900123', '447700900123', '447700900123']
    >>> normalize_phone("(555) 123-4567", country_code="1"), normalize_phone("0555 1234567", country_code="1")
    ('5551234567', '15551234567')
    >>> normalize_phone("0") is None, normalize_phone("n/a") is None
    (True, True)
    """
    code = _check_country_code(country_code)
    if s is None:
        return None
    text = _TRUNK_IN_PARENS.sub("", str(s))
    digits = _NOT_DIGIT.sub("", text)
    if _PLUS_FIRST.match(text):
        number = digits
    elif digits.startswith("00"):
        number = digits[2:]
    elif digits.startswith("0"):
        number = code + digits[1:]
    else:
        number = digits
    return number if len(number) >= MIN_PHONE_DIGITS else None


def normalize_name(s: str | None) -> str | None:
    """Name → lower-case words, punctuation removed, sorted; nothing left → ``None``.

    >>> normalize_name("Smith,  JOHN-Paul")
    'john paul smith'
    >>> normalize_name(" - ") is None
    True
    """
    if s is None:
        return None
    text = unicodedata.normalize("NFC", str(s)).lower()
    words = _NOT_ALNUM.sub(" ", text).split(" ")
    return " ".join(sorted(w for w in words if w)) or None


def normalize_postcode(s: str | None) -> str | None:
    """Postcode → letters and digits only, upper-case; blank → ``None``.

    >>> normalize_postcode(" sw1a-1aa ")
    'SW1A1AA'
    """
    if s is None:
        return None
    return _NOT_ALNUM.sub("", str(s)).upper() or None


# ------------------------------------------------------------------------------------------------- SQL rules


def _sql_str(text: str) -> str:
    """A SQL string literal for a constant of this module (never for data)."""
    return "'" + text.replace("'", "''") + "'"


def _present(expr: str) -> str:
    """SQL: the text expression holds something other than whitespace."""
    return f"(trim({expr}, {_sql_str(_WS)}) <> '')"


def _email_expr(expr: str) -> str:
    return f"nullif(lower(trim({expr}, {_sql_str(_WS)})), '')"


def _phone_expr(expr: str, param: str) -> str:
    text = f"regexp_replace({expr}, {_sql_str(_TRUNK_IN_PARENS.pattern)}, '', 'g')"
    digits = f"regexp_replace({text}, '[^0-9]+', '', 'g')"
    number = (f"CASE WHEN regexp_matches({text}, {_sql_str(_PLUS_FIRST.pattern)}) THEN {digits} "
              f"WHEN starts_with({digits}, '00') THEN substr({digits}, 3) "
              f"WHEN starts_with({digits}, '0') THEN ${param} || substr({digits}, 2) "
              f"ELSE {digits} END")
    return f"(CASE WHEN length({number}) >= {MIN_PHONE_DIGITS} THEN {number} END)"


def _name_expr(expr: str) -> str:
    words = f"regexp_replace(lower(nfc_normalize({expr})), '[^\\p{{L}}\\p{{N}}]+', ' ', 'g')"
    return f"nullif(array_to_string(list_sort(string_split(trim({words}), ' ')), ' '), '')"


def _postcode_expr(expr: str) -> str:
    return f"nullif(upper(regexp_replace({expr}, '[^\\p{{L}}\\p{{N}}]+', '', 'g')), '')"


def email_sql(column: str) -> str:
    """SQL expression: :func:`normalize_email` of ``column``."""
    return _email_expr(quote_ident(column))


def phone_sql(column: str, param: str = "country_code") -> str:
    """SQL expression: :func:`normalize_phone` of ``column``; bind the country code as the named parameter."""
    return _phone_expr(quote_ident(column), param)


def name_sql(column: str) -> str:
    """SQL expression: :func:`normalize_name` of ``column``."""
    return _name_expr(quote_ident(column))


def postcode_sql(column: str) -> str:
    """SQL expression: :func:`normalize_postcode` of ``column``."""
    return _postcode_expr(quote_ident(column))


def _col(name: str) -> str:
    return quote_ident(name)


_FULL_NAME = f"concat_ws(' ', {_col('first_name')}, {_col('last_name')})"
_CUSTOMER_NAME = f"coalesce({name_sql('name')}, {_name_expr(_FULL_NAME)})"
_DISPLAY_NAME = (f"coalesce(nullif(trim({_col('name')}), ''), "
                 f"nullif(trim(concat_ws(' ', trim({_col('first_name')}), trim({_col('last_name')}))), ''))")
_KEYS_CTE = f"""keys AS MATERIALIZED (
    SELECT customer_id,
           {email_sql('email')} AS email_key,
           {phone_sql('phone')} AS phone_key,
           {postcode_sql('postcode')} AS postcode_key,
           {_CUSTOMER_NAME} AS name_key
    FROM customers
    WHERE customer_id IS NOT NULL)"""

_CUSTOMER_VALUES = [c for c in TABLES["customers"].column_names if c not in TABLES["customers"].key]
_VALUE_LIST = ", ".join(quote_ident(c) for c in _CUSTOMER_VALUES)
_IDENTIFYING = ("name", "first_name", "last_name", "email", "phone")
# the exact rule only looks at records that name someone: a bare id (+ signup date) is not a duplicate of another
_CAN_BE_EXACT = "customer_id IS NOT NULL AND (" + " OR ".join(_present(_col(c)) for c in _IDENTIFYING) + ")"


def _exact_cte() -> str:
    return f"""exact_rows AS (
    SELECT customer_id, {_VALUE_LIST}, count(*) OVER (PARTITION BY {_VALUE_LIST}) AS n
    FROM customers
    WHERE {_CAN_BE_EXACT})"""


def _key_groups_cte(rule: str, key: str) -> str:
    return f"""{rule}_rows AS (
    SELECT customer_id, {key} AS v, count(*) OVER (PARTITION BY {key}) AS n
    FROM keys WHERE {key} IS NOT NULL)"""


def _exact_rule_sql() -> str:
    same = " AND ".join(f"a.{quote_ident(c)} IS NOT DISTINCT FROM b.{quote_ident(c)}" for c in _CUSTOMER_VALUES)
    return f"""SELECT a.customer_id AS customer_id_a, b.customer_id AS customer_id_b, 'exact' AS rule
    FROM exact_rows a JOIN exact_rows b ON a.customer_id < b.customer_id AND {same}
    WHERE a.n <= $cap"""


def _key_rule_sql(rule: str) -> str:
    return f"""SELECT a.customer_id AS customer_id_a, b.customer_id AS customer_id_b, '{rule}' AS rule
    FROM {rule}_rows a JOIN {rule}_rows b ON a.v = b.v AND a.customer_id < b.customer_id
    WHERE a.n <= $cap"""


# --------------------------------------------------------------------------------------------------- checks


def _check_threshold(name_threshold: int) -> None:
    if not 0 < name_threshold <= 100:
        raise ValueError(f"name_threshold must be between 1 and 100 (a token_sort_ratio), got {name_threshold!r}")


def _check_group_size(max_group_size: int) -> None:
    if max_group_size < 2:
        raise ValueError(f"max_group_size must be at least 2, got {max_group_size!r}")


def _has_customers(con: duckdb.DuckDBPyConnection) -> bool:
    return table_exists(con, "customers")


# --------------------------------------------------------------------------------------------- duplicates


def _key_rule_pairs(con: duckdb.DuckDBPyConnection, code: str, cap: int) -> pd.DataFrame:
    """Pairs found by the exact, e-mail and phone rules: customer_id_a, customer_id_b, rule (one row per rule)."""
    sql = f"""WITH {_KEYS_CTE},
    {_exact_cte()},
    {_key_groups_cte('email', 'email_key')},
    {_key_groups_cte('phone', 'phone_key')}
    {_exact_rule_sql()}
    UNION ALL {_key_rule_sql('email')}
    UNION ALL {_key_rule_sql('phone')}"""
    pairs = con.execute(sql, {"country_code": code, "cap": cap}).df()
    pairs["score"] = 100.0
    return pairs


def _name_rule_pairs(con: duckdb.DuckDBPyConnection, threshold: int, cap: int) -> pd.DataFrame:
    """Pairs found by the name-in-postcode rule: customer_id_a, customer_id_b, rule, score (token_sort_ratio).

    Candidates: every pair in the same postcode. A postcode with more than ``FUZZY_BLOCK_SIZE`` named customers
    (a US zip code, a default value) would cost its size squared, so there only neighbours are compared: the
    names are sorted, and again sorted by their reversed text (for typos near the start), and each name meets
    the ``NEIGHBOURS`` names around it in either order - a bounded amount of work per customer.
    Candidates then need a Levenshtein distance that allows the threshold: ratio ≥ t needs Indel ≤ (100 - t)% of
    both lengths and Levenshtein ≤ Indel (DuckDB counts bytes, so non-ASCII names get four times the
    allowance). Only those come back to Python to be scored exactly.
    """
    window = f"(({{rank}} - 1) // {NEIGHBOURS})"  # overlapping windows of 2 × NEIGHBOURS: rows k and k - 1
    by_name = "row_number() OVER (PARTITION BY postcode_key ORDER BY name_key, customer_id)"
    by_reversed = "row_number() OVER (PARTITION BY postcode_key ORDER BY reverse(name_key), customer_id)"
    sql = f"""WITH named AS MATERIALIZED (
        SELECT customer_id, name_key, postcode_key,
               length(name_key) AS len, strlen(name_key) = length(name_key) AS is_ascii,
               count(*) OVER (PARTITION BY postcode_key) AS block_n,
               count(*) OVER (PARTITION BY postcode_key, name_key) AS same_n
        FROM (SELECT customer_id, {postcode_sql('postcode')} AS postcode_key, {_CUSTOMER_NAME} AS name_key
              FROM customers WHERE customer_id IS NOT NULL)
        WHERE name_key IS NOT NULL AND postcode_key IS NOT NULL),
    usable AS (SELECT * FROM named WHERE block_n >= 2 AND same_n <= $cap),
    big AS (
        SELECT *, {window.format(rank=by_name)} AS w_name, {window.format(rank=by_reversed)} AS w_reversed
        FROM usable WHERE block_n > $block_size),
    blocked AS (
        SELECT customer_id, name_key, len, is_ascii, postcode_key AS block FROM usable WHERE block_n <= $block_size
        UNION ALL
        SELECT customer_id, name_key, len, is_ascii, postcode_key || chr(31) || k || chr(31) || w
        FROM (SELECT *, 'n' AS k, unnest([w_name, w_name - 1]) AS w FROM big
              UNION ALL
              SELECT *, 'r' AS k, unnest([w_reversed, w_reversed - 1]) AS w FROM big))
    SELECT DISTINCT a.customer_id AS customer_id_a, b.customer_id AS customer_id_b, a.name_key AS key_a,
           b.name_key AS key_b
    FROM blocked a JOIN blocked b ON a.block = b.block AND a.customer_id < b.customer_id
    WHERE 200 * least(a.len, b.len) >= $threshold * (a.len + b.len)
      AND 100 * levenshtein(a.name_key, b.name_key)
          <= (100 - $threshold) * (a.len + b.len) * (CASE WHEN a.is_ascii AND b.is_ascii THEN 1 ELSE 4 END)"""
    params = {"cap": cap, "block_size": FUZZY_BLOCK_SIZE, "threshold": threshold}
    found: list[pd.DataFrame] = []
    cursor = con.execute(sql, params)
    while True:
        chunk = cursor.fetchmany(100_000)
        if not chunk:
            break
        ids_a, ids_b, keys_a, keys_b = zip(*chunk)
        scores = process.cpdist(keys_a, keys_b, scorer=fuzz.token_sort_ratio, dtype=np.float64, workers=-1)
        keep = scores >= threshold
        found.append(pd.DataFrame({"customer_id_a": np.asarray(ids_a, dtype=object)[keep],
                                   "customer_id_b": np.asarray(ids_b, dtype=object)[keep],
                                   "score": np.round(scores[keep].astype("float64"), 1)}))
    pairs = pd.concat(found, ignore_index=True) if found else pd.DataFrame(
        {"customer_id_a": pd.Series(dtype=object), "customer_id_b": pd.Series(dtype=object),
         "score": pd.Series(dtype="float64")})
    pairs["rule"] = "name_postcode"
    return pairs


def _customer_details(con: duckdb.DuckDBPyConnection, ids: list[str]) -> pd.DataFrame:
    """One row per customer id in ``ids``: display_name, email, signup_date, count_orders."""
    has_orders = table_exists(con, "orders")
    orders = ("(SELECT customer_id, count(*) AS count_orders FROM orders "
              "WHERE customer_id IN (SELECT unnest($ids)) GROUP BY customer_id)" if has_orders
              else "(SELECT NULL::VARCHAR AS customer_id, 0 AS count_orders WHERE false)")
    sql = f"""SELECT c.customer_id, any_value({_DISPLAY_NAME}) AS display_name, any_value(c.email) AS email,
                     min(c.signup_date) AS signup_date, coalesce(any_value(o.count_orders), 0) AS count_orders
              FROM customers c LEFT JOIN {orders} o USING (customer_id)
              WHERE c.customer_id IN (SELECT unnest($ids))
              GROUP BY c.customer_id"""
    return con.execute(sql, {"ids": ids}).df()


def _empty_pairs() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in PAIR_COLUMNS})
    return frame.astype({"score": "float64", "orders_a": "int64", "orders_b": "int64"})


def duplicate_customers(
    con: duckdb.DuckDBPyConnection,
    *,
    name_threshold: int = 90,
    country_code: str = DEFAULT_COUNTRY_CODE,
    max_group_size: int = MAX_GROUP_SIZE,
) -> pd.DataFrame:
    """customers → one row per suggested duplicate pair.

    Columns: ``customer_id_a`` < ``customer_id_b`` (text order), ``rule`` (the rules that matched, in the order
    exact, email, phone, name_postcode, joined by '+'), ``score`` (100 for the exact rules, else the
    token_sort_ratio of the names), ``name_a``/``name_b`` and ``email_a``/``email_b`` as stored, ``orders_a``/
    ``orders_b`` (order rows, returns included) and ``keep_id``: the record to keep when merging, the one with
    more orders, then the earlier ``signup_date`` (a missing date counts as latest), then the smaller id.
    Sorted by score, then number of rules (both descending), then ids.

    Rules: ``exact`` every column but ``customer_id`` equal (missing = missing), for records with a name, e-mail or
    phone; ``email`` / ``phone`` the same normalised value; ``name_postcode`` normalised names with
    ``token_sort_ratio >= name_threshold`` in the same normalised postcode. Values shared by more than
    ``max_group_size`` customers are placeholders and match nothing (see :func:`shared_values`).
    """
    _check_threshold(name_threshold)
    _check_group_size(max_group_size)
    code = _check_country_code(country_code)
    if not _has_customers(con):
        return _empty_pairs()
    found = pd.concat([_key_rule_pairs(con, code, max_group_size),
                       _name_rule_pairs(con, name_threshold, max_group_size)], ignore_index=True)
    if found.empty:
        return _empty_pairs()
    found["rule_order"] = found["rule"].map({r: i for i, r in enumerate(RULES)})
    found = found.sort_values(["customer_id_a", "customer_id_b", "rule_order"]).drop_duplicates(
        ["customer_id_a", "customer_id_b", "rule"])
    pairs = found.groupby(["customer_id_a", "customer_id_b"], as_index=False, sort=False).agg(
        rule=("rule", "+".join), score=("score", "max"), n_rules=("rule", "size"))

    ids = sorted(set(pairs["customer_id_a"]) | set(pairs["customer_id_b"]))
    details = _customer_details(con, ids).set_index("customer_id")
    for side in ("a", "b"):
        d = details.reindex(pairs[f"customer_id_{side}"])
        pairs[f"name_{side}"] = d["display_name"].to_numpy()
        pairs[f"email_{side}"] = d["email"].to_numpy()
        pairs[f"orders_{side}"] = d["count_orders"].fillna(0).astype("int64").to_numpy()
        pairs[f"signup_{side}"] = pd.to_datetime(d["signup_date"]).to_numpy()
    pairs["keep_id"] = _keep_ids(pairs)
    pairs = pairs.sort_values(["score", "n_rules", "customer_id_a", "customer_id_b"],
                              ascending=[False, False, True, True], ignore_index=True)
    return pairs[PAIR_COLUMNS]


def _keep_ids(pairs: pd.DataFrame) -> pd.Series:
    """Which id of each pair to keep: more orders, then earlier signup (missing = latest), then smaller id."""
    a_more, b_more = pairs["orders_a"] > pairs["orders_b"], pairs["orders_b"] > pairs["orders_a"]
    sa, sb = pairs["signup_a"], pairs["signup_b"]
    a_earlier = sa.notna() & (sb.isna() | (sa < sb))
    b_earlier = sb.notna() & (sa.isna() | (sb < sa))
    keep_a = a_more | (~b_more & (a_earlier | ~b_earlier))  # ids are ordered a < b: ties keep a
    return pairs["customer_id_a"].where(keep_a, pairs["customer_id_b"])


def shared_values(
    con: duckdb.DuckDBPyConnection,
    *,
    country_code: str = DEFAULT_COUNTRY_CODE,
    max_group_size: int = MAX_GROUP_SIZE,
) -> pd.DataFrame:
    """customers → one row per value shared by more than ``max_group_size`` customers (probable placeholders).

    Columns: ``rule`` (exact, email, phone, name_postcode), ``value`` (the normalised value; for exact the
    record's name or e-mail; for name_postcode ``name @ postcode``), ``count_customers``. These values are left
    out of :func:`duplicate_customers`; most are defaults like ``noemail@example.com`` worth cleaning at the source.
    """
    _check_group_size(max_group_size)
    code = _check_country_code(country_code)
    if not _has_customers(con):
        return pd.DataFrame({"rule": pd.Series(dtype=object), "value": pd.Series(dtype=object),
                             "count_customers": pd.Series(dtype="int64")})
    sql = f"""WITH {_KEYS_CTE}
    SELECT 'exact' AS rule, coalesce(any_value({_DISPLAY_NAME}), any_value(email), any_value(phone)) AS value,
           count(*) AS count_customers
    FROM customers WHERE {_CAN_BE_EXACT}
    GROUP BY {_VALUE_LIST} HAVING count(*) > $cap
    UNION ALL
    SELECT 'email', email_key, count(*) FROM keys WHERE email_key IS NOT NULL GROUP BY email_key HAVING count(*) > $cap
    UNION ALL
    SELECT 'phone', phone_key, count(*) FROM keys WHERE phone_key IS NOT NULL GROUP BY phone_key HAVING count(*) > $cap
    UNION ALL
    SELECT 'name_postcode', name_key || ' @ ' || postcode_key, count(*) FROM keys
    WHERE name_key IS NOT NULL AND postcode_key IS NOT NULL GROUP BY name_key, postcode_key HAVING count(*) > $cap
    ORDER BY count_customers DESC, rule, value"""
    frame = con.execute(sql, {"country_code": code, "cap": max_group_size}).df()
    return frame.astype({"count_customers": "int64"})


@dataclass(frozen=True)
class DuplicateSummary:
    """How many customer records look like duplicates, and one sentence that says so for a manager.

    ``duplicate_records`` is what merging every suggested pair would remove: customers in some pair minus the
    groups they form (A~B and B~C is one person kept, two records removed). ``pairs_by_rule`` counts a pair under
    every rule it matched, so the counts can add up to more than ``pairs``.
    """

    customers: int
    pairs: int
    pairs_by_rule: dict[str, int]
    customers_involved: int
    duplicate_records: int
    duplicate_pct: float | None  # duplicate_records / customers × 100; None without customers
    shared_values: int  # placeholder values left out of matching
    reading: str


def _count_groups(pairs: pd.DataFrame) -> int:
    """Connected groups formed by the pairs (union-find)."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(pairs["customer_id_a"], pairs["customer_id_b"]):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[rb] = ra
    return sum(1 for x in parent if root(x) == x)


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def duplicate_summary(
    con: duckdb.DuckDBPyConnection,
    *,
    pairs: pd.DataFrame | None = None,
    name_threshold: int = 90,
    country_code: str = DEFAULT_COUNTRY_CODE,
    max_group_size: int = MAX_GROUP_SIZE,
) -> DuplicateSummary:
    """customers → counts of suggested duplicates; pass ``pairs`` from :func:`duplicate_customers` to reuse them."""
    if pairs is None:
        pairs = duplicate_customers(con, name_threshold=name_threshold, country_code=country_code,
                                    max_group_size=max_group_size)
    customers = _row_count(con, "customers")
    n_shared = len(shared_values(con, country_code=country_code, max_group_size=max_group_size))
    by_rule = {r: sum(r in rules.split("+") for rules in pairs["rule"]) for r in RULES}
    involved = len(set(pairs["customer_id_a"]) | set(pairs["customer_id_b"]))
    removable = involved - _count_groups(pairs)
    pct = 100.0 * removable / customers if customers else None
    if not customers:
        reading = "No customers yet; import customers to look for duplicates."
    elif not len(pairs):
        reading = (f"No duplicates found among {_n(customers, 'customer')} (same e-mail, same phone or a "
                   f"near-identical name in the same postcode)")
    else:
        looks = "looks like a duplicate" if removable == 1 else "look like duplicates"
        left = _n(customers - removable, "customer")
        reading = (f"{_n(removable, 'customer')} ({pct:.1f}%) {looks} of another record; merging them would "
                   f"leave {left} instead of {customers:,}")
    if customers and n_shared:
        reading += (f" ({_n(n_shared, 'value')} shared by more than {max_group_size} customers, such as placeholder "
                    f"e-mails, {'was' if n_shared == 1 else 'were'} left out)")
    if customers:
        reading += "."
    return DuplicateSummary(customers, len(pairs), by_rule, involved, removable, pct, n_shared, reading)


# ------------------------------------------------------------------------------------------- keys, columns


def _check_table(table: str) -> None:
    if table not in TABLES:
        raise ValueError(f"Unknown table {table!r}; choose one of: {', '.join(TABLES)}")


def _row_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    if not table_exists(con, table):
        return 0
    return int(con.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchone()[0])


def _db_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = 'main' AND table_name = ?", [table]).fetchall()
    return dict(rows)


def duplicate_keys(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    """One canonical table → one row per key value that occurs more than once: the key columns, ``count_rows``.

    The key is ``schema.TABLES[table].key``; rows with a missing key part are not counted (completeness shows
    them). Sorted by ``count_rows`` descending, then the key.
    """
    _check_table(table)
    key = list(TABLES[table].key)
    if not table_exists(con, table) or not set(key) <= set(_db_columns(con, table)):
        return pd.DataFrame({**{k: pd.Series(dtype=object) for k in key}, "count_rows": pd.Series(dtype="int64")})
    cols = ", ".join(quote_ident(k) for k in key)
    not_null = " AND ".join(f"{quote_ident(k)} IS NOT NULL" for k in key)
    sql = (f"SELECT {cols}, count(*) AS count_rows FROM {quote_ident(table)} WHERE {not_null} "
           f"GROUP BY {cols} HAVING count(*) > 1 ORDER BY count_rows DESC, {cols}")
    return con.execute(sql).df().astype({"count_rows": "int64"})


def _used_by() -> dict[tuple[str, str], str]:
    views: dict[tuple[str, str], list[str]] = {}
    for view, tables in VIEW_COLUMNS.items():
        for table, columns in tables.items():
            for column in columns:
                views.setdefault((table, column), []).append(view)
    return {k: ", ".join(v) for k, v in views.items()}


def completeness(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """All canonical tables → one row per table and column, in schema order.

    Columns: ``table_name``, ``column_name``, ``is_required``, ``rows``, ``non_null`` (values that are not
    missing; blank or whitespace-only text counts as missing), ``completeness_pct`` (non_null / rows × 100; null
    for an empty table), ``distinct_values`` (among the non-missing values) and ``used_by`` (the views of
    ``VIEW_COLUMNS`` that read the column, comma-separated; empty when none).
    """
    used_by = _used_by()
    records: list[dict] = []
    for table in TABLES.values():
        present = _db_columns(con, table.name) if table_exists(con, table.name) else {}
        measured: dict[str, tuple[int, int]] = {}
        rows = 0
        if present:
            parts = ["count(*)"]
            cols = [c for c in table.column_names if c in present]
            for c in cols:
                q = quote_ident(c)
                value = f"CASE WHEN {_present(q)} THEN {q} END" if present[c] == "VARCHAR" else q
                parts.append(f"count({value})")
                parts.append(f"count(DISTINCT {value})")
            values = con.execute(f"SELECT {', '.join(parts)} FROM {quote_ident(table.name)}").fetchone()
            rows = int(values[0])
            measured = {c: (int(values[1 + 2 * i]), int(values[2 + 2 * i])) for i, c in enumerate(cols)}
        for col in table.columns:
            non_null, distinct = measured.get(col.name, (0, 0))
            records.append({
                "table_name": table.name,
                "column_name": col.name,
                "is_required": col.required,
                "rows": rows,
                "non_null": non_null,
                "completeness_pct": 100.0 * non_null / rows if rows else math.nan,
                "distinct_values": distinct,
                "used_by": used_by.get((table.name, col.name), ""),
            })
    return pd.DataFrame.from_records(records).astype(
        {"rows": "int64", "non_null": "int64", "distinct_values": "int64", "completeness_pct": "float64"})


def unused_columns(con: duckdb.DuckDBPyConnection, comp: pd.DataFrame | None = None) -> pd.DataFrame:
    """Columns that hold data (non_null > 0) that no view reads: ``table_name``, ``column_name``, ``rows``,
    ``non_null``, ``completeness_pct``. Pass ``comp`` from :func:`completeness` to reuse it."""
    comp = completeness(con) if comp is None else comp
    unused = comp[(comp["non_null"] > 0) & (comp["used_by"] == "")]
    return unused[["table_name", "column_name", "rows", "non_null", "completeness_pct"]].reset_index(drop=True)


def missing_for_views(con: duckdb.DuckDBPyConnection, comp: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per view and column it reads that is entirely empty: ``view``, ``table_name``, ``column_name``,
    ``rows`` (of the table; 0 means the whole table is missing) and ``advice`` (what to upload).

    In ``VIEW_COLUMNS`` order. Pass ``comp`` from :func:`completeness` to reuse it.
    """
    comp = completeness(con) if comp is None else comp
    by_column = comp.set_index(["table_name", "column_name"])
    records = []
    for view, tables in VIEW_COLUMNS.items():
        for table, columns in tables.items():
            for column in columns:
                row = by_column.loc[(table, column)]
                if row["non_null"] > 0:
                    continue
                rows = int(row["rows"])
                advice = (f"import {table} (the table is empty)" if rows == 0 else
                          f"re-import {table} with a column mapped to '{column}' (empty in all {rows:,} rows)")
                records.append({"view": view, "table_name": table, "column_name": column, "rows": rows,
                                "advice": advice})
    columns = ["view", "table_name", "column_name", "rows", "advice"]
    return pd.DataFrame.from_records(records, columns=columns).astype({"rows": "int64"})


# --------------------------------------------------------------------------------------------------- report


def _plain(value):
    """A pandas/numpy/date value → something ``json.dumps`` takes (NaN and NaT → None)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def quality_report(con: duckdb.DuckDBPyConnection, *, name_threshold: int = 90,
                   country_code: str = DEFAULT_COUNTRY_CODE) -> dict:
    """The whole store → a JSON-serialisable summary for ``python -m crm_core quality``.

    Keys: ``tables`` (rows per canonical table), ``completeness`` (columns of non-empty tables under 100%),
    ``duplicates`` (:class:`DuplicateSummary` as a dict), ``duplicate_pairs`` (the first 20 pairs),
    ``shared_values`` (placeholders left out of matching), ``duplicate_keys`` (table → repeated keys, only
    tables that have some), ``unused_columns`` and ``missing_for_views``.
    """
    comp = completeness(con)
    pairs = duplicate_customers(con, name_threshold=name_threshold, country_code=country_code)
    summary = duplicate_summary(con, pairs=pairs, country_code=country_code)
    incomplete = comp[(comp["rows"] > 0) & (comp["completeness_pct"] < 100)]
    keys = {t: _records(frame) for t in TABLES if len(frame := duplicate_keys(con, t))}
    return {
        "tables": {t: _row_count(con, t) for t in TABLES},
        "completeness": _records(incomplete),
        "duplicates": {k: _plain(v) if not isinstance(v, dict) else v for k, v in asdict(summary).items()},
        "duplicate_pairs": _records(pairs.head(TOP_PAIRS)),
        "shared_values": _records(shared_values(con, country_code=country_code)),
        "duplicate_keys": keys,
        "unused_columns": _records(unused_columns(con, comp)),
        "missing_for_views": _records(missing_for_views(con, comp)),
    }


def format_report(report: dict) -> str:
    """:func:`quality_report` → plain text for a terminal."""
    lines = ["Tables: " + ", ".join(f"{t} {n:,}" for t, n in report["tables"].items()), ""]
    lines.append("Duplicates: " + report["duplicates"]["reading"])
    for p in report["duplicate_pairs"]:
        lines.append(f"  {p['customer_id_a']} ~ {p['customer_id_b']}  {p['rule']} ({p['score']:g})  "
                     f"{p['name_a']} / {p['name_b']}  keep {p['keep_id']}")
    for s in report["shared_values"]:
        lines.append(f"  left out ({s['rule']}): {s['value']} shared by {s['count_customers']:,} customers")
    for table, rows in report["duplicate_keys"].items():
        lines.append(f"Repeated keys in {table}: {len(rows):,} values")
    lines.append("")
    lines.append("Incomplete columns:")
    for c in report["completeness"]:
        lines.append(f"  {c['table_name']}.{c['column_name']}: {c['completeness_pct']:.1f}% "
                     f"({c['non_null']:,} of {c['rows']:,})")
    if report["missing_for_views"]:
        lines.append("Empty columns that views need:")
        lines.extend(f"  {m['view']}: {m['table_name']}.{m['column_name']} - {m['advice']}"
                     for m in report["missing_for_views"])
    if report["unused_columns"]:
        lines.append("Columns with data that no view uses: " + ", ".join(
            f"{u['table_name']}.{u['column_name']}" for u in report["unused_columns"]))
    return "\n".join(lines)
