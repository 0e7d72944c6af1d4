"""Wire format v1: how an email is stored in a stream entry (docs/wire-format.md).

An entry has the fields ``v`` ("1") and ``payload`` (UTF-8 JSON of the ``Email`` model,
schema in ``docs/schema/email-v1.json``).  The worker adds ``attempts`` (attempts already
made) and ``mid`` (message id) when it re-queues an entry for a retry.  ``enc`` names the
payload encryption scheme when encryption is on; v1 readers without the key dead-letter
such an entry with a clear reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from .crypto import PayloadCipher
from .errors import InvalidEmail, MalformedEntry
from .keys import F_ATTEMPTS, F_ENC, F_MID, F_PAYLOAD, F_VERSION, WIRE_VERSION
from .message import Email, invalid_from_validation_error

DEFAULT_MAX_PAYLOAD_BYTES = 10 * 1024 * 1024


def payload_json(email: Email, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> bytes:
    """The payload: the email as UTF-8 JSON; raises ``InvalidEmail`` over the size cap or for
    text that is not Unicode.  Bytes, so the producer's fast path never decodes it again."""
    try:
        payload: bytes = email.__pydantic_serializer__.to_json(email, by_alias=True, exclude_none=True)
    except PydanticSerializationError:
        raise InvalidEmail(_not_unicode(email), "contains a lone surrogate: text that is not valid Unicode") from None
    if len(payload) > max_bytes:
        field = "attachments" if email.attachments else "html" if email.html else "text"
        raise InvalidEmail(
            field,
            f"encoded email is {len(payload)} bytes, over the size cap of {max_bytes} bytes "
            "(EMAILQUEUE_MAX_PAYLOAD_BYTES)",
        )
    return payload


def encode(
    email: Email, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES, cipher: PayloadCipher | None = None
) -> dict[str, str]:
    """The stream fields for ``email``; raises ``InvalidEmail`` over the size cap.

    With a ``cipher`` the payload is sealed (``enc`` names scheme and key id) and the
    message id travels in the clear as ``mid``, so an entry that cannot be opened is still
    dead-lettered under its own id.
    """
    payload = payload_json(email, max_bytes).decode()
    if cipher is not None:
        enc, sealed = cipher.encrypt(payload)
        return {F_VERSION: WIRE_VERSION, F_PAYLOAD: sealed, F_ENC: enc, F_MID: email.id}
    return {F_VERSION: WIRE_VERSION, F_PAYLOAD: payload}


def _not_unicode(email: Email) -> str:
    """The first field holding text that cannot be encoded as UTF-8 (a lone surrogate)."""

    def bad(value: object) -> str | None:
        if isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                return ""
            return None
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            inner = bad(item)
            if inner is not None:
                return f"[{key}]{inner}" if isinstance(key, int) else f".{key}{inner}"
        return None

    for name, value in email.model_dump(by_alias=True, exclude_none=True).items():
        inner = bad(value)
        if inner is not None:
            return f"{name}{inner}"
    return "email"


@dataclass(frozen=True, slots=True)
class Entry:
    """A decoded stream entry."""

    email: Email
    attempts: int


def _text(value: bytes | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise MalformedEntry("field is not valid UTF-8") from None


def fields_to_str(fields: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    """Stream fields as text; bytes that are not UTF-8 become a MalformedEntry."""
    out: dict[str, str] = {}
    for key, value in fields.items():
        k = _text(key)
        v = _text(value)
        assert k is not None and v is not None  # noqa: PT018
        out[k] = v
    return out


def message_id_of(fields: Mapping[str, str], entry_id: str) -> str:
    """The stable message id of an entry, readable even when the payload is garbage."""
    mid = fields.get(F_MID)
    if mid:
        return mid
    try:
        data = json.loads(fields.get(F_PAYLOAD, ""))
        if isinstance(data, dict) and isinstance(data.get("id"), str) and data["id"]:
            return str(data["id"])
    except ValueError:
        pass
    return entry_id


def attempts_of(fields: Mapping[str, str]) -> int:
    try:
        return max(int(fields.get(F_ATTEMPTS, "0")), 0)
    except ValueError:
        return 0


def decode(fields: Mapping[str, str], entry_id: str = "", cipher: PayloadCipher | None = None) -> Entry:
    """Decode an entry; raises ``MalformedEntry`` saying what is wrong with it."""
    version = fields.get(F_VERSION)
    if version is None:
        raise MalformedEntry("missing field 'v' (wire format version)")
    if version != WIRE_VERSION:
        raise MalformedEntry(f"unknown wire format version {version!r} (this worker reads '1')")
    enc = fields.get(F_ENC)
    payload = fields.get(F_PAYLOAD)
    if payload is None:
        raise MalformedEntry("missing field 'payload'")
    if enc:
        if cipher is None:
            raise MalformedEntry(
                f"payload is encrypted with {enc!r} and this worker has no key for it (EMAILQUEUE_PAYLOAD_KEYS)"
            )
        payload = cipher.decrypt(enc, payload)
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise MalformedEntry(f"payload is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedEntry("payload is not a JSON object")
    if "\\ud" in payload or "\\uD" in payload:  # a surrogate escape: a pair is fine, a lone one is not text
        try:
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise MalformedEntry("payload contains a lone surrogate escape (\\udXXX): not valid Unicode") from None
    if "id" not in data or not data["id"]:
        data["id"] = message_id_of(fields, entry_id)
    try:
        email = Email.model_validate(data)
    except ValidationError as exc:
        err = invalid_from_validation_error(exc)
        raise MalformedEntry(f"payload is not a valid email: {err.field}: {err.reason}") from None
    return Entry(email=email, attempts=attempts_of(fields))
