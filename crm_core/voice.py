"""Voice of the customer: Net Promoter Score with its interval, what promoters and detractors write about, and
what a late delivery does to the score.

Inputs: ``surveys`` (one row per answer: nps_score 0-10, comment, channel), ``orders`` and ``customers`` (for the
RFM segment and the region), and for :func:`nps_after_delivery` ``shipments`` and ``support_tickets``.
Definitions (answers from the start of day ``start`` to the end of day ``as_of``; answers without a score are
left out):

- **Groups.** Promoters score 9-10, passives 7-8, detractors 0-6. ``nps`` = 100 × (promoters − detractors) ÷
  answers, in points from −100 to 100.
- **Interval.** With p_P and p_D the promoter and detractor shares of n answers, the NPS is 100 × (p_P − p_D), a
  difference of two shares of one multinomial sample, so Var(p_P − p_D) = [p_P(1 − p_P) + p_D(1 − p_D) + 2 p_P
  p_D] / n = [p_P + p_D − (p_P − p_D)²] / n (the covariance of two multinomial shares is −p_P p_D / n). The 95%
  interval is NPS ± 1.96 × 100 × √Var, clipped to −100..100 (a Wald interval: rough below ~30 answers, and of
  zero width when every answer is in one group).
- **Segment** of an answer: the customer's RFM segment as of ``as_of`` (:func:`crm_core.segments.rfm_expr`);
  customers with no purchase by then (and anonymous answers) are ``"No purchases"``.
- **Themes** (:func:`comment_themes`): comments are split into words and two-word phrases (scikit-learn's
  ``CountVectorizer``, English stop words removed, lower case), counting the comments that contain a term. For each
  group a term is scored by the weighted log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi &
  Quinn 2008): with y_g the group's comments containing the term, y_r the other groups', n_g and n_r these counts
  summed over all terms, and the prior α the term's count in all comments (α₀ the sum over all terms),
  δ = log[(y_g + α)/(n_g + α₀ − y_g − α)] − log[(y_r + α)/(n_r + α₀ − y_r − α)], z = δ / √(1/(y_g + α) + 1/(y_r + α)).
  Terms are ranked by z (over-represented in the group: z > 0). A term found in exactly the same comments of the
  group as a better-ranked term adds nothing and is listed with it (``related_terms``): "item broke" stands for
  "item", "broke", "week". Only the comment and its group are pulled into pandas. ``source="tickets"`` reads the
  support tickets' subjects (first comments) instead, grouped by the ticket's CSAT: satisfied (4-5), neutral (3),
  dissatisfied (1-2); tickets without a rating are left out.
- **After a delivery** (:func:`nps_after_delivery`): an answer given within ``window_days`` after a delivery to the
  same customer (``delivered_at < responded_at ≤ delivered_at + window_days``) is *after a late delivery* when any
  such delivery was late (:mod:`crm_core.fulfilment`), else *after an on-time delivery* (deliveries without a
  promised date count here); other answers are *no recent delivery*. Answers given within
  ``exclude_after_ticket_days`` after a support ticket of the customer was opened or resolved are left out by
  default: they rate the support contact more than the delivery. The mean score after a late delivery is compared
  with all other answers by Welch's t interval (:func:`crm_core.campaigns.mean_lift`).

Counting runs in the engine as Ibis expressions (DuckDB, PostgreSQL, Spark); only a row per group is pulled,
except the comments for the text features.
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
from sklearn.feature_extraction.text import CountVectorizer

from crm_core.campaigns import MetricLift, _z, mean_lift
from crm_core.fulfilment import _as_of, delivery_facts_expr
from crm_core.fulfilment import _tables as _fulfilment_tables
from crm_core.metrics import Filters, _customer_scope, _scoped
from crm_core.segments import SEGMENTS, rfm_expr

__all__ = [
    "DELIVERY_GROUPS",
    "NO_PURCHASES",
    "NPS_COLUMNS",
    "NPS_GROUPS",
    "THEME_COLUMNS",
    "THEME_SOURCES",
    "TICKET_GROUPS",
    "VOICE_BY",
    "VOICE_HELP",
    "VOICE_LABELS",
    "DeliveryNps",
    "comment_themes",
    "nps",
    "nps_after_delivery",
    "nps_after_delivery_expr",
    "nps_expr",
    "nps_interval",
    "survey_facts_expr",
]

NPS_GROUPS: tuple[str, ...] = ("promoter", "passive", "detractor")
PROMOTER_MIN, PASSIVE_MIN = 9, 7
VOICE_BY: tuple[str, ...] = ("month", "segment", "channel")
NO_PURCHASES = "No purchases"
UNKNOWN = "Unknown"
DELIVERY_GROUPS: tuple[str, ...] = ("after a late delivery", "after an on-time delivery", "no recent delivery")

NPS_COLUMNS: tuple[str, ...] = (
    "responses", "promoters", "passives", "detractors", "promoter_share", "passive_share", "detractor_share",
    "nps", "nps_low", "nps_high", "mean_score",
)
THEME_COLUMNS: tuple[str, ...] = (
    "group", "rank", "term", "comments", "share_of_group", "rest_comments", "share_of_rest", "log_odds",
    "z_score", "related_terms", "example_comments",
)

VOICE_LABELS: dict[str, str] = {
    "month": "Month",
    "segment": "RFM segment",
    "channel": "Survey channel",
    "responses": "Answers",
    "promoters": "Promoters",
    "passives": "Passives",
    "detractors": "Detractors",
    "promoter_share": "Promoters (share)",
    "passive_share": "Passives (share)",
    "detractor_share": "Detractors (share)",
    "nps": "NPS",
    "nps_low": "NPS, 95% low",
    "nps_high": "NPS, 95% high",
    "mean_score": "Mean score (0-10)",
    "group": "Group",
    "rank": "Rank",
    "term": "Term",
    "comments": "Comments with the term",
    "share_of_group": "Share of the group's comments",
    "rest_comments": "Other groups' comments with the term",
    "share_of_rest": "Share of the other groups' comments",
    "log_odds": "Log-odds ratio",
    "z_score": "z-score",
    "related_terms": "Same comments as",
    "example_comments": "Examples",
    "score_sd": "Standard deviation of the score",
}

VOICE_HELP: dict[str, str] = {
    "survey_id": "The survey answer's identifier.",
    "customer_id": "The customer who answered.",
    "responded_at": "When they answered.",
    "nps_score": "Likelihood to recommend, 0-10.",
    "nps_group": "promoter (9-10), passive (7-8) or detractor (0-6).",
    "month": "The month the answers were given.",
    "segment": ("The customer's RFM segment on the date; 'No purchases' for customers without a purchase by then "
                "and for anonymous answers."),
    "channel": "How the survey was answered.",
    "responses": "Survey answers with a score in the period.",
    "promoters": "Answers scoring 9 or 10.",
    "passives": "Answers scoring 7 or 8.",
    "detractors": "Answers scoring 0 to 6.",
    "promoter_share": "Promoters ÷ answers.",
    "passive_share": "Passives ÷ answers.",
    "detractor_share": "Detractors ÷ answers.",
    "nps": "Net Promoter Score: % promoters − % detractors, from −100 to 100.",
    "nps_low": ("Lower end of the 95% interval of the NPS: NPS − 1.96 × 100 × √[(p_P + p_D − (p_P − p_D)²) / n], "
                "p_P and p_D the promoter and detractor shares of n answers."),
    "nps_high": "Upper end of the 95% interval of the NPS (same formula, plus).",
    "mean_score": "Mean of the 0-10 scores.",
    "score_sd": "Sample standard deviation of the 0-10 scores.",
    "group": ("The answers compared: an NPS group (survey themes), a CSAT group (ticket themes: satisfied 4-5, "
              "neutral 3, dissatisfied 1-2) or what happened before the answer (deliveries)."),
    "rank": "Position of the term in its group, most distinctive first.",
    "term": "A word or two-word phrase (stop words removed) from the comments.",
    "comments": "Comments of the group that contain the term.",
    "share_of_group": "Comments of the group with the term ÷ the group's comments.",
    "rest_comments": "Comments of the other groups that contain the term.",
    "share_of_rest": "Comments of the other groups with the term ÷ their comments.",
    "log_odds": ("Log-odds ratio of the term in the group against the other groups, smoothed by the term's "
                 "frequency in all comments (informative Dirichlet prior)."),
    "z_score": "Log-odds ratio ÷ its standard error: how clearly the term belongs to the group (above 2: clearly).",
    "related_terms": "Terms found in exactly the same comments of the group, shown once under this term.",
    "example_comments": "Up to three of the group's comments with the term, most frequent first, separated by ' | '.",
}


# --- scope and facts -------------------------------------------------------------------------------------------


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time())


def _nps_group(score: ir.IntegerValue) -> ir.StringValue:
    return ibis.cases((score >= PROMOTER_MIN, "promoter"), (score >= PASSIVE_MIN, "passive"), else_="detractor")


def survey_facts_expr(tables: Mapping[str, ir.Table], as_of: date, start: date | None = None,
                      regions: tuple[str, ...] = (), segments: tuple[str, ...] = ()) -> ir.Table:
    """One row per survey answer with a score from ``start`` to ``as_of`` by a customer in view: survey_id,
    customer_id, responded_at, nps_score, comment, channel, nps_group."""
    s = tables["surveys"]
    s = s.filter(s.nps_score.notnull(), s.responded_at < _end_of(as_of))
    if start is not None:
        s = s.filter(s.responded_at >= datetime.combine(start, time()))
    s = _scoped(s, _customer_scope(tables["customers"], tables["orders"], regions, segments, as_of))
    return s.select("survey_id", "customer_id", "responded_at", "nps_score", "comment", "channel",
                    nps_group=_nps_group(s.nps_score))


def _counts_by(s: ir.Table, key: dict[str, ir.Value]) -> ir.Table:
    metrics = dict(
        responses=s.count(),
        promoters=s.count(where=s.nps_group == "promoter"),
        passives=s.count(where=s.nps_group == "passive"),
        detractors=s.count(where=s.nps_group == "detractor"),
        mean_score=s.nps_score.cast("float64").mean(),
        score_var=s.nps_score.cast("float64").var(how="sample"),
    )
    return s.group_by(**key).aggregate(**metrics) if key else s.aggregate(**metrics)


def nps_expr(tables: Mapping[str, ir.Table], as_of: date, start: date | None = None, regions: tuple[str, ...] = (),
             segments: tuple[str, ...] = (), by: str | None = None) -> ir.Table:
    """One row (or one per ``by`` value): responses, promoters, passives, detractors, mean_score, score_var."""
    _check_by(by)
    s = survey_facts_expr(tables, as_of, start, regions, segments)
    if by is None:
        return _counts_by(s, {})
    if by == "month":
        return _counts_by(s, {"month": s.responded_at.truncate("M")})
    if by == "channel":
        return _counts_by(s, {"channel": s.channel.fill_null(UNKNOWN)})
    r = rfm_expr(tables["orders"], as_of)
    r = r.select(_customer_id=r.customer_id, _segment=r.segment)
    j = s.left_join(r, s.customer_id == r._customer_id)
    return _counts_by(j, {"segment": j._segment.fill_null(NO_PURCHASES)})


def _check_by(by: str | None) -> None:
    if by is not None and by not in VOICE_BY:
        raise ValueError(f"Unknown grouping by={by!r}; choose one of {list(VOICE_BY)} or None.")


# --- NPS -------------------------------------------------------------------------------------------------------


def nps_interval(promoters: int, detractors: int, responses: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wald interval of the NPS (in points) from the counts; see the module docstring for the variance.

    >>> [round(v, 2) for v in nps_interval(5, 3, 10)]
    [-34.03, 74.03]
    """
    if responses <= 0 or promoters < 0 or detractors < 0 or promoters + detractors > responses:
        raise ValueError(f"need 0 <= promoters + detractors <= responses > 0, got {promoters}, {detractors} of "
                         f"{responses}")
    p, d = promoters / responses, detractors / responses
    half = _z(confidence) * 100 * math.sqrt(max(p + d - (p - d) ** 2, 0.0) / responses)
    score = 100 * (p - d)
    return max(-100.0, score - half), min(100.0, score + half)


