"""OpenLineage events for runs through openlineage-python transports.

What the events hold (DESIGN §5 "Standard outputs"), each facet valid against its own
schema in the OpenLineage spec:

- one run for the pipeline (job type JOB) and one per dbt model, seed or snapshot, whose
  `parent` facet names the pipeline run both as parent and as `root`;
- datasets named by the OpenLineage naming conventions (`location_dataset` for storage
  locations, the translator for relations in the compute engine and Iceberg tables);
- `schema` only from a relation's real columns, `outputStatistics` with row counts,
  `dataQualityAssertions` with dbt test results, job facets `jobType`, `sql` and
  `sourceCodeLocation`, and floe's own `floe` run facet;
- every facet produced by floe carries floe's producer URL; no secret value ever appears
  (error text and SQL are redacted, and lose credentials written inside URLs; URIs lose
  their user info and query).

A dead HTTP endpoint costs one short timeout: after the first failure the
emitter stops sending for the rest of the run and says so once.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    catalog_dataset,
    data_quality_assertions_dataset,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    parent_run,
    schema_dataset,
    source_code_location_job,
    sql_job,
    symlinks_dataset,
)
from openlineage.client.generated.base import RunFacet
from openlineage.client.serde import Serde
from openlineage.client.transport import Transport
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

from floe_runtime import __version__
from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.config.platform import ConsoleLineage, FileLineage, HttpLineage
from floe_runtime.runtime.secrets import Secrets

PRODUCER = f"https://github.com/floe-runtime/floe-runtime/tree/v{__version__}"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
#: Where the JSON Schema of floe's own run facet lives (its `$id`, plus the pointer).
FLOE_RUN_FACET_SCHEMA_URL = (
    "https://floe-runtime.dev/spec/facets/1-0-0/FloeRunFacet.json#/$defs/FloeRunFacet"
)
#: dbt resource type → the `jobType` of its runs (the pipeline's own run is `JOB`).
JOB_TYPES = {"model": "MODEL", "seed": "SEED", "snapshot": "SNAPSHOT", "test": "TEST"}

# ---------------------------------------------------------------- naming


def public_uri(uri: str) -> str:
    """`uri` without user info (user, password), query or fragment: what lineage may show.

    `https://u:p@host:8181/api?token=x` → `https://host:8181/api`;
    `sqlite:////abs/catalog.db` stays as it is.
    """
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{host}{parts.path}"


def location_dataset(location: str) -> tuple[str, str]:
    """(namespace, name) of a storage location, by the OpenLineage naming conventions.

    Local files: namespace `file`, name the absolute path (`file:///w/t` → `file`, `/w/t`);
    a remote file system `file://host/p` → `file://host`, `/p`; object stores and other
    `scheme://authority/path` locations → `scheme://authority` and the path without its
    leading `/` (`s3://bucket/w/t` → `s3://bucket`, `w/t`; `s3a`/`s3n` count as `s3`).
    A trailing `/` is dropped; user info and queries never appear.
    """
    if "://" not in location and not location.startswith("file:"):
        return "file", location.rstrip("/") or "/"
    parts = urlsplit(location)
    scheme = parts.scheme.lower()
    host = parts.netloc.rsplit("@", 1)[-1]
    path = parts.path
    if scheme == "file":
        name = path.rstrip("/") or "/"
        return ("file", name) if not host or host == "localhost" else (f"file://{host}", name)
    if scheme in ("s3a", "s3n"):
        scheme = "s3"
    return f"{scheme}://{host}", path.strip("/") or "/"


# ---------------------------------------------------------------- datasets


@dataclass(frozen=True)
class Assertion:
    """One dbt test's result on a dataset (an item of the `dataQualityAssertions` facet).

    `assertion` classifies the test (`not_null`, `unique`, … or a singular test's name),
    `name` is the dbt test's own name, `column` the column it checks (none: the whole
    dataset), `actual` dbt's count of failing rows, `expected` the threshold.
    """

    assertion: str
    success: bool
    column: str | None = None
    name: str | None = None
    severity: str | None = None
    actual: str | None = None
    expected: str | None = None

    def facet_item(self) -> data_quality_assertions_dataset.Assertion:
        return data_quality_assertions_dataset.Assertion(
            assertion=self.assertion,
            success=self.success,
            column=self.column,
            name=self.name,
            severity=self.severity,
            actual=self.actual,
            expected=self.expected,
        )


@dataclass(frozen=True)
class Dataset:
    """A dataset in an event.

    - `columns`: the relation's real (name, type) pairs → the `schema` facet; empty → no
      `schema` facet at all (never one guessed from YAML docs). `descriptions` adds the
      documented description of the columns that exist.
    - `facets`: further dataset facets (e.g. `symlinks`, `catalog`), ready-made.
    - `rows`: rows written → `outputStatistics` (an output dataset facet; ignored on inputs).
    - `assertions`: dbt test results → `dataQualityAssertions`. The spec defines it as an
      *input* dataset facet, so it goes in `inputFacets` when the dataset is an input (the
      tested relation as the input of a TEST run, as openlineage-dbt does) and is left out
      when the dataset is an output.
    """

    namespace: str
    name: str
    columns: Sequence[tuple[str, str]] = ()
    facets: Mapping[str, Any] = field(default_factory=dict)
    rows: int | None = field(default=None, kw_only=True)
    assertions: Sequence[Assertion] = field(default=(), kw_only=True)
    descriptions: Mapping[str, str] = field(default_factory=dict, kw_only=True)

    def _facets(self) -> dict[str, Any]:
        facets: dict[str, Any] = dict(self.facets)
        if self.columns:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(
                        name=n, type=t or None, description=self.descriptions.get(n) or None
                    )
                    for n, t in self.columns
                ],
                producer=PRODUCER,
            )
        return facets

    def as_input(self) -> InputDataset:
        input_facets: dict[str, Any] = {}
        if self.assertions:
            input_facets["dataQualityAssertions"] = (
                data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                    assertions=[a.facet_item() for a in self.assertions], producer=PRODUCER
                )
            )
        return InputDataset(
            namespace=self.namespace,
            name=self.name,
            facets=self._facets(),
            inputFacets=input_facets or None,
        )

    def as_output(self) -> OutputDataset:
        output_facets: dict[str, Any] = {}
        if self.rows is not None and self.rows >= 0:
            output_facets["outputStatistics"] = (
                output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=self.rows, producer=PRODUCER
                )
            )
        return OutputDataset(
            namespace=self.namespace,
            name=self.name,
            facets=self._facets(),
            outputFacets=output_facets or None,
        )


def symlinks_facet(
    identifiers: Sequence[tuple[str, str]], kind: str = "TABLE"
) -> symlinks_dataset.SymlinksDatasetFacet:
    """Other names of a dataset, e.g. an Iceberg table's (catalog URI, `namespace.table`)."""
    return symlinks_dataset.SymlinksDatasetFacet(
        identifiers=[
            symlinks_dataset.Identifier(namespace=ns, name=name, type=kind)
            for ns, name in identifiers
        ],
        producer=PRODUCER,
    )


