"""Behavioural clusters: customers grouped by how they buy, with each group described in plain words.

Features (one row per customer with a purchase by the end of ``as_of``; one Ibis expression, pulled once):

- ``recency_days``: days from the last purchase to ``as_of``; ``tenure_days``: days from the first purchase;
- ``frequency``: purchases (returns are not purchases); ``monetary``: net revenue, returns subtracted;
- ``avg_order_value``: the mean amount of the customer's purchases;
- ``web_share``: share of purchases whose ``channel`` is a web channel (:data:`WEB_CHANNELS`; no channel = not web);
- ``return_rate``: value returned over value bought (as the overview's return rate), capped at 1;
- ``tickets_per_order``: support tickets created by ``as_of`` per purchase (0 without tickets).

Model (:class:`BehaviourClusters`, scikit-learn style): the skewed counts and amounts are log-scaled — ``log1p``
for the non-negative ones, and a sign-preserving ``sign(x)·log1p(|x|)`` for ``monetary``, which is negative for a
customer whose returns exceed their purchases — shares are used as they are; every feature is standardised; KMeans
(fixed ``n_init`` and ``random_state``) for each k in ``k_range`` unless ``n_clusters`` is set, keeping the k with
the highest silhouette, measured on a fixed-seed sample of at most ``silhouette_sample`` (2,000) customers. The
default features are RFM plus the web share (:data:`DEFAULT_FEATURES`); any of the eight can be chosen by name.

Names: each cluster's median of each (transformed, standardised) feature is compared with the overall median;
a difference of at least ``FEATURES[name].threshold`` standard deviations gives the feature's low or high word
(:data:`FEATURES`, data). Adjectives go before the noun (``monetary``'s word), qualifiers after a comma:
"recent frequent big spenders, mostly web". A cluster whose median frequency is 1 is "one-time" instead of
"infrequent". Clusters are numbered by their share of revenue, largest first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

__all__ = [
    "ALL_FEATURES",
    "DEFAULT_FEATURES",
    "FEATURES",
    "PROFILE_LABELS",
    "WEB_CHANNELS",
    "BehaviourClusters",
    "ClusterResult",
    "Feature",
    "cluster_features",
    "cluster_features_expr",
    "clusters",
]

WEB_CHANNELS: tuple[str, ...] = ("web", "online", "website", "app", "mobile app", "e-commerce", "ecommerce")


@dataclass(frozen=True)
class Feature:
    """How a feature is scaled and described.

    ``transform``: ``"log1p"`` (non-negative, skewed), ``"signed_log1p"`` (may be negative) or ``"none"`` (a share).
    ``low``/``high``: the words for a cluster whose median is ``threshold`` standard deviations below/above the
    overall median ("" = say nothing); ``part``: ``"adjective"`` (before the noun), ``"noun"`` or ``"qualifier"``
    (after a comma). ``order`` places adjectives and qualifiers.
    """

    name: str
    label: str
    help: str
    transform: str
    low: str
    high: str
    part: str
    order: int
    threshold: float = 0.5


_FEATURE_ROWS = (
    Feature("recency_days", "Days since last purchase", "Days from the last purchase to the as-of date.", "log1p",
            "recent", "lapsed", "adjective", 1),
    Feature("tenure_days", "Days since first purchase", "Days from the first purchase to the as-of date.", "log1p",
            "new", "long-standing", "adjective", 2),
    Feature("frequency", "Purchases", "Number of purchases (returns are not purchases).", "log1p",
            "infrequent", "frequent", "adjective", 3),
    Feature("monetary", "Net revenue", "Net revenue: purchases minus returns.", "signed_log1p",
            "low spenders", "big spenders", "noun", 0),
    Feature("avg_order_value", "Average order value", "Mean amount of the customer's purchases.", "log1p",
            "small baskets", "large baskets", "qualifier", 2),
    Feature("web_share", "Web share of purchases", "Share of purchases made in a web channel.", "none",
            "mostly in store or by phone", "mostly web", "qualifier", 1),
    Feature("return_rate", "Return rate", "Value returned over value bought (0 to 1).", "none",
            "", "many returns", "qualifier", 3),
    Feature("tickets_per_order", "Support tickets per purchase", "Support tickets opened per purchase.", "log1p",
            "", "many support tickets", "qualifier", 4),
)
FEATURES: dict[str, Feature] = {f.name: f for f in _FEATURE_ROWS}
ALL_FEATURES: tuple[str, ...] = tuple(FEATURES)
# RFM plus the channel: on the sample these four give the clearest groups (silhouette 0.29 at k=4, against 0.20
# with all eight, where the zero-inflated return and ticket rates split off small odd groups). Add the others by name.
DEFAULT_FEATURES: tuple[str, ...] = ("recency_days", "frequency", "monetary", "web_share")
_NOUN_NEUTRAL = "buyers"
_ONE_TIME = "one-time"
_AVERAGE = "average customers"

PROFILE_LABELS: dict[str, str] = {
    "cluster": "Cluster",
    "cluster_name": "Who they are",
    "customers": "Customers",
    "share_of_customers": "Share of customers",
    "revenue": "Net revenue",
    "revenue_share": "Share of revenue",
    **{f"median_{f.name}": f"{f.label} (median)" for f in _FEATURE_ROWS},
}


# --- features --------------------------------------------------------------------------------------------------


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time())


def _check_features(features: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(features)
    unknown = [f for f in chosen if f not in FEATURES]
    if unknown:
        raise ValueError(f"Unknown feature(s) {unknown}; choose from {list(ALL_FEATURES)}")
    if len(chosen) < 2:
        raise ValueError(f"Clustering needs at least two features, got {list(chosen)}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"Features listed twice: {list(chosen)}")
    return chosen


def cluster_features_expr(orders: ir.Table, tickets: ir.Table | None, as_of: date,
                          features: Iterable[str] = DEFAULT_FEATURES) -> ir.Table:
    """One row per customer with a purchase by the end of ``as_of``: customer_id and ``features`` (module doc)."""
    features = _check_features(features)
    end = _end_of(as_of)
    known = orders.filter(orders.customer_id.notnull(), orders.ordered_at < end)
    amount = known.amount.fill_null(0)
    is_return = amount < 0
    if "is_return" in known.columns:
        is_return = is_return | known.is_return.fill_null(False)
    purchase = ~is_return
    is_web = known.channel.strip().lower().isin(WEB_CHANNELS).fill_null(False)
    per = known.group_by("customer_id").aggregate(
        first_at=known.ordered_at.min(where=purchase),
        last_at=known.ordered_at.max(where=purchase),
        frequency=purchase.sum().cast("int64"),
        web_purchases=(purchase & is_web).sum().cast("int64"),
        monetary=amount.sum(),
        bought=amount.sum(where=purchase & (amount > 0)),
        returned=(-amount).sum(where=amount < 0),
    )
    per = per.filter(per.frequency > 0)
    day = ibis.literal(as_of)
    per = per.mutate(
        recency_days=(day - per.last_at.date()).cast("int64"),
        tenure_days=(day - per.first_at.date()).cast("int64"),
        avg_order_value=per.bought.fill_null(0) / per.frequency,
        web_share=per.web_purchases / per.frequency,
        return_rate=ibis.cases((per.bought.fill_null(0) > 0,
                                ibis.least(per.returned.fill_null(0) / per.bought, 1.0)), else_=0.0),
    )
    if "tickets_per_order" in features:
        if tickets is None:
            per = per.mutate(tickets_per_order=ibis.literal(0.0))
        else:
            t = tickets.filter(tickets.customer_id.notnull(), tickets.created_at < end)
            counts = t.group_by("customer_id").aggregate(n_tickets=t.count())
            per = per.left_join(counts, "customer_id")
            per = per.mutate(tickets_per_order=per.n_tickets.fill_null(0) / per.frequency)
    return per.select("customer_id", *features)


def cluster_features(backend: ibis.BaseBackend, as_of: date,
                     features: Iterable[str] = DEFAULT_FEATURES) -> pd.DataFrame:
    """One row per customer with a purchase by ``as_of`` (ordered by customer_id): customer_id and ``features``."""
    present = set(backend.list_tables())
    if "orders" not in present:
        raise ValueError("The database has no 'orders' table; import orders before clustering customers.")
    tickets = backend.table("support_tickets") if "support_tickets" in present else None
    expr = cluster_features_expr(backend.table("orders"), tickets, as_of, features)
    frame = backend.execute(expr.order_by("customer_id"))
    frame["customer_id"] = frame["customer_id"].astype(str)
    for name in _check_features(features):
        frame[name] = frame[name].astype("float64")
    return frame


# --- the model -------------------------------------------------------------------------------------------------


def _transform(frame: pd.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    columns = []
    for name in features:
        x = frame[name].to_numpy(dtype=float)
        kind = FEATURES[name].transform
        if kind == "log1p":
            x = np.log1p(np.clip(x, 0, None))
        elif kind == "signed_log1p":
            x = np.sign(x) * np.log1p(np.abs(x))
        columns.append(x)
    return np.column_stack(columns)


class BehaviourClusters(ClusterMixin, BaseEstimator):
    """KMeans on log-scaled, standardised behaviour features with k chosen by silhouette.

    ``fit(frame)`` takes a frame with the ``features`` columns (as :func:`cluster_features` returns) and learns
    ``k_`` (the chosen number of clusters), ``labels_`` (0..k-1 per row, numbered by share of revenue, largest
    first; revenue is ``monetary``, or nothing when it is not a feature), ``silhouette_by_k_`` ({k: score};
    one entry when ``n_clusters`` is set), ``centers_`` (frame: cluster × feature, in standard deviations),
    ``scaler_``, ``kmeans_``, ``names_`` ({cluster: words}) and ``profiles_`` (one row per cluster: cluster,
    cluster_name, customers, share_of_customers, revenue, revenue_share, median_<feature> in the data's units for
    every feature in the frame, also those not clustered on).

    >>> frame = pd.DataFrame({"frequency": [1, 1, 2, 30, 32, 35], "monetary": [20, 25, 22, 900, 950, 1000]})
    >>> model = BehaviourClusters(features=("frequency", "monetary")).fit(frame)
    >>> model.k_, model.labels_.tolist()
    (2, [1, 1, 1, 0, 0, 0])
    """

    def __init__(self, n_clusters: int | None = None, k_range: tuple[int, int] = (2, 10),
                 features: tuple[str, ...] = DEFAULT_FEATURES, random_state: int = 0, n_init: int = 4,
                 silhouette_sample: int = 2000):
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.features = features
        self.random_state = random_state
        self.n_init = n_init
        self.silhouette_sample = silhouette_sample

    def _candidates(self, n_rows: int) -> list[int]:
        if self.n_clusters is not None:
            k = int(self.n_clusters)
            if k < 1 or k > n_rows:
                raise ValueError(f"n_clusters must be between 1 and the number of customers ({n_rows}), got {k}")
            return [k]
        low, high = (int(v) for v in self.k_range)
        if low < 2 or high < low:
            raise ValueError(f"k_range must be (low, high) with 2 <= low <= high, got {self.k_range}")
        ks = [k for k in range(low, high + 1) if k < n_rows]
        if not ks:
            raise ValueError(f"Too few customers ({n_rows}) to choose between {low} and {high} clusters")
        return ks

    def fit(self, frame: pd.DataFrame) -> BehaviourClusters:
        # One thread: on a few thousand rows OpenMP/BLAS threads cost more than they save, and on a busy machine
        # they spin (measured on the sample: 0.05 s per KMeans fit on one thread, 1-3 s with two contended ones).
        with threadpool_limits(limits=1):
            return self._fit(frame)

    def _fit(self, frame: pd.DataFrame) -> BehaviourClusters:
        features = _check_features(self.features)
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise ValueError(f"Required column {missing[0]} missing from the feature frame")
        if frame[list(features)].isna().any().any():
            raise ValueError("The feature frame has missing values; cluster_features() gives complete rows")
        n = len(frame)
        ks = self._candidates(n)
        scaler = StandardScaler().fit(_transform(frame, features))
        x = scaler.transform(_transform(frame, features))
        rng = np.random.default_rng(self.random_state)
        sample = np.sort(rng.choice(n, size=min(n, int(self.silhouette_sample)), replace=False))
        fits, scores = {}, {}
        for k in ks:
            km = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state).fit(x)
            fits[k] = km
            labels = km.labels_[sample]
            distinct = len(np.unique(labels))
            scores[k] = float(silhouette_score(x[sample], labels)) if 1 < distinct < len(sample) else float("nan")
        if self.n_clusters is not None:
            k = ks[0]
        else:
            finite = {k: s for k, s in scores.items() if np.isfinite(s)}
            if not finite:
                raise ValueError("No k in k_range splits these customers; they may all look alike")
            k = max(finite, key=lambda key: (finite[key], -key))  # the best score; the smaller k on a tie
        km = fits[k]
        order = _revenue_order(frame, km.labels_, k)
        relabel = np.empty(k, dtype=np.int64)
        relabel[order] = np.arange(k)
        self.scaler_ = scaler
        self.kmeans_ = km
        self.k_ = k
        self.relabel_ = relabel
        self.labels_ = relabel[km.labels_]
        self.silhouette_by_k_ = scores
        self.features_ = features
        self.centers_ = pd.DataFrame(km.cluster_centers_[order], columns=list(features)).rename_axis("cluster")
        self.names_ = _names(x, self.labels_, k, features, frame)
        self.profiles_ = _profiles(frame, self.labels_, k, self.names_)
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The standardised, log-scaled features of ``frame`` (rows × features), as the model sees them."""
        check_is_fitted(self, "scaler_")
        return self.scaler_.transform(_transform(frame, self.features_))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The cluster (numbered as in ``profiles_``) nearest each row of ``frame``."""
        check_is_fitted(self, "kmeans_")
        return self.relabel_[self.kmeans_.predict(self.transform(frame))]


def _revenue_order(frame: pd.DataFrame, labels: np.ndarray, k: int) -> np.ndarray:
    """Original KMeans labels sorted by the cluster's revenue (then size), largest first."""
    revenue = (np.bincount(labels, weights=frame["monetary"].to_numpy(dtype=float), minlength=k)
               if "monetary" in frame.columns else np.zeros(k))
    size = np.bincount(labels, minlength=k)
    return np.lexsort((np.arange(k), -size, -revenue))


