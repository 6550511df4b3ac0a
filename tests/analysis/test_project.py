"""Finding floe.yaml and the platform file of each environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from floe_runtime.analysis import ProjectError, discover
from floe_runtime.analysis.project import platform_file_environment

MakeProject = Callable[..., Path]
FLOE = "name: x\nversion: '1.0.0'\ntransforms: [{type: dbt, path: ./dbt}]\n"
PLATFORM = "version: '1'\n"


def test_platform_dirs_are_environments(make_project: MakeProject) -> None:
    root = make_project(FLOE, {"prod": PLATFORM, "dev": PLATFORM})
    project = discover(root)
    assert [e.name for e in project.environments] == ["dev", "prod"]
    assert project.pipeline_file == root / "floe.yaml"


def test_platform_beside_is_default_env(make_project: MakeProject) -> None:
    root = make_project(FLOE, beside=PLATFORM)
    [env] = discover(root / "floe.yaml").environments
    assert env.name == "default" and env.platform_file == root / "platform.yaml"


def test_env_option_and_floe_env_narrow(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(FLOE, {"prod": PLATFORM, "dev": PLATFORM})
    assert [e.name for e in discover(root, "prod").environments] == ["prod"]
    monkeypatch.setenv("FLOE_ENV", "dev")
    assert [e.name for e in discover(root).environments] == ["dev"]


def test_unknown_env_is_a_usage_error(make_project: MakeProject) -> None:
    root = make_project(FLOE, {"dev": PLATFORM})
    with pytest.raises(ProjectError, match="environment 'qa' not found; available: dev"):
        discover(root, "qa")


def test_floe_platform_file_names_the_file(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = make_project(FLOE, {"dev": PLATFORM})
    mounted = tmp_path / "mounted.yaml"
    mounted.write_text(PLATFORM)
    monkeypatch.setenv("FLOE_PLATFORM_FILE", str(mounted))
    monkeypatch.setenv("FLOE_ENV", "prod")
    [env] = discover(root).environments
    assert (env.name, env.platform_file) == ("prod", mounted)
    # --env names the mounted file's environment (it used to compile "default" or FLOE_ENV).
    [env] = discover(root, "staging").environments
    assert (env.name, env.platform_file) == ("staging", mounted)


def test_missing_floe_yaml(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="no floe.yaml"):
        discover(tmp_path)
    with pytest.raises(ProjectError, match="does not exist"):
        discover(tmp_path / "nope")


def test_platform_file_environment(make_project: MakeProject) -> None:
    root = make_project(FLOE, {"dev": PLATFORM}, beside=PLATFORM)
    assert platform_file_environment(root / "platform" / "dev" / "platform.yaml") == (root, "dev")
    assert platform_file_environment(root / "platform.yaml") == (root, "default")
    assert platform_file_environment(root / "floe.yaml") is None


def test_a_platform_file_stands_for_its_pipeline_in_that_environment(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root = make_project(FLOE, {"prod": PLATFORM, "dev": PLATFORM})
    project = discover(root / "platform" / "prod" / "platform.yaml")
    assert project.pipeline_file == root / "floe.yaml"
    assert [e.name for e in project.environments] == ["prod"]
    stray = tmp_path / "elsewhere" / "platform.yaml"
    stray.parent.mkdir()
    stray.write_text(PLATFORM)
    with pytest.raises(ProjectError, match="belongs to no pipeline"):
        discover(stray)
