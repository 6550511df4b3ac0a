"""Document symbols: the outline of a floe.yaml or platform.yaml from the engine's node tree."""

from __future__ import annotations

from lsprotocol import types

from floe_lsp.convert import Converter
from floe_lsp.server import FloeLanguageServer
from floe_lsp.state import file_kind
from floe_lsp.tiers import SECTION_KINDS, describe, pipeline_doc, platform_doc
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


def document_symbols(ls: FloeLanguageServer, uri: str) -> list[types.DocumentSymbol]:
    """The outline (empty when the text does not parse)."""
    doc = ls.document(uri)
    if doc is None:
        return []
    path, text = doc
    kind = file_kind(path)
    ydoc = pipeline_doc(ls, path) if kind == "pipeline" else platform_doc(ls, path) if kind == "platform" else None
    if ydoc is None or ydoc.root is None or ydoc.root.kind != "map":
        return []
    conv = ls.converter(path, text)
    return [_symbol(conv, k, v, 0, None) for k, v in ydoc.root.entries.items()]


def on_symbols(ls: FloeLanguageServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
    return document_symbols(ls, params.text_document.uri)
