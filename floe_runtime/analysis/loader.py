"""Load YAML with a source map: every node knows the range of its key and of its value.

Composition uses libyaml through PyYAML's `CSafeLoader` (fast: about a
millisecond for a typical file). Plain scalars are read by YAML 1.2's core
schema, as yaml-language-server and the JSON Schema tools read them (`yes` and
`on` are strings, `0o17` is a number); timestamps stay strings (a config wants
`"2024-01-01"`, not a date), and mapping keys are always their source text.
Positions count lines as the LSP does (`\n`, `\r\n`, `\r`), not as libyaml does
(which also breaks at NEL, LS and PS, and skips a BOM). Aliases are expanded
under a node budget, so a "billion laughs" document gets a diagnostic instead
of a hang.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import yaml

from floe_runtime.analysis.diagnostics import Diagnostic, Position, Range, error
from floe_runtime.analysis.files import MAX_BYTES as MAX_BYTES  # the one size limit

try:  # libyaml is present in every wheel of PyYAML we install; fall back for odd builds.
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

#: Nodes a document may expand to once aliases are followed.
MAX_NODES = 200_000
#: How deeply mappings and sequences may nest (aliases followed). libyaml accepts up to
#: 1000, but every later step (models, checks, the server's replies) walks the tree, and
#: a config file nests a handful of levels.
MAX_DEPTH = 100

NodeKind = Literal["map", "seq", "scalar"]
#: Positions are kept as plain int tuples while loading (cheap to make); `YNode.range`
#: and `YNode.key_range` turn them into Range objects on demand.
Span = tuple[int, int, int, int]
PathItem = str | int
NodePath = tuple[PathItem, ...]

_TAG = "tag:yaml.org,2002:"
_constructor = yaml.constructor.SafeConstructor()  # only its scalar constructors are used


class _TooLarge(Exception):
    pass


class _TooDeep(Exception):
    def __init__(self, span: Span | None) -> None:
        super().__init__()
        self.span = span


@dataclass(slots=True, eq=False)
class YNode:
    """A YAML node with its position.

    `range` covers the value; `key_range` covers the key when the node is a
    mapping value. `entries` keeps every key of a mapping in order (first
    occurrence wins; duplicates are reported, not merged).
    """

    kind: NodeKind
    span: Span  # (start line, start character, end line, end character) of the value
    key_span: Span | None = None  # the same for the key, when a mapping holds the node
    value: Any = None  # scalars: the Python value
    raw: str = ""  # scalars: the source text of the value
    tag: str = ""
    style: str | None = None  # scalars: quote style, None for plain
    entries: dict[str, YNode] = field(default_factory=dict)
    items: list[YNode] = field(default_factory=list)

    @property
    def range(self) -> Range:
        """Where the value is."""
        a, b, c, d = self.span
        return Range(Position(a, b), Position(c, d))

    @property
    def key_range(self) -> Range | None:
        """Where the key is, when a mapping holds this node."""
        if self.key_span is None:
            return None
        a, b, c, d = self.key_span
        return Range(Position(a, b), Position(c, d))

    def to_python(self) -> Any:
        """Plain Python data (dicts, lists, scalars) for model validation."""
        if self.kind == "map":
            return {k: v.to_python() for k, v in self.entries.items()}
        if self.kind == "seq":
            return [v.to_python() for v in self.items]
        return self.value

    def get(self, key: PathItem) -> YNode | None:
        """The child under a mapping key or a sequence index, if there is one."""
        if self.kind == "map" and isinstance(key, str):
            return self.entries.get(key)
        if self.kind == "seq" and isinstance(key, int) and 0 <= key < len(self.items):
            return self.items[key]
        return None

    def walk(self, path: NodePath = ()) -> Iterator[tuple[NodePath, YNode]]:
        """Every node below (and including) this one, with its path."""
        yield path, self
        if self.kind == "map":
            for key, child in self.entries.items():
                yield from child.walk((*path, key))
        elif self.kind == "seq":
            for index, child in enumerate(self.items):
                yield from child.walk((*path, index))

    @property
    def full_range(self) -> Range:
        """Key and value together (the whole entry)."""
        if self.key_range is None:
            return self.range
        return Range(self.key_range.start, self.range.end)


@dataclass(slots=True, eq=False)
class YamlDocument:
    """A loaded file: its text, its node tree (None when empty or unparsable) and what went wrong."""

    file: str
    text: str
    root: YNode | None
    diagnostics: list[Diagnostic]
    _data: Any = field(default=None, repr=False)
    _has_data: bool = field(default=False, repr=False)
    _lines: list[str] | None = field(default=None, repr=False)
    _first_line: Range | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True when the text parsed (there may still be duplicate keys)."""
        return not any(d.code == "FLOE001" for d in self.diagnostics)

    def node(self, path: NodePath) -> YNode | None:
        """The node at a path of keys and indices."""
        node = self.root
        for item in path:
            if node is None:
                return None
            node = node.get(item)
        return node

    def data(self) -> Any:
        """The document as plain Python data (None for an empty document); built once."""
        if not self._has_data:
            self._data = None if self.root is None else self.root.to_python()
            self._has_data = True
        return self._data

    def lines(self) -> list[str]:
        """The text's lines as the LSP counts them; split once (checks ask per diagnostic)."""
        if self._lines is None:
            self._lines = text_lines(self.text)
        return self._lines

    def first_line_range(self) -> Range:
        """The first non-blank, non-comment line: where file-level diagnostics point."""
        if self._first_line is None:
            self._first_line = Range.of(0, 0)
            for number, line in enumerate(self.lines()):
                stripped = line.strip()
                if stripped and not stripped.startswith(("#", "---", "%")):
                    indent = len(line) - len(line.lstrip())
                    self._first_line = Range.of(number, indent, number, len(line.rstrip()))
                    break
        return self._first_line


