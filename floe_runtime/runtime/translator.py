"""The dbt ↔ Dagster seam: one object that maps dbt nodes to Dagster assets, Iceberg tables
and OpenLineage datasets (like dagster-dbt's own DagsterDbtTranslator)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import AssetKey
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

from floe_runtime.compiler.artifacts import CompiledArtifacts, DbtTarget
from floe_runtime.config.platform import DuckDBCompute, PostgresCompute
from floe_runtime.runtime.iceberg import catalog_namespace_uri
from floe_runtime.runtime.lineage import Dataset

#: dbt resource types that become Dagster assets with their own span and lineage run.
ASSET_TYPES = ("model", "seed", "snapshot")
#: dbt materializations published as Iceberg tables.
PUBLISHED_MATERIALIZATIONS = ("table", "incremental")


def compute_namespace(artifacts: CompiledArtifacts) -> str:
    """The OpenLineage namespace of relations in the compute engine (no secrets)."""
    profile = artifacts.compute.profile
    if isinstance(profile, DuckDBCompute):
        path = profile.path
        return "duckdb://" + (path if path == ":memory:" else str(artifacts.resolve_path(path)))
    if isinstance(profile, PostgresCompute):
        return f"postgres://{profile.host}:{profile.port}"
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
        materialized = props.get("config", {}).get("materialized") or props.get("materialized")
        return props.get("resource_type") == "model" and materialized in PUBLISHED_MATERIALIZATIONS

    def iceberg_identifier(self, props: Mapping[str, Any]) -> tuple[str, str]:
        """(namespace, table) of the Iceberg table a model is published as."""
        return self.namespace, str(props.get("alias") or props["name"])

    # -- OpenLineage
    def lineage_job_name(self, props: Mapping[str, Any]) -> str:
        """The OpenLineage job of a node: `<pipeline>.<node name>`."""
        return f"{self.artifacts.pipeline.name}.{props['name']}"

    def compute_dataset(self, props: Mapping[str, Any]) -> Dataset:
        """The relation a node builds (or a source it reads) in the compute engine."""
        parts = [props.get("database"), props.get("schema"), props.get("alias") or props["name"]]
        if props.get("resource_type") == "source":
            parts[2] = props.get("identifier") or props["name"]
        columns = [
            (name, str(col.get("data_type") or ""))
            for name, col in (props.get("columns") or {}).items()
        ]
        return Dataset(self._compute_ns, ".".join(p for p in parts if p), columns)

    def iceberg_dataset(self, props: Mapping[str, Any], columns: list[tuple[str, str]]) -> Dataset:
        """The Iceberg table a model was published as."""
        return Dataset(self._catalog_ns, ".".join(self.iceberg_identifier(props)), columns)


def node_props(manifest: Mapping[str, Any], unique_id: str) -> Mapping[str, Any]:
    """A node's manifest entry (model, test, seed, snapshot, source, unit test)."""
    for section in ("nodes", "sources", "unit_tests"):
        value = manifest.get(section, {}).get(unique_id)
        if value is not None:
            return value  # type: ignore[no-any-return]
    return {"name": unique_id.split(".")[-1], "unique_id": unique_id, "resource_type": ""}
