"""`floe-runtime diff ENV_A ENV_B`: how two environments differ, per profile the pipeline uses."""

from __future__ import annotations

import os
from pathlib import Path

import click

from floe_runtime.cli.common import PATH_ARGUMENT, fail


@click.command(name="diff")
@click.argument("env_a", metavar="ENV_A")
@click.argument("env_b", metavar="ENV_B")
@PATH_ARGUMENT
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown"]),
    default="text",
    show_default=True,
    help="A table, or the markdown the editor shows.",
)
def diff_command(env_a: str, env_b: str, path: Path | None, fmt: str) -> None:
    """Show how environments ENV_A and ENV_B differ for the profiles floe.yaml uses.

    Per storage, catalog and compute profile: its type and every setting that
    differs. Secrets show by name (`secret_ref NAME`), literal credentials as `***`;
    no secret is ever resolved. Exit 0, or 2 for an unknown environment or folder.
    """
    from floe_runtime.cli.validate import _without_pydantic_plugins

    _without_pydantic_plugins()
    from floe_runtime.analysis import ProjectError, discover
    from floe_runtime.analysis.envdiff import diff_environments, markdown, table

    # Both environments are named here: FLOE_ENV (which narrows discovery to one) does not apply.
    environ = {k: v for k, v in os.environ.items() if k != "FLOE_ENV"}
    try:
        diff = diff_environments(discover(path, environ=environ), env_a, env_b)
    except ProjectError as exc:
        fail(str(exc))
    for file in diff.unreadable:
        click.echo(
            f"warning: {file} has YAML errors (see 'floe-runtime validate'); "
            "its profiles may show as not defined",
            err=True,
        )
    click.echo(table(diff) if fmt == "text" else markdown(diff), nl=fmt == "text")
