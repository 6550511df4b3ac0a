"""Watch the workspace's floe files on disk when the client cannot (Neovim on Linux).

Started after `initialized` for a client without `workspace.didChangeWatchedFiles`
dynamic registration. watchdog's native observer (inotify on Linux) watches each
workspace folder and each pipeline found outside them, recursively; where it
cannot (no native backend, the inotify watch limit reached) a polling observer
takes that folder, listing only floe files and the folders a pipeline can live in.
Build, dependency and hidden folders are skipped, except each pipeline's
`.floe/runs/`, where `floe-runtime run` leaves its results (a run from a terminal
must reach the editor too); a `.floe` made later is picked up, none is created.
Changes are debounced and fed to the handler of the client's
`workspace/didChangeWatchedFiles`, so both paths behave the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from lsprotocol import types
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver, PollingObserverVFS

from floe_lsp.run_results import is_results_file
from floe_lsp.server import FloeLanguageServer
from floe_lsp.state import SKIP_DIRS
from floe_runtime.analysis.project import PIPELINE_FILE, PLATFORM_FILE, Project
from floe_runtime.runtime.results import results_path

log = logging.getLogger(__name__)

#: The files whose changes matter to the server (the same globs a watching client is given).
WATCHED_NAMES = frozenset({PIPELINE_FILE, PLATFORM_FILE, "dbt_project.yml"})
#: The hidden folder, and the folder in it, holding a pipeline's results files.
RESULTS_FOLDERS = (".floe", "runs")
#: Quiet time after the last event before a batch is handled: one save is several events.
DEBOUNCE_SECONDS = 0.1
#: The longest a change waits while events keep coming (a checkout writing many files).
MAX_WAIT_SECONDS = 0.5
#: How often the polling fallback lists its folders.
POLL_SECONDS = 1
#: Event types asked of the observers (no open/read events: the server reads these files).
EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]

Change = tuple[Path, types.FileChangeType]


def _pruned(parts: Iterable[str]) -> bool:
    """A path below a build, dependency or hidden folder, where no floe file is looked for."""
    return any(part in SKIP_DIRS or part.startswith(".") for part in parts)


def _reported(parts: tuple[str, ...]) -> bool:
    """Whether the file at `parts` (below a watched folder) is one whose changes are reported.

    A floe file outside pruned folders, or a results file (`.floe/runs/*.json`) of
    a folder outside them.
    """
    *folders, name = parts
    if tuple(folders[-2:]) == RESULTS_FOLDERS:
        return name.endswith(".json") and not _pruned(folders[:-2])
    return name in WATCHED_NAMES and not _pruned(folders)


def _watched_folder(parts: tuple[str, ...]) -> bool:
    """Whether the folder at `parts` (below a watched folder) can hold reported files."""
    for depth in (1, 2):  # `.floe` itself, `.floe/runs`
        if parts[-depth:] == RESULTS_FOLDERS[:depth]:
            return not _pruned(parts[:-depth])
    return not _pruned(parts)


def _is_results_folder(folder: Path) -> bool:
    return (folder.parent.name, folder.name) == RESULTS_FOLDERS


def _entered(folder: Path, name: str) -> bool:
    """Whether a folder `name` inside `folder` is listed by the polling fallback."""
    if _is_results_folder(folder):
        return False
    if folder.name == RESULTS_FOLDERS[0]:
        return name == RESULTS_FOLDERS[1]  # not its warehouse or catalog
    return name == RESULTS_FOLDERS[0] or (name not in SKIP_DIRS and not name.startswith("."))


def _listed(folder: Path, name: str) -> bool:
    """Whether a file `name` inside a folder `_entered` reached is reported."""
    if _is_results_folder(folder):
        return name.endswith(".json")
    return folder.name != RESULTS_FOLDERS[0] and name in WATCHED_NAMES


def _listdir(path: str | None) -> Iterator[os.DirEntry[str]]:
    """os.scandir for the polling fallback: only folders worth entering and floe files."""
    folder = Path(path or ".")
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if _entered(folder, entry.name):
                    yield entry
            elif _listed(folder, entry.name):
                yield entry


def _floe_files_below(folder: Path) -> Iterator[Path]:
    """Floe and results files in a folder that appeared (moved in): its pruned tree."""
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if _entered(here, d)]
        for name in filenames:
            if _listed(here, name):
                yield here / name


def _is_reported_name(path: Path) -> bool:
    """A moved file's side that is a floe or results file (the handler checked the folders)."""
    return path.name in WATCHED_NAMES or is_results_file(path)


