"""Helpers shared by the CLI commands: finding the project, printing diagnostics."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from floe_runtime.analysis.diagnostics import NOT_LISTED, Diagnostic, Severity

if TYPE_CHECKING:
    from floe_runtime.analysis import Project
    from floe_runtime.compiler.artifacts import CompiledArtifacts

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
        relative = os.path.relpath(file)
    except ValueError:  # another drive (Windows)
        return file
    return file if relative.startswith("..") else relative


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
    for d in items:  # a capped file's last diagnostic counts those it did not list
        hidden = d.data.get(NOT_LISTED)
        if isinstance(hidden, dict):
            errors += int(hidden.get(Severity.ERROR.value, 0))
            warnings += int(hidden.get(Severity.WARNING.value, 0))
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return f"Found {' and '.join(parts)}." if parts else ""


def compile_or_exit(
    path: Path | None,
    env: str | None,
    *,
    refused: str,
    exit_code: int,
    output: Path | None = None,
) -> tuple[Project, CompiledArtifacts, Path]:
    """discover → validate → compile → write the artifacts, or exit with the reason.

    Usage problems exit 2 with one line; validation errors print the diagnostics,
    then `<summary> <refused>` (e.g. "Not compiled.") and exit with `exit_code`.
    Returns the project, the artifacts and the path of compiled_artifacts.json.
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
        click.echo(f"{summary(exc.diagnostics)} {refused}", err=True)
        sys.exit(exit_code)
    out_dir = output if output is not None else default_output_dir(project)
    try:
        artifacts_path, _ = write_artifacts(artifacts, out_dir)
    except OSError as exc:
        fail(f"cannot write to {out_dir}: {exc.strerror or exc}")
    return project, artifacts, artifacts_path
