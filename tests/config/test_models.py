"""The pydantic models of both tiers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from floe_runtime.config.base import SecretRef, secret_env_var
from floe_runtime.config.pipeline import Pipeline, check_cron
from floe_runtime.config.platform import Platform, PostgresCompute, S3Storage


def pipeline(**extra: Any) -> dict[str, Any]:
    return {
        "name": "demo",
        "version": "1.0.0",
        "transforms": [{"type": "dbt", "path": "d"}],
        **extra,
    }


def test_pipeline_defaults() -> None:
    p = Pipeline.model_validate(pipeline())
    assert (p.storage, p.catalog, p.compute) == ("default", "default", "default")
    assert p.default_namespace == "demo"
    assert p.observability.traces and p.observability.lineage


@pytest.mark.parametrize("name", ["Demo", "1demo", "de mo", "d" * 64, ""])
def test_pipeline_name_rejected(name: str) -> None:
    with pytest.raises(ValidationError):
        Pipeline.model_validate(pipeline(name=name))


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "01.0.0", "1.0.0-"])
def test_version_must_be_semver(version: str) -> None:
    with pytest.raises(ValidationError):
        Pipeline.model_validate(pipeline(version=version))


@pytest.mark.parametrize("version", ["0.1.0", "1.2.3-rc.1", "1.2.3+build.5"])
def test_semver_accepted(version: str) -> None:
    assert Pipeline.model_validate(pipeline(version=version)).version == version


@pytest.mark.parametrize(
    "cron", ["0 6 * * *", "*/15 * * * 1-5", "0 0 1 jan,jul *", "@daily", "5 4 * * sun"]
)
def test_cron_accepted(cron: str) -> None:
    assert check_cron(cron) == cron


@pytest.mark.parametrize(
    ("cron", "fragment"),
    [
        ("0 6 * *", "5 fields"),
        ("60 * * * *", "minute"),
        ("* * 0 * *", "day of month"),
        ("* * * 13 *", "month"),
        ("*/0 * * * *", "step"),
        ("5-1 * * * *", "backwards"),
        ("a * * * *", "not a number"),
    ],
)
def test_cron_rejected(cron: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        check_cron(cron)


def test_transforms_need_one() -> None:
    with pytest.raises(ValidationError):
        Pipeline.model_validate(pipeline(transforms=[]))


def test_unknown_keys_forbidden_everywhere() -> None:
    with pytest.raises(ValidationError) as exc:
        Platform.model_validate({"version": "1", "storage": {"d": {"type": "local", "bukket": 1}}})
    assert exc.value.errors()[0]["type"] == "extra_forbidden"


def test_profiles_are_discriminated_on_type() -> None:
    p = Platform.model_validate(
        {
            "version": "1",
            "storage": {
                "lake": {
                    "type": "s3",
                    "bucket": "acme",
                    "credentials": {
                        "access_key_id": {"secret_ref": "k"},
                        "secret_access_key": {"secret_ref": "s"},
                    },
                }
            },
            "compute": {
                "wh": {
                    "type": "postgres",
                    "host": "h",
                    "user": "u",
                    "dbname": "d",
                    "schema": "analytics",
                    "password": {"secret_ref": "pg-password"},
                }
            },
        }
    )
    assert isinstance(p.storage["lake"], S3Storage)
    compute = p.compute["wh"]
    assert isinstance(compute, PostgresCompute) and compute.schema_ == "analytics"
    assert compute.password == SecretRef(secret_ref="pg-password")


def test_credential_fields_refuse_literals() -> None:
    with pytest.raises(ValidationError):
        Platform.model_validate(
            {
                "version": "1",
                "compute": {
                    "wh": {
                        "type": "postgres",
                        "host": "h",
                        "user": "u",
                        "dbname": "d",
                        "password": "literal",
                    }
                },
            }
        )


def test_secret_ref_names_are_kubernetes_names() -> None:
    with pytest.raises(ValidationError):
        SecretRef(secret_ref="Not_Valid")
    assert secret_env_var("polaris-oauth.secret") == "POLARIS_OAUTH_SECRET"
    assert SecretRef(secret_ref="pg-password").env_var == "PG_PASSWORD"


def test_catalog_credentials_discriminated_on_mode() -> None:
    p = Platform.model_validate(
        {
            "version": "1",
            "catalogs": {
                "lake": {
                    "type": "polaris",
                    "uri": "https://p/api/catalog",
                    "credentials": {
                        "mode": "oauth2",
                        "client_id": "c",
                        "client_secret": {"secret_ref": "s"},
                    },
                }
            },
        }
    )
    creds = p.catalogs["lake"].credentials  # type: ignore[union-attr]
    assert creds.mode == "oauth2"


def test_every_field_has_a_description() -> None:
    from floe_runtime.config import pipeline as pipeline_module
    from floe_runtime.config import platform as platform_module

    missing = []
    for module in (pipeline_module, platform_module):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
            ):
                for name, info in value.model_fields.items():
                    if not info.description:
                        missing.append(f"{value.__name__}.{name}")
    assert missing == []
