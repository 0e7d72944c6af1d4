"""Optional payload encryption at rest: AES-GCM with key ids, so keys can rotate.

A stream entry whose payload is encrypted carries ``enc = "aesgcm:<key id>"`` and
``payload = base64(nonce || ciphertext || tag)`` (docs/wire-format.md, docs/security.md).
The additional authenticated data binds the ciphertext to its scheme and key id, so a
payload cannot be replayed under another key id or scheme without failing the tag.

Keys come from the environment (a Kubernetes Secret)::

    EMAILQUEUE_PAYLOAD_KEYS="k2026a:BASE64KEY,k2025b:BASE64KEY"   # every key that may still be in the queue
    EMAILQUEUE_PAYLOAD_KEY_ID="k2026a"                            # the one new payloads are sealed with

Rotation: add the new key to ``EMAILQUEUE_PAYLOAD_KEYS`` everywhere (workers first), then
switch ``EMAILQUEUE_PAYLOAD_KEY_ID`` on the producers, and remove the old key once no
entry sealed with it is left in ``stream``, ``delayed`` or ``failed``.  A worker that meets
a key id it does not hold dead-letters the entry with that reason (``MalformedEntry``);
it never crashes and never sends a payload it could not authenticate.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import ConfigError, MalformedEntry

SCHEME = "aesgcm"
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_SIZES = (16, 24, 32)  # AES-128/192/256; 32 recommended (``generate_key``)
ENV_KEYS = "EMAILQUEUE_PAYLOAD_KEYS"
ENV_KEY_ID = "EMAILQUEUE_PAYLOAD_KEY_ID"

_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def generate_key() -> str:
    """A new random AES-256 key, base64-encoded, for ``EMAILQUEUE_PAYLOAD_KEYS``."""
    return base64.b64encode(os.urandom(32)).decode()


def _aad(enc: str) -> bytes:
    return f"emailqueue/v1/{enc}".encode()


def parse_keys(spec: str) -> dict[str, bytes]:
    """``"kid1:BASE64,kid2:BASE64"`` -> ``{"kid1": b"...", "kid2": b"..."}``.

    Raises ``ConfigError`` naming the key id (never the key) when an item is malformed.
    """
    keys: dict[str, bytes] = {}
    for n, raw in enumerate(spec.replace("\n", ",").split(","), start=1):
        item = raw.strip()
        if not item:
            continue
        kid, sep, b64 = item.partition(":")
        kid = kid.strip()
        if not sep or not _KEY_ID.match(kid):
            raise ConfigError(
                f"{ENV_KEYS}: item {n} must be KEY_ID:BASE64_KEY with a key id of 1-64 of A-Z a-z 0-9 _ . -"
            )
        try:
            key = base64.b64decode(b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{ENV_KEYS}: key {kid!r} is not valid base64") from None
        if len(key) not in KEY_SIZES:
            raise ConfigError(
                f"{ENV_KEYS}: key {kid!r} is {len(key)} bytes; AES-GCM needs 16, 24 or 32 (32 recommended)"
            )
        if kid in keys:
            raise ConfigError(f"{ENV_KEYS}: key id {kid!r} is given twice")
        keys[kid] = key
    return keys


class PayloadCipher:
    """Seals payloads with the active key; opens payloads sealed with any known key."""

    __slots__ = ("_aead", "active")

    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        if not keys:
            raise ConfigError(f"{ENV_KEYS}: no key given")
        for kid, key in keys.items():
            if not _KEY_ID.match(kid):
                raise ConfigError(f"payload key id {kid!r} must be 1-64 of A-Z a-z 0-9 _ . -")
            if len(key) not in KEY_SIZES:
                raise ConfigError(f"payload key {kid!r} is {len(key)} bytes; AES-GCM needs 16, 24 or 32")
        if active not in keys:
            raise ConfigError(f"{ENV_KEY_ID}={active!r} names no key in {ENV_KEYS} (known: {', '.join(sorted(keys))})")
        self.active = active
        self._aead = {kid: AESGCM(key) for kid, key in keys.items()}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PayloadCipher | None:
        """The cipher configured by the environment, or ``None`` when encryption is off.

        ``EMAILQUEUE_PAYLOAD_KEY_ID`` may be left out when there is exactly one key.
        """
        env = os.environ if environ is None else environ
        spec = env.get(ENV_KEYS, "").strip()
        if not spec:
            if env.get(ENV_KEY_ID):
                raise ConfigError(f"{ENV_KEY_ID} is set but {ENV_KEYS} is empty")
            return None
        keys = parse_keys(spec)
        active = env.get(ENV_KEY_ID, "").strip()
        if not active:
            if len(keys) != 1:
                raise ConfigError(f"{ENV_KEYS} holds {len(keys)} keys: set {ENV_KEY_ID} to the one to encrypt with")
            active = next(iter(keys))
        return cls(keys, active)

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._aead)

    def encrypt(self, payload: str) -> tuple[str, str]:
        """``(enc, data)``: ``enc`` = ``"aesgcm:<active key id>"``, ``data`` = base64 of nonce + ciphertext + tag."""
        enc = f"{SCHEME}:{self.active}"
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[self.active].encrypt(nonce, payload.encode(), _aad(enc))
        return enc, base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, enc: str, data: str) -> str:
        """The plaintext payload; ``MalformedEntry`` saying why when it cannot be opened."""
        scheme, sep, kid = enc.partition(":")
        if scheme != SCHEME or not sep:
            raise MalformedEntry(f"unknown payload encryption scheme {enc!r} (this worker reads '{SCHEME}:<key id>')")
        aead = self._aead.get(kid)
        if aead is None:
            raise MalformedEntry(
                f"payload is encrypted with key id {kid!r}, which this worker does not hold "
                f"(it holds: {', '.join(sorted(self._aead))}); add it to {ENV_KEYS}"
            )
        try:
            blob = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedEntry("encrypted payload is not valid base64") from None
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise MalformedEntry(f"encrypted payload is too short ({len(blob)} bytes)")
        try:
            plain = aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(enc))
        except InvalidTag:
            raise MalformedEntry(
                f"encrypted payload failed authentication with key {kid!r} (tampered, truncated, or a different "
                "key under the same id)"
            ) from None
        try:
            return plain.decode()
        except UnicodeDecodeError:
            raise MalformedEntry("decrypted payload is not valid UTF-8") from None

    def __repr__(self) -> str:
        return f"PayloadCipher(active={self.active!r}, key_ids={sorted(self._aead)!r})"
