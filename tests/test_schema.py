"""The JSON Schemas: generated from the models, usable by other YAML tools, kept in sync."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
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


# ---------------------------------------------------------------- the schema agrees with validate
#
# yaml-language-server reads YAML 1.2 and checks the JSON Schema; `validate` reads YAML 1.2
# and checks the models strictly. On every file both must say "valid" or both "invalid",
# wherever a schema can express the rule. It cannot express: cron and time zone checks,
# the checks between fields (a Spark `host` for its `method`), and `threads: 4.0` (for JSON
# Schema 4.0 is an integer; `validate` wants it written 4).

SHOP = REPO / "tests" / "runtime" / "projects" / "shop"
FIXTURES = {
    "floe": [EXAMPLE / "floe.yaml", SHOP / "floe.yaml"],
    "platform": [*FILES["platform"], SHOP / "platform.yaml"],
}
#: What the schema can say: syntax, keys, values, literal credentials. Not FLOE010/030/040.
SCHEMA_CODES = {"FLOE001", "FLOE002", "FLOE003", "FLOE004", "FLOE005", "FLOE020"}


def _yaml_1_2(text: str) -> Any:
    """The text as a YAML 1.2 (core schema) reader such as yaml-language-server's reads it."""
    import yamlcore

    def keys_as_text(value: Any) -> Any:  # JSON (and yaml-language-server) keys are strings
        if isinstance(value, dict):
            return {str(k): keys_as_text(v) for k, v in value.items()}
        if isinstance(value, list):
            return [keys_as_text(v) for v in value]
        return value

    return keys_as_text(yaml.load(text, Loader=yamlcore.CCoreLoader))  # noqa: S506


_VALIDATORS = {kind: Draft202012Validator(json_schema(kind)) for kind in ("floe", "platform")}


def schema_errors(kind: str, text: str) -> list[str]:
    """What jsonschema says of the file, read as YAML 1.2."""
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _VALIDATORS[kind].iter_errors(_yaml_1_2(text))
    ]


def validate_errors(kind: str, text: str) -> list[str]:
    """What the engine's validate says of the file on its own (the schema's share of it)."""
    from floe_runtime.analysis.engine import check_pipeline_text, check_platform_text

    check = check_pipeline_text if kind == "floe" else check_platform_text
    return [
        f"{d.code} {d.message}"
        for d in check(text, f"{kind}.yaml").diagnostics
        if d.code in SCHEMA_CODES
    ]


def _fixture(kind: str, index: int = 0) -> str:
    return FIXTURES[kind][index].read_text(encoding="utf-8")


