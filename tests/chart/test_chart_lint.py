"""Helm's own lint, in strict mode (warnings fail), with every scenario's values."""

from __future__ import annotations

import helm_python as helm
import pytest

from tests.chart.chartlib import CHART, NAMESPACE, kubernetes_version
from tests.chart.scenarios import SCENARIOS

SEVERITY = {0: "unknown", 1: "info", 2: "warning", 3: "error"}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_helm_lint_strict(scenario: str) -> None:
    report = helm.lint(
        CHART,
        SCENARIOS[scenario],
        strict=True,
        namespace=NAMESPACE,
        kube_version=f"v{kubernetes_version()}",
    )
    findings = [f"{SEVERITY[m['severity']]}: {m['path']}: {m['error']}" for m in report["messages"]]
    assert report["errors"] == []
    assert findings == []
    assert report["total_charts_linted"] == 1