def _event_span(event: Any) -> Span:
    start, end = event.start_mark, event.end_mark
    return (start.line, start.column, end.line, end.column)


def _as_range(span: Span) -> Range:
    return Range(Position(span[0], span[1]), Position(span[2], span[3]))


_STR = _TAG + "str"
_MAP = _TAG + "map"
_SEQ = _TAG + "seq"
_MERGE = _TAG + "merge"
_BOOL = _TAG + "bool"
_INT = _TAG + "int"
_FLOAT = _TAG + "float"
_NULL = _TAG + "null"
_NO_KEY = object()  # a mapping frame waiting for its next key


class _Frame:
    """A mapping or sequence being built, and (for a mapping) the key awaiting its value."""

    __slots__ = ("node", "key", "key_span", "drop", "merges", "anchor")

    def __init__(self, node: YNode, anchor: str | None) -> None:
        self.node = node
        self.key: object = _NO_KEY
        self.key_span: Span | None = None
        self.drop = False  # the pending value belongs to a duplicate or invalid key
        self.merges: list[YNode] = []
        self.anchor = anchor


class _Builder:
    """Builds YNodes straight from libyaml's event stream.

    Skipping PyYAML's composed node graph halves the cost of a load. Duplicate
    keys are reported, not merged; aliases share the anchored node (building stays
    linear) and `_check_size` bounds what sharing would unfold to.
    """

    def __init__(self, file: str, remap: _Remap | None = None) -> None:
        self.file = file
        self.remap = remap  # set when libyaml counts lines otherwise than the LSP
        self.text = ""
        self.size = 0
        self.diagnostics: list[Diagnostic] = []
        self.anchors: dict[str, YNode] = {}
        self.stack: list[_Frame] = []
        self.root: YNode | None = None
        self.documents = 0
        self.aliased = False  # only aliases can make a tree larger than its text

    def feed(self, text: str) -> YNode | None:
        # get_event is libyaml's C method; calling it directly skips yaml.parse's
        # generator, which costs two Python calls per event.
        self.text, self.size = text, len(text)
        parser: Any = _Loader(text)
        get_event, scalar = parser.get_event, self._scalar_event
        try:
            while True:
                event = get_event()
                kind = type(event)
                if kind is yaml.ScalarEvent:
                    scalar(event)
                elif event is None or kind is yaml.StreamEndEvent:
                    return self.root
                else:
                    self._event(event)
        finally:
            parser.dispose()

    def _event(self, event: Any) -> None:
        kind = type(event)
        if kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            is_map = kind is yaml.MappingStartEvent
            tag = event.tag or (_MAP if is_map else _SEQ)
            node = YNode("map" if is_map else "seq", _event_span(event), tag=tag)
            if len(self.stack) >= MAX_DEPTH:
                raise _TooDeep(node.span)
            self.stack.append(_Frame(node, event.anchor))
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            frame = self.stack.pop()
            node = frame.node
            end = event.end_mark
            if end.index >= self.size and self.remap is None:
                # A block ending with the text: libyaml puts the end on a line past the last
                # one when the text has no final line break.
                last = _position_at(self.text, self.size)
                node.span = (node.span[0], node.span[1], last.line, last.character)
            else:
                node.span = (node.span[0], node.span[1], end.line, end.column)
            for source in frame.merges:  # `<<: *base` fills keys not set here
                for key, child in source.entries.items():
                    node.entries.setdefault(key, child)
            if frame.anchor:
                self.anchors[frame.anchor] = node
            self._attach(node)
        elif kind is yaml.AliasEvent:
            self.aliased = True
            target = self.anchors.get(event.anchor)
            if target is None:
                raise yaml.MarkedYAMLError(
                    None, None, f"found undefined alias '{event.anchor}'", event.start_mark
                )
            self._attach(target, alias=True)
        elif kind is yaml.DocumentStartEvent:
            self.documents += 1
            if self.documents > 1:
                raise yaml.MarkedYAMLError(
                    "expected a single document in the stream",
                    None,
                    "but found another document",
                    event.start_mark,
                )

    def _scalar_event(self, event: Any) -> None:
        # The hot path of a load: one call per scalar, so locals and no helpers.
        value_text: str = event.value
        style = event.style
        explicit = event.tag
        sm, em = event.start_mark, event.end_mark
        rng = (sm.line, sm.column, em.line, em.column)
        stack = self.stack
        frame = stack[-1] if stack else None
        if frame is not None and frame.key is _NO_KEY and frame.node.kind == "map":
            # A key is its text; of the tags only merge matters, and the resolver gives
            # merge to the plain `<<` alone, so most keys need no resolving.
            if explicit is not None and explicit != "!":
                tag = explicit
            elif value_text == "<<" and not style and event.implicit[0]:
                tag = _MERGE
            elif event.anchor and not style and event.implicit[0]:
                tag = _resolve_plain(value_text)
            else:
                tag = _STR
            frame.key = value_text if tag != _MERGE else _MERGE
            frame.key_span = rng
            if event.anchor:
                self.anchors[event.anchor] = YNode(
                    "scalar", rng, None, value_text, value_text, tag, None, _NO_ENTRIES, _NO_ITEMS
                )
            return
        if explicit is not None and explicit != "!":
            tag = explicit
        elif not style and event.implicit[0]:  # plain: libyaml says None or ""
            tag = _resolve_plain(value_text)
        else:
            tag = _STR
        value = value_text if tag == _STR else _scalar_value(tag, value_text)
        node = YNode(
            "scalar", rng, None, value, value_text, tag, style or None, _NO_ENTRIES, _NO_ITEMS
        )
        if event.anchor:
            self.anchors[event.anchor] = node
        if frame is not None and not frame.drop and type(frame.key) is str:
            entries = frame.node.entries
            key = frame.key
            if key not in entries:  # the common case: a fresh key's scalar value
                node.key_span = frame.key_span
                entries[key] = node
                frame.key, frame.key_span = _NO_KEY, None
                return
        self._attach(node)

    def _attach(self, node: YNode, alias: bool = False) -> None:
        if not self.stack:
            self.root = node
            return
        frame = self.stack[-1]
        parent = frame.node
        if parent.kind == "seq":
            parent.items.append(replace(node, key_span=None) if alias and node.key_span else node)
            return
        if frame.key is _NO_KEY:
            # A mapping or sequence used as a key: consume it, report it, drop its value.
            self.diagnostics.append(
                error(self.file, node.range, "FLOE005", "a mapping key must be a plain string")
            )
            frame.key, frame.key_span, frame.drop = "", node.span, True
            return
        key, key_span = frame.key, frame.key_span
        frame.key, frame.key_span = _NO_KEY, None
        if frame.drop:
            frame.drop = False
            return
        if key is _MERGE:
            self._merge(frame, node)
            return
        assert isinstance(key, str)
        if key in parent.entries:
            first = parent.entries[key].key_range
            line = first.start.line + 1 if first else 0
            if first and self.remap is not None:
                line = self.remap.position(*first.start)[0] + 1
            self.diagnostics.append(
                error(
                    self.file,
                    _as_range(key_span or node.span),
                    "FLOE002",
                    f"duplicate key '{key}' (first defined on line {line}); the first one is used",
                    key=key,
                )
            )
            return
        parent.entries[key] = (
            replace(node, key_span=key_span) if alias else _with_key(node, key_span)
        )

    def _merge(self, frame: _Frame, value: YNode) -> None:
        sources = value.items if value.kind == "seq" else [value]
        for source in sources:
            if source.kind != "map":
                self.diagnostics.append(
                    error(self.file, source.range, "FLOE005", "'<<' merges only mappings")
                )
                continue
            frame.merges.append(source)


