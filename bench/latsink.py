"""A minimal SMTP sink that timestamps every accepted message: the end-to-end latency probe.

smtp-sink cannot say *when* it accepted a given message (its dump files carry coarse-grained
kernel timestamps that can be several ms early), so the latency measurement uses this
instead: a bare asyncio protocol on uvloop, offering PIPELINING like smtp-sink, that on each
final ``.`` takes ``time.time_ns()``, reads the ``X-Bench-T`` header the producer put in
(``time.time_ns()`` just before ``send()``), and keeps the difference.  It also counts reads
(about one per client flush, so round trips) and commands, for the profile.  It prints ``mesg=N\\r``
per message (the smtp-sink ``-c`` format); messages with an ``X-Bench-Tag`` header also get their
acceptance time and latency kept under that tag (bench/delivery_control.py).  On SIGTERM it
writes the counts and latencies (ms) as JSON to ``--out``.  Per message it costs a few tens of
microseconds of its own core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import time

_BENCH_T = re.compile(rb"\r\nX-Bench-T: (\d+)\r\n")
_BENCH_TAG = re.compile(rb"\r\nX-Bench-Tag: ([\w.-]+)\r\n")
EHLO = b"250-latsink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 67108864\r\n"


class Session(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.buf = bytearray()
        self.in_data = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(b"220 latsink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.server.reads += 1
        self.buf += data
        out = []
        while True:
            if self.in_data:
                end = self.buf.find(b"\r\n.\r\n")
                if end < 0:
                    break
                self.server.accepted(bytes(self.buf[: end + 2]))
                del self.buf[: end + 5]
                self.in_data = False
                out.append(b"250 2.0.0 Ok: queued\r\n")
                continue
            eol = self.buf.find(b"\r\n")
            if eol < 0:
                break
            line = bytes(self.buf[:eol])
            del self.buf[: eol + 2]
            verb = line[:4].upper()
            self.server.commands[verb] = self.server.commands.get(verb, 0) + 1
            if verb == b"EHLO":
                out.append(EHLO)
            elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                out.append(b"250 2.0.0 Ok\r\n")
            elif verb == b"DATA":
                out.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                self.in_data = True
                # a message can start in the same read as DATA: "\r\n.\r\n" search needs the leading CRLF
                self.buf[:0] = b"\r\n"
            elif verb == b"QUIT":
                out.append(b"221 2.0.0 Bye\r\n")
                assert self.transport is not None
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            else:
                out.append(b"502 5.5.2 Error: command not recognized\r\n")
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


class Server:
    def __init__(self) -> None:
        self.count = 0
        self.reads = 0  # data_received calls: about one per client write (flush), i.e. per round trip
        self.commands: dict[bytes, int] = {}
        self.latencies_ms: list[float] = []
        # messages carrying an X-Bench-Tag header: tag -> [[accepted at (time_ns), latency ms or None]]
        self.tagged: dict[str, list[list[float | None]]] = {}

    def accepted(self, message: bytes) -> None:
        now = time.time_ns()
        self.count += 1
        head = message[: message.find(b"\r\n\r\n") + 2]
        m = _BENCH_T.search(head)
        lat = None
        if m and m.group(1) != b"0":
            lat = (now - int(m.group(1))) / 1e6
            self.latencies_ms.append(lat)
        t = _BENCH_TAG.search(head)
        if t:
            self.tagged.setdefault(t.group(1).decode(), []).append([now, lat])
        os.write(1, b"mesg=%d\r" % self.count)


async def main(port: int, out: str) -> None:
    server = Server()
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: Session(server), "127.0.0.1", port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), 3600)  # bounded: the bench stops it long before
    except TimeoutError:
        pass
    srv.close()
    with open(out, "w") as fh:  # noqa: ASYNC230 - once, at exit, nothing else runs
        json.dump(
            {
                "messages": server.count,
                "reads": server.reads,
                "commands": {k.decode(errors="replace"): v for k, v in server.commands.items()},
                "latencies_ms": server.latencies_ms,
                "tagged": server.tagged,
            },
            fh,
        )


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(main(a.port, a.out))
