"""Everything the dashboard reads from Redis, one function per view.

All reads are live: the numbers on the page are the queue's numbers at the moment of the
request. Only the charts come from the sampler's ring buffer (history.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from emailqueue.crypto import PayloadCipher
from emailqueue.keys import GROUP, LANES, PREFIX, QueueKeys
from emailqueue.stats import QueueStats, read_queue_stats

from .views import age_ms, fields_text, letter_fields, payload_view, summary_of, text

_STREAM_PATTERN = f"{PREFIX}:{{*}}:stream*"  # the normal lane's stream, and stream:<lane>
_HEAD = f"{PREFIX}:{{"
_TAIL = "}:stream"

RawEntry = tuple[bytes, dict[bytes, bytes]]


class NotFound(LookupError):
    """The entry asked for is not (or no longer) there."""


async def discover_queues(redis: Redis) -> list[str]:
    """Queue names from ``SCAN MATCH emailqueue:{*}:stream`` (sorted)."""
    found: set[str] = set()
    async for key in redis.scan_iter(match=_STREAM_PATTERN, count=1000, _type="stream"):
        name, _, _lane = text(key).partition(_TAIL)
        if name.startswith(_HEAD):
            found.add(name[len(_HEAD) :])
    return sorted(found)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A queue's figures plus the age of its oldest outstanding entry."""

    stats: QueueStats
    oldest_age_ms: int | None

    def as_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            "queue": s.queue,
            "waiting": s.waiting,
            "in_flight": s.in_flight,
            "delayed": s.delayed,
            "failed": s.failed,
            "backlog": s.backlog,
            "paused": s.paused,
            "counters": dict(s.counters),
            "consumer_count": len(s.consumers),
            "oldest_age_ms": self.oldest_age_ms,
        }


def lanes(queue: str) -> list[tuple[str, str]]:
    """(lane, stream key) of every priority lane, most urgent first."""
    keys = QueueKeys(queue)
    return [(lane, keys.lane_stream(lane)) for lane in LANES]


async def snapshot(redis: Redis, queue: str) -> Snapshot:
    stats = await read_queue_stats(redis, queue)
    oldest: int | None = None
    if stats.backlog:
        pipe = redis.pipeline(transaction=False)
        for _, stream in lanes(queue):
            pipe.xrange(stream, count=1)
        ages = [age_ms(text(head[0][0])) for head in await pipe.execute() if head]
        oldest = max((a for a in ages if a is not None), default=None)
    return Snapshot(stats, oldest)


async def _pending(redis: Redis, queue: str, min_id: str, max_id: str, count: int) -> list[dict[str, Any]]:
    """XPENDING of every lane: entry, lane, consumer, idle time, deliveries; oldest first."""
    pipe = redis.pipeline(transaction=False)
    for _, stream in lanes(queue):
        pipe.xpending_range(stream, GROUP, min=min_id, max=max_id, count=count)
    out: list[dict[str, Any]] = []
    for (lane, _), rows in zip(lanes(queue), await pipe.execute(raise_on_error=False), strict=True):
        if isinstance(rows, ResponseError):
            continue  # no stream or no group yet
        if isinstance(rows, Exception):
            raise rows
        out += [
            {
                "entry_id": text(row["message_id"]),
                "lane": lane,
                "consumer": text(row["consumer"]),
                "idle_ms": int(row["time_since_delivered"]),
                "deliveries": int(row["times_delivered"]),
            }
            for row in rows
        ]
    return sorted(out, key=lambda p: -int(p["idle_ms"]))[:count]


async def consumers(redis: Redis, queue: str, stats: QueueStats, limit: int = 200) -> dict[str, Any]:
    """The group's consumers (XINFO CONSUMERS) and what each holds (XPENDING), oldest first."""
    pending = await _pending(redis, queue, "-", "+", limit) if stats.in_flight else []
    return {
        "consumers": [{"name": c.name, "pending": c.pending, "idle_ms": c.idle_ms} for c in stats.consumers],
        "pending": pending,
        "pending_total": stats.in_flight,
    }


