"""The analysis engine: load → models → checks → diagnostics, for a pipeline and its platforms.

`analyze` is pure apart from reading files (through `read`, so the language
server can hand in the editor's unsaved text) and checking that dbt paths exist.
Results per file are memoised on the file's text, so re-analysing after an edit
to one file only re-checks that file and the cross-file references.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel

from floe_runtime.analysis.checks import (
    check_literal_credentials,
    check_platform_found,
    check_references,
    check_schema,
    check_transform_paths,
)
from floe_runtime.analysis.diagnostics import Diagnostic, Range, Severity, error, limit_per_file
from floe_runtime.analysis.files import NOT_UTF8, UnreadableFile, read_text_file
from floe_runtime.analysis.loader import YamlDocument, load_yaml
from floe_runtime.analysis.project import Environment, Project
from floe_runtime.config.pipeline import Pipeline
from floe_runtime.config.platform import Platform

M = TypeVar("M", bound=BaseModel)

#: Reads a file's text; returns None when it cannot be read. The server passes one
#: that prefers documents open in the editor.
Reader = Callable[[Path], str | None]


def read_disk(path: Path) -> str | None:
    """Read a file from disk as UTF-8; None when it is missing or unreadable.

    Only a regular file of at most 5 MiB is read, without blocking (`files.read_text_file`):
    a named pipe or `/dev/zero` in a config file's place gives None, and the engine then
    says why the file was not read.
    """
    try:
        return read_text_file(path)
    except UnreadableFile:
        return None


@dataclass(frozen=True, eq=False)
class Checked(Generic[M]):
    """One file loaded and checked on its own: its document, its model (when valid) and findings."""

    document: YamlDocument
    model: M | None
    diagnostics: tuple[Diagnostic, ...]


def _check_file(text: str, file: str, model: type[M]) -> Checked[M]:
    doc = load_yaml(text, file)
    diags = list(doc.diagnostics)
    secrets, flagged = check_literal_credentials(doc)
    parsed, schema_diags = check_schema(doc, model, skip=flagged)
    diags.extend(secrets)
    diags.extend(schema_diags)
    if any(d.code == "FLOE002" for d in diags):
        parsed = None  # a duplicated key makes the meaning ambiguous
    return Checked(doc, parsed, tuple(diags))


class TextMemo(Generic[M]):
    """Per-text results, least recently used first out, bounded by characters of text.

    A bound by entry count would let a server editing a 50 KB file hold hundreds
    of ~2 MB trees; a bound by text size keeps memory in proportion to what the
    files weigh.
    """

    def __init__(self, model: type[M], budget_chars: int) -> None:
        self.model = model
        self.budget_chars = budget_chars
        self._entries: OrderedDict[tuple[str, str], Checked[M]] = OrderedDict()
        self._chars = 0

    def __call__(self, text: str, file: str) -> Checked[M]:
        key = (text, file)
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            return found
        checked = _check_file(text, file, self.model)
        self._entries[key] = checked
        self._chars += len(text)
        while self._chars > self.budget_chars and len(self._entries) > 1:
            (old_text, _), _ = self._entries.popitem(last=False)
            self._chars -= len(old_text)
        return checked

    def cache_clear(self) -> None:
        """Forget every result."""
        self._entries.clear()
        self._chars = 0

    @property
    def chars(self) -> int:
        """Characters of text currently remembered."""
        return self._chars


#: Characters of text whose results are remembered, per file kind. A parsed tree takes
#: about 40 bytes per character, so both memos together stay under ~50 MB.
MEMO_BUDGET_CHARS = 600_000

#: Load and check a floe.yaml text (memoised on the text).
check_pipeline_text: TextMemo[Pipeline] = TextMemo(Pipeline, MEMO_BUDGET_CHARS)
#: Load and check a platform.yaml text (memoised on the text).
check_platform_text: TextMemo[Platform] = TextMemo(Platform, MEMO_BUDGET_CHARS)


@dataclass
class Analysis:
    """Everything the engine learned about one project."""

    project: Project
    pipeline: Checked[Pipeline]
    platforms: dict[str, Checked[Platform]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        """Whether any diagnostic is an error."""
        return any(d.severity is Severity.ERROR for d in self.diagnostics)

    def by_file(self) -> dict[str, list[Diagnostic]]:
        """Diagnostics grouped by file; every analysed file has an entry, maybe empty."""
        out: dict[str, list[Diagnostic]] = {str(self.project.pipeline_file): []}
        for env in self.project.environments:
            out.setdefault(str(env.platform_file), [])
        for diag in self.diagnostics:
            out.setdefault(diag.file, []).append(diag)
        return out


def _unreadable(path: Path) -> Checked[BaseModel]:
    doc = YamlDocument(str(path), "", None, [])
    try:  # read again, for the reason: only a file that failed pays for it
        read_text_file(path)
        message = "cannot read the file"  # readable now: it changed in between
    except UnreadableFile as exc:
        message = (
            "cannot read the file as UTF-8 text"
            if exc.reason == NOT_UTF8
            else f"the file {exc.reason}" + ("" if exc.missing else "; it was not read")
        )
    diag = error(str(path), Range.of(0, 0), "FLOE001", message)
    return Checked(doc, None, (diag,))


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def analyze(project: Project, read: Reader = read_disk) -> Analysis:
    """Check a pipeline against every environment of `project`; never raises for bad input."""
    pipeline_path = project.pipeline_file
    text = read(pipeline_path)
    pipeline: Checked[Pipeline] = (
        check_pipeline_text(text, str(pipeline_path))
        if text is not None
        else _unreadable(pipeline_path)  # type: ignore[assignment]
    )
    analysis = Analysis(project, pipeline)
    diags = analysis.diagnostics
    diags.extend(pipeline.diagnostics)
    seen_files: set[Path] = set()
    for env in project.environments:
        checked = _check_env(env, read)
        analysis.platforms[env.name] = checked
        if env.platform_file not in seen_files:  # one file may serve two names via FLOE_ENV
            seen_files.add(env.platform_file)
            diags.extend(checked.diagnostics)
        if pipeline.document.ok:
            diags.extend(
                check_references(
                    pipeline.document,
                    env.name,
                    checked.document,
                    _shown(env.platform_file, project.root),
                )
            )
    if pipeline.document.ok:
        diags.extend(check_transform_paths(pipeline.document, project.root))
        diags.extend(check_platform_found(pipeline.document, bool(project.environments)))
    analysis.diagnostics = limit_per_file(diags)
    return analysis


def _check_env(env: Environment, read: Reader) -> Checked[Platform]:
    text = read(env.platform_file)
    if text is None:
        return _unreadable(env.platform_file)  # type: ignore[return-value]
    return check_platform_text(text, str(env.platform_file))