def _names(x: np.ndarray, labels: np.ndarray, k: int, features: tuple[str, ...], frame: pd.DataFrame) -> dict:
    """Words for each cluster from its medians of the standardised features against the overall medians."""
    overall = np.median(x, axis=0)
    names = {}
    for c in range(k):
        inside = labels == c
        diff = np.median(x[inside], axis=0) - overall
        adjectives, qualifiers, noun = [], [], _NOUN_NEUTRAL
        for j, name in enumerate(features):
            f = FEATURES[name]
            word = f.high if diff[j] >= f.threshold else f.low if diff[j] <= -f.threshold else ""
            if name == "frequency" and np.median(frame["frequency"].to_numpy()[inside]) <= 1:
                word = _ONE_TIME
            if not word:
                continue
            if f.part == "noun":
                noun = word
            elif f.part == "adjective":
                adjectives.append((f.order, word))
            else:
                qualifiers.append((f.order, word))
        if not adjectives and not qualifiers and noun == _NOUN_NEUTRAL:
            names[c] = _AVERAGE
            continue
        text = " ".join([w for _, w in sorted(adjectives)] + [noun])
        if qualifiers:
            text += ", " + ", ".join(w for _, w in sorted(qualifiers))
        names[c] = text
    seen: dict[str, int] = {}
    for c in range(k):  # the same words twice: number the later ones
        seen[names[c]] = seen.get(names[c], 0) + 1
        if seen[names[c]] > 1:
            names[c] = f"{names[c]} ({seen[names[c]]})"
    return names


