"""manifests/: valid for Kubernetes, complete for kustomize, the CRD copy in sync with its source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from crdvalidate import load_crd
from ophelpers import CRD_SOURCE, ROOT, k8s_validate, rbac_allows

MANIFESTS = ROOT / "manifests"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _all_manifests() -> list[Path]:
    return sorted(p for p in MANIFESTS.rglob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("path", _all_manifests(), ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_manifest_is_valid(path: Path) -> None:
    for doc in _docs(path):
        if doc["apiVersion"].startswith("emailqueue.dev/"):
            continue  # custom resources: test_crd.py admits them against the CRD
        k8s_validate(doc)


def test_crd_copy_is_generated_from_the_source() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "gen-crd.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert load_crd(MANIFESTS / "crd" / "emailqueue.dev_emailqueues.yaml") == load_crd(CRD_SOURCE)


def test_kustomization_lists_everything_but_the_samples() -> None:
    listed = set(yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"])
    present = {str(p.relative_to(MANIFESTS)) for p in _all_manifests() if "samples" not in p.parts}
    assert listed == present


def test_operator_runs_one_restricted_replica() -> None:
    (dep,) = _docs(MANIFESTS / "operator" / "deployment.yaml")
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (container,) = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # The label the managed Redis NetworkPolicies let in.
    assert pod.get("serviceAccountName") == "emailqueue-operator"
    assert dep["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "emailqueue-operator"


def test_rbac_is_least_privilege() -> None:
    (role,) = _docs(MANIFESTS / "rbac" / "clusterrole.yaml")
    rules = role["rules"]
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        assert "update" not in rule["verbs"], "every write is a patch"
    assert not rbac_allows(rules, "", "pods", "get")
    assert not rbac_allows(rules, "", "persistentvolumeclaims", "delete")
    assert not rbac_allows(rules, "", "secrets", "list"), "Secrets are read by name only"
    assert not rbac_allows(rules, "apiextensions.k8s.io", "customresourcedefinitions", "list")
    (binding,) = _docs(MANIFESTS / "rbac" / "clusterrolebinding.yaml")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
