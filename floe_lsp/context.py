"""What is at the cursor, read from the text itself so that half-typed documents work.

YAML written by hand is block-indented; the path of the mapping holding a line
follows from the lines above it with less indentation. That inference needs no
parse, so completion and hover keep working while the file has a syntax error
(a key with no colon yet, an unclosed quote further down). The scalars found
beside the cursor (`type: s3`, `mode: oauth2`) pick the member of each tagged
union on the way down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

PathItem = str | int
Path = tuple[PathItem, ...]

_KEY = re.compile(
    r"""(?P<key>"[^"]*"|'[^']*'|[^\s#:{}\[\],&*!|>'"%@`-][^:#]*?|-[^\s:#][^:#]*?)\s*:(?=\s|$)"""
)
_DASH = re.compile(r"-(?:\s+|$)")


@dataclass(frozen=True)
class LineInfo:
    """One line of block YAML: indentation, a leading `- `, a key and the value's text."""

    indent: int
    dash: int | None  # column of a leading "- "
    key_col: int  # column where the key (or item content) starts
    key: str | None
    key_end: int
    value: str | None  # text after "key:" (comment stripped), None when there is no key
    value_col: int

    @property
    def first(self) -> int:
        """Column of the first token (the dash for items)."""
        return self.dash if self.dash is not None else self.key_col


def strip_comment(line: str) -> str:
    """The line without a trailing `# comment` (quotes respected)."""
    quote: str | None = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return line[:index]
    return line


def parse_line(line: str) -> LineInfo | None:
    """Read one line; None for blank lines, comments and document markers."""
    body = strip_comment(line.rstrip("\r\n")).rstrip()
    stripped = body.lstrip(" ")
    if not stripped or stripped.startswith(("---", "...", "%")):
        return None
    indent = len(body) - len(stripped)
    col = indent
    dash: int | None = None
    while True:  # "- - key:" nests items; the innermost dash counts
        match = _DASH.match(body, col)
        if match is None:
            break
        dash = col
        col = match.end()
    match = _KEY.match(body, col)
    if match is None:
        return LineInfo(indent, dash, col, None, col, None, col)
    key = match.group("key")
    if key[:1] in "\"'" and key[-1:] == key[:1] and len(key) >= 2:
        key = key[1:-1]
    rest_col = match.end()
    value_text = body[rest_col:]
    value_col = rest_col + (len(value_text) - len(value_text.lstrip()))
    return LineInfo(indent, dash, col, key, match.start("key") + len(match.group("key")),
                    value_text.strip(), value_col)


