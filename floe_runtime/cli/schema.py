"""`floe-runtime schema`: print the JSON Schema of floe.yaml or platform.yaml."""

from __future__ import annotations

from pathlib import Path

import click

from floe_runtime.cli.common import fail


@click.command()
@click.argument("kind", type=click.Choice(["floe", "platform"]), default="floe")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the schema to FILE instead of standard output.",
)
def schema(kind: str, output: Path | None) -> None:
    """Print the JSON Schema (draft 2020-12) of floe.yaml (KIND=floe) or platform.yaml.

    Point Red Hat's yaml-language-server at it with a
    `# yaml-language-server: $schema=<file>` line.
    """
    from floe_runtime.schema import json_schema_text

    text = json_schema_text(kind)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    click.echo(f"Wrote {output}")
