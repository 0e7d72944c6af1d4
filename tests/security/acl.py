"""The Redis ACL users of a queue, as rendered in docs/security.md and proven by the tests.

Key permissions use Redis 7 selectors: ``~pattern`` read+write, ``%W~pattern`` write only,
``%R~pattern`` read only.  Commands are granted one by one after ``-@all``.
"""

from __future__ import annotations

# Every command the worker sends, directly or from its Lua scripts (scripts run with the
# caller's permissions, so what they call must be granted too).
WORKER_COMMANDS = (
    "xgroup|create",  # ensure the consumer group (MKSTREAM) at start and after a NOGROUP
    "xreadgroup",  # read new entries
    "xautoclaim",  # reclaim entries of dead consumers
    "xpending",  # on shutdown: does this consumer still hold entries?
    "xgroup|delconsumer",  # leave the group (shutdown; idle-consumer GC script)
    "xinfo|consumers",  # idle-consumer GC script
    "xack",  # settlement scripts
    "xdel",  # settlement scripts
    "xadd",  # dead letter (failed stream), promotion of due retries (stream)
    "xlen",  # backlog / dead-letter gauges
    "zadd",  # retry later (delayed set)
    "zrangebyscore",  # promotion of due retries
    "zrem",  # promotion of due retries
    "zcard",  # delayed gauge
    "hincrby",  # counters
    "hmget",  # control: stop_at (stop-workers) and paused; the suppression list, per batch
    "hset",  # message status (sending), in the batch pipeline; scripts: status, suppression
    "expire",  # message status TTL
    "set",  # idempotency marker sent:<id> (with EX)
    "mget",  # the sent markers of a batch (duplicate suppression)
    "evalsha",  # the settlement/promotion/GC scripts
    "script|load",  # after a Redis restart the script cache is empty: NOSCRIPT -> SCRIPT LOAD
    "ping",  # /readyz and the client's health check
    "info",  # INFO memory every 10 s: emailqueue_redis_used_memory_bytes / maxmemory_bytes
    "client|setinfo",  # redis-py announces its name/version on connect (denial is ignored, but logged by ACL LOG)
)

# What an application that only enqueues needs: send() / send_many() and send_at (delayed).
# hset/expire: message status.  Idempotent enqueue runs a script (EVAL) that checks the key
# first: the keys handed to a script are checked for read and write, so EVAL gets its own
# selector, and GET/SET are allowed on the idempotency keys alone (SET on the stream would
# overwrite it).  Whatever a script calls is checked against these rules too.
PRODUCER_COMMANDS = ("xadd", "hincrby", "zadd", "hset", "expire", "client|setinfo")

# emailqueue stats / failed show|retry|remove / stop-workers, and the operator (stats, promotion).
OPERATOR_COMMANDS = (
    "xlen",
    "zcard",
    "hgetall",
    "hget",
    "hset",
    "xinfo|consumers",
    "xinfo|groups",
    "xinfo|stream",
    "xrange",
    "xrevrange",
    "xpending",
    "xdel",
    "xadd",
    "xack",
    "xgroup|create",
    "zadd",
    "zrangebyscore",
    "zrange",
    "zrem",
    "hincrby",
    "exists",
    "evalsha",
    "script|load",
    "ping",
    "client|setinfo",
)


def _base(queue: str) -> str:
    return f"emailqueue:{{{queue}}}"


def worker_rule(queue: str) -> str:
    b = _base(queue)
    # failed needs read+write (~) although the worker only XADDs to it: keys passed to EVALSHA
    # are checked for read and write access.  It still cannot XRANGE it (command not granted).
    keys = (
        f"~{b}:stream ~{b}:stream:* ~{b}:delayed ~{b}:stats ~{b}:sent:* ~{b}:failed ~{b}:status:* "
        f"~{b}:suppressed ~{b}:events %R~{b}:control"
    )
    root = f"resetkeys resetchannels {keys} -@all " + " ".join(f"+{c}" for c in WORKER_COMMANDS)
    # XRANGE ... COUNT 1 on the lanes only (the oldest entry's age for the metrics): never on failed
    return f"{root} clearselectors '(%R~{b}:stream %R~{b}:stream:* +xrange)'"


def producer_rule(queue: str) -> str:
    b = _base(queue)
    keys = f"%W~{b}:stream %W~{b}:stream:* %W~{b}:delayed ~{b}:stats %W~{b}:status:*"
    root = f"resetkeys resetchannels {keys} -@all " + " ".join(f"+{c}" for c in PRODUCER_COMMANDS)
    selectors = f"'(~{b}:stream ~{b}:stream:* ~{b}:delayed ~{b}:stats ~{b}:idem:* +eval)' '(~{b}:idem:* +get +set)'"
    return f"{root} clearselectors {selectors}"


def operator_rule(queue: str | None = None) -> str:
    keys = f"~{_base(queue)}:*" if queue else "~emailqueue:*"
    return f"resetkeys resetchannels {keys} -@all " + " ".join(f"+{c}" for c in OPERATOR_COMMANDS)


ADMIN_RULE = "resetkeys resetchannels ~* &* +@all"


def acl_lines(queue: str, passwords: dict[str, str] | None = None) -> list[str]:
    """``ACL SETUSER`` lines (also valid as aclfile ``user`` lines without the prefix)."""
    pw = passwords or {}

    def secret(user: str) -> str:
        return f">{pw[user]}" if user in pw else f">{user.upper().replace('-', '_')}_PASSWORD"

    return [
        f"ACL SETUSER emailqueue-producer on {secret('emailqueue-producer')} {producer_rule(queue)}",
        f"ACL SETUSER emailqueue-worker on {secret('emailqueue-worker')} {worker_rule(queue)}",
        f"ACL SETUSER emailqueue-operator on {secret('emailqueue-operator')} {operator_rule()}",
        f"ACL SETUSER admin on {secret('admin')} {ADMIN_RULE}",
        "ACL SETUSER default off",
    ]
