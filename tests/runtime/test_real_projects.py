"""dbt projects shaped like the ones users bring, run more than once, against plain `dbt build`.

`projects/shop` is jaffle-shop-shaped: seeds read through `source()` over the
seeds' own relations, staging views, a table and an incremental mart, data tests,
a unit test and a snapshot. Plain `dbt build` on a copy is the reference for what
runs, what it reports and which rows the tables hold.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import VENV_BIN, CliResult, copy_example, copy_project, floe
from tests.runtime.lineage_spec import check_event
from tests.runtime.otlp import load_spans

pytestmark = pytest.mark.slow

PUBLISHED = ("customers", "orders", "customers_history")
ANSI = "\x1b["


def _catalog(project: Path) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        "default",
        uri=f"sqlite:///{project / '.floe' / 'catalog.db'}",
        warehouse=(project / ".floe" / "warehouse").as_uri(),
    )


def _iceberg_rows(project: Path, table: str) -> list[tuple[Any, ...]]:
    data = _catalog(project).load_table(("shop", table)).scan().to_arrow()
    return sorted(tuple(row.values()) for row in data.to_pylist())


def _duckdb_rows(database: Path, relation: str) -> list[tuple[Any, ...]]:
    import duckdb

    with duckdb.connect(str(database), read_only=True) as con:
        return sorted(con.sql(f"select * from {relation}").fetchall())


def _snapshot_id(project: Path, table: str) -> int:
    return int(_catalog(project).load_table(("shop", table)).current_snapshot().snapshot_id)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _dbt_build(project: Path) -> dict[str, Any]:
    """Plain `dbt build` on a copy, with the profiles.yml floe generates; its run_results."""
    compiled = floe("compile", str(project))
    assert compiled.code == 0, compiled.output
    (project / ".floe").mkdir(exist_ok=True)  # dbt-duckdb does not create the folder
    proc = subprocess.run(
        [str(VENV_BIN / "dbt"), "build", "--target", "default"],
        cwd=project / "dbt",
        env={**os.environ, "DBT_PROFILES_DIR": str(project / "target" / "floe")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    run_results = project / "dbt" / "target" / "run_results.json"
    assert run_results.exists(), proc.stdout + proc.stderr
    results: dict[str, Any] = json.loads(run_results.read_text())
    return results


def _no_ansi(project: Path, *results: CliResult) -> None:
    for result in results:
        assert ANSI not in result.output
    for name in ("lineage.jsonl", "traces.jsonl"):
        assert ANSI.encode() not in (project / ".floe" / name).read_bytes()
        assert b"\\u001b[" not in (project / ".floe" / name).read_bytes()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[CliResult]]:
    """The shop project run three times in a row from a fresh database."""
    project = copy_project("shop", tmp_path_factory.mktemp("shop") / "shop")
    runs = [floe("run", str(project)) for _ in range(3)]
    return project, runs


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    project = copy_project("shop", tmp_path_factory.mktemp("shop-dbt") / "shop")
    _dbt_build(project)  # the first plain run may run the views before the seeds
    return project, _dbt_build(project)


def _built_once(tmp_path: Path) -> Path:
    """A fresh copy of the shop project after one successful run (its own catalog and files)."""
    project = copy_project("shop", tmp_path / "shop")
    result = floe("run", str(project))
    assert result.code == 0, result.output
    return project


def test_seeds_read_through_sources_run_three_times_like_dbt_build(
    built: tuple[Path, list[CliResult]], reference: tuple[Path, dict[str, Any]]
) -> None:
    project, runs = built
    for run in runs:
        assert run.code == 0, run.output
        assert "Run succeeded" in run.stdout
        assert "Traceback" not in run.output
    # The seeds ran before the views reading them, on the very first run.
    first = runs[0].stdout
    assert first.index("raw_orders") < first.index("stg_orders")
    ref_project, ref_results = reference
    assert all(r["status"] in ("success", "pass") for r in ref_results["results"])
    database = ref_project / ".floe" / "shop.duckdb"
    for table in ("customers", "orders"):
        assert _iceberg_rows(project, table) == _duckdb_rows(database, f"main.{table}")
    # Snapshot rows carry load timestamps; compare what the history says, not when.
    history = _iceberg_rows(project, "customers_history")
    assert sorted(row[:2] for row in history) == sorted(
        row[:2] for row in _duckdb_rows(database, "main.customers_history")
    )
    _no_ansi(project, *runs)


def test_counts_agree_with_dbt_run_results(
    built: tuple[Path, list[CliResult]], reference: tuple[Path, dict[str, Any]]
) -> None:
    _, runs = built
    _, ref_results = reference
    tests = [
        r for r in ref_results["results"] if r["unique_id"].startswith(("test.", "unit_test."))
    ]
    units = sum(1 for r in tests if r["unique_id"].startswith("unit_test."))
    passed = sum(1 for r in tests if r["status"] == "pass")
    assert units == 1 and passed == len(tests) == 10
    assert f"tests: {passed} passed, 0 failed, 0 skipped ({units} of them unit tests)" in (
        runs[-1].stdout
    )


def test_snapshots_and_tables_are_published_and_the_summary_says_what_is_not(
    built: tuple[Path, list[CliResult]],
) -> None:
    project, runs = built
    for table in PUBLISHED:
        assert f"shop.{table}" in runs[-1].stdout
    columns = [
        f.name for f in _catalog(project).load_table(("shop", "customers_history")).schema().fields
    ]
    assert {"customer_id", "dbt_valid_from", "dbt_valid_to"} <= set(columns)
    assert (
        "published: incremental, snapshot, table; stay in the compute engine: seed, view"
        in runs[-1].stdout
    )
    assert not _catalog(project).table_exists(("shop", "stg_orders"))


def test_snapshot_history_and_incremental_model_follow_new_data(
    tmp_path: Path,
) -> None:
    project = _built_once(tmp_path)
    seeds = project / "dbt" / "seeds"
    (seeds / "raw_customers.csv").write_text(
        (seeds / "raw_customers.csv").read_text().replace("2,Liam", "2,Liam B.")
    )
    with (seeds / "raw_orders.csv").open("a") as out:
        out.write("5,2,2024-03-01,700\n")
    result = floe("run", str(project))
    assert result.code == 0, result.output
    assert len(_iceberg_rows(project, "orders")) == 5
    history = _iceberg_rows(project, "customers_history")
    assert len(history) == 4  # Liam's old row closed, a new one opened
    assert sorted(row[1] for row in history if row[0] == 2) == ["Liam", "Liam B."]


def test_failing_unit_test_names_its_file_and_line_and_publishes_nothing_below(
    tmp_path: Path,
) -> None:
    project = _built_once(tmp_path)
    before = _snapshot_id(project, "customers")
    marts = project / "dbt" / "models" / "marts" / "_marts.yml"
    marts.write_text(marts.read_text().replace("lifetime_total: 15}", "lifetime_total: 16}"))
    line = marts.read_text().splitlines().index("  - name: customers_sums_order_totals") + 1

    result = floe("run", ".", cwd=project)  # paths in messages are relative to the cwd
    assert result.code == 1, result.output
    assert re.search(r"FAIL\s+unit test\s+customers_sums_order_totals", result.stdout)
    assert re.search(r"SKIP\s+model\s+customers\b", result.stdout)
    assert "tests: 5 passed, 1 failed, 4 skipped (1 of them unit tests)" in result.stdout
    assert (
        f"error in unit test customers_sums_order_totals at dbt/models/marts/_marts.yml:{line}:"
        in (result.stderr)
    )
    assert "actual differs from expected" in result.stderr
    assert "check the compute logs" not in result.output
    assert _snapshot_id(project, "customers") == before  # skipped: nothing published
    _no_ansi(project, result)


def test_failing_data_test_withholds_the_table_it_tests(
    tmp_path: Path,
) -> None:
    project = _built_once(tmp_path)
    before = {t: _snapshot_id(project, t) for t in PUBLISHED}
    rows_before = _iceberg_rows(project, "customers")
    model = project / "dbt" / "models" / "marts" / "customers.sql"
    model.write_text(
        model.read_text().replace(
            "coalesce(sum(o.order_total), 0) as lifetime_total",
            "case when c.customer_id = 3 then null else coalesce(sum(o.order_total), 0) end"
            " as lifetime_total",
        )
    )
    marts = project / "dbt" / "models" / "marts" / "_marts.yml"
    lines = marts.read_text().splitlines()
    line = lines.index("          - not_null", lines.index("      - name: lifetime_total")) + 1

    result = floe("run", ".", cwd=project)  # paths in messages are relative to the cwd
    assert result.code == 1, result.output
    assert re.search(r"HOLD\s+iceberg\s+customers", result.stdout)
    assert "tests: 9 passed, 1 failed, 0 skipped" in result.stdout
    assert (
        "not published: test not_null_customers_lifetime_total failed; readers stay on the "
        "previous snapshot of shop.customers; the unpublished data is in shop.main.customers"
    ) in result.stderr
    assert f"at dbt/models/marts/_marts.yml:{line}:" in result.stderr
    # Readers still see the audited data; the compute relation holds the new build.
    assert _snapshot_id(project, "customers") == before["customers"]
    assert _iceberg_rows(project, "customers") == rows_before
    built_rows = _duckdb_rows(project / ".floe" / "shop.duckdb", "main.customers")
    assert any(row[3] is None for row in built_rows)
    # Tables whose own tests passed were published as usual.
    assert _snapshot_id(project, "orders") != before["orders"]
    fails = [
        e
        for e in _jsonl(project / ".floe" / "lineage.jsonl")
        if e["eventType"] == "FAIL" and e["job"]["name"] == "shop.customers"
    ]
    assert fails and "not published" in fails[-1]["run"]["facets"]["errorMessage"]["message"]


def test_model_error_names_source_and_compiled_lines_and_its_span_carries_it(
    tmp_path: Path,
) -> None:
    project = _built_once(tmp_path)
    model = project / "dbt" / "models" / "staging" / "stg_orders.sql"
    model.write_text(model.read_text().replace("    id as order_id,", "    no_such_column,"))
    line = model.read_text().splitlines().index("    no_such_column,") + 1

    result = floe("run", ".", cwd=project)  # paths in messages are relative to the cwd
    assert result.code == 1, result.output
    assert f"error in model stg_orders at dbt/models/staging/stg_orders.sql:{line}:" in (
        result.stderr
    )
    compiled = re.search(r"compiled SQL: (\S+):(\d+)", result.stderr)
    assert compiled is not None, result.stderr
    compiled_lines = (project / compiled.group(1)).read_text().splitlines()
    assert compiled_lines[int(compiled.group(2)) - 1].strip() == "no_such_column,"
    spans = [
        s
        for s in load_spans(project / ".floe" / "traces.jsonl")
        if s["name"] == "dbt.model stg_orders"
    ]
    failed = spans[-1]
    assert failed["status_code"] == 2  # STATUS_CODE_ERROR
    assert "no_such_column" in failed["status_message"]
    assert "Binder Error" in failed["status_message"]  # dbt's error, not its progress line
    assert any(
        e["name"] == "exception" and "no_such_column" in e["attributes"]["exception.message"]
        for e in failed["events"]
    )
    # Every model run that started ended (the children of the failed view were skipped).
    events = _jsonl(project / ".floe" / "lineage.jsonl")
    run_id = events[-1]["run"]["runId"]
    mine = [
        e
        for e in events
        if e["run"]["facets"].get("parent", {}).get("run", {}).get("runId") == run_id
    ]
    started = {e["run"]["runId"] for e in mine if e["eventType"] == "START"}
    ended = {e["run"]["runId"] for e in mine if e["eventType"] in ("COMPLETE", "FAIL", "ABORT")}
    assert started and started == ended
    _no_ansi(project, result)


def test_select_matching_nothing_is_an_error_naming_the_selector(
    built: tuple[Path, list[CliResult]],
) -> None:
    project, _ = built
    result = floe("run", str(project), "--select", "no_such_model")
    assert result.code == 2, result.output
    assert "--select 'no_such_model' matches no node" in result.stderr
    assert "Run succeeded" not in result.output
    assert ANSI not in result.output


def test_dbt_parse_error_exits_2_and_nothing_runs(tmp_path: Path) -> None:
    project = copy_project("shop", tmp_path / "shop")
    model = project / "dbt" / "models" / "marts" / "customers.sql"
    model.write_text(model.read_text().replace("ref('stg_orders')", "ref('stg_missing')"))
    result = floe("run", str(project))
    assert result.code == 2, result.output
    assert "stg_missing" in result.stderr and "nothing ran" in result.stderr
    assert not _catalog(project).namespace_exists("shop")  # nothing published
    assert not (project / ".floe" / "lineage.jsonl").exists()  # no run started


def test_adapter_that_cannot_connect_exits_2_before_any_node(tmp_path: Path) -> None:
    project = copy_project("shop", tmp_path / "shop")
    platform = project / "platform.yaml"
    platform.write_text(
        platform.read_text().replace(
            "  default: {type: duckdb, path: ./.floe/shop.duckdb, threads: 4}",
            "  default: {type: postgres, host: 127.0.0.1, port: 9, user: floe, dbname: shop,"
            " password: {secret_ref: pg-password}}",
        )
    )
    result = floe("run", str(project), env={"PG_PASSWORD": "pg-sentinel-77aa"})
    assert result.code == 2, result.output
    assert "Connection refused" in result.stderr
    assert "nothing was published" in result.stdout
    assert "dbt build --indirect-selection" not in result.output  # dbt's words, not the argv
    assert "pg-sentinel-77aa" not in result.output


def _two_transforms(project: Path, marts_exclude: str = "") -> None:
    floe_yaml = project / "floe.yaml"
    one = "  - type: dbt\n    path: ./dbt\n    namespace: analytics\n"
    two = (
        "  - type: dbt\n    path: ./dbt\n    select: marts\n"
        + (f"    exclude: {marts_exclude}\n" if marts_exclude else "")
        + "    namespace: analytics\n"
        '  - type: dbt\n    path: ./dbt\n    select: "resource_type:seed staging"\n'
        "    namespace: staging\n"
    )
    assert one in floe_yaml.read_text()
    floe_yaml.write_text(floe_yaml.read_text().replace(one, two))


def _ran(project: Path) -> list[str]:
    return [
        r["unique_id"]
        for path in sorted((project / "target" / "floe" / "dbt").glob("*/run_results.json"))
        for r in json.loads(path.read_text())["results"]
    ]


def test_select_with_two_transforms_builds_and_publishes_each_node_once(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "customer-analytics")
    _two_transforms(project, marts_exclude="customer_orders")
    first = floe("run", str(project), "--env", "dev")
    assert first.code == 0, first.output
    catalog = _catalog(project)
    # The transform's exclude holds without --select ...
    assert not catalog.table_exists(("analytics", "customer_orders"))
    for path in (project / "target" / "floe" / "dbt").glob("*/run_results.json"):
        path.unlink()

    result = floe("run", str(project), "--env", "dev", "--select", "orders customer_orders")
    assert result.code == 0, result.output
    ran = _ran(project)
    # ... and with it: --select narrows the transform's selection, never replaces it.
    assert "model.customer_analytics.orders" in ran
    assert "model.customer_analytics.customer_orders" not in ran
    assert len(ran) == len(set(ran))  # each node once, across both dbt invocations
    assert catalog.table_exists(("analytics", "orders"))
    assert not catalog.table_exists(("staging", "orders"))  # no stray copy elsewhere
    assert result.stdout.count("analytics.orders") == 2  # progress line and summary row


def test_an_aborted_run_ends_every_open_lineage_run_and_span(tmp_path: Path) -> None:
    """Whatever stops a run, every model run that started ends (ABORT) and every span closes."""
    from floe_runtime.analysis.project import discover
    from floe_runtime.compiler import compile_project
    from floe_runtime.runtime.secrets import Secrets
    from floe_runtime.runtime.session import RunSession

    project = copy_project("shop", tmp_path / "shop")
    artifacts = compile_project(discover(project))
    session = RunSession(artifacts, Secrets({}), "0b7a3c52-6c1e-4b8c-9d3f-1d2e3f4a5b6c")
    session.start()
    started = {
        "info": {"name": "LogStartLine"},
        "data": {
            "node_info": {
                "unique_id": "model.shop.customers",
                "node_name": "customers",
                "resource_type": "model",
                "materialized": "table",
                "node_started_at": "2026-01-01T00:00:00",
            }
        },
    }
    manifest: dict[str, Any] = {"nodes": {}, "sources": {}}
    from floe_runtime.runtime.translator import FloeDbtTranslator

    session.on_dbt_event(started, manifest, FloeDbtTranslator(artifacts, artifacts.dbt[0]))
    session.errors.append("DagsterExecutionInterruptedError: interrupted")
    session.finish()

    events = _jsonl(project / ".floe" / "lineage.jsonl")
    model = [e for e in events if e["job"]["name"] == "shop.customers"]
    assert [e["eventType"] for e in model] == ["START", "ABORT"]
    assert "interrupted" in model[-1]["run"]["facets"]["errorMessage"]["message"]
    assert events[-1]["eventType"] == "FAIL" and events[-1]["job"]["name"] == "shop"
    spans = load_spans(project / ".floe" / "traces.jsonl")
    assert {s["name"] for s in spans} == {"floe.run shop", "dbt.model customers"}
    assert all(s["status_code"] == 2 for s in spans)


def test_lineage_of_three_runs_is_spec_valid_with_real_columns_counts_and_tests(
    built: tuple[Path, list[CliResult]],
) -> None:
    import duckdb

    project, _ = built
    events = _jsonl(project / ".floe" / "lineage.jsonl")
    for event in events:
        check_event(event)  # OpenLineage.json and each facet's own schema
    last_run = events[-1]["run"]["runId"]
    mine = [
        e
        for e in events
        if e["run"]["facets"].get("parent", {}).get("run", {}).get("runId") == last_run
    ]
    done = {e["job"]["name"]: e for e in mine if e["eventType"] == "COMPLETE"}
    customers = done["shop.customers"]
    assert customers["run"]["facets"]["parent"]["root"]["run"]["runId"] == last_run
    assert "select" in customers["job"]["facets"]["sql"]["query"].lower()
    assert customers["job"]["facets"]["sourceCodeLocation"]["path"].endswith(
        "models/marts/customers.sql"
    )
    compute, iceberg = customers["outputs"]
    with duckdb.connect(str(project / ".floe" / "shop.duckdb"), read_only=True) as con:
        real = con.sql(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'main' and table_name = 'customers' order by ordinal_position"
        ).fetchall()
    assert [(f["name"], f["type"]) for f in compute["facets"]["schema"]["fields"]] == real
    assert compute["outputFacets"]["outputStatistics"]["rowCount"] == 3
    assert iceberg["namespace"] == "file"
    assert iceberg["name"] == str(project / ".floe" / "warehouse" / "shop" / "customers")
    # A view's real columns too, though dbt held the database while it ran.
    stg = done["shop.stg_orders"]["outputs"][0]
    assert [f["name"] for f in stg["facets"]["schema"]["fields"]] == [
        "order_id",
        "customer_id",
        "ordered_at",
        "order_total",
    ]
    tested = done["shop.customers.test"]["inputs"][0]
    assertions = tested["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert {(a["assertion"], a.get("column"), a["success"]) for a in assertions} == {
        ("unique", "customer_id", True),
        ("not_null", "customer_id", True),
        ("not_null", "lifetime_total", True),
    }


def test_a_column_type_change_between_runs_evolves_the_table_and_says_so(tmp_path: Path) -> None:
    project = _built_once(tmp_path)
    model = project / "dbt" / "models" / "marts" / "customers.sql"
    good = model.read_text()
    before = _catalog(project).load_table(("shop", "customers")).schema()
    assert str(before.find_field("order_count").field_type) == "long"

    # order_count becomes text, customer_name goes: the table follows the model.
    model.write_text(
        good.replace(
            "count(o.order_id) as order_count", "cast(count(o.order_id) as varchar) as order_count"
        )
        .replace("    c.customer_name,\n", "")
        .replace("group by 1, 2", "group by 1")
    )
    marts = project / "dbt" / "models" / "marts" / "_marts.yml"
    marts.write_text(
        marts.read_text()
        .replace("          - {customer_id: 1, customer_name: A}", "          - {customer_id: 1}")
        .replace("customer_name: A, order_count: 2,", "order_count: '2',")
    )
    changed = floe("run", str(project))
    assert changed.code == 0, changed.output
    assert "order_count: long → string (replaced)" in changed.stdout
    assert "customer_name removed" in changed.stdout
    table = _catalog(project).load_table(("shop", "customers"))
    assert [f.name for f in table.schema().fields] == [
        "customer_id",
        "order_count",
        "lifetime_total",
    ]
    assert str(table.schema().find_field("order_count").field_type) == "string"
    assert sorted(r["order_count"] for r in table.scan().to_arrow().to_pylist()) == ["1", "1", "2"]
    # The snapshot before still reads with the schema it was written with.
    history = table.history()
    old = table.scan(snapshot_id=history[-2].snapshot_id).to_arrow()
    assert "customer_name" in old.column_names

    model.write_text(good)  # and back, twice (the second run changes nothing)
    marts.write_text(
        marts.read_text()
        .replace("          - {customer_id: 1}", "          - {customer_id: 1, customer_name: A}")
        .replace("order_count: '2',", "customer_name: A, order_count: 2,")
    )
    for expect_change in (True, False):
        again = floe("run", str(project))
        assert again.code == 0, again.output
        assert ("order_count: string → long (replaced)" in again.stdout) is expect_change
    assert (
        str(
            _catalog(project)
            .load_table(("shop", "customers"))
            .schema()
            .find_field("order_count")
            .field_type
        )
        == "long"
    )
