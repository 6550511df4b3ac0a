"""Partitioned Iceberg tables: a model's `partition_by`/`partitioned_by` (dbt) or
`meta.floe.partition` (floe) becomes the table's partition spec, which evolves in the same
commit as the data when the configuration changes. Real dbt-duckdb runs through
`floe-runtime run`, a real SQL catalog and warehouse; the config shapes against the real
translator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table
from pyiceberg.transforms import BucketTransform
from pyiceberg.types import LongType

from floe_runtime.runtime.iceberg import (
    PartitionColumn,
    PartitionError,
    Partitioning,
    publish_table,
)
from tests.runtime.conftest import CliResult, copy_project, floe
from tests.runtime.publishing import compiled_project, data_files

TABLES = ("by_day", "by_month", "by_customer", "daily_events", "flat")


def _catalog(project: Path) -> SqlCatalog:
    return SqlCatalog(
        "default",
        uri=f"sqlite:///{project / '.floe' / 'catalog.db'}",
        warehouse=(project / ".floe" / "warehouse").as_uri(),
    )


def _tables(project: Path) -> dict[str, Table]:
    catalog = _catalog(project)
    return {name: catalog.load_table(("part", name)) for name in TABLES}


def _spec(table: Table) -> list[tuple[str, str, str]]:
    """The current spec as (source column, transform, partition field name)."""
    schema = table.schema()
    return [
        (schema.find_column_name(f.source_id) or "?", str(f.transform), f.name)
        for f in table.spec().fields
    ]


def _edit(path: Path, change: Callable[[str], str]) -> None:
    text = path.read_text()
    changed = change(text)
    assert changed != text, path
    path.write_text(changed)


def _run(project: Path, code: int = 0) -> CliResult:
    result = floe("run", str(project))
    assert result.code == code, result.output
    assert "Traceback" not in result.output, result.output
    return result


def _file_rows(path: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(path.removeprefix("file://")).to_pylist()
    return rows


def _month(value: dt.date | dt.datetime) -> int:
    """Iceberg's month transform: months since 1970-01."""
    return (value.year - 1970) * 12 + value.month - 1


def _assert_files_hold_their_partition(
    table: Table, partition_of: Callable[[dict[str, Any]], tuple[Any, ...]]
) -> int:
    """Every current data file carries partition values, and all its rows map to them."""
    files = data_files(table)
    assert files
    names = [f.name for f in table.specs()[files[0].spec_id].fields]
    for data_file in files:
        values = tuple(data_file.partition[i] for i in range(len(names)))
        assert all(v is not None for v in values), (names, values)
        rows = _file_rows(data_file.file_path)
        assert rows and {partition_of(r) for r in rows} == {values}, (data_file.file_path, names)
    return len(files)


