"""`floe-runtime maintain` on a pipeline run several times: old snapshots expire (the last N
kept), their files and planted orphans are deleted, everything else stays, and the tables
read the same rows. Real dbt-duckdb runs, a real SQL catalog and warehouse."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from tests.runtime.conftest import copy_project, floe

TABLES = ("by_day", "by_month", "by_customer", "daily_events", "flat")
DAY = 24 * 3600


def _tables(project: Path) -> dict[str, Table]:
    catalog = SqlCatalog(
        "default",
        uri=f"sqlite:///{project / '.floe' / 'catalog.db'}",
        warehouse=(project / ".floe" / "warehouse").as_uri(),
    )
    return {name: catalog.load_table(("part", name)) for name in TABLES}


def _snapshot_files(table: Table, snapshot_ids: set[int]) -> set[str]:
    """Local paths of what reading these snapshots needs (manifest lists, manifests, data)."""
    files = set()
    for snapshot in table.snapshots():
        if snapshot.snapshot_id not in snapshot_ids:
            continue
        files.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            files.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                files.add(entry.data_file.file_path)
    return {f.removeprefix("file://") for f in files}


def _on_disk(project: Path) -> set[str]:
    return {str(p) for p in (project / ".floe" / "warehouse").rglob("*") if p.is_file()}


def _rows(table: Table) -> list[tuple[object, ...]]:
    return sorted(tuple(r.values()) for r in table.scan().to_arrow().to_pylist())


def _plant(path: Path, age_seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not referenced by anything")
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


@pytest.mark.slow
def test_maintain_expires_old_snapshots_and_deletes_their_files_and_orphans(
    tmp_path: Path,
) -> None:
    project = copy_project("partitions", tmp_path / "partitions")
    seed = project / "dbt" / "seeds" / "raw_orders.csv"
    for n in range(3):  # three runs: three snapshots per table
        if n:
            seed.write_text(
                seed.read_text() + f"{61 + n},1,2024-03-2{n},2024-03-2{n} 10:00:00,1.00\n"
            )
        result = floe("run", str(project))
        assert result.code == 0, result.output
    before = _tables(project)
    assert all(len(t.snapshots()) == 3 for t in before.values())
    rows = {name: _rows(t) for name, t in before.items()}
    # Per table: the oldest snapshot (to expire), the files only it needs, those the rest need.
    plan = {}
    for name, table in before.items():
        history = sorted(table.snapshots(), key=lambda s: s.timestamp_ms)
        expired, kept = {history[0].snapshot_id}, {s.snapshot_id for s in history[1:]}
        needed = _snapshot_files(table, kept)
        plan[name] = (
            history[0].snapshot_id,
            kept,
            _snapshot_files(table, expired) - needed,
            needed,
        )

    flat = Path(before["flat"].location().removeprefix("file://"))
    old_orphan = _plant(flat / "data" / "00000-9-lost.parquet", 10 * DAY)  # a killed writer's
    deep_orphan = _plant(flat / "metadata" / "snap-1-lost.avro", 10 * DAY)
    fresh = _plant(flat / "data" / "00000-9-in-flight.parquet", 60)  # maybe a running publish
    beside = _plant(flat / "notes" / "readme.txt", 10 * DAY)  # not a data or metadata folder
    other = _plant(flat.parent / "not_a_table" / "data" / "x.parquet", 10 * DAY)
    disk = _on_disk(project)

    # A dry run lists what it would do and changes nothing.
    dry = floe("maintain", str(project), "--older-than", "0s", "--retain-last", "2", "--dry-run")
    assert dry.code == 0, dry.output
    assert "part.flat: would expire 1 snapshot (2 kept), would delete" in dry.stdout
    assert "  would delete orphan data/00000-9-lost.parquet" in dry.stdout
    assert dry.stdout.rstrip().endswith("Dry run: nothing changed.")
    assert _on_disk(project) == disk
    assert all(len(t.snapshots()) == 3 for t in _tables(project).values())

    report = floe(
        "maintain", str(project), "--older-than", "0s", "--retain-last", "2", "--format", "json"
    )
    assert report.code == 0, report.output
    done = {t["table"]: t for t in json.loads(report.stdout)["tables"]}
    assert sorted(done) == [f"part.{name}" for name in sorted(TABLES)]
    after = _tables(project)
    on_disk = _on_disk(project)
    for name, table in after.items():
        oldest, kept, gone, needed = plan[name]
        assert {s.snapshot_id for s in table.snapshots()} == kept, name
        assert [s["snapshot_id"] for s in done[f"part.{name}"]["expired_snapshots"]] == [oldest]
        assert _rows(table) == rows[name], name  # the current table reads the same rows
        for snapshot_id in kept:  # and the kept history still reads
            assert table.scan(snapshot_id=snapshot_id).to_arrow().num_rows > 0
        assert gone and not gone & on_disk, name
        assert needed <= on_disk, name
        assert done[f"part.{name}"]["deleted_files"], name
    assert not old_orphan.exists() and not deep_orphan.exists()
    assert sorted(done["part.flat"]["orphan_files"]) == [
        "data/00000-9-lost.parquet",
        "metadata/snap-1-lost.avro",
    ]
    assert fresh.exists() and beside.exists() and other.exists()

    # Nothing left to do a second time; the tables still publish.
    again = floe("maintain", str(project), "--older-than", "0s", "--retain-last", "2")
    assert again.code == 0, again.output
    assert again.stdout.rstrip().endswith("5 tables: expired 0 snapshots, deleted 0 files.")
    result = floe("run", str(project))
    assert result.code == 0, result.output
