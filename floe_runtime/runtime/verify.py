"""Verify and record the tables a distributed engine wrote to Iceberg itself (trino, spark).

With `trino` or `spark` compute, dbt materializes each model as an Iceberg table in the
engine, which commits it to the environment's catalog (compile wired the engine to it,
`compiler/engines.py`). Nothing is copied through Python: after dbt, floe loads each table
from the catalog (pyiceberg), checks that it exists and that this run committed its current
snapshot, and records what publishing records for a table floe wrote — snapshot id, rows
(the snapshot summary's `total-records`), schema and location — in the node's result, its
span (`iceberg.snapshot_id`, `floe.rows`) and its lineage output.

Write–audit–publish: the engine commits before dbt's tests run, so when a test on a table
fails, floe rolls the table back to the snapshot that was current before this run (readers
then stay on it, as they would for a table floe publishes). When the table has no earlier
snapshot (its first run, or dbt-trino's `rename` that makes a new table each run) that is
impossible, and the node says so.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Status, StatusCode

from floe_runtime.runtime.iceberg import PublishResult
from floe_runtime.runtime.translator import FloeDbtTranslator
from floe_runtime.runtime.translator import node_props as _props

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

    from floe_runtime.runtime.session import NodeResult, RunSession

#: How much earlier than the run's start an engine's snapshot may say it was committed
#: (the engine's clock, not this machine's, stamps it).
CLOCK_SKEW_MS = 60_000
#: `PublishResult.mode` of a table the engine wrote and floe verified.
VERIFIED = "verified"


class VerifyError(Exception):
    """The engine's table is not in the catalog as this run should have left it."""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def verify_table(
    catalog: Catalog,
    namespace: str,
    name: str,
    *,
    since_ms: int | None,
    engine: str,
    may_be_unchanged: bool = False,
) -> PublishResult:
    """Load `namespace.name` from the catalog and record its current snapshot.

    VerifyError when the table is missing, or when its current snapshot is older than
    `since_ms` (the run's start, minus CLOCK_SKEW_MS): then the engine did not write it
    here. An incremental model (or snapshot) that added nothing leaves the snapshot as it
    was: `may_be_unchanged` accepts that.
    """
    from pyiceberg.exceptions import NoSuchTableError

    identifier = f"{namespace}.{name}"
    try:
        table = catalog.load_table((*namespace.split("."), name))
    except NoSuchTableError:
        raise VerifyError(
            f"{engine} reported success but table {identifier} is not in the Iceberg catalog: "
            f"the engine wrote it elsewhere (for spark, set +file_format: iceberg; for trino, "
            f"build the model in the Trino catalog compile configured)"
        ) from None
    snapshot = table.current_snapshot()
    if (
        snapshot is not None
        and since_ms is not None
        and not may_be_unchanged
        and snapshot.timestamp_ms < since_ms - CLOCK_SKEW_MS
    ):
        raise VerifyError(
            f"table {identifier}'s current snapshot {snapshot.snapshot_id} was committed at "
            f"{_iso(snapshot.timestamp_ms)}, before this run started ({_iso(since_ms)}): "
            f"{engine} did not write it in this catalog"
        )
    summary = snapshot.summary if snapshot is not None and snapshot.summary else None
    total = summary.get("total-records") if summary is not None else None
    added = summary.get("added-records") if summary is not None else None
    changed = snapshot is not None and (
        since_ms is None or snapshot.timestamp_ms >= since_ms - CLOCK_SKEW_MS
    )
    return PublishResult(
        identifier,
        int(total) if total is not None else 0,
        snapshot.snapshot_id if snapshot is not None else None,
        [(f.name, str(f.field_type)) for f in table.schema().fields],
        [],
        table.location(),
        VERIFIED,
        int(added) if added is not None and changed else 0,
    )


