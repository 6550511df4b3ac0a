"""The processes of a run, found the way `ps` would: by their working directory.

floe runs in the project's root and dbt in the project's dbt folder, so every
live process whose working directory lies inside a test's private project copy
belongs to that test's run (zombies are dead and not counted).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any


def processes_under(folder: Path) -> dict[int, str]:
    """Live processes working inside `folder`: pid → command line."""
    root = os.path.realpath(folder)
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if state != "Z" and (cwd == root or cwd.startswith(root + os.sep)):
            found[int(entry.name)] = cmdline.strip()
    return found


def dbt_processes(folder: Path) -> dict[int, str]:
    """The live `dbt build` processes working inside `folder`."""
    return {pid: cmd for pid, cmd in processes_under(folder).items() if " build " in cmd}


def lineage_events(project: Path) -> list[dict[str, Any]]:
    """The events of .floe/lineage.jsonl (none when it does not exist)."""
    path = project / ".floe" / "lineage.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def model_started(project: Path, job: str) -> bool:
    """Whether the run has emitted START for the lineage job `job` (e.g. `slow.slow`)."""
    return any(
        e["eventType"] == "START" and e["job"]["name"] == job for e in lineage_events(project)
    )


def catalog_tables(project: Path) -> list[str]:
    """Tables registered in the project's SQLite Iceberg catalog (.floe/catalog.db)."""
    path = project / ".floe" / "catalog.db"
    if not path.is_file():
        return []
    with sqlite3.connect(path) as db:
        try:
            rows = db.execute("select table_namespace, table_name from iceberg_tables").fetchall()
        except sqlite3.OperationalError:  # the catalog's tables were never created
            return []
    return sorted(f"{ns}.{name}" for ns, name in rows)


def wait_gone(folder: Path, timeout: float) -> float:
    """Seconds until no process works inside `folder`; AssertionError naming any left."""
    started = time.monotonic()
    while processes_under(folder):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"still running after {timeout}s: {processes_under(folder)}")
        time.sleep(0.02)
    return time.monotonic() - started


def assert_run_aborted(project: Path, pipeline: str) -> None:
    """The pipeline's own lineage run ends with ABORT, and so does every node run it started."""
    events = lineage_events(project)
    runs: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        runs.setdefault(event["run"]["runId"], []).append(event)
    pipeline_runs = [r for r in runs.values() if r[0]["job"]["name"] == pipeline]
    assert len(pipeline_runs) == 1, [e["eventType"] for e in events]
    assert [e["eventType"] for e in pipeline_runs[0]] == ["START", "ABORT"]
    for run in runs.values():
        states = [e["eventType"] for e in run]
        assert states[-1] in ("ABORT", "COMPLETE", "FAIL"), (run[0]["job"]["name"], states)
        if states[0] == "START" and run[0]["job"]["name"] != pipeline:
            assert states[-1] == "ABORT", (run[0]["job"]["name"], states)
