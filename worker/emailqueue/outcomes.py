"""How the worker records what happened to an entry.

Every outcome is one atomic, idempotent Lua script (``scripts``) sent through the batching
``Settler``: sent (written by the worker itself), retry later, parked without spending an
attempt (rate limits, slow-down), dead-lettered; plus the best-effort side records that ride in
the same batch: message status, delivery events, suppressed recipients.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from redis.exceptions import NoPermissionError, RedisError

from .errors import TransientDeliveryError
from .keys import F_ATTEMPTS, F_FIRST_AT, F_LANE, F_MID, LANES, QueueKeys
from .metrics import Metrics
from .retry import RetryPolicy, backoff_ms
from .scripts import DEAD_LETTER, EVENT, RETRY_LATER, SUPPRESS, flatten
from .settings import Settings
from .settle import Settler
from .status import SET_STATUS
from .wire import Entry, message_id_of

log = logging.getLogger("emailqueue.worker")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(slots=True)
class Work:
    """One entry read from a lane, and what the pre-send checks found."""

    entry_id: str
    stream: str  # the lane's stream the entry was read from
    fields: dict[str, str]
    reclaimed: bool
    entry: Entry | None = None
    error: str | None = None
    duplicate: bool = False
    poison: bool = False
    suppressed: list[str] = field(default_factory=list)


class Outcomes:
    """Records outcomes for one worker; ``stopping_for()`` is how long a stop has been requested."""

    def __init__(
        self,
        settings: Settings,
        keys: QueueKeys,
        settler: Settler,
        metrics: Metrics,
        policy: RetryPolicy,
        *,
        stopping_for: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.settler = settler
        self.metrics = metrics
        self.policy = policy
        self._stopping_for = stopping_for
        self._retried = metrics.retried.labels(settings.queue)
        self._lane_of = {keys.lane_stream(lane): lane for lane in LANES}

    async def settle(
        self, script: str, keys: list[str], args: list[object], status: tuple[str, dict[str, str]] | None = None
    ) -> None:
        """Run a settlement script; keep trying while Redis is away (the send already happened).

        ``status`` (message id, fields) is written in the same batch, best effort."""
        if status is not None:
            self.event(status[0], status[1].get("state", ""), status[1])
        if status is not None and self.settings.status_ttl_s:
            mid, fields = status
            fields = {**fields, "updated_at": now_iso()}
            self.settler.post(SET_STATUS, [self.keys.status(mid)], [self.settings.status_ttl_s, *flatten(fields)])
        delay = 0.1
        while True:
            try:
                await self.settler.submit(script, keys, args)
                return
            except (RedisError, OSError) as exc:
                stopping_for = self._stopping_for()
                if stopping_for > self.settings.shutdown_grace_s:
                    log.error("could not record the outcome of entry %s: %s; it will be redelivered", args[0], exc)
                    return
                if isinstance(exc, NoPermissionError):  # a misconfigured ACL: say so loudly, keep the entry
                    log.error("Redis ACL denies the worker a command it needs: %s (see docs/security.md)", exc)
                log.warning("recording an outcome failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception:  # a bug, not Redis: retrying cannot help; the entry stays pending
                log.exception("could not record the outcome of entry %s; it will be redelivered", args[0])
                return

    def member(self, work: Work) -> dict[str, str]:
        """The entry's fields for the delayed set, with its lane so that promotion puts it back there."""
        member = dict(work.fields)
        lane = self._lane_of.get(work.stream, "normal")
        if lane != "normal":
            member[F_LANE] = lane
        return member

    def event(self, message_id: str, state: str, fields: dict[str, str]) -> None:
        """Publish a delivery event for applications that want to react (EMAILQUEUE_EVENTS_MAXLEN)."""
        if self.settings.events_maxlen and state in ("sent", "retrying", "failed", "suppressed"):
            record = {"id": message_id, "state": state, "at": now_iso(), **{k: v for k, v in fields.items() if v}}
            record.pop("updated_at", None)
            self.settler.post(EVENT, [self.keys.events], [self.settings.events_maxlen, *flatten(record)])

    async def retry_later(self, work: Work, attempt: int, exc: TransientDeliveryError) -> None:
        delay = backoff_ms(attempt, self.policy)
        assert work.entry is not None
        member = self.member(work)
        member[F_ATTEMPTS] = str(attempt)
        member[F_MID] = work.entry.email.id
        member.setdefault(F_FIRST_AT, now_iso())
        member["last_error"] = str(exc)[:1000]
        log.info("message %s attempt %d failed (%s); retry in %d ms", work.entry.email.id, attempt, exc, delay)
        self._retried.inc()
        due = int(time.time() * 1000) + delay
        await self.settle(
            RETRY_LATER,
            [work.stream, self.keys.delayed, self.keys.stats],
            [work.entry_id, due, json.dumps(member, separators=(",", ":")), "retried"],
            status=(
                work.entry.email.id,
                {
                    "state": "retrying",
                    "attempt": str(attempt),
                    "error": str(exc)[:500],
                    "next_attempt_at": datetime.fromtimestamp(due / 1000, UTC).isoformat(timespec="milliseconds"),
                },
            ),
        )

    async def defer(self, work: Work, delay_ms: int, why: str) -> None:
        """Back to the delayed set without counting an attempt (rate limits, slow-down)."""
        assert work.entry is not None
        member = self.member(work)
        member[F_ATTEMPTS] = str(work.entry.attempts)
        member[F_MID] = work.entry.email.id
        due = int(time.time() * 1000) + delay_ms
        await self.settle(
            RETRY_LATER,
            [work.stream, self.keys.delayed, self.keys.stats],
            [work.entry_id, due, json.dumps(member, separators=(",", ":")), "rate_limited"],
            status=(
                work.entry.email.id,
                {
                    "state": "queued",
                    "error": why,
                    "next_attempt_at": datetime.fromtimestamp(due / 1000, UTC).isoformat(timespec="milliseconds"),
                },
            ),
        )

    async def dead_letter(self, work: Work, reason: str, error: str, code: int | None, attempts: int) -> None:
        mid = work.entry.email.id if work.entry is not None else message_id_of(work.fields, work.entry_id)
        record = {k: v for k, v in self.member(work).items() if k not in ("last_error",)}
        record.update(
            {
                F_MID: mid,
                F_ATTEMPTS: str(attempts),
                "reason": reason,
                "error": error[:2000],
                "smtp_code": "" if code is None else str(code),
                F_FIRST_AT: work.fields.get(F_FIRST_AT, now_iso()),
                "failed_at": now_iso(),
                "entry_id": work.entry_id,
            }
        )
        counter = {"invalid": "dropped_invalid", "suppressed": "suppressed"}.get(reason, "failed")
        log.warning("message %s dead-lettered (%s) after %d attempt(s): %s", mid, reason, attempts, error)
        self.metrics.failed.labels(self.settings.queue, reason).inc()
        await self.settle(
            DEAD_LETTER,
            [work.stream, self.keys.failed, self.keys.stats],
            [work.entry_id, counter, *flatten(record)],
            status=(
                mid,
                {
                    "state": "suppressed" if reason == "suppressed" else "failed",
                    "reason": reason,
                    "attempt": str(attempts),
                    "error": error[:500],
                    "smtp_code": record["smtp_code"],
                },
            ),
        )

    async def suppress(self, message_id: str, refused: dict[str, int]) -> None:
        """Hard bounces (5xx at RCPT) go on the suppression list: no more mail is sent to them."""
        hard = {r: c for r, c in refused.items() if 500 <= c < 600}
        if not hard or not self.settings.suppress_hard_bounces:
            return
        at = now_iso()
        pairs: list[object] = []
        for address, code in hard.items():
            pairs += [address, json.dumps({"reason": "hard bounce", "code": code, "at": at, "message_id": message_id})]
        log.info("suppressing hard-bounced recipients: %s", ", ".join(hard))
        await self.settle(SUPPRESS, [self.keys.suppressed], pairs)
