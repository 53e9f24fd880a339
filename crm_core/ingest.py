"""Import a CSV, .csv.gz, Parquet or .xlsx export into a canonical table — completely or not at all.

Pipeline (one file → one canonical table or source shape, see :mod:`crm_core.schema`):

1. **inspect** (:mod:`crm_core.sources`): hash, format by content, encoding (UTF-8, else Windows-1252 transcoded),
   empty / binary / renamed files refused;
2. **dialect**: DuckDB's sniffer finds delimiter, quote and preamble; the header is parsed and de-duplicated;
3. **mapping**: headers matched to canonical columns by name and synonyms, then a saved template, then overrides;
   **constants** set a column to one value for every row (an export without a ``campaign_id`` column: the
   campaign it belongs to); missing required columns refuse the file with a list of what to map;
4. **number format** (decimal comma, thousands separator) and **date format** per column are detected; a date
   column whose values read both as day/month and month/day is refused unless a format is given. Times may be
   24-hour or 12-hour (``3/2/2026 9:15 PM``). An ISO time with ``Z`` or a UTC offset (``2026-03-02T10:15:00+01:00``,
   ``2026-03-02 10:15:00 +0100``) is converted to UTC and stored without a zone (``09:15``), whatever the
   session's time zone; a time without an offset is stored as written. An optional number column matched by its
   header alone whose values hold no digit (a good/bad satisfaction rating matched to ``csat``) is left unmapped
   with a warning rather than rejecting every row;
5. **typed load**: the rows are read once, by DuckDB's CSV reader with reject tables (or from Parquet), into a
   staging table with every canonical column converted on the way: a row the reader cannot read (a number that is
   not one, missing fields) is rejected with its line, column and reason, and so is a value that does not convert
   (its text is kept for the report); then schema rules (required values, ranges, resolved-before-created),
   counted in one pass over the staged rows, reject more rows, each with its line (a row rule names the columns it
   compares, e.g. ``'Solved at, Created at'``, and their values). A text date column's format is chosen from the
   first rows before the load and confirmed on every value after it; when the values do not all confirm it, the
   format is chosen on all values as in step 4 and, if that gives another format, the rows are read again;
6. **duplicates**: exact duplicate rows are dropped and counted; rows repeating a key keep the last occurrence;
7. **commit** in one transaction with the import-log row: ``replace``, ``append`` (new keys only) or ``upsert``
   (update mapped columns of existing keys, insert new). Re-importing the same file changes nothing. Replacing a
   canonical table stages its rows in a table of the database created inside the import's transaction, which
   takes the old table's place at commit (drop and rename; no row is copied again): the transaction is open from
   the load on, and a refused or interrupted import leaves nothing behind. Append, upsert and the source shapes
   stage in a temp table and copy the rows at commit.

Line numbers follow DuckDB's CSV reader: the header is line 1 and a quoted field spanning several physical lines
counts as one line.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import json
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from crm_core import shapes
from crm_core.schema import TABLES, Column, Table, get_table, normalize_header
from crm_core.sources import (
    FileFacts,
    ImportRefused,
    dedupe_headers,
    has_data_rows,
    inspect_file,
    parse_header,
    xlsx_to_csv,
)
from crm_core.store import quote_ident as q

__all__ = [
    "ImportRefused",
    "ImportReport",
    "Preview",
    "RejectedRow",
    "preview",
    "MODES",
    "import_file",
    "propose_mapping",
    "save_template",
    "list_templates",
    "import_history",
    "DATE_FORMATS",
    "max_import_bytes",
    "sweep_stale_temp_files",
    "BUSY_MESSAGE",
]

MODES = ("replace", "append", "upsert")
NULL_STRINGS = ["", "NULL", "null", "N/A", "n/a", "#N/A", "\u2014", "\u2013"]
SAMPLE_ROWS = 20_000
MAX_REJECTS_KEPT = 10_000
_LOCKS: dict[str, threading.Lock] = {}
DEFAULT_MAX_UPLOAD_MB = 200  # the web app's upload limit (ui/frame.py UPLOAD_LIMIT_MB)
TEMP_PREFIX = "crm_import_"  # converted copies (Windows-1252 → UTF-8, .xlsx → CSV) in the temp dir
STALE_TEMP_SECONDS = 3600
BUSY_MESSAGE = "another import is in progress on this database; try again when it has finished (nothing was read)"
_LOCKS_GUARD = threading.Lock()

# Date format families: a label people recognise → the strptime patterns tried (with and without a time).
_TIMES = (" %H:%M:%S", " %H:%M", " %I:%M:%S %p", " %I:%M %p", "T%H:%M:%S", "")
DATE_FORMATS: dict[str, tuple[str, ...]] = {
    "YYYY-MM-DD": ("ISO",),
    "DD/MM/YYYY": tuple("%d/%m/%Y" + t for t in _TIMES),
    "MM/DD/YYYY": tuple("%m/%d/%Y" + t for t in _TIMES),
    "DD/MM/YY": tuple("%d/%m/%y" + t for t in _TIMES),
    "MM/DD/YY": tuple("%m/%d/%y" + t for t in _TIMES),
    "DD.MM.YYYY": tuple("%d.%m.%Y" + t for t in _TIMES),
    "DD-MM-YYYY": tuple("%d-%m-%Y" + t for t in _TIMES),
    "MM-DD-YYYY": tuple("%m-%d-%Y" + t for t in _TIMES),
    "YYYY/MM/DD": tuple("%Y/%m/%d" + t for t in _TIMES),
    "YYYYMMDD": ("%Y%m%d",),
    "DD Mon YYYY": tuple("%d %b %Y" + t for t in _TIMES),
    "Mon DD, YYYY": ("%b %d, %Y",),
    "DD-Mon-YYYY": tuple("%d-%b-%Y" + t for t in _TIMES),
    "DD/Mon/YY": tuple("%d/%b/%y" + t for t in _TIMES),  # Jira's default: 02/Mar/26 9:15 AM
    "DD/Mon/YYYY": tuple("%d/%b/%Y" + t for t in _TIMES),
}
# The families format detection tries: the built-in ones only, never a pattern a user once typed (those are added
# to DATE_FORMATS by _family_of for the import that names them).
_DETECTED_FAMILIES = tuple(DATE_FORMATS)
_DAY_MONTH_TWINS = {"DD/MM/YYYY": "MM/DD/YYYY", "DD/MM/YY": "MM/DD/YY", "DD-MM-YYYY": "MM-DD-YYYY"}
_DAY_MONTH_TWINS.update({v: k for k, v in _DAY_MONTH_TWINS.items()})

# The date part at the start of a value: 12/1/2010, 2010-12-01, 20101201, 1 Dec 2010, 01-Dec-2010, 02/Mar/26,
# Dec 1, 2010.
_DATE_PART = (r"^(\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4}|\d{8}|\d{1,2}[ \-][A-Za-z]{3,9}[ \-]\d{4}"
              r"|\d{1,2}/[A-Za-z]{3,9}/\d{2,4}"
              r"|[A-Za-z]{3,9} \d{1,2}, \d{4})")
# An ISO time followed by Z or a UTC offset (+01:00, -0500, +01), optionally after one space.
_TIME_WITH_OFFSET = r"\d:\d{2}(:\d{2}(\.\d+)?)? ?(Z|[+-]\d{2}(:?\d{2})?)$"
_SPACE_BEFORE_OFFSET = r" (Z|[+-][0-9:]+)$"
_REFUSING_ERRORS = {"UNQUOTED VALUE", "INVALID ENCODING", "INVALID UNICODE", "LINE SIZE OVER MAXIMUM"}
_NATIVE_DATES = {"DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS"}
_ROW_ERRORS = {"CAST": "not a valid {type}", "MISSING COLUMNS": "missing fields", "TOO MANY COLUMNS": "extra fields"}


@dataclass(frozen=True)
class RejectedRow:
    """One rejected row: where it is in the file and why it was not imported."""

    line: int | None
    column: str | None
    reason: str
    value: str | None = None


@dataclass(frozen=True)
class ImportReport:
    """The validation report of one import; ``outcome`` is committed, unchanged, refused, validated (a dry run) or busy
    (another import was running: nothing was read)."""

    file_name: str
    table: str
    mode: str
    outcome: str
    message: str
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    rejected: tuple[RejectedRow, ...] = ()
    exact_duplicates: int = 0
    duplicate_keys: int = 0
    duplicate_key_examples: tuple[str, ...] = ()
    mapping: dict[str, str] = field(default_factory=dict)
    unmapped_columns: tuple[str, ...] = ()
    detected: dict[str, str] = field(default_factory=dict)
    facts: dict[str, float | int | str] = field(default_factory=dict)
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    import_id: str = ""
    file_sha256: str = ""
    constants: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome in ("committed", "unchanged")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rejected"] = [asdict(r) for r in self.rejected]
        return d

    def rejected_frame(self) -> pd.DataFrame:
        """One row per rejected row (line, column, reason, value), for download."""
        return pd.DataFrame([asdict(r) for r in self.rejected], columns=["line", "column", "reason", "value"])

    def summary(self) -> str:
        lines = [f"{self.file_name} → {self.table} ({self.mode}): {self.outcome.upper()}. {self.message}"]
        if self.rows_read:
            lines.append(f"  read {self.rows_read:,}  accepted {self.rows_accepted:,}  rejected {self.rows_rejected:,}")
        for reason, n in self.rejected_by_reason.items():
            lines.append(f"    rejected: {reason}: {n:,}")
        for r in self.rejected[:10]:
            lines.append(f"    line {r.line}, column {r.column!r}: {r.reason}" + (f" ({r.value!r})" if r.value else ""))
        if self.exact_duplicates:
            lines.append(f"  exact duplicate rows dropped: {self.exact_duplicates:,}")
        if self.duplicate_keys:
            lines.append(f"  rows repeating a key (last kept): {self.duplicate_keys:,} e.g. "
                         + ", ".join(self.duplicate_key_examples[:5]))
        if self.mapping:
            lines.append("  mapping: " + ", ".join(f"{src!r}→{dst}" for dst, src in self.mapping.items()))
        if self.constants:
            lines.append("  same value on every row: " + ", ".join(f"{c}={v!r}" for c, v in self.constants.items()))
        if self.unmapped_columns:
            lines.append("  unmapped columns (not imported): " + ", ".join(map(repr, self.unmapped_columns)))
        for k, v in self.facts.items():
            lines.append(f"  {k}: {v:,}" if isinstance(v, int | float) else f"  {k}: {v}")
        for t, c in self.changes.items():
            lines.append(f"  {t}: " + ", ".join(f"{k} {v:,}" for k, v in c.items()))
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------- mapping
def propose_mapping(headers: list[str], table: Table) -> dict[str, str]:
    """Canonical column → source header, matched on normalised names first, then synonyms.

    >>> from crm_core.schema import get_table
    >>> propose_mapping(["InvoiceNo", "Customer ID", "Notes"], get_table("orders"))
    {'order_id': 'InvoiceNo', 'customer_id': 'Customer ID'}
    """
    norm = {h: normalize_header(h) for h in headers}
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for pass_ in ("name", "synonym"):
        for col in table.columns:
            if col.name in mapping:
                continue
            names = {col.name} if pass_ == "name" else {normalize_header(s) for s in col.synonyms}
            for h in headers:
                if h not in used and norm[h] in names:
                    mapping[col.name] = h
                    used.add(h)
                    break
    return {c.name: mapping[c.name] for c in table.columns if c.name in mapping}


def _apply_overrides(mapping: dict[str, str], overrides: Mapping[str, str], headers: list[str], table: Table,
                     file_name: str) -> dict[str, str]:
    """Overrides are source header → canonical column ('' unmaps the header)."""
    out = dict(mapping)
    by_lower = {h.lower(): h for h in headers}
    for src, dst in overrides.items():
        header = src if src in headers else by_lower.get(src.strip().lower())
        if header is None:
            raise ImportRefused(f"{file_name}: --map names column {src!r}, which is not in the file; "
                                f"its columns are: {', '.join(map(repr, headers))}")
        for k in [k for k, v in out.items() if v == header]:
            del out[k]
        if dst:
            if dst not in table.column_names:
                raise ImportRefused(f"{file_name}: --map target {dst!r} is not a column of {table.name}; "
                                    f"choose from: {', '.join(table.column_names)}")
            out[dst] = header
    return {c: out[c] for c in table.column_names if c in out}


# A template's constants live in its mapping_json under this key, which no canonical column can have; code that
# predates constants ignores it (it is not a column of the table).
_CONSTANTS_KEY = "__constants__"


def save_template(con: duckdb.DuckDBPyConnection, name: str, table: str, mapping: Mapping[str, str],
                  source_columns: list[str] | None = None, constants: Mapping[str, str] | None = None) -> None:
    """Save a mapping (canonical column → source header) and constants (canonical column → the value set on every
    row) under ``name`` for reuse."""
    get_table(table)
    stored: dict = dict(mapping)
    if constants:
        stored[_CONSTANTS_KEY] = {str(k): str(v) for k, v in constants.items()}
    con.execute(
        "INSERT OR REPLACE INTO mapping_templates VALUES (?, ?, ?, ?, ?)",
        [name, table, json.dumps(stored), json.dumps(source_columns or []), dt.datetime.now()],
    )


def _split_template(mapping_json: str) -> tuple[dict[str, str], dict[str, str]]:
    """(mapping, constants) of a stored template."""
    stored = json.loads(mapping_json)
    constants = stored.pop(_CONSTANTS_KEY, None) or {}
    return stored, constants


def list_templates(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per saved mapping template: template_name, table_name, mapping_json (canonical column → header),
    constants_json (canonical column → value set on every row; ``{}`` when none), source_columns_json,
    created_at."""
    df = con.execute(
        "SELECT template_name, table_name, mapping_json, source_columns_json, created_at FROM mapping_templates "
        "ORDER BY template_name"
    ).df()
    parts = [_split_template(m) for m in df["mapping_json"]]
    df["mapping_json"] = [json.dumps(m) for m, _ in parts]
    df.insert(3, "constants_json", [json.dumps(c) for _, c in parts])
    return df


