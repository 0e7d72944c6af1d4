"""The ``emailqueue`` command line.  Expected failures print one line and exit non-zero."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import redis

from .errors import EmailQueueError
from .redisconn import async_client, translate
from .settings import Settings, load_settings

EXIT_ERROR = 1
EXIT_USAGE = 2


def _run(coro: Coroutine[Any, Any, int], fast_loop: bool = False) -> int:
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if fast_loop:
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def _settings(args: argparse.Namespace, **extra: object) -> Settings:
    return load_settings(redis_url=args.redis_url, queue=args.queue, **extra)


async def _with_redis(settings: Settings, fn: Callable[[Any], Awaitable[int]]) -> int:
    client = async_client(settings.redis_connection_url())
    try:
        return await fn(client)
    except (redis.RedisError, OSError) as exc:
        raise translate(exc, settings.redis_url.get_secret_value()) from None
    finally:
        await client.aclose()


# ---- commands ------------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    from .logs import setup_logging
    from .worker import Worker

    settings = _settings(
        args,
        concurrency=args.concurrency,
        limit=args.limit,
        time_limit_s=args.time_limit,
        memory_limit_mb=args.memory_limit,
        metrics_port=args.metrics_port,
        mailer_dsn=args.dsn,
        log_format=args.log_format,
    )
    level = "DEBUG" if args.verbose else settings.log_level
    setup_logging(settings.log_format, level, settings.secrets())
    if args.verbose < 2:
        import logging

        for noisy in ("aiosmtplib", "asyncio", "mail.log"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return _run(Worker(settings).run(), fast_loop=True)


def cmd_send(args: argparse.Namespace) -> int:
    from .message import Email
    from .producer import AsyncMailer

    settings = _settings(args)
    data: dict[str, Any] = {"to": args.to, "subject": args.subject or "", "cc": args.cc or [], "bcc": args.bcc or []}
    if args.sender:
        data["from"] = args.sender
    if args.text is not None:
        data["text"] = args.text
    if args.html is not None:
        data["html"] = args.html
    if args.priority:
        data["priority"] = args.priority
    email = Email(**data)

    async def send(client: Any) -> int:
        mailer = AsyncMailer(
            client,
            settings.queue,
            max_payload_bytes=settings.max_payload_bytes,
            url=settings.redis_url.get_secret_value(),
            cipher=settings.cipher(),
        )
        print(await mailer.send(email))
        return 0

    return _run(_with_redis(settings, send))


def cmd_test_email(args: argparse.Namespace) -> int:
    args.to, args.cc, args.bcc, args.priority = [args.address], [], [], "high"
    args.subject = "emailqueue test email"
    args.text = f"This is a test email sent by emailqueue at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.\n"
    args.html = None
    return cmd_send(args)


def cmd_stats(args: argparse.Namespace) -> int:
    from .stats import read_queue_stats

    settings = _settings(args)

    async def show(client: Any) -> int:
        stats = await read_queue_stats(client, settings.queue)
        if args.json:
            print(json.dumps(stats.as_dict(), indent=2))
            return 0
        print(format_stats(stats))
        return 0

    return _run(_with_redis(settings, show))


def format_stats(stats: Any) -> str:
    rows = [
        ("waiting", stats.waiting),
        ("in flight", stats.in_flight),
        ("delayed", stats.delayed),
        ("failed", stats.failed),
    ]
    title = f"queue {stats.queue}" + ("  (PAUSED: emailqueue resume)" if stats.paused else "")
    lines = [title, *[f"  {name:<22}{value:>10}" for name, value in rows], "counters"]
    lines += [f"  {name:<22}{value:>10}" for name, value in stats.counters.items()]
    lines.append(f"consumers ({len(stats.consumers)})")
    lines += [f"  {c.name:<40} pending {c.pending:<6} idle {c.idle_ms / 1000:.1f}s" for c in stats.consumers]
    return "\n".join(lines)


def cmd_failed(args: argparse.Namespace) -> int:
    from .deadletter import DeadLetters

    settings = _settings(args)

    async def act(client: Any) -> int:
        dl = DeadLetters(client, settings.queue)
        if args.action == "show":
            letters = await dl.all()
            if args.ids:
                letters, missing = await dl.find(args.ids)
                if missing:
                    raise EmailQueueError(f"no dead letter with id {', '.join(missing)}")
            if args.json:
                print(
                    json.dumps([{**d.summary(), "fields": d.fields if args.ids else None} for d in letters], indent=2)
                )
            elif not letters:
                print("no dead letters")
            else:
                for d in letters:
                    s = d.summary()
                    print(
                        f"{s['failed_id']}  message {s['message_id']}  {s['reason']}  attempts {s['attempts']}  "
                        f"smtp {s['smtp_code'] or '-'}  at {s['failed_at']}\n    {s['error']}"
                    )
            return 0
        if args.all:
            letters, missing = await dl.all(), []
        elif args.ids:
            letters, missing = await dl.find(args.ids)
        else:
            raise EmailQueueError(f"failed {args.action}: give one or more IDs, or --all")
        if missing:
            raise EmailQueueError(f"no dead letter with id {', '.join(missing)}")
        done = await (dl.retry(letters) if args.action == "retry" else dl.remove(letters))
        verb = "moved back to the queue" if args.action == "retry" else "removed"
        print(f"{done} dead letter(s) {verb}")
        return 0

    return _run(_with_redis(settings, act))


def cmd_stop_workers(args: argparse.Namespace) -> int:
    from .keys import QueueKeys

    settings = _settings(args)

    async def stop(client: Any) -> int:
        await client.hset(QueueKeys(settings.queue).control, "stop_at", int(time.time() * 1000))
        print(f"workers of queue {settings.queue!r} will finish what they hold and exit (within ~1s)")
        return 0

    return _run(_with_redis(settings, stop))


def cmd_status(args: argparse.Namespace) -> int:
    from .producer import AsyncMailer

    settings = _settings(args)

    async def show(client: Any) -> int:
        mailer = AsyncMailer(client, settings.queue, url=settings.redis_url.get_secret_value(), cipher=None)
        status = await mailer.status(args.id)
        if status is None:
            raise EmailQueueError(
                f"no status for message {args.id} in queue {settings.queue!r}: not picked up by a worker yet, "
                "an unknown id, or older than EMAILQUEUE_STATUS_TTL_S"
            )
        if args.json:
            print(json.dumps(status.as_dict(), indent=2))
        else:
            print(f"{status.message_id}  {status.state}")
            for key, value in status.fields.items():
                if value:
                    print(f"  {key:<16}{value}")
        return 0

    return _run(_with_redis(settings, show))


def cmd_pause(args: argparse.Namespace) -> int:
    from .keys import QueueKeys

    settings = _settings(args)

    async def flip(client: Any) -> int:
        control = QueueKeys(settings.queue).control
        if args.command == "pause":
            await client.hset(control, "paused", "1")
            print(f"queue {settings.queue!r} paused: workers finish what they hold and take nothing new")
        else:
            await client.hdel(control, "paused")
            print(f"queue {settings.queue!r} resumed")
        return 0

    return _run(_with_redis(settings, flip))


def cmd_suppression(args: argparse.Namespace) -> int:
    from .message import Address
    from .suppression import SuppressionList

    settings = _settings(args)
    addresses = [Address(email=a).email for a in args.addresses]  # InvalidEmail names a bad one

    async def act(client: Any) -> int:
        sl = SuppressionList(client, settings.queue)
        if args.action == "list":
            entries = await sl.all()
            if args.json:
                print(json.dumps(entries, indent=2))
            elif not entries:
                print("suppression list is empty")
            else:
                for address, rec in entries.items():
                    print(
                        f"{address}  {rec.get('reason', '')} {rec.get('code') or ''}  at {rec.get('at', '')}  "
                        f"message {rec.get('message_id') or '-'}"
                    )
            return 0
        if args.action == "add":
            if not addresses:
                raise EmailQueueError("suppression add: give one or more addresses")
            await sl.add(addresses)
            print(f"{len(addresses)} address(es) suppressed")
            return 0
        if args.all:
            print(f"{await sl.clear()} address(es) removed from the suppression list")
            return 0
        if not addresses:
            raise EmailQueueError("suppression remove: give one or more addresses, or --all")
        removed = await sl.remove(addresses)
        if removed < len(addresses):
            known = await sl.all()
            missing = [a for a in addresses if a not in known]
            if missing and removed == 0:
                raise EmailQueueError(f"not on the suppression list: {', '.join(missing)}")
        print(f"{removed} address(es) removed from the suppression list")
        return 0

    return _run(_with_redis(settings, act))


def cmd_sink(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .sink import Delivery, Sink

    def show(d: Delivery) -> None:
        if not args.quiet:
            print(f"accepted {d.message_id} from {d.sender} to {', '.join(d.recipients)}: {d.subject}", flush=True)

    sink = Sink(args.port, hostname=args.host, on_delivery=show).start()
    print(f"SMTP sink listening on {args.host}:{sink.port} (reject*@ -> 550, greylist*@ -> 451 once)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    sink.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(count=args.count, keep=args.keep)


# ---- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emailqueue", description="Asynchronous email delivery over Redis Streams.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--redis-url", help="Redis URL (env EMAILQUEUE_REDIS_URL)")
    common.add_argument("--queue", help="queue name (env EMAILQUEUE_QUEUE, default 'default')")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for name in ("worker", "consume"):
        w = sub.add_parser(
            name,
            parents=[common],
            help="deliver queued email (alias: consume)" if name == "worker" else "alias of worker",
        )
        w.add_argument("--concurrency", type=int, help="deliveries in flight (env EMAILQUEUE_CONCURRENCY)")
        w.add_argument("--limit", type=int, help="exit after N messages")
        w.add_argument("--time-limit", type=float, help="exit after S seconds")
        w.add_argument("--memory-limit", type=int, help="exit when RSS exceeds MB")
        w.add_argument("--metrics-port", type=int, help="port of /healthz /readyz /metrics; 0 = off")
        w.add_argument("--dsn", help="SMTP DSN (env MAILER_DSN)")
        w.add_argument("--log-format", choices=["text", "json"])
        w.add_argument("-v", "--verbose", action="count", default=0, help="-v: one line per email; -vv: SMTP too")
        w.set_defaults(func=cmd_worker)

    s = sub.add_parser("send", parents=[common], help="enqueue one email")
    s.add_argument("--to", action="append", required=True)
    s.add_argument("--cc", action="append")
    s.add_argument("--bcc", action="append")
    s.add_argument("--from", dest="sender")
    s.add_argument("--subject")
    s.add_argument("--text")
    s.add_argument("--html")
    s.add_argument("--priority", choices=["high", "normal", "bulk"])
    s.set_defaults(func=cmd_send)

    t = sub.add_parser("test-email", parents=[common], help="enqueue a test email to ADDRESS")
    t.add_argument("address")
    t.add_argument("--from", dest="sender")
    t.set_defaults(func=cmd_test_email)

    st = sub.add_parser("stats", parents=[common], help="queue figures and consumers")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_stats)

    f = sub.add_parser("failed", help="list, retry or remove dead letters")
    fsub = f.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("show", "list dead letters (or one in detail)"),
        ("retry", "move back to the queue"),
        ("remove", "delete for good"),
    ):
        fa = fsub.add_parser(action, parents=[common], help=text)
        fa.add_argument("ids", nargs="*", metavar="ID", help="failed entry id or message id")
        if action == "show":
            fa.add_argument("--json", action="store_true")
        else:
            fa.add_argument("--all", action="store_true")
        fa.set_defaults(func=cmd_failed)

    sw = sub.add_parser("stop-workers", parents=[common], help="every worker finishes what it holds and exits")
    sw.set_defaults(func=cmd_stop_workers)

    ss = sub.add_parser(
        "status", parents=[common], help="the state of one message (scheduled, sending ... sent / failed)"
    )
    ss.add_argument("id", metavar="ID")
    ss.add_argument("--json", action="store_true")
    ss.set_defaults(func=cmd_status)

    for name, text in (
        ("pause", "stop delivering (workers keep running; mail keeps queueing)"),
        ("resume", "deliver again after pause"),
    ):
        pr = sub.add_parser(name, parents=[common], help=text)
        pr.set_defaults(func=cmd_pause)

    su = sub.add_parser("suppression", help="list, add or remove suppressed (hard-bounced) recipients")
    susub = su.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("list", "show suppressed recipients"),
        ("add", "suppress addresses by hand"),
        ("remove", "send to these addresses again"),
    ):
        sa = susub.add_parser(action, parents=[common], help=text)
        sa.add_argument("addresses", nargs="*", metavar="ADDRESS")
        if action == "list":
            sa.add_argument("--json", action="store_true")
        if action == "remove":
            sa.add_argument("--all", action="store_true")
        sa.set_defaults(func=cmd_suppression)

    sk = sub.add_parser("sink", help="run a local SMTP sink that prints what it accepts")
    sk.add_argument("--host", default="127.0.0.1")
    sk.add_argument("--port", type=int, default=2525)
    sk.add_argument("--quiet", action="store_true")
    sk.set_defaults(func=cmd_sink)

    from .dashboard.command import add_parser as add_dashboard_parser

    add_dashboard_parser(sub)

    d = sub.add_parser("demo", help="run the whole thing locally: Redis, SMTP sink, two workers, a batch")
    d.add_argument("--count", type=int, default=200)
    d.add_argument("--keep", action="store_true", help="keep Redis and the sink running until Ctrl-C")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except EmailQueueError as exc:
        print(f"emailqueue: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