@pytest.mark.slow
def test_configured_partitioning_becomes_the_spec_and_evolves_when_it_changes(
    tmp_path: Path,
) -> None:
    project = copy_project("partitions", tmp_path / "partitions")
    models = project / "dbt" / "models"
    first = _run(project)
    assert "layout    partitioning: day(order_date), bucket[4](customer_id)" in first.stdout
    tables = _tables(project)

    # Each shape of configuration, each transform.
    assert _spec(tables["by_day"]) == [
        ("order_date", "day", "order_date_day"),
        ("customer_id", "bucket[4]", "customer_id_bucket_4"),
    ]
    assert _spec(tables["by_month"]) == [("ordered_at", "month", "ordered_at_month")]
    assert _spec(tables["by_customer"]) == [("customer_id", "identity", "customer_id")]
    assert _spec(tables["daily_events"]) == [("ordered_at", "day", "ordered_at_day")]
    assert tables["flat"].spec().is_unpartitioned()
    for name, table in tables.items():
        assert table.spec().spec_id == 0, name  # created with its spec, in one commit
        assert len(table.metadata.metadata_log) == 0, name
        assert table.scan().to_arrow().num_rows == 60, name

    # The data files carry the partition values of the rows they hold.
    bucket = BucketTransform(4).transform(LongType())
    epoch = dt.date(1970, 1, 1)
    days = _assert_files_hold_their_partition(
        tables["by_day"],
        lambda r: ((r["order_date"] - epoch).days, bucket(r["customer_id"])),
    )
    assert days > 10  # 14 order dates over 4 buckets
    assert _assert_files_hold_their_partition(
        tables["by_month"], lambda r: (_month(r["ordered_at"]),)
    ) == len({_month(r["ordered_at"]) for r in tables["by_month"].scan().to_arrow().to_pylist()})
    assert (
        _assert_files_hold_their_partition(tables["by_customer"], lambda r: (r["customer_id"],))
        == 9
    )
    _assert_files_hold_their_partition(
        tables["daily_events"], lambda r: ((r["ordered_at"].date() - epoch).days,)
    )

    # The configuration changes: day → month and no bucket; identity → month; none → bucket.
    _edit(models / "schema.yml", lambda t: t.replace("transform: day", "transform: month"))
    _edit(
        models / "schema.yml",
        lambda t: t.replace('            - {column: customer_id, transform: "bucket[4]"}\n', ""),
    )
    _edit(
        models / "by_customer.sql",
        lambda t: t.replace("partition_by=['customer_id']", "partition_by='months(order_date)'"),
    )
    _edit(
        models / "flat.sql",
        lambda t: t.replace(
            "materialized='table'", "materialized='table', partition_by='bucket(8, order_id)'"
        ),
    )
    seed = project / "dbt" / "seeds" / "raw_orders.csv"
    _edit(seed, lambda t: t + "61,1,2024-03-20,2024-03-20 10:00:00,1.00\n")
    second = _run(project)
    assert (
        "layout    partitioning: day(order_date), bucket[4](customer_id) → month(order_date)"
        in second.stdout
    )
    evolved = _tables(project)
    assert _spec(evolved["by_day"]) == [("order_date", "month", "order_date_month")]
    assert _spec(evolved["by_customer"]) == [("order_date", "month", "order_date_month")]
    assert _spec(evolved["flat"]) == [("order_id", "bucket[8]", "order_id_bucket_8")]
    for name in ("by_day", "by_customer", "flat"):
        table, before = evolved[name], tables[name]
        assert table.spec().spec_id == 1, name  # the spec evolved …
        assert len(table.metadata.metadata_log) == 1, name  # … in the data's own commit
        assert {f.spec_id for f in data_files(table)} == {1}, name
        assert table.scan().to_arrow().num_rows == 61, name
        old = before.current_snapshot()
        assert old is not None
        # The old snapshot, written with the old spec, still reads the same rows.
        assert table.scan(snapshot_id=old.snapshot_id).to_arrow().num_rows == 60, name
    _assert_files_hold_their_partition(evolved["by_day"], lambda r: (_month(r["order_date"]),))
    _assert_files_hold_their_partition(
        evolved["flat"], lambda r: (BucketTransform(8).transform(LongType())(r["order_id"]),)
    )
    # The incremental model appended its one new row, into its (unchanged) spec.
    events = evolved["daily_events"]
    snapshot = events.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert (snapshot.summary.operation.value, snapshot.summary["added-records"]) == ("append", "1")
    assert events.spec().spec_id == 0
    _assert_files_hold_their_partition(events, lambda r: ((r["ordered_at"].date() - epoch).days,))

    # The same configuration again: no new spec, no layout line.
    third = _run(project)
    assert "layout" not in third.stdout
    for name, table in _tables(project).items():
        assert table.spec().spec_id == evolved[name].spec().spec_id, name
        assert len(table.specs()) == len(evolved[name].specs()), name


@pytest.mark.slow
def test_unusable_partitioning_is_one_clear_message_and_the_table_stays(tmp_path: Path) -> None:
    project = copy_project("partitions", tmp_path / "partitions")
    models = project / "dbt" / "models"
    _run(project)
    before = _tables(project)
    _edit(
        models / "by_customer.sql",
        lambda t: t.replace("partition_by=['customer_id']", "partition_by=['customer_idd']"),
    )
    _edit(models / "schema.yml", lambda t: t.replace("transform: day", "transform: weekly"))
    # Valid for DuckLake/Spark SQL, but no Iceberg transform: a warning, the spec kept.
    _edit(
        models / "by_month.sql",
        lambda t: t.replace(
            "['year(ordered_at)', 'month(ordered_at)']", "\"date_trunc('month', ordered_at)\""
        ),
    )
    result = _run(project, code=1)
    assert (
        "partition_by of model by_customer: 'customer_idd' is not a column of the model "
        "(columns: order_id, customer_id, order_date, ordered_at, amount)"
    ) in result.output
    assert (
        "meta.floe.partition of model by_day: unknown partition transform 'weekly' "
        "(known: identity, year, month, day, hour, bucket[N], truncate[W])"
    ) in result.output
    assert (
        "warning: model by_month: partitioned_by has no Iceberg form "
        "(\"date_trunc('month', ordered_at)\" is neither a column nor an Iceberg transform)"
    ) in result.output
    after = _tables(project)
    for name in ("by_customer", "by_day"):  # not published: as they were
        old, new = before[name].current_snapshot(), after[name].current_snapshot()
        assert old is not None and new is not None
        assert new.snapshot_id == old.snapshot_id, name
        assert after[name].spec() == before[name].spec(), name
    for name in ("by_month", "flat", "daily_events"):  # published as usual
        assert after[name].current_snapshot() != before[name].current_snapshot(), name
    assert _spec(after["by_month"]) == [("ordered_at", "month", "ordered_at_month")]
    assert after["by_month"].spec().spec_id == 0


