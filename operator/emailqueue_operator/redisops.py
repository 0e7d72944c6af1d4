"""What the operator does in a queue's Redis: find it, create the stream and group, read figures."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from emailqueue.delayed import promote_due
from emailqueue.dsn import redact_url
from emailqueue.keys import GROUP, QueueKeys
from emailqueue.redisconn import async_client
from emailqueue.stats import QueueStats, read_queue_stats
from emailqueue_operator.apply import Kube
from emailqueue_operator.builders.common import PASSWORD_KEY, RedisEndpoint, redis_name, redis_secret_name
from emailqueue_operator.builders.secret import generate_password, redis_secret
from emailqueue_operator.config import OperatorConfig
from emailqueue_operator.spec import EmailQueue


class NotReady(Exception):
    """Something the queue needs is not there yet; ``reason`` becomes the condition's reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class QueueRedis:
    """A queue's Redis as the workers see it (endpoint) and as the operator reaches it (url)."""

    endpoint: RedisEndpoint
    url: str  # holds the password: never log it, never put it in status
    #: External Redis: the password parsed from the URL, for the Secret that KEDA reads.
    external_password: str | None = None


async def read_secret(kube: Kube, eq: EmailQueue, name: str, key: str) -> str | None:
    secret = await kube.get("v1", "Secret", eq.namespace, name)
    if secret is None:
        return None
    value = (secret.get("data") or {}).get(key)
    if value is None:
        return None
    return base64.b64decode(value).decode()


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f":{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def resolve(eq: EmailQueue, kube: Kube, cfg: OperatorConfig, *, provision: bool) -> QueueRedis:
    """Find the queue's Redis. With ``provision``, create a managed Redis's password Secret once."""
    if eq.spec.redis.managed is not None:
        endpoint = RedisEndpoint.managed(eq)
        secret = redis_secret_name(eq)
        password = await read_secret(kube, eq, secret, PASSWORD_KEY)
        if password is None and provision:
            await kube.create(_adopted(eq, redis_secret(eq, generate_password())))
            password = await read_secret(kube, eq, secret, PASSWORD_KEY)  # whoever created it first wins
        if password is None:
            raise NotReady("SecretMissing", f"Secret {secret} (key {PASSWORD_KEY}) with the Redis password is missing")
        address = cfg.managed_redis_address.format(service=redis_name(eq), namespace=eq.namespace)
        return QueueRedis(endpoint=endpoint, url=_with_password(f"redis://{address}/0", password))
    assert eq.spec.redis.external is not None
    ref = eq.spec.redis.external.url_secret_ref
    url = await read_secret(kube, eq, ref.name, ref.key)
    if url is None:
        raise NotReady("SecretMissing", f"Secret {ref.name} (key {ref.key}) with the Redis URL is missing")
    try:
        endpoint, password = RedisEndpoint.external(eq, url)
    except ValueError as exc:
        raise NotReady("InvalidRedisURL", f"Secret {ref.name} (key {ref.key}): {exc}") from None
    return QueueRedis(endpoint=endpoint, url=url, external_password=password)


def _adopted(eq: EmailQueue, obj: dict[str, object]) -> dict[str, object]:
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    meta["ownerReferences"] = [eq.owner_reference()]
    return obj


def client(url: str) -> Redis:
    return async_client(url, socket_connect_timeout=3, socket_timeout=5)


async def ensure_stream(redis: Redis, queue: str) -> None:
    """XGROUP CREATE <lane stream> workers 0 MKSTREAM for every lane; an existing group is fine.

    From id 0 rather than $: entries enqueued before the group existed are undelivered mail.
    """
    for stream in QueueKeys(queue).streams:  # every priority lane
        try:
            await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


@dataclass(frozen=True, slots=True)
class RedisReport:
    """What one visit to a queue's Redis found."""

    stats: QueueStats | None = None
    promoted: int = 0
    error: str | None = None


async def visit(url: str, queue: str, *, ensure: bool, promote: bool) -> RedisReport:
    """Connect, optionally create the stream/group and promote due messages, read the figures."""
    redis = client(url)
    try:
        if ensure:
            await ensure_stream(redis, queue)
        promoted = await promote_due(redis, queue) if promote else 0
        return RedisReport(stats=await read_queue_stats(redis, queue), promoted=promoted)
    except (RedisError, OSError) as exc:
        return RedisReport(error=redact_url(str(exc)) or type(exc).__name__)
    finally:
        await redis.aclose()
