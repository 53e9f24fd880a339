"""Safe exports: every CSV a person downloads has formula-like cells neutralised.

Spreadsheet programs execute cells starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
(CSV injection). Such text cells — headers included — get a leading ``'``; numbers are left alone, so a plain
negative amount such as ``-12.5`` stays a number.
"""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["neutralise_cell", "safe_frame", "frame_to_csv"]

_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralise_cell(value):
    """Prefix ``'`` to text that a spreadsheet would run as a formula; numbers and other values pass through.

    >>> neutralise_cell("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> neutralise_cell("-12.5"), neutralise_cell(-12.5), neutralise_cell("@SUM(A1)")
    ('-12.5', -12.5, "'@SUM(A1)")
    """
    if isinstance(value, str) and value.startswith(_DANGEROUS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with text cells and headers neutralised."""
    out = df.copy()
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(neutralise_cell)
    return out


def frame_to_csv(df: pd.DataFrame) -> str:
    """CSV text of ``df`` (UTF-8, no index) with formula cells neutralised.

    Rows end in CRLF (RFC 4180), which makes the writer quote every cell holding a CR or a LF: with ``\\n`` endings a
    bare CR stayed unquoted and split the row in two in a spreadsheet.

    >>> frame_to_csv(pd.DataFrame({"a": ["x\\ry", "ok"]}))
    'a\\r\\n"x\\ry"\\r\\nok\\r\\n'
    """
    return safe_frame(df).to_csv(index=False, lineterminator="\r\n")
