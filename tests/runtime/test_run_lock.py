"""One run at a time per pipeline and environment: the second waits, or refuses with --no-wait.

Each test holds the lock with a real `floe-runtime run` of the `slow` project (its
model runs until stopped), so "in progress" is a real run, not a planted file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from floe_runtime.runtime.lock import lock_path, read_holder, run_lock
from tests.runtime.conftest import copy_project, floe
from tests.runtime.processes import lineage_events, processes_under

pytestmark = pytest.mark.slow


def _environ() -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENLINEAGE", "OTEL_"))}
    return {**environ, "NO_COLOR": "1"}


def _start(project: Path, stderr: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "floe_runtime", "run", "--env", "dev", *extra],
        cwd=project,
        env=_environ(),
        stdout=subprocess.DEVNULL,
        stderr=stderr.open("wb"),
        start_new_session=True,  # the test's handle on everything the run starts
    )


def _starts(project: Path) -> int:
    """How many runs of the slow model began (lineage START of job `slow.slow`)."""
    return sum(
        1
        for e in lineage_events(project)
        if e["eventType"] == "START" and e["job"]["name"] == "slow.slow"
    )


def _until(condition: object, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.fixture
def holding(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A run of the slow project holding the lock of (slow, dev), its model under way."""
    project = copy_project("slow", tmp_path / "slow")
    first = _start(project, tmp_path / "first.err")
    procs = [first]
    try:
        _until(lambda: _starts(project) == 1, "the first run never started its model")
        assert read_holder(lock_path(project, "dev")).pid == first.pid
        yield project, first
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in processes_under(project):
            os.kill(pid, signal.SIGKILL)


def test_no_wait_refuses_cleanly_while_another_run_is_in_progress(
    holding: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    project, first = holding
    result = floe("run", str(project), "--env", "dev", "--no-wait", timeout=120)
    assert result.code == 2, result.output
    assert (
        f"another run of slow (environment dev) is in progress (pid {first.pid}, since "
        in result.stderr
    )
    assert "not started" in result.stderr
    assert "Traceback" not in result.output and "IOException" not in result.output
    assert _starts(project) == 1  # the refused run started nothing
    assert first.poll() is None  # and left the first one alone


def test_a_second_run_waits_and_starts_once_the_first_is_killed(
    holding: tuple[Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    project, first = holding
    second = _start(project, tmp_path / "second.err")
    try:
        _until(
            lambda: b"waiting: another run of slow" in (tmp_path / "second.err").read_bytes(),
            "the second run never said it was waiting",
            60,
        )
        message = (tmp_path / "second.err").read_text()
        assert f"(pid {first.pid}, since " in message and "--no-wait" in message
        time.sleep(2)
        assert second.poll() is None and _starts(project) == 1  # still waiting, nothing run
        # kill -9: the kernel drops the lock with the process; nothing stale is left.
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        _until(lambda: _starts(project) == 2, "the waiting run never started")
        assert read_holder(lock_path(project, "dev")).pid == second.pid
        assert "Traceback" not in (tmp_path / "second.err").read_text()
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
        second.wait()


def test_environments_and_pipelines_lock_apart(tmp_path: Path) -> None:
    with run_lock(tmp_path, "a", "dev", wait=False) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
        with run_lock(tmp_path, "a", "prod", wait=False):
            pass  # another environment: its own lock
        with run_lock(tmp_path / "other", "b", "dev", wait=False):
            pass  # another pipeline (project): its own lock
    assert path.read_text() == ""  # released, and says no stale holder
    assert lock_path(tmp_path, "../x y").name == ".._x_y.lock"  # stays inside .floe/locks
