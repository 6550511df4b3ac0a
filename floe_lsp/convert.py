"""The edge where engine positions (code points) become LSP positions (negotiated encoding).

Nothing else in the server converts positions: features work in code points
and call these helpers when they build a response or read a request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace.position_codec import PositionCodec

from floe_runtime.analysis import Diagnostic, Position, Range, Severity
from floe_runtime.analysis.files import resolved

SEVERITY = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.INFORMATION: types.DiagnosticSeverity.Information,
    Severity.HINT: types.DiagnosticSeverity.Hint,
}


def uri_of(path: Path | str) -> str:
    """The file URI of a path."""
    uri = from_fs_path(str(path))
    assert uri is not None
    return str(uri)


def path_of(uri: str) -> Path | None:
    """The resolved file path of a file URI; None for other schemes and impossible paths.

    A path with a NUL (`%00` in the URI) names no file; one that loops (a symbolic link
    to itself) stays as it was written, and reading it fails as any unreadable file does.
    """
    fs = to_fs_path(uri)
    if fs is None or not uri.startswith("file:") or "\0" in fs:
        return None
    return resolved(Path(fs))


#: One line and its break, as the LSP counts breaks.
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def split_lines(text: str) -> list[str]:
    """Lines as LSP counts them (\\n, \\r\\n, \\r), each with its terminator.

    Not `str.splitlines`: it also breaks at U+2028, U+0085, \\v, \\f and others,
    which LSP clients count as ordinary characters.
    """
    return _LINES.findall(text) if text else []


class Converter:
    """Converts ranges of one text between code points and the client's units."""

    def __init__(self, codec: PositionCodec, text: str) -> None:
        self.codec = codec
        self.lines: Sequence[str] = split_lines(text)

    def position(self, pos: Position) -> types.Position:
        """Engine position → LSP position."""
        if pos.line >= len(self.lines):
            return types.Position(line=pos.line, character=0)
        line = self.lines[pos.line]
        return types.Position(
            line=pos.line, character=self.codec.client_num_units(line[: pos.character])
        )

    def range(self, rng: Range) -> types.Range:
        """Engine range → LSP range."""
        return types.Range(start=self.position(rng.start), end=self.position(rng.end))

    def from_client(self, pos: types.Position) -> Position:
        """LSP position → engine position (code points), clamped to the text."""
        if pos.line >= len(self.lines):
            return Position(pos.line, 0)
        line = self.lines[pos.line].rstrip("\r\n")
        units = 0
        for index, char in enumerate(line):
            if units >= pos.character:
                return Position(pos.line, index)
            units += self.codec.client_num_units(char)
        return Position(pos.line, len(line))

    def diagnostic(self, diag: Diagnostic) -> types.Diagnostic:
        """Engine diagnostic → LSP diagnostic (the quick-fix facts go in `data`)."""
        return types.Diagnostic(
            range=self.range(diag.range),
            severity=SEVERITY[diag.severity],
            code=diag.code,
            source="floe",
            message=diag.message,
            data=_plain(diag.data) or None,
        )


def apply_change(
    codec: PositionCodec, text: str, change: types.TextDocumentContentChangeEvent
) -> str:
    """`text` after one `didChange` content change, lines counted as the LSP counts them.

    Not pygls's document: it splits lines with `str.splitlines`, so an edit below a
    U+2028 or U+0085 would land a line too high. A range past the end is clamped to it.
    """
    if not isinstance(change, types.TextDocumentContentChangePartial):
        return change.text
    conv = Converter(codec, text)
    offsets = [0]
    for line in conv.lines:
        offsets.append(offsets[-1] + len(line))

    def offset(pos: types.Position) -> int:
        if pos.line < 0:
            return 0
        if pos.line >= len(conv.lines):
            return len(text)
        at = conv.from_client(types.Position(line=pos.line, character=max(pos.character, 0)))
        return offsets[pos.line] + at.character

    start, end = offset(change.range.start), offset(change.range.end)
    start, end = min(start, end), max(start, end)
    return text[:start] + change.text + text[end:]


def _plain(data: dict[str, object]) -> dict[str, object]:
    # Only JSON-safe values travel to the client.
    return {
        k: v for k, v in data.items() if isinstance(v, (str, int, float, bool, list, type(None)))
    }
