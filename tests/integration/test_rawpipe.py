"""The hand-packed pipeline (emailqueue.rawpipe) and the settler built on it, against a real Redis:
replies in order, error replies in place without desynchronising the connection, and a
settlement batch that fails in an unexpected way failing its waiters instead of hanging them."""

from __future__ import annotations

import asyncio

import pytest
import redis
from redis.exceptions import ResponseError

from emailqueue.localserver import RedisServer
from emailqueue.rawpipe import aexecute_packed, execute_packed, pack_command, pack_xadd
from emailqueue.redisconn import async_client, sync_client
from emailqueue.settle import Settler

ECHO = "return ARGV"


def test_packed_commands_match_redis_py(redis_server: RedisServer) -> None:
    client = sync_client(redis_server.url)
    entry = {"v": "1", "payload": '{"subject":"Grüße \\r\\n $3 *2"}'}  # UTF-8 and RESP-looking bytes
    replies = execute_packed(
        client,
        [
            pack_xadd("s", entry),
            pack_command(("HSET", "h", "n", 7, "f", 1.5, "b", b"\x00\xff")),
            pack_command(("HGETALL", "h")),
            pack_command(("INCRBY", "not-a-number", "x")),  # an error reply, in place
            pack_command(("GET", "missing")),
            pack_command(("XRANGE", "s", "-", "+")),
        ],
    )
    assert isinstance(replies[0], bytes) and replies[1] == 3
    got = replies[2] if isinstance(replies[2], dict) else dict(zip(replies[2][::2], replies[2][1::2], strict=True))
    assert got == {b"n": b"7", b"f": b"1.5", b"b": b"\x00\xff"}  # a map under RESP3, a flat list under RESP2
    assert isinstance(replies[3], ResponseError) and replies[4] is None
    [(_, fields)] = replies[5]
    assert fields == [b"v", b"1", b"payload", entry["payload"].encode()]
    assert client.xrange("s") == [(replies[0], {k.encode(): v.encode() for k, v in entry.items()})]
    assert client.ping()  # the error reply left the connection in step
    client.close()


async def test_async_error_reply_keeps_the_connection_in_step(redis_server: RedisServer) -> None:
    client = async_client(redis_server.url, max_connections=1)  # one connection: any desync would show
    for _ in range(3):
        a, err, b = await aexecute_packed(
            client, [pack_command(("ECHO", "a")), pack_command(("NOSUCHCOMMAND",)), pack_command(("ECHO", "b"))]
        )
        assert (a, b) == (b"a", b"b") and isinstance(err, ResponseError)
    await client.aclose()


async def test_settler_fails_a_broken_batch_and_keeps_settling(redis_server: RedisServer) -> None:
    """A batch that raises something unexpected (here: a None argument, a programming error)
    fails its waiters; the next batch runs.  Before, the flush task died and every later
    settlement waited forever: a worker that delivered and never acknowledged."""

    client = async_client(redis_server.url)
    settler = Settler(client, [ECHO])
    settler.start()
    try:
        with pytest.raises(TypeError, match="cannot send a NoneType"):
            await asyncio.wait_for(settler.submit(ECHO, [], [None]), 5)
        assert await asyncio.wait_for(settler.submit(ECHO, [], ["x", 1]), 5) == [b"x", b"1"]
    finally:
        await settler.close()
        await client.aclose()


def test_a_connection_the_server_closed_is_replaced(redis_server: RedisServer) -> None:
    client = sync_client(redis_server.url)
    assert execute_packed(client, [pack_command(("PING",))]) == [b"PONG"]
    admin = redis.Redis.from_url(redis_server.url)
    admin.client_kill_filter(_type="normal", skipme=True)  # the server drops our pooled connection
    admin.close()
    assert execute_packed(client, [pack_command(("PING",))]) == [b"PONG"]
    client.close()
