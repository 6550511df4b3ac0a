"""Publishing dbt-built tables to an Iceberg catalog with pyiceberg.

Catalog properties (including resolved secrets) are built in memory, never written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from floe_runtime.compiler import catalog as catalog_mapping
from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.config.platform import GcsStorage, PolarisCatalog, RestCatalog, SqlCatalog
from floe_runtime.runtime.compute import (
    Candidates,
    Fingerprint,
    ParquetFiles,
    Published,
    RelationData,
)
from floe_runtime.runtime.secrets import Secrets

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped]
    from pyiceberg.catalog import Catalog
    from pyiceberg.io import FileIO
    from pyiceberg.manifest import DataFile
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table, Transaction
    from pyiceberg.table.metadata import TableMetadata
    from pyiceberg.table.update.schema import UpdateSchema
    from pyiceberg.transforms import Transform
    from pyiceberg.typedef import TableVersion
    from pyiceberg.types import IcebergType, NestedField


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


def compatible_schema(schema: pa.Schema) -> pa.Schema:
    """The Arrow schema with types Iceberg cannot store (ns timestamps, unsigned ints,
    nulls) cast to ones it can, every column optional."""
    import pyarrow as pa

    fields = []
    for field in schema:
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
        fields.append(pa.field(field.name, new, nullable=True))
    return pa.schema(fields)


def iceberg_compatible(table: pa.Table) -> pa.Table:
    """Cast Arrow types Iceberg cannot store (ns timestamps, unsigned ints, nulls) to ones it can."""
    schema = compatible_schema(table.schema)
    return table if schema == table.schema else table.cast(schema, safe=False)


@dataclass(frozen=True)
class Increment:
    """How dbt builds an incremental model, for publishing only what a run changed.

    `unique_key` names the key columns (empty without a key: rows are only appended);
    `full_refresh` says the run rebuilt the model (then the table is rewritten).
    """

    strategy: str
    unique_key: tuple[str, ...] = ()
    full_refresh: bool = False


@dataclass(frozen=True)
class PublishResult:
    """What a publish wrote.

    `schema_changes` lists, one human-readable line each, how the table's schema changed to
    follow the model (``amount: int → long (promoted)``, ``code: string → int (replaced)``,
    ``old_col removed``, ``new_col added (string)``); empty when it did not change.
    `rows` is the table's row count after the publish; `mode` says how it got there:
    ``full`` (the content replaced), ``append`` (an incremental model's new rows added) or
    ``upsert`` (its new and changed rows, by unique key); `added_rows` are the rows that
    commit wrote.
    """

    identifier: str
    rows: int
    snapshot_id: int | None
    columns: list[tuple[str, str]]
    schema_changes: list[str] = dataclasses.field(default_factory=list)
    #: The table's location (`table.location()`): how OpenLineage names the dataset.
    location: str | None = None
    mode: str = "full"
    added_rows: int = 0
    #: How the partition spec changed (``partitioning: day(d) → month(d)``); "" if it did not.
    partition_change: str = ""


@dataclass(frozen=True)
class PartitionColumn:
    """One field of a table's partitioning: a column and an Iceberg transform.

    `transform` is Iceberg's own name (spec "Partition Transforms"): ``identity``,
    ``year``, ``month``, ``day``, ``hour``, ``bucket[N]`` or ``truncate[W]``.
    """

    column: str
    transform: str = "identity"

    def __str__(self) -> str:
        return self.column if self.transform == "identity" else f"{self.transform}({self.column})"


@dataclass(frozen=True)
class Partitioning:
    """How a model's Iceberg table is partitioned, as its configuration says.

    No fields: unpartitioned. `origin` names the configuration it came from
    (``partition_by``, ``meta.floe.partition``) and `model` the dbt model, for messages.
    """

    fields: tuple[PartitionColumn, ...] = ()
    origin: str = "partition_by"
    model: str = ""

    def __str__(self) -> str:
        return ", ".join(str(f) for f in self.fields) or "unpartitioned"


class PartitionError(ValueError):
    """A model's partitioning cannot be applied (unknown column or transform, wrong type)."""


#: Transform spellings floe accepts → Iceberg's name: Iceberg's own, Spark's plurals
#: (`days(ts)`), dbt-athena's and BigQuery's granularities.
TRANSFORM_NAMES = {
    "identity": "identity",
    "year": "year",
    "years": "year",
    "month": "month",
    "months": "month",
    "day": "day",
    "days": "day",
    "date": "day",
    "hour": "hour",
    "hours": "hour",
    "date_hour": "hour",
    "bucket": "bucket",
    "truncate": "truncate",
}
#: The transforms as floe's messages list them.
PARTITION_TRANSFORMS = "identity, year, month, day, hour, bucket[N], truncate[W]"


def partition_transform(text: str, argument: int | None = None) -> str:
    """Iceberg's name of a transform written `day`, `days`, `bucket[16]`, `bucket(16)` or
    (`bucket`, 16); PartitionError for anything else."""
    import re

    spelled = text.strip().lower()
    match = re.fullmatch(r"(\w+)\s*(?:\[\s*(\d+)\s*\]|\(\s*(\d+)\s*\))?", spelled)
    name = TRANSFORM_NAMES.get(match.group(1)) if match else None
    if match is None or name is None:
        raise PartitionError(
            f"unknown partition transform {text!r} (known: {PARTITION_TRANSFORMS})"
        )
    number = match.group(2) or match.group(3)
    if number is not None and argument is not None:
        raise PartitionError(f"partition transform {text!r} is given two numbers")
    width = int(number) if number is not None else argument
    if name in ("bucket", "truncate"):
        if width is None or width < 1:
            what = "a number of buckets" if name == "bucket" else "a width"
            raise PartitionError(f"partition transform {name} needs {what} ≥ 1: {name}[N]")
        return f"{name}[{width}]"
    if width is not None:
        raise PartitionError(f"partition transform {name} takes no number (got {text!r})")
    return name


#: Threads encoding Parquet when rows come as Arrow batches (object storage, PostgreSQL):
#: each one holds a file's dictionaries and row group, so memory, not cores, sets this.
WRITE_THREADS = 1
#: The data file size aimed at when the table sets no `write.target-file-size-bytes`.
TARGET_FILE_BYTES = 128 * 2**20
#: Snapshot summary properties saying what an incremental publish did, in rows.
INSERTED, UPDATED, DELETED = "floe.rows-inserted", "floe.rows-updated", "floe.rows-deleted"


def publish_table(
    catalog: Catalog,
    namespace: str,
    name: str,
    data: pa.Table | pa.RecordBatchReader | RelationData,
    properties: Mapping[str, str],
    ensure_namespace: bool = True,
    increment: Increment | None = None,
    partition: Partitioning | None = None,
) -> PublishResult:
    """Publish `data` as the table's content in one commit and one snapshot.

    `data` is read batch by batch (a `RelationData` from the compute engine, or Arrow) and
    written as Parquet data files of the table's target size, so memory stays bounded.

    The table's schema follows `data`: promotable types (int → long, float → double,
    decimal(P,S) → decimal(P',S) with P' > P) evolve in place and keep their column ids; any
    other type change replaces the column (a new column id under the same name), columns the
    model no longer has are removed and new ones added. All of it, the table `properties` and
    the new data files go to the catalog as one commit holding one snapshot, so readers see
    the old schema with the old rows or the new schema with the new rows, never a mix and
    never an empty table in between. If the commit fails (including a conflicting
    concurrent commit), the table stays at its previous snapshot and schema, and the data
    files written for it are deleted again.

    For an incremental model (`increment`), when the engine can show that the previous
    snapshot's rows are still there unchanged, only the rows appended since are published
    (an `append` snapshot); with a unique key, new and changed rows replace the published
    rows of their keys (an `overwrite` snapshot rewriting only the data files holding those
    keys). Otherwise, and on a full refresh, the content is replaced as above.

    `partition` is the partitioning the model's configuration asks for (None: leave the
    table's spec as it is). A new table is created with it; when it differs from the
    table's spec, the spec evolves (old data files keep the spec they were written with, so
    old snapshots stay readable) in the same commit as the data. A column or transform that
    does not fit raises PartitionError before anything is written.

    A new table is created together with its first snapshot in one commit: until that
    commit the catalog has no such table, so a publish that fails or is killed half way
    leaves no table at all, never an empty one.
    """
    import pyarrow as pa
    from pyiceberg.exceptions import NoSuchTableError

    from floe_runtime.runtime.compute import ArrowData

    source: RelationData = (
        ArrowData(data) if isinstance(data, pa.Table | pa.RecordBatchReader) else data
    )
    arrow_schema = compatible_schema(source.schema())
    ident = (*namespace.split("."), name)
    if ensure_namespace:
        catalog.create_namespace_if_not_exists(tuple(namespace.split(".")))
    changes: list[str] = []
    mode = "full"
    layout = _Layout(partition)
    try:
        table = catalog.load_table(ident)
    except NoSuchTableError:
        schema, spec = _new_table_layout(arrow_schema, properties, partition)
        if partition is not None and partition.fields:
            layout.change = f"partitioning: {partition}"
        fingerprint = _fingerprint(source, None, increment)
        # One commit creates the table and its first snapshot (a staged create).
        tx = catalog.create_table_transaction(
            ident, schema=schema, partition_spec=spec, properties=dict(properties)
        )
        table, added = _commit_files(
            tx, tx._table.io, "append", [], _all_rows(source), arrow_schema, fingerprint
        )
    else:
        outcome = _publish_increment(table, source, arrow_schema, properties, increment, layout)
        if isinstance(outcome, tuple):
            table, added, mode = outcome
        else:
            fingerprint = outcome or _fingerprint(source, None, increment)
            table, changes, added = _replace(
                table, ".".join(ident), source, arrow_schema, properties, fingerprint, layout
            )
    snapshot = table.current_snapshot()
    total = snapshot.summary.get("total-records") if snapshot and snapshot.summary else None
    columns = [(f.name, str(f.field_type)) for f in table.schema().fields]
    return PublishResult(
        ".".join(ident),
        int(total) if total is not None else added,
        snapshot.snapshot_id if snapshot else None,
        columns,
        changes,
        table.location(),
        mode,
        added,
        layout.change,
    )


@dataclass
class _Layout:
    """The partitioning a publish applies, and (once staged) how the spec changed."""

    partition: Partitioning | None
    change: str = ""

    def stage(self, tx: Transaction) -> None:
        """Evolve the spec in `tx` to the wanted partitioning (after any schema change)."""
        if self.partition is not None:
            self.change = _stage_partitioning(tx, self.partition)


def _new_table_layout(
    arrow_schema: pa.Schema, properties: Mapping[str, str], partition: Partitioning | None
) -> tuple[Schema, PartitionSpec]:
    """The schema (with ids) and partition spec of a new table, checked before anything
    is written."""
    from pyiceberg.partitioning import (
        PARTITION_FIELD_ID_START,
        UNPARTITIONED_PARTITION_SPEC,
        PartitionField,
        PartitionSpec,
    )
    from pyiceberg.schema import assign_fresh_schema_ids
    from pyiceberg.table import TableProperties
    from pyiceberg.utils.properties import property_as_int

    version = property_as_int(
        dict(properties), TableProperties.FORMAT_VERSION, TableProperties.DEFAULT_FORMAT_VERSION
    )
    schema = assign_fresh_schema_ids(_iceberg_schema(arrow_schema, version or 2))  # type: ignore[arg-type]
    if partition is None or not partition.fields:
        return schema, UNPARTITIONED_PARTITION_SPEC
    fields = [
        PartitionField(
            source_id, PARTITION_FIELD_ID_START + n, transform, _field_name(name, transform)
        )
        for n, (source_id, name, transform) in enumerate(_partition_fields(partition, schema))
    ]
    return schema, PartitionSpec(*fields)


def _field_name(column: str, transform: Transform[Any, Any]) -> str:
    """The partition field's name as pyiceberg's `update_spec` names it (`ts_day`)."""
    from pyiceberg.transforms import BucketTransform, IdentityTransform, TruncateTransform

    if isinstance(transform, IdentityTransform):
        return column
    if isinstance(transform, BucketTransform):
        return f"{column}_bucket_{transform.num_buckets}"
    if isinstance(transform, TruncateTransform):
        return f"{column}_trunc_{transform.width}"
    return f"{column}_{transform}"


def _partition_fields(
    partition: Partitioning, schema: Schema
) -> list[tuple[int, str, Transform[Any, Any]]]:
    """(source column id, column name, transform) of each wanted field, checked against the
    schema: the column exists, the transform applies to its type, no field twice."""
    from pyiceberg.transforms import TimeTransform, parse_transform

    where = partition.origin + (f" of model {partition.model}" if partition.model else "")
    fields: list[tuple[int, str, Transform[Any, Any]]] = []
    times: dict[int, str] = {}
    for wanted in partition.fields:
        field = _find_column(schema, wanted.column)
        if field is None:
            columns = ", ".join(f.name for f in schema.fields)
            raise PartitionError(
                f"{where}: {wanted.column!r} is not a column of the model (columns: {columns})"
            )
        try:
            transform = parse_transform(partition_transform(wanted.transform))
        except PartitionError as exc:
            raise PartitionError(f"{where}: {exc}") from None
        if not transform.can_transform(field.field_type):
            raise PartitionError(
                f"{where}: transform {transform} cannot partition column {field.name!r} "
                f"({_type_text(field.field_type)})"
            )
        if any(source == field.field_id and str(t) == str(transform) for source, _, t in fields):
            raise PartitionError(f"{where}: {wanted} is listed twice")
        if isinstance(transform, TimeTransform):
            if (other := times.get(field.field_id)) is not None:
                raise PartitionError(
                    f"{where}: column {field.name!r} is partitioned by both {other} and "
                    f"{transform}: keep one"
                )
            times[field.field_id] = str(transform)
        fields.append((field.field_id, field.name, transform))
    return fields


def _find_column(schema: Schema, name: str) -> NestedField | None:
    """A column by its exact name, else by its only case-insensitive match."""
    try:
        return schema.find_field(name)
    except ValueError:
        pass
    try:
        return schema.find_field(name, case_sensitive=False)
    except ValueError:
        return None


def _spec_text(spec: PartitionSpec, schema: Schema) -> str:
    """A partition spec as floe writes partitionings: `day(order_date), customer_id`."""
    from pyiceberg.transforms import IdentityTransform, VoidTransform

    parts = []
    for field in spec.fields:
        if isinstance(field.transform, VoidTransform):
            continue
        column = schema.find_column_name(field.source_id) or str(field.source_id)
        transform = field.transform
        parts.append(
            column if isinstance(transform, IdentityTransform) else f"{transform}({column})"
        )
    return ", ".join(parts) or "unpartitioned"


def _stage_partitioning(tx: Transaction, partition: Partitioning) -> str:
    """Evolve the spec staged in `tx` to `partition`: fields no longer wanted removed, new
    ones added (kept fields keep their ids). "" when the spec already is that, else the
    change as a line (`partitioning: day(d) → month(d)`)."""
    from pyiceberg.transforms import VoidTransform

    metadata = tx.table_metadata
    schema, current = metadata.schema(), metadata.spec()
    wanted = _partition_fields(partition, schema)
    wanted_keys = [(source, str(t)) for source, _, t in wanted]
    live = [f for f in current.fields if not isinstance(f.transform, VoidTransform)]
    current_keys = [(f.source_id, str(f.transform)) for f in live]
    if sorted(current_keys) == sorted(wanted_keys):
        return ""
    before = _spec_text(current, schema)
    with tx.update_spec() as update:
        for field in live:
            if (field.source_id, str(field.transform)) not in wanted_keys:
                update.remove_field(field.name)
        for (_, name, transform), key in zip(wanted, wanted_keys, strict=True):
            if key not in current_keys:
                update.add_field(name, transform)
    return f"partitioning: {before} → {_spec_text(tx.table_metadata.spec(), schema)}"


def _fingerprint(
    source: RelationData, previous: Fingerprint | None, increment: Increment | None
) -> Fingerprint | None:
    """What the relation holds now, recorded with an incremental model's snapshot."""
    if increment is None:
        return None
    state = source.fingerprint(previous)
    return state[0] if state else None


def _replace(
    table: Table,
    identifier: str,
    source: RelationData,
    arrow_schema: pa.Schema,
    properties: Mapping[str, str],
    fingerprint: Fingerprint | None,
    layout: _Layout,
) -> tuple[Table, list[str], int]:
    """Evolve the schema, set the properties and swap all data files in one transaction.

    pyiceberg's own `Transaction.overwrite` stages a DELETE snapshot and then an APPEND one
    (time travel to the first shows an empty table), so the swap is one explicit overwrite
    snapshot: every data file of the current snapshot deleted, the new ones added.
    """
    from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible
    from pyiceberg.table.update import AssertCurrentSchemaId

    current = table.schema()
    plan = _plan_schema(current, _iceberg_schema(arrow_schema, table.format_version))
    _check_changeable(table, identifier, plan)
    previous_files = _live_data_files(table)

    tx = table.transaction()
    # The changes were worked out against this schema: a concurrent schema change must fail
    # the commit rather than be overwritten. (Schema updates add the same requirement.)
    tx._stage((), (AssertCurrentSchemaId(current_schema_id=current.schema_id),))
    tx.set_properties(dict(properties))
    _evolve(tx, plan)
    layout.stage(tx)  # on the evolved schema: a new column can be partitioned at once
    _check_pyarrow_schema_compatible(
        tx.table_metadata.schema(), arrow_schema, format_version=tx.table_metadata.format_version
    )
    table, added = _commit_files(
        tx, table.io, "overwrite", previous_files, _all_rows(source), arrow_schema, fingerprint
    )
    return table, plan.lines, added


def _commit_files(
    tx: Transaction,
    io: FileIO,
    operation: str,
    remove: list[DataFile],
    rows: _Rows,
    arrow_schema: pa.Schema,
    fingerprint: Fingerprint | None,
    summary: Mapping[str, str] | None = None,
) -> tuple[Table, int]:
    """Write `rows` as data files and commit them, replacing `remove`, as one snapshot.

    Before the commit, or when the catalog says it refused it, nothing references the new
    files: they are deleted again. Any other commit error leaves the outcome unknown, and
    the files are kept then.
    """
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    properties = {**(fingerprint.summary() if fingerprint else {}), **(summary or {})}
    writer = _DataFileWriter(tx.table_metadata, io, arrow_schema)
    committing = False
    try:
        update = tx.update_snapshot(snapshot_properties=properties)
        producer = update.overwrite() if operation == "overwrite" else update.fast_append()
        for data_file in remove:
            producer.delete_data_file(data_file)
        for data_file in writer.write(rows, producer.commit_uuid):
            producer.append_data_file(data_file)
        producer.commit()  # stages the snapshot (built on the evolved schema) into `tx`
        committing = True
        table = tx.commit_transaction()
    except BaseException as exc:
        if not committing or isinstance(exc, CommitFailedException | ValidationException):
            writer.delete_files()
        raise
    return table, writer.rows


@dataclass(frozen=True)
class _Rows:
    """Rows to write: as record batches, or (where the engine can) as Parquet files the
    engine writes itself."""

    batches: Callable[[], Iterator[pa.RecordBatch]]
    parquet: Callable[[ParquetFiles], list[str] | None] | None = None


def _all_rows(source: RelationData) -> _Rows:
    return _Rows(source.batches, source.write_parquet)


class _DataFileWriter:
    """Writes rows into Parquet data files of about the table's target size.

    Into a local warehouse the compute engine writes the files itself where it can (DuckDB's
    COPY, with the table's field ids): its speed, in its own bounded memory. Otherwise
    record batches come from the caller's thread (the engine's stream) and are encoded by
    `WRITE_THREADS` threads, each rolling its own file once it reaches the target size: a
    few batches in flight at a time, never the table; row groups are the engine's batches.
    Partitioned tables go through pyiceberg's own writer, batch by batch.
    """

    def __init__(self, metadata: TableMetadata, io: FileIO, arrow_schema: pa.Schema) -> None:
        from pyiceberg.io.pyarrow import pyarrow_to_schema
        from pyiceberg.schema import sanitize_column_names
        from pyiceberg.table import TableProperties
        from pyiceberg.table.locations import load_location_provider
        from pyiceberg.utils.properties import property_as_int

        self._metadata = metadata
        self._io = io
        self._arrow_schema = arrow_schema
        schema = metadata.schema()
        self._file_schema = sanitize_column_names(schema)
        try:  # pyiceberg ≥ 0.12 names the file format the field ids are written for
            from pyiceberg.io.fileformat import FileFormatFactory
            from pyiceberg.manifest import FileFormat

            self._format: dict[str, Any] = {
                "format_model": FileFormatFactory.get(FileFormat.PARQUET)
            }
        except ImportError:
            self._format = {}
        # The batches' own schema, with the table's field ids (matched by name).
        self._task_schema = pyarrow_to_schema(
            arrow_schema,
            name_mapping=schema.name_mapping,
            downcast_ns_timestamp_to_us=True,
            format_version=metadata.format_version,
        )
        self._target = (
            property_as_int(
                metadata.properties, TableProperties.WRITE_TARGET_FILE_SIZE_BYTES, TARGET_FILE_BYTES
            )
            or TARGET_FILE_BYTES
        )
        self._locations = load_location_provider(metadata.location, metadata.properties)
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._uuid = uuid.uuid4()
        self.paths: list[str] = []  # every file started, for clean-up
        self._folders: list[str] = []  # local folders the engine wrote files in
        self.files: list[DataFile] = []
        self.rows = 0

    def write(self, rows: _Rows, write_uuid: uuid.UUID) -> list[DataFile]:
        """Write the rows; the data files, once all are closed."""
        self._uuid = write_uuid
        if rows.parquet is not None:
            files = self._engine_files(rows.parquet)
            if files is not None:
                return files
        return self._write_batches(rows.batches())

    def _engine_files(
        self, parquet: Callable[[ParquetFiles], list[str] | None]
    ) -> list[DataFile] | None:
        """Let the compute engine write the data files itself, at its own speed and in its
        own bounded memory, into a local warehouse; None where it cannot (then: batches)."""
        from pyiceberg.io.pyarrow import parquet_file_to_data_file
        from pyiceberg.table import TableProperties
        from pyiceberg.utils.properties import property_as_int

        schema = self._metadata.schema()
        if not self._metadata.spec().is_unpartitioned() or self._file_schema != schema:
            return None
        data = self._locations.new_data_location(data_file_name="x.parquet").rsplit("/", 1)[0]
        parsed = urlparse(data)
        if parsed.scheme not in ("", "file") or parsed.netloc:
            return None  # object storage: the engine cannot reach it (no extensions offline)
        folder = f"{data}/floe-{self._uuid}"
        local = unquote(urlparse(folder).path)
        properties = self._metadata.properties
        codec = str(
            properties.get(TableProperties.PARQUET_COMPRESSION)
            or TableProperties.PARQUET_COMPRESSION_DEFAULT
        )
        level = property_as_int(properties, TableProperties.PARQUET_COMPRESSION_LEVEL)
        columns = [(f.name, str(f.field_type), f.field_id) for f in schema.fields]
        self._folders.append(local)
        Path(local).parent.mkdir(parents=True, exist_ok=True)  # the engine makes one level
        if level is None and codec == "zstd":
            level = 1  # as pyarrow (pyiceberg's writer) compresses by default
        paths = parquet(ParquetFiles(local, columns, self._target, codec, level))
        if paths is None:
            return None
        files = []
        try:
            for path in paths:
                uri = f"{folder}/{path.rsplit('/', 1)[-1]}"
                self.paths.append(uri)
                data_file = parquet_file_to_data_file(self._io, self._metadata, uri)
                if data_file.record_count:
                    files.append(data_file)
                    self.rows += data_file.record_count
        except ValueError:  # the engine's file does not match the table's schema
            self.delete_files()
            self.paths, self.rows = [], 0
            return None
        self.files = files
        return files

    def _write_batches(self, batches: Iterator[pa.RecordBatch]) -> list[DataFile]:
        import queue

        workers = min(WRITE_THREADS, os.cpu_count() or 1)
        pending: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=workers)
        errors: list[BaseException] = []
        threads = [
            threading.Thread(
                target=self._work, args=(pending, errors), name="floe-write", daemon=True
            )
            for _ in range(workers)
        ]
        for thread in threads:
            thread.start()
        stream = iter(batches)
        try:
            for batch in stream:
                if errors:
                    break
                if batch.num_rows:
                    pending.put(batch)
        finally:
            # Ends the engine's stream (and frees its cursor) in this thread, now.
            close = getattr(stream, "close", None)
            if close is not None:
                close()
            for _ in threads:
                pending.put(None)
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]
        return self.files

    def _work(self, pending: Any, errors: list[BaseException]) -> None:
        out: _OpenFile | None = None
        partitioned = not self._metadata.spec().is_unpartitioned()
        while (batch := pending.get()) is not None:
            if errors:
                continue  # drain, so the producer never blocks
            try:
                if partitioned:
                    self._write_partitioned(batch)
                    continue
                if out is None:
                    out = self._open()
                out.write(self._file_batch(batch))
                if out.size() >= self._target:
                    self._close(out)
                    out = None
            except BaseException as exc:
                errors.append(exc)
        if out is not None:
            try:
                if errors:
                    out.abort()
                else:
                    self._close(out)
            except BaseException as exc:
                errors.append(exc)

    def _file_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        from pyiceberg.io.pyarrow import _to_requested_schema

        if batch.schema != self._arrow_schema:
            batch = batch.cast(self._arrow_schema, safe=False)
        converted: pa.RecordBatch = _to_requested_schema(
            requested_schema=self._file_schema,
            file_schema=self._task_schema,
            batch=batch,
            downcast_ns_timestamp_to_us=True,
            include_field_ids=True,
            **self._format,
        )
        return converted

    def _write_partitioned(self, batch: pa.RecordBatch) -> None:
        import pyarrow as pa
        from pyiceberg.io.pyarrow import _dataframe_to_data_files

        table = pa.Table.from_batches([batch]).cast(self._arrow_schema, safe=False)
        for data_file in _dataframe_to_data_files(
            table_metadata=self._metadata,
            df=table,
            io=self._io,
            write_uuid=self._uuid,
            counter=self._counter,
        ):
            with self._lock:
                self.paths.append(data_file.file_path)
                self.files.append(data_file)
                self.rows += data_file.record_count

    def _open(self) -> _OpenFile:
        with self._lock:
            number = next(self._counter)
        path = self._locations.new_data_location(
            data_file_name=f"00000-{number}-{self._uuid}.parquet"
        )
        with self._lock:
            self.paths.append(path)
        return _OpenFile(self._io, path, self._metadata.properties)

    def _close(self, out: _OpenFile) -> None:
        from pyiceberg.io.pyarrow import (
            compute_statistics_plan,
            data_file_statistics_from_parquet_metadata,
            parquet_path_to_id_mapping,
        )
        from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
        from pyiceberg.typedef import Record

        metadata, size = out.close()
        statistics = data_file_statistics_from_parquet_metadata(
            parquet_metadata=metadata,
            stats_columns=compute_statistics_plan(self._file_schema, self._metadata.properties),
            parquet_column_mapping=parquet_path_to_id_mapping(self._file_schema),
        )
        data_file = DataFile.from_args(
            content=DataFileContent.DATA,
            file_path=out.path,
            file_format=FileFormat.PARQUET,
            partition=Record(),
            file_size_in_bytes=size,
            sort_order_id=None,
            spec_id=self._metadata.default_spec_id,
            equality_ids=None,
            key_metadata=None,
            **statistics.to_serialized_dict(),
        )
        with self._lock:
            self.files.append(data_file)
            self.rows += data_file.record_count

    def delete_files(self) -> None:
        """Delete every file this writer started (after a failure)."""
        for path in self.paths:
            with contextlib.suppress(Exception):
                self._io.delete(path)
        for folder in self._folders:
            shutil.rmtree(folder, ignore_errors=True)


