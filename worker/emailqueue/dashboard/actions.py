"""What the dashboard changes: the same operations as ``emailqueue failed retry|remove``,
``emailqueue pause`` and ``emailqueue resume``, with the same Redis writes."""

from __future__ import annotations

from redis.asyncio import Redis

from emailqueue.deadletter import DeadLetter, DeadLetters
from emailqueue.keys import QueueKeys

from .reads import NotFound

PAUSED = "paused"


async def _chosen(dl: DeadLetters, ids: list[str], every: bool) -> list[DeadLetter]:
    if every:
        return await dl.all()
    found, missing = await dl.find(ids)
    if missing:
        raise NotFound(f"no dead letter with id {', '.join(missing)}")
    return found


async def retry(redis: Redis, queue: str, ids: list[str], every: bool) -> int:
    """Move dead letters back into the stream (attempts reset); how many moved."""
    dl = DeadLetters(redis, queue)
    return await dl.retry(await _chosen(dl, ids, every))


async def remove(redis: Redis, queue: str, ids: list[str], every: bool) -> int:
    """Delete dead letters for good; how many went."""
    dl = DeadLetters(redis, queue)
    return await dl.remove(await _chosen(dl, ids, every))


async def set_paused(redis: Redis, queue: str, paused: bool) -> None:
    """``HSET emailqueue:{q}:control paused 1`` pauses delivery; ``HDEL`` resumes it."""
    control = QueueKeys(queue).control
    if paused:
        await redis.hset(control, PAUSED, "1")
    else:
        await redis.hdel(control, PAUSED)
