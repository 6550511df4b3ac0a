"""Initialize: read what the client can do, find every pipeline, watch the files.

A client that can watch files is asked to (dynamic registration); for one that
cannot, the server watches them itself (`floe_lsp.watch`, loaded only then).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.uris import to_fs_path

from floe_lsp.server import FloeLanguageServer, register_pull_diagnostics

if TYPE_CHECKING:
    from floe_lsp.watch import Watcher

log = logging.getLogger(__name__)

WATCH_ID = "floe-watch-yaml"


def _get(obj: Any, *names: str) -> Any:
    for name in names:
        if obj is None:
            return None
        obj = getattr(obj, name, None)
    return obj


def register(server: FloeLanguageServer) -> None:
    """Register initialize/initialized, shutdown and workspace-folder handlers."""
    watchers: list[Watcher] = []  # the server's own file watcher, when it runs one

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
        try:
            publish_all(ls)
        except Exception:  # the rest of start-up (environment, watching) must still happen
            log.exception("publishing the start-up diagnostics failed")
        from floe_lsp.commands import refresh_environment

        await refresh_environment(ls)
        if not ls.watch_registered:
            # No client watching (Neovim on Linux): changes made on disk would go unseen.
            try:
                from floe_lsp.watch import start

                watchers.append(await start(ls, _folders(ls)))
            except Exception as exc:  # no watching is no reason to stop serving
                log.warning("could not watch the workspace's files: %s", exc)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: FloeLanguageServer, params: None) -> None:
        while watchers:
            watchers.pop().stop()
        from floe_lsp import warm_runner

        warm_runner.shutdown(ls)

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
        if watchers:
            from floe_lsp.watch import cover

            for removed in params.event.removed:
                root = path_of(removed.uri)
                if root is not None:
                    asyncio.ensure_future(asyncio.to_thread(watchers[0].uncover, root))
            for folder in added:
                asyncio.ensure_future(cover(ls, watchers[0], folder))


def path_of(uri: str) -> Path | None:
    """The resolved path of a file URI (kept here so that start-up needs no engine import)."""
    fs = to_fs_path(uri)
    if fs is None or not uri.startswith("file:") or "\0" in fs:  # %00: no file has this name
        return None
    try:
        return Path(fs).resolve()
    except (OSError, RuntimeError, ValueError):  # a symbolic link loop: the path as given
        return Path(os.path.abspath(fs))


def _folders(ls: FloeLanguageServer) -> list[Path]:
    folders = [path_of(f.uri) for f in ls.workspace.folders.values()]
    out = [f for f in folders if f is not None]
    if not out and ls.workspace.root_uri:
        root = path_of(ls.workspace.root_uri)
        if root is not None:
            out.append(root)
    return out
