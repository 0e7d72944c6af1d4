"""The workers' ServiceAccount: its own identity, and no API token (workers never call the API)."""

from __future__ import annotations

from typing import Any

from emailqueue_operator.spec import EmailQueue

from .common import WORKER, metadata, worker_name


def worker_serviceaccount(eq: EmailQueue) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(eq, worker_name(eq), WORKER),
        "automountServiceAccountToken": False,
    }
