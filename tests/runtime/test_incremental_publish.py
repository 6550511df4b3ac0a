"""Incremental models publish their increment: what a run added (an Iceberg append) or
changed (new and changed rows replace their keys' published rows), not the whole table;
`--full-refresh` rewrites. Real dbt-duckdb runs through `floe-runtime run`; the unsafe
cases (rows changed behind an append-only model, another writer's commit, a new column)
against real DuckDB relations and a real catalog fall back to rewriting the table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.runtime.compute import Fingerprint, Relation, open_reader
from floe_runtime.runtime.iceberg import Increment, PublishResult, load_catalog, publish_table
from floe_runtime.runtime.secrets import Secrets
from tests.runtime.conftest import copy_project, floe
from tests.runtime.publishing import compiled_project, data_files

KEYS = {"events": ["event_id"], "accounts": ["account_id"], "ledger": ["account_id", "day"]}


def _catalog(project: Path) -> SqlCatalog:
    return SqlCatalog(
        "default",
        uri=f"sqlite:///{project / '.floe' / 'catalog.db'}",
        warehouse=(project / ".floe" / "warehouse").as_uri(),
    )


def _summary(table: Table) -> dict[str, str]:
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    return {"operation": snapshot.summary.operation.value, **snapshot.summary.additional_properties}


def _sorted(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: tuple(r[k] for k in keys))


def _state(project: Path) -> dict[str, tuple[dict[str, str], list[dict[str, Any]]]]:
    """Per model: the current snapshot's summary, and whether Iceberg holds what DuckDB does."""
    catalog = _catalog(project)
    out = {}
    with duckdb.connect(str(project / ".floe" / "increments.duckdb"), read_only=True) as con:
        for name, keys in KEYS.items():
            table = catalog.load_table(("inc", name))
            published = _sorted(table.scan().to_arrow().to_pylist(), keys)
            built = _sorted(
                con.sql(f"select * from main.{name}").to_arrow_table().to_pylist(), keys
            )
            assert published == built, name  # every publish leaves Iceberg = the model
            out[name] = (_summary(table), published)
    return out


def _edit(path: Path, change: Callable[[str], str]) -> None:
    path.write_text(change(path.read_text()))


def test_second_run_publishes_only_what_it_added_or_changed_and_full_refresh_rewrites(
    tmp_path: Path,
) -> None:
    project = copy_project("increments", tmp_path / "increments")
    seeds = project / "dbt" / "seeds"

    def run(*extra: str) -> dict[str, tuple[dict[str, str], list[dict[str, Any]]]]:
        result = floe("run", str(project), *extra)
        assert result.code == 0, result.output
        return _state(project)

    first = run()
    for name, count in {"events": 6, "accounts": 5, "ledger": 9}.items():
        summary, _ = first[name]
        assert (summary["operation"], summary["added-records"]) == ("append", str(count))

    # New events; two accounts change and one opens; the ledger gets a new day, and one
    # amount of the day it re-processes changes.
    _edit(
        seeds / "raw_events.csv",
        lambda t: (
            t + "7,open,2024-01-03 08:00:00\n8,click,2024-01-03 08:01:00\n"
            "9,close,2024-01-03 08:02:00\n"
        ),
    )
    _edit(
        seeds / "raw_accounts.csv",
        lambda t: (
            t.replace("2,Grace,250.50,2024-01-01", "2,Grace,300.00,2024-02-01").replace(
                "4,Barbara,0.00,2024-01-01", "4,Barbara,12.00,2024-02-01"
            )
            + "6,Edsger,5.00,2024-02-01 00:00:00\n"
        ),
    )
    _edit(
        seeds / "raw_ledger.csv",
        lambda t: (
            t.replace("1,2024-01-03,12", "1,2024-01-03,13")
            + "1,2024-01-04,14\n2,2024-01-04,24\n3,2024-01-04,34\n"
        ),
    )
    second = run()

    events, rows = second["events"]
    assert events["operation"] == "append"
    assert events["added-records"] == "3" and events["floe.rows-inserted"] == "3"
    assert events["total-records"] == "9" and len(rows) == 9

    accounts, rows = second["accounts"]  # merge: updated in place, one new key
    assert (accounts["floe.rows-updated"], accounts["floe.rows-inserted"]) == ("2", "1")
    assert accounts["floe.rows-deleted"] == "0" and accounts["total-records"] == "6"
    assert len({r["account_id"] for r in rows}) == 6  # replaced, not duplicated
    assert {r["account_id"]: str(r["balance"]) for r in rows}[2] == "300.0"

    ledger, rows = second["ledger"]  # delete+insert of the last day: only its change counts
    assert (ledger["floe.rows-updated"], ledger["floe.rows-inserted"]) == ("1", "3")
    assert ledger["total-records"] == "12" and len(rows) == 12

    # A run that changes nothing publishes nothing (an empty append each).
    third = run()
    for name, (summary, _) in third.items():
        assert summary["operation"] == "append", name
        assert summary.get("added-records", "0") == "0", name
        assert summary["total-records"] == second[name][0]["total-records"]

    # --full-refresh rebuilds the models: each table is rewritten in one overwrite.
    refreshed = run("--full-refresh")
    for name, (summary, rows) in refreshed.items():
        total = third[name][0]["total-records"]
        assert summary["operation"] == "overwrite", name
        assert summary["deleted-records"] == total and summary["added-records"] == total
        assert "floe.rows-inserted" not in summary
        assert len(rows) == int(total)


