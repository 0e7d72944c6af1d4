"""Read a queue's figures from Redis: what `emailqueue stats` and the operator show."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from .keys import C_REQUEUED, C_SCHEDULED, GROUP, LANES, QueueKeys

COUNTERS = (
    "enqueued",
    C_SCHEDULED,
    C_REQUEUED,
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


# KEYS: stats, then the lane streams.  Returns {entries ever added to the lanes, stats hash}
# from one atomic snapshot.  In a script so that XINFO STREAM's first and last entries (whole
# emails, attachments and all) stay in Redis; Redis < 7 has no entries-added (reads as 0).
COUNTER_SNAPSHOT = """
local added = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local info = redis.call('XINFO', 'STREAM', KEYS[i])
    for j = 1, #info, 2 do
      if info[j] == 'entries-added' then added = added + info[j + 1] end
    end
  end
end
return {added, redis.call('HGETALL', KEYS[1])}
"""


async def read_counters(redis: Redis, keys: QueueKeys) -> dict[str, int]:
    """The queue's counters.  ``enqueued`` is computed, not stored: entries ever added to the
    lane streams + emails scheduled into the delayed set - entries re-added by emailqueue
    (promotions, dead letters retried).  So a producer's ``send()`` is a bare XADD, and
    producers in other languages that XADD by hand are counted too."""
    snapshot = await redis.register_script(COUNTER_SNAPSHOT)(keys=[keys.stats, *keys.streams])
    return counters_from_snapshot(snapshot)


def counters_from_snapshot(snapshot: list[Any]) -> dict[str, int]:
    """The counters from COUNTER_SNAPSHOT's reply."""
    added, flat = snapshot
    counters = dict.fromkeys(COUNTERS, 0)
    for k, v in zip(flat[::2], flat[1::2], strict=True):
        counters[_s(k)] = int(v)
    counters["enqueued"] = max(int(added) + counters[C_SCHEDULED] - counters[C_REQUEUED], 0)
    return counters


async def read_queue_stats(redis: Redis, queue: str) -> QueueStats:
    """Two round trips (the counters' snapshot, then one pipeline); a queue that does not
    exist yet reads as zeros."""
    keys = QueueKeys(queue)
    counters = await read_counters(redis, keys)
    pipe = redis.pipeline(transaction=False)
    pipe.zcard(keys.delayed)
    pipe.xlen(keys.failed)
    pipe.hexists(keys.control, "paused")
    for stream in keys.streams:
        pipe.xlen(stream)
        pipe.xinfo_consumers(stream, GROUP)
    results = await pipe.execute(raise_on_error=False)
    delayed, failed, paused = results[:3]
    for value in (delayed, failed):
        if isinstance(value, Exception):
            raise value
    by_name: dict[str, ConsumerInfo] = {}
    lanes: dict[str, int] = {}
    stream_len = 0
    for n, lane in enumerate(LANES):
        length, consumers_raw = results[3 + 2 * n], results[4 + 2 * n]
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