# ---------------------------------------------------------------- publish_table on its own


def _local_catalog(tmp_path: Path) -> SqlCatalog:
    return SqlCatalog(
        "default", uri=f"sqlite:///{tmp_path / 'c.db'}", warehouse=(tmp_path / "wh").as_uri()
    )


def _orders(extra: dict[str, list[Any]] | None = None) -> pa.Table:
    return pa.table(
        {
            "id": [1, 2, 3],
            "day": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 2, 2)],
            "kind": ["a", "b", "a"],
            **(extra or {}),
        }
    )


@pytest.mark.parametrize(
    ("partition", "message"),
    [
        (
            (PartitionColumn("nope"),),
            "'nope' is not a column of the model (columns: id, day, kind)",
        ),
        (
            (PartitionColumn("kind", "day"),),
            "transform day cannot partition column 'kind' (string)",
        ),
        ((PartitionColumn("id", "bucket[0]"),), "bucket needs a number of buckets ≥ 1"),
        ((PartitionColumn("id", "weekly"),), "unknown partition transform 'weekly'"),
        (
            (PartitionColumn("day", "day"), PartitionColumn("day", "month")),
            "column 'day' is partitioned by both day and month: keep one",
        ),
        ((PartitionColumn("id"), PartitionColumn("id")), "id is listed twice"),
    ],
)
def test_a_partitioning_that_does_not_fit_creates_no_table(
    tmp_path: Path, partition: tuple[PartitionColumn, ...], message: str
) -> None:
    catalog = _local_catalog(tmp_path)
    with pytest.raises(PartitionError, match="^partition_by of model m: ") as raised:
        publish_table(
            catalog, "ns", "t", _orders(), {}, partition=Partitioning(partition, model="m")
        )
    assert message in str(raised.value)
    assert catalog.list_tables("ns") == []
    assert not list((tmp_path / "wh").rglob("*.parquet"))  # checked before writing


def test_spec_follows_a_column_added_in_the_same_publish_and_back_to_unpartitioned(
    tmp_path: Path,
) -> None:
    catalog = _local_catalog(tmp_path)
    publish_table(catalog, "ns", "t", _orders(), {})
    assert catalog.load_table(("ns", "t")).spec().is_unpartitioned()
    # A new column, partitioned at once: schema and spec change in the data's commit.
    data = _orders({"region": ["eu", "us", "eu"]})
    result = publish_table(
        catalog, "ns", "t", data, {}, partition=Partitioning((PartitionColumn("region"),))
    )
    assert result.schema_changes == ["region added (string)"]
    assert result.partition_change == "partitioning: unpartitioned → region"
    table = catalog.load_table(("ns", "t"))
    assert len(table.metadata.metadata_log) == 1
    assert sorted(f.partition[0] for f in data_files(table)) == ["eu", "us"]
    # No partitioning configured any more: the spec evolves back, the data stays.
    result = publish_table(catalog, "ns", "t", data, {}, partition=Partitioning())
    assert result.partition_change == "partitioning: region → unpartitioned"
    table = catalog.load_table(("ns", "t"))
    assert table.spec().is_unpartitioned()
    assert table.spec().spec_id == 0  # Iceberg reuses the identical spec it had
    assert sorted(table.scan().to_arrow().column("id").to_pylist()) == [1, 2, 3]
    # None (not managed): whatever spec the table has stays.
    with table.update_spec() as spec:
        spec.add_identity("kind")
    publish_table(catalog, "ns", "t", data, {})
    assert [f.name for f in catalog.load_table(("ns", "t")).spec().fields] == ["kind"]


