"""Delivery control benchmarks (issue 7): priority latency behind a backlog, and rate limits that hold.

    .venv/bin/python bench/delivery_control.py            # about 2 minutes on a 2-core box
    .venv/bin/python bench/delivery_control.py --backlog 5000 --rl-n 600   # quick check

Starts its own Redis-compatible server (emailqueue.localserver.RedisServer) and its own SMTP
sink (bench/latsink.py, which timestamps each accepted message), all on 127.0.0.1; every wait
is bounded.  Probe emails carry ``X-Bench-T`` (``time.time_ns()`` just before ``send()``) and
``X-Bench-Tag`` (which series they belong to), so the sink reports enqueue -> accepted latency
and the acceptance time of each, per series.

1. Priorities: 50,000 emails wait (``priority="bulk"``) while one ``emailqueue worker``
   (default concurrency 16) drains them; meanwhile 30 ``priority="high"`` probes, one every
   100 ms, and 30 ``priority="normal"`` probes, offset by 50 ms, are enqueued.  Control: the
   same 50,000 as ``normal`` and 30 ``normal`` probes in that same lane, behind them.
2. Rate limits: 3 worker processes drain 3,000 emails with ``EMAILQUEUE_RATE_LIMIT=200/s``,
   then 3,000 with ``EMAILQUEUE_DOMAIN_RATE_LIMITS="slow.example=50/s"`` where every fifth
   recipient is at slow.example.  Reported: achieved rate (first -> last acceptance) and the
   most acceptances in any sliding 1-second window.

Writes bench/results/delivery_control.json and prints the Markdown tables for docs/performance.md.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import EMAILQUEUE, QUEUE, RESULTS, LatSink, email_dict, pct, spawn, stop_process

PROBES = 30
PROBE_EVERY_S = 0.1


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def window_max(times_ms: list[float], width_ms: float = 1000.0) -> int:
    """The most events in any half-open window [t, t + width) (windows start at an event: that is the max)."""
    ts = sorted(times_ms)
    return max((bisect.bisect_left(ts, t + width_ms) - i for i, t in enumerate(ts)), default=0)


def rate_stats(times_ms: list[float]) -> dict[str, Any]:
    ts = sorted(times_ms)
    span = (ts[-1] - ts[0]) / 1e3 if len(ts) > 1 else float("nan")
    return {
        "sent": len(ts),
        "span_s": span,
        "rate_per_s": (len(ts) - 1) / span if len(ts) > 1 and span > 0 else float("nan"),
        "max_in_1s": window_max(ts),
    }


def lat_stats(lat: list[float]) -> dict[str, Any]:
    return {"n": len(lat), "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat) if lat else float("nan")}


class Env:
    def __init__(self, workdir: Path) -> None:
        import redis

        from emailqueue.localserver import RedisServer

        self.workdir = workdir
        self.server = RedisServer(data_dir=str(workdir / "redis")).start()
        self.url = self.server.url
        self.r = redis.Redis.from_url(self.url)
        self.logdir = RESULTS / "logs" / "delivery_control"
        shutil.rmtree(self.logdir, ignore_errors=True)
        self.logdir.mkdir(parents=True)

    def close(self) -> None:
        self.r.close()
        self.server.close()

    def worker(self, sink: LatSink, tag: str, extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        env = {
            "EMAILQUEUE_REDIS_URL": self.url,
            "EMAILQUEUE_QUEUE": QUEUE,
            "MAILER_DSN": sink.dsn,
            "MAILER_FROM_EMAIL": "shop@example.com",
            "EMAILQUEUE_METRICS_PORT": "0",  # several workers on one host
            **(extra or {}),
        }
        return spawn([EMAILQUEUE, "worker"], env=env, log=self.logdir / f"{tag}.log")

    def prefill(self, emails: list[dict[str, Any]]) -> None:
        from emailqueue.producer import Mailer

        m = Mailer.from_url(self.url, QUEUE)
        for start in range(0, len(emails), 20000):
            m.send_many(emails[start : start + 20000])
        m.close()


def wait_for(cond: Any, cap_s: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + cap_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def probe(i: int, priority: str, tag: str) -> dict[str, Any]:
    d = email_dict(900000 + i, {"X-Bench-T": str(time.time_ns()), "X-Bench-Tag": tag})
    d["priority"] = priority
    return d


# ---- 1. priorities ------------------------------------------------------------------------------


def priority_run(env: Env, backlog: int, backlog_priority: str, series: list[tuple[str, str]], cap_s: float) -> dict:
    """Fill ``backlog`` emails, start one worker, send PROBES of each (priority, tag) once it drains."""
    from emailqueue.keys import QueueKeys
    from emailqueue.producer import Mailer

    name = f"priority-{backlog_priority}"
    env.r.flushall()
    fill = []
    for i in range(backlog):
        d = email_dict(i)
        d["priority"] = backlog_priority
        fill.append(d)
    env.prefill(fill)
    del fill
    sink = LatSink(env.workdir / f"{name}.json").start()
    worker = env.worker(sink, name)
    try:
        if not wait_for(lambda: sink.window()[0] >= 1000, 60):
            raise RuntimeError("the worker did not start draining within 60 s")
        m = Mailer.from_url(env.url, QUEUE)
        keys = QueueKeys(QUEUE)  # lanes: emailqueue:{bench}:stream:high, :stream (normal), :stream:bulk
        backlog_key = keys.lane_stream(backlog_priority)
        same_lane = backlog_priority in {p for p, _ in series}
        # entries stay in their stream until sent (then XACK + XDEL): XLEN = not yet sent
        waiting_first = env.r.xlen(backlog_key)
        t0 = time.perf_counter()
        for k in range(PROBES):
            for j, (prio, tag) in enumerate(series):
                due = t0 + k * PROBE_EVERY_S + j * PROBE_EVERY_S / len(series)
                time.sleep(max(0.0, due - time.perf_counter()))
                m.send(probe(k * len(series) + j, prio, tag))
        total = PROBES * len(series)
        waiting_last = max(0, env.r.xlen(backlog_key) - (total if same_lane else 0))  # same lane: minus probes
        m.close()
        probe_keys = {keys.lane_stream(p) for p, _ in series}

        def probes_done() -> bool:
            if same_lane:  # the whole backlog must drain first
                return sink.window()[0] >= backlog + total
            return all(env.r.xlen(k) == 0 for k in probe_keys)

        finished = wait_for(probes_done, cap_s, 0.05)
        time.sleep(0.3)  # the last acceptances reach the sink's stdout reader
    finally:
        stop_process(worker)
        sink.stop()
    stats = sink.stats()
    out: dict[str, Any] = {
        "backlog": backlog,
        "backlog_priority": backlog_priority,
        "waiting_at_first_probe": waiting_first,
        "waiting_at_last_probe": waiting_last,
        "finished": finished,
        "delivered_total": stats.get("messages"),
        "series": {},
    }
    for _prio, tag in series:
        lat = [x[1] for x in stats.get("tagged", {}).get(tag, []) if x[1] is not None]
        out["series"][tag] = lat_stats(lat)
        s = out["series"][tag]
        log(f"  {tag}: {s['n']} probes, p50 {s['p50']:.1f} ms, p99 {s['p99']:.1f} ms, max {s['max']:.1f} ms")
    log(f"  {backlog_priority} backlog waiting: {waiting_first:,} at the first probe, {waiting_last:,} at the last")
    return out


# ---- 2. rate limits -----------------------------------------------------------------------------


def rate_run(env: Env, n: int, workers: int, extra: dict[str, str], *, slow_every: int, cap_s: float) -> dict:
    name = "rate-" + "-".join(f"{k}={v}" for k, v in extra.items()).replace("/", "per")
    env.r.flushall()
    fill = []
    for i in range(n):
        slow = slow_every and i % slow_every == 0
        d = email_dict(i, {"X-Bench-T": str(time.time_ns()), "X-Bench-Tag": "slow" if slow else "other"})
        if slow:
            d["to"] = [f"customer{i}@slow.example"]
        fill.append(d)
    env.prefill(fill)
    sink = LatSink(env.workdir / f"{name}.json").start()
    procs = [env.worker(sink, f"{name}-{k}", extra) for k in range(workers)]
    try:
        finished = wait_for(lambda: sink.window()[0] >= n, cap_s, 0.05)
    finally:
        for p in procs:
            stop_process(p)
        sink.stop()
    tagged = sink.stats().get("tagged", {})
    times = {tag: [x[0] / 1e6 for x in rows] for tag, rows in tagged.items()}
    out: dict[str, Any] = {"n": n, "workers": workers, "env": extra, "finished": finished, "series": {}}
    out["series"]["all"] = rate_stats([t for ts in times.values() for t in ts])
    if slow_every:
        for tag in ("slow", "other"):
            out["series"][tag] = rate_stats(times.get(tag, []))
    for tag, s in out["series"].items():
        log(
            f"  {tag}: {s['sent']} sent in {s['span_s']:.2f} s = {s['rate_per_s']:.1f}/s, "
            f"max {s['max_in_1s']} in any 1 s"
        )
    return out


# ---- report ---------------------------------------------------------------------------------


def markdown(res: dict[str, Any]) -> str:
    p, c = res["priority"], res["control"]
    lines = [
        f"Priority latency, enqueue -> accepted (ms); one worker, concurrency 16, {p['backlog']:,}-email backlog, "
        f"{PROBES} probes per series, one every {PROBE_EVERY_S * 1000:.0f} ms:",
        "",
        "| probes | backlog lane | backlog waiting (first -> last probe) | p50 | p99 | max |",
        "|---|---|---|---:|---:|---:|",
    ]
    for run, tag, prio in ((p, "high", "high"), (p, "normal", "normal"), (c, "control", "normal")):
        s = run["series"][tag]
        lines.append(
            f"| `{prio}`{' (control)' if tag == 'control' else ''} | `{run['backlog_priority']}` | "
            f"{run['waiting_at_first_probe']:,} -> {run['waiting_at_last_probe']:,} | "
            f"{s['p50']:,.1f} | {s['p99']:,.1f} | {s['max']:,.1f} |"
        )
    lines += [
        "",
        "Rate limits, 3 worker processes (concurrency 16 each), acceptance times at the sink:",
        "",
        "| case | limit | recipients | sent | achieved rate | max in any 1 s window |",
        "|---|---|---|---:|---:|---:|",
    ]
    q, d = res["rate_queue"], res["rate_domain"]
    s = q["series"]["all"]
    lines.append(
        f"| queue limit | `EMAILQUEUE_RATE_LIMIT=200/s` | all | {s['sent']:,} | "
        f"{s['rate_per_s']:.1f}/s | {s['max_in_1s']} |"
    )
    for tag, label in (("slow", "slow.example (1 in 5)"), ("other", "example.net (4 in 5)")):
        s = d["series"][tag]
        lim = "`slow.example=50/s`" if tag == "slow" else "none"
        lines.append(f"| domain limit | {lim} | {label} | {s['sent']:,} | {s['rate_per_s']:.1f}/s | {s['max_in_1s']} |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    git = shutil.which("git") or "git"
    r = subprocess.run([git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return {
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": r.stdout.strip(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backlog", type=int, default=50_000, help="emails waiting in the backlog (50000)")
    ap.add_argument("--rl-n", type=int, default=3000, help="emails per rate-limit case (3000)")
    ap.add_argument("--rl-workers", type=int, default=3)
    ap.add_argument("--cap", type=float, default=180.0, help="upper bound on any one wait, s (180)")
    ap.add_argument("--out", type=Path, default=RESULTS / "delivery_control.json")
    a = ap.parse_args(argv)

    res: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with tempfile.TemporaryDirectory(
        prefix="eq-delivery-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
    ) as wd:
        env = Env(Path(wd))
        try:
            log(f"priorities: high and normal probes while {a.backlog:,} bulk emails wait")
            res["priority"] = priority_run(env, a.backlog, "bulk", [("high", "high"), ("normal", "normal")], a.cap)
            log(f"control: normal probes behind {a.backlog:,} normal emails in the same lane")
            res["control"] = priority_run(env, a.backlog, "normal", [("normal", "control")], a.cap)
            log(f"rate limit: {a.rl_n:,} emails, {a.rl_workers} workers, EMAILQUEUE_RATE_LIMIT=200/s")
            res["rate_queue"] = rate_run(
                env, a.rl_n, a.rl_workers, {"EMAILQUEUE_RATE_LIMIT": "200/s"}, slow_every=0, cap_s=a.cap
            )
            log(f"domain limit: {a.rl_n:,} emails, 1 in 5 to slow.example=50/s")
            res["rate_domain"] = rate_run(
                env,
                a.rl_n,
                a.rl_workers,
                {"EMAILQUEUE_DOMAIN_RATE_LIMITS": "slow.example=50/s"},
                slow_every=5,
                cap_s=a.cap,
            )
        finally:
            env.close()
    res["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1, default=str))
    md = markdown(res)
    print("\n" + md)
    log(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
