"""Helpers shared by the publishing tests: a compiled project over one compute engine, and
what an Iceberg table's current snapshot holds."""

from __future__ import annotations

from pathlib import Path

from pyiceberg.manifest import DataFile
from pyiceberg.table import Table

from floe_runtime.analysis import discover
from floe_runtime.compiler import compile_project
from floe_runtime.compiler.artifacts import CompiledArtifacts


def compiled_project(root: Path, compute: str) -> CompiledArtifacts:
    """A compiled floe project over `compute` (platform.yaml flow mapping), with a SQL
    catalog and a local warehouse under `root/.floe`."""
    (root / "dbt").mkdir(parents=True)
    (root / "dbt" / "dbt_project.yml").write_text(
        'name: p\nversion: "1.0.0"\nconfig-version: 2\nprofile: p\n'
    )
    (root / "floe.yaml").write_text(
        'name: p\nversion: "1.0.0"\ntransforms:\n  - type: dbt\n    path: ./dbt\n'
    )
    (root / "platform.yaml").write_text(
        'version: "1"\nstorage:\n  default: {type: local, path: ./.floe/warehouse}\n'
        'catalogs:\n  default: {type: sql, uri: "sqlite:///.floe/catalog.db"}\n'
        f"compute:\n  default: {compute}\n"
    )
    return compile_project(discover(root))


def data_files(table: Table) -> list[DataFile]:
    """The data files of the table's current snapshot."""
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return [
        entry.data_file
        for manifest in snapshot.manifests(table.io)
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
    ]
