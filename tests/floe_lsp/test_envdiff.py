"""`floe.diffEnvironments`: the engine's dev ↔ prod comparison as markdown in the editor."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from lsp_helpers import change_doc, open_doc, uri, wait_for
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning"),
]


async def test_diff_command_shows_markdown_of_the_editor_text(
    client: LanguageClient, project: Path
) -> None:
    floe = project / "floe.yaml"
    open_doc(client, floe)
    prod = project / "platform" / "prod" / "platform.yaml"
    text = open_doc(client, prod)
    change_doc(client, prod, text.replace("threads: 8", "threads: 16"), 2)  # unsaved
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="floe.diffEnvironments", arguments=[uri(floe), "dev", "prod"]
        )
    )
    assert result is not None and "error" not in result, result
    markdown = result["markdown"]
    assert markdown.startswith("# customer-analytics: `dev` ↔ `prod`\n")
    assert "| `type` ≠ | `duckdb` | `postgres` |" in markdown
    assert "| `threads` ≠ | `4` | `16` |" in markdown  # the editor's text, not the disk's
    assert "| `password` ≠ | — | `secret_ref pg-password` |" in markdown
    shown = Path(result["file"])
    assert shown == project / "target" / "floe" / "diff-dev-prod.md"
    assert shown.read_text() == markdown
    await wait_for(lambda: bool(client.shown_documents), what="window/showDocument")
    assert client.shown_documents[-1].uri == uri(shown)


async def test_diff_command_without_environments_compares_the_two(
    client: LanguageClient, project: Path
) -> None:
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="floe.diffEnvironments", arguments=[uri(project)])
    )
    assert result is not None and result["same"] is False
    assert "`dev` ↔ `prod`" in result["markdown"]
    bad = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="floe.diffEnvironments", arguments=[uri(project / "floe.yaml"), "dev", "qa"]
        )
    )
    assert bad is not None and "environment 'qa' not found" in bad["error"]
    await wait_for(
        lambda: any("environment 'qa' not found" in m.message for m in client.messages),
        what="the error message",
    )


def _as_action(item: types.CodeAction | types.Command) -> types.CodeAction:
    """The code action the server sent.

    lsprotocol's client-side hook structures any code action carrying a `command` as a
    `Command`, with the nested command's dict turned into its `str()`: undo that here
    (VS Code and Neovim read the JSON as sent).
    """
    if isinstance(item, types.CodeAction):
        return item
    nested = ast.literal_eval(item.command)
    raw = {"title": item.title, "command": nested}
    return types.CodeAction(
        title=raw["title"],
        kind=None,  # lost by that hook: test_source_action_kind_and_filtering checks it
        command=types.Command(
            title=nested["title"], command=nested["command"], arguments=nested.get("arguments")
        ),
    )


async def test_code_actions_offer_each_pair_of_environments(
    client: LanguageClient, project: Path
) -> None:
    """textDocument/codeAction on floe.yaml: a source action per pair of environments."""
    floe = project / "floe.yaml"
    open_doc(client, floe)

    async def offered(only: list[str] | None) -> list[types.CodeAction]:
        zero = types.Position(line=0, character=0)
        found = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri(floe)),
                range=types.Range(start=zero, end=zero),
                context=types.CodeActionContext(diagnostics=[], only=only),
            )
        )
        return [_as_action(a) for a in found or []]

    [action] = [a for a in await offered(None) if a.title.startswith("Compare environments")]
    assert action.title == "Compare environments dev ↔ prod"
    assert action.command is not None
    assert action.command.arguments == [uri(floe.resolve()), "dev", "prod"]
    assert await offered([types.CodeActionKind.Source]) == [action]
    assert await offered([types.CodeActionKind.QuickFix]) == []
    # The action's command runs as offered.
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command=action.command.command, arguments=action.command.arguments
        )
    )
    assert result is not None and "`dev` ↔ `prod`" in result["markdown"]


async def test_source_action_kind_and_filtering(project: Path) -> None:
    """What floe_lsp.code_actions adds on floe.yaml (floe_lsp.envdiff.code_actions)."""
    from floe_lsp.envdiff import code_actions
    from floe_lsp.server import FloeLanguageServer

    ls = FloeLanguageServer()
    floe = (project / "floe.yaml").resolve()
    ls.state.scan([project])

    def params(only: list[str] | None) -> types.CodeActionParams:
        zero = types.Position(line=0, character=0)
        return types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri(floe)),
            range=types.Range(start=zero, end=zero),
            context=types.CodeActionContext(diagnostics=[], only=only),
        )

    [action] = code_actions(ls, params(None))
    assert action.title == "Compare environments dev ↔ prod"
    assert action.kind == "source.floe.diffEnvironments"
    assert action.command is not None and action.command.arguments == [uri(floe), "dev", "prod"]
    assert code_actions(ls, params([types.CodeActionKind.Source])) == [action]
    assert code_actions(ls, params([types.CodeActionKind.QuickFix])) == []
