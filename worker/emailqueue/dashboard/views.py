"""Turning stream entries into what the page shows: plain JSON-able dicts, no secrets.

An email's attachments are listed by name, type and size; their content never leaves
Redis through the dashboard. Long bodies are cut at ``MAX_BODY`` characters.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from typing import Any

from emailqueue.crypto import PayloadCipher
from emailqueue.errors import MalformedEntry
from emailqueue.keys import F_ENC, F_PAYLOAD
from emailqueue.message import Address, Email
from emailqueue.wire import attempts_of, decode, message_id_of

MAX_BODY = 100_000
MAX_FIELD = 4_000
#: Dead-letter fields shown in the detail view besides the decoded payload.
LETTER_FIELDS = ("reason", "error", "smtp_code", "attempts", "first_attempt_at", "failed_at", "entry_id", "mid", "v")


def text(value: bytes | str | int) -> str:
    """Bytes from Redis as text; bytes that are not UTF-8 are shown, not fatal."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def fields_text(raw: Mapping[bytes, bytes] | Mapping[str, str]) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}


def entry_ms(entry_id: str) -> int | None:
    """The creation time (ms) encoded in a stream entry id ``<ms>-<seq>``."""
    head = entry_id.partition("-")[0]
    return int(head) if head.isdigit() else None


def age_ms(entry_id: str, now_ms: int | None = None) -> int | None:
    created = entry_ms(entry_id)
    if created is None:
        return None
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return max(now - created, 0)


def _cut(value: str | None, limit: int) -> str | None:
    if value is None or len(value) <= limit:
        return value
    return value[:limit] + f"\n… ({len(value) - limit} more characters not shown)"


def _addresses(items: list[Address]) -> list[str]:
    return [a.formatted() for a in items]


def _attachment_size(content: str) -> int | None:
    try:
        return len(base64.b64decode(content, validate=False))
    except (binascii.Error, ValueError):
        return None


def email_view(email: Email, attempts: int) -> dict[str, Any]:
    return {
        "id": email.id,
        "from": email.sender.formatted() if email.sender else None,
        "to": _addresses(email.to),
        "cc": _addresses(email.cc),
        "bcc": _addresses(email.bcc),
        "reply_to": _addresses(email.reply_to),
        "subject": email.subject,
        "text": _cut(email.text, MAX_BODY),
        "html": _cut(email.html, MAX_BODY),
        "headers": dict(email.headers),
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": _attachment_size(a.content)}
            for a in email.attachments
        ],
        "created_at": email.created_at.isoformat(),
        "send_at": email.send_at.isoformat() if email.send_at else None,
        "priority": email.priority,
        "idempotency_key": email.idempotency_key,
        "metadata": dict(email.metadata),
        "attempts": attempts,
    }


def payload_view(fields: Mapping[str, str], entry_id: str, cipher: PayloadCipher | None) -> dict[str, Any]:
    """``{"decoded": True, "email": {...}}`` or ``{"decoded": False, "error": why}``."""
    try:
        entry = decode(fields, entry_id, cipher)
    except MalformedEntry as exc:
        out: dict[str, Any] = {"decoded": False, "error": str(exc)}
        if not fields.get(F_ENC):  # a plain payload that is not an email: show it as text
            out["raw"] = _cut(fields.get(F_PAYLOAD), MAX_FIELD)
        return out
    return {"decoded": True, "email": email_view(entry.email, entry.attempts)}


def summary_of(fields: Mapping[str, str], entry_id: str, cipher: PayloadCipher | None) -> dict[str, Any]:
    """One line of a list: id, recipients, subject, attempts; never the body."""
    out: dict[str, Any] = {
        "entry_id": entry_id,
        "message_id": message_id_of(fields, entry_id),
        "attempts": attempts_of(fields),
        "to": [],
        "subject": None,
    }
    try:
        email = decode(fields, entry_id, cipher).email
    except MalformedEntry as exc:
        out["error"] = str(exc)
        return out
    out["to"] = email.recipients()[:5]
    out["subject"] = email.subject
    return out


def letter_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """A dead letter's record, without the payload (shown decoded) and cut to size."""
    shown = {k: fields[k] for k in LETTER_FIELDS if k in fields}
    for key, value in fields.items():
        if key not in shown and key != F_PAYLOAD:
            shown[key] = value
    return {k: _cut(v, MAX_FIELD) or "" for k, v in shown.items()}
