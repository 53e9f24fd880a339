"""Access control: who may do what in the app, decided from the signed-in user's e-mail and a roles file.

Three roles, each a superset of the one before: **viewer** (dashboards only, personal data always masked),
**analyst** (+ personal data, imports, exports, notes) and **admin** (+ reset the data, manage goals, read the audit
log). The whole permission table is :data:`PERMISSIONS`; docs/security.md prints it.

The roles file is TOML (``.streamlit/roles.toml`` by default, or the path in ``CRM_ROLES_FILE``; see
``.streamlit/roles.example.toml``)::

    [users]                     # one e-mail address = one role (case-insensitive)
    "ana@example.com" = "admin"

    [domains]                   # optional: everyone whose address ends in @<domain> (exact domain, no subdomains)
    "example.com" = "viewer"

A user's own line wins over their domain's. **Deny by default**: an address in neither table, a missing address, or
a missing roles file gets no role at all, and :func:`can` says no to everything.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

__all__ = ["Role", "ACTIONS", "PERMISSIONS", "ACTION_HELP", "Roles", "RolesFileError", "load_roles", "role_for", "can",
           "normalise_email"]


class Role(StrEnum):
    """A role in the roles file; the value is how it is written there."""

    VIEWER = "viewer"
    ANALYST = "analyst"
    ADMIN = "admin"


ACTIONS = ("view", "view_personal", "import", "export", "add_note", "reset", "manage_goals", "view_audit")

ACTION_HELP = {  # one line per action, as docs/security.md and the app explain it
    "view": "open the dashboards (KPIs, charts, tables; personal data masked)",
    "view_personal": "see names, e-mail addresses, phone numbers and staff notes unmasked",
    "import": "upload and commit files on the Data page",
    "export": "download CSV files and the board pack",
    "add_note": "write notes about a customer (Customer 360)",
    "reset": "replace every table with the bundled sample data",
    "manage_goals": "set, edit and delete goals",
    "view_audit": "read and download the audit log",
}

_VIEWER = frozenset({"view"})
_ANALYST = _VIEWER | {"view_personal", "import", "export", "add_note"}
_ADMIN = _ANALYST | {"reset", "manage_goals", "view_audit"}
PERMISSIONS: Mapping[Role, frozenset[str]] = MappingProxyType(
    {Role.VIEWER: _VIEWER, Role.ANALYST: _ANALYST, Role.ADMIN: _ADMIN})

_SECTIONS = ("users", "domains")


class RolesFileError(ValueError):
    """The roles file cannot be used; the message names the file and what to fix."""


@dataclass(frozen=True)
class Roles:
    """The parsed roles file: lower-cased e-mail → role and lower-cased domain → role."""

    users: Mapping[str, Role] = field(default_factory=dict)
    domains: Mapping[str, Role] = field(default_factory=dict)
    source: str | None = None  # the file it was read from; None when there was none


def normalise_email(email: str | None) -> str | None:
    """``email`` stripped and lower-cased, or None when it is not an address (no single ``@`` with text on both
    sides)."""
    if not isinstance(email, str):
        return None
    text = email.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or "@" in local or any(c.isspace() for c in text):
        return None
    return text


def _role(value, where: str) -> Role:
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise RolesFileError(f"{where}: unknown role {value!r}; use one of {allowed}.") from None


def _table(data: dict, section: str, path: Path) -> dict[str, Role]:
    raw = data.get(section, {})
    if not isinstance(raw, dict):
        raise RolesFileError(f"{path}: [{section}] must be a table of \"name\" = \"role\" lines.")
    out: dict[str, Role] = {}
    for key, value in raw.items():
        where = f"{path}: [{section}] {key!r}"
        if section == "users":
            name = normalise_email(key)
            if name is None:
                raise RolesFileError(f"{where} is not an e-mail address (name@domain).")
        else:
            name = key.strip().lower().lstrip("@")
            if not name or "@" in name or any(c.isspace() for c in name) or "." not in name:
                raise RolesFileError(f"{where} is not a domain (e.g. \"example.com\", without a user name).")
        role = _role(value, where)
        if name in out and out[name] != role:
            raise RolesFileError(f"{where}: listed twice (letter case does not count) with different roles "
                                 f"{out[name]} and {role}.")
        out[name] = role
    return out


def load_roles(path: str | Path) -> Roles:
    """Read the roles file at ``path``: one :class:`Roles`. A missing file gives empty roles (nobody has access);
    a file that is not valid TOML, has an unknown section, a bad address or an unknown role raises
    :class:`RolesFileError` naming the file."""
    path = Path(path)
    if not path.exists():
        return Roles(source=None)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RolesFileError(f"{path}: not a valid TOML file ({exc}); see .streamlit/roles.example.toml.") from None
    except OSError as exc:
        raise RolesFileError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    unknown = [k for k in data if k not in _SECTIONS]
    if unknown:
        raise RolesFileError(f"{path}: unknown section(s) {', '.join(unknown)}; the file has only [users] and "
                             "[domains].")
    users, domains = _table(data, "users", path), _table(data, "domains", path)
    return Roles(MappingProxyType(users), MappingProxyType(domains), source=str(path))


def role_for(roles: Roles, email: str | None) -> Role | None:
    """The role of the person signed in as ``email`` (any letter case): their own line, else their domain's line,
    else None (deny by default)."""
    address = normalise_email(email)
    if address is None:
        return None
    if address in roles.users:
        return roles.users[address]
    return roles.domains.get(address.rpartition("@")[2])


def can(role: Role | None, action: str) -> bool:
    """True when ``role`` may do ``action`` (one of :data:`ACTIONS`); no role may do nothing. An unknown action is
    a programming error (``ValueError``)."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}; expected one of {', '.join(ACTIONS)}.")
    return role is not None and action in PERMISSIONS[Role(role)]
