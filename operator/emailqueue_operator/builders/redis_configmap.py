"""The managed Redis configuration: durable (AOF) and never evicting queued mail."""

from __future__ import annotations

import hashlib
from typing import Any

from emailqueue_operator.spec import EmailQueue, ManagedRedis

from .common import REDIS, REDIS_PORT, metadata, redis_name

CONFIG_FILE = "redis.conf"
#: Written at container start from the password Secret, so the password is in no argv.
AUTH_FILE = "/run/redis/auth.conf"


def redis_conf(managed: ManagedRedis) -> str:
    lines = [
        "# Rendered by emailqueue-operator; edit the EmailQueue, not this ConfigMap.",
        f"port {REDIS_PORT}",
        "bind * -::*",
        "dir /data",
        # Queued mail is data: every write goes to the append-only file.
        "appendonly yes",
        f"appendfsync {managed.appendfsync}",
        'save ""',
        f"maxmemory {managed.maxmemory}",
        # An LRU policy would silently delete queued mail; refuse writes when full instead.
        "maxmemory-policy noeviction",
        f"include {AUTH_FILE}",
        "",
    ]
    return "\n".join(lines)


def redis_configmap(eq: EmailQueue) -> dict[str, Any]:
    assert eq.spec.redis.managed is not None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(eq, redis_name(eq), REDIS),
        "data": {CONFIG_FILE: redis_conf(eq.spec.redis.managed)},
    }


def config_hash(eq: EmailQueue) -> str:
    """Put into the pod template, so that a configuration change restarts Redis."""
    assert eq.spec.redis.managed is not None
    return hashlib.sha256(redis_conf(eq.spec.redis.managed).encode()).hexdigest()[:16]
