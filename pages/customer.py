"""Customer 360: find one customer by id, e-mail or name and see them whole — segment, value, tickets, the next best
action, everything that happened to them on one timeline, and the notes staff keep about them.

The chosen customer is mirrored into the URL (``?customer=<id>``) so a copied link opens the same customer; the
parameter is untrusted and used only when it is exactly the id of a customer in the store."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from crm_core import clv, customer360, engines, narrative, privacy, value
from ui import auth, frame, tables

URL_PARAM = "customer"
SEARCH_LIMIT = 20
TIMELINE_LIMIT = 200
CARDS = (  # (label, CustomerProfile field, unit for narrative.format_value; None = text, help key)
    ("Segment", "segment", None, "segment"),
    ("Value tier", "value_tier", None, "value_tier"),
    ("Profit", "profit", "currency", "profit"),
    ("Revenue", "revenue", "currency", "revenue"),
    ("Orders", "orders", "count", "orders"),
    ("Open tickets", "open_tickets", "count", "open_tickets"),
    ("Breached tickets", "breached_tickets", "count", "breached_tickets"),
    ("CLV, 12 months", "clv", "currency", "clv"),
    ("P(alive)", "p_alive", "pct", "p_alive"),
)
TIMELINE_LABELS = {"at": "When", "kind": "Event", "title": "What", "detail": "Detail", "amount": "Amount",
                   "source_id": "Source id"}
NOTE_LABELS = {"created_at": "Written", "author": "Author", "note": "Note", "note_id": "Note id"}


@st.cache_data(ttl=3600, show_spinner="Searching customers ...", show_time=True)
def _search(version: str, query: str):
    return customer360.search_customers(frame.backend(), query, limit=SEARCH_LIMIT)


@st.cache_data(ttl=3600, show_spinner="Computing profit per customer ...", show_time=True)
def _values(version: str, as_of: dt.date):
    return value.customer_value(frame.backend(), as_of)


@st.cache_data(ttl=3600, show_spinner="Fitting the CLV model ...", show_time=True)
def _clv_customers(version: str, as_of: dt.date):
    """Every customer's CLV and P(alive) with the value page's default model (12 months, 1% a month, weeks), or
    None when the data cannot fit it (no repeat buyers)."""
    try:
        result = clv.clv(frame.backend(), as_of)
    except ValueError:
        return None
    return result.customers[["customer_id", "p_alive", "expected_purchases", "clv"]]


@st.cache_data(ttl=3600, show_spinner="Reading the customer's profile ...", show_time=True)
def _profile(version: str, customer_id: str, as_of: dt.date):
    return customer360.profile(frame.backend(), customer_id, as_of, values=_values(version, as_of),
                               clv_frame=_clv_customers(version, as_of))


@st.cache_data(ttl=3600, show_spinner="Building the customer's timeline ...", show_time=True)
def _timeline(version: str, customer_id: str, as_of: dt.date):
    return customer360.timeline(frame.backend(), customer_id, as_of, limit=TIMELINE_LIMIT)


@st.cache_data(ttl=3600, show_spinner="Reading notes ...", show_time=True)
def _notes(version: str, customer_id: str):
    return customer360.notes(frame.backend(), customer_id)


def card_value(profile: customer360.CustomerProfile, field: str, unit: str | None) -> str:
    """A KPI card's text for ``field`` of ``profile`` (text fields as they are, "–" when missing)."""
    number = getattr(profile, field)
    if unit is None:
        return "–" if number is None else str(number)
    return narrative.format_value(number, unit)


def _label(row, mask: bool = False) -> str:
    name = row["name"] if isinstance(row["name"], str) and row["name"] else "(no name)"
    email = row["email"] if isinstance(row["email"], str) and row["email"] else "(no e-mail)"
    if mask:
        name, email = privacy.mask_name(name), privacy.mask_email(email)
    return f"{name} · {email} · {row['customer_id']} ({row['match']})"


def _shared_customer() -> str | None:
    """The ``customer`` of the URL (untrusted text; ``ui.frame`` keeps it when it rewrites the query string), or
    None."""
    shared = st.query_params.get_all(URL_PARAM)
    shared = shared[-1] if shared else None
    return shared.strip()[:customer360.MAX_QUERY_CHARS] if isinstance(shared, str) and shared.strip() else None


def _open_shared(version: str) -> None:
    """Once per session: when the URL names a customer that exists, put its id in the search box."""
    if st.session_state.get("_c360_url_read"):
        return
    st.session_state["_c360_url_read"] = True
    shared = _shared_customer()
    if not shared:
        return
    hits = _search(version, shared)
    if len(hits) and int(hits["match_rank"].iloc[0]) == 0 and hits["customer_id"].iloc[0] == shared:
        st.session_state["c360_q"] = shared


