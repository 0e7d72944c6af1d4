"""One SMTP mail transaction with PIPELINING (RFC 2920): MAIL, RCPT..., DATA in one write.

aiosmtplib sets up the session (connect, EHLO, STARTTLS, AUTH) and handles servers
without PIPELINING.  It cannot read pipelined replies: its protocol parses one reply per
read and documents that replies to commands written without awaiting are lost.  So once a
session is up on a server that offers PIPELINING, the transport is handed to
``ReplyReader``, which queues every reply in order, and a transaction costs two round trips
(envelope + DATA, then the message) instead of four or more.  Errors are raised as
aiosmtplib's own exception types, so classification is the same on both paths.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque

import aiosmtplib
from aiosmtplib.response import SMTPResponse

_LEADING_DOT = re.compile(rb"(?m)^\.")
MAX_REPLY = 64 * 1024


class ReplyReader(asyncio.Protocol):
    """Parses every SMTP reply that arrives, in order; ``read()`` returns the next one."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._replies: deque[SMTPResponse] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # pragma: no cover - set by handover
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer.extend(data)
        if len(self._buffer) > MAX_REPLY:
            self._fail(aiosmtplib.SMTPResponseException(-1, "reply too long"))
            return
        while True:
            reply = self._parse_one()
            if reply is None:
                break
            self._replies.append(reply)
        self._wake()

    def _parse_one(self) -> SMTPResponse | None:
        offset, lines = 0, []
        while True:
            end = self._buffer.find(b"\n", offset)
            if end == -1:
                return None
            line = bytes(self._buffer[offset : end + 1])
            offset = end + 1
            lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                try:
                    code = int(line[:3])
                except ValueError:
                    code = -1
                del self._buffer[:offset]
                return SMTPResponse(code, b"\n".join(lines).decode("utf-8", "surrogateescape"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(aiosmtplib.SMTPServerDisconnected("Connection lost"))

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return False

    def _fail(self, exc: Exception) -> None:
        self._error = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self, timeout: float) -> SMTPResponse:  # noqa: ASYNC109 - one deadline per reply, like aiosmtplib
        if self._replies:
            return self._replies.popleft()
        loop = asyncio.get_running_loop()
        timer = loop.call_later(timeout, self._time_out)  # cheaper than asyncio.wait_for per reply
        try:
            while not self._replies:
                if self._error is not None:
                    raise self._error
                self._waiter = loop.create_future()
                await self._waiter
        finally:
            timer.cancel()
        return self._replies.popleft()

    def _time_out(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response"))

    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        self.transport.write(data)


class PipelinedSession:
    """An established SMTP session whose transactions are pipelined."""

    def __init__(self, smtp: aiosmtplib.SMTP, timeout: float) -> None:
        self.use_size = smtp.supports_extension("size")
        transport = smtp.transport
        if transport is None:
            raise aiosmtplib.SMTPServerDisconnected("not connected")
        self.timeout = timeout
        self.reader = ReplyReader()
        self.reader.transport = transport  # type: ignore[assignment]
        transport.set_protocol(self.reader)
        self._smtp = smtp  # kept so nothing closes the transport under us

    @property
    def is_connected(self) -> bool:
        return self.reader.transport is not None and not self.reader.transport.is_closing()

    async def sendmail(self, sender: str, recipients: list[str], data: bytes) -> tuple[dict[str, SMTPResponse], str]:
        """Like ``aiosmtplib.SMTP.sendmail``: returns (refused recipients, final reply)."""
        for addr in (sender, *recipients):
            if any(c in addr for c in "\r\n<>"):
                raise ValueError(f"address {addr!r} contains a prohibited character")
        envelope = b"".join(
            [f"MAIL FROM:<{sender}>{f' SIZE={len(data)}' if self.use_size else ''}\r\n".encode()]
            + [f"RCPT TO:<{r}>\r\n".encode() for r in recipients]
            + [b"DATA\r\n"]
        )
        self.reader.write(envelope)
        mail = await self.reader.read(self.timeout)
        refused: dict[str, SMTPResponse] = {}
        for rcpt in recipients:
            reply = await self.reader.read(self.timeout)
            if reply.code not in (250, 251):
                refused[rcpt] = reply
        data_reply = await self.reader.read(self.timeout)
        if mail.code != 250:
            if data_reply.code == 354:
                await self._abort_data()
            await self._rset()
            raise aiosmtplib.SMTPSenderRefused(mail.code, mail.message, sender)
        if len(refused) == len(recipients):
            if data_reply.code == 354:  # a server that should have refused DATA
                await self._abort_data()
            await self._rset()
            raise aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(r.code, r.message, addr) for addr, r in refused.items()]
            )
        if data_reply.code != 354:
            await self._rset()
            raise aiosmtplib.SMTPDataError(data_reply.code, data_reply.message)
        body = _LEADING_DOT.sub(b"..", data)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.reader.write(body + b".\r\n")
        final = await self.reader.read(self.timeout)
        if final.code != 250:
            raise aiosmtplib.SMTPDataError(final.code, final.message)
        return refused, final.message

    async def _abort_data(self) -> None:
        self.reader.write(b".\r\n")
        await self.reader.read(self.timeout)

    async def _rset(self) -> None:
        try:
            self.reader.write(b"RSET\r\n")
            await self.reader.read(self.timeout)
        except (aiosmtplib.SMTPException, OSError):
            pass

    async def noop(self) -> None:
        self.reader.write(b"NOOP\r\n")
        reply = await self.reader.read(self.timeout)
        if reply.code != 250:
            raise aiosmtplib.SMTPResponseException(reply.code, reply.message)

    async def quit(self) -> None:
        try:
            self.reader.write(b"QUIT\r\n")
            await self.reader.read(self.timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.reader.transport is not None:
            self.reader.transport.close()
