"""OpenLineage events as the spec and its naming conventions have them (DESIGN §5 "Standard outputs").

Events are written by the real openlineage-python client through its FileTransport and
validated with `jsonschema` against the OpenLineage JSON Schemas vendored under
`tests/runtime/openlineage/` (a `referencing` registry resolves every `$ref`; no network).
`lineage --env` runs the CLI as a real process on event files the emitter wrote.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema.exceptions import ValidationError

from floe_runtime.analysis import discover
from floe_runtime.compiler import compile_project
from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.config.platform import FileLineage, PostgresCompute
from floe_runtime.runtime.compute import Relation, open_reader
from floe_runtime.runtime.iceberg import load_catalog
from floe_runtime.runtime.lineage import (
    PRODUCER,
    Assertion,
    Dataset,
    LineageEmitter,
    RunState,
    location_dataset,
    public_uri,
)
from floe_runtime.runtime.secrets import Secrets
from floe_runtime.runtime.translator import FloeDbtTranslator
from tests.runtime.conftest import Postgres, copy_example, floe
from tests.runtime.lineage_spec import check_event, validate

SENTINEL = "sentinel-secret-7c41e0d9"

# ---------------------------------------------------------------- projects


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "customer-analytics")


def _compile(project: Path, env: str) -> CompiledArtifacts:
    return compile_project(discover(project), env)


def _props(name: str = "orders", **extra: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "unique_id": f"model.customer_analytics.{name}",
        "name": name,
        "resource_type": "model",
        "database": "floe",
        "schema": "main",
        "alias": name,
        "package_name": "customer_analytics",
        "original_file_path": f"models/marts/{name}.sql",
        "config": {"materialized": "table"},
    }
    props.update(extra)
    return props


def _facets_of(dataset: Dataset) -> dict[str, Any]:
    """A dataset's facets as an event carries them (serialized by the client's Serde)."""
    from openlineage.client.serde import Serde

    output: dict[str, Any] = Serde.to_dict(dataset.as_output())
    return output.get("facets") or {}


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _emit_run(artifacts: CompiledArtifacts, secrets: Secrets | None = None) -> str:
    """A whole run's events through the artifacts' transport; the pipeline run id."""
    translator = FloeDbtTranslator(artifacts, artifacts.dbt[0])
    run_id = str(uuid.uuid4())
    emitter = LineageEmitter(artifacts, secrets or Secrets({}), run_id, warn=pytest.fail)
    emitter.pipeline_event(RunState.START)
    orders, revenue = _props("orders"), _props("customer_revenue")
    stg = _props("stg_orders", config={"materialized": "view"})
    for props, fails in ((orders, False), (revenue, True)):
        model_run = str(uuid.uuid4())
        common: dict[str, Any] = {
            "job_type": translator.lineage_job_type(props),
            "sql": f"select * from {props['name']}",
            "source_path": translator.source_path(props),
        }
        inputs = [translator.compute_dataset(stg, [("order_id", "INTEGER")])]
        job = translator.lineage_job_name(props)
        emitter.model_event(
            RunState.START, model_run, job, inputs, [translator.compute_dataset(props)], **common
        )
        if fails:
            emitter.model_event(
                RunState.FAIL,
                model_run,
                job,
                inputs,
                [translator.compute_dataset(props)],
                error="Binder Error: column no_such_column not found",
                **common,
            )
            continue
        columns = [("order_id", "INTEGER"), ("amount", "DECIMAL(12,2)")]
        outputs = [
            translator.compute_dataset(props, columns, rows=60),
            translator.iceberg_dataset(
                props, [("order_id", "int"), ("amount", "decimal(12, 2)")], rows=60
            ),
        ]
        emitter.model_event(RunState.COMPLETE, model_run, job, inputs, outputs, **common)
        tests = [
            translator.assertion(
                {
                    "name": "not_null_orders_order_id",
                    "test_metadata": {"name": "not_null", "kwargs": {"column_name": "order_id"}},
                    "config": {"severity": "ERROR"},
                    "attached_node": props["unique_id"],
                },
                "pass",
                failures=0,
            ),
            translator.assertion(
                {"name": "assert_amount_positive", "config": {"severity": "warn"}}, "warn", 2
            ),
        ]
        emitter.test_event(
            translator.lineage_tests_job_name(props),
            [translator.compute_dataset(props, columns, assertions=[t for t in tests if t])],
        )
    emitter.pipeline_event(RunState.FAIL, "failed: customer_revenue")
    return run_id


# ---------------------------------------------------------------- spec validity


def test_every_event_and_facet_is_spec_valid(project: Path) -> None:
    artifacts = _compile(project, "dev")
    run_id = _emit_run(artifacts)
    events = _events(project / ".floe" / "lineage.jsonl")
    kinds = [(e["job"]["facets"]["jobType"]["jobType"], e["eventType"]) for e in events]
    assert kinds == [
        ("JOB", "START"),
        ("MODEL", "START"),
        ("MODEL", "COMPLETE"),
        ("TEST", "START"),
        ("TEST", "COMPLETE"),  # the failed assertion is of severity warn
        ("MODEL", "START"),
        ("MODEL", "FAIL"),
        ("JOB", "FAIL"),
    ]
    seen: set[str] = set()
    for event in events:
        seen |= check_event(event)
        assert event["producer"] == PRODUCER
    assert seen >= {
        "parent",
        "floe",
        "errorMessage",
        "jobType",
        "sql",
        "sourceCodeLocation",
        "schema",
        "symlinks",
        "catalog",
        "outputStatistics",
        "dataQualityAssertions",
    }
    # Model runs: the pipeline run is parent and root.
    for event in events[1:-1]:
        parent = event["run"]["facets"]["parent"]
        pipeline_job = {"namespace": "customer-analytics-dev", "name": "customer-analytics"}
        assert parent["run"]["runId"] == parent["root"]["run"]["runId"] == run_id
        assert {k: parent["root"]["job"][k] for k in pipeline_job} == pipeline_job
    for event in (events[0], events[-1]):
        assert "parent" not in event["run"]["facets"]
        floe_facet = event["run"]["facets"]["floe"]
        assert floe_facet["environment"] == "dev" and floe_facet["attributes"] == {"team": "growth"}
        assert floe_facet["_schemaURL"].startswith(
            "https://floe-runtime.dev/spec/facets/1-0-0/FloeRunFacet.json#"
        )


def test_new_facets_hold_what_the_run_knows(project: Path) -> None:
    artifacts = _compile(project, "dev")
    _emit_run(artifacts)
    events = _events(project / ".floe" / "lineage.jsonl")
    complete = events[2]
    sql = complete["job"]["facets"]["sql"]
    assert sql == {**sql, "query": "select * from orders", "dialect": "duckdb"}
    location = complete["job"]["facets"]["sourceCodeLocation"]
    model_file = project / "dbt" / "models" / "marts" / "orders.sql"
    assert location["type"] == "file" and location["url"] == model_file.resolve().as_uri()
    compute, iceberg = complete["outputs"]
    assert compute["outputFacets"]["outputStatistics"]["rowCount"] == 60
    assert iceberg["outputFacets"]["outputStatistics"]["rowCount"] == 60
    # dataQualityAssertions is an input dataset facet: on the tested relation, input of TEST.
    test_run = events[4]
    assert test_run["job"]["name"] == "customer-analytics.orders.test"
    [tested] = test_run["inputs"]
    assert (tested["namespace"], tested["name"]) == (compute["namespace"], compute["name"])
    assertions = tested["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert [(a["assertion"], a["success"], a.get("column")) for a in assertions] == [
        ("not_null", True, "order_id"),
        ("assert_amount_positive", False, None),
    ]
    assert assertions[0]["severity"] == "error" and assertions[1]["actual"] == "2"
    assert not any(
        "dataQualityAssertions" in (o.get("outputFacets") or {}) for o in (compute, iceberg)
    )
    # A relation before it exists (START) has no schema facet: nothing guessed.
    start = events[1]
    assert "schema" not in start["outputs"][0]["facets"]
    fail = events[6]
    assert "no_such_column" in fail["run"]["facets"]["errorMessage"]["message"]


def test_a_test_run_with_a_failed_error_assertion_fails(project: Path) -> None:
    artifacts = _compile(project, "dev")
    emitter = LineageEmitter(artifacts, Secrets({}), str(uuid.uuid4()), warn=pytest.fail)
    failing = Assertion("unique", False, "order_id", "unique_orders_order_id", "error", "3")
    emitter.test_event(
        "customer-analytics.orders.test", [Dataset("file", "/x", assertions=[failing])]
    )
    start, end = _events(project / ".floe" / "lineage.jsonl")
    assert (start["eventType"], end["eventType"]) == ("START", "FAIL")
    assert "unique_orders_order_id(order_id)" in end["run"]["facets"]["errorMessage"]["message"]
    for event in (start, end):
        check_event(event)


def test_the_validation_itself_rejects_what_the_spec_does_not_allow(project: Path) -> None:
    artifacts = _compile(project, "dev")
    _emit_run(artifacts)
    events = _events(project / ".floe" / "lineage.jsonl")
    tested = events[4]["inputs"][0]["inputFacets"]["dataQualityAssertions"]
    del tested["assertions"][0]["success"]
    with pytest.raises(ValidationError):
        validate(tested, tested["_schemaURL"])
    parent = events[1]["run"]["facets"]["parent"]
    parent["root"]["run"]["runId"] = "not-a-uuid"
    with pytest.raises(ValidationError):
        validate(parent, parent["_schemaURL"])
    event = dict(events[0], producer="not a uri")
    with pytest.raises(ValidationError):
        validate(event, "https://openlineage.io/spec/2-0-2/OpenLineage.json")


# ---------------------------------------------------------------- naming


def test_iceberg_table_named_by_its_location_in_a_local_sqlite_catalog(project: Path) -> None:
    import pyarrow as pa

    artifacts = _compile(project, "dev")
    catalog = load_catalog(artifacts, Secrets({}))
    catalog.create_namespace("analytics")
    table = catalog.create_table(
        ("analytics", "orders"), schema=pa.schema([("order_id", pa.int64())])
    )
    location = table.location()
    assert location.startswith("file://")
    translator = FloeDbtTranslator(artifacts, artifacts.dbt[0])
    dataset = translator.iceberg_dataset(_props(), [("order_id", "long")], location=location)
    assert (dataset.namespace, dataset.name) == ("file", urlsplit(location).path)
    assert dataset.name.endswith("/.floe/warehouse/analytics/orders")
    # Without the location, the catalog's own rule gives the same name.
    fallback = translator.iceberg_dataset(_props(), [("order_id", "long")])
    assert (fallback.namespace, fallback.name) == (dataset.namespace, dataset.name)
    facets = _facets_of(dataset)
    catalog_db = project.resolve() / ".floe" / "catalog.db"
    assert facets["symlinks"]["identifiers"] == [
        {"namespace": f"sqlite:///{catalog_db}", "name": "analytics.orders", "type": "TABLE"}
    ]
    cat = facets["catalog"]
    assert (cat["framework"], cat["type"], cat["name"], cat["source"]) == (
        "iceberg",
        "sql",
        "default",
        "floe-runtime",
    )
    assert cat["warehouseUri"] == (project.resolve() / ".floe" / "warehouse").as_uri()
    assert cat["metadataUri"] == f"sqlite:///{catalog_db}"


def test_s3_location_and_a_rest_catalog_never_show_a_secret(project: Path, tmp_path: Path) -> None:
    prod = _compile(project, "prod")
    profile = prod.catalog.profile
    leaky_uri = f"https://floe:{SENTINEL}@polaris.acme.internal/api/catalog?token={SENTINEL}"
    events_file = tmp_path / "prod.jsonl"
    artifacts = prod.model_copy(
        update={
            "catalog": prod.catalog.model_copy(
                update={"profile": profile.model_copy(update={"uri": leaky_uri})}
            ),
            "observability": prod.observability.model_copy(
                update={
                    "lineage": FileLineage(
                        transport="file", path=str(events_file), namespace="customer-analytics"
                    )
                }
            ),
        }
    )
    translator = FloeDbtTranslator(artifacts, artifacts.dbt[0])
    props = _props(database="analytics", schema="public")
    dataset = translator.iceberg_dataset(
        props, [("order_id", "long")], location="s3://acme-lake/iceberg/analytics/orders/"
    )
    assert (dataset.namespace, dataset.name) == ("s3://acme-lake", "iceberg/analytics/orders")
    facets = _facets_of(dataset)
    [symlink] = facets["symlinks"]["identifiers"]
    assert (symlink["namespace"], symlink["name"]) == (
        "https://polaris.acme.internal/api/catalog",
        "analytics.orders",
    )
    cat = facets["catalog"]
    assert (cat["type"], cat["metadataUri"], cat["catalogProperties"]) == (
        "polaris",
        "https://polaris.acme.internal/api/catalog",
        {"warehouse": "analytics"},
    )
    # A REST table whose location is not known is named by the catalog identifier.
    unknown = translator.iceberg_dataset(props, [])
    assert (unknown.namespace, unknown.name) == (
        "https://polaris.acme.internal/api/catalog",
        "analytics.orders",
    )
    # Through the real client: the resolved secrets appear nowhere in the file.
    secrets = Secrets({"polaris-oauth-secret": SENTINEL, "pg-password": SENTINEL + "-pg"})
    emitter = LineageEmitter(artifacts, secrets, str(uuid.uuid4()), warn=pytest.fail)
    emitter.model_event(
        RunState.FAIL,
        str(uuid.uuid4()),
        translator.lineage_job_name(props),
        [translator.compute_dataset(props, [("order_id", "integer")])],
        [dataset, unknown],
        error=f"connection to postgres failed: password {SENTINEL}-pg rejected",
        sql=f"select '{SENTINEL}' as leaked",
        source_path=translator.source_path(props),
    )
    text = events_file.read_text()
    assert SENTINEL not in text
    assert "s3://acme-lake" in text and "***" in text
    for event in _events(events_file):
        check_event(event)


def test_compute_relations_named_per_the_naming_conventions(project: Path) -> None:
    dev = _compile(project, "dev")
    duck = FloeDbtTranslator(dev, dev.dbt[0]).compute_dataset(_props())
    duckdb_file = project.resolve() / ".floe" / "floe.duckdb"
    assert (duck.namespace, duck.name) == (f"duckdb://{duckdb_file}", "floe.main.orders")
    prod = _compile(project, "prod")
    pg = FloeDbtTranslator(prod, prod.dbt[0])
    relation = pg.compute_dataset(_props(database="analytics", schema="public"))
    # Naming.md, Postgres: postgres://{host}:{port}, {database}.{schema}.{table}
    assert (relation.namespace, relation.name) == (
        "postgres://warehouse.acme.internal:5432",
        "analytics.public.orders",
    )
    assert pg.compute_dataset(_props(database=None, schema="public")).name == (
        "analytics.public.orders"
    )
    source = {
        "unique_id": "source.customer_analytics.raw.events",
        "resource_type": "source",
        "name": "events",
        "identifier": "events",
        "database": "floe",
        "schema": "raw",
    }
    table = FloeDbtTranslator(dev, dev.dbt[0]).compute_dataset(source)
    assert (table.namespace, table.name) == (f"duckdb://{duckdb_file}", "floe.raw.events")
    # External files by location (dbt-duckdb `external_location`).
    external = dict(source, source_meta={"external_location": "s3://landing/raw/{name}.parquet"})
    ext = FloeDbtTranslator(dev, dev.dbt[0]).compute_dataset(external)
    assert (ext.namespace, ext.name) == ("s3://landing", "raw/events.parquet")
    local = dict(source, meta={"external_location": "read_csv('/data/in/{identifier}.csv')"})
    loc = FloeDbtTranslator(dev, dev.dbt[0]).compute_dataset(local)
    assert (loc.namespace, loc.name) == ("file", "/data/in/events.csv")
    # A source read from the pipeline's Iceberg catalog is that Iceberg table.
    lake = dict(
        source, source_meta={"plugin": "iceberg", "iceberg_table": "analytics.{identifier}"}
    )
    ice = FloeDbtTranslator(dev, dev.dbt[0]).compute_dataset(lake)
    assert ice.namespace == "file"
    assert ice.name == str(project.resolve() / ".floe" / "warehouse" / "analytics" / "events")


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("file:///w/analytics/orders", ("file", "/w/analytics/orders")),
        ("file:/w/t/", ("file", "/w/t")),
        ("/w/t", ("file", "/w/t")),
        ("s3://bucket/a/b", ("s3://bucket", "a/b")),
        ("s3a://bucket/a/b/", ("s3://bucket", "a/b")),
        ("gs://bucket/k", ("gs://bucket", "k")),
        ("s3://bucket", ("s3://bucket", "/")),
        (f"s3://key:{SENTINEL}@bucket/p", ("s3://bucket", "p")),
    ],
)
def test_location_dataset(location: str, expected: tuple[str, str]) -> None:
    assert location_dataset(location) == expected


def test_public_uri_drops_credentials() -> None:
    assert public_uri(f"https://u:{SENTINEL}@h:8181/api?token={SENTINEL}#x") == "https://h:8181/api"
    assert public_uri("sqlite:////abs/catalog.db") == "sqlite:////abs/catalog.db"


def test_source_code_location_in_a_git_work_tree_shows_no_credentials(tmp_path: Path) -> None:
    import subprocess

    from openlineage.client.serde import Serde

    from floe_runtime.runtime.lineage import source_code_location

    repo = tmp_path / "repo"
    model = repo / "dbt" / "models" / "orders.sql"
    model.parent.mkdir(parents=True)
    model.write_text("select 1\n")
    remote = f"https://ci:{SENTINEL}@github.com/acme/pipelines.git"
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "remote", "add", "origin", remote], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    sha = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    facet = Serde.to_dict(source_code_location(model))
    assert SENTINEL not in json.dumps(facet)
    assert facet["type"] == "git" and facet["version"] == sha
    assert facet["path"] == "dbt/models/orders.sql"
    assert facet["url"] == f"https://github.com/acme/pipelines/blob/{sha}/dbt/models/orders.sql"
    assert facet["repoUrl"] == "https://github.com/acme/pipelines.git"
    validate(facet, facet["_schemaURL"])


# ---------------------------------------------------------------- real columns


def test_schema_facet_from_real_duckdb_columns(project: Path) -> None:
    import duckdb

    artifacts = _compile(project, "dev")
    path = project / ".floe" / "floe.duckdb"
    path.parent.mkdir(parents=True)
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create table main.orders (order_id integer, amount decimal(12,2), "
            "status varchar, ordered_at timestamp)"
        )
    with open_reader(artifacts, Secrets({})) as reader:
        columns = reader.columns(Relation("floe", "main", "orders"))
        assert reader.columns(Relation(None, "main", "ORDERS")) == columns
        assert reader.columns(Relation("floe", "main", "no_such_table")) == []
    assert columns == [
        ("order_id", "INTEGER"),
        ("amount", "DECIMAL(12,2)"),
        ("status", "VARCHAR"),
        ("ordered_at", "TIMESTAMP"),
    ]
    documented = _props(
        columns={
            "order_id": {"name": "order_id", "description": "One row per order."},
            "customer_name": {"name": "customer_name", "data_type": "text"},  # not in the table
        }
    )
    translator = FloeDbtTranslator(artifacts, artifacts.dbt[0])
    facets = _facets_of(translator.compute_dataset(documented, columns))
    fields = [(f["name"], f["type"], f.get("description")) for f in facets["schema"]["fields"]]
    assert fields == [
        ("order_id", "INTEGER", "One row per order."),
        ("amount", "DECIMAL(12,2)", None),
        ("status", "VARCHAR", None),
        ("ordered_at", "TIMESTAMP", None),
    ]
    assert "schema" not in _facets_of(translator.compute_dataset(documented))


def test_schema_facet_from_real_postgres_columns(project: Path, postgres: Postgres) -> None:
    import psycopg2  # type: ignore[import-untyped]

    with (
        psycopg2.connect(
            host=postgres.host,
            port=postgres.port,
            user=postgres.user,
            password=postgres.password,
            dbname=postgres.dbname,
        ) as con,
        con.cursor() as cur,
    ):
        cur.execute("drop table if exists public.lineage_orders")
        cur.execute(
            "create table public.lineage_orders (order_id integer, amount numeric(12,2), "
            "status varchar(20), ordered_at timestamp)"
        )
    prod = _compile(project, "prod")
    compute = PostgresCompute.model_validate(
        {
            "type": "postgres",
            "host": postgres.host,
            "port": postgres.port,
            "user": postgres.user,
            "password": {"secret_ref": "pg-password"},
            "dbname": postgres.dbname,
            "schema": "public",
        }
    )
    artifacts = prod.model_copy(
        update={"compute": prod.compute.model_copy(update={"profile": compute})}
    )
    with open_reader(artifacts, Secrets({"pg-password": postgres.password})) as reader:
        columns = reader.columns(Relation("analytics", "public", "lineage_orders"))
    assert columns == [
        ("order_id", "integer"),
        ("amount", "numeric(12,2)"),
        ("status", "character varying(20)"),
        ("ordered_at", "timestamp without time zone"),
    ]
    dataset = FloeDbtTranslator(artifacts, artifacts.dbt[0]).compute_dataset(
        _props("lineage_orders", database="analytics", schema="public"), columns
    )
    assert dataset.namespace == f"postgres://{postgres.host}:{postgres.port}"
    assert dataset.name == "analytics.public.lineage_orders"


# ---------------------------------------------------------------- lineage --env


PROD_FILE_LINEAGE = """  lineage:
    transport: file
    path: {path}
    namespace: customer-analytics