PROD = 1  # FIXTURES["platform"][1] is the example's prod platform.yaml
# (kind, fixture index, text replaced, replacement, valid?)
VARIANTS: list[tuple[str, int, str, str, bool]] = [
    ("floe", 0, "lineage: true", "lineage: yes", False),  # a string in YAML 1.2
    ("floe", 0, "traces: true", 'traces: "true"', False),
    ("floe", 0, "team: growth", "team: on", True),  # ... where a string is wanted, fine
    ("floe", 0, "description: Revenue", "description: yes Revenue", True),
    ("floe", 0, 'version: "1.0.0"', "version: 1.0", False),
    ("floe", 0, 'version: "1.0.0"', "version: 1.0.0", True),  # a string already
    ("floe", 0, "name: customer-analytics", "name: Customer Analytics", False),
    ("floe", 0, "catalog: default", 'catalog: "my profile"', False),
    ("floe", 0, "    namespace: analytics", "    namespace: analytics\n    vars: {api_token: abc}", False),
    ("floe", 0, "    namespace: analytics", "    namespace: analytics\n    vars: {n: 0o17, t: ~}", True),
    ("floe", 0, "    namespace: analytics", "    namespace: analytics\n    selekt: x", False),
    ("floe", 0, "    path: ./dbt\n", "", False),  # a missing key
    ("floe", 0, "team: growth", "team: https://ci:hunter2@git.acme/x.git", False),
    ("floe", 1, "  - type: dbt", "  - type: dbt\n    select: yes", True),
    ("platform", PROD, "port: 5432", 'port: "5432"', False),
    ("platform", PROD, "port: 5432", "port: 0o17", True),
    ("platform", PROD, "port: 5432", "port: 1_000", False),  # a YAML 1.1 number only
    ("platform", PROD, "port: 5432", "port: 70000", False),
    ("platform", PROD, "threads: 8", "threads: true", False),
    ("platform", PROD, "threads: 8", 'threads: "8"', False),
    ("platform", PROD, "region: eu-west-1", "region: ~", True),
    ("platform", PROD, "region: eu-west-1", "region:", True),
    ("platform", PROD, "region: eu-west-1", "region: eu-west-1\n    path_style_access: yes", False),
    ("platform", PROD, "region: eu-west-1", "region: eu-west-1\n    path_style_access: TRUE", True),
    ("platform", PROD, "region: eu-west-1", "bukket: x", False),
    ("platform", PROD, "type: s3", "type: s4", False),
    ("platform", PROD, "    host: warehouse.acme.internal\n", "", False),
    ("platform", PROD, "schema: public", "schema: public\n    sslmode: sometimes", False),
    ("platform", PROD, "schema: public", "schema: public\n    sslmode: require", True),
    ("platform", PROD, "password: {secret_ref: pg-password}", "password: hunter2", False),
    ("platform", PROD, "password: {secret_ref: pg-password}", "password: {secret_ref: PG}", False),
    ("platform", PROD, "{secret_ref: pg-password}", "{secret_ref: pg-password, v: 1}", False),
    ("platform", PROD, "client_secret: {secret_ref: polaris-oauth-secret}", "client_secret: x", False),
    ("platform", PROD, "uri: https://polaris", "uri: https://floe:hunter2@polaris", False),
    ("platform", PROD, "uri: https://polaris.acme.internal/api/catalog", "uri: 'https://h/api?token=x'", False),
    ("platform", PROD, "uri: https://polaris", "uri: https://floe@polaris", True),
    ("platform", PROD, "version: \"1\"", "version: 1", False),
    ("platform", PROD, "compute:\n  default:", 'compute:\n  "my profile":', False),
    ("platform", PROD, "compute:\n  default:", "compute:\n  warehouse_2:", True),
    ("platform", PROD, "storage:\n  default:", "storage:\n  x y: {type: local, bogus: 1}\n  default:", False),
    ("platform", 0, "threads: 4", "threads: 4\n    settings: {s3_region: eu, s3_secret_access_key: x}", False),
    ("platform", 0, "threads: 4", "threads: 4\n    settings: {s3_secret_access_key: {secret_ref: k}, x: true}", True),
    ("platform", 0, "threads: 4", "threads: 4\n    extensions: [httpfs, 'https://u:p@h/x']", False),
    ("platform", 0, "exporter: file", "exporter: otlp\n    endpoint: http://c:4318\n    timeout_seconds: 0", False),
    ("platform", 0, "exporter: file", "exporter: otlp\n    endpoint: http://c:4318\n    timeout_seconds: '2'", False),
    ("platform", 0, "storage:\n", "storage:\n", True),
    ("platform", 2, "threads: 4", "threads: 4, settings: {enable_progress_bar: on}", True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "index", "old", "new", "valid"),
    VARIANTS,
    ids=[f"{k}-{n.strip()[:40]}" for k, _, _, n, _ in VARIANTS],
)
def test_schema_and_validate_agree_on_each_variant(
    kind: str, index: int, old: str, new: str, valid: bool
) -> None:
    base = _fixture(kind, index)
    assert old in base, f"variant out of date: {old!r} is not in {FIXTURES[kind][index]}"
    text = base.replace(old, new, 1)
    engine, schema = validate_errors(kind, text), schema_errors(kind, text)
    assert (engine == [], schema == []) == (valid, valid), f"validate: {engine}\nschema: {schema}"


