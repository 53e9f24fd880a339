"""AppTest: the Customer 360 page over the bundled sample shows what ``crm_core.customer360`` computes.

The customer is the first of the service action list (a Platinum customer with a breached ticket open on 30 Jun 2026,
so the next best action is a real one, not "No action needed."); every expected card, action and note comes from
the core on the same store. Tests that write a note work on a copy of the sample store.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from crm_core import clv, customer360, narrative, privacy, service, store

APP = Path(__file__).parent.parent / "app.py"
TIMEOUT = 60  # seconds per script run
END = dt.date(2026, 6, 30)  # the bundled sample's latest order: the default period ends here
Q2 = {"start": "2026-04-01", "end": END.isoformat()}
CARDS = (("Segment", "segment", None), ("Value tier", "value_tier", None), ("Profit", "profit", "currency"),
         ("Revenue", "revenue", "currency"), ("Orders", "orders", "count"), ("Open tickets", "open_tickets", "count"),
         ("Breached tickets", "breached_tickets", "count"), ("CLV, 12 months", "clv", "currency"),
         ("P(alive)", "p_alive", "pct"))


pytestmark = pytest.mark.usefixtures("release_app_caches")  # the app's caches go with the module


@pytest.fixture(scope="module")
def chosen(sample_store) -> customer360.CustomerProfile:
    """The first customer of the action list, profiled by the core as of the end of the period, with the CLV model
    the page uses (the value page's defaults)."""
    con = store.connect(sample_store)
    try:
        backend = store.ibis_backend(con)
        customer_id = str(service.action_list(backend, END)["customer_id"].iloc[0])
        return customer360.profile(backend, customer_id, END, clv_frame=clv.clv(backend, END).customers)
    finally:
        con.close()


def open_customer_page(db: Path, monkeypatch, **query) -> AppTest:
    """Open ``/?<query>``, then the Customer 360 page from the navigation, as a click in the menu does."""
    monkeypatch.setenv("CRM_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    hashes = [h for h, info in at._registered_pages.items() if info.get("page_name") == "Customer 360"]
    assert len(hashes) == 1, at._registered_pages
    at._page_hash = hashes[0]
    return at.run()


def open_shared_link(db: Path, monkeypatch, **query) -> AppTest:
    """A fresh session opening ``/customer?<query>``: the first run is on the Customer 360 page (st.Page's script
    hash is the hash of its url_path), as when someone follows a copied link."""
    monkeypatch.setenv("CRM_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for name, value in query.items():
        at.query_params[name] = value
    at._page_hash = calc_hash("customer")
    return at.run()


def find(at: AppTest, text: str) -> AppTest:
    return at.text_input(key="c360_q").set_value(text).run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def stored_notes(db: Path, customer_id: str):
    con = store.connect(db)
    try:
        return con.execute("SELECT author, note FROM customer_notes WHERE customer_id = ? ORDER BY created_at",
                           [customer_id]).fetchall()
    finally:
        con.close()


def test_the_profile_fixture_is_a_customer_with_an_action(chosen):
    # guards the tests below: the action text they compare is a rule's, not the default
    assert chosen.next_best_action != customer360.NO_ACTION
    assert chosen.email and chosen.value_tier in service.TOP_TIERS
    assert 0 < chosen.p_alive < 1 and chosen.clv > 0  # the CLV cards show numbers, not "–"


def test_search_by_email_finds_the_customer(sample_store, chosen, monkeypatch):
    at = open_customer_page(sample_store, monkeypatch, **Q2)
    assert_clean(at)
    assert [i.value for i in at.info][:1] == ["Type a customer id, an e-mail address or part of a name to open a "
                                               "customer."]
    at = find(at, f"  {chosen.email.upper()} ")  # trimmed, case ignored: rank 1, exact e-mail
    assert_clean(at)
    pick = at.selectbox(key="c360_pick")
    assert pick.value == chosen.customer_id
    assert pick.options == [f"{chosen.name} · {chosen.email} · {chosen.customer_id} (e-mail)"]
    assert at.query_params["customer"] == chosen.customer_id


def test_cards_and_action_equal_the_core_profile(sample_store, chosen, monkeypatch):
    at = find(open_customer_page(sample_store, monkeypatch, **Q2), chosen.customer_id)
    assert_clean(at)
    shown = {m.label: m.value for m in at.main.metric}
    expected = {label: (str(getattr(chosen, field)) if unit is None else
                        narrative.format_value(getattr(chosen, field), unit)) for label, field, unit in CARDS}
    assert shown == expected
    # on the sample, e.g. a Platinum customer with one breached ticket open
    assert (shown["Value tier"], shown["Open tickets"], shown["Breached tickets"]) == (
        chosen.value_tier, str(chosen.open_tickets), str(chosen.breached_tickets))
    # an urgent action is a warning, in the profile's words
    assert [w.value for w in at.warning] == [chosen.next_best_action]
    # the timeline: newest first, the core's rows
    con = store.connect(sample_store)
    try:
        events = customer360.timeline(store.ibis_backend(con), chosen.customer_id, END, limit=200)
    finally:
        con.close()
    table = at.dataframe[0].value
    assert len(table) == len(events) > 0
    assert list(table["kind"]) == list(events["kind"])
    assert table["at"].is_monotonic_decreasing


def test_a_note_saved_through_the_form_is_stored_and_shown(store_copy, chosen, monkeypatch):
    before = stored_notes(store_copy, chosen.customer_id)
    at = find(open_customer_page(store_copy, monkeypatch, **Q2), chosen.customer_id)
    at.text_input(key="c360_author").set_value("Ana")
    at.text_area(key="c360_note").set_value("Prefers a call after 5 pm.")
    at.button(key="FormSubmitter:c360_note_form-Save note").click().run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    assert [s.value for s in at.success] == ["Note saved."]
    assert stored_notes(store_copy, chosen.customer_id) == before + [("Ana", "Prefers a call after 5 pm.")]
    notes_table = at.dataframe[-1].value
    assert list(notes_table["note"])[:1] == ["Prefers a call after 5 pm."]  # newest first
    assert len(notes_table) == len(before) + 1
    # the timeline above shows it too (notes are kept whatever their date)
    timeline = at.dataframe[0].value
    mine = timeline[timeline["detail"] == "Prefers a call after 5 pm."]
    assert list(zip(mine["kind"], mine["title"])) == [("note", "Note by Ana")]


def test_an_empty_note_shows_an_error_and_stores_nothing(store_copy, chosen, monkeypatch):
    before = stored_notes(store_copy, chosen.customer_id)
    at = find(open_customer_page(store_copy, monkeypatch, **Q2), chosen.customer_id)
    at.text_input(key="c360_author").set_value("Ana")
    at.text_area(key="c360_note").set_value("   ")
    at.button(key="FormSubmitter:c360_note_form-Save note").click().run()
    assert_clean(at)
    assert [e.value for e in at.error] == ["The note is empty: write what you want to remember about the customer."]
    assert not at.success
    assert stored_notes(store_copy, chosen.customer_id) == before


def test_a_shared_link_opens_that_customer(sample_store, chosen, monkeypatch):
    at = open_shared_link(sample_store, monkeypatch, customer=chosen.customer_id, **Q2)
    assert at.title[0].value == "Customer 360"
    assert_clean(at)
    assert at.text_input(key="c360_q").value == chosen.customer_id
    assert at.selectbox(key="c360_pick").value == chosen.customer_id
    assert [w.value for w in at.warning] == [chosen.next_best_action]


@pytest.mark.parametrize("shared", ["C99999999", "c02336' OR 1=1 --", ""])
def test_an_unknown_customer_in_the_link_is_ignored(sample_store, monkeypatch, shared):
    at = open_shared_link(sample_store, monkeypatch, customer=shared, **Q2)
    assert at.title[0].value == "Customer 360"
    assert_clean(at)
    assert not at.error
    assert at.text_input(key="c360_q").value == ""
    assert len(at.selectbox) == 0
    assert not at.main.metric


def test_presentation_mode_masks_the_customer_everywhere_on_the_page(store_copy, chosen, monkeypatch):
    con = store.connect(store_copy)
    try:
        customer360.add_note(con, chosen.customer_id, "Ana", f"Call {'+44 20 7946 0018'} or write to {chosen.email}")
    finally:
        con.close()
    at = open_customer_page(store_copy, monkeypatch, **Q2)
    at = at.toggle(key="presentation").set_value(True).run()
    assert at.query_params["present"] == "1"  # a copied link keeps the room masked
    at = find(at, chosen.email)  # staff can still search by what they know
    assert_clean(at)
    masked_name, masked_email = privacy.mask_name(chosen.name), privacy.mask_email(chosen.email)
    assert at.selectbox(key="c360_pick").options == [
        f"{masked_name} · {masked_email} · {chosen.customer_id} (e-mail)"]
    assert at.subheader[0].value == masked_name
    (who,) = [c.value for c in at.caption if c.value.startswith(chosen.customer_id)]
    assert masked_email in who and chosen.email not in who
    notes_table = at.dataframe[-1].value
    assert list(notes_table["note"])[:1] == [f"Call ••• 18 or write to {masked_email}"]
    # what the page shows (the search box holds what the user typed, so it is left out)
    page_text = " ".join(str(e.value) for e in at.main if hasattr(e, "value") and type(e).__name__ != "TextInput")
    assert chosen.email not in page_text and chosen.name not in page_text
    # switched off, the same session shows the customer again
    at = at.toggle(key="presentation").set_value(False).run()
    assert at.subheader[0].value == chosen.name
    assert "present" not in at.query_params


def test_a_link_with_present_1_opens_masked(sample_store, chosen, monkeypatch):
    at = open_shared_link(sample_store, monkeypatch, customer=chosen.customer_id, present="1", **Q2)
    assert_clean(at)
    assert at.toggle(key="presentation").value is True
    assert at.subheader[0].value == privacy.mask_name(chosen.name)
