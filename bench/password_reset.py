# ruff: noqa: RUF001 (writes prose: en dashes and multiplication signs are meant)
"""The headline example: ``POST /forgot-password`` sending over SMTP inline vs through emailqueue.

    .venv/bin/python bench/password_reset.py            # full: 3 repeats, SMTP delays 0.3 s and 2 s (~8 min)
    .venv/bin/python bench/password_reset.py --quick    # 1 repeat, 0.3 s only, short runs (~30 s)
    .venv/bin/python bench/password_reset.py --delays 0.3 --concurrency 32 --doc no
    .venv/bin/python bench/password_reset.py --report bench/results/password_reset.json   # table + doc again

Starts its own Redis-compatible server (emailqueue.localserver.RedisServer, data on tmpfs) and,
for every run, a fresh SMTP server (bench/aiosink.py: aiosmtpd, answering each DATA after a
delay, like a relay that does real work per message), the app (examples/password_reset under
uvicorn, one process, uvloop when installed) and, in queue mode, one ``emailqueue worker``.
The app and the worker run a copy of worker/emailqueue and examples/ taken when the bench
starts, so edits to the tree during the run cannot mix into the figures.

The load generator is this process: a closed loop of N clients (1 and 16 by default), each
sending its next request when the answer to the previous one arrives, for a fixed time or number
of requests, whichever comes first; half of the requests are for existing accounts.  Latency is
measured at the client.  Reported per run: requests/s; p50/p99/max for existing accounts (the
requests that send an email) and for unknown addresses, whose difference is the timing side
channel; the emails the SMTP server accepted; in queue mode, when the worker delivered the last
one.  Writes bench/results/password_reset.json (password_reset-quick.json with ``--quick``),
prints a Markdown table and, in full mode without overrides, rewrites the block between the
``bench:password-reset`` markers in docs/performance.md.  All traffic stays on 127.0.0.1;
every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import EMAILQUEUE, PY, QUEUE, RESULTS, ROOT, AioSink, cpu_seconds, mmm, pct, spawn, stop_process

DOC = ROOT / "docs" / "performance.md"
START = "<!-- bench:password-reset:start -->"
END = "<!-- bench:password-reset:end -->"
APP = "examples.password_reset.app:app"
PATH = "/forgot-password"
MODES = ("smtp", "queue")


@dataclass(frozen=True)
class Config:
    mode: str
    repeats: int
    delays: tuple[float, ...]  # seconds the SMTP server waits before answering DATA
    concurrencies: tuple[int, ...]  # clients of the closed loop; one run each
    duration_s: float  # a run stops after this long ...
    max_requests: int  # ... or after this many requests, whichever comes first
    known_share: float  # share of requests for existing accounts
    users: int  # seeded accounts user0..user{n-1}@example.com
    worker_concurrency: int  # queue mode: SMTP connections of the one worker process
    drain_cap_s: float  # queue mode: give up waiting for the worker after this long
    client: str  # the load generator's HTTP client: aiohttp or httpx


FULL = Config("full", 3, (0.3, 2.0), (1, 16), 15.0, 3000, 0.5, 1000, 128, 180.0, "aiohttp")
QUICK = Config("quick", 1, (0.3,), (1, 16), 3.0, 600, 0.5, 1000, 128, 60.0, "aiohttp")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass(frozen=True, slots=True)
class Sample:
    known: bool  # the address has an account
    ms: float
    status: int  # 0: the request failed (connection error, timeout)


# ---- processes ---------------------------------------------------------------------------


def _uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def snapshot(dst: Path) -> Path:
    """Copy emailqueue and the example to ``dst``: every run measures the code as it was at the start.

    The app and the worker import from there (PYTHONPATH comes before the editable install), so
    edits to the tree while the bench runs (other engineers share it) cannot mix into the figures.
    """
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "worker" / "emailqueue", dst / "emailqueue", ignore=ignore)
    shutil.copytree(ROOT / "examples", dst / "examples", ignore=ignore)
    return dst


def start_app(
    mode: str, port: int, *, code: Path, redis_url: str, sink: AioSink, users: int, logf: Path
) -> subprocess.Popen[bytes]:
    env = {
        "PYTHONPATH": str(code),
        "RESET_MAIL_MODE": mode,
        "EMAILQUEUE_REDIS_URL": redis_url,
        "EMAILQUEUE_QUEUE": QUEUE,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(sink.port),
        "RESET_SEED_USERS": str(users),
    }
    loop = "uvloop" if _uvloop() else "asyncio"
    cmd = [PY, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port), "--loop", loop]
    proc: subprocess.Popen[bytes] = spawn(
        [*cmd, "--no-access-log", "--log-level", "warning"], env=env, cwd=code, log=logf
    )
    try:
        _wait_until_up(proc, port, logf)
    except BaseException:  # also Ctrl-C: the caller does not hold the process yet
        stop_process(proc)
        raise
    return proc


def _wait_until_up(proc: subprocess.Popen[bytes], port: int, logf: Path) -> None:
    """Until a bad request gets its 400."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}; see {logf}")
        request = urllib.request.Request(f"http://127.0.0.1:{port}{PATH}", data=b"{}", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=1):  # noqa: S310 (a fixed http://127.0.0.1 URL)
                pass
        except urllib.error.HTTPError as exc:
            if exc.code == 400:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the app did not answer on port {port}; see {logf}")