# Scalars share these (never mutated) instead of each allocating a dict and a list.
_NO_ENTRIES: dict[str, YNode] = {}
_NO_ITEMS: list[YNode] = []
# YAML 1.2 core schema (§10.3.2): the only plain scalars that are not strings.
_CORE_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_CORE_BOOL = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}
_CORE_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_CORE_FLOAT = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_NUMERIC_START = frozenset("0123456789+-.")


def _resolve_plain(value: str) -> str:
    """The tag YAML 1.2's core schema gives a plain scalar (PyYAML's resolver is YAML 1.1's)."""
    if value[:1] in _NUMERIC_START and value:
        if _CORE_INT.fullmatch(value):
            return _INT
        return _FLOAT if _CORE_FLOAT.fullmatch(value) else _STR
    if value in _CORE_NULL:
        return _NULL
    return _BOOL if value in _CORE_BOOL else _STR


def scalar_value(text: str) -> Any:
    """The value a plain scalar written as `text` has (YAML 1.2 core schema)."""
    return _scalar_value(_resolve_plain(text), text)


def _with_key(node: YNode, key_span: Span | None) -> YNode:
    node.key_span = key_span
    return node


def _scalar_value(tag: str, text: str) -> Any:
    """The Python value of a resolved scalar; timestamps, unknown tags and misfits stay text."""
    if tag == _STR or not tag.startswith(_TAG) or tag == _TAG + "timestamp":
        return text
    if tag == _BOOL:
        return _CORE_BOOL.get(text, text)
    if tag == _NULL:
        return None
    if tag == _INT:
        if text.isdigit() and text.isascii():  # the common case
            return int(text)
        if _CORE_INT.fullmatch(text):
            if text.startswith(("0o", "0x")):
                return int(text[2:], 8 if text[1] == "o" else 16)
            return int(text)
    if tag == _FLOAT and _CORE_FLOAT.fullmatch(text):
        special = text.lstrip("+-").lower()
        if special in (".inf", ".nan"):
            return float(text.replace(".", "", 1))
        return float(text)
    try:  # an explicit tag on another form (`!!int 1_000`, `!!binary`): PyYAML's constructors
        return _constructor.construct_object(yaml.ScalarNode(tag, text), deep=True)
    except (yaml.YAMLError, ValueError):
        return text


