"""Generated dbt profiles are accepted by dbt's own profile loading, for every compute type.

Every adapter is installed (the dev extra): dbt renders the env_var() secrets, picks
the target and builds each adapter's own Credentials from the generated profile, so
a field the adapter does not know or lacks fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from floe_runtime.compiler.profiles import profiles_yml
from floe_runtime.config.platform import ComputeProfile
from floe_runtime.runtime.secrets import Secrets

SECRET = "profile-sentinel-6b1e"
#: A service account key (its fields, not a real key: dbt loads profiles without connecting).
BQ_KEY = (
    '{"type": "service_account", "project_id": "acme-data", "client_email": '
    '"floe@acme-data.iam.gserviceaccount.com", "private_key": "-----BEGIN PRIVATE KEY-----\\n'
    'profile-sentinel-6b1e\\n-----END PRIVATE KEY-----\\n", "token_uri": '
    '"https://oauth2.googleapis.com/token"}'
)

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


#: Secret fields of each adapter's Credentials and what they must hold.
SECRET_FIELDS: dict[str, dict[str, str]] = {
    "postgres": {"password": SECRET},
    "snowflake": {"password": SECRET},
    "trino": {"password": SECRET},
    "spark": {"token": SECRET},
    "bigquery": {"keyfile_json": SECRET},
    "databricks": {"token": SECRET},
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
    from dbt.exceptions import DbtProfileError
    from dbt.flags import set_from_args

    case, required = CASES[kind]
    secret_value = BQ_KEY if kind == "bigquery" else SECRET
    refs = ("pg-password", "sf-password", "trino-password", "spark-token", "bq-key", "dbx-token")
    # What a run hands the dbt process: DBT_ENV_SECRET_* variables (and a JSON key's fields).
    for var, value in Secrets(dict.fromkeys(refs, secret_value)).env().items():
        monkeypatch.setenv(var, value)
    raw = _raw_profiles(case, tmp_path)
    from argparse import Namespace

    set_from_args(Namespace(), None)
    import os

    from dbt_common.context import set_invocation_context

    set_invocation_context(dict(os.environ))  # what dbt's env_var() reads, as in a dbt run
    renderer = ProfileRenderer({})
    # The adapter must be there: a missing plugin is a failure, not a reason to check less.
    if kind == "spark":
        # dbt-spark validates the whole profile, then wants PyHive for the http method; PyHive
        # pins thrift<0.17, which dbt-databricks's connector cannot use, so it is not installed.
        with pytest.raises(DbtProfileError, match=r"dbt-spark\[PyHive\]"):
            Profile.from_raw_profiles(raw, "demo", renderer)
        rendered = renderer.render_data(raw["demo"]["outputs"]["dev"])
        assert rendered["token"] == SECRET and not required - set(rendered)
        return
    profile = Profile.from_raw_profiles(raw, "demo", renderer)
    assert profile.target_name == "dev"
    assert profile.threads == raw["demo"]["outputs"]["dev"]["threads"]
    creds = profile.credentials
    assert creds.type == kind
    values = creds.to_dict(omit_none=True)
    aliases = {"dbname": "database", "dataset": "schema", "cluster": "cluster"}
    for key in sorted(required - {"path"}):
        if kind == "trino" and key == "method":
            # dbt-trino picks a Credentials class per method instead of keeping the field.
            assert type(creds).__name__ == "TrinoLdapCredentials"
            continue
        assert key in values or aliases.get(key) in values, (kind, key, sorted(values))
    # Each secret reached the adapter's credentials as the value of its env_var() call.
    for key, expected in SECRET_FIELDS.get(kind, {}).items():
        got = getattr(creds, key)
        if kind == "bigquery":  # the key's fields, each from its own secret variable
            assert {k: v for k, v in got.items() if v} == yaml.safe_load(secret_value), key
            continue
        assert got == expected, key
    if kind == "duckdb":
        assert Path(creds.path).is_absolute()