def _with_shares(frame: pd.DataFrame) -> pd.DataFrame:
    for name in ("responses", "promoters", "passives", "detractors"):
        frame[name] = pd.to_numeric(frame[name]).fillna(0).astype("int64")
    n = frame["responses"].where(frame["responses"] > 0)
    for name, share in (("promoters", "promoter_share"), ("passives", "passive_share"),
                        ("detractors", "detractor_share")):
        frame[share] = (frame[name] / n).astype("float64")
    frame["nps"] = (100 * (frame["promoter_share"] - frame["detractor_share"])).astype("float64")
    bounds = [nps_interval(int(p), int(d), int(r)) if r > 0 else (float("nan"), float("nan"))
              for p, d, r in zip(frame["promoters"], frame["detractors"], frame["responses"])]
    frame["nps_low"] = [b[0] for b in bounds]
    frame["nps_high"] = [b[1] for b in bounds]
    frame["mean_score"] = frame["mean_score"].astype("float64")
    return frame


_TABLES = ("customers", "orders", "surveys", "shipments", "support_tickets")


def _tables(backend: ibis.BaseBackend, names: tuple[str, ...] = _TABLES) -> dict[str, ir.Table]:
    return _fulfilment_tables(backend, names)


def _scope_args(backend, as_of, start, regions, segments) -> tuple[date, Filters]:
    as_of = _as_of(backend, as_of)
    return as_of, Filters(start=start, end=as_of, regions=regions, segments=segments)


