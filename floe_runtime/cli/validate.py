"""`floe-runtime validate`: the engine's diagnostics, as text or JSON."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from floe_runtime.cli.common import (
    ENV_OPTION,
    EXIT_ERRORS,
    EXIT_OK,
    PATH_ARGUMENT,
    fail,
    print_diagnostics,
    summary,
)


@click.command()
@PATH_ARGUMENT
@ENV_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Compiler-style lines, or a JSON array for machines.",
)
def validate(path: Path | None, env: str | None, fmt: str) -> None:
    """Check floe.yaml (PATH: a project folder or a floe.yaml; default: the current folder)
    against every environment's platform.yaml, or only ENV's.

    Exit status: 0 no errors, 1 errors found, 2 usage problem.
    """
    # validate starts no subprocess and needs no pydantic plugin: skipping the plugin
    # scan over every installed distribution saves ~20 ms of a 0.5 s budget.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from floe_runtime.analysis import ProjectError, analyze, discover

    try:
        project = discover(path, env)
    except ProjectError as exc:
        fail(str(exc))
    analysis = analyze(project)
    print_diagnostics(analysis.diagnostics, fmt)
    if fmt == "text":
        line = summary(analysis.diagnostics)
        if not line:
            envs = ", ".join(e.name for e in project.environments) or "none"
            line = f"All checks passed ({len(project.environments)} environment(s): {envs})."
        click.echo(line)
    sys.exit(EXIT_ERRORS if analysis.has_errors else EXIT_OK)