class _OpenFile:
    """One Parquet data file being written, row group by row group."""

    def __init__(self, io: FileIO, path: str, properties: Mapping[str, str]) -> None:
        from pyiceberg.io.pyarrow import _get_parquet_writer_kwargs

        self.path = path
        self._stream = io.new_output(path).create(overwrite=True)
        self._kwargs = _get_parquet_writer_kwargs(dict(properties))
        self._writer: Any = None

    def write(self, batch: pa.RecordBatch) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        if self._writer is None:
            self._writer = pq.ParquetWriter(
                self._stream, schema=batch.schema, store_decimal_as_integer=True, **self._kwargs
            )
        self._writer.write_table(pa.Table.from_batches([batch]), row_group_size=batch.num_rows)

    def size(self) -> int:
        """Bytes written so far (whole row groups: the writer flushes each)."""
        return int(self._stream.tell())

    def close(self) -> tuple[Any, int]:
        """Finish the file: its Parquet metadata and size."""
        self._writer.close()
        size = int(self._stream.tell())
        self._stream.close()
        return self._writer.writer.metadata, size

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            if self._writer is not None:
                self._writer.close()
        with contextlib.suppress(Exception):
            self._stream.close()


def _publish_increment(
    table: Table,
    source: RelationData,
    arrow_schema: pa.Schema,
    properties: Mapping[str, str],
    increment: Increment | None,
    layout: _Layout,
) -> tuple[Table, int, str] | Fingerprint | None:
    """Publish only what an incremental model's run changed, if that can be known.

    Returns the table, the rows written and the mode; or, when the content must be replaced
    after all, the relation's fingerprint (None without one) for that snapshot to record.
    Only from a snapshot floe published itself (it records the fingerprint), with the
    model's schema unchanged and no delete files.
    """
    if increment is None:
        return None
    if increment.full_refresh:
        return _fingerprint(source, None, increment)
    snapshot = table.current_snapshot()
    summary = snapshot.summary if snapshot is not None else None
    previous = Fingerprint.from_summary(summary) if summary is not None else None
    state = source.fingerprint(previous)
    if state is None:
        return None
    now, candidates = state
    plan = _plan_schema(table.schema(), _iceberg_schema(arrow_schema, table.format_version))
    if previous is None or candidates is None or summary is None or not plan.empty:
        return now
    if int(summary.get("total-delete-files") or 0):
        return now  # another writer's row-level deletes: not ours to reason about
    tx = table.transaction()
    tx.set_properties(dict(properties))
    # New files get the new spec; those already published keep theirs.
    layout.stage(tx)
    if candidates.unchanged:
        # Everything published is still there, unchanged: the increment is what came after.
        new_rows = now.rows - previous.rows
        table, added = _commit_files(
            tx,
            table.io,
            "append",
            [],
            _Rows(
                lambda: source.batches_since(previous.mark),
                lambda target: source.write_parquet(target, since=previous.mark),
            ),
            arrow_schema,
            now,
            {INSERTED: str(new_rows), UPDATED: "0", DELETED: "0"},
        )
        return table, added, "append"
    if not increment.unique_key:
        return now
    return _upsert(table, tx, source, arrow_schema, increment.unique_key, now, candidates)


