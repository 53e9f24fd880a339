"""One way to show a result table: readable labels, help on each header, percentages as percentages."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from crm_core.exports import frame_to_csv
from crm_core.privacy import mask_frame
from ui import auth
from ui import frame as app_frame

_PCT = ("share", "rate", "probability", "_pct")
_MONEY = ("revenue", "profit", "cost", "margin", "monetary", "value", "spend", "clv", "amount", "aov")


def column_config(frame: pd.DataFrame, labels: Mapping[str, str] | None = None,
                  help: Mapping[str, str] | None = None) -> dict:
    """A ``st.dataframe`` column_config for ``frame``: label and help per column; fractions (names with share,
    rate or probability) shown as percentages, money with thousands separators."""
    labels, help = labels or {}, help or {}
    config = {}
    for name in frame.columns:
        label, tip = labels.get(name, name), help.get(name)
        kind = frame[name].dtype.kind
        if kind == "f" and any(k in name for k in _PCT):
            config[name] = st.column_config.NumberColumn(label, help=tip, format="percent")
        elif kind in "fi" and any(k in name for k in _MONEY) and not name.endswith("_id"):
            config[name] = st.column_config.NumberColumn(label, help=tip, format="localized")
        else:
            config[name] = st.column_config.Column(label, help=tip)
    return config


def show(frame: pd.DataFrame, labels: Mapping[str, str] | None = None, help: Mapping[str, str] | None = None,
         rows: int | None = None) -> None:
    """``st.dataframe`` of the first ``rows`` rows (all when None) with :func:`column_config`; personal data masked
    in presentation mode."""
    shown = visible(frame if rows is None else frame.head(rows))
    st.dataframe(shown, hide_index=True, column_config=column_config(frame, labels, help))


def visible(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as it may be shown or exported now: masked in presentation mode, unchanged otherwise."""
    return mask_frame(frame) if app_frame.masking() else frame


def download(label: str, frame: pd.DataFrame, file_name: str, **kwargs) -> None:
    """A CSV download of ``frame``: formula-like cells neutralised, personal data masked in presentation mode;
    nothing for a role that may not export (the sidebar says so). Each download is logged in the audit log."""
    if not auth.allowed("export"):
        return
    st.download_button(label, frame_to_csv(visible(frame)), file_name, "text/csv", on_click=auth.record_export,
                       args=(file_name,), **kwargs)
