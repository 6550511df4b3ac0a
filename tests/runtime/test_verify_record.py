"""Verify and record: tables a distributed engine (trino/spark) committed to Iceberg itself.

No Trino or Spark runs here, so "the engine" is another writer: pyiceberg commits the tables
to the SeaweedFS Iceberg REST catalog (OAuth2) with S3 storage, as Trino's Iceberg connector
would. floe's side runs for real from the seam the runner calls after dbt: a RunSession over
compiled artifacts with trino compute follows dbt's JSON log events for the models (the
events dbt-trino would emit), then `publish` — which, for trino, verifies and records instead
of copying. Results, the OTLP traces file and the OpenLineage file are then read back.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from floe_runtime.analysis import discover
from floe_runtime.compiler import compile_project
from floe_runtime.runtime import verify
from floe_runtime.runtime.secrets import Secrets
from floe_runtime.runtime.session import RunSession
from floe_runtime.runtime.translator import FloeDbtTranslator
from tests.runtime.conftest import Seaweed, write_platform
from tests.runtime.otlp import load_spans
from tests.runtime.processes import lineage_events

PROJECT = "shop"


def platform(seaweed: Seaweed) -> str:
    return f"""version: "1"
storage:
  default:
    type: s3
    bucket: warehouse
    region: us-east-1
    endpoint: {seaweed.s3_endpoint}
    path_style_access: true
    credentials:
      access_key_id: {{secret_ref: lake-key-id}}
      secret_access_key: {{secret_ref: lake-secret}}
catalogs:
  default:
    type: rest
    uri: {seaweed.catalog_uri}
    warehouse: s3://warehouse
    credentials:
      mode: oauth2
      client_id: {seaweed.client_id}
      client_secret: {{secret_ref: catalog-secret}}
compute:
  default: {{type: trino, host: trino.test, port: 8080, http_scheme: http, user: floe,
             database: lake, schema: analytics}}