# ---------------------------------------------------------------- when the increment cannot be known


@pytest.fixture
def duck(tmp_path: Path) -> tuple[CompiledArtifacts, Path]:
    artifacts = compiled_project(tmp_path / "p", "{type: duckdb, path: ./.floe/db.duckdb}")
    path = tmp_path / "p" / ".floe" / "db.duckdb"
    path.parent.mkdir(parents=True)
    con = duckdb.connect(str(path))
    con.execute("create table main.t as select i as id, 'v' || i as v from range(100) r(i)")
    con.close()
    return artifacts, path


def _publish(
    artifacts: CompiledArtifacts, increment: Increment | None
) -> tuple[PublishResult, Table]:
    secrets = Secrets({})
    catalog = load_catalog(artifacts, secrets)
    with open_reader(artifacts, secrets) as reader:
        data = reader.read(Relation(None, "main", "t"))
        result = publish_table(catalog, "ns", "t", data, {}, increment=increment)
    return result, catalog.load_table(("ns", "t"))


def _change(path: Path, *statements: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(path)) as con:
        for statement in statements:
            con.execute(statement)
        return _sorted(con.sql("select * from main.t").to_arrow_table().to_pylist(), ["id"])


APPEND = Increment("append")


def test_appended_rows_alone_are_published_while_the_old_ones_stay_as_they_were(
    duck: tuple[CompiledArtifacts, Path],
) -> None:
    artifacts, path = duck
    _publish(artifacts, APPEND)
    expected = _change(path, "insert into main.t select i, 'v' || i from range(100, 105) r(i)")
    result, table = _publish(artifacts, APPEND)
    assert (result.mode, result.added_rows, result.rows) == ("append", 5, 105)
    assert _sorted(table.scan().to_arrow().to_pylist(), ["id"]) == expected


def test_rows_changed_behind_an_append_only_model_make_it_rewritten(
    duck: tuple[CompiledArtifacts, Path],
) -> None:
    artifacts, path = duck
    _publish(artifacts, APPEND)
    expected = _change(
        path, "update main.t set v = 'edited' where id = 3", "insert into main.t values (100, 'x')"
    )
    result, table = _publish(artifacts, APPEND)
    assert (result.mode, result.added_rows) == ("full", 101)  # not an append of one row
    assert _sorted(table.scan().to_arrow().to_pylist(), ["id"]) == expected


def test_another_writers_commit_makes_the_next_publish_a_rewrite(
    duck: tuple[CompiledArtifacts, Path],
) -> None:
    import pyarrow as pa  # type: ignore[import-untyped]

    artifacts, path = duck
    _, table = _publish(artifacts, APPEND)
    table.append(pa.table({"id": pa.array([999], pa.int64()), "v": ["theirs"]}))
    expected = _change(path, "insert into main.t values (100, 'x')")
    result, table = _publish(artifacts, APPEND)
    assert result.mode == "full"  # the current snapshot is not one floe recognises
    assert _sorted(table.scan().to_arrow().to_pylist(), ["id"]) == expected


def test_a_new_column_rewrites_and_an_expression_key_compares_nothing(
    duck: tuple[CompiledArtifacts, Path],
) -> None:
    artifacts, path = duck
    keyed = Increment("merge", ("id",))
    _publish(artifacts, keyed)
    expected = _change(path, "alter table main.t add column w integer default 7")
    result, table = _publish(artifacts, keyed)
    assert result.mode == "full" and result.schema_changes == ["w added (int)"]
    assert _sorted(table.scan().to_arrow().to_pylist(), ["id"]) == expected
    # A unique_key dbt takes as SQL (not column names) is never guessed at.
    expected = _change(path, "update main.t set v = 'edited' where id = 3")
    result, table = _publish(artifacts, Increment("merge", ("id || '-' || v",)))
    assert result.mode == "full"
    assert _sorted(table.scan().to_arrow().to_pylist(), ["id"]) == expected


