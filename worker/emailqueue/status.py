"""Per-message status: queued / sending / retrying / sent / failed / suppressed, kept for a TTL.

``emailqueue:{<queue>}:status:<id>`` is a hash written by the worker from the moment it
picks a message up (sending, then every later state, in the round trips it makes anyway), by
the producer for scheduled sends (and "queued" when made with ``track_queued=True``), read by
``Mailer.status(id)`` and ``emailqueue status ID``.  ``EMAILQUEUE_STATUS_TTL_S=0`` turns it
off (it costs about 150 bytes of Redis memory per message for the TTL).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_STATUS_TTL_S = 86_400

# KEYS: status key.  ARGV: ttl (s), then field/value pairs.
SET_STATUS = """
if #ARGV >= 3 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
"""

# KEYS: status keys of a batch.  ARGV: ttl (s), now, consumer, then one attempt number per key.
MARK_SENDING = """
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'state', 'sending', 'attempt', ARGV[3 + i], 'updated_at', ARGV[2], 'consumer', ARGV[3])
  redis.call('EXPIRE', key, tonumber(ARGV[1]))
end
return #KEYS
"""

STATES = ("scheduled", "queued", "sending", "retrying", "sent", "failed", "suppressed")


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """What is known of one message.  ``fields`` holds the details of the current state:
    ``reply`` (sent), ``next_attempt_at`` and ``error`` (retrying), ``reason`` and ``error``
    (failed), ``attempt``, ``updated_at``."""

    message_id: str
    state: str
    fields: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "state": self.state, **self.fields}


def parse(message_id: str, raw: Mapping[bytes | str, bytes | str]) -> MessageStatus | None:
    if not raw:
        return None
    fields = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in raw.items()
    }
    return MessageStatus(message_id, fields.pop("state", "unknown"), fields)
