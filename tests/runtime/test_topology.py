"""Dagster's production topology on one machine: the shape `deploy helm-values` deploys.

Every part is a real process on 127.0.0.1, as the Helm chart runs them in separate pods:

- the instance's storage is a PostgreSQL server (dagster-postgres), shared by all processes;
- the code location is its own gRPC server (`dagster api grpc -m floe_runtime.dagster_defs`),
  the only process that knows the project (FLOE_PROJECT_DIR / FLOE_ENV);
- `dagster-daemon run` dequeues runs (QueuedRunCoordinator, `max_concurrent_runs: 1`);
- `dagster-webserver` loads a workspace.yaml that points at the gRPC server;
- runs are launched through the webserver's GraphQL API and DefaultRunLauncher starts each
  one in its own run-worker process (Kubernetes: K8sRunLauncher, one pod per run).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.runtime.conftest import (
    MARTS,
    VENV_BIN,
    Postgres,
    copy_example,
    floe,
    free_port,
    port_free,
)

pytestmark = [pytest.mark.server, pytest.mark.slow]

RUNS = 3
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
IN_PROGRESS = {"STARTING", "STARTED", "CANCELING"}


def _graphql(port: int, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body: dict[str, Any] = json.loads(response.read())
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def _start(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    # Its own process group: stopping it stops what it started (the gRPC server's run workers).
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it after 20 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
    # Whatever is left of the group (a run worker), also when the leader had exited.
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _wait(what: str, ready: Any, procs: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    """Poll `ready()` for up to 150 s; fail with the logs if a process died meanwhile."""
    deadline = time.monotonic() + 150
    while True:
        for name, proc in procs.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited ({proc.returncode}):\n{(logs / name).read_text()}")
        try:
            if ready():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not ready after 150 s")
        time.sleep(0.5)


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


@pytest.fixture
def dagster_schema(postgres: Postgres) -> Iterator[str]:
    """A fresh PostgreSQL schema for this test's Dagster instance (dropped afterwards)."""
    import psycopg

    name = f"dagster_{uuid.uuid4().hex[:8]}"
    conninfo = (
        f"host={postgres.host} port={postgres.port} user={postgres.user} "
        f"password={postgres.password} dbname={postgres.dbname}"
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    yield name
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {name} CASCADE")


def test_queued_runs_on_postgres_grpc_daemon_and_webserver(
    tmp_path: Path, postgres: Postgres, dagster_schema: str
) -> None:
    project = copy_example(tmp_path / "ca")
    home = tmp_path / "dagster-home"
    home.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    # The topology is what `deploy helm-values` tells the chart; here its pieces run locally.
    printed = floe(
        "deploy",
        "helm-values",
        str(project),
        "--env",
        "dev",
        "--project-dir",
        str(project),
        "--postgres-host",
        postgres.host,
        "--postgres-port",
        str(postgres.port),
        "--postgres-user",
        postgres.user,
        "--postgres-db",
        postgres.dbname,
    )
    assert printed.code == 0, printed.output
    values = yaml.safe_load(printed.stdout)
    [deployment] = values["dagster-user-deployments"]["deployments"]
    pg = values["postgresql"]
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    limit = coordinator["config"]["queuedRunCoordinator"]["maxConcurrentRuns"]
    assert limit == 1
    # dagster.yaml as the chart's instance ConfigMap writes it from those values; the password
    # reaches Dagster through the environment, as the chart's secret does. Kubernetes launches a
    # Job per run (K8sRunLauncher); on one machine DefaultRunLauncher starts a process per run.
    (home / "dagster.yaml").write_text(
        f"""\
storage:
  postgres:
    postgres_db:
      hostname: {pg["postgresqlHost"]}
      port: {pg["service"]["port"]}
      username: {pg["postgresqlUsername"]}
      password: {{env: DAGSTER_PG_PASSWORD}}
      db_name: {pg["postgresqlDatabase"]}
      scheme: {pg["postgresqlScheme"]}
      params:
        options: "-csearch_path={dagster_schema}"
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: {limit}
    dequeue_interval_seconds: 1
run_launcher:
  module: dagster.core.launcher
  class: DefaultRunLauncher
telemetry:
  enabled: false
"""
    )
    grpc_port, web_port = free_port(), free_port()
    location = deployment["name"]  # the chart names the code location after the deployment
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n"
        f"  - grpc_server: {{host: 127.0.0.1, port: {grpc_port}, location_name: {location}}}\n"
    )
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENLINEAGE", "OTEL_", "FLOE_"))
    }
    dagster_env = {
        **base,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_PASSWORD": postgres.password,
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    # Only the code server gets the deployment's env (it alone knows the project), and it does
    # not run from the project's folder.
    code_env = {**dagster_env, **{e["name"]: e["value"] for e in deployment["env"]}}
    bin_ = str(VENV_BIN)
    commands = {
        "grpc": (
            [f"{bin_}/dagster", "api", "grpc", *deployment["dagsterApiGrpcArgs"]]
            + ["--host", "127.0.0.1", "--port", str(grpc_port)],
            code_env,
        ),
        "daemon": ([f"{bin_}/dagster-daemon", "run", "-w", str(workspace)], dagster_env),
        "webserver": (
            [f"{bin_}/dagster-webserver", "-w", str(workspace), "-h", "127.0.0.1"]
            + ["-p", str(web_port)],
            dagster_env,
        ),
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    started = time.monotonic()
    with ExitStack() as stack:
        for name, (cmd, env) in commands.items():
            procs[name] = _start(cmd, env, tmp_path, logs / name)
            stack.callback(_stop_group, procs[name])
            if name == "grpc":  # the webserver and daemon need the location up to load it
                _wait("gRPC server", lambda: not port_free(grpc_port), procs, logs)

        _wait(
            "webserver",
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{web_port}/server_info", timeout=2),
            procs,
            logs,
        )

        def daemon_healthy() -> bool:
            statuses = _graphql(
                web_port,
                "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }",
            )["instance"]["daemonHealth"]["allDaemonStatuses"]
            return any(
                s["daemonType"] == "QUEUED_RUN_COORDINATOR" and s["healthy"] for s in statuses
            )

        _wait("dagster-daemon", daemon_healthy, procs, logs)
        up = time.monotonic() - started

        # Launch every run at once: the coordinator, not the test, must keep them apart.
        run_ids = []
        for _ in range(RUNS):
            launched = _graphql(
                web_port,
                """mutation Launch($params: ExecutionParams!) {
                  launchRun(executionParams: $params) {
                    __typename
                    ... on LaunchRunSuccess { run { runId status } }
                    ... on PythonError { message }
                  }
                }""",
                {
                    "params": {
                        "selector": {
                            "repositoryLocationName": location,
                            "repositoryName": "__repository__",
                            "jobName": "floe_pipeline",
                        },
                        "runConfigData": {},
                    }
                },
            )["launchRun"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            assert launched["run"]["status"] == "QUEUED"  # queued, not launched by the webserver
            run_ids.append(launched["run"]["runId"])

        # Poll the run records until all are done; no poll may see two runs in progress.
        deadline = time.monotonic() + 240
        worst, parents = 0, {}
        while True:
            records = _graphql(
                web_port,
                """query Runs($ids: [String]) {
                  runsOrError(filter: {runIds: $ids}) {
                    ... on Runs { results { runId status startTime endTime } }
                  }
                }""",
                {"ids": run_ids},
            )["runsOrError"]["results"]
            worst = max(worst, sum(r["status"] in IN_PROGRESS for r in records))
            for run_id in [r["runId"] for r in records if r["status"] == "STARTED"]:
                pid = _worker_pid(web_port, run_id)
                if pid is not None and run_id not in parents:
                    parents[run_id] = _ppid(pid)
            if all(r["status"] in TERMINAL for r in records):
                break
            assert time.monotonic() < deadline, records
            time.sleep(0.5)
        elapsed = time.monotonic() - started

        assert {r["status"] for r in records} == {"SUCCESS"}, [
            (r["runId"], r["status"]) for r in records
        ]
        assert worst == 1
        spans = sorted((r["startTime"], r["endTime"], r["runId"]) for r in records)
        for (_, end, first), (start, _, second) in zip(spans, spans[1:], strict=False):
            assert start >= end, f"run {second} started before {first} ended"

        # Each run in its own run-worker process: not a server, the daemon or another run's.
        workers = {run_id: _worker_pid(web_port, run_id) for run_id in run_ids}
        assert None not in workers.values(), workers
        servers = {p.pid for p in procs.values()}
        assert len(set(workers.values())) == RUNS
        assert not servers & set(workers.values())
        # A worker seen alive was the gRPC server's child (DefaultRunLauncher asks the server).
        assert all(ppid in (procs["grpc"].pid, None) for ppid in parents.values()), parents

        # Each run published every mart: its run id on a table version committed in the run.
        published = _published_versions(project)
        for start, end, run_id in spans:
            for mart in MARTS:
                stamps = [ms for rid, ms in published[mart] if rid == run_id]
                assert stamps, f"run {run_id} did not publish {mart}"
                assert all(start * 1000 - 1 <= ms <= end * 1000 + 1 for ms in stamps)
        for mart, rows in MARTS.items():
            assert _rows(project, mart) == rows

        # The secret stayed out of what the processes wrote.
        for name in procs:
            assert postgres.password not in (logs / name).read_text(errors="replace")
        print(
            f"topology up in {up:.1f} s; {RUNS} queued runs done {elapsed:.1f} s after start;"
            f" workers {sorted(workers.values())}, seen alive under the gRPC server: {len(parents)}"
        )


def _worker_pid(port: int, run_id: str) -> int | None:
    """The pid the run's own process reported ("Started process for run (pid: N).")."""
    events = _graphql(
        port,
        """query Logs($id: ID!) {
          logsForRun(runId: $id) {
            ... on EventConnection { events { __typename ... on EngineEvent { message } } }
          }
        }""",
        {"id": run_id},
    )["logsForRun"]["events"]
    for event in events:
        found = re.match(r"Started process for run \(pid: (\d+)\)", event.get("message") or "")
        if found:
            return int(found.group(1))
    return None


def _catalog(project: Path) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        "default",
        uri=f"sqlite:///{project / '.floe' / 'catalog.db'}",
        warehouse=(project / ".floe" / "warehouse").as_uri(),
    )


def _published_versions(project: Path) -> dict[str, list[tuple[str, int]]]:
    """For each mart, (floe.run-id, snapshot commit ms) of every table version with a snapshot."""
    from pyiceberg.serializers import FromInputFile

    catalog = _catalog(project)
    versions: dict[str, list[tuple[str, int]]] = {}
    for mart in MARTS:
        table = catalog.load_table(("analytics", mart))
        files = [e.metadata_file for e in table.metadata.metadata_log] + [table.metadata_location]
        found = []
        for path in files:
            metadata = FromInputFile.table_metadata(table.io.new_input(path))
            snapshot = metadata.snapshot_by_id(metadata.current_snapshot_id or -1)
            if snapshot is not None:
                found.append((metadata.properties.get("floe.run-id", ""), snapshot.timestamp_ms))
        versions[mart] = found
    return versions


def _rows(project: Path, mart: str) -> int:
    return int(_catalog(project).load_table(("analytics", mart)).scan().to_arrow().num_rows)