# ---------------------------------------------------------------- the configuration shapes


@pytest.fixture(scope="module")
def translator(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from floe_runtime.runtime.translator import FloeDbtTranslator

    artifacts = compiled_project(tmp_path_factory.mktemp("p"), "{type: duckdb, path: x.duckdb}")
    return FloeDbtTranslator(artifacts, artifacts.dbt[0])


def _model(config: dict[str, Any], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": "m", "resource_type": "model", "config": config, "meta": meta or {}}


@pytest.mark.parametrize(
    ("config", "fields"),
    [
        ({}, ()),
        ({"partition_by": "order_date"}, (("order_date", "identity"),)),
        ({"partition_by": ["a", "b"]}, (("a", "identity"), ("b", "identity"))),
        ({"partition_by": ["bucket(16, id)"]}, (("id", "bucket[16]"),)),  # Spark
        (
            {"partitioned_by": ["bucket(id, 16)", "truncate(s, 3)"]},
            (("id", "bucket[16]"), ("s", "truncate[3]")),
        ),  # Athena
        ({"partitioned_by": ["year(ts)", "month(ts)"]}, (("ts", "month"),)),  # DuckLake
        ({"partition_by": ["hours(ts)", "days(ts)"]}, (("ts", "hour"),)),
        (
            {"partition_by": {"field": "ts", "data_type": "timestamp", "granularity": "MONTH"}},
            (("ts", "month"),),
        ),  # BigQuery
        ({"partition_by": {"field": "d", "data_type": "date"}}, (("d", "day"),)),
        (
            {"meta": {"floe": {"partition": [{"column": "d", "transform": "bucket[4]"}, "x"]}}},
            (("d", "bucket[4]"), ("x", "identity")),
        ),
        (  # floe's own form wins over dbt's
            {"partition_by": ["a"], "meta": {"floe": {"partition": []}}},
            (),
        ),
    ],
)
def test_dbt_and_floe_configuration_shapes(
    translator: Any, config: dict[str, Any], fields: tuple[tuple[str, str], ...]
) -> None:
    partitioning = translator.partition(_model(config))
    assert partitioning is not None
    assert tuple((f.column, f.transform) for f in partitioning.fields) == fields


def test_floe_meta_outside_config_is_read_too(translator: Any) -> None:
    partitioning = translator.partition(
        _model({"partition_by": "a"}, {"floe": {"partition": "day(d)"}})
    )
    assert partitioning.origin == "meta.floe.partition"
    assert partitioning.fields == (PartitionColumn("d", "day"),)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"partition_by": "weekly(d)"}, "'weekly(d)' is neither a column nor an Iceberg transform"),
        (
            {"partition_by": {"field": "n", "data_type": "int64", "range": {"start": 0}}},
            "integer range partitioning",
        ),
    ],
)
def test_dbt_partitioning_without_an_iceberg_form_warns_and_keeps_the_spec(
    translator: Any, config: dict[str, Any], message: str
) -> None:
    warnings: list[str] = []
    assert translator.partition(_model(config), warnings.append) is None
    assert len(warnings) == 1 and message in warnings[0]
    assert warnings[0].startswith("model m: partition_by has no Iceberg form (")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"partition_by": {"field": "d", "granularity": "week"}},
            "partition_by of model m: unknown granularity 'week' (hour, day, month, year)",
        ),
        (
            {"partition_by": ["bucket(id)"]},
            "partition_by of model m: partition transform bucket needs a number of buckets",
        ),
        (
            {"meta": {"floe": {"partition": ["weekly(d)"]}}},
            "meta.floe.partition of model m: 'weekly(d)' is neither a column nor an Iceberg",
        ),
        (
            {"meta": {"floe": {"partition": [{"column": "d", "transfrom": "day"}]}}},
            "meta.floe.partition of model m: unknown key 'transfrom' (a field is {column, transform})",
        ),
        (
            {"meta": {"floe": {"partition": [3]}}},
            "meta.floe.partition of model m: 3 is not a partition field",
        ),
    ],
)
def test_unknown_transforms_and_shapes_are_errors(
    translator: Any, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(PartitionError) as raised:
        translator.partition(_model(config))
    assert str(raised.value).startswith(message)
