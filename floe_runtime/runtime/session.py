"""One pipeline run as it happens: node results, spans, lineage events and publishing."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.runtime.compute import Relation, UnsupportedCompute, open_reader
from floe_runtime.runtime.iceberg import PublishResult, load_catalog, publish_table
from floe_runtime.runtime.lineage import Dataset, LineageEmitter, RunState
from floe_runtime.runtime.secrets import Secrets
from floe_runtime.runtime.telemetry import Telemetry, create_telemetry
from floe_runtime.runtime.translator import ASSET_TYPES, FloeDbtTranslator
from floe_runtime.runtime.translator import node_props as _props

_RESULT_EVENTS = {"LogModelResult", "LogSeedResult", "LogSnapshotResult", "LogTestResult"}


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

    @property
    def failed(self) -> bool:
        """dbt failed the node (or a test failed), or its publish failed."""
        return self.status in ("error", "fail", "runtime error") or self.publish_error is not None


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

    def __post_init__(self) -> None:
        self.telemetry: Telemetry = create_telemetry(self.artifacts, self.secrets)
        self.lineage = LineageEmitter(self.artifacts, self.secrets, self.run_id, self.warn)
        self._root: Span | None = None
        self._spans: dict[str, Span] = {}
        self._model_runs: dict[str, str] = {}
        self._pending_fail: list[str] = []
        self._read_lock = threading.Lock()
        self._emit_lock = threading.Lock()
        self._catalog: Any = None
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
        self._root = self.telemetry.tracer.start_span(
            f"floe.run {self.artifacts.pipeline.name}", attributes=self.base_attributes()
        )
        self.lineage.pipeline_event(RunState.START)

    @property
    def failed(self) -> bool:
        return bool(self.errors) or any(r.failed for r in self.results.values())

    def finish(self) -> None:
        """Close the run span, emit the pipeline's COMPLETE/FAIL and flush exporters."""
        failed = self.failed
        if self._root is not None:
            models = [r for r in self.results.values() if r.resource_type in ASSET_TYPES]
            self._root.set_attribute("floe.assets", len(models))
            self._root.set_attribute(
                "floe.failed", sum(1 for r in self.results.values() if r.failed)
            )
            self._root.set_attribute("floe.status", "failed" if failed else "success")
            self._root.set_status(Status(StatusCode.ERROR if failed else StatusCode.OK))
            self._root.end()
            self._root = None
        error = "; ".join(self.errors) or (
            "failed: " + ", ".join(r.name for r in self.results.values() if r.failed)
            if failed
            else None
        )
        self.lineage.pipeline_event(RunState.FAIL if failed else RunState.COMPLETE, error)
        self.telemetry.shutdown()

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
        if not unique_id or unique_id.startswith("unit_test"):
            return
        if name == "LogStartLine":
            result = NodeResult(
                unique_id,
                node.get("node_name", unique_id),
                node.get("resource_type", ""),
                node.get("materialized", ""),
            )
            self.results[unique_id] = result
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
                self._model_runs[unique_id] = str(uuid.uuid4())
                self.lineage.model_event(
                    RunState.START,
                    self._model_runs[unique_id],
                    translator.lineage_job_name(props),
                    self._inputs(manifest, props, translator),
                    [translator.compute_dataset(props)],
                )
            self.observer.node_started(result)
        elif name in _RESULT_EVENTS:
            result = self.results.get(unique_id) or NodeResult(
                unique_id,
                node.get("node_name", unique_id),
                node.get("resource_type", ""),
                node.get("materialized", ""),
            )
            self.results[unique_id] = result
            result.status = str(node.get("node_status") or data.get("status") or "").lower()
            result.seconds = float(data.get("execution_time") or 0.0)
            if result.status in ("error", "fail", "warn"):
                result.message = self.secrets.redact(_strip_ansi(info.get("msg", "")))
            self._node_finished(result, manifest, translator, node.get("node_finished_at"))

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
                span.set_status(Status(StatusCode.ERROR, result.message[:500] or result.status))
            span.end(end_time=_ns(finished_at))
        if result.resource_type in ASSET_TYPES and result.unique_id in self._model_runs:
            if result.failed:
                # FAIL waits for run_results.json, which holds dbt's full error text.
                self._pending_fail.append(result.unique_id)
            elif not translator.is_published(props):
                self.lineage.model_event(
                    RunState.COMPLETE,
                    self._model_runs[result.unique_id],
                    translator.lineage_job_name(props),
                    self._inputs(manifest, props, translator),
                    [translator.compute_dataset(props)],
                )
        self.observer.node_finished(result)

    def _inputs(
        self, manifest: Mapping[str, Any], props: Mapping[str, Any], translator: FloeDbtTranslator
    ) -> list[Dataset]:
        return [
            translator.compute_dataset(_props(manifest, dep))
            for dep in props.get("depends_on", {}).get("nodes", [])
            if dep.split(".")[0] in ("model", "seed", "snapshot", "source")
        ]

    def apply_run_results(
        self, run_results_path: Path, manifest: Mapping[str, Any], translator: FloeDbtTranslator
    ) -> None:
        """Fill in statuses dbt reported only at the end (skips) and the full error text."""
        try:
            data = json.loads(run_results_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.flush_failures(manifest, translator)
            return
        for item in data.get("results", []):
            unique_id = item.get("unique_id", "")
            if unique_id.startswith("unit_test"):
                continue
            status = str(item.get("status", "")).lower()
            message = self.secrets.redact(str(item.get("message") or ""))
            result = self.results.get(unique_id)
            if result is None:
                props = _props(manifest, unique_id)
                result = NodeResult(
                    unique_id,
                    props.get("name", unique_id),
                    props.get("resource_type", ""),
                    props.get("config", {}).get("materialized", ""),
                    status=status,
                )
                self.results[unique_id] = result
                self.observer.node_finished(result)
            if status in ("error", "fail", "warn") and message:
                result.message = message
            result.status = status or result.status
        self.flush_failures(manifest, translator)

    def flush_failures(self, manifest: Mapping[str, Any], translator: FloeDbtTranslator) -> None:
        """Emit the FAIL events of failed nodes (with the error text dbt reported)."""
        for unique_id in self._pending_fail:
            result = self.results[unique_id]
            props = _props(manifest, unique_id)
            self.lineage.model_event(
                RunState.FAIL,
                self._model_runs[unique_id],
                translator.lineage_job_name(props),
                self._inputs(manifest, props, translator),
                [translator.compute_dataset(props)],
                error=result.message or result.status,
            )
        self._pending_fail.clear()

    # -- publishing
    def catalog(self) -> Any:
        """The resolved Iceberg catalog (opened once per run)."""
        if self._catalog is None:
            self._catalog = load_catalog(self.artifacts, self.secrets)
        return self._catalog

    def publish(self, manifest: Mapping[str, Any], translator: FloeDbtTranslator) -> None:
        """Publish every table model that succeeded; a failed one keeps its previous snapshot."""
        todo = [
            r
            for r in self.results.values()
            if r.resource_type == "model"
            and not r.failed
            and r.status == "success"
            and translator.is_published(_props(manifest, r.unique_id))
        ]
        if not todo:
            return
        try:
            reader_cm = open_reader(self.artifacts, self.secrets)
            reader = reader_cm.__enter__()
        except UnsupportedCompute as exc:
            self.warn(f"publish skipped: {exc}")
            return
        try:
            # Namespaces once, then tables in parallel: Parquet writing and catalog round
            # trips overlap; each table is still its own atomic commit.
            namespaces = {
                translator.iceberg_identifier(_props(manifest, r.unique_id))[0] for r in todo
            }
            try:
                for namespace in sorted(namespaces):
                    self.catalog().create_namespace_if_not_exists(tuple(namespace.split(".")))
            except Exception as exc:
                text = self.secrets.redact(f"{type(exc).__name__}: {exc}")
                for result in todo:
                    result.publish_error = f"cannot create Iceberg namespace: {text}"
                self.flush_publish_failures(todo, manifest, translator)
                return
            workers = max(1, min(4, len(todo)))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="floe-publish") as pool:
                list(pool.map(lambda r: self._publish_one(r, reader, manifest, translator), todo))
        finally:
            reader_cm.__exit__(None, None, None)

    def flush_publish_failures(
        self, todo: list[NodeResult], manifest: Mapping[str, Any], translator: FloeDbtTranslator
    ) -> None:
        """FAIL events and progress lines for tables that could not be published at all."""
        for result in todo:
            props = _props(manifest, result.unique_id)
            if result.unique_id in self._model_runs:
                self.lineage.model_event(
                    RunState.FAIL,
                    self._model_runs[result.unique_id],
                    translator.lineage_job_name(props),
                    self._inputs(manifest, props, translator),
                    [translator.compute_dataset(props)],
                    error=result.publish_error,
                )
            self.observer.node_published(result)

    def _publish_one(
        self,
        result: NodeResult,
        reader: Any,
        manifest: Mapping[str, Any],
        translator: FloeDbtTranslator,
    ) -> None:
        props = _props(manifest, result.unique_id)
        namespace, table = translator.iceberg_identifier(props)
        parent = self._spans.get(result.unique_id) or self._root
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        started = time.monotonic()
        with self.telemetry.tracer.start_as_current_span(
            f"floe.publish {namespace}.{table}",
            context=ctx,
            attributes={
                **self.base_attributes(),
                "dbt.unique_id": result.unique_id,
                "iceberg.table": f"{namespace}.{table}",
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                relation = Relation(
                    props.get("database"), props["schema"], props.get("alias") or props["name"]
                )
                with self._read_lock:  # one reader connection; reads are quick
                    data = reader.read(relation)
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
        with self._emit_lock:
            self._after_publish(result, props, manifest, translator)

    def _after_publish(
        self,
        result: NodeResult,
        props: Mapping[str, Any],
        manifest: Mapping[str, Any],
        translator: FloeDbtTranslator,
    ) -> None:
        if result.unique_id in self._model_runs:
            outputs = [translator.compute_dataset(props)]
            if result.published is not None:
                outputs.append(translator.iceberg_dataset(props, result.published.columns))
            self.lineage.model_event(
                RunState.FAIL if result.publish_error else RunState.COMPLETE,
                self._model_runs[result.unique_id],
                translator.lineage_job_name(props),
                self._inputs(manifest, props, translator),
                outputs,
                error=result.publish_error,
            )
        self.observer.node_published(result)


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
