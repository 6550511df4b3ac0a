"""`floe-runtime diff ENV_A ENV_B [PATH]`, as a real process: the example's dev against prod."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SECRET = "canary-pg-9c41"  # what FLOE_SECRET_PG_PASSWORD resolves to: never printed


def diff(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "NO_COLOR": "1", "FLOE_SECRET_PG_PASSWORD": SECRET, **(env or {})}
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "floe_runtime", "diff", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


def _row(out: str, *cells: str) -> bool:
    pattern = r"\s+".join(re.escape(c) for c in cells)
    return any(re.fullmatch(pattern, line.strip()) for line in out.splitlines())


def test_dev_against_prod_shows_each_profile_s_differences(example: Path) -> None:
    proc = diff("dev", "prod", str(example))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.splitlines()[0].split() == ["profile", "setting", "dev", "prod"]
    assert _row(out, "compute default", "type", "duckdb", "postgres")
    assert _row(out, "compute default", "threads", "4", "8")
    assert _row(out, "compute default", "password", "—", "secret_ref pg-password")
    assert _row(out, "catalog default", "type", "sql", "polaris")
    assert _row(out, "storage default", "bucket", "—", "acme-lake")
    assert SECRET not in out + proc.stderr
    # Start-up stays light: the engine only, nothing that runs pipelines.
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()}
    assert not imported & {"dagster", "dagster_dbt", "dbt", "pyiceberg", "rich", "duckdb"}


def test_literal_credentials_are_masked(example: Path) -> None:
    prod = example / "platform" / "prod" / "platform.yaml"
    text = prod.read_text().replace("password: {secret_ref: pg-password}", "password: hunter2-lit")
    text = text.replace(
        "uri: https://polaris.acme.internal/api/catalog",
        "uri: https://svc:pw-in-url-77@polaris.acme.internal/api/catalog",
    )
    prod.write_text(text)
    proc = diff("dev", "prod", str(example), "--format", "markdown")
    assert proc.returncode == 0, proc.stderr
    assert "hunter2-lit" not in proc.stdout and "pw-in-url-77" not in proc.stdout
    assert "| `password` ≠ | — | `***` |" in proc.stdout
    assert "https://svc:***@polaris.acme.internal/api/catalog" in proc.stdout
    assert proc.stdout.startswith("# customer-analytics: `dev` ↔ `prod`\n")


def test_same_environment_and_floe_env_set(example: Path) -> None:
    proc = diff("prod", "prod", str(example), env={"FLOE_ENV": "dev"})
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[-1] for line in proc.stdout.splitlines()[1:]] == ["(same)"] * 3


def test_unknown_environment_is_one_line_exit_2(example: Path) -> None:
    proc = diff("dev", "staging", str(example))
    assert proc.returncode == 2
    assert proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert errors == ["error: environment 'staging' not found; available: dev, prod"]


def test_a_broken_platform_file_is_named(example: Path) -> None:
    (example / "platform" / "prod" / "platform.yaml").write_text("compute: [\n")
    proc = diff("dev", "prod", str(example))
    assert proc.returncode == 0
    assert _row(
        proc.stdout, "compute default", "(profile)", "platform/dev/platform.yaml", "not defined"
    )
    assert "warning: platform/prod/platform.yaml has YAML errors" in proc.stderr
    assert "Traceback" not in proc.stderr