def nps(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    start: date | None = None,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
    by: str | None = None,
) -> pd.DataFrame:
    """One row of NPS for the answers from ``start`` to ``as_of`` (or one row per month, RFM segment or survey
    channel with ``by``): the columns of ``NPS_COLUMNS`` (see ``VOICE_HELP``).

    ``as_of`` defaults to the date of the latest order. Months are in time order (``month`` is the first day,
    datetime64), segments in ``SEGMENTS`` order with ``"No purchases"`` last, channels by name (blank:
    ``"Unknown"``). With no answers the single row has 0 responses and NaN rates.
    """
    as_of, chosen = _scope_args(backend, as_of, start, regions, segments)
    expr = nps_expr(_tables(backend, _TABLES[:3]), as_of, start, chosen.regions, chosen.segments, by)
    frame = _with_shares(backend.execute(expr))
    if by == "month":
        frame["month"] = pd.to_datetime(frame["month"]).dt.to_period("M").dt.to_timestamp().astype("datetime64[ns]")
        frame = frame.sort_values("month")
    elif by == "segment":
        order = {s: i for i, s in enumerate((*SEGMENTS, NO_PURCHASES))}
        frame = frame.sort_values("segment", key=lambda c: c.map(order))
    elif by == "channel":
        frame = frame.sort_values("channel")
    return frame[[*([by] if by else []), *NPS_COLUMNS]].reset_index(drop=True)