"""


def _prod_lineage(project: Path, block: str) -> None:
    """Replace the lineage block of prod's platform.yaml."""
    platform = project / "platform" / "prod" / "platform.yaml"
    text = platform.read_text()
    head, _, _ = text.partition("  lineage:\n")
    platform.write_text(head + block)


def test_lineage_env_reads_that_environments_file(project: Path) -> None:
    _prod_lineage(project, PROD_FILE_LINEAGE.format(path="./.floe/prod-lineage.jsonl"))
    prod_run = _emit_run(_compile(project, "prod"))
    dev_run = _emit_run(_compile(project, "dev"))  # the latest run, in dev's own file
    assert (project / ".floe" / "prod-lineage.jsonl").exists()
    page = project / "prod.html"
    result = floe("lineage", str(project), "--env", "prod", "--no-open", "--output", str(page))
    assert result.code == 0, result.output
    text = page.read_text()
    assert prod_run in text and dev_run not in text
    assert "postgres://warehouse.acme.internal:5432" in text and "duckdb://" not in text
    dev_page = project / "dev.html"
    result = floe("lineage", str(project), "--env", "dev", "--no-open", "--output", str(dev_page))
    assert result.code == 0, result.output
    assert dev_run in dev_page.read_text() and prod_run not in dev_page.read_text()


