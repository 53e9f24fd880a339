from datetime import date

import pandas as pd

from crm_core import metrics, narrative
from crm_core.metrics import Kpi, Overview, Period


def _ov(**values):
    kpis = []
    for key in metrics.KPI_KEYS:
        value, previous = values.get(key, (None, None))
        delta = None if value is None or previous is None else value - previous
        pct = None if delta is None or not previous else delta / abs(previous)
        kpis.append(Kpi(key, metrics.KPI_LABELS[key], value, previous, delta, pct, metrics.KPI_UNITS[key], ""))
    return Overview(Period(date(2026, 6, 1), date(2026, 6, 30)), Period(date(2026, 5, 2), date(2026, 5, 31)), (),
                    tuple(kpis))


def test_overview_reading_numbers():
    ov = _ov(revenue=(10_600.0, 10_000.0), orders=(120, 110), active_customers=(95, 90), retention_rate=(0.384, 0.3))
    assert narrative.overview_reading(ov) == (
        "In the 30 days to 30 Jun 2026, net revenue was 10,600, up 6% on the previous period, from 120 orders by "
        "95 active customers; 38% of the previous period's active customers bought again.")


def test_overview_reading_no_orders():
    assert narrative.overview_reading(_ov(revenue=(0.0, 0.0), orders=(0, 0))).startswith(
        "No orders in the 30 days to 30 Jun 2026")


def test_trend_reading_compares_full_months():
    months = pd.date_range("2025-01-01", periods=9, freq="MS")
    # first and last months are partial and ignored: full months are Feb..Aug = 10,10,10,10,20,20,20
    trend = pd.DataFrame({"month": months, "orders": [1, 10, 10, 10, 10, 20, 20, 20, 3]})
    assert narrative.trend_reading(trend, "orders", "Orders") == (
        "Orders peaked in Jun 2025 at 20; the last three full months averaged 20, 100% above the three months before.")


def test_trend_reading_empty():
    assert narrative.trend_reading(pd.DataFrame({"month": [], "orders": []}), "orders", "Orders") == \
        "No orders in this range."
