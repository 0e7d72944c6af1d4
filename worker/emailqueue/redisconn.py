"""Redis connections and the translation of Redis failures into the package's errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
import redis.asyncio as aredis
from redis.exceptions import AuthenticationError, NoPermissionError, OutOfMemoryError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .dsn import redact_url
from .errors import EmailQueueError, QueueFull, QueueUnavailable

_PIPELINE_PREFIX = re.compile(r"^Command # \d+ \(.*?\) of pipeline caused error: ", re.DOTALL)


def async_client(url: str, **kwargs: Any) -> aredis.Redis:
    """An asyncio client; replies stay bytes so one non-UTF-8 entry cannot break a batch."""
    kwargs.setdefault("max_connections", 64)  # bounded: the worker pipelines, it needs few connections
    return aredis.Redis.from_url(url, decode_responses=False, health_check_interval=30, **kwargs)


def sync_client(url: str, **kwargs: Any) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=False, health_check_interval=30, **kwargs)


def translate(exc: Exception, url: str) -> EmailQueueError:
    """A Redis failure as a one-line error that names the server, never its password."""
    where = redact_url(url)
    text = redact_url(_PIPELINE_PREFIX.sub("", str(exc)))
    if isinstance(exc, AuthenticationError):
        return QueueUnavailable(f"Redis at {where} refused the credentials: {text}")
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
        return QueueUnavailable(f"Redis at {where} is unreachable: {text}")
    if isinstance(exc, OutOfMemoryError):
        return QueueFull(
            f"Redis at {where} is out of memory (maxmemory reached, policy noeviction): the email was NOT "
            "enqueued; raise maxmemory or drain the queue"
        )
    if isinstance(exc, NoPermissionError):
        return EmailQueueError(f"Redis at {where} denied the command (ACL): {text}")
    return EmailQueueError(f"Redis at {where} failed: {text}")


@contextmanager
def translated(url: str) -> Iterator[None]:
    try:
        yield
    except (redis.RedisError, OSError) as exc:
        raise translate(exc, url) from None