def catalog_facet(
    catalog_type: str,
    name: str,
    *,
    metadata_uri: str | None = None,
    warehouse_uri: str | None = None,
    properties: Mapping[str, str] | None = None,
) -> catalog_dataset.CatalogDatasetFacet:
    """The Iceberg catalog a table is registered in (`framework` iceberg, `source` floe-runtime).

    URIs pass through `public_uri`, so no credential in a URI ever reaches the facet.
    """
    return catalog_dataset.CatalogDatasetFacet(
        framework="iceberg",
        type=catalog_type,
        name=name,
        metadataUri=public_uri(metadata_uri) if metadata_uri else None,
        warehouseUri=public_uri(warehouse_uri) if warehouse_uri else None,
        source="floe-runtime",
        catalogProperties=dict(properties) if properties else None,
        producer=PRODUCER,
    )


# ---------------------------------------------------------------- job facets


@lru_cache(maxsize=16)
def _git_info(start: Path) -> tuple[Path, str | None, str | None, str | None] | None:
    """(work tree, repository URL, web URL, HEAD sha) of the git work tree holding `start`.

    Read from the files (no `git` process); URLs never keep credentials.
    """
    from openlineage.client.git import get_git_repo_url, get_git_version

    try:
        for top in [start, *start.parents]:
            marker = top / ".git"
            if marker.is_dir():
                git_dir = marker
                break
            if marker.is_file():  # a linked worktree: "gitdir: <path>"
                content = marker.read_text(encoding="utf-8").strip()
                if not content.startswith("gitdir: "):
                    return None
                git_dir = top / content.removeprefix("gitdir: ")
                break
        else:
            return None
        remote = get_git_repo_url(git_dir=git_dir)
        repo = (public_uri(remote) if "://" in remote else remote) if remote else None
        return top, repo, _web_url(remote) if remote else None, get_git_version(git_dir)
    except (OSError, ValueError):
        return None


