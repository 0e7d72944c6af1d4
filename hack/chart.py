#!/usr/bin/env python3
"""Helm lint and template for charts/emailqueue-operator without a helm binary.

Uses the helm-python-sdk wheel, which binds Helm's own Go library (the same engine and
linter as the helm command):

    python hack/chart.py lint                       # helm lint --strict, once per ci/*-values.yaml
    python hack/chart.py template -f VALUES -o OUT  # helm template, one multi-document YAML
    python hack/chart.py template --all -o DIR      # one file per ci/*-values.yaml in DIR

Exit status 1 on any lint finding or render error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "emailqueue-operator"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "emailqueue-operator"
NAMESPACE = "emailqueue-system"
SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def _helm() -> Any:
    try:
        import helm_python
    except ImportError:
        raise SystemExit("helm-python-sdk is not installed: pip install helm-python-sdk (make install does)") from None
    return helm_python


def _kube_version() -> str:
    for line in (ROOT / "hack" / "versions.env").read_text(encoding="utf-8").splitlines():
        if line.startswith("KUBERNETES_VERSION="):
            return "v" + line.partition("=")[2].strip()
    raise SystemExit("hack/versions.env has no KUBERNETES_VERSION")


def _values(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return loaded


def lint() -> int:
    helm = _helm()
    failed = 0
    for values_file in CI_VALUES:
        report = helm.lint(CHART, _values(values_file), strict=True, namespace=NAMESPACE, kube_version=_kube_version())
        findings = [f"[{SEVERITY.get(m['severity'], '?')}] {m['path']}: {m['error']}" for m in report["messages"]]
        findings += [f"[ERROR] {e}" for e in report["errors"]]
        status = "FAILED" if findings else "ok"
        print(f"helm lint --strict -f {values_file.relative_to(ROOT)}: {status}")
        for finding in findings:
            print(f"  {finding}")
        failed += bool(findings)
    return 1 if failed else 0


def template(values_file: Path | None) -> str:
    helm = _helm()
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(_values(values_file), name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = [
        f"# Source: {path}\n{text.strip()}\n"
        for path, text in sorted(manifests.items())
        if not path.endswith("NOTES.txt") and text.strip()
    ]
    return "---\n" + "---\n".join(docs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lint", help="helm lint --strict with every ci/*-values.yaml")
    tpl = sub.add_parser("template", help="render the chart")
    tpl.add_argument("-f", "--values", type=Path, help="a values file (default: the chart's defaults)")
    tpl.add_argument("--all", action="store_true", help="render every ci/*-values.yaml into the -o directory")
    tpl.add_argument("-o", "--output", type=Path, help="output file (directory with --all); default stdout")
    args = parser.parse_args(argv)
    if args.command == "lint":
        return lint()
    helm = _helm()
    try:
        if args.all:
            if args.output is None:
                parser.error("--all needs -o DIR")
            args.output.mkdir(parents=True, exist_ok=True)
            for values_file in CI_VALUES:
                out = args.output / values_file.name.replace("-values.yaml", ".yaml")
                out.write_text(template(values_file), encoding="utf-8")
            return 0
        text = template(args.values)
    except helm.HelmError as exc:
        print(f"helm template failed: {exc}", file=sys.stderr)
        return 1
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
