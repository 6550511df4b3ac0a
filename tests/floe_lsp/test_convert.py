"""Positions as LSP clients count them: lines end only at \\n, \\r\\n and \\r (LSP 3.17)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_helpers import change_range, codes, open_doc, uri, wait_for
from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec
from pytest_lsp import LanguageClient

from floe_lsp.convert import Converter, apply_change, split_lines
from floe_runtime.analysis import Position

UTF16 = PositionCodec(types.PositionEncodingKind.Utf16)


def _edit(line: int, start: int, end: int, text: str) -> types.TextDocumentContentChangePartial:
    return types.TextDocumentContentChangePartial(
        range=types.Range(
            start=types.Position(line=line, character=start),
            end=types.Position(line=line, character=end),
        ),
        text=text,
    )


@pytest.mark.parametrize("odd", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c"])
def test_only_lsp_line_breaks_split_lines(odd: str) -> None:
    text = f'description: "a{odd}b"\r\ncatalog: default\rcompute: default\n'
    assert split_lines(text) == [
        f'description: "a{odd}b"\r\n',
        "catalog: default\r",
        "compute: default\n",
    ]
    # The engine's position of `compute` is on LSP line 2, as the client has it.
    assert Converter(UTF16, text).position(Position(2, 0)) == types.Position(line=2, character=0)


@pytest.mark.parametrize("odd", ["\u2028", "\x85"])
def test_an_edit_below_an_unusual_character_lands_on_its_own_line(odd: str) -> None:
    text = f'description: "a{odd}b"\ncatalog: default\ncompute: default\n'
    changed = apply_change(UTF16, text, _edit(2, 9, 16, "nowhere"))
    assert changed == f'description: "a{odd}b"\ncatalog: default\ncompute: nowhere\n'


def test_utf16_units_and_ranges_past_the_end_are_clamped() -> None:
    text = "name: 😀x\ncatalog: default"
    # 😀 is two UTF-16 units: character 8 is after it, before "x".
    assert apply_change(UTF16, text, _edit(0, 8, 9, "y")) == "name: 😀y\ncatalog: default"
    assert apply_change(UTF16, text, _edit(1, 9, 400, "dev")) == "name: 😀x\ncatalog: dev"
    assert apply_change(UTF16, text, _edit(7, 0, 0, "\nx: 1")) == text + "\nx: 1"
    whole = types.TextDocumentContentChangeWholeDocument(text="name: z\n")
    assert apply_change(UTF16, text, whole) == "name: z\n"


# ---------------------------------------------------------------- through a live server


@pytest.mark.asyncio
@pytest.mark.parametrize("odd", ["\u2028", "\x85"])
async def test_incremental_edit_below_an_unusual_character(
    client: LanguageClient, project: Path, odd: str
) -> None:
    """The editor changes `compute: default` to `nowhere`; the server must see that line
    changed, not `catalog:` above it (pygls's own document splits lines at U+2028/NEL)."""
    floe = project / "floe.yaml"
    base = floe.read_text()
    base = base.replace(
        "description: Revenue per customer,", f'description: "Revenue{odd}per customer,'
    )
    base = base.replace("from raw orders and payments\n", 'from raw orders and payments"\n')
    floe.write_text(base)
    open_doc(client, floe, base)
    await wait_for(lambda: uri(floe) in client.diagnostics, what="first diagnostics")
    assert codes(client, floe) == []
    line = base.split("\n").index("compute: default")
    change_range(client, floe, 2, line, 9, 16, "nowhere")
    await wait_for(lambda: "FLOE010" in codes(client, floe), what="FLOE010")
    found = [d for d in client.diagnostics[uri(floe)] if d.code == "FLOE010"]
    assert len(found) == 2  # dev and prod; nothing else (catalog: untouched)
    assert all(d.range.start.line == line and "nowhere" in d.message for d in found), found
    assert codes(client, floe) == ["FLOE010", "FLOE010"]
