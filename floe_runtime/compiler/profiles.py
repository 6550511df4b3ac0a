"""Generate dbt `profiles.yml` from a resolved compute profile.

One translator per compute type, mapping floe's field names to the dbt
adapter's. Secrets become `{{ env_var('NAME') }}` with NAME the variable a run
sets from the resolved secret; the value itself is never written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from floe_runtime.config.base import SecretRef
from floe_runtime.config.platform import (
    BigQueryCompute,
    ComputeProfile,
    DatabricksCompute,
    DuckDBCompute,
    PostgresCompute,
    SnowflakeCompute,
    SparkCompute,
    TrinoCompute,
)


def env_var_ref(secret: SecretRef) -> str:
    """The dbt Jinja that reads a secret from the environment at run time."""
    return "{{ env_var('" + secret.env_var + "') }}"


def _resolve(path: str, root: Path) -> str:
    if path == ":memory:" or path.startswith("md:"):
        return path
    candidate = Path(path).expanduser()
    return str(candidate if candidate.is_absolute() else (root / candidate).resolve())


def _duckdb(p: DuckDBCompute, root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "duckdb", "path": _resolve(p.path, root), "threads": p.threads}
    if p.extensions:
        out["extensions"] = list(p.extensions)
    if p.settings:
        out["settings"] = dict(p.settings)
    return out


def _postgres(p: PostgresCompute, root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "postgres",
        "host": p.host,
        "port": p.port,
        "user": p.user,
        "password": env_var_ref(p.password) if p.password else "",
        "dbname": p.dbname,
        "schema": p.schema_,
        "threads": p.threads,
    }
    if p.sslmode:
        out["sslmode"] = p.sslmode
    return out


def _snowflake(p: SnowflakeCompute, root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "snowflake",
        "account": p.account,
        "user": p.user,
        "warehouse": p.warehouse,
        "database": p.database,
        "schema": p.schema_,
        "threads": p.threads,
    }
    if p.password:
        out["password"] = env_var_ref(p.password)
    if p.private_key:
        out["private_key"] = env_var_ref(p.private_key)
    if p.authenticator:
        out["authenticator"] = p.authenticator
    if p.role:
        out["role"] = p.role
    return out


def _trino(p: TrinoCompute, root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "trino",
        "method": p.method,
        "host": p.host,
        "port": p.port,
        "user": p.user,
        "database": p.database,
        "schema": p.schema_,
        "http_scheme": p.http_scheme,
        "threads": p.threads,
    }
    if p.password:
        out["password"] = env_var_ref(p.password)
    if p.jwt_token:
        out["jwt_token"] = env_var_ref(p.jwt_token)
    return out


def _spark(p: SparkCompute, root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "spark",
        "method": p.method,
        "schema": p.schema_,
        "threads": p.threads,
    }
    if p.host:
        out["host"] = p.host
        out["port"] = p.port
    if p.user:
        out["user"] = p.user
    if p.token:
        out["token"] = env_var_ref(p.token)
    if p.cluster:
        out["cluster"] = p.cluster
    return out


def _bigquery(p: BigQueryCompute, root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "bigquery",
        "method": p.method,
        "project": p.project,
        "dataset": p.dataset,
        "threads": p.threads,
    }
    if p.keyfile_json:
        # dbt-bigquery reads keyfile_json as a mapping; the env var holds the JSON text.
        out["keyfile_json"] = "{{ env_var('" + p.keyfile_json.env_var + "') | as_native }}"
    if p.location:
        out["location"] = p.location
    return out


def _databricks(p: DatabricksCompute, root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "databricks",
        "host": p.host,
        "http_path": p.http_path,
        "token": env_var_ref(p.token),
        "schema": p.schema_,
        "threads": p.threads,
    }
    if p.catalog:
        out["catalog"] = p.catalog
    return out


_TRANSLATORS: dict[type[Any], Callable[[Any, Path], dict[str, Any]]] = {
    DuckDBCompute: _duckdb,
    PostgresCompute: _postgres,
    SnowflakeCompute: _snowflake,
    TrinoCompute: _trino,
    SparkCompute: _spark,
    BigQueryCompute: _bigquery,
    DatabricksCompute: _databricks,
}


def dbt_output(profile: ComputeProfile, root: Path) -> dict[str, Any]:
    """The dbt output (one target) for a compute profile; paths made absolute against `root`."""
    return _TRANSLATORS[type(profile)](profile, root)


def profiles_yml(profile_names: list[str], target: str, profile: ComputeProfile, root: Path) -> str:
    """The text of a dbt profiles.yml defining each profile name with one target."""
    output = dbt_output(profile, root)
    doc: dict[str, Any] = {}
    for name in dict.fromkeys(profile_names):
        doc[name] = {"target": target, "outputs": {target: output}}
    header = (
        "# Generated by floe-runtime from platform.yaml; do not edit.\n"
        "# Secrets are read from environment variables at run time.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
