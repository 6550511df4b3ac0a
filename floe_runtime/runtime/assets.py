"""The Dagster assets of a pipeline: one dagster-dbt multi-asset per dbt transform.

The asset body runs `dbt build` with dagster-dbt, hands dbt's event stream to the
run session (spans, lineage, progress) and, when dbt is done, has it publish the
table models to Iceberg. The same assets serve `floe-runtime run` (in-process
`materialize`) and `dagster dev` / Kubernetes (the code location in
floe_runtime.dagster_defs), so both publish, trace and emit lineage alike.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, Failure
from dagster_dbt import DbtCliResource
from dagster_dbt import dbt_assets as _dbt_assets
from dagster_dbt.utils import select_unique_ids

from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.config.base import secret_env_var
from floe_runtime.config.platform import DuckDBCompute
from floe_runtime.runtime.dbt_project import (
    PreparedDbt,
    dbt_env,
    dbt_executable,
    floe_dir,
    prepare_dbt,
)
from floe_runtime.runtime.secrets import environ_set, resolve_secrets
from floe_runtime.runtime.session import RunSession
from floe_runtime.runtime.translator import FloeDbtTranslator


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