class _Handler(FileSystemEventHandler):
    """Runs on an observer thread: keeps floe-relevant events and hands them to the loop."""

    def __init__(self, root: Path, post: Callable[[FileSystemEvent], None]) -> None:
        self.root = root
        self.post = post

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [os.fsdecode(event.src_path)]
        if event.dest_path:
            paths.append(os.fsdecode(event.dest_path))
        for raw in paths:
            path = Path(raw)
            try:
                relative = path.relative_to(self.root)
            except ValueError:
                continue
            if _watched_folder(relative.parts) if event.is_directory else _reported(relative.parts):
                self.post(event)
                return


class Watcher:
    """watchdog observers over a set of folders, reporting changes of floe files.

    `on_changes` gets, on the event loop, each debounced batch of (path, change type);
    `known` lists the floe files the server knows, so that a folder deleted or moved
    away reports the files that went with it.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_changes: Callable[[list[Change]], None],
        known: Callable[[], Iterable[Path]] = lambda: (),
        *,
        native: bool = True,
        debounce: float = DEBOUNCE_SECONDS,
    ) -> None:
        self.loop = loop
        self.on_changes = on_changes
        self.known = known
        self.debounce = debounce
        # watchdog's Observer is its plain polling one where the OS has no backend it
        # knows: then the pruned polling below is the better poll.
        native = native and Observer is not PollingObserver
        self._native: BaseObserver | None = Observer() if native else None
        self._polling: BaseObserver | None = None
        self._lock = threading.Lock()
        #: Watched folder → (observer kind, watch).
        self.roots: dict[Path, tuple[str, ObservedWatch]] = {}
        self._pending: dict[Path, types.FileChangeType] = {}
        self._first = 0.0  # loop time of the oldest pending change
        self._timer: asyncio.TimerHandle | None = None
        if self._native is not None:
            self._native.start()

    # ------------------------------------------------------------ folders
    def cover(self, folder: Path) -> str | None:
        """Watch `folder` unless a watched folder holds it; the observer kind, or None.

        Blocking (the native observer adds a watch per subfolder, the polling one
        lists the tree): call it off the event loop.
        """
        folder = folder.resolve()
        with self._lock:
            if not folder.is_dir() or any(folder.is_relative_to(r) for r in self.roots):
                return None
            handler = _Handler(folder, self._post)
            kind, watch = self._schedule(handler, folder)
            # A folder that holds watched ones replaces them.
            for inner in [r for r in self.roots if r.is_relative_to(folder)]:
                self._unschedule(inner)
            self.roots[folder] = (kind, watch)
            return kind

    def uncover(self, folder: Path) -> None:
        """Stop watching a folder (a workspace folder the client removed)."""
        with self._lock:
            if folder.resolve() in self.roots:
                self._unschedule(folder.resolve())

    def _schedule(self, handler: _Handler, folder: Path) -> tuple[str, ObservedWatch]:
        if self._native is not None:
            try:
                watch = self._native.schedule(
                    handler, str(folder), recursive=True, event_filter=EVENTS
                )
                return type(self._native).__name__.removesuffix("Observer").lower(), watch
            except OSError as exc:  # inotify watch or instance limit, no backend
                self._native.remove_handler_for_watch(
                    handler, ObservedWatch(str(folder), recursive=True, event_filter=EVENTS)
                )
                log.warning("watching %s natively failed (%s): polling it", folder, exc)
        if self._polling is None:
            self._polling = PollingObserverVFS(os.stat, _listdir, polling_interval=POLL_SECONDS)
            self._polling.start()
        watch = self._polling.schedule(handler, str(folder), recursive=True, event_filter=EVENTS)
        return "polling", watch

    def _unschedule(self, folder: Path) -> None:
        kind, watch = self.roots.pop(folder)
        observer = self._polling if kind == "polling" else self._native
        if observer is not None:
            observer.unschedule(watch)

    def stop(self) -> None:
        """Stop every observer (their threads are daemons: exiting never waits for them)."""
        for observer in (self._native, self._polling):
            if observer is not None:
                observer.stop()
        if self._timer is not None:
            self._timer.cancel()

    # ------------------------------------------------------------ events
    def _post(self, event: FileSystemEvent) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: the server is exiting
            self.loop.call_soon_threadsafe(self._collect, event)

    def _collect(self, event: FileSystemEvent) -> None:
        if not self._pending:
            self._first = self.loop.time()
        for path, change in self._changes(event):
            previous = self._pending.get(path)
            # A new file is then written (created + modified): it stays "created", which
            # is what makes the server look for a new environment.
            if change == types.FileChangeType.Changed and previous is not None:
                continue
            self._pending[path] = change
        if self._timer is not None:
            self._timer.cancel()
        late = self.loop.time() - self._first >= MAX_WAIT_SECONDS
        self._timer = self.loop.call_later(0 if late else self.debounce, self._flush)

    def _changes(self, event: FileSystemEvent) -> list[Change]:
        src = Path(os.fsdecode(event.src_path))
        dest = Path(os.fsdecode(event.dest_path)) if event.dest_path else None
        created, deleted, changed = (
            types.FileChangeType.Created,
            types.FileChangeType.Deleted,
            types.FileChangeType.Changed,
        )
        if event.is_directory:
            out: list[Change] = []
            if isinstance(event, (DirDeletedEvent, DirMovedEvent)):
                out += [(p, deleted) for p in self.known() if p.is_relative_to(src)]
            if isinstance(event, DirMovedEvent) and dest is not None:
                out += [(p, created) for p in _floe_files_below(dest)]
            return out
        if isinstance(event, FileMovedEvent):
            # A results file is written to a temporary name, then moved onto its own.
            out = [(src, deleted)] if _is_reported_name(src) else []
            if dest is not None and _is_reported_name(dest):
                out.append((dest, created))
            return out
        if isinstance(event, FileCreatedEvent):
            return [(src, created)]
        if isinstance(event, FileDeletedEvent):
            return [(src, deleted)]
        return [(src, changed)]

    def _flush(self) -> None:
        self._timer = None
        batch = sorted(self._pending.items())
        self._pending.clear()
        if batch:
            try:
                self.on_changes(batch)
            except Exception:  # a bad batch must not stop the watching
                log.exception("handling file changes failed")


# ------------------------------------------------------------------ the server's side


def apply(ls: FloeLanguageServer, changes: list[Change]) -> None:
    """Handle changes seen on disk as a watching client's didChangeWatchedFiles would be."""
    from floe_lsp.diagnostics import watched

    before = set(known_files(ls))
    watched(
        ls,
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=ls.uri(p), type=kind) for p, kind in changes]
        ),
    )
    deleted = [p for p, kind in changes if kind == types.FileChangeType.Deleted]
    if not ls.pull_diagnostics:
        # A deleted platform file's diagnostics go with it (its pipeline no longer lists it).
        for path in deleted:
            if path.name == PLATFORM_FILE and path in before and path not in ls.state.open:
                ls.text_document_publish_diagnostics(
                    types.PublishDiagnosticsParams(uri=ls.uri(path), diagnostics=[])
                )
    # A results file's changes are run_results.refresh's (it redraws lenses on a new run).
    structural = any(
        kind != types.FileChangeType.Changed and not is_results_file(p) for p, kind in changes
    )
    platform = any(p.name == PLATFORM_FILE for p, _ in changes)
    caps = ls.client_capabilities.workspace
    if caps is None:
        return
    # Lenses list the environments; inlay hints show what each platform resolves.
    if structural and caps.code_lens is not None and caps.code_lens.refresh_support:
        _refresh(ls.workspace_code_lens_refresh_async)
    if platform and caps.inlay_hint is not None and caps.inlay_hint.refresh_support:
        _refresh(ls.workspace_inlay_hint_refresh_async)