def _profiles(frame: pd.DataFrame, labels: np.ndarray, k: int, names: dict) -> pd.DataFrame:
    """One row per cluster; medians of every known feature in ``frame``, also those not used for clustering."""
    described = [f for f in ALL_FEATURES if f in frame.columns]
    data = frame[described].assign(cluster=labels)
    medians = data.groupby("cluster")[described].median().add_prefix("median_")
    sizes = data.groupby("cluster").size()
    revenue = (frame["monetary"].groupby(labels).sum() if "monetary" in frame.columns
               else pd.Series(np.nan, index=range(k)))
    total_revenue = float(revenue.sum()) if "monetary" in frame.columns else np.nan
    out = pd.DataFrame({"cluster": np.arange(k, dtype=np.int64)})
    out["cluster_name"] = out["cluster"].map(names)
    out["customers"] = out["cluster"].map(sizes).astype("int64")
    out["share_of_customers"] = out["customers"] / len(frame)
    out["revenue"] = out["cluster"].map(revenue).astype("float64")
    out["revenue_share"] = out["revenue"] / total_revenue if total_revenue else np.nan
    return out.merge(medians, left_on="cluster", right_index=True)


# --- the whole run ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterResult:
    """Clusters as of ``as_of``: ``assignments`` (one row per customer: customer_id, cluster, cluster_name, pc1,
    pc2 — the first two principal components of the standardised features, for a scatter), ``profiles`` (one row
    per cluster, see :class:`BehaviourClusters`), ``silhouette_by_k``, the chosen ``k``, the ``features`` used and
    ``explained_variance`` (share of variance pc1 and pc2 carry)."""

    as_of: date
    k: int
    features: tuple[str, ...]
    silhouette_by_k: dict[int, float]
    assignments: pd.DataFrame
    profiles: pd.DataFrame
    explained_variance: tuple[float, float]


