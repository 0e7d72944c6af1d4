"""Wire format v1: encode/decode round trip; malformed entries say what is wrong."""

from __future__ import annotations

import json

import pytest

from emailqueue import Email, InvalidEmail, MalformedEntry
from emailqueue.wire import decode, encode, message_id_of


def test_roundtrip_keeps_every_field() -> None:
    email = Email(
        **{
            "from": {"email": "app@example.com", "name": "App"},
            "to": ["a@example.com"],
            "cc": ["b@example.com"],
            "bcc": ["c@example.com"],
            "reply_to": ["r@example.com"],
            "subject": "Ünïcode ✓",
            "text": "t",
            "html": "<p>h</p>",
            "headers": {"X-Campaign": "42"},
            "priority": "high",
            "idempotency_key": "k1",
            "metadata": {"user": "7"},
        }
    )
    fields = encode(email)
    assert fields["v"] == "1"
    assert json.loads(fields["payload"])["from"]["email"] == "app@example.com"
    assert decode(fields).email == email


def test_minimal_foreign_payload_decodes() -> None:
    payload = json.dumps({"from": "app@example.com", "to": [{"email": "u@example.com"}], "subject": "s", "text": "x"})
    entry = decode({"v": "1", "payload": payload}, "1700000000000-0")
    assert entry.email.id == "1700000000000-0"
    assert entry.attempts == 0


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"payload": "{}"}, "missing field 'v'"),
        ({"v": "2", "payload": "{}"}, "unknown wire format version '2'"),
        ({"v": "1"}, "missing field 'payload'"),
        ({"v": "1", "payload": "{not json"}, "not valid JSON"),
        ({"v": "1", "payload": "[1, 2]"}, "not a JSON object"),
        ({"v": "1", "payload": '{"to": [], "text": "x"}'}, "to: no recipient"),
        ({"v": "1", "payload": '{"to": "bad", "text": "x"}'}, "to[0].email"),
        ({"v": "1", "enc": "aesgcm:k1", "payload": "xxx"}, "encrypted"),
    ],
)
def test_malformed_entries_are_named(fields: dict[str, str], reason: str) -> None:
    with pytest.raises(MalformedEntry) as info:
        decode(fields, "1-0")
    assert reason in str(info.value)


def test_message_id_survives_garbage() -> None:
    assert message_id_of({"payload": "garbage"}, "5-0") == "5-0"
    assert message_id_of({"mid": "abc", "payload": "garbage"}, "5-0") == "abc"
    assert message_id_of({"payload": '{"id": "xyz"}'}, "5-0") == "xyz"


def test_text_that_is_not_unicode_is_refused_naming_the_field() -> None:
    """A lone surrogate (from undecodable bytes) cannot be encoded: InvalidEmail, not a crash."""
    with pytest.raises(InvalidEmail) as info:
        encode(Email(to="a@example.com", text="ok", headers={"X-Ref": "caf\udce9"}))
    assert info.value.field == "headers.X-Ref" and "surrogate" in info.value.reason
    with pytest.raises(InvalidEmail, match=r"to\[0\]\.email"):
        Email(to="r\udce9@example.com", text="t")
    assert encode(Email(to="jörg@exämple.de", text="smile \U0001f600"))  # real non-ASCII is fine


def test_the_fast_path_entry_is_the_wire_format() -> None:
    """rawpipe.pack_entry (the producer's common case) writes exactly what encode() describes."""
    from emailqueue.rawpipe import pack_entry, pack_xadd

    email = Email(to="a@example.com", subject="Grüße", text="x" * 300)
    fields = encode(email)
    assert pack_entry("emailqueue:{q}:stream", fields["payload"].encode()) == pack_xadd("emailqueue:{q}:stream", fields)
    assert list(fields) == ["v", "payload"] and fields["v"] == "1"
