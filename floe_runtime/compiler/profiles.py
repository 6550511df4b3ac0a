"""Generate dbt `profiles.yml` from a resolved compute profile.

floe's compute fields carry the dbt adapters' own names, so one mapping serves
every type. Secrets become `{{ env_var('DBT_ENV_SECRET_NAME') }}`, the variable a
run sets from the resolved secret; the value itself is never written. dbt treats
`DBT_ENV_SECRET_*` variables as secrets: it scrubs their values from its logs and
artifacts and refuses them anywhere but profiles (so no model can copy one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from floe_runtime.config.base import SecretRef, secret_env_var
from floe_runtime.config.platform import (
    BigQueryCompute,
    ComputeProfile,
    DuckDBCompute,
    PostgresCompute,
    SparkCompute,
)

#: The prefix dbt reads as "this variable is a secret".
DBT_SECRET_PREFIX = "DBT_ENV_SECRET_"


def dbt_secret_env_var(name: str) -> str:
    """The variable a dbt process reads the secret `name` from (`pg-password` →
    `DBT_ENV_SECRET_PG_PASSWORD`); the user sets `PG_PASSWORD` (or a file), floe hands it on."""
    return DBT_SECRET_PREFIX + secret_env_var(name)


def env_var_ref(secret: SecretRef) -> str:
    """The dbt Jinja that reads a secret from the environment at run time."""
    return secret_jinja(secret.secret_ref)


def secret_jinja(name: str) -> str:
    """The dbt Jinja that reads the secret called `name` from the environment at run time."""
    return "{{ env_var('" + dbt_secret_env_var(name) + "') }}"


def _with_env_vars(value: Any) -> Any:
    """`value` with every secret in it, at any depth (DuckDB `settings`), as an env_var() call."""
    if isinstance(value, SecretRef):
        return env_var_ref(value)
    if isinstance(value, dict):
        return {key: _with_env_vars(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_env_vars(item) for item in value]
    return value


def _resolve(path: str, root: Path) -> str:
    if path == ":memory:" or path.startswith("md:"):
        return path
    candidate = Path(path).expanduser()
    return str(candidate if candidate.is_absolute() else (root / candidate).resolve())


def dbt_output(profile: ComputeProfile, root: Path) -> dict[str, Any]:
    """The dbt output (one target) for a compute profile; paths made absolute against `root`.

    floe's field names are the dbt adapters' own (that is how the models were
    written), so one loop maps every type: unset fields are left out and secrets,
    nested ones too, become `env_var()` calls. Only what differs per adapter is spelled out below.
    """
    out: dict[str, Any] = {}
    for name, info in type(profile).model_fields.items():
        value = getattr(profile, name)
        if value is None or value == [] or value == {}:
            continue
        out[info.alias or name] = _with_env_vars(value)
    if isinstance(profile, DuckDBCompute):
        out["path"] = _resolve(profile.path, root)
    elif isinstance(profile, PostgresCompute):
        out.setdefault("password", "")  # dbt-postgres requires the key; trust/peer auth needs none
    elif isinstance(profile, SparkCompute) and not profile.host:
        out.pop("port", None)
    elif isinstance(profile, BigQueryCompute) and profile.keyfile_json is not None:
        out["keyfile_json"] = keyfile_json(profile.keyfile_json.secret_ref)
    return out


#: The fields of a Google service account key dbt-bigquery's credentials use. Not
#: `universe_domain`: left empty it would override google-auth's default universe.
KEYFILE_FIELDS = (
    "type",
    "project_id",
    "private_key_id",
    "private_key",
    "client_email",
    "client_id",
    "auth_uri",
    "token_uri",
    "auth_provider_x509_cert_url",
    "client_x509_cert_url",
)


def json_field_env_var(name: str, field: str) -> str:
    """The variable holding one field of the JSON object secret `name` (`Secrets.env`)."""
    return f"{dbt_secret_env_var(name)}__{secret_env_var(field)}"


def keyfile_json(name: str) -> dict[str, str]:
    """BigQuery's `keyfile_json` mapping, each field read from its own secret variable.

    dbt-bigquery wants a mapping, and dbt renders a `DBT_ENV_SECRET_*` variable only as
    a whole string (no `as_native`), so the key's JSON is handed over field by field.
    """
    return {
        field: "{{ env_var('" + json_field_env_var(name, field) + "', '') }}"
        for field in KEYFILE_FIELDS
    }


def profiles_yml(
    profile_names: list[str],
    target: str,
    profile: ComputeProfile,
    root: Path,
    iceberg_catalog: dict[str, str] | None = None,
) -> str:
    """The text of a dbt profiles.yml defining each profile name with one target.

    With `iceberg_catalog` (`catalog`: the catalog's name, then its pyiceberg
    properties with secrets as env_var() references) and DuckDB compute, dbt-duckdb's `iceberg` plugin is configured, so dbt sources
    with `meta: {plugin: iceberg}` read tables of the pipeline's catalog.
    """
    output = dbt_output(profile, root)
    if iceberg_catalog is not None and isinstance(profile, DuckDBCompute):
        output["plugins"] = [{"module": "iceberg", "config": dict(iceberg_catalog)}]
    doc: dict[str, Any] = {}
    for name in dict.fromkeys(profile_names):
        doc[name] = {"target": target, "outputs": {target: output}}
    header = (
        "# Generated by floe-runtime from platform.yaml; do not edit.\n"
        "# Secrets are read from environment variables at run time.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
