"""The background task that samples every queue into the ring buffer (history.py)."""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .history import History, Sample
from .reads import discover_queues, snapshot

log = logging.getLogger("emailqueue.dashboard")


class Sampler:
    """Samples every ``interval_s``; finds new queues by SCAN every ``rediscover_s`` unless
    the queues are fixed (``--queue``), so a Redis holding millions of idempotency markers
    is not scanned on every tick."""

    def __init__(
        self,
        redis: Redis,
        history: History,
        interval_s: float,
        fixed_queues: list[str],
        rediscover_s: float = 60.0,
    ) -> None:
        self.redis = redis
        self.history = history
        self.interval_s = interval_s
        self.fixed = list(fixed_queues)
        self.rediscover_s = rediscover_s
        self._queues: list[str] = list(fixed_queues)
        self._found_at = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    async def queues(self) -> list[str]:
        """The queues shown: the fixed list, or what the last SCAN found (refreshed when stale)."""
        if self.fixed:
            return list(self.fixed)
        if time.monotonic() - self._found_at >= self.rediscover_s:
            self._queues = await discover_queues(self.redis)
            self._found_at = time.monotonic()
        return list(self._queues)

    def forget_discovery(self) -> None:
        """Scan again on the next call (the overview asks for fresh names)."""
        self._found_at = float("-inf")

    async def sample_once(self) -> None:
        for queue in await self.queues():
            snap = await snapshot(self.redis, queue)
            s = snap.stats
            self.history.add(
                queue,
                Sample(time.time(), dict(s.counters), s.waiting, s.in_flight, s.delayed, s.failed, snap.oldest_age_ms),
            )

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.sample_once()
                self.last_error = None
            except (RedisError, OSError) as exc:
                if self.last_error is None:
                    log.warning("sampling failed: %s", type(exc).__name__)
                self.last_error = type(exc).__name__
            await asyncio.sleep(max(self.interval_s - (time.monotonic() - started), 0.05))

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="dashboard-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
