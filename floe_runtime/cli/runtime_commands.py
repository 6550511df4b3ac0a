"""`floe-runtime run`, `lineage`, `dev` and `deploy`: the commands that execute pipelines.

Heavy imports (dbt, Dagster, pyiceberg, OpenTelemetry, OpenLineage) happen inside
the command functions, never when the CLI starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from floe_runtime.cli.common import (
    ENV_OPTION,
    EXIT_ERRORS,
    EXIT_OK,
    EXIT_USAGE,
    PATH_ARGUMENT,
    compile_or_exit,
    fail,
    shown_path,
)

if TYPE_CHECKING:
    from floe_runtime.analysis import Project
    from floe_runtime.compiler.artifacts import CompiledArtifacts
    from floe_runtime.runtime.runner import RunOutcome
    from floe_runtime.runtime.secrets import Secrets
    from floe_runtime.runtime.session import NodeResult


def _compile(
    path: Path | None, env: str | None, refused: str = "Not run."
) -> tuple[Project, CompiledArtifacts]:
    """discover → validate → compile → write artifacts; exit 2 with diagnostics on any problem.

    `refused` is the line that ends the diagnostics, saying what did not happen.
    """
    project, artifacts, _ = compile_or_exit(path, env, refused=refused, exit_code=EXIT_USAGE)
    return project, artifacts


class _ConsoleObserver:
    """One line per asset as it finishes (and per publish), on a rich console."""

    def __init__(self, console: Any) -> None:
        self.console = console

    def node_started(self, node: NodeResult) -> None:
        return None

    def node_finished(self, node: NodeResult) -> None:
        if node.resource_type in ("test", "unit_test") and node.status in ("pass", "skipped"):
            return  # tests are checks: only their failures and warnings get a line
        style = {"success": "green", "pass": "green", "skipped": "yellow", "warn": "yellow"}.get(
            node.status, "red"
        )
        label = {"success": "OK", "pass": "PASS", "skipped": "SKIP"}.get(
            node.status, node.status.upper()
        )
        kind = node.resource_type.replace("_", " ")
        self.console.print(
            f"  [{style}]{label:<5}[/{style}] {kind:<9} {node.name:<40} {node.seconds:6.2f}s",
            markup=True,
            highlight=False,
        )

    def node_published(self, node: NodeResult) -> None:
        if node.published is not None:
            self.console.print(
                f"  [cyan]PUB  [/cyan] iceberg   {node.published.identifier:<40} "
                f"{node.publish_seconds:6.2f}s  {node.published.rows} rows"
            )
            for change in node.published.schema_changes:
                self.console.print(f"        schema    {change}", markup=False)
            if node.published.partition_change:
                self.console.print(
                    f"        layout    {node.published.partition_change}", markup=False
                )
        elif node.withheld:
            self.console.print(
                f"  [yellow]HOLD [/yellow] iceberg   {node.name:<40} not published: a test failed"
            )
        else:
            self.console.print(f"  [red]FAIL [/red] iceberg   {node.name:<40} publish failed")


@click.command(name="run")
@PATH_ARGUMENT
@ENV_OPTION
@click.option(
    "--select",
    "-s",
    "select",
    metavar="SEL",
    help="dbt node selection for this run (replaces floe.yaml's select).",
)
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch.")
@click.option(
    "--no-wait",
    "no_wait",
    is_flag=True,
    help="Refuse (exit 2) instead of waiting while another run of this pipeline and "
    "environment is in progress.",
)
def run(
    path: Path | None, env: str | None, select: str | None, full_refresh: bool, no_wait: bool
) -> None:
    """Run the pipeline: dbt through Dagster, publish tables to Iceberg, trace, emit lineage.

    One run at a time per pipeline and environment: a second one waits for the first
    (or, with --no-wait, refuses). Exit 0 when every model and test passed, 1 when one
    failed (dbt's error shown), 2 for usage or configuration errors (nothing runs).
    """
    from floe_runtime.runtime.lock import Holder, RunLocked, run_lock
    from floe_runtime.runtime.secrets import MissingSecretError, resolve_secrets

    _, artifacts = _compile(path, env)
    pipeline, environment = artifacts.pipeline.name, artifacts.environment
    try:  # before the lock: a missing secret neither waits nor leaves anything behind
        secrets = resolve_secrets(artifacts.secret_refs)
    except MissingSecretError as exc:
        fail(str(exc))

    def waiting(holder: Holder) -> None:
        click.echo(
            f"waiting: another run of {pipeline} (environment {environment}) is in progress "
            f"({holder.describe()}); this one starts when it ends (--no-wait refuses instead)",
            err=True,
        )

    try:
        with run_lock(
            artifacts.project_root, pipeline, environment, wait=not no_wait, on_wait=waiting
        ):
            _run(artifacts, secrets, select, full_refresh)
    except RunLocked as exc:
        fail(f"{exc}; not started (without --no-wait this run would wait for it)")
    except KeyboardInterrupt:  # Ctrl-C while waiting (the run itself handles its own)
        click.echo("stopped while waiting for the other run; nothing ran", err=True)
        sys.exit(130)


def _run(
    artifacts: CompiledArtifacts, secrets: Secrets, select: str | None, full_refresh: bool
) -> NoReturn:
    """The run itself, under the run lock; exits with the run's code."""
    from rich.console import Console

    # Not a terminal (CI, make, pipes): rich would assume 80 columns and cut the table.
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS") or 120)
    console = Console(file=sys.stdout, highlight=False, soft_wrap=True, width=width)
    err_console = Console(file=sys.stderr, highlight=False, soft_wrap=True, width=width)
    from floe_runtime.runtime.dbt_project import DbtParseError
    from floe_runtime.runtime.runner import CatalogUnavailable, RunStopper, run_pipeline

    # Before any thread starts: cancel (SIGTERM), Ctrl-C and hang-up abort the run cleanly.
    stopper = RunStopper()
    stopper.arm()

    console.print(
        f"[bold]floe-runtime run[/bold] {artifacts.pipeline.name} "
        f"(environment {artifacts.environment}, compute {artifacts.compute.profile.type}, "
        f"catalog {artifacts.catalog.profile.type})"
    )
    from floe_runtime.runtime.plan import SelectionError

    try:
        outcome = run_pipeline(
            artifacts,
            secrets,
            select=select,
            full_refresh=full_refresh,
            observer=_ConsoleObserver(console),
            warn=lambda msg: err_console.print(
                f"[yellow]warning:[/yellow] {secrets.redact(msg)}", markup=True
            ),
            stopper=stopper,
        )
    except CatalogUnavailable as exc:
        fail(str(exc))
    except SelectionError as exc:
        fail(f"{exc}; nothing ran")
    except DbtParseError as exc:
        click.echo("error: dbt could not parse the project; nothing ran:", err=True)
        click.echo(secrets.redact(str(exc)), err=True)
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # one line, never a traceback (FLOE_DEBUG=1 shows it)
        if os.environ.get("FLOE_DEBUG"):
            raise
        fail(secrets.redact(f"run failed: {type(exc).__name__}: {exc}"), EXIT_ERRORS)
    _summary(console, artifacts, outcome)
    if outcome.fatal:
        for error in outcome.errors:
            err_console.print(f"[red]error:[/red] {error}", markup=True)
        console.print("[red]dbt stopped before running any node[/red]; nothing was published.")
        sys.exit(EXIT_USAGE)
    if outcome.failed:
        for r in outcome.results:
            if r.failed or r.withheld:
                _print_failure(err_console, r)
        for error in outcome.errors:
            err_console.print(f"[red]error:[/red] {error}", markup=True)
        console.print(f"[red]Run failed[/red] in {outcome.seconds:.1f}s.")
        sys.exit(EXIT_ERRORS)
    console.print(f"[green]Run succeeded[/green] in {outcome.seconds:.1f}s.")
    sys.exit(EXIT_OK)


def _summary(console: Any, artifacts: CompiledArtifacts, outcome: RunOutcome) -> None:
    """The table of assets and the counts, as dbt's run_results.json has them."""
    from rich import box
    from rich.table import Table

    from floe_runtime.runtime.iceberg import catalog_namespace_uri

    # Box-drawing characters only on a terminal; plain ASCII in logs and CI.
    table = Table(
        title=f"run {outcome.run_id}",
        title_justify="left",
        show_lines=False,
        box=box.HEAVY_HEAD if console.is_terminal else box.ASCII,
    )
    for column in ("asset", "materialized", "status", "time", "rows", "iceberg table"):
        table.add_column(
            column, justify="right" if column in ("time", "rows") else "left", no_wrap=True
        )
    assets = [r for r in outcome.results if r.resource_type in ("model", "seed", "snapshot")]
    for r in assets:
        status = "publish failed" if r.publish_error else ("withheld" if r.withheld else r.status)
        colour = (
            "red" if r.failed else ("yellow" if r.status == "skipped" or r.withheld else "green")
        )
        table.add_row(
            r.name,
            r.materialized or r.resource_type,
            f"[{colour}]{status}[/{colour}]",
            f"{r.seconds + r.publish_seconds:.2f}s",
            "" if r.rows is None else str(r.rows),
            r.published.identifier if r.published else "",
        )
    if assets:
        console.print(table)
    kept = sorted(
        {r.materialized or r.resource_type for r in assets if not r.published and not r.withheld}
        - {"table", "incremental", "snapshot"}
    )
    published = sorted({r.materialized for r in assets if r.published})
    if assets:
        console.print(
            "published: "
            + (", ".join(published) or "nothing")
            + (f"; stay in the compute engine: {', '.join(kept)}" if kept else ""),
            markup=False,
        )
    tests = [r for r in outcome.results if r.resource_type in ("test", "unit_test")]
    units = sum(1 for t in tests if t.resource_type == "unit_test")
    counts = {
        "passed": sum(1 for t in tests if t.status == "pass"),
        "failed": sum(1 for t in tests if t.failed),
        "skipped": sum(1 for t in tests if t.status == "skipped"),
    }
    warned = sum(1 for t in tests if t.status == "warn")
    console.print(
        "tests: "
        + ", ".join(f"{n} {k}" for k, n in counts.items())
        + (f", {warned} warned" if warned else "")
        + (f" ({units} of them unit tests)" if units else ""),
        markup=False,
    )
    namespaces = sorted({t.namespace for t in artifacts.dbt})
    console.print(
        f"tables:  {catalog_namespace_uri(artifacts)} (namespace {', '.join(namespaces)})",
        markup=False,
    )
    console.print(f"lineage: {outcome.lineage}", markup=False)
    console.print(f"traces:  {outcome.traces}", markup=False)


def _print_failure(console: Any, r: NodeResult) -> None:
    """dbt's error for one node, with the source file and line and the compiled SQL's."""
    kind = r.resource_type.replace("_", " ")
    where = ""
    if r.location is not None:
        where = f" at {shown_path(str(r.location.source.path))}" + (
            f":{r.location.source.line}" if r.location.source.line else ""
        )
    console.print(f"[red]error[/red] in {kind} {r.name}{where}:", markup=True)
    console.print(r.publish_error or r.withheld or r.message or r.status, markup=False)
    if r.location is not None and r.location.compiled is not None:
        compiled = r.location.compiled
        console.print(
            f"  compiled SQL: {shown_path(str(compiled.path))}"
            + (f":{compiled.line}" if compiled.line else ""),
            markup=False,
        )


@click.command(name="lineage")
@PATH_ARGUMENT
@ENV_OPTION
@click.option(
    "--run",
    "run_id",
    default="latest",
    show_default=True,
    metavar="latest|RUN_ID",
    help="Which run to show.",
)
@click.option(
    "--open/--no-open",
    "open_browser",
    default=None,
    help="Open the page in a browser (default: when a display is available).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write (default: <project>/target/floe/lineage.html).",
)
def lineage(
    path: Path | None, env: str | None, run_id: str, open_browser: bool | None, output: Path | None
) -> None:
    """Render a run's lineage as one self-contained HTML page (datasets, jobs, status).

    \f
    Reads what the environment's lineage transport wrote: its file (`file`), only that
    environment's runs even in a file other environments share; for `http`, says where the
    events went and renders only local events of that environment, if any; `console` and
    `none` leave nothing to render. When there is nothing, no page is written and a page
    left at the default place by an earlier call is removed (so nothing opens a stale one).
    """

    from floe_runtime.config.platform import ConsoleLineage, FileLineage, HttpLineage
    from floe_runtime.runtime.lineage import public_uri
    from floe_runtime.runtime.lineage_html import LineageError, load_events, render_html

    _, artifacts = _compile(path, env, refused="No lineage page written.")
    config = artifacts.observability.lineage
    environment = artifacts.environment
    pipeline = artifacts.pipeline.name
    default_out = Path(artifacts.project_root) / "target" / "floe" / "lineage.html"
    out = output or default_out

    def nothing(message: str, code: int = EXIT_OK) -> NoReturn:
        if output is None and default_out.is_file():
            default_out.unlink()  # a page from another environment or an earlier run
        click.echo(message, err=code != EXIT_OK)
        sys.exit(code)

    if not artifacts.pipeline.observability.lineage:
        nothing(
            f"Lineage is off for {pipeline} (floe.yaml observability.lineage): nothing to render."
        )
    if isinstance(config, FileLineage):
        source = artifacts.resolve_path(config.path)
        if not source.exists():
            nothing(
                f"error: no lineage events at {shown_path(str(source))} for environment "
                f"'{environment}': run 'floe-runtime run --env {environment}' first",
                EXIT_USAGE,
            )
    elif isinstance(config, HttpLineage):
        base = public_uri(config.url.rstrip("/"))
        ns = config.namespace
        click.echo(
            f"Lineage of environment '{environment}' is sent to {base}; Marquez shows it at:"
        )
        click.echo(f"  {base}/lineage/job/{ns}/{pipeline}")
        click.echo(f"  {base}/api/v1/namespaces/{ns}/jobs/{pipeline}/runs")
        # Only events of this environment kept locally (the file transport's default
        # file, from when the environment wrote one); never another environment's.
        source = artifacts.resolve_path("./.floe/lineage.jsonl")
        try:
            local = source.exists() and bool(
                load_events(source, None, environment=environment, pipeline=pipeline)
            )
        except LineageError:
            local = False
        if not local:
            nothing(f"No local lineage events for environment '{environment}': no page written.")
    else:
        where = "printed to standard error" if isinstance(config, ConsoleLineage) else "off"
        nothing(
            f"Lineage of environment '{environment}' is {where} (transport "
            f"'{config.transport}'): nothing to render."
        )
    try:
        events = load_events(
            source,
            None if run_id == "latest" else run_id,
            environment=environment,
            pipeline=pipeline,
        )
    except LineageError as exc:
        nothing(f"error: {exc}", EXIT_USAGE)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(events, title=f"{pipeline} ({environment})"), encoding="utf-8")
    click.echo(f"Lineage page: {shown_path(str(out))}")
    if open_browser is None:
        open_browser = bool(os.environ.get("DISPLAY") or sys.platform == "darwin")
    if open_browser:
        import webbrowser

        webbrowser.open(out.resolve().as_uri())


