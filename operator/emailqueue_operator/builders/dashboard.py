"""The web dashboard (spec.dashboard): one pod running ``emailqueue dashboard`` from the
worker image, and a Service in front of it.

It reads the queue's Redis with the workers' connection settings, shows only this queue
(``--queue``), and takes its credentials from the Secrets the spec names. Payload keys set
in spec.worker.env are passed on, so that it can show encrypted payloads.
"""

from __future__ import annotations

from typing import Any

from emailqueue_operator.spec import EmailQueue

from .common import DASHBOARD, DASHBOARD_PORT, RenderContext, dashboard_name, metadata, selector_labels, worker_name
from .security import container_security, pod_security
from .worker_deployment import WORKER_UID, redis_env

#: spec.worker.env entries the dashboard needs too (decrypting payloads to show them).
SHARED_ENV = ("EMAILQUEUE_PAYLOAD_KEYS", "EMAILQUEUE_PAYLOAD_KEY_ID")
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - a pod serves its Service on every interface


def _secret(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def dashboard_env(eq: EmailQueue, ctx: RenderContext) -> list[dict[str, Any]]:
    spec = eq.spec.dashboard
    env = [
        *redis_env(ctx.endpoint),
        {"name": "EMAILQUEUE_DASHBOARD_READ_ONLY", "value": "1" if spec.read_only else "0"},
        {"name": "EMAILQUEUE_LOG_FORMAT", "value": "json"},
    ]
    if spec.token_secret_ref is not None:
        ref = spec.token_secret_ref
        env.append(_secret("EMAILQUEUE_DASHBOARD_TOKEN", ref.name, ref.key))
    if spec.basic_auth_secret_ref is not None:
        name = spec.basic_auth_secret_ref.name
        env.append(_secret("EMAILQUEUE_DASHBOARD_USER", name, "username"))
        env.append(_secret("EMAILQUEUE_DASHBOARD_PASSWORD", name, "password"))
    env.extend(e.render() for e in eq.spec.worker.env if e.name in SHARED_ENV)
    return env


def _probe(path: str, period: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }


def dashboard_deployment(eq: EmailQueue, ctx: RenderContext) -> dict[str, Any]:
    """One replica: the charts' history lives in the pod's memory (docs/dashboard.md)."""
    spec = eq.spec.dashboard
    container: dict[str, Any] = {
        "name": "dashboard",
        "image": eq.spec.worker.image,
        "imagePullPolicy": eq.spec.worker.image_pull_policy,
        "command": ["emailqueue", "dashboard"],
        "args": ["--host", ANY_ADDRESS, "--port", str(DASHBOARD_PORT), "--queue", eq.queue],
        "env": dashboard_env(eq, ctx),
        "ports": [{"name": "http", "containerPort": DASHBOARD_PORT, "protocol": "TCP"}],
        "readinessProbe": _probe("/readyz", 10),
        "livenessProbe": _probe("/healthz", 20),
        "securityContext": container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - an emptyDir, not the host's /tmp
    }
    resources = spec.resources.render()
    if resources:
        container["resources"] = resources
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(eq, dashboard_name(eq), DASHBOARD),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector_labels(eq, DASHBOARD)},
            "template": {
                "metadata": {"labels": metadata(eq, dashboard_name(eq), DASHBOARD)["labels"]},
                "spec": {
                    # The workers' identity: no API token, no rights (the dashboard never calls the API).
                    "serviceAccountName": worker_name(eq),
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security(WORKER_UID),
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
                },
            },
        },
    }


def dashboard_service(eq: EmailQueue) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(eq, dashboard_name(eq), DASHBOARD),
        "spec": {
            "type": eq.spec.dashboard.service_type,
            "selector": selector_labels(eq, DASHBOARD),
            "ports": [{"name": "http", "port": DASHBOARD_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