def clusters(backend: ibis.BaseBackend, as_of: date, n_clusters: int | None = None,
             features: Iterable[str] = DEFAULT_FEATURES, k_range: tuple[int, int] = (2, 10),
             random_state: int = 0) -> ClusterResult:
    """Behavioural clusters of the customers with a purchase by ``as_of``: one assignment row per customer and
    one profile row per cluster. Fewer than 3 customers: a ValueError that says so."""
    features = _check_features(features)
    frame = cluster_features(backend, as_of, ALL_FEATURES)  # all of them, so the profiles describe every one
    if len(frame) < 3:
        raise ValueError(f"Only {len(frame)} customer(s) have bought by {as_of}; clustering needs at least 3.")
    model = BehaviourClusters(n_clusters=n_clusters, k_range=k_range, features=features,
                              random_state=random_state).fit(frame)
    x = model.transform(frame)
    pca = PCA(n_components=2, random_state=random_state).fit(x)
    coords = pca.transform(x)
    # a principal axis has no sign of its own: make the largest loading positive so the picture is stable
    signs = np.sign(pca.components_[np.arange(2), np.abs(pca.components_).argmax(axis=1)])
    coords = coords * signs
    assignments = pd.DataFrame({
        "customer_id": frame["customer_id"].to_numpy(),
        "cluster": model.labels_,
        "cluster_name": [model.names_[c] for c in model.labels_],
        "pc1": coords[:, 0],
        "pc2": coords[:, 1],
    })
    ratio = pca.explained_variance_ratio_
    return ClusterResult(as_of, model.k_, features, dict(model.silhouette_by_k_), assignments, model.profiles_,
                         (float(ratio[0]), float(ratio[1])))
