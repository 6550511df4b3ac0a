"""A warm runner: Dagster, dagster-dbt, dbt and pyiceberg imported once, a fork per run.

The language server keeps one of these per workspace (floe_lsp/warm_runner.py) so
that a run from the editor does not pay those imports each time. It is a fork
server on a Unix socket:

    python -m floe_runtime.runtime.warm --socket PATH

imports what `floe-runtime run` needs, prints `ready <pid>` on stdout and then,
for each connection, reads one request: a JSON line
`{"argv": [...], "cwd": "...", "env": {...}}` sent with one file descriptor (where
the run's stdout and stderr go, like `stderr=STDOUT` of a subprocess). It forks;
the child starts its own session (its own process group, so a cancel stops the
run and every dbt process it started), takes that descriptor as fd 1 and 2 and
/dev/null as stdin, moves to `cwd`, takes `env` as its whole environment and runs
`floe-runtime ARGV` exactly as the CLI would (the same click command, the same
exit code). The server answers `{"pid": N}` at once and `{"exit": CODE}` when the
child is reaped (CODE as `Popen.returncode`: negative for a signal).

Forking a process that has threads is unsafe (a lock held by another thread stays
held in the child for good): this process imports but starts no thread, checks
that before it serves, and waits for children through SIGCHLD on a wake-up pipe,
not a thread. It exits when its stdin closes (the language server went away),
on SIGTERM, or after `--idle` seconds without a request or a running child.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

#: What a run imports that takes time; each is imported before the first fork.
#: A module missing here (an optional extra) is skipped.
PRELOAD = (
    "floe_runtime.cli.runtime_commands",
    "floe_runtime.analysis",
    "floe_runtime.compiler",
    "floe_runtime.runtime.runner",
    "floe_runtime.runtime.assets",
    "floe_runtime.runtime.session",
    "floe_runtime.runtime.iceberg",
    "floe_runtime.runtime.lineage",
    "floe_runtime.runtime.telemetry",
    "floe_runtime.runtime.plan",
    "dagster",
    "dagster_dbt",
    "dagster._core.instance.factory",
    "dagster._core.storage.event_log",
    "dagster._core.storage.runs",
    "dbt.cli.main",
    "pyiceberg.catalog",
    "pyiceberg.catalog.sql",
    "pyiceberg.catalog.rest",
    "pyiceberg.table",
    "pyiceberg.io.pyarrow",
    "rich.console",
    "rich.table",
)

#: Largest request line (an environment of a few hundred variables fits easily).
MAX_REQUEST = 1 << 20


class WarmError(Exception):
    """The warm runner cannot serve (it would fork with threads running)."""


def preload(modules: tuple[str, ...] = PRELOAD) -> list[str]:
    """Import `modules` (those that are installed); the names that could not be imported."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # an optional extra, or one broken import: that run imports it itself
            missing.append(name)
    return missing


def check_no_threads() -> None:
    """Raise WarmError when a thread besides this one runs (a fork would inherit its locks)."""
    others = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
    if others:
        raise WarmError(f"threads started while importing: {', '.join(others)}")


@dataclass
class _Child:
    conn: socket.socket
    pid: int


@dataclass
class _Server:
    listener: socket.socket
    idle: float
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    children: dict[int, _Child] = field(default_factory=dict)
    pending: dict[socket.socket, bytearray] = field(default_factory=dict)
    #: The output descriptor a connection sent before its request line was complete.
    fds: dict[socket.socket, int] = field(default_factory=dict)
    last_used: float = field(default_factory=time.monotonic)
    wake_read: int = -1
    wake_write: int = -1

    def close_fds_in_child(self) -> None:
        """In a forked child: drop every descriptor of the server."""
        for sock in (self.listener, *self.pending, *(c.conn for c in self.children.values())):
            with contextlib.suppress(OSError):
                sock.close()
        for fd in (self.wake_read, self.wake_write, *self.fds.values()):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(Exception):
            self.selector.close()


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(message).encode() + b"\n")


def _run_child(request: dict[str, Any], out_fd: int) -> NoReturn:
    """In the forked child: become `floe-runtime ARGV` with the request's fds, cwd, env."""
    code = 1
    try:
        os.setsid()  # its own session and process group: cancel stops the whole run
        # The server's signal set-up is not the CLI's: give back what a fresh process has.
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        for fd in (devnull, out_fd):
            if fd > 2:
                os.close(fd)
        cwd = str(request["cwd"])
        os.chdir(cwd)
        if sys.path and sys.path[0] == _START_CWD:  # `python -m` puts the cwd first
            sys.path[0] = cwd
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in dict(request["env"]).items()})
        argv = [str(a) for a in request["argv"]]
        sys.argv = ["floe-runtime", *argv]
        from floe_runtime.cli import main

        try:
            main(argv)
            code = 0
        except SystemExit as exc:  # click and the commands end with sys.exit
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, int) and exc.code is not None:
                print(exc.code, file=sys.stderr)
        except KeyboardInterrupt:
            code = 130
    except BaseException:  # never back into the server's loop
        with contextlib.suppress(Exception):
            import traceback

            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


