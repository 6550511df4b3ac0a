"""Fixtures shared by the whole suite."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "customer-analytics"


def vscode_test_deps() -> Path:
    """The cached code-server + playwright-core install (scripts/install-vscode-test-deps.sh)."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-vscode-test-deps.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture()
def example(tmp_path: Path) -> Path:
    """A private copy of the example project (tests may edit it)."""
    target = tmp_path / "customer-analytics"
    shutil.copytree(
        EXAMPLE, target, ignore=shutil.ignore_patterns("target", ".floe", "logs", "*.duckdb")
    )
    return target


@pytest.fixture()
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Write a project from texts: `make_project(floe="...", platforms={"dev": "..."})`.

    A dbt folder with a dbt_project.yml is created at ./dbt so FLOE030 stays quiet
    unless a test wants it.
    """

    def make(
        floe: str,
        platforms: dict[str, str] | None = None,
        beside: str | None = None,
        dbt: bool = True,
    ) -> Path:
        root = tmp_path / "proj"
        root.mkdir(exist_ok=True)
        (root / "floe.yaml").write_text(floe, encoding="utf-8")
        for env, text in (platforms or {}).items():
            folder = root / "platform" / env
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "platform.yaml").write_text(text, encoding="utf-8")
        if beside is not None:
            (root / "platform.yaml").write_text(beside, encoding="utf-8")
        if dbt:
            (root / "dbt").mkdir(exist_ok=True)
            (root / "dbt" / "dbt_project.yml").write_text(
                "name: p\nprofile: p\nconfig-version: 2\n", encoding="utf-8"
            )
        return root

    return make


@pytest.fixture(autouse=True)
def _clean_floe_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without the FLOE_* variables a developer may have set."""
    for name in ("FLOE_ENV", "FLOE_PLATFORM_FILE", "FLOE_SECRETS_DIR"):
        monkeypatch.delenv(name, raising=False)
