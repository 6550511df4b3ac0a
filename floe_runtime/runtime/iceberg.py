"""Publishing dbt-built tables to an Iceberg catalog with pyiceberg.

Catalog properties (including resolved secrets) are built in memory, never written.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from floe_runtime.compiler import catalog as catalog_mapping
from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.config.platform import GcsStorage, PolarisCatalog, RestCatalog, SqlCatalog
from floe_runtime.runtime.secrets import Secrets

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped]
    from pyiceberg.catalog import Catalog
    from pyiceberg.manifest import DataFile
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table, Transaction
    from pyiceberg.table.update.schema import UpdateSchema
    from pyiceberg.typedef import TableVersion
    from pyiceberg.types import IcebergType


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
    storage = artifacts.storage.profile
    if isinstance(storage, GcsStorage) and storage.credentials is not None:
        ref = storage.credentials.service_account_json.secret_ref
        props.update(gcs_token_properties(secrets.get(ref), ref))
    uri = props.get("uri", "")
    if props.get("type") == "sql" and uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    warehouse = props.get("warehouse", "")
    if props.get("type") == "sql" and warehouse.startswith("file://"):
        Path(warehouse[len("file://") :]).mkdir(parents=True, exist_ok=True)
    return props


GCS_SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"


def gcs_token_properties(service_account_json: str, ref: str) -> dict[str, str]:
    """`gcs.oauth2.token` (+ expiry) from a service account key, exchanged in memory.

    pyarrow's GcsFileSystem, pyiceberg's FileIO for `gs://`, takes an access token, not a
    key file: the key is signed into a JWT and exchanged at its `token_uri` (google-auth).
    """
    import json
    from datetime import UTC

    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    try:
        info = json.loads(service_account_json)
        creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[GCS_SCOPE]
        )
    except (ValueError, KeyError, TypeError):
        # Never chain: the message of a parse error may quote the key.
        raise ValueError(f"secret {ref!r} is not a service account key JSON") from None
    creds.refresh(Request())
    props = {"gcs.oauth2.token": str(creds.token)}
    if creds.expiry is not None:
        expiry = creds.expiry.replace(tzinfo=UTC)
        props["gcs.oauth2.token-expires-at"] = str(int(expiry.timestamp() * 1000))
    return props


def _adls_file_io() -> type:
    from pyiceberg.io.pyarrow import PyArrowFileIO
    from pyiceberg.typedef import EMPTY_DICT, Properties

    class AdlsPyArrowFileIO(PyArrowFileIO):
        """PyArrowFileIO that reads ADLS locations as Iceberg writes them.

        `abfss://container@account.dfs.core.windows.net/path`: pyiceberg 0.12 hands
        `container@account.dfs.core.windows.net/path` to pyarrow's AzureFileSystem, which
        wants `container/path` (the account comes from `adls.account-name`).
        """

        @staticmethod
        def parse_location(
            location: str, properties: Properties = EMPTY_DICT
        ) -> tuple[str, str, str]:
            scheme, netloc, path = PyArrowFileIO.parse_location(location, properties)
            if scheme in {"abfs", "abfss", "wasb", "wasbs"} and "@" in netloc:
                path = netloc.split("@", 1)[0] + path[len(netloc) :]
            return scheme, netloc, path

    return AdlsPyArrowFileIO


def __getattr__(name: str) -> object:
    # `py-io-impl` names this class; built on first use so importing this module stays light.
    if name == "AdlsPyArrowFileIO":
        cls = _adls_file_io()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    """What a publish wrote.

    `schema_changes` lists, one human-readable line each, how the table's schema changed to
    follow the model (``amount: int → long (promoted)``, ``code: string → int (replaced)``,
    ``old_col removed``, ``new_col added (string)``); empty when it did not change.
    """

    identifier: str
    rows: int
    snapshot_id: int | None
    columns: list[tuple[str, str]]
    schema_changes: list[str] = dataclasses.field(default_factory=list)
    #: The table's location (`table.location()`): how OpenLineage names the dataset.
    location: str | None = None


def publish_table(
    catalog: Catalog,
    namespace: str,
    name: str,
    data: pa.Table,
    properties: Mapping[str, str],
    ensure_namespace: bool = True,
) -> PublishResult:
    """Replace the table's content with `data` in one commit and one snapshot.

    The table's schema follows `data`: promotable types (int → long, float → double,
    decimal(P,S) → decimal(P',S) with P' > P) evolve in place and keep their column ids; any
    other type change replaces the column (a new column id under the same name), columns the
    model no longer has are removed and new ones added. All of it, the table `properties` and
    the new data files go to the catalog as one commit holding one `overwrite` snapshot, so
    readers see the old schema with the old rows or the new schema with the new rows, never
    a mix and never an empty table in between. If the commit fails (including a conflicting
    concurrent commit), the table stays at its previous snapshot and schema, and the data
    files written for it are deleted again.

    A new table is created together with its first snapshot in one commit.
    """
    from pyiceberg.exceptions import NoSuchTableError

    data = iceberg_compatible(data)
    ident = (*namespace.split("."), name)
    if ensure_namespace:
        catalog.create_namespace_if_not_exists(tuple(namespace.split(".")))
    changes: list[str] = []
    try:
        table = catalog.load_table(ident)
    except NoSuchTableError:
        tx = catalog.create_table_transaction(
            ident, schema=data.schema, properties=dict(properties)
        )
        tx.append(data)
        table = tx.commit_transaction()
    else:
        table, changes = _replace(table, ".".join(ident), data, properties)
    snapshot = table.current_snapshot()
    columns = [(f.name, str(f.field_type)) for f in table.schema().fields]
    return PublishResult(
        ".".join(ident),
        data.num_rows,
        snapshot.snapshot_id if snapshot else None,
        columns,
        changes,
        table.location(),
    )


def _replace(
    table: Table, identifier: str, data: pa.Table, properties: Mapping[str, str]
) -> tuple[Table, list[str]]:
    """Evolve the schema, set the properties and swap all data files in one transaction.

    pyiceberg's own `Transaction.overwrite` stages a DELETE snapshot and then an APPEND one
    (time travel to the first shows an empty table), so the swap is one explicit overwrite
    snapshot: every data file of the current snapshot deleted, the new ones added.
    """
    from pyiceberg.exceptions import CommitFailedException, ValidationException
    from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible, _dataframe_to_data_files
    from pyiceberg.table.update import AssertCurrentSchemaId

    current = table.schema()
    plan = _plan_schema(current, _iceberg_schema(data.schema, table.format_version))
    _check_changeable(table, identifier, plan)
    previous_files = _live_data_files(table)

    tx = table.transaction()
    # The changes were worked out against this schema: a concurrent schema change must fail
    # the commit rather than be overwritten. (Schema updates add the same requirement.)
    tx._stage((), (AssertCurrentSchemaId(current_schema_id=current.schema_id),))
    tx.set_properties(dict(properties))
    _evolve(tx, plan)
    _check_pyarrow_schema_compatible(
        tx.table_metadata.schema(), data.schema, format_version=tx.table_metadata.format_version
    )

    written: list[DataFile] = []
    committing = False
    try:
        swap = tx.update_snapshot().overwrite()
        for data_file in previous_files:
            swap.delete_data_file(data_file)
        if data.num_rows:  # (pyiceberg cannot bin-pack an empty table: no files then)
            for data_file in _dataframe_to_data_files(
                table_metadata=tx.table_metadata, df=data, io=table.io, write_uuid=swap.commit_uuid
            ):
                written.append(data_file)
                swap.append_data_file(data_file)
        swap.commit()  # stages the snapshot (built on the evolved schema) into `tx`
        committing = True
        table = tx.commit_transaction()
    except BaseException as exc:
        # Before the commit, or when the catalog says it refused it, nothing references the
        # new files. Any other commit error leaves the outcome unknown: keep them then.
        if not committing or isinstance(exc, CommitFailedException | ValidationException):
            for data_file in written:
                with contextlib.suppress(Exception):
                    table.io.delete(data_file.file_path)
        raise
    return table, plan.lines


@dataclass
class _SchemaPlan:
    """How the table's top-level columns change to become the model's."""

    removed: list[str] = dataclasses.field(default_factory=list)
    replaced: dict[str, IcebergType] = dataclasses.field(default_factory=dict)
    promoted: dict[str, IcebergType] = dataclasses.field(default_factory=dict)
    optional: list[str] = dataclasses.field(default_factory=list)
    added: dict[str, IcebergType] = dataclasses.field(default_factory=dict)
    order: list[str] = dataclasses.field(default_factory=list)  # the model's column order
    reorder: bool = False  # whether the columns need moving to get that order
    lines: list[str] = dataclasses.field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.removed
            or self.replaced
            or self.promoted
            or self.optional
            or self.added
            or self.reorder
        )


def _plan_schema(current: Schema, target: Schema) -> _SchemaPlan:
    """Compare the table's schema with the model's (top-level columns, by exact name)."""
    plan = _SchemaPlan(order=[f.name for f in target.fields])
    old = {f.name: f for f in current.fields}
    for new in target.fields:
        was = old.get(new.name)
        if was is None:
            plan.added[new.name] = new.field_type
            plan.lines.append(f"{new.name} added ({_type_text(new.field_type)})")
            continue
        old_text, new_text = _type_text(was.field_type), _type_text(new.field_type)
        if _fits(was.field_type, new.field_type):
            pass
        elif _promotable(was.field_type, new.field_type):
            plan.promoted[new.name] = new.field_type
            plan.lines.append(f"{new.name}: {old_text} → {new_text} (promoted)")
        else:
            plan.replaced[new.name] = new.field_type
            plan.lines.append(f"{new.name}: {old_text} → {new_text} (replaced)")
        if was.required and new.name not in plan.replaced:
            plan.optional.append(new.name)
            plan.lines.append(f"{new.name}: required → optional")
    wanted = set(plan.order)
    for was in current.fields:
        if was.name not in wanted:
            plan.removed.append(was.name)
            plan.lines.append(f"{was.name} removed")
    # Added and replaced columns land at the end; move columns only if that is not the order.
    kept_before = [
        f.name for f in current.fields if f.name in wanted and f.name not in plan.replaced
    ]
    kept_after = [n for n in plan.order if n in old and n not in plan.replaced]
    appended = [n for n in plan.order if n in plan.added or n in plan.replaced]
    plan.reorder = kept_before + appended != plan.order
    if kept_before != kept_after:
        plan.lines.append("columns reordered: " + ", ".join(plan.order))
    return plan


def _evolve(tx: Transaction, plan: _SchemaPlan) -> None:
    """Stage the plan's schema changes in `tx` (not yet committed)."""
    if plan.empty:
        return
    with tx.update_schema() as update:
        for name in plan.removed:
            update.delete_column(name)
        for name in plan.order:
            if name in plan.replaced:
                # Delete and re-add under the same name: allowed in one update, and the new
                # column gets a fresh id, so old files are never read with the new type.
                update.delete_column(name)
                update.add_column(name, plan.replaced[name])
            elif name in plan.promoted:
                update.update_column(name, plan.promoted[name])
            elif name in plan.added:
                update.add_column(name, plan.added[name])
        for name in plan.optional:
            update.make_column_optional(name)
        if plan.reorder and not plan.replaced:
            _move_into_order(update, plan.order)
    if plan.reorder and plan.replaced:
        # Within the update above a replaced column's name still means the deleted column,
        # so moving it fails; a second update on the staged schema (same commit) can.
        with tx.update_schema() as update:
            _move_into_order(update, plan.order)