def _load_template(con, name: str, table: str, file_name: str) -> tuple[dict[str, str], dict[str, str]]:
    row = con.execute("SELECT table_name, mapping_json FROM mapping_templates WHERE template_name = ?",
                      [name]).fetchone()
    if row is None:
        raise ImportRefused(f"{file_name}: no mapping template named {name!r}")
    if row[0] != table:
        raise ImportRefused(f"{file_name}: template {name!r} maps to {row[0]}, not {table}")
    return _split_template(row[1])


def _matching_template(con, table: str, headers: list[str]) -> tuple[str, dict[str, str], dict[str, str]] | None:
    rows = con.execute("SELECT template_name, mapping_json, source_columns_json FROM mapping_templates "
                       "WHERE table_name = ? ORDER BY created_at DESC", [table]).fetchall()
    for name, mapping_json, cols_json in rows:
        if sorted(json.loads(cols_json or "[]")) == sorted(headers):
            return name, *_split_template(mapping_json)
    return None


def _given_constants(constants: Mapping[str, object] | None) -> dict[str, str]:
    """Constants as text, keys and values trimmed (None becomes '', which the mapping step refuses)."""
    return {str(k).strip(): "" if v is None else str(v).strip() for k, v in (constants or {}).items()}


def import_history(con: duckdb.DuckDBPyConnection, limit: int = 100) -> pd.DataFrame:
    """One row per import attempt, newest first."""
    return con.execute(
        "SELECT started_at, file_name, table_name, mode, outcome, rows_read, rows_accepted, rows_rejected, message, "
        "file_sha256 FROM import_log ORDER BY started_at DESC LIMIT ?", [limit]
    ).df()


@dataclass(frozen=True)
class Preview:
    """What the import would do with a file before it loads anything: headers, proposed mapping, layout."""

    file_name: str
    table: str
    headers: tuple[str, ...]
    mapping: dict[str, str]
    missing_required: tuple[str, ...]
    template: str | None
    detected: dict[str, str]
    sample: pd.DataFrame
    warnings: tuple[str, ...] = ()
    constants: dict[str, str] = field(default_factory=dict)


def preview(con: duckdb.DuckDBPyConnection, path: str | Path, table: str, *, encoding: str | None = None,
            sheet: str | None = None, display_name: str | None = None, max_bytes: int | None = None,
            sample_rows: int = 10, template: str | None = None,
            constants: Mapping[str, str] | None = None) -> Preview:
    """Headers, proposed mapping (``template``'s, else a saved template made for the same headers, else matched
    by names and synonyms), the constants that would apply (``constants`` over the template's) and the first rows
    as text. A required column set by a constant is not missing. Raises ImportRefused."""
    path = Path(path)
    target = get_table(table)
    sweep_stale_temp_files()
    _check_size(path, display_name or path.name, max_bytes)
    facts = inspect_file(path, encoding=encoding, max_bytes=max_bytes)
    tmp: list[Path] = [facts.readable_path] if facts.is_temp_copy else []
    job = _Job(con, facts, target, display_name or path.name, uuid.uuid4().hex[:12], lambda f, m: None)
    try:
        if facts.format == "parquet":
            headers = [d[0] for d in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()]
            sample = con.execute(f"SELECT * FROM read_parquet(?) LIMIT {int(sample_rows)}", [str(path)]).df()
        else:
            src = facts.readable_path
            if facts.format == "xlsx":
                src, sheet_name = xlsx_to_csv(path, sheet)
                tmp.append(src)
                job.detected["sheet"] = sheet_name
            delim, quote, escape, skip, headers = job._dialect(src)
            cols = {f"c{i}": "VARCHAR" for i in range(len(headers))}
            sample = con.execute(
                "SELECT * FROM read_csv($path, columns = $columns, delim = $delim, quote = $quote, escape = $escape, "
                f"skip = $skip, header = true, auto_detect = false, ignore_errors = true) LIMIT {int(sample_rows)}",
                {"path": str(src), "columns": cols, "delim": delim, "quote": quote, "escape": escape, "skip": skip},
            ).df()
            sample.columns = headers
        job._map(headers, {}, template, _given_constants(constants), strict=False)
        if facts.format != "parquet":
            job._unmap_digitless_numbers(src, (delim, quote, escape, skip), {})
        return Preview(job.name, target.name, tuple(headers), job.mapping, tuple(job.missing),
                       job.detected.get("template"), job.detected, sample, tuple(job.warnings), job.constants)
    finally:
        for p in tmp:
            Path(p).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------- limits
