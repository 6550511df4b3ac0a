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

#: Diagnostics listed per file at the most; the last one listed says how many more there are.
MAX_PER_FILE = 100
#: `data` key of a diagnostic standing for further ones that are not listed: how many.
UNLISTED = "unlisted"
#: `data` key of the last diagnostic listed for a file: how many were not listed, by
#: severity (`{"error": 9900}`), for a summary line that counts them all.
NOT_LISTED = "not_listed"
_SEVERITY_RANK = {"error": 0, "warning": 1, "information": 2, "hint": 3}


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


def limit_per_file(diagnostics: list[Diagnostic], limit: int = MAX_PER_FILE) -> list[Diagnostic]:
    """At most `limit` diagnostics per file: the first ones by position, the last saying how many
    more there are.

    Nobody reads 10,000 findings, and an editor given them slows down; the last one listed
    keeps its own code, range and data (its quick fix still applies) and takes the worst
    severity of those it stands for, so an error is never hidden behind a warning.
    """
    per_file: dict[str, list[Diagnostic]] = {}
    for diag in diagnostics:
        per_file.setdefault(diag.file, []).append(diag)
    over = {
        file
        for file, found in per_file.items()
        if len(found) > limit or any(UNLISTED in d.data for d in found)
    }
    if not over:
        return diagnostics
    out: list[Diagnostic] = []
    for diag in diagnostics:
        if diag.file not in over:
            out.append(diag)
        elif diag is per_file[diag.file][0]:  # the file's place in the list
            out.extend(_limited(per_file[diag.file], limit))
    return out


def _limited(found: list[Diagnostic], limit: int) -> list[Diagnostic]:
    ordered = sorted(found, key=lambda d: (d.range.start, d.code))
    unlisted = sum(int(d.data.get(UNLISTED, 0)) for d in ordered)
    cut = min(limit, len(ordered)) - 1
    kept, rest = ordered[:cut], ordered[cut:]
    first = rest[0]
    more = len(rest) - 1 + unlisted
    worst = min((d.severity for d in rest), key=lambda s: _SEVERITY_RANK[s.value])
    message = (
        f"{first.message} (and {more:,} more problem{'s' if more != 1 else ''} in this file, "
        f"not listed: at most {limit} are shown per file)"
    )
    data = {k: v for k, v in first.data.items() if k != UNLISTED}
    counts = {"error": unlisted} if unlisted else {}  # only schema errors go uncounted
    for diag in rest[1:]:
        counts[diag.severity.value] = counts.get(diag.severity.value, 0) + 1
    data[NOT_LISTED] = counts
    return [*kept, Diagnostic(first.file, first.range, worst, first.code, message, data)]
