"""What an application calls: ``Mailer`` (sync) and ``AsyncMailer`` (asyncio).

``send`` validates, encodes and returns after one round trip to Redis (XADD and the
``enqueued`` counter, pipelined).  An email with ``send_at`` in the future goes to the
``delayed`` set instead and is promoted when due.  An email with an ``idempotency_key``
is enqueued once per key within ``idempotency_window_s`` (default 24 h): a repeat returns
the first message's id and enqueues nothing.  Failures raise: ``InvalidEmail`` for
the email, ``QueueUnavailable`` / ``QueueFull`` for Redis.  Nothing is silently dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Self

import redis
import redis.asyncio as aredis

from .crypto import PayloadCipher
from .errors import InvalidEmail
from .keys import F_LANE, QueueKeys, validate_queue_name
from .message import Email
from .redisconn import async_client, sync_client, translated
from .scripts import flatten
from .status import DEFAULT_STATUS_TTL_S, MessageStatus, parse
from .wire import DEFAULT_MAX_PAYLOAD_BYTES, encode

EmailLike = Email | Mapping[str, Any]


DEFAULT_IDEMPOTENCY_WINDOW_S = 86_400

# KEYS: target (stream or delayed), stats, idempotency key.
# ARGV: message id, window (s), due ms ('' = stream), delayed member, then stream fields.
# Returns the id of the message enqueued under this key first (this one, or an earlier one).
ENQUEUE_ONCE = """
local first = redis.call('GET', KEYS[3])
if first then
  redis.call('HINCRBY', KEYS[2], 'deduplicated', 1)
  return first
end
redis.call('SET', KEYS[3], ARGV[1], 'EX', tonumber(ARGV[2]))
if ARGV[3] == '' then
  local fields = {}
  for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('XADD', KEYS[1], '*', unpack(fields))
else
  redis.call('ZADD', KEYS[1], tonumber(ARGV[3]), ARGV[4])
