"""Redis ACL users: the worker runs with only the worker user; a producer cannot read or delete mail."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from emailqueue import Mailer, QueueUnavailable
from emailqueue.cli import main as cli
from emailqueue.keys import QueueKeys
from emailqueue.localserver import free_port
from emailqueue.sink import Sink
from emailqueue.stats import COUNTER_SNAPSHOT, counters_from_snapshot
from tests.conftest import WorkerProcess, wait_sync

from .acl import WORKER_COMMANDS, acl_lines, producer_rule, worker_rule
from .conftest import AclRedis

DENIED = (redis.exceptions.NoPermissionError, redis.exceptions.AuthenticationError)


def _email(i: int, **kw: object) -> dict[str, object]:
    return {"from": "app@example.com", "to": f"user{i}@example.com", "subject": f"s{i}", "text": "t", **kw}


def _worker_env(acl: AclRedis, sink: Sink, **extra: str) -> dict[str, str]:
    return {
        "EMAILQUEUE_REDIS_URL": acl.url("emailqueue-worker"),
        "EMAILQUEUE_QUEUE": acl.queue,
        "MAILER_DSN": sink.dsn,
        "EMAILQUEUE_RETRY_DELAY_MS": "100",
        "EMAILQUEUE_CLAIM_IDLE_MS": "1000",
        "EMAILQUEUE_METRICS_PORT": "0",
        "EMAILQUEUE_SHUTDOWN_GRACE_S": "10",
        **extra,
    }


def _used_commands(admin: redis.Redis) -> set[str]:
    info = admin.info("commandstats")
    return {name.removeprefix("cmdstat_") for name, stats in info.items() if int(stats.get("calls", 0)) > 0}


def _acl_denials(admin: redis.Redis, user: str) -> list[str]:
    return [f"{e['reason']}:{e['object']}" for e in admin.acl_log() if e["username"] == user]


def test_worker_needs_no_more_than_the_worker_user(
    acl_redis: AclRedis, sink: Sink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every path of the worker (send, retry, promote, dead letter, reclaim, stop) under the worker ACL."""
    admin = acl_redis.admin()
    admin.config_resetstat()
    admin.acl_log_reset()
    keys = QueueKeys(acl_redis.queue)
    producer = Mailer.from_url(acl_redis.url("emailqueue-producer"), acl_redis.queue)
    ids = producer.send_many([_email(i) for i in range(20)])
    ids.append(producer.send(_email(20, to="greylist@example.com")))  # 451 once: retry, delayed, promote
    ids.append(producer.send(_email(21, send_at=datetime.now(UTC) + timedelta(seconds=1))))  # ZADD by producer
    [rejected] = producer.send_many([_email(22, to="reject@example.com")])  # 550: dead letter
    producer.redis.xadd(keys.stream, {"v": "1", "payload": "{garbage"})  # invalid: dead letter
    port = free_port()
    env = _worker_env(acl_redis, sink, EMAILQUEUE_METRICS_PORT=str(port), EMAILQUEUE_METRICS_HOST="127.0.0.1")
    first = WorkerProcess(env, tmp_path / "w1.log")
    wait_sync(lambda: len(set(sink.delivered_ids())) >= 22, timeout=30, what="22 deliveries")
    wait_sync(lambda: admin.xlen(keys.failed) == 2, what="two dead letters")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:  # PING
        assert resp.status == 200
    sink.state.delay_s = 3.0  # the next send hangs in DATA; kill the worker mid-send
    ids.append(producer.send(_email(23)))
    wait_sync(lambda: int(admin.xpending(keys.stream, "workers")["pending"]) == 1, what="a send in flight")
    first.kill()
    sink.state.delay_s = 0.0
    second = WorkerProcess({**env, "EMAILQUEUE_METRICS_PORT": "0"}, tmp_path / "w2.log")
    wait_sync(lambda: admin.xlen(keys.stream) == 0, timeout=30, what="reclaim and delivery")
    assert cli(["stop-workers", "--redis-url", acl_redis.url("emailqueue-operator"), "--queue", acl_redis.queue]) == 0
    assert second.wait(20) == 0
    capsys.readouterr()

    assert set(sink.delivered_ids()) == set(ids)
    assert rejected not in sink.delivered_ids()
    reasons = sorted(f[b"reason"].decode() for _, f in admin.xrange(keys.failed))
    assert reasons == ["invalid", "permanent"]
    assert int(admin.hget(keys.stats, "reclaimed") or 0) == 1
    for log in (first.log(), second.log()):
        assert "NOPERM" not in log and "no permissions" not in log, log
    assert _acl_denials(admin, "emailqueue-worker") == []
    assert _acl_denials(admin, "emailqueue-producer") == []
    # the second worker left the group; the killed one stays until the idle-consumer GC (5 min)
    assert [c["pending"] for c in admin.xinfo_consumers(keys.stream, "workers")] == [0]
    # Every command granted to the worker was used in this run (so the list has nothing extra).
    used = _used_commands(admin)
    unused = [c for c in WORKER_COMMANDS if c not in used and c != "client|setinfo"]
    assert unused == [], f"granted but never used: {unused}"
    admin.close()
    producer.close()


