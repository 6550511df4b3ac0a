"""One pipeline run as it happens: node results, spans, lineage events and publishing."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.compiler.engines import iceberg_warning, writes_iceberg
from floe_runtime.runtime.compute import Relation, UnsupportedCompute, open_reader
from floe_runtime.runtime.iceberg import PublishResult, load_catalog, publish_table
from floe_runtime.runtime.lineage import Dataset, LineageEmitter, RunState
from floe_runtime.runtime.locate import FailureLocation, locate_failure
from floe_runtime.runtime.results import FAILED, TEST_KINDS
from floe_runtime.runtime.secrets import Secrets
from floe_runtime.runtime.telemetry import Telemetry, create_telemetry
from floe_runtime.runtime.translator import ASSET_TYPES, FloeDbtTranslator
from floe_runtime.runtime.translator import node_props as _props
from floe_runtime.runtime.verify import record_engine_tables, withhold_engine_table

_RESULT_EVENTS = {"LogModelResult", "LogSeedResult", "LogSnapshotResult", "LogTestResult"}


#: Statuses dbt's run_results.json gives a node that did not succeed.
FAILED_STATUSES = FAILED
#: Resource types that are tests (data tests and unit tests).
TEST_TYPES = TEST_KINDS


@dataclass
class NodeResult:
    """The outcome of one dbt node in a run (and of its publish)."""

    unique_id: str
    name: str
    resource_type: str
    materialized: str
    status: str = "running"
    seconds: float = 0.0
    message: str = ""
    rows: int | None = None
    published: PublishResult | None = None
    publish_error: str | None = None
    publish_seconds: float = 0.0
    #: Why a built table was not published (write-audit-publish: a test on it failed).
    withheld: str | None = None
    #: The relation in the compute engine holding what dbt built.
    relation: str = ""
    location: FailureLocation | None = None
    compiled_sql: str | None = None
    #: Rows a test found failing (run_results.json's `failures`).
    failures: int | None = None
    #: Position in floe.yaml of the transform the node belongs to.
    transform: int | None = None
    #: The file defining the node (its .sql, .yml, .csv), when found.
    source: Path | None = None

    @property
    def failed(self) -> bool:
        """dbt failed the node (or a test failed), or its publish failed."""
        return self.status in FAILED_STATUSES or self.publish_error is not None


class RunObserver(Protocol):
    """Progress callbacks (the CLI draws with them)."""

    def node_started(self, node: NodeResult) -> None: ...

    def node_finished(self, node: NodeResult) -> None: ...

    def node_published(self, node: NodeResult) -> None: ...


class _QuietObserver:
    def node_started(self, node: NodeResult) -> None:
        return None

    def node_finished(self, node: NodeResult) -> None:
        return None

    def node_published(self, node: NodeResult) -> None:
        return None


def _ns(ts: str | None) -> int | None:
    """dbt's naive UTC timestamps → epoch nanoseconds for span times."""
    if not ts:
        return None
    try:
        value = datetime.fromisoformat(ts.rstrip("Z"))
    except ValueError:
        return None
    return int(value.replace(tzinfo=UTC).timestamp() * 1e9)


def strip_ansi(text: str) -> str:
    """Text without terminal colour codes (dbt and dagster-dbt colour their messages)."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


@dataclass
class _OpenRun:
    """A node's lineage run between START and its end."""

    job: str
    job_type: str
    source_path: Path | None
    inputs: list[Dataset]
    outputs: list[Dataset]
    materialization: str


