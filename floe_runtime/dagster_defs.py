"""The Dagster code location: `dagster dev -m floe_runtime.dagster_defs`.

Reads FLOE_PROJECT_DIR (default: the working directory) and FLOE_ENV (or
FLOE_PLATFORM_FILE), compiles the pipeline and exposes `defs`. Secrets are not
needed to load: they are resolved when a run executes.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import Definitions


def load_definitions(project_dir: str | None = None, env: str | None = None) -> Definitions:
    """Compile the pipeline in `project_dir` for `env` and build its Dagster definitions."""
    from floe_runtime.analysis import discover
    from floe_runtime.compiler import compile_project
    from floe_runtime.compiler.compile import default_output_dir, write_artifacts
    from floe_runtime.runtime.definitions import build_definitions

    root = Path(project_dir or os.environ.get("FLOE_PROJECT_DIR") or os.getcwd())
    environment = env or os.environ.get("FLOE_ENV") or None
    project = discover(root, environment)
    artifacts = compile_project(project, environment)
    write_artifacts(artifacts, default_output_dir(project))
    return build_definitions(artifacts)


defs = load_definitions()
