"""The managed Redis: one replica, a volume claim, and probes that authenticate."""

from __future__ import annotations

from typing import Any

from emailqueue_operator.spec import EmailQueue

from .common import PASSWORD_KEY, REDIS, REDIS_PORT, labels, metadata, redis_name, redis_secret_name, selector_labels
from .redis_configmap import AUTH_FILE, CONFIG_FILE, config_hash
from .security import container_security, pod_security

#: uid/gid of the `redis` user in the official redis images and of `valkey` in valkey's.
REDIS_UID = 999
DATA_VOLUME = "data"

# The image may be Redis or Valkey: use whichever binary it has. The password goes into a
# file on a memory volume that the config includes, so it appears in no process argument list.
_START = (
    'umask 077 && printf \'requirepass "%s"\\n\' "$REDIS_PASSWORD" > ' + AUTH_FILE + " && "
    'exec "$(command -v valkey-server || command -v redis-server)" /etc/redis/' + CONFIG_FILE
)
# redis-cli and valkey-cli read the password from REDISCLI_AUTH (never from argv): the probe
# authenticates, so "NOAUTH" is a failure, and only a PONG counts.
_PING = '"$(command -v valkey-cli || command -v redis-cli)" -h 127.0.0.1 -p ' + str(REDIS_PORT) + " ping | grep -q PONG"


def _probe(period: int, failures: int) -> dict[str, Any]:
    return {
        "exec": {"command": ["sh", "-c", _PING]},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _secret_env(name: str, secret: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": PASSWORD_KEY}}}


def redis_statefulset(eq: EmailQueue) -> dict[str, Any]:
    managed = eq.spec.redis.managed
    assert managed is not None
    name = redis_name(eq)
    secret = redis_secret_name(eq)
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": managed.storage.size}},
    }
    if managed.storage.storage_class_name:
        claim_spec["storageClassName"] = managed.storage.storage_class_name
    container: dict[str, Any] = {
        "name": "redis",
        "image": managed.image,
        "command": ["sh", "-c", _START],
        "env": [_secret_env("REDIS_PASSWORD", secret), _secret_env("REDISCLI_AUTH", secret)],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "startupProbe": _probe(period=2, failures=60),
        "readinessProbe": _probe(period=5, failures=3),
        "livenessProbe": _probe(period=10, failures=6),
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": DATA_VOLUME, "mountPath": "/data"},
            {"name": "config", "mountPath": "/etc/redis", "readOnly": True},
            {"name": "run", "mountPath": "/run/redis"},
        ],
    }
    resources = managed.resources.render()
    if resources:
        container["resources"] = resources
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(eq, name, REDIS),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(eq, REDIS)},
            # The claim outlives the StatefulSet unless the spec asks otherwise: mail is data.
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": managed.volume_reclaim_policy,
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {
                    "labels": labels(eq, REDIS),
                    "annotations": {"emailqueue.dev/config-hash": config_hash(eq)},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": pod_security(REDIS_UID),
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": name}},
                        {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": DATA_VOLUME, "labels": labels(eq, REDIS)},
                    "spec": claim_spec,
                }
            ],
        },
    }