def max_import_bytes() -> int:
    """The largest file an import reads: ``$CRM_MAX_UPLOAD_MB`` megabytes (MiB), default 200 like the web upload.

    >>> max_import_bytes() == int(os.environ.get("CRM_MAX_UPLOAD_MB", 200)) * 1024 * 1024
    True
    """
    raw = os.environ.get("CRM_MAX_UPLOAD_MB", "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_MAX_UPLOAD_MB
    except ValueError:
        mb = DEFAULT_MAX_UPLOAD_MB
    return int(mb * 1024 * 1024) if mb > 0 else int(DEFAULT_MAX_UPLOAD_MB * 1024 * 1024)


def _check_size(path: Path, name: str, max_bytes: int | None) -> None:
    """Refuse a file over the limit from its size alone, before a byte of it is read."""
    limit = max_import_bytes() if max_bytes is None else max_bytes
    try:
        size = path.stat().st_size
    except OSError:
        return  # inspect_file reports a missing file
    if size > limit:
        mib = 1024 * 1024
        raise ImportRefused(
            f"{name}: the file is {size / mib:,.1f} MB, over the upload limit of {limit / mib:,.1f} MB; nothing was "
            "read or imported. Split the file, or raise the limit (CRM_MAX_UPLOAD_MB)")


def sweep_stale_temp_files(max_age_seconds: float = STALE_TEMP_SECONDS, prefix: str = TEMP_PREFIX) -> list[Path]:
    """Delete converted temp copies (``crm_import_*`` in the temp dir) older than ``max_age_seconds``, which a killed
    process leaves behind with personal data in them; returns the files removed. An import removes its own copies
    when it ends, success or failure. The Data page sweeps its abandoned uploads (``crm_upload_*``) the same way."""
    removed = []
    cutoff = time.time() - max_age_seconds
    for p in Path(tempfile.gettempdir()).glob(prefix + "*"):
        try:
            if p.is_file() and p.stat().st_mtime < cutoff:
                p.unlink()
                removed.append(p)
        except OSError:
            pass  # another process removed it, or it is not ours to remove
    return removed


# --------------------------------------------------------------------------------------------- import
def _lock_for(con) -> threading.Lock:
    """One import at a time per database file, whichever cursor asks."""
    key = _db_key(con)
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def _db_key(con) -> str:
    try:
        return str(con.execute("SELECT file FROM pragma_database_list WHERE name = current_database()").fetchone()[0])
    except duckdb.Error:
        return str(id(con))


def import_file(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    table: str,
    *,
    mode: str = "replace",
    mapping: Mapping[str, str] | None = None,
    constants: Mapping[str, str] | None = None,
    template: str | None = None,
    save_as_template: str | None = None,
    date_format: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    display_name: str | None = None,
    max_bytes: int | None = None,
    progress: Callable[[float, str], None] | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Import ``path`` into canonical ``table`` (or a source shape: invoice_lines, transactions).

    ``mapping`` overrides the proposed mapping: source header → canonical column ('' to skip a header).
    ``constants`` sets canonical columns to one value for every row (``{"campaign_id": "HILL1"}`` for a campaign
    export without a campaign column). A value is trimmed, then converted and checked like a cell of its column (a
    value that is not of the column's type refuses the file); dates are ISO, else in ``date_format``. A constant
    replaces the file's column of that name (the header is left unmapped, with a warning); mapping a header to a
    column by hand *and* setting it is refused. A template's constants apply unless the import sets or maps that
    column itself; ``save_as_template`` saves the constants used with the mapping.
    Never raises for a bad file: a refused import returns a report with ``outcome == "refused"`` and is logged.
    ``dry_run`` validates and computes the changes, then rolls back (outcome ``validated``, not logged).
    Imports into one database run one at a time: while another runs, the call returns at once with outcome ``busy``
    (:data:`BUSY_MESSAGE`; logged unless ``dry_run``) and nothing read, so the caller can offer to try again.
    A file larger than ``max_bytes`` (default :func:`max_import_bytes`) is refused from its size, before it is read.
    Converted temp copies are removed when the import ends; stale ones a killed process left are swept first.
    """
    path = Path(path)
    name = display_name or path.name
    started = dt.datetime.now()
    import_id = uuid.uuid4().hex
    if mode not in MODES:
        return _refused(con, import_id, name, table, mode, started, f"unknown mode {mode!r}; use one of {MODES}")
    try:
        target = get_table(table)
    except ValueError as exc:
        return _refused(con, import_id, name, table, mode, started, str(exc))
    lock = _lock_for(con)
    if not lock.acquire(blocking=False):  # the file is fine: the same call succeeds once the other import ends
        busy = ImportReport(name, target.name, mode, "busy", BUSY_MESSAGE, import_id=import_id)
        return busy if dry_run else _log(con, busy, started)
    facts: FileFacts | None = None
    tmp_paths: list[Path] = []
    tag = import_id[:12]
    try:
        progress = progress or (lambda f, m: None)
        progress(0.0, "reading file")
        sweep_stale_temp_files()
        _check_size(path, name, max_bytes)
        facts = inspect_file(path, encoding=encoding, max_bytes=max_bytes, progress=progress)
        if facts.is_temp_copy:
            tmp_paths.append(facts.readable_path)
        given = _given_constants(constants)
        if not dry_run and _already_imported(con, facts.sha256, target.name, mode, given):
            return _log(con, ImportReport(name, target.name, mode, "unchanged",
                                          "this file was imported before with the same content; nothing changed",
                                          import_id=import_id, file_sha256=facts.sha256), started)
        job = _Job(con, facts, target, name, tag, progress)
        try:
            job.stage(mapping or {}, template, date_format, sheet, tmp_paths, given, replace=mode == "replace")
            if save_as_template:
                # saved whatever becomes of the import (as before the rows were read inside its transaction): on a
                # cursor of its own when that transaction is open
                saver = con.cursor() if job.in_transaction else con
                try:
                    save_template(saver, save_as_template, target.name, job.mapping, job.headers, job.constants)
                finally:
                    if saver is not con:
                        saver.close()
            try:
                report = job.commit(mode, import_id)
                if dry_run:
                    con.execute("ROLLBACK")
                    job.in_transaction = False
                    return dataclasses.replace(report, outcome="validated",
                                               message=report.message.replace("imported", "can be imported"))
                logged = _log(con, report, started, in_transaction=True)
                job.in_transaction = False
                return logged
            except BaseException:
                # Whatever stops the import between BEGIN and COMMIT — the log row failing to write (disk full), a
                # progress callback raising because the browser went away — must not leave the transaction open
                # on this connection, where a later statement would commit the half of it.
                _rollback_if_open(con)
                raise
        finally:
            job.cleanup()
    except ImportRefused as exc:
        if dry_run:
            return ImportReport(name, target.name, mode, "refused", str(exc), import_id=import_id,
                                file_sha256=facts.sha256 if facts else "")
        return _refused(con, import_id, name, target.name, mode, started, str(exc),
                        sha=facts.sha256 if facts else "")
    except duckdb.Error as exc:
        return _refused(con, import_id, name, target.name, mode, started,
                        f"{name}: the database could not read the file: {_short(exc)}",
                        sha=facts.sha256 if facts else "")
    finally:
        for p in tmp_paths:
            Path(p).unlink(missing_ok=True)
        lock.release()


def _first_line_longer_than(path: Path, limit: int) -> int | None:
    """The number of the first physical line of ``path`` (plain or gzip) longer than ``limit`` bytes; streams."""
    import gzip

    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    line, length = 1, 0
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
        while chunk := fh.read(1024 * 1024):
            start = 0
            while (nl := chunk.find(b"\n", start)) >= 0:
                if length + nl - start > limit:
                    return line
                line, length, start = line + 1, 0, nl + 1
            length += len(chunk) - start
            if length > limit:
                return line
    return None


def _rollback_if_open(con) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # no transaction was open


def _short(exc: Exception) -> str:
    if isinstance(exc, duckdb.PermissionException):  # a hardened connection (store.harden) read outside its folders
        return "this app may only read uploaded files and the sample data, not files in that folder; upload the file"
    text = str(exc).strip().splitlines()
    return " ".join(text[:2])[:400]


_TOUCHES = {"invoice_lines": {"orders", "order_items", "products", "customers"},
            "transactions": {"orders", "customers"}}


def _touched(table: str) -> set[str]:
    return _TOUCHES.get(table, {table})


def _already_imported(con, sha: str, table: str, mode: str, constants: Mapping[str, str]) -> bool:
    """Re-importing the same file with the same constants changes nothing: detect it from the import log.

    replace/upsert: the latest committed import that wrote any of the same tables was this file, into this table,
    in this mode. append: this file was appended to this table since the table was last replaced by another file.
    ``constants`` are the ones given now, compared with those the logged import used (a template's included), so
    a doubt means importing again, never skipping an import.
    """
    def same_constants(report_json: str | None) -> bool:
        try:
            return (json.loads(report_json or "{}").get("constants") or {}) == dict(constants)
        except (ValueError, AttributeError):
            return not constants

    if mode == "append":
        found = con.execute(
            "SELECT report_json FROM import_log WHERE file_sha256 = ? AND table_name = ? AND outcome = 'committed' "
            "AND finished_at >= coalesce((SELECT max(finished_at) FROM import_log WHERE table_name = ? "
            "AND outcome = 'committed' AND mode = 'replace' AND file_sha256 <> ?), TIMESTAMP '1900-01-01')",
            [sha, table, table, sha]).fetchall()
        return any(same_constants(r[0]) for r in found)
    overlapping = [t for t in {*TABLES, *_TOUCHES} if _touched(t) & _touched(table)]
    marks = ", ".join("?" for _ in overlapping)
    row = con.execute(f"SELECT file_sha256, table_name, mode, report_json FROM import_log WHERE outcome = 'committed' "
                      f"AND table_name IN ({marks}) ORDER BY finished_at DESC LIMIT 1", overlapping).fetchone()
    return bool(row and row[0] == sha and row[1] == table and row[2] == mode and same_constants(row[3]))


def _refused(con, import_id, name, table, mode, started, message, *, sha="") -> ImportReport:
    """A refusal: nothing changed; the attempt is logged."""
    report = ImportReport(name, table, mode, "refused", message, import_id=import_id, file_sha256=sha)
    return _log(con, report, started)


def _log(con, report: ImportReport, started: dt.datetime, in_transaction: bool = False) -> ImportReport:
    """Write the import-log row (inside the commit's transaction when ``in_transaction``)."""
    con.execute(
        "INSERT INTO import_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [report.import_id or uuid.uuid4().hex, report.file_name, report.file_sha256, report.table, report.mode,
         started, dt.datetime.now(), report.rows_read, report.rows_accepted, report.rows_rejected, report.outcome,
         report.message, json.dumps(report.to_dict(), default=str)],
    )
    if in_transaction:
        con.execute("COMMIT")
    return report


class _Job:
    """One import's staging state: temp tables named with a random tag, dropped in ``cleanup``.

    The file's rows are read once, by one ``CREATE TABLE ... AS SELECT`` from the CSV reader (or Parquet) that
    converts every canonical column on the way into ``typed`` (a temp table, or, when a canonical table is
    replaced, a table of the database created inside the import's transaction: see :meth:`commit`). A value that
    does not convert keeps its text in a ``_raw_<column>`` column (NULL for every value that converted); a row's
    position among the rows read is its ``rowid`` from ``rowid_base`` (the table is written in file order and only
    ever loses rows). The date format of each text date column is chosen from the first rows before the load and
    confirmed on every value after it (see :meth:`_settle_dates`); the rules are then counted in one aggregate over
    ``typed``, and only a rule that some row breaks is read row by row.
    """

    def __init__(self, con, facts: FileFacts, target: Table, name: str, tag: str, progress):
        self.con, self.facts, self.target, self.name, self.tag, self.progress = con, facts, target, name, tag, progress
        self.raw = f"crm_stage_raw_{tag}"  # the text of date columns whose format is analysed on every value
        self.typed = f"crm_stage_typed_{tag}"
        self.sample = f"crm_stage_sample_{tag}"  # the first rows' date texts, to choose date formats before the load
        self.consts = f"crm_stage_consts_{tag}"  # one row: the constants as text (k0, k1 ...)
        self.dup_keys_table = f"crm_stage_dupkeys_{tag}"
        self.rej_table = f"crm_rejects_{tag}"
        self.rej_scan = f"crm_reject_scans_{tag}"
        self.rejects: list[RejectedRow] = []
        self.rejected_lines: set[int] = set()
        self.reject_counts: dict[str, int] = {}
        self.warnings: list[str] = []
        self.detected: dict[str, str] = {}
        self.headers: list[str] = []
        self.stage_cols: dict[str, str] = {}  # canonical column → staging column
        self.stage_types: dict[str, str] = {}  # staging column → its type as read (VARCHAR unless typed by the reader)
        self.mapping: dict[str, str] = {}
        self.constants: dict[str, str] = {}  # canonical column → value set on every row
        self.unmapped: list[str] = []
        self.missing: list[str] = []
        self.rows_read = 0
        self.exact_dupes = 0
        self.dup_keys = 0
        self.dup_examples: list[str] = []
        self.first_line = 2
        self.is_csv = True
        # The rows as the file gives them, with staging column names: ``source`` records the CSV reader's rejects,
        # ``rescan`` reads the same rows again without recording them. Both take ``params``.
        self.source = ""
        self.rescan = ""
        self.params: dict = {}
        self.families: dict[str, str] = {}  # canonical date column → format family the load converts it with
        self.family_rule: dict[str, str] = {}  # how that family is confirmed after the load (see _settle_dates)
        self.captured: set[str] = set()  # canonical columns with a _raw_ column (their conversion can fail)
        self.skip_after: list[int] = []  # line-number thresholds: see _line
        self.rowid_base = 0  # rowid of the first row read (see _line)
        # Replacing a canonical table: ``typed`` is a table of the database, created in the import's transaction,
        # that takes the canonical table's place at commit (see commit); otherwise a temp table copied at commit.
        self.swap = False
        self.in_transaction = False

    # ---------------------------------------------------------------- staging
    def stage(self, overrides, template, date_format, sheet, tmp_paths, constants=None, replace=False) -> None:
        """Read, convert and check the file's rows into ``typed``. With ``replace`` (a canonical table replaced), the
        import's transaction begins before the rows are read; nothing is committed before :meth:`commit`."""
        self.swap = replace and self.target.name in TABLES
        src = self.facts.readable_path
        if self.facts.format == "xlsx":
            src, sheet_name = xlsx_to_csv(self.facts.path, sheet)
            tmp_paths.append(src)
            self.detected["sheet"] = sheet_name
        if self.facts.format == "parquet":
            self.is_csv = False
            self._source_parquet(src, overrides, template, constants or {})
        else:
            self._source_csv(src, overrides, template, constants or {})
            self.progress(0.3, "loading rows")
        self._plan_dates(date_format)
        if self.swap:
            self.con.execute("BEGIN TRANSACTION")
            self.in_transaction = True
        self._load(self.source)
        if self.is_csv:
            self._collect_reader_rejects(self.headers)
        else:
            self._count_parquet_rows()
        self.progress(0.6, "checking values")
        self._check_constants(date_format)
        self._settle_dates(date_format)
        self._check_rows()
        self._dedupe()

    def _map(self, headers: list[str], overrides, template, constants: Mapping[str, str] | None = None,
             strict: bool = True) -> None:
        self.headers = headers
        saved: dict[str, str] = {}
        if template:
            mapping, saved = _load_template(self.con, template, self.target.name, self.name)
            mapping = {k: v for k, v in mapping.items() if v in headers}
            self.detected["template"] = template
        else:
            found = _matching_template(self.con, self.target.name, headers)
            if found:
                self.detected["template"], mapping, saved = found
            else:
                mapping = propose_mapping(headers, self.target)
        mapping = _apply_overrides(mapping, overrides, headers, self.target, self.name)
        self._set_constants(mapping, overrides, dict(constants or {}), saved)
        missing = [c for c in self.target.required_columns if c not in mapping and c not in self.constants]
        self.mapping = mapping
        self.unmapped = [h for h in headers if h not in mapping.values()]
        self.missing = missing
        if missing and strict:
            hint = " ".join(f'--map "<header>={m}"' for m in missing)
            sets = " ".join(f"--set {m}=VALUE" for m in missing)
            raise ImportRefused(
                f"{self.name}: required column(s) {', '.join(missing)} of {self.target.name} not found. "
                f"The file's columns are: {', '.join(map(repr, headers))}. Map them, e.g. {hint}, or give one "
                f"value for every row ({sets})"
            )

    def _set_constants(self, mapping: dict[str, str], overrides, given: dict[str, str],
                       saved: dict[str, str]) -> None:
        """Choose the constants (given ones over the template's) and take their columns out of ``mapping``."""
        table = self.target
        for col, value in given.items():
            if col not in table.column_names:
                raise ImportRefused(f"{self.name}: {col!r} is not a column of {table.name}, so it cannot be set "
                                    f"for every row; choose from: {', '.join(table.column_names)}")
            if value == "":
                raise ImportRefused(f"{self.name}: no value given for {col} (use {col}=VALUE)")
        by_hand = {dst for dst in overrides.values() if dst}
        clash = sorted(by_hand & set(given))
        if clash:
            raise ImportRefused(f"{self.name}: {clash[0]} is mapped from a header by hand and also set to "
                                f"{given[clash[0]]!r} for every row; do one or the other")
        chosen = {c: str(v) for c, v in saved.items()
                  if c in table.column_names and c not in by_hand and c not in given and str(v) != ""}
        if chosen:
            self.warnings.append(f"template {self.detected.get('template')!r} sets "
                                 + ", ".join(f"{c}={v!r}" for c, v in chosen.items())
                                 + " on every row; give another value to change it")
        chosen.update(given)
        for col, value in chosen.items():
            if col in mapping:
                header = mapping.pop(col)
                self.warnings.append(f"column {header!r} is not imported: {col} is set to {value!r} on every row")
        self.constants = {c: chosen[c] for c in table.column_names if c in chosen}

    def _constant_columns(self) -> tuple[str, dict[str, str]]:
        """SQL selecting each constant as a text staging column k0, k1 ... (values bound as parameters, never in
        the SQL), and those parameters; records the staging columns."""
        sql, params = "", {}
        for i, (col, value) in enumerate(self.constants.items()):
            sql += f", CAST($const_{i} AS VARCHAR) AS k{i}"
            params[f"const_{i}"] = value
            self.stage_cols[col] = f"k{i}"
        return sql, params

    def _label(self, col: str) -> str:
        """Where a canonical column comes from, for messages: its header, or the constant."""
        return self.mapping.get(col) or f"{col} (set for every row)"

    def _constants_table(self) -> str:
        """A one-row temp table holding each constant as text under its staging name (values bound, never in SQL)."""
        if self.constants:
            cols = ", ".join(f"CAST($const_{i} AS VARCHAR) AS k{i}" for i in range(len(self.constants)))
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {q(self.consts)} AS SELECT {cols}",
                             {f"const_{i}": v for i, v in enumerate(self.constants.values())})
        return self.consts

    def _constant_family(self, col: Column, date_format: str | None) -> str:
        """The format family of a date constant, decided on its value (one row stands for every row)."""
        stage, consts = self.stage_cols[col.name], q(self._constants_table())
        if date_format:
            # a constant date in ISO is read as ISO whatever format the file's date columns use
            iso = _date_sql("YYYY-MM-DD", f"trim(CAST({q(stage)} AS VARCHAR))")
            if self.con.execute(f"SELECT ({iso}) IS NOT NULL FROM {consts}").fetchone()[0]:
                date_format = None
        return self._choose_date_format(self._label(col.name), stage, date_format, self.consts)

    def _check_constants(self, date_format: str | None) -> None:
        """Convert each constant once like a cell of its column; a value that fails refuses the file."""
        kinds = {"int": "not a whole number", "number": "not a number", "money": "not a number",
                 "bool": "not a yes/no value (true/false, yes/no, y/n, t/f, 1/0)", "date": "not a date",
                 "ts": "not a date (and time)"}
        if not self.constants:
            return
        consts = q(self._constants_table())
        for name, value in self.constants.items():
            col = self.target.column(name)
            stage = q(self.stage_cols[name])
            if col.type in ("date", "ts"):
                # a value no known format reads is refused here, before the format detection looks for one
                fam = _family_of(date_format) if date_format else None
                text = f"trim(CAST({stage} AS VARCHAR))"
                readable = " OR ".join(f"({_date_sql(f, text)}) IS NOT NULL"
                                       for f in dict.fromkeys(["YYYY-MM-DD", *([fam] if fam else _DETECTED_FAMILIES)]))
                if not self.con.execute(f"SELECT {readable} FROM {consts}").fetchone()[0]:
                    raise ImportRefused(f"{self.name}: the value {value!r} set for {name} on every row is "
                                        f"{kinds[col.type]}; use YYYY-MM-DD; nothing was imported", column=name)
                self.families[name] = self._constant_family(col, date_format)
            expr, _ = self._column_expr(col, stage)
            typed = self.con.execute(f"SELECT {expr} FROM {consts}").fetchone()[0]
            reason = None
            if typed is None:
                reason = kinds.get(col.type, f"not a valid {col.type}")
            elif col.check and not self.con.execute(
                    f"SELECT {col.check.format(c=q(name))} FROM (SELECT {expr} AS {q(name)} "
                    f"FROM {consts})").fetchone()[0]:
                reason = col.check_reason or "out of range"
            if reason:
                raise ImportRefused(f"{self.name}: the value {value!r} set for {name} on every row is {reason}; "
                                    "nothing was imported", column=name)

    def _dialect(self, src: Path):
        con = self.con
        try:
            sniff = con.execute(
                "SELECT Delimiter, Quote, Escape, SkipRows, HasHeader FROM sniff_csv(?, sample_size = ?, "
                "ignore_errors = true, null_padding = true)", [str(src), SAMPLE_ROWS]
            ).fetchone()
        except duckdb.Error as exc:
            m = re.search(r"Maximum line size of (\d+) bytes exceeded", str(exc))
            if m:
                limit = int(m.group(1))
                line = _first_line_longer_than(src, limit)  # DuckDB's sniffer names the wrong line
                where = f"line {line}" if line else "a line near the start"
                raise ImportRefused(f"{self.name}: {where} is longer than {limit // 1_000_000} MB; is this really a "
                                    "CSV file with one row per line? Nothing was imported", line=line) from exc
            raise ImportRefused(f"{self.name}: cannot detect the CSV layout: {_short(exc)}") from exc
        delim, quote, escape, skip, _has_header = sniff
        if quote in ("(empty)", "", None):
            quote, escape = '"', '"'
        if escape in ("(empty)", "", None):
            escape = quote
        self.detected.update(encoding=self.facts.encoding, delimiter=delim, quote=quote)
        if skip:
            self.detected["preamble_lines_skipped"] = str(skip)
        raw_headers = parse_header(src, delim, quote, skip)
        if not any(h.strip() for h in raw_headers):
            raise ImportRefused(f"{self.name}: the first line is empty; the file needs a header row")
        headers = dedupe_headers(raw_headers)
        if headers != [h.replace("\ufeff", "").strip() for h in raw_headers]:
            self.warnings.append("blank or repeated headers were renamed: " + ", ".join(
                f"{r!r}→{h!r}" for r, h in zip(raw_headers, headers) if r.strip() != h))
        return delim, quote, escape, skip, headers

    def _source_csv(self, src: Path, overrides, template, constants) -> None:
        """Dialect, mapping and number format from the first rows; then the reader that loads every row."""
        con = self.con
        delim, quote, escape, skip, headers = self._dialect(src)
        self._map(headers, overrides, template, constants)
        self._unmap_digitless_numbers(src, (delim, quote, escape, skip), overrides)
        self.first_line = skip + 2
        # Staging columns get neutral names (c0, c1 ...): headers never reach SQL as identifiers.
        types = {f"c{i}": "VARCHAR" for i in range(len(headers))}
        numeric = {}
        for col, h in self.mapping.items():
            i = headers.index(h)
            self.stage_cols[col] = f"c{i}"
            c = self.target.column(col)
            if c.type in ("int", "number", "money", "bool"):
                types[f"c{i}"] = c.sql_type
                if c.type != "bool":
                    numeric[col] = f"c{i}"
        opts = dict(delim=delim, quote=quote, escape=escape, skip=int(skip), header=True, auto_detect=False,
                    null_padding=False, nullstr=NULL_STRINGS)
        dec, thousands = self._number_format(src, opts, list(types), numeric)
        if dec == ",":
            opts["decimal_separator"] = ","
        if thousands:
            opts["thousands"] = thousands
        con.execute(f"DROP TABLE IF EXISTS {q(self.rej_table)}")
        con.execute(f"DROP TABLE IF EXISTS {q(self.rej_scan)}")
        sql_opts = ", ".join(f"{k} = ${k}" for k in opts)
        const_sql, const_params = self._constant_columns()
        reader = f"read_csv($path, columns = $columns, {sql_opts}"
        self.source = (f"(SELECT *{const_sql} FROM {reader}, store_rejects = true, rejects_table = '{self.rej_table}', "
                       f"rejects_scan = '{self.rej_scan}'))")
        # ignore_errors skips exactly the rows store_rejects records (it implies ignore_errors)
        self.rescan = f"(SELECT *{const_sql} FROM {reader}, ignore_errors = true))"
        self.params = {"path": str(src), "columns": types, **opts, **const_params}
        self.stage_types = {**types, **{f"k{i}": "VARCHAR" for i in range(len(self.constants))}}

    def _unmap_digitless_numbers(self, src: Path, dialect: tuple, overrides) -> None:
        """Leave unmapped an optional number column that was matched by its header alone but whose values hold no
        digit at all (a help desk's good/bad ``Satisfaction`` matched to ``csat`` 1-5): a word has no honest
        number, and converting it would reject every row. Decided on the first rows, like the number format; a
        mapping made by hand or by a template is kept (its rows are then rejected as not numbers)."""
        if self.detected.get("template"):
            return
        by_hand = {dst for dst in overrides.values() if dst}
        candidates = [c for c in self.mapping if c not in by_hand and not self.target.column(c).required
                      and self.target.column(c).type in ("int", "number", "money")]
        if not candidates:
            return
        delim, quote, escape, skip = dialect
        stage = {c: f"c{self.headers.index(self.mapping[c])}" for c in candidates}
        parts = ", ".join(f"count(NULLIF(trim({q(s)}), '')), count(*) FILTER (WHERE regexp_matches({q(s)}, '[0-9]')), "
                          f"list(DISTINCT trim({q(s)}) ORDER BY trim({q(s)})) FILTER (WHERE {q(s)} IS NOT NULL)"
                          for s in stage.values())
        row = self.con.execute(
            f"WITH sample AS (SELECT * FROM read_csv($path, columns = $columns, delim = $delim, quote = $quote, "
            "escape = $escape, skip = $skip, header = true, auto_detect = false, ignore_errors = true, "
            f"null_padding = true, nullstr = $nullstr) LIMIT {SAMPLE_ROWS}) SELECT {parts} FROM sample",
            {"path": str(src), "columns": {f"c{i}": "VARCHAR" for i in range(len(self.headers))}, "delim": delim,
             "quote": quote, "escape": escape, "skip": skip, "nullstr": NULL_STRINGS},
        ).fetchone()
        for i, col in enumerate(candidates):
            present, with_digit, seen = row[3 * i: 3 * i + 3]
            if present and not with_digit:
                header = self.mapping.pop(col)
                self.unmapped = [h for h in self.headers if h not in self.mapping.values()]
                words = ", ".join(repr(w) for w in (seen or [])[:5])
                meaning = self.target.column(col).description.rstrip(".")
                self.warnings.append(
                    f"column {header!r} is not imported as {col} ({meaning}): none of its values is a number (it "
                    f"holds {words}) and a word has no honest number; map it by hand (--map \"{header}={col}\") "
                    "only if its values are numbers")

    def _number_format(self, src, opts, stage_names, numeric: dict[str, str]) -> tuple[str, str | None]:
        """Decide decimal separator and thousands separator from the first rows of the numeric columns.

        Votes over the sample, counted in SQL: ``1.234,56`` / ``12,5`` vote for a decimal comma, ``1,234.56`` /
        ``12.5`` for a decimal point; ``1,234`` / ``1.234`` alone only show a thousands separator.
        """
        if not numeric:
            return ".", None
        cols = {n: "VARCHAR" for n in stage_names}
        values = " UNION ALL ".join(f"SELECT ltrim(trim({q(c)}), '+-') AS v FROM sample" for c in numeric.values())
        patterns = {
            "comma_dec": r"\d{1,3}(\.\d{3})+,\d+|\d+,\d{1,2}|\d+,\d{4,}",
            "point_dec": r"\d{1,3}(,\d{3})+\.\d+|\d+\.\d{1,2}|\d+\.\d{4,}",
            "comma_thou": r"\d{1,3}(,\d{3})+(\.\d+)?",
            "point_thou": r"\d{1,3}(\.\d{3})+(,\d+)?",
        }
        counts = ", ".join(f"count(*) FILTER (WHERE regexp_full_match(v, ${k}))" for k in patterns)
        comma_dec, point_dec, comma_thou, point_thou = self.con.execute(
            f"WITH sample AS (SELECT * FROM read_csv($path, columns = $columns, delim = $delim, quote = $quote, "
            "escape = $escape, skip = $skip, header = true, auto_detect = false, ignore_errors = true, "
            f"null_padding = true) LIMIT {SAMPLE_ROWS}) SELECT {counts} FROM ({values}) WHERE v IS NOT NULL",
            {"path": str(src), "columns": cols, **{k: opts[k] for k in ("delim", "quote", "escape", "skip")},
             **patterns},
        ).fetchone()
        if comma_dec > point_dec:
            if opts["delim"] == ",":
                return ".", None
            self.detected["decimal_separator"] = ","
            if point_thou:
                self.detected["thousands_separator"] = "."
            return ",", "." if point_thou else None
        if comma_thou:
            self.detected["thousands_separator"] = ","
            return ".", ","
        return ".", None

    def _collect_reader_rejects(self, headers: list[str]) -> None:
        con = self.con
        rows = con.execute(
            f"SELECT line, column_name, error_type, error_message, csv_line FROM {q(self.rej_table)} ORDER BY line"
        ).fetchall()
        by_stage = {f"c{i}": h for i, h in enumerate(headers)}
        # DuckDB reports "too many fields" once per extra field: keep the last (largest) report of each line.
        widest = {r[0]: r for r in rows if r[2] == "TOO MANY COLUMNS"}
        rows = [r for r in rows if r[2] != "TOO MANY COLUMNS" or widest[r[0]] is r]
        for line, col, etype, message, csv_line in rows:
            header = by_stage.get(col, col)
            canon = next((k for k, v in self.mapping.items() if v == header), None)
            if etype in _REFUSING_ERRORS:
                what = {"UNQUOTED VALUE": "a quoted value is never closed (unterminated quote)",
                        "LINE SIZE OVER MAXIMUM": "the line is too long (over 2 MB); is this really a CSV file?"}.get(
                    etype, "invalid text encoding")
                raise ImportRefused(f"{self.name}: line {line}: {what}; nothing was imported",
                                    line=int(line), column=header)
            if etype == "CAST":
                ctype = self.target.column(canon).type if canon else "value"
                label = {"int": "whole number", "number": "number", "money": "number", "bool": "yes/no value"}.get(
                    ctype, ctype)
                value = _cast_value(message)
                reason = f"not a {label}"
            elif etype in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
                m = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message or "")
                reason = (f"{'too few' if etype == 'MISSING COLUMNS' else 'too many'} fields "
                          f"({m.group(2)} instead of {m.group(1)})" if m else etype.lower())
                header, value = None, (csv_line or "")[:200]
            else:
                reason, value = (message or etype).splitlines()[0], (csv_line or "")[:200]
            self._reject(int(line), header, reason, value)
        n_lines = len(self.rejected_lines)
        accepted = con.execute(f"SELECT count(*) FROM {q(self.typed)}").fetchone()[0]
        self.rows_read = accepted + n_lines
        if self.rows_read == 0:
            raise ImportRefused(f"{self.name}: 0 data rows (the file has a header only); existing data kept")
        if accepted == 0:
            first = self.rejects[0]
            if all("fields" in r.reason for r in self.rejects):
                raise ImportRefused(
                    f"{self.name}: none of the {self.rows_read:,} rows could be read; first problem: line "
                    f"{first.line}: {first.reason}. Does the header have the same number of fields as the data rows?",
                    line=first.line,
                )
            raise ImportRefused(
                f"{self.name}: every row was rejected; first problem: line {first.line}, column {first.column!r}: "
                f"{first.reason}" + (f" ({first.value!r})" if first.value else "") + ". Nothing was imported",
                line=first.line, column=first.column,
            )

    def _reject(self, line: int | None, column: str | None, reason: str, value: str | None = None) -> None:
        key = f"{reason} in {column!r}" if column else reason
        new_line = line is None or line not in self.rejected_lines
        if new_line:
            self.reject_counts[key] = self.reject_counts.get(key, 0) + 1
            if line is not None:
                self.rejected_lines.add(line)
        if len(self.rejects) < MAX_REJECTS_KEPT:
            self.rejects.append(RejectedRow(line, column, reason, value))

    def _source_parquet(self, src: Path, overrides, template, constants) -> None:
        con = self.con
        try:
            desc = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(src)]).fetchall()
        except duckdb.Error as exc:
            raise ImportRefused(f"{self.name}: not a readable Parquet file: {_short(exc)}") from exc
        headers = [d[0] for d in desc]
        self._map(headers, overrides, template, constants)
        self.first_line = 1
        sel = ", ".join(f"{q(h)} AS c{i}" for i, h in enumerate(headers))
        self.stage_cols = {col: f"c{headers.index(h)}" for col, h in self.mapping.items()}
        const_sql, const_params = self._constant_columns()
        self.source = self.rescan = f"(SELECT {sel}{const_sql} FROM read_parquet($path))"
        self.params = {"path": str(src), **const_params}
        self.stage_types = {**{f"c{i}": str(d[1]) for i, d in enumerate(desc)},
                            **{f"k{i}": "VARCHAR" for i in range(len(self.constants))}}

    def _count_parquet_rows(self) -> None:
        self.rows_read = self.con.execute(f"SELECT count(*) FROM {q(self.typed)}").fetchone()[0]
        self.detected["format"] = "parquet"
        if self.rows_read == 0:
            raise ImportRefused(f"{self.name}: 0 data rows; existing data kept")

    # ---------------------------------------------------------------- typing and rules
    def _load(self, source: str) -> None:
        """``typed``: the canonical columns converted from ``source`` in one pass, in file order, with the text of
        each value that failed to convert in ``_raw_<column>``."""
        inner: list[str] = []
        outer: list[str] = []
        self.captured = set()
        for col in self.target.columns:
            stage = self.stage_cols.get(col.name)
            if stage is None:
                outer.append(f"CAST(NULL AS {col.sql_type}) AS {q(col.name)}")
                continue
            raw = f"s.{q(stage)}"
            expr, can_fail = self._column_expr(col, raw)
            inner.append(f"{expr} AS {q(col.name)}")
            outer.append(q(col.name))
            if can_fail:
                text = q("_text_" + col.name)
                inner.append(f"NULLIF(trim(CAST({raw} AS VARCHAR)), '') AS {text}")
                outer.append(f"CASE WHEN {q(col.name)} IS NULL THEN {text} END AS {q('_raw_' + col.name)}")
                self.captured.add(col.name)
        self.con.execute(f"DROP TABLE IF EXISTS {q(self.typed)}")
        self.con.execute(f"CREATE {'' if self.swap else 'TEMP '}TABLE {q(self.typed)} AS SELECT {', '.join(outer)} "
                         f"FROM (SELECT {', '.join(inner) or 'NULL AS _none'} FROM {source} s)", self.params)
        # rows are numbered from this rowid in file order (a table created in an open transaction numbers its rows
        # from a large offset)
        self.rowid_base = self.con.execute(f"SELECT coalesce(min(rowid), 0) FROM {q(self.typed)}").fetchone()[0]

    def _line(self, rowid: int) -> int:
        """The file line of the row with ``rowid`` in ``typed`` (its position among the rows read, from
        ``rowid_base``): for a CSV, counted from the first data line, passing over the lines the reader rejected and
        blank lines."""
        rid = rowid - self.rowid_base
        if not self.is_csv:
            return rid + 1
        return self.first_line + rid + bisect.bisect_right(self.skip_after, rid)

    def _text_date_columns(self) -> list[Column]:
        return [c for c in self.target.columns if c.type in ("date", "ts") and c.name in self.stage_cols]

    def _plan_dates(self, date_format: str | None) -> None:
        """The family each text date column is converted with by the load, and how it is confirmed afterwards.

        The format of a column is decided from all its values (:meth:`_choose_date_format`); before the load only
        the first rows are known, so the load uses their choice and :meth:`_settle_dates` confirms it on every
        value. Rules: ``fixed`` (a native date, a constant or a given format: nothing to confirm), ``iso``, ``exact``
        (see :meth:`_settle_dates`) and ``analyse`` (the first rows did not settle it).
        """
        from_sample: list[Column] = []
        for col in self._text_date_columns():
            stage = self.stage_cols[col.name]
            if self.stage_types.get(stage, "VARCHAR") in _NATIVE_DATES:
                self.families[col.name], self.family_rule[col.name] = "native", "fixed"
            elif col.name in self.constants:
                try:
                    fam = self._constant_family(col, date_format)
                except ImportRefused:  # refused by _check_constants, after the reader's own findings
                    fam = "YYYY-MM-DD"
                self.families[col.name], self.family_rule[col.name] = fam, "fixed"
            elif date_format:
                fam = _family_of(date_format)  # an unknown format is refused by _settle_dates
                self.families[col.name], self.family_rule[col.name] = fam or "YYYY-MM-DD", "fixed" if fam else "analyse"
            else:
                from_sample.append(col)
        if not from_sample:
            return
        stages = ", ".join(q(self.stage_cols[c.name]) for c in from_sample)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {q(self.sample)} AS SELECT {stages} FROM {self.rescan} "
                         f"LIMIT {SAMPLE_ROWS}", self.params)
        for col in from_sample:
            n, iso_fail, fails, diffs = self._date_votes(self.stage_cols[col.name], self.sample)
            if n == 0 or iso_fail == 0:
                self.families[col.name], self.family_rule[col.name] = "YYYY-MM-DD", "iso"
                continue
            best = min(fails.values())
            winners = [f for f in fails if fails[f] == best]
            chosen = winners[0]
            unsettled = best == n or _DAY_MONTH_TWINS.get(chosen) in winners
            self.families[col.name] = "YYYY-MM-DD" if best == n else chosen
            self.family_rule[col.name] = "analyse" if unsettled else "exact"
        self.con.execute(f"DROP TABLE IF EXISTS {q(self.sample)}")

    def _settle_dates(self, date_format: str | None) -> None:
        """Confirm on every value the date formats the load used, or choose them on every value and load again.

        - ``iso``: no value failed, or fewer failed than converted. An ISO date part fails every other known
          format, so ISO then has the fewest failures: the choice on all values is ISO too.
        - ``exact``: no value failed. Each value's date part then reads in the chosen format, and a format listed
          earlier that also read every value would have read the first rows too and been chosen from them; the
          day/month twin failed on some of the first rows (else the rule is ``analyse``), so it is no rival.
        Any other column is analysed on all its values (:meth:`_choose_date_format`, which refuses an ambiguous or
        unreadable column as before); when that picks another format, the rows are read again with it.
        """
        pending = [c for c, rule in self.family_rule.items() if rule != "fixed"]
        unsettled: list[str] = []
        if pending:
            counts = ", ".join(f"count({q('_raw_' + c)}), count({q(c)})" for c in pending)
            row = self.con.execute(f"SELECT {counts} FROM {q(self.typed)}").fetchone()
            for i, c in enumerate(pending):
                failed, converted, rule = row[2 * i], row[2 * i + 1], self.family_rule[c]
                if not ((rule == "iso" and (failed == 0 or failed < converted)) or (rule == "exact" and failed == 0)):
                    unsettled.append(c)
        if unsettled:
            if not date_format:  # (a given format is never analysed: an unknown one is refused right away)
                stages = ", ".join(q(self.stage_cols[c]) for c in unsettled)
                self.con.execute(f"CREATE OR REPLACE TEMP TABLE {q(self.raw)} AS SELECT {stages} FROM {self.rescan}",
                                 self.params)
            changed = False
            for c in unsettled:
                fam = self._choose_date_format(self._label(c), self.stage_cols[c], date_format, self.raw)
                changed = changed or fam != self.families[c]
                self.families[c], self.family_rule[c] = fam, "fixed"
            for t in (self.raw, self.raw + "_dates"):
                self.con.execute(f"DROP TABLE IF EXISTS {q(t)}")
            if changed:
                self.progress(0.45, "reading the rows again with the date format chosen from every value")
                self._load(self.rescan)
        for col in self._text_date_columns():
            self.detected[f"date_format[{self._label(col.name)}]"] = self.families[col.name]

    def _check_rows(self) -> None:
        """Reject rows whose value did not convert or that break a rule: the rules are counted in one aggregate, and
        only a rule some row breaks is read row by row (in file order) and its rows deleted."""
        con = self.con
        skipped = sorted(set(self.rejected_lines) | {b for b in self.facts.blank_lines if b >= self.first_line})
        self.skip_after = [s - self.first_line - i for i, s in enumerate(skipped)]
        # (failing predicate, column or the columns a row rule compares, reason, value expression)
        checks: list[tuple[str, str | tuple[str, ...] | None, str, str | None]] = []
        for col in self.target.columns:
            if col.name in self.captured:
                keep = q("_raw_" + col.name)
                checks.append((f"{keep} IS NOT NULL", col.name, self._fail_reason(col), keep))
        # Rules on typed values: required, ranges, cross-column checks.
        for c in self.target.columns:
            if c.name in self.stage_cols and c.required:
                checks.append((f"{q(c.name)} IS NULL", c.name, "required value is missing", None))
            if c.name in self.stage_cols and c.check:
                checks.append((f"NOT ({c.check.format(c=q(c.name))})", c.name, c.check_reason or "out of range",
                               f"CAST({q(c.name)} AS VARCHAR)"))
        for pred, reason in self.target.row_checks:
            # the columns a rule compares, in the order the rule names them; a rejected row names them all
            found = [(m.start(), c) for c in self.target.column_names if (m := re.search(rf"\b{c}\b", pred))]
            needed = tuple(c for _, c in sorted(found))
            if all(n in self.stage_cols for n in needed):
                values = ", ".join(f"CAST({q(n)} AS VARCHAR)" for n in needed)
                checks.append((f"NOT ({pred})", needed, reason, f"concat_ws(', ', {values})"))
        broken = [0] * len(checks)
        if checks:
            broken = con.execute("SELECT " + ", ".join(f"count(*) FILTER (WHERE {pred})" for pred, *_ in checks)
                                 + f" FROM {q(self.typed)}").fetchone()
        for (pred, col, reason, value_expr), n in zip(checks, broken):
            if not n:
                continue
            bad = con.execute(
                f"SELECT rowid, {value_expr or 'NULL'} FROM {q(self.typed)} WHERE {pred} ORDER BY rowid"
            ).fetchall()
            if not bad:  # an earlier rule already rejected these rows
                continue
            cols = (col,) if isinstance(col, str) else col or ()
            header = ", ".join(self._label(c) for c in cols) or None
            for rowid, value in bad:
                self._reject(self._line(int(rowid)), header, reason, value)
            con.execute(f"DELETE FROM {q(self.typed)} WHERE {pred}")
        left = con.execute(f"SELECT count(*) FROM {q(self.typed)}").fetchone()[0]
        if left == 0:
            first = self.rejects[0] if self.rejects else None
            where = f"line {first.line}, column {first.column!r}: {first.reason}" if first else ""
            raise ImportRefused(f"{self.name}: every row was rejected; first problem: {where}. Nothing was imported",
                                line=first.line if first else None)

    def _fail_reason(self, col: Column) -> str:
        if col.type in ("date", "ts"):
            fmt = self.detected.get(f"date_format[{self._label(col.name)}]", "a date")
            return f"not a date in the format {fmt} used by this column"
        if col.type == "bool":
            return "not a yes/no value"
        return f"not a valid {col.type}"

    def _column_expr(self, col: Column, raw: str) -> tuple[str, bool]:
        """(conversion expression, whether a present value can fail to convert)."""
        if col.type in ("id", "text"):
            text = f"NULLIF(trim(CAST({raw} AS VARCHAR)), '')" if col.type == "id" else f"CAST({raw} AS VARCHAR)"
            return text, False
        if col.type in ("date", "ts"):
            conv = self._date_expr(col, raw)
            target = "DATE" if col.type == "date" else "TIMESTAMP"
            return f"CAST({conv} AS {target})", True
        # numbers and booleans were typed by the reader (CSV) or arrive typed (Parquet); text (a constant, a
        # Parquet string column) can fail to convert
        stage_type = self.stage_types.get(self.stage_cols[col.name], "VARCHAR")
        return f"TRY_CAST({raw} AS {col.sql_type})", stage_type.upper() != col.sql_type

    def _date_expr(self, col: Column, raw: str) -> str:
        family = self.families.get(col.name, "YYYY-MM-DD")
        if family == "native":
            return f"CAST({raw} AS TIMESTAMP)"
        return _date_sql(family, f"trim(CAST({raw} AS VARCHAR))")

    def _date_votes(self, stage: str, table: str) -> tuple[int, int, dict[str, int], dict[str, int]]:
        """(values, values ISO does not read, then — only when that is not 0 — per known format the values whose
        date part it does not read, and per day/month format the distinct date parts its twin reads differently)
        of the text column ``stage`` of ``table``."""
        raw, tokens = q(table), q(self.raw + "_dates")
        v = f"NULLIF(trim(CAST({q(stage)} AS VARCHAR)), '')"
        n, iso_fail = self.con.execute(
            f"SELECT count({v}), count({v}) FILTER (WHERE ({_date_sql('YYYY-MM-DD', v)}) IS NULL) FROM {raw}"
        ).fetchone()
        if n == 0 or iso_fail == 0:
            return n, iso_fail, {}, {}
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {tokens} AS SELECT coalesce(NULLIF(regexp_extract(v, $re), ''), v) AS tok, "
            f"count(*) AS c FROM (SELECT {v} AS v FROM {raw}) WHERE v IS NOT NULL GROUP BY 1",
            {"re": _DATE_PART},
        )
        names = list(_DETECTED_FAMILIES)
        parts = [f"sum(c) FILTER (WHERE ({_date_sql(f, 'tok', date_only=True)}) IS NULL)" for f in names]
        twins = [f for f in names if f in _DAY_MONTH_TWINS]
        parts += [f"count(*) FILTER (WHERE ({_date_sql(f, 'tok', date_only=True)}) IS DISTINCT FROM "
                  f"({_date_sql(_DAY_MONTH_TWINS[f], 'tok', date_only=True)}))" for f in twins]
        row = self.con.execute(f"SELECT {', '.join(parts)} FROM {tokens}").fetchone()
        fails = {f: int(x or 0) for f, x in zip(names, row[: len(names)])}
        diffs = dict(zip(twins, row[len(names):]))
        return n, iso_fail, fails, diffs

    def _choose_date_format(self, header: str, stage: str, date_format: str | None, table: str) -> str:
        """The format family of a text date column, decided from all its values (column ``stage`` of ``table``).

        ISO is checked first on the whole column. Otherwise the families are tried on the distinct *date parts*
        (a few thousand values even for millions of rows), weighted by how often each occurs; day/month twins that
        both parse everything and disagree somewhere make the column ambiguous.
        """
        if date_format:
            fam = _family_of(date_format)
            if fam is None:
                raise ImportRefused(f"{self.name}: unknown date format {date_format!r}; use one of "
                                    f"{', '.join(_DETECTED_FAMILIES)} or a strptime pattern like %d/%m/%Y")
            return fam
        n, iso_fail, fails, diffs = self._date_votes(stage, table)
        if n == 0 or iso_fail == 0:
            return "YYYY-MM-DD"
        names = list(fails)
        best = min(fails.values())
        winners = [f for f in names if fails[f] == best]
        if best == n:
            raise ImportRefused(f"{self.name}: column {header!r}: no value is a date in a known format "
                                f"(e.g. {self._example(stage, table)!r}); choose the date format or map another "
                                "column", column=header)
        chosen = winners[0]
        twin = _DAY_MONTH_TWINS.get(chosen)
        if twin in winners and diffs.get(chosen, 0) > 0:
            raise ImportRefused(
                f"{self.name}: column {header!r}: dates like {self._example(stage, table)!r} read both as day/month "
                f"and month/day and no value settles it; choose the format explicitly (--date-format {chosen} or "
                f"{twin})", column=header)
        return chosen

    def _example(self, stage: str, table: str) -> str:
        row = self.con.execute(f"SELECT {q(stage)} FROM {q(table)} WHERE {q(stage)} IS NOT NULL LIMIT 1").fetchone()
        return str(row[0]) if row else ""

    # ---------------------------------------------------------------- duplicates
    def _dedupe(self) -> None:
        """Drop exact duplicate rows (the first is kept), then rows repeating a key (the last is kept).

        With a key, only rows sharing a key can repeat one another, so one aggregate over the key finds them and
        the rest is done on those rows alone (none, usually)."""
        con, t = self.con, q(self.typed)
        cols = ", ".join(q(c) for c in self.target.column_names)
        if not self.target.key:
            if self.target.name != "transactions":
                self.exact_dupes = con.execute(
                    f"DELETE FROM {t} WHERE rowid NOT IN (SELECT min(rowid) FROM {t} GROUP BY {cols})").fetchone()[0]
                return
            # a transaction log may hold identical purchases: they are kept
            n = con.execute(f"SELECT count(*) - count(DISTINCT ({cols})) FROM {t}").fetchone()[0]
            if n:
                self.warnings.append(f"{n:,} rows repeat another row exactly; kept (a transaction log may hold "
                                     "identical purchases)")
            return
        keys = ", ".join(q(k) for k in self.target.key)
        dk = q(self.dup_keys_table)
        # Hashes of the key first: a 64-bit number groups faster and in less memory than the key's text; two keys
        # sharing a hash only add a row to the exact work below, never hide a duplicate.
        con.execute(f"CREATE OR REPLACE TEMP TABLE {dk} AS SELECT h FROM (SELECT hash({keys}) AS h FROM {t}) "
                    "GROUP BY h HAVING count(*) > 1")
        if not con.execute(f"SELECT count(*) FROM {dk}").fetchone()[0]:
            return
        # the rows whose key hash repeats: every row sharing a key with another (keys are required: never NULL)
        shared = f"(SELECT x.rowid AS rid, x.* FROM {t} x WHERE hash({keys}) IN (SELECT h FROM {dk}))"
        self.exact_dupes = con.execute(
            f"DELETE FROM {t} WHERE rowid IN (SELECT rid FROM {shared}) "
            f"AND rowid NOT IN (SELECT min(rid) FROM {shared} GROUP BY {cols})").fetchone()[0]
        groups = f"(SELECT {keys}, count(*) AS n FROM {shared} GROUP BY {keys} HAVING count(*) > 1)"
        dups = con.execute(f"SELECT {keys}, n FROM {groups} ORDER BY n DESC, 1 LIMIT 5").fetchall()
        if dups:
            self.dup_keys = int(con.execute(f"SELECT sum(n - 1) FROM {groups}").fetchone()[0])
            self.dup_examples = ["/".join(map(str, d[:-1])) for d in dups]
            con.execute(f"DELETE FROM {t} WHERE rowid IN (SELECT rid FROM {shared}) "
                        f"AND rowid NOT IN (SELECT max(rid) FROM {shared} GROUP BY {keys})")

    # ---------------------------------------------------------------- commit
    def commit(self, mode: str, import_id: str) -> ImportReport:
        con = self.con
        self.progress(0.85, "committing")
        accepted = con.execute(f"SELECT count(*) FROM {q(self.typed)}").fetchone()[0]
        if not self.in_transaction:
            con.execute("BEGIN TRANSACTION")
            self.in_transaction = True
        try:
            if self.swap:
                changes = {self.target.name: self._swap_in(accepted)}
                facts: dict = {}
            elif self.target.name in TABLES:
                provided = [*self.mapping, *self.constants]
                changes = {self.target.name: _write(con, self.target, self.typed, mode, provided)}
                facts: dict = {}
            else:
                changes, facts = shapes.expand(con, self.target.name, self.typed, mode, _write)
        except BaseException:
            con.execute("ROLLBACK")
            self.in_transaction = False
            raise
        self.progress(1.0, "done")
        rejected = self.rows_read - accepted - self.exact_dupes - self.dup_keys
        message = f"{accepted:,} of {self.rows_read:,} rows imported"
        if rejected:
            message += f"; {rejected:,} rejected (see the list)"
        return ImportReport(
            file_name=self.name, table=self.target.name, mode=mode, outcome="committed", message=message,
            rows_read=self.rows_read, rows_accepted=accepted, rows_rejected=len(self.rejected_lines),
            rejected_by_reason=dict(sorted(self.reject_counts.items(), key=lambda kv: -kv[1])),
            rejected=tuple(sorted(self.rejects, key=lambda r: (r.line or 0))),
            exact_duplicates=self.exact_dupes, duplicate_keys=self.dup_keys,
            duplicate_key_examples=tuple(self.dup_examples), mapping=self.mapping,
            unmapped_columns=tuple(self.unmapped), detected=self.detected, facts=facts, changes=changes,
            warnings=tuple(self.warnings), import_id=import_id, file_sha256=self.facts.sha256,
            constants=dict(self.constants),
        )

    def _swap_in(self, accepted: int) -> dict[str, int]:
        """Replace the canonical table by ``typed`` inside the import's transaction: the staging columns are dropped,
        the old table is dropped and ``typed`` renamed in its place (no row is copied or deleted one by one)."""
        con, t = self.con, q(self.target.name)
        before = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for c in sorted(self.captured):
            con.execute(f"ALTER TABLE {q(self.typed)} DROP COLUMN {q('_raw_' + c)}")
        con.execute(f"DROP TABLE {t}")
        con.execute(f"ALTER TABLE {q(self.typed)} RENAME TO {t}")
        return {"rows_before": before, "rows_after": accepted, "inserted": accepted, "deleted": before}

    def cleanup(self) -> None:
        if self.in_transaction:  # refused or failed before its commit: nothing of it is kept
            _rollback_if_open(self.con)
            self.in_transaction = False
        for t in (self.raw, self.raw + "_dates", self.typed, self.sample, self.consts, self.dup_keys_table,
                  self.rej_table, self.rej_scan):
            try:
                self.con.execute(f"DROP TABLE IF EXISTS {q(t)}")
            except duckdb.Error:
                pass


