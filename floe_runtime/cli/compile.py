"""`floe-runtime compile`: resolve one environment into compiled artifacts."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from floe_runtime.cli.common import (
    ENV_OPTION,
    EXIT_ERRORS,
    EXIT_USAGE,
    PATH_ARGUMENT,
    fail,
    print_diagnostics,
    shown_path,
    summary,
)


@click.command(name="compile")
@PATH_ARGUMENT
@ENV_OPTION
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for compiled_artifacts.json and profiles.yml (default: <project>/target/floe).",
)
def compile_command(path: Path | None, env: str | None, output: Path | None) -> None:
    """Validate, then write compiled_artifacts.json and the generated dbt profiles.yml.

    Refuses (exit 1, diagnostics shown) when validation finds errors. With several
    environments, choose one with --env (or FLOE_ENV).
    """
    from floe_runtime.analysis import ProjectError, discover
    from floe_runtime.compiler import CompileError, compile_project, write_artifacts
    from floe_runtime.compiler.compile import default_output_dir

    try:
        project = discover(path, env)
    except ProjectError as exc:
        fail(str(exc))
    try:
        artifacts = compile_project(project)
    except CompileError as exc:
        if not exc.diagnostics:
            fail(str(exc))
        print_diagnostics(exc.diagnostics)
        click.echo(f"{summary(exc.diagnostics)} Not compiled.", err=True)
        sys.exit(EXIT_ERRORS)
    out_dir = output if output is not None else default_output_dir(project)
    try:
        artifacts_path, profiles_path = write_artifacts(artifacts, out_dir)
    except OSError as exc:
        fail(f"cannot write to {out_dir}: {exc.strerror or exc}", EXIT_USAGE)
    click.echo(
        f"Compiled '{artifacts.pipeline.name}' for environment '{artifacts.environment}':\n"
        f"  {shown_path(str(artifacts_path))}\n  {shown_path(str(profiles_path))}"
    )
