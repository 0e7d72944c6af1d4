"""emailqueue benchmark: enqueue latency, drain throughput, end-to-end latency, memory, peers.

    python bench/run.py            # full mode (~10-15 min on 2 cores)
    python bench/run.py --quick    # a few minutes, fewer repeats and messages
    python bench/run.py --only enqueue,drain

Starts its own Redis-compatible server (emailqueue.localserver.RedisServer, AOF on tmpfs) and
two SMTP sinks on 127.0.0.1: Postfix's smtp-sink (C, fast; the default everywhere) and aiosmtpd
(Python, slow, realistic).  Every figure is min/median/max over repeats; the tables name the
sink.  Writes bench/results/<mode>.json, bench/results/<mode>.png and the results section of
docs/performance.md.  All traffic goes to 127.0.0.1, every loop is bounded in count and time.

The machine is shared and has 2 cores: ratios between systems measured in the same run are the
result; absolute figures are context.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import (
    EMAILQUEUE,
    PEERS,
    PY,
    QUEUE,
    RESULTS,
    AioSink,
    LatSink,
    SmtpSink,
    cpu_seconds,
    email_dict,
    mmm,
    pct,
    rss_mb,
    spawn,
    stop_process,
)

SECTIONS = ("enqueue", "drain", "peers", "aiosmtpd", "latency", "memory")
GIT = shutil.which("git") or "/usr/bin/git"
DEFAULT_CONCURRENCY = 16  # emailqueue's default (EMAILQUEUE_CONCURRENCY)


@dataclass
class Config:
    mode: str
    repeats: int
    enqueue_n: int  # single sends timed per repeat
    send_many_n: int
    drain_n: int  # emails prefilled per emailqueue / baseline drain
    drain_cap_s: float  # a drain stops after this long from its first delivery
    concurrencies: tuple[int, ...]
    peer_n: int  # Celery / arq prefill
    aio_n: int
    aio_repeats: int
    latency_s: float
    latency_repeats: int
    memory_n: int


FULL = Config("full", 3, 3000, 20000, 20000, 12.0, (1, 8, 16, 32, 128), 4000, 6000, 2, 8.0, 2, 100_000)
QUICK = Config("quick", 1, 1000, 5000, 4000, 5.0, (1, 8, 16, 32, 128), 1000, 2000, 1, 4.0, 1, 20_000)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- the environment ---------------------------------------------------------------------------


class Bench:
    def __init__(self, cfg: Config, workdir: Path) -> None:
        import redis

        from emailqueue.localserver import RedisServer

        self.cfg = cfg
        self.workdir = workdir
        self.redis_server = RedisServer(data_dir=str(workdir / "redis")).start()
        self.url = self.redis_server.url
        self.r = redis.Redis.from_url(self.url)
        self.sink = SmtpSink().start()
        self.aiosink: AioSink | None = None
        self.worker_cmd: list[str] = [EMAILQUEUE, "worker"]  # bench/ab.py swaps these to compare builds
        self.worker_env: dict[str, str] = {}
        self.logdir = RESULTS / "logs" / cfg.mode  # kept after the run (git-ignored)
        shutil.rmtree(self.logdir, ignore_errors=True)
        self.logdir.mkdir(parents=True)

    @property
    def redis_pid(self) -> int:
        assert self.redis_server.proc is not None
        return self.redis_server.proc.pid

    def ensure_alive(self) -> None:
        """The machine is shared: if our Redis or sink died (someone's broad pkill), start it again."""
        import redis

        proc = self.redis_server.proc
        if proc is None or proc.poll() is not None:
            log(f"  ! our Redis server is gone (exit {proc.returncode if proc else '?'}); restarting it")
            self._keep_redis_log("redis-died")
            self.redis_server.start()
            self.r = redis.Redis.from_url(self.url)
        for attr in ("sink", "aiosink"):
            sink = getattr(self, attr)
            if sink is not None and sink.proc is not None and sink.proc.poll() is not None:
                log(f"  ! {sink.name} is gone; restarting it")
                sink.proc = None
                sink.start()

    def _keep_redis_log(self, name: str) -> None:
        src = self.redis_server.dir / "server.log"
        if src.exists():
            shutil.copy(src, self.logdir / f"{name}-{time.time_ns()}.log")

    def close(self) -> None:
        self._keep_redis_log("redis")
        self.sink.stop()
        if self.aiosink:
            self.aiosink.stop()
        self.r.close()
        self.redis_server.close()

    def flush(self) -> None:
        self.ensure_alive()
        self.r.flushall()

    # ---- systems: how to fill the queue and start a consumer --------------------------------

    def prefill(self, system: str, n: int) -> None:
        if system == "emailqueue":
            from emailqueue.producer import Mailer

            m = Mailer.from_url(self.url, QUEUE)
            for start in range(0, n, 20000):
                m.send_many([email_dict(i) for i in range(start, min(n, start + 20000))])
            m.close()
        elif system == "baseline":
            _run([PY, str(PEERS / "baseline.py"), "enqueue", self.url, str(n)])
        elif system in ("celery", "arq"):
            py = common.peer_python(system)
            assert py
            _run([py, str(PEERS / f"{system}_app.py"), "enqueue", str(n)], env={"BENCH_REDIS_URL": self.url})
        else:
            raise ValueError(system)

    def consumer(self, system: str, sink: Any, concurrency: int | None, tag: str) -> Any:
        logf = self.logdir / f"{tag}.log"
        if system == "emailqueue":
            env = {
                "EMAILQUEUE_REDIS_URL": self.url,
                "EMAILQUEUE_QUEUE": QUEUE,
                "MAILER_DSN": sink.dsn,
                "MAILER_FROM_EMAIL": "shop@example.com",
                "EMAILQUEUE_METRICS_PORT": "0",  # two workers on one host would fight over :8080
            }
            env.update(self.worker_env)
            args = [*self.worker_cmd]
            if concurrency:
                args += ["--concurrency", str(concurrency)]
            return spawn(args, env=env, log=logf)
        if system == "baseline":
            return spawn(
                [
                    PY,
                    str(PEERS / "baseline.py"),
                    "run",
                    self.url,
                    str(sink.port),
                    str(concurrency or DEFAULT_CONCURRENCY),
                ],
                log=logf,
            )
        env = {"BENCH_REDIS_URL": self.url, "BENCH_SMTP_PORT": str(sink.port)}
        py = common.peer_python(system)
        assert py
        if system == "celery":
            cmd = [py, "-m", "celery", "-A", "celery_app", "worker", "--pool", "prefork", "--concurrency", "2"]
            return spawn([*cmd, "--loglevel", "WARNING", "-n", f"bench{os.getpid()}@%h"], env=env, cwd=PEERS, log=logf)
        if system == "arq":
            return spawn([py, "-m", "arq", "arq_app.WorkerSettings"], env=env, cwd=PEERS, log=logf)
        raise ValueError(system)

    # ---- one drain ---------------------------------------------------------------------------

    def drain(self, system: str, n: int, **kw: Any) -> dict[str, Any]:
        """One drain; repeated once if our Redis or sink vanished under it (shared machine)."""
        import redis

        try:
            return self._drain_once(system, n, **kw)
        except (redis.exceptions.ConnectionError, RuntimeError) as exc:
            log(f"  ! {system} drain failed ({exc}); checking the servers and trying once more")
            self.ensure_alive()
            return self._drain_once(system, n, **kw)

    def _drain_once(
        self,
        system: str,
        n: int,
        *,
        concurrency: int | None = None,
        processes: int = 1,
        sink: Any = None,
        cap_s: float | None = None,
        tag: str = "",
        rss_every_s: float = 0.25,
        idle_rss: bool = False,
    ) -> dict[str, Any]:
        """Prefill n, start the consumer(s), time first -> last acceptance at the sink."""
        sink = sink or self.sink
        cap_s = cap_s or self.cfg.drain_cap_s
        self.flush()
        self.prefill(system, n)
        sink.reset()
        procs = [
            self.consumer(system, sink, concurrency, f"{tag or system}-{k}-{time.time_ns()}") for k in range(processes)
        ]
        pids = [p.pid for p in procs]
        started = time.perf_counter()
        cpu0: tuple[float, float, float, float] | None = None
        rss: list[tuple[float, float]] = []  # (seconds since first delivery, MB)
        next_rss = 0.0
        timed_out = False
        last_count, last_change, stall_noted = 0, started, False
        try:
            while True:
                count, first, _last = sink.window()
                now = time.perf_counter()
                if count > 0 and cpu0 is None:
                    cpu0 = (now, cpu_seconds(pids), cpu_seconds([self.redis_pid]), cpu_seconds([sink.pid]))
                if count >= n:
                    break
                if first is None and now - started > 60:
                    raise RuntimeError(f"{system}: no delivery within 60 s (see {self.logdir})")
                if first is not None and now - first > cap_s:
                    timed_out = True
                    break
                if count != last_count:
                    last_count, last_change = count, now
                elif count > 0 and now - last_change > 3 and not stall_noted:
                    stall_noted = True  # no acceptance for 3 s: record who waits on whom
                    self._note_stall(system, pids, count)
                if first is not None and now >= next_rss:
                    rss.append((now - first, rss_mb(pids)))
                    next_rss = now + rss_every_s
                time.sleep(0.01)
            now = time.perf_counter()
            cpu1 = (now, cpu_seconds(pids), cpu_seconds([self.redis_pid]), cpu_seconds([sink.pid]))
            rss.append((now - (first or now), rss_mb(pids)))
            idle = None
            if idle_rss:
                time.sleep(2.0)  # the worker sits on an empty stream (XREADGROUP BLOCK)
                idle = rss_mb(pids)
        finally:
            for p in procs:
                stop_process(p, timeout=15)
        count, first, last = sink.window()
        if stall_noted:
            log(f"  ! {system}: deliveries stopped for > 3 s at {last_count}; see {self.logdir}/stalls.log")
        span = (last - first) if first is not None and last is not None else 0.0
        rate = (count - 1) / span if span > 0 else float("nan")
        assert cpu0 is not None
        dt = cpu1[0] - cpu0[0]
        in_window = max(count - 1, 1)  # acceptances between the two CPU samples (about)
        return {
            "system": system,
            "sink": sink.name,
            "concurrency": concurrency,
            "processes": processes,
            "n": n,
            "delivered": count,
            "capped": timed_out,
            "seconds": span,
            "rate": rate,
            "cpu_pct": {
                "consumer": 100 * (cpu1[1] - cpu0[1]) / dt if dt > 0 else float("nan"),
                "redis": 100 * (cpu1[2] - cpu0[2]) / dt if dt > 0 else float("nan"),
                "sink": 100 * (cpu1[3] - cpu0[3]) / dt if dt > 0 else float("nan"),
            },
            # consumer CPU time per email: robust to other load on the machine (unlike emails/s)
            "cpu_us_per_email": 1e6 * (cpu1[1] - cpu0[1]) / in_window,
            "rss_max_mb": max((m for _, m in rss), default=float("nan")),
            "rss_series": [(round(t, 2), round(m, 1)) for t, m in rss],
            "rss_idle_mb": idle,
        }

    def _note_stall(self, system: str, pids: list[int], count: int) -> None:
        import subprocess

        with open(self.logdir / "stalls.log", "a") as fh:
            fh.write(f"=== {time.strftime('%H:%M:%S')} {system}: no acceptance for 3 s at {count}\n")
            for cmd in (["ss", "-tnpi"], *[[str(Path(PY).with_name("py-spy")), "dump", "--pid", str(p)] for p in pids]):
                try:
                    fh.write(subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False).stdout)
                except (OSError, subprocess.SubprocessError) as exc:
                    fh.write(f"{cmd[0]}: {exc}\n")


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> None:
    import subprocess

    r = subprocess.run(
        cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout, check=False
    )
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {r.stderr[-2000:]}")


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rate": mmm([r["rate"] for r in runs]),
        "cpu_consumer": mmm([r["cpu_pct"]["consumer"] for r in runs]),
        "cpu_us_per_email": mmm([r["cpu_us_per_email"] for r in runs]),
        "cpu_redis": mmm([r["cpu_pct"]["redis"] for r in runs]),
        "cpu_sink": mmm([r["cpu_pct"]["sink"] for r in runs]),
        "rss_max_mb": mmm([r["rss_max_mb"] for r in runs]),
        "delivered": [r["delivered"] for r in runs],
        "capped": any(r["capped"] for r in runs),
        "runs": [{k: v for k, v in r.items() if k != "rss_series"} for r in runs],
    }


