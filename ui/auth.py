"""Sign-in and roles in the app: who is using this session, what their role lets them do, and the audit of it.

Two modes, decided on the server every run:

- **Open mode** — ``.streamlit/secrets.toml`` has no ``[auth]`` section: no sign-in, everyone may do everything
  (admin-equivalent) and the sidebar says so. Meant for one person on localhost.
- **Sign-in** — an ``[auth]`` section is configured (Streamlit's OIDC ``st.login``): the app shows only a "Sign in"
  button until the user is signed in, then looks their e-mail up in the roles file (:mod:`crm_core.access`;
  ``CRM_ROLES_FILE`` or ``.streamlit/roles.toml`` next to ``app.py``). Deny by default: an address not in the file
  sees "You have no access; ask an admin to add you" and nothing else.

The role is read from ``st.user`` and the roles file on every run (the file again when it changes), never from the
URL or from session state, so a query parameter or a widget value cannot raise it. Pages ask :func:`allowed` before
drawing a control and :func:`require` again when the control acts.

Tests inject a user with ``AppTest.secrets["auth"] = {...}`` (turns sign-in on: this module reads ``st.secrets``,
which AppTest replaces) and ``AppTest.user = {"is_logged_in": True, "email": ...}`` (read as ``st.user``).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from crm_core import access, audit
from crm_core.access import Role

ROLES_ENV = "CRM_ROLES_FILE"
DEFAULT_ROLES_FILE = Path(__file__).resolve().parent.parent / ".streamlit" / "roles.toml"
NO_ACCESS = "You have no access; ask an admin to add you."
OPEN_MODE_NOTE = "Open mode: no sign-in configured (localhost use only); see docs/security.md"
NEEDS = {action: f"needs the {min((r for r in Role if action in access.PERMISSIONS[r]), key=list(Role).index)} role"
         for action in access.ACTIONS}  # e.g. NEEDS["reset"] == "needs the admin role"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Access:
    """Who is using this run and what they may do. ``role`` None = no access (``problem`` says why)."""

    email: str | None
    role: Role | None
    open_mode: bool
    problem: str | None = None

    def can(self, action: str) -> bool:
        return access.can(self.role, action)


# --------------------------------------------------------------------------------------------- configuration
def roles_path() -> Path:
    return Path(os.environ.get(ROLES_ENV) or DEFAULT_ROLES_FILE)


_roles_cache: dict[tuple, access.Roles] = {}
_roles_lock = threading.Lock()


def roles() -> access.Roles:
    """The roles file, read again whenever it changes (path, modification time and size are the key); raises
    :class:`crm_core.access.RolesFileError` for a bad file."""
    path = roles_path()
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = (str(path), None, None)
    with _roles_lock:
        if key not in _roles_cache:
            _roles_cache.clear()
            _roles_cache[key] = access.load_roles(path)
        return _roles_cache[key]


def _secrets_files_exist() -> bool:
    from streamlit import config

    return any(Path(p).expanduser().is_file() for p in config.get_option("secrets.files") or ())


def auth_section() -> dict | None:
    """The ``[auth]`` section of the secrets (None = open mode). A secrets file that exists but cannot be read
    raises: the app then refuses everyone rather than running open."""
    try:
        section = st.secrets.get("auth")
    except StreamlitSecretNotFoundError:
        if _secrets_files_exist():
            raise
        return None
    return dict(section) if section else None


def _signed_in_email() -> str | None:
    """The e-mail of the signed-in user (None when nobody is signed in or the provider gave no usable address)."""
    try:
        user = st.user
        if not user.get("is_logged_in", False):
            return None
        if user.get("email_verified") is False:  # the provider says the address is not the user's: do not trust it
            return None
        return access.normalise_email(user.get("email"))
    except Exception:  # no script context (bare mode)
        return None


def current() -> Access:
    """This run's :class:`Access`, as :func:`gate` worked it out at the start of the run (outside a run of the
    app frame, e.g. in a bare test script: worked out now)."""
    who = st.session_state.get(_ACCESS_KEY)
    return who if isinstance(who, Access) else _work_out()


_ACCESS_KEY = "_auth_access"  # not a widget key, so the browser cannot set it


def _work_out() -> Access:
    """Who is using this run, from the secrets, ``st.user`` and the roles file (cached until it changes)."""
    try:
        section = auth_section()
    except StreamlitSecretNotFoundError as exc:
        _log.error("secrets.toml cannot be read: %s", exc)
        return Access(None, None, open_mode=False, problem="The sign-in settings (secrets.toml) cannot be read; an "
                                                            "admin must fix them (details in the server log).")
    if section is None:
        return Access(None, Role.ADMIN, open_mode=True)
    email = _signed_in_email()
    if email is None:
        return Access(None, None, open_mode=False)
    try:
        table = roles()
    except access.RolesFileError as exc:
        _log.error("%s", exc)
        return Access(email, None, open_mode=False, problem=f"The roles file cannot be used: {exc}")
    role = access.role_for(table, email)
    problem = None
    if role is None:
        problem = NO_ACCESS if table.source else f"{NO_ACCESS} (There is no roles file on the server yet.)"
    return Access(email, role, open_mode=False, problem=problem)


def allowed(action: str) -> bool:
    """True when this run's user may do ``action`` (one of :data:`crm_core.access.ACTIONS`)."""
    return current().can(action)


