"""Parse a large file in chunks and reuse the parse of every chunk that did not change.

An editor re-checks a file on every keystroke, and a large floe.yaml is
mostly one long `transforms:` list of which an edit touches one item. The file
is cut where a new top-level key starts, and a long block sequence under a
top-level key is cut again where each item starts; each chunk is parsed on its
own (libyaml, as for a whole file) and remembered by its text. An edit then
parses the chunk it touched, and the others are copied from memory with their
positions moved to where they now are.

The result is the same tree a whole-file parse gives, position for position
(tests compare the two on damaged and generated files). Whenever that could be
in doubt the whole file is parsed instead: syntax errors, duplicate keys and
any other diagnostic, anchors and aliases, document markers, directives,
flow collections or tags at the start of a line, line breaks other than LF.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import yaml

from floe_runtime.analysis.loader import _MAP, _SEQ, YamlDocument, YNode, _Builder

#: Texts shorter than this are parsed whole: a few milliseconds at most.
MIN_CHARS = 8_000
#: A top-level entry this long, when its value is a block sequence, is cut into items.
MIN_SPLIT_CHARS = 2_000
#: Characters of chunk text whose parse is remembered (least recently used goes first).
MEMO_CHARS = 400_000

# A top-level key starts a chunk; lines starting with anything but a key, a
# comment, indentation or a "- " item make the file unsuitable for cutting.
_TOP_KEY = re.compile(r"^[A-Za-z0-9_\"']", re.M)
_UNSAFE = re.compile(r"^(?:[^A-Za-z0-9_\"' #\n-]|-[^ \n])", re.M)
_ODD_BREAKS = ("\r", "\x85", "\u2028", "\u2029", "\t")

Span = tuple[int, int, int, int]

_memo: OrderedDict[tuple[str, int], YNode | None] = OrderedDict()
_memo_chars = 0
#: Files whose placed subtrees are kept (an editor works on a few large files at once).
PLACED_FILES = 4

Placed = dict[tuple[str, int, int], YNode]
#: Per file, the subtrees moved into place for its latest document, by (chunk, indent,
#: line): an edit that moves no lines (most keystrokes) copies nothing.
_placed_by_file: OrderedDict[str, Placed] = OrderedDict()


def clear_memo() -> None:
    """Forget every remembered chunk."""
    global _memo_chars
    _memo.clear()
    _placed_by_file.clear()
    _memo_chars = 0


def memo_chars() -> int:
    """Characters of chunk text currently remembered."""
    return _memo_chars


def _dedent(chunk: str, indent: int) -> str | None:
    """`chunk` with `indent` columns removed; None when content sits further left."""
    kept = []
    for raw in chunk.split("\n"):
        if raw[:indent].strip():
            if not raw.lstrip().startswith("#"):
                return None
            kept.append("")  # a comment further left keeps its line; its text is not needed
        else:
            kept.append(raw[indent:])
    return "\n".join(kept)


def _parse(chunk: str, indent: int = 0) -> YNode | None:
    """The tree of a chunk (dedented by `indent`) at line 0, or None when it must not be used."""
    global _memo_chars
    key = (chunk, indent)
    if key in _memo:
        _memo.move_to_end(key)
        return _memo[key]
    source = _dedent(chunk, indent) if indent else chunk
    root: YNode | None = None
    if source is not None:
        builder = _Builder("")
        try:
            root = builder.feed(source)
        except yaml.YAMLError:
            root = None
        if builder.diagnostics or builder.aliased:
            root = None
    _memo[key] = root
    _memo_chars += len(chunk)
    while _memo_chars > MEMO_CHARS and len(_memo) > 1:
        (old, _), _ = _memo.popitem(last=False)
        _memo_chars -= len(old)
    return root


def _moved(span: Span, lines: int, cols: int) -> Span:
    a, b, c, d = span
    return (a + lines, b + cols, c + lines, d + cols)


def _copy(node: YNode, lines: int, cols: int) -> YNode:
    """A copy of a remembered subtree placed `lines` down and `cols` right.

    Runs over every node of a chunk whose lines moved, so leaves are copied
    inline rather than through a call each.
    """
    a, b, c, d = node.span
    key = node.key_span
    key_span = None if key is None else _moved(key, lines, cols)
    if node.kind == "scalar":
        return _leaf(node, lines, cols, key_span)
    span = (a + lines, b + cols, c + lines, d + cols)
    if node.kind == "map":
        entries: dict[str, YNode] = {}
        for name, child in node.entries.items():
            if child.kind == "scalar":
                assert child.key_span is not None  # a mapping's values have their key's span
                entries[name] = _leaf(child, lines, cols, _moved(child.key_span, lines, cols))
            else:
                entries[name] = _copy(child, lines, cols)
        return YNode("map", span, key_span, None, "", node.tag, None, entries, [])
    items = [
        _leaf(child, lines, cols, None) if child.kind == "scalar" else _copy(child, lines, cols)
        for child in node.items
    ]
    return YNode("seq", span, key_span, None, "", node.tag, None, {}, items)


def _leaf(node: YNode, lines: int, cols: int, key_span: Span | None) -> YNode:
    a, b, c, d = node.span
    # A block scalar ends at the start of the line after it, wherever that is.
    end_col = 0 if d == 0 and node.style in ("|", ">") else d + cols
    span = (a + lines, b + cols, c + lines, end_col)
    return YNode("scalar", span, key_span, node.value, node.raw, node.tag, node.style, node.entries, node.items)


class _Placement:
    """Subtrees moved into place: the previous document's, to reuse, and this one's."""

    def __init__(self, previous: Placed) -> None:
        self.previous = previous
        self.used: Placed = {}

    def place(self, node: YNode, chunk: str, indent: int, line: int) -> YNode:
        """`node` (from `chunk` at line 0) moved to `line`, reusing the last load's copy."""
        key = (chunk, indent, line)
        placed = self.previous.get(key)
        if placed is None:
            placed = node if line == 0 and indent == 0 else _copy(node, line, indent)
        self.used[key] = placed
        return placed


