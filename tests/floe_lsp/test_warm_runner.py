"""The warm runner: editor runs are forked from one process that has the runtime imported.

Real pytest-lsp sessions run the example through `floe.run`: the second run is a
child of the same runner as the first, and both say and publish what a cold
`floe-runtime run` of a copy says and publishes; a cancel still stops the run's
dbt; the runner stops when idle; with it turned off runs are plain subprocesses;
and the server process itself never loads the runtime's libraries.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsp_helpers import EXAMPLE, SERVER, open_doc, start, uri, wait_for
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from test_cancel import SLOW, _assert_stopped, _until_slow_model_runs

from tests.runtime.processes import processes_under

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.slow,
    pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning"),
]

#: Libraries with native parts that Dagster, dbt and pyiceberg load: a process that
#: imported any of those runtimes has one of these mapped (/proc/PID/maps).
RUNTIME_LIBRARIES = ("pyarrow", "grpc", "dbt_extractor", "sqlalchemy", "pandas")


def _server_with(**env: str) -> ClientServerConfig:
    return ClientServerConfig(
        server_command=SERVER.server_command, server_env={**os.environ, **env}
    )


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else int(fields[1])


def _children(pid: int) -> list[int]:
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _ppid(int(p.name)) == pid
    ]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def server_pid(client: LanguageClient) -> int:
    server = client._server  # the server process pytest-lsp started
    assert server is not None
    return int(server.pid)


def warm_runners(client: LanguageClient) -> list[int]:
    """The server's warm runner processes (children running floe_runtime.runtime.warm)."""
    return [p for p in _children(server_pid(client)) if "floe_runtime.runtime.warm" in _cmdline(p)]


def libraries(pid: int) -> set[str]:
    """Which of RUNTIME_LIBRARIES a live process has mapped."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {name for name in RUNTIME_LIBRARIES if f"site-packages/{name}" in maps}


def run_process(project: Path) -> int | None:
    """The `floe-runtime run` process working in the project's root (not dbt's folder)."""
    root = os.path.realpath(project)
    for pid in processes_under(project):
        try:
            if os.readlink(f"/proc/{pid}/cwd") == root:
                return pid
        except OSError:
            continue
    return None


async def run_and_watch(
    client: LanguageClient, project: Path
) -> tuple[dict[str, Any], int, int | None]:
    """`floe.run` of the project's dev environment: its result, its run process and that one's parent."""
    floe = project / "floe.yaml"
    task = asyncio.ensure_future(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="floe.run", arguments=[uri(floe), "dev"])
        )
    )
    seen: list[tuple[int, int | None]] = []

    def running() -> bool:
        pid = run_process(project)
        if pid is not None:
            seen.append((pid, _ppid(pid)))
        return bool(seen) or task.done()

    await wait_for(running, timeout=120, what="the run's process")
    result = await asyncio.wait_for(task, 300)
    assert seen, f"no run process seen; result {result}"
    return result, *seen[0]


def _copy(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("target", ".floe", "logs"))
    return dest


def normalized(output: str, project: Path) -> list[str]:
    """A run's output with what differs between any two runs (times, ids, paths) taken out."""
    out = []
    for line in output.splitlines():
        line = line.replace(str(project), "<project>")
        line = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", line)
        line = re.sub(r"\d+\.\d+s", "<t>", line)
        line = re.sub(r"-{2,}", "-", line)
        out.append(re.sub(r"\s+", " ", line).strip())
    return out


def published(project: Path) -> dict[str, int]:
    """Each Iceberg table of the project's catalog with its current row count."""
    from pyiceberg.catalog.sql import SqlCatalog

    db = project / ".floe" / "catalog.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select catalog_name, table_namespace, table_name from iceberg_tables"
        ).fetchall()
    counts = {}
    for name, namespace, table in rows:
        catalog = SqlCatalog(
            name, uri=f"sqlite:///{db}", warehouse=(project / ".floe" / "warehouse").as_uri()
        )
        counts[f"{namespace}.{table}"] = (
            catalog.load_table((namespace, table)).scan().to_arrow().num_rows
        )
    return counts


@pytest_lsp.fixture(config=SERVER)  # type: ignore[untyped-decorator]
async def neovim(lsp_client: LanguageClient, project: Path) -> AsyncIterator[LanguageClient]:
    await start(lsp_client, "neovim", [project.parent])
    yield lsp_client
    await lsp_client.shutdown_session()


