"""The worker Deployment: the env contract of the `emailqueue worker` process.

Environment variables are the interface between operator and worker; their names are
fixed (docs/configuration.md). The contract test in tests/operator loads the worker's
Settings from exactly this list.
"""

from __future__ import annotations

from typing import Any

from emailqueue_operator.spec import EmailQueue

from .common import METRICS_PORT, WORKER, RedisEndpoint, RenderContext, labels, metadata, selector_labels, worker_name
from .security import container_security, pod_security

WORKER_UID = 10001
COMMAND = ["emailqueue", "worker"]


def _value(name: str, value: object) -> dict[str, Any]:
    return {"name": name, "value": str(value)}


def _secret(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def redis_env(endpoint: RedisEndpoint) -> list[dict[str, Any]]:
    """External Redis: the user's URL Secret as is. Managed: a URL without password plus the password."""
    if endpoint.url_ref is not None:
        return [_secret("EMAILQUEUE_REDIS_URL", endpoint.url_ref.name, endpoint.url_ref.key)]
    env = [_value("EMAILQUEUE_REDIS_URL", endpoint.display)]
    if endpoint.password_ref is not None:
        env.append(_secret("EMAILQUEUE_REDIS_PASSWORD", endpoint.password_ref.name, endpoint.password_ref.key))
    return env


def worker_env(eq: EmailQueue, endpoint: RedisEndpoint) -> list[dict[str, Any]]:
    spec = eq.spec
    dsn = spec.smtp.dsn_secret_ref
    env = [
        *redis_env(endpoint),
        _value("EMAILQUEUE_QUEUE", eq.queue),
        _secret("MAILER_DSN", dsn.name, dsn.key),
        _value("MAILER_FROM_EMAIL", spec.smtp.from_email),
        _value("MAILER_FROM_NAME", spec.smtp.from_name),
        _value("EMAILQUEUE_CONCURRENCY", spec.worker.concurrency),
        _value("EMAILQUEUE_MAX_RETRIES", spec.retry.max_retries),
        _value("EMAILQUEUE_RETRY_DELAY_MS", spec.retry.delay_ms),
        _value("EMAILQUEUE_RETRY_MULTIPLIER", spec.retry.multiplier),
        _value("EMAILQUEUE_RETRY_MAX_DELAY_MS", spec.retry.max_delay_ms),
        _value("EMAILQUEUE_CLAIM_IDLE_MS", spec.worker.claim_idle_ms),
        _value("EMAILQUEUE_METRICS_PORT", METRICS_PORT),
        _value("EMAILQUEUE_SHUTDOWN_GRACE_S", spec.worker.shutdown_grace_s),
        _value("EMAILQUEUE_LOG_FORMAT", "json"),
        {"name": "EMAILQUEUE_CONSUMER_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    env.extend(delivery_env(eq))
    env.extend(e.render() for e in spec.worker.env)
    return env


def delivery_env(eq: EmailQueue) -> list[dict[str, Any]]:
    """spec.delivery: the defaulted settings always (the Deployment says what runs), the
    optional ones (rate limits, DKIM) only when set; the DKIM key only from its Secret."""
    delivery = eq.spec.delivery
    env: list[dict[str, Any]] = []
    if delivery.rate_limit is not None:
        env.append(_value("EMAILQUEUE_RATE_LIMIT", delivery.rate_limit))
    if delivery.domain_rate_limits:
        env.append(_value("EMAILQUEUE_DOMAIN_RATE_LIMITS", delivery.rendered_domain_rate_limits()))
    env += [
        _value("EMAILQUEUE_RATE_PAUSE_MS", delivery.slow_down_pause_seconds * 1000),
        _value("EMAILQUEUE_STATUS_TTL_S", delivery.status_ttl_seconds),
        _value("EMAILQUEUE_SUPPRESS_HARD_BOUNCES", "true" if delivery.suppress_hard_bounces else "false"),
    ]
    if delivery.dkim is not None:
        key = delivery.dkim.private_key_secret_ref
        env += [
            _value("EMAILQUEUE_DKIM_DOMAIN", delivery.dkim.domain),
            _value("EMAILQUEUE_DKIM_SELECTOR", delivery.dkim.selector),
            _secret("EMAILQUEUE_DKIM_PRIVATE_KEY", key.name, key.key),
        ]
    return env


def _http_probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "metrics"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def worker_deployment(eq: EmailQueue, ctx: RenderContext) -> dict[str, Any]:
    """``spec.replicas`` is rendered only when the operator owns it (KEDA absent or disabled);
    then it is max(minReplicas, 1) so that the queue works without an autoscaler."""
    worker = eq.spec.worker
    container: dict[str, Any] = {
        "name": "worker",
        "image": worker.image,
        "imagePullPolicy": worker.image_pull_policy,
        "command": COMMAND,
        "env": worker_env(eq, ctx.endpoint),
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "readinessProbe": _http_probe("/readyz", period=5, failures=3),
        "livenessProbe": _http_probe("/healthz", period=10, failures=6),
        "securityContext": container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - an emptyDir, not the host's /tmp
    }
    resources = worker.resources.render()
    if resources:
        container["resources"] = resources
    spec: dict[str, Any] = {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector_labels(eq, WORKER)},
        # Never fewer ready workers than wanted during a rollout; one extra at a time.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {
            "metadata": {
                "labels": labels(eq, WORKER),
                "annotations": {
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": str(METRICS_PORT),
                    "prometheus.io/path": "/metrics",
                },
            },
            "spec": {
                "serviceAccountName": worker_name(eq),
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": worker.termination_grace_period_seconds,
                "securityContext": pod_security(WORKER_UID),
                "containers": [container],
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
            },
        },
    }
    if not ctx.keda_managed:
        spec = {"replicas": fixed_replicas(eq), **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(eq, worker_name(eq), WORKER),
        "spec": spec,
    }


def fixed_replicas(eq: EmailQueue) -> int:
    """Workers without an autoscaler: at least one, or nothing would ever be sent."""
    return max(eq.spec.worker.min_replicas, 1)
