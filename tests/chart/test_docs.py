"""docs/install.md and docs/operations.md say what the code does: the pinned versions, the
chart's values and the CLI's commands they name exist."""

from __future__ import annotations

import re

import pytest

from emailqueue.cli import build_parser
from tests.chart.chartlib import ROOT, defaults, leaf_paths, read_env_file

INSTALL = (ROOT / "docs" / "install.md").read_text(encoding="utf-8")
OPERATIONS = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
VERSIONS = read_env_file(ROOT / "hack" / "versions.env")


def _minor(version: str) -> str:
    return ".".join(version.lstrip("v").split(".")[:2])


def test_install_names_the_pinned_versions() -> None:
    assert VERSIONS["PYTHON_IMAGE"].rsplit("/", 1)[-1] in INSTALL
    assert f"--version {VERSIONS['KEDA_CHART_VERSION']}" in INSTALL
    assert f"(v{_minor(VERSIONS['KIND_VERSION'])})" in INSTALL
    assert f"Kubernetes {_minor(VERSIONS['KUBERNETES_VERSION'])}" in INSTALL


def test_install_names_only_real_chart_values() -> None:
    known = set(leaf_paths(defaults())) | set(defaults())
    known |= {path.rsplit(".", 1)[0] for path in known}
    named = set(re.findall(r"`((?:image|crds|operator|metrics|emailQueue|serviceAccount|rbac)\.[\w.]+)`", INSTALL))
    assert named
    assert named <= known, f"docs/install.md names values the chart does not have: {named - known}"


def _subcommands() -> set[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return set(action.choices or {})


@pytest.mark.parametrize("doc", ["install.md", "operations.md"])
def test_cli_commands_in_the_docs_exist(doc: str) -> None:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    # In code: `emailqueue X`, `eq X` (the runbook's shell function), `-- emailqueue X`.
    used = set(re.findall(r"(?:`|-- |^)(?:emailqueue|eq) ([a-z][a-z-]+)", text, flags=re.MULTILINE))
    assert used, f"{doc} names no emailqueue command"
    assert used <= _subcommands(), f"{doc} names commands the CLI lacks: {used - _subcommands()}"
