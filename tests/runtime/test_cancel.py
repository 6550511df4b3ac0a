"""Stopping `floe-runtime run` mid-run: dbt goes with it, nothing is published, lineage says ABORT.

The `slow` project's `slow` model runs for hours in DuckDB; each test stops a real
run once that model has started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtime.conftest import copy_project
from tests.runtime.processes import (
    assert_run_aborted,
    catalog_tables,
    dbt_processes,
    model_started,
    processes_under,
    wait_gone,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A `floe-runtime run` of the slow project, its `slow` model under way."""
    project = copy_project("slow", tmp_path / "slow")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENLINEAGE", "OTEL_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "floe_runtime", "run", "--env", "dev"],
        cwd=project,
        env={**environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the test's own handle on everything the run starts
    )
    try:
        deadline = time.monotonic() + 180
        while not (model_started(project, "slow.slow") and dbt_processes(project)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the slow model never started"
            time.sleep(0.1)
        yield project, proc
    finally:
        for pid in processes_under(project):
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def test_sigterm_stops_dbt_publishes_nothing_and_ends_lineage_with_abort(
    running: tuple[Path, subprocess.Popen[str]],
) -> None:
    project, proc = running
    os.kill(proc.pid, signal.SIGTERM)  # `kill PID` from a terminal: floe alone gets it
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "run cancelled (SIGTERM)" in stderr
    assert "Traceback" not in stderr
    seconds = wait_gone(project, 2.0)
    print(f"dbt gone {seconds:.2f}s after floe exited")
    assert catalog_tables(project) == []  # `fast` was built by dbt but never published
    assert_run_aborted(project, "slow")


def test_kill_9_of_floe_takes_dbt_with_it(running: tuple[Path, subprocess.Popen[str]]) -> None:
    project, proc = running
    dbt = dbt_processes(project)
    assert dbt
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    seconds = wait_gone(project, 2.0)
    print(f"dbt gone {seconds:.2f}s after kill -9 of floe")
    assert catalog_tables(project) == []
