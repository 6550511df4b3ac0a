"""dbt profiles.yml generation: one translator per compute type, secrets as env_var()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from floe_runtime.compiler.profiles import dbt_output, profiles_yml
from floe_runtime.config.platform import ComputeProfile

ADAPTER: TypeAdapter[Any] = TypeAdapter(ComputeProfile)

CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "duckdb": (
        {"type": "duckdb", "path": "./x.duckdb", "threads": 2, "extensions": ["httpfs"]},
        {"type": "duckdb", "threads": 2, "extensions": ["httpfs"]},
    ),
    "postgres": (
        {
            "type": "postgres",
            "host": "h",
            "user": "u",
            "dbname": "d",
            "schema": "s",
            "password": {"secret_ref": "pg-password"},
            "sslmode": "require",
        },
        {
            "type": "postgres",
            "host": "h",
            "port": 5432,
            "user": "u",
            "dbname": "d",
            "schema": "s",
            "password": "{{ env_var('DBT_ENV_SECRET_PG_PASSWORD') }}",
            "sslmode": "require",
        },
    ),
    "snowflake": (
        {
            "type": "snowflake",
            "account": "a",
            "user": "u",
            "warehouse": "w",
            "database": "d",
            "schema": "s",
            "password": {"secret_ref": "sf-password"},
            "role": "r",
        },
        {
            "type": "snowflake",
            "account": "a",
            "user": "u",
            "warehouse": "w",
            "database": "d",
            "schema": "s",
            "password": "{{ env_var('DBT_ENV_SECRET_SF_PASSWORD') }}",
            "role": "r",
        },
    ),
    "trino": (
        {
            "type": "trino",
            "method": "ldap",
            "host": "t",
            "user": "u",
            "database": "iceberg",
            "schema": "s",
            "password": {"secret_ref": "trino-pw"},
        },
        {
            "type": "trino",
            "method": "ldap",
            "host": "t",
            "port": 443,
            "user": "u",
            "database": "iceberg",
            "schema": "s",
            "http_scheme": "https",
            "password": "{{ env_var('DBT_ENV_SECRET_TRINO_PW') }}",
        },
    ),
    "spark": (
        {
            "type": "spark",
            "method": "http",
            "host": "h",
            "schema": "s",
            "cluster": "c",
            "token": {"secret_ref": "spark-token"},
        },
        {
            "type": "spark",
            "method": "http",
            "host": "h",
            "port": 443,
            "schema": "s",
            "cluster": "c",
            "token": "{{ env_var('DBT_ENV_SECRET_SPARK_TOKEN') }}",
        },
    ),
    "bigquery": (
        {
            "type": "bigquery",
            "method": "service-account-json",
            "project": "p",
            "dataset": "d",
            "keyfile_json": {"secret_ref": "bq-key"},
        },
        {
            "type": "bigquery",
            "method": "service-account-json",
            "project": "p",
            "dataset": "d",
            "keyfile_json": {
                field: "{{ env_var('DBT_ENV_SECRET_BQ_KEY__" + field.upper() + "', '') }}"
                for field in ("type", "project_id", "private_key", "client_email", "token_uri")
            },
        },
    ),
    "databricks": (
        {
            "type": "databricks",
            "host": "h",
            "http_path": "/sql/1",
            "schema": "s",
            "catalog": "main",
            "token": {"secret_ref": "dbx-token"},
        },
        {
            "type": "databricks",
            "host": "h",
            "http_path": "/sql/1",
            "schema": "s",
            "catalog": "main",
            "token": "{{ env_var('DBT_ENV_SECRET_DBX_TOKEN') }}",
        },
    ),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_compute_type_maps_to_its_adapter_fields(kind: str, tmp_path: Path) -> None:
    source, expected = CASES[kind]
    output = dbt_output(ADAPTER.validate_python(source), tmp_path)
    for key, value in expected.items():
        if isinstance(value, dict):  # BigQuery's keyfile_json: these fields among others
            assert value.items() <= output[key].items(), key
            continue
        assert output[key] == value, key
    assert "threads" in output


def test_duckdb_paths_are_made_absolute(tmp_path: Path) -> None:
    relative = dbt_output(
        ADAPTER.validate_python({"type": "duckdb", "path": "./a/b.duckdb"}), tmp_path
    )
    assert relative["path"] == str(tmp_path / "a" / "b.duckdb")
    memory = dbt_output(ADAPTER.validate_python({"type": "duckdb", "path": ":memory:"}), tmp_path)
    assert memory["path"] == ":memory:"


def test_profiles_yml_defines_each_profile_once(tmp_path: Path) -> None:
    compute = ADAPTER.validate_python({"type": "duckdb"})
    text = profiles_yml(["a", "b", "a"], "prod", compute, tmp_path)
    doc = yaml.safe_load(text)
    assert list(doc) == ["a", "b"]
    assert doc["a"] == {"target": "prod", "outputs": {"prod": dbt_output(compute, tmp_path)}}


def test_duckdb_secret_setting_is_resolved_by_dbt_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    from argparse import Namespace

    from dbt.config.profile import Profile
    from dbt.config.renderer import ProfileRenderer
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    compute = ADAPTER.validate_python(
        {
            "type": "duckdb",
            "path": ":memory:",
            "settings": {
                "s3_region": "eu-west-1",
                "s3_secret_access_key": {"secret_ref": "lake-secret"},
            },
        }
    )
    raw = yaml.safe_load(profiles_yml(["demo"], "dev", compute, tmp_path))
    settings = raw["demo"]["outputs"]["dev"]["settings"]
    assert settings["s3_secret_access_key"] == "{{ env_var('DBT_ENV_SECRET_LAKE_SECRET') }}"
    monkeypatch.setenv("DBT_ENV_SECRET_LAKE_SECRET", "lake-sentinel-5d0c")  # what a run sets
    set_from_args(Namespace(), None)
    set_invocation_context(dict(os.environ))  # what dbt's env_var() reads, as in a dbt run
    profile = Profile.from_raw_profiles(raw, "demo", ProfileRenderer({}))
    assert profile.credentials.type == "duckdb"
    assert profile.credentials.settings == {
        "s3_region": "eu-west-1",
        "s3_secret_access_key": "lake-sentinel-5d0c",
    }