def _refresh(request: Callable[[None], Any]) -> None:
    async def send() -> None:
        try:
            await request(None)
        except Exception as exc:  # a client that fails a refresh keeps its old lenses
            log.warning("refresh request failed: %s", exc)

    asyncio.ensure_future(send())


def known_files(ls: FloeLanguageServer) -> list[Path]:
    """Every floe.yaml and platform file of the pipelines the server knows."""
    out = []
    for project in ls.state.all_projects():
        out.append(project.pipeline_file)
        out.extend(env.platform_file for env in project.environments)
    return out


def results_files(ls: FloeLanguageServer) -> list[Path]:
    """The results file each environment of the known pipelines has or would have."""
    return [
        results_path(project.root, env.name)
        for project in ls.state.all_projects()
        for env in project.environments
    ]


async def start(ls: FloeLanguageServer, folders: list[Path]) -> Watcher:
    """Watch `folders` and every pipeline found outside them, now and later."""
    loop = asyncio.get_running_loop()
    # A `.floe` folder deleted or moved away reports the results files that went with it.
    watcher = Watcher(
        loop, lambda changes: apply(ls, changes), lambda: [*known_files(ls), *results_files(ls)]
    )

    def new_project(project: Project) -> None:
        asyncio.run_coroutine_threadsafe(cover(ls, watcher, project.root), loop)

    ls.state.on_new_project.append(new_project)
    for folder in [*folders, *(p.root for p in ls.state.all_projects())]:
        await cover(ls, watcher, folder)
    return watcher


async def cover(ls: FloeLanguageServer, watcher: Watcher, folder: Path) -> None:
    """Watch a folder (off the event loop) and say so in the client's log."""
    kind = await asyncio.to_thread(watcher.cover, folder)
    if kind is not None:
        ls.window_log_message(
            types.LogMessageParams(
                type=types.MessageType.Log,
                message=f"floe: watching {folder} for changes on disk ({kind})",
            )
        )
