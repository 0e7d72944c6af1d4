"""One source for the EmailQueue CRD: the chart's copy and manifests/'s are generated from
operator/emailqueue_operator/crd/emailqueue-crd.yaml, and CI fails when they differ."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import helm_python as helm
import pytest
import yaml

from tests.chart.chartlib import CHART, MANIFESTS, ROOT, Rendered, load_source_crd

SYNC = ROOT / "hack" / "sync-crd.py"


def _sync_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sync_crd", SYNC)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sync_crd_check_passes() -> None:
    result = subprocess.run([sys.executable, str(SYNC), "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_sync_crd_check_fails_naming_a_stale_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _sync_module()
    stale = tmp_path / "crd.yaml"
    stale.write_text("# edited by hand\n", encoding="utf-8")
    source = tmp_path / "source.yaml"
    shutil.copy(ROOT / "operator" / "emailqueue_operator" / "crd" / "emailqueue-crd.yaml", source)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "CHART_COPY", stale)
    monkeypatch.setattr(module, "MANIFESTS_COPY", tmp_path / "manifests-copy.yaml")
    monkeypatch.setattr(module, "SOURCE", source)
    assert module.main(["--check"]) == 1
    assert "crd.yaml differs from source.yaml: run `python hack/sync-crd.py`" in capsys.readouterr().err
    assert module.main([]) == 0
    assert module.main(["--check"]) == 0


def test_rendered_crd_is_the_source(default_render: Rendered) -> None:
    source = load_source_crd()
    rendered = default_render.one("CustomResourceDefinition")
    assert rendered["spec"] == source["spec"]
    assert rendered["metadata"]["name"] == source["metadata"]["name"]
    assert source["metadata"]["labels"].items() <= rendered["metadata"]["labels"].items()


def test_manifests_copy_is_the_source() -> None:
    (copy,) = [d for d in yaml.safe_load_all((MANIFESTS / "crd" / "emailqueue.dev_emailqueues.yaml").read_text()) if d]
    assert copy == load_source_crd()


def test_chart_has_no_crds_directory() -> None:
    # Helm installs crds/ unconditionally and never upgrades it: the CRD lives in templates/.
    assert not (CHART / "crds").exists()


def test_template_syntax_in_the_crd_is_printed_literally(tmp_path: Path) -> None:
    module = _sync_module()
    crd = load_source_crd()
    tricky = "Go templates such as {{ .Values.x }} and {{- fail }} must reach the cluster as written."
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = tricky
    copy = tmp_path / "emailqueue-operator"
    shutil.copytree(CHART, copy)
    (copy / "templates" / "crd.yaml").write_text(module.render_chart_copy(crd), encoding="utf-8")
    with helm.Chart.load(copy) as chart:
        rendered = chart.render(name="eq", namespace="ns")["emailqueue-operator/templates/crd.yaml"]
    (doc,) = [d for d in yaml.safe_load_all(rendered) if d]
    assert doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] == tricky
