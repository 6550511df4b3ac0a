"""Reading what dbt built out of the compute engine, as a stream of Arrow record batches.

A relation is never read in one piece: `Reader.read` returns a `RelationData` whose batches
are pulled from the engine while they are written out (DuckDB's streaming Arrow reader, a
PostgreSQL server-side cursor), so memory stays bounded whatever the table's size. On
DuckDB a relation can also say, cheaply, what it held when it was last published (a
`Fingerprint`) and which of its rows are new or changed since (`RelationData.changes`):
how incremental models publish only their increment.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.config.platform import DuckDBCompute, PostgresCompute
from floe_runtime.runtime.secrets import Secrets

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped]

#: The size an Arrow batch aims at: what one batch in flight costs in memory.
BATCH_BYTES = 16 * 2**20
MIN_BATCH_ROWS = 1024
MAX_BATCH_ROWS = 262_144
#: DuckDB's buffer pool on the reader's connection: scans evict rather than cache the table,
#: and a large comparison spills to a temporary folder instead of growing the process.
DUCKDB_MEMORY_LIMIT = "96MB"
DUCKDB_THREADS = 2
#: While rows stream out as Arrow (pyarrow encodes them), DuckDB gets less.
STREAM_MEMORY_LIMIT = "48MB"


class Relation:
    """A database relation as dbt names it (database, schema, identifier)."""

    def __init__(self, database: str | None, schema: str, identifier: str) -> None:
        self.database = database
        self.schema = schema
        self.identifier = identifier

    def sql(self, with_database: bool = True) -> str:
        """The quoted name."""
        parts = [self.database] if with_database and self.database else []
        parts += [self.schema, self.identifier]
        return ".".join(_quote(p) for p in parts)

    def __str__(self) -> str:
        return ".".join(p for p in (self.database, self.schema, self.identifier) if p)


@dataclass(frozen=True)
class Fingerprint:
    """What a relation held when it was published, to recognise it in a later run.

    The relation's rows below `mark` (where the engine appends the next row: DuckDB's
    `rowid`) in chunks of `chunk_rows` positions, each as a count and the sum of its rows'
    hashes: a multiset, so a chunk whose rows changed in place, went or came shows. `tag`
    names the engine version and the relation's columns: fingerprints compare only under
    one tag. Stored in the summary of the Iceberg snapshot the rows were published as.
    """

    mark: int
    tag: str
    chunk_rows: int
    chunks: tuple[tuple[int, int], ...]

    KEYS: ClassVar[tuple[str, ...]] = (
        "floe.compute.mark",
        "floe.compute.tag",
        "floe.compute.chunks",
    )
    #: A fingerprint has at most this many chunks (it lives in every snapshot summary).
    MAX_CHUNKS: ClassVar[int] = 64
    MIN_CHUNK_ROWS: ClassVar[int] = 2**17

    @property
    def rows(self) -> int:
        """The relation's row count."""
        return sum(n for n, _ in self.chunks)

    def summary(self) -> dict[str, str]:
        """The snapshot summary properties that record this fingerprint."""
        chunks = ",".join(f"{n}/{d:x}" for n, d in self.chunks)
        values = (str(self.mark), self.tag, f"{self.chunk_rows}:{chunks}")
        return dict(zip(self.KEYS, values, strict=True))

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> Fingerprint | None:
        """The fingerprint a snapshot summary records (None if it records none)."""
        mark, tag, chunks = (summary.get(key) for key in cls.KEYS)
        if not (isinstance(mark, str) and isinstance(tag, str) and isinstance(chunks, str)):
            return None
        try:
            size, _, listed = chunks.partition(":")
            parsed = tuple(
                (int(n), int(d, 16)) for n, d in (c.split("/") for c in listed.split(",") if c)
            )
            return cls(int(mark), tag, int(size), parsed)
        except ValueError:
            return None

    @classmethod
    def chunk_size(cls, mark: int) -> int:
        """Positions per chunk below `mark`: a power of two, so chunks of one size merge
        into those of the next."""
        size = cls.MIN_CHUNK_ROWS
        while size * cls.MAX_CHUNKS < mark:
            size *= 2
        return size


