"""Load YAML with a source map: every node knows the range of its key and of its value.

Composition uses libyaml through PyYAML's `CSafeLoader` (fast: about a
millisecond for a typical file). Scalars become plain Python values, but
timestamps stay strings (a config wants `"2024-01-01"`, not a date), and
mapping keys are always their source text. Aliases are expanded under a node
budget, so a "billion laughs" document gets a diagnostic instead of a hang.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import yaml

from floe_runtime.analysis.diagnostics import Diagnostic, Position, Range, error

try:  # libyaml is present in every wheel of PyYAML we install; fall back for odd builds.
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

#: Files larger than this are refused (a config file is kilobytes).
MAX_BYTES = 5 * 1024 * 1024
#: Nodes a document may expand to once aliases are followed.
MAX_NODES = 200_000

NodeKind = Literal["map", "seq", "scalar"]
PathItem = str | int
NodePath = tuple[PathItem, ...]

_TAG = "tag:yaml.org,2002:"
_constructor = yaml.SafeLoader("")  # only its scalar constructors are used


class _TooLarge(Exception):
    pass


@dataclass(slots=True, eq=False)
class YNode:
    """A YAML node with its position.

    `range` covers the value; `key_range` covers the key when the node is a
    mapping value. `entries` keeps every key of a mapping in order (first
    occurrence wins; duplicates are reported, not merged).
    """

    kind: NodeKind
    range: Range
    key_range: Range | None = None
    value: Any = None  # scalars: the Python value
    raw: str = ""  # scalars: the source text of the value
    tag: str = ""
    style: str | None = None  # scalars: quote style, None for plain
    entries: dict[str, YNode] = field(default_factory=dict)
    items: list[YNode] = field(default_factory=list)

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
        """The document as plain Python data (None for an empty document)."""
        return None if self.root is None else self.root.to_python()

    def first_line_range(self) -> Range:
        """The first non-blank, non-comment line: where file-level diagnostics point."""
        for number, line in enumerate(self.text.splitlines()):
            stripped = line.strip()
            if stripped and not stripped.startswith(("#", "---", "%")):
                indent = len(line) - len(line.lstrip())
                return Range.of(number, indent, number, len(line.rstrip()))
        return Range.of(0, 0)


def _range(node: yaml.Node) -> Range:
    start, end = node.start_mark, node.end_mark
    return Range(Position(start.line, start.column), Position(end.line, end.column))


class _Builder:
    """Turns composed PyYAML nodes into YNodes, reporting duplicates and bounding expansion."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.diagnostics: list[Diagnostic] = []
        # An alias is the same composed node seen again: build it once and share it,
        # so building stays linear; `expanded_size` bounds what sharing would unfold to.
        self._built: dict[int, YNode] = {}

    def build(self, node: yaml.Node, key_range: Range | None = None) -> YNode:
        seen = self._built.get(id(node))
        if seen is not None:
            return replace(seen, key_range=key_range)
        out = self._build(node, key_range)
        self._built[id(node)] = out
        return out

    def _build(self, node: yaml.Node, key_range: Range | None) -> YNode:
        rng = _range(node)
        if isinstance(node, yaml.MappingNode):
            out = YNode("map", rng, key_range, tag=node.tag)
            self._fill_mapping(out, node)
            return out
        if isinstance(node, yaml.SequenceNode):
            out = YNode("seq", rng, key_range, tag=node.tag)
            out.items = [self.build(child) for child in node.value]
            return out
        return YNode(
            "scalar",
            rng,
            key_range,
            value=self._scalar(node),
            raw=str(node.value),
            tag=node.tag,
            style=getattr(node, "style", None),
        )

    def _scalar(self, node: yaml.Node) -> Any:
        tag = node.tag
        if tag in (_TAG + "str", _TAG + "timestamp") or not tag.startswith(_TAG):
            return node.value
        try:
            return _constructor.construct_object(node, deep=True)
        except yaml.YAMLError:
            return node.value

    def _fill_mapping(self, out: YNode, node: yaml.MappingNode) -> None:
        merged: list[YNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merged.extend(self._merge_sources(value_node))
                continue
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else ""
            key_range = _range(key_node)
            if not isinstance(key_node, yaml.ScalarNode):
                self.diagnostics.append(
                    error(self.file, key_range, "FLOE005", "a mapping key must be a plain string")
                )
                continue
            if key in out.entries:
                first = out.entries[key].key_range
                line = first.start.line + 1 if first else 0
                self.diagnostics.append(
                    error(
                        self.file,
                        key_range,
                        "FLOE002",
                        f"duplicate key '{key}' (first defined on line {line}); "
                        "the first one is used",
                        key=key,
                    )
                )
                continue
            out.entries[key] = self.build(value_node, key_range)
        # `<<: *base` merges keys that the mapping does not set itself.
        for source in merged:
            for key, child in source.entries.items():
                out.entries.setdefault(key, child)

    def _merge_sources(self, value: yaml.Node) -> list[YNode]:
        nodes = value.value if isinstance(value, yaml.SequenceNode) else [value]
        sources = []
        for item in nodes:
            built = self.build(item)
            if built.kind != "map":
                self.diagnostics.append(
                    error(self.file, built.range, "FLOE005", "'<<' merges only mappings")
                )
                continue
            sources.append(built)
        return sources


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
    try:
        composed = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        return YamlDocument(file, text, None, [_syntax_error(file, text, exc)])
    except yaml.YAMLError as exc:  # unmarked errors (encoding): still one clear diagnostic
        return YamlDocument(file, text, None, [error(file, Range.of(0, 0), "FLOE001", str(exc))])
    if composed is None:
        return YamlDocument(file, text, None, [])
    builder = _Builder(file)
    try:
        root = builder.build(composed)
        _check_size(root)
    except (_TooLarge, RecursionError):
        message = (
            f"document expands to more than {MAX_NODES} nodes (aliases referring to aliases?); "
            "refusing to load it"
        )
        return YamlDocument(file, text, None, [error(file, Range.of(0, 0), "FLOE001", message)])
    return YamlDocument(file, text, root, builder.diagnostics)


def _check_size(root: YNode) -> None:
    """Raise _TooLarge when the tree, with shared (aliased) nodes unfolded, exceeds MAX_NODES."""
    sizes: dict[int, int] = {}

    def size(node: YNode) -> int:
        known = sizes.get(id(node.entries) if node.kind == "map" else id(node.items))
        if known is not None and node.kind != "scalar":
            return known
        total = 1
        for child in node.entries.values() if node.kind == "map" else node.items:
            total += size(child)
            if total > MAX_NODES:
                raise _TooLarge
        if node.kind != "scalar":
            sizes[id(node.entries) if node.kind == "map" else id(node.items)] = total
        return total

    size(root)


def _syntax_error(file: str, text: str, exc: yaml.MarkedYAMLError) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line, mark.column) if mark is not None else (0, 0)
    lines = text.splitlines()
    # Point at the offending token: to the end of the line's content from the mark.
    end = column
    if line < len(lines):
        content = lines[line]
        end = max(column, len(content.rstrip()))
        if end == column and column < len(content):
            end = column + 1
    problem = exc.problem or "invalid YAML"
    message = f"YAML syntax error: {problem}"
    if exc.context:
        message += f" ({exc.context})"
    return error(file, Range.of(line, column, line, end), "FLOE001", message)
