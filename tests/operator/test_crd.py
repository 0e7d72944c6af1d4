"""The EmailQueue CRD: structural, defaulted, documented, and strict at admission."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
from crdvalidate import Invalid, admit, load_crd, structural_errors
from ophelpers import BASE_SPEC, CRD_SOURCE, EQ_SCHEMA, K8S_VERSION, SAMPLES, admitted, eq_body, sample_docs, with_spec
from pydantic import BaseModel

from emailqueue_operator.spec import MANAGED_ENV, EmailQueue, EmailQueueSpec


def test_crd_is_a_valid_customresourcedefinition() -> None:
    kubernetes_validate.validate(load_crd(CRD_SOURCE), K8S_VERSION, strict=True)


def test_schema_is_structural_and_every_field_is_described() -> None:
    assert structural_errors(EQ_SCHEMA) == []


def test_names_printer_columns_and_status_subresource() -> None:
    crd = load_crd(CRD_SOURCE)
    assert crd["metadata"]["name"] == "emailqueues.emailqueue.dev"
    assert crd["spec"]["names"]["shortNames"] == ["eq"]
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    columns = [c["name"].upper() for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["READY", "BACKLOG", "IN-FLIGHT", "FAILED", "WORKERS", "AGE"]


@pytest.mark.parametrize("filename", sorted(p.name for p in SAMPLES.glob("*.yaml")))
def test_samples_are_admitted(filename: str) -> None:
    queues = [d for d in sample_docs(filename) if d["kind"] == "EmailQueue"]
    assert queues, f"{filename} holds no EmailQueue"
    for doc in queues:
        body = admit(EQ_SCHEMA, doc)
        EmailQueue.from_body({**body, "metadata": {**body["metadata"], "namespace": "default"}})


def _model_fields(model: type[BaseModel]) -> dict[str, Any]:
    return {(f.alias or name): f for name, f in model.model_fields.items()}


def _compare(model: type[BaseModel], schema: dict[str, Any], path: str) -> list[str]:
    errors = []
    fields = _model_fields(model)
    props = schema.get("properties", {})
    for missing in sorted(set(fields) ^ set(props)):
        errors.append(f"{path}.{missing}: only in {'the model' if missing in fields else 'the CRD'}")
    return errors


def test_model_and_crd_have_the_same_fields() -> None:
    errors = []
    spec_schema = EQ_SCHEMA["properties"]["spec"]
    errors += _compare(EmailQueueSpec, spec_schema, "spec")
    for name, field in _model_fields(EmailQueueSpec).items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            errors += _compare(annotation, spec_schema["properties"][name], f"spec.{name}")
    assert errors == []


def test_model_defaults_equal_crd_defaults() -> None:
    """A spec defaulted by the API server parses to the same model as one defaulted by pydantic."""
    from_server = EmailQueue.from_body(admitted()).spec
    from_model = EmailQueueSpec.model_validate(BASE_SPEC)
    assert from_server == from_model


def test_env_rule_lists_exactly_the_managed_variables() -> None:
    rule = EQ_SCHEMA["properties"]["spec"]["properties"]["worker"]["properties"]["env"]["x-kubernetes-validations"][0]
    listed = {part.strip().strip("'[]()!,") for part in rule["rule"].split("'") if part.strip().isupper()}
    assert listed == set(MANAGED_ENV)


def _rejected(spec: dict[str, Any], old: dict[str, Any] | None = None, name: str = "mail") -> str:
    with pytest.raises(Invalid) as caught:
        admit(EQ_SCHEMA, eq_body(spec, name), eq_body(old, name) if old is not None else None)
    return str(caught.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (with_spec(redis={}), "set exactly one of managed or external"),
        (
            with_spec(redis={"managed": {}, "external": {"urlSecretRef": {"name": "r"}}}),
            "set exactly one of managed or external",
        ),
        (with_spec(worker={"minReplicas": 5, "maxReplicas": 2}), "minReplicas must be less than or equal to"),
        (with_spec(worker={"minReplicas": -1}), "-1 is less than the minimum of 0"),
        (with_spec(worker={"concurrency": 0}), "0 is less than the minimum of 1"),
        (with_spec(redis={"managed": {"appendfsync": "sometimes"}}), "'sometimes' is not one of"),
        (with_spec(redis={"managed": {"maxmemory": "lots"}}), "does not match"),
        (with_spec(worker={"env": [{"name": "MAILER_DSN", "value": "smtp://x"}]}), "must not set variables"),
        (with_spec(worker={"replicas": 3}), "Additional properties are not allowed ('replicas'"),
        (with_spec(queue="bad name!"), "does not match"),
        ({"redis": {"managed": {}}}, "'smtp' is a required property"),
        (with_spec(autoscaling={"enabled": "yes"}), "'yes' is not of type 'boolean'"),
        (with_spec(autoscaling={"activationBacklog": 5}), "would wait forever"),
    ],
)
def test_invalid_specs_are_rejected_with_a_readable_message(spec: dict[str, Any], message: str) -> None:
    assert message in _rejected(spec)


def test_long_names_are_rejected() -> None:
    assert "at most 40 characters" in _rejected(BASE_SPEC, name="x" * 41)


def test_transition_rules() -> None:
    old = with_spec(queue="orders")
    assert "spec.queue is immutable" in _rejected(with_spec(queue="billing"), old=old)
    external = with_spec(redis={"external": {"urlSecretRef": {"name": "r"}}})
    assert "cannot switch between managed and external" in _rejected(external, old=BASE_SPEC)
    bigger = with_spec(redis={"managed": {"storage": {"size": "5Gi"}}})
    assert "storage is immutable" in _rejected(bigger, old=BASE_SPEC)
    # ...while ordinary changes pass.
    admit(EQ_SCHEMA, eq_body(with_spec(worker={"maxReplicas": 3})), eq_body(BASE_SPEC))


def test_defaults_fill_an_empty_managed_redis() -> None:
    spec = admitted()["spec"]
    assert spec["redis"]["managed"]["maxmemory"] == "256mb"
    assert spec["redis"]["managed"]["volumeReclaimPolicy"] == "Retain"
    assert spec["worker"]["minReplicas"] == 0
    assert spec["autoscaling"]["enabled"] is True
    assert spec["smtp"]["dsnSecretRef"]["key"] == "dsn"


def test_spec_model_rejects_what_the_crd_rejects() -> None:
    """The operator's own checks agree with admission (for objects that skipped it)."""
    bad = copy.deepcopy(BASE_SPEC)
    bad["worker"] = {"minReplicas": 4, "maxReplicas": 1}
    with pytest.raises(ValueError, match="minReplicas"):
        EmailQueueSpec.model_validate(bad)
    with pytest.raises(ValueError, match="exactly one"):
        EmailQueueSpec.model_validate({**BASE_SPEC, "redis": {}})
