"""Maintaining the Iceberg tables a pipeline publishes: expiring old snapshots and removing
the files nothing references any more (those of expired snapshots, and orphans).

Each table is handled on its own: a failure on one is reported and the others go on. With
`dry_run` everything is worked out the same way and nothing is committed or deleted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.runtime.secrets import Secrets

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot

_DURATION = re.compile(r"\s*(\d+)\s*(s|m|h|d|w)\s*")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`7d`, `12h`, `30m`, `45s`, `2w` as a timedelta; ValueError for anything else."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (a number and s, m, h, d or w: 7d, 12h)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class ExpiredSnapshot:
    """A snapshot expired (or, in a dry run, to be)."""

    snapshot_id: int
    committed_at: datetime


@dataclass
class TableMaintenance:
    """What maintenance did (or would do) to one table.

    `deleted` are the files only expired snapshots referenced; `orphans` files under the
    table's data and metadata folders that no snapshot or metadata file references,
    older than the safety age. Paths are relative to the table's location.
    """

    identifier: str
    location: str = ""
    expired: list[ExpiredSnapshot] = field(default_factory=list)
    kept: int = 0
    deleted: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    error: str | None = None
    #: Why orphans were not looked for (a storage floe cannot list), if so.
    orphans_skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form `maintain --format json` prints."""
        return {
            "table": self.identifier,
            "location": self.location,
            "expired_snapshots": [
                {"snapshot_id": s.snapshot_id, "committed_at": s.committed_at.isoformat()}
                for s in self.expired
            ],
            "snapshots_kept": self.kept,
            "deleted_files": self.deleted,
            "orphan_files": self.orphans,
            "orphans_skipped": self.orphans_skipped,
            "error": self.error,
        }


def pipeline_tables(catalog: Catalog, artifacts: CompiledArtifacts) -> list[tuple[str, Table]]:
    """(identifier, table) of the tables in the pipeline's namespaces that this pipeline
    published (their `floe.pipeline` property), by identifier."""
    from pyiceberg.exceptions import NoSuchNamespaceError

    tables = []
    for namespace in sorted({target.namespace for target in artifacts.dbt}):
        try:
            identifiers = catalog.list_tables(tuple(namespace.split(".")))
        except NoSuchNamespaceError:
            continue  # never published to
        for identifier in sorted(identifiers):
            table = catalog.load_table(identifier)
            if table.properties.get("floe.pipeline") == artifacts.pipeline.name:
                tables.append((".".join(identifier), table))
    return tables


def maintain_pipeline(
    artifacts: CompiledArtifacts,
    secrets: Secrets,
    *,
    older_than: timedelta,
    retain_last: int,
    orphan_age: timedelta,
    dry_run: bool,
    now: datetime | None = None,
) -> list[TableMaintenance]:
    """Maintain every table the pipeline publishes in the environment's catalog.

    Raises whatever opening the catalog or listing its tables raises; a failure on one
    table is recorded in its result.
    """
    from floe_runtime.runtime.iceberg import load_catalog

    catalog = load_catalog(artifacts, secrets)
    moment = now or datetime.now(UTC)
    results = []
    for identifier, table in pipeline_tables(catalog, artifacts):
        result = TableMaintenance(identifier, table.location())
        try:
            maintain_table(
                table,
                result,
                expire_before=moment - older_than,
                retain_last=retain_last,
                orphans_before=moment - orphan_age,
                dry_run=dry_run,
            )
        except Exception as exc:  # one table's failure must not stop the others
            result.error = secrets.redact(f"{type(exc).__name__}: {exc}")
        results.append(result)
    return results


