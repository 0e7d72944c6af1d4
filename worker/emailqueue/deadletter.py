"""Dead letters: list, retry (move back to the stream) and remove entries of ``failed``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from .keys import F_ENC, F_LANE, F_MID, F_PAYLOAD, F_VERSION, QueueKeys
from .scripts import REQUEUE_FAILED, flatten
from .wire import fields_to_str

# Fields carried back into the stream on retry; attempts start again from zero.
_REQUEUE_FIELDS = (F_VERSION, F_PAYLOAD, F_ENC, F_MID)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    failed_id: str  # entry id in the failed stream
    message_id: str
    fields: dict[str, str]

    @property
    def reason(self) -> str:
        return self.fields.get("reason", "")

    @property
    def error(self) -> str:
        return self.fields.get("error", "")

    def summary(self) -> dict[str, str]:
        keep = ("reason", "error", "smtp_code", "attempts", "first_attempt_at", "failed_at")
        out = {"failed_id": self.failed_id, "message_id": self.message_id}
        out.update({k: self.fields.get(k, "") for k in keep})
        return out


class DeadLetters:
    def __init__(self, redis: Redis, queue: str) -> None:
        self.redis = redis
        self.keys = QueueKeys(queue)
        self._requeue = redis.register_script(REQUEUE_FAILED)

    async def all(self, count: int | None = None) -> list[DeadLetter]:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await self.redis.xrange(self.keys.failed, count=count))
        out = []
        for eid, raw in entries:
            fields = fields_to_str(cast(Mapping[bytes | str, bytes | str], raw))
            failed_id = eid.decode()
            out.append(DeadLetter(failed_id, fields.get(F_MID, failed_id), fields))
        return out

    async def find(self, ids: list[str]) -> tuple[list[DeadLetter], list[str]]:
        """Entries matching a failed id or a message id; and the ids that matched nothing."""
        wanted = set(ids)
        found = [d for d in await self.all() if d.failed_id in wanted or d.message_id in wanted]
        matched = {d.failed_id for d in found} | {d.message_id for d in found}
        return found, [i for i in ids if i not in matched]

    async def retry(self, letters: list[DeadLetter]) -> int:
        """Move back to the stream with attempts reset; returns how many moved."""
        moved = 0
        for letter in letters:
            fields = {k: letter.fields[k] for k in _REQUEUE_FIELDS if letter.fields.get(k)}
            result = await self._requeue(
                keys=[self.keys.failed, self.keys.lane_stream(letter.fields.get(F_LANE)), self.keys.stats],
                args=[letter.failed_id, *flatten(fields)],
            )
            moved += result is not None
        return moved

    async def remove(self, letters: list[DeadLetter]) -> int:
        if not letters:
            return 0
        return int(await self.redis.xdel(self.keys.failed, *[d.failed_id for d in letters]))
