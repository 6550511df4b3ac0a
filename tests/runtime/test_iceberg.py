"""Publishing to Iceberg: one commit and one snapshot per publish, and a schema that follows the
model. A real pyiceberg SQL catalog on a SQLite file and a local warehouse; no mocks."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.io.pyarrow import UnsupportedPyArrowTypeException
from pyiceberg.table import Table
from pyiceberg.types import (
    DateType,
    DecimalType,
    DoubleType,
    IcebergType,
    IntegerType,
    LongType,
    StringType,
    TimestampType,
)

from floe_runtime.runtime.iceberg import PublishResult, publish_table

# Fail fast instead of backing off when a test provokes a commit conflict.
FAST_RETRY = {
    "commit.retry.num-retries": "1",
    "commit.retry.min-wait-ms": "1",
    "commit.retry.max-wait-ms": "1",
}


class _RacingCatalog(SqlCatalog):
    """A real SQL catalog where, once, another writer commits first: after this writer loaded
    the table and wrote its files, just before its own commit reaches the catalog."""

    race: Callable[[], None] | None = None

    def commit_table(self, table: Table, requirements: Any, updates: Any) -> Any:
        race, self.race = self.race, None
        if race is not None:
            race()
        return super().commit_table(table, requirements, updates)


def _catalog(tmp_path: Path) -> _RacingCatalog:
    return _RacingCatalog(
        "default", uri=f"sqlite:///{tmp_path / 'c.db'}", warehouse=(tmp_path / "wh").as_uri()
    )


def _other_writer(tmp_path: Path) -> SqlCatalog:
    """A second handle on the same catalog, as another process would have."""
    return SqlCatalog(
        "default", uri=f"sqlite:///{tmp_path / 'c.db'}", warehouse=(tmp_path / "wh").as_uri()
    )


def _publish(catalog: SqlCatalog, data: pa.Table) -> PublishResult:
    return publish_table(catalog, "ns", "t", data, {"floe.run-id": "r", **FAST_RETRY})


def _load(catalog: SqlCatalog) -> Table:
    return catalog.load_table(("ns", "t"))


def _types(table: Table) -> dict[str, IcebergType]:
    return {f.name: f.field_type for f in table.schema().fields}


def _ids(table: Table) -> dict[str, int]:
    return {f.name: f.field_id for f in table.schema().fields}


def _commits(table: Table) -> int:
    """How many metadata versions (catalog commits) the table has had."""
    return len(table.metadata.metadata_log) + 1


def _rows(table: Table, snapshot_id: int | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.scan(snapshot_id=snapshot_id).to_arrow().to_pylist()
    return rows


def _files_on_disk(tmp_path: Path) -> set[str]:
    return {p.as_uri() for p in (tmp_path / "wh").rglob("*.parquet")}


def _files_referenced(table: Table) -> set[str]:
    return {
        entry.data_file.file_path
        for snapshot in table.snapshots()
        for manifest in snapshot.manifests(table.io)
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
    }


# ---------------------------------------------------------------- creating and replacing


def test_publish_overwrites_and_evolves_added_columns(tmp_path: Path) -> None:
    catalog = SqlCatalog(
        "default", uri=f"sqlite:///{tmp_path / 'c.db'}", warehouse=(tmp_path / "wh").as_uri()
    )
    props = {"floe.pipeline": "p", "floe.run-id": "r1", "dbt.unique-id": "model.p.t"}
    first = publish_table(catalog, "analytics", "t", pa.table({"id": [1, 2]}), props)
    assert first.rows == 2
    data = pa.table({"id": pa.array([1, 2, 3], pa.uint8()), "name": ["a", "b", "c"]})
    second = publish_table(catalog, "analytics", "t", data, {**props, "floe.run-id": "r2"})
    table = catalog.load_table(("analytics", "t"))
    assert [f.name for f in table.schema().fields] == ["id", "name"]
    assert table.scan().to_arrow().num_rows == 3  # replaced, not appended
    assert table.properties["floe.run-id"] == "r2"
    assert second.snapshot_id != first.snapshot_id
    # The previous snapshot is still there for time travel.
    assert table.scan(snapshot_id=first.snapshot_id).to_arrow().num_rows == 2


def test_new_table_arrives_with_its_data_in_one_commit(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    result = _publish(catalog, pa.table({"id": [1, 2]}))
    table = _load(catalog)
    assert _commits(table) == 1  # never visible as an empty table
    assert [s.summary.operation.value for s in table.snapshots()] == ["append"]  # type: ignore[union-attr]
    assert result.snapshot_id == table.current_snapshot().snapshot_id  # type: ignore[union-attr]
    assert result.schema_changes == []
    assert result.columns == [("id", "long")]
    assert table.properties["floe.run-id"] == "r"


def test_publishing_an_unchanged_schema_reports_no_changes(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    _publish(catalog, pa.table({"id": [1, 2], "name": ["a", "b"]}))
    schema_id = _load(catalog).schema().schema_id
    # Arrow types that are the same Iceberg types (large_string, uint8 → long) change nothing.
    again = pa.table({"id": pa.array([3], pa.uint8()), "name": pa.array(["c"], pa.large_string())})
    second = _publish(catalog, again)
    third = _publish(catalog, pa.table({"id": [4], "name": ["d"]}))
    table = _load(catalog)
    assert second.schema_changes == [] and third.schema_changes == []
    assert table.schema().schema_id == schema_id
    assert len(table.schemas()) == 1
    assert _rows(table) == [{"id": 4, "name": "d"}]


# ---------------------------------------------------------------- the schema follows the model


@pytest.mark.parametrize(
    ("before", "after", "new_type", "line"),
    [
        (
            pa.array([1, 2], pa.int32()),
            pa.array([3, 2**40], pa.int64()),
            LongType(),
            "amount: int → long (promoted)",
        ),
        (
            pa.array([1.5, 2.5], pa.float32()),
            pa.array([0.1, 1e300], pa.float64()),
            DoubleType(),
            "amount: float → double (promoted)",
        ),
        (
            pa.array([Decimal("1.25"), Decimal("2.50")], pa.decimal128(9, 2)),
            pa.array([Decimal("1234567890123.45")], pa.decimal128(18, 2)),
            DecimalType(18, 2),
            "amount: decimal(9, 2) → decimal(18, 2) (promoted)",
        ),
    ],
)
def test_promotable_type_evolves_in_place(
    tmp_path: Path, before: pa.Array, after: pa.Array, new_type: IcebergType, line: str
) -> None:
    catalog = _catalog(tmp_path)
    first = _publish(catalog, pa.table({"id": [1, 2], "amount": before}))
    old_ids = _ids(_load(catalog))
    second = _publish(catalog, pa.table({"id": list(range(len(after))), "amount": after}))
    table = _load(catalog)
    assert second.schema_changes == [line]
    assert _ids(table) == old_ids  # same column ids: evolved in place
    assert _types(table)["amount"] == new_type
    assert [r["amount"] for r in _rows(table)] == after.to_pylist()
    assert [r["amount"] for r in _rows(table, first.snapshot_id)] == before.to_pylist()


@pytest.mark.parametrize(
    ("before", "after", "old_type", "new_type", "line"),
    [
        (
            pa.array(["10", "20"]),
            pa.array([30, 40], pa.int64()),
            StringType(),
            LongType(),
            "code: string → long (replaced)",
        ),
        (
            pa.array([10, 20], pa.int64()),
            pa.array(["x", "y"]),
            LongType(),
            StringType(),
            "code: long → string (replaced)",
        ),
        (  # narrowing is not a promotion
            pa.array([10, 20], pa.int64()),
            pa.array([1, 2], pa.int32()),
            LongType(),
            IntegerType(),
            "code: long → int (replaced)",
        ),
        (  # pyiceberg's own promote() would let the scale change through
            pa.array([Decimal("1.25")], pa.decimal128(9, 2)),
            pa.array([Decimal("1.125")], pa.decimal128(18, 3)),
            DecimalType(9, 2),
            DecimalType(18, 3),
            "code: decimal(9, 2) → decimal(18, 3) (replaced)",
        ),
        (  # Iceberg has no date → timestamp promotion
            pa.array([dt.date(2024, 1, 2)]),
            pa.array([dt.datetime(2024, 1, 2, 3, 4)], pa.timestamp("us")),
            DateType(),
            TimestampType(),
            "code: date → timestamp (replaced)",
        ),
    ],
)
def test_other_type_change_replaces_the_column_in_the_same_commit(
    tmp_path: Path,
    before: pa.Array,
    after: pa.Array,
    old_type: IcebergType,
    new_type: IcebergType,
    line: str,
) -> None:
    catalog = _catalog(tmp_path)
    n_before, n_after = len(before), len(after)
    first = _publish(
        catalog,
        pa.table({"id": list(range(n_before)), "code": before, "tail": ["t"] * n_before}),
    )
    old = _load(catalog)
    second = _publish(
        catalog, pa.table({"id": list(range(n_after)), "code": after, "tail": ["u"] * n_after})
    )
    table = _load(catalog)
    assert second.schema_changes == [line]
    assert _commits(table) == _commits(old) + 1
    assert [f.name for f in table.schema().fields] == ["id", "code", "tail"]  # kept its place
    assert _types(table)["code"] == new_type
    assert _ids(table)["code"] != _ids(old)["code"]  # a new column: old files never misread
    assert _ids(table)["id"] == _ids(old)["id"] and _ids(table)["tail"] == _ids(old)["tail"]
    assert [r["code"] for r in _rows(table)] == after.to_pylist()
    # The previous snapshot still reads with its own schema.
    assert table.schemas()[old.schema().schema_id].find_field("code").field_type == old_type
    assert [r["code"] for r in _rows(table, first.snapshot_id)] == before.to_pylist()


def test_removed_column_disappears_and_added_one_appears(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    _publish(catalog, pa.table({"id": [1], "old_col": ["gone"]}))
    old_ids = _ids(_load(catalog))
    result = _publish(catalog, pa.table({"id": [2], "new_col": ["here"]}))
    table = _load(catalog)
    assert result.schema_changes == ["new_col added (string)", "old_col removed"]
    assert [f.name for f in table.schema().fields] == ["id", "new_col"]  # not an all-NULL column
    assert _ids(table)["id"] == old_ids["id"]
    assert result.columns == [("id", "long"), ("new_col", "string")]
    assert _rows(table) == [{"id": 2, "new_col": "here"}]


def test_columns_follow_the_models_order(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    _publish(catalog, pa.table({"a": [1], "b": ["x"], "c": [1.0]}))
    old_ids = _ids(_load(catalog))
    moved = _publish(catalog, pa.table({"c": [2.0], "a": [2], "b": ["y"]}))
    table = _load(catalog)
    assert moved.schema_changes == ["columns reordered: c, a, b"]
    assert [f.name for f in table.schema().fields] == ["c", "a", "b"]
    assert _ids(table) == old_ids
    # A column added in the middle lands there; that is not a reorder.
    inserted = _publish(catalog, pa.table({"c": [3.0], "new": [True], "a": [3], "b": ["z"]}))
    assert inserted.schema_changes == ["new added (boolean)"]
    assert [f.name for f in _load(catalog).schema().fields] == ["c", "new", "a", "b"]


def test_required_column_becomes_optional(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    catalog.create_namespace("ns")
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False)])
    catalog.create_table(("ns", "t"), schema=schema).append(pa.table({"id": [1]}, schema=schema))
    result = _publish(catalog, pa.table({"id": [None, 2]}, schema=pa.schema([("id", pa.int64())])))
    assert result.schema_changes == ["id: required → optional"]
    assert _rows(_load(catalog)) == [{"id": None}, {"id": 2}]


# ---------------------------------------------------------------- one commit, one snapshot


def test_every_publish_is_one_commit_with_one_overwrite_snapshot(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    steps = [
        pa.table({"id": pa.array([1, 2], pa.int32()), "code": ["1", "2"], "x": ["a", "b"]}),
        pa.table(
            {"id": pa.array([1, 2, 3], pa.int32()), "code": ["1", "2", "3"], "x": list("abc")}
        ),
        pa.table({"id": [1, 2, 3, 4], "code": ["1", "2", "3", "4"], "x": list("abcd")}),  # promote
        pa.table({"id": [5], "code": [5], "x": ["e"]}),  # replace code
        pa.table({"id": [6, 7], "code": [6, 7]}),  # remove x
        pa.table({"id": pa.array([], pa.int64()), "code": pa.array([], pa.int64())}),  # empty
        pa.table({"id": [8], "code": [8], "y": [True]}),  # add y
    ]
    published: list[tuple[int, int, list[dict[str, Any]]]] = []  # snapshot, schema id, rows
    for number, data in enumerate(steps):
        before = _load(catalog) if number else None
        result = _publish(catalog, data)
        table = _load(catalog)
        snapshots = table.snapshots()
        assert len(snapshots) == number + 1  # exactly one new snapshot
        assert _commits(table) == number + 1  # in exactly one catalog commit
        snapshot = snapshots[-1]
        assert snapshot.snapshot_id == result.snapshot_id
        assert snapshot.summary is not None
        assert snapshot.summary.operation.value == ("overwrite" if number else "append")
        assert snapshot.schema_id == table.schema().schema_id  # written with the new schema
        assert len(table.history()) == number + 1
        if before is not None:
            assert snapshot.parent_snapshot_id == before.current_snapshot().snapshot_id  # type: ignore[union-attr]
        expected = data.cast(table.schema().as_arrow(), safe=False).to_pylist()
        assert _rows(table) == expected
        published.append((snapshot.snapshot_id, snapshot.schema_id, expected))
        # Every earlier snapshot still reads back exactly what was published with it, with
        # its own schema: no snapshot shows a mix, and none is empty unless its data was.
        for snapshot_id, schema_id, rows in published:
            assert table.snapshot_by_id(snapshot_id).schema_id == schema_id  # type: ignore[union-attr]
            assert _rows(table, snapshot_id) == rows
    assert [len(rows) for _, _, rows in published] == [2, 3, 4, 1, 2, 0, 1]


# ---------------------------------------------------------------- a new table: all or nothing


def _batches_then(fault: Callable[[], None]) -> pa.RecordBatchReader:
    """A stream that yields one batch, then meets `fault` (the engine's cursor dying, …)."""
    schema = pa.schema([("id", pa.int64())])

    def batches() -> Iterator[pa.RecordBatch]:
        yield pa.record_batch([pa.array(range(1000))], schema=schema)
        fault()
        yield pa.record_batch([pa.array([1])], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def test_first_publish_failing_half_way_leaves_no_table(tmp_path: Path) -> None:
    # Before the fix the table was created first and filled in a second commit: a failure
    # in between left a visible table with no snapshot.
    catalog = _catalog(tmp_path)

    def lost() -> None:
        raise OSError("connection to the engine lost")

    with pytest.raises(OSError, match="engine lost"):
        publish_table(catalog, "ns", "t", _batches_then(lost), {})
    assert not catalog.table_exists(("ns", "t"))
    assert catalog.list_tables("ns") == []
    assert _files_on_disk(tmp_path) == set()  # the files it had written are deleted again
    # The next publish creates it, filled, in one commit.
    result = _publish(catalog, pa.table({"id": [1, 2]}))
    table = _load(catalog)
    assert _commits(table) == 1 and result.rows == 2 and len(table.snapshots()) == 1


#: A publisher process that announces when it is half way through its first table.
_HALF_WAY = """
import sys, time
from pathlib import Path
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from floe_runtime.runtime.iceberg import publish_table

folder = Path(sys.argv[1])
catalog = SqlCatalog("default", uri=f"sqlite:///{folder / 'c.db'}", warehouse=(folder / "wh").as_uri())
schema = pa.schema([("id", pa.int64())])

def batches():
    for n in range(1000):
        yield pa.record_batch([pa.array(range(n * 10_000, (n + 1) * 10_000))], schema=schema)
        if n == 3:
            (folder / "half-way").touch()
            time.sleep(120)

publish_table(catalog, "ns", "t", pa.RecordBatchReader.from_batches(schema, batches()), {})
"""


@pytest.mark.slow
def test_first_publish_killed_with_sigkill_leaves_no_table(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_HALF_WAY), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "half-way").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the publisher never got half way"
            time.sleep(0.05)
        assert list((tmp_path / "wh").rglob("*.parquet"))  # a data file is being written
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    catalog = _catalog(tmp_path)
    assert not catalog.table_exists(("ns", "t"))  # readers see no table, not an empty one
    result = _publish(catalog, pa.table({"id": [1, 2, 3]}))
    assert result.rows == 3
    assert _rows(_load(catalog)) == [{"id": 1}, {"id": 2}, {"id": 3}]


# ---------------------------------------------------------------- failures leave the table as it was


def test_data_that_cannot_be_written_leaves_table_untouched(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    first = _publish(catalog, pa.table({"id": [1, 2], "x": ["a", "b"]}))
    before = _load(catalog)
    files = _files_on_disk(tmp_path)
    # A type change and a removal that would apply, plus a column Iceberg cannot store.
    bad = pa.table({"id": ["x"], "span": pa.array([dt.timedelta(seconds=1)], pa.duration("us"))})
    with pytest.raises(UnsupportedPyArrowTypeException, match="'span' has an unsupported type"):
        _publish(catalog, bad)
    table = _load(catalog)
    assert table.current_snapshot().snapshot_id == first.snapshot_id  # type: ignore[union-attr]
    assert table.schema() == before.schema() and len(table.schemas()) == 1
    assert _commits(table) == _commits(before)
    assert _rows(table) == [{"id": 1, "x": "a"}, {"id": 2, "x": "b"}]
    assert _files_on_disk(tmp_path) == files


def test_commit_conflict_with_a_concurrent_append_leaves_the_other_writers_table(
    tmp_path: Path,
) -> None:
    catalog = _catalog(tmp_path)
    _publish(catalog, pa.table({"id": [1, 2], "x": ["a", "b"]}))

    def other_writer_appends() -> None:
        _load(_other_writer(tmp_path)).append(pa.table({"id": [3], "x": ["c"]}))

    catalog.race = other_writer_appends
    # Our publish would replace `id`'s type and drop `x`: none of it may land half-way.
    with pytest.raises(ValidationException):
        _publish(catalog, pa.table({"id": ["new"]}))
    table = _load(catalog)
    other = table.current_snapshot()
    assert other is not None and other.summary is not None
    assert other.summary.operation.value == "append"  # the other writer's, untouched
    assert table.schema().schema_id == 0 and len(table.schemas()) == 1
    assert sorted(r["id"] for r in _rows(table)) == [1, 2, 3]
    assert _files_on_disk(tmp_path) == _files_referenced(table)  # ours were cleaned up


def test_commit_conflict_with_a_concurrent_schema_change_fails_the_publish(
    tmp_path: Path,
) -> None:
    catalog = _catalog(tmp_path)
    first = _publish(catalog, pa.table({"id": [1, 2]}))

    def other_writer_alters() -> None:
        with _load(_other_writer(tmp_path)).update_schema() as update:
            update.add_column("note", StringType())

    catalog.race = other_writer_alters
    # The same schema as before: the publish computed "no change" against a schema that is
    # gone by the time it commits, so it must not commit.
    with pytest.raises(CommitFailedException):
        _publish(catalog, pa.table({"id": [7]}))
    table = _load(catalog)
    assert table.current_snapshot().snapshot_id == first.snapshot_id  # type: ignore[union-attr]
    assert [f.name for f in table.schema().fields] == ["id", "note"]  # the other writer's
    assert _rows(table) == [{"id": 1, "note": None}, {"id": 2, "note": None}]
    assert _files_on_disk(tmp_path) == _files_referenced(table)


def test_partition_column_is_not_dropped_or_retyped(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    first = _publish(catalog, pa.table({"day": ["2024-01-01"], "n": [1]}))
    with _load(catalog).update_spec() as spec:
        spec.add_identity("day")
    before = _load(catalog)
    with pytest.raises(ValueError, match="'day' of Iceberg table ns.t: its partition spec"):
        _publish(catalog, pa.table({"day": [dt.date(2024, 1, 2)], "n": [2]}))
    with pytest.raises(ValueError, match="cannot remove column 'day'"):
        _publish(catalog, pa.table({"n": [2]}))
    table = _load(catalog)
    assert table.current_snapshot().snapshot_id == first.snapshot_id  # type: ignore[union-attr]
    assert table.schema() == before.schema()
