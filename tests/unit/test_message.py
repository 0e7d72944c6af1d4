"""The Email model refuses what cannot be sent and names the field."""

from __future__ import annotations

import base64
from datetime import datetime

import pytest

from emailqueue import Attachment, Email, InvalidEmail
from emailqueue.wire import encode


def make(**kw: object) -> Email:
    data: dict[str, object] = {"from": "app@example.com", "to": "user@example.com", "subject": "Hi", "text": "Hello"}
    data.update(kw)
    return Email(**data)


def test_minimal_email_is_valid_and_gets_an_id() -> None:
    email = make()
    assert email.to[0].email == "user@example.com"
    assert email.sender is not None and email.sender.email == "app@example.com"
    assert len(email.id) == 32


def test_display_name_form_is_parsed() -> None:
    email = make(to='"Jane Doe" <jane@example.com>')
    assert email.to[0].name == "Jane Doe"
    assert email.to[0].email == "jane@example.com"


@pytest.mark.parametrize(
    ("kw", "field", "reason"),
    [
        ({"to": [], "cc": [], "bcc": []}, "to", "no recipient"),
        ({"to": "not-an-address"}, "to[0].email", "not a valid email address"),
        ({"to": ["ok@example.com", "bad@@example.com"]}, "to[1].email", "not a valid email address"),
        ({"cc": "x@"}, "cc[0].email", "not a valid email address"),
        ({"from": "nobody"}, "from.email", "not a valid email address"),
        ({"subject": "Hi\r\nBcc: victim@example.com"}, "subject", "CR or LF"),
        ({"headers": {"X-Tag": "a\nb"}}, "headers", "CR or LF"),
        ({"headers": {"Bad Name": "x"}}, "headers", "not a valid header field name"),
        ({"headers": {"Subject": "x"}}, "headers", "set from the email's own fields"),
        ({"to": {"email": "a@example.com", "name": "Eve\r\nX: y"}}, "to[0].name", "CR or LF"),
        ({"text": None}, "text", "empty email"),
        ({"attachments": [{"filename": "a.pdf", "content": "%%%"}]}, "attachments[0].content", "base64"),
        ({"send_at": datetime(2030, 1, 1)}, "send_at", "timezone"),
        ({"priority": "urgent"}, "priority", "high"),
        ({"unknown": 1}, "unknown", "Extra inputs"),
    ],
)
def test_invalid_email_names_field_and_reason(kw: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(InvalidEmail) as info:
        make(**kw)
    assert info.value.field == field
    assert reason in info.value.reason
    assert field in str(info.value)
    assert isinstance(info.value, ValueError)


def test_size_cap_names_attachments() -> None:
    data = b"x" * 4096
    email = make(attachments=[Attachment.from_bytes("big.bin", data)])
    with pytest.raises(InvalidEmail) as info:
        encode(email, max_bytes=2048)
    assert info.value.field == "attachments"
    assert "size cap of 2048 bytes" in info.value.reason
    assert encode(email, max_bytes=10 * 2**20)["v"] == "1"


def test_attachment_roundtrip() -> None:
    att = Attachment.from_bytes("r.pdf", b"%PDF-1.4", "application/pdf")
    assert att.data() == b"%PDF-1.4"
    assert base64.b64decode(att.content) == b"%PDF-1.4"


def test_recipients_are_deduplicated_envelope() -> None:
    email = make(to=["a@example.com", "b@example.com"], cc="a@example.com", bcc="c@example.com")
    assert email.recipients() == ["a@example.com", "b@example.com", "c@example.com"]
