"""Uplift targeting: learn from a past randomised campaign who is *moved* by a contact, then pick whom to target next.

A campaign with a held-out control group is an experiment: comparing contacted and held-out customers with the same
history tells, customer by customer, how much the contact raises the chance to convert (the *uplift*). Customers who
buy anyway, or never buy, have an uplift near zero; targeting the highest predicted uplift buys the most extra
conversions for the money.

Definitions:

- **Contacts.** The rows of ``campaign_contacts`` for one campaign. A contact is *treated* when ``contact_group`` is
  any other name (treatment, test, "Mens E-Mail" ...) and *control* when it is a control name
  (``crm_core.campaigns.CONTROL_GROUPS``: control, holdout, no e-mail ...), compared after trimming and
  lower-casing, as the campaigns view reads them; a contact without a group is treated when ``is_sent`` is true and
  control otherwise (``UpliftResult.treatment_rule`` says which rule the campaign needed). The outcome is
  ``is_converted`` (missing counts as not converted).
- **Features** (``FEATURE_LABELS``) describe each customer as of a *reference day*: only data strictly before that
  day is read. For a past campaign the reference day is its ``start_date`` (from ``campaigns``; the first
  ``contacted_at`` day when the campaign has no start date), so nothing the campaign caused can leak into what the
  model learns from. For the next campaign the reference day is the day after ``as_of``. A *purchase* is an order
  that is not a return (``is_return`` true or a negative amount, as in :mod:`crm_core.metrics`). Optional features
  appear only when their data exist: ``web_order_share`` (orders with a ``channel``), ``is_web_registered``
  (``customers.is_web_registered``), ``tickets`` (``support_tickets``). The features are one Ibis expression run in
  the engine; only the one-row-per-customer table reaches pandas.
- **Model.** Two models (a *T-learner*): one conversion model fitted on the treated contacts and one on the control
  contacts; a customer's predicted uplift is P(convert | contacted) − P(convert | not contacted). Both are logistic
  regressions on signed-log-scaled, standardised features with strong L2 shrinkage (C = 0.1), because the control
  arm is small (on the sample 778 contacts with 39 conversions, 27 of them in the training split). The contacts are
  split 70/30 into training and held-out sets, stratified by treatment × outcome, with a fixed seed.

  Why this model: on the sample's randomised campaign (CMP07), with the default split, the held-out Qini
  coefficient was 0.35 for the two logistic models, 0.30 for a transformed-outcome model (a ridge regression of
  ``Z = y (t − p) / (p (1 − p))``, whose expectation is the uplift), and 0.14 for two gradient-boosting classifiers,
  which overfit the control arm's few conversions and take twice as long. Over split seeds 0–4 the logistic pair
  came first every time (Qini 0.23–0.35, against 0.17–0.32 and 0.09–0.25) and also ranked the planted persuadable
  customers best (held-out ROC AUC 0.87–0.91, against 0.81–0.87 and 0.75–0.81). The alternatives stay available
  as ``model="transformed_outcome"`` and ``model="two_model_gbm"``.
- **Qini curve** (held-out customers ranked by predicted uplift, highest first; customers with tied scores are
  targeted together): after targeting the top k, ``incremental_conversions`` = treated conversions − control
  conversions × treated / control among those k (the treated conversions alone while no control customer is
  among them). *Random targeting* is the straight line from 0 to the value at 100%.
  ``auuc`` is the area under the curve with the share of customers targeted (0–1) on the x-axis, in incremental
  conversions; ``qini_coefficient`` = (auuc − random area) / (perfect area − random area), where the *perfect*
  curve ranks treated converters first and control converters last (Radcliffe's normalised Qini: 0 = no better
  than random, 1 = perfect, negative = worse than random).
- **Targets.** Customers scored for the next campaign: every customer known by ``as_of`` (in ``customers`` with a
  signup date on or before it or none, or with an order by then), optionally only some regions or RFM segments.
  The ``top_n`` with the highest predicted uplift are the targets; their expected incremental conversions are the
  sum of their predicted uplifts.
- **Observed lift** = conversion rate of the treated − that of the control contacts, with a 95% Newcombe (hybrid
  Wilson score) interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from crm_core.campaigns import CONTROL_GROUPS, proportion_lift
from crm_core.metrics import Filters, _count, _customer_scope, _is_return, data_as_of

__all__ = [
    "CONTROL_GROUPS",
    "FEATURE_HELP",
    "FEATURE_LABELS",
    "MODELS",
    "QINI_LABELS",
    "QUINTILE_LABELS",
    "TARGET_LABELS",
    "UPLIFT_HELP",
    "EXPERIMENT_LABELS",
    "QiniScore",
    "TransformedOutcomeUplift",
    "TwoModelUplift",
    "UpliftRefused",
    "UpliftResult",
    "campaign_features",
    "campaign_features_expr",
    "experiment_campaigns",
    "qini_curve",
    "qini_score",
    "score_customers",
    "train_uplift_model",
    "uplift_features_expr",
]

RANDOM_STATE = 0
TEST_SIZE = 0.3
MIN_CONVERSIONS = 20  # per arm, over the whole campaign
DEFAULT_TOP_N = 500

# --- labels (one name per quantity; pages show these and their help) ------------------------------------------

FEATURE_LABELS: dict[str, str] = {
    "purchases": "Purchases before",
    "days_since_last_purchase": "Days since last purchase",
    "net_spend": "Net spend before",
    "tenure_days": "Days as a customer",
    "returns": "Returns before",
    "web_order_share": "Share of web orders",
    "is_web_registered": "Has a web account",
    "tickets": "Support tickets before",
}

FEATURE_HELP: dict[str, str] = {
    "purchases": "Purchases (orders that are not returns) before the reference day.",
    "days_since_last_purchase": (
        "Days from the last purchase to the reference day; for a customer who never purchased, the days as a "
        "customer."
    ),
    "net_spend": "Sum of order amounts before the reference day, returns subtracted.",
    "tenure_days": (
        "Days from acquisition (the earlier of the signup date and the first order) to the reference day; 0 when "
        "unknown."
    ),
    "returns": "Returns (orders flagged as a return or with a negative amount) before the reference day.",
    "web_order_share": "Share of purchases placed in the 'web' channel (0 without purchases).",
    "is_web_registered": "1 when the customer has a web account (customers.is_web_registered).",
    "tickets": "Support tickets opened before the reference day.",
}

EXPERIMENT_LABELS: dict[str, str] = {
    "campaign_id": "Campaign",
    "campaign_name": "Name",
    "start_date": "Start date",
    "n_treatment": "Contacted (treatment)",
    "n_control": "Held out (control)",
    "conversions_treatment": "Conversions, treatment",
    "conversions_control": "Conversions, control",
}

QINI_LABELS: dict[str, str] = {
    "customers_targeted": "Customers targeted (held-out set)",
    "share_targeted": "Share of customers targeted",
    "incremental_conversions": "Incremental conversions (model)",
    "random_incremental_conversions": "Incremental conversions (random targeting)",
}

TARGET_LABELS: dict[str, str] = {
    "rank": "Rank",
    "customer_id": "Customer",
    "predicted_uplift": "Predicted uplift",
    "cumulative_incremental_conversions": "Expected incremental conversions, cumulative",
    **FEATURE_LABELS,
}

QUINTILE_LABELS: dict[str, str] = {
    "quintile": "Predicted-uplift quintile (1 = highest)",
    "customers": "Held-out customers",
    "treated": "Treated",
    "control": "Control",
    "predicted_uplift": "Mean predicted uplift",
    "observed_uplift": "Observed uplift (treated − control conversion rate)",
}

UPLIFT_HELP: dict[str, str] = {
    "predicted_uplift": (
        "How much a contact raises this customer's chance to convert: the treated model's conversion "
        "probability minus the control model's, for a customer with this history."
    ),
    "expected_incremental_conversions": (
        "Sum of the predicted uplifts of the targeted customers: the conversions the campaign should add over "
        "not contacting them."
    ),
    "cumulative_incremental_conversions": "Sum of the predicted uplifts from rank 1 down to this customer.",
    "qini_coefficient": (
        "How much better than random the model ranks held-out customers: (area under its Qini curve − area "
        "under random targeting) ÷ (area under the perfect curve − random). 0 = random, 1 = perfect."
    ),
    "auuc": (
        "Area under the Qini curve (x: share of held-out customers targeted, 0–1; y: incremental conversions)."
    ),
    "incremental_conversions": (
        "After targeting the top customers: treated conversions − control conversions × treated ÷ control "
        "among them."
    ),
    "observed_lift": (
        "Conversion rate of the contacted minus that of the held-out customers, with a 95% Newcombe interval."
    ),
    "mean_predicted_uplift": "Mean predicted uplift over all the campaign's contacts.",
}

# --- helpers --------------------------------------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time())


def _as_date(value) -> date | None:
    if value is None or (not isinstance(value, date) and pd.isna(value)):
        return None
    stamp = pd.Timestamp(value)
    return stamp.date()


def _feature_sources(backend: ibis.BaseBackend, tables: Mapping[str, ir.Table]) -> tuple[str, ...]:
    """The optional features with data: web_order_share, is_web_registered, tickets."""
    found = []
    orders, customers = tables["orders"], tables["customers"]
    if "channel" in orders.columns and _count(backend.execute(orders.channel.notnull().sum())) > 0:
        found.append("web_order_share")
    if "is_web_registered" in customers.columns and \
            _count(backend.execute(customers.is_web_registered.notnull().sum())) > 0:
        found.append("is_web_registered")
    if "support_tickets" in tables:
        tickets = tables["support_tickets"]
        if {"customer_id", "created_at"} <= set(tickets.columns) and \
                _count(backend.execute(tickets.limit(1).count())) > 0:
            found.append("tickets")
    return tuple(found)


_BASE_FEATURES = ("purchases", "days_since_last_purchase", "net_spend", "tenure_days", "returns")


def _feature_names(sources: Iterable[str]) -> tuple[str, ...]:
    sources = set(sources)
    return (*_BASE_FEATURES, *(f for f in ("web_order_share", "is_web_registered", "tickets") if f in sources))


def _left_join(left: ir.Table, right: ir.Table) -> ir.Table:
    right = right.rename(_key="customer_id")
    return left.left_join(right, left.customer_id == right._key).drop("_key")


# --- features -------------------------------------------------------------------------------------------------


def uplift_features_expr(tables: Mapping[str, ir.Table], reference_day: date, population: ir.Table, *,
                         sources: Iterable[str] = ()) -> ir.Table:
    """One row per row of ``population`` (a table with a unique customer_id and any other columns, kept): those
    columns and the features of ``FEATURE_LABELS`` that ``sources`` light up, as of ``reference_day``.

    Only orders and tickets strictly before ``reference_day`` are read. ``sources`` names the optional features
    (``web_order_share``, ``is_web_registered``, ``tickets``; the last needs ``tables["support_tickets"]``).
    """
    sources = set(sources)
    unknown = sources - {"web_order_share", "is_web_registered", "tickets"}
    if unknown:
        raise ValueError(f"Unknown feature source(s) {sorted(unknown)}; choose from web_order_share, "
                         "is_web_registered, tickets")
    customers, orders = tables["customers"], tables["orders"]
    cut = _day_start(reference_day)
    o = orders.filter(orders.customer_id.notnull(), orders.ordered_at < cut)
    o = o.mutate(_purchase=~_is_return(o), _amount=o.amount.fill_null(0))
    metrics: dict[str, ir.Value] = {
        "_purchases": o.count(where=o._purchase),
        "_returns": o.count(where=~o._purchase),
        "_net_spend": o._amount.sum(),
        "_first_order_at": o.ordered_at.min(),
        "_last_purchase_at": o.ordered_at.max(where=o._purchase),
    }
    if "web_order_share" in sources:
        web = (o.channel.strip().lower() == "web").fill_null(False)
        metrics["_web_orders"] = o.count(where=o._purchase & web)
    joined = _left_join(population, o.group_by("customer_id").aggregate(**metrics))
    wanted = [c for c in ("signup_date", "is_web_registered") if c in customers.columns
              and (c != "is_web_registered" or "is_web_registered" in sources)]
    if wanted:
        c = customers.filter(customers.customer_id.notnull()).select(
            "customer_id", **{f"_{name}": customers[name] for name in wanted})
        joined = _left_join(joined, c)
    if "tickets" in sources:
        t = tables["support_tickets"]
        t = t.filter(t.customer_id.notnull(), t.created_at < cut)
        joined = _left_join(joined, t.group_by("customer_id").aggregate(_tickets=t.count()))

    day = ibis.literal(reference_day)
    first_day = joined._first_order_at.date()
    if "signup_date" in wanted:
        signup = joined._signup_date.cast("date")
        acquired = ibis.coalesce(ibis.least(signup, first_day), signup, first_day)
    else:
        acquired = first_day
    tenure = ibis.greatest((day - acquired).cast("int64"), 0).fill_null(0)
    purchases = joined._purchases.fill_null(0).cast("int64")
    since = (day - joined._last_purchase_at.date()).cast("int64")
    columns: dict[str, ir.Value] = {
        "purchases": purchases,
        "days_since_last_purchase": since.fill_null(tenure),
        "net_spend": joined._net_spend.fill_null(0.0).cast("float64"),
        "tenure_days": tenure,
        "returns": joined._returns.fill_null(0).cast("int64"),
    }
    if "web_order_share" in sources:
        columns["web_order_share"] = (purchases > 0).ifelse(
            joined._web_orders.fill_null(0).cast("float64") / purchases.cast("float64"), 0.0)
    if "is_web_registered" in sources:
        registered = joined._is_web_registered if "is_web_registered" in wanted else ibis.literal(False)
        columns["is_web_registered"] = registered.fill_null(False).ifelse(1, 0).cast("int64")
    if "tickets" in sources:
        columns["tickets"] = joined._tickets.fill_null(0).cast("int64")
    kept = [c for c in population.columns if c != "customer_id"]
    return joined.select("customer_id", *kept, **columns)


def _contacts_expr(contacts: ir.Table) -> ir.Table:
    """One row per contact: campaign_id, customer_id, is_treated, is_converted, is_group_known (the arm came from
    contact_group rather than is_sent), contacted_at (null when the table has none)."""
    c = contacts.filter(contacts.customer_id.notnull())
    group = c.contact_group.strip().lower() if "contact_group" in c.columns else ibis.null("string")
    sent = c.is_sent.fill_null(False) if "is_sent" in c.columns else ibis.literal(False)
    # the same arms as crm_core.campaigns reads: a control name is control, any other group name is treated
    # ("Mens E-Mail" against "No E-Mail"); only a contact without a group falls back to is_sent
    is_treated = ibis.cases((group.isin(CONTROL_GROUPS), False), (group.notnull() & (group != ""), True), else_=sent)
    known = (group.notnull() & (group != "")).fill_null(False)
    converted = c.is_converted.fill_null(False) if "is_converted" in c.columns else ibis.literal(False)
    contacted = c.contacted_at if "contacted_at" in c.columns else ibis.null("timestamp")
    return c.select("campaign_id", "customer_id", is_treated=is_treated, is_converted=converted,
                    is_group_known=known, contacted_at=contacted)


def campaign_features_expr(tables: Mapping[str, ir.Table], campaign_id: str, start_date: date, *,
                           sources: Iterable[str] = ()) -> ir.Table:
    """One row per contact of ``campaign_id``: customer_id, is_treated, is_converted, is_group_known and the
    features as of ``start_date`` (orders and tickets before it only)."""
    c = _contacts_expr(tables["campaign_contacts"])
    c = c.filter(c.campaign_id == campaign_id).select("customer_id", "is_treated", "is_converted", "is_group_known")
    return uplift_features_expr(tables, start_date, c, sources=sources)


def _tables(backend: ibis.BaseBackend) -> dict[str, ir.Table]:
    present = set(backend.list_tables())
    for name in ("customers", "orders", "campaign_contacts"):
        if name not in present:
            raise UpliftRefused(f"The database has no {name!r} table; import {name} before building an uplift model.")
    return {name: backend.table(name) for name in ("customers", "orders", "campaign_contacts", "campaigns",
                                                   "support_tickets") if name in present}


def _experiments_expr(tables: Mapping[str, ir.Table]) -> ir.Table:
    """One row per campaign in campaign_contacts: campaign_id, n_treatment, n_control, conversions_treatment,
    conversions_control, n_group_unknown, start_date (campaigns.start_date, else the first contacted_at day),
    campaign_name (null without a campaigns table)."""
    c = _contacts_expr(tables["campaign_contacts"])
    per = c.group_by("campaign_id").aggregate(
        n_treatment=c.count(where=c.is_treated), n_control=c.count(where=~c.is_treated),
        conversions_treatment=c.count(where=c.is_treated & c.is_converted),
        conversions_control=c.count(where=~c.is_treated & c.is_converted),
        n_group_unknown=c.count(where=~c.is_group_known), first_contacted_at=c.contacted_at.min())
    name, start = ibis.null("string"), ibis.null("date")
    if "campaigns" in tables:
        camp = tables["campaigns"]
        camp = camp.select(_cid=camp.campaign_id,
                           _name=camp.campaign_name if "campaign_name" in camp.columns else ibis.null("string"),
                           _start=camp.start_date.cast("date") if "start_date" in camp.columns else ibis.null("date"))
        per = per.left_join(camp, per.campaign_id == camp._cid)
        name, start = per._name, per._start
    return per.select(
        "campaign_id", campaign_name=name, start_date=ibis.coalesce(start, per.first_contacted_at.date()),
        n_treatment=per.n_treatment.cast("int64"), n_control=per.n_control.cast("int64"),
        conversions_treatment=per.conversions_treatment.cast("int64"),
        conversions_control=per.conversions_control.cast("int64"), n_group_unknown=per.n_group_unknown.cast("int64"))


def _experiments(backend: ibis.BaseBackend, tables: Mapping[str, ir.Table]) -> pd.DataFrame:
    df = backend.execute(_experiments_expr(tables))
    for name in ("n_treatment", "n_control", "conversions_treatment", "conversions_control", "n_group_unknown"):
        df[name] = df[name].fillna(0).astype("int64")
    df["start_date"] = [_as_date(v) for v in df["start_date"]]
    order = pd.to_datetime(df["start_date"])
    return df.assign(_order=order).sort_values(["_order", "campaign_id"], ascending=False, na_position="last",
                                               kind="stable").drop(columns="_order").reset_index(drop=True)


def experiment_campaigns(backend: ibis.BaseBackend) -> pd.DataFrame:
    """One row per campaign with both treated and control contacts (the randomised campaigns an uplift model can
    learn from), latest start first: campaign_id, campaign_name, start_date, n_treatment, n_control,
    conversions_treatment, conversions_control."""
    df = _experiments(backend, _tables(backend))
    df = df[(df["n_treatment"] > 0) & (df["n_control"] > 0)]
    return df[list(EXPERIMENT_LABELS)].reset_index(drop=True)


# --- the Qini curve -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QiniScore:
    """Areas under the Qini curve of one ranking (x: share targeted 0–1, y: incremental conversions).

    ``qini_coefficient`` = (auuc − auuc_random) / (auuc_perfect − auuc_random); NaN when the perfect and random
    areas coincide (no conversions). ``incremental_conversions`` is the curve's value at 100% targeted.
    """

    customers: int
    incremental_conversions: float
    auuc: float
    auuc_random: float
    auuc_perfect: float
    qini_coefficient: float


def _arrays(is_converted, predicted_uplift, is_treated) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(is_converted, dtype="float64")
    u = np.asarray(predicted_uplift, dtype="float64")
    t = np.asarray(is_treated, dtype=bool)
    if not (len(y) == len(u) == len(t)):
        raise ValueError(f"is_converted, predicted_uplift and is_treated differ in length ({len(y)}, {len(u)}, "
                         f"{len(t)}); give one value per customer in each.")
    if len(y) == 0:
        raise ValueError("No customers to draw a Qini curve for.")
    if np.isnan(u).any():
        raise ValueError(f"predicted_uplift has {int(np.isnan(u).sum())} missing values; score every customer.")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("is_converted must be 0/1 (or true/false) for every customer.")
    return y, u, t


def _curve(y: np.ndarray, u: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Customers targeted (0, then the end of each group of tied scores, highest first) and incremental
    conversions at each of those cuts."""
    order = np.argsort(-u, kind="stable")
    y, u, t = y[order], u[order], t[order]
    ends = np.r_[np.flatnonzero(u[1:] != u[:-1]), len(u) - 1]
    n_treated, n_control = np.cumsum(t)[ends], np.cumsum(~t)[ends]
    y_treated, y_control = np.cumsum(y * t)[ends], np.cumsum(y * ~t)[ends]
    ratio = np.divide(n_treated, n_control, out=np.zeros(len(ends)), where=n_control > 0)
    return np.r_[0, ends + 1], np.r_[0.0, y_treated - y_control * ratio]


