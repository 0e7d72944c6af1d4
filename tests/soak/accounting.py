"""Account for every message id of a soak run: pure functions over what was observed.

Each id ends in exactly one row of the table.  The rows that are allowed by the delivery
semantics (docs/reliability.md) are "ok" rows; every other row is a violation and fails
the soak.  A duplicate is allowed only with a cause that the design admits:

- the id was in flight at a worker that was SIGKILLed (the send may have completed and the
  process died before the settlement script ran; the entry is reclaimed and sent again);
- the SMTP server was cut off right after it accepted DATA (the 250 never reached the worker,
  which must treat the attempt as failed: RFC 5321 section 6.1 duplicate);
- the producer re-sent the id after a Redis error (enqueue is at-least-once).

Every such cause bounds the duplicates it can produce: at most one extra copy per id, and
only for the ids in the recorded in-flight sets / cut windows / re-sent chunks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

DELIVER = "deliver"
PERMANENT = "permanent"

CUT_WINDOW_BEFORE_S = 1.0
CUT_WINDOW_AFTER_S = 0.2  # clock skew between the sink thread and the driver

OK_ROWS = (
    "delivered exactly once",
    "delivered twice: in flight at a worker SIGKILL",
    "delivered twice: SMTP connection cut after DATA was accepted",
    "delivered twice: producer re-sent after a Redis error",
    "failed: permanent 550, one attempt at the 550, as expected",
    "failed: permanent 550, answered 550 twice: in flight at a worker SIGKILL",
)
BAD_ROWS = (
    "LOST (neither delivered nor dead-lettered nor queued)",
    "still queued at the end",
    "delivered twice: no admissible cause",
    "delivered three or more times",
    "expected delivery, but dead-lettered",
    "expected a permanent failure, but delivered",
    "permanent failure retried after the 550",
    "dead-lettered with the wrong reason or code",
)


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    mid: str
    reason: str
    smtp_code: str
    attempts: int
    error: str = ""


@dataclass(frozen=True, slots=True)
class KillEvent:
    at: float
    consumer: str
    in_flight: frozenset[str]


@dataclass
class Observations:
    expected: dict[str, str]  # id -> DELIVER | PERMANENT
    perm_address: dict[str, str]  # id -> the recipient the sink answers 550
    accepted: dict[str, list[float]]  # id -> times the SMTP server accepted DATA
    perm_replies: dict[str, int]  # recipient -> 550 replies given
    dead: list[DeadLetterRecord]
    still_queued: set[str] = field(default_factory=set)
    kills: list[KillEvent] = field(default_factory=list)
    smtp_cuts: list[float] = field(default_factory=list)
    resent: set[str] = field(default_factory=set)


@dataclass
class Report:
    rows: Counter[str]
    examples: dict[str, list[str]]
    total: int
    duplicates: int
    duplicate_bound: int
    extra_dead_letters: int
    unknown_ids: int
    notes: list[str] = field(default_factory=list)
    bound_parts: dict[str, int] = field(default_factory=dict)

    @property
    def violations(self) -> int:
        bad = sum(self.rows[r] for r in BAD_ROWS) + self.unknown_ids
        return bad + (self.duplicates > self.duplicate_bound)

    @property
    def lost(self) -> int:
        return self.rows[BAD_ROWS[0]]

    @property
    def ok(self) -> bool:
        return self.violations == 0

    def table(self) -> str:
        width = max(len(r) for r in (*OK_ROWS, *BAD_ROWS)) + 2
        lines = [f"{'outcome':<{width}} {'ids':>9}", "-" * (width + 10)]
        lines += [f"{r:<{width}} {self.rows[r]:>9}" for r in OK_ROWS]
        lines += [f"{r:<{width}} {self.rows[r]:>9}{'   <-- FAIL' if self.rows[r] else ''}" for r in BAD_ROWS]
        lines.append("-" * (width + 10))
        lines.append(f"{'total ids':<{width}} {self.total:>9}")
        lines.append(f"{'extra copies delivered (duplicates)':<{width}} {self.duplicates:>9}")
        lines.append(f"{'bound on duplicates (see docs/reliability.md)':<{width}} {self.duplicate_bound:>9}")
        lines += [f"{'  ' + k:<{width}} {v:>9}" for k, v in self.bound_parts.items()]
        lines.append(f"{'extra dead letters of one id (lost reply)':<{width}} {self.extra_dead_letters:>9}")
        if self.unknown_ids:
            lines.append(f"{'deliveries of ids never enqueued':<{width}} {self.unknown_ids:>9}   <-- FAIL")
        for row, ids in self.examples.items():
            if row in BAD_ROWS and ids:
                lines.append(f"  e.g. {row}: {', '.join(ids[:5])}")
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"RESULT: {'PASS' if self.ok else 'FAIL'} ({self.violations} violation(s), {self.lost} lost)")
        return "\n".join(lines)


def _in_cut_window(first_accept: float, cuts: Iterable[float]) -> bool:
    return any(c - CUT_WINDOW_BEFORE_S <= first_accept <= c + CUT_WINDOW_AFTER_S for c in cuts)


def account(obs: Observations) -> Report:
    """Put every expected id in one row; count duplicates against their bound."""
    killed_in_flight: set[str] = set().union(*(k.in_flight for k in obs.kills)) if obs.kills else set()
    dead_by_id: dict[str, list[DeadLetterRecord]] = {}
    for d in obs.dead:
        dead_by_id.setdefault(d.mid, []).append(d)
    rows: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    duplicates = 0

    def put(row: str, mid: str) -> None:
        rows[row] += 1
        examples.setdefault(row, []).append(mid)

    for mid, kind in obs.expected.items():
        times = sorted(obs.accepted.get(mid, ()))
        dead = dead_by_id.get(mid, [])
        copies = len(times)
        duplicates += max(copies - 1, 0)
        if kind == DELIVER:
            if copies == 0:
                if dead:
                    put("expected delivery, but dead-lettered", f"{mid} ({dead[0].reason}: {dead[0].error[:80]})")
                elif mid in obs.still_queued:
                    put("still queued at the end", mid)
                else:
                    put("LOST (neither delivered nor dead-lettered nor queued)", mid)
            elif dead:
                put("expected delivery, but dead-lettered", f"{mid} (also delivered; {dead[0].reason})")
            elif copies == 1:
                put("delivered exactly once", mid)
            elif copies > 2:
                put("delivered three or more times", mid)
            elif mid in killed_in_flight:
                put("delivered twice: in flight at a worker SIGKILL", mid)
            elif _in_cut_window(times[0], obs.smtp_cuts):
                put("delivered twice: SMTP connection cut after DATA was accepted", mid)
            elif mid in obs.resent:
                put("delivered twice: producer re-sent after a Redis error", mid)
            else:
                put("delivered twice: no admissible cause", mid)
            continue
        # expected: permanent failure
        replies = obs.perm_replies.get(obs.perm_address.get(mid, ""), 0)
        if copies:
            put("expected a permanent failure, but delivered", mid)
        elif not dead:
            put("still queued at the end" if mid in obs.still_queued else BAD_ROWS[0], mid)
        elif any(d.reason != "permanent" or d.smtp_code != "550" for d in dead):
            bad = next(d for d in dead if d.reason != "permanent" or d.smtp_code != "550")
            put("dead-lettered with the wrong reason or code", f"{mid} ({bad.reason} {bad.smtp_code})")
        elif replies <= 1:
            put("failed: permanent 550, one attempt at the 550, as expected", mid)
        elif replies == 2 and mid in killed_in_flight:
            put("failed: permanent 550, answered 550 twice: in flight at a worker SIGKILL", mid)
        else:
            put("permanent failure retried after the 550", f"{mid} ({replies} x 550)")

    cut_window_ids = {
        mid
        for mid, times in obs.accepted.items()
        if times and mid in obs.expected and _in_cut_window(min(times), obs.smtp_cuts)
    }
    bound = len(killed_in_flight) + len(cut_window_ids) + len(obs.resent)
    extra_dead = sum(len(v) - 1 for v in dead_by_id.values() if len(v) > 1)
    unknown = sum(1 for mid in obs.accepted if mid not in obs.expected)
    notes = []
    if extra_dead:
        notes.append(
            f"{extra_dead} id(s) have more than one dead letter: a settlement whose reply was lost in a Redis "
            "restart was re-run by the client (finding F2 in docs/reliability.md); no email was sent twice for them"
        )
    return Report(
        rows=rows,
        examples=examples,
        total=len(obs.expected),
        duplicates=duplicates,
        duplicate_bound=bound,
        extra_dead_letters=extra_dead,
        unknown_ids=unknown,
        notes=notes,
        bound_parts={
            "ids in flight at the SIGKILLs": len(killed_in_flight),
            "ids accepted in the second before an SMTP cut": len(cut_window_ids),
            "ids in producer chunks re-sent": len(obs.resent),
        },
    )
