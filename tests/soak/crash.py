"""What a Redis crash (kill -9) right after enqueue loses, under ``appendfsync everysec`` and ``always``.

Producer threads call ``send()`` as fast as they can and record every id whose ``send()``
returned (acknowledged).  Redis is SIGKILLed mid-stream, restarted from its AOF, and every
acknowledged id is looked up in the stream.  Prints, per policy: acknowledged sends, how
many of them are gone, and the enqueue rate.

    python -m tests.soak crash [--rounds 5] [--seconds 2]

A kill -9 of the *process* leaves what Redis already wrote to the AOF file in the kernel's
page cache, which survives; what ``everysec`` risks is a crash of the *machine* (power, kernel,
a node that disappears) before the next fsync.  Both are reported in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass

import redis

from emailqueue.errors import EmailQueueError
from emailqueue.keys import QueueKeys
from emailqueue.localserver import RedisServer
from emailqueue.producer import Mailer

K = QueueKeys("crash")


@dataclass
class Round:
    policy: str
    acked: int
    lost: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.acked / self.seconds if self.seconds else 0.0


def one_round(policy: str, seconds: float, threads: int, seed: int) -> Round:
    data = tempfile.mkdtemp(prefix="emailqueue-crash-")
    server = RedisServer(appendfsync=policy, data_dir=data).start()
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def produce(n: int) -> None:
        mailer = Mailer.from_url(server.url, "crash")
        i = 0
        while not stop.is_set():
            mid = f"c{n}-{i}"
            try:
                mailer.send({"id": mid, "from": "a@example.com", "to": "b@example.com", "text": "x" * 200})
            except EmailQueueError:
                break  # Redis is gone
            with lock:
                acked.append(mid)
            i += 1
        mailer.close()

    workers = [threading.Thread(target=produce, args=(n,)) for n in range(threads)]
    started = time.monotonic()
    for t in workers:
        t.start()
    time.sleep(seconds * random.Random(seed).uniform(0.75, 1.25))
    server.kill()  # SIGKILL mid-stream
    elapsed = time.monotonic() - started
    stop.set()
    for t in workers:
        t.join()
    server.start(timeout=60)
    client = redis.Redis.from_url(server.url)
    present = {json.loads(f[b"payload"])["id"] for _, f in client.xrange(K.stream)}
    client.close()
    server.kill()
    shutil.rmtree(data, ignore_errors=True)
    return Round(policy, len(acked), sum(1 for m in acked if m not in present), elapsed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak crash", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="enqueue this long before the kill -9")
    parser.add_argument("--threads", type=int, default=4, help="producer threads")
    ns = parser.parse_args(argv)
    rows: list[Round] = []
    for r in range(ns.rounds):
        for policy in ("everysec", "always"):
            rows.append(one_round(policy, ns.seconds, ns.threads, seed=r))
            last = rows[-1]
            print(f"round {r + 1} {policy:<8}: {last.acked} acknowledged, {last.lost} lost, {last.rate:.0f} sends/s")
    print()
    print(f"{'appendfsync':<12} {'acknowledged':>12} {'lost at kill -9':>16} {'send() rate':>12}")
    for policy in ("everysec", "always"):
        mine = [x for x in rows if x.policy == policy]
        acked, lost = sum(x.acked for x in mine), sum(x.lost for x in mine)
        rate = sum(x.rate for x in mine) / len(mine)
        print(f"{policy:<12} {acked:>12} {lost:>16} {rate:>10.0f}/s")
    return 1 if any(x.lost for x in rows if x.policy == "always") else 0
