"""Entry points: `floe-lsp`, `python -m floe_lsp` (argparse) and `floe-runtime lsp` (click).

`floe-lsp` parses its arguments with argparse rather than click: the server's
start-up is on the editor's critical path, and click alone costs ~40 ms to import.
"""

from __future__ import annotations

import argparse
import logging
import sys

#: Shown by `--help` of both entry points.
DESCRIPTION = "Start the floe language server (stdio by default)."
HELP_STDIO = "Talk over stdin/stdout (default)."
HELP_TCP = "Listen on a TCP address instead."
HELP_LOG_FILE = "Write a debug log here."


class UsageError(ValueError):
    """A command-line mistake, reported as one line with exit code 2."""


def parse_tcp(value: str) -> tuple[str, int]:
    """Split HOST:PORT; a missing host means 127.0.0.1."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError("--tcp takes HOST:PORT, e.g. 127.0.0.1:2087")
    return host or "127.0.0.1", int(port)


def serve(tcp: str | None = None, log_file: str | None = None) -> None:
    """Run the server on stdio, or on a TCP address when `tcp` is given."""
    address = parse_tcp(tcp) if tcp else None
    if log_file:
        logging.basicConfig(filename=log_file, level=logging.DEBUG)
    else:
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    from floe_lsp.server import create_server

    server = create_server()
    if address is not None:
        server.start_tcp(*address)
        return
    server.start_io()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point of `floe-lsp`."""
    parser = argparse.ArgumentParser(prog="floe-lsp", description=DESCRIPTION)
    parser.add_argument("--stdio", action="store_true", help=HELP_STDIO)
    parser.add_argument("--tcp", metavar="HOST:PORT", help=HELP_TCP)
    parser.add_argument("--log-file", metavar="FILE", help=HELP_LOG_FILE)
    args = parser.parse_args(argv)
    try:
        serve(args.tcp, args.log_file)
    except UsageError as err:
        parser.error(str(err))


if __name__ == "__main__":
    main()
