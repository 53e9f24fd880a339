"""Customer 360: find a customer, see who they are and what they are worth, everything that happened to them on one
timeline, the notes staff keep about them, and what to do next.

Definitions (``as_of`` is a calendar day and everything is measured at the end of it; no ``as_of`` = the date of the
latest order, :func:`crm_core.metrics.data_as_of`, as in every view):

- :func:`search_customers`: the user's text is trimmed, runs of spaces become one, and it is compared with the
  customers table as an Ibis literal (quoted by the compiler, never formatted into SQL). The match is ranked:
  0 the customer id equals the text (case-insensitive), 1 the e-mail equals it (case-insensitive, trimmed), 2 the
  id starts with it, 3 the name (``name``, else ``first_name last_name``) or the e-mail contains it, compared
  lower-cased and without accents (``zoe`` finds Zoë, ``MULLER`` Müller, ``strasse`` Straße). Ids and e-mails are
  compared with the engine's ``=``, ``STARTS_WITH`` and ``CONTAINS`` (``POSITION`` in PostgreSQL); names with a
  regular expression built from the text in which every letter is the class of its accented forms and every
  metacharacter is escaped. ``LIKE`` is never used, so ``%`` and ``_`` are plain characters (``%`` finds a literal
  percent sign and nothing else) and nothing needs a LIKE escape. Ties are broken by customer_id. The search
  scans the customers table once (no index): about 0.6-1 s on a million customers on two cores.
- :func:`profile`: the customer's row; their RFM segment and scores as of ``as_of``
  (:func:`crm_core.segments.rfm_expr`, over all customers, since scores are ranks); revenue, orders, profit and
  value tier over their whole history to ``as_of`` (:func:`crm_core.value.customer_value`, tiers by profit rank
  among all customers); tickets open at the end of ``as_of`` and tickets that breached their SLA
  (:func:`crm_core.support.ticket_facts_expr`); CLV and P(alive) when a :func:`crm_core.clv.clv` result is given
  (``churn_risk`` = 1 − P(alive)). The next best action is :func:`crm_core.service.action_list`'s: the flags of
  the customer's tickets (open and breached, open complaint, breached in the last ``recent_days`` days, open) read
  through :data:`crm_core.service.ACTION_RULES` for a customer of the top tiers; anyone else, or a top-tier
  customer no rule covers, gets :data:`NO_ACTION`.
- :func:`timeline`: one row per event, newest first. ``order`` / ``return`` (an order with ``is_return`` or a
  negative amount) at ``ordered_at``; ``campaign contact`` at ``contacted_at``, else the campaign's start date
  (held-out control rows included, marked as such); ``ticket opened`` at ``created_at`` and ``ticket resolved`` at
  ``resolved_at``; ``shipment delivered`` / ``shipment late`` at ``delivered_at`` (late: delivered on a day after
  the promised date, as :mod:`crm_core.fulfilment` counts it), and a shipment not delivered whose promised date has
  passed is ``shipment late`` at the start of the day after the promised date; ``survey`` at ``responded_at``;
  ``note`` at ``created_at``. Events after the end of ``as_of`` are left out, except notes: they are written now,
  about the customer as they are today. The events are one Ibis union sorted in the engine.
- Notes (:func:`add_note`, :func:`notes`) live in ``customer_notes``, in the store's file; the insert binds every
  value as a parameter.

Everything is Ibis over the backend (it compiles for PostgreSQL and Spark) except :func:`add_note`, which writes to
the DuckDB store with a bound ``INSERT``. Only one customer's rows, or ``limit`` search hits, are pulled.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import duckdb
import ibis
import ibis.expr.types as ir
import pandas as pd

from crm_core import service, value
from crm_core.campaigns import CONTROL_GROUPS
from crm_core.metrics import _is_return, data_as_of
from crm_core.segments import rfm_expr
from crm_core.support import SlaPolicy, ticket_facts_expr

__all__ = [
    "CUSTOMER360_HELP",
    "MATCH_LABELS",
    "NO_ACTION",
    "SEARCH_COLUMNS",
    "TIMELINE_COLUMNS",
    "TIMELINE_KINDS",
    "CustomerProfile",
    "add_note",
    "notes",
    "profile",
    "search_customers",
    "timeline",
]

NO_ACTION = "No action needed."
SEARCH_COLUMNS: tuple[str, ...] = ("customer_id", "name", "email", "region", "signup_date", "match_rank", "match")
MATCH_LABELS: dict[int, str] = {0: "customer id", 1: "e-mail", 2: "customer id starts with", 3: "name or e-mail"}
TIMELINE_COLUMNS: tuple[str, ...] = ("at", "kind", "title", "detail", "amount", "source_id")
TIMELINE_KINDS: tuple[str, ...] = ("order", "return", "campaign contact", "ticket opened", "ticket resolved",
                                   "shipment delivered", "shipment late", "survey", "note")
NOTE_COLUMNS: tuple[str, ...] = ("note_id", "customer_id", "created_at", "author", "note")
MAX_NOTE_CHARS = 5000

CUSTOMER360_HELP: dict[str, str] = {
    "search": ("Type a customer id, an e-mail address or part of a name or e-mail. Exact ids come first, then exact "
               "e-mails, then ids that start with the text, then names and e-mails that contain it (case and "
               "accents ignored: 'zoe' finds Zoë)."),
    "match_rank": "0 exact customer id, 1 exact e-mail, 2 customer id starts with the text, 3 name or e-mail "
                  "contains it.",
    "match": "Why the customer was found.",
    "customer_id": "The customer's identifier.",
    "name": "Full name (or first and last name).",
    "email": "E-mail address.",
    "region": "Sales region.",
    "signup_date": "Date the customer was acquired.",
    "segment": "RFM segment at the end of the as-of day (none without a purchase).",
    "recency_days": "Days from the last purchase to the as-of day.",
    "frequency": "Purchases up to the as-of day (returns are not purchases).",
    "monetary": "Net spend up to the as-of day, returns subtracted.",
    "rfm_scores": "Recency, frequency and spend scores 1-5, by rank among all customers.",
    "revenue": "Net revenue over the customer's whole history to the as-of day.",
    "orders": "Purchases over the customer's whole history to the as-of day.",
    "profit": "Gross margin minus the cost to serve (support, shipping, campaign contacts), whole history.",
    "value_tier": "Tier by profit rank among all customers: Platinum the top 5%, Gold the next 15% ...",
    "open_tickets": "Support tickets not resolved at the end of the as-of day.",
    "breached_tickets": "Tickets that missed their first-response or resolution target (SLA), ever.",
    "open_breached_tickets": "Open tickets that have already missed a target.",
    "last_order_at": "When the customer last bought (returns are not purchases).",
    "clv": "Predicted customer lifetime value over the CLV horizon (from the value page's model).",
    "p_alive": "Probability that the customer is still active (BG/NBD model).",
    "churn_risk": "1 − P(alive): the probability that the customer has silently stopped buying.",
    "next_best_action": ("What to do now, from the service action rules (high-value customers with open or "
                         "breached tickets); 'No action needed.' when no rule applies."),
    "at": "When it happened.",
    "kind": "Order, return, campaign contact, ticket opened or resolved, shipment delivered or late, survey, note.",
    "title": "What happened, in a few words.",
    "detail": "More about it: channel, status, outcome, comment.",
    "amount": "Money involved: order total (negative for a return), revenue attributed to a campaign contact.",
    "source_id": "The id of the order, campaign, ticket, shipment, survey answer or note.",
    "note": "Something staff want to remember about the customer; notes are kept with author and time.",
    "author": "Who wrote the note.",
}


# --- small helpers ---------------------------------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time())


def _end_of(day: date) -> datetime:
    return _day_start(day + timedelta(days=1))


def _as_of(backend, as_of: date | None) -> date:
    if isinstance(as_of, datetime):
        return as_of.date()
    return as_of or data_as_of(backend) or date.today()


def _column(table: ir.Table, name: str, dtype: str = "string") -> ir.Value:
    """``table[name]``, or a typed null when an imported table lacks the optional column."""
    return table[name] if name in table.columns else ibis.null(dtype)


def _accent_classes() -> dict[str, str]:
    """Each plain lower-case letter → the regex class of it and its accented lower-case forms (``e`` → ``[eèéêë...]``):
    the Latin-1 and Latin Extended-A letters whose decomposition starts with it, plus ø, ł, đ, ħ, ı, ŧ, ð."""
    variants: dict[str, list[str]] = {}
    for cp in range(0xC0, 0x250):
        ch = chr(cp)
        if ch != ch.lower():
            continue
        base = unicodedata.normalize("NFKD", ch)[0]
        if base != ch and base.isascii() and base.isalpha():
            variants.setdefault(base.lower(), []).append(ch)
    for ch, base in (("ø", "o"), ("ł", "l"), ("đ", "d"), ("ħ", "h"), ("ı", "i"), ("ŧ", "t"), ("ð", "d")):
        if ch not in variants.get(base, []):
            variants.setdefault(base, []).append(ch)
    return {base: "[" + base + "".join(chars) + "]" for base, chars in variants.items()}


_CLASSES = _accent_classes()
_FOLD_TABLE = str.maketrans({ch: base for base, cls in _CLASSES.items() for ch in cls[2:-1]})
_LIGATURES = {"ss": "ß", "ae": "æ", "oe": "œ", "th": "þ"}
_REGEX_SPECIAL = frozenset(".^$*+?()[]{}|\\")
MAX_QUERY_CHARS = 200


def _fold_text(text: str) -> str:
    """``text`` lower-cased, accents removed and ligatures spelt out (Zoë → zoe, Straße → strasse)."""
    out = text.lower().translate(_FOLD_TABLE)
    for plain, ligature in _LIGATURES.items():
        out = out.replace(ligature, plain)
    return out


def _char_pattern(ch: str) -> str:
    if ch in _CLASSES:
        return _CLASSES[ch]
    return "\\" + ch if ch in _REGEX_SPECIAL else ch


def _accent_pattern(text: str) -> str:
    """A regular expression matching ``text`` (already folded) in lower-cased text with or without accents: every
    letter becomes the class of its accented forms, ss/ae/oe/th also match ß/æ/œ/þ, and regex metacharacters are
    escaped, so the pattern holds only literal characters and classes (RE2, PostgreSQL and Java read it alike)."""
    out, i = [], 0
    while i < len(text):
        pair = text[i:i + 2]
        if pair in _LIGATURES:
            out.append(f"({_char_pattern(pair[0])}{_char_pattern(pair[1])}|{_LIGATURES[pair]})")
            i += 2
        else:
            out.append(_char_pattern(text[i]))
            i += 1
    return "".join(out)


def _clean_query(query: str) -> str:
    """Trimmed, runs of white space (newlines included) as one space."""
    return re.sub(r"\s+", " ", str(query)).strip()


# --- search ----------------------------------------------------------------------------------------------------


def _search_expr(customers: ir.Table, query: str, limit: int) -> ir.Table:
    """At most ``limit`` customers matching ``query`` (cleaned, non-empty): the columns of :data:`SEARCH_COLUMNS`,
    best match first (see the module docstring)."""
    folded = _fold_text(query)
    q_lower, q_folded = ibis.literal(query.lower(), "string"), ibis.literal(folded, "string")
    pattern = ibis.literal(_accent_pattern(folded), "string")
    first, last = _column(customers, "first_name"), _column(customers, "last_name")
    name = ibis.coalesce(_column(customers, "name"), first + " " + last, first, last)
    email = _column(customers, "email").lower()
    id_lower = customers.customer_id.cast("string").lower()
    # a cheap filter first (an exact e-mail also contains the text), so the rank and the output columns are
    # computed for the matches only; the name is matched by a pattern, which costs more than a plain CONTAINS
    in_email = email.contains(q_folded)
    if folded != query.lower():
        in_email = in_email | email.contains(q_lower)
    found = customers.filter(((id_lower == q_lower) | id_lower.startswith(q_lower) | in_email
                              | name.lower().re_search(pattern)).fill_null(False))
    id_lower = found.customer_id.cast("string").lower()
    rank = ibis.cases((id_lower == q_lower, 0), (_column(found, "email").strip().lower() == q_lower, 1),
                      (id_lower.startswith(q_lower), 2), else_=3)
    first, last = _column(found, "first_name"), _column(found, "last_name")
    hits = found.select(
        customer_id=found.customer_id.cast("string"),
        name=ibis.coalesce(_column(found, "name"), first + " " + last, first, last),
        email=_column(found, "email"), region=_column(found, "region"),
        signup_date=_column(found, "signup_date", "date"), match_rank=rank)
    return hits.order_by(["match_rank", "customer_id"]).limit(limit)


def search_customers(backend: ibis.BaseBackend, query: str, limit: int = 20) -> pd.DataFrame:
    """One row per customer matching ``query`` (at most ``limit``): the columns of :data:`SEARCH_COLUMNS`, best
    match first — exact id, exact e-mail, id prefix, then name or e-mail containing the text (case- and
    accent-insensitive). An empty query finds nobody."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a whole number of at least 1, got {limit!r}")
    text = _clean_query(query or "")
    if not text:
        return _empty(SEARCH_COLUMNS)
    if len(text) > MAX_QUERY_CHARS:
        raise ValueError(f"The search text has {len(text):,} characters; search with at most {MAX_QUERY_CHARS}.")
    frame = backend.execute(_search_expr(backend.table("customers"), text, limit))
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame["match_rank"] = frame["match_rank"].astype("int64")
    frame["match"] = frame["match_rank"].map(MATCH_LABELS)
    return frame[list(SEARCH_COLUMNS)].reset_index(drop=True)


