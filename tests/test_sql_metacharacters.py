"""SQL metacharacters through every user input that reaches the core (issue 9 point 5, second half).

Hostile text (:data:`HOSTILE`: ``'; DROP TABLE customers; --``, ``" OR 1=1 --``, ``%``, ``_``, backslashes,
``$$`` dollar quotes, ``{}`` / ``%s`` format placeholders, regex and parameter markers, unicode with a right-to-left
override, 12,000 characters) goes through: the URL filters (start, end, region, segment, customer — AppTest), the
Customer 360 search box, search and notes (``customer360``), goal names, authors, ids and monthly-target months
(``goals``), every ``ingest.import_file`` option (table, mode, mapping sources and targets, constants' columns and
values, template names, saved template names, date formats, encodings, sheet names) and the values of an imported
file, the CLI (``crm_core.cli.main``: customer, metrics, goals, import, invest) and the metrics options that take
text (campaign ids, segment and region names, SLA-policy priorities and channels, ``by``, features, views).

Each test asserts: no DuckDB error text leaks (:data:`SQL_ERRORS`); every canonical table and the mapping templates
keep their row count and checksum (:func:`snapshot`) unless the input is data being written; hostile data is stored
and read back exactly as typed; an unknown identifier (table, column, template, metric, segment, campaign, grouping,
priority, month, goal id) is refused with a message that names it.

Found and fixed here: a ``--date-format`` DuckDB cannot parse (``%``, ``%Q``) was added to ``ingest.DATE_FORMATS``
for good, so every later import in the process with a non-ISO date column was refused with DuckDB's "Failed to
parse format specifier" (now refused up front by name, and detection tries the built-in formats only);
``goals add --monthly "2026-03=abc"`` ended the CLI with a traceback (now ``error: --monthly ...``, exit 2); a read
outside a hardened connection's folders leaked DuckDB's permission error and the path (now a sentence).

SQL built with f-strings or ``str.format`` in ``crm_core/`` (``grep -nE 'execute\\(f|\\.sql\\(f|format\\('``,
and triple-quoted f-strings), each checked — what is interpolated is a quoted identifier (``store.quote_ident`` /
``ingest.q``), a column name from
the schema or from DuckDB's own DESCRIBE, a constant, or an int; every user value is a bound parameter:

- ``store.table_count``, ``quality._row_count`` / ``completeness`` / ``duplicate_keys``: ``quote_ident(table)`` of
  a schema table; column lists from ``schema.TABLES``.
- ``goals.ensure_goals_table`` (``ALTER TABLE ... ADD COLUMN quote_ident(c.name) c.sql_type`` from the schema),
  ``create_goal`` / ``update_goal`` (quoted schema columns, values bound with ``?``).
- ``audit.entries``: constant column list; the action, actor and limit bound.
- ``ingest``: ``q(...)`` quoted staging-table names made of ``crm_`` + a uuid; ``SELECT ... LIMIT {int(n)}``;
  ``read_csv($path, ...)`` / ``read_parquet($path)`` with the path, dialect and column types bound as named
  parameters; ``col.check.format(c=q(name))`` with checks written in ``schema.py``; ``_date_sql`` quotes a
  strptime pattern as a SQL string (``'`` doubled) — the built-ins, or a user's pattern that DuckDB has parsed;
  ``const_sql`` binds each ``--set`` value as a parameter; the import-log query binds its values.
- ``shapes``: temp tables ``q(name)`` with uuid names, constant SQL over canonical columns.
- ``quality``: CTEs from constants (``_KEYS_CTE``, ``_PLUS_FIRST.pattern`` via ``_sql_str``), ``'exact'`` /
  rule names from a constant tuple, ``window.format(rank=...)`` with constant ORDER BY texts.
- ``campaigns.ATTRIBUTION_RULES[rule].format(window=window_days)``: prose, not SQL; ``rule`` is checked against
  the dict's keys and ``window_days`` is an int.
- Metrics (``metrics``, ``segments``, ``churn``, ``support``, ``voice``, ``fulfilment``, ``customer360`` ...) are
  Ibis expressions: user text becomes ``ibis.literal`` values; ``customer360`` escapes regex metacharacters before
  ``re_search`` and matches ids and e-mails with ``starts_with`` / ``contains``, not ``LIKE``.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from crm_core import (
    campaigns,
    cli,
    customer360,
    fulfilment,
    goals,
    ingest,
    metrics,
    segments,
    store,
    support,
    uplift,
    value,
    voice,
)
from crm_core.schema import TABLES

APP = Path(__file__).parent.parent / "app.py"
AS_OF = dt.date(2026, 6, 30)
HOSTILE = {
    "drop-table": "'; DROP TABLE customers; --",
    "or-1-1": '" OR 1=1 --',
    "percent": "%",
    "underscore": "_",
    "backslash": "a\\b\\'c\\",
    "dollar-quote": "$$ SELECT 1 $$ $tag$",
    "format-braces": "{} {0} {c} %s %(x)s",
    "regex": ".*[(|^",
    "param-markers": "? $1 :name @x",
    "unicode": "Zoë Ødegård 北京 مرحبا \u202etxt.exe 🙂",
    "long": "x' OR '1'='1" * 1000,  # 12,000 characters
}
IDS, TEXTS = list(HOSTILE), list(HOSTILE.values())
SHORT = {k: v for k, v in HOSTILE.items() if k != "long"}
# DuckDB's error classes as they appear in its messages: none may reach a person
SQL_ERRORS = re.compile(r"(Parser|Binder|Catalog|Conversion|Invalid Input|Permission|Constraint|Internal|"
                        r"Not implemented|Out of Range|Dependency|Transaction|Serialization|IO) Error|Traceback")


def snapshot(con) -> dict[str, tuple[int, int]]:
    """(row count, order-free checksum of every column of every row) per canonical table and the templates."""
    return {name: con.execute(f"SELECT count(*), coalesce(bit_xor(hash(t)), 0) FROM {store.quote_ident(name)} t"
                              ).fetchone() for name in [*TABLES, "mapping_templates"]}


def assert_clean(text: str) -> None:
    assert not SQL_ERRORS.search(text), text[:600]


def changed(before: dict, after: dict) -> set[str]:
    return {name for name in before if before[name] != after[name]}


@pytest.fixture
def sample_con(sample_store, tmp_path):
    path = tmp_path / "crm.duckdb"
    shutil.copyfile(sample_store, path)
    con = store.connect(path)
    yield con
    con.close()


@pytest.fixture(scope="module")
def sample_backend(sample_store):
    """The sample store, read-only, for tests that only read."""
    con = store.connect(sample_store, read_only=True)
    yield store.ibis_backend(con)
    con.close()


# --------------------------------------------------------------------------------------------- URL and UI
pytestmark = pytest.mark.usefixtures("release_app_caches")  # the app's caches go with the module


def _app(db: Path, monkeypatch, **query) -> AppTest:
    monkeypatch.setenv("CRM_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=120)
    for name, v in query.items():
        at.query_params[name] = v
    return at.run()


def _page(at: AppTest, title: str) -> AppTest:
    at._page_hash = next(h for h, info in at._registered_pages.items() if info.get("page_name") == title)
    return at.run()


def _shown(at: AppTest) -> str:
    parts = [e.value for e in at.exception] + [str(x.value) for x in (*at.error, *at.warning, *at.info)]
    return "\n".join(str(p) for p in parts)


def test_hostile_url_filters_fall_back_to_the_defaults(sample_store, tmp_path, monkeypatch):
    db = tmp_path / "url.duckdb"
    shutil.copyfile(sample_store, db)
    clean = _app(db, monkeypatch)
    want = {m.label: (m.value, m.delta) for m in clean.main.metric}
    c = store.connect(db)  # the app holds the file open read-write: a second connection must match
    before = snapshot(c)
    c.close()
    at = _app(db, monkeypatch, start=HOSTILE["drop-table"], end=HOSTILE["or-1-1"], region=TEXTS, segment=TEXTS,
              customer=HOSTILE["drop-table"])
    assert not at.exception, [e.value for e in at.exception]
    assert_clean(_shown(at))
    assert {m.label: (m.value, m.delta) for m in at.main.metric} == want and len(want) == 10
    # dates unreadable → the default period; every region and segment unknown → dropped; the page's own kept as text
    assert at.query_params == {"start": "2026-06-01", "end": "2026-06-30", "customer": HOSTILE["drop-table"]}
    at = _page(at, "Customer 360")  # the URL's customer names nobody: the search box stays empty
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_input(key="c360_q").value == ""
    c = store.connect(db)
    try:
        assert snapshot(c) == before
    finally:
        c.close()


def test_hostile_text_in_the_customer_search_box(sample_store, tmp_path, monkeypatch):
    db = tmp_path / "box.duckdb"
    shutil.copyfile(sample_store, db)
    at = _page(_app(db, monkeypatch), "Customer 360")
    for key, text in HOSTILE.items():
        at.text_input(key="c360_q").input(text).run()
        assert not at.exception, (key, [e.value for e in at.exception])
        shown = _shown(at)
        assert_clean(shown)
        if key == "long":
            assert "The search text has 12,000 characters; search with at most 200." in shown
        elif key != "underscore":  # e-mails like ann_lee@... contain "_": those are real matches
            assert f"No customer matches {text.strip()!r}." in shown, (key, shown)


# --------------------------------------------------------------------------------------------- Customer 360
@pytest.mark.parametrize("text", TEXTS, ids=IDS)
def test_search_treats_the_text_as_literal(sample_backend, text):
    frame = sample_backend.table("customers").execute()
    if len(text) > customer360.MAX_QUERY_CHARS:
        with pytest.raises(ValueError, match="The search text has 12,000 characters; search with at most 200"):
            customer360.search_customers(sample_backend, text)
        return
    hits = customer360.search_customers(sample_backend, text, limit=5000)
    q = text.strip().lower()
    literal = (frame.customer_id.str.lower().str.startswith(q) | frame.email.str.lower().str.contains(q, regex=False)
               | frame.name.str.lower().str.contains(q, regex=False))
    # % and _ are not LIKE wildcards, .*[( is not a regex: only customers holding the very characters match
    assert sorted(hits.customer_id) == sorted(frame.customer_id[literal])
    if text == "_":
        assert len(hits) == int(literal.sum()) > 0  # some sample e-mails hold an underscore
    else:
        assert hits.empty


def test_hostile_names_import_and_are_found_as_typed(sample_con, tmp_path):
    """Hostile values in a file are data: imported, stored byte for byte, found by search, nothing else changed."""
    rows = [{"customer_id": f"H{i:02d}", "name": text, "email": f"h{i:02d}@example.com", "signup_date": "2026-01-02",
             "region": text} for i, text in enumerate(TEXTS)]
    path = tmp_path / "customers.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    before = snapshot(sample_con)
    report = ingest.import_file(sample_con, path, "customers", mode="append")
    assert report.outcome == "committed", report.message
    assert (report.rows_read, report.rows_accepted) == (11, 11)
    assert changed(before, snapshot(sample_con)) == {"customers"}
    assert store.table_count(sample_con, "customers") == 5011
    stored = dict(sample_con.execute("SELECT customer_id, name FROM customers WHERE customer_id LIKE 'H__'"
                                      ).fetchall())
    assert stored == {r["customer_id"]: r["name"] for r in rows}
    assert dict(sample_con.execute("SELECT customer_id, region FROM customers WHERE customer_id LIKE 'H__'"
                                   ).fetchall()) == stored
    backend = store.ibis_backend(sample_con)
    for row in rows:
        if len(row["name"]) <= customer360.MAX_QUERY_CHARS and row["name"] not in ("%", "_"):
            hits = customer360.search_customers(backend, row["name"])
            assert row["customer_id"] in set(hits.customer_id), row["name"]
    # a hostile region is a value like any other: the overview of that region counts its one customer
    assert metrics.overview(backend, as_of=AS_OF, regions=(HOSTILE["drop-table"],))["customers"].value == 1


@pytest.mark.parametrize("text", TEXTS, ids=IDS)
def test_notes_store_hostile_text_as_typed(sample_con, text):
    before = snapshot(sample_con)
    backend = store.ibis_backend(sample_con)
    if len(text) > customer360.MAX_NOTE_CHARS:
        with pytest.raises(ValueError, match="The note has 12,000 characters; keep it under 5,000"):
            customer360.add_note(sample_con, "C00001", text, text)
        assert snapshot(sample_con) == before
        return
    note_id = customer360.add_note(sample_con, "C00001", text, text)
    assert changed(before, snapshot(sample_con)) == {"customer_notes"}
    kept = customer360.notes(backend, "C00001")
    row = kept[kept.note_id == note_id].iloc[0]
    assert (row.author, row.note) == (text.strip(), text.strip())
    with pytest.raises(ValueError, match="in the customers table; the note was not saved"):
        customer360.add_note(sample_con, text, "me", "a note")
    assert len(customer360.notes(backend, text)) == 0
    with pytest.raises(ValueError, match="No customer .* in the customers table"):
        customer360.profile(backend, text)
    assert customer360.timeline(backend, text).empty


# --------------------------------------------------------------------------------------------- goals
def _goal(con, name, **kw):
    return goals.create_goal(con, name, "retention_rate", None, dt.date(2026, 1, 1), dt.date(2026, 12, 31), 0.5,
                             baseline=0.4, **kw)


@pytest.mark.parametrize("text", TEXTS, ids=IDS)
def test_goals_store_hostile_names_and_refuse_hostile_identifiers(sample_con, text):
    before = snapshot(sample_con)
    if len(text.strip()) > goals.MAX_NAME_LENGTH:
        with pytest.raises(ValueError, match="Goal name is 12000 characters long; keep it to 200"):
            _goal(sample_con, text)
    else:
        g = _goal(sample_con, text, author=text, monthly_targets={"2026-03": 0.45})
        back = goals.get_goal(sample_con, g.goal_id)
        assert (back.name, back.author, back.monthly_targets) == (text.strip(), text, (("2026-03", 0.45),))
        assert changed(before, snapshot(sample_con)) == {"goals"}
        renamed = goals.update_goal(sample_con, g.goal_id, name=text[::-1])
        assert goals.get_goal(sample_con, g.goal_id).name == renamed.name == text[::-1].strip()
    after = snapshot(sample_con)
    refusals = [
        (lambda: _goal(sample_con, "n", monthly_targets={text: 1}), "is not a month; write it as YYYY-MM"),
        (lambda: goals.create_goal(sample_con, "n", text, None, dt.date(2026, 1, 1), dt.date(2026, 12, 31), 0.5),
         "Unknown metric"),
        (lambda: goals.create_goal(sample_con, "n", "retention_rate", text, dt.date(2026, 1, 1),
                                   dt.date(2026, 12, 31), 0.5), "Unknown business unit"),
        (lambda: goals.update_goal(sample_con, text, name="x"), "No goal with id"),
    ]
    for call, message in refusals:
        with pytest.raises(ValueError, match=message):
            call()
    assert goals.get_goal(sample_con, text) is None
    assert goals.delete_goal(sample_con, text) is False
    assert snapshot(sample_con) == after


# --------------------------------------------------------------------------------------------- import options
CUSTOMERS_CSV = "customer_id,name,email,signup_date,region\nK1,Ann,ann@example.com,2026-01-02,North\n"


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    (tmp_path / "customers.csv").write_text(CUSTOMERS_CSV)
    wb = openpyxl.Workbook()
    wb.active.title = "Data"
    for line in CUSTOMERS_CSV.splitlines():
        wb.active.append(line.split(","))
    wb.save(tmp_path / "customers.xlsx")
    return {"csv": tmp_path / "customers.csv", "xlsx": tmp_path / "customers.xlsx"}


def _refusals(text: str) -> list[tuple[str, dict, str]]:
    """(option, import_file keywords, what the message must say) for each option that names something."""
    return [
        ("table", dict(table=text), "Unknown table"),
        ("mode", dict(mode=text), "unknown mode"),
        ("mapping source", dict(mapping={text: "name"}), "which is not in the file"),
        ("mapping target", dict(mapping={"name": text}), "is not a column of customers"),
        ("constant column", dict(constants={text: "x"}), "is not a column of customers, so it cannot be set"),
        ("template", dict(template=text), "no mapping template named"),
        ("date format", dict(date_format=text), "unknown date format"),
        ("encoding", dict(encoding=text), "unknown encoding"),
        ("sheet", dict(sheet=text, path="xlsx"), "no sheet named"),
    ]


@pytest.mark.parametrize("text", TEXTS, ids=IDS)
def test_import_options_refuse_unknown_names(sample_con, files, text):
    before = snapshot(sample_con)
    for option, kw, message in _refusals(text):
        path = files[kw.pop("path", "csv")]
        kw.setdefault("table", "customers")
        report = ingest.import_file(sample_con, path, mode=kw.pop("mode", "append"), **kw)
        assert report.outcome == "refused", (option, report.message)
        assert message in report.message, (option, report.message)
        assert_clean(report.message)
        if option not in ("encoding", "table", "mode"):  # those quote the value lower-cased or without the file name
            assert report.message.startswith(f"{path.name}: "), (option, report.message)
    assert snapshot(sample_con) == before


@pytest.mark.parametrize("text", TEXTS, ids=IDS)
def test_import_values_and_template_names_are_data(sample_con, files, text):
    before = snapshot(sample_con)
    report = ingest.import_file(sample_con, files["csv"], "customers", mode="append", constants={"region": text},
                                save_as_template=text, display_name=text)
    assert report.outcome == "committed", report.message
    assert sample_con.execute("SELECT region FROM customers WHERE customer_id = 'K1'").fetchone()[0] == text.strip()
    assert changed(before, snapshot(sample_con)) == {"customers", "mapping_templates"}
    templates = ingest.list_templates(sample_con)
    assert text in set(templates.template_name)
    again = ingest.import_file(sample_con, files["csv"], "customers", mode="upsert", template=text)
    assert again.outcome == "committed", again.message  # the saved template (with its constant) is found by name
    assert sample_con.execute("SELECT count(*), any_value(region) FROM customers WHERE customer_id = 'K1'"
                              ).fetchone() == (1, text.strip())


@pytest.mark.parametrize("pattern", ["%", "%Q", "%d/%m/%", "'; DROP TABLE customers; --%d"])
def test_a_bad_date_pattern_is_refused_and_does_not_stick(sample_con, tmp_path, pattern):
    """A strptime pattern DuckDB cannot read used to join the detected formats for good and break every later
    import with a day-first date column in the process."""
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,name,email,signup_date,region\nD1,Ann,a@example.com,25/01/2026,North\n"
                    "D2,Bob,b@example.com,13/02/2026,North\n")
    families = dict(ingest.DATE_FORMATS)
    report = ingest.import_file(sample_con, path, "customers", mode="append", date_format=pattern)
    assert_clean(report.message)
    if pattern.startswith("'"):  # a readable pattern that matches nothing: every row rejected, by name
        assert report.outcome in ("refused", "committed") and "signup_date" in report.message, report.message
    else:
        assert report.outcome == "refused"
        assert report.message.startswith(f"customers.csv: unknown date format {pattern!r}"), report.message
        assert ingest.DATE_FORMATS == families
    report = ingest.import_file(sample_con, path, "customers", mode="append")
    assert report.outcome == "committed", report.message
    assert sample_con.execute("SELECT signup_date FROM customers WHERE customer_id = 'D2'").fetchone()[0] == \
        dt.date(2026, 2, 13)


# --------------------------------------------------------------------------------------------- metrics options
@pytest.mark.parametrize("text", TEXTS, ids=IDS)
def test_metric_options_refuse_unknown_names(sample_backend, text):
    calls = [
        (lambda: metrics.overview(sample_backend, as_of=AS_OF, segments=(text,)), "Unknown segment"),
        (lambda: segments.migration_customers(sample_backend, dt.date(2026, 1, 1), AS_OF, text, None),
         "Unknown segment"),
        (lambda: support.ticket_kpis(sample_backend, by=text), "by must be one of"),
        (lambda: support.ticket_kpis(sample_backend, policy=support.SlaPolicy(default_priority=text)),
         "is not one of the priorities"),
        (lambda: support.ticket_kpis(sample_backend, policy=support.SlaPolicy(
            first_response_hours={text: 4.0}, resolution_hours={text: 8.0}, default_priority=text)), None),
        (lambda: voice.nps(sample_backend, by=text), "Unknown grouping"),
        (lambda: fulfilment.fulfilment_kpis(sample_backend, by=text), "Unknown grouping"),
        (lambda: campaigns.lift(sample_backend, text), "Unknown campaign"),
        (lambda: uplift.train_uplift_model(sample_backend, text), "No contacts of campaign"),
    ]
    for call, message in calls:
        if message is None:  # a policy naming only the hostile priority is valid: tickets fall back to it
            frame = call()
            assert len(frame) == 1
            continue
        with pytest.raises(ValueError, match=message) as info:
            call()
        assert_clean(str(info.value))
    # names that are data, not identifiers: unknown ones select nothing (an empty scope), they are not refused
    assert metrics.overview(sample_backend, as_of=AS_OF, regions=(text,))["customers"].value == 0
    assert segments.rfm(sample_backend, AS_OF, 5, (text,)).empty
    base = support.ticket_kpis(sample_backend)
    prices = {**value.CostRates().ticket_cost_by_channel, text: 99.0}
    priced = support.ticket_kpis(sample_backend, rates=value.CostRates(ticket_cost_by_channel=prices))
    pd.testing.assert_frame_equal(priced, base)  # an unknown channel's price touches no ticket


# --------------------------------------------------------------------------------------------- CLI
READS = [
    ["customer", "search", "{h}"], ["customer", "show", "{h}"], ["customer", "timeline", "{h}"],
    ["customer", "note", "{h}", "--author", "me", "--text", "t"],
    ["metrics", "overview", "--region", "{h}"], ["metrics", "overview", "--segment", "{h}"],
    ["metrics", "migration", "--from-segment", "{h}"], ["metrics", "support", "--by", "{h}"],
    ["metrics", "support", "--view", "{h}"], ["metrics", "support", "--first-response-hours", "{h}=4"],
    ["metrics", "support", "--business-hours", "{h}"], ["metrics", "support", "--ticket-cost", "{h}=1"],
    ["metrics", "nps", "--by", "{h}"], ["metrics", "fulfilment", "--by", "{h}"],
    ["metrics", "lift", "--campaign", "{h}"], ["metrics", "uplift", "--campaign", "{h}"],
    ["metrics", "clusters", "--features", "{h}"], ["metrics", "value", "--contact-cost", "{h}=1"],
    ["metrics", "basket", "--view", "next-best", "--customer", "{h}"],
    ["goals", "progress", "{h}"], ["goals", "delete", "{h}"], ["goals", "update", "{h}", "--name", "x"],
    ["goals", "add", "n", "--metric", "{h}", "--start", "2026-01-01", "--deadline", "2026-12-31", "--target", "0.5"],
    ["goals", "add", "n", "--metric", "retention_rate", "--unit", "{h}", "--start", "2026-01-01", "--deadline",
     "2026-12-31", "--target", "0.5"],
    ["goals", "add", "n", "--metric", "retention_rate", "--start", "2026-01-01", "--deadline", "2026-12-31",
     "--target", "0.5", "--baseline", "0.4", "--monthly", "{h}=1"],
    ["goals", "add", "n", "--metric", "retention_rate", "--start", "2026-01-01", "--deadline", "2026-12-31",
     "--target", "0.5", "--baseline", "0.4", "--monthly", "2026-03={h}"],
    ["import", "{csv}", "--table", "{h}"], ["import", "{csv}", "--table", "customers", "--map", "{h}=name"],
    ["import", "{csv}", "--table", "customers", "--map", "name={h}"],
    ["import", "{csv}", "--table", "customers", "--set", "{h}=x"],
    ["import", "{csv}", "--table", "customers", "--template", "{h}"],
    ["import", "{csv}", "--table", "customers", "--date-format", "{h}"],
    ["import", "{csv}", "--table", "customers", "--encoding", "{h}"],
    ["invest", "--segment", "{h}"],
]
CLI_TEXTS = {k: HOSTILE[k] for k in ("drop-table", "or-1-1", "percent", "format-braces", "unicode", "long")}


@pytest.mark.parametrize("text", CLI_TEXTS.values(), ids=CLI_TEXTS.keys())
def test_cli_refuses_or_answers_without_sql_errors(sample_con, files, capsys, text):
    db = sample_con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
                            ).fetchone()[0]
    before = snapshot(sample_con)
    sample_con.close()
    for argv in READS:
        args = [a.replace("{h}", text).replace("{csv}", str(files["csv"])) for a in argv]
        code = cli.main(["--db", db, *args])
        out, err = capsys.readouterr()
        assert code in (0, 1, 2), (argv, code)
        assert_clean(out + err)
        if code:  # a refusal says what was wrong: "error: ..." on stderr, or the import's refusal on stdout
            assert err.startswith("error: ") or out.startswith("customers.csv → "), (argv, out, err)
        assert not (argv[0] == "customer" and argv[1] == "search") or code == (2 if text == HOSTILE["long"] else 0)
    con = store.connect(db)
    try:
        assert snapshot(con) == before  # nothing in the list writes: every write was refused
    finally:
        con.close()


@pytest.mark.parametrize("text", CLI_TEXTS.values(), ids=CLI_TEXTS.keys())
def test_cli_writes_hostile_data_as_typed(sample_con, files, capsys, text):
    db = sample_con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
                            ).fetchone()[0]
    sample_con.close()
    short = text[:200]
    assert cli.main(["--db", db, "customer", "note", "C00001", "--author", short, "--text", short]) == 0
    assert cli.main(["--db", db, "goals", "add", short, "--metric", "retention_rate", "--start", "2026-01-01",
                     "--deadline", "2026-12-31", "--target", "55%", "--baseline", "0.4", "--author", text]) == 0
    assert cli.main(["--db", db, "import", str(files["csv"]), "--table", "customers", "--mode", "append",
                     "--set", f"region={text}", "--save-template", text]) == 0
    out, err = capsys.readouterr()
    assert_clean(out + err)
    con = store.connect(db, read_only=True)
    try:
        last_note = con.execute("SELECT author, note FROM customer_notes WHERE customer_id = 'C00001' "
                                "ORDER BY created_at DESC, note_id DESC LIMIT 1").fetchone()
        assert last_note == (short.strip(), short.strip())
        assert con.execute("SELECT goal_name, author, target FROM goals").fetchall() == [(short.strip(), text, 0.55)]
        assert con.execute("SELECT region FROM customers WHERE customer_id = 'K1'").fetchone()[0] == text.strip()
        assert con.execute("SELECT count(*) FROM mapping_templates WHERE template_name = ?", [text]).fetchone()[0] == 1
    finally:
        con.close()
