"""Redis commands packed by hand and pipelined on a pooled redis-py connection.

The hot paths: the producer's XADD and the worker's settlement scripts.  Redis spends about
1 µs on an XADD; redis-py 8 spends 10-15 µs around each command (packing through a generic
encoder, pipeline bookkeeping, observability hooks, reply callbacks), which is what capped
``send_many`` at ~20k emails/s.  Here a command becomes RESP bytes in one ``%``-format per
argument, all commands of a batch go out in one write, and the replies are read back with
the connection's own parser (hiredis when installed), raw: no response callbacks.
Connection handling stays redis-py's: the pool (which replaces a connection the server
closed before handing it out), ``check_health``, TLS, AUTH; a connection that fails mid-batch
is disconnected by redis-py and the error raised.  Nothing is retried here, whatever retry
policy the client was built with: a batch whose replies were lost may have been applied, and
writing it again would enqueue every message twice (the worker would catch most of those by
message id, but not all).  The caller decides; the worker's settlement scripts are idempotent
and retried by the worker.

Error replies (OOM, ACL) do not desynchronise the connection: every reply of the batch is
read, then the first error is raised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

import redis
import redis.asyncio as aredis
from redis.exceptions import ResponseError


def pack_xadd(stream: str, fields: Mapping[str, str]) -> bytes:
    """``XADD <stream> * <field> <value> ...`` as RESP bytes."""
    return pack_command(["XADD", stream, "*", *chain.from_iterable(fields.items())])


def pack_entry(stream: str, payload: bytes) -> bytes:
    """``XADD <stream> * v 1 payload <payload>``: a wire-format v1 entry without encryption (the
    producer's common case), in one format operation."""
    key = stream.encode()
    return b"*7\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$1\r\nv\r\n$1\r\n1\r\n$7\r\npayload\r\n$%d\r\n%s\r\n" % (
        len(key),
        key,
        len(payload),
        payload,
    )


def pack_command(args: Sequence[str | bytes | int | float]) -> bytes:
    """Any command as RESP bytes: bytes as they are, str as UTF-8, numbers in decimal.

    Anything else (None, a bool, an object) is a programming error and raises ``TypeError``
    naming the type, as redis-py refuses it too; a silent ``"None"`` in Redis would be worse."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            b = arg
        elif isinstance(arg, str):
            try:
                b = arg.encode()
            except UnicodeEncodeError:
                b = _visible(arg)
        elif isinstance(arg, int | float) and not isinstance(arg, bool):
            b = repr(arg).encode()
        else:
            raise TypeError(f"cannot send a {type(arg).__name__} to Redis as a command argument")
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


def _visible(text: str) -> bytes:
    """Text holding lone surrogates as UTF-8 with them made visible: SMTP replies are decoded
    with surrogateescape, so ``\\udce9`` was the byte 0xE9 and becomes ``\\xe9``; any other
    lone surrogate is written as its escape.  Never fails."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def _first_error(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def execute_packed(client: redis.Redis, packed: Sequence[bytes]) -> list[Any]:
    """Write ``packed`` commands in one go; their replies, an error reply as its exception."""
    data = b"".join(packed)
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command((data,))  # type: ignore[no-untyped-call]
        replies: list[Any] = []
        for _ in packed:
            try:
                replies.append(conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies
    finally:
        pool.release(conn)


async def aexecute_packed(client: aredis.Redis, packed: Sequence[bytes]) -> list[Any]:
    """The asyncio twin of ``execute_packed``."""
    data = b"".join(packed)
    pool = client.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await conn.send_packed_command((data,))
        replies: list[Any] = []
        for _ in packed:
            try:
                replies.append(await conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies
    finally:
        await pool.release(conn)


def xadd_packed(client: redis.Redis, packed: Sequence[bytes]) -> list[Any]:
    """Run packed XADDs; their entry ids, or the first error reply raised (after reading all)."""
    return _first_error(execute_packed(client, packed))


async def axadd_packed(client: aredis.Redis, packed: Sequence[bytes]) -> list[Any]:
    """The asyncio twin of ``xadd_packed``."""
    return _first_error(await aexecute_packed(client, packed))
