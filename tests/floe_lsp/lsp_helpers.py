"""Helpers for the language server tests: positions in any encoding, edits, waiting."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "customer-analytics"

#: Client capability profiles every feature test runs under; "pull" is VS Code
#: with pull diagnostics and refresh support (what vscode-languageclient 9 sends).
PROFILES = ["visual-studio-code", "neovim"]


def capabilities(profile: str) -> types.ClientCapabilities:
    """The capabilities a profile announces."""
    if profile == "pull":
        caps = client_capabilities("visual-studio-code")
        assert caps.text_document is not None and caps.workspace is not None
        caps.text_document.diagnostic = types.DiagnosticClientCapabilities(
            dynamic_registration=False, related_document_support=True
        )
        caps.workspace.diagnostics = types.DiagnosticWorkspaceClientCapabilities(
            refresh_support=True
        )
        return caps
    if profile == "utf-32":
        caps = client_capabilities("neovim")
        assert caps.general is not None
        caps.general.position_encodings = ["utf-32"]
        return caps
    if profile == "plain":
        caps = client_capabilities("neovim")
        assert caps.text_document is not None and caps.text_document.completion is not None
        assert caps.text_document.completion.completion_item is not None
        caps.text_document.completion.completion_item.snippet_support = False
        return caps
    return client_capabilities(profile)


def uri(path: Path) -> str:
    """File URI of a path."""
    out = from_fs_path(str(path))
    assert out is not None
    return str(out)


def _encoding(client: LanguageClient) -> str:
    return getattr(client, "floe_encoding", "utf-16")


def units(text: str, encoding: str) -> int:
    """Length of `text` in the negotiated encoding's code units."""
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def pos(client: LanguageClient, text: str, line: int, char: int) -> types.Position:
    """An LSP position for (line, code-point char) in `text` under the client's encoding."""
    line_text = text.split("\n")[line]
    return types.Position(line=line, character=units(line_text[:char], _encoding(client)))


def find(client: LanguageClient, text: str, needle: str, offset: int = 0) -> types.Position:
    """The LSP position of `needle` (plus `offset` code points) in `text`."""
    index = text.index(needle) + offset
    line = text.count("\n", 0, index)
    char = index - (text.rfind("\n", 0, index) + 1)
    return pos(client, text, line, char)


def code_point(client: LanguageClient, text: str, p: types.Position) -> int:
    """Offset in `text` of an LSP position."""
    lines = text.split("\n")
    before = sum(len(line) + 1 for line in lines[: p.line])
    line = lines[p.line] if p.line < len(lines) else ""
    count = 0
    for index, char in enumerate(line):
        if count >= p.character:
            return before + index
        count += units(char, _encoding(client))
    return before + len(line)


def apply_edits(client: LanguageClient, text: str, edits: Sequence[types.TextEdit]) -> str:
    """Apply LSP text edits (any order, non-overlapping) to `text`."""
    spans = sorted(
        (
            (
                code_point(client, text, e.range.start),
                code_point(client, text, e.range.end),
                e.new_text,
            )
            for e in edits
        ),
        reverse=True,
    )
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


def open_doc(client: LanguageClient, path: Path, text: str | None = None, version: int = 1) -> str:
    """Send didOpen for a file; returns its text."""
    text = path.read_text() if text is None else text
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri(path), language_id="yaml", version=version, text=text
            )
        )
    )
    return text


def change_doc(client: LanguageClient, path: Path, text: str, version: int) -> None:
    """Send a whole-document didChange."""
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri(path), version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def change_range(
    client: LanguageClient, path: Path, version: int, line: int, start: int, end: int, text: str
) -> None:
    """Send an incremental didChange replacing characters start..end of one line."""
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri(path), version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=line, character=start),
                        end=types.Position(line=line, character=end),
                    ),
                    text=text,
                )
            ],
        )
    )


async def wait_for(
    predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
) -> None:
    """Poll until `predicate()` holds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def codes(client: LanguageClient, path: Path) -> list[str]:
    """Codes of the diagnostics last pushed for a file."""
    return sorted(str(d.code) for d in client.diagnostics.get(uri(path), []))


SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "floe_lsp"])


async def start(
    lsp_client: LanguageClient, profile: str, folders: list[Path]
) -> types.InitializeResult:
    """Initialize a session under a capability profile with these workspace folders."""
    registrations: list[types.Registration] = []
    lsp_client.floe_registrations = registrations  # type: ignore[attr-defined]
    if types.CLIENT_REGISTER_CAPABILITY not in lsp_client.protocol.fm.features:

        @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)  # type: ignore[untyped-decorator]
        def register(params: types.RegistrationParams) -> None:
            registrations.extend(params.registrations)

    result = await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities(profile),
            workspace_folders=[types.WorkspaceFolder(uri=uri(f), name=f.name) for f in folders],
            root_uri=uri(folders[0]) if folders else None,
        )
    )
    lsp_client.floe_encoding = str(result.capabilities.position_encoding or "utf-16")  # type: ignore[attr-defined]
    lsp_client.floe_profile = profile  # type: ignore[attr-defined]
    return result
