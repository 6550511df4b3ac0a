"""Compile and run with unsaved edits of floe.yaml or platform.yaml: ask, or say what is used.

The command reads the disk. A client that can answer a window/showMessageRequest
is asked whether to save the editor's text first; a client that cannot is told
the saved files are used. The compiled artifacts show which text was compiled.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsp_helpers import SERVER, capabilities, change_doc, open_doc, uri, wait_for
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning"),
]


@pytest_lsp.fixture(config=SERVER)  # type: ignore[untyped-decorator]
async def mute_client(lsp_client: LanguageClient, project: Path) -> AsyncIterator[LanguageClient]:
    """A client without window.showMessage.messageActionItem: it cannot answer a question."""
    caps = capabilities("neovim")
    assert caps.window is not None
    caps.window.show_message = None
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=caps,
            workspace_folders=[types.WorkspaceFolder(uri=uri(project.parent), name="ws")],
        )
    )
    yield lsp_client
    await lsp_client.shutdown_session()


def answering(
    client: LanguageClient, title: str | None, before: Callable[[], None] | None = None
) -> list[types.ShowMessageRequestParams]:
    """Answer every window/showMessageRequest with the action `title` (None: dismissed).

    Saving changes the files on disk, after which the server may ask the client to
    redraw: answered as an editor does.
    """
    asked: list[types.ShowMessageRequestParams] = []
    for method in (types.WORKSPACE_INLAY_HINT_REFRESH, types.WORKSPACE_CODE_LENS_REFRESH):
        if method not in client.protocol.fm.features:
            client.feature(method)(lambda params: None)

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)  # type: ignore[untyped-decorator]
    def show_message_request(params: types.ShowMessageRequestParams) -> Any:
        asked.append(params)
        if before is not None:
            before()
        return next((a for a in params.actions or [] if a.title == title), None)

    return asked


def threads(project: Path) -> int:
    """The DuckDB threads of the last compiled artifacts."""
    data = json.loads((project / "target" / "floe" / "compiled_artifacts.json").read_text())
    return int(data["compute"]["profile"]["threads"])


def _edit_platform(client: LanguageClient, project: Path) -> tuple[Path, str, str]:
    """Open dev's platform.yaml and change threads 4 → 2 in the editor only."""
    platform = project / "platform" / "dev" / "platform.yaml"
    saved = open_doc(client, platform)
    edited = saved.replace("threads: 4", "threads: 2")
    assert edited != saved
    change_doc(client, platform, edited, 2)
    return platform, saved, edited


async def _compile(client: LanguageClient, project: Path) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="floe.compile", arguments=[uri(project / "floe.yaml"), "dev"]
        )
    )


async def test_save_all_and_compile_writes_the_editor_text_first(
    client: LanguageClient, project: Path
) -> None:
    asked = answering(client, "Save all and compile")
    platform, _, edited = _edit_platform(client, project)
    result = await _compile(client, project)
    assert result is not None and result["exitCode"] == 0, result
    assert len(asked) == 1
    assert "platform/dev/platform.yaml" in asked[0].message
    assert [a.title for a in asked[0].actions or []] == [
        "Save all and compile",
        "Compile saved files",
    ]
    assert platform.read_text() == edited
    assert threads(project) == 2


async def test_compile_saved_files_leaves_the_disk_alone(
    client: LanguageClient, project: Path
) -> None:
    asked = answering(client, "Compile saved files")
    platform, saved, _ = _edit_platform(client, project)
    result = await _compile(client, project)
    assert result is not None and result["exitCode"] == 0, result
    assert len(asked) == 1
    assert platform.read_text() == saved
    assert threads(project) == 4


async def test_nothing_is_asked_when_the_editor_matches_the_disk(
    client: LanguageClient, project: Path
) -> None:
    asked = answering(client, "Save all and compile")
    open_doc(client, project / "platform" / "dev" / "platform.yaml")
    open_doc(client, project / "floe.yaml")
    result = await _compile(client, project)
    assert result is not None and result["exitCode"] == 0, result
    assert asked == []


async def test_a_dismissed_question_runs_nothing(client: LanguageClient, project: Path) -> None:
    asked = answering(client, None)
    floe = project / "floe.yaml"
    saved = open_doc(client, floe)
    change_doc(client, floe, saved.replace("team: growth", "team: search"), 2)
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="floe.run", arguments=[uri(floe), "dev"])
    )
    assert result is not None and result["exitCode"] is None, result
    assert [a.title for a in asked[0].actions or []] == ["Save all and run", "Run saved files"]
    assert not (project / "target").exists()  # neither compiled nor run
    assert floe.read_text() == saved


async def test_an_edit_while_asking_saves_nothing(client: LanguageClient, project: Path) -> None:
    platform = project / "platform" / "dev" / "platform.yaml"
    answering(
        client,
        "Save all and compile",
        before=lambda: change_doc(client, platform, edited.replace("threads: 2", "threads: 3"), 3),
    )
    platform, saved, edited = _edit_platform(client, project)
    result = await _compile(client, project)
    assert result is not None and result["exitCode"] is None, result
    assert platform.read_text() == saved
    await wait_for(
        lambda: any("changed while asking" in m.message for m in client.messages),
        what="the message",
    )


async def test_a_client_that_cannot_ask_is_told_the_saved_files_are_used(
    mute_client: LanguageClient, project: Path
) -> None:
    platform, saved, _ = _edit_platform(mute_client, project)
    result = await _compile(mute_client, project)
    assert result is not None and result["exitCode"] == 0, result
    assert platform.read_text() == saved
    assert threads(project) == 4
    await wait_for(
        lambda: any(
            "unsaved changes in platform/dev/platform.yaml are not used" in m.message
            for m in mute_client.messages
        ),
        what="the message",
    )