@pytest.mark.parametrize("kind", ["floe", "platform"])
@settings(max_examples=300, deadline=None, database=None)
@given(data=st.data())
def test_schema_and_validate_agree_on_any_scalar_written_anywhere(
    kind: str, data: st.DataObject
) -> None:
    """Replace one value of a fixture by a YAML scalar that readers take differently."""
    from floe_runtime.analysis.loader import load_yaml, scalar_value

    base = data.draw(st.sampled_from(FIXTURES[kind])).read_text(encoding="utf-8")
    doc = load_yaml(base, "f.yaml")
    assert doc.root is not None
    places = [
        (path, node)
        for path, node in doc.root.walk()
        if node.kind == "scalar"
        and node.range.start.line == node.range.end.line
        and path[-2:] not in (("schedule", "cron"), ("schedule", "timezone"))  # not expressible
    ]
    path, node = data.draw(st.sampled_from(places), label="place")
    written = data.draw(st.sampled_from(SCALARS), label="value")
    value = scalar_value(written)
    assume(not (isinstance(value, float) and value.is_integer()))  # `threads: 4.0`, see above
    lines = base.split("\n")
    rng = node.range
    line = lines[rng.start.line]
    lines[rng.start.line] = line[: rng.start.character] + written + line[rng.end.character :]
    text = "\n".join(lines)
    engine, schema = validate_errors(kind, text), schema_errors(kind, text)
    assume(not any(e.startswith("FLOE001") for e in engine))  # both parsers must read it
    assert (engine == []) == (schema == []), (
        f"{path}={written}\nvalidate: {engine}\nschema: {schema}"
    )


# Scalars YAML 1.1 and 1.2 read differently, quoted look-alikes, and values of every type.
SCALARS = [
    "yes", "no", "on", "off", "y", "n", "true", "false", "True", "FALSE", '"true"', "'yes'",
    "5432", '"5432"', "'8'", "0o17", "017", "0x1f", "1_000", "-1", "+3", "0", "1.5", "'2.5'",
    "1e3", ".5", ".inf", "~", "null", "Null", "''", '""', "abc", "a b", "2024-01-01", "1:30",
    "'1'", "1", "1.0.0", "'1.0.0'", "local", "s3", "oauth2", "otlp", "sql", "[]", "{}",
    "{secret_ref: pg-password}", "{secret_ref: Bad Name}", "postgresql://u:pw@h/db",
    "postgresql://u@h/db", "'http://h/x?token=t'", "http://127.0.0.1:4318",
]  # fmt: skip


def test_no_snippet_placeholder_is_null() -> None:
    """yaml-language-server inserts a property's `default`: never `null`, nor in defaultSnippets."""

    def walk(node: Any, where: str) -> Iterator[str]:
        if isinstance(node, dict):
            if "default" in node and node["default"] is None:
                yield f"{where}/default"
            for snippet in node.get("defaultSnippets", []):
                if "null" in json.dumps(snippet.get("body")):
                    yield f"{where}/defaultSnippets"
            for key, value in node.items():
                yield from walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{where}/{index}")

    for kind in ("floe", "platform"):
        committed = json.loads((REPO / "schemas" / f"{kind}.schema.json").read_text())
        assert list(walk(committed, kind)) == []


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        yield from (node.get("patternProperties") or {})
        for value in node.values():
            yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


def test_schema_patterns_mean_the_same_to_ecmascript() -> None:
    """yaml-language-server runs the patterns as JavaScript `RegExp(p, "u")`; Python as `re`."""
    import re
    import shutil
    import subprocess

    node = shutil.which("node")
    assert node is not None, "node is needed (it runs yaml-language-server and the VS Code test)"
    patterns = sorted({p for kind in ("floe", "platform") for p in _patterns(json_schema(kind))})
    samples = [
        "postgresql://floe:pw@db/cat", "postgresql://floe@db/cat", "https://h:8181/api?token=t",
        "https://h/x?token_type=b", "http://u:p@ss@h/x", "git@github.com:a/b", "client_secret",
        "secret_ref", "token_endpoint", "s3_secret_access_key", "API_KEY", "access_key_id",
        "customer-analytics", "1.0.0", "1.0", "lake_2", "my profile", "analytics.core", "pg-password",
        "Bad Name", "", "a\nb", "naïve", "x" * 70,
    ]  # fmt: skip
    python = [[re.search(p, s) is not None for s in samples] for p in patterns]
    script = (
        "const [ps, ss] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(ps.map(p => ss.map(s => new RegExp(p, 'u').test(s)))));"
    )
    done = subprocess.run(
        [node, "-e", script],
        input=json.dumps([patterns, samples]),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert len(patterns) >= 5
    assert json.loads(done.stdout) == python
