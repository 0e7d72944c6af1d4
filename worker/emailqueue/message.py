"""The ``Email`` model: what an application hands to the queue.

Validation happens here, at construction, and raises ``InvalidEmail`` naming the field:
no recipient, a malformed address, CR/LF in a header value (header injection), a bad
attachment.  The size cap is checked when the email is encoded (see ``wire``).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InvalidEmail

Priority = Literal["high", "normal", "bulk"]

# Pragmatic RFC 5321 mailbox check: a dot-atom-ish local part and a hostname.  Quoted
# local parts and address literals are rejected on purpose (providers reject them too).
# Non-ASCII: any character except the surrogates (a lone one is not Unicode text and cannot be
# encoded; it reaches us from undecodable bytes or a JSON "\udXXX" escape).
_U = r"\u0080-\ud7ff\ue000-\uffff"
_LOCAL = rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~{_U}-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~{_U}-]+)*"
_LABEL = rf"[A-Za-z0-9{_U}](?:[A-Za-z0-9{_U}-]{{0,61}}[A-Za-z0-9{_U}])?"
_ADDRESS = re.compile(rf"^{_LOCAL}@{_LABEL}(?:\.{_LABEL})*$")
_NAMED_ADDRESS = re.compile(r"^\s*(.*?)\s*<([^<>]*)>\s*$")  # 'Name <a@b.c>'
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable ASCII except ':' (RFC 5322 ftext)
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)


def _no_crlf(value: str, what: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{what} must not contain CR or LF (header injection)")
    return value


class Address(BaseModel):
    """A mailbox: ``email`` and an optional display ``name``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str
    name: str | None = None

    @field_validator("email")
    @classmethod
    def _check_email(cls, value: str) -> str:
        _no_crlf(value, "address")
        value = value.strip()
        if len(value) > 254 or not _ADDRESS.match(value):
            raise ValueError(f"{value!r} is not a valid email address")
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # runs of blanks do not survive header parsing anywhere: normalise them here, once
        return " ".join(_no_crlf(value, "display name").split()) or None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            if "<" not in data:
                return {"email": data}
            match = _NAMED_ADDRESS.match(data)
            if match:
                name = match.group(1).strip().strip('"') or None
                return {"email": match.group(2), "name": name}
            return {"email": data}
        return data

    def formatted(self) -> str:
        from email.headerregistry import Address as _A

        local, _, domain = self.email.rpartition("@")
        return str(_A(display_name=self.name or "", username=local, domain=domain))


class Attachment(BaseModel):
    """A file attached to the email; ``content`` is base64 on the wire."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    filename: str
    content_type: str = "application/octet-stream"
    content: str = Field(description="base64-encoded bytes")

    @field_validator("filename")
    @classmethod
    def _check_filename(cls, value: str) -> str:
        _no_crlf(value, "filename")
        if not value.strip():
            raise ValueError("filename must not be empty")
        return value

    @field_validator("content_type")
    @classmethod
    def _check_type(cls, value: str) -> str:
        _no_crlf(value, "content type")
        if not re.match(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$", value):
            raise ValueError(f"{value!r} is not a MIME type such as 'application/pdf'")
        return value

    @field_validator("content")
    @classmethod
    def _check_content(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("content is not valid base64") from None
        return value

    @classmethod
    def from_bytes(cls, filename: str, data: bytes, content_type: str = "application/octet-stream") -> Attachment:
        return cls(filename=filename, content_type=content_type, content=base64.b64encode(data).decode())

    def data(self) -> bytes:
        return base64.b64decode(self.content)


def new_message_id() -> str:
    """32 random hex digits (128 bits, like a uuid4's hex without the version nibbles; cheaper)."""
    return os.urandom(16).hex()


class Email(BaseModel):
    """One email.  Addresses may be given as ``"a@b.c"``, ``"Name <a@b.c>"`` or ``Address``.

    Raises ``InvalidEmail`` (a ``ValueError``) naming the field when the email cannot be
    sent.  ``sender`` (wire name ``from``) may be left out when the worker has a default
    sender (``MAILER_FROM_EMAIL``).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(default_factory=new_message_id, min_length=1, max_length=200)
    sender: Address | None = Field(default=None, alias="from")
    to: list[Address] = Field(default_factory=list)
    cc: list[Address] = Field(default_factory=list)
    bcc: list[Address] = Field(default_factory=list)
    reply_to: list[Address] = Field(default_factory=list)
    subject: str = ""
    text: str | None = None
    html: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    attachments: list[Attachment] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    send_at: datetime | None = None
    priority: Priority = "normal"
    idempotency_key: str | None = Field(default=None, max_length=200)
    metadata: dict[str, str] = Field(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise invalid_from_validation_error(exc) from None

    @field_validator("to", "cc", "bcc", "reply_to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str | Address | dict):
            return [value]
        return value

    @field_validator("subject")
    @classmethod
    def _check_subject(cls, value: str) -> str:
        return _no_crlf(value, "subject")

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_.:@-]+$", value):
            raise ValueError("id may hold only letters, digits and _ . : @ -")
        return value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header_value in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"header name {name!r} is not a valid header field name")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set from the email's own fields; use them instead")
            _no_crlf(header_value, f"header {name!r}")
        return value

    @field_validator("created_at", "send_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("datetime must carry a timezone (e.g. datetime.now(UTC))")
        return value

    @model_validator(mode="after")
    def _check_whole(self) -> Email:
        if not (self.to or self.cc or self.bcc):
            raise ValueError("no recipient: set at least one of to, cc, bcc")
        if self.text is None and self.html is None and not self.attachments:
            raise ValueError("empty email: set text, html or an attachment")
        return self

    def recipients(self) -> list[str]:
        """Envelope recipients: to + cc + bcc, deduplicated, in order."""
        seen: dict[str, None] = {}
        for addr in (*self.to, *self.cc, *self.bcc):
            seen.setdefault(addr.email, None)
        return list(seen)


def invalid_from_validation_error(exc: ValidationError) -> InvalidEmail:
    """Turn pydantic's error into ``InvalidEmail`` naming the first offending field."""
    err = exc.errors(include_url=False)[0]
    loc = err.get("loc", ())
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-after", "function-before", "function-wrap"):
            continue
        else:
            name = "from" if part == "sender" else str(part)
            path += f".{name}" if path else name
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    if not path:
        # whole-model rule: name the field the rule is about
        path = "to" if "recipient" in msg else "text" if "empty email" in msg else "email"
    return InvalidEmail(path, msg)
