"""The end-to-end run on a real cluster: hack/e2e.sh against the kind cluster of
hack/kind-up.sh (make kind-up e2e). Marked `cluster`; skipped, saying why, wherever there is
no kubectl or no reachable cluster with the operator's CRD, as on this project's CI.

    make kind-up                      # once: kind cluster, KEDA, images, operator
    .venv/bin/pytest -m cluster       # or: make e2e (the script alone)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
E2E = ROOT / "hack" / "e2e.sh"


def _cluster_context() -> str:
    if "E2E_CONTEXT" in os.environ:
        return os.environ["E2E_CONTEXT"]
    return f"kind-{os.environ.get('KIND_CLUSTER_NAME', 'emailqueue')}"


def _skip_reason() -> str | None:
    """Why the e2e run cannot happen here, or None when it can."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return "no kubectl on PATH: the e2e run needs a Kubernetes cluster (make kind-up, docs/install.md)"
    context = _cluster_context()
    try:
        probe = subprocess.run(
            [kubectl, "--context", context, "get", "crd", "emailqueues.emailqueue.dev", "--request-timeout=5s"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"kubectl context {context} does not answer"
    if probe.returncode != 0:
        detail = probe.stderr.strip()
        return f"no cluster with the EmailQueue CRD at kubectl context {context} (run make kind-up): {detail}"
    return None


@pytest.mark.cluster
@pytest.mark.timeout(3600)
def test_autoscaled_queue_delivers_end_to_end() -> None:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    bash = shutil.which("bash") or "/bin/bash"
    result = subprocess.run([bash, str(E2E)], cwd=ROOT, capture_output=True, text=True, timeout=3500, check=False)
    summary = result.stdout[-4000:]
    assert result.returncode == 0, f"hack/e2e.sh failed:\n{summary}\n{result.stderr[-4000:]}"
    assert " 0 failed" in summary
