"""values.schema.json rejects bad values with a message that names the value; the checks
across values (templates/_helpers.tpl, validateValues) list every problem at once."""

from __future__ import annotations

import json
from typing import Any

import helm_python as helm
import pytest

from tests.chart.chartlib import CHART, chart, defaults, render

BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    (
        {"image": {"pullPolicy": "Sometimes"}},
        "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
    ),
    ({"image": {"digest": "latest"}}, "at '/image/digest': 'latest' does not match pattern"),
    ({"image": {"repository": ""}}, "at '/image/repository'"),
    ({"imagee": {"tag": "1"}}, "additional properties 'imagee' not allowed"),
    ({"operator": {"logLevel": "debug"}}, "at '/operator': additional properties 'logLevel' not allowed"),
    ({"crds": {"install": "yes"}}, "at '/crds/install': got string, want boolean"),
    ({"watchNamespaces": "mail"}, "at '/watchNamespaces': got string, want array"),
    ({"watchNamespaces": ["Mail_Team"]}, "at '/watchNamespaces/0': 'Mail_Team' does not match pattern"),
    ({"watchNamespaces": ["mail", "mail"]}, "at '/watchNamespaces'"),
    ({"operator": {"logFormat": "xml"}}, "at '/operator/logFormat': value must be one of 'json', 'plain'"),
    ({"operator": {"healthPort": 70000}}, "at '/operator/healthPort': maximum"),
    ({"operator": {"refreshSeconds": 0}}, "at '/operator/refreshSeconds': minimum"),
    ({"operator": {"extraEnv": [{"value": "x"}]}}, "at '/operator/extraEnv/0': missing property 'name'"),
    ({"resources": {"limits": {"memory": "lots"}}}, "at '/resources/limits/memory'"),
    ({"nodeSelector": {"disk": 1}}, "at '/nodeSelector/disk': got number, want string"),
    ({"imagePullSecrets": ["regcred"]}, "at '/imagePullSecrets/0': got string, want object"),
    ({"fullnameOverride": "Mail Operator"}, "at '/fullnameOverride'"),
    ({"metrics": {"service": {"type": "LoadBalancer"}}}, "at '/metrics/service/type': value must be one of"),
    ({"metrics": {"serviceMonitor": {"interval": "30 seconds"}}}, "at '/metrics/serviceMonitor/interval'"),
    ({"emailQueue": {"create": True}}, "at '/emailQueue/spec': missing properties 'redis', 'smtp'"),
    (
        {"emailQueue": {"create": True, "spec": {"redis": {"managed": {}}, "smtp": {"fromEmail": "a@b.c"}}}},
        "at '/emailQueue/spec/smtp': missing property 'dsnSecretRef'",
    ),
    ({"emailQueue": {"name": "q" * 41}}, "at '/emailQueue/name': maxLength"),
]


@pytest.mark.parametrize(("values", "message"), BAD_VALUES, ids=[m for _, m in BAD_VALUES])
def test_schema_rejects_bad_values_naming_the_value(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        render(values)
    text = str(caught.value)
    assert message in text
    assert len(text.splitlines()) <= 8, f"not a short, readable message:\n{text}"


def test_defaults_satisfy_the_schema() -> None:
    chart().validate_schema(chart().merge_values({}))


def test_schema_covers_every_top_level_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    assert schema["additionalProperties"] is False
    assert set(defaults()) <= set(schema["properties"])


CROSS_CHECKS: list[tuple[dict[str, Any], str]] = [
    (
        {"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}},
        "metrics.serviceMonitor.enabled needs metrics.service.enabled",
    ),
    ({"serviceAccount": {"create": False}}, "serviceAccount.name must name an existing ServiceAccount"),
    (
        {
            "watchNamespaces": ["mail"],
            "emailQueue": {
                "create": True,
                "namespace": "shop",
                "spec": {"redis": {"managed": {}}, "smtp": {"dsnSecretRef": {"name": "s"}, "fromEmail": "a@b.c"}},
            },
        },
        'emailQueue.namespace "shop" is not in watchNamespaces [mail]',
    ),
]


@pytest.mark.parametrize(("values", "message"), CROSS_CHECKS, ids=[m for _, m in CROSS_CHECKS])
def test_values_that_contradict_each_other_fail_with_a_reason(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError) as caught:
        render(values)
    assert "Invalid values for the emailqueue-operator chart:" in str(caught.value)
    assert message in str(caught.value)


def test_every_contradiction_is_listed_at_once() -> None:
    values = {
        "serviceAccount": {"create": False},
        "metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}},
    }
    with pytest.raises(helm.HelmRenderError) as caught:
        render(values)
    assert "serviceAccount.name" in str(caught.value)
    assert "metrics.serviceMonitor.enabled" in str(caught.value)