@dataclass(frozen=True)
class Candidates:
    """Where a relation's rows may differ from a fingerprint's: after its `mark`, and in its
    chunks whose rows changed (`ranges` of positions, half-open), which held
    `published_rows` rows when the fingerprint was taken."""

    mark: int
    ranges: tuple[tuple[int, int], ...]
    published_rows: int

    @property
    def unchanged(self) -> bool:
        """Whether every fingerprinted row is still there as it was (only appends since)."""
        return not self.ranges


@dataclass
class Changes:
    """How a relation differs from the published table, compared on its unique key.

    `removed_keys` are the keys whose published rows go (updated or no longer there);
    `rows()` streams the rows to add (new keys and changed rows), in the published types.
    """

    inserted: int
    updated: int
    deleted: int
    removed_keys: pa.Table
    rows: Callable[[], Iterator[pa.RecordBatch]]


@dataclass(frozen=True)
class Published:
    """The rows of an Iceberg table's current snapshot, to compare a relation with.

    `reader` streams them as Arrow batches of `schema`; `files`, when given, are local
    Parquet files laid out as the table's schema (column names and field ids) that an
    engine may read itself instead.
    """

    schema: pa.Schema
    reader: Callable[[], pa.RecordBatchReader]
    files: Sequence[str] | None = None


@dataclass(frozen=True)
class ParquetFiles:
    """How an engine writes a relation's rows as Iceberg data files itself.

    `columns` are the table's (name, Iceberg type, field id), in order; the files go in the
    local `directory` (the engine creates it), each of about `target_bytes`.
    """

    directory: str
    columns: Sequence[tuple[str, str, int]]
    target_bytes: int
    compression: str
    level: int | None = None


class RelationData(Protocol):
    """One relation's rows, read lazily in batches."""

    def schema(self) -> pa.Schema:
        """The Arrow schema of the batches."""
        ...

    def batches(self) -> Iterator[pa.RecordBatch]:
        """All rows, batch by batch (bounded memory)."""
        ...

    def fingerprint(
        self, previous: Fingerprint | None
    ) -> tuple[Fingerprint, Candidates | None] | None:
        """The relation's fingerprint now, and where its rows may differ from `previous`'s
        (None if they cannot be compared). None where the engine cannot fingerprint."""
        ...

    def batches_since(self, mark: int) -> Iterator[pa.RecordBatch]:
        """The rows appended after a fingerprint's mark."""
        ...

    def changes(
        self, keys: Sequence[str], published: Published, candidates: Candidates
    ) -> AbstractContextManager[Changes | None]:
        """Compare the `candidates` rows with the `published` rows of their `keys`. None
        where that would not show every change: the engine cannot compare, or published
        rows went that no candidate's key accounts for."""
        ...

    def write_parquet(self, target: ParquetFiles, since: int | None = None) -> list[str] | None:
        """Write the rows (those after the mark `since`, if given) as Parquet files; their
        paths, or None where the engine cannot write these columns itself."""
        ...


class Reader(Protocol):
    """Reads relations of one compute engine."""

    def read(self, relation: Relation) -> RelationData: ...

    def columns(self, relation: Relation) -> list[tuple[str, str]]: ...


class UnsupportedCompute(Exception):
    """Publishing from this compute type is not implemented."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def batch_rows(row_bytes: float) -> int:
    """Rows per batch for rows of about `row_bytes` bytes (about `BATCH_BYTES` a batch)."""
    rows = int(BATCH_BYTES / max(row_bytes, 1.0))
    return max(MIN_BATCH_ROWS, min(MAX_BATCH_ROWS, rows))


class _BatchesOnly:
    """Rows that can only be read, in full: no fingerprint, no comparison, written by pyarrow."""

    def fingerprint(
        self, previous: Fingerprint | None
    ) -> tuple[Fingerprint, Candidates | None] | None:
        """None: the rows have no history to recognise (always published in full)."""
        return None

    def batches_since(self, mark: int) -> Iterator[pa.RecordBatch]:
        """Never called: without a fingerprint there is no mark."""
        raise NotImplementedError("these rows have no append mark")

    def changes(
        self, keys: Sequence[str], published: Published, candidates: Candidates
    ) -> AbstractContextManager[Changes | None]:
        """None: not compared."""
        return contextlib.nullcontext(None)

    def write_parquet(self, target: ParquetFiles, since: int | None = None) -> list[str] | None:
        """None: written through pyarrow."""
        return None


class ArrowData(_BatchesOnly):
    """Rows already in memory (an Arrow table or a record batch reader), as a `RelationData`."""

    def __init__(self, data: pa.Table | pa.RecordBatchReader) -> None:
        self._data = data

    def schema(self) -> pa.Schema:
        """The data's Arrow schema."""
        return self._data.schema

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The data's batches."""
        import pyarrow as pa

        if isinstance(self._data, pa.RecordBatchReader):
            yield from self._data
            return
        width = self._data.nbytes / self._data.num_rows if self._data.num_rows else 1.0
        yield from self._data.to_batches(max_chunksize=batch_rows(width))


