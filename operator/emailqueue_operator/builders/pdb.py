"""The workers' PodDisruptionBudget: a node drain evicts one worker at a time."""

from __future__ import annotations

from typing import Any

from emailqueue_operator.spec import EmailQueue

from .common import WORKER, metadata, selector_labels, worker_name


def worker_pdb(eq: EmailQueue) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(eq, worker_name(eq), WORKER),
        "spec": {
            # maxUnavailable (not minAvailable) so that a queue scaled to zero never blocks a drain.
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(eq, WORKER)},
        },
    }
