"""The producer API against a real Redis: one entry per send, clear errors, nothing dropped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis

from emailqueue import AsyncMailer, Email, InvalidEmail, Mailer, QueueFull, QueueUnavailable
from emailqueue.keys import QueueKeys
from emailqueue.localserver import RedisServer, free_port
from tests.conftest import QUEUE

K = QueueKeys(QUEUE)


def email(i: int = 0, **kw: object) -> dict[str, object]:
    return {"from": "app@example.com", "to": f"u{i}@example.com", "subject": f"s{i}", "text": "hello", **kw}


def test_send_adds_one_stream_entry_and_counts(mailer: Mailer, rclient: redis.Redis) -> None:
    mid = mailer.send(email())
    entries = rclient.xrange(K.stream)
    assert len(entries) == 1
    _, fields = entries[0]
    assert fields["v"] == "1"
    assert json.loads(fields["payload"])["id"] == mid
    assert rclient.hget(K.stats, "enqueued") == "1"


async def test_async_send_and_send_many(amailer: AsyncMailer, rclient: redis.Redis) -> None:
    first = await amailer.send(Email(**email()))
    ids = await amailer.send_many([email(i) for i in range(250)], chunk=100)
    assert len(set(ids)) == 250 and first not in ids
    assert rclient.xlen(K.stream) == 251
    assert rclient.hget(K.stats, "enqueued") == "251"


def test_send_many_validates_all_before_enqueueing(mailer: Mailer, rclient: redis.Redis) -> None:
    batch = [email(0), email(1, to="broken"), email(2)]
    with pytest.raises(InvalidEmail) as info:
        mailer.send_many(batch)
    assert info.value.field == "to[0].email"
    assert rclient.xlen(K.stream) == 0


def test_invalid_email_enqueues_nothing(mailer: Mailer, rclient: redis.Redis) -> None:
    with pytest.raises(InvalidEmail, match="subject"):
        mailer.send(email(subject="a\r\nBcc: x@example.com"))
    assert rclient.xlen(K.stream) == 0
    assert mailer.send(email()) and rclient.xlen(K.stream) == 1  # and the queue keeps flowing


def test_size_cap_is_configurable(redis_server: RedisServer) -> None:
    with (
        Mailer.from_url(redis_server.url, QUEUE, max_payload_bytes=2000) as small,
        pytest.raises(InvalidEmail, match="size cap of 2000 bytes"),
    ):
        small.send(email(text="x" * 5000))


def test_scheduled_send_goes_to_delayed(mailer: Mailer, rclient: redis.Redis) -> None:
    when = datetime.now(UTC) + timedelta(hours=1)
    mailer.send(email(send_at=when))
    assert rclient.xlen(K.stream) == 0
    [(member, score)] = rclient.zrange(K.delayed, 0, -1, withscores=True)
    assert int(score) == int(when.timestamp() * 1000)
    assert json.loads(member)["v"] == "1"


def test_unreachable_redis_is_a_clear_error() -> None:
    with (
        Mailer.from_url(f"redis://:hunter22@127.0.0.1:{free_port()}/0", QUEUE) as m,
        pytest.raises(QueueUnavailable) as info,
    ):
        m.send(email())
    assert "unreachable" in str(info.value)
    assert "hunter22" not in str(info.value)


async def test_unreachable_redis_async() -> None:
    m = AsyncMailer.from_url(f"redis://127.0.0.1:{free_port()}/0", QUEUE)
    with pytest.raises(QueueUnavailable):
        await m.send(email())
    await m.close()


def test_redis_full_refuses_loudly_and_evicts_nothing() -> None:
    with RedisServer(maxmemory="3mb") as server, Mailer.from_url(server.url, QUEUE) as m:
        big = "x" * 20_000
        sent = 0
        error: QueueFull | None = None
        for i in range(10_000):
            try:
                m.send(email(i, text=big))
            except QueueFull as exc:
                error = exc
                break
            sent += 1
        assert error is not None and "out of memory" in str(error) and "NOT enqueued" in str(error)
        client = redis.Redis.from_url(server.url)
        assert client.xlen(K.stream) == sent  # every accepted email is still there
        client.close()


def test_idempotent_enqueue_returns_the_first_id(mailer: Mailer, rclient: redis.Redis) -> None:
    first = mailer.send(email(1, idempotency_key="order-1042-confirmation"))
    again = mailer.send(email(2, idempotency_key="order-1042-confirmation"))
    other = mailer.send(email(3, idempotency_key="order-1043-confirmation"))
    plain = mailer.send(email(4))
    assert again == first and other != first
    assert rclient.xlen(K.stream) == 3
    ids = mailer.send_many([email(5, idempotency_key="order-1043-confirmation"), email(6), email(7)])
    assert ids[0] == other and len(set(ids)) == 3 and plain not in ids
    assert rclient.xlen(K.stream) == 5
    assert rclient.hget(K.stats, "enqueued") == "5"
    assert rclient.hget(K.stats, "deduplicated") == "2"
    assert 0 < rclient.ttl(K.idempotency("order-1042-confirmation")) <= 86_400


async def test_idempotency_window_is_configurable_and_expires(redis_server: RedisServer) -> None:
    import asyncio

    m = AsyncMailer.from_url(redis_server.url, QUEUE, idempotency_window_s=1)
    a = await m.send(email(1, idempotency_key="k"))
    assert await m.send(email(2, idempotency_key="k")) == a
    await asyncio.sleep(1.2)
    assert await m.send(email(3, idempotency_key="k")) != a  # window over: a new message
    await m.close()
