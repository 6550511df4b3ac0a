"""dbt through Dagster: the translator (the one dbt↔Dagster seam), the assets and a run session.

The asset body runs `dbt build` with dagster-dbt, follows dbt's event stream
(spans, lineage START/FAIL, progress), and when dbt is done publishes every
table model to Iceberg. The same assets serve `floe-runtime run` (in-process
`materialize`) and `dagster dev` / Kubernetes (the code location in
floe_runtime.dagster_defs), so both publish, trace and emit lineage alike.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from dagster import AssetExecutionContext, AssetKey, Failure
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource
from dagster_dbt import dbt_assets as _dbt_assets
from dagster_dbt.utils import select_unique_ids
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from floe_runtime.compiler.artifacts import CompiledArtifacts, DbtTarget
from floe_runtime.config.base import secret_env_var
from floe_runtime.config.platform import DuckDBCompute, PostgresCompute
from floe_runtime.runtime.compute import Relation, UnsupportedCompute, open_reader
from floe_runtime.runtime.dbt_project import (
    PreparedDbt,
    dbt_env,
    dbt_executable,
    floe_dir,
    prepare_dbt,
)
from floe_runtime.runtime.iceberg import (
    PublishResult,
    catalog_namespace_uri,
    load_catalog,
    publish_table,
)
from floe_runtime.runtime.lineage import Dataset, LineageEmitter, RunState
from floe_runtime.runtime.secrets import Secrets, environ_set, resolve_secrets
from floe_runtime.runtime.telemetry import Telemetry, create_telemetry

#: dbt resource types that become Dagster assets with their own span and lineage run.
ASSET_TYPES = ("model", "seed", "snapshot")
#: dbt materializations published as Iceberg tables.
PUBLISHED_MATERIALIZATIONS = ("table", "incremental")
_RESULT_EVENTS = {"LogModelResult", "LogSeedResult", "LogSnapshotResult", "LogTestResult"}


def compute_namespace(artifacts: CompiledArtifacts) -> str:
    """The OpenLineage namespace of relations in the compute engine (no secrets)."""
    profile = artifacts.compute.profile
    if isinstance(profile, DuckDBCompute):
        path = profile.path
        return "duckdb://" + (path if path == ":memory:" else str(artifacts.resolve_path(path)))
    if isinstance(profile, PostgresCompute):
        return f"postgres://{profile.host}:{profile.port}"
    host = getattr(profile, "host", None) or getattr(profile, "account", None) or ""
    return f"{profile.type}://{host or getattr(profile, 'project', '')}"


class FloeDbtTranslator(DagsterDbtTranslator):
    """How floe maps dbt nodes to Dagster assets, Iceberg tables and lineage datasets.

    Asset keys are `<namespace parts>/<model>` so two transforms never collide;
    table and incremental models are the ones published to Iceberg. A node this
    transform does not build but another one does (two transforms over one dbt
    project, say staging then marts) keeps the other transform's key, so Dagster
    sees the dependency and builds the upstream transform first.
    """

    def __init__(
        self,
        artifacts: CompiledArtifacts,
        target: DbtTarget,
        own: frozenset[str] = frozenset(),
        built_elsewhere: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(DagsterDbtTranslatorSettings(enable_asset_checks=True))
        self.artifacts = artifacts
        self.target = target
        self.namespace = target.namespace
        self.own = own
        self.built_elsewhere = dict(built_elsewhere or {})
        self._compute_ns = compute_namespace(artifacts)
        self._catalog_ns = catalog_namespace_uri(artifacts)

    # -- Dagster
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props.get("resource_type") in ASSET_TYPES:
            unique_id = dbt_resource_props.get("unique_id", "")
            namespace = self.namespace
            if unique_id not in self.own:
                namespace = self.built_elsewhere.get(unique_id, namespace)
            return AssetKey([*namespace.split("."), dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return self.namespace.replace(".", "_")

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        metadata = dict(super().get_metadata(dbt_resource_props))
        if self.is_published(dbt_resource_props):
            metadata["floe/iceberg_table"] = ".".join(self.iceberg_identifier(dbt_resource_props))
        return metadata

    # -- Iceberg
    def is_published(self, props: Mapping[str, Any]) -> bool:
        """Whether the node is published as an Iceberg table."""
        materialized = props.get("config", {}).get("materialized") or props.get("materialized")
        return props.get("resource_type") == "model" and materialized in PUBLISHED_MATERIALIZATIONS

    def iceberg_identifier(self, props: Mapping[str, Any]) -> tuple[str, str]:
        """(namespace, table) of the Iceberg table a model is published as."""
        return self.namespace, str(props.get("alias") or props["name"])

    # -- OpenLineage
    def lineage_job_name(self, props: Mapping[str, Any]) -> str:
        """The OpenLineage job of a node: `<pipeline>.<node name>`."""
        return f"{self.artifacts.pipeline.name}.{props['name']}"

    def compute_dataset(self, props: Mapping[str, Any]) -> Dataset:
        """The relation a node builds (or a source it reads) in the compute engine."""
        parts = [props.get("database"), props.get("schema"), props.get("alias") or props["name"]]
        if props.get("resource_type") == "source":
            parts[2] = props.get("identifier") or props["name"]
        columns = [
            (name, str(col.get("data_type") or ""))
            for name, col in (props.get("columns") or {}).items()
        ]
        return Dataset(self._compute_ns, ".".join(p for p in parts if p), columns)

    def iceberg_dataset(self, props: Mapping[str, Any], columns: list[tuple[str, str]]) -> Dataset:
        """The Iceberg table a model was published as."""
        return Dataset(self._catalog_ns, ".".join(self.iceberg_identifier(props)), columns)


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
    from datetime import UTC

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


class FloeDbtCliResource(DbtCliResource):
    """DbtCliResource without two start-up costs floe does not need (about 8 s on 2 cores).

    - `dbt --version` in a subprocess: floe runs the dbt beside this Python, so the
      installed dbt-core's version is the answer.
    - an in-process dbt adapter: dagster-dbt only uses it for column-metadata helpers
      floe does not call.
    """

    @cached_property
    def _cli_version(self) -> Any:
        from packaging import version

        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return version.parse(importlib.metadata.version("dbt-core"))
        return DbtCliResource._cli_version.func(self)  # type: ignore[attr-defined]

    def _initialize_dbt_core_adapter(self, args: Any) -> Any:
        return None


def _props(manifest: Mapping[str, Any], unique_id: str) -> Mapping[str, Any]:
    for section in ("nodes", "sources", "seeds"):
        value = manifest.get(section, {}).get(unique_id)
        if value is not None:
            return value  # type: ignore[no-any-return]
    return {"name": unique_id.split(".")[-1], "unique_id": unique_id, "resource_type": ""}


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def parse_env(artifacts: CompiledArtifacts) -> dict[str, str]:
    """Environment for `dbt parse`: placeholders for secrets (parse renders but never connects)."""
    return {
        secret_env_var(name): os.environ.get(secret_env_var(name), "floe-parse-placeholder")
        for name in artifacts.secret_refs
    }


@dataclass
class SessionProvider:
    """Gives the asset body its run session: the CLI's, or a new one per Dagster run."""

    artifacts: CompiledArtifacts
    session: RunSession | None = None

    @contextlib.contextmanager
    def open(self, context: AssetExecutionContext) -> Iterator[RunSession]:
        if self.session is not None:
            yield self.session
            return
        # Under `dagster dev` / Kubernetes: resolve secrets now, one session per step.
        session = RunSession(
            self.artifacts,
            resolve_secrets(self.artifacts.secret_refs),
            context.run_id,
            warn=context.log.warning,
        )
        session.start()
        try:
            yield session
        finally:
            session.finish()