def test_lineage_env_filters_a_file_environments_share(project: Path) -> None:
    _prod_lineage(project, PROD_FILE_LINEAGE.format(path="./.floe/lineage.jsonl"))
    prod_run = _emit_run(_compile(project, "prod"))
    dev_run = _emit_run(_compile(project, "dev"))  # later in the same file
    page = project / "prod.html"
    result = floe("lineage", str(project), "--env", "prod", "--no-open", "--output", str(page))
    assert result.code == 0, result.output
    assert prod_run in page.read_text() and dev_run not in page.read_text()
    # Asking prod for dev's run is an error, not dev's page.
    other = floe(
        "lineage", str(project), "--env", "prod", "--no-open", "--run", dev_run, "-o", str(page)
    )
    assert other.code == 2 and "not found" in other.stderr and "'prod'" in other.stderr


def test_lineage_env_over_http_renders_no_other_environments_page(project: Path) -> None:
    dev_run = _emit_run(_compile(project, "dev"))
    dev = floe("lineage", str(project), "--env", "dev", "--no-open")
    assert dev.code == 0, dev.output
    default_page = project / "target" / "floe" / "lineage.html"
    assert dev_run in default_page.read_text()
    # prod sends its events to Marquez over http; only dev's are on this machine.
    prod = floe("lineage", str(project), "--env", "prod", "--no-open")
    assert prod.code == 0, prod.output
    assert (
        "http://marquez.acme.internal:5000/lineage/job/customer-analytics/customer-analytics"
        in (prod.stdout)
    )
    assert "No local lineage events for environment 'prod'" in prod.output
    assert "Lineage page" not in prod.output
    assert not default_page.exists()  # dev's page is gone: nothing can open it as prod's


def test_lineage_env_with_console_transport_has_nothing_to_render(project: Path) -> None:
    _emit_run(_compile(project, "dev"))
    _prod_lineage(project, "  lineage:\n    transport: console\n")
    result = floe("lineage", str(project), "--env", "prod", "--no-open")
    assert result.code == 0, result.output
    assert "nothing to render" in result.output and "Lineage page" not in result.output
    assert not (project / "target" / "floe" / "lineage.html").exists()


def test_console_transport_prints_each_event_as_json_on_stderr(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = project / "platform" / "dev" / "platform.yaml"
    platform.write_text(
        platform.read_text().replace(
            "    transport: file\n    path: ./.floe/lineage.jsonl\n", "    transport: console\n"
        )
    )
    artifacts = _compile(project, "dev")
    emitter = LineageEmitter(artifacts, Secrets({}), str(uuid.uuid4()))
    assert emitter.description == "console"
    emitter.pipeline_event(RunState.START)
    emitter.pipeline_event(RunState.COMPLETE)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert [e["eventType"] for e in lines] == ["START", "COMPLETE"]
    for event in lines:
        check_event(event)
