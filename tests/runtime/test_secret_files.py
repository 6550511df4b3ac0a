"""File-form secrets that are not regular files: named, never waited on (a FIFO blocks a read)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from floe_runtime.runtime.secrets import MissingSecretError, resolve_secrets
from tests.runtime.conftest import copy_example

pytestmark = pytest.mark.timeout(120)

OTHER_SECRETS = {"LAKE_KEY_ID": "k-id", "LAKE_SECRET": "k-secret", "POLARIS_OAUTH_SECRET": "p-s"}


def test_a_fifo_secret_file_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.mkfifo(tmp_path / "pg-password")
    (tmp_path / "lake-key").write_text("value\n")
    monkeypatch.setenv("FLOE_SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv("PG_PASSWORD", raising=False)
    monkeypatch.delenv("LAKE_KEY", raising=False)
    with pytest.raises(MissingSecretError) as caught:
        resolve_secrets(["lake-key", "pg-password"])
    message = str(caught.value)
    assert f"{tmp_path / 'pg-password'}" in message and "named pipe (FIFO)" in message
    assert "lake-key" not in message  # the readable one resolved


def test_run_with_a_fifo_secret_file_exits_2_with_one_line(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "ca")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    os.mkfifo(secrets / "pg-password")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLOE_")}
    environ.pop("PG_PASSWORD", None)
    environ.update(OTHER_SECRETS, FLOE_SECRETS_DIR=str(secrets))
    exe = Path(sys.executable).with_name("floe-runtime")
    proc = subprocess.run(
        [str(exe), "run", str(project), "--env", "prod"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("error: secret 'pg-password': ")
    assert f"{secrets / 'pg-password'}" in line and "named pipe (FIFO)" in line
