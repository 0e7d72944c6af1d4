"""KEDA ScaledObject and TriggerAuthentication for the workers.

The trigger is ``redis-streams`` in stream-length mode (no ``consumerGroup``): workers XACK
*and* XDEL each entry, so XLEN counts waiting + in-flight messages. That wakes workers from
zero on a single message and returns to zero once drained. docs/autoscaling.md explains why
pending-count and lag modes do not. KEDA reads every metadata value as a string.  There is
one trigger per priority lane (high, normal, bulk streams): any lane wakes the workers.
"""

from __future__ import annotations

from typing import Any

from emailqueue.keys import QueueKeys
from emailqueue_operator.spec import EmailQueue

from .common import PASSWORD_KEY, USERNAME_KEY, WORKER, RedisEndpoint, metadata, worker_name

KEDA_API_VERSION = "keda.sh/v1alpha1"
#: Consecutive failed metric reads before KEDA falls back to fallbackReplicas.
FALLBACK_FAILURE_THRESHOLD = 3


#: One trigger per priority lane (normal first); KEDA scales to the largest of their demands.
LANE_TRIGGERS = (("backlog", "normal"), ("backlog-high", "high"), ("backlog-bulk", "bulk"))


def trigger_metadata(eq: EmailQueue, endpoint: RedisEndpoint, lane: str = "normal") -> dict[str, str]:
    scaling = eq.spec.autoscaling
    return {
        "address": endpoint.address,
        "stream": QueueKeys(eq.queue).lane_stream(lane),
        "streamLength": str(eq.spec.worker.backlog_per_replica),
        "activationLagCount": str(scaling.activation_backlog),
        "databaseIndex": str(endpoint.db),
        "enableTLS": "true" if endpoint.tls else "false",
    }


def scaled_object(eq: EmailQueue, endpoint: RedisEndpoint) -> dict[str, Any]:
    scaling = eq.spec.autoscaling
    worker = eq.spec.worker
    triggers: list[dict[str, Any]] = []
    for name, lane in LANE_TRIGGERS:
        trigger: dict[str, Any] = {
            "type": "redis-streams",
            "name": name,
            "metadata": trigger_metadata(eq, endpoint, lane),
        }
        if endpoint.password_ref is not None:
            trigger["authenticationRef"] = {"name": worker_name(eq), "kind": "TriggerAuthentication"}
        triggers.append(trigger)
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "ScaledObject",
        "metadata": metadata(eq, worker_name(eq), WORKER),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": worker_name(eq)},
            "pollingInterval": scaling.polling_interval_seconds,
            "cooldownPeriod": scaling.cooldown_seconds,
            "minReplicaCount": worker.min_replicas,
            "maxReplicaCount": worker.max_replicas,
            "fallback": {"failureThreshold": FALLBACK_FAILURE_THRESHOLD, "replicas": scaling.fallback_replicas},
            "advanced": {
                "restoreToOriginalReplicaCount": False,
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleDown": {"stabilizationWindowSeconds": scaling.scale_down_stabilization_seconds},
                    },
                },
            },
            "triggers": triggers,
        },
    }


def trigger_authentication(eq: EmailQueue, endpoint: RedisEndpoint) -> dict[str, Any] | None:
    """None when Redis needs no password (then the trigger has no authenticationRef)."""
    ref = endpoint.password_ref
    if ref is None:
        return None
    targets = [{"parameter": "password", "name": ref.name, "key": PASSWORD_KEY}]
    if endpoint.username:
        targets.append({"parameter": "username", "name": ref.name, "key": USERNAME_KEY})
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "TriggerAuthentication",
        "metadata": metadata(eq, worker_name(eq), WORKER),
        "spec": {"secretTargetRef": targets},
    }