def _upsert(
    table: Table,
    tx: Transaction,
    source: RelationData,
    arrow_schema: pa.Schema,
    keys: tuple[str, ...],
    now: Fingerprint,
    candidates: Candidates,
) -> tuple[Table, int, str] | Fingerprint:
    """Replace the published rows of the keys that changed, in one overwrite snapshot.

    Only the `candidates` (rows appended since, and those of the fingerprint's chunks that
    changed) are compared with the published rows of their keys: work in proportion to
    where the run wrote. Copy-on-write: the data files holding a removed key (found from
    the files' key bounds, then their key columns) are rewritten without those rows,
    together with the new and changed rows; every other file stays as it is.
    """
    import itertools as it

    live = _live_data_files(table)
    with source.changes(keys, _published(table, live), candidates) as changes:
        if changes is None:
            return now
        removed = changes.removed_keys
        key_names = list(removed.column_names)
        if any(removed.column(k).null_count for k in key_names):
            return now  # a NULL key: the files' key bounds cannot rule files out
        counts = {
            INSERTED: str(changes.inserted),
            UPDATED: str(changes.updated),
            DELETED: str(changes.deleted),
        }
        if removed.num_rows == 0:
            table, added = _commit_files(
                tx, table.io, "append", [], _Rows(changes.rows), arrow_schema, now, counts
            )
            return table, added, "append"
        affected = [f for f in live if _holds_keys(table, f, removed, key_names)]
        kept = it.chain.from_iterable(
            _without_keys(batch, removed, key_names) for batch in _read_files(table, affected)
        )
        table, added = _commit_files(
            tx,
            table.io,
            "overwrite",
            affected,
            _Rows(lambda: it.chain(kept, changes.rows())),
            arrow_schema,
            now,
            counts,
        )
        return table, added, "upsert"


