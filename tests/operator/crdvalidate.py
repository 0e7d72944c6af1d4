"""Validate objects against a CRD's OpenAPI schema the way an API server admits them.

Structural check of the schema, defaulting, type/range/enum validation (jsonschema, with
unknown fields rejected rather than silently pruned, so a typo in a sample fails), and the
``x-kubernetes-validations`` CEL rules, transition rules (``oldSelf``) included when an old
object is given. Used for the EmailQueue CRD and for KEDA's own CRDs.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml

Schema = dict[str, Any]


class Invalid(Exception):
    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def load_crd(path: Path) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert len(docs) == 1, f"{path} should hold one CRD"
    return dict(docs[0])


def version_schema(crd: dict[str, Any], version: str | None = None) -> Schema:
    versions = crd["spec"]["versions"]
    chosen = next(v for v in versions if version is None or v["name"] == version)
    return dict(chosen["schema"]["openAPIV3Schema"])


def structural_errors(schema: Schema, path: str = "") -> list[str]:
    """Every node must declare a type (or be int-or-string / preserve-unknown-fields)."""
    errors: list[str] = []
    special = schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-preserve-unknown-fields")
    if "type" not in schema and not special and path:
        errors.append(f"{path or '<root>'}: no type")
    if "description" not in schema and path and not path.endswith(".metadata"):
        errors.append(f"{path}: no description")
    for name, sub in schema.get("properties", {}).items():
        errors += structural_errors(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        errors += structural_errors(schema["items"], f"{path}[]")
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict) and not additional.get("x-kubernetes-int-or-string"):
        errors += structural_errors(additional, f"{path}{{}}")
    return errors


def apply_defaults(schema: Schema, value: Any) -> Any:
    """Fill in defaults like the API server: absent properties with a default, recursively."""
    if isinstance(value, dict) and schema.get("type") == "object":
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(sub, value[name])
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in list(value):
                if key not in schema.get("properties", {}):
                    value[key] = apply_defaults(additional, value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], item) for item in value]
    return value


def to_json_schema(schema: Schema) -> Schema:
    """OpenAPI v3 (Kubernetes dialect) to JSON Schema; unknown fields become errors."""
    out: Schema = {}
    for key, val in schema.items():
        if key.startswith("x-kubernetes-") or key in ("default", "description", "format", "nullable"):
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in val.items()}
        elif key in ("items", "additionalProperties") and isinstance(val, dict):
            out[key] = to_json_schema(val)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [to_json_schema(sub) for sub in val]
        elif key == "not":
            out[key] = to_json_schema(val)
        else:
            out[key] = val
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("anyOf", None)
        out["type"] = ["integer", "string"]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _walk(schema: Schema, value: Any, old: Any, path: str) -> Iterator[tuple[str, Schema, Any, Any]]:
    yield path, schema, value, old
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                old_sub = old.get(name) if isinstance(old, dict) else None
                yield from _walk(sub, value[name], old_sub, f"{path}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from _walk(schema["items"], item, None, f"{path}[{i}]")


logging.getLogger("celpy").setLevel(logging.WARNING)
_CEL = celpy.Environment()


def cel_errors(schema: Schema, value: Any, old: Any = None) -> list[str]:
    errors: list[str] = []
    for path, sub, val, old_val in _walk(schema, value, old, ""):
        for rule in sub.get("x-kubernetes-validations", []):
            expr = rule["rule"]
            activation = {"self": celpy.json_to_cel(val)}
            if "oldSelf" in expr:
                if old_val is None:
                    continue  # transition rules run on updates only
                activation["oldSelf"] = celpy.json_to_cel(old_val)
            result = _CEL.program(_CEL.compile(expr)).evaluate(activation)
            if result is not True and not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
                errors.append(f"{path or '<root>'}: {rule.get('message', expr)}")
    return errors


def admit(schema: Schema, obj: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    """Default, then validate ``obj`` as an API server would; return the defaulted object."""
    obj = apply_defaults(schema, copy.deepcopy(obj))
    validator = jsonschema.Draft202012Validator(to_json_schema(schema))
    messages = [
        f"{'.'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
        for err in validator.iter_errors(obj)
    ]
    if not messages:
        old_defaulted = apply_defaults(schema, copy.deepcopy(old)) if old is not None else None
        messages = cel_errors(schema, obj, old_defaulted)
    if messages:
        raise Invalid(messages)
    return obj


def prune_status(schema: Schema, status: Any) -> Any:
    """What a structural schema keeps of a status: unknown fields are dropped."""
    sub = schema["properties"]["status"]
    return _prune(sub, status)


def _prune(schema: Schema, value: Any) -> Any:
    if isinstance(value, dict) and schema.get("type") == "object":
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return value
        props = schema.get("properties", {})
        return {k: _prune(props[k], v) for k, v in value.items() if k in props}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune(schema["items"], v) for v in value]
    return value
