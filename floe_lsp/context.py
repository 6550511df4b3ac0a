"""What is at the cursor, read with the server's tolerant reader so half-typed documents work.

The document is read with tree-sitter (`floe_lsp.reader`). The cursor's own
line is usually the half-typed one (a key with no colon yet, an unclosed
`{`), so it is read on its own, and the document is read with that line
replaced by a placeholder key at the same indentation: the placeholder's place
in the tree gives the path of the mapping the cursor is in, its siblings the
keys already present, and the scalars beside it on the way down (`type: s3`,
`mode: oauth2`) pick the member of each tagged union. Lines that do not parse
elsewhere in the document are blanked, so they do not take the cursor's
section with them.

When the cursor's line is a whole `key: value` and the document has no syntax
error (hovering, mostly), the line's own pair in the document's current tree
says the same, so no placeholder text is made and re-parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from tree_sitter import Node, Tree

from floe_lsp.reader import (
    PAIRS,
    KeyPath,
    Trees,
    collection,
    column,
    enclosing_mappings,
    pairs,
    path_to,
    scalar_text,
    value_of,
)

#: The key put on the cursor's line to find where that line sits in the document.
PLACEHOLDER = "__floe_cursor__"

_PREFIX = re.compile(r"^([ \t]*)((?:-(?:[ \t]+|$))*)")


def scalar(text: str) -> Any:
    """A value's text as the model would see it (quotes removed; true/false/numbers)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("", "~", "null"):
        return None
    return text


CursorKind = Literal["key", "value", "none"]


@dataclass
class Cursor:
    """What the cursor is on.

    For `key`, `path` is the mapping holding the key being typed or hovered;
    for `value`, `path` ends with the key whose value is at the cursor.
    `start`/`end` delimit the token under the cursor (code points on `line`).
    """

    kind: CursorKind
    path: KeyPath
    line: int
    start: int
    end: int
    text: str  # the whole token
    typed: str  # the part of the token before the cursor
    data: Any = None
    present: set[str] = field(default_factory=set)
    flow: bool = False  # inside `{...}`

    @property
    def key(self) -> str | None:
        """The key whose value is at the cursor (value cursors), or the key hovered."""
        if self.kind == "value" and self.path and isinstance(self.path[-1], str):
            return self.path[-1]
        if self.kind == "key":
            return self.text or None
        return None


@dataclass(frozen=True)
class _LineKey:
    """The cursor's line read on its own: its key (when it has a colon) and its comment."""

    key: str | None = None
    key_end: int = 0  # code points
    colon_end: int = 0
    comment: int | None = None  # column where a comment starts
    broken: bool = False  # the line does not parse on its own


def _read_line(trees: Trees, raw: str, key_col: int) -> _LineKey:
    data = raw.encode("utf-8")
    tree = trees.parse_alone(data)
    key: tuple[str, int, int] | None = None
    comment: int | None = None
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type == "comment":
            at = column(data, node.start_point.column)
            comment = at if comment is None else min(comment, at)
        elif (
            node.type == ":"
            and node.parent is not None
            and (node.parent.type in PAIRS or node.parent.is_error)
        ):
            before = node.prev_sibling
            if before is None or column(data, before.start_point.column) != key_col:
                continue
            text = scalar_text(before)
            end = column(data, node.end_point.column)
            if text is not None and (key is None or end < key[2]):
                key = (text, column(data, before.end_point.column), end)
    broken = tree.root_node.has_error
    if key is None:
        return _LineKey(comment=comment, broken=broken)
    return _LineKey(key[0], key[1], key[2], comment, broken)


def _token(line: str, start: int, char: int) -> tuple[int, int]:
    end = char
    while end < len(line) and line[end] not in " \t:,{}[]#":
        end += 1
    return start, end


def _shallow(node: Node | None) -> Any:
    """A sibling's value as far as discriminating a union needs it."""
    text = scalar_text(node)
    if text is not None:
        return scalar(text) if text else {}
    found = collection(node)
    if found is None:
        return {}
    if found.type in ("block_sequence", "flow_sequence"):
        return []
    out: dict[str, Any] = {}
    if found.type == "flow_mapping":
        for key, pair in pairs(found):
            value = scalar_text(value_of(pair))
            out[key] = scalar(value) if value else {}
    return out


def _walk(root: dict[str, Any], path: KeyPath) -> Any:
    container: Any = root
    for step, item in enumerate(path):
        nxt = path[step + 1] if step + 1 < len(path) else None
        empty: Any = [] if isinstance(nxt, int) else {}
        if isinstance(item, int):
            if not isinstance(container, list):
                return None
            while len(container) <= item:
                container.append([] if isinstance(nxt, int) else {})
            if not isinstance(container[item], (dict, list)):
                container[item] = empty
            container = container[item]
        else:
            if not isinstance(container, dict):
                return None
            if not isinstance(container.get(item), (dict, list)):
                container[item] = empty
            container = container[item]
    return container


def _data(mappings: list[Node], cursor_pair: Node | None = None) -> dict[str, Any]:
    """Nested data from the sibling scalars of every mapping on the way to the cursor."""
    root: dict[str, Any] = {}
    for mapping in reversed(mappings):  # outermost first
        container = _walk(root, path_to(mapping))
        if isinstance(container, dict):
            for key, pair in pairs(mapping):
                if key != PLACEHOLDER and pair != cursor_pair:
                    container.setdefault(key, _shallow(value_of(pair)))
    return root


