"""A headless Service over the worker pods: what a Prometheus Operator ServiceMonitor
selects to scrape every worker's /metrics (the chart's ``monitoring.workerServiceMonitor``).
No traffic goes through it; workers take their work from Redis."""

from __future__ import annotations

from typing import Any

from emailqueue_operator.spec import EmailQueue

from .common import METRICS_PORT, WORKER, metadata, selector_labels, worker_name


def worker_service(eq: EmailQueue) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(eq, worker_name(eq), WORKER),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(eq, WORKER),
            "ports": [{"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}],
        },
    }
