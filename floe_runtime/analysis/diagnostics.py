"""Diagnostics: what the engine says about a file, with a stable code and an exact range.

Positions are 0-based lines and characters counted in code points; the language
server converts them to the client's position encoding at its own edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


class Severity(StrEnum):
    """How bad a diagnostic is (the LSP's four levels)."""

    ERROR = "error"
    WARNING = "warning"
    INFORMATION = "information"
    HINT = "hint"


#: Every code the engine emits and what it means (DESIGN §4).
CODES: dict[str, str] = {
    "FLOE001": "YAML syntax error",
    "FLOE002": "duplicate key",
    "FLOE003": "unknown key",
    "FLOE004": "missing required key",
    "FLOE005": "invalid value or type",
    "FLOE010": "profile reference not defined in an environment's platform.yaml",
    "FLOE020": "credential written as a literal",
    "FLOE030": "transform path missing or without dbt_project.yml",
    "FLOE040": "no platform.yaml found for this pipeline",
    "FLOE050": "a dbt model or test failed in the last run (the editor, from the run's results)",
}


class Position(NamedTuple):
    """A 0-based line and character (code points). Tuples: cheap to make, ordered."""

    line: int
    character: int

    def to_json(self) -> dict[str, int]:
        """The LSP-shaped JSON form."""
        return {"line": self.line, "character": self.character}


class Range(NamedTuple):
    """A half-open range between two positions."""

    start: Position
    end: Position

    def to_json(self) -> dict[str, dict[str, int]]:
        """The LSP-shaped JSON form."""
        return {"start": self.start.to_json(), "end": self.end.to_json()}

    def contains(self, pos: Position) -> bool:
        """Whether `pos` lies inside the range (its end included, as a cursor may sit there)."""
        return self.start <= pos <= self.end

    @staticmethod
    def of(line: int, start: int, end_line: int | None = None, end: int | None = None) -> Range:
        """Shorthand: `Range.of(2, 4, 2, 9)`; a zero-width range when no end is given."""
        return Range(
            Position(line, start),
            Position(line if end_line is None else end_line, start if end is None else end),
        )


ZERO_RANGE = Range.of(0, 0)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding in one file.

    `data` carries what a quick fix needs (the suggested name, the environment
    lacking a profile, ...); it never holds a secret value.
    """

    file: str
    range: Range
    severity: Severity
    code: str
    message: str
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        """The JSON form `floe-runtime validate --format json` prints (DESIGN §4)."""
        return {
            "file": self.file,
            "range": self.range.to_json(),
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
        }

    def to_text(self, shown_path: str | None = None) -> str:
        """Compiler-style `path:line:col: severity CODE message` (1-based)."""
        path = shown_path if shown_path is not None else self.file
        start = self.range.start
        return (
            f"{path}:{start.line + 1}:{start.character + 1}: "
            f"{self.severity.value} {self.code} {self.message}"
        )


def error(file: str, rng: Range, code: str, message: str, **data: Any) -> Diagnostic:
    """An error diagnostic."""
    return Diagnostic(file, rng, Severity.ERROR, code, message, data)


def warning(file: str, rng: Range, code: str, message: str, **data: Any) -> Diagnostic:
    """A warning diagnostic."""
    return Diagnostic(file, rng, Severity.WARNING, code, message, data)
