"""`floe-runtime dev`: the real Dagster UI on 127.0.0.1 loads the pipeline's definitions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.runtime.conftest import copy_example, free_port

pytestmark = pytest.mark.slow


def _graphql(port: int, query: str) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_dev_serves_assets_and_schedule_then_stops_on_sigterm(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "ca")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster-home")}
    (tmp_path / "dagster-home").mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "floe_runtime",
            "dev",
            str(project),
            "--env",
            "dev",
            "-p",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 150
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "dagster dev did not come up"
                time.sleep(1)
        data = _graphql(port, "{ assetNodes { assetKey { path } } }")
        keys = {"/".join(n["assetKey"]["path"]) for n in data["data"]["assetNodes"]}
        assert "analytics/customer_revenue" in keys and len(keys) == 9
        schedules = _graphql(
            port,
            "{ schedulesOrError(repositorySelector: {repositoryLocationName: "
            '"floe_runtime.dagster_defs", repositoryName: "__repository__"}) '
            "{ ... on Schedules { results { name cronSchedule executionTimezone } } } }",
        )
        assert schedules["data"]["schedulesOrError"]["results"] == [
            {
                "name": "customer_analytics_schedule",
                "cronSchedule": "0 6 * * *",
                "executionTimezone": "Europe/Berlin",
            }
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    output = proc.stdout.read() if proc.stdout else ""
    assert f"http://127.0.0.1:{port}" in output
    # Nothing of dagster dev is left listening.
    time.sleep(1)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
