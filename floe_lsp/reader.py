"""The server's tolerant YAML reader: tree-sitter-yaml over the editor's current text.

libyaml (the engine's loader) gives the semantic tree, positions and
diagnostics, but only for text that parses. Completion, hover and the outline
must also work while a line is half typed, so they read the text with
tree-sitter, which keeps a tree for any input and re-parses an edited text
incrementally from the previous tree.

Where tree-sitter cannot place part of the text it makes an ERROR node, and
its recovery may flatten the structure around it. `repaired` blanks the lines
of the innermost errors (keeping a line the caller needs, such as the
cursor's) and re-parses until the tree is clean, so the rest of the document
keeps its shape. Blanking keeps every other line's bytes where they were.

Columns: tree-sitter counts UTF-8 bytes; everything this module returns counts
code points, as the engine does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import tree_sitter_yaml
from tree_sitter import Language, Node, Parser, Point, Tree

from floe_runtime.analysis.loader import MAX_DEPTH, block_depth_over

PathItem = str | int
KeyPath = tuple[PathItem, ...]

_LANGUAGE = Language(tree_sitter_yaml.language())
#: Rounds of blanking broken lines before the tree is taken as it is.
REPAIR_ROUNDS = 6
#: Lines tried for blanking in each round.
MAX_CANDIDATES = 4

PAIRS = ("block_mapping_pair", "flow_pair")
MAPPINGS = ("block_mapping", "flow_mapping")


def _common_prefix(a: bytes, b: bytes) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # memcmp of slices: fast even for large texts
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid :] == b[len(b) - mid :]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _point(data: bytes, offset: int) -> Point:
    row = data.count(b"\n", 0, offset)
    return Point(row, offset - (data.rfind(b"\n", 0, offset) + 1))


def _readable(data: bytes) -> bytes:
    """`data`, or nothing when it nests too deep for tree-sitter-yaml.

    tree-sitter-yaml 0.7 crashes the whole process (SIGSEGV) on ~250 block levels; the
    engine reports such a file (FLOE001, nested too deep) and the editor features see an
    empty document instead.
    """
    if len(data) < MAX_DEPTH:
        return data
    return b"" if block_depth_over(data.decode("utf-8", "replace")) else data


class Trees:
    """Trees of the documents an editor works on, each re-parsed incrementally on change.

    One instance belongs to one server; it keeps the last tree of at most `keep` documents.
    """

    def __init__(self, keep: int = 16) -> None:
        self._parser = Parser(_LANGUAGE)
        self._known: OrderedDict[str, tuple[bytes, Tree]] = OrderedDict()
        self.keep = keep

    def parse(self, key: str, data: bytes) -> Tree:
        """The tree of `data`, the current text of document `key`."""
        data = _readable(data)
        known = self._known.get(key)
        if known is not None and known[0] == data:
            self._known.move_to_end(key)
            return known[1]
        tree = self._parser.parse(data) if known is None else self.variant(known[0], known[1], data)
        self._known[key] = (data, tree)
        self._known.move_to_end(key)
        while len(self._known) > self.keep:
            self._known.popitem(last=False)
        return tree

    def parse_alone(self, data: bytes) -> Tree:
        """The tree of a text kept nowhere (one line, a probe)."""
        return self._parser.parse(_readable(data))

    def variant(self, old: bytes, tree: Tree, new: bytes) -> Tree:
        """The tree of `new`, re-parsed from `tree` (the tree of `old`, left unchanged)."""
        if _readable(new) is not new:
            return self._parser.parse(b"")
        start = _common_prefix(old, new)
        tail = _common_suffix(old, new, min(len(old), len(new)) - start)
        edited = tree.copy()
        edited.edit(
            start_byte=start,
            old_end_byte=len(old) - tail,
            new_end_byte=len(new) - tail,
            start_point=_point(old, start),
            old_end_point=_point(old, len(old) - tail),
            new_end_point=_point(new, len(new) - tail),
        )
        return self._parser.parse(new, edited)

    def repaired(self, data: bytes, tree: Tree, keep_row: int | None = None) -> tuple[bytes, Tree]:
        """`data` with the lines of syntax errors blanked (except `keep_row`), and its tree.

        An error node starts where tree-sitter lost its footing and ends where it
        gave up, so the line at fault is its first, its last or the next one: each
        is tried, and the blanking that leaves the least text in errors is kept.
        """
        score = _error_bytes(tree.root_node)
        for _ in range(REPAIR_ROUNDS):
            if score == (0, 0):
                break
            candidates: list[int] = []
            for node in innermost_errors(tree.root_node):
                for row in (node.start_point.row, node.end_point.row, node.end_point.row + 1):
                    if row != keep_row and row not in candidates:
                        candidates.append(row)
                if len(candidates) >= MAX_CANDIDATES:
                    break
            lines = data.split(b"\n")
            best: tuple[tuple[int, int], bytes, Tree] | None = None
            for row in candidates[:MAX_CANDIDATES]:
                if row >= len(lines) or not lines[row].strip():
                    continue
                trial = lines[:row] + [b" " * len(lines[row])] + lines[row + 1 :]
                blanked = b"\n".join(trial)
                trial_tree = self.variant(data, tree, blanked)
                trial_score = _error_bytes(trial_tree.root_node)
                if best is None or trial_score < best[0]:
                    best = (trial_score, blanked, trial_tree)
            if best is None or best[0] >= score:
                # Several faults at once: no one line helps alone, so try them together.
                rows = [r for r in candidates if r < len(lines) and lines[r].strip()]
                together = [b" " * len(x) if r in rows else x for r, x in enumerate(lines)]
                blanked = b"\n".join(together)
                trial_tree = self.variant(data, tree, blanked)
                if not rows or _error_bytes(trial_tree.root_node) >= score:
                    break
                best = (_error_bytes(trial_tree.root_node), blanked, trial_tree)
            score, data, tree = best
        return data, tree


def _error_bytes(root: Node) -> tuple[int, int]:
    """How much text sits in syntax errors: under outermost errors, then under innermost ones."""
    outer = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            outer += max(1, node.end_byte - node.start_byte)
        elif node.has_error:
            stack.extend(node.children)
    inner = sum(max(1, node.end_byte - node.start_byte) for node in innermost_errors(root))
    return outer, inner


def innermost_errors(root: Node) -> Iterator[Node]:
    """ERROR and MISSING nodes that hold no other error."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_missing:
            yield node
            continue
        inner = [child for child in node.children if child.has_error or child.is_missing]
        if node.is_error and not inner:
            yield node
        stack.extend(inner)


