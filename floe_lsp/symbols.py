"""Document symbols: the outline of a floe.yaml or platform.yaml from the engine's node tree."""

from __future__ import annotations

from dataclasses import dataclass, field

from lsprotocol import types

from floe_lsp.context import Lines
from floe_lsp.convert import Converter
from floe_lsp.server import FloeLanguageServer
from floe_lsp.state import file_kind
from floe_lsp.tiers import SECTION_KINDS, describe, pipeline_doc, platform_doc
from floe_runtime.analysis.diagnostics import Position, Range
from floe_runtime.analysis.loader import YNode

_KINDS = {"map": types.SymbolKind.Object, "seq": types.SymbolKind.Array}


def _symbol(conv: Converter, name: str, node: YNode, depth: int, parent: str | None) -> types.DocumentSymbol:
    kind = _KINDS.get(node.kind, types.SymbolKind.Property)
    if parent in SECTION_KINDS and depth == 1:
        kind = types.SymbolKind.Module  # a profile
    detail = None
    if node.kind == "scalar":
        detail = node.raw if len(node.raw) <= 60 else node.raw[:57] + "..."
    elif node.kind == "map" and "type" in node.entries:
        detail = describe(node.entries["type"])
    elif node.kind == "map" and "secret_ref" in node.entries and len(node.entries) == 1:
        detail = describe(node)
    children: list[types.DocumentSymbol] = []
    if node.kind == "map" and set(node.entries) != {"secret_ref"}:
        children = [_symbol(conv, k, v, depth + 1, name) for k, v in node.entries.items()]
    elif node.kind == "seq":
        for index, item in enumerate(node.items):
            label = f"[{index}]"
            if item.kind == "map" and "type" in item.entries:
                label += f" {describe(item.entries['type'])}"
            children.append(_symbol(conv, label, item, depth + 1, name))
    full = conv.range(node.full_range)
    selection = conv.range(node.key_range) if node.key_range is not None else full
    return types.DocumentSymbol(
        name=name or "(empty)",
        kind=kind,
        range=full,
        selection_range=selection,
        detail=detail,
        children=children or None,
    )


@dataclass
class _Outline:
    """A key (or list item) found by indentation while the text does not parse."""

    name: str
    col: int  # lines starting at or left of this column end it
    start: Position
    end: Position
    selection: Range
    value: str | None
    children: list[_Outline] = field(default_factory=list)
    items: int = 0

    def symbol(self, conv: Converter, depth: int, parent: str | None) -> types.DocumentSymbol:
        if self.children:
            is_seq = all(child.name.startswith("[") for child in self.children)
            kind = types.SymbolKind.Array if is_seq else types.SymbolKind.Object
        else:
            kind = types.SymbolKind.Property
        if parent in SECTION_KINDS and depth == 1:
            kind = types.SymbolKind.Module
        kinds = [c.value for c in self.children if c.name == "type" and c.value]
        detail = kinds[0] if kinds else (self.value or None)
        return types.DocumentSymbol(
            name=self.name or "(empty)",
            kind=kind,
            range=conv.range(Range(self.start, self.end)),
            selection_range=conv.range(self.selection),
            detail=detail,
            children=[c.symbol(conv, depth + 1, self.name) for c in self.children] or None,
        )


def outline_from_lines(text: str) -> list[_Outline]:
    """The outline read from indentation alone, for a document that does not parse.

    Editors redraw the outline on every keystroke; reading keys line by line
    (as completion does) keeps it in place while a line is half typed.
    """
    lines = Lines(text)
    roots: list[_Outline] = []
    stack: list[_Outline] = []
    for index, raw in enumerate(lines.raw):
        info = lines.info(index)
        if info is None:
            continue
        while stack and stack[-1].col >= info.first:
            stack.pop()
        end = Position(index, len(raw.rstrip("\r")))
        for open_node in stack:
            open_node.end = end
        if info.dash is not None:
            parent = stack[-1] if stack else None
            number = parent.items if parent else len(roots)
            at = Position(index, info.dash)
            item = _Outline(f"[{number}]", info.dash, at, end, Range(at, Position(index, info.dash + 1)), None)
            if parent:
                parent.items += 1
            (parent.children if parent else roots).append(item)
            stack.append(item)
        if info.key is None:
            continue
        at = Position(index, info.key_col)
        node = _Outline(info.key, info.key_col, at, end, Range(at, Position(index, info.key_end)), info.value or None)
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)
    return roots


def document_symbols(ls: FloeLanguageServer, uri: str) -> list[types.DocumentSymbol]:
    """The outline from the parsed tree, or from indentation while the text does not parse."""
    doc = ls.document(uri)
    if doc is None:
        return []
    path, text = doc
    kind = file_kind(path)
    if kind not in ("pipeline", "platform"):
        return []
    ydoc = pipeline_doc(ls, path) if kind == "pipeline" else platform_doc(ls, path)
    conv = ls.converter(path, text)
    # The state hands out the last text that parsed; its positions are stale once
    # the editor's text differs, so the outline then comes from the lines.
    current = ydoc is not None and ydoc.text == text
    if current and ydoc is not None and ydoc.root is not None and ydoc.root.kind == "map":
        return [_symbol(conv, k, v, 0, None) for k, v in ydoc.root.entries.items()]
    if current:
        return []  # parsed, but empty or not a mapping: nothing to outline
    return [node.symbol(conv, 0, None) for node in outline_from_lines(text)]


def on_symbols(ls: FloeLanguageServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
    return document_symbols(ls, params.text_document.uri)
