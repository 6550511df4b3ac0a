"""The example end to end on embedded defaults: DuckDB, SQLite catalog, file traces and lineage.

One built run is shared by the assertions (module scope); the failure/rerun test
runs last on the same project because it changes it.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import CliResult, copy_example, floe
from tests.runtime.otlp import load_spans

pytestmark = pytest.mark.slow

MARTS = {"customer_orders": 20, "customer_revenue": 20, "orders": 60}
ASSETS = {
    "raw_customers",
    "raw_orders",
    "raw_payments",
    "stg_customers",
    "stg_orders",
    "stg_payments",
    *MARTS,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CliResult]:
    project = copy_example(tmp_path_factory.mktemp("run") / "customer-analytics")
    result = floe("run", str(project), "--env", "dev")
    return project, result


def _catalog(project: Path) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        "default",
        uri=f"sqlite:///{project / '.floe' / 'catalog.db'}",
        warehouse=(project / ".floe" / "warehouse").as_uri(),
    )


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_run_succeeds_with_progress_and_summary(built: tuple[Path, CliResult]) -> None:
    project, result = built
    assert result.code == 0, result.output
    for name in ASSETS:
        assert name in result.stdout
    assert "tests: 46 passed, 0 failed" in result.stdout
    assert "analytics.customer_orders" in result.stdout
    assert "Run succeeded" in result.stdout
    assert "Traceback" not in result.output
    # The generated profiles.yml and compiled artifacts are where compile puts them.
    assert (project / "target" / "floe" / "profiles.yml").exists()
    assert (project / "target" / "floe" / "compiled_artifacts.json").exists()


def test_tables_published_to_sqlite_catalog(built: tuple[Path, CliResult]) -> None:
    project, result = built
    assert result.code == 0, result.output
    catalog = _catalog(project)
    assert {t[-1] for t in catalog.list_tables("analytics")} == set(MARTS)
    for name, rows in MARTS.items():
        table = catalog.load_table(("analytics", name))
        assert table.scan().to_arrow().num_rows == rows
        props = table.properties
        assert props["floe.pipeline"] == "customer-analytics"
        assert props["dbt.unique-id"] == f"model.customer_analytics.{name}"
        assert props["floe.run-id"]
        assert table.location().startswith((project / ".floe" / "warehouse").as_uri())


def test_one_span_per_asset_and_per_publish(built: tuple[Path, CliResult]) -> None:
    project, result = built
    spans = load_spans(project / ".floe" / "traces.jsonl")
    roots = [s for s in spans if s["parent_span_id"] is None]
    assert len(roots) == 1
    root = roots[0]
    assert root["attributes"]["floe.status"] == "success"
    assert root["attributes"]["team"] == "growth"  # floe.yaml observability.attributes
    assert len({s["trace_id"] for s in spans}) == 1
    assets = [s for s in spans if s["name"].startswith(("dbt.model", "dbt.seed"))]
    assert sorted(s["attributes"]["dbt.unique_id"].split(".")[-1] for s in assets) == sorted(ASSETS)
    for span in assets:
        attrs = span["attributes"]
        assert attrs["floe.pipeline"] == "customer-analytics"
        assert attrs["floe.environment"] == "dev"
        assert attrs["floe.status"] == "success"
        assert span["parent_span_id"] == root["span_id"]
    publishes = {
        s["attributes"]["iceberg.table"]: s for s in spans if s["name"].startswith("floe.publish")
    }
    assert set(publishes) == {f"analytics.{m}" for m in MARTS}
    for table, span in publishes.items():
        assert span["attributes"]["floe.rows"] == MARTS[table.split(".")[1]]


def test_lineage_events_per_model(built: tuple[Path, CliResult]) -> None:
    project, _ = built
    events = _jsonl(project / ".floe" / "lineage.jsonl")
    parent = [e for e in events if "parent" not in e["run"]["facets"]]
    assert [e["eventType"] for e in parent] == ["START", "COMPLETE"]
    run_id = parent[0]["run"]["runId"]
    children = [e for e in events if "parent" in e["run"]["facets"]]
    by_job: dict[str, list[str]] = {}
    for e in children:
        assert e["run"]["facets"]["parent"]["run"]["runId"] == run_id
        by_job.setdefault(e["job"]["name"], []).append(e["eventType"])
    nodes = {job: states for job, states in by_job.items() if not job.endswith(".test")}
    assert nodes == {f"customer-analytics.{n}": ["START", "COMPLETE"] for n in ASSETS}
    # The tests of each tested relation are one TEST run with their results.
    tests = {job: states for job, states in by_job.items() if job.endswith(".test")}
    assert tests and all(states == ["START", "COMPLETE"] for states in tests.values())
    complete = {e["job"]["name"]: e for e in children if e["eventType"] == "COMPLETE"}
    revenue = complete["customer-analytics.customer_revenue"]
    inputs = {i["name"] for i in revenue["inputs"]}
    assert {n.rsplit(".", 1)[-1] for n in inputs} == {"stg_customers", "orders"}
    # The Iceberg table by its warehouse location, the catalog identifier as a symlink.
    iceberg = [o for o in revenue["outputs"] if "symlinks" in o["facets"]]
    assert iceberg and iceberg[0]["namespace"] == "file"
    assert iceberg[0]["name"] == str(
        project / ".floe" / "warehouse" / "analytics" / "customer_revenue"
    )
    assert (
        iceberg[0]["facets"]["symlinks"]["identifiers"][0]["name"] == "analytics.customer_revenue"
    )
    assert iceberg[0]["outputFacets"]["outputStatistics"]["rowCount"] == MARTS["customer_revenue"]
    fields = {f["name"] for f in iceberg[0]["facets"]["schema"]["fields"]}
    assert "customer_id" in fields
    # Each node's run says how dbt built it, as dbt's own manifest records it.
    manifest = json.loads((project / "target" / "floe" / "dbt" / "0" / "manifest.json").read_text())
    dbt_says = {
        node["name"]: node["config"]["materialized"] if node["resource_type"] == "model" else "seed"
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed")
    }
    recorded = {
        job.rsplit(".", 1)[-1]: e["run"]["facets"]["floe"]["materialization"]
        for job, e in complete.items()
        if not job.endswith(".test")
    }
    assert recorded == {name: dbt_says[name] for name in ASSETS}


def test_lineage_page_renders_models_in_chromium(built: tuple[Path, CliResult]) -> None:
    project, run = built
    out = project / "lineage.html"
    result = floe("lineage", str(project), "--env", "dev", "--no-open", "--output", str(out))
    assert result.code == 0, result.output
    text = out.read_text()
    # Self-contained: no external scripts, styles or images.
    assert (
        "<script src" not in text
        and "<link" not in text
        and "http://"
        not in text.split('<script type="application/json"')[0].replace(
            "http://www.w3.org/2000/svg", ""
        )
    )
    # A run chosen by id renders too.
    run_id = next(
        json.loads(x)["run"]["runId"]
        for x in (project / ".floe" / "lineage.jsonl").read_text().splitlines()
        if "parent" not in json.loads(x)["run"]["facets"]
    )
    by_id = floe(
        "lineage",
        str(project),
        "--env",
        "dev",
        "--no-open",
        "--run",
        run_id,
        "--output",
        str(project / "by-id.html"),
    )
    assert by_id.code == 0 and run_id in (project / "by-id.html").read_text()
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=3000",
                "--dump-dom",
                out.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    for name in ASSETS:
        assert f'data-name="{name}"' in dom
    assert 'id="run-state"' in dom and "COMPLETE" in dom
    assert dom.count('class="node job"') == len(ASSETS)
    # The page counts tests as the run did (a test of two models once, not twice).
    passed = re.search(r"tests: (\d+) passed", run.stdout)
    assert passed and f"{passed.group(1)} tests passed" in dom


def test_failing_model_keeps_previous_snapshot_then_rerun_completes(
    built: tuple[Path, CliResult],
) -> None:
    project, first = built
    assert first.code == 0, first.output
    catalog = _catalog(project)
    before = {m: catalog.load_table(("analytics", m)).current_snapshot().snapshot_id for m in MARTS}
    model = project / "dbt" / "models" / "marts" / "customer_revenue.sql"
    good = model.read_text()
    model.write_text(good.replace("select", "select no_such_column,", 1))
    lineage_lines = len((project / ".floe" / "lineage.jsonl").read_text().splitlines())

    failed = floe("run", str(project), "--env", "dev")
    assert failed.code == 1, failed.output
    assert "customer_revenue" in failed.stderr
    assert "no_such_column" in failed.stderr  # dbt's own error text
    assert "Traceback" not in failed.output
    catalog = _catalog(project)
    after = {m: catalog.load_table(("analytics", m)).current_snapshot().snapshot_id for m in MARTS}
    assert after["customer_revenue"] == before["customer_revenue"]  # previous snapshot kept
    assert after["orders"] != before["orders"]  # the others were published again
    assert catalog.load_table(("analytics", "customer_revenue")).scan().to_arrow().num_rows == 20
    new_events = [
        json.loads(x)
        for x in (project / ".floe" / "lineage.jsonl").read_text().splitlines()[lineage_lines:]
    ]
    fail = [
        e
        for e in new_events
        if e["eventType"] == "FAIL" and e["job"]["name"] == "customer-analytics.customer_revenue"
    ]
    assert fail and "no_such_column" in fail[0]["run"]["facets"]["errorMessage"]["message"]
    assert any(
        e["eventType"] == "FAIL" and e["job"]["name"] == "customer-analytics" for e in new_events
    )

    model.write_text(good)
    fixed = floe("run", str(project), "--env", "dev")
    assert fixed.code == 0, fixed.output
    catalog = _catalog(project)
    revenue = catalog.load_table(("analytics", "customer_revenue"))
    assert revenue.current_snapshot().snapshot_id != before["customer_revenue"]
    assert revenue.scan().to_arrow().num_rows == 20


def test_select_runs_only_the_selected_models(built: tuple[Path, CliResult]) -> None:
    project, _ = built
    result = floe("run", str(project), "--env", "dev", "--select", "orders")
    assert result.code == 0, result.output
    spans = load_spans(project / ".floe" / "traces.jsonl")
    last_root = [s for s in spans if s["parent_span_id"] is None][-1]
    ran = [
        s["attributes"]["dbt.unique_id"]
        for s in spans
        if s["trace_id"] == last_root["trace_id"] and s["name"].startswith("dbt.")
    ]
    assert ran == ["model.customer_analytics.orders"]
    assert "analytics.orders" in result.stdout and "analytics.customer_orders" not in result.stdout


def test_full_refresh_rebuilds_an_incremental_model(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "customer-analytics")
    # An incremental model with no key: every run appends one row, a full refresh starts over.
    (project / "dbt" / "models" / "marts" / "run_log.sql").write_text(
        "{{ config(materialized='incremental') }}\n"
        "select cast(current_timestamp as varchar) as ran_at\n"
    )

    def rows() -> int:
        table = _catalog(project).load_table(("analytics", "run_log"))
        return int(table.scan().to_arrow().num_rows)

    counts = []
    for extra in ((), (), ("--full-refresh",)):
        result = floe("run", str(project), "--env", "dev", "--select", "run_log", *extra)
        assert result.code == 0, result.output
        counts.append(rows())
    assert counts == [1, 2, 1]


def test_two_transforms_over_one_dbt_project_run_in_dependency_order(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "customer-analytics")
    floe_yaml = project / "floe.yaml"
    one = "  - type: dbt\n    path: ./dbt\n    namespace: analytics\n"
    # The marts transform comes first in the file; it must still wait for staging.
    two = (
        "  - type: dbt\n    path: ./dbt\n    select: marts\n    namespace: analytics\n"
        '  - type: dbt\n    path: ./dbt\n    select: "resource_type:seed staging"\n'
        "    namespace: staging\n"
    )
    assert one in floe_yaml.read_text()
    floe_yaml.write_text(floe_yaml.read_text().replace(one, two))
    result = floe("run", str(project), "--env", "dev")
    assert result.code == 0, result.output
    assert "0 failed" in result.stdout
    catalog = _catalog(project)
    for mart, rows in MARTS.items():
        assert catalog.load_table(("analytics", mart)).scan().to_arrow().num_rows == rows
    # Every node ran once, in one of the two dbt invocations; the relationships test
    # (a mart against a staging model) ran with the marts, after both were built.
    invocations = [
        json.loads(path.read_text())["results"]
        for path in sorted((project / "target" / "floe" / "dbt").glob("*/run_results.json"))
    ]
    assert len(invocations) == 2
    ran = [r["unique_id"] for results in invocations for r in results]
    assert len(ran) == len(set(ran))
    assert all(r["status"] in ("success", "pass") for results in invocations for r in results)
    marts_run = next(
        results
        for results in invocations
        if any("customer_revenue" in r["unique_id"] for r in results)
    )
    assert any(
        r["unique_id"].startswith("test.customer_analytics.relationships_customer_revenue")
        for r in marts_run
    )
