"""The one credential rule: FLOE020 for literals and URL credentials, and how they are masked."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from floe_runtime.analysis import analyze, discover
from floe_runtime.analysis.loader import load_yaml
from floe_runtime.analysis.secrets import (
    looks_like_credential,
    mask_text,
    profile_settings,
    url_secrets,
)
from floe_runtime.cli import cli
from floe_runtime.config.base import SecretRef
from floe_runtime.config.introspect import fields_by_key
from floe_runtime.config.pipeline import Pipeline
from floe_runtime.config.platform import Platform

MakeProject = Callable[..., Path]
SECRET = "Hunter2-s3cr3t"

FLOE = """name: demo
version: "1.0.0"
transforms:
  - type: dbt
    path: ./dbt
"""

DEV = f"""version: "1"
storage:
  default: {{type: local}}
catalogs:
  default:
    type: sql
    uri: "postgresql://floe:{SECRET}@db.internal:5432/catalog"
compute:
  default: {{type: duckdb}}
observability:
  traces: {{exporter: otlp, endpoint: "http://127.0.0.1:4318/?api_key={SECRET}"}}
"""


def _where(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the nth occurrence of `needle`."""
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index)
    return line + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def test_validate_flags_a_password_inside_a_uri_at_the_password(
    make_project: MakeProject,
) -> None:
    root = make_project(FLOE, {"dev": DEV})
    result = CliRunner().invoke(cli, ["validate", str(root)])
    assert result.exit_code == 1
    assert SECRET not in result.output
    uri_line, uri_col = _where(DEV, SECRET, 0)
    endpoint_line, endpoint_col = _where(DEV, SECRET, 1)
    shown = root / "platform" / "dev" / "platform.yaml"
    assert result.stdout.splitlines() == [
        f"{shown}:{uri_line}:{uri_col}: error FLOE020 'uri' has a credential written inside its "
        "URL (postgresql://floe:***@db.internal:5432/catalog); write the URL without it and "
        "give it as `password: {secret_ref: NAME}`",
        f"{shown}:{endpoint_line}:{endpoint_col}: error FLOE020 'endpoint' has a credential "
        "written inside its URL (http://127.0.0.1:4318/?api_key=***); leave it out of the URL "
        "and keep it in a secret",
        "Found 2 errors.",
    ]


def test_validate_json_range_covers_exactly_the_credential(make_project: MakeProject) -> None:
    root = make_project(FLOE, {"dev": DEV})
    result = CliRunner().invoke(cli, ["validate", str(root), "--format", "json"])
    items: list[dict[str, Any]] = json.loads(result.stdout)
    first = next(i for i in items if i["code"] == "FLOE020")
    line, col = _where(DEV, SECRET)
    assert first["range"] == {
        "start": {"line": line - 1, "character": col - 1},
        "end": {"line": line - 1, "character": col - 1 + len(SECRET)},
    }
    assert SECRET not in result.stdout


def test_url_credentials_anywhere_in_either_file(make_project: MakeProject) -> None:
    floe = FLOE + f"    vars: {{source: 'https://ci:{SECRET}@git.internal/repo.git'}}\n"
    dev = DEV.replace(f"floe:{SECRET}@", "floe@").replace(f"?api_key={SECRET}", "")
    dev += f"  lineage: {{transport: http, url: 'https://u:{SECRET}@marquez:5000'}}\n"
    root = make_project(floe, {"dev": dev})
    diags = [d for d in analyze(discover(root)).diagnostics if d.code == "FLOE020"]
    assert sorted((Path(d.file).name, d.range.start.line, d.data["key"]) for d in diags) == [
        ("floe.yaml", 5, "source"),
        ("platform.yaml", 11, "url"),
    ]
    assert all(SECRET not in d.message for d in diags)


@pytest.mark.parametrize(
    "value",
    [
        "sqlite:///.floe/catalog.db",
        "postgresql://floe@db.internal/catalog",  # a user and no password
        "http://127.0.0.1:4318",  # a port is not a password
        "https://h:8181/api/catalog?warehouse=analytics",
        "git+ssh://git@github.com/acme/pipelines.git",
        "a&token=1 outside any URL",
    ],
)
def test_no_credential_in_these_urls(value: str) -> None:
    assert url_secrets(value) == []
    assert mask_text(value) == value


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("https://u:p@ss@h/x", "https://u:***@h/x"),  # an unquoted '@' in the password
        ("http://h/x?sslpassword=zz&X-Amz-Signature=abc&token_type=b", None),
    ],
)
def test_masking(value: str, masked: str | None) -> None:
    expected = masked or "http://h/x?sslpassword=***&X-Amz-Signature=***&token_type=b"
    assert mask_text(value) == expected


def test_profile_settings_mask_by_name_and_by_model() -> None:
    doc = load_yaml(
        "storage:\n"
        "  lake:\n"
        "    type: adls\n"
        "    account_name: acme\n"
        "    container: c\n"
        f"    credentials: {{account_key: {SECRET}}}\n"
        "catalogs:\n"
        f"  lake: {{type: rest, uri: 'https://h/api?token={SECRET}', credentials: "
        f"{{mode: oauth2, client_id: floe, client_secret: {SECRET}}}}}\n",
        "platform.yaml",
    )
    storage = doc.node(("storage", "lake"))
    catalog = doc.node(("catalogs", "lake"))
    assert storage is not None and catalog is not None
    assert profile_settings("storage", storage) == [
        ("account_name", "acme"),
        ("container", "c"),
        ("credentials", "{account_key: ***}"),  # `account_key` is a secret by the model
    ]
    assert profile_settings("catalogs", catalog) == [
        ("uri", "https://h/api?token=***"),
        ("credentials", "{mode: oauth2, client_id: floe, client_secret: ***}"),
    ]


def _fields(model: type[BaseModel]) -> Iterator[tuple[str, Any]]:
    seen: set[type[BaseModel]] = set()

    def visit(m: type[BaseModel]) -> Iterator[tuple[str, Any]]:
        if m in seen:
            return
        seen.add(m)
        for key, info in fields_by_key(m).items():
            yield f"{m.__name__}.{key}", info.annotation
            for arg in _models_in(info.annotation):
                yield from visit(arg)

    yield from visit(model)


def _models_in(tp: Any) -> Iterator[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        yield tp
    for arg in getattr(tp, "__args__", ()) or ():
        yield from _models_in(arg)
    for meta in getattr(tp, "__metadata__", ()) or ():
        yield from _models_in(meta)


@pytest.mark.parametrize("model", [Pipeline, Platform])
def test_every_field_named_like_a_credential_is_a_secret_ref(model: type[BaseModel]) -> None:
    """The name rule and the models agree: no field named like a credential takes plain text.

    Such a field is a secret reference, or a mapping of them (`credentials:`).
    """
    named = [(name, tp) for name, tp in _fields(model) if looks_like_credential(name.split(".")[1])]
    assert [name for name, tp in named if not list(_models_in(tp))] == []
    if model is Platform:  # the walk does reach the credential fields
        assert SecretRef in set(_models_in(dict(named)["OAuth2Auth.client_secret"]))
    else:  # floe.yaml holds no credentials at all
        assert named == []