def load_yaml(text: str, file: str) -> YamlDocument:
    """Parse `text` (the contents of `file`) into a source-mapped document.

    Never raises for bad input: syntax errors, duplicate keys, oversized files
    and alias bombs become diagnostics.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        message = (
            f"file is {size / 1048576:.1f} MiB, over the {MAX_BYTES // 1048576} MiB limit "
            "for a config file"
        )
        return YamlDocument(file, text, None, [error(file, Range.of(0, 0), "FLOE001", message)])
    return load_whole(text, file)


def load_whole(text: str, file: str) -> YamlDocument:
    """Parse all of `text` in one pass."""
    remap = _Remap(text) if _libyaml_counts_otherwise(text) else None
    builder = _Builder(file, remap)
    try:
        root = builder.feed(text)
    except yaml.MarkedYAMLError as exc:
        return YamlDocument(file, text, None, [_syntax_error(file, text, exc)])
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        return YamlDocument(file, text, None, [_reader_error(file, text, exc)])
    except UnicodeEncodeError as exc:  # a lone surrogate (only an editor can send one)
        at = _position_at(text, exc.start)
        rng = Range(at, _position_at(text, exc.end))
        message = "YAML syntax error: the text is not valid Unicode (a lone surrogate)"
        return YamlDocument(file, text, None, [error(file, rng, "FLOE001", message)])
    except yaml.YAMLError as exc:  # other unmarked errors: still one clear diagnostic
        return YamlDocument(file, text, None, [error(file, Range.of(0, 0), "FLOE001", str(exc))])
    except _TooDeep as exc:
        return _too_deep(file, text, exc.span, remap)
    diagnostics = builder.diagnostics
    if remap is not None:
        if root is not None:
            remap.tree(root)
        diagnostics = [remap.diagnostic(d) for d in diagnostics]
    if root is None:
        return YamlDocument(file, text, None, diagnostics)
    try:
        if builder.aliased:
            _check_size(root)
    except _TooLarge:
        message = (
            f"document expands to more than {MAX_NODES} nodes (aliases referring to aliases?); "
            "refusing to load it"
        )
        return YamlDocument(file, text, None, [error(file, Range.of(0, 0), "FLOE001", message)])
    except _TooDeep:
        message = (
            f"document nests deeper than {MAX_DEPTH} levels once aliases are followed; "
            "refusing to load it"
        )
        return YamlDocument(file, text, None, [error(file, Range.of(0, 0), "FLOE001", message)])
    return YamlDocument(file, text, root, diagnostics)


def _too_deep(file: str, text: str, span: Span | None, remap: _Remap | None) -> YamlDocument:
    if span is None:
        rng = Range.of(0, 0)
    else:
        line, column = remap.position(span[0], span[1]) if remap is not None else span[:2]
        rng = Range.of(line, column, line, column + 1)
    message = (
        f"mappings and lists nest deeper than {MAX_DEPTH} levels here; "
        "refusing to load the document"
    )
    return YamlDocument(file, text, None, [error(file, rng, "FLOE001", message)])


def _collection_id(node: YNode) -> int:
    # Aliased copies of a node share its entries or items: one id per unfolded subtree.
    return id(node.entries) if node.kind == "map" else id(node.items)


def _check_size(root: YNode) -> None:
    """Raise _TooLarge when the tree, with shared (aliased) nodes unfolded, exceeds MAX_NODES,
    and _TooDeep when it then nests deeper than MAX_DEPTH.

    Iterative, with each shared subtree measured once: a chain of aliases can make a
    tree far deeper than its text (and than Python's recursion limit).
    """
    known: dict[int, tuple[int, int]] = {}  # collection id -> (nodes, depth)
    stack: list[tuple[YNode, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if node.kind == "scalar" or _collection_id(node) in known:
            continue
        children = node.entries.values() if node.kind == "map" else node.items
        if not children_done:
            stack.append((node, True))
            stack.extend((child, False) for child in children if child.kind != "scalar")
            continue
        size, depth = 1, 1
        for child in children:
            if child.kind == "scalar":
                size += 1
                continue
            child_size, child_depth = known[_collection_id(child)]
            size += child_size
            depth = max(depth, child_depth + 1)
        if size > MAX_NODES:
            raise _TooLarge
        if depth > MAX_DEPTH:
            raise _TooDeep(None)
        known[_collection_id(node)] = (size, depth)


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# libyaml also ends a line at NEL, LS and PS (YAML 1.1), and does not count a leading BOM.
_LIBYAML_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def text_lines(text: str) -> list[str]:
    """The lines of `text` as the LSP counts them (`\\n`, `\\r\\n`, `\\r`), without their breaks.

    A text ending in a line break has a last, empty line (the cursor can stand there).
    """
    if "\r" not in text:
        return text.split("\n")
    return _LINE_BREAK.split(text)


def block_depth_over(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether the block indentation of `text` nests more than `limit` levels (each deeper
    indentation and each `- ` opening one), as a reader that works without libyaml sees it.

    For the editor's tolerant reader, which must not be handed such a text (tree-sitter-yaml
    0.7 crashes the process on ~250 levels). Any level past `limit` stands at a column past
    `limit` or behind dashes, so most texts are answered by one regular-expression search.
    """
    if re.search(rf"(?m)^[ \-]{{{limit},}}", text) is None:
        return False
    stack: list[int] = []
    for line in text_lines(text):
        content = line.lstrip(" ")
        if not content or content.startswith("#"):
            continue
        column = len(line) - len(content)
        while stack and stack[-1] >= column:
            stack.pop()
        stack.append(column)
        while content[:2] == "- ":  # `- - x`: a sequence inside a sequence item
            rest = content[2:].lstrip(" ")
            column += len(content) - len(rest)
            stack.append(column)
            content = rest
        if len(stack) > limit:
            return True
    return False


def _position_at(text: str, index: int) -> Position:
    """The position of a character index of `text`."""
    index = max(0, min(index, len(text)))
    line = (
        text.count("\n", 0, index) if "\r" not in text else len(_LINE_BREAK.findall(text, 0, index))
    )
    start = max(text.rfind("\n", 0, index), text.rfind("\r", 0, index)) + 1
    return Position(line, index - start)


def _libyaml_counts_otherwise(text: str) -> bool:
    """Whether libyaml's line and column numbers differ from the LSP's for this text (rare)."""
    return text[:1] == "\ufeff" or "\x85" in text or "\u2028" in text or "\u2029" in text


class _Remap:
    """Turns libyaml's (line, column) into the LSP's, for texts where the two count otherwise."""

    def __init__(self, text: str) -> None:
        self.size = len(text)
        bom = 1 if text[:1] == "\ufeff" else 0
        self.libyaml_starts = [bom] + [m.end() for m in _LIBYAML_BREAK.finditer(text)]
        self.lsp_starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]

    def position(self, line: int, column: int) -> tuple[int, int]:
        starts = self.libyaml_starts
        index = min(starts[min(line, len(starts) - 1)] + column, self.size)
        lsp_line = bisect_right(self.lsp_starts, index) - 1
        return lsp_line, index - self.lsp_starts[lsp_line]

    def span(self, span: Span) -> Span:
        return (*self.position(span[0], span[1]), *self.position(span[2], span[3]))

    def range(self, rng: Range) -> Range:
        a, b = self.position(*rng.start)
        c, d = self.position(*rng.end)
        return Range(Position(a, b), Position(c, d))

    def tree(self, root: YNode) -> None:
        seen: set[int] = set()
        stack = [root]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            node.span = self.span(node.span)
            if node.key_span is not None:
                node.key_span = self.span(node.key_span)
            stack.extend(node.entries.values())
            stack.extend(node.items)

    def diagnostic(self, diag: Diagnostic) -> Diagnostic:
        return replace(diag, range=self.range(diag.range))


