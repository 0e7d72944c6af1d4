"""Published artefacts stay in step with the code: the JSON Schema, the XADD example, the settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema

from emailqueue.schema import render
from emailqueue.settings import Settings, env_name
from emailqueue.wire import decode

ROOT = Path(__file__).resolve().parents[2]


def test_schema_file_is_generated_from_the_model() -> None:
    assert (ROOT / "docs/schema/email-v1.json").read_text() == render(), (
        "regenerate: python -m emailqueue.schema > docs/schema/email-v1.json"
    )


def _xadd_example() -> tuple[str, str]:
    readme = (ROOT / "docs/wire-format.md").read_text()
    match = re.search(r"redis-cli XADD (\S+) '\*' v 1 payload '(\{.*?\})'", readme, re.DOTALL)
    assert match, "docs/wire-format.md must hold a redis-cli XADD example"
    return match.group(1), match.group(2)


def test_redis_cli_example_is_valid_and_decodes() -> None:
    key, payload = _xadd_example()
    assert key == "'emailqueue:{default}:stream'"
    data = json.loads(payload)
    jsonschema.validate(data, json.loads(render()))
    entry = decode({"v": "1", "payload": payload}, "1-0")
    assert entry.email.to[0].email == data["to"][0]["email"]


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs/configuration.md").read_text()
    missing = [env_name(f) for f in Settings.model_fields if f"`{env_name(f)}`" not in doc]
    assert not missing, f"document in docs/configuration.md: {missing}"