def _write(con, table: Table, source: str, mode: str, mapped: list[str]) -> dict[str, int]:
    """Write ``source`` (a temp table with the canonical columns) into ``table``; inside the caller's transaction."""
    t, s = q(table.name), q(source)
    cols = ", ".join(q(c) for c in table.column_names)
    before = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
    if mode == "replace" or not table.key:
        if mode == "replace":
            con.execute(f"DELETE FROM {t}")
        con.execute(f"INSERT INTO {t} ({cols}) SELECT {cols} FROM {s}")
        after = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        return {"rows_before": before, "rows_after": after, "inserted": after - (0 if mode == "replace" else before),
                "deleted": before if mode == "replace" else 0}
    on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in table.key)
    existing = con.execute(f"SELECT count(*) FROM {s} s WHERE EXISTS (SELECT 1 FROM {t} t WHERE {on})").fetchone()[0]
    updated = 0
    if mode == "upsert" and existing:
        sets = [c for c in mapped if c not in table.key]
        if sets:
            assignments = ", ".join(f"{q(c)} = s.{q(c)}" for c in sets)
            con.execute(f"UPDATE {t} AS t SET {assignments} FROM {s} AS s WHERE {on}")
            updated = existing
    con.execute(f"INSERT INTO {t} ({cols}) SELECT {cols} FROM {s} s WHERE NOT EXISTS "
                f"(SELECT 1 FROM {t} t WHERE {on})")
    after = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
    out = {"rows_before": before, "rows_after": after, "inserted": after - before, "updated": updated}
    if mode == "append":
        out["skipped_existing_keys"] = existing
    return out