# --- themes ----------------------------------------------------------------------------------------------------


def _comments_expr(tables: Mapping[str, ir.Table], as_of: date, start: date | None, regions: tuple[str, ...],
                   segments: tuple[str, ...]) -> ir.Table:
    s = survey_facts_expr(tables, as_of, start, regions, segments)
    text = s.comment.strip()
    s = s.filter(text.notnull(), text.length() > 0)
    return s.select(comment=s.comment.strip(), nps_group=s.nps_group)


TICKET_GROUPS: tuple[str, ...] = ("satisfied", "neutral", "dissatisfied")  # CSAT 4-5, 3, 1-2
THEME_SOURCES: dict[str, tuple[str, ...]] = {"surveys": NPS_GROUPS, "tickets": TICKET_GROUPS}


def _ticket_comments_expr(tables: Mapping[str, ir.Table], as_of: date, start: date | None,
                          regions: tuple[str, ...], segments: tuple[str, ...]) -> ir.Table:
    """One row per rated ticket with a subject created from ``start`` to ``as_of`` by a customer in view: comment
    (the subject) and nps_group (the CSAT group of ``TICKET_GROUPS``)."""
    t = tables["support_tickets"]
    text = t.subject.strip()
    t = t.filter(t.csat.notnull(), text.notnull(), text.length() > 0, t.created_at < _end_of(as_of))
    if start is not None:
        t = t.filter(t.created_at >= datetime.combine(start, time()))
    t = _scoped(t, _customer_scope(tables["customers"], tables["orders"], regions, segments, as_of))
    group = ibis.cases((t.csat >= 4, "satisfied"), (t.csat == 3, "neutral"), else_="dissatisfied")
    return t.select(comment=t.subject.strip(), nps_group=group)


