"""The chart's monitoring: the workers' ServiceMonitor, the PrometheusRule and the Grafana
dashboard, behind monitoring.* values; checked against what the worker and operator really
export and render."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from emailqueue.metrics import Metrics
from tests.chart.chartlib import CHART, ROOT, Rendered, render
from tests.chart.conftest import rendered_scenario
from tests.chart.scenarios import ALL_OPTIONS

ALL_ON = {"monitoring": {k: {"enabled": True} for k in ("workerServiceMonitor", "prometheusRule", "grafanaDashboard")}}
ALERTS = [
    "EmailQueueBacklogGrowing",
    "EmailQueueOldestMessageTooOld",
    "EmailQueueDeadLetters",
    "EmailQueueNoWorkerConsuming",
    "EmailQueueRedisMemoryHigh",
]
#: Queue-level gauges the rules and dashboard read that the worker is to export (asked of
#: the worker's owner; see docs/dashboard.md "Metrics"). Empty this once they exist.
REQUESTED_FROM_WORKER: set[str] = set()  # every series the dashboards use is exported
DASHBOARD = json.loads((CHART / "files" / "grafana-dashboard.json").read_text(encoding="utf-8"))


def _rules(rendered: Rendered) -> dict[str, dict[str, Any]]:
    (rule,) = rendered.of_kind("PrometheusRule")
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def _worker_monitor(rendered: Rendered) -> dict[str, Any]:
    (monitor,) = [m for m in rendered.of_kind("ServiceMonitor") if m["metadata"]["name"].endswith("-workers")]
    return monitor


def _exported_series() -> set[str]:
    names: set[str] = set()
    for family in Metrics("q").registry.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
        names |= {family.name + s for s in suffixes}
    return names


def _exprs() -> list[str]:
    exprs = [r["expr"] for r in _rules(render(ALL_ON)).values()]
    exprs += [t["expr"] for p in DASHBOARD["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in DASHBOARD["templating"]["list"] if "definition" in v]
    return exprs


def test_nothing_by_default(default_render: Rendered) -> None:
    assert not default_render.of_kind("PrometheusRule")
    assert not default_render.of_kind("ServiceMonitor")
    assert not default_render.of_kind("ConfigMap")


def test_the_worker_servicemonitor_selects_the_services_the_operator_renders() -> None:
    from emailqueue_operator.builders.worker_service import worker_service
    from emailqueue_operator.spec import EmailQueue

    spec = {"redis": {"managed": {}}, "smtp": {"dsnSecretRef": {"name": "s", "key": "dsn"}, "fromEmail": "a@b.c"}}
    service = worker_service(EmailQueue.from_body({"metadata": {"name": "mail", "namespace": "ns"}, "spec": spec}))
    monitor = _worker_monitor(render(ALL_ON))
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["namespaceSelector"] == {"any": True}


def test_all_options_monitoring() -> None:
    rendered = rendered_scenario("all-options")
    monitor = _worker_monitor(rendered)
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ALL_OPTIONS["watchNamespaces"]}
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"][0]["interval"] == "15s"
    rules = _rules(rendered)
    assert list(rules) == ALERTS
    assert "> 5000" in rules["EmailQueueBacklogGrowing"]["expr"]
    assert "> 600" in rules["EmailQueueOldestMessageTooOld"]["expr"]
    assert "> 0.9" in rules["EmailQueueRedisMemoryHigh"]["expr"]
    assert rules["EmailQueueDeadLetters"]["labels"]["severity"] == "critical"
    (rule,) = rendered.of_kind("PrometheusRule")
    assert rule["metadata"]["labels"]["role"] == "alert-rules"
    (dashboard,) = [c for c in rendered.of_kind("ConfigMap") if c["metadata"]["name"].endswith("grafana-dashboard")]
    assert dashboard["metadata"]["namespace"] == "monitoring"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Mail"}
    assert json.loads(dashboard["data"]["emailqueue.json"]) == DASHBOARD


def test_every_alert_says_what_and_where_to_look() -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    prose = re.sub(r"```.*?```", "", runbook, flags=re.DOTALL)
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in prose.splitlines()
        if line.startswith("#")
    }
    for name, rule in _rules(render(ALL_ON)).items():
        notes = rule["annotations"]
        assert "{{ $labels.queue }}" in notes["summary"], name  # Prometheus' template, not eaten by Helm
        assert notes["description"], name
        anchor = notes["runbook_url"].partition("#")[2]
        assert anchor in anchors, f"{name}: docs/operations.md has no section #{anchor}"
        assert rule["labels"]["severity"] in ("warning", "critical")


@pytest.mark.parametrize("expr", _exprs())
def test_expressions_are_balanced_and_use_real_metrics(expr: str) -> None:
    depth = 0
    for char in expr:
        depth += {"(": 1, ")": -1}.get(char, 0)
        assert depth >= 0, expr
    assert depth == 0, expr
    assert expr.count("{") == expr.count("}"), expr
    used = set(re.findall(r"\bemailqueue_[a-z_]+", expr))
    unknown = used - _exported_series() - REQUESTED_FROM_WORKER
    assert not unknown, f"not exported by the worker (emailqueue/metrics.py): {unknown}"


def test_the_grafana_dashboard_is_well_formed() -> None:
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    assert DASHBOARD["uid"] == "emailqueue-overview"
    variables = [v["name"] for v in DASHBOARD["templating"]["list"]]
    assert variables == ["datasource", "namespace", "queue"]
    for panel in DASHBOARD["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'queue=~"$queue"' in target["expr"], panel["title"]
    titles = {p["title"] for p in DASHBOARD["panels"]}
    assert {"Throughput", "Send latency (SMTP)", "Dead letters", "Workers", "Backlog"} <= titles