def qini_curve(is_converted, predicted_uplift, is_treated) -> pd.DataFrame:
    """One row per cut of the ranking by ``predicted_uplift`` (highest first), from nobody targeted to everybody:
    customers_targeted, share_targeted, incremental_conversions, random_incremental_conversions.

    Customers with tied scores are targeted together (one cut after the whole tie). See the module docstring for
    the definition; the inputs are one value per customer (0/1 or bool outcomes and arms).

    >>> qini_curve([1, 0, 0, 1], [0.3, 0.2, 0.1, 0.0], [True, False, True, False]).incremental_conversions.tolist()
    [0.0, 1.0, 1.0, 1.0, 0.0]
    """
    y, u, t = _arrays(is_converted, predicted_uplift, is_treated)
    k, incremental = _curve(y, u, t)
    share = k / len(y)
    return pd.DataFrame({"customers_targeted": k.astype("int64"), "share_targeted": share,
                         "incremental_conversions": incremental,
                         "random_incremental_conversions": share * incremental[-1]})


def qini_score(is_converted, predicted_uplift, is_treated) -> QiniScore:
    """One :class:`QiniScore` for the ranking of customers by ``predicted_uplift``: AUUC (trapezoids over the
    :func:`qini_curve`), the random and perfect areas, and the Qini coefficient."""
    y, u, t = _arrays(is_converted, predicted_uplift, is_treated)
    k, incremental = _curve(y, u, t)
    auuc = float(np.trapezoid(incremental, k / len(y)))
    random = float(incremental[-1] / 2)
    k_best, best = _curve(y, y * t - y * ~t, t)
    perfect = float(np.trapezoid(best, k_best / len(y)))
    spread = perfect - random
    coefficient = (auuc - random) / spread if abs(spread) > 1e-12 else math.nan
    return QiniScore(customers=len(y), incremental_conversions=float(incremental[-1]), auuc=auuc,
                     auuc_random=random, auuc_perfect=perfect, qini_coefficient=float(coefficient))


