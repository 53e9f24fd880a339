"""Predictive customer lifetime value: BG/NBD for repeat purchases and P(alive), Gamma-Gamma for spend, discounted
CLV over a horizon, and a calibration/holdout check.

Data in (the buy-till-you-die conventions of ``lifetimes``), one row per customer with a purchase on or before the
observation end, built by one Ibis expression that runs in the engine (:func:`summary_expr`):

- the observation period closes at the end of day ``as_of`` (or ``calibration_end``); an order belongs to the
  calendar day of ``ordered_at``. A *return* is an order with ``is_return`` true or a negative ``amount``; every
  other order is a *purchase* (a zero or missing amount is a purchase worth 0).
- purchases on the same day are merged into one transaction: ``frequency`` = distinct purchase days − 1 (the
  repeat transactions), ``recency`` = days from the first to the last purchase day, ``T`` = days from the first
  purchase day to the observation end, both divided by the length of the time unit (``TIME_UNITS``: a week is 7
  days, so 213 days are 30.43 weeks).
- ``monetary_value`` = the mean spend of the repeat purchase days (the first day is left out, as in Fader &
  Hardie's spend model), net of returns at the population's rate: × (1 − returned value / purchased value of all
  identified customers' orders in the period; a return's value is ``|amount|``). Returns are not linked to the
  purchase they undo, and one customer's few returns say little about their own rate: netting each customer by
  their own share (a full return of a first order would wipe out half a two-order customer's repeat spend) made
  the spend model misfit (shape p 4.7 instead of the planted 6 on the sample data, 6.1 with the population rate).
  Customers without a repeat purchase have ``monetary_value`` 0.
- with a ``calibration_end``, the row describes the calibration period (to the end of that day) and adds
  ``frequency_holdout`` (distinct purchase days after it, up to ``as_of``) and ``duration_holdout``.

Models, fitted by maximum likelihood with numpy/scipy (``lifetimes`` is unmaintained; the tests cross-check it):

- :class:`BetaGeoModel` (Fader, Hardie & Lee 2005): while alive a customer buys at rate λ ~ Gamma(r, α) per time
  unit and drops out after each purchase with probability p ~ Beta(a, b). The likelihood is summed per distinct
  ``frequency`` and per distinct ``T`` wherever its terms allow (so customers without a repeat purchase cost
  nothing per row); the repeat buyers' rows run in cache-sized blocks on two threads. Newton steps in
  log-parameters (analytic gradient and Hessian, scipy's ``trust-exact``); with many rows, started from the fit on
  every tenth row, after which plain Newton steps need two or three evaluations on all rows (a million customers
  fit in about a third of a second). Standard errors from the inverse Hessian at the optimum, mapped
  to the parameters by the delta method (the same numbers as lifetimes' ``se(coef)``).
- :class:`GammaGammaModel` (Fader, Hardie & Lee 2005, "RFM and CLV"): spend per transaction ~ Gamma(p, ν) with
  ν ~ Gamma(q, γ), fitted on the repeat buyers with a positive ``monetary_value``; the expected spend of a customer
  is the weighted mean of their own average and the population mean p·γ / (q − 1).

CLV = expected spend × Σ_k (expected purchases in month k) / (1 + d)^k over ``horizon_months`` monthly steps, as
``lifetimes``' ``customer_lifetime_value`` (a month is ``PERIODS_PER_MONTH`` time units: 30 days or 4.345 weeks; d is
the discount rate per month). Customers with no repeat purchase or a spend ≤ 0 get the population mean spend; the
CLV is clipped at 0 and is never NaN. :func:`clv` runs it all and says in plain words when the data are too thin
(``sufficiency_warnings``); with many customers it fits the spend model beside the BG/NBD fit, whose steps mostly
run on one thread (a million customers take about 2 s on two cores: ``bench/README.md``).
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import NamedTuple

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy import linalg, optimize, special

__all__ = [
    "CALIBRATION_HELP",
    "COLUMN_HELP",
    "PARAMETER_HELP",
    "PERIODS_PER_MONTH",
    "TIME_UNITS",
    "UNIT_NAMES",
    "BetaGeoModel",
    "CalibrationResult",
    "ClvResult",
    "GammaGammaModel",
    "calibration_holdout",
    "clv",
    "collapse",
    "customer_lifetime_value",
    "return_rate",
    "return_rate_expr",
    "summary",
    "summary_expr",
    "sufficiency_warnings",
]

# Length of a time unit in days, and time units per month in the CLV's monthly steps (lifetimes' factors).
TIME_UNITS: dict[str, float] = {"D": 1.0, "W": 7.0, "M": 30.0}
PERIODS_PER_MONTH: dict[str, float] = {"D": 30.0, "W": 4.345, "M": 1.0}
UNIT_NAMES: dict[str, str] = {"D": "days", "W": "weeks", "M": "months"}

# Data sufficiency: below these the results come with a plain-language warning.
MIN_HISTORY_DAYS = 182  # about 26 weeks of purchase history
MIN_REPEAT_BUYERS = 100
MIN_REPEAT_SHARE = 0.05
MAX_SPEND_FREQUENCY_CORRELATION = 0.3

COLUMN_HELP: dict[str, str] = {
    "customer_id": "The customer.",
    "frequency": "Repeat purchases: days with a purchase, minus the first one (several orders on one day count once).",
    "recency": "Time from the first to the last purchase day, in the chosen time unit (0 without a repeat purchase).",
    "T": "Customer age: time from the first purchase day to the end of the as-of day, in the chosen time unit.",
    "monetary_value": ("Average spend per repeat purchase day (several orders on one day add up), net of returns at "
                       "the share of all purchase value that was returned; 0 without a repeat purchase."),
    "p_alive": ("Probability that the customer is still active (has not silently stopped buying), from the BG/NBD "
                "model: high for a customer who bought recently compared with their usual pace."),
    "expected_purchases": "Purchases the customer is expected to make over the horizon (BG/NBD).",
    "expected_spend": ("Expected spend per future purchase (Gamma-Gamma): the customer's own average pulled towards "
                       "the population average, the more so the fewer purchases they have made; customers without "
                       "a repeat purchase or with no positive spend get the population average."),
    "clv": ("Customer lifetime value over the horizon: expected spend × expected purchases in each month, "
            "discounted month by month at the discount rate; never negative."),
}

CALIBRATION_HELP: dict[str, str] = {
    "calibration_purchases": "Repeat purchases in the calibration period (the last group is that many or more).",
    "customers": "Customers in the group.",
    "mean_actual": "Average repeat purchases the group actually made in the holdout period.",
    "mean_predicted": "Average repeat purchases the model, fitted on the calibration period only, predicted.",
    "total_actual": "Repeat purchases the group actually made in the holdout period.",
    "total_predicted": "Repeat purchases the model predicted for the group in the holdout period.",
}

PARAMETER_HELP: dict[str, str] = {
    "r": "BG/NBD: shape of the purchase-rate distribution across customers (small = very uneven rates).",
    "alpha": "BG/NBD: scale of the purchase-rate distribution; the average rate is r / alpha per time unit.",
    "a": "BG/NBD: with b, the distribution of the chance to stop buying after a purchase (mean a / (a + b)).",
    "b": "BG/NBD: with a, the distribution of the chance to stop buying after a purchase.",
    "p": "Gamma-Gamma: shape of spend per purchase around a customer's own average (large = steady spend).",
    "q": "Gamma-Gamma: shape of the spread of customers' average spend (population mean p·gamma / (q − 1)).",
    "gamma": "Gamma-Gamma: scale of the spread of customers' average spend, in money.",
}

_LOG_BOUND = 25.0  # log-parameters are kept within ±25 (e^25 ≈ 7e10): beyond that the data say nothing useful


# --- the summary (in the engine) --------------------------------------------------------------------------------


def _as_date(value, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{name} must be a date like 2024-06-30, got {value!r}")


def _unit_days(time_unit: str) -> float:
    if time_unit not in TIME_UNITS:
        raise ValueError(f"Unknown time unit {time_unit!r}; choose one of {sorted(TIME_UNITS)} (days, weeks, months)")
    return TIME_UNITS[time_unit]


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), dtime())


def _orders_window(orders: ir.Table, as_of: date) -> tuple[ir.Table, ir.BooleanValue]:
    """Identified customers' orders up to the end of ``as_of``, and the expression that marks returns in it."""
    known = orders.filter(orders.customer_id.notnull() & (orders.ordered_at < _end_of(as_of)))
    is_return = known.amount.fill_null(0.0) < 0
    if "is_return" in known.columns:
        is_return = is_return | known.is_return.fill_null(False)
    return known, is_return


