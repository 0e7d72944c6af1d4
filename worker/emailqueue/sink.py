"""A local SMTP sink (aiosmtpd) that records what it accepts and can be told to misbehave.

Used by ``emailqueue demo``, ``emailqueue sink`` (in-cluster e2e), and the tests.  Built-in
rules by recipient local part, so a demo can show every outcome:

- ``reject...@``   -> ``550 5.1.1 mailbox unavailable`` (permanent)
- ``greylist...@`` -> ``451 4.7.1 greylisted`` on the first attempt, accepted afterwards

Tests steer the rest: ``mode`` ("ok", "tempfail" = 451 for every RCPT, "permfail" = 554 on
DATA), ``delay_s`` (slow DATA), ``stop()`` / ``start()`` for an outage.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*<([^@>]+)@", re.IGNORECASE | re.MULTILINE)
_SUBJECT = re.compile(rb"^Subject:\s*(.*)$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Delivery:
    message_id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    data: bytes
    at: float


@dataclass
class SinkState:
    mode: str = "ok"
    delay_s: float = 0.0
    reject: set[str] = field(default_factory=set)  # recipients answered 550
    deliveries: list[Delivery] = field(default_factory=list)
    greylisted: set[str] = field(default_factory=set)
    rcpt_attempts: int = 0
    slow_down: int = 0  # answer this many RCPTs with 421 "slow down" first


class _Handler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.sink.pipelining:  # aiosmtpd reads commands in order from a buffer: pipelining is safe
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        st = self.sink.state
        local = address.split("@", 1)[0].lower()
        with self.sink.lock:
            st.rcpt_attempts += 1
            if st.mode == "tempfail":
                return "451 4.3.0 temporary failure, try again later"
            if st.slow_down > 0:
                st.slow_down -= 1
                return "421 4.7.0 too many messages, slow down"
            if address in st.reject or local.startswith("reject"):
                return "550 5.1.1 mailbox unavailable"
            if local.startswith("greylist") and address not in st.greylisted:
                st.greylisted.add(address)
                return "451 4.7.1 greylisted, come back later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        st = self.sink.state
        if st.delay_s:
            await asyncio.sleep(st.delay_s)
        if st.mode == "permfail":
            return "554 5.6.0 message content rejected"
        data: bytes = envelope.original_content or envelope.content
        mid = _MESSAGE_ID.search(data)
        subject = _SUBJECT.search(data)
        delivery = Delivery(
            message_id=mid.group(1).decode() if mid else "",
            sender=envelope.mail_from,
            recipients=tuple(envelope.rcpt_tos),
            subject=subject.group(1).decode(errors="replace").strip() if subject else "",
            data=data,
            at=time.time(),
        )
        with self.sink.lock:
            st.deliveries.append(delivery)
        if self.sink.on_delivery is not None:
            self.sink.on_delivery(delivery)
        return "250 2.0.0 OK: queued"


class Sink:
    """An SMTP server on 127.0.0.1 in a background thread."""

    def __init__(
        self, port: int = 0, *, hostname: str = "127.0.0.1", on_delivery: Any = None, pipelining: bool = True
    ) -> None:
        from .localserver import free_port

        self.pipelining = pipelining
        self.hostname = hostname
        self.port = port or free_port()
        self.state = SinkState()
        self.lock = threading.Lock()
        self.on_delivery = on_delivery
        self._controller: Controller | None = None

    @property
    def dsn(self) -> str:
        return f"smtp://{self.hostname}:{self.port}?auto_tls=false"

    def start(self) -> Sink:
        self._controller = Controller(
            _Handler(self),
            hostname=self.hostname,
            port=self.port,
            decode_data=False,
            data_size_limit=64 * 1024 * 1024,
            ready_timeout=10,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    # ---- what tests count --------------------------------------------------------------

    def deliveries(self) -> list[Delivery]:
        with self.lock:
            return list(self.state.deliveries)

    def delivered_ids(self) -> list[str]:
        return [d.message_id for d in self.deliveries()]

    def count(self) -> int:
        with self.lock:
            return len(self.state.deliveries)

    def wait_for(self, n: int, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= n:
                return True
            time.sleep(0.02)
        return self.count() >= n

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
