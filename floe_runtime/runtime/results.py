"""A run's results, kept per environment in `<project>/.floe/runs/<env>.json`.

`floe-runtime run` writes the file when a run ends (atomically: readers never
see half a file); the language server reads it to put dbt's failures on the
lines that caused them (FLOE050), and to show the last run in code lenses and
hovers. This module is the one definition of the file's format, and imports
nothing heavy: the server uses it. Messages in it are already redacted (the
run session redacts every dbt and publish message); no compiled SQL is kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: The format's version (`version` in the file); another version is not read.
RESULTS_VERSION = 1
#: Larger files are not read (a run of 10,000 nodes is well under 10 MiB).
MAX_BYTES = 16 * 1024 * 1024
#: Resource types that are built assets, and those that are tests.
ASSET_KINDS = ("model", "seed", "snapshot")
TEST_KINDS = ("test", "unit_test")
#: Statuses of a node that did not succeed.
FAILED = ("error", "fail", "runtime error")


def results_dir(project_root: Path) -> Path:
    """The folder holding one results file per environment."""
    return Path(project_root) / ".floe" / "runs"


def results_path(project_root: Path, environment: str) -> Path:
    """The results file of one environment."""
    return results_dir(project_root) / f"{environment}.json"


@dataclass(frozen=True)
class NodeRecord:
    """One dbt node's outcome in a run. Paths are relative to the project root when inside it."""

    unique_id: str
    name: str
    resource_type: str
    status: str
    materialized: str = ""
    seconds: float = 0.0
    rows: int | None = None
    message: str = ""
    failures: int | None = None
    published: str | None = None
    withheld: str | None = None
    publish_error: str | None = None
    #: Position of its transform in floe.yaml.
    transform: int | None = None
    #: The file defining it (its .sql, .yml, .csv).
    file: str | None = None
    #: Where dbt's failure is, in the source (1-based line) and in the compiled SQL.
    line: int | None = None
    compiled_file: str | None = None
    compiled_line: int | None = None

    @property
    def failed(self) -> bool:
        """dbt failed it (or a test failed), or its publish failed."""
        return self.status in FAILED or self.publish_error is not None


@dataclass(frozen=True)
class RunRecord:
    """A run of one pipeline in one environment."""

    pipeline: str
    environment: str
    run_id: str
    #: ISO 8601 UTC times.
    started_at: str
    finished_at: str
    seconds: float
    #: "success", "failed" or "fatal" (dbt stopped before running any node).
    status: str
    errors: list[str] = field(default_factory=list)
    nodes: list[NodeRecord] = field(default_factory=list)

    @property
    def assets(self) -> list[NodeRecord]:
        """The built nodes (models, seeds, snapshots)."""
        return [n for n in self.nodes if n.resource_type in ASSET_KINDS]

    @property
    def tests(self) -> list[NodeRecord]:
        """The data and unit tests."""
        return [n for n in self.nodes if n.resource_type in TEST_KINDS]

    def to_json(self) -> dict[str, Any]:
        """The file's JSON object."""
        return {"version": RESULTS_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any) -> RunRecord | None:
        """The record in a file's JSON, or None when it is not this format."""
        if not isinstance(data, dict) or data.get("version") != RESULTS_VERSION:
            return None
        try:
            nodes = [_node(item) for item in data.get("nodes") or []]
            return cls(
                pipeline=str(data["pipeline"]),
                environment=str(data["environment"]),
                run_id=str(data["run_id"]),
                started_at=str(data["started_at"]),
                finished_at=str(data["finished_at"]),
                seconds=float(data["seconds"]),
                status=str(data["status"]),
                errors=[str(e) for e in data.get("errors") or []],
                nodes=nodes,
            )
        except (KeyError, TypeError, ValueError):
            return None


def _node(item: Any) -> NodeRecord:
    if not isinstance(item, dict):
        raise TypeError("node is not an object")
    known = {f for f in NodeRecord.__dataclass_fields__}
    return NodeRecord(**{k: v for k, v in item.items() if k in known})


def write_results(record: RunRecord, project_root: Path) -> Path:
    """Write an environment's results file atomically (a temporary file renamed over it)."""
    path = results_path(project_root, record.environment)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record.to_json(), indent=1, ensure_ascii=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def read_results(path: Path) -> RunRecord | None:
    """An environment's last run, or None (no file, not a regular file, too big, not this format).

    Opened without blocking, so a FIFO in its place cannot hang the reader.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        return RunRecord.from_json(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, ValueError):
        return None
