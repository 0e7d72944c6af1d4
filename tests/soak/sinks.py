"""The soak's SMTP server: the project's aiosmtpd ``Sink``, counting per message id and recipient.

It keeps no message bodies (a 100,000-message soak would hold them all), only when each
message id was accepted and how often each permanently rejected recipient was answered 550.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from typing import Any

from aiosmtpd.controller import Controller

from emailqueue.sink import Sink

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*<([^@>]+)@", re.IGNORECASE | re.MULTILINE)


class _Handler:
    def __init__(self, sink: SoakSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        sink = self.sink
        with sink.lock:
            sink.state.rcpt_attempts += 1
            if sink.state.mode == "tempfail":
                sink.tempfail_replies += 1
                return "451 4.3.0 temporary failure, try again later"
            if address in sink.state.reject:
                sink.perm_replies[address] += 1
                return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.sink.latency_s:
            await asyncio.sleep(self.sink.latency_s)  # a real server takes a few ms to queue a message
        data: bytes = envelope.original_content or envelope.content
        match = _MESSAGE_ID.search(data)
        mid = match.group(1).decode() if match else ""
        with self.sink.lock:
            self.sink.accepted[mid].append(time.time())
        return "250 2.0.0 OK: queued"


class SoakSink(Sink):
    """``Sink`` with per-id acceptance times and per-recipient 550 counts."""

    def __init__(self, port: int = 0, latency_s: float = 0.0) -> None:
        super().__init__(port)
        self.latency_s = latency_s
        self.accepted: defaultdict[str, list[float]] = defaultdict(list)
        self.perm_replies: defaultdict[str, int] = defaultdict(int)
        self.tempfail_replies = 0

    def start(self) -> SoakSink:
        self._controller = Controller(
            _Handler(self), hostname=self.hostname, port=self.port, decode_data=False, ready_timeout=10
        )
        self._controller.start()
        return self

    def distinct(self) -> int:
        with self.lock:
            return len(self.accepted)

    def total(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.accepted.values())

    def snapshot(self) -> tuple[dict[str, list[float]], dict[str, int]]:
        with self.lock:
            return {k: list(v) for k, v in self.accepted.items()}, dict(self.perm_replies)
