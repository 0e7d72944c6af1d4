"""Conditions and figures computed from an Observation (pure)."""

from __future__ import annotations

import dataclasses

import pytest

from emailqueue.stats import QueueStats
from emailqueue_operator.status import Observation, build_status, conditions

HEALTHY = Observation(
    generation=3,
    managed_redis=True,
    redis_endpoint="redis://mail-redis.default.svc:6379/0",
    stream="emailqueue:{mail}:stream",
    redis_pod_ready=True,
    stats=QueueStats("mail", waiting=5, in_flight=2, delayed=1, failed=4, counters={"sent": 90}),
    deployment_found=True,
    workers_desired=2,
    workers_ready=2,
    keda_installed=True,
    scaledobject_found=True,
    scaledobject_ready="True",
)


def _by_type(obs: Observation) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in conditions(obs)}


def test_healthy_queue() -> None:
    assert _by_type(HEALTHY) == {
        "Ready": ("True", "QueueReady"),
        "RedisReady": ("True", "RedisReachable"),
        "WorkersReady": ("True", "WorkersAvailable"),
        "AutoscalingReady": ("True", "ScaledObjectReady"),
    }


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"redis_reason": "RedisUnreachable", "redis_message": "refused", "redis_pod_ready": False},
            {"Ready": ("False", "RedisStarting"), "RedisReady": ("False", "RedisStarting")},
        ),
        (
            {"redis_reason": "SecretMissing", "redis_message": "no secret"},
            {"Ready": ("False", "SecretMissing"), "RedisReady": ("False", "SecretMissing")},
        ),
        (
            {"workers_ready": 0},
            {"Ready": ("False", "WorkersUnavailable"), "WorkersReady": ("False", "WorkersUnavailable")},
        ),
        (
            {"workers_desired": 0, "workers_ready": 0},
            {"Ready": ("True", "QueueReady"), "WorkersReady": ("True", "ScaledToZero")},
        ),
        ({"deployment_found": False}, {"WorkersReady": ("False", "WorkersMissing")}),
        (
            {"keda_installed": False},
            {"Ready": ("True", "QueueReady"), "AutoscalingReady": ("False", "KedaNotInstalled")},
        ),
        ({"autoscaling_enabled": False}, {"AutoscalingReady": ("False", "AutoscalingDisabled")}),
        ({"scaledobject_found": False}, {"AutoscalingReady": ("False", "ScaledObjectPending")}),
        ({"scaledobject_ready": None}, {"AutoscalingReady": ("Unknown", "WaitingForKeda")}),
        ({"scaledobject_ready": "False"}, {"AutoscalingReady": ("False", "ScaledObjectNotReady")}),
    ],
)
def test_condition_matrix(changes: dict[str, object], expected: dict[str, tuple[str, str]]) -> None:
    got = _by_type(dataclasses.replace(HEALTHY, **changes))  # type: ignore[arg-type]
    for kind, value in expected.items():
        assert got[kind] == value


def test_figures_and_endpoint() -> None:
    status = build_status(HEALTHY, None, observed_generation=3, now="2026-01-01T00:00:00Z")
    assert (status["backlog"], status["inFlight"], status["delayed"], status["failed"], status["sent"]) == (
        5,
        2,
        1,
        4,
        90,
    )
    assert status["workers"] == {"ready": 2, "desired": 2, "summary": "2/2"}
    assert status["redis"]["endpoint"] == "redis://mail-redis.default.svc:6379/0"
    assert status["observedGeneration"] == 3
    assert all(c["observedGeneration"] == 3 for c in status["conditions"])


def test_unreachable_redis_keeps_the_last_figures() -> None:
    obs = dataclasses.replace(HEALTHY, stats=None, redis_reason="RedisUnreachable", redis_message="timeout")
    status = build_status(obs, None, observed_generation=None)
    assert "backlog" not in status  # a merge patch leaves the last known figures in place
    assert "observedGeneration" not in status


def test_last_transition_time_moves_only_on_change() -> None:
    first = build_status(HEALTHY, None, observed_generation=3, now="2026-01-01T00:00:00Z")
    same = build_status(HEALTHY, first, observed_generation=3, now="2026-01-01T01:00:00Z")
    assert [c["lastTransitionTime"] for c in same["conditions"]] == ["2026-01-01T00:00:00Z"] * 4
    down = dataclasses.replace(HEALTHY, workers_ready=0)
    changed = {
        c["type"]: c["lastTransitionTime"]
        for c in build_status(down, first, observed_generation=3, now="2026-01-01T02:00:00Z")["conditions"]
    }
    assert changed["WorkersReady"] == changed["Ready"] == "2026-01-01T02:00:00Z"
    assert changed["RedisReady"] == "2026-01-01T00:00:00Z"