class _DuckDBData:
    def __init__(self, reader: _DuckDBReader, relation: Relation) -> None:
        self._reader = reader
        self._relation = relation
        self._schema: pa.Schema | None = None
        self._rows = MAX_BATCH_ROWS

    def schema(self) -> pa.Schema:
        if self._schema is None:
            with self._reader.cursor() as cursor:
                sample = cursor.sql(f"select * from {self._relation.sql()} limit 2048")
                table = sample.to_arrow_table()
            self._schema = table.schema
            if table.num_rows:
                self._rows = batch_rows(table.nbytes / table.num_rows)
        return self._schema

    def _columns(self) -> list[str]:
        return [str(f.name) for f in self.schema()]

    def _stream(self, sql: str, cursor: Any = None) -> Iterator[pa.RecordBatch]:
        self.schema()  # sizes the batches
        with contextlib.ExitStack() as stack:
            if cursor is None:
                cursor = stack.enter_context(self._reader.cursor())
            # One scan thread keeps up with the Parquet encoding; a smaller pool evicts sooner.
            stack.enter_context(self._reader.settings(threads=1, memory_limit=STREAM_MEMORY_LIMIT))
            yield from cursor.sql(sql).to_arrow_reader(self._rows)

    def batches(self) -> Iterator[pa.RecordBatch]:
        return self._stream(f"select * from {self._relation.sql()}")

    def batches_since(self, mark: int) -> Iterator[pa.RecordBatch]:
        return self._stream(f"select * from {self._relation.sql()} where rowid >= {int(mark)}")

    def write_parquet(self, target: ParquetFiles, since: int | None = None) -> list[str] | None:
        import duckdb

        codec = _DUCKDB_CODECS.get(target.compression.lower())
        types = [_duckdb_type(kind) for _, kind, _ in target.columns]
        if codec is None or None in types:
            return None
        select = ", ".join(
            f"cast({_quote(name)} as {kind}) as {_quote(name)}"
            for (name, _, _), kind in zip(target.columns, types, strict=True)
        )
        where = f" where rowid >= {int(since)}" if since is not None else ""
        ids = ", ".join(
            f"{_literal(name)}: {int(field_id)}" for name, _, field_id in target.columns
        )
        level = f", compression_level {int(target.level)}" if target.level is not None else ""
        sql = (
            f"copy (select {select} from {self._relation.sql()}{where})"
            f" to {_literal(target.directory)} (format parquet, compression {codec}{level},"
            f" file_size_bytes {int(target.target_bytes)},"
            # Files roll over between row groups: a few row groups per file keep them near it.
            f" row_group_size_bytes {max(64 * 1024, target.target_bytes // 4)},"
            f" field_ids {{{ids}}},"
            f" filename_pattern 'data_{{i}}')"
        )
        try:
            with self._reader.cursor() as cursor:
                cursor.execute(sql).fetchall()
        except duckdb.Error:
            shutil.rmtree(target.directory, ignore_errors=True)
            return None  # a value DuckDB cannot cast as the table wants: through Arrow
        folder = Path(target.directory)
        return sorted(str(p) for p in folder.glob("*.parquet")) if folder.is_dir() else []

    def fingerprint(
        self, previous: Fingerprint | None
    ) -> tuple[Fingerprint, Candidates | None] | None:
        import duckdb

        columns = self._reader.columns(self._relation)
        if not columns:
            return None
        described = json.dumps(columns).encode()
        tag = f"duckdb {duckdb.__version__} {hashlib.sha256(described).hexdigest()[:16]}"
        if previous is not None and (previous.tag != tag or not previous.chunks):
            previous = None
        # One scan: each chunk's count and hash sum at the previous fingerprint's chunk size,
        # split at its mark so its chunks compare; merged below into this one's size.
        size = previous.chunk_rows if previous else Fingerprint.MIN_CHUNK_ROWS
        before = previous.mark if previous else 0
        row_hash = "hash(" + ", ".join(_quote(name) for name, _ in columns) + ")"
        sql = (
            f"select rowid // {size} as chunk, rowid < {before} as old, count(*),"
            " coalesce(sum(h), 0)::varchar, max(rowid)"
            f" from (select rowid, {row_hash} as h from {self._relation.sql()}) group by all"
        )
        try:
            with self._reader.cursor() as cursor:
                groups = cursor.execute(sql).fetchall()
        except duckdb.Error:  # not a table (no rowid): no fingerprint
            return None
        mark = max((int(g[4]) + 1 for g in groups), default=0)
        chunk_rows = max(size, Fingerprint.chunk_size(mark))
        merged: dict[int, tuple[int, int]] = {}
        old: dict[int, tuple[int, int]] = {}
        for chunk, is_old, count, digest, _ in groups:
            index = int(chunk) * size // chunk_rows
            n, d = merged.get(index, (0, 0))
            merged[index] = (n + int(count), (d + int(digest)) % 2**64)
            if is_old:
                old[int(chunk)] = (int(count), int(digest) % 2**64)
        chunks = tuple(merged.get(i, (0, 0)) for i in range(-(-mark // chunk_rows)))
        now = Fingerprint(mark, tag, chunk_rows, chunks)
        if previous is None:
            return now, None
        changed = [i for i, was in enumerate(previous.chunks) if old.get(i, (0, 0)) != was]
        return now, Candidates(
            previous.mark,
            tuple((i * size, min((i + 1) * size, previous.mark)) for i in changed),
            sum(previous.chunks[i][0] for i in changed),
        )

    @contextmanager
    def changes(
        self, keys: Sequence[str], published: Published, candidates: Candidates
    ) -> Iterator[Changes | None]:
        import pyarrow as pa

        columns = self._columns()
        by_lower = {c.lower(): c for c in columns}
        key_columns = [by_lower.get(k.lower()) for k in keys]
        if not key_columns or None in key_columns:
            yield None  # the key is an expression, not columns: no comparison
            return
        keys_ = [k for k in key_columns if k is not None]
        key_list = ", ".join(_quote(k) for k in keys_)

        def same_key(a: str, b: str) -> str:
            return " and ".join(
                f"{a}.{_quote(k)} is not distinct from {b}.{_quote(k)}" for k in keys_
            )

        with self._reader.cursor() as cursor:
            if published.files:
                # DuckDB reads the table's own files: its speed, its bounded memory.
                name = "read_parquet([" + ", ".join(_literal(f) for f in published.files) + "])"
                types = {
                    str(row[0]): str(row[1])
                    for row in cursor.execute(f"describe select * from {name}").fetchall()
                }
            else:
                name = f"floe_published_{uuid.uuid4().hex[:12]}"
                types = _duckdb_types(cursor, pa.Table.from_batches([], published.schema))
            if sorted(types) != sorted(columns):
                yield None
                return
            casts = ", ".join(f"cast({_quote(c)} as {types[c]}) as {_quote(c)}" for c in columns)
            row_hash = "hash(" + ", ".join(_quote(c) for c in columns) + ")"
            where = " or ".join(
                [f"rowid >= {int(candidates.mark)}"]
                + [f"(rowid >= {int(a)} and rowid < {int(b)})" for a, b in candidates.ranges]
            )

            def count(sql: str) -> int:
                return int(cursor.execute(sql).fetchall()[0][0])

            try:
                # The rows that may have changed, as the table types them, with their hashes.
                cursor.execute(
                    "create temp table floe_candidates as"
                    f" select *, {row_hash} as __h"
                    f" from (select {casts} from {self._relation.sql()} where {where})"
                ).fetchall()
                # Their keys nowhere else in the relation: then the published rows of these
                # keys are all in the changed chunks, and the counts below say whether those
                # chunks held any other row (one that went: not an increment).
                found = count(
                    f"select count(*) from {self._relation.sql()} r"
                    f" semi join floe_candidates k on {same_key('r', 'k')}"
                )
                if found != count("select count(*) from floe_candidates"):
                    yield None
                    return
                if not published.files:
                    cursor.register(name, published.reader())
                cursor.execute(
                    f"create temp table floe_matched as select {key_list}, {row_hash} as __h"
                    f" from {name} p semi join floe_candidates k on {same_key('p', 'k')}"
                ).fetchall()
                if not published.files:
                    cursor.unregister(name)
                if count("select count(*) from floe_matched") != candidates.published_rows:
                    yield None
                    return
                picked = ", ".join(
                    f"case when c.__h is not null then c.{_quote(k)} else p.{_quote(k)} end"
                    f" as {_quote(k)}"
                    for k in keys_
                )
                cursor.execute(
                    f"create temp table floe_changes as select {picked},"
                    " bool_or(c.__h is not null) as __present, bool_or(p.__h is not null) as __had"
                    f" from (select {key_list}, __h from floe_candidates) c"
                    f" full outer join floe_matched p on {same_key('c', 'p')}"
                    " where c.__h is distinct from p.__h group by all"
                ).fetchall()
                counts = cursor.execute(
                    "select count(*) filter (where __present and not __had),"
                    " count(*) filter (where __present and __had),"
                    " count(*) filter (where __had and not __present) from floe_changes"
                ).fetchall()[0]
                inserted, updated, deleted = (int(n) for n in counts)
                removed = cursor.sql(
                    f"select {key_list} from floe_changes where __had"
                ).to_arrow_table()
                rows_sql = (
                    "select * exclude (__h) from floe_candidates r semi join"
                    f" (select {key_list} from floe_changes where __present) k"
                    f" on {same_key('r', 'k')}"
                )
                yield Changes(
                    inserted, updated, deleted, removed, lambda: self._stream(rows_sql, cursor)
                )
            finally:
                for table in ("floe_candidates", "floe_matched", "floe_changes"):
                    cursor.execute(f"drop table if exists {table}").fetchall()


#: Iceberg's Parquet codecs as DuckDB names them (others: written through pyarrow).
_DUCKDB_CODECS = {
    "zstd": "zstd",
    "snappy": "snappy",
    "gzip": "gzip",
    "uncompressed": "uncompressed",
}
_DUCKDB_PRIMITIVES = {
    "boolean": "BOOLEAN",
    "int": "INTEGER",
    "long": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "string": "VARCHAR",
    "binary": "BLOB",
}


def _duckdb_type(iceberg_type: str) -> str | None:
    """The DuckDB type DuckDB writes to Parquet as an Iceberg type (None: not written so)."""
    if iceberg_type in _DUCKDB_PRIMITIVES:
        return _DUCKDB_PRIMITIVES[iceberg_type]
    match = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", iceberg_type)
    return f"DECIMAL({match[1]}, {match[2]})" if match else None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _duckdb_types(cursor: Any, empty: pa.Table) -> dict[str, str]:
    """The DuckDB type of each column of an Arrow schema, as DuckDB reads it."""
    name = f"floe_types_{uuid.uuid4().hex[:12]}"
    cursor.register(name, empty)
    try:
        rows = cursor.execute(f"describe {name}").fetchall()
    finally:
        cursor.unregister(name)
    return {str(row[0]): str(row[1]) for row in rows}


class _DuckDBReader:
    def __init__(self, con: Any) -> None:
        self._con = con
        # One relation streams at a time: memory stays that of one table, and the other
        # publishing threads overlap their catalog commits with it instead.
        self._gate = threading.RLock()

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A cursor of its own (DuckDB connections must not be shared between threads)."""
        with self._gate:
            cursor = self._con.cursor()
            try:
                yield cursor
            finally:
                cursor.close()

    @contextmanager
    def settings(self, **values: object) -> Iterator[None]:
        """DuckDB settings changed for the duration (they are the database's, hence the gate)."""
        with self.cursor() as cursor:
            names = list(values)
            before = cursor.execute(
                "select " + ", ".join(f"current_setting({_literal(n)})" for n in names)
            ).fetchall()[0]
            for name, value in values.items():
                cursor.execute(f"set {name} = {_literal(str(value))}").fetchall()
            try:
                yield
            finally:
                for name, value in zip(names, before, strict=True):
                    cursor.execute(f"set {name} = {_literal(str(value))}").fetchall()

    def read(self, relation: Relation) -> RelationData:
        return _DuckDBData(self, relation)

    def columns(self, relation: Relation) -> list[tuple[str, str]]:
        """The relation's columns and their DuckDB types, in order (empty if it does not exist)."""
        with self.cursor() as cursor:
            rows = cursor.execute(
                "select column_name, data_type from information_schema.columns"
                " where lower(table_catalog) = lower(coalesce(?, current_database()))"
                " and lower(table_schema) = lower(?) and lower(table_name) = lower(?)"
                " order by ordinal_position",
                [relation.database, relation.schema, relation.identifier],
            ).fetchall()
        return [(str(name), str(kind)) for name, kind in rows]


# PostgreSQL type oids and the Arrow types their values are read as (others: text).
_PG_INT = {20: "int64", 21: "int32", 23: "int32", 26: "int64"}
_PG_FLOAT = {700: "float32", 701: "float64"}
_PG_TEXT = {18, 19, 25, 1042, 1043}
_PG_JSON = {114, 3802}


def _pg_arrow_type(type_code: int, precision: int | None, scale: int | None) -> pa.DataType | None:
    """The Arrow type of a PostgreSQL column (None: an unconstrained numeric, measured)."""
    import pyarrow as pa

    if type_code in _PG_INT:
        return pa.int64() if _PG_INT[type_code] == "int64" else pa.int32()
    if type_code in _PG_FLOAT:
        return pa.float32() if _PG_FLOAT[type_code] == "float32" else pa.float64()
    fixed = {
        16: pa.bool_(),
        17: pa.binary(),
        1082: pa.date32(),
        1083: pa.time64("us"),
        1114: pa.timestamp("us"),
        1184: pa.timestamp("us", tz="UTC"),
    }
    if type_code in fixed:
        return fixed[type_code]
    if type_code == 1700:
        if precision is not None and 0 < precision <= 38:
            return pa.decimal128(precision, scale or 0)
        return None
    return pa.string()


class _PostgresData(_BatchesOnly):
    """A relation read through a server-side cursor. No fingerprint: a heap has no stable
    append order (vacuum reuses space, a scan may start mid-table)."""

    def __init__(self, reader: _PostgresReader, relation: Relation) -> None:
        self._reader = reader
        self._relation = relation
        self._schema: pa.Schema | None = None
        self._text: set[str] = set()  # columns read as text
        self._json: set[str] = set()

    def schema(self) -> pa.Schema:
        import pyarrow as pa

        if self._schema is not None:
            return self._schema
        name = self._relation.sql(with_database=False)
        with self._reader.cursor() as cur:
            cur.execute(f"select * from {name} limit 0")
            description = list(cur.description)
            fields: list[pa.Field] = []
            unconstrained: list[str] = []
            for column in description:
                arrow = _pg_arrow_type(column.type_code, column.precision, column.scale)
                if arrow is None:
                    unconstrained.append(column.name)
                    arrow = pa.null()  # measured below
                elif pa.types.is_string(arrow):
                    self._text.add(column.name)
                    if column.type_code in _PG_JSON:
                        self._json.add(column.name)
                fields.append(pa.field(column.name, arrow))
            measured = self._measure(cur, name, unconstrained)
        self._schema = pa.schema(
            [measured.get(f.name, f) if f.name in measured else f for f in fields]
        )
        return self._schema

    @staticmethod
    def _measure(cur: Any, name: str, columns: list[str]) -> dict[str, pa.Field]:
        """A `numeric` column without a declared precision: the decimal its values need."""
        import pyarrow as pa

        if not columns:
            return {}
        parts = []
        for column in columns:
            q = _quote(column)
            parts += [
                f"max(scale({q}))",
                f"max(length(trunc(abs({q}))::text))",
            ]
        cur.execute(f"select {', '.join(parts)} from {name}")
        row = cur.fetchone() or ()
        out = {}
        for i, column in enumerate(columns):
            scale, digits = row[2 * i], row[2 * i + 1]
            scale, digits = int(scale or 0), int(digits or 1)
            precision = max(1, scale + digits)
            kind = pa.decimal128(precision, scale) if precision <= 38 else pa.float64()
            out[column] = pa.field(column, kind)
        return out

    def batches(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        schema = self.schema()
        rows = batch_rows(64.0 * max(1, len(schema)))
        name = self._relation.sql(with_database=False)
        with self._reader.cursor(name=f"floe_{uuid.uuid4().hex[:12]}") as cur:
            cur.itersize = rows
            cur.execute(f"select * from {name}")
            while chunk := cur.fetchmany(rows):
                arrays = []
                for i, field in enumerate(schema):
                    values = [row[i] for row in chunk]
                    if field.name in self._json:
                        values = [None if v is None else json.dumps(v) for v in values]
                    elif field.name in self._text:
                        values = [None if v is None else str(v) for v in values]
                    arrays.append(pa.array(values, type=field.type))
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)


class _PostgresReader:
    def __init__(self, con: Any) -> None:
        self._con = con
        self._gate = threading.RLock()  # one connection: one statement at a time

    @contextmanager
    def cursor(self, name: str | None = None) -> Iterator[Any]:
        """A cursor (server-side when named) in the connection's read transaction."""
        with self._gate:
            try:
                with self._con.cursor(name) if name else self._con.cursor() as cur:
                    yield cur
            except Exception:
                self._con.rollback()  # a failed statement would poison the connection
                raise

    def read(self, relation: Relation) -> RelationData:
        return _PostgresData(self, relation)

    def columns(self, relation: Relation) -> list[tuple[str, str]]:
        """The relation's columns and their PostgreSQL types, in order (empty if it does not exist).

        From the system catalog rather than information_schema, whose `data_type` drops
        lengths and precisions (`character varying`, `numeric`): `format_type` keeps them
        (`character varying(20)`, `numeric(12,2)`), as psql shows them. Runs in the
        connection's current transaction, like `read`.
        """
        with self.cursor() as cur:
            cur.execute(
                "select a.attname, format_type(a.atttypid, a.atttypmod)"
                " from pg_catalog.pg_attribute a"
                " join pg_catalog.pg_class c on c.oid = a.attrelid"
                " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = %s and c.relname = %s"
                " and a.attnum > 0 and not a.attisdropped order by a.attnum",
                (relation.schema, relation.identifier),
            )
            rows = cur.fetchall()
        return [(str(name), str(kind)) for name, kind in rows]


@contextmanager
def open_reader(artifacts: CompiledArtifacts, secrets: Secrets) -> Iterator[Reader]:
    """A reader on the compute engine; only after dbt has finished (DuckDB allows one writer)."""
    profile = artifacts.compute.profile
    if isinstance(profile, DuckDBCompute):
        import duckdb

        path = profile.path
        database = path if path == ":memory:" else str(artifacts.resolve_path(path))
        spill = tempfile.mkdtemp(prefix="floe-duckdb-")
        con = duckdb.connect(
            database,
            read_only=database != ":memory:",
            config={
                "memory_limit": DUCKDB_MEMORY_LIMIT,
                "temp_directory": spill,
                # Order is the reader's business (rowid filters), not the scan's: an
                # unordered parallel scan holds fewer rows back.
                "preserve_insertion_order": False,
                "threads": DUCKDB_THREADS,
            },
        )
        try:
            yield _DuckDBReader(con)
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)
    elif isinstance(profile, PostgresCompute):
        import psycopg2  # type: ignore[import-untyped]

        con = psycopg2.connect(
            host=profile.host,
            port=profile.port,
            user=profile.user,
            password=secrets.get(profile.password.secret_ref) if profile.password else None,
            dbname=profile.dbname,
            sslmode=profile.sslmode or "prefer",
            connect_timeout=10,
        )
        try:
            yield _PostgresReader(con)
        finally:
            con.close()
    else:
        raise UnsupportedCompute(
            f"publishing tables built on {profile.type} to Iceberg is not supported yet"
        )
