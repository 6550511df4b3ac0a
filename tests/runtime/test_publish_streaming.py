"""Publishing in bounded memory: rows move from the compute engine in batches (or as Parquet
files the engine writes itself) into Iceberg data files of the table's target size, still one
commit and one snapshot per publish. Real DuckDB, PostgreSQL and a pyiceberg SQL catalog."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.runtime.compute import Relation, open_reader
from floe_runtime.runtime.iceberg import load_catalog, publish_table
from floe_runtime.runtime.secrets import Secrets
from tests.runtime.conftest import Postgres
from tests.runtime.publishing import compiled_project, data_files

SMALL_FILES = {"write.target-file-size-bytes": str(256 * 1024)}


@pytest.fixture
def duck(tmp_path: Path) -> tuple[CompiledArtifacts, Path]:
    artifacts = compiled_project(tmp_path / "p", "{type: duckdb, path: ./.floe/db.duckdb}")
    path = tmp_path / "p" / ".floe" / "db.duckdb"
    path.parent.mkdir(parents=True)
    return artifacts, path


def _publish(artifacts: CompiledArtifacts, relation: str, **props: str) -> tuple[Catalog, Table]:
    secrets = Secrets({})
    catalog = load_catalog(artifacts, secrets)
    with open_reader(artifacts, secrets) as reader:
        data = reader.read(Relation(None, "main", relation))
        publish_table(catalog, "ns", relation, data, {"floe.run-id": "r", **props})
    return catalog, catalog.load_table(("ns", relation))


def _local(uri: str) -> str:
    return uri.removeprefix("file://")


MIXED = """
create table main.{name} as
select i::bigint as id, (i % 7)::tinyint as small, (i * 3)::ubigint as unsigned,
  (i / 100.0)::decimal(12,2) as amount, 'text ' || md5(i::varchar) as note,
  timestamp '2024-01-01' + to_seconds(i) as at,
  (timestamptz '2024-01-01 00:00:00+00' + to_seconds(i)) as at_tz,
  date '2024-01-01' + (i % 365)::integer as day, i % 2 = 0 as even, (i * 0.5)::double as half,
  case when i % 10 = 0 then null else i end as sparse
