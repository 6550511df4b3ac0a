"""Find a pipeline's files: floe.yaml and the platform.yaml of each environment.

Where platform files live (DESIGN §3): `platform.yaml` beside floe.yaml (one
environment, named "default"), or `platform/<env>/platform.yaml` (one per
environment); `FLOE_PLATFORM_FILE` names a file directly, as a Kubernetes mount
would. `--env` or `FLOE_ENV` narrows the set to one environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from floe_runtime.analysis.files import exists_on_disk, resolved

PIPELINE_FILE = "floe.yaml"
PLATFORM_FILE = "platform.yaml"
PLATFORM_DIR = "platform"
DEFAULT_ENV = "default"


class ProjectError(Exception):
    """A usage problem finding the project (no floe.yaml, unknown environment)."""


@dataclass(frozen=True)
class Environment:
    """One environment: its name and its platform file."""

    name: str
    platform_file: Path


@dataclass(frozen=True)
class Project:
    """A pipeline and the environments it can run in."""

    root: Path
    pipeline_file: Path
    environments: tuple[Environment, ...] = field(default_factory=tuple)

    def environment(self, name: str) -> Environment:
        """The environment called `name`; ProjectError when there is none."""
        for env in self.environments:
            if env.name == name:
                return env
        raise ProjectError(_unknown_env(name, self.environments))


def _unknown_env(name: str, envs: tuple[Environment, ...]) -> str:
    if not envs:
        return f"environment '{name}' not found: this pipeline has no platform.yaml"
    names = ", ".join(e.name for e in envs)
    return f"environment '{name}' not found; available: {names}"


def find_environments(
    root: Path, environ: Mapping[str, str] | None = None, env: str | None = None
) -> list[Environment]:
    """Every environment of the pipeline rooted at `root`, in a stable order.

    With `FLOE_PLATFORM_FILE` there is one, named by `env` (`--env`), else `FLOE_ENV`,
    else "default": the file is that environment's platform, as a Kubernetes mount is.
    """
    environ = os.environ if environ is None else environ
    named = environ.get("FLOE_PLATFORM_FILE")
    if named:
        path = Path(named).expanduser()
        if not path.is_absolute():
            path = Path.cwd() / path
        return [Environment(env or environ.get("FLOE_ENV") or DEFAULT_ENV, path)]
    # A platform.yaml that is there but cannot be read (a FIFO, a looping link) is still an
    # environment: the engine then says why it was not read, instead of it going missing.
    envs: list[Environment] = []
    beside = root / PLATFORM_FILE
    if exists_on_disk(beside):
        envs.append(Environment(DEFAULT_ENV, beside))
    platform_dir = root / PLATFORM_DIR
    if platform_dir.is_dir():
        try:
            children = sorted(platform_dir.iterdir())
        except OSError:
            children = []
        for child in children:
            candidate = child / PLATFORM_FILE
            if exists_on_disk(candidate) and not any(e.name == child.name for e in envs):
                envs.append(Environment(child.name, candidate))
    return envs


def discover(
    path: Path | str | None = None,
    env: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Project:
    """The project at `path` (a folder holding floe.yaml, or a floe.yaml file).

    `env` (or `FLOE_ENV`) narrows the environments to one. Raises ProjectError
    for a missing floe.yaml or an unknown environment.
    """
    environ = os.environ if environ is None else environ
    target = Path(path) if path is not None else Path.cwd()
    target = target.expanduser()
    if target.is_dir():
        pipeline_file = target / PIPELINE_FILE
        if not exists_on_disk(pipeline_file):
            raise ProjectError(
                f"no {PIPELINE_FILE} in {target} (run 'floe-runtime init' to create one)"
            )
    elif exists_on_disk(target) and target.name == PLATFORM_FILE:
        # A platform file stands for its pipeline, in that one environment.
        owner = platform_file_environment(target)
        if owner is None:
            raise ProjectError(
                f"{target} belongs to no pipeline: expected floe.yaml beside it or at ../../"
            )
        root, env_name = owner
        return Project(root, root / PIPELINE_FILE, (Environment(env_name, resolved(target)),))
    elif exists_on_disk(target):
        pipeline_file = target  # even a FIFO: the engine says why it is not read
    else:
        raise ProjectError(f"{target} does not exist")
    pipeline_file = resolved(pipeline_file)
    root = pipeline_file.parent
    wanted = env or environ.get("FLOE_ENV") or None
    envs = tuple(find_environments(root, environ, wanted))
    if wanted and not environ.get("FLOE_PLATFORM_FILE"):
        project = Project(root, pipeline_file, envs)
        envs = (project.environment(wanted),)
    return Project(root, pipeline_file, envs)


def platform_file_environment(path: Path) -> tuple[Path, str] | None:
    """For a platform.yaml, the pipeline root it belongs to and its environment name."""
    path = resolved(path)
    if path.name != PLATFORM_FILE:
        return None
    if exists_on_disk(path.parent / PIPELINE_FILE):
        return path.parent, DEFAULT_ENV
    if path.parent.parent.name == PLATFORM_DIR:
        return path.parent.parent.parent, path.parent.name
    return None
