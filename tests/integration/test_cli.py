"""The CLI a person types: figures that match what happened, one-line errors, no secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from emailqueue import Mailer
from emailqueue.keys import QueueKeys
from emailqueue.localserver import RedisServer, free_port
from emailqueue.sink import Sink
from tests.conftest import QUEUE, WorkerProcess, wait_sync

K = QueueKeys(QUEUE)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "emailqueue", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        check=False,
    )


def test_help_lists_every_command() -> None:
    out = cli("--help").stdout
    for command in ("worker", "consume", "send", "test-email", "stats", "failed", "stop-workers", "demo", "sink"):
        assert command in out


def test_send_then_stats_json_match_what_happened(
    spawn_worker: Callable[..., WorkerProcess], redis_server: RedisServer, sink: Sink
) -> None:
    base = ["--redis-url", redis_server.url, "--queue", QUEUE]
    for to in ("a@example.com", "reject@example.com", "b@example.com"):
        r = cli("send", *base, "--to", to, "--subject", "hi", "--text", "hello", "--from", "app@example.com")
        assert r.returncode == 0, r.stderr
        assert len(r.stdout.strip()) == 32  # the message id
    r = cli("stats", *base, "--json")
    before = json.loads(r.stdout)
    assert (before["waiting"], before["in_flight"], before["failed"]) == (3, 0, 0)
    assert before["counters"]["enqueued"] == 3
    w = spawn_worker()
    wait_sync(lambda: sink.count() == 2 and _xlen(redis_server, K.failed) == 1, what="2 sent, 1 failed")
    w.terminate()
    assert w.wait() == 0
    after = json.loads(cli("stats", *base, "--json").stdout)
    assert (after["waiting"], after["in_flight"], after["delayed"], after["failed"]) == (0, 0, 0, 1)
    assert after["counters"]["sent"] == 2
    assert after["counters"]["failed"] == 1
    assert after["backlog"] == 0
    text = cli("stats", *base).stdout
    assert "failed" in text and "sent" in text


def test_failed_show_retry_remove(redis_server: RedisServer, mailer: Mailer, rclient: redis.Redis) -> None:
    base = ["--redis-url", redis_server.url, "--queue", QUEUE]
    ids = []
    for i in range(3):  # three dead letters written the way the worker writes them
        ids.append(f"m{i}")
        rclient.xadd(
            K.failed,
            {
                "v": "1",
                "payload": json.dumps({"id": f"m{i}", "to": "x@example.com", "text": "t"}),
                "mid": f"m{i}",
                "attempts": "1",
                "reason": "permanent",
                "error": "550 no such user",
                "smtp_code": "550",
                "failed_at": "2026-12-04T00:00:00Z",
            },
        )
    shown = json.loads(cli("failed", "show", *base, "--json").stdout)
    assert [d["message_id"] for d in shown] == ids
    assert shown[0]["reason"] == "permanent" and shown[0]["smtp_code"] == "550"
    one = cli("failed", "show", *base, "m1")
    assert one.returncode == 0 and "550 no such user" in one.stdout
    r = cli("failed", "retry", *base, "m0")
    assert r.returncode == 0 and "1 dead letter(s) moved back" in r.stdout
    assert rclient.xlen(K.stream) == 1 and rclient.xlen(K.failed) == 2
    [(_, requeued)] = rclient.xrange(K.stream)
    assert set(requeued) == {"v", "payload", "mid"}  # attempts start again from zero
    r = cli("failed", "remove", *base, "m1")
    assert r.returncode == 0 and rclient.xlen(K.failed) == 1
    r = cli("failed", "retry", *base, "--all")
    assert "1 dead letter(s) moved back" in r.stdout and rclient.xlen(K.failed) == 0
    assert "no dead letters" in cli("failed", "show", *base).stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["stats", "--redis-url", "redis://:hunter22@127.0.0.1:{port}/0"], {}, "is unreachable"),
        (["failed", "retry", "--redis-url", "{url}", "--queue", QUEUE, "nope"], {}, "no dead letter with id nope"),
        (["failed", "retry", "--redis-url", "{url}", "--queue", QUEUE], {}, "give one or more IDs, or --all"),
        (["worker", "--redis-url", "{url}"], {"MAILER_DSN": "smtpx://u:hunter22@h"}, "MAILER_DSN"),
        (["stats", "--queue", "bad{{queue}}", "--redis-url", "{url}"], {}, "EMAILQUEUE_QUEUE"),
        (["send", "--redis-url", "{url}", "--to", "not-an-address", "--text", "x"], {}, "to[0].email"),
    ],
)
def test_expected_failures_are_one_line(
    redis_server: RedisServer, args: list[str], env: dict[str, str], message: str
) -> None:
    args = [a.format(port=free_port(), url=redis_server.url) for a in args]
    r = cli(*args, env=env)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr  # no traceback
    assert lines[0].startswith("emailqueue: error: ")
    assert message in lines[0]
    assert "hunter22" not in r.stderr


def test_health_ready_and_metrics_endpoints(
    spawn_worker: Callable[..., WorkerProcess], mailer: Mailer, sink: Sink
) -> None:
    port = free_port()
    w = spawn_worker(EMAILQUEUE_METRICS_PORT=str(port), EMAILQUEUE_METRICS_HOST="127.0.0.1")
    mailer.send_many([{"to": f"u{i}@example.com", "text": "x"} for i in range(5)])
    wait_sync(lambda: sink.count() == 5, what="deliveries")

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    wait_sync(lambda: _up(get), what="health endpoint")
    assert get("/healthz") == (200, "ok\n")
    assert get("/readyz") == (200, "ready\n")
    status, body = get("/metrics")
    assert status == 200
    assert f'emailqueue_sent_total{{queue="{QUEUE}"}} 5.0' in body
    assert f'emailqueue_send_duration_seconds_count{{queue="{QUEUE}"}} 5.0' in body
    assert "emailqueue_backlog" in body and "emailqueue_in_flight" in body
    assert get("/nope")[0] == 404
    w.terminate()
    assert w.wait() == 0


def _up(get: Callable[[str], tuple[int, str]]) -> bool:
    try:
        return get("/healthz")[0] == 200
    except OSError:
        return False


def test_readyz_fails_when_redis_is_down(spawn_worker: Callable[..., WorkerProcess], redis_server: RedisServer) -> None:
    port = free_port()
    w = spawn_worker(EMAILQUEUE_METRICS_PORT=str(port), EMAILQUEUE_METRICS_HOST="127.0.0.1")

    def status(path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0

    wait_sync(lambda: status("/readyz") == 200, what="ready")
    redis_server.kill()
    wait_sync(lambda: status("/readyz") == 503, what="not ready without Redis")
    assert status("/healthz") == 200  # alive: the supervisor must not restart it for a Redis outage
    redis_server.start()
    wait_sync(lambda: status("/readyz") == 200, what="ready again")
    w.terminate()
    assert w.wait() == 0


def test_secrets_never_reach_logs(tmp_path: Path, sink: Sink) -> None:
    """Run a worker with passwords in both URLs, fail every kind of way, grep everything it printed."""
    redis_pw, smtp_pw = "r3dis-Pa55-word", "smtp-Pa55-word"
    with RedisServer(password=redis_pw) as server:
        env = {
            "EMAILQUEUE_REDIS_URL": server.url,
            "EMAILQUEUE_QUEUE": QUEUE,
            "MAILER_DSN": f"smtp://user:{smtp_pw}@127.0.0.1:{sink.port}?auto_tls=false&allow_plain_auth=true",
            "MAILER_FROM_EMAIL": "a@example.com",
            "EMAILQUEUE_METRICS_PORT": "0",
            "EMAILQUEUE_RETRY_DELAY_MS": "50",
            "EMAILQUEUE_MAX_RETRIES": "1",
        }
        with Mailer.from_url(server.url, QUEUE) as m:
            m.send_many([{"to": f"u{i}@example.com", "text": "x"} for i in range(3)])
        w = WorkerProcess(env, tmp_path / "w.log", "-vv")
        # aiosmtpd without an AUTH handler answers AUTH with an error: every attempt fails
        wait_sync(lambda: _xlen(server, K.failed) == 3, what="dead letters")
        server.restart(crash=True)  # and a Redis outage while running
        w.terminate()
        w.wait()
        json_log = cli(
            "worker",
            "--log-format",
            "json",
            "--limit",
            "1",
            "--time-limit",
            "2",
            env={**env, "EMAILQUEUE_REDIS_URL": f"redis://:{redis_pw}@127.0.0.1:{free_port()}/0"},
        )
        stats = cli("stats", "--json", env=env)
        failed = cli("failed", "show", "--json", env=env)
        captured = w.log() + json_log.stdout + json_log.stderr + stats.stdout + stats.stderr + failed.stdout
        client = redis.Redis.from_url(server.url, decode_responses=True)
        stored = json.dumps([f for _, f in client.xrange(K.failed)])
        client.close()
    assert "authentication" in captured.lower() or "auth" in stored.lower()
    for secret in (redis_pw, smtp_pw):
        assert secret not in captured
        assert secret not in stored
    assert "***" in captured


def _xlen(server: RedisServer, key: str) -> int:
    c = redis.Redis.from_url(server.url)
    try:
        return int(c.xlen(key))
    finally:
        c.close()


def test_pause_and_resume(
    spawn_worker: Callable[..., WorkerProcess], redis_server: RedisServer, mailer: Mailer, sink: Sink
) -> None:
    base = ["--redis-url", redis_server.url, "--queue", QUEUE]
    w = spawn_worker()
    mailer.send({"to": "first@example.com", "text": "x"})
    wait_sync(lambda: sink.count() == 1, what="delivery before the pause")
    assert cli("pause", *base).returncode == 0
    wait_sync(lambda: "paused: not taking new messages" in w.log(), what="the worker to see the pause")
    mailer.send_many([{"to": f"u{i}@example.com", "text": "x"} for i in range(5)])
    import time

    time.sleep(1.5)
    assert sink.count() == 1  # nothing delivered while paused
    stats = json.loads(cli("stats", *base, "--json").stdout)
    assert stats["paused"] is True and stats["backlog"] == 5  # waiting, or read just as the pause began
    assert "PAUSED" in cli("stats", *base).stdout
    assert cli("resume", *base).returncode == 0
    wait_sync(lambda: sink.count() == 6, what="delivery after resume")
    w.terminate()
    assert w.wait() == 0
