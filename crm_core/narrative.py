"""One sentence that reads a result for a manager, and the number formats the app shows.

Pages call these instead of composing numbers themselves, so every reading is tested with the metric it reads.
"""

from __future__ import annotations

import math
from datetime import date

import pandas as pd

from crm_core.metrics import Overview

__all__ = ["day", "format_value", "format_delta", "overview_reading", "trend_reading"]


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def format_value(value, unit: str) -> str:
    """A KPI value as people read it: counts with thousands separators, money whole from 100 up (2 decimals
    below), fractions as percentages.

    >>> format_value(1234, "count"), format_value(1234.5, "currency"), format_value(0.2346, "pct")
    ('1,234', '1,234', '23.5%')
    >>> format_value(None, "pct")
    '–'
    """
    if _missing(value):
        return "–"
    if unit == "pct":
        return f"{value:.1%}"
    if unit == "currency":
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,.0f}"


def format_delta(delta, unit: str) -> str | None:
    """The change against the previous period, signed; percentage points for rates.

    >>> format_delta(0.031, "pct"), format_delta(-120, "count"), format_delta(None, "count")
    ('+3.1 pts', '-120', None)
    >>> format_delta(-0.0004, "pct"), format_delta(0.2, "count")
    ('0.0 pts', '0')
    """
    if _missing(delta):
        return None
    if unit == "pct":
        return "0.0 pts" if abs(delta) < 0.0005 else f"{delta * 100:+.1f} pts"
    if unit == "count" and abs(delta) < 0.5:
        return "0"
    if unit == "currency":
        return f"{delta:+,.2f}" if abs(delta) < 100 else f"{delta:+,.0f}"
    return f"{delta:+,.0f}"


def day(d: date) -> str:
    """A date as people write it: ``1 May 2026``."""
    return f"{d.day} {d:%b %Y}"


def _change(pct) -> str:
    if _missing(pct):
        return "with nothing to compare in the previous period"
    if abs(pct) < 0.005:
        return "flat on the previous period"
    return f"{'up' if pct > 0 else 'down'} {abs(pct):.0%} on the previous period"


def overview_reading(ov: Overview) -> str:
    """E.g. "In the 30 days to 30 Jun 2026, net revenue was 41,520, up 6% on the previous period, from 512 orders
    by 430 active customers; 38% of the previous period's active customers bought again."
    """
    k = {x.key: x for x in ov.kpis}
    days = (ov.period.end - ov.period.start).days + 1
    rev, orders, active = k["revenue"], k["orders"], k["active_customers"]
    if not orders.value and not rev.value:
        return f"No orders in the {days} days to {day(ov.period.end)}; widen the date range or import orders."
    text = (f"In the {days} days to {day(ov.period.end)}, net revenue was {format_value(rev.value, 'currency')}, "
            f"{_change(rev.delta_pct)}, from {format_value(orders.value, 'count')} orders by "
            f"{format_value(active.value, 'count')} active customers")
    ret = k["retention_rate"]
    if not _missing(ret.value):
        text += f"; {ret.value:.0%} of the previous period's active customers bought again"
    return text + "."


def trend_reading(trend: pd.DataFrame, column: str, label: str, unit: str = "count") -> str:
    """Where the monthly series peaked and how the last three months compare with the three before.

    The first and last months may be partial; the comparison uses full months only when there are enough.
    """
    if trend.empty or column not in trend or trend[column].fillna(0).eq(0).all():
        return f"No {label.lower()} in this range."
    s = trend.set_index("month")[column].astype("float64")
    peak_month = s.idxmax()
    text = f"{label} peaked in {pd.Timestamp(peak_month):%b %Y} at {format_value(s.max(), unit)}"
    if len(s) >= 7:
        full = s.iloc[1:-1] if len(s) >= 8 else s.iloc[:-1]
        last3, prev3 = full.iloc[-3:].mean(), full.iloc[-6:-3].mean()
        if prev3:
            change = last3 / prev3 - 1
            direction = "above" if change > 0 else "below"
            text += (f"; the last three full months averaged {format_value(last3, unit)}, "
                     f"{abs(change):.0%} {direction} the three months before")
    return text + "."