def maintain_table(
    table: Table,
    result: TableMaintenance,
    *,
    expire_before: datetime,
    retain_last: int,
    orphans_before: datetime,
    dry_run: bool,
) -> None:
    """Expire the table's snapshots committed before `expire_before` except the last
    `retain_last` of its history (and branch and tag heads), delete the files only they
    referenced, then the orphans last modified before `orphans_before`."""
    from pyiceberg.table.snapshots import ancestors_of

    metadata = table.metadata
    keep = {ref.snapshot_id for ref in metadata.refs.values()}
    history = list(ancestors_of(table.current_snapshot(), metadata))
    keep |= {s.snapshot_id for s in history[: max(retain_last, 1)]}
    cutoff = expire_before.timestamp() * 1000
    expired = [
        s for s in metadata.snapshots if s.snapshot_id not in keep and s.timestamp_ms < cutoff
    ]
    remaining = [s for s in metadata.snapshots if s not in expired]
    result.expired = [
        ExpiredSnapshot(s.snapshot_id, datetime.fromtimestamp(s.timestamp_ms / 1000, UTC))
        for s in sorted(expired, key=lambda s: s.timestamp_ms)
    ]
    result.kept = len(remaining)
    referenced = _referenced(table, remaining)
    only_expired = _snapshot_files(table, expired) - referenced
    if expired and not dry_run:
        table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in expired]).commit()
        table = table.refresh()
        # Read again after the commit: whatever a concurrent commit references stays.
        referenced = _referenced(table, list(table.metadata.snapshots))
        only_expired -= referenced
    root = table.location().rstrip("/")
    # Only the table's own files: one another table or an import shares stays.
    for path in sorted(p for p in only_expired if p.startswith(root + "/")):
        if not dry_run:
            table.io.delete(path)
        result.deleted.append(_relative(path, root))
    listed = _listing(table, orphans_before)
    if isinstance(listed, str):
        result.orphans_skipped = listed
        return
    known = _forms(table, referenced | only_expired)
    for path in sorted(listed):
        if not known.isdisjoint(_forms(table, [path])):
            continue
        if not dry_run:
            table.io.delete(path)
        result.orphans.append(_relative(path, root))


def _snapshot_files(table: Table, snapshots: Iterable[Snapshot]) -> set[str]:
    """Every file reading these snapshots needs: manifest lists, manifests, live data and
    delete files."""
    files: set[str] = set()
    for snapshot in snapshots:
        files.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            files.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                files.add(entry.data_file.file_path)
    return files


def _referenced(table: Table, snapshots: list[Snapshot]) -> set[str]:
    """The files the table's metadata references once only `snapshots` remain."""
    metadata = table.metadata
    files = _snapshot_files(table, snapshots)
    if table.metadata_location:
        files.add(table.metadata_location)
    files |= {entry.metadata_file for entry in metadata.metadata_log}
    files |= {s.statistics_path for s in metadata.statistics}
    files |= {s.statistics_path for s in metadata.partition_statistics}
    return files


def _forms(table: Table, paths: Iterable[str]) -> set[str]:
    """Each location as a filesystem path, quoted and unquoted: a file matches a reference
    by any of them, so nothing is taken for an orphan because of how a URI was spelt."""
    io: Any = table.io  # a PyArrowFileIO (checked by _listing)
    forms = set()
    for location in paths:
        _, _, path = io.parse_location(location, io.properties)
        forms |= {path, unquote(path), quote(path, safe="/:@")}
    return forms


def _relative(path: str, root: str) -> str:
    return path[len(root) + 1 :] if path.startswith(root + "/") else path


def _listing(table: Table, before: datetime) -> set[str] | str:
    """The files under the table's data and metadata folders last modified before
    `before`, as URIs of the table's scheme; a reason instead when they cannot be listed.

    Only those two folders (or the table's `write.data.path` / `write.metadata.path`):
    nothing else under the table's location is ever deleted.
    """
    from pyarrow.fs import FileSelector, FileType  # type: ignore[import-untyped]
    from pyiceberg.io.pyarrow import PyArrowFileIO

    io = table.io
    if not isinstance(io, PyArrowFileIO):
        return f"orphan files are not looked for with {type(io).__name__}"
    root = table.location().rstrip("/")
    properties = table.properties
    folders = [
        properties.get("write.data.path") or f"{root}/data",
        properties.get("write.metadata.path") or f"{root}/metadata",
    ]
    found: set[str] = set()
    for folder in folders:
        scheme, netloc, path = io.parse_location(folder, io.properties)
        fs = io.fs_by_scheme(scheme, netloc)
        prefix = f"{scheme}://" if scheme != "file" else "file://"
        try:
            infos = fs.get_file_info(FileSelector(path, recursive=True, allow_not_found=True))
        except OSError as exc:
            return f"cannot list {folder}: {exc}"
        for info in infos:
            if info.type != FileType.File or info.mtime is None:
                continue
            if info.mtime.astimezone(UTC) >= before:
                continue  # maybe a writer's file not committed yet
            found.add(prefix + info.path)
    return found