_START_CWD = os.getcwd()


def _accept(server: _Server) -> None:
    with contextlib.suppress(OSError):
        conn, _ = server.listener.accept()
        conn.setblocking(False)
        server.pending[conn] = bytearray()
        server.selector.register(conn, selectors.EVENT_READ, "conn")


def _read_request(server: _Server, conn: socket.socket) -> None:
    """Read what a connection sent; once its request line is complete, fork its run."""
    buffer = server.pending[conn]
    fds: list[int] = []
    try:
        data, fds, _, _ = socket.recv_fds(conn, 65536, 4)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    buffer.extend(data)
    if not data or len(buffer) > MAX_REQUEST:
        for fd in fds:
            os.close(fd)
        _drop(server, conn)
        return
    if b"\n" not in buffer:
        for fd in fds[1:]:
            os.close(fd)
        if fds:  # kept until the line is complete
            server.fds[conn] = fds[0]
        return
    out_fd: int | None = fds[0] if fds else server.fds.pop(conn) if conn in server.fds else None
    for fd in fds[1:]:
        os.close(fd)
    server.selector.unregister(conn)
    del server.pending[conn]
    try:
        request = json.loads(bytes(buffer).split(b"\n", 1)[0])
        if out_fd is None or not isinstance(request, dict):
            raise ValueError("a request is a JSON object sent with one file descriptor")
        for key in ("argv", "cwd", "env"):
            if key not in request:
                raise ValueError(f"request without {key!r}")
    except ValueError as exc:
        _send(conn, {"error": str(exc)})
        if out_fd is not None:
            os.close(out_fd)
        conn.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        server.close_fds_in_child()
        _run_child(request, out_fd)
    os.close(out_fd)
    server.children[pid] = _Child(conn, pid)
    conn.setblocking(True)
    _send(conn, {"pid": pid})
    server.last_used = time.monotonic()


def _drop(server: _Server, conn: socket.socket) -> None:
    with contextlib.suppress(KeyError, ValueError):
        server.selector.unregister(conn)
    server.pending.pop(conn, None)
    fd = server.fds.pop(conn, None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
    conn.close()


def _reap(server: _Server) -> None:
    """Collect every child that ended and tell its client the exit code."""
    while server.children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        child = server.children.pop(pid, None)
        if child is None:
            continue
        _send(child.conn, {"exit": os.waitstatus_to_exitcode(status)})
        child.conn.close()
        server.last_used = time.monotonic()


def serve(socket_path: str, idle: float = 0.0, modules: tuple[str, ...] = PRELOAD) -> int:
    """Preload, listen on `socket_path`, print `ready <pid>`, fork per request until told to stop.

    `idle` > 0: exit after that many seconds with no request and no child running.
    Returns the exit status (0; 3 when it cannot serve safely).
    """
    missing = preload(modules)
    gc.collect()
    gc.freeze()  # the imported objects stay shared with every child (copy-on-write)
    try:
        check_no_threads()
    except WarmError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 3
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    old_umask = os.umask(0o077)  # only this user may ask for runs
    try:
        listener.bind(socket_path)
    finally:
        os.umask(old_umask)
    listener.listen(16)
    listener.setblocking(False)
    server = _Server(listener, idle)
    server.wake_read, server.wake_write = os.pipe()
    os.set_blocking(server.wake_read, False)
    os.set_blocking(server.wake_write, False)
    signal.set_wakeup_fd(server.wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select through the pipe
    stop = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.selector.register(listener, selectors.EVENT_READ, "listen")
    server.selector.register(server.wake_read, selectors.EVENT_READ, "wake")
    with contextlib.suppress(OSError, ValueError):
        server.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    note = f" (not preloaded: {', '.join(missing)})" if missing else ""
    print(f"ready {os.getpid()}{note}", flush=True)
    try:
        while not stop:
            timeout = 1.0 if idle <= 0 else max(0.05, min(1.0, idle))
            for key, _ in server.selector.select(timeout):
                kind = key.data
                if kind == "listen":
                    _accept(server)
                elif kind == "wake":
                    with contextlib.suppress(OSError):
                        while os.read(server.wake_read, 512):
                            pass
                elif kind == "stdin":
                    if not os.read(sys.stdin.fileno(), 512):
                        stop = True  # whoever started this runner is gone
                elif kind == "conn":
                    assert isinstance(key.fileobj, socket.socket)
                    _read_request(server, key.fileobj)
            _reap(server)
            quiet = not server.children and not server.pending
            if idle > 0 and quiet and time.monotonic() - server.last_used > idle:
                stop = True
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(socket_path)
    # Runs in progress go on (each in its own session), as runs started from a terminal do.
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m floe_runtime.runtime.warm --socket PATH [--idle SECONDS]`."""
    parser = argparse.ArgumentParser(prog="python -m floe_runtime.runtime.warm")
    parser.add_argument("--socket", required=True, help="Unix socket path to listen on")
    parser.add_argument("--idle", type=float, default=0.0, help="exit after SECONDS unused")
    args = parser.parse_args(argv)
    return serve(args.socket, args.idle)


if __name__ == "__main__":
    sys.exit(main())
