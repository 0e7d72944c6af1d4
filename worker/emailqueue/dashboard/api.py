"""The JSON API the page calls. Reads need a login when credentials are configured;
changes need a login, a mode that allows them and a request that cannot be forged."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emailqueue.crypto import PayloadCipher
from emailqueue.keys import validate_queue_name

from . import actions, reads
from .auth import COOKIE, Auth, Principal
from .config import DashboardConfig
from .history import History
from .sampler import Sampler

log = logging.getLogger("emailqueue.dashboard")

LOGIN_FAILURE_DELAY_S = 0.5


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Dashboard:
    """What every handler needs; one per app (``app.state.dashboard``)."""

    cfg: DashboardConfig
    redis: Redis
    auth: Auth
    history: History
    sampler: Sampler
    cipher: PayloadCipher | None
    redis_display: str


def _dash(request: Request) -> Dashboard:
    dash: Dashboard = request.app.state.dashboard
    return dash


def _viewer(request: Request) -> Principal | None:
    dash = _dash(request)
    principal = dash.auth.principal(request)
    if dash.auth.required and principal is None:
        raise ApiError(401, "log in to see the queues")
    return principal


def _actor(request: Request) -> Principal:
    dash = _dash(request)
    if dash.cfg.read_only:
        raise ApiError(403, "the dashboard runs read-only (EMAILQUEUE_DASHBOARD_READ_ONLY)")
    if not dash.auth.required:
        raise ApiError(
            403,
            "actions need a login: set EMAILQUEUE_DASHBOARD_TOKEN or EMAILQUEUE_DASHBOARD_USER/PASSWORD",
        )
    principal = dash.auth.principal(request)
    if principal is None:
        raise ApiError(401, "log in to change the queue")
    problem = dash.auth.csrf_problem(request, principal)
    if problem:
        raise ApiError(403, problem)
    return principal


def _queue(request: Request) -> str:
    name = str(request.path_params["queue"])
    try:
        validate_queue_name(name)
    except ValueError:
        raise ApiError(404, "no such queue") from None
    fixed = _dash(request).cfg.queue_list
    if fixed and name not in fixed:
        raise ApiError(404, f"queue {name!r} is not shown by this dashboard")
    return name


def _limit(request: Request, default: int) -> int:
    try:
        return min(max(int(request.query_params.get("limit", default)), 1), 1000)
    except ValueError:
        return default


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise ApiError(400, "the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


# ---- session -----------------------------------------------------------------------------


async def session(request: Request) -> Response:
    dash = _dash(request)
    principal = dash.auth.principal(request)
    return JSONResponse(
        {
            "auth_required": dash.auth.required,
            "authenticated": principal is not None,
            "user": principal.name if principal else None,
            "read_only": dash.cfg.read_only,
            "can_act": dash.cfg.can_act and principal is not None,
            "csrf": dash.auth.csrf_token(principal) if principal else None,
            "login": {"token": dash.cfg.token is not None, "password": dash.cfg.user is not None},
            "redis": dash.redis_display,
            "sample_s": dash.cfg.sample_s,
            "history_s": dash.cfg.history_s,
        }
    )


async def login(request: Request) -> Response:
    dash = _dash(request)
    problem = dash.auth.csrf_problem(request, None)
    if problem:
        raise ApiError(403, problem)
    if not dash.auth.required:
        raise ApiError(400, "no credentials are configured: there is nothing to log in to")
    data = await _body(request)
    principal = dash.auth.login(_str(data.get("token")), _str(data.get("user")), _str(data.get("password")))
    if principal is None:
        await asyncio.sleep(LOGIN_FAILURE_DELAY_S)  # slows guessing down
        log.warning("dashboard login refused from %s", request.client.host if request.client else "?")
        raise ApiError(401, "wrong credentials")
    log.info("dashboard login: %s", principal.name)
    response = JSONResponse({"ok": True, "user": principal.name})
    response.set_cookie(
        COOKIE,
        dash.auth.new_session(principal),
        max_age=dash.cfg.session_ttl_s,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    problem = _dash(request).auth.csrf_problem(request, None)
    if problem:
        raise ApiError(403, problem)
    response = JSONResponse({"ok": True})
    response.delete_cookie(COOKIE, path="/")
    return response


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


# ---- reads -------------------------------------------------------------------------------


async def overview(request: Request) -> Response:
    _viewer(request)
    dash = _dash(request)
    if request.query_params.get("rescan"):
        dash.sampler.forget_discovery()
    names = await dash.sampler.queues()
    snaps = [await reads.snapshot(dash.redis, q) for q in names]
    queues = []
    for snap in snaps:
        item = snap.as_dict()
        last = dash.history.last_point(snap.stats.queue)
        item["sent_per_s"] = last["sent_per_s"] if last else None
        queues.append(item)
    return JSONResponse({"queues": queues, "sampling_error": dash.sampler.last_error})


async def queue_detail(request: Request) -> Response:
    _viewer(request)
    dash, queue = _dash(request), _queue(request)
    snap = await reads.snapshot(dash.redis, queue)
    detail = snap.as_dict()
    detail.update(await reads.consumers(dash.redis, queue, snap.stats))
    return JSONResponse(detail)


async def history(request: Request) -> Response:
    _viewer(request)
    dash, queue = _dash(request), _queue(request)
    return JSONResponse({"sample_s": dash.cfg.sample_s, "points": dash.history.series(queue)})


async def messages(request: Request) -> Response:
    _viewer(request)
    dash, queue = _dash(request), _queue(request)
    return JSONResponse(await reads.messages(dash.redis, queue, dash.cipher, _limit(request, 100)))


async def message(request: Request) -> Response:
    _viewer(request)
    dash, queue = _dash(request), _queue(request)
    entry_id = str(request.path_params["entry_id"])
    return JSONResponse(await reads.message(dash.redis, queue, entry_id, dash.cipher))


async def dead_letters(request: Request) -> Response:
    _viewer(request)
    dash, queue = _dash(request), _queue(request)
    return JSONResponse(await reads.dead_letters(dash.redis, queue, dash.cipher, _limit(request, 200)))


async def dead_letter(request: Request) -> Response:
    _viewer(request)
    dash, queue = _dash(request), _queue(request)
    failed_id = str(request.path_params["failed_id"])
    return JSONResponse(await reads.dead_letter(dash.redis, queue, failed_id, dash.cipher))


# ---- actions -----------------------------------------------------------------------------


def _selection(data: dict[str, Any]) -> tuple[list[str], bool]:
    every = data.get("all") is True
    ids = data.get("ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise ApiError(400, "ids must be a list of dead letter ids")
    if not every and not ids:
        raise ApiError(400, 'give "ids" or "all": true')
    return list(ids), every


async def retry(request: Request) -> Response:
    who = _actor(request)
    dash, queue = _dash(request), _queue(request)
    ids, every = _selection(await _body(request))
    moved = await actions.retry(dash.redis, queue, ids, every)
    log.info("%s moved %d dead letter(s) of queue %r back to the queue", who.name, moved, queue)
    return JSONResponse({"retried": moved})


async def remove(request: Request) -> Response:
    who = _actor(request)
    dash, queue = _dash(request), _queue(request)
    ids, every = _selection(await _body(request))
    removed = await actions.remove(dash.redis, queue, ids, every)
    log.info("%s removed %d dead letter(s) of queue %r", who.name, removed, queue)
    return JSONResponse({"removed": removed})


async def pause(request: Request) -> Response:
    return await _set_paused(request, True)


async def resume(request: Request) -> Response:
    return await _set_paused(request, False)


async def _set_paused(request: Request, paused: bool) -> Response:
    who = _actor(request)
    dash, queue = _dash(request), _queue(request)
    await _body(request)
    await actions.set_paused(dash.redis, queue, paused)
    log.info("%s %s queue %r", who.name, "paused" if paused else "resumed", queue)
    return JSONResponse({"paused": paused})
