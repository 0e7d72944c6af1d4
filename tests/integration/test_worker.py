"""The worker against real Redis and a real SMTP server: every message counted in and out."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable

import redis

from emailqueue import Mailer
from emailqueue.keys import QueueKeys
from emailqueue.localserver import RedisServer
from emailqueue.settings import Settings
from emailqueue.sink import Sink
from tests.conftest import QUEUE, WorkerProcess, running_worker, stats_of, wait_sync, wait_until

K = QueueKeys(QUEUE)


def email(i: int, to: str | None = None, **kw: object) -> dict[str, object]:
    return {
        "to": to or f"user{i}@example.com",
        "subject": f"message {i}",
        "text": f"body {i}",
        "html": f"<p>body {i}</p>",
        **kw,
    }


async def test_happy_path_delivers_everything_once(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, redis_server: RedisServer
) -> None:
    ids = mailer.send_many([email(i) for i in range(100)])
    async with running_worker(settings_for()):
        await wait_until(lambda: sink.count() >= 100, what="100 deliveries")
        await wait_until(lambda: _stream_len(redis_server) == 0, what="stream drained")
    assert sorted(sink.delivered_ids()) == sorted(ids)
    d = sink.deliveries()[0]
    assert d.sender == "sender@example.com"
    assert b"Content-Type: multipart/alternative" in d.data
    stats = await stats_of(redis_server.url)
    assert (stats.waiting, stats.in_flight, stats.delayed, stats.failed) == (0, 0, 0, 0)
    assert stats.counters["sent"] == 100 and stats.counters["enqueued"] == 100


async def test_transient_4xx_retried_on_schedule_then_delivered(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, redis_server: RedisServer
) -> None:
    [mid] = mailer.send_many([email(0, to="greylist@example.com")])
    t0 = time.monotonic()
    async with running_worker(settings_for()):
        await wait_until(lambda: sink.count() == 1, what="delivery after greylisting")
        elapsed = time.monotonic() - t0
    assert sink.delivered_ids() == [mid]
    assert elapsed >= 0.2  # waited out the first retry delay (200 ms in tests)
    stats = await stats_of(redis_server.url)
    assert stats.counters["retried"] == 1 and stats.counters["sent"] == 1 and stats.failed == 0


async def test_repeated_4xx_goes_to_failed_after_max_retries(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    sink.state.mode = "tempfail"
    [mid] = mailer.send_many([email(0)])
    t0 = time.monotonic()
    async with running_worker(settings_for(retry_delay_ms=100, retry_multiplier=2, max_retries=3)):
        await _until_failed(rclient, 1)
        elapsed = time.monotonic() - t0
    [(_, dead)] = rclient.xrange(K.failed)
    assert dead["mid"] == mid
    assert dead["reason"] == "exhausted"
    assert dead["attempts"] == "4"  # first attempt + 3 retries
    assert dead["smtp_code"] == "451"
    assert "451" in dead["error"]
    assert dead["first_attempt_at"] and dead["failed_at"]
    assert elapsed >= 0.1 + 0.2 + 0.4  # 100, 200, 400 ms between attempts
    assert sink.state.rcpt_attempts == 4
    assert rclient.hget(K.stats, "retried") == "3"


async def test_permanent_5xx_fails_at_once(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    ids = mailer.send_many([email(0, to="reject@example.com"), email(1)])
    async with running_worker(settings_for()):
        await _until_failed(rclient, 1)
        await wait_until(lambda: sink.count() == 1, what="the good message")
    [(_, dead)] = rclient.xrange(K.failed)
    assert dead["mid"] == ids[0] and dead["reason"] == "permanent"
    assert dead["attempts"] == "1" and dead["smtp_code"] == "550"
    assert rclient.hget(K.stats, "retried") is None
    assert sink.delivered_ids() == [ids[1]]


async def test_554_on_data_is_permanent(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    sink.state.mode = "permfail"
    mailer.send(email(0))
    async with running_worker(settings_for()):
        await _until_failed(rclient, 1)
    [(_, dead)] = rclient.xrange(K.failed)
    assert (dead["reason"], dead["smtp_code"], dead["attempts"]) == ("permanent", "554", "1")


async def test_smtp_down_then_back_delivers_everything(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    sink.stop()
    ids = mailer.send_many([email(i) for i in range(20)])
    async with running_worker(settings_for(retry_delay_ms=300, max_retries=5)):
        await wait_until(lambda: int(rclient.hget(K.stats, "retried") or 0) >= 20, what="first attempts to fail")
        sink.start()
        await wait_until(lambda: sink.count() >= 20, timeout=30, what="delivery after the outage")
    assert sorted(sink.delivered_ids()) == sorted(ids)
    assert rclient.xlen(K.failed) == 0


async def test_malformed_entries_are_dead_lettered_and_queue_flows(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis, redis_server: RedisServer
) -> None:
    raw = redis.Redis.from_url(redis_server.url)
    raw.xadd(K.stream, {"payload": "{}"})
    raw.xadd(K.stream, {"v": "9", "payload": "{}"})
    raw.xadd(K.stream, {"v": "1", "payload": "{nope"})
    raw.xadd(K.stream, {"v": "1", "payload": json.dumps({"to": "x", "text": "t"})})
    raw.xadd(K.stream, {b"v": b"1", b"payload": b"\xff\xfe not utf-8"})
    # a JSON escape of a lone surrogate: valid JSON and UTF-8, but not text (it once killed the read loop)
    raw.xadd(K.stream, {"v": "1", "payload": json.dumps({"id": "s1", "to": "r\udce9@example.com", "text": "t"})})
    raw.close()
    good = mailer.send_many([email(i) for i in range(5)])
    async with running_worker(settings_for()):
        await wait_until(lambda: sink.count() >= 5, what="good messages")
        await _until_failed(rclient, 6)
    dead = sorted((f for _, f in rclient.xrange(K.failed)), key=lambda f: tuple(map(int, f["entry_id"].split("-"))))
    reasons = [f["error"] for f in dead]  # in the order they were written to the stream
    assert "missing field 'v'" in reasons[0]
    assert "unknown wire format version '9'" in reasons[1]
    assert "not valid JSON" in reasons[2]
    assert "to[0].email" in reasons[3]
    assert "UTF-8" in reasons[4]
    assert "lone surrogate" in reasons[5] and dead[5]["mid"] == "s1"
    assert all(f["reason"] == "invalid" for _, f in rclient.xrange(K.failed))
    assert sorted(sink.delivered_ids()) == sorted(good)
    assert rclient.hget(K.stats, "dropped_invalid") == "6"
    assert rclient.xlen(K.stream) == 0


async def test_scheduled_send_waits_for_its_time(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink
) -> None:
    from datetime import UTC, datetime, timedelta

    due = datetime.now(UTC) + timedelta(seconds=1.5)
    mailer.send(email(0, send_at=due))
    async with running_worker(settings_for()):
        await wait_until(lambda: sink.count() == 1, what="scheduled delivery")
    delivered_at = sink.deliveries()[0].at
    assert due.timestamp() <= delivered_at < due.timestamp() + 1.0


async def test_redelivered_message_already_sent_is_not_sent_again(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    fields = None
    mid = mailer.send(email(0))
    [(_, fields)] = rclient.xrange(K.stream)
    async with running_worker(settings_for()):
        await wait_until(lambda: sink.count() == 1, what="first delivery")
        rclient.xadd(K.stream, fields)  # the same message again (e.g. a producer retry)
        await wait_until(lambda: rclient.hget(K.stats, "duplicates_suppressed") == "1", what="suppression")
    assert sink.delivered_ids() == [mid]
    assert rclient.xlen(K.stream) == 0


async def test_the_same_message_twice_in_one_batch_is_sent_once(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    """Two entries of one message (a producer's retry after a lost reply) read in the same batch:
    neither has a sent marker yet, so the batch itself must notice."""
    mid = mailer.send(email(0))
    [(_, fields)] = rclient.xrange(K.stream)
    rclient.xadd(K.stream, fields)
    others = mailer.send_many([email(i) for i in range(1, 4)])
    async with running_worker(settings_for()):
        await wait_until(lambda: rclient.xlen(K.stream) == 0, what="all settled")
    assert sorted(sink.delivered_ids()) == sorted([mid, *others])
    assert rclient.hget(K.stats, "duplicates_suppressed") == "1"


async def test_a_reply_that_is_not_utf8_is_recorded_and_sent_once(
    settings_for: Callable[..., Settings], mailer: Mailer, rclient: redis.Redis
) -> None:
    """A server whose 250 holds a byte that is not UTF-8 (Latin-1 relays exist): one delivery,
    settled, the odd byte kept visible in the status.  It used to fail the settlement, and the
    message was reclaimed and sent again until it was dead-lettered as poison."""
    import asyncio

    accepted: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 latin1.example ESMTP\r\n")
        data: list[bytes] | None = None
        while line := await reader.readline():
            if data is not None:
                if line == b".\r\n":
                    accepted.append(b"".join(data))
                    data = None
                    writer.write(b"250 2.0.0 Message accept\xe9 for delivery\r\n")
                else:
                    data.append(line)
                continue
            verb = line[:4].upper()
            if verb == b"DATA":
                data = []
                writer.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    mid = mailer.send(email(0))
    try:
        async with running_worker(settings_for(mailer_dsn=f"smtp://127.0.0.1:{port}?auto_tls=false")):
            await wait_until(lambda: rclient.hget(K.stats, "sent") == "1", what="settled as sent")
            await asyncio.sleep(2)  # past the reclaim threshold (1.5 s): a second delivery would show
    finally:
        server.close()
    assert len(accepted) == 1
    status = mailer.status(mid)
    assert status is not None and status.state == "sent" and "accept\\xe9" in status.fields["reply"]
    assert rclient.xlen(K.stream) == 0 and rclient.xlen(K.failed) == 0


async def test_scripts_are_reloaded_after_redis_loses_its_script_cache(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    from emailqueue.status import MARK_SENDING

    sha = rclient.script_load(MARK_SENDING)
    async with running_worker(settings_for()):
        mailer.send(email(0))
        await wait_until(lambda: sink.count() == 1, what="first delivery")
        rclient.script_flush()  # what a Redis restart without persistence of scripts does
        mailer.send_many([email(i) for i in range(1, 4)])
        await wait_until(lambda: sink.count() == 4, what="deliveries after the flush")
        await wait_until(lambda: rclient.script_exists(sha) == [True], what="MARK_SENDING reloaded")
        mid = mailer.send(email(9))
        await wait_until(lambda: sink.count() == 5, what="a delivery with the script back")
    status = mailer.status(mid)
    assert status is not None and status.state == "sent" and status.fields.get("consumer")


async def test_failed_retry_after_fix_delivers(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    from emailqueue.deadletter import DeadLetters
    from emailqueue.redisconn import async_client

    sink.state.mode = "permfail"
    mid = mailer.send(email(0))
    async with running_worker(settings_for()) as worker:
        await _until_failed(rclient, 1)
        sink.state.mode = "ok"
        dl = DeadLetters(async_client(worker.settings.redis_connection_url()), QUEUE)
        letters, missing = await dl.find([mid])
        assert missing == [] and len(letters) == 1
        assert await dl.retry(letters) == 1
        await wait_until(lambda: sink.count() == 1, what="delivery after failed retry")
        await dl.redis.aclose()
    assert sink.delivered_ids() == [mid]
    assert rclient.xlen(K.failed) == 0


# ---- real processes ----------------------------------------------------------------------------


def test_two_worker_processes_share_the_queue_without_duplicates(
    spawn_worker: Callable[..., WorkerProcess], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    workers = [spawn_worker(), spawn_worker()]
    wait_sync(lambda: all("consuming queue" in w.log() for w in workers), what="both workers reading")
    sink.state.delay_s = 0.005  # so that neither can drain everything before the other takes a share
    ids = mailer.send_many([email(i) for i in range(400)])
    wait_sync(lambda: sink.count() >= 400, timeout=60, what="400 deliveries")
    for w in workers:
        w.terminate()
    assert [w.wait() for w in workers] == [0, 0]
    counts = Counter(sink.delivered_ids())
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1
    assert rclient.xlen(K.stream) == 0
    consumers = {c["name"] for c in rclient.xinfo_consumers(K.stream, "workers")}
    assert consumers == set()  # both left the group cleanly
    handled = [int(w.log().rsplit("after ", 1)[1].split()[0]) for w in workers]
    assert sum(handled) == 400 and min(handled) > 0  # both did work


def test_sigkill_mid_send_is_reclaimed_and_delivered(
    spawn_worker: Callable[..., WorkerProcess], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    done = mailer.send_many([email(i) for i in range(10)])
    first = spawn_worker()
    wait_sync(lambda: sink.count() >= 10, what="first batch")
    sink.state.delay_s = 3.0  # the next send hangs in DATA
    [slow] = mailer.send_many([email(99)])
    wait_sync(lambda: _pending(rclient) == 1, what="slow message in flight")
    time.sleep(0.3)
    first.kill()  # SIGKILL while the message is in flight
    sink.state.delay_s = 0.0
    assert _pending(rclient) == 1  # still held by the dead consumer: not lost
    second = spawn_worker()
    wait_sync(lambda: rclient.xlen(K.stream) == 0, timeout=30, what="reclaim and delivery")
    second.terminate()
    assert second.wait() == 0
    counts = Counter(sink.delivered_ids())
    assert set(counts) == {*done, slow}
    assert all(counts[m] == 1 for m in done)  # completed sends never repeated
    # the in-flight one reached DATA before the kill, so the sink may have accepted it
    # once from the dead worker and once after the reclaim: at most one duplicate
    assert 1 <= counts[slow] <= 2
    assert int(rclient.hget(K.stats, "reclaimed") or 0) == 1
    assert "reclaimed 1 entries" in second.log()


def test_sigterm_drains_in_flight_sends_and_exits_0(
    spawn_worker: Callable[..., WorkerProcess], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    sink.state.delay_s = 1.0
    ids = mailer.send_many([email(i) for i in range(4)])
    w = spawn_worker()
    wait_sync(lambda: _pending(rclient) == 4, what="4 sends in flight")
    w.terminate()
    assert w.wait() == 0
    assert sorted(sink.delivered_ids()) == sorted(ids)  # finished, not abandoned
    assert rclient.xlen(K.stream) == 0
    assert "stopping: SIGTERM; finishing 4 in-flight deliveries" in w.log()


def test_redis_restart_loses_nothing(
    spawn_worker: Callable[..., WorkerProcess], mailer: Mailer, sink: Sink, redis_server: RedisServer
) -> None:
    sink.state.delay_s = 0.02
    ids = mailer.send_many([email(i) for i in range(300)])
    w = spawn_worker()
    wait_sync(lambda: sink.count() >= 30, what="some deliveries")
    redis_server.restart()  # graceful: AOF flushed; workers see the connection drop
    wait_sync(lambda: len(set(sink.delivered_ids())) >= 300, timeout=60, what="everything after the restart")
    w.terminate()
    assert w.wait() == 0
    assert set(sink.delivered_ids()) == set(ids)
    client = redis.Redis.from_url(redis_server.url)
    assert client.xlen(K.stream) == 0
    client.close()


def test_limits_end_the_worker_cleanly(
    spawn_worker: Callable[..., WorkerProcess], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    mailer.send_many([email(i) for i in range(30)])
    w = spawn_worker("--limit", "10", "--concurrency", "1")
    assert w.wait() == 0
    assert "message limit 10 reached" in w.log()
    assert sink.count() == 10
    assert rclient.xlen(K.stream) == 20
    t = spawn_worker("--time-limit", "1")
    assert t.wait() == 0 and "time limit 1s reached" in t.log()
    m = spawn_worker("--memory-limit", "1")
    assert m.wait() == 0 and "memory limit 1 MB reached" in m.log()
    assert sink.count() + rclient.xlen(K.stream) == 30  # nothing lost across the restarts


def test_stop_workers_command(
    spawn_worker: Callable[..., WorkerProcess], redis_server: RedisServer, worker_env: dict[str, str]
) -> None:
    from emailqueue.cli import main

    workers = [spawn_worker(), spawn_worker()]
    # stop-workers stops the workers running when it is issued (like messenger:stop-workers)
    wait_sync(lambda: all("consuming queue" in w.log() for w in workers), what="both workers running")
    time.sleep(0.05)
    assert main(["stop-workers", "--redis-url", redis_server.url, "--queue", QUEUE]) == 0
    assert [w.wait(15) for w in workers] == [0, 0]
    assert all("stop-workers requested" in w.log() for w in workers)


def _pending(rclient: redis.Redis) -> int:
    try:
        return int(rclient.xpending(K.stream, "workers")["pending"])
    except redis.ResponseError:
        return 0


def _stream_len(server: RedisServer) -> int:
    c = redis.Redis.from_url(server.url)
    try:
        return int(c.xlen(K.stream))
    finally:
        c.close()


async def _until_failed(rclient: redis.Redis, n: int) -> None:
    await wait_until(lambda: rclient.xlen(K.failed) >= n, what=f"{n} dead letters")


def test_poison_message_that_kills_its_workers_is_dead_lettered(
    spawn_worker: Callable[..., WorkerProcess], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    sink.state.delay_s = 30.0  # every worker that takes it hangs until it is killed
    mid = mailer.send(email(0))
    first = spawn_worker(EMAILQUEUE_MAX_DELIVERIES="1")
    wait_sync(lambda: _pending(rclient) == 1, what="held by the first worker")
    first.kill()
    second = spawn_worker(EMAILQUEUE_MAX_DELIVERIES="1")
    wait_sync(lambda: rclient.xlen(K.failed) == 1, timeout=30, what="poison dead letter")
    second.terminate()
    assert second.wait() == 0
    [(_, dead)] = rclient.xrange(K.failed)
    assert dead["mid"] == mid and dead["reason"] == "poison"
    assert "handed out 2 times" in dead["error"]
    assert rclient.xlen(K.stream) == 0


async def test_server_without_pipelining_gets_the_same_outcomes(
    settings_for: Callable[..., Settings], mailer: Mailer, rclient: redis.Redis
) -> None:
    """Pipelined transactions are the norm; a server without PIPELINING goes through aiosmtplib."""
    with Sink(pipelining=False) as plain:
        ids = mailer.send_many(
            [email(0), email(1, to="reject@example.com"), email(2, to="greylist@example.com"), email(3)]
        )
        async with running_worker(settings_for(mailer_dsn=plain.dsn)):
            await wait_until(lambda: plain.count() == 3, what="3 deliveries")
            await _until_failed(rclient, 1)
        assert sorted(plain.delivered_ids()) == sorted([ids[0], ids[2], ids[3]])
        [(_, dead)] = rclient.xrange(K.failed)
        assert (dead["mid"], dead["reason"], dead["smtp_code"]) == (ids[1], "permanent", "550")


async def test_pipelined_transaction_with_some_recipients_refused(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    mid = mailer.send(email(0, to=["ok@example.com", "reject@example.com"], cc="also@example.com"))
    mailer.send(email(1, to=["reject1@example.com", "reject2@example.com"]))
    mailer.send(email(2))  # the session is still usable after refusals (RSET)
    async with running_worker(settings_for(concurrency=1)):
        await wait_until(lambda: sink.count() == 2 and rclient.xlen(K.failed) == 1, what="outcomes")
    first = next(d for d in sink.deliveries() if d.message_id == mid)
    assert first.recipients == ("ok@example.com", "also@example.com")
    [(_, dead)] = rclient.xrange(K.failed)
    assert dead["reason"] == "permanent" and "reject1@example.com" in dead["error"]
    assert b"\r\n..leading" not in first.data  # dot-stuffing undone by the server


async def test_encrypted_payloads_are_delivered_and_unreadable_at_rest(
    settings_for: Callable[..., Settings], redis_server: RedisServer, sink: Sink, rclient: redis.Redis
) -> None:
    from emailqueue.crypto import PayloadCipher, generate_key

    keys = f"k1:{generate_key()}"
    cipher = PayloadCipher.from_env({"EMAILQUEUE_PAYLOAD_KEYS": keys})
    with Mailer.from_url(redis_server.url, QUEUE, cipher=cipher) as sealed:
        mid = sealed.send(email(0, subject="secret subject 4711"))
        [(_, fields)] = rclient.xrange(K.stream)
        assert fields["enc"] == "aesgcm:k1" and fields["mid"] == mid
        assert "4711" not in json.dumps(fields)
        async with running_worker(settings_for(payload_keys=keys)):
            await wait_until(lambda: sink.count() == 1, what="delivery of the sealed email")
        assert sink.delivered_ids() == [mid] and sink.deliveries()[0].subject == "secret subject 4711"
        # a worker without the key dead-letters under the message id, with the reason, and goes on
        other = sealed.send(email(1))
        async with running_worker(settings_for()):
            await _until_failed(rclient, 1)
        [(_, dead)] = rclient.xrange(K.failed)
        assert dead["mid"] == other and dead["reason"] == "invalid"
        assert "no key for it" in dead["error"]


async def test_hard_bounces_are_suppressed_and_not_sent_again(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis, redis_server: RedisServer
) -> None:
    from tests.integration.test_cli import cli

    base = ["--redis-url", redis_server.url, "--queue", QUEUE]
    first = mailer.send(email(0, to="reject-me@example.com"))
    async with running_worker(settings_for()):
        await _until_failed(rclient, 1)
        # the address is now suppressed: later mail to it is not sent; to the rest it is
        only = mailer.send(email(1, to="reject-me@example.com"))
        mixed = mailer.send(email(2, to=["reject-me@example.com", "fine@example.com"]))
        await wait_until(lambda: sink.count() == 1 and rclient.xlen(K.failed) == 2, what="suppressed outcomes")
    assert sink.state.rcpt_attempts == 2  # one refused RCPT, then only fine@example.com was tried
    [d] = sink.deliveries()
    assert d.message_id == mixed and d.recipients == ("fine@example.com",)
    dead = {f["mid"]: f for _, f in rclient.xrange(K.failed)}
    assert dead[first]["reason"] == "permanent" and dead[only]["reason"] == "suppressed"
    assert "suppression list" in dead[only]["error"]
    assert rclient.hget(K.stats, "suppressed") == "1"
    listed = json.loads(cli("suppression", "list", *base, "--json").stdout)
    assert listed["reject-me@example.com"]["code"] == 550
    assert listed["reject-me@example.com"]["message_id"] == first
    # removing the suppression lets a retry of the dead letter through to the server again
    assert cli("suppression", "remove", *base, "reject-me@example.com").returncode == 0
    assert rclient.hlen(K.suppressed) == 0
    r = cli("suppression", "remove", *base, "nobody@example.com")
    assert r.returncode == 1 and "not on the suppression list" in r.stderr
    assert cli("suppression", "add", *base, "manual@example.com").returncode == 0
    assert "manual@example.com" in cli("suppression", "list", *base).stdout


async def test_message_status_follows_the_message(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis, redis_server: RedisServer
) -> None:
    from tests.integration.test_cli import cli

    tracking = Mailer.from_url(redis_server.url, QUEUE, track_queued=True)  # the producer writes "queued"
    ok, grey = tracking.send_many([email(0), email(1, to="greylist@example.com")])
    tracking.close()
    bad = mailer.send(email(2, to="reject@example.com"))  # by default a status appears at pick-up
    queued = mailer.status(ok)
    assert queued is not None and queued.state == "queued"
    assert mailer.status(bad) is None and mailer.status("no-such-id") is None
    async with running_worker(settings_for(retry_delay_ms=1500)):
        await wait_until(lambda: (s := mailer.status(grey)) is not None and s.state == "retrying", what="retrying")
        retrying = mailer.status(grey)
        assert retrying is not None and retrying.fields["attempt"] == "1"
        assert "451" in retrying.fields["error"] and retrying.fields["next_attempt_at"]
        await wait_until(lambda: (s := mailer.status(grey)) is not None and s.state == "sent", what="sent after retry")
    sent = mailer.status(ok)
    assert sent is not None and sent.state == "sent" and "queued" in sent.fields["reply"]
    failed = mailer.status(bad)
    assert failed is not None and (failed.state, failed.fields["reason"], failed.fields["smtp_code"]) == (
        "failed",
        "permanent",
        "550",
    )
    assert 0 < rclient.ttl(K.status(ok)) <= 86_400
    shown = json.loads(cli("status", "--redis-url", redis_server.url, "--queue", QUEUE, grey, "--json").stdout)
    assert shown["state"] == "sent" and shown["attempt"] == "2"
    r = cli("status", "--redis-url", redis_server.url, "--queue", QUEUE, "nope")
    assert r.returncode == 1 and "no status for message nope" in r.stderr


async def test_status_tracking_can_be_turned_off(
    settings_for: Callable[..., Settings], redis_server: RedisServer, sink: Sink, rclient: redis.Redis
) -> None:
    m = Mailer(redis.Redis.from_url(redis_server.url), QUEUE, status_ttl_s=0)
    mid = m.send(email(0))
    async with running_worker(settings_for(status_ttl_s=0)):
        await wait_until(lambda: sink.count() == 1, what="delivery")
    assert m.status(mid) is None and rclient.keys(K.status("*")) == []
    m.close()


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_queue_rate_limit_holds_across_worker_processes(
    spawn_worker: Callable[..., WorkerProcess], mailer: Mailer, sink: Sink
) -> None:
    """Three workers share 20/s: counted per 1-second window at the SMTP server."""
    ids = mailer.send_many([email(i) for i in range(70)])
    workers = [spawn_worker(EMAILQUEUE_RATE_LIMIT="20/s") for _ in range(3)]
    wait_sync(lambda: sink.count() >= 70, timeout=60, what="70 deliveries")
    for w in workers:
        w.terminate()
    assert [w.wait() for w in workers] == [0, 0, 0]
    times = [d.at for d in sink.deliveries()]
    assert sorted(sink.delivered_ids()) == sorted(ids)
    assert _max_in_window(times, 1.0) <= 20 + 2  # the limit, plus one slot of boundary tolerance each side
    assert max(times) - min(times) >= (70 - 22) / 20  # it really was paced, not sent in one burst


def test_domain_rate_limit_paces_only_that_domain(
    spawn_worker: Callable[..., WorkerProcess], mailer: Mailer, sink: Sink
) -> None:
    mailer.send_many(
        [email(i, to=f"u{i}@slow.example") for i in range(12)]
        + [email(100 + i, to=f"u{i}@fast.example") for i in range(40)]
    )
    w = spawn_worker(EMAILQUEUE_DOMAIN_RATE_LIMITS="slow.example=5/s")
    wait_sync(lambda: sink.count() >= 52, timeout=60, what="52 deliveries")
    w.terminate()
    assert w.wait() == 0
    slow = [d.at for d in sink.deliveries() if d.recipients[0].endswith("@slow.example")]
    fast = [d.at for d in sink.deliveries() if d.recipients[0].endswith("@fast.example")]
    assert _max_in_window(slow, 1.0) <= 5 + 2
    assert _max_in_window(fast, 1.0) == 40  # unlimited: all within a second


async def test_slow_down_reply_pauses_without_burning_retries(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    sink.state.slow_down = 2
    mid = mailer.send(email(0, to="x@busy.example"))
    settings = settings_for(domain_rate_limits="busy.example=100/s", rate_pause_ms=300, max_retries=0)
    async with running_worker(settings):
        await wait_until(lambda: sink.count() == 1, what="delivery after the slow-down")
    assert sink.delivered_ids() == [mid]
    assert rclient.hget(K.stats, "rate_limited") == "2"
    assert rclient.hget(K.stats, "retried") is None and rclient.xlen(K.failed) == 0  # no attempt was spent
    status = mailer.status(mid)
    assert status is not None and status.state == "sent" and status.fields["attempt"] == "1"


async def test_dkim_signature_verifies(settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink) -> None:
    import base64

    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    public = base64.b64encode(
        key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    mailer.send(email(0, **{"from": "shop@example.com", "subject": "signed ✓"}))
    async with running_worker(settings_for(dkim_domain="example.com", dkim_selector="sel1", dkim_private_key=pem)):
        await wait_until(lambda: sink.count() == 1, what="signed delivery")
    data = sink.deliveries()[0].data
    assert data.startswith(b"DKIM-Signature: ")
    assert b"d=example.com" in data and b"s=sel1" in data

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"sel1._domainkey.example.com."
        return f"v=DKIM1; k=rsa; p={public}".encode()

    assert dkim.verify(data, dnsfunc=dns)
    tampered = data.replace(b"body 0", b"body 1")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_high_priority_is_not_stuck_behind_a_bulk_backlog(
    spawn_worker: Callable[..., WorkerProcess], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    sink.state.delay_s = 0.002
    mailer.send_many([email(i, priority="bulk") for i in range(600)])
    normal = mailer.send(email(700))
    high = mailer.send(email(800, subject="your sign-in code", priority="high"))
    assert rclient.xlen(K.lane_stream("bulk")) == 600 and rclient.xlen(K.lane_stream("high")) == 1
    w = spawn_worker("--concurrency", "8")
    wait_sync(lambda: sink.count() >= 602, timeout=60, what="everything delivered")
    w.terminate()
    assert w.wait() == 0
    order = sink.delivered_ids()
    assert order.index(high) < 8 + 8  # in the first read: lanes are read most urgent first
    assert order.index(normal) < 8 + 8
    assert all(rclient.xlen(s) == 0 for s in K.streams)


async def test_lanes_survive_retries_and_count_in_stats(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis, redis_server: RedisServer
) -> None:
    grey = mailer.send(email(0, to="greylist@example.com", priority="high"))
    mailer.send_many([email(i, priority="bulk") for i in range(1, 4)])
    before = await stats_of(redis_server.url)
    assert before.lanes == {"high": 1, "normal": 0, "bulk": 3} and before.backlog == 4
    async with running_worker(settings_for()):
        await wait_until(lambda: rclient.zcard(K.delayed) == 1, what="the greylisted retry")
        [member] = rclient.zrange(K.delayed, 0, -1)
        assert json.loads(member)["lane"] == "high"
        await wait_until(lambda: sink.count() == 4, what="all delivered")
    assert grey in sink.delivered_ids()
    after = await stats_of(redis_server.url)
    assert after.backlog == 0 and after.counters["sent"] == 4


async def test_delivery_events_stream(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    ok, grey, bad = mailer.send_many([email(0), email(1, to="greylist@example.com"), email(2, to="reject@example.com")])
    async with running_worker(settings_for(events_maxlen=1000)):
        await wait_until(lambda: sink.count() == 2 and rclient.xlen(K.failed) == 1, what="outcomes")
        await wait_until(lambda: rclient.xlen(K.events) == 4, what="4 events")
    events = [f for _, f in rclient.xrange(K.events)]
    by_id: dict[str, list[str]] = {}
    for e in events:
        by_id.setdefault(e["id"], []).append(e["state"])
    assert by_id == {ok: ["sent"], grey: ["retrying", "sent"], bad: ["failed"]}
    failed = next(e for e in events if e["state"] == "failed")
    assert failed["reason"] == "permanent" and failed["smtp_code"] == "550" and failed["at"]


async def test_no_events_unless_asked(
    settings_for: Callable[..., Settings], mailer: Mailer, sink: Sink, rclient: redis.Redis
) -> None:
    mailer.send(email(0))
    async with running_worker(settings_for()):
        await wait_until(lambda: sink.count() == 1, what="delivery")
    assert rclient.exists(K.events) == 0
