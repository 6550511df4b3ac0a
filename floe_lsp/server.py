"""The floe language server: a small registry of features over one workspace state.

Each feature lives in its own module with a `register(server)` function; this
module only builds the server and wires them in.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from floe_lsp import __version__
from floe_lsp.convert import Converter, path_of, uri_of
from floe_lsp.state import WorkspaceState


class FloeLanguageServer(LanguageServer):
    """pygls server holding the floe workspace state and what the client can do."""

    def __init__(self) -> None:
        super().__init__(
            "floe-lsp", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental
        )
        self.state = WorkspaceState()
        #: Diagnostics are pulled (textDocument/diagnostic) rather than pushed.
        self.pull_diagnostics = False
        self.snippets = False
        self.markdown = True
        self.watch_registered = False

    # ------------------------------------------------------------ documents
    def text(self, path: Path) -> str | None:
        """A file's current text (the editor's when it is open)."""
        return self.state.read(path)

    def converter(self, path: Path, text: str | None = None) -> Converter:
        """Position converter for a file's current text."""
        if text is None:
            text = self.text(path) or ""
        return Converter(self.workspace.position_codec, text)

    def document(self, uri: str) -> tuple[Path, str] | None:
        """Path and current text of a floe file URI; None for anything else."""
        path = path_of(uri)
        if path is None:
            return None
        text = self.text(path)
        return (path, text) if text is not None else None

    def uri(self, path: Path | str) -> str:
        """The URI the server uses for a path."""
        return uri_of(path)


def create_server() -> FloeLanguageServer:
    """A server with every feature registered."""
    from floe_lsp import (
        code_actions,
        completion,
        diagnostics,
        hover,
        lifecycle,
        navigation,
        symbols,
    )

    server = FloeLanguageServer()
    for module in (lifecycle, diagnostics, completion, hover, navigation, symbols, code_actions):
        module.register(server)
    return server
