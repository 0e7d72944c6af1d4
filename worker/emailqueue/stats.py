"""Read a queue's figures from Redis: what `emailqueue stats` and the operator show."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from .keys import GROUP, LANES, QueueKeys

COUNTERS = (
    "enqueued",
    "sent",
    "retried",
    "failed",
    "dropped_invalid",
    "suppressed",
    "reclaimed",
    "duplicates_suppressed",
    "deduplicated",
    "rate_limited",
)


@dataclass(frozen=True, slots=True)
class ConsumerInfo:
    name: str
    pending: int
    idle_ms: int


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A snapshot of one queue.

    ``waiting`` + ``in_flight`` = stream length (acked entries are deleted).
    """

    queue: str
    waiting: int
    in_flight: int
    delayed: int
    failed: int
    counters: dict[str, int] = field(default_factory=dict)
    consumers: list[ConsumerInfo] = field(default_factory=list)
    paused: bool = False
    lanes: dict[str, int] = field(default_factory=dict)  # stream length (waiting + in flight) per lane

    @property
    def backlog(self) -> int:
        """Outstanding work: waiting + in flight (what the autoscaler counts)."""
        return self.waiting + self.in_flight

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["backlog"] = self.backlog
        return data


async def read_queue_stats(redis: Redis, queue: str) -> QueueStats:
    """One pipelined round trip; a queue that does not exist yet reads as zeros."""
    keys = QueueKeys(queue)
    pipe = redis.pipeline(transaction=False)
    pipe.zcard(keys.delayed)
    pipe.xlen(keys.failed)
    pipe.hgetall(keys.stats)
    pipe.hexists(keys.control, "paused")
    for stream in keys.streams:
        pipe.xlen(stream)
        pipe.xinfo_consumers(stream, GROUP)
    results = await pipe.execute(raise_on_error=False)
    delayed, failed, raw_counters, paused = results[:4]
    for value in (delayed, failed, raw_counters):
        if isinstance(value, Exception):
            raise value
    by_name: dict[str, ConsumerInfo] = {}
    lanes: dict[str, int] = {}
    stream_len = 0
    for n, lane in enumerate(LANES):
        length, consumers_raw = results[4 + 2 * n], results[5 + 2 * n]
        if isinstance(length, Exception):
            raise length
        stream_len += int(length)
        lanes[lane] = int(length)
        if isinstance(consumers_raw, ResponseError):
            continue  # no stream or no group yet
        if isinstance(consumers_raw, Exception):
            raise consumers_raw
        for c in consumers_raw:
            name = _s(c["name"])
            seen = by_name.get(name)
            pending = int(c["pending"]) + (seen.pending if seen else 0)
            idle = min(int(c["idle"]), seen.idle_ms) if seen else int(c["idle"])
            by_name[name] = ConsumerInfo(name=name, pending=pending, idle_ms=idle)
    consumers = list(by_name.values())
    in_flight = sum(c.pending for c in consumers)
    counters = dict.fromkeys(COUNTERS, 0)
    for k, v in raw_counters.items():
        counters[_s(k)] = int(v)
    return QueueStats(
        queue=queue,
        waiting=max(int(stream_len) - in_flight, 0),
        in_flight=in_flight,
        delayed=int(delayed),
        failed=int(failed),
        counters=counters,
        consumers=consumers,
        paused=bool(paused) if not isinstance(paused, Exception) else False,
        lanes=lanes,
    )


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
