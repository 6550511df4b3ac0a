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
    PathItem,
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
    for `value`, `path` ends with the key (or item index) whose value is at the
    cursor. `start`/`end` delimit the token under the cursor (code points on
    `line`, inside its quotes); `span` is what a completion edit replaces: the
    token, or from the cursor to the end of a value the cursor stands before.
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
    flow: bool = False  # inside `{...}` or `[...]`
    span: tuple[int, int] | None = None  # None: (start, end)
    lead: str = ""  # what inserted text needs before it: a space after a bare `:` or `-`
    colon: bool = False  # key cursors: the key already has its `:`
    quote: str = ""  # value cursors inside quotes: the quote character
    outer: tuple[int, int] | None = None  # the quoted value with its quotes

    @property
    def key(self) -> str | None:
        """The key whose value is at the cursor (value cursors), or the key hovered."""
        if self.kind == "value" and self.path and isinstance(self.path[-1], str):
            return self.path[-1]
        if self.kind == "key":
            return self.text or None
        return None

    @property
    def edit_span(self) -> tuple[int, int]:
        """The columns a completion edit replaces (always holding the cursor)."""
        return self.span if self.span is not None else (self.start, self.end)


def _none(line: int, char: int) -> Cursor:
    return Cursor("none", (), line, char, char, "", "")


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


# ------------------------------------------------------------------ flow collections
#: Characters that end a plain scalar inside a flow collection.
_FLOW_INDICATORS = ",[]{}"


@dataclass
class _Frame:
    """A flow collection open on the cursor's line."""

    kind: Literal["map", "seq"]
    step: PathItem | None  # its key or index in the collection holding it; None: the outermost
    entries: dict[str, Any] = field(default_factory=dict)  # map: key -> shallow value
    key: str | None = None  # map: the key of the entry being read, once its `:` is seen
    pending: str | None = None  # map: a scalar in key position, until its `:` or the entry's end
    index: int = 0  # seq: the item being read


@dataclass
class _FlowAt:
    """The cursor's place in the flow collections of its line."""

    frames: list[_Frame]  # open at the cursor, outermost first
    kind: Literal["key", "value"]
    start: int  # the token at the cursor (inside its quotes)
    end: int
    text: str
    span: tuple[int, int]
    colon: bool = False
    quote: str = ""
    outer: tuple[int, int] | None = None
    member: PathItem | None = None  # value cursors: the key or index whose value it is
    replaced: str = ""  # an insertion point before a scalar: that scalar (the edit replaces it)


def _is_indicator_colon(raw: str, i: int, after_quote: bool) -> bool:
    """A `:` separating a key from its value (flow context: before a blank or an indicator)."""
    nxt = raw[i + 1 : i + 2]
    return after_quote or nxt in ("", " ", "\t") or nxt in _FLOW_INDICATORS


def _flow_scalar(raw: str, i: int) -> tuple[int, int, int, str]:
    """The scalar starting at `i`: (content start, content end, end with quotes, quote)."""
    quote = raw[i]
    if quote in "\"'":
        j = i + 1
        while j < len(raw):
            if raw[j] == "\\" and quote == '"':
                j += 2
                continue
            if raw[j] == quote:
                if quote == "'" and raw[j + 1 : j + 2] == "'":  # '' is a quote inside
                    j += 2
                    continue
                return i + 1, j, j + 1, quote
            j += 1
        return i + 1, len(raw), len(raw), quote
    j = i
    while j < len(raw):
        c = raw[j]
        if c in _FLOW_INDICATORS or (c == ":" and _is_indicator_colon(raw, j, False)):
            break
        if c == "#" and raw[j - 1] in " \t":
            break
        j += 1
    end = len(raw[i:j].rstrip()) + i
    return i, end, end, ""