def _web_url(remote: str) -> str | None:
    """`https://host/org/repo` of a GitHub or GitLab remote (ssh or https), without credentials."""
    if remote.startswith("git@") and ":" in remote:
        host, path = remote[len("git@") :].split(":", 1)
    elif remote.startswith(("https://", "http://", "ssh://")):
        parts = urlsplit(remote)
        host, path = parts.netloc.rsplit("@", 1)[-1].split(":")[0], parts.path
    else:
        return None
    if host not in ("github.com", "gitlab.com"):
        return None
    path = path.strip("/").removesuffix(".git")
    return f"https://{host}/{path}" if path.count("/") >= 1 else None


def source_code_location(path: Path) -> source_code_location_job.SourceCodeLocationJobFacet:
    """Where a job's code is: `git` (repository, sha, path in the repository) inside a git
    work tree, else `file` with the file's URI."""
    path = path.resolve()
    info = _git_info(path.parent)
    if info is not None:
        top, repo, web, sha = info
        rel = path.relative_to(top).as_posix() if path.is_relative_to(top) else path.as_posix()
        url = f"{web}/blob/{sha}/{rel}" if web and sha else path.as_uri()
        return source_code_location_job.SourceCodeLocationJobFacet(
            type="git", url=url, repoUrl=repo, path=rel, version=sha, producer=PRODUCER
        )
    return source_code_location_job.SourceCodeLocationJobFacet(
        type="file", url=path.as_uri(), path=str(path), producer=PRODUCER
    )


def _job_type(kind: str) -> job_type_job.JobTypeJobFacet:
    return job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration="DBT", jobType=kind, producer=PRODUCER
    )


# ---------------------------------------------------------------- transports


class StderrTransport(Transport):
    """Each event as one JSON line on standard error.

    openlineage-python's console transport hands events to the `logging` module at
    INFO, which prints nothing unless the application configures logging.
    """

    kind = "floe-stderr"

    def emit(self, event: Any) -> None:
        sys.stderr.write(Serde.to_json(event) + "\n")
        sys.stderr.flush()


class _Disabled:
    def emit(self, event: RunEvent) -> None:
        return None


#: The client must not add a sourceCodeLocation of its own: it would carry the raw `origin`
#: URL of whatever git repository the process runs in (credentials included).
_CLIENT_CONFIG: dict[str, Any] = {"facets": {"source_code_location": {"disabled": True}}}


