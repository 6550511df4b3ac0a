"""One run at a time per pipeline and environment.

Two runs of the same pipeline in the same environment share the compute engine's
database (DuckDB allows one writer), dbt's target folder and the Iceberg tables they
publish: the second would fail half-way with the engine's lock error. A run therefore
holds an advisory lock on `<project>/.floe/locks/<environment>.lock` for its whole
length. The kernel drops it when the process ends, however it ends (kill -9 too), so
a crashed run never leaves a stale lock behind; the file only says who holds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

try:  # POSIX; elsewhere runs are not serialised (no lock, no waiting)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Holder:
    """The run holding a lock, as it recorded itself."""

    pid: int | None
    started: float | None

    def describe(self) -> str:
        """`pid 1234, since 10:42:01`, or what of it is known."""
        parts = []
        if self.pid is not None:
            parts.append(f"pid {self.pid}")
        if self.started is not None:
            parts.append("since " + time.strftime("%H:%M:%S", time.localtime(self.started)))
        return ", ".join(parts) or "holder unknown"


class RunLocked(Exception):
    """Another run of the same pipeline and environment holds the lock."""

    def __init__(self, pipeline: str, environment: str, holder: Holder) -> None:
        self.holder = holder
        super().__init__(
            f"another run of {pipeline} (environment {environment}) is in progress "
            f"({holder.describe()})"
        )


def lock_path(project_root: str | Path, environment: str) -> Path:
    """`<project>/.floe/locks/<environment>.lock` (the name made safe for a file)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", environment) or "_"
    return Path(project_root) / ".floe" / "locks" / f"{safe}.lock"


def read_holder(path: Path) -> Holder:
    """Who the lock file says holds it (fields missing when it says nothing readable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    pid, started = data.get("pid"), data.get("started")
    return Holder(
        pid if isinstance(pid, int) else None,
        float(started) if isinstance(started, (int, float)) else None,
    )


@contextlib.contextmanager
def run_lock(
    project_root: str | Path,
    pipeline: str,
    environment: str,
    *,
    wait: bool = True,
    on_wait: Callable[[Holder], None] | None = None,
) -> Iterator[Path]:
    """Hold the run lock of `pipeline` in `environment` for the `with` block.

    Taken at once when free. Otherwise, with `wait`, `on_wait` is told who holds it and
    the call blocks until that run ends (Ctrl-C still interrupts); without, RunLocked.
    """
    path = lock_path(project_root, environment)
    if fcntl is None:  # pragma: no cover - Windows
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(path)
            if not wait:
                raise RunLocked(pipeline, environment, holder) from None
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        record = json.dumps({"pid": os.getpid(), "started": time.time()}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        try:
            yield path
        finally:
            # Say nothing stale once released; the lock itself goes with the descriptor.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)
