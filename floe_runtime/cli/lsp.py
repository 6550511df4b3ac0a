"""`floe-runtime lsp`: the language server under the main CLI (same as `floe-lsp`)."""

from __future__ import annotations

import click

from floe_lsp.__main__ import DESCRIPTION, HELP_LOG_FILE, HELP_STDIO, HELP_TCP, UsageError, serve


@click.command("lsp", help=DESCRIPTION)
@click.option("--stdio", "stdio", is_flag=True, default=True, help=HELP_STDIO)
@click.option("--tcp", "tcp", metavar="HOST:PORT", default=None, help=HELP_TCP)
@click.option("--log-file", type=click.Path(dir_okay=False), default=None, help=HELP_LOG_FILE)
def lsp_command(stdio: bool, tcp: str | None, log_file: str | None) -> None:
    """Run `floe_lsp.__main__.serve`; a bad --tcp is click's usage error."""
    try:
        serve(tcp, log_file)
    except UsageError as err:
        raise click.UsageError(str(err)) from None
