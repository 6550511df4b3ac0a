"""`floe-runtime run` without the CLI: compiled artifacts in, a RunOutcome out."""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.runtime.assets import SessionProvider, build_dbt_assets
from floe_runtime.runtime.secrets import Secrets
from floe_runtime.runtime.session import (
    NodeResult,
    RunObserver,
    RunSession,
    _QuietObserver,
)

#: Dagster's own console logging off: the CLI draws its own progress.
QUIET_RUN_CONFIG: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class CatalogUnavailable(Exception):
    """The Iceberg catalog could not be opened (checked before anything runs)."""


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


def run_pipeline(
    artifacts: CompiledArtifacts,
    secrets: Secrets,
    select: str | None = None,
    full_refresh: bool = False,
    observer: RunObserver | None = None,
    warn: Callable[[str], None] | None = None,
    run_id: str | None = None,
) -> RunOutcome:
    """Run the pipeline in process: dbt via dagster-dbt `materialize`, publish, trace, lineage.

    Raises DbtParseError (a project does not parse), SelectionError (nothing selected) or
    CatalogUnavailable before anything runs.
    """
    from dagster import materialize

    started = time.monotonic()
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
                    error = event.step_failure_data.error
                    session.errors.append(
                        secrets.redact(error.message.strip() if error else "step failed")
                    )
    except Exception as exc:  # Dagster itself failed: report, never a traceback
        session.errors.append(secrets.redact(f"{type(exc).__name__}: {exc}"))
    finally:
        session.finish()
    return RunOutcome(
        run_id=session.run_id,
        results=list(session.results.values()),
        errors=list(session.errors),
        seconds=time.monotonic() - started,
        traces=session.telemetry.description,
        lineage=session.lineage.description,
        fatal=session.fatal,
    )
