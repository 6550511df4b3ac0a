"""`floe-runtime run` without the CLI: compiled artifacts in, a RunOutcome out."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.runtime.assets import SessionProvider, build_dbt_assets
from floe_runtime.runtime.results import NodeRecord, RunRecord, write_results
from floe_runtime.runtime.secrets import Secrets
from floe_runtime.runtime.session import (
    NodeResult,
    RunObserver,
    RunSession,
    _QuietObserver,
)

#: Dagster's own console logging off: the CLI draws its own progress.
QUIET_RUN_CONFIG: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


#: What stops a run: SIGTERM (the editor's cancel, `kill`), SIGINT (Ctrl-C), SIGHUP (terminal closed).
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


class CatalogUnavailable(Exception):
    """The Iceberg catalog could not be opened (checked before anything runs)."""


class RunStopper:
    """Stops this process's run on a stop signal: dbt ended, nothing more published, ABORT, exit.

    For a process that runs one pipeline and then exits (`floe-runtime run`). The
    signals are blocked in every thread and taken by one waiting thread, so they
    never reach Python's handlers: Dagster installs its own for SIGTERM and SIGINT
    and would turn them into a step failure that still finishes (and publishes) the
    run. `arm()` must run before any other thread starts, since threads inherit
    the blocked mask from the one that starts them. The dbt processes unblock the
    signals again for themselves (see assets.DBT_LAUNCHER).
    """

    def __init__(self, grace: float = 0.5) -> None:
        #: The run to abort; None until it exists (a signal before then just exits).
        self.session: RunSession | None = None
        self.grace = grace

    def arm(self) -> None:
        """Block the stop signals in this (the main) thread and start the thread taking them."""
        from multiprocessing import resource_tracker

        # Starting multiprocessing's resource tracker (for the first semaphore something
        # creates) unblocks SIGINT and SIGTERM in the calling thread: start it now.
        resource_tracker.ensure_running()
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        threading.Thread(target=self._wait, name="floe-stop", daemon=True).start()

    def _wait(self) -> None:
        signum = signal.sigwait(STOP_SIGNALS)
        name = signal.Signals(signum).name
        session = self.session
        aborted = False
        if session is not None:
            with contextlib.suppress(Exception):  # exit whatever happens
                session.abort(f"run cancelled ({name})", grace=self.grace)
                aborted = True
        what = "; nothing more was published" if aborted else ""
        with contextlib.suppress(OSError):
            os.write(2, f"\nfloe-runtime: run cancelled ({name}){what}.\n".encode())
        # Not sys.exit: Dagster's unwinding would finish the run; the main thread is
        # anywhere, and the run's files are already complete.
        os._exit(128 + signum)


@dataclass
class RunOutcome:
    """What a run did."""

    run_id: str
    results: list[NodeResult]
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    traces: str = "off"
    lineage: str = "off"
    #: dbt stopped before running any node (compilation or adapter start-up error).
    fatal: bool = False

    @property
    def failed(self) -> bool:
        return bool(self.errors) or any(r.failed for r in self.results)


def step_error_text(error: Any) -> str:
    """One line for a failed step: the innermost cause's type and message.

    Dagster wraps what the asset body raised ("Error occurred while executing op …:")
    with the real exception as its `cause`; that wrapper alone says nothing useful.
    """
    if error is None:
        return "step failed"
    inner = error
    while getattr(inner, "cause", None) is not None:
        inner = inner.cause
    message = (inner.message or "").strip()
    if inner is error:
        return message or "step failed"
    # SerializableErrorInfo messages already read "ExcType: text" for exceptions.
    return message or (inner.cls_name or "step failed")


def run_pipeline(
    artifacts: CompiledArtifacts,
    secrets: Secrets,
    select: str | None = None,
    full_refresh: bool = False,
    observer: RunObserver | None = None,
    warn: Callable[[str], None] | None = None,
    run_id: str | None = None,
    stopper: RunStopper | None = None,
) -> RunOutcome:
    """Run the pipeline in process: dbt via dagster-dbt `materialize`, publish, trace, lineage.

    Raises DbtParseError (a project does not parse), SelectionError (nothing selected) or
    CatalogUnavailable before anything runs. An armed `stopper` aborts this run on a
    stop signal.
    """
    from dagster import materialize

    started = time.monotonic()
    started_at = datetime.now(UTC)
    session_kwargs: dict[str, Any] = {}
    if warn is not None:
        session_kwargs["warn"] = warn
    session = RunSession(
        artifacts,
        secrets,
        run_id or str(uuid.uuid4()),
        full_refresh=full_refresh,
        observer=observer or _QuietObserver(),
        **session_kwargs,
    )
    if stopper is not None:
        stopper.session = session
    try:
        session.catalog()
    except Exception as exc:
        session.telemetry.shutdown()
        text = secrets.redact(f"{type(exc).__name__}: {exc}")
        raise CatalogUnavailable(
            f"cannot open Iceberg catalog '{artifacts.catalog.name}' "
            f"({artifacts.catalog.profile.type}): {text}"
        ) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assets = build_dbt_assets(artifacts, SessionProvider(artifacts, session), select=select)
    except Exception:
        session.telemetry.shutdown()
        raise
    session.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = materialize(assets, run_config=QUIET_RUN_CONFIG, raise_on_error=False)
        if not result.success and not session.failed:
            # The asset body itself broke (not a dbt failure): surface Dagster's error text.
            for event in result.all_events:
                if event.is_step_failure and event.step_failure_data is not None:
                    session.errors.append(
                        secrets.redact(step_error_text(event.step_failure_data.error))
                    )
    except Exception as exc:  # Dagster itself failed: report, never a traceback
        session.errors.append(secrets.redact(f"{type(exc).__name__}: {exc}"))
    finally:
        session.finish()
    outcome = RunOutcome(
        run_id=session.run_id,
        results=list(session.results.values()),
        errors=list(session.errors),
        seconds=time.monotonic() - started,
        traces=session.telemetry.description,
        lineage=session.lineage.description,
        fatal=session.fatal,
    )
    try:
        write_results(run_record(artifacts, outcome, started_at), Path(artifacts.project_root))
    except OSError as exc:  # the run happened; only the editor's view of it is lost
        session.warn(f"could not write the run's results: {exc}")
    return outcome


def run_record(
    artifacts: CompiledArtifacts, outcome: RunOutcome, started_at: datetime
) -> RunRecord:
    """What the results file keeps of a run (the language server shows it in the editor)."""
    root = Path(artifacts.project_root)
    nodes = []
    for r in outcome.results:
        failure = r.location
        compiled = failure.compiled if failure is not None else None
        nodes.append(
            NodeRecord(
                unique_id=r.unique_id,
                name=r.name,
                resource_type=r.resource_type,
                status=r.status,
                materialized=r.materialized,
                seconds=round(r.seconds + r.publish_seconds, 3),
                rows=r.rows,
                message=r.message,
                failures=r.failures,
                published=r.published.identifier if r.published is not None else None,
                withheld=r.withheld,
                publish_error=r.publish_error,
                transform=r.transform,
                file=_relative(failure.source.path if failure is not None else r.source, root),
                line=failure.source.line if failure is not None else None,
                compiled_file=_relative(compiled.path, root) if compiled is not None else None,
                compiled_line=compiled.line if compiled is not None else None,
            )
        )
    status = "fatal" if outcome.fatal else ("failed" if outcome.failed else "success")
    return RunRecord(
        pipeline=artifacts.pipeline.name,
        environment=artifacts.environment,
        run_id=outcome.run_id,
        started_at=started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        seconds=round(outcome.seconds, 3),
        status=status,
        errors=list(outcome.errors),
        nodes=nodes,
    )


def _relative(path: Path | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
