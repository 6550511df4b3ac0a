"""The dbt ↔ Dagster seam: one object that maps dbt nodes to Dagster assets, Iceberg tables
and OpenLineage datasets (like dagster-dbt's own DagsterDbtTranslator)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster import AssetKey
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

from floe_runtime.compiler.artifacts import CompiledArtifacts, DbtTarget
from floe_runtime.compiler.catalog import sqlite_uri
from floe_runtime.compiler.engines import writes_iceberg
from floe_runtime.config.platform import (
    BigQueryCompute,
    DuckDBCompute,
    GlueCatalog,
    PolarisCatalog,
    PostgresCompute,
    RestCatalog,
    SnowflakeCompute,
    SparkCompute,
    SqlCatalog,
    TrinoCompute,
)
from floe_runtime.runtime.iceberg import (
    TRANSFORM_NAMES,
    Increment,
    PartitionColumn,
    PartitionError,
    Partitioning,
    catalog_namespace_uri,
    partition_transform,
    storage_location,
)
from floe_runtime.runtime.lineage import (
    JOB_TYPES,
    Assertion,
    Dataset,
    catalog_facet,
    location_dataset,
    public_uri,
    symlinks_facet,
)

#: dbt resource types that become Dagster assets with their own span and lineage run.
ASSET_TYPES = ("model", "seed", "snapshot")
#: dbt model materializations published as Iceberg tables (snapshots are published too;
#: views, ephemeral models, seeds and external files stay in the compute engine).
PUBLISHED_MATERIALIZATIONS = ("table", "incremental")


def compute_namespace(artifacts: CompiledArtifacts) -> str:
    """The OpenLineage namespace of relations in the compute engine (no secrets).

    As the OpenLineage naming conventions have it: `postgres://{host}:{port}`,
    `trino://{host}:{port}`, `bigquery`, `snowflake://{account}`; DuckDB, which they do not
    list, as openlineage-dbt names it: `duckdb://{database file}` (absolute path).
    """
    profile = artifacts.compute.profile
    if isinstance(profile, DuckDBCompute):
        path = profile.path
        return "duckdb://" + (path if path == ":memory:" else str(artifacts.resolve_path(path)))
    if isinstance(profile, PostgresCompute):
        return f"postgres://{profile.host}:{profile.port}"
    if isinstance(profile, TrinoCompute):
        return f"trino://{profile.host}:{profile.port}"
    if isinstance(profile, BigQueryCompute):
        return "bigquery"
    if isinstance(profile, SnowflakeCompute):
        return f"snowflake://{profile.account.lower()}"
    if isinstance(profile, SparkCompute):
        return f"spark://{profile.host}:{profile.port}" if profile.host else "spark://local"
    host = getattr(profile, "host", None) or getattr(profile, "account", None) or ""
    return f"{profile.type}://{host or getattr(profile, 'project', '')}"


class FloeDbtTranslator(DagsterDbtTranslator):
    """How floe maps dbt nodes to Dagster assets, Iceberg tables and lineage datasets.

    Asset keys are `<namespace parts>/<model>` so two transforms never collide;
    table and incremental models are the ones published to Iceberg. A node this
    transform does not build but another one does (two transforms over one dbt
    project, say staging then marts) keeps the other transform's key, so Dagster
    sees the dependency and builds the upstream transform first.
    """

    def __init__(
        self,
        artifacts: CompiledArtifacts,
        target: DbtTarget,
        own: frozenset[str] = frozenset(),
        built_elsewhere: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(DagsterDbtTranslatorSettings(enable_asset_checks=True))
        self.artifacts = artifacts
        self.target = target
        self.namespace = target.namespace
        self.own = own
        self.built_elsewhere = dict(built_elsewhere or {})
        self._compute_ns = compute_namespace(artifacts)
        self._catalog_ns = catalog_namespace_uri(artifacts)

    # -- Dagster
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props.get("resource_type") in ASSET_TYPES:
            unique_id = dbt_resource_props.get("unique_id", "")
            namespace = self.namespace
            if unique_id not in self.own:
                namespace = self.built_elsewhere.get(unique_id, namespace)
            return AssetKey([*namespace.split("."), dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return self.namespace.replace(".", "_")

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        metadata = dict(super().get_metadata(dbt_resource_props))
        if self.is_published(dbt_resource_props):
            metadata["floe/iceberg_table"] = ".".join(self.iceberg_identifier(dbt_resource_props))
        return metadata

    # -- Iceberg
    def is_published(self, props: Mapping[str, Any]) -> bool:
        """Whether the node is published as an Iceberg table."""
        if props.get("resource_type") == "snapshot":
            return True  # SCD2 history: the table analysts query for what changed
        materialized = props.get("config", {}).get("materialized") or props.get("materialized")
        return props.get("resource_type") == "model" and materialized in PUBLISHED_MATERIALIZATIONS

    def increment(self, props: Mapping[str, Any], full_refresh: bool) -> Increment | None:
        """How an incremental model (or a snapshot) publishes only what a run changed: dbt's
        strategy and unique key, and whether this run rebuilds it (`--full-refresh`, unless
        the model's `full_refresh` config says otherwise, as dbt decides). None for others."""
        config = props.get("config") or {}
        if props.get("resource_type") == "snapshot":
            names = config.get("snapshot_meta_column_names") or {}
            return Increment("snapshot", (str(names.get("dbt_scd_id") or "dbt_scd_id"),))
        if props.get("resource_type") != "model" or self.materialization(props) != "incremental":
            return None
        key = config.get("unique_key")
        keys = (key,) if isinstance(key, str) else tuple(str(k) for k in key or ())
        strategy = str(config.get("incremental_strategy") or "default")
        configured = config.get("full_refresh")
        rebuild = bool(configured) if configured is not None else full_refresh
        return Increment(strategy, keys, rebuild)

    def partition(
        self, props: Mapping[str, Any], warn: Callable[[str], None] | None = None
    ) -> Partitioning | None:
        """How a model's Iceberg table is partitioned, from its configuration.

        `meta.floe.partition` (floe's own form) wins over dbt's `partitioned_by`
        (dbt-duckdb, dbt-athena) and `partition_by` (dbt-spark, BigQuery). Each takes one
        item or a list: a column name (identity), an Iceberg/Spark/DuckLake transform call
        (`day(order_date)`, `bucket(16, customer_id)`) or a mapping `{column: order_date,
        transform: day}`; dbt's keys also take BigQuery's `{field, data_type,
        granularity}`. Without any: unpartitioned. Two time transforms of one column
        (DuckLake's `year(ts), month(ts)`) become the finer one, which implies the other.

        An unknown transform raises PartitionError (the publish fails, the table stays as
        it was). A `partition_by` that is valid for another adapter but has no Iceberg
        form (BigQuery's integer ranges, SQL expressions) is reported through `warn` and
        gives None: the table's partitioning is left as it is.
        """
        config = props.get("config") or {}
        name = str(props.get("name") or "")
        for meta in (config.get("meta"), props.get("meta")):
            floe = meta.get("floe") if isinstance(meta, Mapping) else None
            if isinstance(floe, Mapping) and "partition" in floe:
                origin = "meta.floe.partition"
                try:
                    fields = _partition_fields(floe["partition"])
                except (_NoIcebergForm, PartitionError) as exc:
                    raise PartitionError(f"{origin} of model {name}: {exc}") from None
                return Partitioning(fields, origin, name)
        # dbt-duckdb's order: `partitioned_by`, then `partition_by`.
        origin = "partitioned_by" if config.get("partitioned_by") else "partition_by"
        try:
            fields = _partition_fields(config.get(origin))
        except _NoIcebergForm as exc:
            if warn is not None:
                warn(
                    f"model {name}: {origin} has no Iceberg form ({exc}); its Iceberg "
                    "table's partitioning is left as it is (meta.floe.partition sets one)"
                )
            return None
        except PartitionError as exc:
            raise PartitionError(f"{origin} of model {name}: {exc}") from None
        return Partitioning(fields, origin, name)

    def iceberg_identifier(self, props: Mapping[str, Any]) -> tuple[str, str]:
        """(namespace, table) of the Iceberg table a model is published as.

        Trino and Spark write the table themselves where dbt builds it: namespace = schema.
        """
        name = str(props.get("alias") or props["name"])
        if writes_iceberg(self.artifacts.compute.profile):
            return str(props.get("schema") or self.namespace), name
        return self.namespace, name

    # -- OpenLineage
    def lineage_job_name(self, props: Mapping[str, Any]) -> str:
        """The OpenLineage job of a node: `<pipeline>.<node name>`."""
        return f"{self.artifacts.pipeline.name}.{props['name']}"

    def lineage_tests_job_name(self, props: Mapping[str, Any]) -> str:
        """The job of the TEST run over a node's tests: `<pipeline>.<node name>.test`."""
        return f"{self.lineage_job_name(props)}.test"

    def lineage_job_type(self, props: Mapping[str, Any]) -> str:
        """The `jobType` of a node's runs: MODEL, SEED, SNAPSHOT or TEST."""
        return JOB_TYPES.get(str(props.get("resource_type") or ""), "MODEL")

    def materialization(self, props: Mapping[str, Any]) -> str:
        """How dbt builds a node: a model's `materialized` (table, view, incremental, …),
        else its resource type (seed, snapshot, test)."""
        if props.get("resource_type") == "model":
            config = props.get("config") or {}
            return str(config.get("materialized") or props.get("materialized") or "view")
        return str(props.get("resource_type") or "")

    def source_path(self, props: Mapping[str, Any]) -> Path | None:
        """The file that defines a node (its `.sql`, a seed's `.csv`, a test's file), if found."""
        original = str(props.get("original_file_path") or "")
        if not original:
            return None
        root = Path(self.target.project_dir)
        for candidate in (
            root / original,
            root / "dbt_packages" / str(props.get("package_name") or "") / original,
        ):
            if candidate.is_file():
                return candidate
        return None

    def compiled_sql(self, props: Mapping[str, Any], target_path: Path | None = None) -> str | None:
        """A node's compiled SQL: from the manifest, else the file dbt compiled it to under
        `target_path` (`compiled/<package>/<original_file_path>`); None for seeds or before
        dbt compiled it."""
        code = props.get("compiled_code")
        if code:
            return str(code)
        original, package = props.get("original_file_path"), props.get("package_name")
        if target_path is None or not original or not package:
            return None
        compiled = Path(target_path) / "compiled" / str(package) / str(original)
        try:
            return compiled.read_text(encoding="utf-8") if compiled.is_file() else None
        except OSError:
            return None

    def compute_dataset(
        self,
        props: Mapping[str, Any],
        columns: Sequence[tuple[str, str]] | None = None,
        *,
        rows: int | None = None,
        assertions: Sequence[Assertion] = (),
    ) -> Dataset:
        """The relation a node builds (or a source it reads) in the compute engine.

        Named as the naming conventions name the engine's tables (`compute_namespace`,
        `database.schema.table`); an external file (dbt-duckdb `external_location` sources,
        `external` models with a `location`) by its location; a source read from the
        pipeline's Iceberg catalog (dbt-duckdb's `iceberg` plugin) as that Iceberg table.
        `columns` are the relation's real columns as the engine reports them (the compute
        reader's `columns`): without them there is no schema facet, never one from YAML.
        """
        described = {
            name: str(col.get("description") or "")
            for name, col in (props.get("columns") or {}).items()
            if isinstance(col, Mapping) and col.get("description")
        }
        real = tuple(columns or ())
        if props.get("resource_type") == "source":
            config = _source_config(props)
            if config.get("plugin") == "iceberg":
                table = _format(
                    str(config.get("iceberg_table") or "{schema}.{identifier}"), props, config
                )
                if table and "." in table:
                    namespace, name = table.rsplit(".", 1)
                    return self._iceberg(namespace, name, real, None, rows, assertions, described)
            location = config.get("external_location")
            if isinstance(location, str):
                formatted = _format(location, props, config)
                path = _quoted_path(formatted) if formatted else None
                if path:
                    ns, name = location_dataset(path)
                    return Dataset(
                        ns, name, real, rows=rows, assertions=assertions, descriptions=described
                    )
        config = props.get("config") or {}
        if config.get("materialized") == "external" and isinstance(config.get("location"), str):
            ns, name = location_dataset(str(config["location"]))
            return Dataset(ns, name, real, rows=rows, assertions=assertions, descriptions=described)
        identifier = props.get("alias") or props["name"]
        if props.get("resource_type") == "source":
            identifier = props.get("identifier") or props["name"]
        parts = [props.get("database") or self._default_database(), props.get("schema"), identifier]
        return Dataset(
            compute_namespace(self.artifacts),
            ".".join(str(p) for p in parts if p),
            real,
            rows=rows,
            assertions=assertions,
            descriptions=described,
        )

    def iceberg_dataset(
        self,
        props: Mapping[str, Any],
        columns: Sequence[tuple[str, str]] = (),
        *,
        location: str | None = None,
        rows: int | None = None,
    ) -> Dataset:
        """The Iceberg table a model was published as, named by its location.

        Namespace and name come from the table's location (`table.location()`, as the
        publish reports it; without it, the location the catalog gives new tables, when it
        can be known here: SQL and Glue catalogs). The catalog identifier is a `symlinks`
        facet (type TABLE: the catalog's URI without credentials, `namespace.table`) and the
        `catalog` facet says which catalog (iceberg, sql/rest/polaris/glue, its name and
        URIs). A REST catalog table whose location is unknown is named by that identifier.
        """
        namespace, table = self.iceberg_identifier(props)
        return self._iceberg(namespace, table, tuple(columns), location, rows, (), {})

    def iceberg_location(self, namespace: str, table: str) -> str | None:
        """Where the catalog puts a new table `namespace.table` (None when the server decides).

        pyiceberg's SQL catalog: `<warehouse>/<namespace>/<table>`; Glue: `…/<namespace>.db/…`.
        """
        profile = self.artifacts.catalog.profile
        if not isinstance(profile, SqlCatalog | GlueCatalog):
            return None
        warehouse = profile.warehouse or storage_location(self.artifacts)
        if not warehouse:
            return None
        if "://" not in warehouse:
            warehouse = self.artifacts.resolve_path(warehouse).as_uri()
        database = f"{namespace}.db" if isinstance(profile, GlueCatalog) else namespace
        return f"{warehouse.rstrip('/')}/{database}/{table}"

    def iceberg_catalog_identity(self) -> tuple[str, str]:
        """(symlink namespace, catalog facet `type`) of the pipeline's Iceberg catalog."""
        profile = self.artifacts.catalog.profile
        if isinstance(profile, SqlCatalog):
            return public_uri(sqlite_uri(profile.uri, Path(self.artifacts.project_root))), "sql"
        if isinstance(profile, PolarisCatalog | RestCatalog):
            return public_uri(profile.uri.rstrip("/")), profile.type
        account = profile.catalog_id
        return (f"arn:aws:glue:{profile.region}:{account}" if account else "glue"), "glue"

    def _iceberg(
        self,
        namespace: str,
        table: str,
        columns: tuple[tuple[str, str], ...],
        location: str | None,
        rows: int | None,
        assertions: Sequence[Assertion],
        descriptions: Mapping[str, str],
    ) -> Dataset:
        profile = self.artifacts.catalog.profile
        symlink_ns, kind = self.iceberg_catalog_identity()
        identifier = f"{namespace}.{table}"
        if isinstance(profile, GlueCatalog):
            symlink_name = f"table/{namespace}/{table}"  # the naming conventions' Glue name
        else:
            symlink_name = identifier
        warehouse: str | None
        properties: dict[str, str] = {}
        if isinstance(profile, PolarisCatalog | RestCatalog):
            warehouse = None
            if profile.warehouse:
                properties["warehouse"] = profile.warehouse
        else:
            warehouse = profile.warehouse or storage_location(self.artifacts)
            if warehouse and "://" not in warehouse:
                warehouse = self.artifacts.resolve_path(warehouse).as_uri()
        catalog = catalog_facet(
            kind,
            self.artifacts.catalog.name,
            metadata_uri=symlink_ns if "://" in symlink_ns else None,
            warehouse_uri=warehouse,
            properties=properties,
        )
        location = location or self.iceberg_location(namespace, table)
        facets: dict[str, Any] = {"catalog": catalog}
        if location:
            ds_ns, ds_name = location_dataset(location)
            if symlink_ns != "glue":  # a Glue catalog without its account id has no name
                facets["symlinks"] = symlinks_facet([(symlink_ns, symlink_name)])
        else:
            ds_ns, ds_name = symlink_ns, symlink_name
        return Dataset(
            ds_ns,
            ds_name,
            columns,
            facets,
            rows=rows,
            assertions=assertions,
            descriptions=descriptions,
        )

    def _default_database(self) -> str | None:
        """The database of a relation whose manifest entry names none."""
        profile = self.artifacts.compute.profile
        if isinstance(profile, DuckDBCompute):
            return "memory" if profile.path == ":memory:" else Path(profile.path).stem
        if isinstance(profile, PostgresCompute):
            return profile.dbname
        return None

    # -- dbt tests → assertions
    def tested_nodes(self, test_props: Mapping[str, Any]) -> list[str]:
        """The nodes a test checks: the one it is attached to, or a singular test's parents."""
        attached = test_props.get("attached_node")
        if attached:
            return [str(attached)]
        return [
            str(dep)
            for dep in (test_props.get("depends_on") or {}).get("nodes", [])
            if str(dep).split(".")[0] in ("model", "seed", "snapshot", "source")
        ]

    def assertion(
        self, test_props: Mapping[str, Any], status: str, failures: int | None = None
    ) -> Assertion | None:
        """A dbt test's result as an assertion (None when it did not run: skipped, unknown).

        `assertion` is the generic test (`not_null`, `unique`, …) or a singular test's
        name; `column` the tested column when there is one; `success` whether the test
        found no failing rows (a `warn` result is a failure of severity warn).
        """
        status = status.lower()
        if status not in ("pass", "fail", "warn", "error"):
            return None
        metadata = test_props.get("test_metadata") or {}
        name = str(test_props.get("name") or "")
        column = (metadata.get("kwargs") or {}).get("column_name") or test_props.get("column_name")
        severity = (test_props.get("config") or {}).get("severity")
        return Assertion(
            assertion=str(metadata.get("name") or name),
            success=status == "pass",
            column=str(column) if column else None,
            name=name or None,
            severity=str(severity).lower() if severity else None,
            actual=str(failures) if failures is not None else None,
        )


class _NoIcebergForm(Exception):
    """A partitioning another adapter understands that has no Iceberg partition spec."""


#: A plain column name, and a transform call: `day(ts)`, `bucket(16, id)`, `bucket(id, 16)`.
_COLUMN = re.compile(r"[A-Za-z_][\w$]*")
_CALL = re.compile(r"(\w+)\s*\((.*)\)", re.DOTALL)


def _partition_fields(value: Any) -> tuple[PartitionColumn, ...]:
    """The partition fields a `partition_by`/`meta.floe.partition` value names."""
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list | tuple) else [value]
    fields: list[PartitionColumn] = []
    for item in items:
        field = _partition_field(item)
        coarser = next(
            (
                i
                for i, f in enumerate(fields)
                if f.column == field.column and _time(f) and _time(field)
            ),
            None,
        )
        if coarser is None:
            fields.append(field)
        elif _TIME_ORDER.index(field.transform) < _TIME_ORDER.index(fields[coarser].transform):
            fields[coarser] = field
    return tuple(fields)