def build_dbt_assets(
    artifacts: CompiledArtifacts,
    provider: SessionProvider,
    select: str | None = None,
    exclude: str | None = None,
) -> list[Any]:
    """One dagster-dbt multi-asset per dbt transform (parsing manifests that are stale)."""
    env = parse_env(artifacts)
    plans: list[_TransformPlan] = []
    for target in artifacts.dbt:
        prepared = prepare_dbt(artifacts, target, env)
        chosen = select or target.select or "fqn:*"
        left_out = (exclude if select else target.exclude) or ""
        plans.append(_TransformPlan(prepared, prepared.manifest(), chosen, left_out))
    if len(plans) > 1:  # only transforms sharing a dbt project need to know who builds what
        _share_nodes(plans)
    assets: list[Any] = []
    for plan in plans:
        translator = FloeDbtTranslator(artifacts, plan.prepared.target, plan.own, plan.elsewhere)
        assets.append(_transform_assets(artifacts, plan, translator, provider))
    return assets


@dataclass
class _TransformPlan:
    """One transform's dbt selection, and which nodes it builds when transforms share a project."""

    prepared: PreparedDbt
    manifest: dict[str, Any]
    select: str
    exclude: str
    own: frozenset[str] = frozenset()
    elsewhere: dict[str, str] = field(default_factory=dict)  # unique id → builder's namespace


