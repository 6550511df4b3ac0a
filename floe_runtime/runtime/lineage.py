"""OpenLineage events for runs through openlineage-python transports.

A dead HTTP endpoint costs one short timeout: after the first failure the
emitter stops sending for the rest of the run and says so once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    error_message_run,
    job_type_job,
    parent_run,
    schema_dataset,
)
from openlineage.client.generated.base import RunFacet
from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

from floe_runtime import __version__
from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.config.platform import ConsoleLineage, FileLineage, HttpLineage
from floe_runtime.runtime.secrets import Secrets

PRODUCER = f"https://github.com/floe-runtime/floe-runtime/tree/v{__version__}"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


@dataclass(frozen=True)
class Dataset:
    """A dataset in an event: namespace, name and optional schema (column, type)."""

    namespace: str
    name: str
    columns: Sequence[tuple[str, str]] = ()
    facets: dict[str, Any] = field(default_factory=dict)

    def _facets(self) -> dict[str, Any]:
        facets: dict[str, Any] = dict(self.facets)
        if self.columns:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in self.columns
                ]
            )
        return facets

    def as_input(self) -> InputDataset:
        return InputDataset(namespace=self.namespace, name=self.name, facets=self._facets())

    def as_output(self) -> OutputDataset:
        return OutputDataset(namespace=self.namespace, name=self.name, facets=self._facets())


class _Disabled:
    def emit(self, event: RunEvent) -> None:
        return None


def _client(artifacts: CompiledArtifacts, secrets: Secrets) -> tuple[Any, str]:
    """The client (or a no-op) and a short description of where events go."""
    if not artifacts.pipeline.observability.lineage:
        return _Disabled(), "off"
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return _Disabled(), "off (OPENLINEAGE_DISABLED)"
    if os.environ.get("OPENLINEAGE_URL") or os.environ.get("OPENLINEAGE_CONFIG"):
        # The standard variables win over platform.yaml, as OpenLineage users expect.
        return OpenLineageClient(), os.environ.get("OPENLINEAGE_URL") or "OPENLINEAGE_CONFIG"
    config = artifacts.observability.lineage
    if isinstance(config, FileLineage):
        path = artifacts.resolve_path(config.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return (
            OpenLineageClient(
                transport=FileTransport(FileConfig(log_file_path=str(path), append=True))
            ),
            str(path),
        )
    if isinstance(config, ConsoleLineage):
        return OpenLineageClient(transport=ConsoleTransport(ConsoleConfig())), "console"
    if isinstance(config, HttpLineage):
        auth = (
            ApiKeyTokenProvider({"apiKey": secrets.get(config.api_key.secret_ref)})
            if config.api_key
            else None
        )
        http = HttpConfig(
            url=config.url,
            endpoint=config.endpoint,
            timeout=config.timeout_seconds,
            # Bounded: the default retries for ~9 s when the server is down.
            retry={
                "total": 1,
                "connect": 1,
                "read": 1,
                "backoff_factor": 0.1,
                "status_forcelist": [502, 503, 504],
                "allowed_methods": ["POST"],
            },
        )
        if auth is not None:
            http.auth = auth
        return OpenLineageClient(transport=HttpTransport(http)), config.url
    return _Disabled(), "off"


class LineageEmitter:
    """Emits a run's events: a parent run for the pipeline and one run per model."""

    def __init__(
        self,
        artifacts: CompiledArtifacts,
        secrets: Secrets,
        run_id: str,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.artifacts = artifacts
        self.run_id = run_id
        self.namespace = artifacts.observability.lineage.namespace
        self.job_name = artifacts.pipeline.name
        self._secrets = secrets
        self._client, self.description = _client(artifacts, secrets)
        self._warn = warn or (lambda msg: print(msg, file=sys.stderr))
        self._failed = False
        self.attributes = dict(artifacts.pipeline.observability.attributes)

    @property
    def enabled(self) -> bool:
        return not isinstance(self._client, _Disabled)

    def _emit(self, event: RunEvent) -> None:
        if self._failed:
            return
        try:
            self._client.emit(event)
        except Exception as exc:  # a lineage backend never fails the run
            self._failed = True
            self._warn(
                "lineage: could not emit events to "
                f"{self.description} ({self._secrets.redact(type(exc).__name__ + ': ' + str(exc))[:200]}); "
                "no more lineage for this run"
            )

    def _run_facets(self, parent: bool) -> dict[str, Any]:
        facets: dict[str, Any] = {}
        if parent:
            facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=self.run_id),
                job=parent_run.Job(namespace=self.namespace, name=self.job_name),
            )
        facets["floe"] = _FloeRunFacet(self.artifacts, self.attributes)
        return facets

    def _error_facet(self, error: str) -> Any:
        """dbt's error text as a facet, with every resolved secret value redacted."""
        return error_message_run.ErrorMessageRunFacet(
            message=self._secrets.redact(error), programmingLanguage="SQL"
        )

    def pipeline_event(self, state: RunState, error: str | None = None) -> None:
        """An event of the pipeline's own run (the parent of every model's run)."""
        facets = self._run_facets(parent=False)
        if error:
            facets["errorMessage"] = self._error_facet(error)
        self._emit(
            RunEvent(
                eventType=state,
                eventTime=_now(),
                run=Run(runId=self.run_id, facets=facets),
                job=Job(
                    namespace=self.namespace,
                    name=self.job_name,
                    facets={"jobType": _job_type("JOB")},
                ),
                producer=PRODUCER,
                inputs=[],
                outputs=[],
            )
        )

    def model_event(
        self,
        state: RunState,
        model_run_id: str,
        job_name: str,
        inputs: Sequence[Dataset],
        outputs: Sequence[Dataset],
        error: str | None = None,
        event_time: str | None = None,
    ) -> None:
        """START/COMPLETE/FAIL of one model's run, its parent being the pipeline run."""
        facets = self._run_facets(parent=True)
        if error:
            facets["errorMessage"] = self._error_facet(error)
        self._emit(
            RunEvent(
                eventType=state,
                eventTime=event_time or _now(),
                run=Run(runId=model_run_id, facets=facets),
                job=Job(
                    namespace=self.namespace, name=job_name, facets={"jobType": _job_type("MODEL")}
                ),
                producer=PRODUCER,
                inputs=[d.as_input() for d in inputs],
                outputs=[d.as_output() for d in outputs],
            )
        )


def _job_type(kind: str) -> job_type_job.JobTypeJobFacet:
    return job_type_job.JobTypeJobFacet(processingType="BATCH", integration="DBT", jobType=kind)


def _FloeRunFacet(artifacts: CompiledArtifacts, attributes: dict[str, str]) -> Any:  # noqa: N802
    """A custom run facet: pipeline, environment and floe.yaml observability attributes."""
    return FloeRunFacet(
        pipeline=artifacts.pipeline.name,
        environment=artifacts.environment,
        attributes=dict(attributes),
    )


@attr.define
class FloeRunFacet(RunFacet):
    """floe-runtime's run facet (custom facets are attrs subclasses of RunFacet)."""

    pipeline: str = attr.field(default="")
    environment: str = attr.field(default="")
    attributes: dict[str, str] = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return "https://floe-runtime.dev/spec/facets/1-0-0/FloeRunFacet.json"


def _now() -> str:
    return datetime.now(UTC).isoformat()


__all__ = ["Dataset", "LineageEmitter", "RunState"]
