"""Generated dbt profiles are accepted by dbt's own profile loading, for every compute type.

duckdb and postgres have their adapter plugins installed: dbt builds their credentials.
snowflake, trino, spark, bigquery and databricks plugins are not installed here, so
dbt's loader is driven as far as it goes without the plugin (Jinja rendering of the
env_var() secrets, target selection, threads) and the rendered output is checked
against the fields each adapter's Credentials class requires.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from floe_runtime.compiler.profiles import profiles_yml
from floe_runtime.config.platform import ComputeProfile

SECRET = "profile-sentinel-6b1e"

CASES: dict[str, tuple[dict[str, Any], set[str]]] = {
    "duckdb": ({"type": "duckdb", "path": "./.floe/x.duckdb", "threads": 2}, {"path"}),
    "postgres": (
        {
            "type": "postgres",
            "host": "127.0.0.1",
            "user": "floe",
            "dbname": "analytics",
            "password": {"secret_ref": "pg-password"},
        },
        {"host", "port", "user", "password", "dbname", "schema"},
    ),
    "snowflake": (
        {
            "type": "snowflake",
            "account": "xy12345.eu-west-1",
            "user": "floe",
            "password": {"secret_ref": "sf-password"},
            "role": "transformer",
            "warehouse": "compute_wh",
            "database": "analytics",
            "schema": "marts",
        },
        {"account", "user", "password", "database", "warehouse", "schema"},
    ),
    "trino": (
        {
            "type": "trino",
            "method": "ldap",
            "host": "trino.internal",
            "user": "floe",
            "password": {"secret_ref": "trino-password"},
            "database": "iceberg",
            "schema": "marts",
        },
        {"method", "host", "port", "user", "password", "database", "schema"},
    ),
    "spark": (
        {
            "type": "spark",
            "method": "http",
            "host": "spark.internal",
            "token": {"secret_ref": "spark-token"},
            "cluster": "0123-abc",
            "schema": "marts",
        },
        {"method", "host", "port", "token", "cluster", "schema"},
    ),
    "bigquery": (
        {
            "type": "bigquery",
            "method": "service-account-json",
            "project": "acme-data",
            "dataset": "marts",
            "keyfile_json": {"secret_ref": "bq-key"},
            "location": "EU",
        },
        {"method", "project", "dataset", "keyfile_json"},
    ),
    "databricks": (
        {
            "type": "databricks",
            "host": "adb-1.azuredatabricks.net",
            "http_path": "/sql/1.0/x",
            "token": {"secret_ref": "dbx-token"},
            "catalog": "main",
            "schema": "marts",
        },
        {"host", "http_path", "token", "schema"},
    ),
}


def _raw_profiles(case: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    profile = TypeAdapter(ComputeProfile).validate_python(case)
    text = profiles_yml(["demo"], "dev", profile, tmp_path)
    assert SECRET not in text
    data: dict[str, Any] = yaml.safe_load(text)
    return data


@pytest.mark.parametrize("kind", sorted(CASES))
def test_generated_profile_loads_with_dbt(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbt.config.profile import Profile
    from dbt.config.renderer import ProfileRenderer
    from dbt.exceptions import DbtRuntimeError
    from dbt.flags import set_from_args

    case, required = CASES[kind]
    secret_value = '{"type": "service_account"}' if kind == "bigquery" else SECRET
    for var in (
        "PG_PASSWORD",
        "SF_PASSWORD",
        "TRINO_PASSWORD",
        "SPARK_TOKEN",
        "BQ_KEY",
        "DBX_TOKEN",
    ):
        monkeypatch.setenv(var, secret_value)
    raw = _raw_profiles(case, tmp_path)
    from argparse import Namespace

    set_from_args(Namespace(), None)
    import os

    from dbt_common.context import set_invocation_context

    set_invocation_context(dict(os.environ))  # what dbt's env_var() reads, as in a dbt run
    renderer = ProfileRenderer({})
    installed = importlib.util.find_spec(f"dbt.adapters.{kind}") is not None
    if installed:
        profile = Profile.from_raw_profiles(raw, "demo", renderer)
        assert profile.target_name == "dev"
        assert profile.credentials.type == kind
        creds = profile.credentials.to_dict()
        for key in required - {"path"}:
            assert key in creds or key in {"dbname"} and "database" in creds, key
        if kind == "postgres":
            assert profile.credentials.password == SECRET  # env_var() rendered at load time
        if kind == "duckdb":
            assert Path(profile.credentials.path).is_absolute()
        return
    # No plugin: dbt renders and selects the target, then stops exactly at the plugin.
    with pytest.raises(DbtRuntimeError, match=f"Could not find adapter type {kind}"):
        Profile.from_raw_profiles(raw, "demo", renderer)
    rendered = renderer.render_data(raw["demo"]["outputs"]["dev"])
    assert rendered["type"] == kind
    assert isinstance(rendered["threads"], int)
    missing = required - set(rendered)
    assert not missing, f"{kind} profile lacks {missing}"
    secret_keys = {"password", "token", "keyfile_json"} & set(rendered)
    for key in secret_keys:
        value = rendered[key]
        assert value == (yaml.safe_load(secret_value) if kind == "bigquery" else SECRET) or (
            isinstance(value, dict) and value.get("type") == "service_account"
        )