# ---- (1) enqueue ----------------------------------------------------------------------------------


def bench_enqueue(b: Bench) -> dict[str, Any]:
    """send() against two floors, interleaved call by call: redis-py's own ``xadd`` (what an
    application would write) and the same XADD packed by hand (``emailqueue.rawpipe``, the
    path ``send()`` itself uses: the cheapest way this client has to put an entry into Redis)."""
    import redis

    from emailqueue.message import Email
    from emailqueue.producer import AsyncMailer, Mailer
    from emailqueue.rawpipe import axadd_packed, pack_xadd, xadd_packed
    from emailqueue.wire import encode

    cfg = b.cfg
    n = cfg.enqueue_n
    stream = f"emailqueue:{{{QUEUE}}}:stream"
    emails = [email_dict(i) for i in range(n)]
    fields = encode(Email(**email_dict(0)))
    packed = (pack_xadd(stream, fields),)
    payload_bytes = len(fields["payload"].encode())
    out: dict[str, Any] = {"n_per_repeat": n, "payload_json_bytes": payload_bytes}

    # sync: Mailer.send(dict) vs redis-py XADD and the packed XADD of the same, already encoded fields
    mailer = Mailer.from_url(b.url, QUEUE)
    raw = redis.Redis.from_url(b.url)
    runs: dict[str, list[dict[str, float]]] = {"send": [], "xadd": [], "packed": []}
    for rep in range(cfg.repeats):
        b.flush()
        for i in range(200):  # warm-up: connections, caches
            mailer.send(emails[i % n])
            raw.xadd(stream, fields)
            xadd_packed(raw, packed)
        lat: dict[str, list[float]] = {k: [] for k in runs}
        pc = time.perf_counter
        for i in range(n):  # interleaved, so drift on a shared machine hits all alike
            t = pc()
            mailer.send(emails[i])
            lat["send"].append((pc() - t) * 1e3)
            t = pc()
            raw.xadd(stream, fields)
            lat["xadd"].append((pc() - t) * 1e3)
            t = pc()
            xadd_packed(raw, packed)
            lat["packed"].append((pc() - t) * 1e3)
        _record_latencies("sync", rep, runs, lat)
    out["sync"] = _lat_summary(runs)

    # async (stock asyncio loop, as most applications run): AsyncMailer.send vs async XADD
    async def async_runs() -> dict[str, list[dict[str, float]]]:
        import redis.asyncio as aredis

        am = AsyncMailer.from_url(b.url, QUEUE)
        ar = aredis.Redis.from_url(b.url)
        aruns: dict[str, list[dict[str, float]]] = {"send": [], "xadd": [], "packed": []}
        for rep in range(cfg.repeats):
            await ar.flushall()
            for i in range(200):
                await am.send(emails[i % n])
                await ar.xadd(stream, fields)
                await axadd_packed(ar, packed)
            lat: dict[str, list[float]] = {k: [] for k in aruns}
            pc = time.perf_counter
            for i in range(n):
                t = pc()
                await am.send(emails[i])
                lat["send"].append((pc() - t) * 1e3)
                t = pc()
                await ar.xadd(stream, fields)
                lat["xadd"].append((pc() - t) * 1e3)
                t = pc()
                await axadd_packed(ar, packed)
                lat["packed"].append((pc() - t) * 1e3)
            _record_latencies("async", rep, aruns, lat)
        await am.close()
        await ar.aclose()
        return aruns

    out["async"] = _lat_summary(asyncio.run(async_runs()))

    # send_many throughput vs pipelined XADD of pre-encoded fields (chunks of 1000, like send_many):
    # redis-py's pipeline, and the hand-packed batch send_many itself uses
    many = [email_dict(i) for i in range(cfg.send_many_n)]
    sm_rates, px_rates, pp_rates = [], [], []
    for rep in range(cfg.repeats):
        b.flush()
        t = time.perf_counter()
        mailer.send_many(many)
        sm_rates.append(len(many) / (time.perf_counter() - t))
        b.flush()
        t = time.perf_counter()
        for start in range(0, len(many), 1000):
            pipe = raw.pipeline(transaction=False)
            for _ in range(start, min(len(many), start + 1000)):
                pipe.xadd(stream, fields)
            pipe.execute()
        px_rates.append(len(many) / (time.perf_counter() - t))
        b.flush()
        t = time.perf_counter()
        for start in range(0, len(many), 1000):
            xadd_packed(raw, [pack_xadd(stream, fields) for _ in range(start, min(len(many), start + 1000))])
        pp_rates.append(len(many) / (time.perf_counter() - t))
        log(
            f"  send_many rep {rep + 1}: {sm_rates[-1]:,.0f}/s (pipelined XADD {px_rates[-1]:,.0f}/s, "
            f"packed {pp_rates[-1]:,.0f}/s)"
        )
    # the same emails as Email objects, validated when the application built them (not timed)
    models = [Email(**d) for d in many]
    om_rates = []
    for _ in range(cfg.repeats):
        b.flush()
        t = time.perf_counter()
        mailer.send_many(models)
        om_rates.append(len(models) / (time.perf_counter() - t))
    log(f"  send_many of Email objects: {mmm(om_rates)['median']:,.0f}/s")
    out["send_many"] = {
        "n": len(many),
        "rate": mmm(sm_rates),
        "models_rate": mmm(om_rates),
        "xadd_pipelined_rate": mmm(px_rates),
        "xadd_packed_rate": mmm(pp_rates),
    }
    mailer.close()
    raw.close()
    b.flush()
    return out


