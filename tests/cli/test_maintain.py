"""`floe-runtime maintain`: usage errors are one clear line and exit 2, before anything is
opened; a pipeline that never published has nothing to maintain."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from floe_runtime.cli import cli
from tests.runtime.conftest import copy_project

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--older-than", "abc"],
            "Invalid value for '--older-than': 'abc' is not a duration "
            "(a number and s, m, h, d or w: 7d, 12h)",
        ),
        (["--older-than", "7 days"], "'7 days' is not a duration"),
        (["--orphans-older-than", "-1d"], "'-1d' is not a duration"),
        (["--retain-last", "0"], "Invalid value for '--retain-last': 0 is not in the range x>=1"),
        (["--retain-last", "x"], "'x' is not a valid integer"),
        (["--format", "yaml"], "Invalid value for '--format'"),
    ],
)
def test_bad_arguments_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    project = copy_project("partitions", tmp_path / "p")
    result = runner.invoke(cli, ["maintain", str(project), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (project / ".floe").exists()  # nothing opened, nothing created


def test_a_pipeline_that_never_published_has_nothing_to_maintain(tmp_path: Path) -> None:
    project = copy_project("partitions", tmp_path / "p")
    result = runner.invoke(cli, ["maintain", str(project), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "0 tables: would expire 0 snapshots, would delete 0 files. Dry run: nothing changed."
    )


def test_maintain_keeps_pyiceberg_out_of_cli_start_up() -> None:
    import subprocess

    code = (
        "import sys; from floe_runtime.cli import cli; cli.get_command(None, 'maintain');"
        "print('pyiceberg' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
