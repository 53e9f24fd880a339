"""Audit log: who did what to the data, when, and how it ended.

One row per event in the ``audit_log`` table of the store: ``event_id``, ``occurred_at`` (UTC), ``actor`` (the signed-in
user's e-mail or name; :data:`ANONYMOUS` when the app runs without sign-in), ``action`` (one of :data:`ACTIONS`),
``target`` (what it was done to: a table, a file, a goal id), ``outcome`` (``ok``, ``failed`` or ``denied``) and
``detail`` (the message shown to the user, or a short description). Every value is bound as a parameter; text is
stored as given and cut to :data:`MAX_TEXT` characters.

The log is append-only from the app: there is no function to edit or delete an entry, and a reset of the data
(which replaces the CRM tables) leaves it alone.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import duckdb
import pandas as pd

from crm_core import store

__all__ = ["ACTIONS", "OUTCOMES", "ANONYMOUS", "MAX_TEXT", "AUDIT_DDL", "ensure_audit_table", "record", "entries"]

ACTIONS = ("login", "logout", "import", "export", "reset", "goal_create", "goal_update", "goal_delete", "note_add",
           "report")
OUTCOMES = ("ok", "failed", "denied")
ANONYMOUS = "anonymous (no sign-in configured)"
MAX_TEXT = 2000

AUDIT_DDL = """CREATE TABLE IF NOT EXISTS audit_log (
    event_id VARCHAR PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    actor VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    target VARCHAR,
    outcome VARCHAR NOT NULL,
    detail VARCHAR
)"""

COLUMNS = ("event_id", "occurred_at", "actor", "action", "target", "outcome", "detail")


def ensure_audit_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``audit_log`` if the store does not have it yet."""
    con.execute(AUDIT_DDL)


def _text(value) -> str | None:
    if value is None:
        return None
    return str(value)[:MAX_TEXT]


def record(con: duckdb.DuckDBPyConnection, action: str, *, actor: str | None = None, target: str | None = None,
           outcome: str = "ok", detail: str | None = None, at: datetime | None = None) -> str:
    """Append one event and return its id. ``action`` must be one of :data:`ACTIONS` and ``outcome`` one of
    :data:`OUTCOMES` (a ``ValueError`` otherwise: an unknown action is a programming error, not user input)."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}; expected one of {', '.join(ACTIONS)}.")
    if outcome not in OUTCOMES:
        raise ValueError(f"Unknown audit outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}.")
    ensure_audit_table(con)
    event_id = uuid.uuid4().hex
    when = (at or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    actor_text = _text(actor).strip() if actor and str(actor).strip() else ANONYMOUS
    con.execute("INSERT INTO audit_log (event_id, occurred_at, actor, action, target, outcome, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [event_id, when, actor_text, action, _text(target), outcome, _text(detail)])
    return event_id


def entries(con: duckdb.DuckDBPyConnection, *, action: str | None = None, actor: str | None = None,
            limit: int | None = 1000) -> pd.DataFrame:
    """The log, newest first (ties by event id), optionally one action or one actor; at most ``limit`` rows.
    Works on a read-only connection (an empty frame when nothing was ever logged)."""
    if not store.table_exists(con, "audit_log"):
        return pd.DataFrame({c: pd.Series(dtype="datetime64[us]" if c == "occurred_at" else "object") for c in COLUMNS})
    where, params = [], []
    if action is not None:
        where.append("action = ?")
        params.append(action)
    if actor is not None:
        where.append("actor = ?")
        params.append(actor)
    sql = f"SELECT {', '.join(COLUMNS)} FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY occurred_at DESC, event_id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return con.execute(sql, params).df()