def return_rate_expr(orders: ir.Table, as_of: date) -> ir.Table:
    """One row: return_rate = value of returns (|amount|) / value of purchases of identified customers' orders up to
    the end of ``as_of``, clipped to 0..1 (0 without purchases)."""
    known, is_return = _orders_window(orders, _as_date(as_of, "as_of"))
    value = known.amount.cast("float64").fill_null(0.0).abs()
    t = known.aggregate(returned=value.sum(where=is_return), purchased=value.sum(where=~is_return))
    returned, purchased = t.returned.fill_null(0.0), t.purchased.fill_null(0.0)
    rate = ibis.ifelse(purchased > 0, returned / ibis.ifelse(purchased > 0, purchased, 1.0), 0.0)
    return t.select(return_rate=ibis.least(1.0, ibis.greatest(0.0, rate)))


def summary_expr(orders: ir.Table, as_of: date, time_unit: str = "W", calibration_end: date | None = None,
                 *, with_return_rate: bool = False) -> ir.Table:
    """One row per customer with a purchase on or before the observation end: customer_id, frequency, recency, T,
    monetary_value [, frequency_holdout, duration_holdout] [, return_rate].

    The observation end is ``calibration_end`` when given (then the holdout columns count purchase days after it
    up to ``as_of``), else ``as_of``; both close at the end of that day. ``with_return_rate`` adds the population's
    return rate used for ``monetary_value`` (the same on every row). See the module docstring for definitions.
    """
    unit = _unit_days(time_unit)
    as_of = _as_date(as_of, "as_of")
    end = as_of
    if calibration_end is not None:
        end = _as_date(calibration_end, "calibration_end")
        if end >= as_of:
            raise ValueError(f"calibration_end {end} must be before as_of {as_of}: the holdout period follows it")
    known, is_return = _orders_window(orders, as_of)
    buys = known.filter(~is_return)
    buys = buys.select(customer_id=buys.customer_id, day=buys.ordered_at.date(),
                       spend=buys.amount.cast("float64").fill_null(0.0))
    # several orders on one day are one transaction: number each customer's purchase days 0, 1, 2, … in day order
    # (a dense rank: orders on one day share it), so the distinct days are the highest number + 1 and the repeat
    # purchases are those numbered from 1. One sort per customer and one window function; it measured faster than LAG
    # plus FIRST_VALUE (same sort, two functions) and than a group-by on (customer, day) first (bench/README.md).
    buys = buys.mutate(day_no=ibis.dense_rank().over(group_by="customer_id", order_by="day"))
    end_day = ibis.literal(end, type="date")
    cal = None if calibration_end is None else buys.day <= end_day
    both = (lambda c: c) if cal is None else (lambda c: c & cal)
    aggs = dict(
        first_day=buys.day.min(where=cal),
        last_day=buys.day.max(where=cal),
        n_days=buys.day_no.max(where=cal) + 1,
        repeat_spend=buys.spend.sum(where=both(buys.day_no > 0)),  # all but the first day's
    )
    if cal is not None:  # the holdout days are numbered after the calibration ones
        aggs["all_days"] = buys.day_no.max() + 1
    per = buys.group_by("customer_id").aggregate(**aggs)
    if cal is not None:  # customers whose first purchase is in the holdout period have no calibration days
        per = per.filter(per.n_days.notnull())
    # returns reduce every customer's spend by the population's return rate (see the module docstring)
    per = per.cross_join(return_rate_expr(orders, end))
    frequency = (per.n_days - 1).cast("int64")
    repeat_spend = per.repeat_spend / ibis.greatest(frequency, 1).cast("float64")
    monetary = ibis.ifelse(frequency > 0, repeat_spend * (1.0 - per.return_rate), 0.0)
    cols = dict(
        customer_id=per.customer_id,
        frequency=frequency,
        recency=per.last_day.delta(per.first_day, unit="day").cast("float64") / unit,
        T=end_day.delta(per.first_day, unit="day").cast("float64") / unit,
        monetary_value=ibis.greatest(monetary, 0.0),
    )
    if cal is not None:
        cols["frequency_holdout"] = (per.all_days - per.n_days).cast("int64")
        cols["duration_holdout"] = ibis.literal((as_of - end).days / unit, type="float64")
    if with_return_rate:
        cols["return_rate"] = per.return_rate
    return per.select(**cols)


def summary(backend, as_of: date, time_unit: str = "W", calibration_end: date | None = None, *,
            with_return_rate: bool = False) -> pd.DataFrame:
    """:func:`summary_expr` on ``backend``'s orders, one row per customer, ordered by customer_id."""
    expr = summary_expr(backend.table("orders"), as_of, time_unit, calibration_end, with_return_rate=with_return_rate)
    # through Arrow: a million rows convert in milliseconds (ibis's own pandas conversion takes a few tenths)
    return backend.to_pyarrow(expr.order_by("customer_id")).to_pandas()


def return_rate(backend, as_of: date) -> float:
    """:func:`return_rate_expr` on ``backend``'s orders: the share of purchase value returned up to ``as_of``."""
    return float(backend.execute(return_rate_expr(backend.table("orders"), as_of))["return_rate"].iloc[0])


# --- helpers ------------------------------------------------------------------------------------------------------


