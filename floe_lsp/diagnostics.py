"""Diagnostics: the engine's findings, pushed or pulled, re-checked across files.

A platform.yaml change re-checks every floe.yaml that uses it. Work is
scheduled per pipeline and a newer edit cancels pending work for an older
text, so diagnostics for a stale version are never published.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from pathlib import Path

from lsprotocol import types

from floe_lsp.convert import apply_change, path_of
from floe_lsp.server import FloeLanguageServer
from floe_lsp.state import file_kind
from floe_runtime.analysis import Diagnostic, Project

log = logging.getLogger(__name__)

_pending: dict[Path, asyncio.Task[None]] = {}
#: How long an edit that follows another closely waits for a newer one before it is
#: analysed. A lone edit (a keystroke: they come tens of ms apart) is analysed at
#: once; a burst (a paste, a client sending many changes) is coalesced.
DEBOUNCE_SECONDS = 0.003
BURST_SECONDS = 0.01
_last_request: dict[Path, float] = {}


def file_diagnostics(ls: FloeLanguageServer, path: Path) -> list[Diagnostic]:
    """Every engine diagnostic for `path`, over all projects it belongs to (deduplicated)."""
    seen: set[tuple[object, ...]] = set()
    out: list[Diagnostic] = []
    for analysis in ls.state.analyses_for(path):
        for diag in analysis.by_file().get(str(path), []):
            marker = (diag.range, diag.code, diag.message)
            if marker not in seen:
                seen.add(marker)
                out.append(diag)
    return out


def _publish_project(ls: FloeLanguageServer, project: Project) -> None:
    analysis = ls.state.analysis(project)
    for file, diags in analysis.by_file().items():
        path = Path(file)
        opened = ls.state.open.get(path)
        conv = ls.converter(path, opened.text if opened else None)
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=ls.uri(path),
                version=opened.version if opened else None,
                diagnostics=[conv.diagnostic(d) for d in diags],
            )
        )


def clear_project(ls: FloeLanguageServer, project: Project) -> None:
    """Withdraw published diagnostics of a project that went away."""
    if ls.pull_diagnostics:
        return
    files = [project.pipeline_file, *(e.platform_file for e in project.environments)]
    for path in files:
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=ls.uri(path), diagnostics=[])
        )


def publish_all(ls: FloeLanguageServer) -> None:
    """Push diagnostics of every known pipeline (start-up, folder changes), and its last runs'."""
    from floe_lsp import run_results

    # Run results go on dbt files, which a client never pulls for: always pushed.
    run_results.watch(ls)
    run_results.refresh(ls)
    if ls.pull_diagnostics:
        return
    for project in ls.state.all_projects():
        _publish_project(ls, project)


def schedule(ls: FloeLanguageServer, projects: list[Project]) -> None:
    """Re-check `projects` soon; a newer request for a project replaces a pending one."""
    if ls.pull_diagnostics:
        return
    for project in projects:
        key = project.pipeline_file
        now = time.monotonic()
        burst = now - _last_request.get(key, float("-inf")) < BURST_SECONDS
        _last_request[key] = now
        old = _pending.pop(key, None)
        if old is not None and not old.done():
            old.cancel()
        _pending[key] = asyncio.ensure_future(_run(ls, project, DEBOUNCE_SECONDS if burst else 0.0))


async def _run(ls: FloeLanguageServer, project: Project, delay: float) -> None:
    # Edits already queued behind this one cancel it while it waits.
    await asyncio.sleep(delay)
    current = ls.state.projects.get(project.pipeline_file)
    if current is None:
        return
    try:
        _publish_project(ls, current)
    except Exception:  # never let one bad file stop the server
        log.exception("analysing %s failed", project.pipeline_file)


def _cross_file(ls: FloeLanguageServer, path: Path) -> None:
    """A platform file changed: tell a pull client to re-pull every floe.yaml."""
    if ls.pull_diagnostics and file_kind(path) == "platform":
        ls.workspace_diagnostic_refresh(None)


