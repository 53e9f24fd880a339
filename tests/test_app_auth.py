"""AppTest: sign-in and roles (ui/auth.py) across the app, and the audit rows they write.

Sign-in is switched on the way a deployment does it, by an ``[auth]`` section in the secrets (``AppTest.secrets``
replaces ``st.secrets``, which ui/auth.py reads), and the user is injected with ``AppTest.user`` (read as
``st.user``; Streamlit 1.67's AppTest supports ``{"is_logged_in": True, "email": ...}``). The roles file is a
temporary file named by ``CRM_ROLES_FILE``. A signed-in session writes to the audit log (its sign-in), so every
test with a signed-in user works on a copy of the sample store.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from crm_core import audit, goals, ingest, privacy, store
from ui import auth

APP = Path(__file__).parent.parent / "app.py"
TIMEOUT = 120
Q2 = {"start": "2026-04-01", "end": "2026-06-30"}
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "not-a-real-secret",
        "client_id": "crm-test", "client_secret": "not-a-real-secret",
        "server_metadata_url": "https://id.example.com/.well-known/openid-configuration"}
ROLES = """[users]
"vic@example.com" = "viewer"
"Ana@Example.com" = "analyst"
"adam@example.com" = "admin"
"""
VIEWER, ANALYST, ADMIN, STRANGER = "vic@example.com", "ana@example.com", "adam@example.com", "eve@elsewhere.org"


pytestmark = pytest.mark.usefixtures("release_app_caches")  # the app's caches go with the module


@pytest.fixture
def roles_file(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "roles.toml"
    path.write_text(ROLES, encoding="utf-8")
    monkeypatch.setenv(auth.ROLES_ENV, str(path))
    return path


@pytest.fixture(scope="module")
def person(sample_store) -> tuple[str, str, str]:
    """(customer_id, name, email) of the first customer with a name and an e-mail address."""
    con = store.connect(sample_store)
    try:
        return con.execute("SELECT customer_id, name, email FROM customers WHERE name <> '' AND email LIKE '%@%' "
                           "ORDER BY customer_id LIMIT 1").fetchone()
    finally:
        con.close()


def open_as(db: Path, monkeypatch, email: str | None, page: str | None = None, signed_in: bool = True,
            **query) -> AppTest:
    """A fresh session with sign-in configured, opening ``/<page>?<query>`` as ``email`` (None: signed out)."""
    monkeypatch.setenv("CRM_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "email": email, "name": "Someone"} if signed_in else {"is_logged_in": False}
    for name, value in {**Q2, **query}.items():
        at.query_params[name] = value
    if page:
        at._page_hash = calc_hash(page)
    return at.run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def logged(db: Path, action: str | None = None):
    con = store.connect(db)
    try:
        return audit.entries(con, action=action)
    finally:
        con.close()


def download_buttons(at: AppTest) -> list:
    return list(at.get("download_button"))


def sidebar_text(at: AppTest) -> str:
    return " ".join(c.value for c in at.sidebar.caption)


# --------------------------------------------------------------------------------------------- modes, the gate
def test_open_mode_says_so(sample_store, roles_file, monkeypatch):
    monkeypatch.setenv("CRM_DB", str(sample_store))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update(Q2)
    at.run()
    assert_clean(at)
    assert at.title[0].value == "Overview"
    assert auth.OPEN_MODE_NOTE in sidebar_text(at)
    assert download_buttons(at)  # everyone is admin-equivalent: downloads are there


def test_signed_out_sees_only_the_sign_in_button(sample_store, roles_file, monkeypatch):
    at = open_as(sample_store, monkeypatch, None, signed_in=False)
    assert_clean(at)
    assert [b.label for b in at.button] == ["Sign in"]
    assert [i.value for i in at.info] == ["Sign in to open the dashboards."]
    assert not at.main.metric and not at.dataframe and not at.sidebar.multiselect


def test_an_unknown_user_is_denied_and_the_denial_logged(store_copy, roles_file, monkeypatch):
    at = open_as(store_copy, monkeypatch, STRANGER, page="data")
    assert_clean(at)
    assert [e.value for e in at.error] == [auth.NO_ACCESS]
    assert [t.value for t in at.title] == ["CRM analytics"]
    assert [b.label for b in at.button] == ["Sign out"]
    assert not at.tabs and not at.main.metric and not at.dataframe and not at.get("file_uploader")
    at.run()  # the same session again: logged once
    rows = logged(store_copy, "login")
    assert rows[["actor", "outcome"]].values.tolist() == [[STRANGER, "denied"]]
    assert rows["detail"].iloc[0] == auth.NO_ACCESS


def test_an_unverified_address_counts_as_none(store_copy, roles_file, monkeypatch):
    monkeypatch.setenv("CRM_DB", str(store_copy))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "email": ADMIN, "email_verified": False}
    at.run()
    assert [b.label for b in at.button] == ["Sign in"]


def test_a_bad_roles_file_refuses_everyone_and_names_the_file(store_copy, roles_file, monkeypatch):
    roles_file.write_text('[users]\n"adam@example.com" = "owner"\n', encoding="utf-8")
    at = open_as(store_copy, monkeypatch, ADMIN)
    assert_clean(at)
    (message,) = [e.value for e in at.error]
    assert str(roles_file) in message and "unknown role 'owner'" in message
    assert not at.main.metric


# --------------------------------------------------------------------------------------------- viewer
def test_a_viewer_sees_dashboards_masked_without_downloads(store_copy, roles_file, monkeypatch, person):
    at = open_as(store_copy, monkeypatch, VIEWER, present="0")  # a link cannot switch masking off
    assert_clean(at)
    assert at.title[0].value == "Overview" and at.main.metric
    toggle = at.toggle(key="presentation")
    assert toggle.value is True and toggle.disabled
    assert not download_buttons(at)
    assert f"Signed in as **{VIEWER}** (viewer)." in sidebar_text(at)
    # nor can a forged widget value (a browser cannot click the disabled toggle): the role decides on the server
    at.session_state["presentation"] = False
    at.run()
    assert at.toggle(key="presentation").value is True and at.query_params.get("present") == "1"

    customer_id, name, email = person
    at = open_as(store_copy, monkeypatch, VIEWER, page="customer", customer=customer_id, present="0")
    assert_clean(at)
    assert at.subheader[0].value == privacy.mask_name(name) != name
    page_text = " ".join(str(e.value) for e in at.main if hasattr(e, "value") and type(e).__name__ != "TextInput")
    assert name not in page_text and email not in page_text
    assert not at.get("form") and not at.text_area  # no notes, no note form
    assert "Notes may hold personal data" in " ".join(c.value for c in at.caption)
    assert not download_buttons(at)
    # signed in once per session: one login row
    assert logged(store_copy, "login")[["actor", "outcome", "target"]].values.tolist() == [
        [VIEWER, "ok", "viewer"], [VIEWER, "ok", "viewer"]]


def test_a_viewer_opening_data_by_url_gets_no_import_and_no_reset(store_copy, roles_file, monkeypatch):
    at = open_as(store_copy, monkeypatch, VIEWER, page="data")
    assert_clean(at)
    assert at.title[0].value == "Data"
    assert [t.label for t in at.tabs] == ["Quality and duplicates", "History"]
    assert not at.get("file_uploader")
    assert "imp_table" not in [s.key for s in at.selectbox]
    assert "reset" not in [b.key for b in at.button]
    assert "Audit log" not in [e.label for e in at.expander]
    assert not download_buttons(at)
    (note,) = [c.value for c in at.caption if c.value.startswith("Not available to your role")]
    assert "importing (needs the analyst role)" in note and "resetting the data (needs the admin role)" in note


def test_a_viewer_reads_goals_but_cannot_change_them(store_copy, roles_file, monkeypatch):
    con = store.connect(store_copy)
    try:
        goal = goals.create_goal(con, "Keep them", list(goals.METRICS)[0], goals.BUSINESS_UNITS[0],
                                 dt.date(2026, 4, 1), dt.date(2026, 12, 31), 0.5, backend=store.ibis_backend(con))
    finally:
        con.close()
    at = open_as(store_copy, monkeypatch, VIEWER, page="goals")
    assert_clean(at)
    assert at.title[0].value == "Goals & investment"
    labels = [e.label for e in at.expander]
    assert "Set a new goal" not in labels and "Edit or delete this goal" not in labels
    assert not [b for b in at.button if (b.key or "").startswith("goal_delete")]
    assert any(c.value.startswith("Goals are read-only for your role") for c in at.caption)
    assert at.dataframe[0].value["goal_id"].tolist() == [goal.goal_id]  # listed, read-only
    assert not at.get("form")


# --------------------------------------------------------------------------------------------- analyst, admin
def test_an_analyst_imports_but_cannot_reset_or_read_the_audit(store_copy, roles_file, monkeypatch):
    at = open_as(store_copy, monkeypatch, "ANA@example.com", page="data")  # the address in any case
    assert_clean(at)
    assert [t.label for t in at.tabs] == ["Import", "Quality and duplicates", "History"]
    assert at.selectbox(key="imp_table").value == "customers" and at.get("file_uploader")
    assert "reset" not in [b.key for b in at.button]
    assert "Audit log" not in [e.label for e in at.expander]
    assert download_buttons(at)
    assert at.toggle(key="presentation").value is False and not at.toggle(key="presentation").disabled


def test_an_admin_sees_reset_and_the_audit_log(store_copy, roles_file, monkeypatch):
    at = open_as(store_copy, monkeypatch, ADMIN, page="data")
    assert_clean(at)
    assert [t.label for t in at.tabs] == ["Import", "Quality and duplicates", "History"]
    assert at.button(key="reset").label == "Reset to sample data"
    assert "Audit log" in [e.label for e in at.expander]
    log = at.tabs[2].dataframe[-1].value  # the audit log, newest first: this session's sign-in
    assert log[["actor", "action", "outcome"]].values.tolist()[0] == [ADMIN, "login", "ok"]
    assert not [c.value for c in at.caption if c.value.startswith("Not available to your role")]

    at.button(key="reset").click().run()
    assert_clean(at)
    assert [s.value for s in at.success] == ["Sample data loaded."]
    rows = logged(store_copy, "reset")
    assert rows[["actor", "target", "outcome"]].values.tolist() == [[ADMIN, "all tables", "ok"]]


# --------------------------------------------------------------------------------------------- audit rows
def test_an_admins_goal_is_logged_with_their_address(store_copy, roles_file, monkeypatch):
    at = open_as(store_copy, monkeypatch, ADMIN, page="goals")
    at.text_input(key="goal_new_name").set_value("Audit me")
    at.number_input(key="goal_new_target").set_value(55.0)
    at.button(key="FormSubmitter:goal_new-Set the goal").click().run()
    assert_clean(at)
    rows = logged(store_copy, "goal_create")
    assert rows[["actor", "outcome", "detail"]].values.tolist() == [[ADMIN, "ok", "Audit me"]]


def test_an_analysts_note_is_logged(store_copy, roles_file, monkeypatch, person):
    customer_id = person[0]
    at = open_as(store_copy, monkeypatch, ANALYST, page="customer", customer=customer_id)
    assert_clean(at)
    assert at.text_input(key="c360_author").value == ANALYST  # the author defaults to the signed-in user
    at.text_area(key="c360_note").set_value("Wants the catalogue by post.")
    at.button(key="FormSubmitter:c360_note_form-Save note").click().run()
    assert_clean(at)
    rows = logged(store_copy, "note_add")
    assert rows[["actor", "target", "outcome"]].values.tolist() == [[ANALYST, customer_id, "ok"]]


def test_an_analysts_import_is_logged(store_copy, roles_file, monkeypatch, tmp_path):
    at = open_as(store_copy, monkeypatch, ANALYST, page="data")
    at.selectbox(key="imp_table").set_value("transactions").run()
    at.get("file_uploader")[0].set_value(
        ("transactions.csv", b"customer_id,date,amount\nC-1,2026-06-10,100.00\nC-2,2026-06-20,50.00\n", "text/csv"))
    at.run()
    at.button(key="imp_validate").click().run()
    assert_clean(at)
    at.button(key="imp_commit").click().run()
    assert_clean(at)
    rows = logged(store_copy, "import")
    assert rows[["actor", "outcome"]].values.tolist() == [[ANALYST, "ok"]]
    assert rows["target"].iloc[0] == "transactions.csv → transactions (replace)"


def test_a_denied_action_is_logged(store_copy, roles_file, monkeypatch):
    """A control that acts for a role that may not (the role changed after the page was drawn) is refused."""

    def script():
        from ui import auth

        auth.require("reset", "reset", target="all tables")

    monkeypatch.setenv("CRM_DB", str(store_copy))
    at = AppTest.from_function(script, default_timeout=TIMEOUT)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "email": ANALYST}
    at.run()
    assert_clean(at)
    assert [e.value for e in at.error] == ["Not done: this needs the admin role."]
    rows = logged(store_copy, "reset")
    assert rows[["actor", "outcome", "detail"]].values.tolist() == [[ANALYST, "denied", "role analyst may not reset"]]


def test_roles_file_changes_apply_on_the_next_run(store_copy, roles_file, monkeypatch):
    at = open_as(store_copy, monkeypatch, STRANGER)
    assert [e.value for e in at.error] == [auth.NO_ACCESS]
    roles_file.write_text(ROLES + f'"{STRANGER}" = "viewer"\n', encoding="utf-8")
    at.run()
    assert_clean(at)
    assert at.title[0].value == "Overview"
    assert dt.date(2026, 4, 1) == at.sidebar.date_input(key="f_range").value[0]


def test_a_commit_while_another_import_runs_keeps_the_file_for_a_second_try(store_copy, roles_file, monkeypatch):
    at = open_as(store_copy, monkeypatch, ANALYST, page="data")
    at.selectbox(key="imp_table").set_value("transactions").run()
    at.get("file_uploader")[0].set_value(
        ("transactions.csv", b"customer_id,date,amount\nC-1,2026-06-10,100.00\n", "text/csv"))
    at.run()
    at.button(key="imp_validate").click().run()
    assert_clean(at)
    [lock] = [lk for key, lk in ingest._LOCKS.items() if Path(key).resolve() == store_copy.resolve()]
    with lock:  # another session's import holds the database
        at.button(key="imp_commit").click().run()
        assert_clean(at)
        assert [w.value for w in at.warning] == [ingest.BUSY_MESSAGE]
        assert at.button(key="imp_commit")  # the file and its validation are still there
    at.button(key="imp_commit").click().run()
    assert_clean(at)
    assert [s.value[:20] for s in at.success] == ["1 of 1 rows imported"]
    assert at.markdown.values.count("#### Last import: transactions\\.csv → transactions") == 1
    rows = logged(store_copy, "import")
    assert rows["outcome"].tolist() == ["ok", "failed"]  # newest first: the retry, then the busy attempt
