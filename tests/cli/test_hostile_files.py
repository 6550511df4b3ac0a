"""Hostile files through the real CLI: an exit code and one clear line, never a hang or a
traceback (each command runs as its own process, with a timeout that a hang would hit)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)


def floe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("floe-runtime")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "floe_runtime"]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLOE_")}
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environ, **(env or {})},
        check=False,
    )


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_validate_lists_one_hundred_of_ten_thousand_unknown_keys(example: Path) -> None:
    floe_yaml = example / "floe.yaml"
    floe_yaml.write_text(
        floe_yaml.read_text() + "".join(f"unknown_{i}: 1\n" for i in range(10_000))
    )
    proc = floe("validate", str(example), "--env", "dev")
    no_traceback(proc)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert len(lines) == 101  # 100 diagnostics and the summary
    assert all(" error FLOE003 unknown key 'unknown_" in line for line in lines[:100])
    assert "(and 9,900 more problems in this file, not listed" in lines[99]
    assert lines[100] == "Found 10000 errors."  # the summary counts what was not listed


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_floe_platform_file_naming_a_special_file(
    example: Path, tmp_path: Path, special: str
) -> None:
    target = Path(special) if special.startswith("/") else tmp_path / special
    if not target.exists():
        os.mkfifo(target)
    for command in ("validate", "compile"):
        proc = floe(command, str(example), env={"FLOE_PLATFORM_FILE": str(target)})
        no_traceback(proc)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"{target}:1:1: error FLOE001 the file is a " in proc.stdout
        assert "not a regular file; it was not read" in proc.stdout


def test_a_fifo_platform_yaml_is_an_error_not_a_missing_environment(example: Path) -> None:
    platform = example / "platform" / "prod" / "platform.yaml"
    platform.unlink()
    os.mkfifo(platform)
    proc = floe("validate", str(example))
    no_traceback(proc)
    assert proc.returncode == 1
    assert (
        f"{platform}:1:1: error FLOE001 the file is a named pipe (FIFO), not a regular file; "
        "it was not read"
    ) in proc.stdout.splitlines()


@pytest.mark.parametrize("command", ["compile", "run"])
def test_a_fifo_yml_in_the_dbt_project_is_named(example: Path, command: str) -> None:
    fifo = example / "dbt" / "models" / "staging" / "notes.yml"
    os.mkfifo(fifo)
    proc = floe(command, str(example), "--env", "dev")
    no_traceback(proc)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: dbt project file {fifo} is a named pipe (FIFO), not a regular file; "
        "dbt would block or fail reading it"
    ]


@pytest.mark.parametrize("depth", [500, 999])
def test_deep_nesting_is_one_diagnostic(example: Path, depth: int) -> None:
    floe_yaml = example / "floe.yaml"
    nested = "{a: " * depth + "1" + "}" * depth
    floe_yaml.write_text(
        floe_yaml.read_text().replace("    namespace: analytics\n", f"    vars: {nested}\n")
    )
    for command in ("validate", "compile"):
        proc = floe(command, str(example), "--env", "dev")
        no_traceback(proc)
        assert proc.returncode == 1
        [line] = [x for x in proc.stdout.splitlines() if " FLOE" in x]
        assert line.endswith(
            "error FLOE001 mappings and lists nest deeper than 100 levels here; "
            "refusing to load the document"
        )


@pytest.mark.parametrize(
    "value", ["./" + "/".join(["d" * 200] * 25), "./" + "x" * 300], ids=["5000-chars", "300-bytes"]
)
def test_a_transform_path_too_long_for_the_os(example: Path, value: str) -> None:
    floe_yaml = example / "floe.yaml"
    floe_yaml.write_text(floe_yaml.read_text().replace("path: ./dbt", f"path: {value}"))
    for command in ("validate", "compile"):
        proc = floe(command, str(example), "--env", "dev")
        no_traceback(proc)
        assert proc.returncode == 1
        [line] = [x for x in proc.stdout.splitlines() if " FLOE" in x]
        assert ":11:11: error FLOE030 transform path './" in line
        assert f"is too long for the file system ({len(value):,} characters" in line