def _column(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has missing or infinite values; every customer needs a number")
    return arr


def _frequency(values) -> np.ndarray:
    """Repeat purchases as int64: whole numbers of at least 0 (an integer array needs no rounding check)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        arr = arr.ravel()
        if len(arr) and arr.min() < 0:
            raise ValueError("frequency must be whole numbers of at least 0 (repeat purchases)")
        return arr.astype(np.int64, copy=False)
    x = _column(arr, "frequency")
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be whole numbers of at least 0 (repeat purchases)")
    return x.astype(np.int64)


def _weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = _column(weights, "weights")
    if len(w) != n:
        raise ValueError(f"weights has {len(w)} values for {n} customers")
    if np.any(w < 0):
        raise ValueError("weights must not be negative (they count customers)")
    return w


def _combine_codes(*coded: tuple[np.ndarray, int]) -> tuple[np.ndarray, np.ndarray]:
    """(codes, a representative row of each code) of the rows of several columns given as (codes, number of codes).

    The combined key is looked up in a dense table when its range is small (no hashing), else hashed; nothing is
    sorted."""
    codes, size = coded[0]
    codes = codes.astype(np.int64)
    for more, n_more in coded[1:]:
        if size * n_more <= 8 * len(codes) + (1 << 20):
            key = codes * n_more + more
            present = np.bincount(key, minlength=size * n_more) > 0
            lookup = np.cumsum(present) - 1
            codes, size = lookup[key], int(present.sum())
        else:
            codes, uniques = pd.factorize(codes * n_more + more)
            size = len(uniques)
    rep = np.zeros(size, dtype=np.int64)
    rep[codes] = np.arange(len(codes))  # rows sharing a code are identical: any of them represents it
    return codes, rep


def _factorize(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, a representative row of each distinct combination) of the rows of ``columns``.

    With several columns, one of non-negative integers in a small range (such as frequencies) is its own code."""
    coded = []
    for col in columns:
        if len(columns) > 1 and col.dtype.kind in "iu" and len(col) and col.min() >= 0 and col.max() < 1 << 16:
            coded.append((col, int(col.max()) + 1))  # codes nobody has vanish in the combination
            continue
        c, u = pd.factorize(col)
        coded.append((c, len(u)))
    return _combine_codes(*coded)


def collapse(frequency, recency, T, weights=None) -> pd.DataFrame:
    """One row per distinct (frequency, recency, T) with ``weights`` = the number of customers (or summed weights)
    having it, in order of first appearance.

    >>> collapse([0, 0, 2, 2], [0, 0, 3.5, 3.5], [5, 5, 9, 9]).to_dict("list")
    {'frequency': [0, 2], 'recency': [0.0, 3.5], 'T': [5.0, 9.0], 'weights': [2.0, 2.0]}
    """
    x, tx, t = _column(frequency, "frequency"), _column(recency, "recency"), _column(T, "T")
    w = _weights(weights, len(x))
    codes, first = _factorize(x, tx, t)
    return pd.DataFrame({"frequency": x[first].astype(np.int64), "recency": tx[first], "T": t[first],
                         "weights": np.bincount(codes, weights=w, minlength=len(first))})


def _minimize(fgh, theta0: np.ndarray, gtol: float = 1e-9, *, near: bool = False) -> tuple[np.ndarray, bool, tuple]:
    """Minimise a function of log-parameters given as ``fgh(theta) -> (f, gradient, Hessian)`` by trust-region
    Newton steps (scipy's ``trust-exact``); the three are computed together once per point. Returns the optimum,
    whether it converged, and (f, gradient, Hessian) there.

    ``near``: ``theta0`` is next to the optimum (the optimum of a subsample), so plain Newton steps are tried first
    (:func:`_newton`); scipy takes over from the start if one of them fails."""
    if near:
        out = _newton(fgh, theta0, gtol)
        if out is not None:
            return out
    cache: dict = {}

    def get(theta):
        key = theta.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = fgh(theta)
        return cache[key]

    res = optimize.minimize(lambda t: get(t)[0], theta0, jac=lambda t: get(t)[1], hess=lambda t: get(t)[2],
                            method="trust-exact", options={"gtol": gtol, "maxiter": 200})
    theta = res.x
    at = get(theta)
    converged = bool(res.success or np.max(np.abs(at[1])) < 1e-6)
    return theta, converged, at


_LAST_STEP = 1e-6


def _newton(fgh, theta: np.ndarray, gtol: float, max_steps: int = 8) -> tuple[np.ndarray, bool, tuple] | None:
    """Plain Newton steps from next to the optimum, as :func:`_minimize` returns them, or None when the Hessian is
    not positive definite or a step does not lower f.

    Newton steps converge quadratically here: a step that changes no log-parameter by more than ``_LAST_STEP``
    (1e-6) leaves an error of order 1e-12, so it is taken without evaluating f, gradient and Hessian once more (the
    ones returned are those of the point it starts from; the step changes them by under 1e-6 relative). From a
    subsample's optimum that is two or three evaluations on all rows instead of five with scipy's trust region,
    which checks every step."""
    at = fgh(theta)
    for _ in range(max_steps):
        f, g, h = at
        if np.max(np.abs(g)) < gtol:
            return theta, True, at
        try:
            step = -linalg.cho_solve(linalg.cho_factor(h), g)
        except linalg.LinAlgError:
            return None
        if np.max(np.abs(step)) < _LAST_STEP:
            return theta + step, True, at
        nxt = fgh(theta + step)
        if not nxt[0] <= f + 1e-12 * abs(f):
            return None
        theta, at = theta + step, nxt
    return None


_SUBSAMPLE_ROWS = 200_000
_SUBSAMPLE_STEP = 10


def _subsample(values: np.ndarray) -> np.ndarray:
    """Every tenth row (a view, nothing is copied). Fitted first (weights ×10), its optimum starts the full fit,
    which then needs two or three Newton steps instead of seven or eight; the result is the full data's optimum
    either way."""
    return values[::_SUBSAMPLE_STEP]


class _Times(NamedTuple):
    """Customers' T and recency as codes into tables of their distinct values, so that ln(α+T) and the like are
    computed once per value."""

    t_codes: np.ndarray
    t_values: np.ndarray
    tx_codes: np.ndarray
    tx_values: np.ndarray

    @classmethod
    def of(cls, recency: np.ndarray, T: np.ndarray) -> _Times:
        """Codes from hashing the values."""
        t_codes, t_values = pd.factorize(T)
        tx_codes, tx_values = pd.factorize(recency)
        return cls(t_codes, t_values, tx_codes, tx_values)

    @classmethod
    def of_days(cls, recency: np.ndarray, T: np.ndarray, unit_days: float) -> _Times:
        """Codes of times that are whole days in a unit ``unit_days`` long (as :func:`summary` gives them): the
        number of days is the code and the table holds every day up to the last, so nothing is hashed. Falls back
        to :meth:`of` when the values are not exactly days / unit."""
        coded = []
        for values in (T, recency):
            days = values * unit_days
            np.rint(days, out=days)
            # whole days from 0 to a million (2,700 years: the table stays small) that give back the values exactly
            if not (len(days) and 0 <= days.min() and days.max() < 1 << 20
                    and np.array_equal(days / unit_days, values)):
                return cls.of(recency, T)
            coded.append((days.astype(np.int32), np.arange(int(days.max()) + 1) / unit_days))
        return cls(coded[0][0], coded[0][1], coded[1][0], coded[1][1])

    def every(self, step: int) -> _Times:
        """Every ``step``-th customer's codes, with the same tables."""
        return _Times(self.t_codes[::step], self.t_values, self.tx_codes[::step], self.tx_values)


def _delta_method(params: np.ndarray, hessian_log: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Covariance and standard errors of ``params`` from the Hessian of the negative log-likelihood in
    log-parameters: cov(θ) = D H⁻¹ D with D = diag(θ) (the delta method). NaN where the Hessian is singular."""
    try:
        inv = np.linalg.inv(hessian_log)
    except np.linalg.LinAlgError:
        inv = np.full_like(hessian_log, np.nan)
    cov = params[:, None] * inv * params[None, :]
    diag = np.diag(cov)
    se = np.where(diag >= 0, np.sqrt(np.abs(diag)), np.nan)
    return cov, se


def _params_frame(model, names: Sequence[str], label: str) -> pd.DataFrame:
    est = np.array([model.params_[n] for n in names])
    se = np.array([model.standard_errors_[n] for n in names])
    return pd.DataFrame({"model": label, "parameter": list(names), "estimate": est, "standard_error": se,
                         "lower_95": est - 1.96 * se, "upper_95": est + 1.96 * se})


def _check_fitted(model, attr: str = "params_") -> None:
    if not hasattr(model, attr):
        raise ValueError(f"This {type(model).__name__} is not fitted yet: call fit(...) first")


# --- BG/NBD -------------------------------------------------------------------------------------------------------


# Rows per block in the per-row sums: a block's temporaries (64 KiB each) stay in the CPU's cache and below glibc's
# 128 KiB threshold for memory it maps and unmaps per allocation; the same sums over whole arrays of a million rows
# took 1.5-2 times as long (longer still on a busy machine).
_BLOCK = 8192


class _RepeatRows:
    """The repeat buyers' rows of BG/NBD data: x, weight and codes into the distinct T and t_x values."""

    def __init__(self, x: np.ndarray, w: np.ndarray, t_codes: np.ndarray, tx_codes: np.ndarray):
        self.x = x
        self.xf = x.astype(float)
        self.w = w
        self.t_codes = t_codes
        self.tx_codes = tx_codes

    def sums(self, r: float, a_log: float, lb: np.ndarray, ib: np.ndarray, tables: tuple, order: int) -> np.ndarray:
        """Σ w·softplus(d) and, for ``order`` ≥ 1 / 2, the weighted sums the gradient / Hessian need (``_SUMS``).

        ``lb`` / ``ib``: ln(b+x−1) and 1/(b+x−1) per x. Sums over the rows of each x are taken with 1/(b+x−1) looked
        up per row rather than with ``np.bincount``, which holds Python's lock and kept the two threads waiting."""
        lt, lx, it, ix = tables
        it2, ix2 = (it * it, ix * ix) if order == 2 else (None, None)
        acc = np.zeros(len(_SUMS[order]))
        for i in range(0, len(self.x), _BLOCK):
            x, w = self.x[i:i + _BLOCK], self.w[i:i + _BLOCK]
            tc, txc = self.t_codes[i:i + _BLOCK], self.tx_codes[i:i + _BLOCK]
            dlog = lt[tc]
            dlog -= lx[txc]  # ln(α+T) − ln(α+t_x)
            rx = self.xf[i:i + _BLOCK] + r
            d = rx * dlog
            d += a_log
            d -= lb[x]  # ln a − ln(b+x−1) + (r+x)·dlog
            e = np.abs(d)
            np.negative(e, out=e)
            np.exp(e, out=e)  # e^−|d|: softplus and σ from one exponential
            soft = np.log1p(e)
            soft += np.maximum(d, 0.0)  # softplus(d) = max(d, 0) + ln(1 + e^−|d|), as np.logaddexp(0, d)
            acc[0] += w @ soft
            if order == 0:
                continue
            sig = np.where(d >= 0.0, 1.0, e)
            e += 1.0
            sig /= e  # σ(d) = 1 / (1 + e^−d) = e^d / (1 + e^d)
            ws = w * sig
            di = it[tc]
            di -= ix[txc]  # 1/(α+T) − 1/(α+t_x)
            d_al = rx * di  # ∂d/∂α
            ibx = ib[x]
            acc[1:5] += (ws @ dlog, ws @ d_al, ws.sum(), ws @ ibx)
            if order == 1:
                continue
            wk = ws - ws * sig  # w·σ(1−σ)
            wkr = wk * dlog
            wka = wk * d_al
            d2a = ix2[txc]
            d2a -= it2[tc]
            d2a *= rx  # ∂²d/∂α² = (r+x)(1/(α+t_x)² − 1/(α+T)²)
            ibx2 = ibx * ibx
            acc[5:] += (wkr @ dlog, wkr @ d_al, ws @ di, wka @ d_al, ws @ d2a, ws @ ibx2, wk.sum(), wk @ ibx,
                        wk @ ibx2, wkr.sum(), wkr @ ibx, wka.sum(), wka @ ibx)
        return acc


# the row sums of :meth:`_RepeatRows.sums` by order, in their order (ws = w·σ(d), wk = w·σ(1−σ), ib = 1/(b+x−1))
_SUMS = {0: ("softplus",), 1: ("softplus", "ws_dlog", "ws_dal", "ws", "ws_ib")}
_SUMS[2] = _SUMS[1] + ("wk_dlog2", "wk_dlog_dal", "ws_di", "wk_dal2", "ws_d2a", "ws_ib2", "wk", "wk_ib", "wk_ib2",
                       "wkr", "wkr_ib", "wka", "wka_ib")


class _BgNbdLikelihood:
    """The BG/NBD log-likelihood, summed per distinct x and per distinct T wherever the terms allow it.

    Per customer (Fader, Hardie & Lee 2005, eq. 6), with A = lnΓ(r+x) − lnΓ(r) + r ln α + ln B(a, b+x) − ln B(a, b):
    LL = A − (r+x) ln(α+T) + [x > 0] softplus(d),  d = ln a − ln(b+x−1) + (r+x) (ln(α+T) − ln(α+t_x)).
    Only the softplus term needs the rows of repeat buyers (split in two halves evaluated on two threads when there
    are many); the rest are sums over the distinct x and the distinct T. T and t_x come as codes into tables of their
    distinct values (:class:`_Times`), so ln(α+T) and ln(α+t_x) are computed once per distinct value.
    """

    _PARALLEL_ROWS = 50_000

    def __init__(self, x: np.ndarray, w: np.ndarray, times: _Times, scale: float = 1.0):
        """``x`` frequencies (int), ``w`` weights, ``times`` their T and recency; time is multiplied by ``scale``."""
        t_codes, tx_codes = times.t_codes, times.tx_codes
        self.t_values, self.tx_values = times.t_values * scale, times.tx_values * scale
        self.n = float(w.sum())
        xmax = int(x.max())
        self.xs = np.arange(xmax + 1, dtype=float)
        self.wx = np.bincount(x, weights=w, minlength=xmax + 1)
        wx = w * x
        self.wt = np.bincount(t_codes, weights=w, minlength=len(self.t_values))
        self.wxt = np.bincount(t_codes, weights=wx, minlength=len(self.t_values))
        self.sum_wx = float(wx.sum())
        rep = x > 0
        self.n_repeat_rows = int(np.count_nonzero(rep))
        # one row per repeat buyer: collapsing identical (x, t_x, T) rows (a quarter of them on a million generated
        # customers) cost more hashing than it saved in the two or three evaluations on all rows
        self.n_rows = self.n_repeat_rows + int(np.count_nonzero(np.bincount(t_codes[~rep])))
        parts = 2 if self.n_repeat_rows >= self._PARALLEL_ROWS else 1
        bounds = np.linspace(0, self.n_repeat_rows, parts + 1).astype(int)
        xr, wr = x[rep].astype(np.int32, copy=False), w[rep]
        tcr, txcr = t_codes[rep].astype(np.int32, copy=False), tx_codes[rep].astype(np.int32, copy=False)
        self.chunks = [_RepeatRows(xr[i:j], wr[i:j], tcr[i:j], txcr[i:j]) for i, j in zip(bounds, bounds[1:])]

    def _repeat_sums(self, r, al, a, b, order) -> dict[str, float]:
        xs = self.xs
        lb = np.zeros(len(xs))
        lb[1:] = np.log(b + xs[1:] - 1.0)
        ib = np.zeros(len(xs))
        ib[1:] = 1.0 / (b + xs[1:] - 1.0)
        tables = (np.log(al + self.t_values), np.log(al + self.tx_values), 1.0 / (al + self.t_values),
                  1.0 / (al + self.tx_values))
        args = (r, math.log(a), lb, ib, tables, order)
        if len(self.chunks) == 1:
            sums = self.chunks[0].sums(*args)
        else:
            sums = sum(_pool().map(lambda c: c.sums(*args), self.chunks))
        return dict(zip(_SUMS[order], sums.tolist()))

    def __call__(self, theta: np.ndarray, order: int = 2):
        """(LL, gradient, Hessian) in the natural parameters (r, α, a, b) at log-parameters ``theta``."""
        r, al, a, b = np.exp(np.clip(theta, -_LOG_BOUND, _LOG_BOUND))
        xs, wx, n = self.xs, self.wx, self.n
        gl, dg, tg = special.gammaln, special.digamma, special.polygamma
        s = self._repeat_sums(r, al, a, b, order)
        lt = np.log(al + self.t_values)
        c_t = r * self.wt + self.wxt
        ll = (float(wx @ (gl(r + xs) - gl(r) + gl(a + b) + gl(b + xs) - gl(b) - gl(a + b + xs)))
              + n * r * math.log(al) - float(c_t @ lt) + s["softplus"])
        if order == 0:
            return ll
        it = 1.0 / (al + self.t_values)
        g = np.array([
            float(wx @ (dg(r + xs) - dg(r))) + n * math.log(al) - float(self.wt @ lt) + s["ws_dlog"],
            n * r / al - float(c_t @ it) + s["ws_dal"],
            float(wx @ (dg(a + b) - dg(a + b + xs))) + s["ws"] / a,
            float(wx @ (dg(a + b) + dg(b + xs) - dg(b) - dg(a + b + xs))) - s["ws_ib"],
        ])
        if order == 1:
            return ll, g
        h = np.zeros((4, 4))
        h[0, 0] = float(wx @ (tg(1, r + xs) - tg(1, r))) + s["wk_dlog2"]
        h[0, 1] = n / al - float(self.wt @ it) + s["wk_dlog_dal"] + s["ws_di"]
        h[1, 1] = -n * r / al**2 + float(c_t @ (it * it)) + s["wk_dal2"] + s["ws_d2a"]
        h[0, 2] = s["wkr"] / a
        h[0, 3] = -s["wkr_ib"]
        h[1, 2] = s["wka"] / a
        h[1, 3] = -s["wka_ib"]
        t_ab = tg(1, a + b) - tg(1, a + b + xs)
        h[2, 2] = float(wx @ t_ab) + s["wk"] / a**2 - s["ws"] / a**2
        h[2, 3] = float(wx @ t_ab) - s["wk_ib"] / a
        h[3, 3] = float(wx @ (t_ab + tg(1, b + xs) - tg(1, b))) + s["wk_ib2"] + s["ws_ib2"]
        h = np.triu(h) + np.triu(h, 1).T
        return ll, g, h


_POOL = None


def _pool():
    """Two worker threads for the likelihood's halves (numpy releases the GIL in its loops)."""
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="clv")
    return _POOL


_SIDE = None


def _side():
    """One more thread, for a job that runs beside the main thread's (which hands its halves to :func:`_pool`)."""
    global _SIDE
    if _SIDE is None:
        from concurrent.futures import ThreadPoolExecutor

        _SIDE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clv-side")
    return _SIDE


def _log_space(ll: float, g: np.ndarray, h: np.ndarray, params: np.ndarray, scale: float):
    """Negative mean log-likelihood with its gradient and Hessian in log-parameters."""
    gl = params * g
    hl = params[:, None] * h * params[None, :] + np.diag(gl)
    return -ll / scale, -gl / scale, -hl / scale


class BetaGeoModel:
    """BG/NBD model of repeat purchases (scikit-learn style): ``fit(frequency, recency, T[, weights])``.

    ``tol``: the Newton steps stop when the gradient of the mean log-likelihood in log-parameters is below it (or,
    from a subsample's optimum, when the next step changes no log-parameter by more than 1e-6: see ``_newton``).
    Learned: ``params_`` (r, alpha, a, b; alpha in the data's time unit), ``standard_errors_``, ``covariance_``,
    ``log_likelihood_`` (in the data's time unit, comparable with the published −9582.4 on CDNOW in weeks),
    ``n_customers_``, ``n_rows_`` (rows actually evaluated: one per repeat buyer (or per weighted row) and one per
    distinct T of the others), ``converged_`` (False when the optimiser stopped early or a parameter ran off to
    e^±24, which happens when the data cannot pin the model down).

    >>> m = BetaGeoModel().fit([2, 1, 0, 0, 3, 0], [30.43, 1.71, 0, 0, 20.0, 0], [38.86, 38.86, 38.86, 38.0, 35.0,
    ...                        30.0])
    >>> m.n_customers_, m.n_rows_, round(float(m.probability_alive(0, 0, 10)[0]), 3)
    (6, 6, 1.0)
    """

    param_names = ("r", "alpha", "a", "b")

    def __init__(self, *, tol: float = 1e-9):
        self.tol = tol

    def fit(self, frequency, recency, T, weights=None) -> BetaGeoModel:
        x = _frequency(frequency)
        tx, t = _column(recency, "recency"), _column(T, "T")
        if not (len(x) == len(tx) == len(t)):
            raise ValueError("frequency, recency and T must have one value per customer")
        w = _weights(weights, len(x))
        if not np.all(w > 0):
            keep = w > 0
            x, tx, t, w = x[keep], tx[keep], t[keep], w[keep]
        if len(x) == 0:
            raise ValueError("No customers to fit: the BG/NBD model needs at least one customer's purchase history")
        if np.any(t < 0) or np.any(tx < 0) or np.any(tx > t):
            raise ValueError("recency must be between 0 and T for every customer (T is the time since the first "
                             "purchase)")
        if np.any(tx[x == 0] != 0):
            raise ValueError("recency must be 0 for customers with frequency 0 (no repeat purchase)")
        return self._fit(x, w, _Times.of(tx, t))

    def _fit(self, x: np.ndarray, w: np.ndarray, times: _Times) -> BetaGeoModel:
        """The fit on frequencies ``x`` (int, ≥ 0), positive weights ``w`` and ``times`` (valid: recency between 0 and
        T, 0 without a repeat purchase)."""
        if not np.any(x > 0):
            raise ValueError(f"None of the {w.sum():,.0f} customers has made a repeat purchase: the BG/NBD model "
                             "cannot estimate how often customers come back without repeat buyers")
        t_max = float(times.t_values.max())
        if t_max <= 0:
            raise ValueError("Every customer is 0 time units old: there is no observation period to fit")
        scale_time = 1.0 / t_max
        lik = _BgNbdLikelihood(x, w, times, scale_time)
        n = lik.n

        def fgh(like):
            return lambda theta: _log_space(*like(theta), np.exp(np.clip(theta, -_LOG_BOUND, _LOG_BOUND)), n)

        # start: a = 1, b = 3 (a 25% dropout chance), r = 1 and α from the mean purchase rate; with many rows, from
        # the optimum of every tenth of them
        rate = max(lik.sum_wx / float(lik.wt @ lik.t_values), 1e-12)  # purchases per scaled time unit
        theta0 = np.log([1.0, 1.0 / rate, 1.0, 3.0])
        near = lik.n_repeat_rows > _SUBSAMPLE_ROWS
        if near:
            step = _SUBSAMPLE_STEP
            sub = _BgNbdLikelihood(_subsample(x), _subsample(w) * step, times.every(step), scale_time)
            theta0 = _minimize(fgh(sub), theta0, gtol=1e-6)[0]
        theta, converged, (nll_mean, _, h_log) = _minimize(fgh(lik), theta0, gtol=self.tol, near=near)
        params = np.exp(theta)
        cov, se = _delta_method(params, h_log * n)
        params[1] /= scale_time
        cov[1, :] /= scale_time
        cov[:, 1] /= scale_time
        se[1] /= scale_time
        self.params_ = dict(zip(self.param_names, params.tolist()))
        self.standard_errors_ = dict(zip(self.param_names, se.tolist()))
        self.covariance_ = cov
        self.converged_ = converged and bool(np.all(np.abs(theta) < _LOG_BOUND - 1))
        self.n_customers_ = int(round(float(w.sum())))
        self.n_rows_ = lik.n_rows
        # in time units 1/scale_time long every purchase density is 1/scale_time times smaller: LL = LL_s + Σx·ln s
        self.log_likelihood_ = float(-nll_mean * n + lik.sum_wx * math.log(scale_time))
        return self

    def _p(self):
        _check_fitted(self)
        return (self.params_[k] for k in self.param_names)

    def log_likelihood(self, frequency, recency, T, weights=None) -> float:
        """Total log-likelihood of the histories under the fitted parameters (in their time unit)."""
        r, al, a, b = self._p()
        x = _frequency(frequency)
        tx, t = _column(recency, "recency"), _column(T, "T")
        w = _weights(weights, len(x))
        return _BgNbdLikelihood(x, w, _Times.of(tx, t))(np.log([r, al, a, b]), order=0)

    def probability_alive(self, frequency, recency, T) -> np.ndarray:
        """P(alive | x, t_x, T) per customer: 1 / (1 + [x > 0] · a / (b + x − 1) · ((α + T) / (α + t_x))^(r + x))."""
        r, al, a, b = self._p()
        x = np.atleast_1d(np.asarray(frequency, dtype=float))
        tx, t = np.asarray(recency, dtype=float), np.asarray(T, dtype=float)
        shape = np.broadcast_shapes(x.shape, tx.shape, t.shape)
        x, tx, t = (np.broadcast_to(v, shape).ravel() for v in (x, tx, t))
        out = np.empty(len(x))
        for i in range(0, len(x), _BLOCK):  # in blocks: see _BLOCK
            xb, txb, tb = x[i:i + _BLOCK], tx[i:i + _BLOCK], t[i:i + _BLOCK]
            log_odds = (r + xb) * np.log((al + tb) / (al + txb)) + np.log(a / np.maximum(b + xb - 1, 1e-300))
            out[i:i + _BLOCK] = np.where(xb > 0, special.expit(-log_odds), 1.0)
        return out.reshape(shape)

    def _expected_if_alive(self, t: np.ndarray, x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Expected purchases in (T, T + t] of a customer alive at T with x repeat purchases (rows × len(t)).

        (a + b + x − 1) / (a − 1) · [1 − (1 − z)^(a − 1) · ₂F₁(a + b − 1 − r, a − 1; a + b + x − 1; z)],
        z = t / (α + T + t): Fader, Hardie & Lee's eq. (10) numerator after Euler's transformation, which keeps the
        hypergeometric series short for large x.
        """
        r, al, a, b = self._p()
        if abs(a - 1.0) < 1e-7:  # the formula's 0/0 at a = 1: the limit is smooth, step just beside it
            a = 1.0 + 1e-7
        x = x[:, None]
        z = t[None, :] / (al + T[:, None] + t[None, :])
        hyp = special.hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
        with np.errstate(invalid="ignore"):  # 0 × ∞ when a fit ran off to huge a: NaN, which callers report
            return (a + b + x - 1.0) / (a - 1.0) * (1.0 - np.exp((a - 1.0) * np.log1p(-z)) * hyp)

    def expected_purchases(self, t: float, frequency, recency, T) -> np.ndarray:
        """Expected repeat purchases in the next ``t`` time units per customer: P(alive) × E[purchases | alive].

        Evaluated once per distinct (frequency, T); CDNOW's customer 1 (2, 30.43, 38.86) expects 1.226 in 39 weeks.
        """
        p_alive, codes, alive = self._cumulative(np.array([float(t)]), frequency, recency, T)
        return p_alive * alive[codes, 0]

    def _cumulative(self, ts: np.ndarray, frequency, recency, T,
                    times: _Times | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P(alive) per customer, row codes, cumulative expected purchases if alive at each of ``ts`` per distinct
        (frequency, T)): customer i expects p_alive[i] * alive[codes[i], k] purchases by ts[k]. ``times``: the
        customers' T already coded (then an integer frequency and the T codes combine without hashing)."""
        xi = np.atleast_1d(np.asarray(frequency))
        x = xi.astype(float)
        tx, t = np.atleast_1d(np.asarray(recency, dtype=float)), np.atleast_1d(np.asarray(T, dtype=float))
        # P(alive) per customer beside the expected purchases per distinct (frequency, T) when there are many
        alive = _pool().submit(self.probability_alive, x, tx, t) if len(x) >= _BgNbdLikelihood._PARALLEL_ROWS else None
        if times is not None and xi.dtype.kind in "iu":
            codes, first = _combine_codes((xi, int(xi.max()) + 1), (times.t_codes, len(times.t_values)))
        else:
            codes, first = _factorize(xi if xi.dtype.kind in "iu" else x, t)
        cum = self._expected_if_alive(ts, x[first], t[first])
        return alive.result() if alive is not None else self.probability_alive(x, tx, t), codes, cum

    def parameters(self) -> pd.DataFrame:
        """One row per parameter: model, parameter, estimate, standard_error, lower_95, upper_95."""
        _check_fitted(self)
        return _params_frame(self, self.param_names, "BG/NBD")


# --- Gamma-Gamma --------------------------------------------------------------------------------------------------


class _GammaGammaLikelihood:
    """The Gamma-Gamma log-likelihood of repeat buyers' mean spend m over x repeat purchases (Fader, Hardie & Lee,
    "RFM and CLV", eq. 1): LL = lnΓ(px+q) − lnΓ(px) − lnΓ(q) + q ln γ + (px−1) ln m + px ln x − (px+q) ln(γ+xm).

    The Gamma functions depend on x only and are summed per distinct x; per row only ln(γ + x m) and 1/(γ + x m)
    are needed (two halves on two threads when there are many rows).
    """

    def __init__(self, x: np.ndarray, m: np.ndarray, w: np.ndarray):
        self.n = float(w.sum())
        self.s_xlogxm = float(w @ (x * np.log(x * m)))
        self.s_logm = float(w @ np.log(m))
        self.xs = np.arange(1, int(x.max()) + 1, dtype=float)
        self.wx = np.bincount(x.astype(np.int64), weights=w, minlength=len(self.xs) + 1)[1:]
        xm, wx_row = x * m, w * x
        parts = 2 if len(xm) >= _BgNbdLikelihood._PARALLEL_ROWS else 1
        bounds = np.linspace(0, len(xm), parts + 1).astype(int)
        self.chunks = [(xm[i:j], w[i:j], wx_row[i:j]) for i, j in zip(bounds, bounds[1:])]

    @staticmethod
    def _sums(xm: np.ndarray, w: np.ndarray, wx: np.ndarray, gm: float, order: int) -> np.ndarray:
        """[Σw ln(γ+xm), Σwx ln(γ+xm)] and, for order ≥ 1, the same of 1/(γ+xm) and of 1/(γ+xm)²."""
        out = np.zeros(2 if order == 0 else 6)
        for i in range(0, len(xm), _BLOCK):
            wb, wxb = w[i:i + _BLOCK], wx[i:i + _BLOCK]
            t = xm[i:i + _BLOCK] + gm
            lg = np.log(t)
            out[0] += wb @ lg
            out[1] += wxb @ lg
            if order:
                inv = np.reciprocal(t, out=t)
                out[2] += wb @ inv
                out[3] += wxb @ inv
                inv *= inv
                out[4] += wb @ inv
                out[5] += wxb @ inv
        return out

    def __call__(self, theta: np.ndarray, order: int = 2):
        """(LL, gradient, Hessian) in the natural parameters (p, q, γ) at log-parameters ``theta``."""
        p, q, gm = np.exp(np.clip(theta, -_LOG_BOUND, _LOG_BOUND))
        gl, dg, tg = special.gammaln, special.digamma, special.polygamma
        xs, wx, n = self.xs, self.wx, self.n
        if len(self.chunks) == 1:
            sums = self._sums(*self.chunks[0], gm, order)
        else:
            sums = sum(_pool().map(lambda c: self._sums(*c, gm, order), self.chunks))
        s_lg, s_xlg = sums[0], sums[1]
        pxs = p * xs
        ll = (float(wx @ (gl(pxs + q) - gl(pxs))) - n * gl(q) + n * q * math.log(gm) - self.s_logm
              + p * self.s_xlogxm - p * s_xlg - q * s_lg)
        if order == 0:
            return float(ll)
        s_inv, s_xinv, s_inv2, s_xinv2 = sums[2:]
        dpq, dpx = dg(pxs + q), dg(pxs)
        g = np.array([
            float(wx @ (xs * (dpq - dpx))) - s_xlg + self.s_xlogxm,
            float(wx @ dpq) - n * dg(q) + n * math.log(gm) - s_lg,
            n * q / gm - p * s_xinv - q * s_inv,
        ])
        tpq, tpx = tg(1, pxs + q), tg(1, pxs)
        h = np.zeros((3, 3))
        h[0, 0] = float(wx @ (xs * xs * (tpq - tpx)))
        h[0, 1] = float(wx @ (xs * tpq))
        h[0, 2] = -s_xinv
        h[1, 1] = float(wx @ tpq) - n * tg(1, q)
        h[1, 2] = n / gm - s_inv
        h[2, 2] = -n * q / gm**2 + p * s_xinv2 + q * s_inv2
        h = np.triu(h) + np.triu(h, 1).T
        return float(ll), g, h


class GammaGammaModel:
    """Gamma-Gamma model of spend per transaction (scikit-learn style): ``fit(frequency, monetary_value[, weights])``.

    Only customers with frequency > 0 and monetary_value > 0 inform the fit (the others are skipped). ``tol`` as in
    :class:`BetaGeoModel`. Learned: ``params_`` (p, q, gamma; gamma in money), ``standard_errors_``,
    ``covariance_``, ``log_likelihood_``, ``n_customers_`` (repeat buyers used), ``converged_``.

    >>> gg = GammaGammaModel().fit([1, 2, 3, 1, 4, 2], [20.0, 35.0, 25.0, 60.0, 30.0, 22.0])
    >>> gg.n_customers_, bool(gg.expected_spend(0, 0)[0] == gg.population_mean_spend)
    (6, True)
    """

    param_names = ("p", "q", "gamma")

    def __init__(self, *, tol: float = 1e-9):
        self.tol = tol

    def fit(self, frequency, monetary_value, weights=None) -> GammaGammaModel:
        x = _frequency(frequency).astype(float)
        m = _column(monetary_value, "monetary_value")
        if len(x) != len(m):
            raise ValueError("frequency and monetary_value must have one value per customer")
        w = _weights(weights, len(x))
        if len(x) == 0:
            raise ValueError("No customers to fit: the Gamma-Gamma spend model needs repeat buyers' average spend")
        use = (x > 0) & (m > 0) & (w > 0)
        if not np.any(use):
            raise ValueError(f"None of the {w.sum():,.0f} customers has a repeat purchase with a positive spend: the "
                             "Gamma-Gamma model cannot estimate spend per purchase")
        x, m, w = x[use], m[use], w[use]
        scale = 1.0 / float(np.average(m, weights=w))  # fit in units of the mean spend, report in money
        lik = _GammaGammaLikelihood(x, m * scale, w)
        n = lik.n

        def fgh(like):
            return lambda theta: _log_space(*like(theta), np.exp(np.clip(theta, -_LOG_BOUND, _LOG_BOUND)), n)

        # start: p = 1, q = 2, γ = 1 (a population mean equal to the observed mean); with many rows, from the
        # optimum of every tenth of them
        theta0 = np.log([1.0, 2.0, 1.0])
        near = False
        if len(x) > _SUBSAMPLE_ROWS:
            sub = _GammaGammaLikelihood(_subsample(x), _subsample(m) * scale, _subsample(w) * _SUBSAMPLE_STEP)
            theta0 = _minimize(fgh(sub), theta0, gtol=1e-6)[0]
            near = True
        theta, converged, (nll_mean, _, h_log) = _minimize(fgh(lik), theta0, gtol=self.tol, near=near)
        params = np.exp(theta)
        cov, se = _delta_method(params, h_log * n)
        params[2] /= scale
        cov[2, :] /= scale
        cov[:, 2] /= scale
        se[2] /= scale
        self.params_ = dict(zip(self.param_names, params.tolist()))
        self.standard_errors_ = dict(zip(self.param_names, se.tolist()))
        self.covariance_ = cov
        self.converged_ = converged and bool(np.all(np.abs(theta) < _LOG_BOUND - 1))
        self.n_customers_ = int(round(float(n)))
        self.log_likelihood_ = float(-nll_mean * n + n * math.log(scale))  # back to densities of money
        return self

    def _p(self):
        _check_fitted(self)
        return (self.params_[k] for k in self.param_names)

    @property
    def population_mean_spend(self) -> float:
        """p·γ / (q − 1): the mean spend per purchase of a customer drawn at random (infinite when q ≤ 1)."""
        p, q, gm = self._p()
        return p * gm / (q - 1.0) if q > 1.0 else math.inf

    def expected_spend(self, frequency, monetary_value, fallback: float | None = None) -> np.ndarray:
        """Expected spend per future purchase: p (γ + x m) / (p x + q − 1) for repeat buyers with m > 0, else the
        population mean (or ``fallback`` when the population mean is not finite)."""
        p, q, gm = self._p()
        x = np.atleast_1d(np.asarray(frequency, dtype=float))
        m = np.atleast_1d(np.asarray(monetary_value, dtype=float))
        prior = self.population_mean_spend
        if not math.isfinite(prior):
            prior = float(fallback) if fallback is not None else math.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            own = p * (gm + x * m) / (p * x + q - 1.0)
        ok = (x > 0) & (m > 0) & np.isfinite(own) & (own > 0)
        return np.where(ok, own, prior)

    def parameters(self) -> pd.DataFrame:
        """One row per parameter: model, parameter, estimate, standard_error, lower_95, upper_95."""
        _check_fitted(self)
        return _params_frame(self, self.param_names, "Gamma-Gamma")


# --- CLV ----------------------------------------------------------------------------------------------------------


def _check_horizon(horizon_months: int, discount_rate: float) -> None:
    if isinstance(horizon_months, bool) or not isinstance(horizon_months, int | np.integer) or horizon_months < 1:
        raise ValueError(f"horizon_months must be a whole number of at least 1, got {horizon_months!r}")
    if not (isinstance(discount_rate, int | float) and 0 <= discount_rate < 10):
        raise ValueError(f"discount_rate is a monthly rate like 0.01 (1% a month), got {discount_rate!r}")


def _discounted_purchases(bgnbd: BetaGeoModel, frequency, recency, T, horizon_months: int, discount_rate: float,
                          time_unit: str, times: _Times | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P(alive), expected purchases over the horizon, Σ_k purchases in month k / (1 + d)^k) per customer."""
    _check_horizon(horizon_months, discount_rate)
    _unit_days(time_unit)
    steps = np.arange(1, horizon_months + 1) * PERIODS_PER_MONTH[time_unit]
    p_alive, codes, cum = bgnbd._cumulative(steps, frequency, recency, T, times)
    per_month = np.diff(cum, axis=1, prepend=0.0)
    disc = per_month @ (1.0 + discount_rate) ** -np.arange(1, horizon_months + 1)
    return p_alive, p_alive * cum[codes, -1], p_alive * disc[codes]


def customer_lifetime_value(bgnbd: BetaGeoModel, gamma_gamma: GammaGammaModel, frequency, recency, T,
                            monetary_value, *, horizon_months: int = 12, discount_rate: float = 0.01,
                            time_unit: str = "W") -> np.ndarray:
    """Per customer: discounted CLV over ``horizon_months`` (monthly steps, ``discount_rate`` per month), ≥ 0, never
    NaN. Same numbers as lifetimes' ``GammaGammaFitter.customer_lifetime_value`` for customers with a positive
    spend; the others are valued at the population mean spend."""
    disc = _discounted_purchases(bgnbd, frequency, recency, T, horizon_months, discount_rate, time_unit)[2]
    spend = gamma_gamma.expected_spend(frequency, monetary_value, fallback=_observed_mean(frequency, monetary_value))
    return _clean(spend * disc)


def _observed_mean(frequency, monetary_value) -> float:
    x, m = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
    ok = (x > 0) & (m > 0)
    return float(np.average(m[ok], weights=x[ok])) if ok.any() else 0.0


def _clean(values: np.ndarray) -> np.ndarray:
    """``values`` (a new float array: it is changed in place) with NaN, infinities and negatives replaced by 0."""
    np.fmax(values, 0.0, out=values)  # fmax takes 0 over NaN
    values[values == np.inf] = 0.0
    return values


def sufficiency_warnings(frame: pd.DataFrame, time_unit: str = "W",
                         gamma_gamma: GammaGammaModel | None = None,
                         bgnbd: BetaGeoModel | None = None) -> list[str]:
    """Plain-language warnings about a summary frame (frequency, T, monetary_value) that is too thin for the models:
    short history, few repeat buyers, spend that depends on frequency, fits that did not settle."""
    unit = _unit_days(time_unit)
    out: list[str] = []
    n = len(frame)
    if n == 0:
        return ["No customer has a purchase by this date: there is nothing to predict. Import orders first."]
    span_days = float(frame["T"].max()) * unit
    if span_days < MIN_HISTORY_DAYS:
        out.append(f"Only {span_days:.0f} days of purchase history: the model needs about {MIN_HISTORY_DAYS // 7} "
                   "weeks to tell a customer who buys slowly from one who has left, so treat these predictions as "
                   "rough.")
    x = frame["frequency"].to_numpy()
    repeat = x > 0
    n_rep = int(np.count_nonzero(repeat))
    if n_rep < MIN_REPEAT_BUYERS or n_rep < MIN_REPEAT_SHARE * n:
        out.append(f"Only {n_rep:,} of {n:,} customers ({n_rep / n:.1%}) have bought more than once: with fewer "
                   f"than {MIN_REPEAT_BUYERS} repeat buyers (or under {MIN_REPEAT_SHARE:.0%}) the repeat-purchase and "
                   "spend estimates are unreliable.")
    mv = frame["monetary_value"].to_numpy(float)
    spenders = mv > 0
    spenders &= repeat
    if np.count_nonzero(spenders) >= 3:
        fx, mv = x[spenders].astype(float), mv[spenders]
        fx -= fx.mean()
        mv -= mv.mean()
        sxx, smm = float(fx @ fx), float(mv @ mv)
        corr = float(fx @ mv) / math.sqrt(sxx * smm) if sxx > 0 and smm > 0 else 0.0
        if abs(corr) > MAX_SPEND_FREQUENCY_CORRELATION:
            out.append(f"Spend per purchase and number of purchases move together (correlation {corr:.2f}): the "
                       "spend model assumes they are independent, so the spend of frequent buyers may be mis-stated.")
    for model, name in ((bgnbd, "repeat-purchase (BG/NBD)"), (gamma_gamma, "spend (Gamma-Gamma)")):
        if model is not None and not model.converged_:
            out.append(f"The {name} model did not settle on stable parameters, usually because there is too little "
                       "data; treat its predictions as rough.")
        elif model is not None and not all(np.isfinite(list(model.standard_errors_.values()))):
            out.append(f"The {name} model's parameters could not be given a margin of error: the data cannot pin "
                       "them down.")
    if gamma_gamma is not None and not math.isfinite(gamma_gamma.population_mean_spend):
        out.append("The spend model finds no finite average spend (q ≤ 1); customers without repeat purchases are "
                   "valued at the observed average spend of repeat buyers instead.")
    return out


@dataclass(frozen=True)
class ClvResult:
    """Everything :func:`clv` computes. ``customers``: one row per customer with a purchase by ``as_of``
    (columns in ``COLUMN_HELP``); ``bgnbd`` / ``gamma_gamma``: the fitted models (parameters with standard errors);
    ``warnings``: plain-language data-sufficiency warnings; ``timings``: seconds per step (summary, fit_bgnbd,
    fit_gamma_gamma, predict) and in all (total; with many customers the Gamma-Gamma fit runs beside the BG/NBD fit,
    so the steps add up to more); ``population_mean_spend``: what a customer without a repeat purchase is expected to
    spend per purchase; ``return_rate``: the share of purchase value returned, taken off every spend; ``totals``:
    customers, clv, expected_purchases, mean_p_alive."""

    customers: pd.DataFrame
    bgnbd: BetaGeoModel
    gamma_gamma: GammaGammaModel
    warnings: tuple[str, ...]
    timings: dict[str, float]
    as_of: date
    time_unit: str
    horizon_months: int
    discount_rate: float
    population_mean_spend: float
    return_rate: float
    totals: dict[str, float] = field(default_factory=dict)

    def parameters(self) -> pd.DataFrame:
        """Both models' parameters: model, parameter, estimate, standard_error, lower_95, upper_95, help."""
        df = pd.concat([self.bgnbd.parameters(), self.gamma_gamma.parameters()], ignore_index=True)
        df["help"] = df["parameter"].map(PARAMETER_HELP)
        return df


def clv(backend, as_of: date, horizon_months: int = 12, discount_rate: float = 0.01,
        time_unit: str = "W") -> ClvResult:
    """One row per customer with a purchase by ``as_of``: the summary, P(alive), expected purchases and spend, and
    the discounted CLV over ``horizon_months`` (``discount_rate`` per month), with both fitted models, warnings and
    timings. Raises ``ValueError`` with a plain message when there are no purchases or no repeat buyers."""
    as_of = _as_date(as_of, "as_of")
    unit = _unit_days(time_unit)
    _check_horizon(horizon_months, discount_rate)
    t0 = _time.perf_counter()
    frame = summary(backend, as_of, time_unit, with_return_rate=True)
    t1 = _time.perf_counter()
    if frame.empty:
        raise ValueError(f"No customer has a purchase on or before {as_of}: import orders (or choose a later date) "
                         "to predict customer value.")
    rate = float(frame["return_rate"].iloc[0])
    frame = frame.drop(columns="return_rate")
    x = frame["frequency"].to_numpy()
    tx, t = frame["recency"].to_numpy(float), frame["T"].to_numpy(float)
    m = frame["monetary_value"].to_numpy(float)

    def spend_model():  # (model, seconds it took to fit, the observed mean spend, expected spend per customer)
        start = _time.perf_counter()
        model = GammaGammaModel().fit(x, m)
        secs = _time.perf_counter() - start
        mean = _observed_mean(x, m)
        return model, secs, mean, model.expected_spend(x, m, fallback=mean)

    # with many customers the spend model is fitted beside the BG/NBD fit: most of the latter runs on one thread
    side = _side().submit(spend_model) if len(x) >= _BgNbdLikelihood._PARALLEL_ROWS else None
    # the summary's recency and T are whole days / unit: the days are their codes (no hashing), and its rows need
    # none of fit()'s checks (recency between 0 and T, 0 without a repeat purchase)
    times = _Times.of_days(tx, t, unit)
    bg = BetaGeoModel()._fit(x, np.ones(len(x)), times)
    t2 = _time.perf_counter()
    gg, gg_secs, fallback, spend = side.result() if side is not None else spend_model()
    t3 = _time.perf_counter()
    # the warnings beside the predictions, which keep the other core busy only part of the time
    warned = _side().submit(sufficiency_warnings, frame, time_unit, gg, bg) if side is not None else None
    p_alive, expected, disc = _discounted_purchases(bg, x, tx, t, horizon_months, discount_rate, time_unit, times)
    value = spend * disc
    bad = int(np.count_nonzero(~np.isfinite(value)))
    p_alive, expected, spend, value = (_clean(v) for v in (p_alive, expected, spend, value))
    out = frame.assign(p_alive=p_alive, expected_purchases=expected, expected_spend=spend, clv=value)
    warns = warned.result() if warned is not None else sufficiency_warnings(frame, time_unit, gg, bg)
    if bad:
        warns.append(f"{bad:,} customers' values could not be computed and are shown as 0.")
    prior = gg.population_mean_spend if math.isfinite(gg.population_mean_spend) else fallback
    totals = {"customers": float(len(out)), "clv": float(value.sum()), "expected_purchases": float(expected.sum()),
              "mean_p_alive": float(p_alive.mean())}
    t4 = _time.perf_counter()
    timings = {"summary": t1 - t0, "fit_bgnbd": t2 - t1, "fit_gamma_gamma": gg_secs, "predict": t4 - t3,
               "total": t4 - t0}
    return ClvResult(out, bg, gg, tuple(warns), timings, as_of, time_unit, int(horizon_months), float(discount_rate),
                     float(prior), rate, totals)


# --- calibration / holdout ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationResult:
    """The model fitted on the calibration period against what happened in the holdout period.

    ``frame``: one row per number of calibration repeat purchases (0, 1, …, ``max_purchases``+; a number nobody made
    has no row): calibration_purchases (label), customers, mean_actual, mean_predicted, total_actual, total_predicted
    (``CALIBRATION_HELP``);
    ``total_actual`` / ``total_predicted``: all customers' holdout repeat purchases; ``model``: the calibration fit.
    """

    frame: pd.DataFrame
    total_actual: float
    total_predicted: float
    model: BetaGeoModel
    calibration_end: date
    as_of: date
    time_unit: str
    duration_holdout: float
    n_customers: int
    warnings: tuple[str, ...]


def calibration_holdout(backend, calibration_end: date, as_of: date, time_unit: str = "W",
                        max_purchases: int = 7) -> CalibrationResult:
    """One row per number of calibration repeat purchases (0 … ``max_purchases``, the last one "7+"): customers,
    mean actual and mean predicted repeat purchases in the holdout period (``calibration_end`` to ``as_of``), for the
    calibration/holdout plot; the BG/NBD model is fitted on the calibration period only."""
    if isinstance(max_purchases, bool) or not isinstance(max_purchases, int) or max_purchases < 1:
        raise ValueError(f"max_purchases must be a whole number of at least 1, got {max_purchases!r}")
    cal_end, as_of = _as_date(calibration_end, "calibration_end"), _as_date(as_of, "as_of")
    frame = summary(backend, as_of, time_unit, calibration_end=cal_end)
    if frame.empty:
        raise ValueError(f"No customer has a purchase on or before {cal_end}: choose a later calibration end.")
    x = frame["frequency"].to_numpy()
    tx, t = frame["recency"].to_numpy(float), frame["T"].to_numpy(float)
    model = BetaGeoModel().fit(x, tx, t)
    duration = float(frame["duration_holdout"].iloc[0])
    return _calibration_frame(model, frame, duration, cal_end, as_of, time_unit, max_purchases)


def _calibration_frame(model: BetaGeoModel, frame: pd.DataFrame, duration: float, cal_end: date, as_of: date,
                       time_unit: str, max_purchases: int) -> CalibrationResult:
    x = frame["frequency"].to_numpy()
    predicted = model.expected_purchases(duration, x, frame["recency"].to_numpy(float), frame["T"].to_numpy(float))
    bucket = np.minimum(x, max_purchases)
    df = pd.DataFrame({"bucket": bucket, "actual": frame["frequency_holdout"].to_numpy(float),
                       "predicted": predicted})
    g = df.groupby("bucket").agg(customers=("actual", "size"), total_actual=("actual", "sum"),
                                 total_predicted=("predicted", "sum"))
    labels = [str(k) if k < max_purchases else f"{max_purchases}+" for k in g.index]
    out = pd.DataFrame({
        "calibration_purchases": labels,
        "customers": g["customers"].to_numpy(dtype=np.int64),
        "mean_actual": (g["total_actual"] / g["customers"]).to_numpy(),
        "mean_predicted": (g["total_predicted"] / g["customers"]).to_numpy(),
        "total_actual": g["total_actual"].to_numpy(),
        "total_predicted": g["total_predicted"].to_numpy(),
    })
    warns = tuple(sufficiency_warnings(frame, time_unit, bgnbd=model))
    return CalibrationResult(out, float(df["actual"].sum()), float(df["predicted"].sum()), model, cal_end, as_of,
                             time_unit, duration, len(frame), warns)
