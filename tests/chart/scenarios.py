"""The values the chart is tried with: charts/emailqueue-operator/ci/*-values.yaml.

chart-testing's convention (`ct lint` / `ct install` try every file there), read here too:
the defaults, every documented value at once (all-options), and the switches that change
which objects exist. hack/lint-cluster.sh renders the same files for kubernetes-validate and
checkov.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.chart.chartlib import CHART

CI = CHART / "ci"
SUFFIX = "-values.yaml"


def _load(path: Path) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return values


SCENARIOS: dict[str, dict[str, Any]] = {p.name.removesuffix(SUFFIX): _load(p) for p in sorted(CI.glob(f"*{SUFFIX}"))}
ALL_OPTIONS: dict[str, Any] = SCENARIOS["all-options"]
DIGEST: str = ALL_OPTIONS["image"]["digest"]
