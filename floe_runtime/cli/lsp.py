"""`floe-runtime lsp`: the language server under the main CLI (same as `floe-lsp`)."""

from __future__ import annotations

import click


@click.command("lsp")
@click.option("--stdio", "stdio", is_flag=True, default=True, help="Talk over stdin/stdout (default).")
@click.option("--tcp", "tcp", metavar="HOST:PORT", default=None, help="Listen on a TCP address instead.")
@click.option("--log-file", type=click.Path(dir_okay=False), default=None, help="Write a debug log here.")
def lsp_command(stdio: bool, tcp: str | None, log_file: str | None) -> None:
    """Start the floe language server (stdio by default)."""
    from floe_lsp.__main__ import UsageError, serve

    try:
        serve(tcp, log_file)
    except UsageError as err:
        raise click.UsageError(str(err)) from None
