"""The language server's warm runner: one `floe_runtime.runtime.warm` process per workspace.

A run from the editor would otherwise start `python -m floe_runtime run` and pay
the imports of Dagster, dagster-dbt, dbt and pyiceberg every time. The warm runner
(its own process: the server never imports them) has them imported and forks one
child per run; the child is `floe-runtime run` with the same arguments, output and
exit code. `WarmRun` looks to the command code like the asyncio subprocess it
replaces: `pid` (its own process group: `stop_group` stops the run and its dbt),
`stdout` (the run's stdout and stderr) and `wait()`.

It is started when a pipeline is opened (its code lenses asked for) or by the first
run, stopped after FLOE_WARM_IDLE_SECONDS (default 600) without a run, on shutdown,
and when the server exits (its stdin closes). FLOE_WARM_RUNNER=0 turns it off; runs
then start a plain subprocess, as they do whenever the runner cannot start or answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import weakref
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Seconds without a run after which the runner is stopped.
DEFAULT_IDLE_SECONDS = 600.0
#: Seconds the runner may take to import everything before a run gives up on it.
START_TIMEOUT = 120.0


def idle_seconds() -> float:
    """FLOE_WARM_IDLE_SECONDS, else the default (a bad value: the default)."""
    try:
        value = float(os.environ.get("FLOE_WARM_IDLE_SECONDS", DEFAULT_IDLE_SECONDS))
    except ValueError:
        return DEFAULT_IDLE_SECONDS
    return value if value > 0 else DEFAULT_IDLE_SECONDS


def enabled() -> bool:
    """False when FLOE_WARM_RUNNER is 0/off/false/no."""
    return os.environ.get("FLOE_WARM_RUNNER", "1").strip().lower() not in (
        "0",
        "off",
        "false",
        "no",
    )


class WarmRun:
    """One run forked by the warm runner, shaped like `asyncio.subprocess.Process`."""

    def __init__(
        self,
        pid: int,
        stdout: asyncio.StreamReader,
        control: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ):
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None
        # The writer is kept: a StreamWriter closes its connection when collected.
        self._control, self._writer = control
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._watch = asyncio.ensure_future(self._read_exit())

    async def _read_exit(self) -> None:
        code = -1  # the runner went away without telling: treat as killed
        with contextlib.suppress(Exception):
            while line := await self._control.readline():
                message = json.loads(line)
                if isinstance(message, dict) and isinstance(message.get("exit"), int):
                    code = int(message["exit"])
                    break
        self.returncode = code
        self._writer.close()
        if not self._exit.done():
            self._exit.set_result(code)

    async def wait(self) -> int:
        """The run's exit code once the runner reaped it (negative: killed by that signal)."""
        return await asyncio.shield(self._exit)


