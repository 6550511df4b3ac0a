"""Every feature answers (never raises) on randomly damaged documents at random positions."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.workspace import Workspace

from floe_lsp import code_actions, completion, hover, navigation, symbols
from floe_lsp.server import create_server

JUNK = [
    "",
    ":",
    "- ",
    "{",
    "}",
    "'",
    '"',
    "\n  ",
    "é😀",
    "  x:",
    "\t",
    "[",
    "#",
    "&a",
    "*a",
    "---\n",
    "\r\n",
]


@pytest.mark.parametrize("name", ["floe.yaml", "platform/prod/platform.yaml"])
def test_features_survive_damaged_text(project: Path, name: str) -> None:
    server = create_server()
    server.protocol._workspace = Workspace(None)  # what initialize would set up
    server.protocol.client_capabilities = types.ClientCapabilities()
    server.state.scan([project.parent])
    path = (project / name).resolve()
    base = path.read_text()
    uri = server.uri(path)
    rng = random.Random(20261125)
    answered = 0
    for trial in range(120):
        start = rng.randrange(len(base))
        text = base[:start] + rng.choice(JUNK) + base[min(len(base), start + rng.randrange(20)) :]
        server.state.set_open(path, text, trial)
        lines = text.split("\n")
        for _ in range(4):
            line = rng.randrange(len(lines) + 1)
            char = rng.randrange(len(lines[line]) + 2) if line < len(lines) else 0
            p = types.Position(line=line, character=char)
            whole = types.Range(
                start=types.Position(line=0, character=0),
                end=types.Position(line=len(lines), character=0),
            )
            completion.complete(server, uri, p)
            hover.hover(server, uri, p)
            navigation.definition(server, uri, p)
            navigation.references(server, uri, p, True)
            navigation.prepare_rename(server, uri, p)
            navigation.rename(server, uri, p, "renamed")
            navigation.inlay_hints(server, uri, whole)
            navigation.document_links(server, uri)
            symbols.document_symbols(server, uri)
            code_actions.code_actions(
                server,
                types.CodeActionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    range=types.Range(start=p, end=p),
                    context=types.CodeActionContext(diagnostics=[]),
                ),
            )
            answered += 10
    assert answered == 120 * 4 * 10