def _published(table: Table, files: list[DataFile]) -> Published:
    """The table's rows as the engine may compare with them: its local data files when they
    are laid out as its schema (top-level columns, by name and field id), else a stream."""
    import pyarrow.parquet as pq
    from pyiceberg.io.pyarrow import PYARROW_PARQUET_FIELD_ID_KEY

    schema = table.schema()
    arrow_schema = schema.as_arrow()
    stream = Published(arrow_schema, lambda: _read_files(table, files))
    wanted = {f.name: str(f.field_id).encode() for f in schema.fields}
    if not files or not all(f.field_type.is_primitive for f in schema.fields):
        return stream
    local = []
    for data_file in files:
        parsed = urlparse(data_file.file_path)
        if parsed.scheme not in ("", "file") or parsed.netloc:
            return stream
        path = unquote(parsed.path)
        layout = pq.read_schema(path)
        ids = {f.name: (f.metadata or {}).get(PYARROW_PARQUET_FIELD_ID_KEY) for f in layout}
        if ids != wanted:
            return stream
        local.append(path)
    return Published(arrow_schema, stream.reader, local)


def _read_files(
    table: Table, files: list[DataFile], columns: Sequence[str] | None = None
) -> pa.RecordBatchReader:
    """The rows of some of the table's data files, file after file, a row group at a time.

    pyiceberg's own readers hold every file (its scan) or a file's read-ahead of batches (its
    per-file reader) in memory. Files are matched to the table's schema by field id, as
    pyiceberg does; a file without field ids goes through pyiceberg's reader instead.
    """
    import pyarrow as pa

    schema = table.schema()
    projected = schema.select(*columns) if columns else schema
    arrow_schema = projected.as_arrow()

    def batches() -> Iterator[pa.RecordBatch]:
        for data_file in files:
            for batch in _file_batches(table, projected, data_file):
                yield batch if batch.schema == arrow_schema else batch.cast(arrow_schema)

    return pa.RecordBatchReader.from_batches(arrow_schema, batches())