def _cast_value(message: str | None) -> str | None:
    m = re.search(r'Could not convert string "(.*)" to', message or "")
    return m.group(1) if m else None


def _family_of(fmt: str) -> str | None:
    if fmt in DATE_FORMATS:
        return fmt
    for fam, patterns in DATE_FORMATS.items():
        if fmt in patterns:
            return fam
    if "%" in fmt:
        try:  # a pattern DuckDB cannot read would fail every import that tries it: refuse it here instead
            with duckdb.connect() as scratch:
                scratch.execute("SELECT try_strptime('', ?)", [fmt])
        except duckdb.Error:
            return None
        DATE_FORMATS.setdefault(fmt, (fmt,))
        return fmt
    return None


def _date_sql(family: str, v: str, date_only: bool = False) -> str:
    """Expression parsing text ``v`` with a format family; NULL when it does not parse or the year is implausible.

    ``date_only`` tries only the family's pattern without a time (used on extracted date parts).
    """
    return _plausible(_date_parse_sql(family, v, date_only))


def _plausible(parsed: str) -> str:
    """``parsed`` (a timestamp expression), NULL when its year is implausible."""
    return f"CASE WHEN year({parsed}) BETWEEN 1900 AND 2199 THEN {parsed} END"


def _date_parse_sql(family: str, v: str, date_only: bool = False) -> str:
    """Expression parsing text ``v`` with a format family (any year); see :func:`_date_sql`."""
    patterns = DATE_FORMATS[family]
    if patterns == ("ISO",):
        # A time with a UTC offset (2026-03-02T10:15:00+01:00, ...Z, ... +0100) is converted to UTC and stored
        # naive; epoch microseconds keep the session's time zone out of it. Without an offset: as written.
        utc = (f"make_timestamp(epoch_us(TRY_CAST(regexp_replace({v}, '{_SPACE_BEFORE_OFFSET}', '\\1') "
               "AS TIMESTAMPTZ)))")
        # the LIKE tests only spare the regular expression on values that cannot match it (no ':' followed by
        # a sign, no final Z): the result is the expression's alone
        offset = (f"contains({v}, ':') AND (ends_with({v}, 'Z') OR {v} LIKE '%:%+%' OR {v} LIKE '%:%-%') "
                  f"AND regexp_matches({v}, '{_TIME_WITH_OFFSET}')")
        parsed = f"CASE WHEN {offset} THEN {utc} ELSE TRY_CAST({v} AS TIMESTAMP) END"
        guard = f"regexp_full_match({v}, '\\d{{4}}-\\d{{1,2}}-\\d{{1,2}}([ T].*)?')"
        return f"CASE WHEN {guard} THEN {parsed} END"
    if date_only:
        patterns = tuple(p for p in patterns if "%H" not in p and "%I" not in p) or patterns
    lst = ", ".join("'" + p.replace("'", "''") + "'" for p in patterns)
    return f"try_strptime({v}, [{lst}])"


