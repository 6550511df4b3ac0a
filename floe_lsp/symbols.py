"""Document symbols: the outline of a floe.yaml or platform.yaml from the engine's node tree."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from tree_sitter import Node

from floe_lsp.convert import Converter
from floe_lsp.reader import collection, column, scalar_text, top_mapping, value_of
from floe_lsp.reader import items as ts_items
from floe_lsp.reader import pairs as ts_pairs
from floe_lsp.server import FloeLanguageServer
from floe_lsp.state import file_kind
from floe_lsp.tiers import SECTION_KINDS, describe, pipeline_doc, platform_doc
from floe_runtime.analysis.diagnostics import Position, Range
from floe_runtime.analysis.loader import YNode, block_depth_over

_KINDS = {"map": types.SymbolKind.Object, "seq": types.SymbolKind.Array}
#: Levels of the outline; deeper entries are left out. A reply is serialised recursively
#: (a few stack frames per level), and no one reads an outline 30 levels deep.
MAX_SYMBOL_DEPTH = 30
#: The detail of a symbol whose children are left out for depth.
DEEPER = "… (deeper levels not shown)"


def _symbol(
    conv: Converter, name: str, node: YNode, depth: int, parent: str | None
) -> types.DocumentSymbol:
    kind = _KINDS.get(node.kind, types.SymbolKind.Property)
    if parent in SECTION_KINDS and depth == 1:
        kind = types.SymbolKind.Module  # a profile
    detail = None
    if node.kind == "scalar":
        shown = describe(node, name)  # a credential never shows, even in the outline
        detail = shown if len(shown) <= 60 else shown[:57] + "..."
    elif node.kind == "map" and "type" in node.entries:
        detail = describe(node.entries["type"])
    elif node.kind == "map" and "secret_ref" in node.entries and len(node.entries) == 1:
        detail = describe(node)
    children: list[types.DocumentSymbol] = []
    nested = node.kind == "seq" or node.kind == "map" and set(node.entries) != {"secret_ref"}
    if nested and depth + 1 >= MAX_SYMBOL_DEPTH:
        if node.entries or node.items:
            detail = DEEPER
    elif node.kind == "map" and set(node.entries) != {"secret_ref"}:
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


def _position(lines: list[bytes], row: int, byte_col: int) -> Position:
    return Position(row, column(lines[row], byte_col) if row < len(lines) else 0)


def _range(lines: list[bytes], node: Node) -> Range:
    a, b = node.start_point
    c, d = node.end_point
    return Range(_position(lines, a, b), _position(lines, c, d))


def _outline(
    conv: Converter,
    lines: list[bytes],
    name: str,
    node: Node,
    selection: Node,
    value: Node | None,
    depth: int,
    parent: str | None,
) -> types.DocumentSymbol:
    """A symbol for a tree-sitter pair or sequence item, with its children."""
    held = collection(value)
    children: list[types.DocumentSymbol] = []
    kind = types.SymbolKind.Property
    detail = scalar_text(value) if value is not None else None
    if held is not None and depth + 1 >= MAX_SYMBOL_DEPTH:
        detail = DEEPER
    elif held is not None and held.type in ("block_mapping", "flow_mapping"):
        kind = types.SymbolKind.Object
        entries = dict(ts_pairs(held))
        tag = scalar_text(value_of(entries["type"])) if "type" in entries else None
        detail = tag or None
        children = [
            _outline(
                conv,
                lines,
                key,
                pair,
                pair.child_by_field_name("key") or pair,
                value_of(pair),
                depth + 1,
                name,
            )
            for key, pair in entries.items()
        ]
    elif held is not None:
        kind = types.SymbolKind.Array
        for index, item in enumerate(ts_items(held)):
            inner = (
                item.named_children[-1]
                if item.type == "block_sequence_item" and item.named_children
                else item
            )
            dash = (
                item.children[0] if item.type == "block_sequence_item" and item.children else item
            )
            label = f"[{index}]"
            member = collection(inner)
            if member is not None and member.type in ("block_mapping", "flow_mapping"):
                tag_pair = dict(ts_pairs(member)).get("type")
                tag = scalar_text(value_of(tag_pair)) if tag_pair is not None else None
                if tag:
                    label += f" {tag}"
            children.append(_outline(conv, lines, label, item, dash, inner, depth + 1, name))
    if parent in SECTION_KINDS and depth == 1:
        kind = types.SymbolKind.Module  # a profile
    if detail is not None and len(detail) > 60:
        detail = detail[:57] + "..."
    return types.DocumentSymbol(
        name=name or "(empty)",
        kind=kind,
        range=conv.range(_range(lines, node)),
        selection_range=conv.range(_range(lines, selection)),
        detail=detail or None,
        children=children or None,
    )


def outline_from_tree(ls: FloeLanguageServer, path: Path, text: str) -> list[types.DocumentSymbol]:
    """The outline read with the tolerant reader, for a document that does not parse.

    Editors redraw the outline on every keystroke; lines that do not parse are
    left out, so the rest stays in place while a line is half typed.
    """
    if block_depth_over(text):
        return []  # FLOE001 says it nests too deep; tree-sitter-yaml would crash on it
    data = text.encode("utf-8")
    _, tree = ls.trees.repaired(data, ls.trees.parse(str(path), data))
    top = top_mapping(tree)
    if top is None:
        return []
    conv = ls.converter(path, text)
    lines = data.split(b"\n")
    return [
        _outline(
            conv, lines, key, pair, pair.child_by_field_name("key") or pair, value_of(pair), 0, None
        )
        for key, pair in ts_pairs(top)
    ]


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
    return outline_from_tree(ls, path, text)


def on_symbols(
    ls: FloeLanguageServer, params: types.DocumentSymbolParams
) -> list[types.DocumentSymbol]:
    return document_symbols(ls, params.text_document.uri)