#: Iceberg's time transforms, finest first: each implies those after it.
_TIME_ORDER = ("hour", "day", "month", "year")


def _time(field: PartitionColumn) -> bool:
    return field.transform in _TIME_ORDER


def _partition_field(item: Any) -> PartitionColumn:
    if isinstance(item, str):
        text = item.strip().strip('"`')
        if _COLUMN.fullmatch(text):
            return PartitionColumn(text)
        call = _CALL.fullmatch(text)
        if call is None or call.group(1).lower() not in TRANSFORM_NAMES:
            raise _NoIcebergForm(f"{item!r} is neither a column nor an Iceberg transform")
        args = [a.strip().strip('"`') for a in call.group(2).split(",")]
        numbers = [a for a in args if a.isdigit()]
        columns = [a for a in args if _COLUMN.fullmatch(a)]
        if len(columns) != 1 or len(numbers) + len(columns) != len(args) or len(numbers) > 1:
            raise PartitionError(
                f"{item!r}: a transform takes one column (and bucket/truncate a number)"
            )
        number = int(numbers[0]) if numbers else None
        return PartitionColumn(columns[0], partition_transform(call.group(1), number))
    if isinstance(item, Mapping) and "column" in item:
        unknown = sorted(set(item) - {"column", "transform"})
        if unknown:
            raise PartitionError(f"unknown key {unknown[0]!r} (a field is {{column, transform}})")
        return PartitionColumn(
            str(item["column"]), partition_transform(str(item.get("transform") or "identity"))
        )
    if isinstance(item, Mapping) and "field" in item:  # BigQuery's partition_by
        data_type = str(item.get("data_type") or "date").lower()
        if "range" in item or data_type in ("int64", "integer", "int"):
            raise _NoIcebergForm("integer range partitioning")
        if item.get("time_ingestion_partitioning"):
            raise _NoIcebergForm("ingestion-time partitioning")
        granularity = str(item.get("granularity") or "day").lower()
        if granularity not in ("hour", "day", "month", "year"):
            raise PartitionError(f"unknown granularity {granularity!r} (hour, day, month, year)")
        return PartitionColumn(str(item["field"]), granularity)
    raise PartitionError(
        f"{item!r} is not a partition field: a column name, `transform(column)` or "
        "{column, transform}"
    )


