import pandas as pd
import pytest

from crm_core.exports import frame_to_csv, neutralise_cell, safe_frame


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("=HYPERLINK(\"http://evil\",\"x\")", "'=HYPERLINK(\"http://evil\",\"x\")"), ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
     ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"), ("-2+3", "'-2+3"), ("\tx", "'\tx"), ("\rx", "'\rx"),
     ("-12.5", "-12.5"), ("+44 7700 900123", "'+44 7700 900123"), ("plain", "plain"), (-3, -3), (None, None)],
    ids=["equals", "at", "plus", "minus-formula", "tab", "cr", "negative-number-text", "phone", "plain", "int",
         "none"],
)
def test_neutralise_cell(cell, expected):
    assert neutralise_cell(cell) == expected


def test_frame_headers_and_cells_escaped_numbers_kept():
    df = pd.DataFrame({"=evil": ["=1+1", "ok"], "amount": [-5.0, 2.0]})
    out = safe_frame(df)
    assert list(out.columns) == ["'=evil", "amount"]
    assert list(out["'=evil"]) == ["'=1+1", "ok"]
    assert list(out["amount"]) == [-5.0, 2.0]
    assert frame_to_csv(df).splitlines() == ["'=evil,amount", "'=1+1,-5.0", "ok,2.0"]
    assert df.columns[0] == "=evil"  # the original is not modified