def _empty_themes() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in THEME_COLUMNS})


def comment_themes(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    start: date | None = None,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
    top: int = 10,
    min_comments: int = 2,
    source: str = "surveys",
) -> pd.DataFrame:
    """One row per NPS group (promoter, passive, detractor) and distinctive term, at most ``top`` per group, best
    first: the columns of ``THEME_COLUMNS`` (see ``VOICE_HELP`` and the module docstring for the score).
    ``source="tickets"``: the support tickets' subjects by CSAT group (satisfied, neutral, dissatisfied) instead.

    Terms in fewer than ``min_comments`` comments overall are ignored. Groups without comments, or without a term
    over-represented in them, have no rows; no comments at all give an empty frame.
    """
    for name, value in (("top", top), ("min_comments", min_comments)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    if source not in THEME_SOURCES:
        raise ValueError(f"source must be one of {', '.join(THEME_SOURCES)}, got {source!r}")
    as_of, chosen = _scope_args(backend, as_of, start, regions, segments)
    if source == "surveys":
        expr = _comments_expr(_tables(backend, _TABLES[:3]), as_of, start, chosen.regions, chosen.segments)
    else:
        expr = _ticket_comments_expr(_tables(backend, ("customers", "orders", "support_tickets")), as_of, start,
                                     chosen.regions, chosen.segments)
    df = backend.execute(expr)
    if df.empty:
        return _empty_themes()
    vectorizer = CountVectorizer(stop_words="english", ngram_range=(1, 2), binary=True, min_df=min_comments)
    try:
        x = vectorizer.fit_transform(df["comment"]).tocsc()
    except ValueError:  # every comment is stop words, or no term is frequent enough
        return _empty_themes()
    terms = vectorizer.get_feature_names_out()
    groups = df["nps_group"].to_numpy()
    total = np.asarray(x.sum(axis=0)).ravel().astype(float)
    alpha, alpha0 = total, total.sum()
    rows = []
    for group in THEME_SOURCES[source]:
        mask = groups == group
        if not mask.any():
            continue
        y_g = np.asarray(x[mask].sum(axis=0)).ravel().astype(float)
        y_r = total - y_g
        n_g, n_r = y_g.sum(), y_r.sum()
        delta = (np.log((y_g + alpha) / (n_g + alpha0 - y_g - alpha))
                 - np.log((y_r + alpha) / (n_r + alpha0 - y_r - alpha)))
        z = delta / np.sqrt(1 / (y_g + alpha) + 1 / (y_r + alpha))
        rows.extend(_group_terms(group, x[mask], df["comment"].to_numpy()[mask], terms, y_g, y_r, int(mask.sum()),
                                 int((~mask).sum()), delta, z, top))
    if not rows:
        return _empty_themes()
    return pd.DataFrame(rows, columns=list(THEME_COLUMNS))


def _group_terms(group, xg, comments, terms, y_g, y_r, n_docs_g, n_docs_r, delta, z, top) -> list[dict]:
    """The ``top`` best-scoring terms of one group, each with the terms found in exactly the same comments."""
    # best first: z, then more words (a phrase reads better than its words), then the term itself
    n_words = np.array([t.count(" ") + 1 for t in terms])
    candidates = [i for i in np.lexsort((terms, -n_words, -z)) if z[i] > 0 and y_g[i] > 0]
    kept: dict[bytes, dict] = {}
    rows: list[dict] = []
    for i in candidates:
        docs = xg[:, i].indices
        key = np.sort(docs).tobytes()
        if key in kept:
            kept[key]["related"].append(terms[i])
            continue
        if len(rows) == top:
            continue  # still collect the related terms of the rows already chosen
        counts = pd.Series(comments[docs]).value_counts()
        examples = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        row = {"group": group, "rank": len(rows) + 1, "term": terms[i], "comments": int(y_g[i]),
               "share_of_group": y_g[i] / n_docs_g, "rest_comments": int(y_r[i]),
               "share_of_rest": y_r[i] / n_docs_r if n_docs_r else float("nan"), "log_odds": float(delta[i]),
               "z_score": float(z[i]), "related": [], "example_comments": " | ".join(c for c, _ in examples)}
        kept[key] = row
        rows.append(row)
    for row in rows:
        row["related_terms"] = ", ".join(sorted(row.pop("related")))
    return rows


# --- NPS after a delivery --------------------------------------------------------------------------------------


def nps_after_delivery_expr(tables: Mapping[str, ir.Table], as_of: date, window_days: int = 7,
                            exclude_after_ticket_days: int | None = 7, start: date | None = None,
                            regions: tuple[str, ...] = (), segments: tuple[str, ...] = ()) -> ir.Table:
    """One row per delivery group (``DELIVERY_GROUPS``) and is_excluded (answered soon after a ticket):
    responses, promoters, passives, detractors, mean_score, score_var."""
    s = survey_facts_expr(tables, as_of, start, regions, segments).select("survey_id", "customer_id",
                                                                          "responded_at", "nps_score", "nps_group")
    f = delivery_facts_expr(tables, as_of)
    f = f.filter(f.is_delivered, f.customer_id.notnull())
    d = f.select(_customer=f.customer_id, _at=f.delivered_at, _late=f.is_late.fill_null(False).ifelse(1, 0))
    j = s.left_join(d, [s.customer_id == d._customer, d._at < s.responded_at,
                        s.responded_at <= d._at + ibis.interval(days=window_days)])
    # the answer is attributed to the latest delivery before it
    s = j.group_by(["survey_id", "customer_id", "responded_at", "nps_score", "nps_group"]).aggregate(
        _deliveries=j._at.count(), _late=j._late.argmax(j._at))
    group = ibis.cases((s._deliveries == 0, DELIVERY_GROUPS[2]), (s._late == 1, DELIVERY_GROUPS[0]),
                       else_=DELIVERY_GROUPS[1])
    s = s.select("survey_id", "customer_id", "responded_at", "nps_score", "nps_group", delivery_group=group)
    if exclude_after_ticket_days:
        t = tables["support_tickets"]
        t = t.filter(t.customer_id.notnull())
        moments = ibis.union(t.select(_customer=t.customer_id, _at=t.created_at),
                             t.filter(t.resolved_at.notnull()).select(_customer=t.customer_id, _at=t.resolved_at),
                             distinct=False)
        span = ibis.interval(days=exclude_after_ticket_days)
        j = s.left_join(moments, [s.customer_id == moments._customer, moments._at < s.responded_at,
                                  moments._at >= s.responded_at - span])
        s = j.group_by(["survey_id", "nps_score", "nps_group", "delivery_group"]).aggregate(
            is_excluded=j._at.count() > 0)
    else:
        s = s.mutate(is_excluded=ibis.literal(False))
    return _counts_by(s, {"delivery_group": s.delivery_group, "is_excluded": s.is_excluded})


@dataclass(frozen=True)
class DeliveryNps:
    """Survey answers after a late delivery against all other answers.

    ``groups`` has one row per ``DELIVERY_GROUPS`` entry (columns: group, responses, mean_score, score_sd and the
    NPS columns); ``excluded`` counts the answers left out because they followed a support ticket.
    ``effect`` is the mean score after a late delivery minus that of every other answer (Welch), None when
    either side has fewer than 2 answers (``note`` says so).
    """

    as_of: date
    window_days: int
    exclude_after_ticket_days: int | None
    excluded: int
    groups: pd.DataFrame
    effect: MetricLift | None
    note: str = ""

    def frame(self) -> pd.DataFrame:
        return self.groups.copy()


def _pooled(rows: pd.DataFrame) -> tuple[int, float, float]:
    """Size, mean and sample variance of the union of groups given each group's size, mean and variance."""
    n = int(rows["responses"].sum())
    if n == 0:
        return 0, float("nan"), float("nan")
    mean = float((rows["responses"] * rows["mean_score"]).sum() / n)
    within = ((rows["responses"] - 1).clip(lower=0) * rows["score_var"].fillna(0)).sum()
    between = (rows["responses"] * (rows["mean_score"] - mean) ** 2).sum()
    return n, mean, float((within + between) / (n - 1)) if n > 1 else float("nan")


def nps_after_delivery(
    backend: ibis.BaseBackend,
    as_of: date | None = None,
    window_days: int = 7,
    exclude_after_ticket_days: int | None = 7,
    start: date | None = None,
    regions: str | Iterable[str] = (),
    segments: str | Iterable[str] = (),
) -> DeliveryNps:
    """Answers grouped by what came before them (one row per ``DELIVERY_GROUPS`` entry): after a late delivery,
    after an on-time delivery, no delivery in the ``window_days`` before; and the difference of the mean score
    after a late delivery against all other answers, with a 95% Welch interval.

    ``exclude_after_ticket_days`` (None: keep all) leaves out answers given that many days after a support ticket
    of the same customer was opened or resolved.
    """
    for name, value in (("window_days", window_days), ("exclude_after_ticket_days", exclude_after_ticket_days)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a whole number of days of at least 1, got {value!r}")
    as_of, chosen = _scope_args(backend, as_of, start, regions, segments)
    expr = nps_after_delivery_expr(_tables(backend), as_of, window_days, exclude_after_ticket_days, start,
                                   chosen.regions, chosen.segments)
    raw = backend.execute(expr)
    raw["is_excluded"] = raw["is_excluded"].astype(bool)
    raw["responses"] = pd.to_numeric(raw["responses"]).fillna(0).astype("int64")
    excluded = int(raw.loc[raw["is_excluded"], "responses"].sum())
    kept = raw[~raw["is_excluded"]].drop(columns="is_excluded").rename(columns={"delivery_group": "group"})
    groups = kept.set_index("group").reindex(list(DELIVERY_GROUPS)).rename_axis("group").reset_index()
    groups = _with_shares(groups)
    groups["score_var"] = groups["score_var"].astype("float64")
    groups["score_sd"] = np.sqrt(groups["score_var"])

    late = groups[groups["group"] == DELIVERY_GROUPS[0]]
    rest = groups[(groups["group"] != DELIVERY_GROUPS[0]) & (groups["responses"] > 0)]
    n_l, m_l, v_l = _pooled(late)
    n_r, m_r, v_r = _pooled(rest)
    effect, note = None, ""
    if n_l < 2 or n_r < 2:
        note = (f"{n_l} answers after a late delivery and {n_r} others: at least 2 of each are needed to compare "
                "the scores")
    else:
        effect = mean_lift(m_l, v_l, n_l, m_r, v_r, n_r, metric="mean_score")
    columns = ["group", "responses", "mean_score", "score_sd", *NPS_COLUMNS[1:10]]
    return DeliveryNps(as_of, window_days, exclude_after_ticket_days, excluded, groups[columns], effect, note)
