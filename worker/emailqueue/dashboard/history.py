"""The charts' data: a ring buffer of samples per queue, kept in the dashboard process.

The sampler reads each queue's counters (the ``stats`` hash) and figures every
``EMAILQUEUE_DASHBOARD_SAMPLE_S`` seconds and appends them here; the buffer holds
``EMAILQUEUE_DASHBOARD_HISTORY_S`` seconds (an hour by default) and forgets the rest.
Rates are differences of counters between two samples, so they need no cooperation from
the workers; the history starts empty when the dashboard starts and is per process.

Send latency is the mean SMTP send time over each interval: the difference of the
``send_us`` counter (microseconds spent in successful sends, written by workers that
record it) divided by the difference of ``sent``. Without that counter the chart stays
empty and says so.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

RATE_COUNTERS = ("enqueued", "sent", "failed", "retried")
LATENCY_COUNTER = "send_us"


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # unix seconds
    counters: dict[str, int]
    waiting: int
    in_flight: int
    delayed: int
    failed: int
    oldest_age_ms: int | None


def _delta(new: dict[str, int], old: dict[str, int], name: str) -> int | None:
    if name not in new or name not in old:
        return None
    diff = new[name] - old[name]
    return diff if diff >= 0 else new[name]  # a counter reset (stats hash deleted): count from zero


def point(prev: Sample, cur: Sample) -> dict[str, Any]:
    """One chart point from two consecutive samples."""
    dt = max(cur.t - prev.t, 1e-6)
    out: dict[str, Any] = {
        "t": cur.t,
        "waiting": cur.waiting,
        "in_flight": cur.in_flight,
        "delayed": cur.delayed,
        "failed_total": cur.failed,
        "oldest_age_ms": cur.oldest_age_ms,
    }
    for name in RATE_COUNTERS:
        d = _delta(cur.counters, prev.counters, name)
        out[f"{name}_per_s"] = None if d is None else round(d / dt, 3)
    sent = _delta(cur.counters, prev.counters, "sent")
    spent = _delta(cur.counters, prev.counters, LATENCY_COUNTER)
    out["latency_ms"] = round(spent / sent / 1000, 3) if sent and spent is not None else None
    return out


class History:
    """Per-queue ring buffers of ``Sample`` (``deque(maxlen=...)``)."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._samples: dict[str, deque[Sample]] = {}

    def add(self, queue: str, sample: Sample) -> None:
        buf = self._samples.get(queue)
        if buf is None:
            buf = self._samples[queue] = deque(maxlen=self.keep)
        buf.append(sample)

    def samples(self, queue: str) -> list[Sample]:
        return list(self._samples.get(queue, ()))

    def series(self, queue: str) -> list[dict[str, Any]]:
        samples = self.samples(queue)
        return [point(a, b) for a, b in pairwise(samples)]

    def last_point(self, queue: str) -> dict[str, Any] | None:
        """The newest chart point (the overview's "sent/s"), without building the series."""
        buf = self._samples.get(queue)
        return point(buf[-2], buf[-1]) if buf and len(buf) >= 2 else None
