"""The producer API against a real Redis: one entry per send, clear errors, nothing dropped."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
import redis

from emailqueue import AsyncMailer, Email, InvalidEmail, Mailer, QueueFull, QueueUnavailable
from emailqueue.deadletter import DeadLetters
from emailqueue.delayed import promote_due
from emailqueue.keys import QueueKeys
from emailqueue.localserver import RedisServer, free_port
from emailqueue.redisconn import async_client
from emailqueue.stats import COUNTER_SNAPSHOT, counters_from_snapshot
from tests.conftest import QUEUE

K = QueueKeys(QUEUE)


def counters(client: redis.Redis) -> dict[str, int]:
    """What `emailqueue stats` shows, read with the sync client."""
    return counters_from_snapshot(client.eval(COUNTER_SNAPSHOT, 1 + len(K.streams), K.stats, *K.streams))


def email(i: int = 0, **kw: object) -> dict[str, object]:
    return {"from": "app@example.com", "to": f"u{i}@example.com", "subject": f"s{i}", "text": "hello", **kw}


def test_send_adds_one_stream_entry_and_counts(mailer: Mailer, rclient: redis.Redis) -> None:
    rclient.config_resetstat()
    mid = mailer.send(email())
    entries = rclient.xrange(K.stream)
    assert len(entries) == 1
    _, fields = entries[0]
    assert fields == {"v": "1", "payload": fields["payload"]}
    assert json.loads(fields["payload"])["id"] == mid
    assert counters(rclient)["enqueued"] == 1
    # one command per send: the XADD (the counter is computed from the stream, no status yet)
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in rclient.info("commandstats").items()}
    assert calls["xadd"] == 1 and not {"hincrby", "hset", "expire"} & set(calls)
    assert mailer.status(mid) is None  # no worker has picked it up


def test_track_queued_records_the_queued_state(redis_server: RedisServer) -> None:
    with Mailer.from_url(redis_server.url, QUEUE, track_queued=True) as m:
        mid = m.send(email())
        [other] = m.send_many([email(1)])
        for message_id in (mid, other):
            status = m.status(message_id)
            assert status is not None and status.state == "queued" and status.fields["queue"] == QUEUE


async def test_enqueued_counts_every_email_once(
    amailer: AsyncMailer, rclient: redis.Redis, redis_server: RedisServer
) -> None:
    """Direct sends, scheduled sends (counted when scheduled, not again when promoted), raw
    XADDs of other languages' producers; promotions and dead letters retried are not new mail."""
    await amailer.send(email(0))
    await amailer.send_many([email(1), email(2, priority="high"), email(3, priority="bulk")])
    soon = datetime.now(UTC) + timedelta(milliseconds=50)
    await amailer.send_many([email(4, send_at=soon), email(5, send_at=soon, idempotency_key="k5")])
    rclient.xadd(K.stream, {"v": "1", "payload": json.dumps(email(6))})  # e.g. PHP's XADD
    assert counters(rclient)["enqueued"] == 7
    client = async_client(redis_server.url)
    try:
        await asyncio.sleep(0.1)
        assert await promote_due(client, QUEUE) == 2
        assert rclient.xlen(K.stream) == 5 and rclient.zcard(K.delayed) == 0
        # a dead letter moved back by `emailqueue failed retry` is not counted again
        [(entry_id, fields)] = rclient.xrange(K.stream, count=1)
        rclient.xdel(K.stream, entry_id)
        rclient.xadd(K.failed, {**fields, "mid": "m0", "reason": "permanent", "error": "550"})
        dead = DeadLetters(client, QUEUE)
        assert await dead.retry(await dead.all()) == 1
    finally:
        await client.aclose()
    got = counters(rclient)
    assert (got["enqueued"], got["scheduled"], got["requeued"]) == (7, 2, 3)


async def test_async_send_and_send_many(amailer: AsyncMailer, rclient: redis.Redis) -> None:
    first = await amailer.send(Email(**email()))
    ids = await amailer.send_many([email(i) for i in range(250)], chunk=100)
    assert len(set(ids)) == 250 and first not in ids
    assert rclient.xlen(K.stream) == 251
    assert counters(rclient)["enqueued"] == 251


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
        with pytest.raises(QueueFull):  # a batch: every reply read, the first error raised
            m.send_many([email(i, text=big) for i in range(20)])
        assert client.xlen(K.stream) == sent
        client.delete(K.stream)  # once there is room the same connections work again
        assert m.send(email()) and m.send_many([email(1), email(2)]) and client.xlen(K.stream) == 3
        client.close()


@pytest.mark.parametrize("crash", [False, True])
async def test_send_survives_a_redis_restart(crash: bool) -> None:
    """The pooled connections die with the server; the next send notices (the pool checks a
    connection for EOF before use) and reconnects instead of failing.  No retry is involved: a
    send whose reply is lost raises (tests/soak/test_lost_reply.py) rather than enqueue twice."""
    with RedisServer() as server:
        sync = Mailer.from_url(server.url, QUEUE)
        amailer = AsyncMailer.from_url(server.url, QUEUE)
        sync.send(email(0))
        await amailer.send(email(1))
        server.restart(crash=crash)
        await asyncio.sleep(0.05)  # an application's event loop runs on and sees the EOF
        sync.send(email(2))
        await amailer.send(email(3))
        assert len(sync.send_many([email(4), email(5)])) == len(await amailer.send_many([email(6)])) + 1
        client = redis.Redis.from_url(server.url)
        assert client.xlen(K.stream) >= 5  # emails 2-6 for sure; 0-1 as far as the AOF had them
        client.close()
        sync.close()
        await amailer.close()


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
    assert counters(rclient)["enqueued"] == 5
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
