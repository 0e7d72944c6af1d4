"""Server-side Lua for every state change that touches more than one key.

Each script runs atomically in Redis, so a message is always in exactly one place:
the stream, the delayed set, the failed stream, or gone (sent). All keys passed to a
script share the queue's hash tag.

The settlement scripts are idempotent: when a reply is lost (the connection broke after
Redis ran the script) the worker runs the script again, and the second run finds the entry
already acknowledged and deleted and changes nothing (no second dead letter, no second
retry, no double count).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

# KEYS: stream, stats, sent-marker[, status].  ARGV: entry id, marker ttl (s), marker value,
# send time (us)[, status ttl (s), then status field/value pairs].
COMPLETE = """
local acked = redis.call('XACK', KEYS[1], 'workers', ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('SET', KEYS[3], ARGV[3], 'EX', tonumber(ARGV[2]))
if acked == 1 then
  redis.call('HINCRBY', KEYS[2], 'sent', 1)
  if ARGV[4] then redis.call('HINCRBY', KEYS[2], 'send_us', tonumber(ARGV[4])) end
end
if KEYS[4] then
  if #ARGV >= 7 then redis.call('HSET', KEYS[4], unpack(ARGV, 6)) end  -- one HSET for every field
  redis.call('EXPIRE', KEYS[4], tonumber(ARGV[5]))
end
return acked
"""

# KEYS: stream, stats.  ARGV: entry id, counter to increment.
# Drops an entry without sending (duplicate already delivered).
DISCARD = """
local acked = redis.call('XACK', KEYS[1], 'workers', ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
if acked == 1 then redis.call('HINCRBY', KEYS[2], ARGV[2], 1) end
return acked
"""

# KEYS: stream, delayed, stats.  ARGV: entry id, due (ms), member (JSON of fields), counter.
RETRY_LATER = """
local acked = redis.call('XACK', KEYS[1], 'workers', ARGV[1])
local deleted = redis.call('XDEL', KEYS[1], ARGV[1])
if acked == 0 and deleted == 0 then return 0 end
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[3])
redis.call('HINCRBY', KEYS[3], ARGV[4] or 'retried', 1)
return 1
"""

# KEYS: stream, failed, stats.  ARGV: entry id, counter, then field/value pairs.
DEAD_LETTER = """
local acked = redis.call('XACK', KEYS[1], 'workers', ARGV[1])
local deleted = redis.call('XDEL', KEYS[1], ARGV[1])
if acked == 0 and deleted == 0 then return 0 end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
return id
"""

# KEYS: suppressed.  ARGV: address/record pairs.  Records hard-bounced recipients.
SUPPRESS = """
if #ARGV > 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return #ARGV / 2
"""

# KEYS: events.  ARGV: max length (approximate), then field/value pairs.  Delivery events are
# notifications, not mail: trimming the oldest is fine here (never on the mail streams).
EVENT = """
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', tonumber(ARGV[1]), '*', unpack(fields))
"""

# KEYS: delayed, stream (normal lane), stream:high, stream:bulk, stats.  ARGV: now (ms), max entries.
# Moves due members (JSON objects of string fields) into the stream of their lane and counts
# them as requeued (they were counted when first enqueued).
PROMOTE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local ok, obj = pcall(cjson.decode, member)
  local fields = {}
  local target = KEYS[2]
  if ok and type(obj) == 'table' then
    if obj['lane'] == 'high' and KEYS[3] then target = KEYS[3] end
    if obj['lane'] == 'bulk' and KEYS[4] then target = KEYS[4] end
    for k, v in pairs(obj) do
      fields[#fields + 1] = tostring(k)
      fields[#fields + 1] = tostring(v)
    end
  else
    fields = {'v', '?', 'payload', member}
  end
  redis.call('XADD', target, '*', unpack(fields))
  redis.call('ZREM', KEYS[1], member)
end
if #due > 0 and KEYS[5] then redis.call('HINCRBY', KEYS[5], 'requeued', #due) end
return #due
"""

# KEYS: failed, stream, stats.  ARGV: failed entry id, then field/value pairs for the stream.
REQUEUE_FAILED = """
local n = redis.call('XDEL', KEYS[1], ARGV[1])
if n == 0 then return false end
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
if KEYS[3] then redis.call('HINCRBY', KEYS[3], 'requeued', 1) end
return redis.call('XADD', KEYS[2], '*', unpack(fields))
"""


class Scripts:
    """The registered scripts of one client (EVALSHA, loaded on first use)."""

    def __init__(self, redis: Redis) -> None:
        self.complete: AsyncScript = redis.register_script(COMPLETE)
        self.discard: AsyncScript = redis.register_script(DISCARD)
        self.retry_later: AsyncScript = redis.register_script(RETRY_LATER)
        self.dead_letter: AsyncScript = redis.register_script(DEAD_LETTER)
        self.promote_due: AsyncScript = redis.register_script(PROMOTE_DUE)
        self.requeue_failed: AsyncScript = redis.register_script(REQUEUE_FAILED)


def flatten(fields: dict[str, str]) -> list[Any]:
    """``{"a": "1", "b": "2"}`` -> ``["a", "1", "b", "2"]`` for ARGV."""
    out: list[Any] = []
    for key, value in fields.items():
        out.append(key)
        out.append(value)
    return out
