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