def _flow_at(raw: str, begin: int, char: int) -> _FlowAt | None:
    """Read the flow collection opening at `begin` and place the cursor (`char`) in it.

    The whole line is read, so the entries after the cursor count as present and
    as siblings; a collection still open at the end of the line is taken as it is
    (half typed). None when the cursor is past the collection's end or in a comment.
    """
    stack: list[_Frame] = []
    found: _FlowAt | None = None
    replace_next = False  # the cursor stands in the blank right before the next scalar
    comment: int | None = None

    def place(start: int, end: int, text: str, colon: bool = False) -> _FlowAt | None:
        if not stack:
            return None
        top = stack[-1]
        if top.kind == "seq":
            member: PathItem | None = top.index
        elif top.key is not None:
            member = top.key
        else:
            return _FlowAt(list(stack), "key", start, end, text, (start, end), colon)
        return _FlowAt(list(stack), "value", start, end, text, (start, end), member=member)

    i, n = begin, len(raw)
    while i < n:
        c = raw[i]
        if c in " \t":
            i += 1
            continue
        if found is None and not replace_next and i > char:
            # The cursor is in the blank before `c`: an insertion point, which also
            # replaces the scalar it stands before.
            if c in "\"'" or not (c in _FLOW_INDICATORS or c in ":#"):
                replace_next = True
            else:
                found = place(char, char, "")
        if c == "#" and raw[i - 1] in " \t":
            comment = i
            break
        if c in _FLOW_INDICATORS or (c == ":" and _is_indicator_colon(raw, i, False)):
            if found is None and not replace_next and i == char:
                found = place(char, char, "")
            top = stack[-1] if stack else None
            if c in "{[":
                step: PathItem | None = None
                if top is not None and top.kind == "seq":
                    step = top.index
                elif top is not None:
                    step = top.key if top.key is not None else (top.pending or "")
                    top.key, top.pending = step, None
                    top.entries[step] = {} if c == "{" else []
                stack.append(_Frame("map" if c == "{" else "seq", step))
            elif top is None:
                break
            elif c in "}]":
                _end_entry(top)
                stack.pop()
                if not stack:
                    break
            elif c == ",":
                _end_entry(top)
            elif top.kind == "map" and top.key is None:
                top.key, top.pending = top.pending or "", None
                top.entries.setdefault(top.key, None)  # `{path: }`: present, value to come
            i += 1
            continue
        start, end, outer_end, quote = _flow_scalar(raw, i)
        text = raw[start:end]
        top = stack[-1] if stack else None
        colon = False
        if top is not None and top.kind == "map" and top.key is None:
            after = outer_end
            while after < n and raw[after] in " \t":
                after += 1
            colon = raw[after : after + 1] == ":" and _is_indicator_colon(raw, after, bool(quote))
            top.pending = text
        elif top is not None and top.kind == "map" and top.key is not None:
            top.entries[top.key] = scalar(text) if not quote else text
        if found is None and (replace_next or i <= char <= outer_end):
            inside = bool(quote) and start <= char <= max(end, start) and not replace_next
            if replace_next:  # before the scalar: insert at the cursor, replacing it
                found = place(char, char, "", colon)
                if found is not None:
                    found.span, found.replaced = (char, outer_end), text
            elif inside or not quote:
                found = place(start, end, text, colon)
                if found is not None and quote:
                    found.quote, found.outer = quote, (i, outer_end)
            else:  # on a quote mark: the whole quoted scalar
                found = place(i, outer_end, raw[i:outer_end], colon)
            replace_next = False
        i = outer_end if outer_end > i else i + 1
    if found is None and stack and (comment is None or char <= comment):
        found = place(char, char, "")  # after everything read of a collection still open
    return found


def _end_entry(frame: _Frame) -> None:
    """A `,` or the closing bracket: the entry being read is complete."""
    if frame.kind == "seq":
        frame.index += 1
        return
    if frame.key is None and frame.pending is not None:
        frame.entries.setdefault(frame.pending, None)  # `{a, b}`: keys without values
    frame.key = frame.pending = None


def _flow_cursor(
    raw: str, line: int, char: int, begin: int, base: KeyPath, data: dict[str, Any]
) -> Cursor:
    """The cursor inside the flow collection opening at `begin`, which stands at `base`."""
    at = _flow_at(raw, begin, char)
    if at is None:
        return _none(line, char)
    steps = tuple(f.step for f in at.frames[1:] if f.step is not None)
    holder = (*base, *steps)
    innermost = at.frames[-1]
    own = at.member if at.kind == "value" else at.text
    for depth, frame in enumerate(at.frames):
        if frame.kind != "map":
            continue
        container = _walk(data, (*base, *steps[:depth]))
        if isinstance(container, dict):
            for key, value in frame.entries.items():
                if frame is not innermost or key != own:
                    container.setdefault(key, value)
    present: set[str] = set()
    if at.kind == "key" and innermost.kind == "map":
        present = set(innermost.entries) - {at.text, at.replaced}
    path = holder if at.kind == "key" or at.member is None else (*holder, at.member)
    lead = " " if at.kind == "value" and not at.quote and raw[: at.span[0]].endswith(":") else ""
    return Cursor(
        at.kind,
        path,
        line,
        at.start,
        at.end,
        at.text,
        raw[at.start : char] if char >= at.start else "",
        data=data,
        present=present,
        flow=True,
        span=at.span,
        lead=lead,
        colon=at.colon,
        quote=at.quote,
        outer=at.outer,
    )


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


def _in_flow(tree: Tree, line: int, at: int) -> bool:
    """(line, byte column `at`) lies inside a flow collection opened on an earlier line."""
    node: Node | None = tree.root_node.descendant_for_point_range((line, at), (line, at))
    while node is not None:
        if node.type in ("flow_mapping", "flow_sequence") and node.start_point.row < line:
            return True
        node = node.parent
    return False