def start_worker(code: Path, redis_url: str, sink: AioSink, concurrency: int, logf: Path) -> subprocess.Popen[bytes]:
    env = {
        "PYTHONPATH": str(code),
        "EMAILQUEUE_REDIS_URL": redis_url,
        "EMAILQUEUE_QUEUE": QUEUE,
        "MAILER_DSN": sink.dsn,
        "MAILER_FROM_EMAIL": "no-reply@app.example.com",
        "EMAILQUEUE_METRICS_PORT": "0",
    }
    proc: subprocess.Popen[bytes] = spawn([EMAILQUEUE, "worker", "--concurrency", str(concurrency)], env=env, log=logf)
    return proc


# ---- the load ----------------------------------------------------------------------------


async def wait_delivered(sink: AioSink, n: int, cap_s: float, stall_s: float) -> bool:
    """Until the sink has accepted ``n``; gives up after ``cap_s``, or ``stall_s`` without a new acceptance."""
    deadline = time.monotonic() + cap_s
    seen, progress = -1, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - progress < stall_s:
        count = sink.window()[0]
        if count >= n:
            return True
        if count != seen:
            seen, progress = count, time.monotonic()
        await asyncio.sleep(0.02)
    return sink.window()[0] >= n


Post = Callable[[str], Awaitable[int]]


@asynccontextmanager
async def http_client(kind: str, url: str, concurrency: int) -> AsyncIterator[Post]:
    """``post(address)``: POST ``{"email": address}`` on one of ``concurrency`` kept-alive connections.

    Returns the status, 0 when the request failed.  aiohttp by default: httpx spent ~1.8 ms of CPU
    per request at 16 connections (aiohttp: ~0.1 ms), so on 2 cores it was the bottleneck of the
    queue-mode runs and the latency measured was mostly the load generator waiting for itself.
    """
    if kind == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

            async def post_httpx(address: str) -> int:
                try:
                    return (await client.post(PATH, json={"email": address})).status_code
                except httpx.HTTPError:
                    return 0

            yield post_httpx
        return
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:

        async def post_aiohttp(address: str) -> int:
            try:
                async with session.post(PATH, json={"email": address}) as response:
                    await response.read()
                    return response.status
            except (aiohttp.ClientError, TimeoutError):
                return 0

        yield post_aiohttp


