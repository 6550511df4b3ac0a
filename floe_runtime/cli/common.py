"""Helpers shared by the CLI commands: finding the project, printing diagnostics."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import click

from floe_runtime.analysis.diagnostics import Diagnostic, Severity

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_USAGE = 2

PATH_ARGUMENT = click.argument(
    "path", required=False, type=click.Path(path_type=Path), metavar="[PATH]"
)
ENV_OPTION = click.option(
    "--env",
    "-e",
    "env",
    metavar="ENV",
    help="Environment (platform/<ENV>/platform.yaml); default: FLOE_ENV, else every environment.",
)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one clear error line to stderr and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def shown_path(file: str) -> str:
    """A path as a person wants to read it: relative to the working directory when inside it."""
    try:
        return os.path.relpath(file)
    except ValueError:
        return file


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """By file, then position, then code: the order compilers print in."""
    return sorted(diagnostics, key=lambda d: (d.file, d.range.start, d.code))


def print_diagnostics(diagnostics: Iterable[Diagnostic], fmt: str = "text") -> None:
    """Print diagnostics as compiler-style text lines or as the JSON array of DESIGN §4."""
    ordered = sort_diagnostics(diagnostics)
    if fmt == "json":
        click.echo(json.dumps([d.to_json() for d in ordered], indent=2))
        return
    colours = {
        Severity.ERROR: "red",
        Severity.WARNING: "yellow",
        Severity.INFORMATION: "blue",
        Severity.HINT: "cyan",
    }
    for diag in ordered:
        start = diag.range.start
        location = f"{shown_path(diag.file)}:{start.line + 1}:{start.character + 1}:"
        click.echo(
            f"{click.style(location, bold=True)} "
            f"{click.style(diag.severity.value, fg=colours[diag.severity], bold=True)} "
            f"{click.style(diag.code, bold=True)} {diag.message}"
        )


def summary(diagnostics: Iterable[Diagnostic]) -> str:
    """`Found 2 errors and 1 warning.` or an empty string when there is nothing."""
    items = list(diagnostics)
    errors = sum(d.severity is Severity.ERROR for d in items)
    warnings = sum(d.severity is Severity.WARNING for d in items)
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return f"Found {' and '.join(parts)}." if parts else ""