def test_producer_can_enqueue_but_cannot_read_or_delete_mail(acl_redis: AclRedis) -> None:
    keys = QueueKeys(acl_redis.queue)
    other = QueueKeys("other")
    producer = Mailer.from_url(acl_redis.url("emailqueue-producer"), acl_redis.queue)
    producer.send_many([_email(0), _email(1)])
    producer.send(_email(2, send_at=datetime.now(UTC) + timedelta(hours=1)))
    admin = acl_redis.admin()
    admin.set(keys.sent_marker("x"), "1")
    admin.xadd(keys.failed, {"v": "1", "payload": "{}", "reason": "permanent"})
    p = producer.redis
    forbidden: list[tuple[object, ...]] = [
        ("XRANGE", keys.stream, "-", "+"),
        ("XREVRANGE", keys.stream, "+", "-"),
        ("XREAD", "STREAMS", keys.stream, "0"),
        ("XREADGROUP", "GROUP", "workers", "spy", "STREAMS", keys.stream, ">"),
        ("XLEN", keys.stream),
        ("XINFO", "STREAM", keys.stream),
        ("XDEL", keys.stream, "0-1"),
        ("XTRIM", keys.stream, "MAXLEN", "0"),
        ("XACK", keys.stream, "workers", "0-1"),
        ("XAUTOCLAIM", keys.stream, "workers", "spy", "0", "0"),
        ("XGROUP", "DESTROY", keys.stream, "workers"),
        ("DEL", keys.stream),
        ("UNLINK", keys.delayed),
        ("RENAME", keys.stream, f"{keys.base}:mine"),
        ("ZRANGE", keys.delayed, "0", "-1"),
        ("ZREM", keys.delayed, "x"),
        ("ZPOPMIN", keys.delayed),
        ("XRANGE", keys.failed, "-", "+"),
        ("XADD", keys.failed, "*", "v", "1"),
        ("GET", keys.sent_marker("x")),
        ("HGETALL", keys.stats),
        ("XADD", other.stream, "*", "v", "1"),
        ("KEYS", "*"),
        ("SCAN", "0"),
        ("EVAL", f"return redis.call('XRANGE', '{keys.stream}', '-', '+')", "0"),
        ("FLUSHALL",),
        ("CONFIG", "GET", "*"),
        ("ACL", "LIST"),
    ]
    allowed = []
    for command in forbidden:
        try:
            p.execute_command(*command)
            allowed.append(command[0])
        except DENIED:
            pass
        except redis.exceptions.ResponseError as exc:  # EVAL is granted (idempotent enqueue)...
            if "can't run this command" not in str(exc):  # ...but what a script calls is checked too
                raise
    assert allowed == [], f"the producer user may run {allowed}"
    assert admin.xlen(keys.stream) == 2
    assert admin.zcard(keys.delayed) == 1
    assert admin.xlen(keys.failed) == 1
    assert counters_from_snapshot(admin.eval(COUNTER_SNAPSHOT, 4, keys.stats, *keys.streams))["enqueued"] == 3
    assert _acl_denials(admin, "emailqueue-producer")  # and each attempt is in the ACL LOG
    # idempotent enqueue (a script) and message status work under the producer user too
    tracking = Mailer.from_url(acl_redis.url("emailqueue-producer"), acl_redis.queue, track_queued=True)
    first = tracking.send(_email(3, idempotency_key="order-1"))
    assert tracking.send(_email(4, idempotency_key="order-1")) == first
    assert admin.xlen(keys.stream) == 3
    assert admin.hget(keys.status(first), "state") == b"queued"
    tracking.close()
    admin.close()
    producer.close()


