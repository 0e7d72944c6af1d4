"""The dashboard's HTTP API against a real Redis: who may read, who may act, and how a
forged request is refused. The browser tests (test_browser.py) drive the same API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import redis

from emailqueue.keys import QueueKeys
from emailqueue.localserver import RedisServer
from emailqueue.message import Email
from emailqueue.producer import Mailer
from tests.dashboard.conftest import TOKEN, DashboardProcess

QUEUE = "test"
JSON = {"Content-Type": "application/json"}
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _dead_letter(rclient: redis.Redis, mid: str = "m-1") -> str:
    """A dead letter as the worker writes it (fields of docs/wire-format.md)."""
    payload = Email(id=mid, to="jane@example.com", subject="Hello", text="Hi").model_dump_json(by_alias=True)
    return str(
        rclient.xadd(
            QueueKeys(QUEUE).failed,
            {
                "v": "1",
                "payload": payload,
                "mid": mid,
                "attempts": "1",
                "reason": "permanent",
                "error": "554 5.0.0 rejected",
                "smtp_code": "554",
                "failed_at": "2026-01-01T00:00:00Z",
                "entry_id": "1-0",
            },
        )
    )


def _login(client: httpx.Client) -> str:
    response = client.post("/api/login", json={"token": TOKEN})
    assert response.status_code == 200, response.text
    csrf = client.get("/api/session").json()["csrf"]
    assert csrf
    return str(csrf)


def test_everything_needs_a_login_when_a_token_is_set(
    start_dashboard: Callable[..., DashboardProcess], mailer: Mailer
) -> None:
    mailer.send(Email(to="a@example.com", subject="x", text="y"))
    dash = start_dashboard(EMAILQUEUE_DASHBOARD_TOKEN=TOKEN)
    with httpx.Client(base_url=dash.url) as client:
        assert client.get("/api/session").json()["authenticated"] is False
        for path in ("/api/overview", f"/api/queues/{QUEUE}", f"/api/queues/{QUEUE}/dead-letters"):
            assert client.get(path).status_code == 401, path
        assert client.get("/api/overview", headers={"Authorization": "Bearer wrong"}).status_code == 401
        overview = client.get("/api/overview", headers=BEARER).json()
        assert [q["queue"] for q in overview["queues"]] == [QUEUE]
        assert overview["queues"][0]["waiting"] == 1
        assert client.post("/api/login", json={"token": "wrong"}).status_code == 401
        assert client.get("/healthz").status_code == 200  # probes need no login


def test_a_session_acts_only_with_its_csrf_token(
    start_dashboard: Callable[..., DashboardProcess], rclient: redis.Redis
) -> None:
    fid = _dead_letter(rclient)
    dash = start_dashboard(EMAILQUEUE_DASHBOARD_TOKEN=TOKEN)
    with httpx.Client(base_url=dash.url) as client:
        csrf = _login(client)
        cookie = client.cookies.jar
        assert any(c.name == "eq_dashboard" and c.has_nonstandard_attr("HttpOnly") for c in cookie)
        url = f"/api/queues/{QUEUE}/pause"
        assert client.post(url, json={}).status_code == 403  # cookie alone: no
        assert client.post(url, json={}, headers={"X-CSRF-Token": "forged"}).status_code == 403
        forged_form = client.post(url, content="x=1", headers={"X-CSRF-Token": csrf})  # a form post
        assert forged_form.status_code == 403
        other_site = {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
        assert client.post(url, json={}, headers=other_site).status_code == 403
        cross = {"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}
        assert client.post(url, json={}, headers=cross).status_code == 403
        assert rclient.hget(QueueKeys(QUEUE).control, "paused") is None

        same_origin = {"X-CSRF-Token": csrf, "Origin": dash.url, "Sec-Fetch-Site": "same-origin"}
        assert client.post(url, json={}, headers=same_origin).status_code == 200
        assert rclient.hget(QueueKeys(QUEUE).control, "paused") == "1"
        assert client.get(f"/api/queues/{QUEUE}").json()["paused"] is True
        assert client.post(f"/api/queues/{QUEUE}/resume", json={}, headers=same_origin).status_code == 200
        assert rclient.hget(QueueKeys(QUEUE).control, "paused") is None

        retried = client.post(f"/api/queues/{QUEUE}/dead-letters/retry", json={"ids": [fid]}, headers=same_origin)
        assert retried.json() == {"retried": 1}
        assert rclient.xlen(QueueKeys(QUEUE).failed) == 0
        assert rclient.xlen(QueueKeys(QUEUE).stream) == 1

        client.post("/api/logout", json={}, headers=same_origin)
        assert client.get("/api/overview").status_code == 401


def test_scripts_act_with_the_bearer_token(
    start_dashboard: Callable[..., DashboardProcess], rclient: redis.Redis
) -> None:
    _dead_letter(rclient, "m-1")
    _dead_letter(rclient, "m-2")
    dash = start_dashboard(EMAILQUEUE_DASHBOARD_TOKEN=TOKEN)
    with httpx.Client(base_url=dash.url, headers=BEARER) as client:
        missing = client.post(f"/api/queues/{QUEUE}/dead-letters/remove", json={"ids": ["nope"]})
        assert missing.status_code == 404
        assert "nope" in missing.json()["error"]
        removed = client.post(f"/api/queues/{QUEUE}/dead-letters/remove", json={"ids": ["m-1"]})
        assert removed.json() == {"removed": 1}
        assert client.post(f"/api/queues/{QUEUE}/dead-letters/retry", json={"all": True}).json() == {"retried": 1}
    assert rclient.xlen(QueueKeys(QUEUE).failed) == 0
    log = dash.log()  # actions are logged, with who did them
    assert "token removed 1 dead letter(s) of queue 'test'" in log
    assert "token moved 1 dead letter(s) of queue 'test' back to the queue" in log


def test_basic_auth_user_and_password(start_dashboard: Callable[..., DashboardProcess]) -> None:
    dash = start_dashboard(EMAILQUEUE_DASHBOARD_USER="ops", EMAILQUEUE_DASHBOARD_PASSWORD="pa55-w0rd-dash")
    with httpx.Client(base_url=dash.url) as client:
        assert client.get("/api/overview", auth=("ops", "wrong")).status_code == 401
        assert client.get("/api/overview", auth=("ops", "pa55-w0rd-dash")).status_code == 200
        assert client.post(f"/api/queues/{QUEUE}/pause", json={}, auth=("ops", "pa55-w0rd-dash")).status_code == 200
        assert "www-authenticate" not in client.get("/api/overview").headers  # no browser prompt to cache
        assert client.post("/api/login", json={"user": "ops", "password": "pa55-w0rd-dash"}).json()["user"] == "ops"


def test_read_only_mode_refuses_every_change(
    start_dashboard: Callable[..., DashboardProcess], rclient: redis.Redis
) -> None:
    _dead_letter(rclient)
    dash = start_dashboard("--read-only", EMAILQUEUE_DASHBOARD_TOKEN=TOKEN)
    with httpx.Client(base_url=dash.url, headers=BEARER) as client:
        assert client.get("/api/session").json()["can_act"] is False
        for path, body in (
            ("pause", {}),
            ("resume", {}),
            ("dead-letters/retry", {"all": True}),
            ("dead-letters/remove", {"all": True}),
        ):
            response = client.post(f"/api/queues/{QUEUE}/{path}", json=body)
            assert response.status_code == 403, path
            assert "read-only" in response.json()["error"]
        assert client.get(f"/api/queues/{QUEUE}/dead-letters").json()["total"] == 1
    assert rclient.xlen(QueueKeys(QUEUE).failed) == 1


def test_without_credentials_the_dashboard_is_view_only(
    start_dashboard: Callable[..., DashboardProcess], rclient: redis.Redis
) -> None:
    _dead_letter(rclient)
    dash = start_dashboard()
    with httpx.Client(base_url=dash.url) as client:
        session = client.get("/api/session").json()
        assert (session["auth_required"], session["can_act"]) == (False, False)
        assert client.get(f"/api/queues/{QUEUE}/dead-letters").json()["total"] == 1
        refused = client.post(f"/api/queues/{QUEUE}/dead-letters/retry", json={"all": True})
        assert refused.status_code == 403
        assert "EMAILQUEUE_DASHBOARD_TOKEN" in refused.json()["error"]
    assert rclient.xlen(QueueKeys(QUEUE).failed) == 1


def test_fixed_queues_hide_the_others(start_dashboard: Callable[..., DashboardProcess], rclient: redis.Redis) -> None:
    for queue in ("alpha", "beta", "gamma"):
        rclient.xadd(QueueKeys(queue).stream, {"v": "1", "payload": "{}"})
    everything = start_dashboard()
    with httpx.Client(base_url=everything.url) as client:
        assert [q["queue"] for q in client.get("/api/overview").json()["queues"]] == ["alpha", "beta", "gamma"]
    some = start_dashboard("--queue", "alpha", "--queue", "gamma")
    with httpx.Client(base_url=some.url) as client:
        assert [q["queue"] for q in client.get("/api/overview").json()["queues"]] == ["alpha", "gamma"]
        assert client.get("/api/queues/beta").status_code == 404
        assert client.get("/api/queues/..%2Fx").status_code == 404


def test_secrets_never_reach_the_page_or_the_log(
    tmp_path: Path, start_dashboard: Callable[..., DashboardProcess]
) -> None:
    password = "redis-Pa55word-never-shown"
    server = RedisServer(password=password, data_dir=str(tmp_path / "redis-auth"))
    server.start()
    try:
        with Mailer.from_url(server.url, QUEUE) as m:
            m.send(Email(to="a@example.com", subject="secret-free", text="body"))
        dash = start_dashboard(EMAILQUEUE_REDIS_URL=server.url, EMAILQUEUE_DASHBOARD_TOKEN=TOKEN)
        seen = []
        with httpx.Client(base_url=dash.url, headers=BEARER) as client:
            for path in ("/", "/api/session", "/api/overview", f"/api/queues/{QUEUE}", f"/api/queues/{QUEUE}/messages"):
                response = client.get(path)
                assert response.status_code == 200, path
                seen.append(response.text)
            assert "redis://***@127.0.0.1" in client.get("/api/session").json()["redis"]
        dash.stop()
        everything = "\n".join([*seen, dash.log()])
        assert password not in everything
        assert TOKEN not in everything
    finally:
        server.close()


def test_security_headers(start_dashboard: Callable[..., DashboardProcess]) -> None:
    dash = start_dashboard()
    with httpx.Client(base_url=dash.url) as client:
        page = client.get("/")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert client.get("/api/overview").headers["cache-control"] == "no-store"
        assert client.get("/static/app.js").status_code == 200


def test_priority_lanes_are_read_too(start_dashboard: Callable[..., DashboardProcess], rclient: redis.Redis) -> None:
    keys = QueueKeys(QUEUE)
    payload = Email(id="urgent-1", to="a@example.com", subject="Urgent", text="x").model_dump_json(by_alias=True)
    eid = rclient.xadd(keys.lane_stream("high"), {"v": "1", "payload": payload})
    rclient.xgroup_create(keys.lane_stream("high"), "workers", id="0")
    rclient.xreadgroup("workers", "w-1", {keys.lane_stream("high"): ">"}, count=1)
    dash = start_dashboard()
    with httpx.Client(base_url=dash.url) as client:
        assert [q["queue"] for q in client.get("/api/overview").json()["queues"]] == [QUEUE]
        detail = client.get(f"/api/queues/{QUEUE}").json()
        assert (detail["in_flight"], detail["pending"][0]["lane"]) == (1, "high")
        listed = client.get(f"/api/queues/{QUEUE}/messages").json()["stream"]
        assert [(m["entry_id"], m["lane"], m["state"]) for m in listed] == [(eid, "high", "in flight")]
        one = client.get(f"/api/queues/{QUEUE}/messages/{eid}").json()
        assert (one["lane"], one["holder"]["consumer"], one["payload"]["email"]["subject"]) == ("high", "w-1", "Urgent")
