"""The floe language server: a small registry of features over one workspace state.

Each feature lives in its own module; this module only builds the server and
wires them in. Feature modules (and with them the analysis engine and the
pydantic models) are imported on first use, so the `initialize` answer does not
wait for them; `initialized` then loads the engine while scanning the workspace.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path

from floe_lsp import __version__

if TYPE_CHECKING:
    from floe_lsp.convert import Converter
    from floe_lsp.reader import Trees
    from floe_lsp.state import WorkspaceState

#: Characters after which clients ask for completion without a keystroke shortcut.
TRIGGERS = [":", " ", "/", "."]

#: LSP method → (options, "module:function") handling it.
FEATURES: list[tuple[str, Any, str]] = [
    (types.TEXT_DOCUMENT_DID_OPEN, None, "diagnostics:did_open"),
    (types.TEXT_DOCUMENT_DID_CHANGE, None, "diagnostics:did_change"),
    (types.TEXT_DOCUMENT_DID_SAVE, None, "diagnostics:did_save"),
    (types.TEXT_DOCUMENT_DID_CLOSE, None, "diagnostics:did_close"),
    (types.WORKSPACE_DID_CHANGE_WATCHED_FILES, None, "diagnostics:watched"),
    (
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=TRIGGERS),
        "completion:completion",
    ),
    (types.TEXT_DOCUMENT_HOVER, None, "hover:on_hover"),
    (types.TEXT_DOCUMENT_DEFINITION, None, "navigation:on_definition"),
    (types.TEXT_DOCUMENT_REFERENCES, None, "navigation:on_references"),
    (types.TEXT_DOCUMENT_PREPARE_RENAME, None, "navigation:on_prepare_rename"),
    (
        types.TEXT_DOCUMENT_RENAME,
        types.RenameOptions(prepare_provider=True),
        "navigation:on_rename",
    ),
    (
        types.TEXT_DOCUMENT_DOCUMENT_LINK,
        types.DocumentLinkOptions(resolve_provider=False),
        "navigation:on_links",
    ),
    (
        types.TEXT_DOCUMENT_INLAY_HINT,
        types.InlayHintOptions(resolve_provider=False),
        "navigation:on_inlay",
    ),
    (types.TEXT_DOCUMENT_DOCUMENT_SYMBOL, None, "symbols:on_symbols"),
    (
        types.TEXT_DOCUMENT_CODE_ACTION,
        # Source: floe.diffEnvironments (floe_lsp/envdiff.py), offered on floe.yaml.
        types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.Source]
        ),
        "code_actions:on_code_action",
    ),
]


class FloeLanguageServer(LanguageServer):
    """pygls server holding the floe workspace state and what the client can do."""

    def __init__(self) -> None:
        from floe_lsp.protocol import FloeProtocol

        super().__init__(
            "floe-lsp",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            # Answers every request, even one whose params do not fit (floe_lsp/protocol.py).
            protocol_cls=FloeProtocol,
        )
        self._state: WorkspaceState | None = None
        self._trees: Trees | None = None
        #: Diagnostics are pulled (textDocument/diagnostic) rather than pushed.
        self.pull_diagnostics = False
        self.snippets = False
        self.markdown = True
        self.watch_registered = False
        #: The client's `floe.environment` setting (workspace/configuration); None: every environment.
        self.environment: str | None = None

    @property
    def state(self) -> WorkspaceState:
        """The workspace state (created, with the engine imported, on first use)."""
        if self._state is None:
            from floe_lsp.state import WorkspaceState

            self._state = WorkspaceState()
        return self._state

    @property
    def trees(self) -> Trees:
        """The tolerant reader's trees of the open documents (tree-sitter loads on first use)."""
        if self._trees is None:
            from floe_lsp.reader import Trees

            self._trees = Trees()
        return self._trees

    # ------------------------------------------------------------ documents
    def text(self, path: Path) -> str | None:
        """A file's current text (the editor's when it is open)."""
        return self.state.read(path)

    def converter(self, path: Path, text: str | None = None) -> Converter:
        """Position converter for a file's current text."""
        from floe_lsp.convert import Converter

        if text is None:
            text = self.text(path) or ""
        return Converter(self.workspace.position_codec, text)

    def document(self, uri: str) -> tuple[Path, str] | None:
        """Path and current text of a floe file URI; None for anything else."""
        from floe_lsp.convert import path_of

        path = path_of(uri)
        if path is None:
            return None
        text = self.text(path)
        return (path, text) if text is not None else None

    def start_io(self, stdin: Any = None, stdout: Any = None) -> None:
        """Serve on stdio, resynchronising after a damaged frame (floe_lsp/protocol.py)."""
        from floe_lsp.protocol import start_io

        start_io(self, stdin)

    def start_tcp(self, host: str, port: int) -> None:
        """Serve on a TCP address, with the same framing as stdio."""
        from floe_lsp.protocol import start_tcp

        start_tcp(self, host, port)

    def workspace_edit(self, edits: dict[Path, list[types.TextEdit]]) -> types.WorkspaceEdit:
        """A workspace edit in the form the client declared (versioned documentChanges or changes)."""
        caps = self.client_capabilities.workspace
        edit_caps = caps.workspace_edit if caps is not None else None
        if edit_caps is not None and edit_caps.document_changes:
            return types.WorkspaceEdit(
                document_changes=[
                    types.TextDocumentEdit(
                        text_document=types.OptionalVersionedTextDocumentIdentifier(
                            uri=self.uri(path), version=self._open_version(path)
                        ),
                        edits=list(changes),
                    )
                    for path, changes in edits.items()
                ]
            )
        return types.WorkspaceEdit(changes={self.uri(p): list(c) for p, c in edits.items()})

    def _open_version(self, path: Path) -> int | None:
        opened = self.state.open.get(path)
        return opened.version if opened is not None else None

    def uri(self, path: Path | str) -> str:
        """The URI the server uses for a path."""
        return str(from_fs_path(str(path)))


def _lazy(target: str) -> Callable[[FloeLanguageServer, Any], Any]:
    module_name, _, function = target.partition(":")
    resolved: list[Callable[[FloeLanguageServer, Any], Any]] = []

    def handler(ls: FloeLanguageServer, params: Any) -> Any:
        if not resolved:
            module = importlib.import_module(f"floe_lsp.{module_name}")
            resolved.append(getattr(module, function))
        return resolved[0](ls, params)

    handler.__name__ = function
    return handler


def register_pull_diagnostics(server: FloeLanguageServer) -> None:
    """Offer pull diagnostics (`textDocument/diagnostic`).

    Called from the `initialize` handler for a client that pulls and can be told
    to re-pull: pygls computes the announced capabilities after that handler, so
    a push client is never offered pull.
    """
    options = types.DiagnosticOptions(
        identifier="floe", inter_file_dependencies=True, workspace_diagnostics=False
    )
    server.feature(types.TEXT_DOCUMENT_DIAGNOSTIC, options)(_lazy("diagnostics:pull"))


def create_server() -> FloeLanguageServer:
    """A server with every feature registered (feature modules load on first use)."""
    from floe_lsp import commands, lifecycle

    server = FloeLanguageServer()
    lifecycle.register(server)
    commands.register(server)
    for method, options, target in FEATURES:
        server.feature(method, options)(_lazy(target))
    return server