end
redis.call('HINCRBY', KEYS[2], 'enqueued', 1)
return ARGV[1]
"""


@dataclass(frozen=True, slots=True)
class _Prepared:
    message_id: str
    fields: dict[str, str]
    due_ms: int | None  # None: ready now (stream); else score in the delayed set
    idempotency_key: str | None
    lane: str  # priority lane: high, normal, bulk


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
    if email.priority != "normal" and due_ms is not None:
        fields[F_LANE] = email.priority  # the promotion script routes it to its lane when due
    return _Prepared(email.id, fields, due_ms, email.idempotency_key, email.priority)


FROM_ENV: Final = "env"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Base:
    def __init__(
        self,
        queue: str,
        max_payload_bytes: int,
        url: str,
        cipher: PayloadCipher | str | None,
        *,
        window_s: int,
        status_ttl_s: int,
    ) -> None:
        if isinstance(cipher, str):
            if cipher != FROM_ENV:
                raise ValueError(f"cipher must be a PayloadCipher, None or {FROM_ENV!r}")
            cipher = PayloadCipher.from_env()  # EMAILQUEUE_PAYLOAD_KEYS / _KEY_ID, like the worker
        self.cipher = cipher
        self.queue = validate_queue_name(queue)
        self.keys = QueueKeys(queue)
        self.max_payload_bytes = max_payload_bytes
        self.idempotency_window_s = window_s
        self.status_ttl_s = status_ttl_s  # 0: write no status (match the workers' EMAILQUEUE_STATUS_TTL_S)
        self._url = url

    def _queue_commands(self, pipe: Any, items: list[_Prepared]) -> None:
        """Queue the commands for ``items`` on ``pipe``: one reply per item, then the counter."""
        plain = 0
        for item in items:
            member = json.dumps(item.fields, separators=(",", ":")) if item.due_ms is not None else ""
            if item.idempotency_key is not None:
                target = self.keys.lane_stream(item.lane) if item.due_ms is None else self.keys.delayed
                pipe.eval(
                    ENQUEUE_ONCE,
                    3,
                    target,
                    self.keys.stats,
                    self.keys.idempotency(item.idempotency_key),
                    item.message_id,
                    self.idempotency_window_s,
                    "" if item.due_ms is None else item.due_ms,
                    member,
                    *flatten(item.fields),
                )
            elif item.due_ms is None:
                pipe.xadd(self.keys.lane_stream(item.lane), item.fields)
                plain += 1
            else:
                pipe.zadd(self.keys.delayed, {member: item.due_ms})
                plain += 1
        if plain:
            pipe.hincrby(self.keys.stats, "enqueued", plain)
        if self.status_ttl_s:  # after the counter, so that the replies of the items come first
            now = _now_iso()
            for item in items:
                key = self.keys.status(item.message_id)
                state = "queued" if item.due_ms is None else "scheduled"
                pipe.hset(key, mapping={"state": state, "updated_at": now, "queue": self.queue})
                pipe.expire(key, self.status_ttl_s)

    def _chunks(self, emails: Iterable[EmailLike], chunk: int) -> list[list[_Prepared]]:
        """Validate and encode every email first (nothing is enqueued if one is invalid), then split."""
        items = [_prepare(e, self.max_payload_bytes, self.cipher) for e in emails]
        return [items[start : start + chunk] for start in range(0, len(items), chunk)]

    @staticmethod
    def _ids(items: list[_Prepared], replies: list[Any]) -> list[str]:
        """The id each item is known by: its own, or the first one enqueued under its key."""
        out = []
        for item, reply in zip(items, replies, strict=False):
            if item.idempotency_key is not None and reply is not None:
                out.append(reply.decode() if isinstance(reply, bytes) else str(reply))
            else:
                out.append(item.message_id)
        return out


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
        idempotency_window_s: int = DEFAULT_IDEMPOTENCY_WINDOW_S,
        status_ttl_s: int = DEFAULT_STATUS_TTL_S,
    ) -> None:
        super().__init__(
            queue, max_payload_bytes, url, cipher, window_s=idempotency_window_s, status_ttl_s=status_ttl_s
        )
        self.redis = client

    @classmethod
    def from_url(
        cls,
        url: str,
        queue: str = "default",
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        cipher: PayloadCipher | str | None = FROM_ENV,
        idempotency_window_s: int = DEFAULT_IDEMPOTENCY_WINDOW_S,
    ) -> Self:
        return cls(
            async_client(url),
            queue,
            max_payload_bytes=max_payload_bytes,
            url=url,
            cipher=cipher,
            idempotency_window_s=idempotency_window_s,
        )

    async def send(self, email: EmailLike) -> str:
        """Enqueue one email; returns its message id."""
        item = _prepare(email, self.max_payload_bytes, self.cipher)
        with translated(self._url):
            pipe = self.redis.pipeline(transaction=False)
            self._queue_commands(pipe, [item])
            replies = await pipe.execute()
        return self._ids([item], replies)[0]

    async def send_many(self, emails: Iterable[EmailLike], *, chunk: int = 1000) -> list[str]:
        """Validate all first (nothing is enqueued if one is invalid), then pipeline."""
        ids: list[str] = []
        with translated(self._url):
            for part in self._chunks(emails, chunk):
                pipe = self.redis.pipeline(transaction=False)
                self._queue_commands(pipe, part)
                ids += self._ids(part, await pipe.execute())
        return ids

    async def status(self, message_id: str) -> MessageStatus | None:
        """The message's current state, or ``None`` when unknown (never seen, or past its TTL)."""
        with translated(self._url):
            raw = await self.redis.hgetall(self.keys.status(message_id))
        return parse(message_id, raw)

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
        idempotency_window_s: int = DEFAULT_IDEMPOTENCY_WINDOW_S,
        status_ttl_s: int = DEFAULT_STATUS_TTL_S,
    ) -> None:
        super().__init__(
            queue, max_payload_bytes, url, cipher, window_s=idempotency_window_s, status_ttl_s=status_ttl_s
        )
        self.redis = client

    @classmethod
    def from_url(
        cls,
        url: str,
        queue: str = "default",
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        cipher: PayloadCipher | str | None = FROM_ENV,
        idempotency_window_s: int = DEFAULT_IDEMPOTENCY_WINDOW_S,
    ) -> Self:
        return cls(
            sync_client(url),
            queue,
            max_payload_bytes=max_payload_bytes,
            url=url,
            cipher=cipher,
            idempotency_window_s=idempotency_window_s,
        )

    def send(self, email: EmailLike) -> str:
        """Enqueue one email; returns its message id."""
        item = _prepare(email, self.max_payload_bytes, self.cipher)
        with translated(self._url):
            pipe = self.redis.pipeline(transaction=False)
            self._queue_commands(pipe, [item])
            replies = pipe.execute()
        return self._ids([item], replies)[0]

    def send_many(self, emails: Iterable[EmailLike], *, chunk: int = 1000) -> list[str]:
        """Validate all first (nothing is enqueued if one is invalid), then pipeline."""
        ids: list[str] = []
        with translated(self._url):
            for part in self._chunks(emails, chunk):
                pipe = self.redis.pipeline(transaction=False)
                self._queue_commands(pipe, part)
                ids += self._ids(part, pipe.execute())
        return ids

    def status(self, message_id: str) -> MessageStatus | None:
        """The message's current state, or ``None`` when unknown (never seen, or past its TTL)."""
        with translated(self._url):
            raw = self.redis.hgetall(self.keys.status(message_id))
        return parse(message_id, raw)

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
