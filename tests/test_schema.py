"""The JSON Schemas: generated from the models, usable by other YAML tools, kept in sync."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from floe_runtime.config.pipeline import Pipeline
from floe_runtime.config.platform import Platform
from floe_runtime.schema import json_schema, json_schema_text
from tests.conftest import EXAMPLE, REPO

FILES = {
    "floe": [EXAMPLE / "floe.yaml"],
    "platform": [
        EXAMPLE / "platform" / "dev" / "platform.yaml",
        EXAMPLE / "platform" / "prod" / "platform.yaml",
    ],
}


@pytest.mark.parametrize("kind", ["floe", "platform"])
def test_schema_is_valid_2020_12_and_accepts_the_example(kind: str) -> None:
    schema = json_schema(kind)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    for path in FILES[kind]:
        assert [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))] == []


def test_schema_rejects_what_the_models_reject() -> None:
    validator = Draft202012Validator(json_schema("platform"))
    bad = {
        "version": "1",
        "compute": {
            "w": {
                "type": "postgres",
                "host": "h",
                "user": "u",
                "dbname": "d",
                "password": "literal",
            }
        },
    }
    assert list(validator.iter_errors(bad))
    validator = Draft202012Validator(json_schema("floe"))
    assert list(
        validator.iter_errors({"name": "x", "version": "1.0.0", "transforms": [], "extra": 1})
    )


@pytest.mark.parametrize("kind", ["floe", "platform"])
def test_committed_schemas_are_up_to_date(kind: str) -> None:
    committed = (REPO / "schemas" / f"{kind}.schema.json").read_text()
    assert committed == json_schema_text(kind), (
        "run: floe-runtime schema KIND -o schemas/KIND.schema.json"
    )


def _schema_fields(schema: dict[str, Any]) -> set[tuple[str, str]]:
    defs = schema.get("$defs", {})
    out = {(schema["title"], key) for key in schema.get("properties", {})}
    for definition in defs.values():
        for key in definition.get("properties", {}):
            out.add((definition["title"], key))
    return out


def _model_fields(root: type[BaseModel]) -> set[tuple[str, str]]:
    seen: set[type[BaseModel]] = set()
    out: set[tuple[str, str]] = set()

    def nested(annotation: Any) -> Iterator[type[BaseModel]]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield annotation
        for arg in getattr(annotation, "__args__", ()) or ():
            yield from nested(arg)
        for meta in getattr(annotation, "__metadata__", ()) or ():
            yield from nested(meta)

    def visit(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        title = model.model_config.get("title") or model.__name__
        for name, info in model.model_fields.items():
            out.add((title, info.alias or name))
            for child in nested(info.annotation):
                visit(child)

    visit(root)
    return out


@pytest.mark.parametrize(("kind", "model"), [("floe", Pipeline), ("platform", Platform)])
def test_schema_and_models_have_the_same_fields(kind: str, model: type[BaseModel]) -> None:
    assert _schema_fields(json_schema(kind)) == _model_fields(model)


@pytest.mark.parametrize("kind", ["floe", "platform"])
def test_every_schema_property_has_a_description(kind: str) -> None:
    schema = json.loads(json_schema_text(kind))
    missing = []
    for definition in [schema, *schema.get("$defs", {}).values()]:
        for key, prop in definition.get("properties", {}).items():
            if "description" not in prop:
                missing.append(f"{definition['title']}.{key}")
    assert missing == []


def test_schema_takes_a_secret_ref_as_a_duckdb_setting() -> None:
    validator = Draft202012Validator(json_schema("platform"))

    def errors(value: Any) -> list[str]:
        doc = {
            "version": "1",
            "compute": {
                "default": {
                    "type": "duckdb",
                    "settings": {"s3_region": "eu-west-1", "s3_secret_access_key": value},
                }
            },
        }
        return [e.message for e in validator.iter_errors(doc)]

    assert errors({"secret_ref": "lake-secret"}) == []
    assert errors({"secret_ref": "lake-secret", "value": "x"})
    assert errors({"secret_ref": "Not A Name"})
