"""Initialize: read what the client can do, find every pipeline, watch the files."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.uris import to_fs_path

from floe_lsp.server import FloeLanguageServer, register_pull_diagnostics

log = logging.getLogger(__name__)

WATCH_ID = "floe-watch-yaml"


def _get(obj: Any, *names: str) -> Any:
    for name in names:
        if obj is None:
            return None
        obj = getattr(obj, name, None)
    return obj


def register(server: FloeLanguageServer) -> None:
    """Register initialize/initialized and workspace-folder handlers."""

    @server.feature(types.INITIALIZE)
    def initialize(ls: FloeLanguageServer, params: types.InitializeParams) -> None:
        caps = params.capabilities
        ls.snippets = bool(
            _get(caps, "text_document", "completion", "completion_item", "snippet_support")
        )
        formats = _get(caps, "text_document", "hover", "content_format") or []
        ls.markdown = not formats or types.MarkupKind.Markdown in formats
        pull = _get(caps, "text_document", "diagnostic") is not None
        refresh = bool(_get(caps, "workspace", "diagnostics", "refresh_support"))
        # Pull only when the client can also be told to re-pull: a floe.yaml's
        # diagnostics change when a platform.yaml changes, and a pull client
        # without refresh would show stale findings. Otherwise push.
        ls.pull_diagnostics = pull and refresh
        if ls.pull_diagnostics:
            register_pull_diagnostics(ls)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: FloeLanguageServer, params: types.InitializedParams) -> None:
        from floe_lsp.diagnostics import publish_all

        ls.state.scan(_folders(ls))
        # Parsed trees are many small objects: keep start-up objects out of every
        # collection and collect the young generation less often, so a full GC
        # pass does not land in the middle of an edit.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 50)
        caps = ls.client_capabilities
        if _get(caps, "workspace", "did_change_watched_files", "dynamic_registration"):
            try:
                await ls.client_register_capability_async(
                    types.RegistrationParams(
                        registrations=[
                            types.Registration(
                                id=WATCH_ID,
                                method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                                register_options=types.DidChangeWatchedFilesRegistrationOptions(
                                    watchers=[
                                        types.FileSystemWatcher(glob_pattern="**/floe.yaml"),
                                        types.FileSystemWatcher(glob_pattern="**/platform.yaml"),
                                        types.FileSystemWatcher(glob_pattern="**/dbt_project.yml"),
                                    ]
                                ),
                            )
                        ]
                    )
                )
                ls.watch_registered = True
            except Exception as exc:  # a client that refuses: keep working without watching
                log.warning("could not register file watching: %s", exc)
        publish_all(ls)
        from floe_lsp.commands import refresh_environment

        await refresh_environment(ls)

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def folders_changed(
        ls: FloeLanguageServer, params: types.DidChangeWorkspaceFoldersParams
    ) -> None:
        from floe_lsp.diagnostics import clear_project, publish_all

        for removed in params.event.removed:
            root = path_of(removed.uri)
            if root is None:
                continue
            for pipeline in list(ls.state.projects):
                if pipeline.is_relative_to(root):
                    clear_project(ls, ls.state.projects[pipeline])
                    ls.state.forget(pipeline)
        added = [p for p in (path_of(f.uri) for f in params.event.added) if p is not None]
        ls.state.scan(added)
        publish_all(ls)


def path_of(uri: str) -> Path | None:
    """The resolved path of a file URI (kept here so that start-up needs no engine import)."""
    fs = to_fs_path(uri)
    return Path(fs).resolve() if fs is not None and uri.startswith("file:") else None


def _folders(ls: FloeLanguageServer) -> list[Path]:
    folders = [path_of(f.uri) for f in ls.workspace.folders.values()]
    out = [f for f in folders if f is not None]
    if not out and ls.workspace.root_uri:
        root = path_of(ls.workspace.root_uri)
        if root is not None:
            out.append(root)
    return out
