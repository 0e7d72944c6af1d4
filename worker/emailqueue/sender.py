"""SMTP delivery over a pool of persistent aiosmtplib connections.

One connection per delivery in flight (the pool holds at most ``size``), reused for the
next message: connect + EHLO + STARTTLS + AUTH are paid once per connection, not once per
email.  A connection idle for longer than ``IDLE_CHECK_S`` is checked with NOOP before use,
so a server that closed it quietly costs a reconnect, not a failed attempt.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Protocol

import aiosmtplib
from aiosmtplib.response import SMTPResponse

from .dsn import SmtpTarget
from .errors import TransientDeliveryError
from .mime import Envelope
from .pipelining import PipelinedSession
from .retry import classify

log = logging.getLogger("emailqueue.sender")

IDLE_CHECK_S = 10.0
MAX_IDLE_S = 240.0  # servers drop idle sessions after ~5 min (RFC 5321 4.5.3.2.7)


@dataclass(frozen=True, slots=True)
class SendResult:
    reply: str
    refused: dict[str, str]  # recipients refused while others were accepted


class Session(Protocol):
    """What the pool needs of a connection: aiosmtplib's SMTP, or a PipelinedSession."""

    @property
    def is_connected(self) -> bool: ...

    async def noop(self) -> object: ...

    async def sendmail(
        self, sender: str, recipients: list[str], data: bytes
    ) -> tuple[dict[str, SMTPResponse], str]: ...

    async def quit(self) -> object: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class _Conn:
    smtp: Session
    last_used: float


class SmtpPool:
    """Up to ``size`` pooled connections to one SMTP target."""

    def __init__(self, target: SmtpTarget, size: int, timeout: float = 30.0, local_hostname: str | None = None) -> None:
        self.target = target
        self.size = size
        self.timeout = timeout
        # resolved once: aiosmtplib would otherwise run getfqdn() in a thread per connection
        self.local_hostname = target.local_domain or local_hostname or socket.getfqdn()
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(size)
        self._tls_context: ssl.SSLContext | None = None
        if not target.verify_peer:
            log.warning("MAILER_DSN has verify_peer=0: the SMTP server's TLS certificate is NOT verified")

    def _context(self) -> ssl.SSLContext:
        if self._tls_context is None:
            ctx = ssl.create_default_context(cafile=self.target.ca_file)
            if not self.target.verify_peer:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._tls_context = ctx
        return self._tls_context

    async def _connect(self) -> Session:
        t = self.target
        needs_tls = t.tls in ("implicit", "starttls", "auto")
        smtp = aiosmtplib.SMTP(
            hostname=t.host,
            port=t.port,
            timeout=self.timeout,
            use_tls=t.tls == "implicit",
            start_tls={"starttls": True, "auto": None, "none": False, "implicit": False}[t.tls],
            tls_context=self._context() if needs_tls else None,
            local_hostname=self.local_hostname,
        )
        await smtp.connect()
        if smtp.is_ehlo_or_helo_needed:  # learn the extensions now (PIPELINING, SIZE)
            await smtp.ehlo()
        if t.username and t.password is not None:
            encrypted = smtp.transport is not None and smtp.transport.get_extra_info("sslcontext") is not None
            if not encrypted and not t.allow_plain_auth:
                smtp.close()
                raise TransientDeliveryError(
                    "SMTP server offers no TLS and the DSN has credentials: refusing to send the password in "
                    "clear text (add allow_plain_auth=true to MAILER_DSN to allow it)"
                )
            await smtp.login(t.username, t.password)
        if t.pipelining and smtp.supports_extension("pipelining"):
            return PipelinedSession(smtp, self.timeout)
        return smtp

    async def _acquire(self) -> _Conn:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            idle = now - conn.last_used
            if not conn.smtp.is_connected or idle > MAX_IDLE_S:
                self._discard(conn)
                continue
            if idle > IDLE_CHECK_S:
                try:
                    await conn.smtp.noop()
                except (aiosmtplib.SMTPException, OSError):
                    self._discard(conn)
                    continue
            return conn
        return _Conn(await self._connect(), now)

    def _discard(self, conn: _Conn) -> None:
        conn.smtp.close()

    async def send(self, envelope: Envelope) -> SendResult:
        """Deliver one message; raises ``TransientDeliveryError`` or ``PermanentDeliveryError``."""
        if self.target.null:
            return SendResult(reply="250 discarded (null://)", refused={})
        async with self._slots:
            conn: _Conn | None = None
            try:
                conn = await self._acquire()
                refused, reply = await conn.smtp.sendmail(envelope.sender, envelope.recipients, envelope.data)
            except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
                if conn is not None and not _connection_still_good(exc, conn.smtp):
                    self._discard(conn)
                    conn = None
                raise classify(exc) from None
            finally:
                if conn is not None:
                    conn.last_used = time.monotonic()
                    self._idle.append(conn)
            return SendResult(reply=reply, refused={r: f"{resp.code} {resp.message}" for r, resp in refused.items()})

    async def close(self) -> None:
        while self._idle:
            conn = self._idle.pop()
            try:
                await asyncio.wait_for(conn.smtp.quit(), timeout=2)
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                conn.smtp.close()


def _connection_still_good(exc: BaseException, smtp: Session) -> bool:
    """A reply about this message (RCPT/DATA refused) leaves the session usable."""
    if not smtp.is_connected:
        return False
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(r.code != 421 for r in exc.recipients)
    return isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code != 421
