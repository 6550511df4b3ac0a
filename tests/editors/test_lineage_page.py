"""The lineage page (`floe-runtime lineage`) as a reader sees it: headless Chromium at 1280×800.

Events come from the real emitter and translator (as in tests/runtime/test_lineage.py), for
the example's DAG without running dbt: three seeds, three staging views, three marts (one
incremental), one of which has a failing test.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from floe_runtime.analysis import discover
from floe_runtime.compiler import compile_project
from floe_runtime.runtime.lineage import LineageEmitter, RunState
from floe_runtime.runtime.lineage_html import build_graph, load_events, render_html
from floe_runtime.runtime.secrets import Secrets
from floe_runtime.runtime.translator import FloeDbtTranslator
from tests.conftest import vscode_test_deps
from tests.runtime.conftest import copy_example

DRIVER = Path(__file__).with_name("lineage_viewport.js")
#: model -> (resource type, materialization, parents)
DAG: dict[str, tuple[str, str, list[str]]] = {
    "raw_customers": ("seed", "seed", []),
    "raw_orders": ("seed", "seed", []),
    "raw_payments": ("seed", "seed", []),
    "stg_customers": ("model", "view", ["raw_customers"]),
    "stg_orders": ("model", "view", ["raw_orders"]),
    "stg_payments": ("model", "view", ["raw_payments"]),
    "orders": ("model", "incremental", ["stg_orders", "stg_payments"]),
    "customer_orders": ("model", "table", ["stg_customers", "orders"]),
    "customer_revenue": ("model", "table", ["customer_orders", "stg_payments"]),
}


def _props(name: str) -> dict[str, Any]:
    kind, materialized, _ = DAG[name]
    folder = (
        "seeds"
        if kind == "seed"
        else ("models/staging" if name.startswith("stg_") else "models/marts")
    )
    return {
        "unique_id": f"{kind}.customer_analytics.{name}",
        "name": name,
        "resource_type": kind,
        "database": "floe",
        "schema": "main",
        "alias": name,
        "package_name": "customer_analytics",
        "original_file_path": f"{folder}/{name}.{'csv' if kind == 'seed' else 'sql'}",
        "config": {"materialized": materialized},
    }


def _emit(project: Path) -> Path:
    artifacts = compile_project(discover(project), "dev")
    translator = FloeDbtTranslator(artifacts, artifacts.dbt[0])
    emitter = LineageEmitter(artifacts, Secrets({}), str(uuid.uuid4()), warn=pytest.fail)
    emitter.pipeline_event(RunState.START)
    columns = [("id", "INTEGER"), ("amount", "DECIMAL(12,2)")]
    for number, (name, (_, materialized, parents)) in enumerate(DAG.items()):
        props = _props(name)
        run = str(uuid.uuid4())
        inputs = [translator.compute_dataset(_props(p), columns) for p in parents]
        common: dict[str, Any] = {
            "job_type": translator.lineage_job_type(props),
            "sql": f"select * from {name}",
            "source_path": translator.source_path(props),
            "materialization": translator.materialization(props),
        }
        job = translator.lineage_job_name(props)
        emitter.model_event(
            RunState.START, run, job, inputs, [translator.compute_dataset(props)], **common
        )
        outputs = [translator.compute_dataset(props, columns, rows=10 + number)]
        if materialized in ("table", "incremental"):
            outputs.append(translator.iceberg_dataset(props, [("id", "int")], rows=10 + number))
        emitter.model_event(RunState.COMPLETE, run, job, inputs, outputs, **common)
        if name.startswith("stg_") or name == "customer_revenue":
            fails = name == "customer_revenue"
            test = translator.assertion(
                {
                    "name": f"not_null_{name}_id",
                    "test_metadata": {"name": "not_null", "kwargs": {"column_name": "id"}},
                    "config": {"severity": "ERROR"},
                    "attached_node": props["unique_id"],
                },
                "fail" if fails else "pass",
                failures=3 if fails else 0,
            )
            emitter.test_event(
                translator.lineage_tests_job_name(props),
                [translator.compute_dataset(props, columns, assertions=[test] if test else [])],
            )
    emitter.pipeline_event(RunState.COMPLETE)
    return project / ".floe" / "lineage.jsonl"


@pytest.fixture(scope="module")
def playwright_core() -> Path:
    return vscode_test_deps() / "node_modules" / "playwright-core"


def test_every_model_is_in_the_window_with_its_figures(
    tmp_path: Path, playwright_core: Path
) -> None:
    project = copy_example(tmp_path / "customer-analytics")
    events = load_events(_emit(project))
    page = tmp_path / "lineage.html"
    page.write_text(render_html(events, "customer-analytics"))
    text = page.read_text()
    assert text.count('class="node job"') == len(DAG)
    assert (
        "❄ analytics.customer_revenue" in text and "❄ analytics.stg_orders" not in text
    )  # views stay in DuckDB
    assert "19 rows" not in text and "18 rows" in text  # customer_revenue: 10 + 8
    # Each node says how dbt built it, as its run recorded it (not guessed from its outputs).
    graph = {n["name"]: n for n in build_graph(events)["nodes"] if n["kind"] == "job"}
    assert {name: graph[name]["materialization"] for name in DAG} == {
        name: m for name, (_, m, _) in DAG.items()
    }
    assert "incremental · complete" in text
    done = subprocess.run(
        ["node", str(DRIVER), page.as_uri(), str(tmp_path / "shot.png")],
        env={**os.environ, "PLAYWRIGHT_CORE": str(playwright_core)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["errors"] == []
    jobs = {n["name"]: n for n in seen["nodes"] if n["cls"] == "node job"}
    assert set(jobs) == set(DAG)
    for name, n in jobs.items():
        assert n["x"] >= 0 and n["y"] >= 0 and n["right"] <= 1280 and n["bottom"] <= 800, (name, n)
        assert n["width"] >= 120, (name, n)  # readable, not shrunk to a dot
    # The failed test is a red badge on its model; clicking it shows the test and its message.
    assert [n["name"] for n in jobs.values() if n["failed"]] == ["customer_revenue"]
    assert (
        "not_null_customer_revenue_id" in seen["failedDetails"] and "fail" in seen["failedDetails"]
    )
    # Selecting highlights upstream and downstream; the seed of another branch is dimmed.
    assert "raw_customers" not in seen["dimmed"] and "stg_orders" not in seen["dimmed"]
    # Focus keeps one hop around the node.
    assert set(seen["focused"]) == {"customer_revenue", "customer_orders", "stg_payments"}
