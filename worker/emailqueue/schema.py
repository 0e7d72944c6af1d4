"""The published JSON Schema of wire format v1 (docs/schema/email-v1.json is generated from it)."""

from __future__ import annotations

import json
from typing import Any

from .message import Email


def email_schema() -> dict[str, Any]:
    schema = Email.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://emailqueue.dev/schema/email-v1.json",
        "title": "emailqueue wire format v1: the JSON payload of a stream entry",
        "description": "Stream entry fields: v='1', payload=<this JSON>. See docs/wire-format.md.",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def render() -> str:
    return json.dumps(email_schema(), indent=2) + "\n"


if __name__ == "__main__":
    print(render(), end="")