def _place(data: Any, path: KeyPath, value: Any) -> None:
    here = data
    for item in path[:-1]:
        if isinstance(here, dict) and isinstance(item, str):
            here = here.setdefault(item, {})
        elif isinstance(here, list) and isinstance(item, int) and item < len(here):
            here = here[item]
        else:
            return
    if isinstance(here, dict) and isinstance(path[-1], str):
        existing = here.get(path[-1])
        if not isinstance(existing, dict):
            here[path[-1]] = value


def _pair_at(tree: Tree, line: int, at: int, strict: bool) -> Node | None:
    """The mapping pair holding (line, byte column `at`); `strict`: only one whose key starts there."""
    node: Node | None = tree.root_node.descendant_for_point_range((line, at), (line, at + 1))
    while node is not None and node.type not in PAIRS:
        node = node.parent
    if node is None or node.parent is None:
        return None
    if not strict:
        return node
    key = node.child_by_field_name("key")
    if key is None or (key.start_point.row, key.start_point.column) != (line, at):
        return None
    return node


def _where(
    trees: Trees, text: str, doc_key: str, line: int, prefix: str, rest: str, whole: bool
) -> tuple[KeyPath, dict[str, Any], set[str]]:
    """Path of the mapping the cursor's line belongs to, the data on the way, the keys present.

    `whole`: the cursor's line is a complete `key: value` that parses on its own. Then,
    when the document's current tree has no syntax error, the line's own pair in that
    tree is where the cursor is; otherwise the line is replaced by a placeholder key and
    the document re-read around it (blanking broken lines elsewhere).
    """
    data = text.encode("utf-8")
    tree = trees.parse(doc_key, data) if doc_key else trees.parse_alone(data)
    at = len(prefix.encode("utf-8"))
    node = _pair_at(tree, line, at, strict=True) if whole and not tree.root_node.has_error else None
    if node is not None:  # the line's own pair, in the tree of the text as it is
        mapping = node.parent
        assert mapping is not None
        present = {key for key, pair in pairs(mapping) if pair != node}
        return path_to(mapping), _data(enclosing_mappings(node), node), present
    lines = text.split("\n")
    lines[line] = prefix + PLACEHOLDER + ":" + rest
    probe = "\n".join(lines).encode("utf-8")
    probe, probe_tree = trees.repaired(probe, trees.variant(data, tree, probe), keep_row=line)
    node = _pair_at(probe_tree, line, at, strict=False)
    if node is None or node.parent is None:
        return (), {}, set()
    mapping = node.parent
    present = {key for key, _ in pairs(mapping)} - {PLACEHOLDER}
    return path_to(mapping), _data(enclosing_mappings(node)), present


def cursor_at(
    text: str, line: int, char: int, trees: Trees | None = None, doc_key: str = ""
) -> Cursor:
    """Analyse the text around (line, char) (code points).

    `trees` (the server's) keeps each document's tree for incremental re-parsing,
    under `doc_key`; without it the text is parsed afresh.
    """
    trees = trees if trees is not None else Trees(keep=1)
    raws = text.split("\n")
    if line >= len(raws):
        return Cursor("key", (), line, 0, 0, "", "", data={}, present=set())
    raw = raws[line].rstrip("\r")
    char = min(char, len(raw))
    match = _PREFIX.match(raw)
    assert match is not None
    key_col = match.end()
    read = _read_line(trees, raw, key_col)
    if read.comment is not None and read.comment < char:
        return Cursor("none", (), line, char, char, "", "")
    # The line's value stays when it parses: lines below may belong to it.
    rest = raw[read.colon_end :] if read.key is not None and not read.broken else ""
    whole = read.key is not None and not read.broken
    container, data, present = _where(trees, text, doc_key, line, raw[:key_col], rest, whole)
    if read.key is None or char <= read.key_end:
        start, end = _token(raw, min(key_col, char), char)  # in the indentation: empty
        token = raw[start:end]
        return Cursor(
            "key",
            container,
            line,
            start,
            end,
            token,
            raw[start:char],
            data=data,
            present=present - {token},
        )
    key = read.key
    value_start = read.colon_end
    while value_start < len(raw) and raw[value_start] in " \t":
        value_start += 1
    segment = raw[value_start:char]
    brace = segment.rfind("{")
    if brace >= 0 and "}" not in segment[brace:]:
        # Inside a flow mapping: one level is enough for `{secret_ref: NAME}`.
        inner = segment[brace + 1 :].split(",")[-1]
        inner_start = char - len(inner)
        inner_key, sep, _ = inner.partition(":")
        _place(data, (*container, key), {})
        if sep:
            vstart = inner_start + len(inner_key) + 1
            while vstart < char and raw[vstart] == " ":
                vstart += 1
            s, e = _token(raw, vstart, char)
            return Cursor(
                "value",
                (*container, key, inner_key.strip()),
                line,
                s,
                e,
                raw[s:e],
                raw[s:char],
                data=data,
                flow=True,
            )
        s = inner_start + (len(inner) - len(inner.lstrip()))
        s, e = _token(raw, s, char)
        return Cursor(
            "key",
            (*container, key),
            line,
            s,
            e,
            raw[s:e],
            raw[s:char],
            data=data,
            flow=True,
            present=set(),
        )
    start = value_start
    end = len((raw if read.comment is None else raw[: read.comment]).rstrip())
    end = max(end, start)
    token = raw[start:end]
    if len(token) >= 2 and token[0] in "\"'" and token[-1] == token[0]:
        start, end, token = start + 1, end - 1, token[1:-1]
    elif token[:1] in "\"'":
        start, token = start + 1, token[1:]
    if char < start:  # between the colon and the value: an insertion point
        start = end = char
        token = ""
    return Cursor(
        "value",
        (*container, key),
        line,
        start,
        max(end, start),
        token,
        raw[start:char] if char >= start else "",
        data=data,
    )