# --- the models -----------------------------------------------------------------------------------------------


def _signed_log(x):
    return np.sign(x) * np.log1p(np.abs(x))


def _scaled(model) -> Pipeline:
    return Pipeline([("log", FunctionTransformer(_signed_log)), ("scale", StandardScaler()), ("model", model)])


class TwoModelUplift(BaseEstimator):
    """Uplift as the difference of two conversion models (T-learner): ``estimator`` (a classifier with
    ``predict_proba``) is cloned and fitted once on the treated and once on the control customers.

    ``predict(X)`` = P(convert | X, treated) − P(convert | X, control). Learned: ``treated_model_``,
    ``control_model_``.
    """

    def __init__(self, estimator=None):
        self.estimator = estimator

    def fit(self, X, y, treatment) -> TwoModelUplift:
        X, y, t = np.asarray(X, dtype="float64"), np.asarray(y).astype("int64"), np.asarray(treatment, dtype=bool)
        base = self.estimator if self.estimator is not None else _scaled(LogisticRegression(C=0.1, max_iter=2000))
        self.treated_model_ = clone(base).fit(X[t], y[t])
        self.control_model_ = clone(base).fit(X[~t], y[~t])
        return self

    def predict_arms(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(P(convert | treated), P(convert | control)) per row of ``X``."""
        check_is_fitted(self, ["treated_model_", "control_model_"])
        X = np.asarray(X, dtype="float64")
        return self.treated_model_.predict_proba(X)[:, 1], self.control_model_.predict_proba(X)[:, 1]

    def predict(self, X) -> np.ndarray:
        treated, control = self.predict_arms(X)
        return treated - control


class TransformedOutcomeUplift(BaseEstimator):
    """Uplift as the regression of the transformed outcome ``Z = y (t − p) / (p (1 − p))`` (p = share treated),
    whose expectation given X is the uplift when the arms were assigned at random. ``estimator`` is a regressor.

    Learned: ``treatment_share_``, ``model_``.
    """

    def __init__(self, estimator=None):
        self.estimator = estimator

    def fit(self, X, y, treatment) -> TransformedOutcomeUplift:
        X, y, t = np.asarray(X, dtype="float64"), np.asarray(y, dtype="float64"), np.asarray(treatment, dtype=bool)
        p = float(t.mean())
        if not 0 < p < 1:
            raise ValueError("Both treated and control customers are needed to fit an uplift model.")
        z = y * (t - p) / (p * (1 - p))
        base = self.estimator if self.estimator is not None else _scaled(Ridge(alpha=10.0))
        self.treatment_share_ = p
        self.model_ = clone(base).fit(X, z)
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, ["model_"])
        return self.model_.predict(np.asarray(X, dtype="float64"))


def _make_model(name: str) -> BaseEstimator:
    if name == "two_model_logistic":
        return TwoModelUplift(_scaled(LogisticRegression(C=0.1, max_iter=2000)))
    if name == "two_model_gbm":
        return TwoModelUplift(GradientBoostingClassifier(n_estimators=100, max_depth=3, learning_rate=0.05,
                                                         subsample=0.8, min_samples_leaf=20,
                                                         random_state=RANDOM_STATE))
    return TransformedOutcomeUplift(_scaled(Ridge(alpha=10.0)))


MODELS: dict[str, str] = {
    "two_model_logistic": ("Two logistic regressions (contacted, held out) on log-scaled, standardised features, "
                           "L2-shrunk (C = 0.1)"),
    "two_model_gbm": "Two gradient-boosting classifiers (contacted, held out), 100 trees of depth 3",
    "transformed_outcome": "Ridge regression (alpha = 10) of the transformed outcome y (t − p) / (p (1 − p))",
}


# --- training, evaluation and scoring -------------------------------------------------------------------------


class UpliftRefused(ValueError):
    """The uplift model was not trained; the message says why and what to do."""


@dataclass(frozen=True, eq=False)  # eq=False: frames inside; compare results by their fields, not with ==
class UpliftResult:
    """An uplift model trained on one randomised campaign, evaluated on held-out contacts, and the targets it
    picks for the next campaign.

    - The campaign: ``campaign_id``, ``campaign_name``, ``start_date`` (the features' reference day),
      ``treatment_rule`` (how the arms were read), ``n_treatment``, ``n_control``, ``conversions_treatment``,
      ``conversions_control``, their rates, and ``observed_lift`` with its 95% Newcombe interval
      (``observed_lift_low``, ``observed_lift_high``).
    - The model: ``model`` (a key of ``MODELS``), ``model_name``, ``features``, ``estimator`` (fitted on the
      training split; ``predict`` gives the uplift for the ``features`` columns in that order), ``n_train``,
      ``n_test``.
    - Held-out evaluation: ``qini`` (:func:`qini_curve`), ``qini_score`` (:class:`QiniScore`),
      ``uplift_by_quintile`` (one row per fifth of the held-out customers by predicted uplift, highest first:
      quintile, customers, treated, control, predicted_uplift, observed_uplift).
    - ``contacts``: one row per contact: customer_id, is_treated, is_converted, is_test, predicted_uplift;
      ``mean_predicted_uplift`` is the mean of predicted_uplift over all contacts.
    - Targeting: ``as_of``, ``n_scored`` (customers scored), ``top_n``, ``targets`` (rank, customer_id,
      predicted_uplift, cumulative_incremental_conversions and the features) and
      ``expected_incremental_conversions`` (Σ predicted_uplift over the targets).
    """

    campaign_id: str
    campaign_name: str | None
    start_date: date
    treatment_rule: str
    n_treatment: int
    n_control: int
    conversions_treatment: int
    conversions_control: int
    observed_lift: float
    observed_lift_low: float
    observed_lift_high: float
    model: str
    model_name: str
    features: tuple[str, ...]
    n_train: int
    n_test: int
    qini: pd.DataFrame
    qini_score: QiniScore
    uplift_by_quintile: pd.DataFrame
    contacts: pd.DataFrame
    mean_predicted_uplift: float
    as_of: date
    n_scored: int
    top_n: int
    targets: pd.DataFrame
    expected_incremental_conversions: float
    estimator: BaseEstimator

    @property
    def treatment_conversion_rate(self) -> float:
        return self.conversions_treatment / self.n_treatment

    @property
    def control_conversion_rate(self) -> float:
        return self.conversions_control / self.n_control


def _choose_campaign(experiments: pd.DataFrame, campaign_id: str | None) -> pd.Series:
    randomised = experiments[(experiments["n_treatment"] > 0) & (experiments["n_control"] > 0)]
    if campaign_id is None:
        if randomised.empty:
            raise UpliftRefused(
                "No campaign has a control group: every contact in campaign_contacts was treated. An uplift model "
                "learns from customers held out at random; run a campaign with a control group (say 20% held "
                "out, contact_group 'control') and import its contacts.")
        return randomised.iloc[0]
    found = experiments[experiments["campaign_id"] == campaign_id]
    if found.empty:
        choices = randomised["campaign_id"].tolist()
        raise UpliftRefused(f"No contacts of campaign {campaign_id!r} in campaign_contacts; campaigns with a "
                            f"control group: {choices or 'none'}.")
    return found.iloc[0]


def _check_campaign(row: pd.Series, min_conversions: int) -> None:
    cid, n_t, n_c = row["campaign_id"], int(row["n_treatment"]), int(row["n_control"])
    x_t, x_c = int(row["conversions_treatment"]), int(row["conversions_control"])
    if n_c == 0 or n_t == 0:
        missing, present = ("control", f"all {n_t:,} contacts were treated") if n_c == 0 else \
            ("treatment", f"all {n_c:,} contacts were held out")
        raise UpliftRefused(
            f"Campaign {cid} has no {missing} group: {present}. An uplift model compares contacted with held-out "
            "customers chosen at random; choose a campaign with a control group or run one (say 20% held out).")
    if min(x_t, x_c) < min_conversions:
        raise UpliftRefused(
            f"Campaign {cid} has too few conversions for an uplift model: {x_c:,} in the control group (of "
            f"{n_c:,}) and {x_t:,} in the treatment group (of {n_t:,}); at least {min_conversions} in each are "
            "needed. Choose a larger campaign, a longer conversion window, or a bigger control group.")
    if min(n_t - x_t, n_c - x_c) < min_conversions:
        raise UpliftRefused(
            f"Campaign {cid}: nearly every contact converted ({n_t - x_t:,} treated and {n_c - x_c:,} control "
            f"contacts did not); at least {min_conversions} non-converters in each group are needed.")
    if row["start_date"] is None:
        raise UpliftRefused(f"Campaign {cid} has no start date and its contacts no contacted_at; import the "
                            "campaign's start_date so features can be taken from before it.")


def _treatment_rule(row: pd.Series) -> str:
    unknown, total = int(row["n_group_unknown"]), int(row["n_treatment"] + row["n_control"])
    if unknown == 0:
        return "contact_group (treatment / control)"
    if unknown == total:
        return "is_sent (no contact_group): sent = treated, not sent = control"
    contacts = "contact" if unknown == 1 else "contacts"
    return f"contact_group, else is_sent for the {unknown:,} {contacts} without a recognised group"


def _matrix(frame: pd.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    return frame[list(features)].to_numpy(dtype="float64")


def _by_quintile(y: np.ndarray, u: np.ndarray, t: np.ndarray) -> pd.DataFrame:
    order = np.argsort(-u, kind="stable")
    quintile = np.empty(len(u), dtype="int64")
    quintile[order] = 1 + (np.arange(len(u)) * 5) // len(u)
    frame = pd.DataFrame({"quintile": quintile, "y": y, "u": u, "t": t})
    rows = []
    for q, g in frame.groupby("quintile"):
        treated, control = g[g.t], g[~g.t]
        observed = treated.y.mean() - control.y.mean() if len(treated) and len(control) else math.nan
        rows.append({"quintile": int(q), "customers": len(g), "treated": len(treated), "control": len(control),
                     "predicted_uplift": float(g.u.mean()), "observed_uplift": float(observed)})
    return pd.DataFrame(rows, columns=list(QUINTILE_LABELS))


def _population_expr(tables: Mapping[str, ir.Table], as_of: date, scope: ir.Table | None) -> ir.Table:
    """customer_id of every customer known by ``as_of``: in customers (signup on or before it, or none) or with
    an order by then; only those in ``scope`` when given."""
    customers, orders = tables["customers"], tables["orders"]
    known = customers.filter(customers.customer_id.notnull())
    if "signup_date" in customers.columns:
        known = known.filter(known.signup_date.isnull() | (known.signup_date.cast("date") <= as_of))
    buyers = orders.filter(orders.customer_id.notnull(), orders.ordered_at < _day_start(as_of + timedelta(days=1)))
    population = known.select("customer_id").union(buyers.select("customer_id"), distinct=True)
    if scope is not None:
        population = population.filter(population.customer_id.isin(scope.customer_id))
    return population


def _score(backend: ibis.BaseBackend, tables: Mapping[str, ir.Table], estimator: BaseEstimator,
           features: tuple[str, ...], as_of: date, top_n: int, regions: tuple[str, ...],
           segments: tuple[str, ...]) -> tuple[pd.DataFrame, int]:
    scope = _customer_scope(tables["customers"], tables["orders"], regions, segments, as_of) \
        if regions or segments else None
    sources = [f for f in features if f not in _BASE_FEATURES]
    expr = uplift_features_expr(tables, as_of + timedelta(days=1), _population_expr(tables, as_of, scope),
                                sources=sources)
    frame = backend.execute(expr.order_by("customer_id")).reset_index(drop=True)
    columns = ["rank", "customer_id", "predicted_uplift", "cumulative_incremental_conversions", *features]
    if frame.empty:
        return pd.DataFrame(columns=columns), 0
    frame["predicted_uplift"] = estimator.predict(_matrix(frame, features))
    frame = frame.sort_values(["predicted_uplift", "customer_id"], ascending=[False, True], kind="stable")
    top = frame.head(top_n).reset_index(drop=True)
    top["rank"] = np.arange(1, len(top) + 1)
    top["cumulative_incremental_conversions"] = top["predicted_uplift"].cumsum()
    return top[columns], len(frame)


def _check_top_n(top_n: int) -> int:
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
        raise ValueError(f"top_n must be a whole number of at least 1, got {top_n!r}")
    return top_n


def score_customers(backend: ibis.BaseBackend, result: UpliftResult, as_of: date | None = None, *,
                    top_n: int = DEFAULT_TOP_N, regions: str | Iterable[str] = (),
                    segments: str | Iterable[str] = ()) -> pd.DataFrame:
    """One row per target, best first (at most ``top_n``): rank, customer_id, predicted_uplift,
    cumulative_incremental_conversions and the model's features as of ``as_of`` (default: the latest order date).

    Scores every customer known by ``as_of`` (optionally only ``regions`` / RFM ``segments`` as of ``as_of``) with
    ``result``'s model; features use data up to the end of ``as_of``.
    """
    top_n = _check_top_n(top_n)
    chosen = Filters(regions=regions, segments=segments)
    tables = _tables(backend)
    as_of = _resolve_as_of(backend, as_of)
    return _score(backend, tables, result.estimator, result.features, as_of, top_n, chosen.regions,
                  chosen.segments)[0]


def _resolve_as_of(backend: ibis.BaseBackend, as_of: date | None) -> date:
    if as_of is None:
        as_of = data_as_of(backend) or date.today()
    return as_of.date() if isinstance(as_of, datetime) else as_of


def campaign_features(backend: ibis.BaseBackend, campaign_id: str) -> pd.DataFrame:
    """One row per contact of ``campaign_id``, ordered by customer_id: :func:`campaign_features_expr` with every
    optional feature that has data, as of the campaign's start date."""
    tables = _tables(backend)
    row = _choose_campaign(_experiments(backend, tables), campaign_id)
    if row["start_date"] is None:
        raise UpliftRefused(f"Campaign {campaign_id} has no start date and its contacts no contacted_at.")
    expr = campaign_features_expr(tables, campaign_id, row["start_date"], sources=_feature_sources(backend, tables))
    return backend.execute(expr.order_by("customer_id")).reset_index(drop=True)


def train_uplift_model(
    backend: ibis.BaseBackend,
    campaign_id: str | None = None,
    *,
    as_of: date | None = None,
    top_n: int = DEFAULT_TOP_N,
    model: str = "two_model_logistic",
    test_size: float = TEST_SIZE,
    min_conversions: int = MIN_CONVERSIONS,
    random_state: int = RANDOM_STATE,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
) -> UpliftResult:
    """One uplift model learnt from ``campaign_id`` (default: the latest campaign with a control group), its
    held-out Qini evaluation, and the ``top_n`` customers to target next as of ``as_of`` (default: the latest order
    date).

    The model learns from all the campaign's contacts; ``regions`` and ``segments`` (RFM segment as of ``as_of``)
    only narrow whom it scores. Raises :class:`UpliftRefused` when the campaign has no control group, or fewer
    than ``min_conversions`` conversions in either group.
    """
    if model not in MODELS:
        raise ValueError(f"Unknown uplift model {model!r}; choose from {list(MODELS)}")
    top_n = _check_top_n(top_n)
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1 (the held-out share), got {test_size!r}")
    chosen = Filters(regions=regions, segments=segments)
    tables = _tables(backend)
    row = _choose_campaign(_experiments(backend, tables), campaign_id)
    _check_campaign(row, min_conversions)
    cid, start = str(row["campaign_id"]), row["start_date"]
    sources = _feature_sources(backend, tables)
    features = _feature_names(sources)
    frame = backend.execute(campaign_features_expr(tables, cid, start, sources=sources).order_by("customer_id"))
    frame = frame.reset_index(drop=True)
    x = _matrix(frame, features)
    y = frame["is_converted"].astype(bool).to_numpy().astype("int64")
    t = frame["is_treated"].astype(bool).to_numpy()
    train, test = train_test_split(np.arange(len(frame)), test_size=test_size, stratify=2 * t + y,
                                   random_state=random_state)
    estimator = _make_model(model).fit(x[train], y[train], t[train])
    uplift = estimator.predict(x)
    is_test = np.zeros(len(frame), dtype=bool)
    is_test[test] = True
    contacts = pd.DataFrame({"customer_id": frame["customer_id"], "is_treated": t, "is_converted": y.astype(bool),
                             "is_test": is_test, "predicted_uplift": uplift})
    x_t, n_t = int(row["conversions_treatment"]), int(row["n_treatment"])
    x_c, n_c = int(row["conversions_control"]), int(row["n_control"])
    observed = proportion_lift(x_t, n_t, x_c, n_c)  # one Newcombe interval for the whole app
    lift, low, high = observed.absolute_lift, observed.ci_low, observed.ci_high
    as_of = _resolve_as_of(backend, as_of)
    targets, n_scored = _score(backend, tables, estimator, features, as_of, top_n, chosen.regions, chosen.segments)
    name = row["campaign_name"]
    return UpliftResult(
        campaign_id=cid, campaign_name=None if pd.isna(name) else str(name), start_date=start,
        treatment_rule=_treatment_rule(row), n_treatment=n_t, n_control=n_c, conversions_treatment=x_t,
        conversions_control=x_c, observed_lift=lift, observed_lift_low=low, observed_lift_high=high,
        model=model, model_name=MODELS[model], features=features, n_train=len(train), n_test=len(test),
        qini=qini_curve(y[test], uplift[test], t[test]), qini_score=qini_score(y[test], uplift[test], t[test]),
        uplift_by_quintile=_by_quintile(y[test], uplift[test], t[test]), contacts=contacts,
        mean_predicted_uplift=float(uplift.mean()), as_of=as_of, n_scored=n_scored, top_n=top_n, targets=targets,
        expected_incremental_conversions=float(targets["predicted_uplift"].sum()), estimator=estimator,
    )