async def drive(url: str, cfg: Config, concurrency: int, *, sink: AioSink, app_pid: int, seed: int) -> dict[str, Any]:
    """Warm up, run the closed loop, wait for the emails; latencies and timings (perf_counter)."""
    rng = random.Random(seed)

    def address(known: bool) -> str:
        if known:
            return f"user{rng.randrange(cfg.users)}@example.com"
        return f"nobody{rng.randrange(10**9)}@example.org"

    samples: list[Sample] = []
    async with http_client(cfg.client, url, concurrency) as post:
        # warm-up, not counted: open every connection, and send two real emails through the whole path
        sink.reset()
        await asyncio.gather(*(post(address(False)) for _ in range(concurrency)))
        await asyncio.gather(*(post(address(True)) for _ in range(2)))
        if not await wait_delivered(sink, 2, 30, 30):
            raise RuntimeError(f"the two warm-up emails did not arrive in 30 s (accepted: {sink.window()[0]})")
        sink.reset()

        budget = iter(range(cfg.max_requests))
        cpu0, own0 = cpu_seconds([app_pid]), time.process_time()
        t0 = time.perf_counter()
        end = t0 + cfg.duration_s

        async def one_client() -> None:
            while time.perf_counter() < end and next(budget, None) is not None:
                known = rng.random() < cfg.known_share
                to = address(known)
                start = time.perf_counter()
                status = await post(to)
                samples.append(Sample(known, (time.perf_counter() - start) * 1e3, status))

        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        t_end = time.perf_counter()
        app_cpu_s, own_cpu_s = cpu_seconds([app_pid]) - cpu0, time.process_time() - own0
    expected = sum(1 for s in samples if s.known and s.status == 202)
    all_in = await wait_delivered(sink, expected, cfg.drain_cap_s, stall_s=10 + 5 * sink.delay_s)
    await asyncio.sleep(0.5)  # anything beyond the expected count would be a duplicate: give it a moment
    delivered, _, last = sink.window()
    n = max(1, len(samples))
    return {
        "samples": samples,
        "elapsed_s": t_end - t0,
        "app_cpu_us_per_request": app_cpu_s / n * 1e6,
        "client_cpu_us_per_request": own_cpu_s / n * 1e6,
        "expected": expected,
        "delivered": delivered,
        "all_delivered": all_in,
        # when the last email was accepted, counted from the end of the load (<= 0: before the load ended)
        "last_delivery_after_load_s": (last - t_end) if last is not None else float("nan"),
    }


def run_async(coro: Any) -> Any:
    if _uvloop():
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    return asyncio.run(coro)


def summarize(samples: Sequence[Sample], elapsed_s: float) -> dict[str, Any]:
    ok = [s for s in samples if s.status == 202]
    out: dict[str, Any] = {
        "requests": len(samples),
        "errors": len(samples) - len(ok),
        "rps": len(samples) / elapsed_s if elapsed_s > 0 else float("nan"),
    }
    for cls, known in (("known", True), ("unknown", False)):
        ms = [s.ms for s in ok if s.known is known]
        out |= {f"n_{cls}": len(ms), f"p50_{cls}": pct(ms, 50), f"p99_{cls}": pct(ms, 99)}
        out[f"max_{cls}"] = max(ms, default=float("nan"))
    return out


def run_once(
    cfg: Config, mode: str, delay: float, concurrency: int, *, code: Path, redis_url: str, logdir: Path, seed: int
) -> dict[str, Any]:
    from emailqueue.localserver import free_port

    tag = f"{mode}-{delay:g}s-c{concurrency}-{seed}"
    sink = AioSink(delay)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sink.start()
        if mode == "queue":
            procs.append(start_worker(code, redis_url, sink, cfg.worker_concurrency, logdir / f"worker-{tag}.log"))
        port = free_port()
        logf = logdir / f"app-{tag}.log"
        app = start_app(mode, port, code=code, redis_url=redis_url, sink=sink, users=cfg.users, logf=logf)
        procs.append(app)
        out = run_async(drive(f"http://127.0.0.1:{port}", cfg, concurrency, sink=sink, app_pid=app.pid, seed=seed))
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        sink.stop()
    samples: list[Sample] = out.pop("samples")
    return {**summarize(samples, out["elapsed_s"]), **out}


