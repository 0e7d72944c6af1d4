"""`helm install` and `kubectl apply -k manifests/` install the same operator: the same
permissions, environment, probes and security settings."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from tests.chart.chartlib import MANIFESTS, ROOT, Obj, Rendered, validate_all


def _docs(path: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _one(path: Path) -> Obj:
    (doc,) = _docs(path)
    return doc


def _normal_rules(rules: list[dict[str, Any]]) -> list[tuple[tuple[str, ...], ...]]:
    return sorted(
        (tuple(sorted(r.get("apiGroups", []))), tuple(sorted(r.get("resources", []))), tuple(sorted(r["verbs"])))
        for r in rules
    )


def _container(deployment: Obj) -> Obj:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_same_permissions(default_render: Rendered) -> None:
    manifests_role = _one(MANIFESTS / "rbac" / "clusterrole.yaml")
    assert _normal_rules(default_render.one("ClusterRole")["rules"]) == _normal_rules(manifests_role["rules"])


def test_same_operator_settings(default_render: Rendered) -> None:
    chart_deployment = default_render.one("Deployment")
    manifests_deployment = _one(MANIFESTS / "operator" / "deployment.yaml")
    chart_c, manifests_c = _container(chart_deployment), _container(manifests_deployment)
    chart_env = {e["name"]: e.get("value", e.get("valueFrom")) for e in chart_c["env"]}
    manifests_env = {e["name"]: e.get("value", e.get("valueFrom")) for e in manifests_c["env"]}
    assert manifests_env.items() <= chart_env.items()
    assert chart_c["image"].rsplit(":", 1)[0] == manifests_c["image"].rsplit(":", 1)[0]
    assert chart_c["securityContext"] == manifests_c["securityContext"]
    assert chart_c["resources"] == manifests_c["resources"]
    assert chart_c["livenessProbe"]["httpGet"] == manifests_c["livenessProbe"]["httpGet"]
    assert chart_c["ports"] == manifests_c["ports"]
    chart_pod = chart_deployment["spec"]["template"]["spec"]
    manifests_pod = manifests_deployment["spec"]["template"]["spec"]
    assert chart_pod["securityContext"] == manifests_pod["securityContext"]
    for key in ("replicas", "strategy"):
        assert chart_deployment["spec"][key] == manifests_deployment["spec"][key]


def test_manifests_operator_command_is_in_the_image() -> None:
    """The operator image's entrypoint is `python -m emailqueue_operator`; a `command` in
    manifests/ replaces it and must be a console script the package installs."""
    command = _container(_one(MANIFESTS / "operator" / "deployment.yaml")).get("command")
    if not command:
        return
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert command[0] in scripts or command[:3] == ["python", "-m", "emailqueue_operator"], (
        f"manifests/operator/deployment.yaml runs {command[0]!r}, "
        "which pyproject.toml [project.scripts] does not install"
    )


def test_every_manifest_is_valid() -> None:
    objects = [
        doc for path in sorted(MANIFESTS.rglob("*.yaml")) if path.name != "kustomization.yaml" for doc in _docs(path)
    ]
    assert objects
    assert validate_all(objects) == []
