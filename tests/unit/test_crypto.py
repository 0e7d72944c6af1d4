"""Payload encryption at rest: round trip, rotation, and clear reasons for what cannot be opened."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emailqueue.crypto import SCHEME, PayloadCipher, generate_key, parse_keys
from emailqueue.errors import ConfigError, MalformedEntry

K1 = bytes(range(32))
K2 = bytes(range(32, 64))
PAYLOAD = json.dumps({"to": ["jane@example.com"], "subject": "Your order", "text": "secret body ✓"})


def cipher(active: str = "k1") -> PayloadCipher:
    return PayloadCipher({"k1": K1, "k2": K2}, active)


def test_roundtrip_and_enc_names_scheme_and_key() -> None:
    enc, data = cipher().encrypt(PAYLOAD)
    assert enc == f"{SCHEME}:k1"
    assert "secret body" not in data and "jane" not in data
    assert data.isascii()
    assert cipher().decrypt(enc, data) == PAYLOAD


def test_every_encryption_uses_a_fresh_nonce() -> None:
    c = cipher()
    assert c.encrypt(PAYLOAD)[1] != c.encrypt(PAYLOAD)[1]


def test_rotation_old_payloads_still_open_after_switching_the_active_key() -> None:
    old_enc, old_data = cipher("k1").encrypt(PAYLOAD)
    rotated = cipher("k2")
    new_enc, new_data = rotated.encrypt(PAYLOAD)
    assert new_enc == f"{SCHEME}:k2"
    assert rotated.decrypt(old_enc, old_data) == PAYLOAD
    assert rotated.decrypt(new_enc, new_data) == PAYLOAD


def test_unknown_key_id_is_a_malformed_entry_naming_the_key_id() -> None:
    enc, data = PayloadCipher({"gone": K1}, "gone").encrypt(PAYLOAD)
    with pytest.raises(MalformedEntry, match=r"key id 'gone'.*does not hold.*EMAILQUEUE_PAYLOAD_KEYS"):
        cipher().decrypt(enc, data)


def test_same_key_id_but_another_key_fails_authentication() -> None:
    enc, data = PayloadCipher({"k1": K2}, "k1").encrypt(PAYLOAD)
    with pytest.raises(MalformedEntry, match="failed authentication with key 'k1'"):
        cipher().decrypt(enc, data)


@pytest.mark.parametrize("position", [0, 5, 12, 20, -1])
def test_any_flipped_bit_fails_authentication(position: int) -> None:
    enc, data = cipher().encrypt(PAYLOAD)
    blob = bytearray(base64.b64decode(data))
    blob[position] ^= 0x01
    with pytest.raises(MalformedEntry, match="failed authentication"):
        cipher().decrypt(enc, base64.b64encode(bytes(blob)).decode())


def test_ciphertext_is_bound_to_its_key_id() -> None:
    """A payload sealed under k1 cannot be relabelled as k2 (the key id is authenticated data)."""
    both_same = PayloadCipher({"k1": K1, "k2": K1}, "k1")
    _, data = both_same.encrypt(PAYLOAD)
    with pytest.raises(MalformedEntry, match="failed authentication"):
        both_same.decrypt(f"{SCHEME}:k2", data)


@pytest.mark.parametrize(
    ("enc", "data", "reason"),
    [
        ("fernet:k1", "x", "unknown payload encryption scheme 'fernet:k1'"),
        ("aesgcm", "x", "unknown payload encryption scheme 'aesgcm'"),
        ("aesgcm:k1", "not base64!", "not valid base64"),
        ("aesgcm:k1", base64.b64encode(b"short").decode(), "too short"),
    ],
)
def test_garbage_is_a_malformed_entry_with_the_reason(enc: str, data: str, reason: str) -> None:
    with pytest.raises(MalformedEntry, match=reason):
        cipher().decrypt(enc, data)


@given(enc=st.text(max_size=40), data=st.text(max_size=200))
def test_decrypt_of_anything_returns_or_raises_malformed_entry(enc: str, data: str) -> None:
    try:
        cipher().decrypt(enc, data)
    except MalformedEntry:
        pass


@given(payload=st.text(max_size=2000))
def test_any_text_round_trips(payload: str) -> None:
    c = cipher()
    assert c.decrypt(*c.encrypt(payload)) == payload


def test_from_env_off_when_no_keys() -> None:
    assert PayloadCipher.from_env({}) is None


def test_from_env_parses_keys_and_active_id() -> None:
    env = {
        "EMAILQUEUE_PAYLOAD_KEYS": f"k1:{base64.b64encode(K1).decode()}, k2:{base64.b64encode(K2).decode()}",
        "EMAILQUEUE_PAYLOAD_KEY_ID": "k2",
    }
    c = PayloadCipher.from_env(env)
    assert c is not None and c.active == "k2" and c.key_ids == {"k1", "k2"}
    assert c.decrypt(*cipher("k1").encrypt(PAYLOAD)) == PAYLOAD


def test_from_env_single_key_needs_no_key_id() -> None:
    c = PayloadCipher.from_env({"EMAILQUEUE_PAYLOAD_KEYS": f"only:{generate_key()}"})
    assert c is not None and c.active == "only"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EMAILQUEUE_PAYLOAD_KEYS": "k1"}, "item 1 must be KEY_ID:BASE64_KEY"),
        ({"EMAILQUEUE_PAYLOAD_KEYS": "bad id:AAAA"}, "item 1 must be KEY_ID:BASE64_KEY"),
        ({"EMAILQUEUE_PAYLOAD_KEYS": "k1:***"}, "key 'k1' is not valid base64"),
        ({"EMAILQUEUE_PAYLOAD_KEYS": "k1:AAAA"}, "key 'k1' is 3 bytes"),
        ({"EMAILQUEUE_PAYLOAD_KEYS": f"k1:{generate_key()},k1:{generate_key()}"}, "given twice"),
        ({"EMAILQUEUE_PAYLOAD_KEYS": f"a:{generate_key()},b:{generate_key()}"}, "set EMAILQUEUE_PAYLOAD_KEY_ID"),
        ({"EMAILQUEUE_PAYLOAD_KEYS": f"a:{generate_key()}", "EMAILQUEUE_PAYLOAD_KEY_ID": "b"}, "names no key"),
        ({"EMAILQUEUE_PAYLOAD_KEY_ID": "a"}, "EMAILQUEUE_PAYLOAD_KEYS is empty"),
    ],
)
def test_bad_configuration_is_a_config_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PayloadCipher.from_env(env)


def test_no_key_material_in_errors_or_repr() -> None:
    key = generate_key()
    with pytest.raises(ConfigError) as info:
        parse_keys(f"k1:{key},k1:{key}")
    assert key not in str(info.value)
    c = PayloadCipher.from_env({"EMAILQUEUE_PAYLOAD_KEYS": f"k1:{key}"})
    assert key not in repr(c) and "k1" in repr(c)
    enc, data = PayloadCipher({"other": K1}, "other").encrypt(PAYLOAD)
    assert c is not None
    with pytest.raises(MalformedEntry) as bad:
        c.decrypt(enc, data)
    assert key not in str(bad.value)


def test_generate_key_is_aes256() -> None:
    assert len(base64.b64decode(generate_key())) == 32
