"""`floe-runtime validate`: the engine's diagnostics, as text or JSON."""

from __future__ import annotations

import os
import sys
import types
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


def _without_pydantic_plugins() -> None:
    """Answer pydantic's plugin lookup with "none" in this process.

    pydantic looks for plugins when it builds the first model: it imports
    importlib.metadata and reads the entry points of every installed distribution,
    ~35 ms of validate's 0.5 s budget. validate runs no plugin and starts no
    process that could inherit this. Someone who set PYDANTIC_DISABLE_PLUGINS cares
    about plugins, so then pydantic is left alone; so it is when its loader is
    already imported.
    """
    name = "pydantic.plugin._loader"
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") is not None or name in sys.modules:
        return
    loader = types.ModuleType(name)
    loader.get_plugins = tuple  # type: ignore[attr-defined]  # () — no plugins
    sys.modules[name] = loader


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
    _without_pydantic_plugins()
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
