"""The ASGI app: routes, static files, security headers, error handling, lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emailqueue.redisconn import async_client, translate
from emailqueue.settings import Settings

from . import api
from .auth import Auth
from .config import DashboardConfig
from .history import History
from .reads import NotFound
from .sampler import Sampler

log = logging.getLogger("emailqueue.dashboard")
STATIC = Path(__file__).parent / "static"

#: No inline script or style, nothing from elsewhere, never inside a frame.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


class SecurityHeaders:
    """Adds ``HEADERS`` to every response, and ``Cache-Control: no-store`` outside /static."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("cache-control", "no-cache" if static else "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def index(_: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


async def healthz(_: Request) -> Response:
    return PlainTextResponse("ok\n")


async def readyz(request: Request) -> Response:
    dash: api.Dashboard = request.app.state.dashboard
    try:
        await dash.redis.ping()
    except (RedisError, OSError):
        return PlainTextResponse("redis unreachable\n", status_code=503)
    return PlainTextResponse("ready\n")


def routes() -> list[Route | Mount]:
    q = "/api/queues/{queue}"
    return [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/api/session", api.session),
        Route("/api/login", api.login, methods=["POST"]),
        Route("/api/logout", api.logout, methods=["POST"]),
        Route("/api/overview", api.overview),
        Route(q, api.queue_detail),
        Route(f"{q}/history", api.history),
        Route(f"{q}/messages", api.messages),
        Route(f"{q}/messages/{{entry_id}}", api.message),
        Route(f"{q}/dead-letters", api.dead_letters),
        Route(f"{q}/dead-letters/retry", api.retry, methods=["POST"]),
        Route(f"{q}/dead-letters/remove", api.remove, methods=["POST"]),
        Route(f"{q}/dead-letters/{{failed_id}}", api.dead_letter),
        Route(f"{q}/pause", api.pause, methods=["POST"]),
        Route(f"{q}/resume", api.resume, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


def create_app(settings: Settings, cfg: DashboardConfig) -> ASGIApp:
    """The dashboard for the Redis of ``settings``; sampling runs while the app is up."""
    url = settings.redis_connection_url()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis = async_client(url)
        history = History(cfg.samples_kept)
        sampler = Sampler(redis, history, cfg.sample_s, cfg.queue_list, cfg.rediscover_s)
        app.state.dashboard = api.Dashboard(
            cfg=cfg,
            redis=redis,
            auth=Auth(cfg),
            history=history,
            sampler=sampler,
            cipher=settings.cipher(),
            redis_display=settings.redis_display(),
        )
        sampler.start()
        try:
            yield
        finally:
            await sampler.stop()
            await redis.aclose()

    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, api.ApiError)
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    async def not_found(_: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=404)

    async def redis_error(_: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(translate(exc, url))}, status_code=503)

    app = Starlette(
        routes=routes(),
        lifespan=lifespan,
        exception_handlers={
            api.ApiError: api_error,
            NotFound: not_found,
            RedisError: redis_error,
            OSError: redis_error,
        },
    )
    return SecurityHeaders(app)