def _record_latencies(
    kind: str, rep: int, runs: dict[str, list[dict[str, float]]], lat: dict[str, list[float]]
) -> None:
    """One repeat's p50/p99/max of each call (ms) into ``runs``, and a log line."""
    for k, series in runs.items():
        series.append({"p50": pct(lat[k], 50), "p99": pct(lat[k], 99), "max": max(lat[k])})
    log(
        f"  enqueue {kind} rep {rep + 1}: send p50 {runs['send'][-1]['p50']:.3f} ms, "
        f"XADD p50 {runs['xadd'][-1]['p50']:.3f} ms, packed XADD p50 {runs['packed'][-1]['p50']:.3f} ms"
    )


def _lat_summary(runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        name: {k: mmm([r[k] for r in rs]) for k in ("p50", "p99", "max")} for name, rs in runs.items()
    }
    out["p50_ratio"] = mmm([s["p50"] / x["p50"] for s, x in zip(runs["send"], runs["xadd"], strict=True)])
    out["p50_ratio_packed"] = mmm([s["p50"] / x["p50"] for s, x in zip(runs["send"], runs["packed"], strict=True)])
    return out


# ---- (2) drain ------------------------------------------------------------------------------------


def bench_drain(b: Bench) -> dict[str, Any]:
    cfg = b.cfg
    out: dict[str, Any] = {"sink": "smtp-sink", "n": cfg.drain_n, "cap_s": cfg.drain_cap_s, "by_concurrency": {}}
    for rep in range(cfg.repeats):  # repeats outermost: a noisy minute spreads over all settings
        for c in cfg.concurrencies:
            r = b.drain("emailqueue", cfg.drain_n, concurrency=c, tag=f"eq-c{c}", idle_rss=(c == DEFAULT_CONCURRENCY))
            out["by_concurrency"].setdefault(str(c), []).append(r)
            log(
                f"  drain c={c:<3} rep {rep + 1}: {r['rate']:,.0f}/s ({r['delivered']} in {r['seconds']:.1f}s) "
                f"cpu worker {r['cpu_pct']['consumer']:.0f}% redis {r['cpu_pct']['redis']:.0f}% "
                f"sink {r['cpu_pct']['sink']:.0f}%, rss {r['rss_max_mb']:.0f} MB"
            )
        r = b.drain("emailqueue", cfg.drain_n, concurrency=DEFAULT_CONCURRENCY, processes=2, tag="eq-2p")
        out.setdefault("two_processes", []).append(r)
        log(
            f"  drain 2 processes x c={DEFAULT_CONCURRENCY} rep {rep + 1}: {r['rate']:,.0f}/s "
            f"cpu workers {r['cpu_pct']['consumer']:.0f}% redis {r['cpu_pct']['redis']:.0f}% "
            f"sink {r['cpu_pct']['sink']:.0f}%"
        )
    out["by_concurrency"] = {c: summarize_runs(runs) for c, runs in out["by_concurrency"].items()}
    out["two_processes"] = summarize_runs(out["two_processes"])
    one = out["by_concurrency"][str(DEFAULT_CONCURRENCY)]["rate"]["median"]
    out["two_vs_one"] = out["two_processes"]["rate"]["median"] / one
    out["max_rate"] = max(v["rate"]["median"] for v in out["by_concurrency"].values())
    return out


