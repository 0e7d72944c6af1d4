"""Where `send_many`'s time goes, per email: validation, encoding, packing, the pipelined XADDs.

    python bench/send_many_breakdown.py [--n 20000] [--repeats 5]

20,000 distinct dicts (the bench's payload), best of the repeats, each stage timed over the whole
batch: validation (the models kept, then encoded, packed and sent, stage by stage), and
`send_many`'s own first step, which validates, encodes and packs each email in one go and keeps
only the result.  Validation and that step also with the garbage collector off, to show what
CPython's cyclic GC adds.  "total" = send_many's step + the send.  Starts its own server.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis

from common import email_dict
from emailqueue.localserver import RedisServer
from emailqueue.message import Email
from emailqueue.producer import Mailer
from emailqueue.rawpipe import pack_xadd, xadd_packed
from emailqueue.wire import encode

STREAM = "emailqueue:{default}:stream"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    n = args.n
    many = [email_dict(i) for i in range(n)]
    best: dict[str, float] = {}

    def keep(stage: str, started: float) -> None:
        best[stage] = min(best.get(stage, float("inf")), (time.perf_counter() - started) / n * 1e6)

    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        for _ in range(args.repeats):
            client.flushall()
            t = time.perf_counter()
            models = [Email(**d) for d in many]
            keep("validate", t)
            t = time.perf_counter()
            fields = [encode(m) for m in models]
            keep("encode", t)
            t = time.perf_counter()
            packed = [pack_xadd(STREAM, f) for f in fields]
            keep("pack", t)
            t = time.perf_counter()
            for start in range(0, n, 1000):
                xadd_packed(client, packed[start : start + 1000])
            keep("send", t)
            del models, fields, packed
            gc.collect()
            gc.disable()
            try:
                t = time.perf_counter()
                models = [Email(**d) for d in many]
                keep("validate, gc off", t)
            finally:
                gc.enable()
            del models
            mailer = Mailer(client, "default", cipher=None)
            for gc_on in (True, False):
                if not gc_on:
                    gc.disable()
                try:
                    t = time.perf_counter()
                    prepared = [mailer._prepare(d) for d in many]  # what send_many does first
                    keep("prepare (send_many)" + ("" if gc_on else ", gc off"), t)
                finally:
                    gc.enable()
                del prepared
        client.close()
    total = best["prepare (send_many)"] + best["send"]
    for stage, us in best.items():
        print(f"{stage:>18}: {us:6.2f} µs per email")
    print(f"{'total':>18}: {total:6.2f} µs per email = {1e6 / total:,.0f} emails/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
