"""Code lenses and the compile/run/lineage commands, run in a subprocess with progress and cancel."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from lsp_helpers import open_doc, uri, wait_for
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning"),
]


async def test_code_lenses_per_environment(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri(floe)))
    )
    assert lenses is not None
    titles = [lens.command.title for lens in lenses if lens.command]
    assert titles == ["Compile (dev)", "Run (dev)", "Compile (prod)", "Run (prod)", "Open lineage"]
    assert all(
        lens.range.start.line == text.split("\n").index("name: customer-analytics")
        for lens in lenses
    )


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
    await wait_for(
        lambda: any("floe compile (dev) succeeded" in m.message for m in client.messages),
        what="message",
    )
    # Progress: begin … end, under both client profiles (both support work-done progress).
    kinds = [
        getattr(p, "kind", None) for reports in client.progress_reports.values() for p in reports
    ]
    assert kinds[0] == "begin" and kinds[-1] == "end"


async def test_failed_compile_is_reported(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    floe.write_text(floe.read_text().replace("storage: default", "storage: nowhere"))
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="floe.compile", arguments=[uri(floe), "dev"])
    )
    assert result is not None
    assert result["exitCode"] == 1
    await wait_for(
        lambda: any(m.type == types.MessageType.Error for m in client.messages),
        what="error message",
    )
    error = next(m for m in client.messages if m.type == types.MessageType.Error)
    assert "FLOE010" in error.message and "Traceback" not in error.message


async def test_run_can_be_cancelled(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    task = asyncio.ensure_future(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="floe.run", arguments=[uri(floe), "dev"])
        )
    )
    await wait_for(lambda: bool(client.progress_reports), what="progress begin")
    token = next(iter(client.progress_reports))
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(task, 20)
    assert result is not None
    assert result["cancelled"] is True
    await wait_for(
        lambda: any("cancelled" in m.message for m in client.messages), what="cancel message"
    )


async def test_environment_setting_picks_the_lenses_and_the_command_env(
    client: LanguageClient, project: Path
) -> None:
    """`floe.environment` (workspace/configuration) narrows the lenses and is the commands' default env."""
    refreshes: list[None] = []
    if types.WORKSPACE_CODE_LENS_REFRESH not in client.protocol.fm.features:

        @client.feature(types.WORKSPACE_CODE_LENS_REFRESH)  # type: ignore[untyped-decorator]
        def code_lens_refresh(params: None) -> None:
            refreshes.append(params)

    floe = project / "floe.yaml"
    open_doc(client, floe)
    found = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="floe.listEnvironments", arguments=[])
    )
    assert found == [
        {
            "pipeline": str(floe.resolve()),
            "name": "customer-analytics",
            "environments": ["dev", "prod"],
            "selected": None,
        }
    ]
    client.set_configuration("prod", section="floe.environment")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={}))

    async def titles() -> list[str]:
        lenses = await client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri(floe)))
        )
        return [lens.command.title for lens in lenses or [] if lens.command]

    for _ in range(100):
        if await titles() == ["Compile (prod)", "Run (prod)", "Open lineage"]:
            break
        await asyncio.sleep(0.05)
    assert await titles() == ["Compile (prod)", "Run (prod)", "Open lineage"]
    if client.floe_profile == "visual-studio-code":  # type: ignore[attr-defined]
        await wait_for(lambda: len(refreshes) == 1, what="workspace/codeLens/refresh")
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="floe.compile", arguments=[uri(floe), None])
    )
    assert result is not None and result["exitCode"] == 0, result
    artifacts = json.loads((project / "target" / "floe" / "compiled_artifacts.json").read_text())
    assert artifacts["environment"] == "prod"
    # An environment the project does not have falls back to every environment.
    client.set_configuration("staging", section="floe.environment")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={}))
    for _ in range(100):
        if len(await titles()) == 5:
            break
        await asyncio.sleep(0.05)
    assert await titles() == [
        "Compile (dev)",
        "Run (dev)",
        "Compile (prod)",
        "Run (prod)",
        "Open lineage",
    ]
