"""Hostile files in real sessions: the server keeps answering, and one bad pipeline never
stops the diagnostics of another.

A workspace holds, beside a good pipeline, one nested 999 levels deep, one whose transform
path is too long for the OS, one whose platform.yaml is a FIFO and one whose floe.yaml is a
FIFO; the editor then opens FIFOs, 10,000 unknown keys and deep documents.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import EXAMPLE, SERVER, open_doc, start, uri, wait_for
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning"),
]

DEEP = "{a: " * 999 + "1" + "}" * 999
LONG_PATH = "./" + "/".join(["d" * 200] * 25)


def _copy(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("target", ".floe", "logs"))
    return dest


def _edit(floe: Path, old: str, new: str) -> None:
    floe.write_text(floe.read_text().replace(old, new))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """Pipelines named so that the hostile ones are found (and analysed) first."""
    ws = tmp_path / "ws"
    deep = _copy(ws / "a-deep")
    _edit(deep / "floe.yaml", "    namespace: analytics\n", f"    vars: {DEEP}\n")
    long = _copy(ws / "b-long-path")
    _edit(long / "floe.yaml", "path: ./dbt", f"path: {LONG_PATH}")
    fifo_platform = _copy(ws / "c-fifo-platform")
    (fifo_platform / "platform" / "prod" / "platform.yaml").unlink()
    os.mkfifo(fifo_platform / "platform" / "prod" / "platform.yaml")
    fifo_floe = _copy(ws / "d-fifo-floe")
    (fifo_floe / "floe.yaml").unlink()
    os.mkfifo(fifo_floe / "floe.yaml")
    good = _copy(ws / "z-good")
    _edit(good / "floe.yaml", "compute: default", "compute: nowhere")
    return ws


@pytest_lsp.fixture(config=SERVER, params=["visual-studio-code", "neovim"])  # type: ignore[untyped-decorator]
async def client(
    lsp_client: LanguageClient, request: pytest.FixtureRequest, workspace: Path
) -> AsyncIterator[None]:
    """A server over the hostile workspace, for each client profile (in place of conftest's)."""
    await start(lsp_client, request.param, [workspace])
    yield
    await lsp_client.shutdown_session()


def messages(client: LanguageClient, path: Path) -> list[tuple[str, str]]:
    return [(str(d.code), d.message) for d in client.diagnostics.get(uri(path), [])]


def _walk(
    symbols: list[types.DocumentSymbol], depth: int = 1
) -> Iterator[tuple[int, types.DocumentSymbol]]:
    for symbol in symbols:
        yield depth, symbol
        yield from _walk(symbol.children or [], depth + 1)


async def symbols(client: LanguageClient, path: Path) -> list[types.DocumentSymbol]:
    found = await asyncio.wait_for(
        client.text_document_document_symbol_async(
            types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri(path)))
        ),
        timeout=15,
    )
    return [s for s in found or [] if isinstance(s, types.DocumentSymbol)]


async def test_start_up_diagnostics_reach_every_pipeline(
    client: LanguageClient, workspace: Path
) -> None:
    good = workspace / "z-good" / "floe.yaml"
    await wait_for(
        lambda: [c for c, _ in messages(client, good)] == ["FLOE010", "FLOE010"],
        timeout=30,
        what="the good pipeline's FLOE010 for dev and prod",
    )
    [(code, message)] = messages(client, workspace / "a-deep" / "floe.yaml")
    assert code == "FLOE001" and "nest deeper than 100 levels" in message
    [(code, message)] = messages(client, workspace / "b-long-path" / "floe.yaml")
    assert code == "FLOE030" and "is too long for the file system" in message
    fifo = workspace / "c-fifo-platform" / "platform" / "prod" / "platform.yaml"
    assert messages(client, fifo) == [
        ("FLOE001", "the file is a named pipe (FIFO), not a regular file; it was not read")
    ]
    [(code, message)] = messages(client, workspace / "d-fifo-floe" / "floe.yaml")
    assert code == "FLOE001" and "named pipe (FIFO)" in message
    assert not [m for m in client.messages if m.type == types.MessageType.Error]
    # And it answers: the good pipeline's outline.
    assert [s.name for s in await symbols(client, good)][:2] == ["name", "version"]


async def test_opening_fifos_in_the_editor_never_freezes_the_server(
    client: LanguageClient, workspace: Path
) -> None:
    root = workspace / "d-fifo-floe"
    text = (EXAMPLE / "floe.yaml").read_text().replace("compute: default", "compute: none")
    open_doc(client, root / "floe.yaml", text)
    platform = workspace / "c-fifo-platform" / "platform" / "prod" / "platform.yaml"
    open_doc(client, platform, (EXAMPLE / "platform" / "prod" / "platform.yaml").read_text())
    # The editor's text is what counts once open: analysed as usual.
    await wait_for(
        lambda: [c for c, _ in messages(client, root / "floe.yaml")] == ["FLOE010", "FLOE010"],
        timeout=30,
        what="diagnostics of the open text",
    )
    await wait_for(lambda: messages(client, platform) == [], timeout=30, what="open platform")
    assert [s.name for s in await symbols(client, root / "floe.yaml")][:2] == ["name", "version"]
    assert [s.name for s in await symbols(client, platform)][:2] == ["version", "storage"]


