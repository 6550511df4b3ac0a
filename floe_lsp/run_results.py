"""Run results in the editor: dbt's failures on the lines that caused them (FLOE050), the last
run per environment as a code lens on floe.yaml, and each model's last status in transform hovers.

Everything comes from the results file `floe-runtime run` writes per environment
(`<project>/.floe/runs/<env>.json`, floe_runtime.runtime.results), whether the run
was started from the editor or in a terminal. The server never parses SQL: dbt
and the runtime placed each failure (the source line holding the compiled line
dbt blamed, else the node's first line); the server only reads the file's line
to underline it. Diagnostics are pushed for the dbt files whether or not they
are open, and withdrawn when a rerun passes or the file goes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lsprotocol import types

from floe_lsp.convert import Converter, split_lines
from floe_lsp.server import FloeLanguageServer
from floe_runtime.analysis import Position, Project, Range
from floe_runtime.runtime.results import (
    ASSET_KINDS,
    TEST_KINDS,
    NodeRecord,
    RunRecord,
    read_results,
    results_path,
)

log = logging.getLogger(__name__)

CODE = "FLOE050"
#: The registration id of the results files' watcher (beside lifecycle's floe-file watcher).
WATCH_ID = "floe-watch-run-results"
WATCH_GLOB = "**/.floe/runs/*.json"
#: dbt files larger than this are not read to place a diagnostic (it goes on line 1).
MAX_SOURCE_BYTES = 5 * 1024 * 1024


@dataclass
class _Cached:
    stamp: tuple[int, int]
    record: RunRecord | None


#: Results files read so far, by path, with the (mtime, size) they were read at.
_cache: dict[Path, _Cached] = {}
#: URIs that have FLOE050 diagnostics published now → those diagnostics.
_published: dict[str, list[types.Diagnostic]] = {}
#: What the lenses showed at the last refresh (to ask the client to redraw only on change).
_lens_state: dict[Path, tuple[str, ...]] | None = None
_watching: list[bool] = []


def is_results_file(path: Path) -> bool:
    """Whether `path` is an environment's results file (`.floe/runs/<env>.json`)."""
    return (
        path.suffix == ".json" and path.parent.name == "runs" and path.parent.parent.name == ".floe"
    )


def last_run(project: Project, environment: str) -> RunRecord | None:
    """The last run of `project` in `environment`, read again only when its file changed."""
    path = results_path(project.root, environment)
    try:
        info = os.stat(path)
    except OSError:
        _cache.pop(path, None)
        return None
    stamp = (info.st_mtime_ns, info.st_size)
    cached = _cache.get(path)
    if cached is None or cached.stamp != stamp:
        record = read_results(path)
        if record is not None and record.environment != environment:
            record = None  # a file copied from another environment
        cached = _cache[path] = _Cached(stamp, record)
    return cached.record


def last_runs(project: Project) -> dict[str, RunRecord]:
    """The last run of each of the project's environments (environments gone are left out)."""
    out = {}
    for env in project.environments:
        record = last_run(project, env.name)
        if record is not None:
            out[env.name] = record
    return out


# ------------------------------------------------------------------ diagnostics
def _source_text(path: Path) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > MAX_SOURCE_BYTES:
            return None
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return None


def _message(node: NodeRecord) -> str:
    kind = node.resource_type.replace("_", " ")
    text = (node.publish_error or node.message or node.status).strip()
    return text if node.name in text else f"{kind} {node.name}: {text}"


def _diagnostic(
    ls: FloeLanguageServer, project: Project, env: str, node: NodeRecord
) -> tuple[Path, types.Diagnostic] | None:
    if not node.failed or not node.file:
        return None
    path = (project.root / node.file).resolve()
    text = _source_text(path) or ""
    lines = split_lines(text)
    line = (node.line or 1) - 1
    if not 0 <= line < len(lines):
        line = 0
    content = lines[line].rstrip("\r\n") if lines else ""
    start = len(content) - len(content.lstrip())
    conv = Converter(ls.workspace.position_codec, text)
    rng = conv.range(Range(Position(line, start), Position(line, len(content))))
    related = None
    caps = ls.client_capabilities.text_document
    publish = caps.publish_diagnostics if caps is not None else None
    if node.compiled_file and publish is not None and publish.related_information:
        compiled = (project.root / node.compiled_file).resolve()
        at = max(0, (node.compiled_line or 1) - 1)
        related = [
            types.DiagnosticRelatedInformation(
                location=types.Location(
                    uri=ls.uri(compiled),
                    range=types.Range(
                        start=types.Position(line=at, character=0),
                        end=types.Position(line=at, character=0),
                    ),
                ),
                message="the compiled SQL dbt ran",
            )
        ]
    return path, types.Diagnostic(
        range=rng,
        severity=types.DiagnosticSeverity.Error,
        code=CODE,
        source=f"floe run ({env})",
        message=_message(node),
        related_information=related,
    )


def failure_diagnostics(ls: FloeLanguageServer) -> dict[str, list[types.Diagnostic]]:
    """FLOE050 diagnostics of every known pipeline's last runs, by file URI."""
    out: dict[str, list[types.Diagnostic]] = {}
    for project in ls.state.all_projects():
        for env, record in last_runs(project).items():
            for node in record.nodes:
                found = _diagnostic(ls, project, env, node)
                if found is not None:
                    out.setdefault(ls.uri(found[0]), []).append(found[1])
    return out


