"""Shared helpers of the operator tests: the CRD, sample objects, Kubernetes schema checks."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from crdvalidate import Schema, admit, load_crd, version_schema

from emailqueue_operator.spec import EmailQueue

ROOT = Path(__file__).resolve().parents[2]
CRD_SOURCE = ROOT / "operator" / "emailqueue_operator" / "crd" / "emailqueue-crd.yaml"
SAMPLES = ROOT / "manifests" / "samples"
KEDA_CRDS = ROOT / "tests" / "operator" / "crds" / "keda"  # copied from KEDA (Apache-2.0)
#: A current Kubernetes release; kubernetes-validate ships its OpenAPI schemas.
K8S_VERSION = "1.34"

EQ_SCHEMA: Schema = version_schema(load_crd(CRD_SOURCE))

BASE_SPEC: dict[str, Any] = {
    "redis": {"managed": {}},
    "smtp": {"dsnSecretRef": {"name": "smtp", "key": "dsn"}, "fromEmail": "no-reply@example.com"},
}


def eq_body(spec: dict[str, Any] | None = None, name: str = "mail", namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "emailqueue.dev/v1alpha1",
        "kind": "EmailQueue",
        "metadata": {"name": name, "namespace": namespace, "uid": "0d4e2f6a-uid", "generation": 1},
        "spec": copy.deepcopy(spec if spec is not None else BASE_SPEC),
    }


def admitted(spec: dict[str, Any] | None = None, name: str = "mail") -> dict[str, Any]:
    """The EmailQueue body as the API server stores it: validated and defaulted."""
    return admit(EQ_SCHEMA, eq_body(spec, name))


def make_eq(spec: dict[str, Any] | None = None, name: str = "mail") -> EmailQueue:
    return EmailQueue.from_body(admitted(spec, name))


def with_spec(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE_SPEC)
    spec.update(changes)
    return spec


def k8s_validate(obj: dict[str, Any]) -> None:
    """Validate a built-in kind against Kubernetes' own schema; unknown fields are errors."""
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def keda_schema(kind: str) -> Schema:
    plural = {"ScaledObject": "scaledobjects", "TriggerAuthentication": "triggerauthentications"}[kind]
    return version_schema(load_crd(KEDA_CRDS / f"keda.sh_{plural}.yaml"), "v1alpha1")


def sample_docs(filename: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((SAMPLES / filename).read_text()) if d]


RBAC = ROOT / "manifests" / "rbac" / "clusterrole.yaml"
_VERBS = {"LIST": "list", "WATCH": "watch", "FETCH": "get", "CREATE": "create", "UPDATE": "patch", "DELETE": "delete"}


def rbac_allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule.get("apiGroups", []) and resource in rule.get("resources", []) and verb in rule.get("verbs", [])
        for rule in rules
    )


def rbac_violations(requests: list[Any]) -> list[str]:
    """API calls made by the operator (kopf and the kubernetes client) that its ClusterRole forbids."""
    rules = yaml.safe_load(RBAC.read_text())["rules"]
    problems = set()
    for req in requests:
        agent = req.headers.get("User-Agent", "")
        if agent.startswith("Python/") or req.resource is None or not req.resource.plural or req.action is None:
            continue  # the tests' own calls, and API discovery (allowed to everyone)
        resource = f"{req.resource.plural}/{req.subresource}" if req.subresource else req.resource.plural
        verb = _VERBS[req.action.name]
        if not rbac_allows(rules, req.resource.group or "", resource, verb):
            problems.add(f"{verb} {req.resource.group or 'core'}/{resource} ({agent})")
    return sorted(problems)
