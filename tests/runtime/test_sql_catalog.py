"""`sql` Iceberg catalogs for real: on PostgreSQL, and in a project folder whose name has a space."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.conftest import Postgres, copy_project, floe, grep_tree

pytestmark = pytest.mark.slow

#: The shop's published tables and their rows after one run.
SHOP_TABLES = {"orders": 4, "customers": 3, "customers_history": 3}

OBSERVABILITY = """observability:
  traces: {exporter: file, path: ./.floe/traces.jsonl}
  lineage: {transport: file, path: ./.floe/lineage.jsonl, namespace: shop-dev}
"""


def _rows(catalog: object) -> dict[str, int]:
    return {
        name: catalog.load_table(("shop", name)).scan().to_arrow().num_rows  # type: ignore[attr-defined]
        for name in SHOP_TABLES
    }


@pytest.mark.server
def test_a_sql_catalog_on_postgresql_publishes_and_keeps_its_password(
    postgres: Postgres, tmp_path: Path
) -> None:
    """SQLAlchemy 2.1 opens `postgresql://` with psycopg 3 (a dependency): without it the run
    failed, pyiceberg saying 'SQLAlchemy support not installed'."""
    project = copy_project("shop", tmp_path / "shop")
    (project / "platform.yaml").write_text(
        f"""version: "1"
storage:
  default: {{type: local, path: ./.floe/warehouse}}
catalogs:
  default:
    type: sql
    uri: postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.dbname}
    password: {{secret_ref: catalog-password}}
compute:
  default: {{type: duckdb, path: ./.floe/shop.duckdb, threads: 4}}
{OBSERVABILITY}"""
    )
    result = floe("run", str(project), env={"CATALOG_PASSWORD": postgres.password})
    assert result.code == 0, result.output
    assert "Traceback" not in result.output

    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(
        "default",
        uri=(
            f"postgresql+psycopg://{postgres.user}:{postgres.password}@{postgres.host}:"
            f"{postgres.port}/{postgres.dbname}"
        ),
        warehouse=(project / ".floe" / "warehouse").as_uri(),
    )
    assert _rows(catalog) == SHOP_TABLES
    assert postgres.password not in result.output
    assert grep_tree(project, postgres.password) == []


def test_a_project_folder_with_a_space_publishes_there_and_nowhere_else(tmp_path: Path) -> None:
    """The warehouse was the percent-encoded URI of the folder, which pyiceberg takes as a
    path: metadata went to a stray `my%20proj/.floe/warehouse` and publishing failed."""
    project = copy_project("shop", tmp_path / "my proj")
    first = floe("run", str(project))
    assert first.code == 0, first.output
    again = floe("run", str(project))  # reads back what the first run committed
    assert again.code == 0, again.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my proj"]

    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(
        "default",
        uri=f"sqlite:///{project / '.floe' / 'catalog.db'}",
        warehouse=f"file://{project / '.floe' / 'warehouse'}",
    )
    assert _rows(catalog) == SHOP_TABLES
    location = catalog.load_table(("shop", "orders")).location()
    assert location == f"file://{project}/.floe/warehouse/shop/orders"
    events = [json.loads(x) for x in (project / ".floe" / "lineage.jsonl").read_text().splitlines()]
    outputs = {(o["namespace"], o["name"]) for e in events for o in e.get("outputs", [])}
    assert ("file", f"{project}/.floe/warehouse/shop/orders") in outputs
