"""The runtime's parts on their own: secrets, Iceberg publishing, telemetry, lineage transports,
the Dagster code location, the CLI's start-up path and deploy output. Real libraries, no mocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from floe_runtime.analysis import discover
from floe_runtime.compiler import compile_project
from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.config.platform import HttpLineage, OtlpTraces
from floe_runtime.runtime.secrets import MissingSecretError, Secrets, resolve_secrets
from tests.runtime.conftest import copy_example, floe, free_port
from tests.runtime.lineage_spec import check_event

# ---------------------------------------------------------------- secrets


def test_secret_from_env_wins_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pg-password").write_text("from-file\n")
    monkeypatch.setenv("FLOE_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("PG_PASSWORD", "from-env")
    assert resolve_secrets(["pg-password"]).get("pg-password") == "from-env"
    monkeypatch.delenv("PG_PASSWORD")
    assert resolve_secrets(["pg-password"]).get("pg-password") == "from-file"


def test_missing_secret_names_both_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOE_SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv("LAKE_SECRET", raising=False)
    with pytest.raises(MissingSecretError) as info:
        resolve_secrets(["lake-secret"])
    assert str(info.value) == (
        f"secret 'lake-secret' not found: set environment variable LAKE_SECRET "
        f"or create file {tmp_path / 'lake-secret'}"
    )


def test_secrets_never_shown() -> None:
    secrets = Secrets({"pg-password": "hunter2-sentinel"})
    assert "hunter2" not in repr(secrets)
    assert secrets.redact("auth failed for hunter2-sentinel") == "auth failed for ***"
    # For the dbt process only, as the secret variable dbt scrubs and keeps out of models.
    assert secrets.env() == {"DBT_ENV_SECRET_PG_PASSWORD": "hunter2-sentinel"}


# ---------------------------------------------------------------- telemetry and lineage


def _artifacts(tmp_path: Path) -> CompiledArtifacts:
    project = copy_example(tmp_path / "ca")
    return compile_project(discover(project, "dev"))


def test_otlp_to_dead_collector_never_delays_exit(tmp_path: Path) -> None:
    from floe_runtime.runtime.telemetry import create_telemetry

    base = _artifacts(tmp_path)
    port = free_port()  # nothing listens here
    obs = base.observability.model_copy(
        update={
            "traces": OtlpTraces(
                exporter="otlp", endpoint=f"http://127.0.0.1:{port}", timeout_seconds=0.5
            )
        }
    )
    artifacts = base.model_copy(update={"observability": obs})
    telemetry = create_telemetry(artifacts, Secrets({}))
    assert telemetry.description == f"http://127.0.0.1:{port}/v1/traces"
    started = time.monotonic()
    with telemetry.tracer.start_as_current_span("x"):
        pass
    telemetry.shutdown(timeout_millis=1000)
    assert time.monotonic() - started < 3


def test_otel_env_vars_are_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from floe_runtime.runtime.telemetry import create_telemetry

    artifacts = _artifacts(tmp_path)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert create_telemetry(artifacts, Secrets({})).description == "off"


class _Receiver(BaseHTTPRequestHandler):
    events: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).events.append(
            {
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "event": json.loads(body),
            }
        )
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def test_http_lineage_reaches_marquez_compatible_endpoint(tmp_path: Path) -> None:
    """A START event POSTed where Marquez takes it, with the key as a bearer token, valid by
    the OpenLineage schemas, naming what floe.yaml and the platform say."""
    from floe_runtime.runtime.lineage import LineageEmitter, RunState

    _Receiver.events.clear()
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    run_id = "0" * 8 + "-0000-4000-8000-" + "0" * 12
    try:
        base = _artifacts(tmp_path)
        obs = base.observability.model_copy(
            update={
                "lineage": HttpLineage.model_validate(
                    {
                        "transport": "http",
                        "url": f"http://127.0.0.1:{server.server_port}",
                        "api_key": {"secret_ref": "ol-key"},
                        "namespace": "acme",
                    }
                )
            }
        )
        artifacts = base.model_copy(update={"observability": obs})
        emitter = LineageEmitter(artifacts, Secrets({"ol-key": "ol-sentinel-key"}), run_id)
        emitter.pipeline_event(RunState.START)
    finally:
        server.shutdown()
    [got] = _Receiver.events
    assert got["path"] == "/api/v1/lineage"
    assert got["auth"] == "Bearer ol-sentinel-key"
    event = got["event"]
    assert "ol-sentinel-key" not in json.dumps(event)
    # The spec's RunEvent, and each facet by the schema its _schemaURL names.
    assert check_event(event) == {"jobType", "sourceCodeLocation", "floe", "tags"}
    assert (event["eventType"], event["run"]["runId"]) == ("START", run_id)
    assert (event["job"]["namespace"], event["job"]["name"]) == ("acme", "customer-analytics")
    job_type = event["job"]["facets"]["jobType"]
    assert (job_type["jobType"], job_type["processingType"]) == ("JOB", "BATCH")
    floe_yaml = Path(artifacts.project_root) / "floe.yaml"
    location = event["job"]["facets"]["sourceCodeLocation"]
    assert (location["type"], location["url"]) == ("file", floe_yaml.as_uri())
    # floe.yaml's name and observability.attributes, the environment compiled.
    floe = {k: v for k, v in event["run"]["facets"]["floe"].items() if not k.startswith("_")}
    assert floe == {
        "pipeline": "customer-analytics",
        "environment": "dev",
        "attributes": {"team": "growth"},
    }


def test_http_lineage_to_dead_endpoint_is_bounded(tmp_path: Path) -> None:
    from floe_runtime.runtime.lineage import LineageEmitter, RunState

    base = _artifacts(tmp_path)
    obs = base.observability.model_copy(
        update={
            "lineage": HttpLineage(
                transport="http", url=f"http://127.0.0.1:{free_port()}", timeout_seconds=0.5
            )
        }
    )
    artifacts = base.model_copy(update={"observability": obs})
    warnings: list[str] = []
    emitter = LineageEmitter(
        artifacts, Secrets({}), "00000000-0000-4000-8000-000000000000", warn=warnings.append
    )
    started = time.monotonic()
    for _ in range(5):
        emitter.pipeline_event(RunState.START)
    assert time.monotonic() - started < 5
    assert len(warnings) == 1 and "no more lineage for this run" in warnings[0]


# ---------------------------------------------------------------- Dagster code location


def test_code_location_defs_have_assets_checks_and_schedule(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "ca")
    code = (
        "import json\n"
        "from floe_runtime.dagster_defs import defs\n"
        "repo = defs.get_repository_def()\n"
        "keys = sorted('/'.join(k.path) for k in repo.asset_graph.get_all_asset_keys())\n"
        "checks = sorted(['/'.join(c.asset_key.path), c.name]"
        " for c in repo.asset_graph.asset_check_keys)\n"
        "s = [(x.name, x.cron_schedule, x.execution_timezone) for x in repo.schedule_defs]\n"
        "print(json.dumps({'keys': keys, 'checks': checks, 'schedules': s}))\n"
    )
    env = {**os.environ, "FLOE_PROJECT_DIR": str(project), "FLOE_ENV": "dev"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
        cwd=tmp_path,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    assert data["keys"] == sorted(
        f"analytics/{n}"
        for n in (
            "raw_customers",
            "raw_orders",
            "raw_payments",
            "stg_customers",
            "stg_orders",
            "stg_payments",
            "customer_orders",
            "customer_revenue",
            "orders",
        )
    )
    # Each dbt test on one model is an asset check of that model, as dbt's manifest has them.
    [manifest_file] = (project / "target").rglob("manifest.json")
    nodes = json.loads(manifest_file.read_text())["nodes"]
    expected = []
    for test in (n for n in nodes.values() if n["resource_type"] == "test"):
        parents = set(test["depends_on"]["nodes"])
        model = test.get("attached_node") or (parents.pop() if len(parents) == 1 else None)
        if model is not None:
            expected.append([f"analytics/{nodes[model]['name']}", test["name"]])
    assert data["checks"] == sorted(expected)
    assert len(expected) == 45  # of the example's 46 tests: one spans two models
    assert data["schedules"] == [["customer_analytics_schedule", "0 6 * * *", "Europe/Berlin"]]


# ---------------------------------------------------------------- CLI


def test_cli_start_up_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from floe_runtime.cli import cli\n"
        "for name in ('run', 'lineage', 'dev', 'deploy'):\n"
        "    cli.get_command(None, name)\n"
        "heavy = [m for m in ('dagster', 'dagster_dbt', 'dbt', 'pyiceberg', 'opentelemetry',"
        " 'openlineage', 'duckdb') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_helm_values_for_user_code_deployment(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "ca")
    result = floe(
        "deploy",
        "helm-values",
        str(project),
        "--env",
        "prod",
        "--image",
        "registry.example/ca",
        "--tag",
        "1.0.0",
    )
    assert result.code == 0, result.output
    values = yaml.safe_load(result.stdout)
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["image"] == {
        "repository": "registry.example/ca",
        "tag": "1.0.0",
        "pullPolicy": "IfNotPresent",
    }
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "floe_runtime.dagster_defs"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["FLOE_ENV"] == "prod"
    assert deployment["volumeMounts"][0]["mountPath"] == "/var/run/secrets/floe"
    assert "kubectl create secret generic customer-analytics-secrets" in result.stdout


def test_run_with_invalid_config_exits_2_with_diagnostics(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "ca")
    floe_yaml = project / "floe.yaml"
    floe_yaml.write_text(floe_yaml.read_text().replace("compute: default", "compute: nope"))
    result = floe("run", str(project), "--env", "dev")
    assert result.code == 2, result.output
    assert "FLOE010" in result.output and "Not run." in result.output
    assert "Traceback" not in result.output
    # The other commands over the same project say what they did not do.
    for args, refused in (
        (("lineage", "--no-open"), "No lineage page written."),
        (("deploy", "helm-values"), "No values printed."),
    ):
        other = floe(*args, str(project), "--env", "dev")
        assert other.code == 2 and "FLOE010" in other.output and refused in other.output, (
            other.output
        )
        assert "Not run." not in other.output


def test_run_usage_errors_exit_2(tmp_path: Path) -> None:
    result = floe("run", str(tmp_path / "missing"))
    assert result.code == 2
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


def test_openlineage_env_vars_are_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from floe_runtime.runtime.lineage import LineageEmitter, RunState

    artifacts = _artifacts(tmp_path)
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    assert not LineageEmitter(artifacts, Secrets({}), "r").enabled
    monkeypatch.delenv("OPENLINEAGE_DISABLED")
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Receiver.events.clear()
    try:
        monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{server.server_port}")
        emitter = LineageEmitter(artifacts, Secrets({}), "00000000-0000-4000-8000-000000000001")
        emitter.pipeline_event(RunState.COMPLETE)
    finally:
        server.shutdown()
    assert [e["event"]["eventType"] for e in _Receiver.events] == ["COMPLETE"]
    # The platform's file transport was not used.
    assert not (Path(artifacts.project_root) / ".floe" / "lineage.jsonl").exists()


def test_unreachable_catalog_exits_2_before_dbt_runs(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "ca")
    folder = project / "platform" / "dead"
    folder.mkdir()
    (folder / "platform.yaml").write_text(
        'version: "1"\n'
        "storage: {default: {type: local}}\n"
        f"catalogs: {{default: {{type: rest, uri: 'http://127.0.0.1:{free_port()}'}}}}\n"
        "compute: {default: {type: duckdb}}\n"
    )
    result = floe("run", str(project), "--env", "dead")
    assert result.code == 2, result.output
    assert result.stderr.startswith("error: cannot open Iceberg catalog 'default' (rest)")
    assert "Traceback" not in result.output
    assert not (project / ".floe" / "floe.duckdb").exists()


def test_lineage_unknown_run_is_one_clear_line(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "ca")
    events = project / ".floe" / "lineage.jsonl"
    events.parent.mkdir()
    events.write_text("")
    result = floe("lineage", str(project), "--env", "dev", "--run", "nope", "--no-open")
    assert result.code == 2
    assert result.stderr.strip().count("\n") == 0 and "no pipeline runs" in result.stderr
