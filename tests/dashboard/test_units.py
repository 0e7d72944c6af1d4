"""The dashboard's pure parts: chart points from samples, sessions, settings."""

from __future__ import annotations

import time

import pytest
from starlette.requests import Request

from emailqueue.dashboard.auth import COOKIE, Auth, Principal
from emailqueue.dashboard.config import DashboardConfig
from emailqueue.dashboard.history import History, Sample
from emailqueue.errors import ConfigError


def _sample(t: float, **counters: int) -> Sample:
    return Sample(t, counters, waiting=1, in_flight=2, delayed=3, failed=4, oldest_age_ms=500)


def test_rates_and_mean_send_latency_from_counter_differences() -> None:
    history = History(keep=3)
    history.add("q", _sample(100.0, sent=10, enqueued=10, failed=0, retried=0, send_us=50_000))
    history.add("q", _sample(105.0, sent=60, enqueued=70, failed=5, retried=0, send_us=1_050_000))
    (point,) = history.series("q")
    assert point["sent_per_s"] == 10.0
    assert point["enqueued_per_s"] == 12.0
    assert point["failed_per_s"] == 1.0
    assert point["latency_ms"] == 20.0  # 1,000,000 us over 50 sends
    assert (point["waiting"], point["in_flight"], point["delayed"], point["failed_total"]) == (1, 2, 3, 4)


def test_no_latency_without_the_counter_or_without_sends() -> None:
    history = History(keep=10)
    history.add("q", _sample(0.0, sent=1))
    history.add("q", _sample(1.0, sent=5))
    history.add("q", _sample(2.0, sent=5, send_us=10))
    history.add("q", _sample(3.0, sent=5, send_us=10))
    assert [p["latency_ms"] for p in history.series("q")] == [None, None, None]
    assert history.series("q")[0]["retried_per_s"] is None  # a counter never written


def test_a_counter_reset_counts_from_zero_and_the_buffer_forgets() -> None:
    history = History(keep=2)
    history.add("q", _sample(0.0, sent=100))
    history.add("q", _sample(1.0, sent=3))  # the stats hash was deleted and began again
    assert history.series("q")[0]["sent_per_s"] == 3.0
    history.add("q", _sample(2.0, sent=4))
    assert [s.t for s in history.samples("q")] == [1.0, 2.0]
    assert history.last_point("q") == history.series("q")[-1]
    assert history.last_point("other") is None


def _request(cookie: str = "", headers: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if cookie:
        raw.append((b"cookie", f"{COOKIE}={cookie}".encode()))
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw, "query_string": b""})


def test_sessions_are_signed_and_expire() -> None:
    auth = Auth(DashboardConfig(token="t0ken-xyz", session_ttl_s=60))
    cookie = auth.new_session(Principal("ops"))
    assert "t0ken-xyz" not in cookie
    who = auth.from_cookie(_request(cookie))
    assert who is not None and who.name == "ops" and who.session
    sid, expiry, name, signature = cookie.split(".")
    assert auth.from_cookie(_request(f"{sid}.{int(expiry) + 999}.{name}.{signature}")) is None  # tampered
    assert Auth(DashboardConfig(token="t0ken-xyz")).from_cookie(_request(cookie)) is None  # another process' key
    past = f"{sid}.{int(time.time()) - 1}.{name}"
    assert auth.from_cookie(_request(f"{past}.{auth._sign(past)}")) is None  # expired


def test_csrf_token_belongs_to_its_session() -> None:
    auth = Auth(DashboardConfig(token="t0ken-xyz"))
    one, two = (auth.from_cookie(_request(auth.new_session(Principal("ops")))) for _ in range(2))
    assert one is not None and two is not None
    assert auth.csrf_token(one) != auth.csrf_token(two)
    json = {"content-type": "application/json"}
    assert auth.csrf_problem(_request(headers={**json, "x-csrf-token": auth.csrf_token(one) or ""}), one) is None
    assert auth.csrf_problem(_request(headers={**json, "x-csrf-token": auth.csrf_token(two) or ""}), one)
    bearer = _request(headers={**json, "authorization": "Bearer t0ken-xyz"})
    assert auth.csrf_problem(bearer, Principal("token")) is None


def test_settings() -> None:
    assert DashboardConfig().can_act is False
    assert DashboardConfig(token="   ").token is None
    assert DashboardConfig(token="x", read_only=True).can_act is False
    assert DashboardConfig(queues=" a, b ,").queue_list == ["a", "b"]
    assert DashboardConfig(sample_s=5, history_s=3600).samples_kept == 720
    with pytest.raises(ValueError, match="both"):
        DashboardConfig(user="ops")
    from emailqueue.dashboard.config import load_dashboard_config

    with pytest.raises(ConfigError, match="EMAILQUEUE_DASHBOARD_QUEUES"):
        load_dashboard_config(queues="bad name!")