# --- profile ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerProfile:
    """One customer at the end of ``as_of`` (definitions in the module docstring and :data:`CUSTOMER360_HELP`).

    ``customer`` holds the whole customers row. RFM fields are None without a purchase by ``as_of``; value fields
    are 0 / None when the customer has no order, ticket or contact; ``clv``, ``p_alive``, ``churn_risk`` and
    ``expected_purchases`` are None unless a CLV frame was given (or the customer is not in it).
    ``action_urgency`` is the position of the action rule that applies (1 = most urgent), None with
    :data:`NO_ACTION`.
    """

    customer_id: str
    as_of: date
    customer: dict
    name: str | None
    email: str | None
    region: str | None
    signup_date: date | None
    segment: str | None
    recency_days: int | None
    frequency: int
    monetary: float
    r_score: int | None
    f_score: int | None
    m_score: int | None
    last_order_at: datetime | None
    revenue: float
    orders: int
    profit: float
    value_tier: str | None
    tickets: int
    open_tickets: int
    breached_tickets: int
    open_breached_tickets: int
    clv: float | None
    p_alive: float | None
    churn_risk: float | None
    expected_purchases: float | None
    next_best_action: str
    action_urgency: int | None


def _missing(x) -> bool:
    return x is None or (not isinstance(x, str) and pd.isna(x))