# ---- (5) peers, same sink, same payload ---------------------------------------------------------------


PEER_SETTINGS = {
    "emailqueue": f"1 worker process, defaults (concurrency {DEFAULT_CONCURRENCY}, uvloop)",
    "baseline": f"bare asyncio loop: XREADGROUP {DEFAULT_CONCURRENCY} -> email.message -> aiosmtplib on "
    f"{DEFAULT_CONCURRENCY} reused connections -> XACK+XDEL; uvloop",
    "celery": "Celery 5.7, Redis broker, defaults: prefork pool, concurrency 2 (= cores), prefetch 4; "
    "smtplib, one connection per email",
    "arq": "arq 0.28, defaults (max_jobs 10, stock asyncio loop); aiosmtplib.send(), one connection per email",
}


def bench_peers(b: Bench, sink: Any, *, n_fast: int, n_peer: int, repeats: int, cap_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {"sink": sink.name, "settings": PEER_SETTINGS, "systems": {}}
    runs: dict[str, list[dict[str, Any]]] = {}
    for rep in range(repeats):
        for system in ("emailqueue", "baseline", "celery", "arq"):
            n = n_fast if system in ("emailqueue", "baseline") else n_peer
            conc = DEFAULT_CONCURRENCY if system == "baseline" else None
            try:
                r = b.drain(system, n, concurrency=conc, sink=sink, cap_s=cap_s, tag=f"{system}-{sink.name}")
            except RuntimeError as exc:
                log(f"  {system} on {sink.name} failed: {exc}")
                continue
            runs.setdefault(system, []).append(r)
            log(
                f"  {system:<10} on {sink.name:<9} rep {rep + 1}: {r['rate']:,.0f}/s "
                f"({r['delivered']} in {r['seconds']:.1f}s) cpu {r['cpu_pct']['consumer']:.0f}% "
                f"redis {r['cpu_pct']['redis']:.0f}% sink {r['cpu_pct']['sink']:.0f}%"
            )
    for system, rs in runs.items():
        out["systems"][system] = summarize_runs(rs)
    eq = out["systems"].get("emailqueue", {}).get("rate", {}).get("median")
    if eq:
        out["emailqueue_vs"] = {
            s: eq / v["rate"]["median"] for s, v in out["systems"].items() if s != "emailqueue" and v["rate"]["median"]
        }
    return out


# ---- (3) end-to-end latency at 50% of max -------------------------------------------------------------


def bench_latency(b: Bench, max_rate: float) -> dict[str, Any]:
    """Steady offered load at 50% of the measured maximum; enqueue -> accepted, per email.

    The producer (AsyncMailer, stock asyncio loop, in this process) stamps ``X-Bench-T`` with
    ``time.time_ns()`` just before each ``send()``; bench/latsink.py stamps the acceptance of the
    final ``.``.  Both clocks are the same host clock.
    """
    from emailqueue.producer import AsyncMailer

    cfg = b.cfg
    rate = max_rate * 0.5
    out: dict[str, Any] = {
        "sink": "latsink (bench/latsink.py: minimal uvloop SMTP server, PIPELINING, timestamps each acceptance)",
        "concurrency": DEFAULT_CONCURRENCY,
        "offered_rate": rate,
        "max_rate": max_rate,
        "runs": [],
    }
    all_lat: list[float] = []
    warm = 50
    for rep in range(cfg.latency_repeats):
        sink = LatSink(b.workdir / f"latency-{rep}.json").start()
        b.flush()
        worker = b.consumer("emailqueue", sink, DEFAULT_CONCURRENCY, f"latency-{rep}")
        n = int(rate * cfg.latency_s)

        async def produce(sink: LatSink = sink, n: int = n) -> float:
            m = AsyncMailer.from_url(b.url, QUEUE)
            for i in range(warm):  # warm-up: worker connected and reading; not measured
                await m.send(email_dict(i, {"X-Bench-T": "0"}))
            deadline = time.monotonic() + 30
            while sink.window()[0] < warm and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            t0 = time.perf_counter()
            behind = 0.0
            for i in range(n):
                due = t0 + i / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                else:
                    behind = max(behind, -wait)
                await m.send(email_dict(i, {"X-Bench-T": str(time.time_ns())}))
            await m.close()
            return behind

        pids = {"worker": [worker.pid], "redis": [b.redis_pid], "sink": [sink.pid], "producer": [os.getpid()]}
        own = {"producer": False}  # the bench process: its own threads only, not its child servers
        cpu0 = {k: cpu_seconds(v, own.get(k, True)) for k, v in pids.items()}
        t_cpu = time.perf_counter()
        try:
            behind = asyncio.run(produce())
            deadline = time.monotonic() + 30
            while sink.window()[0] < n + warm and time.monotonic() < deadline:
                time.sleep(0.02)
            accepted = sink.window()[0] - warm
            dt = time.perf_counter() - t_cpu
            cpu = {k: round(100 * (cpu_seconds(v, own.get(k, True)) - cpu0[k]) / dt) for k, v in pids.items()}
        finally:
            stop_process(worker)
            sink.stop()
        lat = sink.latencies()
        run = {
            "offered": n,
            "accepted": accepted,
            "measured": len(lat),
            "p50": pct(lat, 50),
            "p90": pct(lat, 90),
            "p99": pct(lat, 99),
            "max": max(lat) if lat else float("nan"),
            "producer_behind_ms": behind * 1e3,
            "cpu_pct": cpu,  # over the whole repeat (warm-up included), this process = the producer
        }
        out["runs"].append(run)
        all_lat += lat
        log(
            f"  latency rep {rep + 1} at {rate:,.0f}/s: p50 {run['p50']:.2f} ms p90 {run['p90']:.2f} ms "
            f"p99 {run['p99']:.2f} ms max {run['max']:.1f} ms ({len(lat)} emails; producer at most "
            f"{run['producer_behind_ms']:.1f} ms behind schedule); CPU "
            + ", ".join(f"{k} {v}%" for k, v in cpu.items())
        )
    out["p50"] = mmm([r["p50"] for r in out["runs"]])
    out["p99"] = mmm([r["p99"] for r in out["runs"]])
    out["max"] = mmm([r["max"] for r in out["runs"]])
    out["samples"] = sorted(all_lat)[:: max(1, len(all_lat) // 4000)]  # for the plot
    return out


# ---- (4) memory ------------------------------------------------------------------------------------


def bench_memory(b: Bench) -> dict[str, Any]:
    n = b.cfg.memory_n
    b.flush()
    time.sleep(0.2)
    before = int(b.r.info("memory")["used_memory"])
    b.prefill("emailqueue", n)
    after = int(b.r.info("memory")["used_memory"])
    per = (after - before) / n
    log(f"  Redis memory: {per:,.0f} bytes per queued email ({n:,} queued, {(after - before) / 2**20:.0f} MB)")
    # drain those n with one worker at the default concurrency, RSS sampled every 0.5 s
    b.sink.reset()
    worker = b.consumer("emailqueue", b.sink, DEFAULT_CONCURRENCY, "memory")
    series: list[tuple[float, float]] = []
    started = time.perf_counter()
    try:
        while True:
            count, first, _ = b.sink.window()
            now = time.perf_counter()
            if first is not None:
                series.append((round(now - first, 2), round(rss_mb([worker.pid]), 1)))
            if count >= n or now - started > 300:
                break
            time.sleep(0.5)
        time.sleep(2.0)
        idle = rss_mb([worker.pid])
    finally:
        stop_process(worker, timeout=15)
    count, first, last = b.sink.window()
    rates = (count - 1) / (last - first) if first and last and last > first else float("nan")
    mbs = [m for _, m in series]
    tenth = mbs[max(0, len(mbs) // 10)] if mbs else float("nan")
    out = {
        "n": n,
        "redis_bytes_per_email": per,
        "redis_used_mb": (after - before) / 2**20,
        "drain_rate": rates,
        "delivered": count,
        "rss_at_10pct_mb": tenth,
        "rss_max_mb": max(mbs, default=float("nan")),
        "rss_end_mb": mbs[-1] if mbs else float("nan"),
        "rss_idle_mb": idle,
        "rss_growth_after_10pct_mb": (mbs[-1] - tenth) if mbs else float("nan"),
        "rss_series": series,
    }
    log(
        f"  worker RSS over {count:,} emails at {rates:,.0f}/s: at 10% {tenth:.1f} MB, max {out['rss_max_mb']:.1f} MB,"
        f" end {out['rss_end_mb']:.1f} MB, idle {idle:.1f} MB"
    )
    b.flush()
    return out


# ---- main -------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import aiosmtplib
    import redis

    try:
        import uvloop

        uv = uvloop.__version__
    except ImportError:
        uv = None
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "redis_server": None,
        "redis_py": redis.__version__,
        "aiosmtplib": aiosmtplib.__version__,
        "uvloop": uv,
        "loadavg_start": os.getloadavg(),
        "git": _git(),
    }


def _git() -> dict[str, Any]:
    import subprocess

    def git(*a: str) -> str:
        r = subprocess.run([GIT, *a], cwd=common.ROOT, capture_output=True, text=True, check=False)
        return r.stdout.strip()

    return {"head": git("rev-parse", "--short", "HEAD"), "worker_changes": git("status", "--porcelain", "worker/")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats and messages (a few minutes)")
    p.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    p.add_argument(
        "--doc",
        choices=["auto", "yes", "no"],
        default="auto",
        help="rewrite the results section of docs/performance.md (auto: full mode with every section only)",
    )
    args = p.parse_args(argv)

    if not SmtpSink.available():
        print(common.smtp_sink_missing_message(), file=sys.stderr)
        return 2
    cfg = QUICK if args.quick else FULL
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = only - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if only & {"peers", "aiosmtpd"}:
        for peer in ("celery", "arq"):
            if not common.peer_python(peer):
                print(
                    f"could not create the {peer} venv (bench/.venvs/{peer}); see the pip output above", file=sys.stderr
                )
                return 2

    RESULTS.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="eqb-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    t_start = time.time()
    results: dict[str, Any] = {"mode": cfg.mode, "config": asdict(cfg), "machine": machine(), "started": t_start}
    log(f"emailqueue bench, {cfg.mode} mode; work dir {workdir}")
    b = Bench(cfg, workdir)
    results["machine"]["redis_server"] = b.r.info("server").get("redis_version") or "?"
    results["machine"]["redis_binary"] = Path(b.redis_server.binary).name
    try:
        if "enqueue" in only:
            log("(1) enqueue latency and send_many throughput")
            results["enqueue"] = bench_enqueue(b)
        if "drain" in only:
            log(
                f"(2) drain throughput, one worker process, concurrency {cfg.concurrencies}, and 2 processes; smtp-sink"
            )
            results["drain"] = bench_drain(b)
        if "peers" in only:
            log("(5) peers on smtp-sink: emailqueue, bare asyncio baseline, Celery, arq")
            results["peers"] = bench_peers(
                b, b.sink, n_fast=cfg.drain_n, n_peer=cfg.peer_n, repeats=cfg.repeats, cap_s=cfg.drain_cap_s
            )
        if "aiosmtpd" in only:
            log("(5b) all four again on the aiosmtpd sink (slow, realistic)")
            b.aiosink = AioSink().start()
            results["peers_aiosmtpd"] = bench_peers(
                b, b.aiosink, n_fast=cfg.aio_n, n_peer=cfg.peer_n, repeats=cfg.aio_repeats, cap_s=cfg.drain_cap_s
            )
        if "latency" in only:
            max_rate = (
                results["drain"]["by_concurrency"][str(DEFAULT_CONCURRENCY)]["rate"]["median"]
                if "drain" in results
                else b.drain("emailqueue", cfg.drain_n, concurrency=DEFAULT_CONCURRENCY)["rate"]
            )
            log(f"(3) end-to-end latency at 50% of {max_rate:,.0f}/s (concurrency {DEFAULT_CONCURRENCY})")
            results["latency"] = bench_latency(b, max_rate)
        if "memory" in only:
            log(f"(4) Redis memory per queued email ({cfg.memory_n:,}) and worker RSS over draining them")
            results["memory"] = bench_memory(b)
    finally:
        b.close()
        shutil.rmtree(workdir, ignore_errors=True)
    results["seconds"] = time.time() - t_start
    results["machine"]["loadavg_end"] = os.getloadavg()
    # a subset run must not replace the full run's results (the doc and plot are made from those)
    name = cfg.mode if only == set(SECTIONS) else f"{cfg.mode}-{'-'.join(sorted(only))}"
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    log(f"results: {out.relative_to(common.ROOT)} ({results['seconds'] / 60:.1f} min)")

    import report

    png = report.plot(results, RESULTS / f"{name}.png")
    if png:
        log(f"plot: {png.relative_to(common.ROOT)}")
    md = report.markdown(results)
    print()
    print(md)
    if args.doc == "yes" or (args.doc == "auto" and cfg.mode == "full" and only == set(SECTIONS)):
        report.update_doc(md, cfg.mode)
        log("docs/performance.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