class WarmRunner:
    """Starts, reuses and stops the warm runner process of one language server."""

    def __init__(self, idle: float | None = None) -> None:
        self.idle = idle if idle is not None else idle_seconds()
        self.process: asyncio.subprocess.Process | None = None
        self._dir: Path | None = None
        self._ready: asyncio.Future[bool] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._active = 0

    @property
    def socket_path(self) -> Path | None:
        return self._dir / "warm.sock" if self._dir is not None else None

    @property
    def pid(self) -> int | None:
        """The runner's pid while it runs."""
        proc = self.process
        return proc.pid if proc is not None and proc.returncode is None else None

    def start(self) -> asyncio.Future[bool]:
        """Start the runner unless it runs or is starting; a future of whether it is ready."""
        proc = self.process
        if self._ready is not None and proc is not None and proc.returncode is None:
            return self._ready
        self._ready = asyncio.ensure_future(self._start())
        return self._ready

    async def _start(self) -> bool:
        self._cleanup_dir()
        self._dir = Path(tempfile.mkdtemp(prefix="floe-warm-"))
        log_file = (self._dir / "warm.log").open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "floe_runtime.runtime.warm",
                "--socket",
                str(self.socket_path),
                stdin=asyncio.subprocess.PIPE,  # closes when this server exits: the runner stops
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                # Outside every project: a process working in a project is one of its runs.
                cwd=self._dir,
                env=run_environment(),
            )
        except OSError as exc:
            log.warning("warm runner not started: %s", exc)
            return False
        finally:
            log_file.close()  # the runner holds its own copy
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), START_TIMEOUT)
        except TimeoutError:
            line = b""
        if not line.startswith(b"ready"):
            log.warning("warm runner did not start: %r %s", line[:200], self._log_tail())
            await self.stop()
            return False
        log.info("warm runner %s", line.decode(errors="replace").strip())
        self._arm_idle()
        return True

    async def launch(self, argv: list[str], cwd: Path, env: dict[str, str]) -> WarmRun | None:
        """Fork `floe-runtime ARGV` in the runner; None when it cannot (use a subprocess)."""
        if not enabled():
            return None
        ready = self.start()
        try:
            ok = await asyncio.shield(ready)
        except Exception:
            ok = False
        path = self.socket_path
        if not ok or path is None:
            return None
        self._active += 1
        self._cancel_idle()
        try:
            return await self._request(path, argv, cwd, env)
        except Exception as exc:  # a runner that died meanwhile: this run goes the plain way
            log.warning("warm runner could not start the run: %s", exc)
            self._active -= 1
            self._arm_idle()
            return None

    async def _request(
        self, path: Path, argv: list[str], cwd: Path, env: dict[str, str]
    ) -> WarmRun:
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, str(path))
            payload = json.dumps({"argv": argv, "cwd": str(cwd), "env": env}).encode() + b"\n"
            sock.setblocking(True)  # a short message: sendmsg with the descriptor at once
            socket.send_fds(sock, [payload], [write_fd])
            sock.setblocking(False)
        except BaseException:
            sock.close()
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # the child holds it now: EOF when the run's processes end
        control, writer = await asyncio.open_unix_connection(sock=sock)
        stdout = asyncio.StreamReader(limit=2**20)
        pipe = os.fdopen(read_fd, "rb", buffering=0)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdout), pipe)
        first = json.loads(await asyncio.wait_for(control.readline(), 30) or b"{}")
        if not isinstance(first, dict) or not isinstance(first.get("pid"), int):
            pipe.close()
            writer.close()
            raise RuntimeError(f"unexpected answer {first!r}")
        run = WarmRun(int(first["pid"]), stdout, (control, writer))
        run._exit.add_done_callback(lambda _: self._finished())
        return run

    def _finished(self) -> None:
        self._active = max(0, self._active - 1)
        self._arm_idle()

    def _arm_idle(self) -> None:
        self._cancel_idle()
        if self._active == 0:
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(
                self.idle, lambda: asyncio.ensure_future(self._stop_if_idle())
            )

    def _cancel_idle(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    async def _stop_if_idle(self) -> None:
        if self._active == 0:
            log.info("warm runner idle for %.0fs: stopped", self.idle)
            await self.stop()

    async def stop(self) -> None:
        """Stop the runner (runs it started go on, in their own process groups)."""
        self._cancel_idle()
        proc, self.process, self._ready = self.process, None, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self._cleanup_dir()

    def terminate(self) -> None:
        """Tell the runner to stop now, without waiting for it (the server is going)."""
        self._cancel_idle()
        proc, self.process, self._ready = self.process, None, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()

    def _log_tail(self) -> str:
        path = self._dir / "warm.log" if self._dir is not None else None
        try:
            return path.read_text(errors="replace")[-2000:] if path is not None else ""
        except OSError:
            return ""

    def _cleanup_dir(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def run_environment() -> dict[str, str]:
    """The environment of a run started from the editor (and of the runner that forks it).

    The output panel has no width: never wrap or cut the summary table at the
    server's inherited COLUMNS (a narrow terminal that launched the editor).
    """
    return {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"}


_RUNNERS: weakref.WeakKeyDictionary[Any, WarmRunner] = weakref.WeakKeyDictionary()


def for_server(ls: Any) -> WarmRunner:
    """The warm runner of this language server (created, not started, on first use)."""
    runner = _RUNNERS.get(ls)
    if runner is None:
        runner = _RUNNERS[ls] = WarmRunner()
    return runner


def prestart(ls: Any) -> None:
    """Start the runner ahead of the first run (a pipeline was opened), unless turned off."""
    if enabled():
        for_server(ls).start()


def shutdown(ls: Any) -> None:
    """On the server's shutdown: stop its runner, if it has one (SIGTERM, nothing awaited)."""
    runner = _RUNNERS.get(ls)
    if runner is not None:
        runner.terminate()
