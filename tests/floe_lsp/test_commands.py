"""Code lenses and the compile/run/lineage commands, run in a subprocess with progress and cancel."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from lsp_helpers import open_doc, uri, wait_for
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = [pytest.mark.asyncio, pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning")]


async def test_code_lenses_per_environment(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri(floe)))
    )
    assert lenses is not None
    titles = [lens.command.title for lens in lenses if lens.command]
    assert titles == ["Compile (dev)", "Run (dev)", "Compile (prod)", "Run (prod)", "Open lineage"]
    assert all(lens.range.start.line == text.split("\n").index("name: customer-analytics") for lens in lenses)


async def test_compile_command_runs_in_a_subprocess(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    open_doc(client, floe)
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="floe.compile", arguments=[uri(floe), "dev"])
    )
    assert result is not None
    assert result["exitCode"] == 0, result
    artifacts = json.loads((project / "target" / "floe" / "compiled_artifacts.json").read_text())
    assert artifacts["environment"] == "dev"
    await wait_for(lambda: any("floe compile (dev) succeeded" in m.message for m in client.messages), what="message")
    # Progress: begin … end, under both client profiles (both support work-done progress).
    kinds = [getattr(p, "kind", None) for reports in client.progress_reports.values() for p in reports]
    assert kinds[0] == "begin" and kinds[-1] == "end"


async def test_failed_compile_is_reported(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    floe.write_text(floe.read_text().replace("storage: default", "storage: nowhere"))
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="floe.compile", arguments=[uri(floe), "dev"])
    )
    assert result is not None
    assert result["exitCode"] == 1
    await wait_for(lambda: any(m.type == types.MessageType.Error for m in client.messages), what="error message")
    error = next(m for m in client.messages if m.type == types.MessageType.Error)
    assert "FLOE010" in error.message and "Traceback" not in error.message


async def test_run_can_be_cancelled(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    task = asyncio.ensure_future(client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="floe.run", arguments=[uri(floe), "dev"])
    ))
    await wait_for(lambda: bool(client.progress_reports), what="progress begin")
    token = next(iter(client.progress_reports))
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(task, 20)
    assert result is not None
    assert result["cancelled"] is True
    await wait_for(lambda: any("cancelled" in m.message for m in client.messages), what="cancel message")
