"""``emailqueue dashboard``: the CLI subcommand (argparse only; the web stack loads on run)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

DEFAULT_PORT = 8000


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``dashboard`` to the CLI's subparsers (``sub`` from ``add_subparsers``)."""
    d: argparse.ArgumentParser = sub.add_parser(
        "dashboard",
        help="web dashboard: queues, charts, consumers, dead letters; retry, remove, pause, resume",
        description="Serve the web dashboard. Redis settings come from the same environment as the worker "
        "(EMAILQUEUE_REDIS_URL, EMAILQUEUE_REDIS_PASSWORD, EMAILQUEUE_PAYLOAD_KEYS); credentials from "
        "EMAILQUEUE_DASHBOARD_TOKEN or EMAILQUEUE_DASHBOARD_USER/PASSWORD. See docs/dashboard.md.",
    )
    d.add_argument("--redis-url", help="Redis URL (env EMAILQUEUE_REDIS_URL)")
    d.add_argument(
        "--queue",
        action="append",
        help="show only this queue (repeatable, or comma-separated; env EMAILQUEUE_DASHBOARD_QUEUES); "
        "default: every queue found in Redis",
    )
    d.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    d.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    d.add_argument(
        "--read-only",
        action="store_true",
        default=None,
        help="show everything, change nothing (env EMAILQUEUE_DASHBOARD_READ_ONLY=1)",
    )
    d.add_argument("--log-format", choices=["text", "json"])
    d.set_defaults(func=run)
    return d


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM. Raises ``ConfigError`` for a bad setting."""
    import uvicorn

    from emailqueue.logs import setup_logging
    from emailqueue.settings import load_settings

    from .app import create_app
    from .config import load_dashboard_config

    settings = load_settings(redis_url=args.redis_url, log_format=args.log_format)
    queues = ",".join(args.queue) if args.queue else None
    cfg = load_dashboard_config(queues=queues, read_only=args.read_only)
    setup_logging(settings.log_format, settings.log_level, settings.secrets() + cfg.secrets())
    mode = "read-only" if not cfg.can_act else "actions need a login"
    if not cfg.auth_configured:
        mode = "view-only, no login (set EMAILQUEUE_DASHBOARD_TOKEN to allow actions)"
    print(
        f"emailqueue dashboard on http://{args.host}:{args.port}/  Redis {settings.redis_display()}  "
        f"queues {cfg.queues or 'all found'}  ({mode})",
        flush=True,
    )
    config = uvicorn.Config(
        create_app(settings, cfg),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=True,
        lifespan="on",
    )
    uvicorn.Server(config).run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m emailqueue.dashboard``: the same as ``emailqueue dashboard``."""
    from emailqueue.errors import EmailQueueError

    parser = argparse.ArgumentParser(prog="emailqueue")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["dashboard", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args))
    except EmailQueueError as exc:
        print(f"emailqueue: error: {exc}", file=sys.stderr)
        return 1
