"""dbt sources that read Iceberg tables of the pipeline's catalog (dbt-duckdb's iceberg plugin)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.runtime.conftest import copy_example, floe

SOURCES = """version: 2
sources:
  - name: lake
    description: Tables this pipeline published to its Iceberg catalog on an earlier run.
    meta:
      plugin: iceberg
      iceberg_table: "analytics.{identifier}"
    tables:
      - name: customer_revenue
"""

MODEL = """{{ config(materialized='table') }}
select customer_id, total_revenue
from {{ source('lake', 'customer_revenue') }}
order by total_revenue desc, customer_id
limit 5
"""


@pytest.mark.slow
def test_a_model_reads_a_table_an_earlier_run_published(tmp_path: Path) -> None:
    from pyiceberg.catalog.sql import SqlCatalog

    project = copy_example(tmp_path / "customer-analytics")
    first = floe("run", str(project), "--env", "dev")
    assert first.code == 0, first.output

    lake = project / "dbt" / "models" / "lake"
    lake.mkdir()
    (lake / "_sources.yml").write_text(SOURCES)
    (lake / "top_customers.sql").write_text(MODEL)
    second = floe("run", str(project), "--env", "dev")
    assert second.code == 0, second.output

    catalog = SqlCatalog(
        "default",
        uri=f"sqlite:///{project / '.floe' / 'catalog.db'}",
        warehouse=(project / ".floe" / "warehouse").as_uri(),
    )
    revenue = catalog.load_table(("analytics", "customer_revenue")).scan().to_arrow().to_pylist()
    expected = sorted(revenue, key=lambda r: (-r["total_revenue"], r["customer_id"]))[:5]
    top = catalog.load_table(("analytics", "top_customers")).scan().to_arrow().to_pylist()
    assert [(r["customer_id"], r["total_revenue"]) for r in top] == [
        (r["customer_id"], r["total_revenue"]) for r in expected
    ]


def test_the_plugin_is_configured_only_for_projects_that_use_it(tmp_path: Path) -> None:
    from floe_runtime.analysis import discover
    from floe_runtime.compiler import compile_project

    project = copy_example(tmp_path / "customer-analytics")
    plain = yaml.safe_load(compile_project(discover(project), "dev").profiles_yml)
    assert "plugins" not in plain["customer_analytics"]["outputs"]["dev"]

    (project / "dbt" / "models" / "_lake.yml").write_text(SOURCES)
    output = yaml.safe_load(compile_project(discover(project), "dev").profiles_yml)
    [plugin] = output["customer_analytics"]["outputs"]["dev"]["plugins"]
    assert plugin["module"] == "iceberg"
    assert plugin["config"]["type"] == "sql"
    assert plugin["config"]["uri"] == f"sqlite:///{project / '.floe' / 'catalog.db'}"


def test_rest_catalog_secrets_stay_env_var_references(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from floe_runtime.analysis import discover
    from floe_runtime.compiler import compile_project

    monkeypatch.setenv("POLARIS_OAUTH_SECRET", "sentinel-oauth-value")
    project = copy_example(tmp_path / "customer-analytics")
    # prod computes on PostgreSQL; give this copy a DuckDB compute so the plugin applies.
    platform = project / "platform" / "prod" / "platform.yaml"
    data = yaml.safe_load(platform.read_text())
    data["compute"]["default"] = {"type": "duckdb", "path": "./.floe/prod.duckdb"}
    platform.write_text(yaml.safe_dump(data))
    (project / "dbt" / "models" / "_lake.yml").write_text(SOURCES)
    artifacts = compile_project(discover(project), "prod")
    text = artifacts.profiles_yml
    assert "sentinel-oauth-value" not in text
    config = yaml.safe_load(text)["customer_analytics"]["outputs"]["prod"]["plugins"][0]["config"]
    assert (
        config["credential"] == "floe-runtime:{{ env_var('DBT_ENV_SECRET_POLARIS_OAUTH_SECRET') }}"
    )
    assert config["s3.secret-access-key"] == "{{ env_var('DBT_ENV_SECRET_LAKE_SECRET') }}"
    assert config["uri"] == "https://polaris.acme.internal/api/catalog"
