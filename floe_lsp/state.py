"""Workspace state: which pipelines exist, which files they use, and their latest analysis.

One object holds it all so that every feature module answers from the same
picture. Documents open in the editor take precedence over the disk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from floe_runtime.analysis import Analysis, Project, ProjectError, analyze, discover, read_disk
from floe_runtime.analysis.diagnostics import ZERO_RANGE, error
from floe_runtime.analysis.engine import Checked, check_pipeline_text, check_platform_text
from floe_runtime.analysis.files import exists_on_disk, resolved
from floe_runtime.analysis.loader import YamlDocument
from floe_runtime.analysis.project import PIPELINE_FILE, PLATFORM_FILE, platform_file_environment
from floe_runtime.config.pipeline import Pipeline
from floe_runtime.config.platform import Platform

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger(__name__)

#: Folders never searched for floe.yaml (build output, dependencies, VCS data).
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "node_modules",
        "target",
        "dbt_packages",
        "__pycache__",
        ".floe",
        ".tox",
        ".mypy_cache",
        ".pytest_cache",
        "site-packages",
    }
)
#: How deep below a workspace folder floe.yaml files are looked for.
MAX_DEPTH = 6


def file_kind(path: Path) -> str | None:
    """'pipeline' for floe.yaml, 'platform' for a platform.yaml of a pipeline, None otherwise.

    A platform.yaml belongs to the floe.yaml beside it or two folders up
    (`platform/<env>/platform.yaml`), or is the one `FLOE_PLATFORM_FILE` names;
    any other platform.yaml (a monorepo's `infra/platform.yaml`) is not a floe file:
    no diagnostics, no features.
    """
    if path.name == PIPELINE_FILE:
        return "pipeline"
    if path.name == PLATFORM_FILE and _belongs_to_pipeline(path):
        return "platform"
    return None


def _belongs_to_pipeline(path: Path) -> bool:
    named = os.environ.get("FLOE_PLATFORM_FILE")
    if named and resolved(Path(named).expanduser()) == resolved(path):
        return True  # every pipeline's one environment, as a Kubernetes mount is
    owner = platform_file_environment(path)
    return owner is not None and exists_on_disk(owner[0] / PIPELINE_FILE)


def find_pipelines(folder: Path) -> Iterator[Path]:
    """Every floe.yaml below `folder` (bounded depth, skipping build and dependency folders)."""
    base_depth = len(folder.parts)
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        if len(here.parts) - base_depth >= MAX_DEPTH:
            dirnames[:] = []
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        if PIPELINE_FILE in filenames:
            yield resolved(here / PIPELINE_FILE)


@dataclass
class OpenText:
    """The text of a document open in the editor, with its version."""

    text: str
    version: int | None


class WorkspaceState:
    """Pipelines of the workspace, their platform files, open documents and analyses."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self.environ = environ
        self.projects: dict[Path, Project] = {}  # pipeline file -> project
        self.open: dict[Path, OpenText] = {}
        self._analyses: dict[Path, Analysis] = {}
        # The last text of each file that parsed: completion and hover keep knowing the
        # profiles of a platform.yaml while it is half-typed.
        self._last_good: dict[Path, Checked[Any]] = {}
        #: Called with each pipeline seen for the first time (the file watcher covers its folder).
        self.on_new_project: list[Callable[[Project], None]] = []

    # ------------------------------------------------------------ reading
    def read(self, path: Path) -> str | None:
        """The editor's text when `path` is open, else the disk's."""
        opened = self.open.get(path)
        if opened is not None:
            return opened.text
        return read_disk(path)

    def set_open(self, path: Path, text: str, version: int | None) -> None:
        """Record the editor's text of a document.

        Nothing is parsed here (a burst of keystrokes must stay cheap); the
        debounced analysis remembers each text that parses.
        """
        if path not in self.open and path not in self._last_good:
            self._checked(path)  # the disk text, as a last good parse to fall back on
        self.open[path] = OpenText(text, version)

    def _checked(self, path: Path) -> None:
        kind = file_kind(path)
        if kind == "pipeline":
            self.checked_pipeline(path)
        elif kind == "platform":
            self.checked_platform(path)

    # ------------------------------------------------------------ discovery
    def scan(self, folders: Iterable[Path]) -> None:
        """Discover every floe.yaml in the workspace folders (multi-root).

        One pipeline that cannot be discovered is logged and left out; the others are not.
        """
        for folder in folders:
            if folder.is_dir():
                for pipeline in find_pipelines(folder):
                    try:
                        self.add_pipeline(pipeline)
                    except Exception:  # a bug for one pipeline must not hide the rest
                        log.exception("discovering %s failed", pipeline)

    def add_pipeline(self, pipeline_file: Path) -> Project | None:
        """(Re)discover the project of a floe.yaml; None when it is gone."""
        pipeline_file = resolved(pipeline_file)
        try:
            project = discover(pipeline_file, environ=self.environ)
        except ProjectError:
            self.forget(pipeline_file)
            return None
        known = project.pipeline_file in self.projects
        self.projects[project.pipeline_file] = project
        self._analyses.pop(project.pipeline_file, None)
        if not known:
            for listener in self.on_new_project:
                listener(project)
        return project

    def forget(self, pipeline_file: Path) -> None:
        """Drop a pipeline (its floe.yaml was deleted)."""
        self.projects.pop(pipeline_file, None)
        self._analyses.pop(pipeline_file, None)

    def ensure(self, path: Path) -> list[Project]:
        """The projects a floe.yaml or platform.yaml belongs to, discovering them if needed."""
        path = resolved(path)
        found = self.projects_of(path)
        if found:
            return found
        kind = file_kind(path)
        # On disk in any form (a FIFO too): the engine reads the editor's text, or says why
        # the disk's was not read.
        on_disk = exists_on_disk(path)
        if kind == "pipeline" and (on_disk or path in self.open):
            project = self.add_pipeline(path) if on_disk else None
            return [project] if project else []
        if kind == "platform":
            owner = platform_file_environment(path)
            if owner is not None and exists_on_disk(owner[0] / PIPELINE_FILE):
                self.add_pipeline(owner[0] / PIPELINE_FILE)
                return self.projects_of(path)
        return []

    def projects_of(self, path: Path) -> list[Project]:
        """Projects whose floe.yaml or one of whose platform files is `path`."""
        out = []
        for project in self.projects.values():
            if project.pipeline_file == path or any(
                env.platform_file == path for env in project.environments
            ):
                out.append(project)
        return out

    def refresh_environments(self, platform_file: Path) -> list[Project]:
        """A platform.yaml appeared or vanished: rediscover the pipeline it belongs to."""
        owner = platform_file_environment(platform_file)
        touched = []
        if owner is not None:
            pipeline = resolved(owner[0] / PIPELINE_FILE)
            if pipeline in self.projects or exists_on_disk(pipeline):
                project = self.add_pipeline(pipeline)
                if project is not None:
                    touched.append(project)
        return touched

    # ------------------------------------------------------------ analysis
    def analysis(self, project: Project) -> Analysis:
        """The analysis of a project against the current texts (cheap: the engine memoises).

        The engine never raises for bad input; should it fail all the same, this project
        gets one diagnostic saying so and every other project is analysed as usual.
        """
        try:
            result = analyze(project, read=self.read)
        except Exception as exc:
            log.exception("analysing %s failed", project.pipeline_file)
            return _failed_analysis(project, exc)
        if result.pipeline.document.ok and result.pipeline.document.root is not None:
            self._last_good[project.pipeline_file] = result.pipeline
        for env in project.environments:
            checked = result.platforms.get(env.name)
            if checked is not None and checked.document.ok and checked.document.root is not None:
                self._last_good[env.platform_file] = checked
        return result

    def analyses_for(self, path: Path) -> list[Analysis]:
        """Analyses of every project `path` belongs to."""
        return [self.analysis(project) for project in self.ensure(path)]

    def checked_pipeline(self, path: Path) -> Checked[Pipeline] | None:
        """floe.yaml checked on its own (for the document tree)."""
        text = self.read(path)
        return self._remember(
            path, check_pipeline_text(text, str(path)) if text is not None else None
        )

    def checked_platform(self, path: Path) -> Checked[Platform] | None:
        """platform.yaml checked on its own."""
        text = self.read(path)
        return self._remember(
            path, check_platform_text(text, str(path)) if text is not None else None
        )

    def _remember(self, path: Path, checked: Checked[M] | None) -> Checked[M] | None:
        if checked is not None and checked.document.ok and checked.document.root is not None:
            self._last_good[path] = checked
            return checked
        last = self._last_good.get(path)
        return last if last is not None else checked

    def all_projects(self) -> list[Project]:
        """Every known project, in a stable order."""
        return [self.projects[key] for key in sorted(self.projects)]


def _failed_analysis(project: Project, exc: Exception) -> Analysis:
    file = str(project.pipeline_file)
    doc = YamlDocument(file, "", None, [])
    message = (
        f"floe could not analyse this pipeline ({type(exc).__name__}); "
        "the language server's log has the details"
    )
    diag = error(file, ZERO_RANGE, "FLOE001", message)
    return Analysis(project, Checked(doc, None, (diag,)), diagnostics=[diag])


Reader = Callable[[Path], str | None]
