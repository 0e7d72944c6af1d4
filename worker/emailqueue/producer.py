"""What an application calls: ``Mailer`` (sync) and ``AsyncMailer`` (asyncio).

``send`` validates, encodes and returns after one command: an XADD, packed by hand
(``rawpipe``).  It writes no counter (``enqueued`` is computed from the streams, see
``stats``) and no status: a message has a status once a worker picks it up, unless the
producer is made with ``track_queued=True`` (then "queued" is written too, one more
command per send).  An email with ``send_at`` in the future goes to the ``delayed`` set
instead ("scheduled" status) and is promoted when due.  An email with an ``idempotency_key``
is enqueued once per key within ``idempotency_window_s`` (default 24 h): a repeat returns
the first message's id and enqueues nothing.  Failures raise: ``InvalidEmail`` for
the email, ``QueueUnavailable`` / ``QueueFull`` for Redis.  Nothing is silently dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Generic, NamedTuple, Self, TypeVar

import redis
import redis.asyncio as aredis

from .crypto import PayloadCipher
from .errors import InvalidEmail
from .keys import F_LANE, LANES, QueueKeys, validate_queue_name
from .message import Email
from .rawpipe import axadd_packed, pack_entry, pack_xadd, xadd_packed
from .redisconn import async_client, sync_client, translate, translated
from .scripts import flatten
from .status import DEFAULT_STATUS_TTL_S, MessageStatus, parse
from .wire import DEFAULT_MAX_PAYLOAD_BYTES, encode, payload_json

EmailLike = Email | Mapping[str, Any]
ClientT = TypeVar("ClientT", redis.Redis, aredis.Redis)


DEFAULT_IDEMPOTENCY_WINDOW_S = 86_400

# KEYS: delayed, stats.  ARGV: due (ms), member.  A scheduled send and its count, atomically
# (a ZADD that Redis accepts and a counter it refuses when full would report a lost email).
SCHEDULE = """
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]), ARGV[2])
redis.call('HINCRBY', KEYS[2], 'scheduled', 1)
return 1
"""

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
  redis.call('HINCRBY', KEYS[2], 'scheduled', 1)
end
return ARGV[1]
"""


class _Prepared(NamedTuple):  # a NamedTuple: built once per email, cheaper than a frozen dataclass
    message_id: str
    fields: dict[str, str]  # the entry's fields; _NO_FIELDS on the fast path (only ``packed`` is needed)
    due_ms: int | None  # None: ready now (stream); else score in the delayed set
    idempotency_key: str | None
    lane: str  # priority lane: high, normal, bulk
    packed: bytes | None  # the XADD as RESP bytes when it is a plain XADD (the fast path), else None


FROM_ENV: Final = "env"
_NO_FIELDS: Final[dict[str, str]] = {}  # shared, never written


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Base(Generic[ClientT]):
    """What both producers share; ``_connect`` makes the client ``from_url`` uses."""

    _connect: Callable[[str], ClientT]

    def __init__(
        self,
        client: ClientT,
        queue: str = "default",
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        url: str = "redis",
        cipher: PayloadCipher | str | None = FROM_ENV,
        idempotency_window_s: int = DEFAULT_IDEMPOTENCY_WINDOW_S,
        status_ttl_s: int = DEFAULT_STATUS_TTL_S,
        track_queued: bool = False,
    ) -> None:
        self.redis: ClientT = client
        if isinstance(cipher, str):
            if cipher != FROM_ENV:
                raise ValueError(f"cipher must be a PayloadCipher, None or {FROM_ENV!r}")
            cipher = PayloadCipher.from_env()  # EMAILQUEUE_PAYLOAD_KEYS / _KEY_ID, like the worker
        self.cipher = cipher
        self.queue = validate_queue_name(queue)
        self.keys = QueueKeys(queue)
        self.max_payload_bytes = max_payload_bytes
        self.idempotency_window_s = idempotency_window_s
        self.status_ttl_s = status_ttl_s  # 0: write no status (match the workers' EMAILQUEUE_STATUS_TTL_S)
        self.track_queued = track_queued and status_ttl_s > 0
        self._url = url
        self._streams = {lane: self.keys.lane_stream(lane) for lane in LANES}

    @classmethod
    def from_url(
        cls,
        url: str,
        queue: str = "default",
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        cipher: PayloadCipher | str | None = FROM_ENV,
        idempotency_window_s: int = DEFAULT_IDEMPOTENCY_WINDOW_S,
        status_ttl_s: int = DEFAULT_STATUS_TTL_S,
        track_queued: bool = False,
    ) -> Self:
        return cls(
            cls._connect(url),
            queue,
            max_payload_bytes=max_payload_bytes,
            url=url,
            cipher=cipher,
            idempotency_window_s=idempotency_window_s,
            status_ttl_s=status_ttl_s,
            track_queued=track_queued,
        )

    def _prepare(self, email: EmailLike) -> _Prepared:
        if not isinstance(email, Email):
            if not isinstance(email, Mapping):
                raise InvalidEmail("email", f"expected an Email or a mapping, got {type(email).__name__}")
            email = Email(**email)
        due_ms: int | None = None
        if email.send_at is not None:
            due = int(email.send_at.timestamp() * 1000)
            if due > time.time() * 1000:
                due_ms = due
        lane = email.priority
        plain = due_ms is None and email.idempotency_key is None and not self.track_queued
        if plain and self.cipher is None:  # the common case: JSON bytes straight into the packed XADD
            entry = pack_entry(self._streams[lane], payload_json(email, self.max_payload_bytes))
            return _Prepared(email.id, _NO_FIELDS, None, None, lane, entry)
        fields = encode(email, self.max_payload_bytes, self.cipher)
        if lane != "normal" and due_ms is not None:
            fields[F_LANE] = lane  # the promotion script routes it to its lane when due
        packed = pack_xadd(self._streams[lane], fields) if plain else None
        return _Prepared(email.id, fields, due_ms, email.idempotency_key, lane, packed)

    def _queue_commands(self, pipe: Any, items: list[_Prepared]) -> int:
        """Queue the commands for ``items`` (those off the fast path) on ``pipe``.

        Statuses go first, so that a worker quick enough to pick the message up before the
        producer's status write cannot have its "sending" overwritten by "queued".  Returns
        the index of the first item's reply; one reply per item follows.
        """
        offset = 0
        if self.status_ttl_s:
            now = _now_iso()
            for item in items:
                if item.due_ms is None and not self.track_queued:
                    continue
                key = self.keys.status(item.message_id)
                state = "queued" if item.due_ms is None else "scheduled"
                pipe.hset(key, mapping={"state": state, "updated_at": now, "queue": self.queue})
                pipe.expire(key, self.status_ttl_s)
                offset += 2
        for item in items:
            member = json.dumps(item.fields, separators=(",", ":")) if item.due_ms is not None else ""
            if item.idempotency_key is not None:
                target = self._streams[item.lane] if item.due_ms is None else self.keys.delayed
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
                pipe.xadd(self._streams[item.lane], item.fields)
            else:
                pipe.eval(SCHEDULE, 2, self.keys.delayed, self.keys.stats, item.due_ms, member)
        return offset

    def _chunks(self, emails: Iterable[EmailLike], chunk: int) -> list[list[_Prepared]]:
        """Validate and encode every email first (nothing is enqueued if one is invalid), then split."""
        items = [self._prepare(e) for e in emails]
        return [items[start : start + chunk] for start in range(0, len(items), chunk)]

    @staticmethod
    def _ids(items: list[_Prepared], replies: list[Any]) -> list[str]:
        """The id of each item: its own, or (idempotent enqueue) the first one enqueued under its key.

        ``replies`` holds one reply per item off the fast path, in order.
        """
        out = []
        slow = iter(replies)
        for item in items:
            if item.packed is not None:
                out.append(item.message_id)
                continue
            reply = next(slow, None)
            if item.idempotency_key is not None and reply is not None:
                out.append(reply.decode() if isinstance(reply, bytes) else str(reply))
            else:
                out.append(item.message_id)
        return out


