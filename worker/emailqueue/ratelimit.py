"""Rate limits that hold across every worker pod: GCRA, evaluated atomically in Redis.

A limit is ``N/s``, ``N/m``, ``N/h`` or ``N/d`` with an optional burst, ``N/s:B``
(default burst 1: sends are spaced evenly, never more than N in any period plus B-1).
There is one optional limit for the whole queue (``EMAILQUEUE_RATE_LIMIT``) and one per
recipient domain (``EMAILQUEUE_DOMAIN_RATE_LIMITS="gmail.com=20/s,yahoo.com=5/s"``).  A
send takes one slot of the queue limit and one of each of its recipients' domains, all or
nothing, in one Lua script (Generic Cell Rate Algorithm: one key per limit holding the
"theoretical arrival time").  When a server answers "slow down" (421, or 451 naming a
rate), its domain is paused for ``EMAILQUEUE_RATE_PAUSE_MS``.  Waiting for a slot, or for a
pause to end, is not a failed attempt.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from .errors import ConfigError
from .keys import QueueKeys

_PERIODS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*([smhd])\s*(?::\s*(\d+))?\s*$")
_SLOW_DOWN = re.compile(r"rate|too many|throttl|slow down|try (again )?later|exceeded", re.IGNORECASE)

# KEYS: pause keys (n_pause of them), then limit keys.  ARGV: now ms, n_pause, then per
# limit key: emission interval ms, tolerance ms.  Returns 0 (slot taken) or ms to wait.
ACQUIRE = """
local now = tonumber(ARGV[1])
local n_pause = tonumber(ARGV[2])
local wait = 0
for i = 1, n_pause do
  local left = redis.call('PTTL', KEYS[i])
  if left > wait then wait = left end
end
local tats = {}
for i = n_pause + 1, #KEYS do
  local j = 3 + (i - n_pause - 1) * 2
  local interval = tonumber(ARGV[j])
  local tolerance = tonumber(ARGV[j + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local allow_at = tat - tolerance
  if allow_at > now and allow_at - now > wait then wait = allow_at - now end
  tats[i] = tat + interval
end
if wait > 0 then return wait end
for i = n_pause + 1, #KEYS do
  redis.call('SET', KEYS[i], string.format('%.3f', tats[i]), 'PX', math.ceil(tats[i] - now) + 1000)
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    period_ms: int
    burst: int = 1

    @property
    def interval_ms(self) -> float:
        return self.period_ms / self.count

    @property
    def tolerance_ms(self) -> float:
        return self.interval_ms * (self.burst - 1)


def parse_limit(text: str, setting: str) -> Limit:
    match = _LIMIT.match(text)
    if not match or int(match.group(1)) == 0:
        raise ConfigError(f"{setting}: {text!r} is not a rate such as '20/s', '500/d' or '20/s:5' (burst)")
    return Limit(int(match.group(1)), _PERIODS_MS[match.group(2)], int(match.group(3) or 1))


def parse_domain_limits(text: str, setting: str = "EMAILQUEUE_DOMAIN_RATE_LIMITS") -> dict[str, Limit]:
    out: dict[str, Limit] = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        domain, sep, rate = item.partition("=")
        if not sep or not domain.strip():
            raise ConfigError(f"{setting}: {item!r} is not 'domain=RATE' (e.g. gmail.com=20/s)")
        out[domain.strip().lower()] = parse_limit(rate, setting)
    return out


def is_slow_down(code: int | None, message: str) -> bool:
    """421 (service closing) or a 451 that names a rate: the server asks us to send slower."""
    return code == 421 or (code == 451 and bool(_SLOW_DOWN.search(message)))


class RateLimiter:
    def __init__(
        self, redis: Redis, queue: str, queue_limit: Limit | None, domain_limits: dict[str, Limit], pause_ms: int
    ) -> None:
        self.redis = redis
        self.keys = QueueKeys(queue)
        self.queue_limit = queue_limit
        self.domain_limits = domain_limits
        self.pause_ms = pause_ms
        self._script = redis.register_script(ACQUIRE)

    def _rate_key(self, name: str) -> str:
        return f"{self.keys.base}:rate:{name}"

    def _pause_key(self, domain: str) -> str:
        return f"{self.keys.base}:rate-pause:{domain}"

    async def acquire(self, recipients: list[str]) -> int:
        """Take a slot for a send to ``recipients``; 0 when taken, else ms to wait first."""
        domains = sorted({r.rpartition("@")[2].lower() for r in recipients})
        pause_keys = [self._pause_key(d) for d in domains]
        keys = list(pause_keys)
        args: list[float] = [int(time.time() * 1000), len(pause_keys)]
        limits = [("queue", self.queue_limit)] + [(f"domain:{d}", self.domain_limits.get(d)) for d in domains]
        for name, limit in limits:
            if limit is not None:
                keys.append(self._rate_key(name))
                args += [limit.interval_ms, limit.tolerance_ms]
        return int(await self._script(keys=keys, args=args))

    async def pause(self, recipients: list[str]) -> None:
        """The server said "slow down": hold every send to these domains for ``pause_ms``."""
        for domain in {r.rpartition("@")[2].lower() for r in recipients}:
            await self.redis.set(self._pause_key(domain), "1", px=self.pause_ms)
