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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, Failure
from dagster_dbt import DbtCliInvocation
from dagster_dbt import dbt_assets as _dbt_assets

from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.compiler.profiles import dbt_secret_env_var
from floe_runtime.config.base import secret_env_var
from floe_runtime.config.platform import DuckDBCompute
from floe_runtime.runtime.dbt_project import dbt_env, dbt_executable, prepare_dbt
from floe_runtime.runtime.plan import (
    TransformPlan,
    fqn_selector,
    node,
    parents,
    plan_transforms,
    select_ids,
)
from floe_runtime.runtime.secrets import dbt_environ, resolve_secrets
from floe_runtime.runtime.session import RunSession, strip_ansi
from floe_runtime.runtime.translator import FloeDbtTranslator

#: `python -c DBT_LAUNCHER ARGS` is `dbt ARGS` in a process that dies with floe: when its
#: parent goes (even by kill -9) the kernel sends it SIGKILL (Linux PR_SET_PDEATHSIG), and
#: the stop signals floe blocks for itself (runner.RunStopper) are unblocked again.
DBT_LAUNCHER = "\n".join(
    [
        "import ctypes, os, signal, sys",
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])",
        "prctl = getattr(ctypes.CDLL(None), 'prctl', None)",
        "if prctl is not None:",
        "    prctl(1, signal.SIGKILL)",  # PR_SET_PDEATHSIG
        "if str(os.getppid()) != os.environ.get('FLOE_PARENT_PID', str(os.getppid())):",
        "    os._exit(137)",  # floe died before the line above took effect
        "sys.argv[0] = 'dbt'",
        "from dbt.cli.main import cli",
        "sys.exit(cli())",
    ]
)


def dbt_command(args: list[str]) -> list[str]:
    """The command line of `dbt ARGS`: through DBT_LAUNCHER when dbt is beside this Python."""
    executable = dbt_executable()
    if Path(executable).parent == Path(sys.executable).parent:
        return [sys.executable, "-c", DBT_LAUNCHER, *args]
    return [executable, *args]


def dbt_invocation(
    args: list[str],
    plan: TransformPlan,
    translator: FloeDbtTranslator,
    env: Mapping[str, str],
) -> DbtCliInvocation:
    """Start `dbt ARGS` for a transform, the secrets in the dbt process's environment only.

    dagster-dbt's `DbtCliResource.cli` reads the environment of this process and
    first runs `dbt --version` and opens an in-process adapter (about 8 s on 2 cores,
    for helpers floe does not use); floe starts the invocation itself with the
    version of the dbt-core beside this Python. `DbtCliInvocation.run` is not marked
    public: pyproject bounds dagster-dbt, and tests/runtime/test_assets.py fails
    loudly if its signature changes.
    """
    from packaging import version

    prepared, target = plan.prepared, plan.prepared.target
    environ = {
        **dbt_environ(os.environ, env),
        **dbt_env(),
        "PYTHONUNBUFFERED": "1",
        "DAGSTER_DBT_CLI": "true",
        "DBT_LOG_FORMAT": "json",
        "DBT_TARGET_PATH": str(prepared.target_path),
        "DBT_LOG_PATH": str(prepared.target_path),
        "DBT_PROFILES_DIR": str(prepared.profiles_dir),
        "DBT_PROJECT_DIR": target.project_dir,
        "FLOE_PARENT_PID": str(os.getpid()),
    }
    return DbtCliInvocation.run(
        args=dbt_command([*args, "--target", target.target]),
        env=environ,
        manifest=plan.manifest,
        dagster_dbt_translator=translator,
        project_dir=Path(target.project_dir),
        target_path=prepared.target_path,
        raise_on_error=False,
        context=None,  # the selection is the plan's, not one dagster-dbt derives from a context
        adapter=None,
        cli_version=version.parse(importlib.metadata.version("dbt-core")),
    )


def parse_env(artifacts: CompiledArtifacts) -> dict[str, str]:
    """Environment for `dbt parse`: placeholders for secrets (parse renders but never connects).

    The plain names (`PG_PASSWORD`) get one too, so a model's `env_var()` of one never
    copies the value into the manifest; the run leaves them out (`dbt_environ`).
    """
    env: dict[str, str] = {}
    for name in artifacts.secret_refs:
        env[secret_env_var(name)] = env[dbt_secret_env_var(name)] = "floe-parse-placeholder"
    return env


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
    """One dagster-dbt multi-asset per dbt transform (parsing manifests that are stale).

    `select`/`exclude` narrow every transform's own selection. Raises SelectionError
    when nothing is left to run, DbtParseError when a project does not parse.
    """
    env = parse_env(artifacts)
    prepared = [prepare_dbt(artifacts, target, env) for target in artifacts.dbt]
    assets: list[Any] = []
    for plan in plan_transforms(prepared, select, exclude):
        translator = FloeDbtTranslator(artifacts, plan.prepared.target, plan.own, plan.elsewhere)
        assets.append(_transform_assets(artifacts, plan, translator, provider))
    return assets