def _share_nodes(plans: list[_TransformPlan]) -> None:
    """Give each node to the first transform selecting it, and each shared test to one transform.

    Keys of nodes another transform builds then carry that transform's namespace
    (Dagster orders the two), and a test selected by several transforms runs with
    the one building the model it is defined on (else the last), once.
    """
    builders: dict[tuple[str, str], int] = {}  # (dbt project, unique id) → plan index
    tests: dict[tuple[str, str], list[int]] = {}
    for index, plan in enumerate(plans):
        project_dir = plan.prepared.target.project_dir
        plan.own = frozenset(select_unique_ids(plan.select, plan.exclude, "", None, plan.manifest))
        for unique_id in plan.own:
            key = (project_dir, unique_id)
            if unique_id.startswith("test."):
                tests.setdefault(key, []).append(index)
            else:
                builders.setdefault(key, index)
    for (project_dir, unique_id), indexes in tests.items():
        manifest = plans[indexes[0]].manifest
        attached = manifest["nodes"].get(unique_id, {}).get("attached_node")
        home = builders.get((project_dir, attached)) if attached else None
        runner = home if home in indexes else indexes[-1]
        for index in indexes:
            if index != runner:
                plan = plans[index]
                plan.own -= {unique_id}
                plan.exclude = f"{plan.exclude} {manifest['nodes'][unique_id]['name']}".strip()
    for plan in plans:
        project_dir = plan.prepared.target.project_dir
        plan.elsewhere = {
            uid: plans[at].prepared.target.namespace
            for (proj, uid), at in builders.items()
            if proj == project_dir
        }


def _transform_assets(
    artifacts: CompiledArtifacts,
    plan: _TransformPlan,
    translator: FloeDbtTranslator,
    provider: SessionProvider,
) -> Any:
    prepared, manifest = plan.prepared, plan.manifest
    target = prepared.target

    @_dbt_assets(
        manifest=manifest,
        select=plan.select,
        exclude=plan.exclude or None,
        dagster_dbt_translator=translator,
        name=f"dbt_{target.namespace.replace('.', '_')}_{target.index}",
    )
    def _assets(context):  # type: ignore[no-untyped-def]  # Dagster reads the annotation
        dbt = FloeDbtCliResource(
            project_dir=target.project_dir,
            profiles_dir=str(prepared.profiles_dir),
            dbt_executable=dbt_executable(),
            target=target.target,
        )
        with provider.open(context) as session:
            args = ["build"]
            if session.full_refresh:
                args.append("--full-refresh")
            if target.vars:
                args += ["--vars", json.dumps(target.vars)]
            _make_parent_dirs(artifacts)
            log_path = floe_dir(artifacts) / "dbt" / str(target.index) / "dagster-dbt.log"
            with session.secrets.exported(), environ_set(dbt_env()):
                invocation = dbt.cli(
                    args, context=context, raise_on_error=False, target_path=prepared.target_path
                )
                with log_path.open("w", encoding="utf-8") as log:
                    events = invocation.stream_raw_events()
                    while True:
                        # dagster-dbt echoes every dbt event to stdout: keep it in a log file.
                        with contextlib.redirect_stdout(log):
                            event = next(events, None)
                        if event is None:
                            break
                        session.on_dbt_event(event.raw_event, manifest, translator)
                        yield from event.to_default_asset_events(
                            manifest=manifest,
                            dagster_dbt_translator=translator,
                            context=context,
                            target_path=invocation.target_path,
                        )
                session.apply_run_results(
                    invocation.target_path / "run_results.json", manifest, translator
                )
                if not invocation.is_successful() and not any(
                    r.failed for r in session.results.values()
                ):
                    session.errors.append(
                        session.secrets.redact(str(invocation.get_error() or "dbt build failed"))
                    )
            session.publish(manifest, translator)
            failed = [r for r in session.results.values() if r.failed]
            if failed or session.errors:
                names = ", ".join(r.name for r in failed) or "; ".join(session.errors)
                raise Failure(description=f"floe run failed: {names}")

    return _assets


def _make_parent_dirs(artifacts: CompiledArtifacts) -> None:
    """dbt-duckdb cannot create the database file's folder: make it."""
    profile = artifacts.compute.profile
    if isinstance(profile, DuckDBCompute) and profile.path != ":memory:":
        artifacts.resolve_path(profile.path).parent.mkdir(parents=True, exist_ok=True)