from range({rows}) t(i)
"""


def test_duckdb_writes_the_data_files_itself_in_target_sized_files_and_one_commit(
    duck: tuple[CompiledArtifacts, Path],
) -> None:
    artifacts, path = duck
    with duckdb.connect(str(path)) as con:
        con.execute(MIXED.format(name="facts", rows=60_000))
        expected = con.sql("select * from main.facts order by id").fetchall()
    catalog, table = _publish(artifacts, "facts", **SMALL_FILES)
    files = [f.file_path for f in data_files(table)]
    assert len(files) >= 4  # ~1.8 MB of Parquet in files of about 256 KB
    for uri in files:
        meta = pq.ParquetFile(_local(uri)).metadata
        assert meta.created_by.startswith("DuckDB")  # the engine wrote it, not Python
        assert Path(_local(uri)).stat().st_size < 2 * 256 * 1024
    assert len(table.snapshots()) == 1 and len(table.metadata.metadata_log) == 0
    types = {f.name: str(f.field_type) for f in table.schema().fields}
    assert types == {
        "id": "long",
        "small": "int",
        "unsigned": "long",
        "amount": "decimal(12, 2)",
        "note": "string",
        "at": "timestamp",
        "at_tz": "timestamptz",
        "day": "date",
        "even": "boolean",
        "half": "double",
        "sparse": "long",
    }
    rows = table.scan().to_arrow().sort_by("id").to_pylist()
    assert len(rows) == 60_000
    tz = dt.UTC
    for got, want in zip(rows[::997], expected[::997], strict=True):
        assert list(got.values())[:6] == list(want[:6])
        assert got["at_tz"] == want[6].astimezone(tz) and got["day"] == want[7]
        assert (got["even"], got["half"], got["sparse"]) == want[8:]
    # The file statistics are real: a filter on the id prunes files.
    assert len(list(table.scan(row_filter="id < 1000").plan_files())) == 1


def test_duckdb_overwrite_evolves_the_schema_in_the_same_single_commit(
    duck: tuple[CompiledArtifacts, Path],
) -> None:
    artifacts, path = duck
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create table main.t as select i::integer as id, 'a' as code from range(5) r(i)"
        )
    _, first = _publish(artifacts, "t")
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create or replace table main.t as"
            " select i::bigint as id, i as code, true as flag from range(8) r(i)"
        )
    _, table = _publish(artifacts, "t")
    assert len(table.snapshots()) == 2 and len(table.metadata.metadata_log) == 1
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary.operation.value == "overwrite"
    assert snapshot.schema_id == table.schema().schema_id != first.schema().schema_id
    assert {f.name: str(f.field_type) for f in table.schema().fields} == {
        "id": "long",
        "code": "long",
        "flag": "boolean",
    }
    assert table.scan().to_arrow().sort_by("id").column("code").to_pylist() == list(range(8))
    old = table.scan(snapshot_id=first.current_snapshot().snapshot_id).to_arrow()  # type: ignore[union-attr]
    assert old.column("code").to_pylist() == ["a"] * 5


def test_nested_columns_are_streamed_through_arrow_instead(
    duck: tuple[CompiledArtifacts, Path],
) -> None:
    artifacts, path = duck
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create table main.n as select i as id, [i, i + 1] as pair,"
            " {'k': i::varchar} as info from range(3000) r(i)"
        )
    _, table = _publish(artifacts, "n")
    for uri in (f.file_path for f in data_files(table)):
        assert not pq.ParquetFile(_local(uri)).metadata.created_by.startswith("DuckDB")
    rows = table.scan().to_arrow().sort_by("id").to_pylist()
    assert rows[2999] == {"id": 2999, "pair": [2999, 3000], "info": {"k": "2999"}}


def _batches(count: int, fail_at: int | None = None) -> Iterator[pa.RecordBatch]:
    for n in range(count):
        if n == fail_at:
            raise RuntimeError("the engine went away")
        ids = pa.array(range(n * 10_000, (n + 1) * 10_000), pa.int64())
        yield pa.record_batch({"id": ids, "note": pa.compute.cast(ids, pa.string())})


def _arrow_catalog(tmp_path: Path) -> Catalog:
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        "default", uri=f"sqlite:///{tmp_path / 'c.db'}", warehouse=(tmp_path / "wh").as_uri()
    )


def test_a_batch_stream_becomes_target_sized_files_in_one_snapshot(tmp_path: Path) -> None:
    catalog = _arrow_catalog(tmp_path)
    schema = pa.schema([("id", pa.int64()), ("note", pa.string())])
    reader = pa.RecordBatchReader.from_batches(schema, _batches(40))
    result = publish_table(catalog, "ns", "t", reader, SMALL_FILES)
    table = catalog.load_table(("ns", "t"))
    files = [f.file_path for f in data_files(table)]
    assert result.rows == 400_000 and len(files) >= 3
    sizes = [Path(_local(f)).stat().st_size for f in files]
    assert max(sizes) < 4 * 256 * 1024  # rolled over at the target (+ one row group)
    assert len(table.snapshots()) == 1
    ids = table.scan().to_arrow().column("id").to_pylist()
    assert sorted(ids) == list(range(400_000))


def test_a_stream_failing_half_way_leaves_the_table_and_the_warehouse_as_they_were(
    tmp_path: Path,
) -> None:
    catalog = _arrow_catalog(tmp_path)
    publish_table(catalog, "ns", "t", pa.table({"id": [1], "note": ["x"]}), {})
    before = catalog.load_table(("ns", "t"))
    files = {p for p in (tmp_path / "wh").rglob("*.parquet")}
    schema = pa.schema([("id", pa.int64()), ("note", pa.string())])
    reader = pa.RecordBatchReader.from_batches(schema, _batches(40, fail_at=30))
    with pytest.raises(RuntimeError, match="the engine went away"):
        publish_table(catalog, "ns", "t", reader, SMALL_FILES)
    table = catalog.load_table(("ns", "t"))
    assert table.current_snapshot() == before.current_snapshot()
    assert table.scan().to_arrow().to_pylist() == [{"id": 1, "note": "x"}]
    assert {p for p in (tmp_path / "wh").rglob("*.parquet")} == files  # none left behind


def test_postgres_rows_come_through_a_server_side_cursor_with_their_types(
    postgres: Postgres, tmp_path: Path
) -> None:
    import psycopg2  # type: ignore[import-untyped]

    artifacts = compiled_project(
        tmp_path / "p",
        f"{{type: postgres, host: {postgres.host}, port: {postgres.port},"
        f" user: {postgres.user}, password: {{secret_ref: pg}}, dbname: {postgres.dbname}}}",
    )
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
        cur.execute("drop table if exists public.streamed")
        cur.execute(
            "create table public.streamed as select i as id, i::bigint * 1000 as big,"
            " (i / 8.0)::numeric as ratio, (i / 100.0)::numeric(10, 2) as amount,"
            " 'n' || i as name, timestamptz '2024-01-01 00:00+00' + i * interval '1 minute' as at,"
            " json_build_object('i', i) as doc, case when i % 3 = 0 then null else i end as gaps"
            " from generate_series(1, 30000) i"
        )
    secrets = Secrets({"pg": postgres.password})
    catalog = load_catalog(artifacts, secrets)
    with open_reader(artifacts, secrets) as reader:
        data = reader.read(Relation(None, "public", "streamed"))
        result = publish_table(catalog, "ns", "streamed", data, {})
    table = catalog.load_table(("ns", "streamed"))
    assert result.rows == 30_000
    assert {f.name: str(f.field_type) for f in table.schema().fields} == {
        "id": "int",
        "big": "long",
        # Measured: PostgreSQL gives `i / 8.0` scale 20; the largest value has 4 integer digits.
        "ratio": "decimal(24, 20)",
        "amount": "decimal(10, 2)",
        "name": "string",
        "at": "timestamptz",
        "doc": "string",
        "gaps": "int",
    }
    rows: dict[int, dict[str, Any]] = {r["id"]: r for r in table.scan().to_arrow().to_pylist()}
    assert rows[29_999]["ratio"] == Decimal("3749.875")
    assert rows[12]["amount"] == Decimal("0.12") and rows[12]["gaps"] is None
    assert rows[7]["at"] == dt.datetime(2024, 1, 1, 0, 7, tzinfo=dt.UTC)
    assert rows[7]["doc"] == '{"i": 7}'