# ---- report ------------------------------------------------------------------------------


def _f(x: float, digits: int = 0) -> str:
    return "–" if math.isnan(x) else f"{x:,.{digits}f}"


def _mmm(m: dict[str, float], digits: int = 0, unit: str = "") -> str:
    if not m.get("n"):
        return "–"
    if m["n"] == 1 or _f(m["min"], digits) == _f(m["max"], digits):
        return f"{_f(m['median'], digits)}{unit}"
    return f"{_f(m['median'], digits)}{unit} ({_f(m['min'], digits)}–{_f(m['max'], digits)})"


def _ms(m: dict[str, float]) -> str:
    """Milliseconds: no decimals from 100 ms, one below."""
    return _mmm(m, 0 if m.get("median", 0) >= 100 else 1, " ms")


KEYS = (
    "rps",
    *(f"{q}_{cls}" for cls in ("known", "unknown") for q in ("p50", "p99", "max")),
    "app_cpu_us_per_request",
    "client_cpu_us_per_request",
    "last_delivery_after_load_s",
)


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: mmm([r[k] for r in runs]) for k in KEYS}
    out["gap"] = mmm([r["p50_known"] - r["p50_unknown"] for r in runs])  # the timing side channel
    for k in ("requests", "errors", "expected", "delivered"):
        out[k] = sum(r[k] for r in runs)
    out["all_delivered"] = all(r["all_delivered"] for r in runs)
    return out


