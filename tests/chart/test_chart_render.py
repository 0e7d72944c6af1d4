"""The chart rendered by Helm's own engine, with the defaults and with every documented value."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
import yaml

from emailqueue_operator.builders.networkpolicy import OPERATOR_POD_LABELS
from emailqueue_operator.config import OperatorConfig
from tests.chart.chartlib import CHART, NAMESPACE, RELEASE, ROOT, Obj, Rendered, defaults, leaf_paths, validate_all
from tests.chart.conftest import rendered_scenario
from tests.chart.scenarios import ALL_OPTIONS, DIGEST, SCENARIOS

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][A-Za-z0-9]*):")


def documented_paths() -> dict[str, str]:
    """Dotted value path -> the first line of the comment right above it in values.yaml."""
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    documented: dict[str, str] = {}
    for line in (CHART / "values.yaml").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("# "))
            continue
        match = _KEY.match(line)
        if match:
            indent = len(match["indent"])
            stack = [(i, k) for i, k in stack if i < indent]
            stack.append((indent, match["key"]))
            if comment:
                documented[".".join(k for _, k in stack)] = comment[0]
        comment = []
    return documented


def _get(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _container(rendered: Rendered) -> Obj:
    (container,) = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env(rendered: Rendered) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in _container(rendered)["env"]}


# ---- values.yaml itself ------------------------------------------------------------------------


def test_every_value_is_commented_starting_with_its_name() -> None:
    documented = documented_paths()
    for path, first_line in documented.items():
        name = path.rsplit(".", 1)[-1]
        assert first_line.startswith((f"{path} ", f"{name} ")), f"the comment of {path} starts {first_line!r}"
    undocumented = [
        leaf for leaf in leaf_paths(defaults()) if not any(leaf == p or leaf.startswith(f"{p}.") for p in documented)
    ]
    assert not undocumented, f"values without a comment: {undocumented}"


def test_every_documented_value_is_rendered_with_a_non_default_value() -> None:
    base = defaults()
    untested = [
        path
        for path in documented_paths()
        if not any(_get(_merged(base, values), path) != _get(base, path) for values in SCENARIOS.values())
    ]
    assert not untested, f"no scenario in tests/chart/scenarios.py changes {untested}"


def test_app_version_is_the_package_version() -> None:
    chart_meta = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert chart_meta["appVersion"] == project["version"]


# ---- every scenario -----------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_rendered_object_is_valid(scenario: str) -> None:
    rendered = rendered_scenario(scenario)
    assert rendered.objects
    assert validate_all(rendered.objects) == []


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_operator_pod_meets_the_restricted_pod_security_standard(scenario: str) -> None:
    rendered = rendered_scenario(scenario)
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    assert all("hostPath" not in v for v in pod["volumes"])
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert not sc["capabilities"].get("add")
        assert sc["readOnlyRootFilesystem"] is True
        assert not sc.get("privileged")


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_one_operator_replaced_with_recreate_and_probed_on_healthz(scenario: str) -> None:
    rendered = rendered_scenario(scenario)
    deployment = rendered.one("Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = _container(rendered)
    (port,) = container["ports"]
    assert str(port["containerPort"]) == _env(rendered)["EMAILQUEUE_OPERATOR_LIVENESS_PORT"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
        assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])
    assert container["resources"]["limits"]["memory"]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_operator_pod_carries_the_label_the_redis_network_policies_let_in(scenario: str) -> None:
    labels = rendered_scenario(scenario).one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert OPERATOR_POD_LABELS.items() <= labels.items()


@pytest.mark.parametrize("scenario", ["defaults", "all-options"])
def test_environment_is_what_the_operator_reads(scenario: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(rendered_scenario(scenario))
    prefix = OperatorConfig.model_config["env_prefix"]
    ours = {name: value for name, value in env.items() if name.startswith(prefix)}
    fields = {f"{prefix}{field.upper()}" for field in OperatorConfig.model_fields}
    assert set(ours) <= fields, f"variables the operator does not read: {set(ours) - fields}"
    assert ours[f"{prefix}NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    for name, value in ours.items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
    config = OperatorConfig()
    values = _merged(defaults(), SCENARIOS[scenario])
    assert config.namespace_list() == values["watchNamespaces"]
    assert config.keda_namespace == values["operator"]["kedaNamespace"]
    assert config.refresh_seconds == values["operator"]["refreshSeconds"]
    assert config.retry_seconds == values["operator"]["retrySeconds"]
    assert config.liveness_port == values["operator"]["healthPort"]
    assert config.log_format == values["operator"]["logFormat"]
    assert config.verbose is values["operator"]["verbose"]


# ---- the defaults -------------------------------------------------------------------------------


def test_defaults_install_crd_rbac_and_operator(default_render: Rendered) -> None:
    assert default_render.kinds() == [
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "Deployment",
        "Service",
        "ServiceAccount",
    ]
    name = f"{RELEASE}-emailqueue-operator"
    for obj in default_render.objects:
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"):
            assert obj["metadata"]["namespace"] == NAMESPACE
    assert default_render.one("Deployment")["metadata"]["name"] == name
    binding = default_render.one("ClusterRoleBinding")
    assert binding["roleRef"]["name"] == default_render.one("ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}]
    crd = default_render.one("CustomResourceDefinition")
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}


def test_default_image_is_the_app_version(default_render: Rendered) -> None:
    chart_meta = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    image = _container(default_render)["image"]
    assert image == f"ghcr.io/emailqueue/emailqueue-operator:{chart_meta['appVersion']}"


def test_notes_tell_the_next_commands(default_render: Rendered) -> None:
    notes = default_render.notes
    assert f"kubectl --namespace {NAMESPACE} rollout status deployment/{RELEASE}-emailqueue-operator" in notes
    assert "kubectl create secret generic smtp-credentials" in notes
    assert "kubectl apply -f manifests/samples/emailqueue-minimal.yaml" in notes
    assert "helm install keda kedacore/keda --namespace keda" in notes


# ---- every option -------------------------------------------------------------------------------


def test_all_options_reach_the_operator_pod(all_options: Rendered) -> None:
    deployment = all_options.one("Deployment")
    assert deployment["metadata"]["name"] == "mail-operator"
    pod_meta = deployment["spec"]["template"]["metadata"]
    pod = deployment["spec"]["template"]["spec"]
    container = _container(all_options)
    assert container["image"] == f"registry.example.com/mirror/emailqueue-operator@{DIGEST}"
    assert container["imagePullPolicy"] == "Always"
    assert container["resources"] == ALL_OPTIONS["resources"]
    for probe in ("livenessProbe", "readinessProbe"):  # Helm merges maps into the defaults
        assert container[probe] == _merged(defaults()[probe], ALL_OPTIONS[probe])
    assert container["securityContext"] == ALL_OPTIONS["securityContext"]
    assert container["ports"] == [{"name": "health", "containerPort": 9090, "protocol": "TCP"}]
    assert container["env"][-2:] == ALL_OPTIONS["operator"]["extraEnv"]
    assert pod["securityContext"] == ALL_OPTIONS["podSecurityContext"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["serviceAccountName"] == "mail-operator-sa"
    assert pod["priorityClassName"] == "mail-critical"
    assert pod["nodeSelector"] == ALL_OPTIONS["nodeSelector"]
    assert pod["tolerations"] == ALL_OPTIONS["tolerations"]
    assert pod["affinity"] == ALL_OPTIONS["affinity"]
    assert pod["terminationGracePeriodSeconds"] == 45
    assert pod_meta["annotations"] == {"example.com/audit": "on"}
    assert pod_meta["labels"]["example.com/tier"] == "control"


def test_all_options_label_every_object(all_options: Rendered) -> None:
    for obj in all_options.objects:
        assert obj["metadata"]["labels"]["team"] == "mail", obj["kind"]


def test_watch_namespaces_get_roles_and_nothing_cluster_wide(all_options: Rendered) -> None:
    assert not all_options.of_kind("ClusterRole")
    assert not all_options.of_kind("ClusterRoleBinding")
    roles = all_options.of_kind("Role")
    bindings = all_options.of_kind("RoleBinding")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["newsletters", "shop"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["newsletters", "shop"]
    for binding in bindings:
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "mail-operator"}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "mail-operator-sa", "namespace": NAMESPACE}]
    assert _env(all_options)["EMAILQUEUE_OPERATOR_NAMESPACES"] == "shop,newsletters"


def test_one_watched_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = rendered_scenario("one-namespace")
    assert [r["metadata"]["namespace"] for r in rendered.of_kind("Role")] == ["mail"]
    assert _env(rendered)["EMAILQUEUE_OPERATOR_NAMESPACES"] == "mail"


def test_all_options_service_account_metrics_and_monitor(all_options: Rendered) -> None:
    account = all_options.one("ServiceAccount")
    assert account["metadata"]["name"] == "mail-operator-sa"
    assert account["metadata"]["annotations"] == {"iam.example.com/role": "mail"}
    service = all_options.one("Service")
    assert service["metadata"]["name"] == "mail-operator-metrics"
    assert service["metadata"]["annotations"] == {"example.com/scrape": "yes"}
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"] == [{"name": "http", "port": 9191, "targetPort": "health", "protocol": "TCP"}]
    pod_labels = all_options.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (monitor,) = [m for m in all_options.of_kind("ServiceMonitor") if m["metadata"]["name"] == "mail-operator"]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/probe", "interval": "15s", "scrapeTimeout": "5s"}
    ]


def test_all_options_first_emailqueue(all_options: Rendered) -> None:
    queue = all_options.one("EmailQueue")
    assert queue["metadata"]["name"] == "transactional"
    assert queue["metadata"]["namespace"] == "shop"
    assert queue["metadata"]["labels"]["example.com/owner"] == "shop"
    assert queue["metadata"]["labels"]["app.kubernetes.io/name"] == "emailqueue"
    assert queue["metadata"]["annotations"] == {
        "helm.sh/resource-policy": "keep",
        "example.com/contact": "mail-team",
    }
    assert queue["spec"] == ALL_OPTIONS["emailQueue"]["spec"]
    assert "get emailqueue transactional --watch" in all_options.notes


def test_first_emailqueue_defaults_to_the_release_namespace() -> None:
    queue = rendered_scenario("first-queue-in-release-namespace").one("EmailQueue")
    assert queue["metadata"]["namespace"] == NAMESPACE
    assert queue["metadata"]["name"] == "default"


def test_crd_not_kept_has_no_resource_policy(all_options: Rendered) -> None:
    assert "annotations" not in all_options.one("CustomResourceDefinition")["metadata"]


def test_crds_install_false_leaves_the_crd_out() -> None:
    rendered = rendered_scenario("no-crd")
    assert not rendered.of_kind("CustomResourceDefinition")
    assert "crds.install is false" in rendered.notes


def test_bring_your_own_rbac_and_service_account() -> None:
    rendered = rendered_scenario("bring-your-own-rbac")
    assert rendered.kinds() == ["CustomResourceDefinition", "Deployment", "Service"]
    assert rendered.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops-operator"


def test_metrics_service_can_be_left_out() -> None:
    assert not rendered_scenario("no-metrics-service").of_kind("Service")


def test_image_tag_without_digest() -> None:
    assert _container(rendered_scenario("tag-not-digest"))["image"] == "ghcr.io/emailqueue/emailqueue-operator:0.2.0"
