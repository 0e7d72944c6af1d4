"""The ClusterIP Service in front of a managed Redis."""

from __future__ import annotations

from typing import Any

from emailqueue_operator.spec import EmailQueue

from .common import REDIS, REDIS_PORT, metadata, redis_name, selector_labels


def redis_service(eq: EmailQueue) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(eq, redis_name(eq), REDIS),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(eq, REDIS),
            "ports": [{"name": "redis", "port": REDIS_PORT, "targetPort": "redis", "protocol": "TCP"}],
        },
    }
