"""Who may reach a managed Redis: the queue's workers, producers carrying the documented
label, the operator (stats, promotion of due retries), KEDA (the scaler polls XLEN) and,
when spec.dashboard is enabled, the dashboard."""

from __future__ import annotations

from typing import Any

from emailqueue_operator.spec import EmailQueue

from .common import (
    DASHBOARD,
    PRODUCER_LABEL,
    REDIS,
    REDIS_PORT,
    WORKER,
    RenderContext,
    metadata,
    redis_name,
    selector_labels,
)

OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "emailqueue-operator"}
KEDA_POD_LABELS = {"app.kubernetes.io/name": "keda-operator"}


def _in_namespace(namespace: str, pod_labels: dict[str, str]) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "podSelector": {"matchLabels": dict(pod_labels)},
    }


def redis_networkpolicy(eq: EmailQueue, ctx: RenderContext) -> dict[str, Any]:
    peers: list[dict[str, Any]] = [
        {"podSelector": {"matchLabels": selector_labels(eq, WORKER)}},
        {"podSelector": {"matchLabels": {PRODUCER_LABEL: eq.name}}},
    ]
    if eq.spec.dashboard.enabled:
        peers.append({"podSelector": {"matchLabels": selector_labels(eq, DASHBOARD)}})
    if ctx.operator_namespace:
        peers.append(_in_namespace(ctx.operator_namespace, OPERATOR_POD_LABELS))
    if ctx.keda_namespace:
        peers.append(_in_namespace(ctx.keda_namespace, KEDA_POD_LABELS))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(eq, redis_name(eq), REDIS),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(eq, REDIS)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": REDIS_PORT}]}],
        },
    }