def _client(artifacts: CompiledArtifacts, secrets: Secrets) -> tuple[Any, str]:
    """The client (or a no-op) and a short description of where events go."""
    if not artifacts.pipeline.observability.lineage:
        return _Disabled(), "off"
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return _Disabled(), "off (OPENLINEAGE_DISABLED)"
    if os.environ.get("OPENLINEAGE_URL") or os.environ.get("OPENLINEAGE_CONFIG"):
        # The standard variables win over platform.yaml, as OpenLineage users expect.
        url = os.environ.get("OPENLINEAGE_URL")
        return OpenLineageClient(), public_uri(url) if url else "OPENLINEAGE_CONFIG"
    config = artifacts.observability.lineage
    if isinstance(config, FileLineage):
        path = artifacts.resolve_path(config.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return (
            OpenLineageClient(
                transport=FileTransport(FileConfig(log_file_path=str(path), append=True)),
                config=_CLIENT_CONFIG,
            ),
            str(path),
        )
    if isinstance(config, ConsoleLineage):
        return (
            OpenLineageClient(transport=StderrTransport(), config=_CLIENT_CONFIG),
            "console",
        )
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
        return (
            OpenLineageClient(transport=HttpTransport(http), config=_CLIENT_CONFIG),
            public_uri(config.url),
        )
    return _Disabled(), "off"


# ---------------------------------------------------------------- the emitter


class LineageEmitter:
    """Emits a run's events: a parent run for the pipeline and one run per model.

    Model, seed and snapshot runs: `model_event`. Test results: `test_event`, one TEST run
    whose input is the tested relation carrying its `dataQualityAssertions`.
    """

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
        #: The SQL dialect of the compute engine (`duckdb`, `postgres`, …), as openlineage-dbt
        #: names it: the dbt adapter type.
        self.dialect = artifacts.compute.profile.type
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

    def _run_facets(self, parent: bool, materialization: str | None = None) -> dict[str, Any]:
        facets: dict[str, Any] = {}
        if parent:
            # The pipeline run is both the parent and the root of every model's run.
            facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=self.run_id),
                job=parent_run.Job(namespace=self.namespace, name=self.job_name),
                root=parent_run.Root(
                    run=parent_run.RootRun(runId=self.run_id),
                    job=parent_run.RootJob(namespace=self.namespace, name=self.job_name),
                ),
                producer=PRODUCER,
            )
        facets["floe"] = FloeRunFacet(
            pipeline=self.artifacts.pipeline.name,
            environment=self.artifacts.environment,
            attributes=dict(self.attributes),
            materialization=materialization,
            producer=PRODUCER,
        )
        return facets

    def _error_facet(self, error: str) -> Any:
        """dbt's error text as a facet, secrets and credentials inside URLs redacted."""
        return error_message_run.ErrorMessageRunFacet(
            message=self._secrets.redact(error), programmingLanguage="SQL", producer=PRODUCER
        )

    def _job_facets(
        self, job_type: str, sql: str | None, source_path: str | Path | None
    ) -> dict[str, Any]:
        facets: dict[str, Any] = {"jobType": _job_type(job_type)}
        if sql:
            facets["sql"] = sql_job.SQLJobFacet(
                query=self._secrets.redact(sql), dialect=self.dialect, producer=PRODUCER
            )
        if source_path:
            facets["sourceCodeLocation"] = source_code_location(Path(source_path))
        return facets

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
                    facets=self._job_facets("JOB", None, self.artifacts.pipeline_file),
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
        *,
        job_type: str = "MODEL",
        sql: str | None = None,
        source_path: str | Path | None = None,
        materialization: str | None = None,
    ) -> None:
        """START/COMPLETE/FAIL of one node's run, its parent (and root) being the pipeline run.

        `job_type`: MODEL, SEED, SNAPSHOT or TEST (`JOB_TYPES`); `sql`: the compiled SQL
        (the `sql` job facet, in the compute engine's dialect); `source_path`: the node's
        file (the `sourceCodeLocation` job facet); `materialization`: dbt's (table, view,
        incremental, seed, snapshot), in floe's run facet.
        """
        facets = self._run_facets(parent=True, materialization=materialization)
        if error:
            facets["errorMessage"] = self._error_facet(error)
        self._emit(
            RunEvent(
                eventType=state,
                eventTime=event_time or _now(),
                run=Run(runId=model_run_id, facets=facets),
                job=Job(
                    namespace=self.namespace,
                    name=job_name,
                    facets=self._job_facets(job_type, sql, source_path),
                ),
                producer=PRODUCER,
                inputs=[d.as_input() for d in inputs],
                outputs=[d.as_output() for d in outputs],
            )
        )

    def test_event(
        self,
        job_name: str,
        tested: Sequence[Dataset],
        *,
        run_id: str | None = None,
        source_path: str | Path | None = None,
    ) -> str:
        """The tests of one relation as one TEST run: START, then COMPLETE or FAIL.

        Each dataset in `tested` is an input carrying its `assertions` in `inputFacets`
        (`dataQualityAssertions` is an input dataset facet; this is where openlineage-dbt
        puts it too). FAIL when an assertion of severity other than `warn` failed. Returns
        the run id.
        """
        run_id = run_id or str(uuid.uuid4())
        self.model_event(
            RunState.START, run_id, job_name, tested, [], job_type="TEST", source_path=source_path
        )
        failed = [
            a
            for d in tested
            for a in d.assertions
            if not a.success and (a.severity or "").lower() != "warn"
        ]
        error = (
            "failed: "
            + ", ".join(
                f"{a.name or a.assertion}" + (f"({a.column})" if a.column else "") for a in failed
            )
            if failed
            else None
        )
        self.model_event(
            RunState.FAIL if failed else RunState.COMPLETE,
            run_id,
            job_name,
            tested,
            [],
            error=error,
            job_type="TEST",
            source_path=source_path,
        )
        return run_id


@attr.define
class FloeRunFacet(RunFacet):
    """floe-runtime's run facet: pipeline, environment, floe.yaml observability attributes
    and, on a node's run, its dbt materialization.

    Its JSON Schema is `FLOE_RUN_FACET_SCHEMA_URL` (custom facets are attrs subclasses of
    RunFacet; `producer=PRODUCER` so the facet names floe, not openlineage-python).
    """

    pipeline: str = attr.field(default="")
    environment: str = attr.field(default="")
    attributes: dict[str, str] = attr.field(factory=dict)
    #: How dbt built the node (table, view, incremental, seed, snapshot); None on the
    #: pipeline's own run and on test runs.
    materialization: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return FLOE_RUN_FACET_SCHEMA_URL


def _now() -> str:
    return datetime.now(UTC).isoformat()


__all__ = [
    "JOB_TYPES",
    "PRODUCER",
    "Assertion",
    "Dataset",
    "FloeRunFacet",
    "LineageEmitter",
    "RunState",
    "catalog_facet",
    "location_dataset",
    "public_uri",
    "source_code_location",
    "symlinks_facet",
]
