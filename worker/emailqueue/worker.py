"""The worker: read the stream with the consumer group, deliver, and settle each entry.

Every entry read ends in exactly one of three atomic settlements (``scripts``): sent
(XACK + XDEL + idempotency marker), retry later (moved to ``delayed``), or dead-lettered
(moved to ``failed``).  An entry whose consumer died stays pending in the group and is
reclaimed by XAUTOCLAIM after ``claim_idle_ms``.

Lifecycle: ``run()`` starts the loops, waits for a stop request (SIGTERM/SIGINT, a
limit, ``emailqueue stop-workers``), stops reading, lets in-flight deliveries finish
within the grace period and returns 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from .delayed import promote_keys
from .errors import MalformedEntry, PermanentDeliveryError, TransientDeliveryError
from .keys import GROUP, QueueKeys
from .message import Address
from .metrics import Metrics
from .mime import Envelope, build
from .outcomes import Outcomes, Work, now_iso
from .ratelimit import RateLimiter, is_slow_down
from .rawpipe import aexecute_packed, pack_command
from .redisconn import async_client
from .retry import RetryPolicy, should_retry
from .scripts import COMPLETE, DEAD_LETTER, DISCARD, EVENT, RETRY_LATER, SUPPRESS, Scripts
from .sender import SmtpPool
from .settings import Settings
from .settle import Settler, is_noscript
from .status import MARK_SENDING, SET_STATUS
from .wire import decode, fields_to_str

log = logging.getLogger("emailqueue.worker")

READ_BLOCK_MS = 1000
PROMOTE_EVERY_S = 0.2
HOUSEKEEPING_EVERY_S = 1.0
CONSUMER_GC_EVERY_S = 60.0
CONSUMER_GC_IDLE_MS = 300_000
RATE_WAIT_INLINE_MS = 250  # a longer wait for a rate slot parks the entry in the delayed set (frees the slot)

# Removes consumers that hold nothing and have been idle for long (dead processes).
_GC_CONSUMERS = """
local removed = 0
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], 'workers')
if not ok then return 0 end
for _, c in ipairs(consumers) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if tonumber(info['pending']) == 0 and tonumber(info['idle']) > tonumber(ARGV[1]) and info['name'] ~= ARGV[2] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], 'workers', info['name'])
    removed = removed + 1
  end