def _transform_assets(
    artifacts: CompiledArtifacts,
    plan: TransformPlan,
    translator: FloeDbtTranslator,
    provider: SessionProvider,
) -> Any:
    prepared, manifest = plan.prepared, plan.manifest
    target = prepared.target
    # The multi-asset holds exactly the plan's nodes: dbt's eager selection would add
    # tests another transform runs, so those are excluded by name.
    select = fqn_selector(manifest, plan.own)
    extra = select_ids(manifest, select) - plan.own

    @_dbt_assets(
        manifest=manifest,
        select=select,
        exclude=fqn_selector(manifest, extra) if extra else None,
        dagster_dbt_translator=translator,
        name=f"dbt_{target.namespace.replace('.', '_')}_{target.index}",
    )
    def _assets(context):  # type: ignore[no-untyped-def]  # Dagster reads the annotation
        with provider.open(context) as session:
            chosen = _chosen_nodes(context, plan, translator)
            _make_parent_dirs(artifacts)
            skipped: set[str] = set()
            for number, phase in enumerate(plan.phases):
                nodes = (phase & chosen) - skipped
                if not nodes:
                    continue
                yield from _dbt_build(context, session, plan, translator, nodes, number)
                failed = {uid for uid in nodes if (r := session.results.get(uid)) and r.failed}
                skipped |= plan.descendants(failed)
                session.skip(
                    skipped & chosen - nodes, manifest, "an upstream node failed", translator
                )
                if session.fatal:
                    break
            session.publish(manifest, translator)
            failed_nodes = [r for r in session.results.values() if r.failed]
            if failed_nodes or session.errors:
                names = ", ".join(r.name for r in failed_nodes) or "; ".join(session.errors)
                raise Failure(description=f"floe run failed: {names}")

    return _assets


def _chosen_nodes(
    context: AssetExecutionContext, plan: TransformPlan, translator: FloeDbtTranslator
) -> frozenset[str]:
    """The plan's nodes Dagster asked for (all of them, unless a subset was selected)."""
    selected = context.selected_asset_keys
    if selected >= set(context.assets_def.keys):
        return plan.own
    built = {
        uid
        for uid in plan.own
        if not uid.startswith(("test.", "unit_test."))
        and translator.get_asset_key(node(plan.manifest, uid)) in selected
    }
    # Tests (checks) run when every node they test was selected.
    tests = {
        uid
        for uid in plan.own
        if uid.startswith(("test.", "unit_test."))
        and {p for p in parents(plan.manifest, uid) if p in plan.own} <= built
    }
    return frozenset(built | tests)


def _dbt_build(
    context: AssetExecutionContext,
    session: RunSession,
    plan: TransformPlan,
    translator: FloeDbtTranslator,
    nodes: frozenset[str],
    number: int,
) -> Iterator[Any]:
    """One `dbt build` of exactly `nodes`: follow its events, then its run_results.json."""
    manifest, target = plan.manifest, plan.prepared.target
    args = ["build", "--select", fqn_selector(manifest, nodes), "--indirect-selection", "empty"]
    if session.full_refresh:
        args.append("--full-refresh")
    if target.vars:
        args += ["--vars", json.dumps(target.vars)]
    log_path = plan.prepared.target_path / "dagster-dbt.log"
    invocation = dbt_invocation(args, plan, translator, session.secrets.env())
    session.track(invocation.process)
    with contextlib.ExitStack() as stack:
        stack.callback(session.untrack, invocation.process)
        log = stack.enter_context(log_path.open("a" if number else "w", encoding="utf-8"))
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
    session.apply_run_results(invocation.target_path, manifest, translator)
    if not invocation.is_successful() and not any(
        session.results[uid].failed for uid in nodes if uid in session.results
    ):
        # dbt stopped outside any node (compilation, adapter start-up): nothing ran.
        session.fatal = True
        session.errors.append(session.secrets.redact(_dbt_error(invocation.get_error())))


def _dbt_error(error: BaseException | None) -> str:
    """dbt's own words from dagster-dbt's error (which wraps them in the whole command line)."""
    text = strip_ansi(str(error or "dbt build failed"))
    text = text.replace(f"{sys.executable} -c {DBT_LAUNCHER}", "dbt")
    marker = "Errors parsed from dbt logs:"
    if marker in text:
        text = text.split(marker, 1)[1]
    return "\n".join(line.rstrip() for line in text.strip().splitlines() if line.strip())


def _make_parent_dirs(artifacts: CompiledArtifacts) -> None:
    """dbt-duckdb cannot create the database file's folder: make it."""
    profile = artifacts.compute.profile
    if isinstance(profile, DuckDBCompute) and profile.path != ":memory:":
        artifacts.resolve_path(profile.path).parent.mkdir(parents=True, exist_ok=True)