class AsyncMailer(_Base[aredis.Redis]):
    """Asyncio producer.  ``async with AsyncMailer.from_url(url) as mailer: await mailer.send(...)``."""

    _connect = staticmethod(async_client)

    async def send(self, email: EmailLike) -> str:
        """Enqueue one email; returns its message id."""
        item = self._prepare(email)
        try:
            if item.packed is not None:  # the common case: one XADD, packed by hand
                await axadd_packed(self.redis, (item.packed,))
                return item.message_id
            pipe = self.redis.pipeline(transaction=False)
            offset = self._queue_commands(pipe, [item])
            replies = await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise translate(exc, self._url) from None
        return self._ids([item], replies[offset:])[0]

    async def send_many(self, emails: Iterable[EmailLike], *, chunk: int = 1000) -> list[str]:
        """Validate all first (nothing is enqueued if one is invalid), then pipeline."""
        ids: list[str] = []
        with translated(self._url):
            for part in self._chunks(emails, chunk):
                fast = [item.packed for item in part if item.packed is not None]
                if fast:
                    await axadd_packed(self.redis, fast)
                replies: list[Any] = []
                if len(fast) < len(part):
                    pipe = self.redis.pipeline(transaction=False)
                    offset = self._queue_commands(pipe, [item for item in part if item.packed is None])
                    replies = (await pipe.execute())[offset:]
                ids += self._ids(part, replies)
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


class Mailer(_Base[redis.Redis]):
    """Blocking producer for synchronous applications (Django, Flask, scripts)."""

    _connect = staticmethod(sync_client)

    def send(self, email: EmailLike) -> str:
        """Enqueue one email; returns its message id."""
        item = self._prepare(email)
        try:
            if item.packed is not None:  # the common case: one XADD, packed by hand
                xadd_packed(self.redis, (item.packed,))
                return item.message_id
            pipe = self.redis.pipeline(transaction=False)
            offset = self._queue_commands(pipe, [item])
            replies = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise translate(exc, self._url) from None
        return self._ids([item], replies[offset:])[0]

    def send_many(self, emails: Iterable[EmailLike], *, chunk: int = 1000) -> list[str]:
        """Validate all first (nothing is enqueued if one is invalid), then pipeline."""
        ids: list[str] = []
        with translated(self._url):
            for part in self._chunks(emails, chunk):
                fast = [item.packed for item in part if item.packed is not None]
                if fast:
                    xadd_packed(self.redis, fast)
                replies: list[Any] = []
                if len(fast) < len(part):
                    pipe = self.redis.pipeline(transaction=False)
                    offset = self._queue_commands(pipe, [item for item in part if item.packed is None])
                    replies = pipe.execute()[offset:]
                ids += self._ids(part, replies)
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
