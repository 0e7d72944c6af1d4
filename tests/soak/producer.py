"""A soak producer process: enqueues its share of ids at a steady rate, re-sending on Redis errors.

Enqueue is at-least-once: when a ``send_many`` fails (Redis restarting), some of its XADDs
may have been applied already, so re-sending the chunk can enqueue an id twice.  The ids
of every re-sent chunk are reported, so the accounting can tell such duplicates from others.

The client is created with redis-py's own retries off, so that every failed attempt is seen
here and its ids recorded (tests/soak/test_lost_reply.py shows the lost-reply case).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from emailqueue.errors import EmailQueueError, InvalidEmail
from emailqueue.producer import Mailer

DOMAIN = "soak.test"


@dataclass(frozen=True, slots=True)
class Plan:
    """Which ids exist and which of them the sink rejects for good (deterministic)."""

    n: int
    producers: int
    perm_every: int = 50

    def ids_of(self, producer: int) -> list[str]:
        return [message_id(producer, i) for i in range(producer, self.n, self.producers)]

    def is_perm(self, index: int) -> bool:
        return self.perm_every > 0 and index % self.perm_every == 7

    def all(self) -> dict[str, bool]:
        """id -> True when the sink answers 550 for it."""
        return {message_id(i % self.producers, i): self.is_perm(i) for i in range(self.n)}


def message_id(producer: int, index: int) -> str:
    return f"soak-p{producer}-{index:07d}"


def perm_address(mid: str) -> str:
    return f"perm-{mid}@{DOMAIN}"


def index_of(mid: str) -> int:
    return int(mid.rsplit("-", 1)[1])


def make_email(mid: str, perm: bool) -> dict[str, object]:
    index = index_of(mid)
    return {
        "id": mid,
        "from": f"soak@{DOMAIN}",
        "to": perm_address(mid) if perm else f"user{index % 997}@{DOMAIN}",
        "subject": f"soak {mid}",
        "text": f"message {mid}\n" + "lorem ipsum dolor sit amet " * 8,
    }


def produce(url: str, queue: str, plan: Plan, producer: int, *, rate: float, out: str) -> None:
    """Process entry point: enqueue this producer's ids, then write a JSON summary to ``out``."""
    chunk = max(1, min(100, int(rate / 20)))  # ~20 pipelines a second: a steady stream
    client = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_timeout=5, socket_connect_timeout=2)
    mailer = Mailer(client, queue, url=url)
    ids = plan.ids_of(producer)
    resent: list[str] = []
    errors: list[str] = []
    started = time.monotonic()
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        batch = [make_email(m, plan.is_perm(index_of(m))) for m in part]
        failures = 0
        while True:
            try:
                mailer.send_many(batch)
                break
            except InvalidEmail:
                raise
            except (EmailQueueError, redis.RedisError, OSError) as exc:
                failures += 1
                if len(errors) < 20:
                    errors.append(str(exc)[:200])
                resent.extend(part)
                time.sleep(min(0.05 * 2**failures, 1.0))
        # pace: spread the enqueue over the chaos schedule
        due = started + (start + len(part)) / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    mailer.close()
    summary = {
        "producer": producer,
        "enqueued": len(ids),
        "resent": sorted(set(resent)),
        "errors": errors,
        "seconds": time.monotonic() - started,
    }
    Path(out).write_text(json.dumps(summary))
