"""No secret in logs, metrics, stats, dead letters or exceptions: grep everything a run produced.

A worker runs at -vv (debug) with a Redis ACL password and an SMTP password, delivers over
STARTTLS with AUTH, then a second worker runs with a wrong SMTP password and a wrong Redis
password; the CLI prints stats and dead letters; the producer fails with bad credentials.
Everything captured is searched for each secret, URL-encoded, and base64-encoded as it
travels in AUTH PLAIN / AUTH LOGIN.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from emailqueue import Mailer, QueueUnavailable
from emailqueue.cli import main as cli
from emailqueue.crypto import PayloadCipher, generate_key
from emailqueue.dsn import parse_dsn
from emailqueue.errors import ConfigError
from emailqueue.keys import QueueKeys
from emailqueue.localserver import free_port
from emailqueue.settings import Settings, load_settings
from tests.conftest import WorkerProcess, wait_sync

from .conftest import AclRedis, Certs, SmtpServer


def _forms(user: str, secret: str) -> set[str]:
    return {
        secret,
        quote(secret, safe=""),
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(f"\0{user}\0{secret}".encode()).decode(),
    }


def test_no_secret_anywhere(
    acl_redis: AclRedis,
    smtp_server: Callable[..., SmtpServer],
    certs: Certs,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    smtp_pw = (
        "smtp-Pw-7f3a9c1e+=%"  # characters that need URL-encoding (for '/', see the unencoded-password test below)
    )
    smtp_wrong = "smtp-Wrong-55d2e8"
    redis_pw = acl_redis.passwords["emailqueue-worker"]
    redis_wrong = "redis-Wrong-0a9b8c"
    payload_key = generate_key()
    server = smtp_server("starttls", user="mailer", password=smtp_pw)
    keys = QueueKeys(acl_redis.queue)
    captured: list[str] = []

    producer = Mailer.from_url(acl_redis.url("emailqueue-producer"), acl_redis.queue)
    producer.send_many([{"from": "a@example.com", "to": f"u{i}@example.com", "text": "t"} for i in range(3)])
    port = free_port()
    env = {
        "EMAILQUEUE_REDIS_URL": acl_redis.url("emailqueue-worker"),
        "EMAILQUEUE_QUEUE": acl_redis.queue,
        "MAILER_DSN": f"smtp://mailer:{quote(smtp_pw, safe='')}@127.0.0.1:{server.port}?ca_file={certs.ca}",
        "EMAILQUEUE_METRICS_PORT": str(port),
        "EMAILQUEUE_METRICS_HOST": "127.0.0.1",
        "EMAILQUEUE_LOG_LEVEL": "DEBUG",
        "EMAILQUEUE_MAX_RETRIES": "1",
        "EMAILQUEUE_RETRY_DELAY_MS": "50",
        "EMAILQUEUE_PAYLOAD_KEYS": f"k1:{payload_key}",
    }
    good = WorkerProcess(env, tmp_path / "good.log", "-vv")
    wait_sync(lambda: server.log.count() == 3, what="3 deliveries with AUTH over STARTTLS")
    for path in ("/metrics", "/healthz", "/readyz"):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            captured.append(resp.read().decode())
    good.terminate()
    assert good.wait() == 0
    captured.append(good.log())

    # a wrong SMTP password: AUTH fails, the message is retried and dead-lettered with the reply
    producer.send({"from": "a@example.com", "to": "x@example.com", "text": "t"})
    bad_dsn = f"smtp://mailer:{smtp_wrong}@127.0.0.1:{server.port}?ca_file={certs.ca}"
    bad = WorkerProcess({**env, "MAILER_DSN": bad_dsn, "EMAILQUEUE_METRICS_PORT": "0"}, tmp_path / "bad.log", "-vv")
    admin = acl_redis.admin()
    wait_sync(lambda: admin.xlen(keys.failed) == 1, what="dead letter after failed AUTH")
    bad.terminate()
    assert bad.wait() == 0
    captured.append(bad.log())
    assert any(not ok for _, ok, _ in server.log.auth_attempts)

    # a wrong Redis password: the worker keeps retrying and says so, without the password
    wrong_url = acl_redis.url("emailqueue-worker", redis_wrong)
    stuck = WorkerProcess({**env, "EMAILQUEUE_REDIS_URL": wrong_url, "EMAILQUEUE_METRICS_PORT": "0"}, tmp_path / "x")
    wait_sync(lambda: "not reachable" in stuck.log(), what="the worker to report Redis unreachable")
    stuck.terminate()
    stuck.wait()
    captured.append(stuck.log())

    # the CLI, with the operator user and with a wrong password
    op = ["--redis-url", acl_redis.url("emailqueue-operator"), "--queue", acl_redis.queue]
    for args in (["stats"], ["stats", "--json"], ["failed", "show"], ["failed", "show", "--json"]):
        assert cli([*args, *op]) == 0
    assert cli(["stats", "--redis-url", wrong_url, "--queue", acl_redis.queue]) == 1
    out = capsys.readouterr()
    captured += [out.out, out.err]

    # exceptions, reprs, what Redis itself holds
    with Mailer.from_url(wrong_url, acl_redis.queue) as m, pytest.raises(QueueUnavailable) as info:
        m.send({"from": "a@example.com", "to": "x@example.com", "text": "t"})
    captured.append(str(info.value))
    with pytest.raises(ConfigError) as cfg_err:
        load_settings(mailer_dsn=f"smtp://mailer:{quote(smtp_pw, safe='')}@host:notaport")
    captured.append(str(cfg_err.value))
    s = Settings(EMAILQUEUE_REDIS_URL=wrong_url, MAILER_DSN=bad_dsn)
    captured += [repr(s), str(s), repr(parse_dsn(env["MAILER_DSN"])), s.redis_display()]
    captured.append(repr(PayloadCipher.from_env(env)))
    captured.append(json.dumps([{k.decode(): v.decode() for k, v in f.items()} for _, f in admin.xrange(keys.failed)]))
    captured.append(json.dumps({k.decode(): v.decode() for k, v in admin.hgetall(keys.stats).items()}))
    admin.close()
    producer.close()

    everything = "\n".join(captured)
    (tmp_path / "captured.txt").write_text(everything)
    assert "Authentication" in everything or "535" in everything  # the failure itself is reported
    leaks = {
        name: form
        for name, (user, secret) in {
            "smtp password": ("mailer", smtp_pw),
            "wrong smtp password": ("mailer", smtp_wrong),
            "redis password": ("emailqueue-worker", redis_pw),
            "wrong redis password": ("emailqueue-worker", redis_wrong),
            "operator password": ("emailqueue-operator", acl_redis.passwords["emailqueue-operator"]),
            "payload key": ("", payload_key),
        }.items()
        for form in _forms(user, secret)
        if form in everything
    }
    assert leaks == {}, f"secrets found in captured output: {sorted(leaks)}"


def test_dsn_errors_never_echo_the_password() -> None:
    for dsn in ("smtp://u:Sekr1t-pw@host:99999", "sendgrid://Sekr1t-pw@default", "nope://u:Sekr1t-pw@h"):
        with pytest.raises(ConfigError) as info:
            parse_dsn(dsn)
        assert "Sekr1t-pw" not in str(info.value)


@pytest.mark.parametrize("password", ["pa/ss-Sekr1t", "pa?ss-Sekr1t", "pa#ss-Sekr1t", "pa ss-Sekr1t"])
def test_unencoded_password_with_a_slash_is_still_redacted(password: str) -> None:
    """Users paste passwords unencoded; the error about the DSN must still not print them."""
    with pytest.raises(ConfigError) as info:
        load_settings(mailer_dsn=f"smtp://mailer:{password}@smtp.example.com:notaport")
    assert "Sekr1t" not in str(info.value)


def test_redis_errors_never_echo_the_password() -> None:
    url = f"redis://user:Sekr1t-pw@127.0.0.1:{free_port()}/0"
    with Mailer.from_url(url) as m, pytest.raises(QueueUnavailable) as info:
        m.send({"from": "a@example.com", "to": "x@example.com", "text": "t"})
    assert "Sekr1t-pw" not in str(info.value)
    assert "***@127.0.0.1" in str(info.value)
    assert isinstance(redis.Redis, type)