async def test_second_run_reuses_the_runner_and_matches_a_cold_run(
    neovim: LanguageClient, project: Path, tmp_path: Path
) -> None:
    client = neovim
    floe = project / "floe.yaml"
    open_doc(client, floe)
    # Opening the pipeline (its lenses) starts the runner, before any run.
    await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri(floe)))
    )
    await wait_for(lambda: len(warm_runners(client)) == 1, timeout=30, what="the warm runner")
    [runner] = warm_runners(client)

    first, first_pid, first_parent = await run_and_watch(client, project)
    second, second_pid, second_parent = await run_and_watch(client, project)
    for result in (first, second):
        assert result["exitCode"] == 0 and result["cancelled"] is False, result
    assert warm_runners(client) == [runner]
    assert first_pid != second_pid  # a fresh process per run, forked by the one runner
    assert first_parent == second_parent == runner

    # The same as a cold `floe-runtime run` of a copy: output, exit code, tables.
    cold = _copy(tmp_path / "cold" / "customer-analytics")
    proc = subprocess.run(
        [sys.executable, "-m", "floe_runtime", "run", str(cold), "--env", "dev"],
        cwd=cold,
        env={**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cold_tail = "\n".join(line for line in (proc.stdout + proc.stderr).splitlines() if line)
    expected = normalized(cold_tail, cold)[-20:]
    # The same lines; dbt's threads finish the seeds in any order, so not in the same order.
    assert sorted(normalized(second["output"], project)) == sorted(expected)
    assert normalized(second["output"], project)[-8:] == expected[-8:]
    assert (
        published(project)
        == published(cold)
        == {
            "analytics.customer_orders": 20,
            "analytics.customer_revenue": 20,
            "analytics.orders": 60,
        }
    )

    # The server never loaded the runtime; the runner did (so the check can tell).
    assert libraries(server_pid(client)) == set()
    assert {"pyarrow", "grpc"} <= libraries(runner)


async def test_the_first_run_starts_the_runner(neovim: LanguageClient, project: Path) -> None:
    """No lens asked for: the first run starts the runner and is its child."""
    client = neovim
    open_doc(client, project / "floe.yaml")
    assert warm_runners(client) == []
    result, _, parent = await run_and_watch(client, project)
    assert result["exitCode"] == 0, result
    assert warm_runners(client) == [parent]


# ---------------------------------------------------------------- cancel


@pytest.fixture
def slow_project(tmp_path: Path) -> Path:
    dest = tmp_path / "ws" / "slow"
    shutil.copytree(SLOW, dest)
    return dest


@pytest_lsp.fixture(config=SERVER)  # type: ignore[untyped-decorator]
async def vscode(lsp_client: LanguageClient, slow_project: Path) -> AsyncIterator[LanguageClient]:
    await start(lsp_client, "visual-studio-code", [slow_project.parent])
    yield lsp_client
    await lsp_client.shutdown_session()


async def test_cancel_stops_a_warm_run_and_its_dbt(
    vscode: LanguageClient, slow_project: Path
) -> None:
    client = vscode
    floe = slow_project / "floe.yaml"
    open_doc(client, floe)
    task = asyncio.ensure_future(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="floe.run", arguments=[uri(floe), "dev"])
        )
    )
    await _until_slow_model_runs(slow_project)
    [runner] = warm_runners(client)
    pid = run_process(slow_project)
    assert pid is not None and _ppid(pid) == runner
    token = next(iter(client.progress_reports))
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(task, 10)
    assert result is not None and result["cancelled"] is True
    await _assert_stopped(client, slow_project)
    assert warm_runners(client) == [runner]  # it serves the next run


# ---------------------------------------------------------------- idle, off


@pytest_lsp.fixture(config=_server_with(FLOE_WARM_IDLE_SECONDS="2"))  # type: ignore[untyped-decorator]
async def short_idle(lsp_client: LanguageClient, project: Path) -> AsyncIterator[LanguageClient]:
    await start(lsp_client, "neovim", [project.parent])
    yield lsp_client
    await lsp_client.shutdown_session()


async def test_an_idle_runner_stops_and_the_next_run_starts_one(
    short_idle: LanguageClient, project: Path
) -> None:
    client = short_idle
    floe = project / "floe.yaml"
    open_doc(client, floe)
    await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri(floe)))
    )
    await wait_for(lambda: len(warm_runners(client)) == 1, timeout=30, what="the warm runner")
    [runner] = warm_runners(client)
    # Ready after its imports, then 2 s without a run: stopped (and reaped, not a zombie).
    await wait_for(lambda: not warm_runners(client), timeout=120, what="the idle runner to stop")
    assert _ppid(runner) is None
    result, _, parent = await run_and_watch(client, project)
    assert result["exitCode"] == 0, result
    assert parent is not None and parent != runner


@pytest_lsp.fixture(config=_server_with(FLOE_WARM_RUNNER="0"))  # type: ignore[untyped-decorator]
async def no_warm(lsp_client: LanguageClient, project: Path) -> AsyncIterator[LanguageClient]:
    await start(lsp_client, "neovim", [project.parent])
    yield lsp_client
    await lsp_client.shutdown_session()


async def test_runner_off_runs_a_plain_subprocess(no_warm: LanguageClient, project: Path) -> None:
    client = no_warm
    floe = project / "floe.yaml"
    open_doc(client, floe)
    await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri(floe)))
    )
    result, _, parent = await run_and_watch(client, project)
    assert result["exitCode"] == 0, result
    assert parent == server_pid(client)  # today's subprocess of the server itself
    assert warm_runners(client) == []
