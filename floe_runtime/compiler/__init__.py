"""Compile floe.yaml + one environment's platform.yaml into `CompiledArtifacts`."""

from __future__ import annotations

from floe_runtime.compiler.artifacts import (
    ARTIFACTS_FILE,
    CompiledArtifacts,
    DbtTarget,
    load_artifacts,
)
from floe_runtime.compiler.compile import CompileError, compile_project, write_artifacts

__all__ = [
    "ARTIFACTS_FILE",
    "CompileError",
    "CompiledArtifacts",
    "DbtTarget",
    "compile_project",
    "load_artifacts",
    "write_artifacts",
]
