"""Publishing dbt-built tables to an Iceberg catalog with pyiceberg.

Catalog properties (including resolved secrets) are built in memory, never written.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floe_runtime.compiler import catalog as catalog_mapping
from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.config.platform import PolarisCatalog, RestCatalog, SqlCatalog
from floe_runtime.runtime.secrets import Secrets

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped]
    from pyiceberg.catalog import Catalog


def storage_location(artifacts: CompiledArtifacts) -> str | None:
    """The warehouse location of the pipeline's storage profile, as a URI."""
    return catalog_mapping.storage_location(artifacts.storage.profile, Path(artifacts.project_root))


def catalog_properties(artifacts: CompiledArtifacts, secrets: Secrets) -> dict[str, str]:
    """The pyiceberg properties of the resolved catalog (in memory only: may hold secrets).

    Local folders the catalog needs (the SQLite file's folder, a file:// warehouse)
    are created here, at run time, not when compiling.
    """
    props = catalog_mapping.catalog_properties(
        artifacts.storage.profile,
        artifacts.catalog.profile,
        Path(artifacts.project_root),
        secrets.get,
    )
    uri = props.get("uri", "")
    if props.get("type") == "sql" and uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    warehouse = props.get("warehouse", "")
    if props.get("type") == "sql" and warehouse.startswith("file://"):
        Path(warehouse[len("file://") :]).mkdir(parents=True, exist_ok=True)
    return props


def catalog_namespace_uri(artifacts: CompiledArtifacts) -> str:
    """The OpenLineage dataset namespace of the catalog's tables (no secrets)."""
    profile = artifacts.catalog.profile
    if isinstance(profile, SqlCatalog):
        uri = catalog_mapping.sqlite_uri(profile.uri, Path(artifacts.project_root))
        return "iceberg+" + uri.split("@")[-1]
    if isinstance(profile, PolarisCatalog | RestCatalog):
        base = profile.uri.rstrip("/")
        return f"iceberg+{base}" + (f"/{profile.warehouse}" if profile.warehouse else "")
    return f"iceberg+glue://{profile.region}"


def load_catalog(artifacts: CompiledArtifacts, secrets: Secrets) -> Catalog:
    """Open the resolved catalog."""
    from pyiceberg.catalog import load_catalog as _load

    return _load(artifacts.catalog.name, **catalog_properties(artifacts, secrets))


def iceberg_compatible(table: pa.Table) -> pa.Table:
    """Cast Arrow types Iceberg cannot store (ns timestamps, unsigned ints, nulls) to ones it can."""
    import pyarrow as pa

    fields = []
    changed = False
    for field in table.schema:
        t = field.type
        new = t
        if pa.types.is_timestamp(t) and t.unit != "us":
            new = pa.timestamp("us", tz=t.tz)
        elif pa.types.is_time(t) and t != pa.time64("us"):
            new = pa.time64("us")
        elif pa.types.is_unsigned_integer(t):
            new = pa.int64()
        elif pa.types.is_integer(t) and t.bit_width < 32:
            new = pa.int32()
        elif pa.types.is_null(t):
            new = pa.string()
        elif pa.types.is_float16(t):
            new = pa.float32()
        elif pa.types.is_decimal(t) and t.precision > 38:
            new = pa.float64()
        changed = changed or new != t
        fields.append(pa.field(field.name, new, nullable=True))
    schema = pa.schema(fields)
    if changed or any(not f.nullable for f in table.schema):
        table = table.cast(schema, safe=False)
    return table


@dataclass(frozen=True)
class PublishResult:
    """What a publish wrote."""

    identifier: str
    rows: int
    snapshot_id: int | None
    columns: list[tuple[str, str]]


def publish_table(
    catalog: Catalog,
    namespace: str,
    name: str,
    data: pa.Table,
    properties: Mapping[str, str],
    ensure_namespace: bool = True,
) -> PublishResult:
    """Replace the table's content with `data` in one atomic snapshot, evolving added columns."""
    from pyiceberg.exceptions import NoSuchTableError

    data = iceberg_compatible(data)
    ident = (*namespace.split("."), name)
    if ensure_namespace:
        catalog.create_namespace_if_not_exists(tuple(namespace.split(".")))
    try:
        table = catalog.load_table(ident)
    except NoSuchTableError:
        table = catalog.create_table(ident, schema=data.schema, properties=dict(properties))
        table.append(data)
    else:
        if _needs_evolution(table.schema(), data.schema):
            # A separate commit before the data: a column added by the model is optional, so
            # readers of the previous snapshot are unaffected if the overwrite then fails.
            with table.update_schema() as update:
                update.union_by_name(data.schema)
        with warnings.catch_warnings():
            # pyiceberg warns when the overwrite's delete matched nothing (an empty table).
            warnings.simplefilter("ignore", UserWarning)
            with table.transaction() as tx:
                tx.set_properties(dict(properties))
                tx.overwrite(data)
    snapshot = table.current_snapshot()  # the transaction refreshed `table` on commit
    columns = [(f.name, str(f.field_type)) for f in table.schema().fields]
    return PublishResult(
        ".".join(ident), data.num_rows, snapshot.snapshot_id if snapshot else None, columns
    )


def _needs_evolution(current: Any, arrow_schema: pa.Schema) -> bool:
    names = {f.name for f in current.fields}
    return any(field.name not in names for field in arrow_schema)
