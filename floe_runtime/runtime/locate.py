"""Where a failed dbt node is written: its source `.sql`/`.yml` file and line, and the compiled SQL.

dbt reports database errors against the compiled SQL ("LINE 10: ..."); users edit
the source. Both are given: the compiled file and line as dbt counts them, and
the source line holding the same text when one does (else the node's first line).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# DuckDB and PostgreSQL quote the failing line: "LINE 8:     no_such_column,".
_LINE = re.compile(r"^\s*LINE (\d+):(.*)$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Location:
    """A file and 1-based line (None when unknown)."""

    path: Path
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else str(self.path)


@dataclass(frozen=True)
class FailureLocation:
    """The source file of a failed node, and the compiled SQL dbt ran."""

    source: Location
    compiled: Location | None = None


def locate_failure(
    props: Mapping[str, Any], message: str, project_dir: Path, target_path: Path
) -> FailureLocation | None:
    """Where the node in `props` (a manifest entry) is defined, and where its compiled SQL failed."""
    original = props.get("original_file_path")
    if not original:
        return None
    source = Path(project_dir) / str(original)
    compiled = _compiled_file(props, target_path)
    match = _LINE.search(message)
    quoted = match.group(2).strip() if match else ""
    compiled_line = int(match.group(1)) if match else None
    if compiled is not None and quoted:
        # The engine counts lines of the statement it ran (dbt wraps the compiled SQL).
        compiled_line = _line_of(_lines(compiled), quoted) or compiled_line
    line: int | None
    if source.suffix in (".yml", ".yaml"):
        line = _yaml_line(props, _lines(source))
    else:
        line = (_line_of(_lines(source), quoted) if quoted else None) or 1
    return FailureLocation(
        Location(source, line),
        Location(compiled, compiled_line) if compiled is not None else None,
    )


def _lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _compiled_file(props: Mapping[str, Any], target_path: Path) -> Path | None:
    """dbt writes compiled SQL to <target>/compiled/<package>/<original path>[/<test>.sql]."""
    package = props.get("package_name")
    original = props.get("original_file_path")
    if not package or not original:
        return None
    base = target_path / "compiled" / str(package) / str(original)
    if base.is_file():
        return base
    if base.is_dir():  # tests defined in a .yml file: one .sql per test, named by its alias
        for name in (props.get("alias"), props.get("name")):
            candidate = base / f"{name}.sql"
            if name and candidate.is_file():
                return candidate
    return None


def _line_of(lines: list[str], text: str) -> int | None:
    """The one line holding `text` (Jinja-free lines survive compiling unchanged)."""
    hits = [i + 1 for i, line in enumerate(lines) if line.strip() == text]
    return hits[0] if len(hits) == 1 else None


def _yaml_line(props: Mapping[str, Any], lines: list[str]) -> int | None:
    """The line of a test (or unit test) defined in a properties file."""
    if props.get("resource_type") == "unit_test":
        return _find(lines, rf"name:\s*['\"]?{re.escape(str(props.get('name')))}\b", 0)
    metadata = props.get("test_metadata") or {}
    attached = str(props.get("attached_node") or "").split(".")[-1]
    start = _find(lines, rf"name:\s*['\"]?{re.escape(attached)}['\"]?\s*$", 0) if attached else None
    if start is None:
        return None
    at = start
    column = props.get("column_name")
    if column:
        at = _find(lines, rf"name:\s*['\"]?{re.escape(str(column))}['\"]?\s*$", start) or start
    kind = str(metadata.get("name") or "")
    found = _find(lines, rf"\b{re.escape(kind)}\b", at) if kind else None
    return found or at


def _find(lines: list[str], pattern: str, after: int) -> int | None:
    """1-based number of the first line after line `after` (1-based) matching `pattern`."""
    regex = re.compile(pattern)
    for index in range(after, len(lines)):
        if regex.search(lines[index]):
            return index + 1
    return None
