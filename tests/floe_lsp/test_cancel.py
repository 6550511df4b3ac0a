"""Cancelling `floe.run` from the editor stops the whole run: floe, its dbt, any publishing.

Both ways a client cancels are tested against a real run of the `slow` project
(tests/runtime/projects/slow), stopped once its hours-long `slow` model started:
`$/cancelRequest` for the workspace/executeCommand request (Neovim's way) and
`window/workDoneProgress/cancel` (VS Code's Cancel button on the progress).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import REPO, SERVER, open_doc, start, uri, wait_for
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from tests.runtime.processes import (
    assert_run_aborted,
    catalog_tables,
    dbt_processes,
    model_started,
    processes_under,
)

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.slow,
    pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning"),
]

SLOW = REPO / "tests" / "runtime" / "projects" / "slow"


@pytest.fixture
def slow_project(tmp_path: Path) -> Path:
    dest = tmp_path / "ws" / "slow"
    shutil.copytree(SLOW, dest)
    return dest


@pytest_lsp.fixture(config=SERVER)  # type: ignore[untyped-decorator]
async def neovim(lsp_client: LanguageClient, slow_project: Path) -> AsyncIterator[LanguageClient]:
    """A Neovim-like client over the slow project (it cancels with $/cancelRequest)."""
    await start(lsp_client, "neovim", [slow_project.parent])
    yield lsp_client
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=SERVER)  # type: ignore[untyped-decorator]
async def vscode(lsp_client: LanguageClient, slow_project: Path) -> AsyncIterator[LanguageClient]:
    """A VS Code-like client over the slow project (it cancels through the progress)."""
    await start(lsp_client, "visual-studio-code", [slow_project.parent])
    yield lsp_client
    await lsp_client.shutdown_session()


async def _until_slow_model_runs(project: Path) -> None:
    await wait_for(
        lambda: model_started(project, "slow.slow") and bool(dbt_processes(project)),
        timeout=180,
        what="the slow model to start",
    )


async def _assert_stopped(client: LanguageClient, project: Path) -> None:
    """Nothing of the run is left within 2 s, nothing was published, its lineage ends ABORT."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await wait_for(lambda: not processes_under(project), timeout=2.0, what="the run to stop")
    print(f"run stopped {loop.time() - started:.2f}s after the cancel was answered")
    assert catalog_tables(project) == []
    assert_run_aborted(project, "slow")
    await wait_for(
        lambda: any("floe run (dev) cancelled" in m.message for m in client.messages),
        what="the cancelled message",
    )
    await asyncio.sleep(1.0)  # nothing arrives late
    assert not any("succeeded" in m.message or "failed" in m.message for m in client.messages)
    assert catalog_tables(project) == []


async def test_cancel_request_for_floe_run_stops_the_whole_run(
    neovim: LanguageClient, slow_project: Path
) -> None:
    client = neovim
    floe = slow_project / "floe.yaml"
    open_doc(client, floe)
    request = client.protocol.send_request(
        types.WORKSPACE_EXECUTE_COMMAND,
        types.ExecuteCommandParams(command="floe.run", arguments=[uri(floe), "dev"]),
        msg_id="floe-run-1",
    )
    await _until_slow_model_runs(slow_project)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="floe-run-1"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(request), 10)
    await _assert_stopped(client, slow_project)


async def test_progress_cancel_of_floe_run_stops_the_whole_run(
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
    token = next(iter(client.progress_reports))
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(task, 10)
    assert result is not None and result["cancelled"] is True
    await _assert_stopped(client, slow_project)
