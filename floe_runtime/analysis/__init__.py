"""The analysis engine shared by the CLI and the language server (DESIGN §1)."""

from __future__ import annotations

from floe_runtime.analysis.diagnostics import CODES, Diagnostic, Position, Range, Severity
from floe_runtime.analysis.engine import Analysis, analyze, read_disk
from floe_runtime.analysis.project import Environment, Project, ProjectError, discover

__all__ = [
    "CODES",
    "Analysis",
    "Diagnostic",
    "Environment",
    "Position",
    "Project",
    "ProjectError",
    "Range",
    "Severity",
    "analyze",
    "discover",
    "read_disk",
]