def _notes_section(version: str, customer_id: str) -> None:
    st.subheader("Notes")
    if not auth.allowed("view_personal"):  # free text about a person cannot be masked reliably
        st.caption(f"Notes may hold personal data: reading them {auth.NEEDS['view_personal']}.")
        return
    if auth.allowed("add_note"):
        unavailable = engines.writes_unavailable(frame.engine_settings())
        if unavailable:  # notes are read from the engine with the timeline; the app writes nothing there
            st.info(unavailable)
        else:
            _note_form(customer_id)
    kept = _notes(version, customer_id)
    if kept.empty:
        st.caption("No notes about this customer yet.")
    else:
        tables.show(kept[["created_at", "author", "note", "note_id"]], NOTE_LABELS, customer360.CUSTOMER360_HELP)


def _note_form(customer_id: str) -> None:
    """The form that adds a note (the author defaults to the signed-in user); each save is audited."""
    if auth.actor():
        st.session_state.setdefault("c360_author", auth.actor())
    with st.form("c360_note_form"):
        author = st.text_input("Author", key="c360_author", help=customer360.CUSTOMER360_HELP["author"])
        text = st.text_area("Note", key="c360_note", max_chars=customer360.MAX_NOTE_CHARS,
                            help=customer360.CUSTOMER360_HELP["note"])
        saved = st.form_submit_button("Save note")
    if saved and auth.require("add_note", "note_add", target=customer_id):
        try:
            note_id = customer360.add_note(frame.cursor(), customer_id, author, text)
        except ValueError as exc:
            auth.record("note_add", target=customer_id, outcome="failed", detail=str(exc))
            st.error(str(exc))
        else:  # rerun, so the timeline above shows the note too
            auth.record("note_add", target=customer_id, detail=f"note {note_id} by {author.strip()}")
            _notes.clear()
            _timeline.clear()
            st.session_state["_c360_saved"] = True
            st.rerun()
    if st.session_state.pop("_c360_saved", False):
        st.success("Note saved.")


def render() -> None:
    f = frame.current_filters()
    version = frame.data_version()
    as_of = f.end
    st.title("Customer 360")
    st.caption(f"Everything about one customer as of {narrative.day(as_of)} (the end of the period); value and "
               "tier over their whole history to that day.")
    _open_shared(version)
    query = st.text_input("Find a customer (id, e-mail or name)", key="c360_q",
                          help=customer360.CUSTOMER360_HELP["search"])
    try:
        hits = _search(version, query or "")
    except ValueError as exc:
        st.error(str(exc))
        return
    if not (query or "").strip():
        st.info("Type a customer id, an e-mail address or part of a name to open a customer.")
        st.query_params.pop(URL_PARAM, None)
        return
    if hits.empty:
        st.info(f"No customer matches {query.strip()!r}.")
        return
    masked = frame.masking()
    labels = {row["customer_id"]: _label(row, masked) for _, row in hits.iterrows()}
    customer_id = st.selectbox("name · e-mail · id (match)", list(labels), key="c360_pick",
                               format_func=labels.get, help=customer360.CUSTOMER360_HELP["match"])
    if len(hits) == SEARCH_LIMIT:
        st.caption(f"The first {SEARCH_LIMIT} matches; type more to narrow the search.")
    st.query_params[URL_PARAM] = customer_id

    p = _profile(version, customer_id, as_of)
    where = ", ".join(x for x in (p.region, f"customer since {narrative.day(p.signup_date)}" if p.signup_date
                                  else None) if x)
    name, email = (privacy.mask_name(p.name), privacy.mask_email(p.email)) if masked else (p.name, p.email)
    st.subheader(name or customer_id)
    st.caption(" · ".join(x for x in (customer_id, email, where) if x))
    cols = st.columns(len(CARDS))
    for col, (label, field, unit, key) in zip(cols, CARDS):
        col.metric(label, card_value(p, field, unit), help=customer360.CUSTOMER360_HELP[key], border=True)
    callout = st.info if p.action_urgency is None else st.warning
    callout(p.next_best_action, icon="🎯")
    st.caption("Next best action: " + customer360.CUSTOMER360_HELP["next_best_action"])

    st.subheader("Timeline")
    events = _timeline(version, customer_id, as_of)
    if events.empty:
        st.caption("Nothing has happened to this customer by this date.")
    else:
        st.caption(f"Newest first; the latest {TIMELINE_LIMIT} events." if len(events) == TIMELINE_LIMIT
                   else f"Newest first; {len(events):,} events.")
        tables.show(events, TIMELINE_LABELS, customer360.CUSTOMER360_HELP)
        tables.download("Download the timeline (CSV)", events, "customer_timeline.csv", key="c360_timeline_csv")
    _notes_section(version, customer_id)


if __name__ == "__main__":  # opened by its own URL on a fresh server: run the whole app frame
    frame.run_app()
