"""Reading an uploaded file's outer shape: format, encoding, dialect and header — without loading its rows.

Everything here streams: a multi-GB export is read in 16 MB chunks, never whole. The rows themselves are read by
DuckDB (see :mod:`crm_core.ingest`).

Encoding rule (documented in ``docs/data-model.md``):

1. valid UTF-8 (with or without a byte-order mark) is UTF-8;
2. a file with valid multi-byte UTF-8 text *and* an invalid byte is corrupt: refused, naming the line;
3. otherwise, a file that decodes as Windows-1252 (a superset of Latin-1 for text) is transcoded to UTF-8 and the
   report says so; bytes undefined in Windows-1252 are refused, naming the line.

An explicit ``encoding=`` always wins.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ImportRefused", "FileFacts", "has_data_rows", "inspect_file", "parse_header", "dedupe_headers",
           "xlsx_to_csv"]

CHUNK = 16 * 1024 * 1024
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


class ImportRefused(Exception):
    """The file cannot be imported; the message says what, where and what to do. Nothing was changed."""

    def __init__(self, message: str, *, line: int | None = None, column: str | None = None):
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class FileFacts:
    """What streaming over the raw bytes told us."""

    path: Path
    name: str
    size_bytes: int
    sha256: str
    format: str  # csv | csv.gz | parquet | xlsx
    encoding: str  # utf-8 | utf-8-sig | windows-1252 | ... (text formats only)
    readable_path: Path  # the file DuckDB should read (a UTF-8 transcoded temp copy when needed)
    is_temp_copy: bool
    blank_lines: tuple[int, ...] = ()  # physical line numbers of empty lines (DuckDB counts them in its lines)


def _magic(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(8)


def _detect_format(path: Path, head: bytes) -> str:
    name = path.name.lower()
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        if name.endswith((".xlsx", ".xlsm")):
            return "xlsx"
        raise ImportRefused(
            f"{path.name}: this is a zip archive or an Excel workbook, not a CSV file; "
            "rename it .xlsx if it is a workbook, or export it as CSV"
        )
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportRefused(f"{path.name}: this is an old Excel .xls workbook; save it as .xlsx or CSV")
    if head.startswith(b"\x1f\x8b"):
        return "csv.gz"
    if name.endswith((".parquet", ".xlsx")):
        raise ImportRefused(f"{path.name}: the name says {name.rsplit('.', 1)[-1]} but the content is not")
    return "csv"


def _open_raw(path: Path, fmt: str):
    return gzip.open(path, "rb") if fmt == "csv.gz" else open(path, "rb")


def _line_of(prefix_newlines: int) -> int:
    return prefix_newlines + 1


def inspect_file(
    path: Path,
    *,
    encoding: str | None = None,
    max_bytes: int | None = None,
    progress: Callable[[float, str], None] | None = None,
    max_uncompressed_ratio: int = 200,
) -> FileFacts:
    """Stream over ``path`` once: hash it, identify its format, check (or convert) its encoding.

    Raises :class:`ImportRefused` for an empty, binary, wrongly named, oversized or undecodable file.
    """
    path = Path(path)
    if not path.exists():
        raise ImportRefused(f"{path}: file not found")
    size = path.stat().st_size
    if size == 0:
        raise ImportRefused(f"{path.name}: the file is empty (0 bytes); nothing was imported")
    if max_bytes is not None and size > max_bytes:
        raise ImportRefused(
            f"{path.name}: {size / 1e6:,.1f} MB is over the upload limit of {max_bytes / 1e6:,.0f} MB; "
            "split the file or raise the limit"
        )
    head = _magic(path)
    fmt = _detect_format(path, head)

    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
    digest = sha.hexdigest()
    if fmt in ("parquet", "xlsx"):
        return FileFacts(path, path.name, size, digest, fmt, "binary", path, False)

    _check_first_line(path, fmt)
    enc = (encoding or "").lower().replace("_", "-") or None
    if enc in ("latin-1", "latin1", "iso-8859-1", "cp1252"):
        enc = "windows-1252" if enc == "cp1252" else "latin-1"
    text_ok, blank_lines, saw_bom = _check_utf8(path, fmt, size, max_uncompressed_ratio, progress, forced=enc)
    if enc in (None, "utf-8", "utf8", "utf-8-sig"):
        if text_ok is True:
            return FileFacts(path, path.name, size, digest, fmt, "utf-8-sig" if saw_bom else "utf-8", path, False,
                             blank_lines)
        if enc is not None:
            raise ImportRefused(str(text_ok), line=text_ok.line)
        # Not UTF-8: the error tells whether valid multi-byte UTF-8 was seen before it.
        if text_ok.saw_utf8_multibyte:
            raise ImportRefused(
                f"{path.name}: line {text_ok.line}: invalid UTF-8 byte 0x{text_ok.byte:02x} in a file that is "
                "otherwise UTF-8; the file is corrupt or mixes encodings. Nothing was imported; re-export it as UTF-8",
                line=text_ok.line,
            )
        enc = "windows-1252"
    # Transcode a legacy 8-bit encoding to a UTF-8 temp copy, streaming.
    out = _transcode(path, fmt, enc)
    return FileFacts(path, path.name, size, digest, fmt, enc, out, True, blank_lines)


MAX_HEADER_BYTES = 1024 * 1024
MAX_COLUMNS = 4096


def _check_first_line(path: Path, fmt: str) -> None:
    """Refuse a file whose header is not a header: no line break in the first MB, or thousands of fields.

    Checked before any sniffing, which on a one-line file with a million fields would exhaust memory.
    """
    with _open_raw(path, fmt) as fh:
        head = fh.read(MAX_HEADER_BYTES + 1)
    first = head.split(b"\n", 1)[0]
    if len(first) > MAX_HEADER_BYTES:
        raise ImportRefused(f"{path.name}: line 1 is longer than 1 MB; this is not a CSV file with a header row "
                            "(a file with one giant line, or binary data)", line=1)
    fields = max(first.count(sep) for sep in (b",", b";", b"\t", b"|")) + 1
    if fields > MAX_COLUMNS:
        raise ImportRefused(f"{path.name}: the header has {fields:,} fields; at most {MAX_COLUMNS:,} columns are "
                            "supported", line=1)


@dataclass
class _Utf8Error:
    line: int
    byte: int
    saw_utf8_multibyte: bool
    message: str

    def __str__(self) -> str:
        return self.message


def _check_utf8(path, fmt, size, max_ratio, progress, forced):
    """Validate UTF-8 streaming; return (True | _Utf8Error, blank line numbers, saw BOM)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    newlines = 0
    saw_multibyte = False
    blank: list[int] = []
    prev_last = b"\n"
    total = 0
    first = True
    saw_bom = False
    with _open_raw(path, fmt) as fh:
        while chunk := fh.read(CHUNK):
            if first:
                if b"\x00" in chunk[:65536] and not chunk.startswith((b"\xff\xfe", b"\xfe\xff")):
                    raise ImportRefused(f"{path.name}: this is binary data, not a text CSV file")
                if chunk.startswith((b"\xff\xfe", b"\xfe\xff")):
                    raise ImportRefused(f"{path.name}: the file is UTF-16; save it as UTF-8 CSV")
                saw_bom = chunk.startswith(codecs.BOM_UTF8)
                first = False
            total += len(chunk)
            if fmt == "csv.gz" and total > max(size, 1) * max_ratio and total > 256 * 1024 * 1024:
                raise ImportRefused(f"{path.name}: the archive expands more than {max_ratio}x; refused as unsafe")
            if len(blank) < 10_000:
                buf = prev_last + chunk
                for m in re.finditer(rb"\n(?=\r?\n)", buf):
                    blank.append(newlines + chunk.count(b"\n", 0, m.start()) + 1)
                    if len(blank) >= 10_000:
                        break
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad_at = exc.start
                line = newlines + chunk.count(b"\n", 0, max(bad_at, 0)) + 1
                before = chunk[: max(bad_at, 0)]
                # Valid multi-byte text before the bad byte, or well-formed UTF-8 sequences after it, mean
                # "corrupt UTF-8"; an 8-bit legacy file has neither.
                saw_multibyte = saw_multibyte or not before.isascii()
                saw_multibyte = saw_multibyte or bool(_UTF8_MULTIBYTE.search(chunk, bad_at + 1))
                byte = chunk[bad_at] if 0 <= bad_at < len(chunk) else 0
                return (
                    _Utf8Error(line, byte, saw_multibyte,
                               f"{path.name}: line {line}: byte 0x{byte:02x} is not valid UTF-8"),
                    tuple(blank),
                    saw_bom,
                )
            if not chunk.isascii():
                saw_multibyte = True
            newlines += chunk.count(b"\n")
            prev_last = chunk[-1:]
            if progress and size:
                progress(min(total / size, 1.0) * 0.2, "checking encoding")
    return True, tuple(blank), saw_bom


