"""Promotion of due retries and scheduled sends from the delayed set into the stream."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from .keys import QueueKeys
from .scripts import PROMOTE_DUE

PROMOTE_BATCH = 500


def promote_keys(keys: QueueKeys) -> list[str]:
    """KEYS of PROMOTE_DUE: delayed, the normal, high and bulk lane streams, stats."""
    return [keys.delayed, keys.lane_stream("normal"), keys.lane_stream("high"), keys.lane_stream("bulk"), keys.stats]


async def promote_due(redis: Redis, queue: str, *, now_ms: int | None = None, batch: int = PROMOTE_BATCH) -> int:
    """Atomically move every due member of ``delayed`` into ``stream``; return how many.

    Safe to run from many workers and the operator at once: each member is moved by
    exactly one script run.  Loops in batches so one call never blocks Redis for long.
    """
    keys = QueueKeys(queue)
    script = redis.register_script(PROMOTE_DUE)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    total = 0
    while True:
        moved = int(await script(keys=promote_keys(keys), args=[now, batch]))
        total += moved
        if moved < batch:
            return total