class Lines:
    """The lines of a text, parsed on demand."""

    def __init__(self, text: str) -> None:
        self.raw = text.split("\n")
        self._info: dict[int, LineInfo | None] = {}

    def indent(self, index: int) -> int:
        """Leading spaces of a line (cheap: no parse); a large number for blank lines."""
        raw = self.raw[index]
        stripped = raw.lstrip(" ")
        if not stripped.strip():
            return 1 << 30
        return len(raw) - len(stripped)

    def info(self, index: int) -> LineInfo | None:
        """The parsed line at `index` (None when blank or out of range)."""
        if index < 0 or index >= len(self.raw):
            return None
        if index not in self._info:
            self._info[index] = parse_line(self.raw[index])
        return self._info[index]

    # ------------------------------------------------------------ paths
    def mapping_path(self, index: int, col: int, levels: dict[Path, tuple[int, int]]) -> Path:
        """Path of the mapping whose keys sit at `col` and which holds line `index`."""
        here = self.info(index)
        if here is not None and here.dash is not None and here.key_col == col:
            path = self.item_path(index, here.dash, levels)
            levels[path] = (index, col)
            return path
        j = index - 1
        while j >= 0:
            if self.indent(j) >= col:  # deeper or sibling lines cannot hold this mapping
                j -= 1
                continue
            info = self.info(j)
            if info is None:
                j -= 1
                continue
            if info.dash is not None and info.dash < col:
                if info.key_col == col:
                    path = self.item_path(j, info.dash, levels)
                elif info.key is not None and info.key_col < col:
                    path = (*self.mapping_path(j, info.key_col, levels), info.key)
                else:
                    path = ()
                levels[path] = (index, col)
                return path
            if info.dash is None and info.key_col < col:
                path = (*self.mapping_path(j, info.key_col, levels), info.key) if info.key else ()
                levels[path] = (index, col)
                return path
            j -= 1
        levels[()] = (index, col)
        return ()

    def item_path(self, index: int, dash: int, levels: dict[Path, tuple[int, int]]) -> Path:
        """Path of the sequence item whose dash is at column `dash` on line `index`."""
        position = 0
        j = index - 1
        while j >= 0:
            if self.indent(j) > dash:
                j -= 1
                continue
            info = self.info(j)
            if info is None or info.first > dash:
                j -= 1
                continue
            if info.dash == dash:
                position += 1
                j -= 1
                continue
            if info.key is not None and (info.value == "" or info.value is None):
                return (*self.mapping_path(j, info.key_col, levels), info.key, position)
            return (position,)
        return (position,)

    # ------------------------------------------------------------ siblings
    def siblings(self, index: int, col: int) -> dict[str, str]:
        """Keys at column `col` in the block mapping around line `index`, with their value text."""
        out: dict[str, str] = {}
        j = index
        while j >= 0:  # upwards, including the line itself
            if self.indent(j) > col:
                j -= 1
                continue
            info = self.info(j)
            if info is not None:
                if info.first < col and not (info.dash is not None and info.key_col == col):
                    break
                if info.key_col == col and info.key is not None and j != index:
                    out.setdefault(info.key, info.value or "")
                if info.dash is not None and info.key_col == col:
                    break  # the first line of a sequence item
            j -= 1
        j = index + 1
        while j < len(self.raw):
            if self.indent(j) > col:
                j += 1
                continue
            info = self.info(j)
            if info is not None:
                if info.first < col:
                    break
                if info.key_col == col and info.dash is None and info.key is not None:
                    out.setdefault(info.key, info.value or "")
            j += 1
        return out


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
    if text.startswith("{") and text.endswith("}"):
        out: dict[str, Any] = {}
        for part in text[1:-1].split(","):
            key, sep, value = part.partition(":")
            if sep:
                out[key.strip().strip("\"'")] = scalar(value)
        return out
    return text


def build_data(lines: Lines, levels: dict[Path, tuple[int, int]]) -> Any:
    """Nested data from the sibling scalars of every mapping on the way to the cursor."""
    root: dict[str, Any] = {}
    for path in sorted(levels, key=len):
        line, col = levels[path]
        container: Any = root
        for step, item in enumerate(path):
            nxt = path[step + 1] if step + 1 < len(path) else None
            empty: Any = [] if isinstance(nxt, int) else {}
            if isinstance(item, int):
                if not isinstance(container, list):
                    break
                while len(container) <= item:
                    container.append({} if not isinstance(nxt, int) else [])
                container = container[item]
            else:
                if not isinstance(container, dict):
                    break
                existing = container.get(item)
                if not isinstance(existing, (dict, list)):
                    container[item] = empty
                container = container[item]
        else:
            if isinstance(container, dict):
                for key, text in lines.siblings(line, col).items():
                    container.setdefault(key, scalar(text) if text else {})
    return root


CursorKind = Literal["key", "value", "none"]


@dataclass
class Cursor:
    """What the cursor is on.

    For `key`, `path` is the mapping holding the key being typed or hovered;
    for `value`, `path` ends with the key whose value is at the cursor.
    `start`/`end` delimit the token under the cursor (code points on `line`).
    """

    kind: CursorKind
    path: Path
    line: int
    start: int
    end: int
    text: str  # the whole token
    typed: str  # the part of the token before the cursor
    data: Any = None
    present: set[str] = field(default_factory=set)
    flow: bool = False  # inside `{...}`
    line_info: LineInfo | None = None

    @property
    def key(self) -> str | None:
        """The key whose value is at the cursor (value cursors), or the key hovered."""
        if self.kind == "value" and self.path and isinstance(self.path[-1], str):
            return self.path[-1]
        if self.kind == "key":
            return self.text or None
        return None


