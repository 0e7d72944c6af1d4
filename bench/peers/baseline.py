"""The "what Python can do" baseline: a bare asyncio loop, no framework.

XREADGROUP a batch of up to C entries -> build each with ``email.message`` -> send each over
one of C reused aiosmtplib connections (concurrently) -> XACK + XDEL the batch in one round
trip.  No validation, no retries, no idempotency, no metrics.  uvloop, like the worker.

``python baseline.py enqueue URL N`` fills the stream; ``python baseline.py run URL PORT C``
consumes until SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import aiosmtplib
import redis.asyncio as aredis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mailpayload import build_std, email_dict, envelope

STREAM, GROUP = "baseline:stream", "g"


def enqueue(url: str, n: int) -> None:
    import redis

    r = redis.Redis.from_url(url)
    for start in range(0, n, 1000):
        pipe = r.pipeline(transaction=False)
        for i in range(start, min(n, start + 1000)):
            pipe.xadd(STREAM, {"payload": json.dumps(email_dict(i))})
        pipe.execute()
    r.close()


async def run(url: str, port: int, conns: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    r = aredis.Redis.from_url(url)
    try:
        await r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except aredis.ResponseError:
        pass
    pool = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) for _ in range(conns)]
    await asyncio.gather(*(s.connect() for s in pool))

    async def one(smtp: aiosmtplib.SMTP, raw: bytes) -> None:
        d = json.loads(raw)
        sender, rcpts = envelope(d)
        await smtp.sendmail(sender, rcpts, build_std(d).as_bytes())

    while not stop.is_set():
        reply = await r.xreadgroup(GROUP, "c1", {STREAM: ">"}, count=conns, block=500)
        if not reply:
            continue
        entries = reply[0][1]
        await asyncio.gather(*(one(pool[k], fields[b"payload"]) for k, (_, fields) in enumerate(entries)))
        ids = [eid for eid, _ in entries]
        pipe = r.pipeline(transaction=False)
        pipe.xack(STREAM, GROUP, *ids)
        pipe.xdel(STREAM, *ids)
        await pipe.execute()
    for s in pool:
        s.close()
    await r.aclose()


if __name__ == "__main__":
    if sys.argv[1] == "enqueue":
        enqueue(sys.argv[2], int(sys.argv[3]))
    else:
        try:
            import uvloop

            runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        except ImportError:
            runner = asyncio.Runner()
        with runner:
            runner.run(run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
