"""spec.dashboard: the dashboard's Deployment and Service, their env contract with the
dashboard's own settings, admission, and kopf creating and removing them for real."""

from __future__ import annotations

import argparse
import base64
from typing import Any

import kopf
import pytest
from crdvalidate import Invalid, admit
from kopf.testing import KopfRunner
from ophelpers import EQ_SCHEMA, eq_body, k8s_validate, make_eq, with_spec
from opkube import ApiServer
from test_operator import EQ_PATH, NS, call, create_queue, create_secret, eventually, owned_by_queue

from emailqueue.dashboard import command
from emailqueue.dashboard.config import DashboardConfig
from emailqueue.settings import Settings
from emailqueue_operator.builders import RedisEndpoint, RenderContext, render
from emailqueue_operator.builders.dashboard import dashboard_deployment, dashboard_service
from emailqueue_operator.builders.networkpolicy import redis_networkpolicy
from emailqueue_operator.spec import EmailQueue

TOKEN_REF = {"tokenSecretRef": {"name": "dash"}}
ENABLED = with_spec(queue="orders", dashboard={"enabled": True, **TOKEN_REF})


def _ctx(eq: EmailQueue) -> RenderContext:
    return RenderContext(endpoint=RedisEndpoint.managed(eq), operator_namespace="emailqueue-system")


def _container(eq: EmailQueue) -> dict[str, Any]:
    return dict(dashboard_deployment(eq, _ctx(eq))["spec"]["template"]["spec"]["containers"][0])


class TestRender:
    def test_off_by_default_and_removed_when_off(self) -> None:
        eq = make_eq()
        children = render(eq, _ctx(eq))
        assert "mail-dashboard" not in [o["metadata"]["name"] for o in children.core]
        assert children.owned_absent == [
            ("apps/v1", "Deployment", "mail-dashboard"),
            ("v1", "Service", "mail-dashboard"),
        ]

    def test_enabled_renders_a_valid_deployment_and_service(self) -> None:
        eq = make_eq(ENABLED)
        children = render(eq, _ctx(eq))
        objs = [o for o in children.core if o["metadata"]["name"] == "mail-dashboard"]
        assert [o["kind"] for o in objs] == ["Deployment", "Service"]
        assert children.owned_absent == []
        kopf.adopt(objs, owner=kopf.Body(eq_body(ENABLED)))
        for obj in objs:
            k8s_validate(obj)
        service = dashboard_service(eq)
        assert service["spec"]["type"] == "ClusterIP"
        assert service["spec"]["selector"]["app.kubernetes.io/component"] == "dashboard"
        assert service["spec"]["ports"][0]["port"] == 8080

    def test_hardened_and_probed(self) -> None:
        eq = make_eq(ENABLED)
        dep = dashboard_deployment(eq, _ctx(eq))
        pod = dep["spec"]["template"]["spec"]
        assert dep["spec"]["replicas"] == 1
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        container = pod["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["image"] == eq.spec.worker.image
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"

    def test_the_network_policy_lets_the_dashboard_reach_redis(self) -> None:
        on, off = make_eq(ENABLED), make_eq()
        peers = redis_networkpolicy(on, _ctx(on))["spec"]["ingress"][0]["from"]
        wanted = {"podSelector": {"matchLabels": {
            "app.kubernetes.io/name": "emailqueue",
            "app.kubernetes.io/instance": "mail",
            "app.kubernetes.io/component": "dashboard",
        }}}  # fmt: skip
        assert wanted in peers
        assert wanted not in redis_networkpolicy(off, _ctx(off))["spec"]["ingress"][0]["from"]


class TestContract:
    """``emailqueue dashboard`` accepts the rendered arguments and loads its settings from the rendered env."""

    def _env(self, eq: EmailQueue, secrets: dict[tuple[str, str], str]) -> dict[str, str]:
        out = {}
        for var in _container(eq)["env"]:
            if "value" in var:
                out[var["name"]] = var["value"]
            else:
                ref = var["valueFrom"]["secretKeyRef"]
                out[var["name"]] = secrets[ref["name"], ref["key"]]
        return out

    def test_arguments_parse(self) -> None:
        container = _container(make_eq(ENABLED))
        assert container["command"] == ["emailqueue", "dashboard"]
        parser = argparse.ArgumentParser()
        command.add_parser(parser.add_subparsers(dest="command"))
        args = parser.parse_args(["dashboard", *container["args"]])
        assert (args.host, args.port, args.queue) == ("0.0.0.0", 8080, ["orders"])  # noqa: S104

    def test_token_and_redis(self, monkeypatch: pytest.MonkeyPatch) -> None:
        env = self._env(make_eq(ENABLED), {("mail-redis-auth", "password"): "p@ss", ("dash", "token"): "t0ken-value"})
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        cfg, settings = DashboardConfig(), Settings()
        assert cfg.token is not None and cfg.token.get_secret_value() == "t0ken-value"
        assert (cfg.read_only, cfg.can_act) == (False, True)
        assert settings.redis_connection_url() == "redis://:p%40ss@mail-redis.default.svc:6379/0"

    def test_basic_auth_read_only_and_payload_keys(self, monkeypatch: pytest.MonkeyPatch) -> None:
        spec = with_spec(
            dashboard={"enabled": True, "readOnly": True, "basicAuthSecretRef": {"name": "ops"}},
            worker={"env": [
                {"name": "EMAILQUEUE_PAYLOAD_KEYS", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "keys"}}},
                {"name": "TZ", "value": "UTC"},
            ]},
        )  # fmt: skip
        eq = make_eq(spec)
        names = [e["name"] for e in _container(eq)["env"]]
        assert "EMAILQUEUE_PAYLOAD_KEYS" in names and "TZ" not in names
        env = self._env(
            eq,
            {
                ("mail-redis-auth", "password"): "p",
                ("ops", "username"): "ops",
                ("ops", "password"): "pw-123456",
                ("keys", "keys"): "k1:" + base64.b64encode(b"k" * 32).decode(),
            },
        )
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        cfg = DashboardConfig()
        assert (cfg.user, cfg.read_only, cfg.can_act) == ("ops", True, False)
        assert Settings().cipher() is not None