def _move_into_order(update: UpdateSchema, order: list[str]) -> None:
    for position, name in enumerate(order):
        if position == 0:
            update.move_first(name)
        else:
            update.move_after(name, order[position - 1])


def _check_changeable(table: Table, identifier: str, plan: _SchemaPlan) -> None:
    """Refuse to drop or retype a column the table's layout depends on (before writing)."""
    schema = table.schema()
    used: dict[int, str] = {}
    for spec_field in table.spec().fields:
        used.setdefault(spec_field.source_id, "partition spec")
    for sort_field in table.sort_order().fields:
        used.setdefault(sort_field.source_id, "sort order")
    for field_id in schema.identifier_field_ids:
        used.setdefault(field_id, "identifier fields")
    for name in [*plan.removed, *plan.replaced]:
        if (what := used.get(schema.find_field(name).field_id)) is not None:
            verb = "remove" if name in plan.removed else "change the type of"
            raise ValueError(
                f"cannot {verb} column {name!r} of Iceberg table {identifier}: its {what} uses it"
            )


def _live_data_files(table: Table) -> list[DataFile]:
    """The data files of the table's current snapshot."""
    from pyiceberg.manifest import ManifestContent

    snapshot = table.current_snapshot()
    if snapshot is None:
        return []
    return [
        entry.data_file
        for manifest in snapshot.manifests(table.io)
        if manifest.content == ManifestContent.DATA
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
    ]