def test_known_limit_a_producer_can_trim_with_xadd_maxlen(acl_redis: AclRedis) -> None:
    """ACLs grant commands, not arguments: XADD ... MAXLEN 0 trims the stream (docs/security.md says so)."""
    keys = QueueKeys(acl_redis.queue)
    producer = Mailer.from_url(acl_redis.url("emailqueue-producer"), acl_redis.queue)
    producer.send_many([_email(i) for i in range(3)])
    producer.redis.execute_command("XADD", keys.stream, "MAXLEN", "0", "*", "v", "1")
    admin = acl_redis.admin()
    assert admin.xlen(keys.stream) == 0
    doc = (Path(__file__).resolve().parents[2] / "docs/security.md").read_text()
    assert "MAXLEN" in doc
    admin.close()
    producer.close()


def test_worker_user_is_confined_to_its_queue(acl_redis: AclRedis) -> None:
    keys = QueueKeys(acl_redis.queue)
    other = QueueKeys("other")
    w = redis.Redis.from_url(acl_redis.url("emailqueue-worker"))
    w.xgroup_create(keys.stream, "workers", id="0", mkstream=True)
    for command in [
        ("XREADGROUP", "GROUP", "workers", "w", "STREAMS", other.stream, ">"),
        ("XADD", other.stream, "*", "v", "1"),
        ("XRANGE", keys.failed, "-", "+"),  # dead letters: only added to, by its scripts
        ("HSET", keys.control, "stop_at", "0"),  # control: read only
        ("DEL", keys.stream),
        ("KEYS", "*"),
        ("FLUSHALL",),
        ("CONFIG", "SET", "appendonly", "no"),
        ("ACL", "SETUSER", "emailqueue-worker", "+@all"),
        ("SHUTDOWN",),
        ("EVAL", "return 1", "0"),
    ]:
        with pytest.raises(DENIED):
            w.execute_command(*command)
    w.close()


def test_operator_user_runs_the_cli(acl_redis: AclRedis, capsys: pytest.CaptureFixture[str]) -> None:
    keys = QueueKeys(acl_redis.queue)
    url = acl_redis.url("emailqueue-operator")
    admin = acl_redis.admin()
    admin.xadd(keys.failed, {"v": "1", "payload": json.dumps(_email(0)), "mid": "m1", "reason": "permanent"})
    q = ["--redis-url", url, "--queue", acl_redis.queue]
    assert cli(["stats", "--json", *q]) == 0
    assert json.loads(capsys.readouterr().out)["failed"] == 1
    assert cli(["failed", "show", "--json", *q]) == 0
    assert "m1" in capsys.readouterr().out
    assert cli(["failed", "retry", "--all", *q]) == 0
    assert admin.xlen(keys.stream) == 1 and admin.xlen(keys.failed) == 0
    assert cli(["stop-workers", *q]) == 0
    op = redis.Redis.from_url(url)
    for command in [("FLUSHALL",), ("CONFIG", "GET", "*"), ("KEYS", "*"), ("ACL", "LIST"), ("GET", "unrelated")]:
        with pytest.raises(DENIED):
            op.execute_command(*command)
    op.close()
    assert _acl_denials(admin, "emailqueue-operator") != []  # only the denials above
    admin.close()


def test_default_user_is_off_and_bad_credentials_name_no_secret(acl_redis: AclRedis) -> None:
    anonymous = Mailer.from_url(f"redis://127.0.0.1:{acl_redis.server.port}/0", acl_redis.queue)
    with pytest.raises(QueueUnavailable):
        anonymous.send(_email(0))
    anonymous.close()
    wrong = "not-the-" + acl_redis.passwords["emailqueue-producer"]
    m = Mailer.from_url(acl_redis.url("emailqueue-producer", wrong), acl_redis.queue)
    with pytest.raises(QueueUnavailable) as info:
        m.send(_email(0))
    m.close()
    text = str(info.value)
    assert "refused the credentials" in text
    assert wrong not in text and acl_redis.passwords["emailqueue-producer"] not in text


@pytest.mark.parametrize("render", [producer_rule, worker_rule])
def test_acl_lines_in_docs_match_the_tested_rules(render: Callable[[str], str]) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs/security.md").read_text()
    assert render("default") in doc, "docs/security.md must show the ACL rules the tests prove"
    assert all(line.split(" >")[0] in doc for line in acl_lines("default"))