_ITEM = re.compile(r"^( *)- ", re.M)


def _items(
    text: str, start: int, end: int, line: int, placement: _Placement
) -> tuple[str, YNode] | None:
    """A top-level `key:` whose value is a block sequence, cut into items; None if it is not one.

    Each item is parsed with the items' indentation removed and put back in
    place; the key comes from parsing the header line alone.
    """
    header_end = text.find("\n", start, end)
    if header_end < 0 or not text.endswith("\n", start, end):
        return None
    head = _parse(text[start : header_end + 1])
    if head is None or head.kind != "map" or len(head.entries) != 1:
        return None
    (key, empty), = head.entries.items()
    if empty.kind != "scalar" or empty.value is not None or empty.raw:
        return None  # the value starts on the header line
    body = header_end + 1
    first = _ITEM.search(text, body, end)
    if first is None:
        return None
    for between in text[body : first.start()].split("\n"):
        if between.strip() and not between.lstrip().startswith("#"):
            return None  # something other than comments before the first item
    indent = len(first.group(1))
    starts = [m.start() for m in _ITEM.finditer(text, first.start(), end) if len(m.group(1)) == indent]
    at_line = line + 1 + text.count("\n", body, first.start())
    items: list[YNode] = []
    seq_span: Span | None = None
    for index, item in enumerate(starts):
        stop = starts[index + 1] if index + 1 < len(starts) else end
        piece = text[item:stop]
        tree = _parse(piece, indent)
        if tree is None or tree.kind != "seq" or len(tree.items) != 1 or tree.tag != _SEQ:
            return None
        items.append(placement.place(tree.items[0], piece, indent, at_line))
        moved = _moved(tree.span, at_line, indent)
        seq_span = moved if seq_span is None else (seq_span[0], seq_span[1], moved[2], moved[3])
        at_line += piece.count("\n")
    if seq_span is None:
        return None
    if indent:
        # The sequence, and whatever ends with its last item, runs to where the next
        # top-level token starts: column 0 of the line after the chunk.
        seq_span = (seq_span[0], seq_span[1], seq_span[2], 0)
        items[-1] = _reend(items[-1], seq_span[2], 0, indent)
    key_span = empty.key_span
    assert key_span is not None
    node = YNode("seq", seq_span, _moved(key_span, line, 0), None, "", _SEQ, None, {}, items)
    return key, node


def _reend(node: YNode, line: int, col: int, old_col: int) -> YNode:
    """`node` with every collection that ends at (line, old_col) ending at (line, col)."""
    a, b, c, d = node.span
    if node.kind == "scalar" or (c, d) != (line, old_col):
        return node
    if node.kind == "map":
        entries = dict(node.entries)
        if entries:
            last = next(reversed(entries))
            entries[last] = _reend(entries[last], line, col, old_col)
        return YNode("map", (a, b, line, col), node.key_span, None, "", node.tag, None, entries, [])
    items = list(node.items)
    if items:
        items[-1] = _reend(items[-1], line, col, old_col)
    return YNode("seq", (a, b, line, col), node.key_span, None, "", node.tag, None, {}, items)


def load_by_chunks(text: str, file: str) -> YamlDocument | None:
    """The document of `text` built from remembered chunks, or None to parse it whole."""
    placement = _Placement(_placed_by_file.get(file, {}))
    doc = _load(text, file, placement)
    if doc is not None:
        _placed_by_file[file] = placement.used  # keep the copies this document uses, and only those
        _placed_by_file.move_to_end(file)
        while len(_placed_by_file) > PLACED_FILES:
            _placed_by_file.popitem(last=False)
    return doc


def _load(text: str, file: str, placement: _Placement) -> YamlDocument | None:
    if len(text) < MIN_CHARS or any(c in text for c in _ODD_BREAKS) or _UNSAFE.search(text):
        return None
    starts = [m.start() for m in _TOP_KEY.finditer(text)]
    if not starts:
        return None
    starts[0] = 0  # leading comments and blank lines go with the first key
    entries: dict[str, YNode] = {}
    root_span: Span | None = None
    root_tag = _MAP
    line = 0
    previous = 0
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(text)
        line += text.count("\n", previous, start)
        previous = start
        split = None
        if end - start >= MIN_SPLIT_CHARS and index > 0:
            split = _items(text, start, end, line, placement)
        if split is not None:
            key, child = split
            first_line = child.key_span[0] if child.key_span else line
            moved = (first_line, 0, child.span[2], child.span[3])
        else:
            chunk = text[start:end]
            tree = _parse(chunk)
            if tree is None or tree.kind != "map" or len(tree.entries) != 1:
                return None
            (key, child), = tree.entries.items()
            child = placement.place(child, chunk, 0, line)
            if index == 0:
                root_tag = tree.tag
            moved = _moved(tree.span, line, 0)
        if key in entries:
            return None  # a duplicate key: the whole-file parse reports it
        entries[key] = child
        root_span = moved if root_span is None else (root_span[0], root_span[1], moved[2], moved[3])
    assert root_span is not None
    root = YNode("map", root_span, None, None, "", root_tag, None, entries, [])
    return YamlDocument(file, text, root, [])
