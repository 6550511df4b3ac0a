"""The results file a run leaves per environment: written atomically, read defensively."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from floe_runtime.runtime.results import (
    NodeRecord,
    RunRecord,
    read_results,
    results_path,
    write_results,
)


def _record(status: str = "failed", n: int = 3) -> RunRecord:
    return RunRecord(
        pipeline="shop",
        environment="dev",
        run_id="r1",
        started_at="2025-01-01T00:00:00Z",
        finished_at="2025-01-01T00:00:09Z",
        seconds=9.0,
        status=status,
        nodes=[
            NodeRecord(
                unique_id=f"model.shop.m{i}",
                name=f"m{i}",
                resource_type="model",
                status="error" if i == 0 else "success",
                file=f"dbt/models/m{i}.sql",
                line=4 if i == 0 else None,
            )
            for i in range(n)
        ],
    )


def test_round_trip_and_no_temporary_file_left(tmp_path: Path) -> None:
    record = _record()
    path = write_results(record, tmp_path)
    assert path == results_path(tmp_path, "dev") == tmp_path / ".floe" / "runs" / "dev.json"
    assert read_results(path) == record
    assert [n.failed for n in record.nodes] == [True, False, False]
    assert sorted(p.name for p in path.parent.iterdir()) == ["dev.json"]


def test_a_reader_never_sees_half_a_file(tmp_path: Path) -> None:
    """Readers racing a writer get the old run or the new one, never a torn file."""
    small, big = _record("success", 1), _record("failed", 3000)
    path = write_results(small, tmp_path)
    stop = threading.Event()
    seen: list[RunRecord | None] = []

    def read() -> None:
        while not stop.is_set():
            seen.append(read_results(path))

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(20):
        write_results(big, tmp_path)
        write_results(small, tmp_path)
    stop.set()
    reader.join()
    assert seen and all(r in (small, big) for r in seen)


def test_what_is_not_a_results_file_reads_as_none(tmp_path: Path) -> None:
    path = results_path(tmp_path, "dev")
    assert read_results(path) is None  # no file
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert read_results(path) is None
    path.write_text(json.dumps({**_record().to_json(), "version": 99}))
    assert read_results(path) is None
    path.write_text(json.dumps({**_record().to_json(), "nodes": [{"name": "x"}]}))
    assert read_results(path) is None
    path.write_bytes(b"\xff\xfe\x00")
    assert read_results(path) is None
    path.unlink()
    os.mkfifo(path)  # nobody writes to it: a blocking open would hang here for good
    assert read_results(path) is None