# --------------------------------------------------------------------------------------------- folders
LOAD_ORDER = ("customers", "products", "orders", "order_items", "campaigns", "campaign_contacts",
              "support_tickets", "shipments", "surveys", "customer_notes", "goals")


def load_folder(con: duckdb.DuckDBPyConnection, folder: str | Path, *, progress=None) -> list[ImportReport]:
    """Import every ``<table>.csv[.gz]`` / ``.parquet`` in ``folder`` (replace mode); canonical tables with no file
    (or a header-only file) are emptied, so the store holds exactly the folder's data. One report per imported
    table."""
    folder = Path(folder)
    reports = []
    for name in LOAD_ORDER:
        files = [folder / f"{name}{ext}" for ext in (".csv.gz", ".csv", ".parquet")]
        found = next((f for f in files if f.exists()), None)
        if found is None or (found.suffix != ".parquet" and not has_data_rows(found)):
            con.execute(f"DELETE FROM {q(name)}")
            continue
        reports.append(import_file(con, found, name, mode="replace", progress=progress))
    return reports


def load_sample_if_fresh(con: duckdb.DuckDBPyConnection) -> list[ImportReport]:
    """Load the bundled sample data into a store that has never imported anything (first run)."""
    from crm_core.sample import SAMPLE_DIR

    seen = con.execute("SELECT count(*) FROM import_log").fetchone()[0]
    has_orders = con.execute("SELECT count(*) FROM orders").fetchone()[0]
    if seen or has_orders:
        return []
    return load_folder(con, SAMPLE_DIR)
