"""Batched settlement: every outcome that finished since the last flush, in one round trip.

Each outcome is still its own atomic Lua script (EVALSHA); only the network round trip is
shared: with 32 deliveries in flight, a flush typically carries many settlements, so the
worker pays one Redis round trip per batch instead of one per email.  The EVALSHAs are
packed by hand (``rawpipe``): redis-py's pipeline machinery cost more CPU per settlement
than Redis spends running the script.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError, ResponseError

from .rawpipe import aexecute_packed, pack_command

MAX_BATCH = 256

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Item:
    sha: str
    keys: list[str]
    args: list[Any]
    done: asyncio.Future[Any] | None  # None: fire and forget (best-effort writes such as status)


class Settler:
    """Queue ``submit(script_source, keys, args)``; a background task flushes in pipelines."""

    def __init__(self, redis: Redis, sources: list[str]) -> None:
        self.redis = redis
        self._sources = {_sha(src): src for src in sources}
        self._shas = {src: sha for sha, src in self._sources.items()}
        self._pending: list[_Item] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="settle")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for item in self._pending:
            if item.done is not None and not item.done.done():
                item.done.set_exception(RedisError("worker stopped before the outcome was recorded"))

    async def submit(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """Run one script as part of the next batch; raises what Redis raised for it."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(_Item(self._shas[source], keys, args, done))
        self._wake.set()
        return await done

    def post(self, source: str, keys: list[str], args: list[Any]) -> None:
        """Run a script in the next batch without waiting for it (best effort, errors dropped)."""
        self._pending.append(_Item(self._shas[source], keys, args, None))
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._flush(batch)

    async def _flush(self, batch: list[_Item]) -> None:
        try:
            results = await self._execute(batch)
        except Exception as exc:  # anything: the flush task must never die with waiters left
            if not isinstance(exc, RedisError | OSError):
                log.exception("settlement batch failed")
            for item in batch:
                if item.done is not None and not item.done.done():
                    item.done.set_exception(exc)
            return
        for item, result in zip(batch, results, strict=True):
            if item.done is None or item.done.done():
                continue
            if isinstance(result, Exception):
                item.done.set_exception(result)
            else:
                item.done.set_result(result)

    async def _execute(self, batch: list[_Item]) -> list[Any]:
        results: list[Any] = [None] * len(batch)
        todo = list(range(len(batch)))
        for attempt in (1, 2):
            packed, sent = [], []
            for i in todo:
                item = batch[i]
                try:
                    packed.append(pack_command(("EVALSHA", item.sha, len(item.keys), *item.keys, *item.args)))
                    sent.append(i)
                except (TypeError, ValueError) as exc:  # a bad argument fails its own item, not the batch
                    results[i] = exc
            replies = await aexecute_packed(self.redis, packed) if packed else []
            for i, reply in zip(sent, replies, strict=True):
                results[i] = reply
            # NOSCRIPT: the server lost its script cache (a restart); such an entry did not
            # run at all, so loading the scripts and running just those again is safe
            todo = [i for i in sent if is_noscript(results[i])]
            if not todo or attempt == 2:
                break
            await self._load_scripts()
        return results

    async def _load_scripts(self) -> None:
        for source in self._sources.values():
            await self.redis.script_load(source)


def is_noscript(result: object) -> bool:
    """The reply says the script is not in the server's cache (redis-py strips the NOSCRIPT code)."""
    return isinstance(result, NoScriptError) or (isinstance(result, ResponseError) and "NOSCRIPT" in str(result))


def _sha(source: str) -> str:
    import hashlib

    return hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