async def messages(redis: Redis, queue: str, cipher: PayloadCipher | None, limit: int = 100) -> dict[str, Any]:
    """The first entries of each lane's stream (waiting or in flight) and of the delayed set."""
    pipe = redis.pipeline(transaction=False)
    for _, stream_key in lanes(queue):
        pipe.xrange(stream_key, count=limit)
    pipe.zrange(QueueKeys(queue).delayed, 0, limit - 1, withscores=True)
    *heads, delayed_raw = await pipe.execute()
    holders = {p["entry_id"]: p["consumer"] for p in await _pending(redis, queue, "-", "+", 10_000)}
    stream = []
    for (lane, _), head in zip(lanes(queue), heads, strict=True):
        for eid_raw, raw in cast(list[RawEntry], head):
            eid = text(eid_raw)
            item = summary_of(fields_text(raw), eid, cipher)
            item.update(lane=lane, consumer=holders.get(eid), age_ms=age_ms(eid))
            item["state"] = "in flight" if eid in holders else "waiting"
            stream.append(item)
    delayed = []
    for member, score in cast(list[tuple[bytes, float]], delayed_raw):
        try:
            data = json.loads(text(member))
        except ValueError:
            data = {}
        fields = {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        item = summary_of(fields, "", cipher)
        item["due_ms"] = int(score)
        item["last_error"] = fields.get("last_error", "")
        delayed.append(item)
    return {"stream": stream, "delayed": delayed}


async def message(redis: Redis, queue: str, entry_id: str, cipher: PayloadCipher | None) -> dict[str, Any]:
    """One stream entry (in whichever lane): its state, its holder and its decoded payload."""
    pipe = redis.pipeline(transaction=False)
    for _, stream in lanes(queue):
        pipe.xrange(stream, min=entry_id, max=entry_id, count=1)
    found = [(lane, hit) for (lane, _), hit in zip(lanes(queue), await pipe.execute(), strict=True) if hit]
    if not found:
        raise NotFound(f"no entry {entry_id} in the streams of queue {queue!r} (delivered, or retried later)")
    lane, hit = found[0]
    fields = fields_text(cast(list[RawEntry], hit)[0][1])
    held = [p for p in await _pending(redis, queue, entry_id, entry_id, 1) if p["lane"] == lane]
    holder = {k: held[0][k] for k in ("consumer", "idle_ms", "deliveries")} if held else None
    return {
        "entry_id": entry_id,
        "lane": lane,
        "state": "in flight" if holder else "waiting",
        "holder": holder,
        "age_ms": age_ms(entry_id),
        "fields": {k: v for k, v in fields.items() if k != "payload"},
        "payload": payload_view(fields, entry_id, cipher),
    }


async def dead_letters(redis: Redis, queue: str, cipher: PayloadCipher | None, limit: int = 200) -> dict[str, Any]:
    """The newest dead letters first, with reason, error and SMTP code."""
    keys = QueueKeys(queue)
    pipe = redis.pipeline(transaction=False)
    pipe.xlen(keys.failed)
    pipe.xrevrange(keys.failed, count=limit)
    total, rows = await pipe.execute()
    letters = []
    for fid_raw, raw in cast(list[RawEntry], rows):
        fid = text(fid_raw)
        fields = fields_text(raw)
        item = summary_of(fields, fid, cipher)
        item.update(
            failed_id=fid,
            reason=fields.get("reason", ""),
            error=(fields.get("error") or "")[:500],
            smtp_code=fields.get("smtp_code", ""),
            attempts=fields.get("attempts", ""),
            failed_at=fields.get("failed_at", ""),
        )
        letters.append(item)
    return {"total": int(total), "letters": letters}


async def dead_letter(redis: Redis, queue: str, failed_id: str, cipher: PayloadCipher | None) -> dict[str, Any]:
    found = cast(list[RawEntry], await redis.xrange(QueueKeys(queue).failed, min=failed_id, max=failed_id, count=1))
    if not found:
        raise NotFound(f"no dead letter {failed_id} in queue {queue!r} (retried or removed)")
    fields = fields_text(found[0][1])
    return {
        "failed_id": failed_id,
        "fields": letter_fields(fields),
        "payload": payload_view(fields, fields.get("entry_id", failed_id), cipher),
    }