def _transcode(path: Path, fmt: str, enc: str) -> Path:
    codec = "cp1252" if enc == "windows-1252" else enc
    try:
        decoder = codecs.getincrementaldecoder(codec)("strict")
    except LookupError as exc:
        raise ImportRefused(f"{path.name}: unknown encoding {enc!r}") from exc
    tmp = tempfile.NamedTemporaryFile(prefix="crm_import_", suffix=".csv", delete=False)
    newlines = 0
    try:
        with _open_raw(path, fmt) as fh, tmp:
            while chunk := fh.read(CHUNK):
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    line = newlines + chunk.count(b"\n", 0, exc.start) + 1
                    raise ImportRefused(
                        f"{path.name}: line {line}: byte 0x{chunk[exc.start]:02x} is neither UTF-8 nor {enc}; "
                        "tell the import the file's encoding or re-export it as UTF-8",
                        line=line,
                    ) from exc
                newlines += chunk.count(b"\n")
                tmp.write(text.encode("utf-8"))
            tmp.write(decoder.decode(b"", final=True).encode("utf-8"))
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise
    return Path(tmp.name)


def has_data_rows(path: Path) -> bool:
    """True when a text file has at least one non-empty line after its header (cheap: reads the first 64 KB)."""
    head = _magic(path)
    opener = gzip.open if head.startswith(b"\x1f\x8b") else open
    with opener(path, "rb") as fh:
        lines = [ln for ln in fh.read(65536).splitlines() if ln.strip()]
    return len(lines) > 1


