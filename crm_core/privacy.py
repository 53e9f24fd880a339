"""Presentation mode: mask customers' names, e-mail addresses and phone numbers before anything is shown or exported.

A workshop projects the app in a room; the people in it should see the numbers, not who the customers are. Masking
is deterministic and keeps just enough shape to read a table:

- a **name** keeps the first letter of each word: ``Zoë Müller`` → ``Z••• M•••``;
- an **e-mail** keeps its first letter and the last part of the domain: ``zoe.muller@example.co.uk`` →
  ``z•••@•••.uk``;
- a **phone** keeps its last two digits: ``+44 20 7946 0018`` → ``••• 18``;
- in **free text** (notes, comments, ticket subjects, timeline details) e-mail addresses and phone numbers found
  inside the text are masked the same way; names inside free text cannot be recognised reliably and are left.

Personal columns are found by name (:data:`PERSONAL_COLUMNS`, plus any column ending in ``_email``, ``_phone``
or ``_name`` that is not a thing's name such as ``campaign_name``); customer ids are pseudonymous already and stay,
so a masked table can still be joined back by someone allowed to.
"""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["PERSONAL_COLUMNS", "FREE_TEXT_COLUMNS", "mask_name", "mask_email", "mask_phone", "mask_text",
           "is_personal", "mask_frame", "MASK"]

MASK = "•••"

NAME_COLUMNS = frozenset({"name", "first_name", "last_name", "full_name", "customer_name", "contact_name",
                          "referrer_name", "display_name"})
EMAIL_COLUMNS = frozenset({"email", "e_mail", "email_address", "mail"})
PHONE_COLUMNS = frozenset({"phone", "phone_number", "mobile", "telephone"})
PERSONAL_COLUMNS = NAME_COLUMNS | EMAIL_COLUMNS | PHONE_COLUMNS
# Columns holding text people wrote, where an address or number may hide.
FREE_TEXT_COLUMNS = frozenset({"note", "notes", "comment", "comments", "subject", "detail", "details", "description",
                               "body", "text", "title", "label"})
# ``*_name`` columns that name things, not people.
_THING_NAMES = ("campaign", "goal", "product", "file", "table", "template", "segment", "tier", "channel", "metric",
                "category", "carrier", "column", "source", "agent", "author", "page", "group", "rule", "theme")

_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A phone number inside text: optional +, then 9 or more digits with spaces, dots, dashes or brackets between them.
# ISO dates and times (2026-03-01, 10:15) have fewer than 9 digits in a run or contain ':' and are not matched.
_PHONE = re.compile(r"(?<![\w:])\+?\(?\d(?:[\s().-]{0,2}\d){8,}(?![\w:])")


def mask_name(value):
    """``Zoë Müller`` → ``Z••• M•••``; non-text and empty values pass through."""
    if not isinstance(value, str) or not value.strip():
        return value
    return " ".join(word[0] + MASK for word in value.split())


def mask_email(value):
    """``zoe@example.co.uk`` → ``z•••@•••.uk``; text without an ``@`` is masked whole."""
    if not isinstance(value, str) or not value.strip():
        return value
    text = value.strip()
    local, at, domain = text.partition("@")
    if not at:
        return MASK
    tld = domain.rsplit(".", 1)[-1] if "." in domain else ""
    return f"{local[:1]}{MASK}@{MASK}" + (f".{tld}" if tld else "")


def mask_phone(value):
    """``+44 20 7946 0018`` → ``••• 18`` (last two digits kept); values with fewer than 5 digits are masked whole."""
    if value is None or (isinstance(value, float) and value != value):
        return value
    digits = re.sub(r"\D", "", str(value))
    if not digits:
        return value if not str(value).strip() else MASK
    return f"{MASK} {digits[-2:]}" if len(digits) >= 5 else MASK


def mask_text(value):
    """Free text with every e-mail address and phone number in it masked; the rest of the text unchanged."""
    if not isinstance(value, str) or not value:
        return value
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), _mask_emails_in(value))


def _mask_emails_in(value):
    if not isinstance(value, str) or "@" not in value:
        return value
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), value)


def _kind(column: str) -> str | None:
    c = str(column).strip().lower().replace("-", "_").replace(" ", "_")
    if c in NAME_COLUMNS:
        return "name"
    if c in EMAIL_COLUMNS or c.endswith("_email"):
        return "email"
    if c in PHONE_COLUMNS or c.endswith("_phone"):
        return "phone"
    if c.endswith("_name") and not c.startswith(_THING_NAMES):
        return "name"
    if c in FREE_TEXT_COLUMNS:
        return "text"
    return None


def is_personal(column: str) -> bool:
    """True when ``column`` holds a name, e-mail or phone by its name (free-text columns are not counted)."""
    return _kind(column) in ("name", "email", "phone")


_MASKERS = {"name": mask_name, "email": mask_email, "phone": mask_phone, "text": mask_text, "other": _mask_emails_in}


def mask_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with names, e-mails and phones masked, and addresses and numbers inside free text
    (:data:`FREE_TEXT_COLUMNS`) masked by :func:`mask_text`. Any other text column has e-mail addresses masked (a
    digit run there may be an id, so phone numbers are looked for only in free text). Numbers, dates and ids
    (``*_id``) are unchanged."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if not (series.dtype == object or pd.api.types.is_string_dtype(series)):
            continue
        if str(column).lower().endswith("_id"):
            continue
        kind = _kind(column) or "other"
        out[column] = series.map(_MASKERS[kind], na_action="ignore")
    return out
