"""From what was observed to the EmailQueue status: figures and conditions (pure functions).

Conditions: RedisReady (reachable, stream and group exist), WorkersReady (available, or
scaled to zero by the autoscaler), AutoscalingReady (KEDA installed and its ScaledObject
ready) and Ready = RedisReady and WorkersReady: a queue without an autoscaler still
delivers mail, so AutoscalingReady=False does not make it unready.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from emailqueue.stats import QueueStats

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything status is computed from; gathered by reconcile.py."""

    generation: int
    managed_redis: bool
    redis_endpoint: str | None = None
    stream: str | None = None
    redis_reason: str | None = None  # None: Redis reachable, stream and group in place
    redis_message: str = ""
    redis_pod_ready: bool | None = None  # managed only: the StatefulSet's pod is ready
    stats: QueueStats | None = None
    deployment_found: bool = False
    workers_desired: int = 0
    workers_ready: int = 0
    autoscaling_enabled: bool = True
    keda_installed: bool = False
    fixed_replicas: int = 1
    scaledobject_found: bool = False
    scaledobject_ready: str | None = None  # KEDA's Ready condition status, if reported
    scaledobject_message: str = ""


def redis_condition(obs: Observation) -> Condition:
    if obs.redis_reason is None:
        return Condition("RedisReady", TRUE, "RedisReachable", f"stream {obs.stream} and consumer group are in place")
    if obs.managed_redis and obs.redis_pod_ready is False and obs.redis_reason == "RedisUnreachable":
        return Condition("RedisReady", FALSE, "RedisStarting", f"the Redis pod is not ready yet ({obs.redis_message})")
    return Condition("RedisReady", FALSE, obs.redis_reason, obs.redis_message)


def workers_condition(obs: Observation) -> Condition:
    if not obs.deployment_found:
        return Condition("WorkersReady", FALSE, "WorkersMissing", "the worker Deployment does not exist yet")
    summary = f"{obs.workers_ready}/{obs.workers_desired} worker pods ready"
    if obs.workers_desired == 0:
        return Condition("WorkersReady", TRUE, "ScaledToZero", "no mail waiting: workers start on demand")
    if obs.workers_ready >= 1:
        return Condition("WorkersReady", TRUE, "WorkersAvailable", summary)
    return Condition("WorkersReady", FALSE, "WorkersUnavailable", summary)


def autoscaling_condition(obs: Observation) -> Condition:
    if not obs.autoscaling_enabled:
        return Condition(
            "AutoscalingReady",
            FALSE,
            "AutoscalingDisabled",
            f"spec.autoscaling.enabled is false: {obs.fixed_replicas} worker pod(s) run",
        )
    if not obs.keda_installed:
        return Condition(
            "AutoscalingReady",
            FALSE,
            "KedaNotInstalled",
            "KEDA is not installed (no keda.sh/v1alpha1 ScaledObject API): "
            f"{obs.fixed_replicas} worker pod(s) run; installing KEDA turns autoscaling on",
        )
    if not obs.scaledobject_found:
        return Condition(
            "AutoscalingReady",
            FALSE,
            "ScaledObjectPending",
            "the ScaledObject is created once the stream and consumer group exist",
        )
    if obs.scaledobject_ready == TRUE:
        return Condition(
            "AutoscalingReady",
            TRUE,
            "ScaledObjectReady",
            obs.scaledobject_message or "KEDA scales the workers on the stream length",
        )
    if obs.scaledobject_ready == FALSE:
        return Condition("AutoscalingReady", FALSE, "ScaledObjectNotReady", obs.scaledobject_message)
    return Condition("AutoscalingReady", UNKNOWN, "WaitingForKeda", "KEDA has not reported on the ScaledObject yet")


def ready_condition(redis: Condition, workers: Condition) -> Condition:
    for cond in (redis, workers):
        if cond.status != TRUE:
            return Condition("Ready", FALSE, cond.reason, cond.message)
    return Condition("Ready", TRUE, "QueueReady", f"delivering mail; {workers.message}")


def conditions(obs: Observation) -> list[Condition]:
    redis, workers = redis_condition(obs), workers_condition(obs)
    return [ready_condition(redis, workers), redis, workers, autoscaling_condition(obs)]


def render_conditions(
    new: list[Condition], old: list[dict[str, Any]] | None, generation: int, now: str
) -> list[dict[str, Any]]:
    """Conditions as status holds them; lastTransitionTime moves only when the status changes."""
    previous = {c.get("type"): c for c in old or []}
    out = []
    for cond in new:
        before = previous.get(cond.type)
        changed = before is None or before.get("status") != cond.status
        out.append(
            {
                "type": cond.type,
                "status": cond.status,
                "reason": cond.reason,
                "message": cond.message,
                "lastTransitionTime": now if changed else before.get("lastTransitionTime", now),  # type: ignore[union-attr]
                "observedGeneration": generation,
            }
        )
    return out


def now_iso() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_status(
    obs: Observation, old: dict[str, Any] | None, *, observed_generation: int | None, now: str | None = None
) -> dict[str, Any]:
    """The status patch. ``observed_generation`` is set only by a completed reconciliation."""
    now = now or now_iso()
    old = old or {}
    status: dict[str, Any] = {
        "conditions": render_conditions(conditions(obs), old.get("conditions"), obs.generation, now),
        "workers": {
            "ready": obs.workers_ready,
            "desired": obs.workers_desired,
            "summary": f"{obs.workers_ready}/{obs.workers_desired}",
        },
    }
    if observed_generation is not None:
        status["observedGeneration"] = observed_generation
    if obs.redis_endpoint is not None:
        status["redis"] = {"endpoint": obs.redis_endpoint, "stream": obs.stream}
    if obs.stats is not None:
        status.update(
            {
                "backlog": obs.stats.waiting,
                "inFlight": obs.stats.in_flight,
                "delayed": obs.stats.delayed,
                "failed": obs.stats.failed,
                "sent": int(obs.stats.counters.get("sent", 0)),
                "lastRefreshTime": now,
            }
        )
    return status


def invalid_spec_status(message: str, old: dict[str, Any] | None, generation: int) -> dict[str, Any]:
    """Ready=False/InvalidSpec; the other conditions keep what they last said."""
    old_conditions = [c for c in (old or {}).get("conditions", []) if c.get("type") != "Ready"]
    ready = render_conditions(
        [Condition("Ready", FALSE, "InvalidSpec", message)], (old or {}).get("conditions"), generation, now_iso()
    )
    return {"conditions": ready + old_conditions}