def actor() -> str | None:
    """The signed-in e-mail for the audit log (None in open mode: stored as anonymous)."""
    return current().email


# --------------------------------------------------------------------------------------------- audit
def _cursor():
    from ui import frame  # frame imports this module

    return frame.cursor()


def record(action: str, *, target: str | None = None, outcome: str = "ok", detail: str | None = None) -> None:
    """Append an event to the audit log with this run's user as the actor."""
    audit.record(_cursor(), action, actor=actor(), target=target, outcome=outcome, detail=detail)


def require(action: str, audit_action: str, *, target: str | None = None) -> bool:
    """Check ``action`` again when a control acts (the role may have changed since it was drawn). When it is not
    allowed: log ``audit_action`` as denied, say so, and return False."""
    who = current()
    if who.can(action):
        return True
    record(audit_action, target=target, outcome="denied",
           detail=f"role {who.role or 'none'} may not {action}")
    st.error(f"Not done: this {NEEDS[action]}.")
    return False


def record_export(file_name: str) -> None:
    """``on_click`` of a download button: one audit row per download (the file has already left the server)."""
    from ui import frame

    record("export", target=file_name, detail="masked" if frame.masking() else "unmasked")


# --------------------------------------------------------------------------------------------- gate and sidebar
def _providers(section: dict) -> list[str | None]:
    """``[None]`` for a single provider in ``[auth]``; else the names of the ``[auth.<name>]`` providers."""
    if "client_id" in section or "server_metadata_url" in section:
        return [None]
    return [name for name, value in section.items() if isinstance(value, dict)] or [None]


def _note_login(who: Access) -> None:
    """Once per session and signed-in address: log the sign-in (denied when the address has no role)."""
    if who.email is None or st.session_state.get("_auth_seen") == who.email:
        return
    st.session_state["_auth_seen"] = who.email
    record("login", target=str(who.role) if who.role else None, outcome="ok" if who.role else "denied",
           detail=None if who.role else who.problem)


def _sign_out() -> None:
    record("logout")
    st.session_state.pop("_auth_seen", None)
    st.logout()


def gate() -> Access:
    """Run before the navigation: in open mode return at once; with sign-in configured, show the sign-in button
    or the no-access message and stop the run unless the signed-in user has a role."""
    who = _work_out()
    st.session_state[_ACCESS_KEY] = who
    if who.open_mode:
        return who
    if who.email is None and who.problem is None:
        st.title("CRM analytics")
        st.info("Sign in to open the dashboards.")
        for provider in _providers(auth_section() or {}):
            label = "Sign in" if provider is None else f"Sign in with {provider}"
            if st.button(label, type="primary", key=f"auth_login_{provider or 'default'}"):
                st.login(provider)
        st.stop()
    _note_login(who)
    if who.role is None:
        st.title("CRM analytics")
        st.error(who.problem or NO_ACCESS)
        if who.email:
            st.caption(f"Signed in as {who.email}.")
            st.button("Sign out", key="auth_logout", on_click=_sign_out)
        st.stop()
    return who


def sidebar(who: Access) -> None:
    """The sidebar line that says who is signed in and with which role, or that the app runs open."""
    if who.open_mode:
        st.caption(OPEN_MODE_NOTE)
        return
    st.caption(f"Signed in as **{who.email}** ({who.role}).")
    if who.role == Role.VIEWER:
        st.caption("Viewer: dashboards only; personal data is always masked; downloads, imports and notes "
                   f"{NEEDS['export'].replace('needs', 'need')}.")
    st.button("Sign out", key="auth_logout", on_click=_sign_out)