def _opt(x, kind=float):
    return None if _missing(x) else kind(x)


def _customer_row(backend, customer_id: str) -> dict:
    customers = backend.table("customers")
    row = backend.execute(customers.filter(customers.customer_id == ibis.literal(customer_id, "string")).limit(1))
    if row.empty:
        raise ValueError(f"No customer {customer_id!r} in the customers table; find the id with search_customers().")
    return {k: (None if _missing(v) else v) for k, v in row.iloc[0].to_dict().items()}


def _ticket_counts_expr(facts: ir.Table, as_of: date, recent_days: int) -> ir.Table:
    """One row: tickets, open_tickets, breached_tickets, open_breached_tickets of ``facts`` (one customer's), and
    the action flags as :func:`crm_core.service.action_list` sets them (its ``_action_facts_expr``)."""
    flag = service._flag
    counts = facts.aggregate(tickets=facts.count(), open_tickets=flag(facts.is_open).sum(),
                             breached_tickets=flag(facts.is_breached).sum(),
                             open_breached_tickets=flag(facts.is_open & facts.is_breached).sum())
    per = service._action_facts_expr(facts, as_of, recent_days)
    flags = per.aggregate(a_open=per.open_tickets.sum(), a_open_breached=per.open_breached_tickets.sum(),
                          a_open_complaints=per.open_complaints.sum(), a_breached=per.breached_tickets.sum())
    return counts.cross_join(flags)


