"""Every Redis key, group and field name of a queue, in one place.

All keys of one queue share the hash tag ``{<queue>}`` so that a queue lives in one
cluster slot and the Lua scripts may touch several of its keys at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "emailqueue"
GROUP = "workers"
WIRE_VERSION = "1"

# Stream entry fields (see docs/wire-format.md).
F_VERSION = "v"
F_PAYLOAD = "payload"
F_ENC = "enc"
F_ATTEMPTS = "attempts"  # delivery attempts already made (absent = 0)
F_MID = "mid"  # message id, when the payload carries none (raw producers)
F_FIRST_AT = "first_attempt_at"
F_LANE = "lane"  # priority lane of an entry in the delayed set or a dead letter (absent = normal)

# Counters of the stats hash from which ``enqueued`` is computed (stats.read_queue_stats):
# enqueued = entries ever added to the lane streams (XINFO STREAM entries-added) + scheduled
# - requeued.  So ``send()`` is one XADD and counts raw producers' XADDs too.
C_SCHEDULED = "scheduled"  # emails a producer put into the delayed set (send_at in the future)
C_REQUEUED = "requeued"  # entries emailqueue re-added to a lane: promotions from delayed, dead letters retried

# Priority lanes, most urgent first.  "normal" is the plain ``stream`` key.
LANES = ("high", "normal", "bulk")

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def validate_queue_name(name: str) -> str:
    """Return ``name`` if it is a valid queue name, else raise ``ValueError``."""
    if not _QUEUE_NAME.match(name):
        raise ValueError(
            f"queue name {name!r} is invalid: use 1-100 characters of letters, digits, "
            "'_', '.', '-', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """The Redis keys of one queue: ``emailqueue:{<queue>}:<part>``."""

    queue: str

    def __post_init__(self) -> None:
        validate_queue_name(self.queue)

    @property
    def base(self) -> str:
        return f"{PREFIX}:{{{self.queue}}}"

    @property
    def stream(self) -> str:
        """Messages ready to send; XLEN = waiting + in flight."""
        return f"{self.base}:stream"

    def lane_stream(self, lane: str | None) -> str:
        """The stream of a priority lane: ``stream`` for normal, ``stream:high`` / ``stream:bulk``."""
        return self.stream if lane in (None, "", "normal") else f"{self.base}:stream:{lane}"

    @property
    def streams(self) -> list[str]:
        """Every lane's stream, most urgent first (what workers read and the autoscaler counts)."""
        return [self.lane_stream(lane) for lane in LANES]

    @property
    def delayed(self) -> str:
        """Sorted set of retries and scheduled sends, scored by due time (ms)."""
        return f"{self.base}:delayed"

    @property
    def failed(self) -> str:
        """Stream of dead letters."""
        return f"{self.base}:failed"

    @property
    def stats(self) -> str:
        """Hash of counters (enqueued, sent, retried, failed, dropped_invalid, ...)."""
        return f"{self.base}:stats"

    @property
    def control(self) -> str:
        """Hash of control flags (``stop_at``: workers started before it exit)."""
        return f"{self.base}:control"

    @property
    def suppressed(self) -> str:
        """Hash of suppressed recipients (hard bounces): address -> JSON {reason, code, at, message_id}."""
        return f"{self.base}:suppressed"

    @property
    def events(self) -> str:
        """Optional stream of delivery events (sent, retrying, failed, suppressed), capped in length."""
        return f"{self.base}:events"

    def idempotency(self, key: str) -> str:
        """First message id enqueued under an application's ``idempotency_key``."""
        return f"{self.base}:idem:{key}"

    def status(self, message_id: str) -> str:
        """Hash of a message's current state (queued, sending, retrying, sent, failed)."""
        return f"{self.base}:status:{message_id}"

    def sent_marker(self, message_id: str) -> str:
        """Idempotency marker set when a message was delivered."""
        return f"{self.base}:sent:{message_id}"
