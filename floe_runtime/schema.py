"""JSON Schema (draft 2020-12) of floe.yaml and platform.yaml, generated from the models.

Editors without the floe language server (Red Hat's yaml-language-server, for
one) validate and complete from these, so the schema says what `validate` says
wherever JSON Schema can say it (`tests/test_schema.py` holds both to it):

- values have the type YAML 1.2 gives them (`validate` reads YAML 1.2 and checks
  strictly, so `port: "5432"` and `lineage: yes` are wrong in both);
- a profile name must match its pattern, and a badly named profile's settings
  are still checked (`propertyNames` + `additionalProperties`);
- a credential is never a literal: not under a key that names one, not inside a
  URL (the patterns of `floe_runtime.analysis.secrets`);
- no `"default": null`, which editors would insert as a `null` placeholder.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_IDS = {
    "floe": "https://floe-runtime.dev/schemas/floe.schema.json",
    "platform": "https://floe-runtime.dev/schemas/platform.schema.json",
}


def _model(kind: str) -> type[BaseModel]:
    if kind == "floe":
        from floe_runtime.config.pipeline import Pipeline

        return Pipeline
    if kind == "platform":
        from floe_runtime.config.platform import Platform

        return Platform
    raise ValueError(f"unknown schema '{kind}': expected 'floe' or 'platform'")


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of `floe` (floe.yaml) or `platform` (platform.yaml)."""
    from floe_runtime.analysis.secrets import NO_URL_SECRET_PATTERN

    schema = _refine(_model(kind).model_json_schema(by_alias=True, mode="validation"))
    schema.setdefault("$defs", {})[_NO_URL_SECRET] = {
        "$comment": "Every string: no credential inside a URL (FLOE020; analysis.secrets).",
        "pattern": NO_URL_SECRET_PATTERN,
        "patternErrorMessage": URL_SECRET_MESSAGE,
    }
    return {"$schema": DIALECT, "$id": SCHEMA_IDS[kind], **schema}


#: What yaml-language-server says when a string holds a credential inside a URL.
URL_SECRET_MESSAGE = (
    "a credential is written inside this URL (FLOE020): leave it out and keep it in a secret"
)
_NO_URL_SECRET = "NoCredentialInUrl"
# What a literal is not (analysis.secrets.is_literal): a credential-named key takes only these.
_NOT_LITERAL = {"type": ["object", "array", "boolean", "null"]}


def _refine(node: Any) -> Any:
    """Make pydantic's schema say what `validate` says (see the module docstring)."""
    from floe_runtime.analysis.secrets import CREDENTIAL_KEY_PATTERN

    if isinstance(node, list):
        return [_refine(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _refine(value) for key, value in node.items()}
    if "default" in out and out["default"] is None:
        del out["default"]
    named = out.get("patternProperties")
    if isinstance(named, dict) and len(named) == 1 and isinstance(out.get("propertyNames"), dict):
        # A mapping of profile names: every name must match, and every value is checked
        # (patternProperties alone leaves a misnamed profile unchecked).
        [(pattern, value)] = named.items()
        del out["patternProperties"]
        out["propertyNames"] = {"pattern": pattern, **out["propertyNames"]}
        out["additionalProperties"] = value
    elif (
        out.get("type") == "object"
        and isinstance(out.get("additionalProperties"), dict)
        and "properties" not in out
    ):
        # Free keys (`vars`, `settings`): a key named like a credential takes no literal.
        out["patternProperties"] = {
            CREDENTIAL_KEY_PATTERN: {"allOf": [out["additionalProperties"], _NOT_LITERAL]}
        }
    if out.get("type") == "string" and not {"pattern", "const", "enum"} & out.keys():
        out["$ref"] = f"#/$defs/{_NO_URL_SECRET}"
    return out


def json_schema_text(kind: str) -> str:
    """The schema as stable, indented JSON text (with a trailing newline)."""
    return json.dumps(json_schema(kind), indent=2, sort_keys=False) + "\n"