def _next_best_action(value_tier: str | None, counts: dict, top_tiers: tuple[str, ...],
                      rules: tuple[service.ActionRule, ...]) -> tuple[str, int | None]:
    if value_tier not in top_tiers:
        return NO_ACTION, None
    n = {k: int(0 if _missing(counts[k]) else counts[k])
         for k in ("a_open", "a_open_breached", "a_open_complaints", "a_breached")}
    frame = pd.DataFrame({"value_tier": [value_tier], "has_open_breached": [n["a_open_breached"] > 0],
                          "has_open_complaint": [n["a_open_complaints"] > 0],
                          "has_recent_breach": [n["a_breached"] > 0], "has_open": [n["a_open"] > 0]})
    urgency, action = service._apply_rules(frame, rules)
    if pd.isna(urgency.iloc[0]):
        return NO_ACTION, None
    return str(action.iloc[0]), int(urgency.iloc[0])


def profile(
    backend: ibis.BaseBackend,
    customer_id: str,
    as_of: date | None = None,
    *,
    clv_frame: pd.DataFrame | None = None,
    values: pd.DataFrame | None = None,
    policy: SlaPolicy = service.DEFAULT_POLICY,
    rates: value.CostRates = service.DEFAULT_RATES,
    top_tiers: tuple[str, ...] = service.TOP_TIERS,
    recent_days: int = 30,
    rules: tuple[service.ActionRule, ...] = service.ACTION_RULES,
) -> CustomerProfile:
    """One customer at the end of ``as_of``: see :class:`CustomerProfile`. Raises ``ValueError`` for an unknown id.

    ``clv_frame`` is ``crm_core.clv.clv(...).customers`` (customer_id, p_alive, expected_purchases, clv), and
    ``values`` the :func:`crm_core.value.customer_value` frame of all history to ``as_of`` with the same rates,
    when the caller has them cached; without ``values`` the tiers are computed here (all customers are ranked).
    """
    customer_id = str(customer_id).strip()
    row = _customer_row(backend, customer_id)
    as_of = _as_of(backend, as_of)
    orders = backend.table("orders")
    r = rfm_expr(orders, as_of)
    rfm = backend.execute(r.filter(r.customer_id == ibis.literal(customer_id, "string")))
    rfm_row = rfm.iloc[0].to_dict() if len(rfm) else {}
    if values is None:
        values = value.customer_value(backend, as_of, None, rates)
    mine = values.loc[values["customer_id"].astype(str) == customer_id]
    v = mine.iloc[0].to_dict() if len(mine) else {}
    tickets = backend.table("support_tickets")
    facts = ticket_facts_expr(tickets.filter(tickets.customer_id == ibis.literal(customer_id, "string")), as_of,
                              policy)
    counts = backend.execute(_ticket_counts_expr(facts, as_of, recent_days)).iloc[0].to_dict()
    tier = _opt(v.get("value_tier"), str)
    action, urgency = _next_best_action(tier, counts, tuple(top_tiers), rules)
    c = {}
    if clv_frame is not None and len(clv_frame):
        hit = clv_frame.loc[clv_frame["customer_id"].astype(str) == customer_id]
        c = hit.iloc[0].to_dict() if len(hit) else {}
    p_alive = _opt(c.get("p_alive"))
    last = rfm_row.get("last_purchase_at")
    signup = row.get("signup_date")
    name = row.get("name")
    if name is None and (row.get("first_name") or row.get("last_name")):
        name = " ".join(p for p in (row.get("first_name"), row.get("last_name")) if p)
    return CustomerProfile(
        customer_id=customer_id, as_of=as_of, customer=row, name=name, email=row.get("email"),
        region=row.get("region"), signup_date=None if signup is None else pd.Timestamp(signup).date(),
        segment=_opt(rfm_row.get("segment"), str), recency_days=_opt(rfm_row.get("recency_days"), int),
        frequency=int(rfm_row.get("frequency") or 0), monetary=float(rfm_row.get("monetary") or 0.0),
        r_score=_opt(rfm_row.get("r_score"), int), f_score=_opt(rfm_row.get("f_score"), int),
        m_score=_opt(rfm_row.get("m_score"), int),
        last_order_at=None if _missing(last) else pd.Timestamp(last).to_pydatetime(),
        revenue=float(v.get("revenue") or 0.0), orders=int(v.get("orders") or 0),
        profit=float(v.get("profit") or 0.0), value_tier=tier,
        tickets=int(counts["tickets"] or 0), open_tickets=int(_opt(counts["open_tickets"]) or 0),
        breached_tickets=int(_opt(counts["breached_tickets"]) or 0),
        open_breached_tickets=int(_opt(counts["open_breached_tickets"]) or 0),
        clv=_opt(c.get("clv")), p_alive=p_alive, churn_risk=None if p_alive is None else 1.0 - p_alive,
        expected_purchases=_opt(c.get("expected_purchases")),
        next_best_action=action, action_urgency=urgency,
    )


