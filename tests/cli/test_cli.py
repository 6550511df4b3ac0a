"""The CLI through click's runner, and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from floe_runtime.cli import cli
from tests.conftest import EXAMPLE

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_example_clean() -> None:
    code, out, _ = invoke("validate", str(EXAMPLE))
    assert code == 0
    assert "All checks passed (2 environment(s): dev, prod)." in out


FLOE010_LAK = (
    "7:10: error FLOE010 catalog profile 'lak' is not defined in environment 'dev' "
    "(platform/dev/platform.yaml); defined: default"
)


def test_validate_text_format_and_exit_1(example: Path) -> None:
    """`path:line:col: severity CODE message`, 1-based; the path as given when outside the cwd."""
    floe = example / "floe.yaml"
    floe.write_text(floe.read_text().replace("catalog: default", "catalog: lak"))
    code, out, _ = invoke("validate", str(floe), "--env", "dev")
    assert code == 1
    assert out.splitlines() == [f"{floe}:{FLOE010_LAK}", "Found 1 error."]


def test_validate_text_paths_are_relative_inside_the_cwd(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    floe = example / "floe.yaml"
    floe.write_text(floe.read_text().replace("catalog: default", "catalog: lak"))
    monkeypatch.chdir(example.parent)
    code, out, _ = invoke("validate", "customer-analytics", "--env", "dev")
    assert code == 1
    assert out.splitlines() == [f"customer-analytics/floe.yaml:{FLOE010_LAK}", "Found 1 error."]


def test_validate_json_matches_design(example: Path) -> None:
    floe = example / "floe.yaml"
    floe.write_text(floe.read_text().replace("  - type: dbt\n", "  - type: dbt\n    selekt: x\n"))
    code, out, _ = invoke("validate", str(example), "--format", "json")
    assert code == 1
    [item] = json.loads(out)
    assert item == {
        "file": str(floe),
        "range": {"start": {"line": 10, "character": 4}, "end": {"line": 10, "character": 10}},
        "severity": "error",
        "code": "FLOE003",
        "message": "unknown key 'selekt'; did you mean 'select'?",
    }


def test_validate_warning_only_exits_0(tmp_path: Path) -> None:
    (tmp_path / "dbt").mkdir()
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: x\nprofile: x\n")
    (tmp_path / "floe.yaml").write_text(
        "name: x\nversion: '1.0.0'\ntransforms: [{type: dbt, path: ./dbt}]\n"
    )
    code, out, _ = invoke("validate", str(tmp_path), "--format", "json")
    assert code == 0
    assert [d["code"] for d in json.loads(out)] == ["FLOE040"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "/nonexistent/place"], "/nonexistent/place does not exist"),
        (
            ["validate", str(EXAMPLE), "--env", "qa"],
            "environment 'qa' not found; available: dev, prod",
        ),
        (["compile", str(EXAMPLE)], "several environments (dev, prod): choose one with --env"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    code, out, err = invoke(*args)
    assert code == 2
    assert err.splitlines() == [f"error: {message}"]
    assert out == ""


def test_compile_writes_artifacts(example: Path) -> None:
    code, out, _ = invoke("compile", str(example), "--env", "dev")
    assert code == 0, out
    artifacts = json.loads((example / "target" / "floe" / "compiled_artifacts.json").read_text())
    assert artifacts["environment"] == "dev"
    assert (example / "target" / "floe" / "profiles.yml").is_file()


def test_compile_refuses_on_errors(example: Path, tmp_path: Path) -> None:
    floe = example / "floe.yaml"
    floe.write_text(floe.read_text().replace('"1.0.0"', '"one"'))
    code, out, err = invoke(
        "compile", str(example), "--env", "dev", "--output", str(tmp_path / "o")
    )
    assert code == 1
    assert out.splitlines() == [
        f"{floe}:4:10: error FLOE005 invalid 'version': "
        'expected a semantic version such as "1.0.0"'
    ]
    assert err == "Found 1 error. Not compiled.\n"
    assert not (tmp_path / "o").exists()


def test_schema_to_stdout_and_file(tmp_path: Path) -> None:
    code, out, _ = invoke("schema", "platform")
    assert code == 0 and json.loads(out)["title"] == "Platform"
    code, _, _ = invoke("schema", "floe", "--output", str(tmp_path / "s.json"))
    assert code == 0 and json.loads((tmp_path / "s.json").read_text())["title"] == "Pipeline"


def test_init_scaffolds_a_clean_project_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "My Pipeline"
    code, out, _ = invoke("init", str(target))
    assert code == 0, out
    assert "name: my-pipeline" in (target / "floe.yaml").read_text()
    assert (target / "floe.yaml").read_text().startswith("# yaml-language-server: $schema=")
    code, out, _ = invoke("validate", str(target))
    assert code == 0, out
    before = (target / "floe.yaml").read_text()
    code, _, err = invoke("init", str(target))
    assert code == 2 and "--force" in err
    assert (target / "floe.yaml").read_text() == before
    code, _, _ = invoke("init", str(target), "--force", "--name", "renamed")
    assert code == 0 and "name: renamed" in (target / "floe.yaml").read_text()


def test_init_rejects_bad_name(tmp_path: Path) -> None:
    code, _, err = invoke("init", str(tmp_path / "x"), "--name", "Bad Name")
    assert code == 2 and "invalid pipeline name" in err


def test_version_and_help() -> None:
    code, out, _ = invoke("--version")
    assert code == 0 and "floe-runtime, version" in out
    code, out, _ = invoke("--help")
    assert code == 0 and "validate" in out and "compile" in out


def test_unknown_command_is_usage_error() -> None:
    code, _, err = invoke("frobnicate")
    assert code == 2 and "No such command" in err


def _console(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("floe-runtime")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "floe_runtime"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def test_subprocess_validate_and_exit_codes(example: Path) -> None:
    ok = _console("validate", cwd=example)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "All checks passed (2 environment(s): dev, prod).\n"
    # A pipe is no terminal: plain compiler-style lines, no ANSI escapes, paths from the cwd.
    floe = example / "floe.yaml"
    floe.write_text(floe.read_text().replace("catalog: default", "catalog: lak"))
    text = _console("validate", "--env", "dev", cwd=example)
    assert text.returncode == 1
    assert text.stdout.splitlines() == [f"floe.yaml:{FLOE010_LAK}", "Found 1 error."]
    (example / "floe.yaml").write_text("name: [unclosed\n")
    bad = _console("validate", "--format", "json", cwd=example)
    assert bad.returncode == 1
    assert [d["code"] for d in json.loads(bad.stdout)] == ["FLOE001"]
    usage = _console("validate", "--format", "xml", cwd=example)
    assert usage.returncode == 2
    assert usage.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--format': 'xml' is not one of 'text', 'json'."
    )


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from floe_runtime.cli import cli\n"
        "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'pydantic','dagster','dbt','pyiceberg','rich','opentelemetry','openlineage'})\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_validate_does_not_import_runtime_modules() -> None:
    code = (
        "import sys; from floe_runtime.cli import main\n"
        f"try:\n    main(['validate', {str(EXAMPLE)!r}])\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster','dbt','pyiceberg'}))\n"
        # pydantic's plugin scan (importlib.metadata over every distribution) is skipped.
        "print('importlib.metadata' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.stdout.strip().splitlines()[-2:] == ["[]", "False"]


def test_compile_env_names_the_environment_of_floe_platform_file(tmp_path: Path) -> None:
    """`FLOE_PLATFORM_FILE` + `--env prod` compiles prod, as the README says (not "default")."""
    import shutil

    project = tmp_path / "ca"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target", ".floe"))
    mounted = project / "platform" / "dev" / "platform.yaml"
    env = {**os.environ, "FLOE_PLATFORM_FILE": str(mounted)}
    env.pop("FLOE_ENV", None)
    proc = subprocess.run(
        [sys.executable, "-m", "floe_runtime", "compile", str(project), "--env", "prod"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    artifacts = json.loads((project / "target" / "floe" / "compiled_artifacts.json").read_text())
    assert artifacts["environment"] == "prod"
    assert artifacts["platform_file"] == str(mounted)