def dedupe_headers(headers: list[str]) -> list[str]:
    """Blank headers become ``unnamed_<position>``; repeats get ``_1``, ``_2`` (deterministic, nothing dropped).

    >>> dedupe_headers(["email", "", "email", "Email "])
    ['email', 'unnamed_2', 'email_1', 'Email_2']
    """
    out: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(headers, start=1):
        name = (raw or "").replace("\ufeff", "").strip()
        if not name:
            name = f"unnamed_{i}"
        base, n = name, 0
        while name.lower() in seen:
            n += 1
            name = f"{base}_{n}"
        seen.add(name.lower())
        out.append(name)
    return out


def parse_header(path: Path, delimiter: str, quote: str, skip: int = 0) -> list[str]:
    """The header row of a UTF-8 CSV file (after ``skip`` preamble lines), parsed like a CSV row."""
    opener = gzip.open if _magic(path).startswith(b"\x1f\x8b") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        for _ in range(skip):
            fh.readline()
        head = fh.read(1024 * 1024)
    reader = csv.reader(io.StringIO(head), delimiter=delimiter, quotechar=quote or '"')
    try:
        row = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise ImportRefused(f"{path.name}: no header row found") from exc
    return row


def xlsx_to_csv(path: Path, sheet: str | None = None) -> tuple[Path, str]:
    """Stream the first (or named) sheet of a workbook into a UTF-8 temp CSV; dates written as ISO text.

    Returns the temp file and the sheet name. Excel row numbers survive: the header is line 1.
    """
    import datetime as dt

    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken zips
        raise ImportRefused(f"{path.name}: cannot open the workbook ({exc.__class__.__name__}: {exc})") from exc
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise ImportRefused(f"{path.name}: no sheet named {sheet!r}; sheets are {', '.join(wb.sheetnames)}")
        ws = wb[sheet] if sheet else wb.worksheets[0]
        tmp = tempfile.NamedTemporaryFile(
            "w", prefix="crm_import_", suffix=".csv", delete=False, encoding="utf-8", newline=""
        )
        try:
            with tmp:
                writer = csv.writer(tmp)
                for row in ws.iter_rows(values_only=True):
                    cells = []
                    for v in row:
                        if v is None:
                            cells.append("")
                        elif isinstance(v, dt.datetime):
                            cells.append(v.isoformat(sep=" "))
                        elif isinstance(v, dt.date):
                            cells.append(v.isoformat())
                        elif isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
                            cells.append(str(int(v)))
                        else:
                            cells.append(str(v))
                    writer.writerow(cells)
        except BaseException:  # a sheet that fails half-way leaves no copy of its rows behind
            Path(tmp.name).unlink(missing_ok=True)
            raise
        return Path(tmp.name), ws.title
    finally:
        wb.close()