# --- timeline --------------------------------------------------------------------------------------------------

_SEP = " · "


def _joined(*parts: ir.StringValue) -> ir.StringValue:
    """The non-empty ``parts`` joined with " · " (nulls and blanks skipped), in the engine."""
    out = ibis.literal("")
    for part in parts:
        text = part.cast("string").strip()
        out = out + ibis.ifelse(text.isnull() | (text == ""), "", _SEP + text.fill_null(""))
    return out.substr(len(_SEP))


def _if(condition: ir.BooleanValue, text: str) -> ir.StringValue:
    return ibis.ifelse(condition.fill_null(False), text, ibis.null("string"))


def _event(table: ir.Table, at, kind: str, title, detail, amount, source_id) -> ir.Table:
    return table.select(at=at.cast("timestamp"), kind=ibis.literal(kind), title=title.cast("string"),
                        detail=detail.cast("string"), amount=amount.cast("float64"),
                        source_id=source_id.cast("string"))


def _timeline_expr(tables: dict[str, ir.Table], customer_id: str, as_of: date, policy: SlaPolicy) -> ir.Table:
    """One row per event of the customer (columns :data:`TIMELINE_COLUMNS`), unsorted; see the module docstring."""
    me = ibis.literal(customer_id, "string")
    end = ibis.literal(_end_of(as_of))
    no_amount = ibis.null("float64")
    parts = []

    o = tables["orders"]
    o = o.filter(o.customer_id == me, o.ordered_at < end)
    returned = _is_return(o)
    o = o.mutate(_returned=returned)
    for kind, is_ret, word in (("order", False, "Order"), ("return", True, "Return")):
        x = o.filter(o._returned == is_ret)
        parts.append(_event(x, x.ordered_at, kind, word + " " + x.order_id.cast("string"),
                            _joined(x.channel, x.status), x.amount, x.order_id))

    campaigns = tables["campaigns"].select("campaign_id", "campaign_name", campaign_channel="channel",
                                           campaign_start="start_date")
    cc = tables["campaign_contacts"]
    c = cc.filter(cc.customer_id == me).left_join(campaigns, "campaign_id")
    at = ibis.coalesce(c.contacted_at, c.campaign_start.cast("timestamp"))
    c = c.mutate(_at=at).filter(lambda t: t._at < end)
    is_control = c.contact_group.strip().lower().isin(tuple(CONTROL_GROUPS)).fill_null(False)
    parts.append(_event(
        c, c._at, "campaign contact",
        "Campaign " + ibis.coalesce(c.campaign_name, c.campaign_id.cast("string")),
        _joined(c.campaign_channel, _if(is_control, "held out (control group, not sent)"),
                _if(c.is_opened, "opened"), _if(c.is_clicked, "clicked"), _if(c.is_responded, "responded"),
                _if(c.is_converted, "converted")),
        c.attributed_revenue, c.campaign_id))

    t = tables["support_tickets"]
    f = ticket_facts_expr(t.filter(t.customer_id == me), as_of, policy)
    subject = ibis.coalesce(f.subject, f.category)
    title = "Ticket " + f.ticket_id.cast("string") + ibis.ifelse(subject.isnull(), "", ": " + subject.fill_null(""))
    parts.append(_event(
        f, f.created_at, "ticket opened", title,
        _joined(f.channel, f.priority_level + " priority", f.category, _if(f.is_open, "open"),
                _if(f.is_breached, "SLA breached")),
        no_amount, f.ticket_id))
    done = f.filter(f.resolution_hours.notnull())
    tenths = (done.resolution_hours * 10 + 0.5).floor().cast("int64")  # a float's text differs by engine
    parts.append(_event(
        done, done.resolved_at, "ticket resolved", "Ticket " + done.ticket_id.cast("string") + " resolved",
        _joined("after " + (tenths // 10).cast("string") + "." + (tenths % 10).cast("string") + " h",
                _if(done.is_breached, "SLA breached"), "CSAT " + done.csat.cast("string"),
                _if(done.is_reopened, "reopened")),
        no_amount, done.ticket_id))

    mine = tables["orders"].filter(tables["orders"].customer_id == me).select("order_id")
    s = tables["shipments"].inner_join(mine, "order_id")
    delivered = s.delivered_at < end
    s = s.mutate(_delivered=delivered.fill_null(False),
                 _late=(s.delivered_at.date() > s.promised_date).fill_null(False))
    d = s.filter(s._delivered, ~s._late)
    parts.append(_event(
        d, d.delivered_at, "shipment delivered", "Delivered: order " + d.order_id.cast("string"),
        _joined(d.carrier, "promised " + d.promised_date.cast("string")), no_amount, d.shipment_id))
    late = s.filter(s._delivered, s._late)
    parts.append(_event(
        late, late.delivered_at, "shipment late", "Delivered late: order " + late.order_id.cast("string"),
        _joined(late.carrier, "promised " + late.promised_date.cast("string"),
                "days late: " + late.delivered_at.date().delta(late.promised_date, unit="day").cast("string")),
        no_amount, late.shipment_id))
    overdue = s.filter(~s._delivered, s.promised_date < ibis.literal(as_of))
    parts.append(_event(
        overdue, (overdue.promised_date + ibis.interval(days=1)).cast("timestamp"), "shipment late",
        "Not delivered: order " + overdue.order_id.cast("string"),
        _joined(overdue.carrier, "promised " + overdue.promised_date.cast("string")), no_amount,
        overdue.shipment_id))

    sv = tables["surveys"]
    sv = sv.filter(sv.customer_id == me, sv.responded_at < end)
    parts.append(_event(sv, sv.responded_at, "survey", "NPS " + sv.nps_score.cast("string"),
                        _joined(sv.channel, sv.comment), no_amount, sv.survey_id))

    n = tables["customer_notes"]
    n = n.filter(n.customer_id == me)
    parts.append(_event(n, n.created_at, "note", "Note by " + n.author.fill_null("unknown"), n.note, no_amount,
                        n.note_id))
    return ibis.union(*parts, distinct=False)


_TIMELINE_TABLES = ("orders", "campaigns", "campaign_contacts", "support_tickets", "shipments", "surveys",
                    "customer_notes")


def _tables(backend, names: tuple[str, ...]) -> dict[str, ir.Table]:
    present = set(backend.list_tables())
    missing = [n for n in names if n not in present]
    if missing:
        raise ValueError(f"The database has no {', '.join(repr(m) for m in missing)} table; open it with "
                         "crm_core.store.connect, which creates every canonical table.")
    return {n: backend.table(n) for n in names}


def timeline(backend: ibis.BaseBackend, customer_id: str, as_of: date | None = None, limit: int | None = None,
             *, policy: SlaPolicy = service.DEFAULT_POLICY) -> pd.DataFrame:
    """One row per event of the customer up to the end of ``as_of`` (notes whatever their date), newest first:
    the columns of :data:`TIMELINE_COLUMNS`, ``kind`` one of :data:`TIMELINE_KINDS`; at most ``limit`` rows.

    Events at the same moment keep the order of :data:`TIMELINE_KINDS`, then source_id. Ticket states (open, SLA
    breached) are judged at the end of ``as_of`` under ``policy``.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a whole number of at least 1 or None, got {limit!r}")
    customer_id = str(customer_id).strip()
    as_of = _as_of(backend, as_of)
    events = _timeline_expr(_tables(backend, _TIMELINE_TABLES), customer_id, as_of, policy)
    kind_order = ibis.cases(*[(events.kind == k, i) for i, k in enumerate(TIMELINE_KINDS)])
    events = events.order_by([ibis.desc("at"), kind_order, "source_id"])
    if limit is not None:
        events = events.limit(limit)
    frame = backend.execute(events)
    frame["amount"] = frame["amount"].astype("float64")
    return frame[list(TIMELINE_COLUMNS)].reset_index(drop=True)


# --- notes -----------------------------------------------------------------------------------------------------


def add_note(con: duckdb.DuckDBPyConnection, customer_id: str, author: str, text: str,
             at: datetime | None = None) -> str:
    """Write one note about ``customer_id`` to ``customer_notes`` (values bound as parameters) and return its
    note_id. ``at`` defaults to now (local time, to the second). Raises ``ValueError`` for an empty author or
    text, a text over :data:`MAX_NOTE_CHARS` characters, or an unknown customer."""
    customer_id = "" if customer_id is None else str(customer_id).strip()
    author = "" if author is None else str(author).strip()
    text = "" if text is None else str(text).strip()
    if not author:
        raise ValueError("A note needs an author: say who wrote it.")
    if not text:
        raise ValueError("The note is empty: write what you want to remember about the customer.")
    if len(text) > MAX_NOTE_CHARS:
        raise ValueError(f"The note has {len(text):,} characters; keep it under {MAX_NOTE_CHARS:,}.")
    known = con.execute("SELECT count(*) FROM customers WHERE customer_id = ?", [customer_id]).fetchone()[0]
    if not known:
        raise ValueError(f"No customer {customer_id!r} in the customers table; the note was not saved.")
    at = (at or datetime.now()).replace(microsecond=0)
    note_id = f"N-{uuid.uuid4().hex[:16]}"
    con.execute("INSERT INTO customer_notes (note_id, customer_id, created_at, author, note) VALUES (?, ?, ?, ?, ?)",
                [note_id, customer_id, at, author, text])
    return note_id


def notes(backend: ibis.BaseBackend, customer_id: str) -> pd.DataFrame:
    """One row per note about ``customer_id``, newest first: note_id, customer_id, created_at, author, note."""
    n = backend.table("customer_notes")
    n = n.filter(n.customer_id == ibis.literal(str(customer_id).strip(), "string"))
    frame = backend.execute(n.select(*NOTE_COLUMNS).order_by([ibis.desc("created_at"), ibis.desc("note_id")]))
    return frame.reset_index(drop=True)


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
