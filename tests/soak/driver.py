"""The chaos soak driver.

One process holds the SMTP server (aiosmtpd, in a thread) and the chaos schedule; it starts a
real Redis (AOF on), producer processes and ``emailqueue worker`` processes, and on a
schedule: SIGKILLs a random worker and starts a new one, restarts Redis (graceful under
``appendfsync everysec``, kill -9 once switched to ``appendfsync always``), answers 4xx for a
while, takes the SMTP server down for a while.  A known set of recipients is answered 550.
When everything is enqueued and the queue has drained, it accounts for every id
(``accounting.account``), prints the table and returns non-zero on any violation.

    python -m tests.soak --n 100000            # the full soak (make soak)
    python -m tests.soak --n 3000 --ci         # the CI-sized one (also: pytest tests/soak)
    python -m tests.soak crash                 # kill -9 right after enqueue: everysec vs always
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import redis

from emailqueue.keys import QueueKeys
from emailqueue.localserver import RedisServer
from emailqueue.wire import message_id_of

from .accounting import DELIVER, PERMANENT, DeadLetterRecord, KillEvent, Observations, Report, account
from .producer import Plan, perm_address, produce
from .sinks import SoakSink

QUEUE = "soak"
K = QueueKeys(QUEUE)

# The chaos actions, in the order the schedule cycles through them.
CYCLE = ("kill_worker", "smtp_4xx", "redis_restart", "kill_worker", "smtp_drop", "redis_crash")


@dataclass
class SoakConfig:
    n: int = 100_000
    producers: int = 4
    workers: int = 3
    concurrency: int = 16
    enqueue_rate: float = 1500.0  # ids/s over all producers; the chaos runs while they enqueue
    gap_s: float = 6.0  # between two chaos actions
    outage_s: float = 3.0  # length of a 4xx period and of an SMTP outage
    claim_idle_ms: int = 10_000
    perm_every: int = 50  # one id in 50 goes to a recipient answered 550
    smtp_latency_s: float = 0.005  # time the SMTP server takes to accept DATA
    drain_timeout_s: float = 600.0
    seed: int = 1
    run_dir: str | None = None
    keep: bool = False
    actions: tuple[str, ...] = ()  # explicit schedule; default: CYCLE repeated while enqueuing

    @classmethod
    def ci(cls, **kw: Any) -> SoakConfig:
        base: dict[str, Any] = {
            "n": 3000,
            "producers": 3,
            "workers": 3,
            "enqueue_rate": 150.0,
            "gap_s": 1.5,
            "outage_s": 1.5,
            "claim_idle_ms": 5000,
            "drain_timeout_s": 60.0,
            "actions": ("kill_worker", "smtp_4xx", "redis_restart", "kill_worker", "smtp_drop", "redis_crash"),
        }
        base.update(kw)
        return cls(**base)


@dataclass
class Event:
    at: float
    action: str
    detail: str


@dataclass
class SoakResult:
    report: Report
    config: SoakConfig
    events: list[Event]
    figures: dict[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        lines = [f"soak: {self.config.n} ids, {self.config.producers} producers, {self.config.workers} workers"]
        lines += [f"  {k}: {v}" for k, v in self.figures.items()]
        lines.append("chaos events:")
        lines += [f"  t={e.at:7.1f}s {e.action:<14} {e.detail}" for e in self.events]
        lines.append("")
        lines.append(self.report.table())
        return "\n".join(lines)


class _Worker:
    def __init__(self, index: int, env: dict[str, str], log_dir: Path) -> None:
        self.index = index
        self.log_path = log_dir / f"worker-{index}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in finish()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emailqueue", "worker"],
            env={**os.environ, **env, "EMAILQUEUE_CONSUMER_NAME": f"soak-w{index}"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.consumer = f"soak-w{index}-{self.proc.pid}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._log.close()

    def stop(self, timeout: float = 40.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = -9
        self._log.close()
        return code


class Soak:
    def __init__(self, cfg: SoakConfig, log: Callable[[str], None] = print) -> None:
        self.cfg = cfg
        self.log = log
        self.rng = random.Random(cfg.seed)
        self.dir = Path(cfg.run_dir or tempfile.mkdtemp(prefix="emailqueue-soak-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.plan = Plan(cfg.n, cfg.producers, cfg.perm_every)
        self.redis = RedisServer(appendfsync="everysec", data_dir=str(self.dir / "redis"))
        self.sink = SoakSink(latency_s=cfg.smtp_latency_s)
        self.workers: list[_Worker] = []
        self.all_workers: list[_Worker] = []
        self.kills: list[KillEvent] = []
        self.cuts: list[float] = []
        self.events: list[Event] = []
        self.t0 = time.monotonic()
        self._next_worker = 0
        self._admin: redis.Redis | None = None

    # ---- plumbing ---------------------------------------------------------------------

    @property
    def admin(self) -> redis.Redis:
        if self._admin is None:
            self._admin = redis.Redis.from_url(self.redis.url, socket_timeout=10)
        return self._admin

    def worker_env(self) -> dict[str, str]:
        return {
            "EMAILQUEUE_REDIS_URL": self.redis.url,
            "EMAILQUEUE_QUEUE": QUEUE,
            "MAILER_DSN": self.sink.dsn,
            "MAILER_FROM_EMAIL": "soak@soak.test",
            "EMAILQUEUE_CONCURRENCY": str(self.cfg.concurrency),
            "EMAILQUEUE_RETRY_DELAY_MS": "100",
            "EMAILQUEUE_RETRY_MULTIPLIER": "2",
            "EMAILQUEUE_RETRY_MAX_DELAY_MS": "1000",
            "EMAILQUEUE_MAX_RETRIES": "60",
            "EMAILQUEUE_CLAIM_IDLE_MS": str(self.cfg.claim_idle_ms),
            "EMAILQUEUE_METRICS_PORT": "0",
            "EMAILQUEUE_SHUTDOWN_GRACE_S": "15",
            "EMAILQUEUE_SMTP_TIMEOUT_S": "10",
            "EMAILQUEUE_LOG_LEVEL": "INFO",
        }

    def start_worker(self) -> _Worker:
        w = _Worker(self._next_worker, self.worker_env(), self.dir)
        self._next_worker += 1
        self.workers.append(w)
        self.all_workers.append(w)
        return w

    def now(self) -> float:
        return time.monotonic() - self.t0

    def event(self, action: str, detail: str) -> None:
        e = Event(self.now(), action, detail)
        self.events.append(e)
        self.log(f"[soak t={e.at:6.1f}s] {action}: {detail}")

    def _pending_count(self, consumer: str) -> int:
        try:
            return len(self.admin.xpending_range(K.stream, "workers", "-", "+", 1, consumername=consumer))
        except redis.RedisError:
            return 0

    def _pending_ids(self, consumer: str) -> set[str]:
        """Message ids of the entries a consumer holds (pending in the group)."""
        try:
            pending = self.admin.xpending_range(K.stream, "workers", "-", "+", 10_000, consumername=consumer)
            out: set[str] = set()
            for p in pending:
                eid = p["message_id"]
                entries = self.admin.xrange(K.stream, eid, eid)
                for entry_id, raw in entries:
                    fields = {k.decode(): v.decode("utf-8", "replace") for k, v in raw.items()}
                    out.add(message_id_of(fields, entry_id.decode()))
            return out
        except redis.RedisError as exc:
            self.log(f"[soak] could not read the pending entries of {consumer}: {exc}")
            return set()

    # ---- chaos actions ----------------------------------------------------------------

    def kill_worker(self) -> None:
        victim = self.rng.choice(self.workers)
        deadline = time.monotonic() + 3.0  # kill it mid-send when it has work in flight
        while time.monotonic() < deadline and not self._pending_count(victim.consumer):
            time.sleep(0.01)
        before = self._pending_ids(victim.consumer)
        victim.kill()
        after = self._pending_ids(victim.consumer)  # frozen until reclaimed (claim idle)
        held = frozenset(before | after)
        self.kills.append(KillEvent(time.time(), victim.consumer, held))
        self.workers.remove(victim)
        new = self.start_worker()
        self.event("kill_worker", f"SIGKILL {victim.consumer} holding {len(held)} entries; started {new.consumer}")

    def smtp_4xx(self) -> None:
        self.sink.state.mode = "tempfail"
        self.event("smtp_4xx", f"SMTP answers 451 to every RCPT for {self.cfg.outage_s:g}s")
        time.sleep(self.cfg.outage_s)
        self.sink.state.mode = "ok"

    def smtp_drop(self) -> None:
        self.cuts.append(time.time())
        self.sink.stop()
        self.event("smtp_drop", f"SMTP server down for {self.cfg.outage_s:g}s")
        time.sleep(self.cfg.outage_s)
        self.sink.start()

    def redis_restart(self) -> None:
        t = time.monotonic()
        self._drop_admin()
        self.redis.restart(crash=False)
        self.event(
            "redis_restart",
            f"graceful (SIGTERM) restart, appendfsync {self.redis.appendfsync}, {time.monotonic() - t:.2f}s down",
        )

    def redis_crash(self) -> None:
        if self.redis.appendfsync != "always":
            self.admin.config_set("appendfsync", "always")
            self.redis.appendfsync = "always"  # and on every start from now on
        t = time.monotonic()
        self._drop_admin()
        self.redis.restart(crash=True)
        self.event("redis_crash", f"kill -9 and restart, appendfsync always, {time.monotonic() - t:.2f}s down")

    def _drop_admin(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    # ---- the run ------------------------------------------------------------------------

    def run(self) -> SoakResult:
        cfg = self.cfg
        ctx = mp.get_context("spawn")
        procs: list[Any] = []
        try:
            self.redis.start(timeout=60)
            self.sink.state.reject = {perm_address(m) for m, perm in self.plan.all().items() if perm}
            self.sink.start()
            for _ in range(cfg.workers):
                self.start_worker()
            self.t0 = time.monotonic()
            per_producer_rate = cfg.enqueue_rate / cfg.producers
            for p in range(cfg.producers):
                out = str(self.dir / f"producer-{p}.json")
                proc = ctx.Process(
                    target=produce,
                    args=(self.redis.url, QUEUE, self.plan, p),
                    kwargs={"rate": per_producer_rate, "out": out},
                    daemon=True,
                )
                proc.start()
                procs.append(proc)
            self._chaos(lambda: any(p.is_alive() for p in procs))
            for proc in procs:
                proc.join()
            enqueue_s = self.now()
            self.event("enqueued", f"all {cfg.n} ids enqueued by {cfg.producers} producers")
            drained = self._drain()
            drain_s = self.now()
            codes = [w.stop() for w in self.workers]
            self.event("workers_stopped", f"SIGTERM to {len(codes)} workers, exit codes {codes}")
            obs = self._observe(procs)
            report = account(obs)
            stats = {k.decode(): int(v) for k, v in self.admin.hgetall(K.stats).items()}
            figures = {
                "run dir": str(self.dir),
                "redis": f"{self.redis.binary}, AOF on, everysec then always",
                "enqueue phase": f"{enqueue_s:.1f}s",
                "drained at": f"{drain_s:.1f}s ({'yes' if drained else 'NO: timed out'})",
                "delivery throughput": f"{self.sink.total() / max(drain_s, 0.001):.0f} emails/s overall",
                "sigkills": len(self.kills),
                "entries in flight at the sigkills": sum(len(k.in_flight) for k in self.kills),
                "smtp outages / 4xx periods": f"{len(self.cuts)} / {sum(e.action == 'smtp_4xx' for e in self.events)}",
                "redis restarts (graceful / kill -9)": (
                    f"{sum(e.action == 'redis_restart' for e in self.events)} / "
                    f"{sum(e.action == 'redis_crash' for e in self.events)}"
                ),
                "producer chunks re-sent (ids)": len(obs.resent),
                "worker exit codes on SIGTERM": codes,
                "server counters": stats,
                "451 replies given": self.sink.tempfail_replies,
                "copies accepted by the SMTP server": self.sink.total(),
            }
            if not drained or any(codes):
                report.notes.append("the queue did not drain in time or a worker did not exit 0")
                if not drained:
                    report.rows["still queued at the end"] += 0
            result = SoakResult(report, cfg, self.events, figures)
            (self.dir / "report.txt").write_text(result.render())
            (self.dir / "report.json").write_text(
                json.dumps(
                    {"rows": dict(report.rows), "figures": figures, "config": asdict(cfg), "ok": report.ok},
                    indent=2,
                    default=str,
                )
            )
            return result
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.kill()
            for w in self.all_workers:
                if w.proc.poll() is None:
                    w.kill()
            self.sink.stop()
            self._drop_admin()
            self.redis.kill()
            if not cfg.keep:
                shutil.rmtree(self.dir / "redis", ignore_errors=True)

    def _chaos(self, enqueuing: Callable[[], bool]) -> None:
        actions = list(self.cfg.actions)
        step = 0
        while True:
            if self.cfg.actions:
                if step >= len(actions):
                    return
                action = actions[step]
            else:
                if not enqueuing():
                    return
                action = CYCLE[step % len(CYCLE)]
            deadline = time.monotonic() + self.cfg.gap_s
            while time.monotonic() < deadline:
                time.sleep(0.05)
            cast(Callable[[], None], getattr(self, action))()
            step += 1

    def _drain(self) -> bool:
        n = self.cfg.n
        perms = sum(self.plan.all().values())
        deadline = time.monotonic() + self.cfg.drain_timeout_s
        last = 0.0
        while time.monotonic() < deadline:
            try:
                backlog = int(self.admin.xlen(K.stream)) + int(self.admin.zcard(K.delayed))
                failed = int(self.admin.xlen(K.failed))
            except redis.RedisError:
                time.sleep(0.2)
                continue
            delivered = self.sink.distinct()
            if backlog == 0 and delivered + failed >= n and failed >= perms:
                return True
            if time.monotonic() - last > 10:
                last = time.monotonic()
                self.log(f"[soak t={self.now():6.1f}s] delivered {delivered}, failed {failed}, backlog {backlog}")
            time.sleep(0.2)
        return False

    def _observe(self, procs: list[Any]) -> Observations:
        expected = {m: PERMANENT if perm else DELIVER for m, perm in self.plan.all().items()}
        accepted, perm_replies = self.sink.snapshot()
        dead = []
        for eid, raw in self.admin.xrange(K.failed):
            f = {k.decode(): v.decode("utf-8", "replace") for k, v in raw.items()}
            dead.append(
                DeadLetterRecord(
                    mid=message_id_of(f, eid.decode()),
                    reason=f.get("reason", ""),
                    smtp_code=f.get("smtp_code", ""),
                    attempts=int(f.get("attempts", "0") or 0),
                    error=f.get("error", ""),
                )
            )
        still: set[str] = set()
        for eid, raw in self.admin.xrange(K.stream):
            f = {k.decode(): v.decode("utf-8", "replace") for k, v in raw.items()}
            still.add(message_id_of(f, eid.decode()))
        for member in self.admin.zrange(K.delayed, 0, -1):
            still.add(message_id_of(json.loads(member), ""))
        resent: set[str] = set()
        for p in range(self.cfg.producers):
            path = self.dir / f"producer-{p}.json"
            if path.exists():
                resent.update(json.loads(path.read_text())["resent"])
            else:
                self.log(f"[soak] producer {p} wrote no summary (crashed?)")
        return Observations(
            expected=expected,
            perm_address={m: perm_address(m) for m, kind in expected.items() if kind == PERMANENT},
            accepted=accepted,
            perm_replies=perm_replies,
            dead=dead,
            still_queued=still,
            kills=self.kills,
            smtp_cuts=self.cuts,
            resent=resent,
        )


def run_soak(cfg: SoakConfig, log: Callable[[str], None] = print) -> SoakResult:
    return Soak(cfg, log).run()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["crash"]:
        from .crash import main as crash_main

        return crash_main(args[1:])
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, help="ids to enqueue (default 100000; 3000 with --ci)")
    parser.add_argument("--producers", type=int, help="producer processes (default 4)")
    parser.add_argument("--workers", type=int, help="worker processes, 2-4 (default 3)")
    parser.add_argument("--concurrency", type=int, help="deliveries in flight per worker (default 16)")
    parser.add_argument("--rate", dest="enqueue_rate", type=float, help="enqueue rate, ids/s over all producers")
    parser.add_argument("--gap", dest="gap_s", type=float, help="seconds between chaos actions")
    parser.add_argument("--outage", dest="outage_s", type=float, help="seconds of each 4xx period / SMTP outage")
    parser.add_argument("--claim-idle-ms", type=int, help="EMAILQUEUE_CLAIM_IDLE_MS of the workers")
    parser.add_argument("--smtp-latency", dest="smtp_latency_s", type=float, help="seconds the SMTP server takes")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--dir", dest="run_dir", help="run directory (logs, report); default: a temp dir")
    parser.add_argument("--keep", action="store_true", default=None, help="keep the Redis data dir")
    parser.add_argument("--ci", action="store_true", help="the CI-sized run: 3000 ids, 6 chaos actions, ~40 s")
    ns = vars(parser.parse_args(args))
    ci = ns.pop("ci")
    overrides = {k: v for k, v in ns.items() if v is not None}
    cfg = SoakConfig.ci(**overrides) if ci else SoakConfig(**overrides)
    result = run_soak(cfg)
    print()
    print(result.render())
    return 0 if result.report.ok else 1