def _where(
    trees: Trees, text: str, doc_key: str, line: int, prefix: str, rest: str, whole: bool
) -> tuple[KeyPath, dict[str, Any], set[str]] | None:
    """Path of the mapping the cursor's line belongs to, the data on the way, the keys present.

    None for a line inside a flow collection opened on an earlier line (such
    collections are read only when they open on the cursor's line), and where
    a key would turn a document without syntax errors into one with an error.

    `whole`: the cursor's line is a complete `key: value` that parses on its own. Then,
    when the document's current tree has no syntax error, the line's own pair in that
    tree is where the cursor is; otherwise the line is replaced by a placeholder key and
    the document re-read around it (blanking broken lines elsewhere).
    """
    data = text.encode("utf-8")
    tree = trees.parse(doc_key, data) if doc_key else trees.parse_alone(data)
    at = len(prefix.encode("utf-8"))
    if _in_flow(tree, line, at):
        return None
    node = _pair_at(tree, line, at, strict=True) if whole and not tree.root_node.has_error else None
    if node is not None:  # the line's own pair, in the tree of the text as it is
        mapping = node.parent
        assert mapping is not None
        present = {key for key, pair in pairs(mapping) if pair != node}
        return path_to(mapping), _data(enclosing_mappings(node), node), present
    lines = text.split("\n")
    lines[line] = prefix + PLACEHOLDER + ":" + rest
    probe = "\n".join(lines).encode("utf-8")
    probe_tree = trees.variant(data, tree, probe)
    if probe_tree.root_node.has_error and not tree.root_node.has_error:
        return None  # a key here would break a sound document (an indentation no mapping has)
    probe, probe_tree = trees.repaired(probe, probe_tree, keep_row=line)
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
        return _none(line, char)
    raw = raws[line].rstrip("\r")
    char = min(char, len(raw))
    if not raw.strip():
        raw = raw[:char]  # a blank line: the key goes where the cursor is
    match = _PREFIX.match(raw)
    assert match is not None
    key_col = match.end()
    if char < key_col:
        return _none(line, char)  # in the indentation or the dashes of a line that has content
    read = _read_line(trees, raw, key_col)
    if read.comment is not None and read.comment < char:
        return _none(line, char)
    # The line's value stays when it parses: lines below may belong to it.
    rest = raw[read.colon_end :] if read.key is not None and not read.broken else ""
    whole = read.key is not None and not read.broken
    dash = raw[:key_col].endswith("-")  # a bare `-` ending the line: its item needs a space
    prefix = raw[:key_col] + (" " if dash else "")
    found = _where(trees, text, doc_key, line, prefix, rest, whole)
    if found is None:
        return _none(line, char)
    container, data, present = found
    if read.key is None and raw[key_col : key_col + 1] in ("{", "["):
        # The line's content is a flow collection (`- {type: dbt}`): it is the
        # mapping or sequence the placeholder stood for.
        if char == key_col:
            return _none(line, char)
        return _flow_cursor(raw, line, char, key_col, container, data)
    if read.key is None or char <= read.key_end:
        start, end = _token(raw, key_col, char)
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
            lead=" " if dash else "",
            colon=read.key is not None,
        )
    key = read.key
    value_start = read.colon_end
    while value_start < len(raw) and raw[value_start] in " \t":
        value_start += 1
    if raw[value_start : value_start + 1] in ("{", "[") and char > value_start:
        return _flow_cursor(raw, line, char, value_start, (*container, key), data)
    end = len((raw if read.comment is None else raw[: read.comment]).rstrip())
    end = value_end = max(end, value_start)
    start, quote, outer = value_start, "", None
    token = raw[start:end]
    if token[:1] in ("'", '"'):
        closed = len(token) >= 2 and token[-1] == token[0]
        outer = (start, end)
        quote, start, end = token[0], start + 1, end - 1 if closed else end
        token = raw[start:end]
        if not start <= char <= end:  # on a quote mark: the edit replaces the quoted value
            quote, outer = "", None
    if char < start:  # before the value: an insertion point that replaces the value
        return Cursor(
            "value",
            (*container, key),
            line,
            char,
            char,
            "",
            "",
            data=data,
            span=(char, value_end),
            lead=" " if raw[:char].endswith(":") else "",
        )
    span = (start, max(end, char)) if quote else (value_start, max(end, char))
    return Cursor(
        "value",
        (*container, key),
        line,
        start,
        end,
        token,
        raw[start:char],
        data=data,
        span=span,
        lead=" " if raw[: span[0]].endswith(":") else "",
        quote=quote,
        outer=outer,
    )