end
return removed
"""


@dataclass(slots=True)
class WorkerState:
    handled: int = 0
    held: int = 0
    heartbeat: float = field(default_factory=time.monotonic)
    redis_ok: bool = True
    paused: bool = False
    stop_reason: str | None = None


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Worker:
    """One worker process.  ``await Worker(settings).run()`` returns the exit code."""

    def __init__(self, settings: Settings, redis: Redis | None = None) -> None:
        self.settings = settings
        self.keys = QueueKeys(settings.queue)
        self.consumer = settings.consumer_name
        # every delivery may hold a connection at once (rate-limit checks), plus the loops and the flusher
        self.redis = redis or async_client(settings.redis_connection_url(), max_connections=settings.concurrency + 16)
        self.scripts = Scripts(self.redis)
        self.settler = Settler(self.redis, [COMPLETE, DISCARD, RETRY_LATER, DEAD_LETTER, SUPPRESS, SET_STATUS, EVENT])
        self._gc = self.redis.register_script(_GC_CONSUMERS)
        self._sending_sha = self.redis.register_script(MARK_SENDING).sha
        self.policy = RetryPolicy(
            max_retries=settings.max_retries,
            delay_ms=settings.retry_delay_ms,
            multiplier=settings.retry_multiplier,
            max_delay_ms=settings.retry_max_delay_ms,
            jitter=settings.retry_jitter,
        )
        self.pool = SmtpPool(settings.smtp_target(), settings.concurrency, timeout=settings.smtp_timeout_s)
        self.default_from = Address(email=settings.from_email, name=settings.from_name) if settings.from_email else None
        self.cipher = settings.cipher()
        self.dkim = settings.dkim_signer()
        queue_limit, domain_limits = settings.limits()
        self.limiter = (
            RateLimiter(self.redis, settings.queue, queue_limit, domain_limits, settings.rate_pause_ms)
            if queue_limit is not None or domain_limits
            else None
        )
        self.metrics = Metrics(settings.queue)
        self.state = WorkerState()
        self._stopping = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._held_while_paused: list[tuple[str, list[tuple[str, dict[bytes, bytes]]]]] = []
        self._started_ms = int(time.time() * 1000)
        self._started = time.monotonic()
        self._stop_requested = 0.0
        self._crashed = False  # a loop died: exit 1
        self._m_sent = self.metrics.sent.labels(settings.queue)
        self._m_inflight = self.metrics.in_flight.labels(settings.queue)
        self._m_seconds = self.metrics.send_seconds.labels(settings.queue)
        self.outcomes = Outcomes(
            settings,
            self.keys,
            self.settler,
            self.metrics,
            self.policy,
            stopping_for=lambda: time.monotonic() - self._stop_requested if self._stopping.is_set() else 0.0,
        )

    # ---- lifecycle -------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        if not self._stopping.is_set():
            self.state.stop_reason = reason
            self._stop_requested = time.monotonic()
            log.info("stopping: %s; finishing %d in-flight deliveries", reason, self.state.held)
            self._stopping.set()
            self._slot_free.set()

    async def ensure_group(self) -> None:
        for stream in self.keys.streams:
            try:
                await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run(self, install_signal_handlers: bool = True) -> int:
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop, signal.Signals(sig).name)
        health = None
        if self.settings.metrics_port:  # first, so probes answer while Redis is still away
            from .health import HealthServer

            health = HealthServer(
                self.settings.metrics_host, self.settings.metrics_port, self._alive, self._ready, self.metrics.render
            )
            port = await health.start()
            log.info("health and metrics on http://%s:%d/metrics", self.settings.metrics_host, port)
        await self._wait_for_redis()
        target = self.pool.target
        log.info(
            "worker %s consuming queue %r from %s, delivering to %s, concurrency %d",
            self.consumer,
            self.settings.queue,
            self.settings.redis_display(),
            target.redacted(),
            self.settings.concurrency,
        )
        self.settler.start()
        loops = [
            asyncio.create_task(self._read_loop(), name="read"),
            asyncio.create_task(self._reclaim_loop(), name="reclaim"),
            asyncio.create_task(self._promote_loop(), name="promote"),
            asyncio.create_task(self._housekeeping_loop(), name="housekeeping"),
        ]
        for task in loops:
            task.add_done_callback(self._loop_ended)
        try:
            await self._stopping.wait()
            await asyncio.wait([loops[0], loops[1]], timeout=READ_BLOCK_MS / 1000 + 2)
            if self._tasks:
                _, pending = await asyncio.wait(set(self._tasks), timeout=self.settings.shutdown_grace_s)
                if pending:
                    log.warning("grace period over: %d deliveries abandoned; they will be reclaimed", len(pending))
                    for task in pending:
                        task.cancel()
                    await asyncio.wait(pending, timeout=2)
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self.settler.close()
            await self.pool.close()
            await self._forget_self()
            if health is not None:
                await health.close()
            await self.redis.aclose()
        log.info("worker %s stopped (%s) after %d messages", self.consumer, self.state.stop_reason, self.state.handled)
        return 1 if self._crashed else 0

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        """A loop that ends by itself has crashed: say so and stop (exit 1: the pod restarts),
        rather than live on without reading, reclaiming or promoting."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("the %s loop crashed; stopping", task.get_name(), exc_info=exc)
        self._crashed = True
        self.request_stop(f"internal error in the {task.get_name()} loop: {type(exc).__name__}")

    async def _wait_for_redis(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            self.state.heartbeat = time.monotonic()
            self._check_limits()
            try:
                await self.ensure_group()
                await self.redis.script_load(MARK_SENDING)
                return
            except (RedisError, OSError) as exc:
                log.warning("Redis at %s not reachable (%s); retrying", self.settings.redis_display(), exc)
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _forget_self(self) -> None:
        """Leave the group if we hold nothing (entries we hold stay for reclaiming)."""
        try:
            for stream in self.keys.streams:
                pending = await self.redis.xpending_range(stream, GROUP, "-", "+", 1, consumername=self.consumer)
                if not pending:
                    await self.redis.xgroup_delconsumer(stream, GROUP, self.consumer)
        except (RedisError, OSError):
            pass

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _alive(self) -> bool:
        return time.monotonic() - self.state.heartbeat < 30

    async def _ready(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), timeout=1))
        except (RedisError, OSError, TimeoutError):
            return False

    # ---- intake ----------------------------------------------------------------------

    def _free(self) -> int:
        return self.settings.concurrency - self.state.held

    async def _read_loop(self) -> None:
        delay = 0.1
        while not self._stopping.is_set():
            free = self._free()
            if self.state.paused:
                await self._sleep(0.2)
                continue
            if self._held_while_paused:  # read just as the pause began: deliver them now
                held, self._held_while_paused = self._held_while_paused, []
                for held_stream, held_entries in held:
                    await self._dispatch(held_stream, held_entries, reclaimed=False)
                continue
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                # every lane in one call, most urgent first; COUNT applies per lane
                [reply] = await aexecute_packed(self.redis, [self._read_command(free)])
                if isinstance(reply, Exception):
                    raise reply
                delay = 0.1
                self.state.redis_ok = True
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # Redis lost its data (no AOF?): recreate and go on
                    log.warning("consumer group missing; recreating it")
                    await self.ensure_group()
                    continue
                raise
            except (RedisError, OSError) as exc:
                self.state.redis_ok = False
                log.warning("reading from Redis failed (%s); retrying in %.1fs", exc, delay)
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            for stream_name, entries in reply.items() if isinstance(reply, dict) else reply or []:
                stream = _s(stream_name)
                got = [(_s(eid), _pairs(flat)) for eid, flat in entries]
                if self.state.paused:  # the pause began during the blocking read: hold them
                    self._held_while_paused.append((stream, got))
                else:
                    await self._dispatch(stream, got, reclaimed=False)

    def _read_command(self, count: int) -> bytes:
        """XREADGROUP over every lane, packed by hand (rawpipe; the reply is parsed here too)."""
        streams = self.keys.streams
        args: list[str | int] = ["XREADGROUP", "GROUP", GROUP, self.consumer, "COUNT", count, "BLOCK", READ_BLOCK_MS]
        return pack_command([*args, "STREAMS", *streams, *[">"] * len(streams)])

    async def _reclaim_loop(self) -> None:
        every = max(min(self.settings.claim_idle_ms / 4000, 30.0), 0.1)
        while not self._stopping.is_set():
            await self._sleep(every)
            try:
                for stream in self.keys.streams:
                    await self._reclaim(stream)
            except (RedisError, OSError) as exc:
                log.debug("reclaim pass failed: %s", exc)

    async def _reclaim(self, stream: str) -> None:
        cursor = "0-0"
        while not self._stopping.is_set() and self._free() > 0 and not self.state.paused:
            reply = await self.redis.xautoclaim(
                stream, GROUP, self.consumer, self.settings.claim_idle_ms, cursor, count=self._free()
            )
            cursor, entries = _s(reply[0]), reply[1]
            live = [(_s(eid), raw) for eid, raw in entries if raw is not None]
            if live:
                log.info("reclaimed %d entries from dead or slow consumers", len(live))
                self.metrics.reclaimed.labels(self.settings.queue).inc(len(live))
                await self.redis.hincrby(self.keys.stats, "reclaimed", len(live))
                counts = await self._delivery_counts(stream, live)
                await self._dispatch(stream, live, reclaimed=True, deliveries=counts)
            if cursor == "0-0":
                return

    async def _delivery_counts(self, stream: str, entries: list[tuple[str, dict[bytes, bytes]]]) -> dict[str, int]:
        """How often each reclaimed entry has been handed out (XAUTOCLAIM counts each claim)."""
        pipe = self.redis.pipeline(transaction=False)
        for entry_id, _ in entries:
            pipe.xpending_range(stream, GROUP, min=entry_id, max=entry_id, count=1)
        counts: dict[str, int] = {}
        for (entry_id, _), rows in zip(entries, await pipe.execute(), strict=True):
            counts[entry_id] = int(rows[0]["times_delivered"]) if rows else 0
        return counts

    async def _dispatch(
        self,
        stream: str,
        entries: list[tuple[str, dict[bytes, bytes]]],
        reclaimed: bool,
        deliveries: dict[str, int] | None = None,
    ) -> None:
        works: list[Work] = []
        limit = self.settings.max_deliveries
        for entry_id, raw in entries:
            work = Work(entry_id, stream, {}, reclaimed)
            try:
                work.fields = fields_to_str(cast(Mapping[bytes | str, bytes | str], raw))
                work.entry = decode(work.fields, entry_id, self.cipher)
            except MalformedEntry as exc:
                work.error = str(exc)
                if not work.fields:
                    work.fields = {_s_lossy(k): _s_lossy(v) for k, v in raw.items()}
            handed_out = (deliveries or {}).get(entry_id, 0)
            if limit and handed_out > limit:
                # every worker that took it died or stalled before settling it: stop the crash loop
                work.entry = None
                work.error = (
                    f"poison message: handed out {handed_out} times without being settled "
                    f"(EMAILQUEUE_MAX_DELIVERIES={limit}); the workers holding it crashed or hung"
                )
                work.poison = True
            works.append(work)
        await self._pre_send_checks(works)
        for work in works:
            self.state.held += 1
            task = asyncio.create_task(self._handle(work))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    async def _pre_send_checks(self, works: list[Work]) -> None:
        """One round trip, three commands per batch whatever its size: sent markers (MGET),
        suppressed recipients (one HMGET), and the "sending" status of each message (one script)."""
        ids = [w for w in works if w.entry is not None]
        if not ids:
            return
        emails = [w.entry.email for w in ids if w.entry is not None]
        rcpts = sorted({r for e in emails for r in e.recipients()})
        check_suppressed = self.settings.suppress_hard_bounces
        commands: list[tuple[Any, ...]] = [("MGET", *[self.keys.sent_marker(e.id) for e in emails])]
        if check_suppressed:
            commands.append(("HMGET", self.keys.suppressed, *rcpts))
        if self.settings.status_ttl_s:
            attempts = [w.entry.attempts + 1 for w in ids if w.entry is not None]
            statuses = [self.keys.status(e.id) for e in emails]
            commands.append(
                (
                    "EVALSHA",
                    self._sending_sha,
                    len(emails),
                    *statuses,
                    self.settings.status_ttl_s,
                    now_iso(),
                    self.consumer,
                    *attempts,
                )
            )
        try:
            found = await aexecute_packed(self.redis, [pack_command(c) for c in commands])  # packed by hand: rawpipe
        except Exception as exc:  # anything: the checks are an optimisation, the read loop must go on
            if not isinstance(exc, RedisError | OSError):
                log.exception("pre-send checks failed; sending the batch unchecked")
            return  # settle normally; worst case a duplicate, never a loss
        markers = found[0]
        if isinstance(markers, Exception):
            return
        suppressed: set[str] = set()
        if check_suppressed and not isinstance(found[1], Exception):
            suppressed = {r for r, rec in zip(rcpts, found[1], strict=True) if rec}
        if self.settings.status_ttl_s and is_noscript(found[-1]):
            await self.redis.script_load(MARK_SENDING)  # best effort: the next batch has it
        seen: set[str] = set()
        for w, marker in zip(ids, markers, strict=True):
            assert w.entry is not None
            # a second entry of the same message in one batch (enqueued twice, e.g. a producer's
            # retry after a lost reply) has no marker yet either: it is a duplicate all the same
            w.duplicate = marker is not None or w.entry.email.id in seen
            seen.add(w.entry.email.id)
            if suppressed:
                w.suppressed = [r for r in w.entry.email.recipients() if r in suppressed]

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.state.held -= 1
        self.state.handled += 1
        self._slot_free.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task crashed: %r", task.exception())
        if self.settings.limit and self.state.handled >= self.settings.limit:
            self.request_stop(f"message limit {self.settings.limit} reached")

    # ---- one message -----------------------------------------------------------------

    async def _handle(self, work: Work) -> None:
        if work.entry is None:
            reason = "poison" if work.poison else "invalid"
            await self.outcomes.dead_letter(work, reason, work.error or "malformed entry", None, attempts=0)
            return
        email = work.entry.email
        if work.duplicate:
            log.info("message %s was already sent; dropping the redelivered entry", email.id)
            self.metrics.duplicates.labels(self.settings.queue).inc()
            await self.outcomes.settle(
                DISCARD, [work.stream, self.keys.stats], [work.entry_id, "duplicates_suppressed"]
            )
            return
        attempt = work.entry.attempts + 1
        recipients = email.recipients()
        if work.suppressed:
            recipients = [r for r in recipients if r not in work.suppressed]
            if not recipients:
                error = f"every recipient is on the suppression list (hard bounce): {', '.join(work.suppressed)}"
                await self.outcomes.dead_letter(work, "suppressed", error, None, attempts=0)
                return
            log.info("message %s: not sending to suppressed %s", email.id, ", ".join(work.suppressed))
        if self.limiter is not None and not await self._rate_slot(work, recipients):
            return  # deferred to the delayed set: waiting for a slot is not an attempt
        self._m_inflight.inc()
        started = time.perf_counter()
        try:
            envelope = build(email, self.default_from)
            if work.suppressed or self.dkim is not None:
                data = self.dkim.sign(envelope.data) if self.dkim is not None else envelope.data
                envelope = Envelope(envelope.sender, recipients, data)
            result = await self.pool.send(envelope)
        except TransientDeliveryError as exc:
            if self.limiter is not None and is_slow_down(exc.code, str(exc)):
                await self.limiter.pause(recipients)
                log.warning("message %s: server asks to slow down (%s); domain paused", email.id, exc)
                await self.outcomes.defer(work, self.settings.rate_pause_ms, f"slow down: {exc}")
                return
            if should_retry(attempt, self.policy):
                await self.outcomes.retry_later(work, attempt, exc)
            else:
                await self.outcomes.dead_letter(work, "exhausted", str(exc), exc.code, attempts=attempt)
            return
        except PermanentDeliveryError as exc:
            await self.outcomes.suppress(email.id, exc.refused)
            await self.outcomes.dead_letter(work, "permanent", str(exc), exc.code, attempts=attempt)
            return
        finally:
            self._m_inflight.dec()
            elapsed = time.perf_counter() - started
            self._m_seconds.observe(elapsed)
        self._m_sent.inc()
        if result.refused:
            log.warning("message %s sent, but some recipients were refused: %s", email.id, result.refused)
            await self.outcomes.suppress(
                email.id, {r: int(reply[:3]) for r, reply in result.refused.items() if reply[:3].isdigit()}
            )
        if log.isEnabledFor(logging.DEBUG):  # the join is not free, and this runs for every email
            log.debug("sent %s to %s: %s", email.id, ", ".join(email.recipients()), result.reply)
        keys = [work.stream, self.keys.stats, self.keys.sent_marker(email.id)]
        args: list[object] = [work.entry_id, self.settings.sent_marker_ttl_s, str(int(time.time())), int(elapsed * 1e6)]
        if self.settings.status_ttl_s:  # the final status rides in the same script: no extra command
            keys.append(self.keys.status(email.id))
            args += [
                self.settings.status_ttl_s,
                "state",
                "sent",
                "attempt",
                str(attempt),
                "reply",
                result.reply[:500],
                "refused",
                json.dumps(result.refused) if result.refused else "",
                "updated_at",
                now_iso(),
            ]
        self.outcomes.event(email.id, "sent", {"attempt": str(attempt), "reply": result.reply[:500]})
        await self.outcomes.settle(COMPLETE, keys, args)

    async def _rate_slot(self, work: Work, recipients: list[str]) -> bool:
        """Wait for a rate slot (True), or defer the entry when the wait is long (False)."""
        assert self.limiter is not None
        # never hold an entry near the reclaim threshold: another worker would take it too
        deadline = time.monotonic() + min(RATE_WAIT_INLINE_MS, self.settings.claim_idle_ms // 4) / 1000
        while True:
            try:
                wait_ms = await self.limiter.acquire(recipients)
            except (RedisError, OSError):
                wait_ms = 500  # Redis away: no slot can be proven free, so wait
            if wait_ms == 0:
                return True
            if time.monotonic() + wait_ms / 1000 > deadline:
                # spread the parked entries over the next slots so they do not all return at once
                spread = random.uniform(0, max(wait_ms, 100))
                await self.outcomes.defer(work, int(wait_ms + spread), "waiting for a rate-limit slot")
                return False
            await asyncio.sleep(wait_ms / 1000)

    # ---- background duties ----------------------------------------------------------

    def _check_limits(self) -> None:
        s = self.settings
        if s.time_limit_s and time.monotonic() - self._started >= s.time_limit_s:
            self.request_stop(f"time limit {s.time_limit_s:g}s reached")
        if s.memory_limit_mb and rss_mb() >= s.memory_limit_mb:
            self.request_stop(f"memory limit {s.memory_limit_mb} MB reached")

    async def _promote_loop(self) -> None:
        keys = promote_keys(self.keys)
        while not self._stopping.is_set():
            try:
                await self.scripts.promote_due(keys=keys, args=[int(time.time() * 1000), 500])
            except (RedisError, OSError):
                pass
            await self._sleep(PROMOTE_EVERY_S)

    async def _housekeeping_loop(self) -> None:
        last_gc = last_info = 0.0
        q = self.settings.queue
        while not self._stopping.is_set():
            self.state.heartbeat = time.monotonic()
            self._check_limits()
            try:
                pipe = self.redis.pipeline(transaction=False)
                pipe.zcard(self.keys.delayed)
                pipe.xlen(self.keys.failed)
                pipe.hmget(self.keys.control, ["stop_at", "paused"])
                for stream in self.keys.streams:
                    pipe.xlen(stream)
                    pipe.xrange(stream, count=1)
                delayed, failed, (stop_at, paused), *per_lane = await pipe.execute()
                backlog = sum(per_lane[0::2])
                oldest = [int(_s(first[0][0]).split("-")[0]) for first in per_lane[1::2] if first]
                age = max(time.time() - min(oldest) / 1000, 0.0) if oldest else 0.0
                self.metrics.oldest_age.labels(q).set(age)
                self.metrics.paused.labels(q).set(1 if paused else 0)
                if time.monotonic() - last_info > 10:
                    last_info = time.monotonic()
                    memory = await self.redis.info("memory")
                    self.metrics.redis_used.labels(q).set(float(memory.get("used_memory", 0)))
                    self.metrics.redis_max.labels(q).set(float(memory.get("maxmemory", 0)))
                if bool(paused) != self.state.paused:
                    self.state.paused = bool(paused)
                    log.info("queue %r %s", q, "paused: not taking new messages" if paused else "resumed")
                self.metrics.backlog.labels(q).set(backlog)
                self.metrics.delayed.labels(q).set(delayed)
                self.metrics.dead_letters.labels(q).set(failed)
                if stop_at is not None and int(stop_at) >= self._started_ms:
                    self.request_stop("stop-workers requested")
                if time.monotonic() - last_gc > CONSUMER_GC_EVERY_S:
                    last_gc = time.monotonic()
                    removed = 0
                    for stream in self.keys.streams:
                        removed += await self._gc(keys=[stream], args=[CONSUMER_GC_IDLE_MS, self.consumer])
                    if removed:
                        log.info("removed %d idle consumers that held nothing", removed)
            except (RedisError, OSError):
                pass
            await self._sleep(HOUSEKEEPING_EVERY_S)


def _pairs(flat: list[bytes] | dict[bytes, bytes]) -> dict[bytes, bytes]:
    """An entry's fields from a raw reply: a flat [field, value, ...] list (RESP2) or a map (RESP3)."""
    if isinstance(flat, dict):
        return flat
    it = iter(flat)
    return dict(zip(it, it, strict=True))


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _s_lossy(value: bytes | str) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
