"""JSON Schema (draft 2020-12) of floe.yaml and platform.yaml, generated from the models.

Editors without the floe language server (Red Hat's yaml-language-server, for
one) validate and complete from these.
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
    schema = _model(kind).model_json_schema(by_alias=True, mode="validation")
    return {"$schema": DIALECT, "$id": SCHEMA_IDS[kind], **schema}


def json_schema_text(kind: str) -> str:
    """The schema as stable, indented JSON text (with a trailing newline)."""
    return json.dumps(json_schema(kind), indent=2, sort_keys=False) + "\n"
