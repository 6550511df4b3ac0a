"""The analysis engine shared by the CLI and the language server (DESIGN §1).

Names are loaded on first use (PEP 562), so importing a light submodule such as
`floe_runtime.analysis.diagnostics` does not build every config model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # explicit re-exports for type checkers; at run time __getattr__ loads them
    from floe_runtime.analysis.diagnostics import CODES as CODES
    from floe_runtime.analysis.diagnostics import Diagnostic as Diagnostic
    from floe_runtime.analysis.diagnostics import Position as Position
    from floe_runtime.analysis.diagnostics import Range as Range
    from floe_runtime.analysis.diagnostics import Severity as Severity
    from floe_runtime.analysis.engine import Analysis as Analysis
    from floe_runtime.analysis.engine import analyze as analyze
    from floe_runtime.analysis.engine import read_disk as read_disk
    from floe_runtime.analysis.project import Environment as Environment
    from floe_runtime.analysis.project import Project as Project
    from floe_runtime.analysis.project import ProjectError as ProjectError
    from floe_runtime.analysis.project import discover as discover

_WHERE = {
    "CODES": "diagnostics",
    "Diagnostic": "diagnostics",
    "Position": "diagnostics",
    "Range": "diagnostics",
    "Severity": "diagnostics",
    "Analysis": "engine",
    "analyze": "engine",
    "read_disk": "engine",
    "Environment": "project",
    "Project": "project",
    "ProjectError": "project",
    "discover": "project",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'floe_runtime.analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"floe_runtime.analysis.{module}"), name)
    globals()[name] = value
    return value