def did_open(ls: FloeLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    path = path_of(params.text_document.uri)
    if path is None or file_kind(path) is None:
        return
    ls.state.set_open(path, params.text_document.text, params.text_document.version)
    schedule(ls, ls.state.ensure(path))
    _cross_file(ls, path)


def did_change(ls: FloeLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    path = path_of(params.text_document.uri)
    if path is None or file_kind(path) is None:
        return
    opened = ls.state.open.get(path)
    if opened is None:
        # A change to a document never opened (a client's mistake): there is no text it
        # applies to, so the file stays as on disk, as vscode-languageserver ignores it.
        log.warning("didChange of %s, which is not open: ignored", params.text_document.uri)
        return
    # Our own copy, not pygls's: it splits lines at U+2028/U+0085 too (LSP does not).
    text = opened.text
    for change in params.content_changes:
        text = apply_change(ls.workspace.position_codec, text, change)
    ls.state.set_open(path, text, params.text_document.version)
    schedule(ls, ls.state.ensure(path))
    _cross_file(ls, path)


def did_save(ls: FloeLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    path = path_of(params.text_document.uri)
    if path is None or file_kind(path) is None:
        return
    if file_kind(path) == "pipeline" and path not in ls.state.projects:
        ls.state.add_pipeline(path)
    schedule(ls, ls.state.ensure(path))
    _cross_file(ls, path)


def did_close(ls: FloeLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    path = path_of(params.text_document.uri)
    if path is None or path not in ls.state.open:
        return
    del ls.state.open[path]
    projects = ls.state.projects_of(path)
    if file_kind(path) == "pipeline" and not path.is_file():
        for project in projects:
            clear_project(ls, project)
            ls.state.forget(project.pipeline_file)
        return
    schedule(ls, projects)
    _cross_file(ls, path)


def watched(ls: FloeLanguageServer, params: types.DidChangeWatchedFilesParams) -> None:
    from floe_lsp import run_results

    touched: dict[Path, Project] = {}
    platform_changed = False
    runs_changed = False
    for change in params.changes:
        path = path_of(change.uri)
        if path is None:
            continue
        if run_results.is_results_file(path):
            runs_changed = True
            continue
        kind = file_kind(path)
        if kind == "pipeline":
            if change.type == types.FileChangeType.Deleted and path not in ls.state.open:
                for project in ls.state.projects_of(path):
                    clear_project(ls, project)
                ls.state.forget(path)
                continue
            added = ls.state.add_pipeline(path)
            if added is not None:
                touched[added.pipeline_file] = added
        elif kind == "platform":
            platform_changed = True
            if change.type != types.FileChangeType.Changed:
                for project in ls.state.refresh_environments(path):
                    touched[project.pipeline_file] = project
            for project in ls.state.projects_of(path):
                touched[project.pipeline_file] = project
        elif path.name == "dbt_project.yml":
            for project in ls.state.all_projects():
                touched[project.pipeline_file] = project
    schedule(ls, list(touched.values()))
    if platform_changed and ls.pull_diagnostics:
        ls.workspace_diagnostic_refresh(None)
    if runs_changed or touched:  # a new or re-read pipeline may have runs of its own
        run_results.refresh(ls)


def pull(
    ls: FloeLanguageServer, params: types.DocumentDiagnosticParams
) -> types.DocumentDiagnosticReport:
    path = path_of(params.text_document.uri)
    if path is None or file_kind(path) is None:
        return types.RelatedFullDocumentDiagnosticReport(items=[])
    diags = file_diagnostics(ls, path)
    conv = ls.converter(path)
    items = [conv.diagnostic(d) for d in diags]
    digest = hashlib.sha1(repr([(d.range, d.code, d.message) for d in diags]).encode()).hexdigest()[
        :16
    ]
    if params.previous_result_id == digest:
        return types.RelatedUnchangedDocumentDiagnosticReport(result_id=digest)
    return types.RelatedFullDocumentDiagnosticReport(items=items, result_id=digest)
