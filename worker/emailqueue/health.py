"""A tiny HTTP server for /healthz, /readyz and /metrics (no web framework needed)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("emailqueue.health")

Check = Callable[[], Awaitable[bool]]

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class HealthServer:
    """``/healthz``: the worker loop is alive; ``/readyz``: Redis answers; ``/metrics``."""

    def __init__(self, host: str, port: int, alive: Check, ready: Check, metrics: Callable[[], bytes]) -> None:
        self.host, self.port = host, port
        self._alive, self._ready, self._metrics = alive, ready, metrics
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            method, _, rest = request.partition(b" ")
            path = rest.split(b" ", 1)[0].split(b"?", 1)[0].decode("latin-1")
            if method not in (b"GET", b"HEAD"):
                status, body, ctype = 405, b"method not allowed\n", "text/plain"
            elif path == "/healthz":
                ok = await self._alive()
                status, body, ctype = (200 if ok else 503), (b"ok\n" if ok else b"stalled\n"), "text/plain"
            elif path == "/readyz":
                ok = await self._ready()
                status, body, ctype = (200 if ok else 503), (b"ready\n" if ok else b"redis unreachable\n"), "text/plain"
            elif path == "/metrics":
                status, body, ctype = 200, self._metrics(), "text/plain; version=0.0.4; charset=utf-8"
            else:
                status, body, ctype = 404, b"not found\n", "text/plain"
            head = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            writer.write(head if method == b"HEAD" else head + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