def refresh(ls: FloeLanguageServer) -> None:
    """Read the results files again and bring the editor up to date with them.

    Publishes FLOE050 for each dbt file with a failure (an empty list where a rerun
    passed), and asks the client to redraw code lenses when a last run changed. Call
    it whenever a results file may have changed: after `floe.run`, on a watched-file
    change of one (`is_results_file`), from the server's own file watcher.
    """
    try:
        current = failure_diagnostics(ls)
    except Exception:  # a results file must never stop the server
        log.exception("reading run results failed")
        return
    for uri in sorted(set(_published) - set(current)):
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )
        del _published[uri]
    for uri, diags in sorted(current.items()):
        if _published.get(uri) != diags:
            ls.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=diags)
            )
            _published[uri] = diags
    _refresh_lenses(ls)


def _refresh_lenses(ls: FloeLanguageServer) -> None:
    global _lens_state
    state = {
        project.pipeline_file: runs
        for project in ls.state.all_projects()
        if (
            runs := tuple(
                f"{env}:{record.run_id}:{record.finished_at}"
                for env, record in sorted(last_runs(project).items())
            )
        )
    }
    if state == _lens_state:
        return
    first, _lens_state = _lens_state is None, state
    caps = ls.client_capabilities.workspace
    if first or caps is None or caps.code_lens is None or not caps.code_lens.refresh_support:
        return
    try:
        ls.workspace_code_lens_refresh(None)
    except Exception as exc:
        log.warning("code lens refresh failed: %s", exc)


def watch(ls: FloeLanguageServer) -> None:
    """Ask a client that watches files to report changes of the results files (once)."""
    if _watching:
        return
    _watching.append(True)
    caps = ls.client_capabilities.workspace
    watched = caps.did_change_watched_files if caps is not None else None
    if watched is None or not watched.dynamic_registration:
        return
    params = types.RegistrationParams(
        registrations=[
            types.Registration(
                id=WATCH_ID,
                method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                register_options=types.DidChangeWatchedFilesRegistrationOptions(
                    watchers=[types.FileSystemWatcher(glob_pattern=WATCH_GLOB)]
                ),
            )
        ]
    )
    try:
        ls.client_register_capability(params)
    except Exception as exc:  # a client that refuses: runs from the editor still show
        log.warning("could not watch run results: %s", exc)


# ------------------------------------------------------------------ lenses and hovers
def _age(finished_at: str, now: datetime | None = None) -> str:
    try:
        then = datetime.fromisoformat(finished_at.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - then).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def lens_title(record: RunRecord, now: datetime | None = None) -> str:
    """`✓ dev 3 min ago · 9 models · 46 tests`, or `✗ dev · 1 failed`."""
    env = record.environment
    if record.status == "success":
        return " · ".join(
            [
                f"✓ {env} {_age(record.finished_at, now)}",
                _count(len(record.assets), "model"),
                _count(len(record.tests), "test"),
            ]
        )
    failed = sum(1 for n in record.nodes if n.failed)
    if failed:
        return f"✗ {env} · {failed} failed"
    return f"✗ {env} · dbt stopped before running any node"


def lenses(project: Project, environments: list[str], rng: types.Range) -> list[types.CodeLens]:
    """One lens per environment in `environments` that has a last run."""
    out = []
    for env in environments:
        record = last_run(project, env)
        if record is not None:
            out.append(
                types.CodeLens(
                    range=rng, command=types.Command(title=lens_title(record), command="")
                )
            )
    return out


def _status_mark(node: NodeRecord) -> str:
    if node.failed:
        return "✗"
    return "✓" if node.status in ("success", "pass") else "·"


def transform_markdown(ls: FloeLanguageServer, pipeline_file: Path, index: int) -> str | None:
    """Markdown of the last run of transform `index` of a floe.yaml, per environment (hover).

    Each model, seed and snapshot with its last status, rows and duration, and the
    tests' counts. None when no environment has run it.
    """
    projects = [p for p in ls.state.ensure(pipeline_file) if p.pipeline_file == pipeline_file]
    if not projects:
        return None
    parts = []
    for env, record in last_runs(projects[0]).items():
        nodes = [n for n in record.nodes if n.transform == index]
        if not nodes:
            continue
        mark = "✓" if record.status == "success" else "✗"
        lines = [f"**Last run · {env}** {mark} {_age(record.finished_at)}", ""]
        for node in nodes:
            if node.resource_type not in ASSET_KINDS:
                continue
            status = "publish failed" if node.publish_error else node.status
            if node.withheld:
                status += ", not published"
            rows = f" · {_count(node.rows, 'row')}" if node.rows is not None else ""
            lines.append(
                f"- {_status_mark(node)} `{node.name}` {status}{rows} · {node.seconds:.2f}s"
            )
        tests = [n for n in nodes if n.resource_type in TEST_KINDS]
        if tests:
            failed = sum(1 for t in tests if t.failed)
            passed = sum(1 for t in tests if t.status == "pass")
            lines.append(f"- tests: {passed} passed, {failed} failed")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) if parts else None
