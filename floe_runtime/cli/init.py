"""`floe-runtime init`: create a new pipeline project."""

from __future__ import annotations

from pathlib import Path

import click

from floe_runtime.cli.common import fail


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Pipeline name (default: from the folder name).")
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
def init(directory: Path | None, name: str | None, force: bool) -> None:
    """Create a pipeline in DIRECTORY (default: the current folder): floe.yaml,
    platform/dev and platform/prod, a small dbt project and JSON schemas for editors."""
    from floe_runtime.scaffold import ScaffoldError, scaffold

    target = directory if directory is not None else Path.cwd()
    try:
        written = scaffold(target, name, force)
    except ScaffoldError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write to {target}: {exc.strerror or exc}")
    click.echo(f"Created {len(written)} files in {target}.")
    click.echo(f"Next: floe-runtime validate {target}")