def test_an_upsert_rewrites_only_the_files_that_hold_changed_keys(
    duck: tuple[CompiledArtifacts, Path],
) -> None:
    artifacts, path = duck
    keyed = Increment("merge", ("id",))
    _publish(artifacts, keyed)  # ids 0-99 in one file
    _change(path, "insert into main.t select i, 'v' || i from range(100, 200) r(i)")
    _, table = _publish(artifacts, keyed)  # ids 100-199 appended as a second file
    before = {f.file_path for f in data_files(table)}
    expected = _change(path, "update main.t set v = 'edited' where id in (150, 160)")
    result, table = _publish(artifacts, keyed)
    assert result.mode == "upsert"
    summary = _summary(table)
    assert summary["floe.rows-updated"] == "2" and summary["deleted-data-files"] == "1"
    assert summary["added-records"] == "100"  # the one file of ids 100-199, rewritten
    after = {f.file_path for f in data_files(table)}
    assert len(before & after) == 1  # the file of ids 0-99 is untouched
    assert _sorted(table.scan().to_arrow().to_pylist(), ["id"]) == expected


def test_a_key_deleted_and_inserted_again_is_an_update_and_a_row_that_went_is_not_missed(
    duck: tuple[CompiledArtifacts, Path],
) -> None:
    artifacts, path = duck
    keyed = Increment("delete+insert", ("id",))
    _publish(artifacts, keyed)
    # delete+insert: the old row of a key goes, the new one comes after the mark.
    expected = _change(
        path, "delete from main.t where id = 5", "insert into main.t values (5, 'again')"
    )
    result, table = _publish(artifacts, keyed)
    assert result.mode == "upsert"
    summary = _summary(table)
    assert (summary["floe.rows-updated"], summary["floe.rows-inserted"]) == ("1", "0")
    assert _sorted(table.scan().to_arrow().to_pylist(), ["id"]) == expected
    # A row that went for good (no row of its key came back): the changed chunk held one
    # more published row than the compared keys account for, so the table is rewritten.
    expected = _change(
        path, "delete from main.t where id = 7", "update main.t set v = 'edited' where id = 8"
    )
    result, table = _publish(artifacts, keyed)
    assert result.mode == "full"
    assert _sorted(table.scan().to_arrow().to_pylist(), ["id"]) == expected


def test_changes_in_two_chunks_of_a_larger_table_are_found_in_them(
    duck: tuple[CompiledArtifacts, Path],
) -> None:
    artifacts, path = duck
    _change(path, "insert into main.t select i, 'v' || i from range(100, 300000) r(i)")
    keyed = Increment("merge", ("id",))
    _, table = _publish(artifacts, keyed)
    fingerprint = Fingerprint.from_summary(_summary(table))
    assert fingerprint is not None and len(fingerprint.chunks) == 3
    assert fingerprint.rows == 300_000
    expected = _change(
        path,
        "update main.t set v = 'edited' where id in (7, 250000)",
        "insert into main.t values (300000, 'new')",
    )
    result, table = _publish(artifacts, keyed)
    assert result.mode == "upsert"
    summary = _summary(table)
    assert (summary["floe.rows-updated"], summary["floe.rows-inserted"]) == ("2", "1")
    assert _sorted(table.scan().to_arrow().to_pylist(), ["id"]) == expected


def test_the_translator_reads_the_strategy_the_key_and_whether_dbt_rebuilds(
    tmp_path: Path,
) -> None:
    from floe_runtime.runtime.translator import FloeDbtTranslator

    artifacts = compiled_project(tmp_path / "p", "{type: duckdb, path: ./.floe/db.duckdb}")
    translator = FloeDbtTranslator(artifacts, artifacts.dbt[0])

    def model(materialized: str = "incremental", **config: Any) -> dict[str, Any]:
        return {
            "resource_type": "model",
            "name": "m",
            "config": {"materialized": materialized, **config},
        }

    assert translator.increment(model(unique_key="id"), False) == Increment("default", ("id",))
    keyed = model(unique_key=["a", "b"], incremental_strategy="merge")
    assert translator.increment(keyed, True) == Increment("merge", ("a", "b"), True)
    # The model's own full_refresh config wins over the flag, as it does in dbt.
    assert translator.increment(model(full_refresh=False), True) == Increment("default")
    assert translator.increment(model(full_refresh=True), False) == Increment("default", (), True)
    assert translator.increment(model("table"), False) is None
    snapshot = {"resource_type": "snapshot", "name": "s", "config": {}}
    assert translator.increment(snapshot, True) == Increment("snapshot", ("dbt_scd_id",))
