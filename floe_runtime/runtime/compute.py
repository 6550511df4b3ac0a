"""Reading a table dbt built back out of the compute engine, as Arrow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.config.platform import DuckDBCompute, PostgresCompute
from floe_runtime.runtime.secrets import Secrets

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped]


class Reader(Protocol):
    """Reads one relation as an Arrow table."""

    def read(self, relation: Relation) -> pa.Table: ...

    def columns(self, relation: Relation) -> list[tuple[str, str]]: ...


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
        return ".".join('"' + p.replace('"', '""') + '"' for p in parts)

    def __str__(self) -> str:
        return ".".join(p for p in (self.database, self.schema, self.identifier) if p)


class UnsupportedCompute(Exception):
    """Publishing from this compute type is not implemented."""


class _DuckDBReader:
    def __init__(self, con: Any) -> None:
        self._con = con

    def read(self, relation: Relation) -> pa.Table:
        # A cursor per call: DuckDB connections must not be shared between threads.
        # duckdb 2.x: `.arrow()` returns a reader; `to_arrow_table()` the table.
        cursor = self._con.cursor()
        try:
            result: pa.Table = cursor.sql(f"select * from {relation.sql()}").to_arrow_table()
        finally:
            cursor.close()
        return result

    def columns(self, relation: Relation) -> list[tuple[str, str]]:
        """The relation's columns and their DuckDB types, in order (empty if it does not exist)."""
        cursor = self._con.cursor()
        try:
            rows = cursor.execute(
                "select column_name, data_type from information_schema.columns"
                " where lower(table_catalog) = lower(coalesce(?, current_database()))"
                " and lower(table_schema) = lower(?) and lower(table_name) = lower(?)"
                " order by ordinal_position",
                [relation.database, relation.schema, relation.identifier],
            ).fetchall()
        finally:
            cursor.close()
        return [(str(name), str(kind)) for name, kind in rows]


class _PostgresReader:
    def __init__(self, con: Any) -> None:
        self._con = con

    def read(self, relation: Relation) -> pa.Table:
        import pyarrow as pa

        with self._con.cursor() as cur:
            cur.execute(f"select * from {relation.sql(with_database=False)}")
            names = [d.name for d in cur.description]
            rows = cur.fetchall()
        columns = {name: [row[i] for row in rows] for i, name in enumerate(names)}
        return (
            pa.table(columns) if rows else pa.table({n: pa.array([], pa.string()) for n in names})
        )

    def columns(self, relation: Relation) -> list[tuple[str, str]]:
        """The relation's columns and their PostgreSQL types, in order (empty if it does not exist).

        From the system catalog rather than information_schema, whose `data_type` drops
        lengths and precisions (`character varying`, `numeric`): `format_type` keeps them
        (`character varying(20)`, `numeric(12,2)`), as psql shows them. Runs in the
        connection's current transaction, like `read`.
        """
        try:
            with self._con.cursor() as cur:
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
        except Exception:
            self._con.rollback()  # a failed statement would poison the connection for `read`
            raise
        return [(str(name), str(kind)) for name, kind in rows]


@contextmanager
def open_reader(artifacts: CompiledArtifacts, secrets: Secrets) -> Iterator[Reader]:
    """A reader on the compute engine; only after dbt has finished (DuckDB allows one writer)."""
    profile = artifacts.compute.profile
    if isinstance(profile, DuckDBCompute):
        import duckdb

        path = profile.path
        database = path if path == ":memory:" else str(artifacts.resolve_path(path))
        con = duckdb.connect(database, read_only=database != ":memory:")
        try:
            yield _DuckDBReader(con)
        finally:
            con.close()
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
