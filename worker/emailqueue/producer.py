"""What an application calls: ``Mailer`` (sync) and ``AsyncMailer`` (asyncio).

``send`` validates, encodes and returns after one round trip to Redis (XADD and the
``enqueued`` counter, pipelined).  An email with ``send_at`` in the future goes to the
``delayed`` set instead and is promoted when due.  Failures raise: ``InvalidEmail`` for
the email, ``QueueUnavailable`` / ``QueueFull`` for Redis.  Nothing is silently dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

import redis
import redis.asyncio as aredis

from .crypto import PayloadCipher
from .errors import InvalidEmail
from .keys import QueueKeys, validate_queue_name
from .message import Email
from .redisconn import async_client, sync_client, translated
from .wire import DEFAULT_MAX_PAYLOAD_BYTES, encode

EmailLike = Email | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Prepared:
    message_id: str
    fields: dict[str, str]
    due_ms: int | None  # None: ready now (stream); else score in the delayed set


def _prepare(email: EmailLike, max_bytes: int, cipher: PayloadCipher | None) -> _Prepared:
    if not isinstance(email, Email):
        if not isinstance(email, Mapping):
            raise InvalidEmail("email", f"expected an Email or a mapping, got {type(email).__name__}")
        email = Email(**email)
    fields = encode(email, max_bytes, cipher)
    due_ms: int | None = None
    if email.send_at is not None:
        due = int(email.send_at.timestamp() * 1000)
        if due > time.time() * 1000:
            due_ms = due
    return _Prepared(email.id, fields, due_ms)


FROM_ENV: Final = "env"


class _Base:
    def __init__(self, queue: str, max_payload_bytes: int, url: str, cipher: PayloadCipher | str | None) -> None:
        if isinstance(cipher, str):
            if cipher != FROM_ENV:
                raise ValueError(f"cipher must be a PayloadCipher, None or {FROM_ENV!r}")
            cipher = PayloadCipher.from_env()  # EMAILQUEUE_PAYLOAD_KEYS / _KEY_ID, like the worker
        self.cipher = cipher
        self.queue = validate_queue_name(queue)
        self.keys = QueueKeys(queue)
        self.max_payload_bytes = max_payload_bytes
        self._url = url

    def _queue_command(self, pipe: Any, item: _Prepared) -> None:
        if item.due_ms is None:
            pipe.xadd(self.keys.stream, item.fields)
        else:
            pipe.zadd(self.keys.delayed, {json.dumps(item.fields, separators=(",", ":")): item.due_ms})


class AsyncMailer(_Base):
    """Asyncio producer.  ``async with AsyncMailer.from_url(url) as mailer: await mailer.send(...)``."""

    def __init__(
        self,
        client: aredis.Redis,
        queue: str = "default",
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        url: str = "redis",
        cipher: PayloadCipher | str | None = FROM_ENV,
    ) -> None:
        super().__init__(queue, max_payload_bytes, url, cipher)
        self.redis = client

    @classmethod
    def from_url(
        cls,
        url: str,
        queue: str = "default",
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        cipher: PayloadCipher | str | None = FROM_ENV,
    ) -> Self:
        return cls(async_client(url), queue, max_payload_bytes=max_payload_bytes, url=url, cipher=cipher)

    async def send(self, email: EmailLike) -> str:
        """Enqueue one email; returns its message id."""
        item = _prepare(email, self.max_payload_bytes, self.cipher)
        with translated(self._url):
            pipe = self.redis.pipeline(transaction=False)
            self._queue_command(pipe, item)
            pipe.hincrby(self.keys.stats, "enqueued", 1)
            await pipe.execute()
        return item.message_id

    async def send_many(self, emails: Iterable[EmailLike], *, chunk: int = 1000) -> list[str]:
        """Validate all first (nothing is enqueued if one is invalid), then pipeline."""
        items = [_prepare(e, self.max_payload_bytes, self.cipher) for e in emails]
        with translated(self._url):
            for start in range(0, len(items), chunk):
                part = items[start : start + chunk]
                pipe = self.redis.pipeline(transaction=False)
                for item in part:
                    self._queue_command(pipe, item)
                pipe.hincrby(self.keys.stats, "enqueued", len(part))
                await pipe.execute()
        return [item.message_id for item in items]

    async def close(self) -> None:
        await self.redis.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class Mailer(_Base):
    """Blocking producer for synchronous applications (Django, Flask, scripts)."""

    def __init__(
        self,
        client: redis.Redis,
        queue: str = "default",
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        url: str = "redis",
        cipher: PayloadCipher | str | None = FROM_ENV,
    ) -> None:
        super().__init__(queue, max_payload_bytes, url, cipher)
        self.redis = client

    @classmethod
    def from_url(
        cls,
        url: str,
        queue: str = "default",
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        cipher: PayloadCipher | str | None = FROM_ENV,
    ) -> Self:
        return cls(sync_client(url), queue, max_payload_bytes=max_payload_bytes, url=url, cipher=cipher)

    def send(self, email: EmailLike) -> str:
        """Enqueue one email; returns its message id."""
        item = _prepare(email, self.max_payload_bytes, self.cipher)
        with translated(self._url):
            pipe = self.redis.pipeline(transaction=False)
            self._queue_command(pipe, item)
            pipe.hincrby(self.keys.stats, "enqueued", 1)
            pipe.execute()
        return item.message_id

    def send_many(self, emails: Iterable[EmailLike], *, chunk: int = 1000) -> list[str]:
        """Validate all first (nothing is enqueued if one is invalid), then pipeline."""
        items = [_prepare(e, self.max_payload_bytes, self.cipher) for e in emails]
        with translated(self._url):
            for start in range(0, len(items), chunk):
                part = items[start : start + chunk]
                pipe = self.redis.pipeline(transaction=False)
                for item in part:
                    self._queue_command(pipe, item)
                pipe.hincrby(self.keys.stats, "enqueued", len(part))
                pipe.execute()
        return [item.message_id for item in items]

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