def roll_back(catalog: Catalog, namespace: str, name: str, since_ms: int) -> tuple[str, int | None]:
    """Make the table's current snapshot the last one committed before `since_ms` again.

    Returns ("rolled back", that snapshot's id); ("unchanged", None) when this run committed
    nothing to the table (or it is missing); ("no earlier snapshot", None) when the run's
    commit has no ancestor from before the run (a new table, or one replaced by a new table).
    """
    from pyiceberg.exceptions import NoSuchTableError

    try:
        table: Table = catalog.load_table((*namespace.split("."), name))
    except NoSuchTableError:
        return "unchanged", None
    current = table.current_snapshot()
    if current is None or current.timestamp_ms < since_ms - CLOCK_SKEW_MS:
        return "unchanged", None
    # Walk the current snapshot's ancestry back to the first one older than the run.
    by_id = {s.snapshot_id: s for s in table.snapshots()}
    parent = current.parent_snapshot_id
    while parent is not None and parent in by_id:
        snapshot = by_id[parent]
        if snapshot.timestamp_ms < since_ms - CLOCK_SKEW_MS:
            table.manage_snapshots().rollback_to_snapshot(snapshot.snapshot_id).commit()
            return "rolled back", snapshot.snapshot_id
        parent = snapshot.parent_snapshot_id
    return "no earlier snapshot", None


def run_start_ms(session: RunSession) -> int:
    """The run's start as wall-clock epoch milliseconds (the session keeps a monotonic one)."""
    return int((time.time() - (time.monotonic() - session.started)) * 1000)


def _may_be_unchanged(props: Mapping[str, Any], translator: FloeDbtTranslator) -> bool:
    return props.get("resource_type") == "snapshot" or translator.materialization(props) == (
        "incremental"
    )


def record_engine_tables(
    session: RunSession,
    todo: list[NodeResult],
    manifest: Mapping[str, Any],
    translator: FloeDbtTranslator,
    columns: Mapping[str, list[tuple[str, str]]],
) -> None:
    """The publish step for trino/spark compute: verify and record each built table.

    One span per table (`floe.verify <namespace>.<table>`, under the node's span) and the
    node's lineage COMPLETE with the Iceberg table as an output (or FAIL with the reason).
    """
    since = run_start_ms(session)
    engine = session.artifacts.compute.profile.type
    for result in todo:
        if session.cancelled:
            return
        props = _props(manifest, result.unique_id)
        namespace, table = translator.iceberg_identifier(props)
        started = time.monotonic()
        with session.table_span(
            "verify", result, namespace, table, {"floe.writer": engine}
        ) as span:
            try:
                result.published = verify_table(
                    session.catalog(),
                    namespace,
                    table,
                    since_ms=since,
                    engine=engine,
                    may_be_unchanged=_may_be_unchanged(props, translator),
                )
                result.rows = result.published.rows
                span.set_attribute("floe.rows", result.published.rows)
                if result.published.snapshot_id is not None:
                    span.set_attribute("iceberg.snapshot_id", result.published.snapshot_id)
                span.set_attribute("floe.status", "success")
            except Exception as exc:  # one table's failure must not stop the others
                text = str(exc) if isinstance(exc, VerifyError) else f"{type(exc).__name__}: {exc}"
                result.publish_error = session.secrets.redact(
                    f"verify Iceberg table {namespace}.{table} failed: {text}"
                )
                span.set_attribute("floe.status", "failed")
                span.set_status(Status(StatusCode.ERROR, result.publish_error[:500]))
        result.publish_seconds = time.monotonic() - started
        seen = dict(columns)
        if result.published is not None:
            # The engine's relation is this Iceberg table: the same columns for both.
            seen[result.unique_id] = result.published.columns
        session.end_published(result, props, manifest, translator, seen)


def withhold_engine_table(
    session: RunSession, result: NodeResult, props: Mapping[str, Any], translator: FloeDbtTranslator
) -> str:
    """Write–audit–publish for a table the engine already committed: roll it back to its
    snapshot from before the run. Returns the node's `withheld` text."""
    namespace, table = translator.iceberg_identifier(props)
    engine = session.artifacts.compute.profile.type
    try:
        outcome, previous = roll_back(session.catalog(), namespace, table, run_start_ms(session))
    except Exception as exc:
        text = session.secrets.redact(f"{type(exc).__name__}: {exc}")
        return f"{engine} committed {namespace}.{table} and rolling it back failed: {text}"
    if outcome == "unchanged":
        return f"this run committed nothing to {namespace}.{table}: readers see what they saw"
    if previous is None:
        return (
            f"{engine} already committed {namespace}.{table} and it has no snapshot from "
            "before this run to roll back to: readers see the new data"
        )
    return (
        f"rolled {namespace}.{table} back to snapshot {previous} (from before this run): "
        f"readers stay on it; {engine}'s new snapshot remains in the table's history"
    )
