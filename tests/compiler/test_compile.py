"""compile: one environment resolved into CompiledArtifacts, secrets kept as references."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from floe_runtime.analysis import discover
from floe_runtime.compiler import CompileError, compile_project, load_artifacts, write_artifacts


def test_dev_resolves_embedded_profiles(example: Path) -> None:
    artifacts = compile_project(discover(example), "dev")
    assert artifacts.environment == "dev"
    assert (
        artifacts.storage.profile.type,
        artifacts.catalog.profile.type,
        artifacts.compute.profile.type,
    ) == ("local", "sql", "duckdb")
    [target] = artifacts.dbt
    assert target.profile_name == "customer_analytics"
    assert target.namespace == "analytics"
    assert Path(target.project_dir) == example / "dbt"
    assert (
        artifacts.source_hashes["floe.yaml"]
        == hashlib.sha256((example / "floe.yaml").read_bytes()).hexdigest()
    )
    profiles = yaml.safe_load(artifacts.profiles_yml)
    output = profiles["customer_analytics"]["outputs"]["dev"]
    assert profiles["customer_analytics"]["target"] == "dev"
    assert output == {
        "type": "duckdb",
        "path": str(example / ".floe" / "floe.duckdb"),
        "threads": 4,
    }


def test_prod_keeps_secrets_as_references(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_PASSWORD", "sentinel-value-123")
    artifacts = compile_project(discover(example), "prod")
    text = artifacts.model_dump_json()
    assert "sentinel-value-123" not in text
    assert artifacts.secret_refs == [
        "lake-key-id",
        "lake-secret",
        "polaris-oauth-secret",
        "pg-password",
    ]
    output = yaml.safe_load(artifacts.profiles_yml)["customer_analytics"]["outputs"]["prod"]
    assert output["password"] == "{{ env_var('DBT_ENV_SECRET_PG_PASSWORD') }}"
    assert output["schema"] == "public"
    dumped = json.loads(artifacts.model_dump_json(by_alias=True))
    assert dumped["compute"]["profile"]["password"] == {"secret_ref": "pg-password"}


def test_refuses_on_errors(example: Path) -> None:
    floe = example / "floe.yaml"
    floe.write_text(floe.read_text().replace("catalog: default", "catalog: nope"))
    with pytest.raises(CompileError) as exc:
        compile_project(discover(example), "dev")
    assert [d.code for d in exc.value.diagnostics] == ["FLOE010"]


def test_needs_an_environment_choice(example: Path) -> None:
    with pytest.raises(CompileError, match="choose one with --env"):
        compile_project(discover(example))


def test_write_and_load_round_trip(example: Path, tmp_path: Path) -> None:
    artifacts = compile_project(discover(example), "prod")
    artifacts_path, profiles_path = write_artifacts(artifacts, tmp_path / "out")
    assert load_artifacts(artifacts_path) == artifacts
    assert profiles_path.read_text() == artifacts.profiles_yml
    assert json.loads(artifacts_path.read_text())["schema_version"] == "1"


def test_compiled_artifacts_json_masks_credentials_inside_urls(
    example: Path, tmp_path: Path
) -> None:
    """validate refuses such URLs in the files (FLOE020); artifacts built another way (a
    library caller, a model's settings) are still written with them masked by that rule."""
    from floe_runtime.compiler.artifacts import ResolvedCatalog
    from floe_runtime.config.platform import RestCatalog, SqlCatalog

    artifacts = compile_project(discover(example), "prod")
    pipeline = artifacts.pipeline.model_copy(
        update={"description": "mirrors https://mirror:desc-sentinel@files.acme.org/raw"}
    )
    sql = artifacts.model_copy(
        update={
            "pipeline": pipeline,
            "catalog": ResolvedCatalog(
                name="default",
                profile=SqlCatalog(type="sql", uri="postgresql://floe:pg-sentinel@db/iceberg"),
            ),
        }
    )
    rest = artifacts.model_copy(
        update={
            "catalog": ResolvedCatalog(
                name="default",
                profile=RestCatalog(
                    type="rest",
                    uri="https://cat.acme.org/api?token=tok-sentinel&v=2",
                    properties={"header.X-Mirror": "https://u:prop-sentinel@mirror.acme.org"},
                ),
            )
        }
    )
    sql_path, _ = write_artifacts(sql, tmp_path / "sql")
    rest_path, _ = write_artifacts(rest, tmp_path / "rest")
    sql_text, rest_text = sql_path.read_text(), rest_path.read_text()
    for sentinel in ("desc-sentinel", "pg-sentinel", "tok-sentinel", "prop-sentinel"):
        assert sentinel not in sql_text + rest_text
    written = json.loads(sql_text)
    assert written["catalog"]["profile"]["uri"] == "postgresql://floe:***@db/iceberg"
    assert written["pipeline"]["description"] == ("mirrors https://mirror:***@files.acme.org/raw")
    written = json.loads(rest_text)
    assert written["catalog"]["profile"]["uri"] == "https://cat.acme.org/api?token=***&v=2"
    assert written["catalog"]["profile"]["properties"] == {
        "header.X-Mirror": "https://u:***@mirror.acme.org"
    }
    # The rest is written as it is: the round trip of artifacts without such URLs holds.
    assert (
        json.loads(sql_text)["compute"]
        == artifacts.model_dump(mode="json", by_alias=True)["compute"]
    )


DUCKDB_WITH_SECRET_SETTING = """version: "1"
storage:
  default: {type: local}
catalogs:
  default: {type: sql}
compute:
  default:
    type: duckdb
    settings:
      s3_region: eu-west-1
      s3_secret_access_key: {secret_ref: lake-secret}
"""


def test_duckdb_secret_setting_compiles_to_env_var(
    make_project: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKE_SECRET", "lake-sentinel-93f2")  # resolved at run time, never here
    root = make_project(
        'name: demo\nversion: "1.0.0"\ntransforms:\n  - type: dbt\n    path: ./dbt\n',
        {"dev": DUCKDB_WITH_SECRET_SETTING},
    )
    artifacts = compile_project(discover(root), "dev")
    output = yaml.safe_load(artifacts.profiles_yml)["p"]["outputs"]["dev"]
    assert output["settings"] == {
        "s3_region": "eu-west-1",
        "s3_secret_access_key": "{{ env_var('DBT_ENV_SECRET_LAKE_SECRET') }}",
    }
    assert artifacts.secret_refs == ["lake-secret"]
    artifacts_path, profiles_path = write_artifacts(artifacts, tmp_path / "out")
    for text in (
        artifacts.model_dump_json(),
        artifacts_path.read_text(),
        profiles_path.read_text(),
    ):
        assert "lake-sentinel-93f2" not in text
    assert load_artifacts(artifacts_path) == artifacts


def test_a_local_warehouse_is_its_folder_as_written_not_percent_encoded(tmp_path: Path) -> None:
    from floe_runtime.compiler.catalog import catalog_properties, storage_location
    from floe_runtime.config.platform import LocalStorage, SqlCatalog

    root = tmp_path / "my proj"
    storage = LocalStorage(type="local", path="./.floe/warehouse")
    assert storage_location(storage, root) == f"file://{root}/.floe/warehouse"
    catalog = SqlCatalog(type="sql", uri="sqlite:///c.db", warehouse="./w h")
    assert catalog_properties(storage, catalog, root, str)["warehouse"] == f"file://{root}/w h"
