"""Commands and code lenses: compile, run and open lineage, each in its own process.

The server process never imports dbt, Dagster or pyiceberg: every command runs
`python -m floe_runtime <command>` in its own process group with work-done
progress, can be cancelled from the client (progress cancel or `$/cancelRequest`
stops the whole group: SIGTERM, so the run ends its lineage with ABORT, then
SIGKILL after a short grace), and reports its outcome as a message or, for
lineage, a `window/showDocument`. A run is forked by the warm runner
(floe_lsp/warm_runner.py: the same command with those imports already done)
and is a plain subprocess when that runner is off or cannot answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import uuid
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lsprotocol import types

from floe_lsp.server import FloeLanguageServer

if TYPE_CHECKING:
    from floe_lsp.warm_runner import WarmRun
    from floe_runtime.analysis import Project

log = logging.getLogger(__name__)

#: Command id → floe-runtime subcommand.
COMMANDS = {"floe.compile": "compile", "floe.run": "run", "floe.openLineage": "lineage"}
TITLES = {"compile": "Compile", "run": "Run", "lineage": "Open lineage"}
#: Commands that read floe.yaml and platform.yaml, so unsaved edits of them matter.
READS_CONFIG = ("compile", "run")


#: Seconds a cancelled command's processes get after SIGTERM before SIGKILL.
STOP_GRACE_SECONDS = 1.0


class GroupProcess(Protocol):
    """A command's process leading its own process group: a subprocess or a warm-runner fork."""

    @property
    def pid(self) -> int: ...

    async def wait(self) -> int: ...


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def stop_group(proc: GroupProcess, grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop a command started in its own process group: SIGTERM, `grace` seconds, SIGKILL.

    The group holds floe and every dbt process it started; SIGKILL goes to the group
    even when floe exited in time, for anything it left behind.
    """
    _signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), grace)
    _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


def _cancel_with_request(ls: FloeLanguageServer, task: asyncio.Task[Any]) -> None:
    """Cancel `task` when the client cancels the request it serves.

    pygls answers `$/cancelRequest` for workspace/executeCommand by cancelling the
    request's own future (and replying RequestCancelled), but the command handler
    runs as a separate task that would go on: follow that future.
    """
    futures = getattr(ls.protocol, "_request_futures", None)
    request = futures.get(ls.protocol.msg_id) if isinstance(futures, dict) else None
    if request is not None:
        request.add_done_callback(lambda future: task.cancel() if future.cancelled() else None)


def _progress_supported(ls: FloeLanguageServer) -> bool:
    window = ls.client_capabilities.window
    return bool(window is not None and window.work_done_progress)


def _message(ls: FloeLanguageServer, kind: types.MessageType, text: str) -> None:
    ls.window_show_message(types.ShowMessageParams(type=kind, message=text))


async def run_command(
    ls: FloeLanguageServer, subcommand: str, args: tuple[Any, ...]
) -> dict[str, Any]:
    """Run `floe-runtime <subcommand>` for the pipeline named by args[0] (a URI), env args[1]."""
    from floe_lsp.convert import path_of
    from floe_runtime.analysis.project import PIPELINE_FILE

    this = asyncio.current_task()
    if this is not None:
        _cancel_with_request(ls, this)
    target = path_of(str(args[0])) if args and isinstance(args[0], str) else None
    env = str(args[1]) if len(args) > 1 and args[1] else None
    if target is None:
        _message(ls, types.MessageType.Error, f"floe {subcommand}: no pipeline given")
        return {"exitCode": 2, "output": "no pipeline given"}
    if not _exists(target):  # nothing to run in, and no folder to start a process in
        text = f"no pipeline at {target}: it does not exist"
        _message(ls, types.MessageType.Error, f"floe {subcommand}: {text}")
        return {"exitCode": 2, "cancelled": False, "output": text}
    root = target if target.is_dir() else target.parent
    projects = ls.state.ensure(target if target.is_file() else target / PIPELINE_FILE)
    if projects:
        root = projects[0].root
        if env is None:
            env = chosen_environment(ls, [e.name for e in projects[0].environments])
    argv = [subcommand, str(root)]
    if env:
        argv += ["--env", env]
    if subcommand == "lineage":
        argv += ["--no-open"]
    title = f"floe {subcommand}" + (f" ({env})" if env else "")
    if (
        projects
        and subcommand in READS_CONFIG
        and not await settle_unsaved(ls, projects[0], env, subcommand, title)
    ):
        return {"exitCode": None, "cancelled": True, "output": "not started"}
    token = f"floe-{uuid.uuid4()}"
    progress = _progress_supported(ls)
    if progress:
        try:
            await ls.work_done_progress.create_async(token)
            ls.work_done_progress.begin(
                token,
                types.WorkDoneProgressBegin(title=title, cancellable=True, message="starting"),
            )
        except Exception:  # a client that refuses progress still gets the command run
            progress = False
    try:
        proc = await start_process(ls, argv, root)
    except OSError as exc:  # e.g. the folder went away meanwhile
        if progress:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="not started"))
        text = f"not started: {exc.strerror or exc}"
        _message(ls, types.MessageType.Error, f"{title} {text}")
        return {"exitCode": 2, "cancelled": False, "output": text}
    assert proc.stdout is not None
    tail: deque[str] = deque(maxlen=20)
    cancelled = False

    async def pump() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                tail.append(line)
                if progress:
                    ls.work_done_progress.report(
                        token, types.WorkDoneProgressReport(message=line[:120])
                    )

    async def watch_cancel() -> None:
        future = ls.work_done_progress.tokens.get(token)
        while future is not None and not future.cancelled() and not future.done():
            await asyncio.sleep(0.05)

    reader = asyncio.ensure_future(pump())
    watcher = asyncio.ensure_future(watch_cancel()) if progress else None
    try:
        waiting = {reader} | ({watcher} if watcher else set())
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if watcher is not None and watcher in done and not reader.done():
            cancelled = True
            await stop_group(proc)
        await reader
        code = await proc.wait()
    except asyncio.CancelledError:  # $/cancelRequest from the client (already answered)
        cancelled = True
        reader.cancel()
        await stop_group(proc)
        _message(ls, types.MessageType.Warning, f"{title} cancelled")
        raise
    finally:
        if watcher is not None:
            watcher.cancel()
        if progress:
            ls.work_done_progress.end(
                token, types.WorkDoneProgressEnd(message="cancelled" if cancelled else "done")
            )
    output = "\n".join(tail)
    if cancelled:
        _message(ls, types.MessageType.Warning, f"{title} cancelled")
        return {"exitCode": None, "cancelled": True, "output": output}
    if subcommand == "run":
        from floe_lsp import run_results

        run_results.refresh(ls)  # its failures on their lines, the lens's last run
    if code == 0:
        if subcommand == "lineage":
            page = root / "target" / "floe" / "lineage.html"
            if page.is_file():
                await ls.window_show_document_async(
                    types.ShowDocumentParams(uri=ls.uri(page), external=True)
                )
        last = tail[-1] if tail else "done"
        _message(ls, types.MessageType.Info, f"{title} succeeded: {last}")
    else:
        _message(ls, types.MessageType.Error, f"{title} failed (exit {code}):\n{output}")
    return {"exitCode": code, "cancelled": False, "output": output}


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name the OS refuses (too long, NUL)
        return False


async def start_process(
    ls: FloeLanguageServer, argv: list[str], root: Path
) -> asyncio.subprocess.Process | WarmRun:
    """`floe-runtime ARGV` in `root`, its own process group, stdout and stderr in one pipe.

    A run is forked by the server's warm runner; anything else, or a run the runner
    cannot take, is a fresh `python -m floe_runtime` subprocess.
    """
    from floe_lsp import warm_runner

    env = warm_runner.run_environment()
    if argv[0] == "run":
        warm = await warm_runner.for_server(ls).launch(argv, root, env)
        if warm is not None:
            return warm
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "floe_runtime",
        *argv,
        cwd=root,
        stdin=asyncio.subprocess.DEVNULL,  # never the server's own stdin (the LSP stream)
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        start_new_session=True,  # its own process group: cancel stops dbt too
    )


def _disk_text(path: Path) -> str | None:
    """A file's bytes as text, line ends untouched (only a regular file: a FIFO would block)."""
    try:
        return path.read_bytes().decode("utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None


def unsaved_files(
    ls: FloeLanguageServer, project: Project, env: str | None
) -> dict[Path, tuple[str, int | None]]:
    """The pipeline's floe files whose editor text differs from disk: path → (text, version).

    floe.yaml and the platform files of `env` (of every environment when None).
    """
    files = [project.pipeline_file] + [
        e.platform_file for e in project.environments if env is None or e.name == env
    ]
    dirty: dict[Path, tuple[str, int | None]] = {}
    for path in files:
        opened = ls.state.open.get(path)
        if opened is not None and opened.text != _disk_text(path):
            dirty[path] = (opened.text, opened.version)
    return dirty


def _can_ask(ls: FloeLanguageServer) -> bool:
    window = ls.client_capabilities.window
    show = window.show_message if window is not None else None
    return show is not None and show.message_action_item is not None


async def settle_unsaved(
    ls: FloeLanguageServer, project: Project, env: str | None, subcommand: str, title: str
) -> bool:
    """Before a command reads the files: deal with unsaved edits of them. False: do not start.

    The command reads the disk. A client that can answer is asked (window/
    showMessageRequest): "Save all and <verb>" writes the editor's text of each
    file to disk, but only when no file changed while the question was open;
    "<Verb> saved files" goes on with the disk; no answer starts nothing. A
    client that cannot answer is told the saved files are used.
    """
    dirty = unsaved_files(ls, project, env)
    if not dirty:
        return True
    names = ", ".join(_shown(project.root, path) for path in dirty)
    verb = subcommand
    if not _can_ask(ls):
        _message(
            ls,
            types.MessageType.Warning,
            f"{title}: unsaved changes in {names} are not used; it reads the saved files",
        )
        return True
    save, saved = f"Save all and {verb}", f"{verb.capitalize()} saved files"
    try:
        answer = await ls.window_show_message_request_async(
            types.ShowMessageRequestParams(
                type=types.MessageType.Warning,
                message=f"{names}: unsaved changes. {title} reads the files on disk.",
                actions=[types.MessageActionItem(title=save), types.MessageActionItem(title=saved)],
            )
        )
    except Exception as exc:  # a client that fails the request: say so, start nothing
        log.warning("could not ask about unsaved files: %s", exc)
        answer = None
    if answer is None or answer.title not in (save, saved):
        _message(ls, types.MessageType.Info, f"{title} not started")
        return False
    if answer.title == saved:
        return True
    moved = [
        path
        for path, (text, version) in dirty.items()
        if (now := ls.state.open.get(path)) is None or (now.text, now.version) != (text, version)
    ]
    if moved:
        _message(
            ls,
            types.MessageType.Warning,
            f"{title} not started: {', '.join(_shown(project.root, p) for p in moved)} "
            "changed while asking; nothing was saved",
        )
        return False
    try:
        for path, (text, _) in dirty.items():
            path.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        _message(ls, types.MessageType.Error, f"{title} not started: cannot save {exc}")
        return False
    _message(ls, types.MessageType.Info, f"Saved {names} (the editor's text) for {title}")
    return True


def _shown(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def chosen_environment(ls: FloeLanguageServer, names: list[str]) -> str | None:
    """The client's `floe.environment` when this project has it, else None (every environment)."""
    return ls.environment if ls.environment in names else None


async def refresh_environment(ls: FloeLanguageServer) -> None:
    """Read `floe.environment` from the client (workspace/configuration) and refresh the lenses."""
    caps = ls.client_capabilities.workspace
    if caps is None or not caps.configuration:
        return
    try:
        values = await ls.workspace_configuration_async(
            types.ConfigurationParams(items=[types.ConfigurationItem(section="floe.environment")])
        )
    except Exception as exc:  # a client that fails the request: keep every environment
        log.warning("could not read floe.environment: %s", exc)
        return
    value = values[0] if values else None
    environment = value if isinstance(value, str) and value else None
    if environment == ls.environment:
        return
    ls.environment = environment
    if caps.code_lens is not None and caps.code_lens.refresh_support:
        try:
            await ls.workspace_code_lens_refresh_async(None)
        except Exception as exc:
            log.warning("code lens refresh failed: %s", exc)


def list_environments(ls: FloeLanguageServer) -> list[dict[str, Any]]:
    """Every pipeline the server found with its environments (the client's environment picker)."""
    return [
        {
            "pipeline": str(p.pipeline_file),
            "name": p.root.name,
            "environments": [e.name for e in p.environments],
            "selected": chosen_environment(ls, [e.name for e in p.environments]),
        }
        for p in ls.state.all_projects()
    ]


def code_lenses(ls: FloeLanguageServer, params: types.CodeLensParams) -> list[types.CodeLens]:
    """Compile / Run per environment and Open lineage, above `name:` of a floe.yaml."""
    from floe_lsp.convert import path_of
    from floe_lsp.state import file_kind

    path = path_of(params.text_document.uri)
    if path is None or file_kind(path) != "pipeline":
        return []
    projects = ls.state.ensure(path)
    if not projects:
        return []
    from floe_lsp import warm_runner

    warm_runner.prestart(ls)  # a pipeline is open: have its runs' imports done by the first run
    text = ls.text(path) or ""
    line = next((i for i, raw in enumerate(text.split("\n")) if raw.startswith("name:")), 0)
    rng = types.Range(
        start=types.Position(line=line, character=0), end=types.Position(line=line, character=0)
    )
    uri = params.text_document.uri
    lenses = []
    names = [e.name for e in projects[0].environments]
    chosen = chosen_environment(ls, names)
    envs: list[str | None] = [chosen] if chosen else (list(names) or [None])
    for env in envs:
        suffix = f" ({env})" if env else ""
        for command, sub in (("floe.compile", "compile"), ("floe.run", "run")):
            lenses.append(
                types.CodeLens(
                    range=rng,
                    command=types.Command(
                        title=f"{TITLES[sub]}{suffix}", command=command, arguments=[uri, env]
                    ),
                )
            )
        if env:
            from floe_lsp import run_results

            lenses += run_results.lenses(projects[0], [env], rng)
    lenses.append(
        types.CodeLens(
            range=rng,
            command=types.Command(
                title=TITLES["lineage"], command="floe.openLineage", arguments=[uri, envs[-1]]
            ),
        )
    )
    return lenses


def register(server: FloeLanguageServer) -> None:
    """Register the commands and the code lens provider."""

    @server.command("floe.compile")
    async def compile_(ls: FloeLanguageServer, *args: Any) -> dict[str, Any]:
        return await run_command(ls, "compile", args)

    @server.command("floe.run")
    async def run_(ls: FloeLanguageServer, *args: Any) -> dict[str, Any]:
        return await run_command(ls, "run", args)

    @server.command("floe.openLineage")
    async def lineage_(ls: FloeLanguageServer, *args: Any) -> dict[str, Any]:
        return await run_command(ls, "lineage", args)

    @server.command("floe.diffEnvironments")
    async def diff_(ls: FloeLanguageServer, *args: Any) -> dict[str, Any]:
        from floe_lsp.envdiff import diff_command

        return await diff_command(ls, args)

    @server.command("floe.listEnvironments")
    def environments_(ls: FloeLanguageServer, *args: Any) -> list[dict[str, Any]]:
        return list_environments(ls)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def configuration_changed(
        ls: FloeLanguageServer, params: types.DidChangeConfigurationParams
    ) -> None:
        await refresh_environment(ls)

    @server.feature(types.TEXT_DOCUMENT_CODE_LENS, types.CodeLensOptions(resolve_provider=False))
    def on_code_lens(ls: FloeLanguageServer, params: types.CodeLensParams) -> list[types.CodeLens]:
        return code_lenses(ls, params)