"""


@pytest.fixture()
def engine_catalog(seaweedfs: Seaweed) -> Any:
    """The catalog as the engine sees it (pyiceberg plays Trino's Iceberg connector)."""
    return seaweedfs.catalog("engine")


class Run:
    """A floe run over trino compute, driven from the seam after dbt."""

    def __init__(self, root: Path, seaweed: Seaweed, schema: str) -> None:
        (root / "dbt").mkdir(parents=True)
        (root / "dbt" / "dbt_project.yml").write_text(
            f"name: {PROJECT}\nprofile: {PROJECT}\nconfig-version: 2\n"
        )
        (root / "floe.yaml").write_text(
            f"name: {PROJECT}\nversion: '1.0.0'\ntransforms:\n  - {{type: dbt, path: ./dbt}}\n"
        )
        write_platform(
            root, "lake", platform(seaweed).replace("schema: analytics", f"schema: {schema}")
        )
        self.root = root
        self.schema = schema
        self.artifacts = compile_project(discover(root, "lake"))
        self.secrets = Secrets(
            {
                "catalog-secret": seaweed.client_secret,
                "lake-key-id": seaweed.client_id,
                "lake-secret": seaweed.client_secret,
            }
        )
        self.warnings: list[str] = []
        self.manifest: dict[str, Any] = {"nodes": {}}

    def model(self, name: str, materialized: str = "table") -> str:
        uid = f"model.{PROJECT}.{name}"
        self.manifest["nodes"][uid] = {
            "unique_id": uid,
            "name": name,
            "alias": name,
            "resource_type": "model",
            "package_name": PROJECT,
            "original_file_path": f"models/{name}.sql",
            "database": "lake",
            "schema": self.schema,
            "config": {"materialized": materialized},
            "depends_on": {"nodes": []},
        }
        return uid

    def test_on(self, model_uid: str, name: str) -> str:
        uid = f"test.{PROJECT}.{name}"
        self.manifest["nodes"][uid] = {
            "unique_id": uid,
            "name": name,
            "resource_type": "test",
            "attached_node": model_uid,
            "config": {"materialized": "test"},
            "depends_on": {"nodes": [model_uid]},
        }
        return uid

    def session(self) -> RunSession:
        session = RunSession(
            self.artifacts, self.secrets, str(uuid.uuid4()), warn=self.warnings.append
        )
        self.translator = FloeDbtTranslator(
            self.artifacts, self.artifacts.dbt[0], own=frozenset(self.manifest["nodes"])
        )
        return session

    def dbt_event(self, session: RunSession, name: str, uid: str, status: str = "") -> None:
        """One line of dbt's JSON log, as dbt-trino writes it for a node."""
        node = self.manifest["nodes"][uid]
        session.on_dbt_event(
            {
                "info": {"name": name, "msg": ""},
                "data": {
                    "node_info": {
                        "unique_id": uid,
                        "node_name": node["name"],
                        "resource_type": node["resource_type"],
                        "materialized": node["config"]["materialized"],
                        "node_status": status,
                    },
                    "status": status,
                    "execution_time": 0.1,
                },
            },
            self.manifest,
            self.translator,
        )


@pytest.fixture()
def run(tmp_path: Path, seaweedfs: Seaweed, engine_catalog: Any) -> Iterator[Run]:
    schema = f"verify_{uuid.uuid4().hex[:8]}"  # the SeaweedFS server is shared by the session
    engine_catalog.create_namespace(schema)
    yield Run(tmp_path / PROJECT, seaweedfs, schema)


def engine_writes(catalog: Any, schema: str, name: str, rows: int) -> Any:
    """Commit a table the way Trino would for `CREATE OR REPLACE TABLE ... AS SELECT`."""
    data = pa.table(
        {
            "order_id": pa.array(range(rows), pa.int64()),
            "amount": pa.array([1.5 * i for i in range(rows)], pa.float64()),
            "status": pa.array(["placed"] * rows, pa.string()),
        }
    )
    ident = (schema, name)
    if catalog.table_exists(ident):
        table = catalog.load_table(ident)
        table.overwrite(data)
    else:
        table = catalog.create_table(ident, schema=data.schema)
        table.append(data)
    return catalog.load_table(ident)


@pytest.mark.server
def test_engine_tables_verified_and_recorded(run: Run, engine_catalog: Any) -> None:
    orders, customers = run.model("orders"), run.model("customers")
    ghost = run.model("ghost")  # dbt reports success, but the table is not in floe's catalog
    session = run.session()
    session.start()
    for uid in (orders, customers, ghost):
        run.dbt_event(session, "LogStartLine", uid)
    # The engine commits while dbt runs the models.
    written = {
        "orders": engine_writes(engine_catalog, run.schema, "orders", 3),
        "customers": engine_writes(engine_catalog, run.schema, "customers", 2),
    }
    for uid in (orders, customers, ghost):
        run.dbt_event(session, "LogModelResult", uid, "success")
    session.publish(run.manifest, run.translator)
    session.finish()

    # Results: what the catalog holds, nothing copied (the namespace is dbt's schema).
    for name, rows in (("orders", 3), ("customers", 2)):
        result = session.results[f"model.{PROJECT}.{name}"]
        table = written[name]
        assert result.publish_error is None
        assert result.published is not None
        assert result.published.identifier == f"{run.schema}.{name}"
        assert result.published.snapshot_id == table.current_snapshot().snapshot_id
        assert result.published.rows == result.rows == rows
        assert result.published.columns == [
            ("order_id", "long"),
            ("amount", "double"),
            ("status", "string"),
        ]
        assert result.published.mode == verify.VERIFIED
        assert result.published.location == table.location()
    missing = session.results[ghost]
    assert missing.failed and missing.published is None
    assert missing.publish_error is not None
    assert f"table {run.schema}.ghost is not in the Iceberg catalog" in missing.publish_error
    assert "+file_format: iceberg" in missing.publish_error
    # No "publish skipped" warning: trino is not a compute floe has to read back.
    assert run.warnings == []

    # Spans: one verify span per table, with snapshot id and rows.
    spans = load_spans(run.root / ".floe" / "traces.jsonl")
    by_name = {s["name"]: s for s in spans}
    root = next(s for s in spans if s["parent_span_id"] is None)
    span = by_name[f"floe.verify {run.schema}.orders"]
    # As a publish span: in the run's trace, after the model's own span ended.
    assert span["parent_span_id"] == root["span_id"]
    assert by_name["dbt.model orders"]["trace_id"] == span["trace_id"]
    assert (
        span["attributes"]["iceberg.snapshot_id"]
        == written["orders"].current_snapshot().snapshot_id
    )
    assert span["attributes"]["floe.rows"] == 3
    assert span["attributes"]["floe.writer"] == "trino"
    failed = by_name[f"floe.verify {run.schema}.ghost"]
    assert failed["status_code"] == 2 and "not in the Iceberg catalog" in failed["status_message"]
    assert root["attributes"]["floe.status"] == "failed"

    # Lineage: COMPLETE with the Iceberg table named by its location, schema and row count;
    # the missing table's run FAILs with the reason.
    events = lineage_events(run.root)
    complete = next(
        e
        for e in events
        if e["eventType"] == "COMPLETE" and e["job"]["name"] == f"{PROJECT}.orders"
    )
    location = written["orders"].location()
    iceberg = next(o for o in complete["outputs"] if o["namespace"] == "s3://warehouse")
    assert iceberg["name"] == location.removeprefix("s3://warehouse/")
    assert [f["name"] for f in iceberg["facets"]["schema"]["fields"]] == [
        "order_id",
        "amount",
        "status",
    ]
    assert iceberg["outputFacets"]["outputStatistics"]["rowCount"] == 3
    symlink = iceberg["facets"]["symlinks"]["identifiers"][0]
    assert symlink["name"] == f"{run.schema}.orders"
    # The engine's relation (trino://host:port, catalog.schema.table) carries the same schema.
    trino = next(o for o in complete["outputs"] if o["namespace"] == "trino://trino.test:8080")
    assert trino["name"] == f"lake.{run.schema}.orders"
    assert [f["name"] for f in trino["facets"]["schema"]["fields"]][0] == "order_id"
    fail = next(
        e for e in events if e["eventType"] == "FAIL" and e["job"]["name"] == f"{PROJECT}.ghost"
    )
    message = fail["run"]["facets"]["errorMessage"]["message"]
    assert "not in the Iceberg catalog" in message
    # No secret anywhere floe wrote.
    for path in (run.root / ".floe").rglob("*"):
        assert "weed-sentinel" not in path.read_text(), path


@pytest.mark.server
def test_a_snapshot_from_before_the_run_is_not_this_runs_table(
    run: Run, engine_catalog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One machine, one clock: no skew to allow for, so "before the run" is exact.
    monkeypatch.setattr(verify, "CLOCK_SKEW_MS", 0)
    stale_uid, events_uid = run.model("stale"), run.model("events", "incremental")
    old = engine_writes(engine_catalog, run.schema, "stale", 4)
    engine_writes(engine_catalog, run.schema, "events", 5)
    time.sleep(0.05)
    session = run.session()
    session.start()
    for uid in (stale_uid, events_uid):
        run.dbt_event(session, "LogStartLine", uid)
        run.dbt_event(session, "LogModelResult", uid, "success")
    session.publish(run.manifest, run.translator)
    session.finish()

    stale = session.results[stale_uid]
    assert stale.published is None and stale.publish_error is not None
    assert f"current snapshot {old.current_snapshot().snapshot_id} was committed" in (
        stale.publish_error
    )
    assert "before this run started" in stale.publish_error
    # An incremental model that added nothing keeps its snapshot: recorded, 0 rows added.
    events = session.results[events_uid]
    assert events.publish_error is None and events.published is not None
    assert events.published.rows == 5 and events.published.added_rows == 0


@pytest.mark.server
def test_failed_test_rolls_the_engines_commit_back(
    run: Run, engine_catalog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify, "CLOCK_SKEW_MS", 0)
    orders = run.model("orders")
    check = run.test_on(orders, "not_null_orders_status")
    before = engine_writes(engine_catalog, run.schema, "orders", 3).current_snapshot().snapshot_id
    time.sleep(0.05)
    session = run.session()
    session.start()
    run.dbt_event(session, "LogStartLine", orders)
    engine_writes(engine_catalog, run.schema, "orders", 7)  # this run's rebuild
    run.dbt_event(session, "LogModelResult", orders, "success")
    run.dbt_event(session, "LogTestResult", check, "fail")
    session.publish(run.manifest, run.translator)
    session.finish()

    table = engine_catalog.load_table((run.schema, "orders"))
    # Readers are back on the snapshot from before the run (7 rows stay in the history).
    assert table.current_snapshot().snapshot_id == before
    assert table.scan().to_arrow().num_rows == 3
    held = session.results[orders]
    assert held.withheld is not None
    assert held.withheld.startswith("not published: test not_null_orders_status failed; ")
    assert f"rolled {run.schema}.orders back to snapshot {before}" in held.withheld
    fail = next(
        e
        for e in lineage_events(run.root)
        if e["eventType"] == "FAIL" and e["job"]["name"] == f"{PROJECT}.orders"
    )
    assert "rolled" in fail["run"]["facets"]["errorMessage"]["message"]

    # A first run has nothing to go back to: the node says readers see the new data.
    first = run.model("fresh")
    run.test_on(first, "unique_fresh_order_id")
    session = run.session()
    session.start()
    run.dbt_event(session, "LogStartLine", first)
    engine_writes(engine_catalog, run.schema, "fresh", 2)
    run.dbt_event(session, "LogModelResult", first, "success")
    run.dbt_event(session, "LogTestResult", f"test.{PROJECT}.unique_fresh_order_id", "fail")
    session.publish(run.manifest, run.translator)
    session.finish()
    assert "no snapshot from before this run" in (session.results[first].withheld or "")

    # A table this run did not write is left alone (nothing to roll back).
    again = run.model("untouched")
    run.test_on(again, "unique_untouched_order_id")
    untouched = engine_writes(engine_catalog, run.schema, "untouched", 4).current_snapshot()
    time.sleep(0.05)
    session = run.session()
    session.start()
    run.dbt_event(session, "LogStartLine", again)
    run.dbt_event(session, "LogModelResult", again, "success")
    run.dbt_event(session, "LogTestResult", f"test.{PROJECT}.unique_untouched_order_id", "fail")
    session.publish(run.manifest, run.translator)
    session.finish()
    assert "this run committed nothing to" in (session.results[again].withheld or "")
    current = engine_catalog.load_table((run.schema, "untouched")).current_snapshot()
    assert current.snapshot_id == untouched.snapshot_id
    assert json.dumps(run.warnings) == "[]"


@pytest.mark.parametrize("compute", ["snowflake", "bigquery", "databricks"])
def test_warehouse_run_warns_that_nothing_reaches_iceberg(tmp_path: Path, compute: str) -> None:
    profiles = {
        "snowflake": "{type: snowflake, account: a, user: u, warehouse: w, database: d, schema: s}",
        "bigquery": "{type: bigquery, project: p, dataset: d}",
        "databricks": "{type: databricks, host: h, http_path: /sql, token: {secret_ref: t}, "
        "schema: s}",
    }
    root = tmp_path / PROJECT
    (root / "dbt").mkdir(parents=True)
    (root / "dbt" / "dbt_project.yml").write_text(f"name: {PROJECT}\nprofile: {PROJECT}\n")
    (root / "floe.yaml").write_text(
        f"name: {PROJECT}\nversion: '1.0.0'\ntransforms:\n  - {{type: dbt, path: ./dbt}}\n"
    )
    write_platform(
        root,
        "wh",
        'version: "1"\nstorage: {default: {type: local}}\ncatalogs: {default: {type: sql}}\n'
        f"compute:\n  default: {profiles[compute]}\n",
    )
    artifacts = compile_project(discover(root, "wh"))
    uid = f"model.{PROJECT}.orders"
    manifest = {
        "nodes": {
            uid: {
                "unique_id": uid,
                "name": "orders",
                "resource_type": "model",
                "schema": "s",
                "config": {"materialized": "table"},
                "depends_on": {"nodes": []},
            }
        }
    }
    warnings: list[str] = []
    session = RunSession(artifacts, Secrets({"t": "x"}), str(uuid.uuid4()), warn=warnings.append)
    translator = FloeDbtTranslator(artifacts, artifacts.dbt[0], own=frozenset(manifest["nodes"]))
    session.start()
    node = {
        "unique_id": uid,
        "node_name": "orders",
        "resource_type": "model",
        "materialized": "table",
    }
    session.on_dbt_event(
        {"info": {"name": "LogStartLine"}, "data": {"node_info": node}}, manifest, translator
    )
    session.on_dbt_event(
        {
            "info": {"name": "LogModelResult"},
            "data": {"node_info": {**node, "node_status": "success"}},
        },
        manifest,
        translator,
    )
    session.publish(manifest, translator)
    session.finish()
    [warning] = warnings
    assert warning.startswith(f"floe-runtime does not publish tables built on {compute} ")
    assert "table_format: iceberg" in warning or "biglake_metastore" in warning
    assert session.results[uid].published is None and not session.results[uid].failed
