"""Where a worker's time goes: py-spy profile of `emailqueue worker` draining to smtp-sink, plus
per-stage micro-benchmarks and per-message round-trip counts.

    python bench/profile_worker.py            # N=20000
    python bench/profile_worker.py --n 5000

Writes bench/results/profile.json and bench/results/profile-<variant>.raw (py-spy's collapsed
stacks: load them in speedscope or flamegraph.pl) and prints a summary (docs/performance.md's
profile section is written from it by hand).

1. py-spy (250 Hz; it pauses the process for each sample, so stacks are consistent) records one
   worker at the default concurrency draining N emails to smtp-sink; samples are attributed to
   the innermost library frame (self time by library) and to the emailqueue stage that contains
   them (inclusive).
2. Redis round trips per message: INFO commandstats before/after the drain.
3. SMTP round trips per message: a drain to bench/latsink.py, which counts the client's writes
   (one read on the server per client flush) and commands.
4. Micro-benchmarks, in this process: decode (json + pydantic), the MIME writer vs the stdlib
   `email` package, one EVALSHA vs a pipelined batch, one SMTP transaction per session type.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import EMAILQUEUE, PY, QUEUE, RESULTS, LatSink, SmtpSink, email_dict, smtp_sink_missing_message

PYSPY = str(Path(PY).with_name("py-spy"))

# innermost matching frame decides where a sample's CPU went (self time by library)
LIBRARY_RULES: list[tuple[str, str]] = [
    ("(pydantic", "pydantic (validation in decode)"),
    ("(json/", "json"),
    ("(email/", "stdlib email package"),
    ("(emailqueue/mime.py", "MIME writer (emailqueue.mime)"),
    ("(aiosmtplib/", "aiosmtplib"),
    ("(emailqueue/pipelining.py", "SMTP pipelining (emailqueue.pipelining)"),
    ("(redis/", "redis-py"),
    ("(prometheus_client/", "prometheus_client (metrics)"),
    ("(logging/", "logging"),
    ("Runner.run (asyncio/runners.py", "uvloop's C loop: epoll, socket reads/writes, C callbacks"),
    ("(asyncio/", "asyncio Python code (tasks, futures, timeouts, streams)"),
    ("(emailqueue/", "emailqueue own code (worker, settle, wire, sender)"),
]

# emailqueue stage a sample belongs to (innermost matching frame wins); py-spy frames read
# "Qualified.name (emailqueue/file.py:LINE)"
STAGES: list[tuple[str, str]] = [
    ("decode (emailqueue/wire.py", "decode (json + pydantic)"),
    ("fields_to_str (emailqueue/wire.py", "decode (json + pydantic)"),
    ("Worker._mark_duplicates (", "duplicate check (EXISTS pipeline)"),
    ("build (emailqueue/mime.py", "MIME build"),
    ("SmtpPool.send (", "SMTP send (pool + client)"),
    ("PipelinedSession.", "SMTP send (pool + client)"),
    ("Settler.", "settlement (batched EVALSHA)"),
    ("Worker._settle (", "settlement (batched EVALSHA)"),
    ("Worker._read_loop (", "read loop (XREADGROUP, dispatch)"),
    ("Worker._dispatch (", "read loop (XREADGROUP, dispatch)"),
    ("Worker._task_done (", "task bookkeeping"),
    ("Worker._handle (", "per-message handler (other: metrics, logging, task)"),
    ("Worker._promote_loop (", "background loops"),
    ("Worker._housekeeping_loop (", "background loops"),
    ("Worker._reclaim_loop (", "background loops"),
    ("ReplyReader.", "SMTP send (pool + client)"),
    ("SMTPProtocol.", "SMTP send (pool + client)"),
]
# a Redis call outside every stage above (the read loop's XREADGROUP is inside one)
REDIS_FALLBACK = ("(redis/", "Redis client, outside the stages above")


def parse_raw(path: Path) -> tuple[Counter[str], Counter[str], int]:
    libs: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if any("_find_and_load" in f for f in frames):
            continue  # imports at start-up
        if frames[-1].startswith("_worker (concurrent/futures/thread.py"):
            continue  # uvloop's getaddrinfo thread pool, parked on its queue (py-spy counts it as active)
        total += n
        lib = "other (interpreter, C extensions, GC)"
        for frame in reversed(frames):
            hit = next((label for pat, label in LIBRARY_RULES if pat in frame), None)
            if hit:
                lib = hit
                break
        libs[lib] += n
        stage = "event loop / callbacks outside the stages"
        for frame in reversed(frames):
            hit = next((label for pat, label in STAGES if pat in frame), None)
            if hit:
                stage = hit
                break
        else:
            if any(REDIS_FALLBACK[0] in f for f in frames):
                stage = REDIS_FALLBACK[1]
        stages[stage] += n
    return libs, stages, total


def commandstats(r: Any) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in r.info("commandstats").items()}


def worker_env(url: str, dsn: str) -> dict[str, str]:
    return {
        **os.environ,
        "EMAILQUEUE_REDIS_URL": url,
        "EMAILQUEUE_QUEUE": QUEUE,
        "MAILER_DSN": dsn,
        "MAILER_FROM_EMAIL": "shop@example.com",
        "EMAILQUEUE_METRICS_PORT": "0",
    }


def prefill(url: str, n: int) -> None:
    from emailqueue.producer import Mailer

    m = Mailer.from_url(url, QUEUE)
    for start in range(0, n, 20000):
        m.send_many([email_dict(i) for i in range(start, min(n, start + 20000))])
    m.close()


def profile_drain(url: str, r: Any, sink: SmtpSink, *, n: int, variant: str, dsn: str, conc: int) -> dict[str, Any]:
    r.flushall()
    prefill(url, n)
    before = commandstats(r)
    raw = RESULTS / f"profile-{variant}.raw"
    sink.reset()
    t0 = time.perf_counter()
    cmd = [PYSPY, "record", "--rate", "250", "--format", "raw", "-o", str(raw), "--"]
    cmd += [EMAILQUEUE, "worker", "--concurrency", str(conc), "--limit", str(n)]
    subprocess.run(cmd, env=worker_env(url, dsn), capture_output=True, timeout=300, check=False)
    wall = time.perf_counter() - t0
    count, first, last = sink.window()
    after = commandstats(r)
    rate = (count - 1) / (last - first) if first and last and last > first else float("nan")
    libs, stages, total = parse_raw(raw)
    per_msg = {
        k: round((after.get(k, 0) - before.get(k, 0)) / max(count, 1), 3)
        for k in sorted(set(after) | set(before))
        if after.get(k, 0) - before.get(k, 0) > 0 and k not in ("info",)
    }
    return {
        "variant": variant,
        "dsn": dsn,
        "concurrency": conc,
        "delivered": count,
        "rate_under_profiler": rate,
        "wall_s": wall,
        "samples": total,
        "self_by_library_pct": {k: round(100 * v / total, 1) for k, v in libs.most_common()},
        "inclusive_by_stage_pct": {k: round(100 * v / total, 1) for k, v in stages.most_common()},
        "redis_calls_per_message": per_msg,
    }


def smtp_round_trips(url: str, r: Any, *, n: int, variant: str, conc: int, workdir: Path, extra: str) -> dict[str, Any]:
    r.flushall()
    prefill(url, n)
    sink = LatSink(workdir / f"rt-{variant}.json").start()
    sink.reset()
    p = subprocess.Popen(
        [EMAILQUEUE, "worker", "--concurrency", str(conc), "--limit", str(n)],
        env=worker_env(url, f"smtp://127.0.0.1:{sink.port}{extra}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        p.wait(120)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    sink.stop()
    st = sink.stats()
    msgs = max(st.get("messages", 0), 1)
    return {
        "variant": variant,
        "messages": st.get("messages", 0),
        "client_writes_per_message": round(st.get("reads", 0) / msgs, 2),
        "commands_per_message": {k: round(v / msgs, 3) for k, v in sorted(st.get("commands", {}).items())},
    }


def micro(url: str, smtp_port: int) -> dict[str, Any]:
    """Per-message CPU of each stage, in µs (best of 5 rounds)."""
    from emailqueue.message import Email
    from emailqueue.mime import build
    from emailqueue.wire import decode, encode, fields_to_str

    out: dict[str, Any] = {}
    e = Email(**email_dict(1))
    fields = encode(e)
    raw = {k.encode(): v.encode() for k, v in fields.items()}
    payload = fields["payload"]

    def best(fn: Any, n: int = 2000) -> float:
        fn()
        times = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            times.append((time.perf_counter() - t) / n * 1e6)
        return round(min(times), 1)

    out["fields_to_str + decode (json.loads + Email.model_validate)"] = best(lambda: decode(fields_to_str(raw), "1-0"))
    out["json.loads(payload)"] = best(lambda: json.loads(payload))
    data = json.loads(payload)
    out["Email.model_validate(dict)"] = best(lambda: Email.model_validate(data))
    out["Email.model_validate_json(payload)"] = best(lambda: Email.model_validate_json(payload))
    out["mime.build (direct writer)"] = best(lambda: build(e, None))
    try:
        from emailqueue.mime import build_stdlib

        out["mime.build_stdlib (email package, policy SMTP)"] = best(lambda: build_stdlib(e, e.sender), 300)
    except ImportError:
        pass
    sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
    from mailpayload import build_std

    d = email_dict(1)
    out["peers' EmailMessage(policy=SMTP) + as_bytes()"] = best(lambda: build_std(d).as_bytes(), 300)

    async def rt() -> dict[str, float]:
        import aiosmtplib
        import redis.asyncio as aredis

        from emailqueue.scripts import COMPLETE

        res: dict[str, float] = {}
        ar = aredis.Redis.from_url(url)
        sha = await ar.script_load(COMPLETE)
        await ar.xgroup_create("micro:s", "workers", id="0", mkstream=True)
        n = 2000
        t = time.perf_counter()
        for i in range(n):
            await ar.evalsha(sha, 3, "micro:s", "micro:stats", f"micro:m{i}", f"{i}-0", 60, "1")
        res["EVALSHA complete, one per round trip (µs per message)"] = round((time.perf_counter() - t) / n * 1e6, 1)
        t = time.perf_counter()
        for start in range(0, n, 16):
            pipe = ar.pipeline(transaction=False)
            for i in range(start, start + 16):
                pipe.evalsha(sha, 3, "micro:s", "micro:stats", f"micro:m{i}", f"{i}-0", 60, "1")
            await pipe.execute()
        res["EVALSHA complete, pipelined 16 per round trip (µs per message)"] = round(
            (time.perf_counter() - t) / n * 1e6, 1
        )
        t = time.perf_counter()
        for _ in range(n):
            await ar.ping()
        res["PING round trip, redis-py asyncio (µs)"] = round((time.perf_counter() - t) / n * 1e6, 1)
        await ar.flushall()
        await ar.aclose()

        data_bytes = build(e, None).data
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, start_tls=False)
        await smtp.connect()
        m = 1000
        t = time.perf_counter()
        for _ in range(m):
            await smtp.sendmail("shop@example.com", ["customer1@example.net"], data_bytes)
        res["aiosmtplib sendmail, one connection, sequential (µs per message)"] = round(
            (time.perf_counter() - t) / m * 1e6, 1
        )
        try:
            from emailqueue.pipelining import PipelinedSession

            sess = PipelinedSession(smtp, 30.0)
            t = time.perf_counter()
            for _ in range(m):
                await sess.sendmail("shop@example.com", ["customer1@example.net"], data_bytes)
            res["emailqueue PipelinedSession sendmail, sequential (µs per message)"] = round(
                (time.perf_counter() - t) / m * 1e6, 1
            )
            sess.close()
        except ImportError:
            smtp.close()
        return res

    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        out.update(runner.run(rt()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    if not SmtpSink.available():
        print(smtp_sink_missing_message(), file=sys.stderr)
        return 2
    if not os.access(PYSPY, os.X_OK):
        print("py-spy is not installed in this venv: pip install py-spy", file=sys.stderr)
        return 2
    import redis

    from emailqueue.dsn import parse_dsn
    from emailqueue.localserver import RedisServer

    RESULTS.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="eqb-prof-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    server = RedisServer(data_dir=str(workdir / "redis")).start()
    sink = SmtpSink().start()
    r = redis.Redis.from_url(server.url)
    has_pipelining = hasattr(parse_dsn("smtp://h:25"), "pipelining")
    variants = [("default", "")]
    if has_pipelining:
        variants.append(("no-pipelining", "?pipelining=false"))
    out: dict[str, Any] = {"n": args.n, "concurrency": args.concurrency, "git": _git(), "profiles": [], "smtp": []}
    try:
        for variant, extra in variants:
            print(f"profiling worker ({variant}) draining {args.n:,} to smtp-sink ...", flush=True)
            res = profile_drain(
                server.url, r, sink, n=args.n, variant=variant, dsn=sink.dsn + extra, conc=args.concurrency
            )
            out["profiles"].append(res)
            print(json.dumps(res, indent=1), flush=True)
            out["smtp"].append(
                smtp_round_trips(
                    server.url, r, n=2000, variant=variant, conc=args.concurrency, workdir=workdir, extra=extra
                )
            )
            print(json.dumps(out["smtp"][-1], indent=1), flush=True)
        print("micro-benchmarks ...", flush=True)
        r.flushall()
        out["micro_us"] = micro(server.url, sink.port)
        print(json.dumps(out["micro_us"], indent=1))
    finally:
        sink.stop()
        r.close()
        server.close()
        shutil.rmtree(workdir, ignore_errors=True)
    (RESULTS / "profile.json").write_text(json.dumps(out, indent=1))
    print(f"wrote {RESULTS / 'profile.json'}")
    return 0


def _git() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    git = shutil.which("git") or "/usr/bin/git"
    try:
        head = subprocess.run(
            [git, "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=False
        )
        dirty = subprocess.run(
            [git, "status", "--porcelain", "worker/"], cwd=root, capture_output=True, text=True, check=False
        )
        return {"head": head.stdout.strip(), "worker_changes": [ln[3:] for ln in dirty.stdout.splitlines()]}
    except OSError:
        return {}


if __name__ == "__main__":
    sys.exit(main())