async def test_ten_thousand_unknown_keys_publish_one_hundred(
    client: LanguageClient, workspace: Path
) -> None:
    floe = workspace / "z-good" / "floe.yaml"
    text = floe.read_text().replace("compute: nowhere", "compute: default")
    open_doc(client, floe, text + "".join(f"unknown_{i}: 1\n" for i in range(10_000)))
    await wait_for(
        lambda: len(client.diagnostics.get(uri(floe), [])) == 100, timeout=30, what="100"
    )
    last = client.diagnostics[uri(floe)][-1]
    assert "(and 9,900 more problems in this file, not listed" in last.message


async def test_outline_of_deep_documents_answers_and_is_capped(
    client: LanguageClient, workspace: Path
) -> None:
    floe = workspace / "z-good" / "floe.yaml"
    base = floe.read_text()
    # 97 levels inside transforms[0]: the deepest the engine loads.
    nested = "\n".join("  " * (i + 3) + f"k{i}:" for i in range(97)) + " 1\n"
    open_doc(client, floe, base.replace("    namespace: analytics\n", "    vars:\n" + nested))
    found = await symbols(client, floe)
    assert max(d for d, _ in _walk(found)) == 30
    deepest = [s for d, s in _walk(found) if d == 30]
    assert [s.detail for s in deepest] == ["… (deeper levels not shown)"]
    # Deeper, parsed or half typed: FLOE001 says why, and the outline is empty (the tolerant
    # reader is not handed such a text: tree-sitter-yaml crashes on ~250 levels).
    for version, tail in enumerate(["", "broken: [\n"], start=2):
        nested = "\n".join("  " * (i + 1) + f"k{i}:" for i in range(600)) + " 1\n"
        open_doc(client, floe, base + "extra:\n" + nested + tail, version=version)
        assert await symbols(client, floe) == []
        await wait_for(
            lambda: [d.code for d in client.diagnostics.get(uri(floe), [])] == ["FLOE001"],
            timeout=30,
            what="FLOE001",
        )


async def test_hover_completion_and_hints_on_a_300_level_document_answer(
    client: LanguageClient, workspace: Path
) -> None:
    """tree-sitter-yaml crashes the process on ~250 block levels: the tolerant reader is
    never handed such a text, so every cursor request answers and the server lives on."""
    floe = workspace / "z-good" / "floe.yaml"
    base = floe.read_text()
    nested = "\n".join("  " * (i + 1) + f"k{i}:" for i in range(300)) + " 1\n"
    text = base + "extra:\n" + nested
    open_doc(client, floe, text)
    doc = types.TextDocumentIdentifier(uri=uri(floe))
    for line in (2, 10, 200):
        pos = types.Position(line=line, character=2)
        await client.text_document_hover_async(types.HoverParams(text_document=doc, position=pos))
        await client.text_document_completion_async(
            types.CompletionParams(text_document=doc, position=pos)
        )
    end = types.Position(line=len(text.split("\n")) - 1, character=0)
    await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=doc, range=types.Range(start=types.Position(line=0, character=0), end=end)
        )
    )
    await wait_for(
        lambda: [d.code for d in client.diagnostics.get(uri(floe), [])] == ["FLOE001"],
        timeout=30,
        what="FLOE001 (nested too deep)",
    )
    # Still alive and serving: a normal hover on the restored text answers.
    open_doc(client, floe, base, version=2)
    line = base.split("\n").index("catalog: default")
    found = await client.text_document_hover_async(
        types.HoverParams(text_document=doc, position=types.Position(line=line, character=10))
    )
    assert found is not None


async def test_links_and_definition_on_a_path_too_long_for_the_os_answer(
    client: LanguageClient, workspace: Path
) -> None:
    floe = workspace / "z-good" / "floe.yaml"
    text = floe.read_text().replace("path: ./dbt", "path: ./" + "d" * 300)
    open_doc(client, floe, text)
    doc = types.TextDocumentIdentifier(uri=uri(floe))
    links = await client.text_document_document_link_async(
        types.DocumentLinkParams(text_document=doc)
    )
    assert not links  # answered (an internal error would raise), with no link
    line = text.split("\n").index("    path: ./" + "d" * 300)
    found = await client.text_document_definition_async(
        types.DefinitionParams(text_document=doc, position=types.Position(line=line, character=14))
    )
    assert not found