# ------------------------------------------------------------------ reading nodes


def column(line: bytes, byte_col: int) -> int:
    """A UTF-8 byte column of `line` as a code-point column."""
    if line.isascii():
        return byte_col
    return len(line[:byte_col].decode("utf-8", "replace"))


def text_of(node: Node | None) -> str:
    """A node's source text."""
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")


def scalar_text(node: Node | None) -> str | None:
    """A scalar node's text without its quotes; None when `node` is not a scalar."""
    if node is None:
        return None
    if node.type == "flow_node" and node.named_child_count:
        inner = node.named_children[-1]  # after an anchor or tag
        if inner.type in ("plain_scalar", "double_quote_scalar", "single_quote_scalar"):
            raw = text_of(inner)
            if inner.type != "plain_scalar" and len(raw) >= 2:
                return raw[1:-1]
            return raw
        return None
    if node.type in ("block_scalar",):
        return text_of(node)
    return None


def key_of(pair: Node) -> str | None:
    """The key of a mapping pair as text."""
    key = pair.child_by_field_name("key")
    return scalar_text(key) if key is not None else None


def value_of(pair: Node) -> Node | None:
    """The value node of a pair (None for `key:` with nothing after it)."""
    return pair.child_by_field_name("value")


def collection(node: Node | None) -> Node | None:
    """The mapping or sequence a value node holds, if any."""
    while node is not None and node.type in ("block_node", "flow_node"):
        inner = [c for c in node.named_children if c.type not in ("anchor", "tag")]
        node = inner[-1] if inner else None
    if node is not None and node.type in (*MAPPINGS, "block_sequence", "flow_sequence"):
        return node
    return None


def pairs(mapping: Node) -> Iterator[tuple[str, Node]]:
    """(key, pair) of each entry of a mapping node."""
    for child in mapping.named_children:
        if child.type in PAIRS:
            key = key_of(child)
            if key is not None:
                yield key, child


def items(sequence: Node) -> list[Node]:
    """The item nodes of a sequence (block items, or a flow sequence's values)."""
    kind = "block_sequence_item" if sequence.type == "block_sequence" else "flow_node"
    return [c for c in sequence.named_children if c.type in (kind, "flow_pair")]


def path_to(node: Node) -> KeyPath:
    """Keys and item indexes from the document root down to `node`."""
    out: list[PathItem] = []
    child, parent = node, node.parent
    while parent is not None:
        if parent.type in PAIRS and child == parent.child_by_field_name("value"):
            out.append(key_of(parent) or "")
        elif parent.type == "block_sequence_item" and parent.parent is not None:
            # Counted among its siblings: error recovery may put an item under an ERROR node.
            siblings = [c for c in parent.parent.named_children if c.type == parent.type]
            out.append(siblings.index(parent))
        elif parent.type == "flow_sequence" and child.type in ("flow_node", "flow_pair"):
            out.append(items(parent).index(child))
        child, parent = parent, parent.parent
    return tuple(reversed(out))


def enclosing_mappings(node: Node) -> list[Node]:
    """The mapping nodes holding `node`, innermost first."""
    out = []
    parent = node.parent
    while parent is not None:
        if parent.type in MAPPINGS:
            out.append(parent)
        parent = parent.parent
    return out


def top_mapping(tree: Tree) -> Node | None:
    """The document's top-level mapping, when it is one."""
    for document in tree.root_node.named_children:
        if document.type != "document":
            continue
        for body in document.named_children:
            found = collection(body)
            if found is not None:
                return found if found.type in MAPPINGS else None
    return None
