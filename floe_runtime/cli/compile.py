"""`floe-runtime compile`: resolve one environment into compiled artifacts."""

from __future__ import annotations

from pathlib import Path

import click

from floe_runtime.cli.common import (
    ENV_OPTION,
    EXIT_ERRORS,
    PATH_ARGUMENT,
    compile_or_exit,
    shown_path,
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
    _, artifacts, artifacts_path = compile_or_exit(
        path, env, refused="Not compiled.", exit_code=EXIT_ERRORS, output=output
    )
    click.echo(
        f"Compiled '{artifacts.pipeline.name}' for environment '{artifacts.environment}':\n"
        f"  {shown_path(str(artifacts_path))}\n"
        f"  {shown_path(str(artifacts_path.with_name('profiles.yml')))}"
    )
    for relative in artifacts.engine_files:  # trino/spark: the engine's catalog configuration
        click.echo(f"  {shown_path(str(artifacts_path.parent / relative))}")
    for note in artifacts.notes:
        click.echo(f"Note: {note}")
