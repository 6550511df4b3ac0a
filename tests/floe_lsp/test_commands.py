"""Code lenses and the compile/run/lineage commands, run in a subprocess with progress and cancel."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from lsp_helpers import open_doc, uri, wait_for
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning"),
]


@pytest.fixture(autouse=True)
def _server_in_a_narrow_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers inherit COLUMNS=40, as from a narrow terminal that launched the editor: the
    run's output in the editor must still not be cut to that width."""
    monkeypatch.setenv("COLUMNS", "40")


def _lens_refreshes(client: LanguageClient) -> list[None]:
    """The `workspace/codeLens/refresh` requests the server sends this client, from now on."""
    seen: list[None] = []
    if types.WORKSPACE_CODE_LENS_REFRESH not in client.protocol.fm.features:

        @client.feature(types.WORKSPACE_CODE_LENS_REFRESH)  # type: ignore[untyped-decorator]
        def code_lens_refresh(params: None) -> None:
            seen.append(params)

    return seen


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


async def test_a_command_on_a_missing_folder_answers_clearly(
    client: LanguageClient, tmp_path: Path
) -> None:
    """A pipeline path that does not exist gets a result naming it, not silence or an error."""
    for target in (tmp_path / "gone", tmp_path / "gone" / "floe.yaml"):
        for command in ("floe.run", "floe.compile", "floe.openLineage"):
            result = await asyncio.wait_for(
                client.workspace_execute_command_async(
                    types.ExecuteCommandParams(command=command, arguments=[uri(target), "dev"])
                ),
                10,
            )
            assert result is not None, command
            assert result["exitCode"] == 2, (command, result)
            assert result["output"] == f"no pipeline at {target}: it does not exist"
    errors = [m.message for m in client.messages if m.type == types.MessageType.Error]
    assert len(errors) == 6 and all("does not exist" in m for m in errors), errors


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
    refreshes = _lens_refreshes(client)

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


# ---------------------------------------------------------------- a real run, then its lineage page

#: The example's marts and their rows (its seeds: 20 customers, 60 orders).
MARTS = {"customer_orders": 20, "customer_revenue": 20, "orders": 60}
ASSETS = ["raw_customers", "raw_orders", "raw_payments", "stg_customers", "stg_orders"]
ASSETS += ["stg_payments", *MARTS]


def _progress(client: LanguageClient, title: str) -> list[Any]:
    """The progress of the one command whose begin has this title."""
    [reports] = [
        r
        for r in client.progress_reports.values()
        if r and isinstance(r[0], types.WorkDoneProgressBegin) and r[0].title == title
    ]
    return reports


async def _info(client: LanguageClient, text: str) -> None:
    await wait_for(
        lambda: any(
            m.type == types.MessageType.Info and m.message == text for m in client.messages
        ),
        what=f"message {text!r}; got {[m.message for m in client.messages]}",
    )


@pytest.mark.slow
async def test_run_to_success_then_open_lineage(pull_client: LanguageClient, project: Path) -> None:
    """`floe.run` builds and publishes the example (tables in the catalog, the summary in the
    reply and a message); `floe.openLineage` writes that run's page and shows it. One client
    (VS Code's, as vscode-languageclient 9 starts it): the command path is the same for all."""
    from pyiceberg.catalog.sql import SqlCatalog

    client = pull_client
    lens_refreshes = _lens_refreshes(client)

    floe = project / "floe.yaml"
    open_doc(client, floe)
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="floe.run", arguments=[uri(floe), "dev"])
    )
    assert result is not None
    assert (result["exitCode"], result["cancelled"]) == (0, False), result["output"]
    lines = result["output"].splitlines()
    assert re.fullmatch(r"Run succeeded in \d+\.\ds\.", lines[-1]), lines
    assert "tests: 46 passed, 0 failed, 0 skipped" in lines
    for name, rows in MARTS.items():  # the summary table's row of each published mart
        row = rf"\| {name} +\| table +\| success \| +[\d.]+s \| +{rows} \| analytics\.{name} +\|"
        assert any(re.fullmatch(row, line) for line in lines), (name, lines)
    await _info(client, f"floe run (dev) succeeded: {lines[-1]}")
    await wait_for(lambda: bool(lens_refreshes), what="workspace/codeLens/refresh (last-run lens)")
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri(floe)))
    )
    titles = [lens.command.title for lens in lenses or [] if lens.command]
    assert any(re.match(r"✓ dev .* · 9 models · 46 tests", t) for t in titles), titles
    progress = _progress(client, "floe run (dev)")
    assert progress[0].cancellable is True
    assert isinstance(progress[-1], types.WorkDoneProgressEnd) and progress[-1].message == "done"
    reported = [p.message for p in progress if isinstance(p, types.WorkDoneProgressReport)]
    assert lines[-1] in reported  # the output streamed as it came

    # The run's tables, in the catalog platform/dev names, with this run's rows.
    events = [json.loads(x) for x in (project / ".floe" / "lineage.jsonl").read_text().splitlines()]
    pipeline = [e for e in events if e["job"]["name"] == "customer-analytics"]
    assert [e["eventType"] for e in pipeline] == ["START", "COMPLETE"]
    run_id = pipeline[-1]["run"]["runId"]
    catalog = SqlCatalog(
        "default",
        uri=f"sqlite:///{project / '.floe' / 'catalog.db'}",
        warehouse=(project / ".floe" / "warehouse").as_uri(),
    )
    assert {t[-1] for t in catalog.list_tables("analytics")} == set(MARTS)
    for name, rows in MARTS.items():
        table = catalog.load_table(("analytics", name))
        assert table.scan().to_arrow().num_rows == rows, name
        assert table.properties["floe.run-id"] == run_id

    # Open lineage: the page of that run, written and shown outside the editor.
    assert client.shown_documents == []
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="floe.openLineage", arguments=[uri(floe), "dev"])
    )
    assert result is not None
    assert (result["exitCode"], result["cancelled"]) == (0, False), result["output"]
    assert result["output"].splitlines()[-1] == "Lineage page: target/floe/lineage.html"
    page = project / "target" / "floe" / "lineage.html"
    assert client.shown_documents == [types.ShowDocumentParams(uri=uri(page), external=True)]
    await _info(client, "floe lineage (dev) succeeded: Lineage page: target/floe/lineage.html")
    html = page.read_text(encoding="utf-8")
    assert f"run {run_id[:8]}" in html
    assert re.search(r'id="run-state"[^>]*>COMPLETE<', html)
    assert "<span>9 jobs · 46 tests passed</span>" in html
    for name in ASSETS:
        assert (
            f'data-name="{name}" data-full-name="customer-analytics.{name}" data-state="COMPLETE"'
        ) in html, name