def _iceberg_schema(arrow_schema: pa.Schema, format_version: TableVersion) -> Schema:
    """The Iceberg schema (ids not yet assigned) pyiceberg makes of an Arrow schema."""
    from pyiceberg.io.pyarrow import _pyarrow_to_schema_without_ids

    return _pyarrow_to_schema_without_ids(arrow_schema, format_version=format_version)


def _promotable(old: IcebergType, new: IcebergType) -> bool:
    """Iceberg's in-place type promotions (spec "Schema Evolution"; pyiceberg's `promote`).

    pyiceberg's `promote` also lets decimal scale change (it compares a scale with itself)
    and string ↔ binary pass, which the spec does not allow, so the rules are spelt out.
    There is no date → timestamp promotion.
    """
    from pyiceberg.types import DecimalType, DoubleType, FloatType, IntegerType, LongType

    if isinstance(old, IntegerType):
        return isinstance(new, LongType)
    if isinstance(old, FloatType):
        return isinstance(new, DoubleType)
    if isinstance(old, DecimalType) and isinstance(new, DecimalType):
        return new.scale == old.scale and new.precision > old.precision
    return False


def _fits(old: IcebergType, new: IcebergType) -> bool:
    """Whether the column type `old` already is `new` (ignoring ids; optional may hold required)."""
    from pyiceberg.types import ListType, MapType, StructType

    if isinstance(old, StructType) and isinstance(new, StructType):
        return len(old.fields) == len(new.fields) and all(
            a.name == b.name
            and (b.required or not a.required)
            and _fits(a.field_type, b.field_type)
            for a, b in zip(old.fields, new.fields, strict=True)
        )
    if isinstance(old, ListType) and isinstance(new, ListType):
        return (new.element_required or not old.element_required) and _fits(
            old.element_type, new.element_type
        )
    if isinstance(old, MapType) and isinstance(new, MapType):
        return (
            (new.value_required or not old.value_required)
            and _fits(old.key_type, new.key_type)
            and _fits(old.value_type, new.value_type)
        )
    if old.is_primitive and new.is_primitive:
        return old == new
    return False


def _type_text(t: IcebergType) -> str:
    """An Iceberg type as text, without the field ids nested types print."""
    from pyiceberg.types import ListType, MapType, StructType

    if isinstance(t, StructType):
        return (
            "struct<" + ", ".join(f"{f.name}: {_type_text(f.field_type)}" for f in t.fields) + ">"
        )
    if isinstance(t, ListType):
        return f"list<{_type_text(t.element_type)}>"
    if isinstance(t, MapType):
        return f"map<{_type_text(t.key_type)}, {_type_text(t.value_type)}>"
    return str(t)
