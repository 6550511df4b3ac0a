"""The model walker shared by the engine and the language server."""

from __future__ import annotations

from floe_runtime.config.introspect import keys_at, loc_to_path, slot_at
from floe_runtime.config.pipeline import Pipeline
from floe_runtime.config.platform import Platform

DATA = {
    "version": "1",
    "storage": {"lake": {"type": "s3"}},
    "catalogs": {"c": {"type": "rest", "credentials": {"mode": "token"}}},
}


def test_keys_follow_the_type_tag() -> None:
    assert "bucket" in keys_at(Platform, ("storage", "lake"), DATA)
    assert "path" not in keys_at(Platform, ("storage", "lake"), DATA)
    assert list(keys_at(Platform, ("catalogs", "c", "credentials"), DATA)) == ["mode", "token"]


def test_without_a_tag_only_the_tag_is_offered() -> None:
    assert list(keys_at(Platform, ("storage", "new"), {"storage": {"new": {}}})) == ["type"]


def test_tag_values_and_descriptions() -> None:
    slot = slot_at(Platform, ("compute", "x"), {})
    assert slot is not None
    assert list(slot.tag_values()) == [
        "duckdb",
        "postgres",
        "snowflake",
        "trino",
        "spark",
        "bigquery",
        "databricks",
    ]
    field = slot_at(Pipeline, ("schedule", "timezone"), {})
    assert field is not None and field.description and "IANA" in field.description


def test_loc_to_path_drops_union_tags() -> None:
    assert loc_to_path(Platform, ("storage", "lake", "s3", "bucket"), DATA) == (
        "storage",
        "lake",
        "bucket",
    )
    data = {"transforms": [{"type": "dbt"}]}
    assert loc_to_path(Pipeline, ("transforms", 0, "dbt", "path"), data) == (
        "transforms",
        0,
        "path",
    )
