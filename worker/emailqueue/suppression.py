"""The suppression list: recipients that hard-bounced (5xx at RCPT) and get no more mail."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis

from .keys import QueueKeys


class SuppressionList:
    def __init__(self, redis: Redis, queue: str) -> None:
        self.redis = redis
        self.key = QueueKeys(queue).suppressed

    async def all(self) -> dict[str, dict[str, Any]]:
        raw = cast(dict[bytes, bytes], await self.redis.hgetall(self.key))
        out: dict[str, dict[str, Any]] = {}
        for address, record in sorted(raw.items()):
            try:
                out[address.decode()] = json.loads(record)
            except ValueError:
                out[address.decode()] = {"reason": record.decode(errors="replace")}
        return out

    async def add(self, addresses: list[str], reason: str = "added by hand") -> int:
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        mapping = {a: json.dumps({"reason": reason, "code": None, "at": at, "message_id": None}) for a in addresses}
        return int(await self.redis.hset(self.key, mapping=mapping))  # type: ignore[arg-type]

    async def remove(self, addresses: list[str]) -> int:
        return int(await self.redis.hdel(self.key, *addresses)) if addresses else 0

    async def clear(self) -> int:
        count = int(await self.redis.hlen(self.key))
        await self.redis.delete(self.key)
        return count