@click.command(name="dev")
@PATH_ARGUMENT
@ENV_OPTION
@click.option("--port", "-p", default=3000, show_default=True, help="Port of the Dagster UI.")
def dev(path: Path | None, env: str | None, port: int) -> None:
    """Start `dagster dev` on the pipeline's definitions, bound to 127.0.0.1."""
    project, artifacts = _compile(path, env, refused="Dagster not started.")
    dagster = Path(sys.executable).parent / "dagster"
    executable = str(dagster) if dagster.exists() else shutil.which("dagster")
    if not executable:
        fail("the 'dagster' command is not installed in this environment")
    environ = {
        **os.environ,
        "FLOE_PROJECT_DIR": str(project.root),
        "FLOE_ENV": artifacts.environment,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    if "DAGSTER_HOME" not in environ:
        home = Path(artifacts.project_root) / ".floe" / "dagster"
        home.mkdir(parents=True, exist_ok=True)
        environ["DAGSTER_HOME"] = str(home)
    cmd = [executable, "dev", "-m", "floe_runtime.dagster_defs", "-h", "127.0.0.1", "-p", str(port)]
    click.echo(f"Dagster UI: http://127.0.0.1:{port}  ({' '.join(cmd[1:])})")
    import signal

    def _child_signals() -> None:
        # A shell's background job inherits SIGINT ignored, and dagster maps SIGTERM onto the
        # SIGINT handler: restore the default so dagster dev can be stopped either way.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen(cmd, env=environ, preexec_fn=_child_signals)

    def _stop(signum: int, frame: Any) -> None:
        # Forward termination so `dagster dev` shuts down its webserver and daemon too.
        proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        code = proc.wait()  # the terminal already sent SIGINT to dagster dev as well
    sys.exit(0 if code in (0, -signal.SIGINT, 130) else code)


@click.group(name="deploy")
def deploy() -> None:
    """Print deployment configuration for running the pipeline elsewhere."""


@deploy.command(name="helm-values")
@PATH_ARGUMENT
@ENV_OPTION
@click.option(
    "--image",
    default="ghcr.io/acme/customer-analytics",
    show_default=True,
    help="Image holding floe-runtime and the project.",
)
@click.option("--tag", default="latest", show_default=True, help="Image tag.")
@click.option(
    "--project-dir",
    "project_dir",
    default="/opt/floe/project",
    show_default=True,
    help="Where the project lives inside the image.",
)
@click.option(
    "--max-concurrent-runs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Runs the daemon's queued run coordinator lets run at once.",
)
@click.option(
    "--postgres-host",
    default=None,
    help="An external PostgreSQL for Dagster's instance (default: the chart's own PostgreSQL).",
)
@click.option("--postgres-port", type=click.IntRange(1, 65535), default=5432, show_default=True)
@click.option("--postgres-user", default="dagster", show_default=True)
@click.option("--postgres-db", "postgres_db", default="dagster", show_default=True)
def helm_values(
    path: Path | None,
    env: str | None,
    image: str,
    tag: str,
    project_dir: str,
    max_concurrent_runs: int,
    postgres_host: str | None,
    postgres_port: int,
    postgres_user: str,
    postgres_db: str,
) -> None:
    """Print values for Dagster's Helm chart (dagster/dagster): the production topology.

    The code location as a user-code deployment (a gRPC server), runs queued by the daemon
    (QueuedRunCoordinator, at most --max-concurrent-runs at once), each launched in its own
    Kubernetes Job (K8sRunLauncher), and the instance on PostgreSQL. Passwords are never
    printed: they go into Kubernetes secrets, as the header says.
    """
    import yaml

    from floe_runtime.config.base import secret_env_var

    _, artifacts = _compile(path, env, refused="No values printed.")
    name = artifacts.pipeline.name
    secret_name = f"{name}-secrets"
    postgresql: dict[str, Any] = {
        "enabled": postgres_host is None,
        # floe installs psycopg 3, which SQLAlchemy 2.1 picks for postgresql://; dagster-postgres
        # needs psycopg2 (its NOTIFY takes a client-side parameter): tests/runtime/test_topology.py
        "postgresqlScheme": "postgresql+psycopg2",
        "postgresqlUsername": postgres_user,
        "postgresqlDatabase": postgres_db,
        "service": {"port": postgres_port},
    }
    if postgres_host is not None:
        postgresql["postgresqlHost"] = postgres_host
    values: dict[str, Any] = {
        "dagster-user-deployments": {
            "enabled": True,
            "enableSubchart": True,
            "deployments": [
                {
                    "name": name,
                    "image": {"repository": image, "tag": tag, "pullPolicy": "IfNotPresent"},
                    "dagsterApiGrpcArgs": ["-m", "floe_runtime.dagster_defs"],
                    "port": 3030,
                    "env": [
                        {"name": "FLOE_PROJECT_DIR", "value": project_dir},
                        {"name": "FLOE_ENV", "value": artifacts.environment},
                        {"name": "FLOE_SECRETS_DIR", "value": "/var/run/secrets/floe"},
                        {"name": "DBT_SEND_ANONYMOUS_USAGE_STATS", "value": "false"},
                    ],
                    "volumes": [{"name": "floe-secrets", "secret": {"secretName": secret_name}}]
                    if artifacts.secret_refs
                    else [],
                    "volumeMounts": [
                        {
                            "name": "floe-secrets",
                            "mountPath": "/var/run/secrets/floe",
                            "readOnly": True,
                        }
                    ]
                    if artifacts.secret_refs
                    else [],
                    # The run's Job gets this deployment's image, env and secret volume too.
                    "includeConfigInLaunchedRuns": {"enabled": True},
                }
            ],
        },
        # One Kubernetes Job per run (the run worker), in the release's namespace.
        "runLauncher": {
            "type": "K8sRunLauncher",
            "config": {"k8sRunLauncher": {"loadInclusterConfig": True}},
        },
        "dagsterDaemon": {
            "enabled": True,
            "runCoordinator": {
                "enabled": True,
                "type": "QueuedRunCoordinator",
                "config": {"queuedRunCoordinator": {"maxConcurrentRuns": max_concurrent_runs}},
            },
        },
        "postgresql": postgresql,
        # An external server's password comes from a secret made beforehand (header).
        "generatePostgresqlPasswordSecret": postgres_host is None,
    }
    header = [
        f"# Dagster Helm chart values for '{name}' ({artifacts.environment}).",
        "# helm repo add dagster https://dagster-io.github.io/helm",
    ]
    if postgres_host is None:
        header.append(
            "# helm upgrade --install dagster dagster/dagster -f values.yaml"
            " --set postgresql.postgresqlPassword=...  (the chart's own PostgreSQL)"
        )
    else:
        header += [
            "# kubectl create secret generic dagster-postgresql-secret"
            " --from-literal=postgresql-password=...",
            "# helm upgrade --install dagster dagster/dagster -f values.yaml",
        ]
    if artifacts.secret_refs:
        keys = " ".join(f"--from-literal={ref}=..." for ref in artifacts.secret_refs)
        header.append(
            f"# Secrets, one key per secret_ref (env names: "
            f"{', '.join(secret_env_var(r) for r in artifacts.secret_refs)}):"
        )
        header.append(f"#   kubectl create secret generic {secret_name} {keys}")
    click.echo("\n".join(header))
    click.echo(yaml.safe_dump(values, sort_keys=False), nl=False)