def _clamped(lines: list[str], pos: Position) -> Position:
    """`pos` moved inside the text (a mark may stand past the last line)."""
    if pos.line >= len(lines):
        return Position(len(lines) - 1, len(lines[-1]))
    return Position(pos.line, min(pos.character, len(lines[pos.line])))


# After the mark only blanks and comments: the parser ran into the end of the text.
_ONLY_TRAILER = re.compile(r"(?:\s|#[^\r\n]*)*")


def _syntax_error(file: str, text: str, exc: yaml.MarkedYAMLError) -> Diagnostic:
    problem_mark, context_mark = exc.problem_mark, exc.context_mark
    mark = problem_mark or context_mark
    if context_mark is not None and problem_mark is not None:
        # libyaml finds a key without ':' on the line after it, and an unclosed quote or
        # bracket at the end of the text; the line to fix is where the construct began.
        at_end = _ONLY_TRAILER.fullmatch(text, problem_mark.index + (text[:1] == "\ufeff"))
        if context_mark.index < problem_mark.index and (
            exc.problem == "could not find expected ':'" or at_end
        ):
            mark = context_mark
    line, column = (mark.line, mark.column) if mark is not None else (0, 0)
    if _libyaml_counts_otherwise(text):
        line, column = _Remap(text).position(line, column)
    lines = text_lines(text)
    start = _clamped(lines, Position(line, column))
    # Point at the offending token: to the end of the line's content from the mark.
    content = lines[start.line]
    end = max(start.character, len(content.rstrip()))
    if end == start.character and start.character < len(content):
        end = start.character + 1
    problem = exc.problem or "invalid YAML"
    message = f"YAML syntax error: {problem}"
    if exc.context:
        message += f" ({exc.context}"
        if mark is context_mark and problem_mark is not None:
            message += " that starts here"
        message += ")"
    return error(file, Range.of(start.line, start.character, start.line, end), "FLOE001", message)


def _reader_error(file: str, text: str, exc: yaml.reader.ReaderError) -> Diagnostic:
    # libyaml reports the offset in the UTF-8 bytes it read.
    index = len(text.encode("utf-8")[: exc.position].decode("utf-8", "ignore"))
    at = _position_at(text, index)
    rng = Range(at, Position(at.line, at.character + 1))
    character = exc.character if isinstance(exc.character, int) else ord(str(exc.character))
    message = f"YAML syntax error: character #x{character:04x} is not allowed ({exc.reason})"
    return error(file, rng, "FLOE001", message)
