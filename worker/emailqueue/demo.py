"""``emailqueue demo``: the whole path on this machine, with nothing to configure.

Starts a local Redis-compatible server, an SMTP sink and two worker processes; enqueues
a batch that includes one recipient the sink rejects permanently (550) and one it rejects
once (451, greylisting); shows delivery progress; ends with the stats table.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time

from .localserver import RedisServer, free_port
from .message import Email
from .producer import Mailer
from .sink import Delivery, Sink
from .stats import QueueStats


def _say(text: str = "") -> None:
    print(text, flush=True)


def _worker_env(redis_url: str, dsn: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "EMAILQUEUE_REDIS_URL": redis_url,
            "EMAILQUEUE_QUEUE": "demo",
            "MAILER_DSN": dsn,
            "MAILER_FROM_EMAIL": "noreply@demo.example",
            "MAILER_FROM_NAME": "emailqueue demo",
            "EMAILQUEUE_METRICS_PORT": str(port),
            "EMAILQUEUE_METRICS_HOST": "127.0.0.1",
            "EMAILQUEUE_CONCURRENCY": "16",
        }
    )
    return env


def run_demo(count: int = 200, keep: bool = False) -> int:
    _say("emailqueue demo: local Redis + SMTP sink + 2 workers\n")
    shown: list[str] = []

    def on_delivery(d: Delivery) -> None:
        special = any(r.startswith(("greylist", "reject")) for r in d.recipients)
        if special or len(shown) < 3:
            shown.append(d.message_id)
            _say(f'  sink accepted {d.message_id[:12]} to {", ".join(d.recipients)}  "{d.subject}"')

    with RedisServer() as server, Sink(on_delivery=on_delivery) as sink:
        _say(f"  redis      {server.url}  ({os.path.basename(server.binary)}, appendonly yes, noeviction)")
        _say(f"  smtp sink  127.0.0.1:{sink.port}  (reject*@ -> 550, greylist*@ -> 451 once)")
        ports = [free_port(), free_port()]
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "emailqueue", "worker"], env=_worker_env(server.url, sink.dsn, port)
            )
            for port in ports
        ]
        dash_port, dash_token = free_port(), secrets.token_urlsafe(16)
        dashboard = subprocess.Popen(
            [sys.executable, "-m", "emailqueue", "dashboard", "--port", str(dash_port), "--queue", "demo"],
            env={**os.environ, "EMAILQUEUE_REDIS_URL": server.url, "EMAILQUEUE_DASHBOARD_TOKEN": dash_token},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _say(f"  dashboard  http://127.0.0.1:{dash_port}/  (token {dash_token}; `emailqueue demo --keep` keeps it up)")
        _say(
            f"  workers    pids {', '.join(str(w.pid) for w in workers)}; metrics on "
            + ", ".join(f"http://127.0.0.1:{p}/metrics" for p in ports)
        )
        _say()
        emails = [
            Email(
                to=f"user{i}@example.com",
                subject=f"Welcome #{i}",
                text=f"Hello user {i}!",
                html=f"<p>Hello <b>user {i}</b>!</p>",
            )
            for i in range(count)
        ]
        emails.append(Email(to="greylist@example.com", subject="Greylisted once, then delivered", text="Retry me."))
        emails.append(Email(to="reject@example.com", subject="Rejected for good", text="This one fails."))
        with Mailer.from_url(server.url, "demo") as mailer:
            started = time.perf_counter()
            mailer.send_many(emails)
            elapsed = time.perf_counter() - started
        _say(f"enqueued {len(emails)} emails in {elapsed * 1000:.1f} ms (send_many, pipelined)\n")
        ok = _watch(server.url, expected_sent=count + 1, expected_failed=1, timeout=60)
        stats = asyncio.run(_stats(server.url))
        _say()
        from .cli import format_stats

        _say(format_stats(stats))
        _say()
        _say("dead letters (emailqueue failed show):")
        _say(asyncio.run(_failed(server.url)))
        _say()
        _say("inspect and retry dead letters in your own setup with:")
        _say("  emailqueue --help")
        _say("  emailqueue stats --queue QUEUE")
        _say("  emailqueue failed show --queue QUEUE")
        _say("  emailqueue failed retry --queue QUEUE ID   (or --all)")
        if keep:
            _say(f"\nkept running: export EMAILQUEUE_REDIS_URL={server.url} EMAILQUEUE_QUEUE=demo; Ctrl-C ends")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        for w in workers:
            w.send_signal(signal.SIGTERM)
        dashboard.send_signal(signal.SIGTERM)
        codes = [w.wait(30) for w in workers]
        try:
            dashboard.wait(10)
        except subprocess.TimeoutExpired:
            dashboard.kill()
        _say(f"\nworkers stopped with exit codes {codes}; Redis and the sink shut down")
        delivered = len(set(sink.delivered_ids()))
        if not ok or any(codes) or delivered != count + 1:
            _say(f"demo FAILED: delivered {delivered}, expected {count + 1}")
            return 1
        _say(f"demo OK: {delivered} delivered, 1 dead letter (the permanent rejection), nothing lost")
        return 0


async def _stats(url: str) -> QueueStats:
    from .redisconn import async_client
    from .stats import read_queue_stats

    client = async_client(url)
    try:
        return await read_queue_stats(client, "demo")
    finally:
        await client.aclose()


async def _failed(url: str) -> str:
    from .deadletter import DeadLetters
    from .redisconn import async_client

    client = async_client(url)
    try:
        lines = []
        for d in await DeadLetters(client, "demo").all():
            s = d.summary()
            lines.append(
                f"  {s['failed_id']}  message {s['message_id']}  {s['reason']}  attempts {s['attempts']}  "
                f"smtp {s['smtp_code']}\n    {s['error']}"
            )
        return "\n".join(lines) or "  (none)"
    finally:
        await client.aclose()


def _watch(url: str, expected_sent: int, expected_failed: int, timeout: float) -> bool:
    """Progress until everything is settled: a live bar on a terminal, a line a second otherwise."""
    tty = sys.stdout.isatty()
    deadline = time.monotonic() + timeout
    last_line = 0.0
    done = False
    while time.monotonic() < deadline and not done:
        stats = asyncio.run(_stats(url))
        sent = stats.counters["sent"]
        done = sent >= expected_sent and stats.failed >= expected_failed
        bar = int(30 * sent / max(expected_sent, 1))
        line = (
            f"  [{'#' * bar}{'.' * (30 - bar)}] sent {sent}/{expected_sent}  waiting {stats.waiting}  "
            f"in flight {stats.in_flight}  delayed {stats.delayed}  failed {stats.failed}"
        )
        if tty:
            sys.stdout.write(f"\r{line}   " + ("\n" if done else ""))
            sys.stdout.flush()
        elif done or time.monotonic() - last_line >= 1.0:
            last_line = time.monotonic()
            _say(line)
        if not done:
            time.sleep(0.2)
    return done