def test_admission_wants_credentials() -> None:
    with pytest.raises(Invalid, match=r"needs spec\.dashboard\.tokenSecretRef or spec\.dashboard\.basicAuthSecretRef"):
        admit(EQ_SCHEMA, eq_body(with_spec(dashboard={"enabled": True})))
    body = admit(EQ_SCHEMA, eq_body(ENABLED))
    assert body["spec"]["dashboard"]["tokenSecretRef"]["key"] == "token"
    assert body["spec"]["dashboard"]["serviceType"] == "ClusterIP"
    with pytest.raises(ValueError, match="tokenSecretRef"):
        EmailQueue.from_body(eq_body(with_spec(dashboard={"enabled": True})))


async def test_the_operator_deploys_and_removes_the_dashboard(
    k8s: ApiServer, operator: KopfRunner, valkey: int
) -> None:
    await create_secret(k8s, "redis-url", {"url": f"redis://127.0.0.1:{valkey}/0"})
    spec = with_spec(
        redis={"external": {"urlSecretRef": {"name": "redis-url"}}}, dashboard={"enabled": True, **TOKEN_REF}
    )
    await create_queue(k8s, spec)
    dep = await eventually(lambda: k8s.read("apps/v1/deployments", "mail-dashboard"), what="dashboard Deployment")
    service = await eventually(lambda: k8s.read("v1/services", "mail-dashboard"), what="dashboard Service")
    eq = k8s.read("emailqueue.dev/v1alpha1/emailqueues", "mail")
    assert eq is not None and owned_by_queue(dep, eq) and owned_by_queue(service, eq)
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["EMAILQUEUE_DASHBOARD_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "dash", "key": "token"}

    await call(k8s, "PATCH", f"{EQ_PATH}/mail", {"spec": {"dashboard": {"enabled": False}}})
    await eventually(lambda: k8s.read("apps/v1/deployments", "mail-dashboard") is None, what="Deployment gone")
    await eventually(lambda: k8s.read("v1/services", "mail-dashboard") is None, what="Service gone")
    assert k8s.read("apps/v1/deployments", "mail-worker") is not None


async def test_a_users_own_object_of_that_name_is_left_alone(k8s: ApiServer, operator: KopfRunner, valkey: int) -> None:
    theirs = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "mail-dashboard", "namespace": NS},
              "spec": {"ports": [{"port": 80}]}}  # fmt: skip
    await call(k8s, "POST", f"/api/v1/namespaces/{NS}/services", theirs, "application/json")
    await create_secret(k8s, "redis-url", {"url": f"redis://127.0.0.1:{valkey}/0"})
    await create_queue(k8s, with_spec(redis={"external": {"urlSecretRef": {"name": "redis-url"}}}))
    await eventually(lambda: k8s.read("apps/v1/deployments", "mail-worker"), what="worker Deployment")
    await call(k8s, "PATCH", f"{EQ_PATH}/mail", {"spec": {"worker": {"maxReplicas": 3}}})
    await eventually(
        lambda: (
            (k8s.read("emailqueue.dev/v1alpha1/emailqueues", "mail") or {}).get("status", {}).get("observedGeneration")
            == 2
        ),
        what="second reconcile",
    )
    assert k8s.read("v1/services", "mail-dashboard") is not None


def test_a_headless_service_over_the_workers_for_prometheus() -> None:
    from emailqueue_operator.builders.worker_service import worker_service

    service = worker_service(make_eq())
    k8s_validate(service)
    assert service["metadata"]["name"] == "mail-worker"
    assert service["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}]
