"""aiosmtpd sink for the benchmark: accepts everything, prints ``mesg=N\\r`` after each DATA.

The slow, realistic sink (a pure-Python asyncio SMTP server, one process).  ``--delay S``
waits S seconds before answering DATA, like a real relay that does work per message.
Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import threading

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.count = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.count += 1
        os.write(1, b"mesg=%d\r" % self.count)
        return "250 2.0.0 Ok: queued"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--delay", type=float, default=0.0)
    a = p.parse_args()
    ctl = Controller(Handler(a.delay), hostname="127.0.0.1", port=a.port, decode_data=False, ready_timeout=10)
    ctl.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait(3600)  # bounded: the bench stops it long before
    ctl.stop()


if __name__ == "__main__":
    main()