def _file_batches(table: Table, projected: Schema, data_file: DataFile) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan, _to_requested_schema, pyarrow_to_schema
    from pyiceberg.schema import prune_columns
    from pyiceberg.table import FileScanTask

    with table.io.new_input(data_file.file_path).open() as stream:
        parquet = pq.ParquetFile(stream)
        try:
            file_schema = pyarrow_to_schema(
                parquet.schema_arrow,
                name_mapping=table.metadata.name_mapping(),
                downcast_ns_timestamp_to_us=True,
                format_version=table.format_version,
            )
        except ValueError:  # no field ids, no name mapping: pyiceberg knows what to do
            scan = ArrowScan(table.metadata, table.io, projected, AlwaysTrue())
            yield from scan.to_record_batches([FileScanTask(data_file)])
            return
        wanted = prune_columns(file_schema, set(projected.field_ids), select_full_types=False)
        names = [column.name for column in wanted.columns]
        for batch in parquet.iter_batches(batch_size=65_536, columns=names, use_threads=False):
            yield _to_requested_schema(projected, wanted, batch, downcast_ns_timestamp_to_us=True)


def _holds_keys(table: Table, data_file: DataFile, removed: pa.Table, keys: list[str]) -> bool:
    """Whether a data file holds any of the `removed` keys: its bounds, then its key columns."""
    import pyarrow.compute as pc  # type: ignore[import-untyped]
    from pyiceberg.conversions import from_bytes
    from pyiceberg.types import PrimitiveType

    schema = table.schema()
    for key in keys:
        field = schema.find_field(key)
        lower = (data_file.lower_bounds or {}).get(field.field_id)
        upper = (data_file.upper_bounds or {}).get(field.field_id)
        kind = field.field_type
        if lower is None or upper is None or not isinstance(kind, PrimitiveType):
            continue
        low, high = from_bytes(kind, lower), from_bytes(kind, upper)
        column = removed.column(key)
        span = pc.min_max(column)
        smallest, largest = span["min"].as_py(), span["max"].as_py()
        try:
            if largest < low or smallest > high:
                return False  # (string bounds may be truncated prefixes: still a safe test)
        except TypeError:
            continue
    for batch in _read_files(table, [data_file], keys):
        if pc.any(_key_mask(batch, removed, keys)).as_py():
            return True
    return False


def _key_mask(batch: pa.RecordBatch, removed: pa.Table, keys: list[str]) -> pa.Array:
    """True for the rows of `batch` whose key is among the `removed` keys."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(keys) == 1:
        column = batch.column(keys[0])
        return pc.is_in(column, value_set=removed.column(keys[0]).cast(column.type))
    index = pa.table(
        {**{k: batch.column(k) for k in keys}, "__row": pa.array(range(batch.num_rows))}
    )
    wanted = removed.cast(pa.schema([index.schema.field(k) for k in keys]))
    hit = index.join(wanted, keys=keys, join_type="left semi").column("__row")
    return pc.is_in(pa.array(range(batch.num_rows)), value_set=hit)


def _without_keys(
    batch: pa.RecordBatch, removed: pa.Table, keys: list[str]
) -> list[pa.RecordBatch]:
    import pyarrow.compute as pc

    kept = batch.filter(pc.invert(_key_mask(batch, removed, keys)))
    return [kept] if kept.num_rows else []


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