def _source_config(props: Mapping[str, Any]) -> dict[str, Any]:
    """A source's settings as dbt-duckdb reads them: source meta, table meta, config extras."""
    merged: dict[str, Any] = {}
    for part in (
        props.get("source_meta"),
        props.get("meta"),
        (props.get("config") or {}).get("meta"),
    ):
        if isinstance(part, Mapping):
            merged.update(part)
    config = props.get("config") or {}
    for key in ("plugin", "iceberg_table", "external_location", "formatter"):
        if key in config:
            merged[key] = config[key]
    return merged


def _format(template: str, props: Mapping[str, Any], config: Mapping[str, Any]) -> str | None:
    """A dbt-duckdb source template (`{schema}.{identifier}`) filled in; None if it cannot be."""
    values = {
        "name": props.get("name"),
        "identifier": props.get("identifier") or props.get("name"),
        "schema": props.get("schema"),
        "database": props.get("database"),
        **config,
    }
    if str(config.get("formatter") or "newstyle") != "newstyle":
        return None
    try:
        return template.format_map(values)
    except (KeyError, IndexError, ValueError):
        return None


def _quoted_path(location: str) -> str | None:
    """The path in `read_parquet('s3://b/x.parquet')`, or the location itself."""
    if "(" not in location:
        return location.strip("'\"")
    match = re.search(r"'([^']+)'", location)
    return match.group(1) if match else None


def node_props(manifest: Mapping[str, Any], unique_id: str) -> Mapping[str, Any]:
    """A node's manifest entry (model, test, seed, snapshot, source, unit test)."""
    for section in ("nodes", "sources", "unit_tests"):
        value = manifest.get(section, {}).get(unique_id)
        if value is not None:
            return value  # type: ignore[no-any-return]
    return {"name": unique_id.split(".")[-1], "unique_id": unique_id, "resource_type": ""}