_WORD = re.compile(r"[^\s:,{}\[\]#\"']*")


def _token(line: str, start: int, char: int) -> tuple[int, int]:
    end = char
    while end < len(line) and line[end] not in " \t:,{}[]#":
        end += 1
    return start, end


def cursor_at(text: str, line: int, char: int) -> Cursor:
    """Analyse the text around (line, char) (code points)."""
    lines = Lines(text)
    if line >= len(lines.raw):
        return Cursor("key", (), line, 0, 0, "", "", data={}, present=set())
    raw = lines.raw[line].rstrip("\r")
    char = min(char, len(raw))
    before = raw[:char]
    if strip_comment(before) != before:
        return Cursor("none", (), line, char, char, "", "")
    levels: dict[Path, tuple[int, int]] = {}
    match = re.match(r"^(\s*)((?:-\s+)*)", before)
    assert match is not None
    indent = len(match.group(1))
    key_col = match.end()
    info = parse_line(raw)
    has_dash = bool(match.group(2))
    colon = _KEY.match(raw, key_col) if info is not None else None
    on_key = colon is None or char <= colon.start("key") + len(colon.group("key"))
    if on_key:
        start, end = _token(raw, key_col, char)
        if has_dash:
            dash = key_col - len(match.group(2)) + match.group(2).rstrip().rfind("-")
            dash = indent if dash < indent else dash
            path = lines.item_path(line, dash, levels)
            levels[path] = (line, key_col)
        else:
            path = lines.mapping_path(line, key_col, levels)
        token = raw[start:end]
        cur = Cursor("key", path, line, start, end, token, raw[start:char])
    else:
        assert colon is not None
        key = colon.group("key").strip("\"'")
        if has_dash:
            dash = indent
            container = lines.item_path(line, dash, levels)
            levels[container] = (line, key_col)
        else:
            container = lines.mapping_path(line, key_col, levels)
        value_start = colon.end()
        while value_start < len(raw) and raw[value_start] in " \t":
            value_start += 1
        segment = raw[value_start:char]
        brace = segment.rfind("{")
        if brace >= 0 and "}" not in segment[brace:]:
            # Inside a flow mapping: one level is enough for `{secret_ref: NAME}`.
            inner = segment[brace + 1 :].split(",")[-1]
            inner_start = char - len(inner)
            inner_key, sep, inner_value = inner.partition(":")
            data = build_data(lines, levels)
            _place(data, (*container, key), {})
            if sep:
                vstart = inner_start + len(inner_key) + 1
                while vstart < char and raw[vstart] == " ":
                    vstart += 1
                s, e = _token(raw, vstart, char)
                return Cursor("value", (*container, key, inner_key.strip()), line, s, e,
                              raw[s:e], raw[s:char], data=data, flow=True)
            s = inner_start + (len(inner) - len(inner.lstrip()))
            s, e = _token(raw, s, char)
            return Cursor("key", (*container, key), line, s, e, raw[s:e], raw[s:char],
                          data=data, flow=True, present=set())
        start = value_start
        end = len(strip_comment(raw).rstrip())
        if start > end:
            end = start
        token = raw[start:end]
        if len(token) >= 2 and token[0] in "\"'" and token[-1] == token[0]:
            start, end, token = start + 1, end - 1, token[1:-1]
        elif token[:1] in "\"'":
            start, token = start + 1, token[1:]
        cur = Cursor("value", (*container, key), line, start, max(end, start), token,
                     raw[start:char] if char >= start else "")
    cur.data = build_data(lines, levels)
    cur.line_info = info
    if cur.kind == "key":
        holder = levels.get(cur.path)
        if holder is not None:
            cur.present = set(lines.siblings(holder[0], holder[1])) - {cur.text}
    return cur


def _place(data: Any, path: Path, value: Any) -> None:
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