@dataclass
class RunSession:
    """One pipeline run: its id, secrets, tracer, lineage emitter and node results."""

    artifacts: CompiledArtifacts
    secrets: Secrets
    run_id: str
    full_refresh: bool = False
    observer: RunObserver = field(default_factory=_QuietObserver)
    warn: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr))
    results: dict[str, NodeResult] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: dbt stopped before running any node (compilation or adapter start-up error).
    fatal: bool = False
    #: The run was stopped (abort): nothing more is published, no lineage but ABORT.
    cancelled: bool = False

    def __post_init__(self) -> None:
        self.telemetry: Telemetry = create_telemetry(self.artifacts, self.secrets)
        self.lineage = LineageEmitter(self.artifacts, self.secrets, self.run_id, self.warn)
        self._root: Span | None = None
        self._spans: dict[str, Span] = {}
        self._span_ends: dict[str, int | None] = {}  # failed nodes: span ends with dbt's error
        self._model_runs: dict[str, str] = {}
        self._open_runs: dict[str, _OpenRun] = {}
        self._pending_fail: list[str] = []
        self._pending_complete: list[str] = []
        self._settled: set[str] = set()  # nodes whose publishing and lineage are done
        self._read_lock = threading.Lock()
        # Every lineage event and the run span's end go through this lock, so an abort
        # from another thread never interleaves with (or follows) the run's own events.
        self._emit_lock = threading.RLock()
        self._catalog: Any = None
        self._children: set[subprocess.Popen[bytes]] = set()
        self._state = "new"  # new → started → finished
        self.started = time.monotonic()

    # -- attributes shared by every span
    def base_attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "floe.pipeline": self.artifacts.pipeline.name,
            "floe.environment": self.artifacts.environment,
            "floe.run_id": self.run_id,
        }
        attrs.update(self.artifacts.pipeline.observability.attributes)
        return attrs

    def start(self) -> None:
        """Open the run span and emit the pipeline's START event."""
        with self._emit_lock:
            if self.cancelled:
                return
            self._root = self.telemetry.tracer.start_span(
                f"floe.run {self.artifacts.pipeline.name}", attributes=self.base_attributes()
            )
            self.lineage.pipeline_event(RunState.START)
            self._state = "started"

    # -- stopping a run
    def track(self, process: subprocess.Popen[bytes]) -> None:
        """A dbt process of this run (stopped with the run on abort)."""
        self._children.add(process)
        if self.cancelled:  # started while an abort was under way
            self._stop_children(0.0)

    def untrack(self, process: subprocess.Popen[bytes]) -> None:
        """A dbt process that ended."""
        self._children.discard(process)

    def abort(self, reason: str, grace: float = 0.5, lock_timeout: float = 2.0) -> None:
        """Stop the run now, from any thread: dbt ended, nothing more published, lineage ABORT.

        dbt gets SIGTERM, then SIGKILL after `grace` seconds. Every open lineage run and
        the pipeline's own run end with ABORT; the run span ends as an error. Publishing
        threads check `cancelled` before each table, so no table starts to publish
        after this (a commit already under way is one atomic Iceberg commit).
        """
        self.cancelled = True
        self._stop_children(grace)
        # A thread stuck inside an emit (a lineage backend that hangs) must not stop the abort.
        if not self._emit_lock.acquire(timeout=lock_timeout):
            return
        try:
            if self._state != "started":
                return
            self._state = "finished"
            for unique_id in list(self._open_runs):
                self._end_run(unique_id, RunState.ABORT, error=reason)
            for span in list(self._spans.values()):
                span.set_status(Status(StatusCode.ERROR, reason[:500]))
                span.end()
            self._spans.clear()
            if self._root is not None:
                self._root.set_attribute("floe.status", "cancelled")
                self._root.set_status(Status(StatusCode.ERROR, reason[:500]))
                self._root.end()
                self._root = None
            self.lineage.pipeline_event(RunState.ABORT, reason)
        finally:
            self._emit_lock.release()
        with contextlib.suppress(Exception):
            self.telemetry.shutdown(timeout_millis=500)

    def _stop_children(self, grace: float) -> None:
        alive = [p for p in list(self._children) if p.poll() is None]
        for process in alive:
            with contextlib.suppress(OSError):
                process.terminate()
        deadline = time.monotonic() + grace
        for process in alive:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    process.kill()

    @property
    def failed(self) -> bool:
        return bool(self.errors) or any(r.failed for r in self.results.values())

    def finish(self) -> None:
        """End every open span and lineage run, then the run's own; flush exporters.

        Whatever stopped the run early (an exception, Dagster, a cancelled step),
        no model's lineage run stays START-only and no span stays open. After an
        abort there is nothing left to do.
        """
        with self._emit_lock:
            if self._state == "finished":
                return
            self._finish()

    def _finish(self) -> None:
        self._state = "finished"
        failed = self.failed
        reason = "; ".join(self.errors) or "the run ended before this node finished"
        for unique_id in list(self._open_runs):
            self._end_run(unique_id, RunState.ABORT, error=reason)
        for unique_id, span in list(self._spans.items()):
            span.set_status(Status(StatusCode.ERROR, reason[:500]))
            span.end(end_time=self._span_ends.pop(unique_id, None))
        self._spans.clear()
        if self._root is not None:
            models = [r for r in self.results.values() if r.resource_type in ASSET_TYPES]
            self._root.set_attribute("floe.assets", len(models))
            self._root.set_attribute(
                "floe.failed", sum(1 for r in self.results.values() if r.failed)
            )
            self._root.set_attribute("floe.status", "failed" if failed else "success")
            if failed:
                self._root.set_status(Status(StatusCode.ERROR, self._failure_summary()[:500]))
            else:
                self._root.set_status(Status(StatusCode.OK))
            self._root.end()
            self._root = None
        error = self._failure_summary() if failed else None
        self.lineage.pipeline_event(RunState.FAIL if failed else RunState.COMPLETE, error)
        self.telemetry.shutdown()

    def _failure_summary(self) -> str:
        return "; ".join(self.errors) or (
            "failed: " + ", ".join(r.name for r in self.results.values() if r.failed)
        )

    # -- lineage runs of nodes
    def _begin_run(
        self,
        unique_id: str,
        props: Mapping[str, Any],
        manifest: Mapping[str, Any],
        translator: FloeDbtTranslator,
    ) -> None:
        with self._emit_lock:
            if self.cancelled:
                return
            self._begin_run_locked(unique_id, props, manifest, translator)

    def _begin_run_locked(
        self,
        unique_id: str,
        props: Mapping[str, Any],
        manifest: Mapping[str, Any],
        translator: FloeDbtTranslator,
    ) -> None:
        run = _OpenRun(
            translator.lineage_job_name(props),
            translator.lineage_job_type(props),
            translator.source_path(props),
            self._inputs(manifest, props, translator),
            [translator.compute_dataset(props)],
            translator.materialization(props),
        )
        self._model_runs[unique_id] = str(uuid.uuid4())
        self._open_runs[unique_id] = run
        self.lineage.model_event(
            RunState.START,
            self._model_runs[unique_id],
            run.job,
            run.inputs,
            run.outputs,
            job_type=run.job_type,
            source_path=run.source_path,
            materialization=run.materialization,
        )

    def _end_run(
        self,
        unique_id: str,
        state: RunState,
        *,
        inputs: list[Dataset] | None = None,
        outputs: list[Dataset] | None = None,
        error: str | None = None,
    ) -> None:
        with self._emit_lock:
            if self.cancelled and state is not RunState.ABORT:
                return
            run = self._open_runs.pop(unique_id, None)
            if run is None:
                return
            self._emit_end(unique_id, run, state, inputs, outputs, error)

    def _emit_end(
        self,
        unique_id: str,
        run: _OpenRun,
        state: RunState,
        inputs: list[Dataset] | None,
        outputs: list[Dataset] | None,
        error: str | None,
    ) -> None:
        result = self.results.get(unique_id)
        self.lineage.model_event(
            state,
            self._model_runs[unique_id],
            run.job,
            run.inputs if inputs is None else inputs,
            run.outputs if outputs is None else outputs,
            error=error,
            job_type=run.job_type,
            sql=result.compiled_sql if result else None,
            source_path=run.source_path,
            materialization=run.materialization,
        )

    # -- dbt events
    def on_dbt_event(
        self, raw: Mapping[str, Any], manifest: Mapping[str, Any], translator: FloeDbtTranslator
    ) -> None:
        """Follow one dbt JSON log event: start/finish spans, lineage, progress."""
        info = raw.get("info", {})
        data = raw.get("data", {})
        node = data.get("node_info") or {}
        unique_id = node.get("unique_id")
        name = info.get("name")
        if not unique_id:
            return
        if name == "LogStartLine":
            result = self._result(unique_id, manifest, node, translator)
            if result.resource_type in ASSET_TYPES:
                props = _props(manifest, unique_id)
                ctx = trace.set_span_in_context(self._root) if self._root else None
                self._spans[unique_id] = self.telemetry.tracer.start_span(
                    f"dbt.{result.resource_type} {result.name}",
                    context=ctx,
                    start_time=_ns(node.get("node_started_at")),
                    attributes={
                        **self.base_attributes(),
                        "dbt.unique_id": unique_id,
                        "dbt.resource_type": result.resource_type,
                        "dbt.materialized": result.materialized,
                    },
                )
                self._begin_run(unique_id, props, manifest, translator)
            self.observer.node_started(result)
        elif name in _RESULT_EVENTS:
            result = self._result(unique_id, manifest, node, translator)
            status = str(node.get("node_status") or "").lower()
            if status in ("", "none"):  # dbt gives unit tests' node_status as "None"
                status = str(data.get("status") or "").lower()
            result.status = status
            result.seconds = float(data.get("execution_time") or 0.0)
            if result.status in (*FAILED_STATUSES, "warn"):
                result.message = self.secrets.redact(strip_ansi(info.get("msg", "")))
            self._node_finished(result, manifest, translator, node.get("node_finished_at"))

    def _result(
        self,
        unique_id: str,
        manifest: Mapping[str, Any],
        node: Mapping[str, Any],
        translator: FloeDbtTranslator | None = None,
    ) -> NodeResult:
        result = self.results.get(unique_id)
        if result is None:
            props = _props(manifest, unique_id)
            result = NodeResult(
                unique_id,
                str(node.get("node_name") or props.get("name") or unique_id),
                str(node.get("resource_type") or props.get("resource_type") or ""),
                str(node.get("materialized") or props.get("config", {}).get("materialized") or ""),
                relation=_relation_name(props),
            )
            if translator is not None:
                result.transform = translator.target.index
                result.source = translator.source_path(props)
            self.results[unique_id] = result
        return result

    def _node_finished(
        self,
        result: NodeResult,
        manifest: Mapping[str, Any],
        translator: FloeDbtTranslator,
        finished_at: str | None,
    ) -> None:
        props = _props(manifest, result.unique_id)
        span = self._spans.get(result.unique_id)
        if span is not None:
            span.set_attribute("dbt.status", result.status)
            span.set_attribute("floe.status", "failed" if result.failed else "success")
            if result.failed:
                # The span ends once run_results.json gives dbt's full error text.
                self._span_ends[result.unique_id] = _ns(finished_at)
            else:
                span.end(end_time=_ns(finished_at))
                del self._spans[result.unique_id]
        if result.unique_id in self._open_runs:
            if result.failed:
                # FAIL waits for run_results.json, which holds dbt's full error text.
                self._pending_fail.append(result.unique_id)
            elif not translator.is_published(props):
                # COMPLETE once dbt is done: then the relation's real columns can be read.
                self._pending_complete.append(result.unique_id)
        self.observer.node_finished(result)

    def skip(
        self,
        unique_ids: set[str],
        manifest: Mapping[str, Any],
        reason: str,
        translator: FloeDbtTranslator | None = None,
    ) -> None:
        """Nodes floe did not hand to dbt because something upstream failed."""
        for unique_id in sorted(unique_ids):
            if unique_id in self.results:
                continue
            result = self._result(unique_id, manifest, {}, translator)
            result.status = "skipped"
            result.message = reason
            self.observer.node_finished(result)

    def _inputs(
        self,
        manifest: Mapping[str, Any],
        props: Mapping[str, Any],
        translator: FloeDbtTranslator,
        columns: Mapping[str, list[tuple[str, str]]] | None = None,
    ) -> list[Dataset]:
        return [
            translator.compute_dataset(_props(manifest, dep), (columns or {}).get(dep))
            for dep in props.get("depends_on", {}).get("nodes", [])
            if dep.split(".")[0] in ("model", "seed", "snapshot", "source")
        ]

    def apply_run_results(
        self, target_path: Path, manifest: Mapping[str, Any], translator: FloeDbtTranslator
    ) -> None:
        """Take statuses, counts and full error texts from dbt's run_results.json.

        It is the reference for what happened: skips dbt reports only there, and
        errors with the whole text (the log line is dbt's progress line).
        """
        try:
            data = json.loads((target_path / "run_results.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        project_dir = Path(translator.target.project_dir)
        for item in data.get("results", []):
            unique_id = item.get("unique_id", "")
            status = str(item.get("status", "")).lower()
            message = self.secrets.redact(strip_ansi(str(item.get("message") or ""))).strip()
            known = unique_id in self.results
            result = self._result(unique_id, manifest, {}, translator)
            result.status = status or result.status
            if not known:
                result.seconds = float(item.get("execution_time") or 0.0)
                self.observer.node_finished(result)
            if status in (*FAILED_STATUSES, "warn") and message:
                result.message = message
            result.compiled_sql = item.get("compiled_code") or result.compiled_sql
            if isinstance(item.get("failures"), int):
                result.failures = item["failures"]
            if status in FAILED_STATUSES:
                result.location = locate_failure(
                    _props(manifest, unique_id), message, project_dir, target_path
                )
        self.flush_failures(manifest, translator)

    def flush_failures(self, manifest: Mapping[str, Any], translator: FloeDbtTranslator) -> None:
        """End failed nodes' spans and lineage runs with the error text dbt reported."""
        for unique_id, span in list(self._spans.items()):
            result = self.results.get(unique_id)
            if result is None or unique_id not in self._span_ends:
                continue
            text = result.message or result.status
            span.set_status(Status(StatusCode.ERROR, text[:2000]))
            span.add_event(
                "exception",
                {
                    "exception.type": f"dbt.{result.status.replace(' ', '_')}",
                    "exception.message": text,
                    **({"code.filepath": str(result.location.source)} if result.location else {}),
                },
            )
            span.end(end_time=self._span_ends.pop(unique_id))
            del self._spans[unique_id]
        for unique_id in self._pending_fail:
            result = self.results[unique_id]
            self._end_run(unique_id, RunState.FAIL, error=result.message or result.status)
        self._pending_fail.clear()

    # -- publishing
    def catalog(self) -> Any:
        """The resolved Iceberg catalog (opened once per run)."""
        if self._catalog is None:
            self._catalog = load_catalog(self.artifacts, self.secrets)
        return self._catalog

    def publish(self, manifest: Mapping[str, Any], translator: FloeDbtTranslator) -> None:
        """After dbt: publish what passed its tests, and end the transform's lineage runs.

        Write–audit–publish: a table whose own tests failed stays unpublished
        (readers keep the previous snapshot; the built data waits in the compute
        relation for inspection); failed or skipped nodes publish nothing. Lineage
        gets the relations' real columns, row counts and the tests' results.
        """
        if self.cancelled:
            return
        mine = [
            r
            for uid, r in self.results.items()
            if uid in translator.own and uid not in self._settled
        ]
        self._settled |= {r.unique_id for r in mine}
        todo: list[NodeResult] = []
        withheld: list[NodeResult] = []
        # Trino and Spark write Iceberg themselves: floe verifies and records (verify.py).
        engine_writes = writes_iceberg(self.artifacts.compute.profile)
        for result in mine:
            props = _props(manifest, result.unique_id)
            if result.status != "success" or not translator.is_published(props):
                continue
            failing = self._failing_tests(result.unique_id, manifest, translator)
            if failing and engine_writes:  # trino/spark committed it already: roll back
                held = withhold_engine_table(self, result, props, translator)
                result.withheld = f"not published: {', '.join(failing)} failed; {held}"
                withheld.append(result)
            elif failing:
                result.withheld = (
                    f"not published: {', '.join(failing)} failed; readers stay on the previous "
                    f"snapshot of {'.'.join(translator.iceberg_identifier(props))}; the unpublished "
                    f"data is in {result.relation or 'the compute engine'}"
                )
                withheld.append(result)
            else:
                todo.append(result)
        with self._compute_reader(warn=bool(todo) and not engine_writes) as reader:
            columns = self._columns(reader, mine, manifest)
            for uid in [u for u in self._pending_complete if u in translator.own]:
                self._pending_complete.remove(uid)
                self._end_with_columns(uid, RunState.COMPLETE, manifest, translator, columns)
            for result in withheld:
                self._end_with_columns(
                    result.unique_id, RunState.FAIL, manifest, translator, columns, result.withheld
                )
                self.observer.node_published(result)
            if todo and engine_writes:
                record_engine_tables(self, todo, manifest, translator, columns)
            elif todo and reader is not None:
                self._publish_all(todo, reader, manifest, translator, columns)
            for result in todo if reader is None and not engine_writes else []:
                self._end_with_columns(
                    result.unique_id, RunState.COMPLETE, manifest, translator, columns
                )
            self._test_runs(mine, manifest, translator, columns)

    @contextlib.contextmanager
    def _compute_reader(self, warn: bool) -> Iterator[Any]:
        """A reader on the compute engine, or None where floe cannot read it back."""
        try:
            cm = open_reader(self.artifacts, self.secrets)
            reader = cm.__enter__()
        except UnsupportedCompute as exc:
            if warn:
                self.warn(
                    iceberg_warning(self.artifacts.compute.profile) or f"publish skipped: {exc}"
                )
            yield None
            return
        try:
            yield reader
        finally:
            cm.__exit__(None, None, None)

    def _columns(
        self, reader: Any, results: list[NodeResult], manifest: Mapping[str, Any]
    ) -> dict[str, list[tuple[str, str]]]:
        """Real columns of the built relations and of what they read, by unique id."""
        if reader is None:
            return {}
        wanted = {r.unique_id for r in results if r.status == "success"}
        for uid in list(wanted):
            wanted |= set(_props(manifest, uid).get("depends_on", {}).get("nodes", []))
        found: dict[str, list[tuple[str, str]]] = {}
        for uid in sorted(wanted):
            props = _props(manifest, uid)
            if props.get("resource_type") not in (*ASSET_TYPES, "source"):
                continue
            name = props.get("identifier") if props.get("resource_type") == "source" else None
            relation = Relation(
                props.get("database"),
                str(props.get("schema") or ""),
                str(name or props.get("alias") or props.get("name")),
            )
            try:
                with self._read_lock:
                    cols = reader.columns(relation)
            except Exception:  # a source outside the engine (files, Iceberg): no schema facet
                continue
            if cols:
                found[uid] = cols
        return found

    def _end_with_columns(
        self,
        unique_id: str,
        state: RunState,
        manifest: Mapping[str, Any],
        translator: FloeDbtTranslator,
        columns: Mapping[str, list[tuple[str, str]]],
        error: str | None = None,
        extra: list[Dataset] | None = None,
    ) -> None:
        props = _props(manifest, unique_id)
        rows = self.results[unique_id].rows if unique_id in self.results else None
        self._end_run(
            unique_id,
            state,
            inputs=self._inputs(manifest, props, translator, columns),
            outputs=[translator.compute_dataset(props, columns.get(unique_id), rows=rows)]
            + (extra or []),
            error=error,
        )

    def _test_runs(
        self,
        results: list[NodeResult],
        manifest: Mapping[str, Any],
        translator: FloeDbtTranslator,
        columns: Mapping[str, list[tuple[str, str]]],
    ) -> None:
        """One TEST run per tested relation, its tests' results as data quality assertions."""
        by_node: dict[str, list[Any]] = {}
        for result in results:
            if result.resource_type != "test":
                continue
            props = _props(manifest, result.unique_id)
            assertion = translator.assertion(props, result.status, result.failures)
            if assertion is None:
                continue
            for tested in translator.tested_nodes(props):
                by_node.setdefault(tested, []).append(assertion)
        for tested, assertions in sorted(by_node.items()):
            props = _props(manifest, tested)
            with self._emit_lock:
                if self.cancelled:
                    return
                self.lineage.test_event(
                    translator.lineage_tests_job_name(props),
                    [translator.compute_dataset(props, columns.get(tested), assertions=assertions)],
                    source_path=translator.source_path(props),
                )

    def _publish_all(
        self,
        todo: list[NodeResult],
        reader: Any,
        manifest: Mapping[str, Any],
        translator: FloeDbtTranslator,
        columns: Mapping[str, list[tuple[str, str]]],
    ) -> None:
        # Namespaces once, then tables in parallel: Parquet writing and catalog round
        # trips overlap; each table is still its own atomic commit.
        namespaces = {translator.iceberg_identifier(_props(manifest, r.unique_id))[0] for r in todo}
        try:
            for namespace in sorted(namespaces):
                self.catalog().create_namespace_if_not_exists(tuple(namespace.split(".")))
        except Exception as exc:
            text = self.secrets.redact(f"{type(exc).__name__}: {exc}")
            for result in todo:
                result.publish_error = f"cannot create Iceberg namespace: {text}"
                self._end_with_columns(
                    result.unique_id,
                    RunState.FAIL,
                    manifest,
                    translator,
                    columns,
                    result.publish_error,
                )
                self.observer.node_published(result)
            return
        workers = max(1, min(4, len(todo)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="floe-publish") as pool:
            list(
                pool.map(
                    lambda r: self._publish_one(r, reader, manifest, translator, columns), todo
                )
            )

    def _failing_tests(
        self, unique_id: str, manifest: Mapping[str, Any], translator: FloeDbtTranslator
    ) -> list[str]:
        """Names of the failed tests attached to a node (generic, singular and unit tests)."""
        failing = []
        for result in self.results.values():
            if result.resource_type not in TEST_TYPES or not result.failed:
                continue
            if unique_id in translator.tested_nodes(_props(manifest, result.unique_id)):
                failing.append(f"{result.resource_type.replace('_', ' ')} {result.name}")
        return sorted(failing)

    def _publish_one(
        self,
        result: NodeResult,
        reader: Any,
        manifest: Mapping[str, Any],
        translator: FloeDbtTranslator,
        columns: Mapping[str, list[tuple[str, str]]],
    ) -> None:
        if self.cancelled:
            return
        props = _props(manifest, result.unique_id)
        namespace, table = translator.iceberg_identifier(props)
        started = time.monotonic()
        with self.table_span("publish", result, namespace, table) as span:
            try:
                relation = Relation(
                    props.get("database"), props["schema"], props.get("alias") or props["name"]
                )
                with self._read_lock:  # one reader connection; reads are quick
                    data = reader.read(relation)
                if self.cancelled:  # stopped while this table was being read
                    return
                result.published = publish_table(
                    self.catalog(),
                    namespace,
                    table,
                    data,
                    {
                        "floe.pipeline": self.artifacts.pipeline.name,
                        "floe.environment": self.artifacts.environment,
                        "floe.run-id": self.run_id,
                        "dbt.unique-id": result.unique_id,
                    },
                    ensure_namespace=False,
                    increment=translator.increment(props, self.full_refresh),
                    partition=translator.partition(props, self.warn),
                )
                result.rows = result.published.rows
                span.set_attribute("floe.rows", result.published.rows)
                if result.published.snapshot_id is not None:
                    span.set_attribute("iceberg.snapshot_id", result.published.snapshot_id)
                span.set_attribute("floe.status", "success")
            except Exception as exc:  # one table's failure must not stop the others
                text = self.secrets.redact(f"{type(exc).__name__}: {exc}")
                result.publish_error = f"publish to Iceberg {namespace}.{table} failed: {text}"
                span.set_attribute("floe.status", "failed")
                span.set_status(Status(StatusCode.ERROR, result.publish_error[:500]))
        result.publish_seconds = time.monotonic() - started
        self.end_published(result, props, manifest, translator, columns)

    @contextlib.contextmanager
    def table_span(
        self,
        verb: str,
        result: NodeResult,
        namespace: str,
        table: str,
        attributes: Mapping[str, Any] | None = None,
    ) -> Iterator[Span]:
        """The span `floe.<verb> <namespace>.<table>` of publishing (or verifying) one table:
        under the node's span while it is open, else the run's. Exceptions are the caller's
        to record (a table's failure is its status, not a raised error)."""
        parent = self._spans.get(result.unique_id) or self._root
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        with self.telemetry.tracer.start_as_current_span(
            f"floe.{verb} {namespace}.{table}",
            context=ctx,
            attributes={
                **self.base_attributes(),
                "dbt.unique_id": result.unique_id,
                "iceberg.table": f"{namespace}.{table}",
                **(attributes or {}),
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span

    def end_published(
        self,
        result: NodeResult,
        props: Mapping[str, Any],
        manifest: Mapping[str, Any],
        translator: FloeDbtTranslator,
        columns: Mapping[str, list[tuple[str, str]]],
    ) -> None:
        """End a published (or verified) node's lineage run, the Iceberg table among its
        outputs (FAIL with the error when there is none), and tell the observer."""
        with self._emit_lock:
            iceberg = (
                [
                    translator.iceberg_dataset(
                        props,
                        result.published.columns,
                        location=result.published.location,
                        rows=result.published.rows,
                    )
                ]
                if result.published is not None
                else []
            )
            self._end_with_columns(
                result.unique_id,
                RunState.FAIL if result.publish_error else RunState.COMPLETE,
                manifest,
                translator,
                columns,
                result.publish_error,
                iceberg,
            )
            self.observer.node_published(result)


def _relation_name(props: Mapping[str, Any]) -> str:
    parts = [props.get("database"), props.get("schema"), props.get("alias") or props.get("name")]
    return ".".join(str(p) for p in parts if p) if props.get("resource_type") in ASSET_TYPES else ""
