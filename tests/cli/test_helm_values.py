"""`deploy helm-values`: Dagster's production topology as values for the dagster/dagster chart.

The same topology runs for real, on one machine, in tests/runtime/test_topology.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from floe_runtime.cli import cli

runner = CliRunner()


def _values(project: Path, *options: str) -> tuple[dict[str, Any], str]:
    result = runner.invoke(cli, ["deploy", "helm-values", str(project), "--env", "prod", *options])
    assert result.exit_code == 0, result.output
    values: dict[str, Any] = yaml.safe_load(result.stdout)
    return values, result.stdout


def test_runs_queued_with_a_limit_and_launched_as_kubernetes_jobs(example: Path) -> None:
    values, _ = _values(example, "--max-concurrent-runs", "3")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["runLauncher"]["config"]["k8sRunLauncher"]["loadInclusterConfig"] is True
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert values["dagsterDaemon"]["enabled"] is True
    assert coordinator["enabled"] is True
    assert coordinator["type"] == "QueuedRunCoordinator"
    assert coordinator["config"] == {"queuedRunCoordinator": {"maxConcurrentRuns": 3}}
    # The run's Job inherits the code location's image, env and secret volume.
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert values["dagster-user-deployments"]["enableSubchart"] is True


def test_one_run_at_a_time_by_default(example: Path) -> None:
    values, _ = _values(example)
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued["maxConcurrentRuns"] == 1


def test_the_charts_own_postgresql_by_default(example: Path) -> None:
    values, text = _values(example)
    pg = values["postgresql"]
    assert pg["enabled"] is True
    assert "postgresqlHost" not in pg  # the chart points at its own server
    assert pg["postgresqlScheme"] == "postgresql+psycopg2"
    assert values["generatePostgresqlPasswordSecret"] is True
    assert "postgresqlPassword" not in pg  # given at install time, never printed
    assert "--set postgresql.postgresqlPassword=..." in text


def test_an_external_postgresql_with_its_password_in_a_secret(example: Path) -> None:
    values, text = _values(
        example,
        "--postgres-host",
        "db.internal",
        "--postgres-port",
        "6432",
        "--postgres-user",
        "orchestrator",
        "--postgres-db",
        "dagster_prod",
    )
    assert values["postgresql"] == {
        "enabled": False,
        "postgresqlScheme": "postgresql+psycopg2",
        "postgresqlUsername": "orchestrator",
        "postgresqlDatabase": "dagster_prod",
        "service": {"port": 6432},
        "postgresqlHost": "db.internal",
    }
    assert values["generatePostgresqlPasswordSecret"] is False
    secret = "kubectl create secret generic dagster-postgresql-secret"
    assert f"# {secret} --from-literal=postgresql-password=..." in text


def test_a_limit_below_one_is_one_error_line(example: Path) -> None:
    result = runner.invoke(
        cli, ["deploy", "helm-values", str(example), "--env", "prod", "--max-concurrent-runs", "0"]
    )
    assert result.exit_code == 2
    assert "--max-concurrent-runs" in result.output
    assert "Traceback" not in result.output
