"""`floe-runtime maintain`: expire old snapshots and remove unreferenced files of the
Iceberg tables a pipeline publishes. pyiceberg is imported only when the command runs."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from floe_runtime.cli.common import (
    ENV_OPTION,
    EXIT_ERRORS,
    EXIT_OK,
    EXIT_USAGE,
    PATH_ARGUMENT,
    compile_or_exit,
    fail,
)

if TYPE_CHECKING:
    from floe_runtime.runtime.maintain import TableMaintenance


class Duration(click.ParamType):  # type: ignore[type-arg]  # generic only from click 8.2
    """`7d`, `12h`, `30m`, `45s`, `2w`."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        from floe_runtime.runtime.maintain import parse_duration

        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command(name="maintain")
@PATH_ARGUMENT
@ENV_OPTION
@click.option(
    "--older-than",
    type=Duration(),
    default="7d",
    show_default=True,
    metavar="DURATION",
    help="Expire snapshots committed longer ago than this (7d, 12h, 30m).",
)
@click.option(
    "--retain-last",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Always keep the last N snapshots of each table's history.",
)
@click.option(
    "--orphans-older-than",
    "orphan_age",
    type=Duration(),
    default="3d",
    show_default=True,
    metavar="DURATION",
    help="Delete unreferenced files only when last modified longer ago than this "
    "(a running publish's files are not referenced yet).",
)
@click.option(
    "--dry-run", is_flag=True, help="List what would be expired and deleted; change nothing."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Lines for people, or JSON for machines.",
)
def maintain(
    path: Path | None,
    env: str | None,
    older_than: timedelta,
    retain_last: int,
    orphan_age: timedelta,
    dry_run: bool,
    fmt: str,
) -> None:
    """Expire old snapshots of the pipeline's Iceberg tables, then delete the files only
    they referenced and orphan files (under each table's data and metadata folders,
    referenced by nothing).

    Exit 0 when every table was maintained, 1 when one failed, 2 for usage or
    configuration errors (nothing changed).
    """
    _, artifacts, _ = compile_or_exit(path, env, refused="Not maintained.", exit_code=EXIT_USAGE)
    from floe_runtime.runtime.secrets import MissingSecretError, resolve_secrets

    try:
        secrets = resolve_secrets(artifacts.secret_refs)
    except MissingSecretError as exc:
        fail(str(exc))
    from floe_runtime.runtime.maintain import maintain_pipeline

    try:
        results = maintain_pipeline(
            artifacts,
            secrets,
            older_than=older_than,
            retain_last=retain_last,
            orphan_age=orphan_age,
            dry_run=dry_run,
        )
    except Exception as exc:  # the catalog: one line, never a traceback (FLOE_DEBUG=1 shows it)
        if os.environ.get("FLOE_DEBUG"):
            raise
        fail(
            secrets.redact(
                f"cannot maintain the tables of catalog '{artifacts.catalog.name}' "
                f"({artifacts.catalog.profile.type}): {type(exc).__name__}: {exc}"
            )
        )
    if fmt == "json":
        click.echo(
            json.dumps(
                {"dry_run": dry_run, "tables": [r.to_json() for r in results]},
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        _print(results, artifacts.pipeline.name, artifacts.environment, dry_run)
    sys.exit(EXIT_ERRORS if any(r.error for r in results) else EXIT_OK)


def _print(results: list[TableMaintenance], pipeline: str, environment: str, dry_run: bool) -> None:
    """One summary line per table, then one line per snapshot and file."""
    expire, delete = ("would expire", "would delete") if dry_run else ("expired", "deleted")
    click.echo(f"floe-runtime maintain {pipeline} (environment {environment})")
    for r in results:
        if r.error:
            click.echo(f"{r.identifier}: error: {r.error}", err=True)
            continue
        orphans = f", {len(r.orphans)} orphan file{'s' if len(r.orphans) != 1 else ''}"
        click.echo(
            f"{r.identifier}: {expire} {len(r.expired)} snapshot{'s' if len(r.expired) != 1 else ''}"
            f" ({r.kept} kept), {delete} {len(r.deleted)} of their files{orphans}"
        )
        for s in r.expired:
            click.echo(f"  {expire} snapshot {s.snapshot_id} ({s.committed_at:%Y-%m-%dT%H:%M:%SZ})")
        for file in r.deleted:
            click.echo(f"  {delete} {file}")
        for file in r.orphans:
            click.echo(f"  {delete} orphan {file}")
        if r.orphans_skipped:
            click.echo(f"  orphans not looked for: {r.orphans_skipped}")
    tables = len(results)
    expired = sum(len(r.expired) for r in results)
    files = sum(len(r.deleted) + len(r.orphans) for r in results)
    line = (
        f"{tables} table{'s' if tables != 1 else ''}: {expire} {expired} "
        f"snapshot{'s' if expired != 1 else ''}, {delete} {files} file{'s' if files != 1 else ''}."
    )
    click.echo(line + (" Dry run: nothing changed." if dry_run else ""))
