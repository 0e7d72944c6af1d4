"""kopf running the operator for real against kmock's emulator, with a real Valkey behind the queue.

The tests play the parts no emulator has: the Redis pod starting with the generated
password, the Deployment controller reporting ready pods, KEDA scaling and reporting.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aredis
from kopf.testing import KopfRunner
from ophelpers import BASE_SPEC, with_spec
from opkube import ApiServer

from emailqueue.keys import GROUP, QueueKeys

NS = "default"
EQ_PATH = f"/apis/emailqueue.dev/v1alpha1/namespaces/{NS}/emailqueues"
WORKER_CHILDREN = [
    ("apps/v1/deployments", "mail-worker"),
    ("v1/services", "mail-worker"),
    ("v1/serviceaccounts", "mail-worker"),
    ("policy/v1/poddisruptionbudgets", "mail-worker"),
]
REDIS_CHILDREN = [
    ("apps/v1/statefulsets", "mail-redis"),
    ("v1/services", "mail-redis"),
    ("v1/configmaps", "mail-redis"),
    ("networking.k8s.io/v1/networkpolicies", "mail-redis"),
    ("v1/secrets", "mail-redis-auth"),
]


async def eventually(check: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if isinstance(last, Awaitable):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out waiting for {what or check}: last={last!r}")


async def call(
    k8s: ApiServer, method: str, path: str, body: Any = None, content_type: str = "application/merge-patch+json"
) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            f"{str(k8s.url).rstrip('/')}{path}",
            json=body,
            headers={"Content-Type": content_type},
        ) as resp,
    ):
        data: dict[str, Any] = await resp.json()
        assert resp.status < 300, data
        return data


async def create_secret(k8s: ApiServer, name: str, data: dict[str, str]) -> None:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    await call(
        k8s,
        "POST",
        f"/api/v1/namespaces/{NS}/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS}, "data": encoded},
        "application/json",
    )


async def create_queue(k8s: ApiServer, spec: dict[str, Any], name: str = "mail") -> None:
    body = {
        "apiVersion": "emailqueue.dev/v1alpha1",
        "kind": "EmailQueue",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }
    await call(k8s, "POST", EQ_PATH, body, "application/json")


def condition(k8s: ApiServer, kind: str, name: str = "mail") -> dict[str, Any]:
    eq = k8s.read("emailqueue.dev/v1alpha1/emailqueues", name) or {}
    for cond in eq.get("status", {}).get("conditions", []):
        if cond["type"] == kind:
            return dict(cond)
    return {}


async def mark_deployment_ready(k8s: ApiServer, name: str = "mail-worker") -> None:
    """The Deployment controller's part: every wanted pod is ready."""
    dep = await eventually(lambda: k8s.read("apps/v1/deployments", name), what=f"Deployment {name}")
    replicas = dep["spec"].get("replicas", 1)
    await call(
        k8s,
        "PATCH",
        f"/apis/apps/v1/namespaces/{NS}/deployments/{name}/status",
        {"status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}},
    )


def owned_by_queue(obj: dict[str, Any], eq: dict[str, Any]) -> bool:
    refs = obj["metadata"].get("ownerReferences", [])
    return any(r["uid"] == eq["metadata"]["uid"] and r["kind"] == "EmailQueue" and r["controller"] for r in refs)


async def test_managed_queue_lifecycle_without_keda(
    k8s: ApiServer,
    operator: KopfRunner,
    valkey: int,
    liveness_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMAILQUEUE_OPERATOR_MANAGED_REDIS_ADDRESS", f"127.0.0.1:{valkey}")
    await create_secret(k8s, "smtp", {"dsn": "smtp://smtp.example.com:25"})
    await create_queue(k8s, with_spec(worker={"minReplicas": 0, "maxReplicas": 5}))

    # The Redis pod starts with the password the operator generated (once).
    secret = await eventually(lambda: k8s.read("v1/secrets", "mail-redis-auth"), what="password Secret")
    password = base64.b64decode(secret["data"]["password"]).decode()
    admin = aredis.Redis(port=valkey)
    await admin.config_set("requirepass", password)
    await admin.aclose()
    await mark_deployment_ready(k8s)

    await eventually(lambda: condition(k8s, "Ready").get("status") == "True", what="Ready=True")
    eq = k8s.read("emailqueue.dev/v1alpha1/emailqueues", "mail")
    assert eq is not None
    for resource, name in REDIS_CHILDREN + WORKER_CHILDREN:
        child = k8s.read(resource, name)
        assert child is not None, f"{resource} {name} missing"
        assert owned_by_queue(child, eq), f"{resource} {name} not owned by the EmailQueue"

    # Without KEDA: a fixed max(minReplicas, 1) workers, and a condition saying why.
    assert k8s.read("apps/v1/deployments", "mail-worker")["spec"]["replicas"] == 1  # type: ignore[index]
    autoscaling = condition(k8s, "AutoscalingReady")
    assert (autoscaling["status"], autoscaling["reason"]) == ("False", "KedaNotInstalled")
    assert eq["status"]["observedGeneration"] == eq["metadata"]["generation"]
    assert eq["status"]["redis"]["endpoint"] == "redis://mail-redis.default.svc:6379/0"
    assert password not in repr(eq["status"])
    assert all(key.startswith("emailqueue.dev/") for key in eq["metadata"].get("annotations", {}))
    assert eq["metadata"]["finalizers"] == ["emailqueue.dev/finalizer"]

    # The stream and group exist; figures flow into status; due retries are promoted.
    client = aredis.Redis(port=valkey, password=password)
    keys = QueueKeys("mail")
    groups = await client.xinfo_groups(keys.stream)
    assert [g["name"] for g in groups] == [GROUP.encode()]
    for i in range(3):
        await client.xadd(keys.stream, {"v": "1", "payload": f'{{"id": "{i}"}}'})
    await client.zadd(keys.delayed, {b"retry-1": 0})  # fell due long ago
    await client.hset(keys.stats, "sent", 7)
    await eventually(
        lambda: (k8s.read("emailqueue.dev/v1alpha1/emailqueues", "mail") or {}).get("status", {}).get("backlog") == 4,
        what="backlog 4",
    )
    assert await client.zcard(keys.delayed) == 0
    status = k8s.read("emailqueue.dev/v1alpha1/emailqueues", "mail")["status"]  # type: ignore[index]
    assert (status["inFlight"], status["delayed"], status["failed"], status["sent"]) == (0, 0, 0, 7)
    await client.aclose()

    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{liveness_port}/healthz") as resp:
        assert resp.status == 200

    # Delete: the children go (owner references), the volume claim stays.
    assert k8s.read("v1/persistentvolumeclaims", "data-mail-redis-0") is not None
    await call(k8s, "DELETE", f"{EQ_PATH}/mail", None, "application/json")
    await eventually(lambda: k8s.read("emailqueue.dev/v1alpha1/emailqueues", "mail") is None, what="deletion")
    for resource, name in REDIS_CHILDREN + WORKER_CHILDREN:
        assert k8s.read(resource, name) is None, f"{resource} {name} survived"
    assert k8s.read("v1/persistentvolumeclaims", "data-mail-redis-0") is not None


async def test_volume_is_deleted_when_the_spec_says_so(
    k8s: ApiServer,
    operator: KopfRunner,
    valkey: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMAILQUEUE_OPERATOR_MANAGED_REDIS_ADDRESS", f"127.0.0.1:{valkey}")
    await create_queue(k8s, with_spec(redis={"managed": {"volumeReclaimPolicy": "Delete"}}))
    await eventually(lambda: k8s.read("v1/persistentvolumeclaims", "data-mail-redis-0"), what="claim")
    await call(k8s, "DELETE", f"{EQ_PATH}/mail", None, "application/json")
    await eventually(lambda: k8s.read("v1/persistentvolumeclaims", "data-mail-redis-0") is None, what="claim gone")


async def test_external_redis_with_keda_create_update(
    k8s: ApiServer,
    operator: KopfRunner,
    valkey: int,
) -> None:
    k8s.install_keda()
    # First the URL points where no Redis listens: no ScaledObject before the stream exists.
    await create_secret(k8s, "redis-url", {"url": "redis://127.0.0.1:1/0"})
    spec = with_spec(redis={"external": {"urlSecretRef": {"name": "redis-url"}}}, worker={"maxReplicas": 8})
    await create_queue(k8s, spec)
    await eventually(lambda: condition(k8s, "RedisReady").get("reason") == "RedisUnreachable", what="unreachable")
    assert k8s.read("apps/v1/deployments", "mail-worker") is not None
    assert k8s.read("keda.sh/v1alpha1/scaledobjects", "mail-worker") is None

    fixed = base64.b64encode(f"redis://127.0.0.1:{valkey}/0".encode()).decode()
    await call(k8s, "PATCH", f"/api/v1/namespaces/{NS}/secrets/redis-url", {"data": {"url": fixed}})
    so = await eventually(lambda: k8s.read("keda.sh/v1alpha1/scaledobjects", "mail-worker"), what="ScaledObject")
    client = aredis.Redis(port=valkey)
    assert [g["name"] for g in await client.xinfo_groups(QueueKeys("mail").stream)] == [GROUP.encode()]
    await client.aclose()
    assert so["spec"]["maxReplicaCount"] == 8
    assert "authenticationRef" not in so["spec"]["triggers"][0]  # no password in the URL
    assert "replicas" in k8s.read("apps/v1/deployments", "mail-worker")["spec"]  # type: ignore[index]

    # KEDA's part: idle queue -> zero workers; the ScaledObject reports Ready.
    await call(k8s, "PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/mail-worker", {"spec": {"replicas": 0}})
    await call(
        k8s,
        "PATCH",
        f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects/mail-worker/status",
        {"status": {"conditions": [{"type": "Ready", "status": "True", "message": "ScaledObject is ready"}]}},
    )
    await eventually(lambda: condition(k8s, "Ready").get("status") == "True", what="Ready")
    assert condition(k8s, "WorkersReady")["reason"] == "ScaledToZero"
    await eventually(lambda: condition(k8s, "AutoscalingReady").get("status") == "True", what="AutoscalingReady")

    # Update: the Deployment (env -> rollout) and the ScaledObject follow the spec.
    await call(k8s, "PATCH", f"{EQ_PATH}/mail", {"spec": {"worker": {"maxReplicas": 3, "concurrency": 4}}})

    def updated() -> bool:
        dep = k8s.read("apps/v1/deployments", "mail-worker") or {}
        env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        so = k8s.read("keda.sh/v1alpha1/scaledobjects", "mail-worker") or {}
        return env["EMAILQUEUE_CONCURRENCY"] == "4" and so["spec"]["maxReplicaCount"] == 3

    await eventually(updated, what="Deployment and ScaledObject updated")
    # KEDA's replica count is left alone by the operator.
    assert k8s.read("apps/v1/deployments", "mail-worker")["spec"]["replicas"] == 0  # type: ignore[index]
    eq = await eventually(
        lambda: (
            (e := k8s.read("emailqueue.dev/v1alpha1/emailqueues", "mail"))
            and e["status"].get("observedGeneration") == 2
            and e
        ),
        what="observedGeneration 2",
    )
    assert eq["metadata"]["generation"] == 2

    # Autoscaling switched off: the ScaledObject goes, the operator owns the replica count again.
    await call(k8s, "PATCH", f"{EQ_PATH}/mail", {"spec": {"autoscaling": {"enabled": False}}})
    await eventually(lambda: k8s.read("keda.sh/v1alpha1/scaledobjects", "mail-worker") is None, what="SO deleted")
    await eventually(
        lambda: (k8s.read("apps/v1/deployments", "mail-worker") or {})["spec"]["replicas"] == 1, what="fixed replicas"
    )
    await eventually(lambda: condition(k8s, "AutoscalingReady").get("reason") == "AutoscalingDisabled", what="cond")


async def test_keda_installed_later_turns_autoscaling_on(
    k8s: ApiServer,
    operator: KopfRunner,
    valkey: int,
) -> None:
    await create_secret(k8s, "redis-url", {"url": f"redis://127.0.0.1:{valkey}/0"})
    await create_queue(
        k8s,
        with_spec(
            redis={"external": {"urlSecretRef": {"name": "redis-url"}}}, worker={"minReplicas": 2, "maxReplicas": 4}
        ),
    )
    await eventually(lambda: condition(k8s, "AutoscalingReady").get("reason") == "KedaNotInstalled", what="no KEDA")
    assert k8s.read("apps/v1/deployments", "mail-worker")["spec"]["replicas"] == 2  # type: ignore[index]
    await mark_deployment_ready(k8s)
    await eventually(lambda: condition(k8s, "Ready").get("status") == "True", what="Ready without KEDA")

    k8s.install_keda()
    so = await eventually(lambda: k8s.read("keda.sh/v1alpha1/scaledobjects", "mail-worker"), what="ScaledObject")
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (2, 4)
    await eventually(lambda: condition(k8s, "AutoscalingReady").get("reason") == "WaitingForKeda", what="waiting")


async def test_invalid_queue_is_rejected_by_the_emulated_admission(k8s: ApiServer) -> None:
    body = {
        "apiVersion": "emailqueue.dev/v1alpha1",
        "kind": "EmailQueue",
        "metadata": {"name": "bad", "namespace": NS},
        "spec": {**BASE_SPEC, "worker": {"minReplicas": 3, "maxReplicas": 1}},
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{str(k8s.url).rstrip('/')}{EQ_PATH}", json=body) as resp,
    ):
        assert resp.status == 422
        assert "minReplicas must be less than or equal to" in (await resp.json())["message"]


async def test_entrypoint_runs_the_operator_with_json_logs_and_healthz(
    k8s: ApiServer, valkey: int, liveness_port: int
) -> None:
    """`python -m emailqueue_operator`, as the container runs it: reconciles, serves /healthz, stops on SIGTERM."""
    import json
    import os
    import signal
    import sys

    env = {
        **os.environ,
        "EMAILQUEUE_OPERATOR_LIVENESS_PORT": str(liveness_port),
        "EMAILQUEUE_OPERATOR_NAMESPACES": NS,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emailqueue_operator",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await create_secret(k8s, "redis-url", {"url": f"redis://127.0.0.1:{valkey}/0"})
        await create_queue(k8s, with_spec(redis={"external": {"urlSecretRef": {"name": "redis-url"}}}))
        await eventually(lambda: k8s.read("apps/v1/deployments", "mail-worker"), timeout=30, what="Deployment")

        async def healthy() -> bool:
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"http://127.0.0.1:{liveness_port}/healthz") as resp,
                ):
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(healthy, what="/healthz")
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, output.decode()[-3000:]
    lines = [line for line in output.decode().splitlines() if line.strip()]
    assert lines
    for line in lines:
        json.loads(line)  # every log line is a JSON object


async def test_a_spec_that_skipped_admission_is_reported_not_retried(k8s: ApiServer, operator: KopfRunner) -> None:
    """An object stored without admission (e.g. before the CRD had its CEL rules): a permanent error."""
    spec = {**BASE_SPEC, "worker": {"minReplicas": 3, "maxReplicas": 1}}
    legacy = {
        "apiVersion": "emailqueue.dev/v1alpha1",
        "kind": "EmailQueue",
        "metadata": {"name": "legacy", "namespace": NS, "uid": "legacy-uid", "generation": 1, "resourceVersion": "1"},
        "spec": spec,
    }
    await k8s.inject("emailqueue.dev/v1alpha1/emailqueues", legacy)
    ready = await eventually(lambda: condition(k8s, "Ready", "legacy"), what="Ready condition")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "minReplicas must be less than or equal to maxReplicas" in ready["message"]
    assert k8s.read("apps/v1/deployments", "legacy-worker") is None
