"""The two things the handlers do: reconcile (render + apply + report) and refresh (report).

Order matters: Redis and the workers first; the stream and consumer group next; the KEDA
objects last, once KEDA has a stream to read. Status is returned, never written here: the
handlers put it into kopf's patch of the status subresource.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emailqueue.keys import QueueKeys
from emailqueue_operator.apply import ApiError, Kube, apply_children, delete_children, delete_owned_children
from emailqueue_operator.builders import RenderContext, render
from emailqueue_operator.builders.common import redis_name, worker_name
from emailqueue_operator.builders.scaledobject import KEDA_API_VERSION
from emailqueue_operator.builders.secret import redis_secret
from emailqueue_operator.builders.worker_deployment import fixed_replicas
from emailqueue_operator.config import OperatorConfig
from emailqueue_operator.redisops import NotReady, QueueRedis, RedisReport, resolve, visit
from emailqueue_operator.spec import EmailQueue
from emailqueue_operator.status import Observation, build_status

Body = Mapping[str, Any]


@dataclass(frozen=True)
class Outcome:
    """A status patch, and whether the queue is fully in place (False: retry later)."""

    status: dict[str, Any]
    converged: bool
    problem: str = ""
    keda_installed: bool = False
    notes: list[str] = field(default_factory=list)


async def keda_installed(kube: Kube) -> bool:
    return await kube.serves(KEDA_API_VERSION, "scaledobjects", "triggerauthentications")


def _context(eq: EmailQueue, redis: QueueRedis, keda: bool, cfg: OperatorConfig) -> RenderContext:
    return RenderContext(
        endpoint=redis.endpoint,
        keda_installed=keda,
        keda_managed=keda and eq.spec.autoscaling.enabled,
        operator_namespace=cfg.namespace,
        keda_namespace=cfg.keda_namespace,
    )


async def reconcile(body: Body, cfg: OperatorConfig, logger: logging.Logger | logging.LoggerAdapter[Any]) -> Outcome:
    eq = EmailQueue.from_body(body)
    with Kube() as kube:
        keda = await keda_installed(kube)
        try:
            redis = await resolve(eq, kube, cfg, provision=True)
        except NotReady as exc:
            obs = await observe(eq, kube, keda, None, RedisReport(error=exc.message), reason=exc.reason)
            return Outcome(build_status(obs, body.get("status"), observed_generation=None), False, exc.message, keda)
        if redis.external_password is not None:
            await apply_children(kube, [redis_secret(eq, redis.external_password, redis.endpoint.username)], body)
        children = render(eq, _context(eq, redis, keda, cfg))
        await apply_children(kube, children.core, body)
        await delete_children(kube, eq.namespace, children.absent)
        await delete_owned_children(kube, eq.namespace, eq.uid, children.owned_absent)
        report = await visit(redis.url, eq.queue, ensure=True, promote=False)
        if report.error is None and children.autoscaling:
            await apply_children(kube, children.autoscaling, body)
        obs = await observe(eq, kube, keda, redis, report)
    converged = report.error is None
    status = build_status(obs, body.get("status"), observed_generation=eq.generation if converged else None)
    problem = "" if converged else f"Redis at {redis.endpoint.display}: {report.error}"
    return Outcome(status, converged, problem, keda)


async def refresh(body: Body, cfg: OperatorConfig) -> Outcome:
    """Read the queue's figures into status and promote retries that fell due."""
    eq = EmailQueue.from_body(body)
    with Kube() as kube:
        keda = await keda_installed(kube)
        try:
            redis = await resolve(eq, kube, cfg, provision=False)
        except NotReady as exc:
            obs = await observe(eq, kube, keda, None, RedisReport(error=exc.message), reason=exc.reason)
            return Outcome(build_status(obs, body.get("status"), observed_generation=None), False, exc.message, keda)
        if redis.external_password is not None:  # follow a changed URL Secret
            await apply_children(kube, [redis_secret(eq, redis.external_password, redis.endpoint.username)], body)
        report = await visit(redis.url, eq.queue, ensure=False, promote=True)
        obs = await observe(eq, kube, keda, redis, report)
    notes = [f"promoted {report.promoted} due message(s) into the stream"] if report.promoted else []
    status = build_status(obs, body.get("status"), observed_generation=None)
    return Outcome(status, report.error is None, report.error or "", keda, notes)


def _ready_condition(obj: Body | None) -> tuple[str | None, str]:
    for cond in (obj or {}).get("status", {}).get("conditions", []) or []:
        if cond.get("type") == "Ready":
            return cond.get("status"), cond.get("message", "")
    return None, ""


async def observe(
    eq: EmailQueue,
    kube: Kube,
    keda: bool,
    redis: QueueRedis | None,
    report: RedisReport,
    *,
    reason: str | None = None,
) -> Observation:
    """Gather the children's state and the Redis report into one Observation."""
    managed = eq.spec.redis.managed is not None
    redis_pod_ready: bool | None = None
    if managed:
        sts = await kube.get("apps/v1", "StatefulSet", eq.namespace, redis_name(eq))
        redis_pod_ready = bool(sts and (sts.get("status") or {}).get("readyReplicas"))
    dep = await kube.get("apps/v1", "Deployment", eq.namespace, worker_name(eq))
    so: Body | None = None
    if keda and eq.spec.autoscaling.enabled:
        try:
            so = await kube.get(KEDA_API_VERSION, "ScaledObject", eq.namespace, worker_name(eq))
        except ApiError:
            so = None
    so_ready, so_message = _ready_condition(so)
    desired = int(((dep or {}).get("spec") or {}).get("replicas", 1)) if dep else 0
    return Observation(
        generation=eq.generation,
        managed_redis=managed,
        redis_endpoint=redis.endpoint.display if redis else None,
        stream=QueueKeys(eq.queue).stream,
        redis_reason=None if report.error is None else (reason or "RedisUnreachable"),
        redis_message=report.error or "",
        redis_pod_ready=redis_pod_ready,
        stats=report.stats,
        deployment_found=dep is not None,
        workers_desired=desired,
        workers_ready=int(((dep or {}).get("status") or {}).get("readyReplicas") or 0),
        autoscaling_enabled=eq.spec.autoscaling.enabled,
        keda_installed=keda,
        fixed_replicas=fixed_replicas(eq),
        scaledobject_found=so is not None,
        scaledobject_ready=so_ready,
        scaledobject_message=so_message,
    )