def markdown(res: dict[str, Any]) -> str:
    cfg, m = res["config"], res["machine"]
    lines = [
        f"Run: **{res['mode']} mode**, {cfg['repeats']} repeat(s), {m['cpus']} CPUs, Python {m['python']}, "
        f"uvicorn {m['uvicorn']} (one process, {m['loop']}, {m['http']}), Starlette {m['starlette']}, "
        f"aiosmtplib {m['aiosmtplib']}, load generator {cfg['client']} {m['client_version']}; load average at start "
        f"{' / '.join(f'{x:.2f}' for x in m['loadavg_start'])}, at end "
        f"{' / '.join(f'{x:.2f}' for x in m['loadavg_end'])}; took {res['seconds'] / 60:.1f} min; "
        f"code: commit {m['git']}, copied when the bench started.",
        "",
        f"Closed loop: each client sends its next request when the answer to the previous one arrives; "
        f"{cfg['known_share']:.0%} of requests are for one of {cfg['users']:,} existing accounts (these send an "
        f"email), the rest for unknown addresses; each run lasts {cfg['duration_s']:g} s or "
        f"{cfg['max_requests']:,} requests, whichever comes first. Queue mode: one `emailqueue worker`, "
        f"concurrency {cfg['worker_concurrency']}. Latency is measured at the client. Figures are "
        "*median (min–max)* over the repeats; emails are totals over the repeats.",
        "",
        "| SMTP server answers DATA after | clients | mode | requests/s | existing account p50 | p99 | max | "
        "unknown address p50 | p99 | emails accepted / expected | last email accepted |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    results = res["results"]
    for delay in cfg["delays"]:
        for c in cfg["concurrencies"]:
            for mode in MODES:
                a = results[f"{delay:g}"][str(c)][mode]
                if mode == "smtp":
                    when = "before the request was answered"
                elif a["last_delivery_after_load_s"]["median"] <= 0:
                    when = "before the load ended"
                else:
                    when = f"{_mmm(a['last_delivery_after_load_s'], 1, ' s')} after the load ended"
                errors = f"; **{a['errors']:,} errors**" if a["errors"] else ""
                lines.append(
                    f"| {delay:g} s | {c} | {'inline SMTP' if mode == 'smtp' else 'emailqueue'} | "
                    f"{_mmm(a['rps'])} | {_ms(a['p50_known'])} | {_ms(a['p99_known'])} | {_ms(a['max_known'])} | "
                    f"{_ms(a['p50_unknown'])} | {_ms(a['p99_unknown'])} | "
                    f"{a['delivered']:,} / {a['expected']:,}{errors} | {when} |"
                )
    lines.append("")
    for delay in cfg["delays"]:
        for c in cfg["concurrencies"]:
            s, q = results[f"{delay:g}"][str(c)]["smtp"], results[f"{delay:g}"][str(c)]["queue"]
            p50s, p50q = s["p50_known"]["median"], q["p50_known"]["median"]
            line = (
                f"- **{delay:g} s SMTP, {c} client{'s' if c > 1 else ''}**: a reset that sends an email answers in "
                f"p50 {_f(p50s)} → **{_f(p50q, 1)} ms** ({p50s / p50q:,.0f}× faster), p99 "
                f"{_f(s['p99_known']['median'])} → {_f(q['p99_known']['median'], 1)} ms; "
                f"{_f(s['rps']['median'])} → {_f(q['rps']['median'])} requests/s. Timing side channel, p50 existing "
                f"− unknown: {_mmm(s['gap'], 1, ' ms')} inline, {_mmm(q['gap'], 2, ' ms')} with emailqueue."
            )
            if c == max(cfg["concurrencies"]):  # at a few requests/s the app's idle CPU would dominate
                line += (
                    f" CPU per request: app {_f(s['app_cpu_us_per_request']['median'])} → "
                    f"{_f(q['app_cpu_us_per_request']['median'])} µs, load generator "
                    f"{_f(q['client_cpu_us_per_request']['median'])} µs."
                )
            lines.append(line)
    return "\n".join(lines) + "\n"


def update_doc(md: str, mode: str) -> None:
    block = (
        f"{START}\n<!-- generated by `python bench/password_reset.py{' --quick' if mode == 'quick' else ''}` -->\n\n"
        f"{md}{END}"
    )
    text = DOC.read_text()
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## The headline example: a password-reset endpoint\n\n" + block + "\n"
    DOC.write_text(text)


def machine(client: str) -> dict[str, Any]:
    import importlib

    import aiosmtplib
    import starlette
    import uvicorn

    try:
        importlib.import_module("httptools")
        http = "httptools"
    except ImportError:
        http = "h11"  # uvicorn's fallback HTTP parser (pure Python)
    git = shutil.which("git") or "/usr/bin/git"
    head = subprocess.run([git, "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    dirty = subprocess.run(
        [git, "status", "--porcelain", "worker/"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "uvicorn": uvicorn.__version__,
        "starlette": starlette.__version__,
        "aiosmtplib": aiosmtplib.__version__,
        "client_version": importlib.import_module(client).__version__,
        "loop": "uvloop" if _uvloop() else "asyncio",
        "http": http,
        "loadavg_start": os.getloadavg(),
        "git": head.stdout.strip() + (" plus uncommitted changes in worker/" if dirty.stdout.strip() else ""),
        "worker_changes": dirty.stdout.splitlines(),
    }


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(","))


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 repeat, 0.3 s delay only, short runs")
    p.add_argument("--delays", type=_floats, help="SMTP DATA delays in seconds, comma-separated (default 0.3,2)")
    p.add_argument("--concurrency", type=_ints, help="clients of the closed loop, comma-separated (default 1,16)")
    p.add_argument("--repeats", type=int, help="default 3 (1 with --quick)")
    p.add_argument("--duration", type=float, help="seconds per run at most (default 15; 3 with --quick)")
    p.add_argument("--max-requests", type=int, help="requests per run at most (default 3000; 600 with --quick)")
    p.add_argument("--worker-concurrency", type=int, help="queue mode: the worker's --concurrency (default 128)")
    p.add_argument("--client", choices=["aiohttp", "httpx"], help="the load generator's HTTP client (aiohttp)")
    p.add_argument(
        "--doc",
        choices=["auto", "yes", "no"],
        default="auto",
        help="rewrite the password-reset block of docs/performance.md (auto: full mode without overrides)",
    )
    p.add_argument(
        "--report", type=Path, metavar="JSON", help="only redo the table (and the doc block) from a results file"
    )
    args = p.parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        print(markdown(saved))
        if args.doc == "yes" or (args.doc == "auto" and saved["mode"] == "full"):
            update_doc(markdown(saved), saved["mode"])
            log("docs/performance.md updated")
        return 0

    overrides = {
        "delays": args.delays,
        "concurrencies": args.concurrency,
        "repeats": args.repeats,
        "duration_s": args.duration,
        "max_requests": args.max_requests,
        "worker_concurrency": args.worker_concurrency,
        "client": args.client,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    cfg = Config(**{**asdict(QUICK if args.quick else FULL), **overrides})

    t_start = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="eqb-reset-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    code = snapshot(workdir / "code")
    res: dict[str, Any] = {"mode": cfg.mode, "config": asdict(cfg), "machine": machine(cfg.client)}
    logdir = RESULTS / "logs" / "password_reset"  # git-ignored
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True)
    log(
        f"password-reset bench, {cfg.mode} mode: SMTP delays {cfg.delays} s, clients {cfg.concurrencies}, "
        f"{cfg.repeats} repeat(s); logs in {logdir.relative_to(ROOT)}"
    )
    try:
        runs = run_all(cfg, logdir, workdir, code)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    res["runs"] = runs
    res["results"] = {
        d: {c: {m: aggregate(rs) for m, rs in by_mode.items()} for c, by_mode in by_c.items()}
        for d, by_c in runs.items()
    }
    res["seconds"] = time.time() - t_start
    res["machine"]["loadavg_end"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    out_path = RESULTS / ("password_reset.json" if cfg.mode == "full" else "password_reset-quick.json")
    out_path.write_text(json.dumps(res, indent=1, default=str))
    log(f"results: {out_path.relative_to(ROOT)} ({res['seconds'] / 60:.1f} min)")
    md = markdown(res)
    print()
    print(md)
    if args.doc == "yes" or (args.doc == "auto" and cfg.mode == "full" and not overrides):
        update_doc(md, cfg.mode)
        log("docs/performance.md updated")
    return 0


def run_all(
    cfg: Config, logdir: Path, workdir: Path, code: Path
) -> dict[str, dict[str, dict[str, list[dict[str, Any]]]]]:
    """Every (delay, clients, mode) run, ``cfg.repeats`` times: runs[delay][clients][mode] = [run, ...]."""
    import redis

    from emailqueue.localserver import RedisServer

    runs: dict[str, dict[str, dict[str, list[dict[str, Any]]]]]
    runs = {f"{d:g}": {str(c): {m: [] for m in MODES} for c in cfg.concurrencies} for d in cfg.delays}
    server = RedisServer(data_dir=str(workdir / "redis")).start()
    try:
        with redis.Redis.from_url(server.url) as r:
            for rep in range(cfg.repeats):  # repeats outermost: a noisy minute spreads across settings
                for delay in cfg.delays:
                    for c in cfg.concurrencies:
                        for mode in MODES:
                            r.flushall()
                            out = run_once(
                                cfg, mode, delay, c, code=code, redis_url=server.url, logdir=logdir, seed=rep
                            )
                            runs[f"{delay:g}"][str(c)][mode].append(out)
                            log(
                                f"  repeat {rep + 1}, SMTP {delay:g} s, {c:2} clients, {mode:5}: "
                                f"{out['rps']:7.1f} req/s; existing p50 {out['p50_known']:7.1f} p99 "
                                f"{out['p99_known']:7.1f} ms; unknown p50 {out['p50_unknown']:6.2f} p99 "
                                f"{out['p99_unknown']:6.1f} ms; emails {out['delivered']}/{out['expected']}, last "
                                f"{out['last_delivery_after_load_s']:+.2f} s after the load; errors {out['errors']}"
                            )
    finally:
        server.close()
    return runs


if __name__ == "__main__":
    sys.exit(main())
