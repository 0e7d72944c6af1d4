"""Rendering and validating the Helm chart without a helm binary or a cluster.

``helm_python`` (the helm-python-sdk wheel) binds Helm's own Go library: rendering, values
schema validation and lint are Helm's, not an imitation.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "emailqueue-operator"
CRD_SOURCE = ROOT / "operator" / "emailqueue_operator" / "crd" / "emailqueue-crd.yaml"
MANIFESTS = ROOT / "manifests"
VERSIONS_ENV = ROOT / "hack" / "versions.env"

RELEASE = "eq"
NAMESPACE = "emailqueue-system"

Obj = dict[str, Any]


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines, as hack/lib.sh reads them (comments and blank lines skipped)."""
    pairs: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.partition("=")
        pairs[key.strip()] = value.strip()
    return pairs


def kubernetes_version() -> str:
    """The Kubernetes version everything is validated against (hack/versions.env)."""
    return read_env_file(VERSIONS_ENV)["KUBERNETES_VERSION"]


@cache
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


@dataclass(frozen=True)
class Rendered:
    """One render: the objects (in template order) and NOTES.txt."""

    objects: list[Obj]
    notes: str
    sources: dict[str, str]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> Obj:
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, found {len(found)}: {[o['metadata']['name'] for o in found]}"
        return found[0]

    def kinds(self) -> list[str]:
        return sorted(o["kind"] for o in self.objects)


def render(values: Mapping[str, Any] | None = None, *, namespace: str = NAMESPACE, release: str = RELEASE) -> Rendered:
    """Render like ``helm install --dry-run``: schema checked, NOTES.txt rendered too."""
    manifests = chart().render(copy.deepcopy(dict(values or {})), name=release, namespace=namespace, is_install=True)
    objects: list[Obj] = []
    notes = ""
    for path in sorted(manifests):
        text = manifests[path]
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return Rendered(objects, notes, manifests)


def leaf_paths(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted path -> value of every documented value; lists and empty maps count as leaves."""
    leaves: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            leaves.update(leaf_paths(value, f"{path}."))
        else:
            leaves[path] = value
    return leaves


def defaults() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    return loaded


# ---- validation of rendered objects ---------------------------------------------------------


def load_source_crd() -> Obj:
    crd: Obj = yaml.safe_load(CRD_SOURCE.read_text(encoding="utf-8"))
    return crd


def _emailqueue_schema() -> Obj:
    versions = load_source_crd()["spec"]["versions"]
    schema: Obj = next(v for v in versions if v["storage"])["schema"]["openAPIV3Schema"]
    return schema


def validate_emailqueue(obj: Obj) -> list[str]:
    """The CRD's OpenAPI schema (types, enums, ranges, required); CEL rules are the operator tests' job."""
    validator = jsonschema.Draft7Validator(_emailqueue_schema())
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(obj)]


def validate_servicemonitor(obj: Obj) -> list[str]:
    """No schema ships for the Prometheus Operator's CRD here: the fields the chart sets, by hand."""
    errors = []
    if obj.get("apiVersion") != "monitoring.coreos.com/v1":
        errors.append(f"apiVersion {obj.get('apiVersion')!r}")
    spec = obj.get("spec", {})
    if not spec.get("selector", {}).get("matchLabels"):
        errors.append("spec.selector.matchLabels is empty")
    for endpoint in spec.get("endpoints", []):
        unknown = set(endpoint) - {"port", "path", "interval", "scrapeTimeout"}
        if unknown:
            errors.append(f"unexpected endpoint fields {sorted(unknown)}")
    return errors


def validate_prometheusrule(obj: Obj) -> list[str]:
    """The Prometheus Operator's PrometheusRule, by hand: groups of named rules with an expression."""
    errors = []
    groups = obj.get("spec", {}).get("groups") or []
    if not groups:
        errors.append("spec.groups is empty")
    for group in groups:
        if not group.get("name") or not group.get("rules"):
            errors.append(f"group {group.get('name')!r} needs a name and rules")
        for rule in group.get("rules", []):
            unknown = set(rule) - {"alert", "record", "expr", "for", "labels", "annotations"}
            if unknown or not rule.get("expr") or not (rule.get("alert") or rule.get("record")):
                errors.append(f"rule {rule.get('alert') or rule.get('record')!r}: fields {sorted(rule)}")
    return errors


def validate(obj: Obj) -> list[str]:
    """Errors of one object: Kubernetes' own schema (strict: unknown fields are errors) for
    built-in kinds, the CRD for EmailQueues. An empty list means valid."""
    if obj["apiVersion"].startswith("emailqueue.dev/"):
        return validate_emailqueue(obj)
    if obj["kind"] == "PrometheusRule":
        return validate_prometheusrule(obj)
    if obj["apiVersion"].startswith("monitoring.coreos.com/"):
        return validate_servicemonitor(obj)
    try:
        kubernetes_validate.validate(obj, kubernetes_version(), strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(map(str, exc.path)) or "<root>"
        return [f"{where}: {exc.message}"]
    return []


def validate_all(objects: Iterable[Obj]) -> list[str]:
    return [f"{obj['kind']}/{obj['metadata'].get('name', '?')}: {error}" for obj in objects for error in validate(obj)]
