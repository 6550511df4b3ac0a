"""Entry points: `floe-lsp`, `python -m floe_lsp` and `floe-runtime lsp`."""

from __future__ import annotations

import logging
import sys

import click


@click.command("lsp")
@click.option("--stdio", "stdio", is_flag=True, default=True, help="Talk over stdin/stdout (default).")
@click.option("--tcp", "tcp", metavar="HOST:PORT", default=None, help="Listen on a TCP address instead.")
@click.option("--log-file", type=click.Path(dir_okay=False), default=None, help="Write a debug log here.")
def lsp_command(stdio: bool, tcp: str | None, log_file: str | None) -> None:
    """Start the floe language server (stdio by default)."""
    if log_file:
        logging.basicConfig(filename=log_file, level=logging.DEBUG)
    else:
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    from floe_lsp.startup import import_lsp_libraries

    import_lsp_libraries()
    from floe_lsp.server import create_server

    server = create_server()
    if tcp:
        host, sep, port = tcp.rpartition(":")
        if not sep or not port.isdigit():
            raise click.UsageError("--tcp takes HOST:PORT, e.g. 127.0.0.1:2087")
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        server.start_io()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point of `floe-lsp`."""
    lsp_command.main(args=argv, prog_name="floe-lsp")


if __name__ == "__main__":
    main()
