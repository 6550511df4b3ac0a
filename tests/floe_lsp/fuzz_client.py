"""A raw JSON-RPC client of a live `python -m floe_lsp` over stdio, for the fuzz suite and bench.

Raw rather than pytest-lsp: the fuzz suite sends what a well-behaved client never would
(negative positions, `null` params, lone surrogates, broken frames), and a typed client
refuses to build those messages. Synchronous (two reader threads), so hypothesis drives it
directly.

Also here: the text model of a document as an LSP client holds it (lines end at `\\n`,
`\\r\\n`, `\\r` only; positions in UTF-16 units, clamped as vscode-languageserver-textdocument
clamps them), written independently of the server's converter.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: JSON-RPC error codes the fuzz suite tells apart.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_CANCELLED = -32800

_FRAME = re.compile(rb"Content-Length: (\d+)\r\n(?:[^\r\n]+\r\n)*\r\n")


@dataclass
class Reply:
    """A response to one of our requests, with how long it took."""

    id: int
    message: dict[str, Any]
    latency: float

    @property
    def error_code(self) -> int | None:
        """The JSON-RPC error code, None for a result."""
        error = self.message.get("error")
        return int(error["code"]) if isinstance(error, dict) else None

    @property
    def result(self) -> Any:
        """The result (None for an error)."""
        return self.message.get("result")


@dataclass
class Published:
    """One textDocument/publishDiagnostics, with its arrival order."""

    seq: int
    uri: str
    version: int | None
    diagnostics: list[dict[str, Any]]


@dataclass
class _Pending:
    sent: float
    done: threading.Event = field(default_factory=threading.Event)
    reply: Reply | None = None


class LspProcess:
    """`python -m floe_lsp` on pipes: send frames, await replies, keep every notification.

    Requests the server sends (registerCapability, workspace/configuration, progress
    creation, refreshes) are answered at once, as an editor does.
    """

    def __init__(self, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "floe_lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._next_id = 0
        self._pending: dict[int, _Pending] = {}
        self._seq = 0
        self.published: list[Published] = []
        self.notifications: list[dict[str, Any]] = []
        #: Replies whose id is not one of ours (e.g. an error for a frame with id null).
        self.stray: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._arrived = threading.Condition(self._lock)
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------ wire
    def write(self, data: bytes) -> None:
        """Raw bytes to the server's stdin."""
        assert self.proc.stdin is not None
        with self._write_lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    @staticmethod
    def frame(message: dict[str, Any]) -> bytes:
        """A message as one LSP frame (ASCII JSON: lone surrogates travel as escapes)."""
        body = json.dumps(message).encode("ascii")
        return b"Content-Length: %d\r\n\r\n" % len(body) + body

    def send(self, message: dict[str, Any]) -> None:
        """One well-framed message."""
        self.write(self.frame(message))

    def notify(self, method: str, params: Any) -> None:
        """A notification."""
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def next_id(self) -> int:
        """A fresh request id (for hand-built frames)."""
        with self._lock:
            self._next_id += 1
            self._pending[self._next_id] = _Pending(time.monotonic())
            return self._next_id

    def request_nowait(self, method: str, params: Any) -> int:
        """Send a request; its reply is awaited with `wait`."""
        msg_id = self.next_id()
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id

    def wait(self, msg_id: int, timeout: float) -> Reply | None:
        """The reply to `msg_id`, or None when it did not come within `timeout` of sending."""
        with self._lock:
            pending = self._pending[msg_id]
        left = pending.sent + timeout - time.monotonic()
        pending.done.wait(max(left, 0.0))
        with self._lock:
            if pending.reply is not None:
                del self._pending[msg_id]
            return pending.reply

    def request(self, method: str, params: Any, timeout: float = 10.0) -> Reply:
        """Send a request and wait for its reply (AssertionError when none comes)."""
        msg_id = self.request_nowait(method, params)
        reply = self.wait(msg_id, timeout)
        assert reply is not None, f"no reply to {method} within {timeout} s"
        return reply

    def _read_stdout(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        buffer = b""
        while True:
            match = _FRAME.search(buffer)
            if match is None or len(buffer) < match.end() + int(match.group(1)):
                chunk = stream.read1(65536)
                if not chunk:
                    with self._lock:
                        self._arrived.notify_all()
                    return
                buffer += chunk
                continue
            end = match.end() + int(match.group(1))
            body, buffer = buffer[match.end() : end], buffer[end:]
            self._dispatch(json.loads(body))

    def _dispatch(self, message: dict[str, Any]) -> None:
        now = time.monotonic()
        if "method" in message and "id" in message:  # a request of the server's
            self.send({"jsonrpc": "2.0", "id": message["id"], "result": _answer(message)})
            return
        with self._lock:
            self._seq += 1
            if "method" in message:
                self.notifications.append(message)
                if message["method"] == "textDocument/publishDiagnostics":
                    params = message["params"]
                    self.published.append(
                        Published(
                            self._seq, params["uri"], params.get("version"), params["diagnostics"]
                        )
                    )
            else:
                pending = self._pending.get(message.get("id"))  # type: ignore[arg-type]
                if pending is None:
                    self.stray.append(message)
                else:
                    pending.reply = Reply(message["id"], message, now - pending.sent)
                    pending.done.set()
            self._arrived.notify_all()

    def _read_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        for line in iter(stream.readline, b""):
            with self._lock:
                self.stderr.append(line.decode("utf-8", "replace"))

    # ------------------------------------------------------------ waiting
    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Block until `predicate()` (called under the lock) holds; AssertionError on timeout."""
        end = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"timed out waiting for {what}")
                self._arrived.wait(min(left, 0.1))

    # ------------------------------------------------------------ session
    def initialize(self, folders: list[Path]) -> dict[str, Any]:
        """initialize + initialized with the given workspace folders (UTF-16 positions)."""
        root = folders[0] if folders else None
        reply = self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": file_uri(root) if root else None,
                "workspaceFolders": [{"uri": file_uri(f), "name": f.name} for f in folders],
                "capabilities": {
                    "textDocument": {
                        "synchronization": {"didSave": True},
                        "publishDiagnostics": {"versionSupport": True},
                        "completion": {"completionItem": {"snippetSupport": True}},
                        "hover": {"contentFormat": ["markdown", "plaintext"]},
                        "documentSymbol": {"hierarchicalDocumentSymbolSupport": True},
                        "rename": {"prepareSupport": True},
                    },
                    "workspace": {
                        "workspaceFolders": True,
                        "configuration": True,
                        "applyEdit": True,
                        "workspaceEdit": {"documentChanges": True},
                    },
                    "window": {"workDoneProgress": True},
                },
            },
            timeout=60,
        )
        assert reply.error_code is None, reply.message
        self.notify("initialized", {})
        return dict(reply.result)

    def alive(self) -> bool:
        """The server process has not exited."""
        return self.proc.poll() is None

    def rss_kib(self) -> int:
        """The server's resident memory (VmRSS) in KiB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        assert match is not None
        return int(match.group(1))

    def tracebacks(self, since: int = 0) -> list[str]:
        """Server stderr lines from `since` on that belong to a traceback."""
        with self._lock:
            lines = self.stderr[since:]
        return [line for line in lines if "Traceback" in line]

    def close(self) -> None:
        """shutdown + exit when alive; kill after a grace period."""
        if self.alive():
            try:
                self.request("shutdown", None, timeout=5)
                self.notify("exit", None)
                self.proc.wait(5)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _answer(message: dict[str, Any]) -> Any:
    """What an editor answers to a request of the server's."""
    if message["method"] == "workspace/configuration":
        return [None for _ in message.get("params", {}).get("items", [])]
    return None


def file_uri(path: Path) -> str:
    """A file URI as editors write them (percent-encoded)."""
    from pygls.uris import from_fs_path

    out = from_fs_path(str(path))
    assert out is not None
    return str(out)


# ---------------------------------------------------------------- text model

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_SURROGATE = re.compile("[\ud800-\udfff]")


def lsp_lines(text: str) -> list[str]:
    """Lines as LSP counts them, each with its terminator."""
    return _LINE.findall(text) if text else []


def utf16_units(text: str) -> int:
    """Length of `text` in UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def offset_at(text: str, line: int, character: int) -> int:
    """The code-point offset of an LSP position (UTF-16), clamped to the text and its line.

    A line past the end is the end of the text; a column past the line's end is the
    line's end (before its break); a column inside a surrogate pair is after the pair.
    """
    lines = lsp_lines(text)
    if line < 0:
        return 0
    if line >= len(lines):
        return len(text)
    start = sum(len(x) for x in lines[:line])
    body = lines[line].rstrip("\r\n")
    units = 0
    for index, ch in enumerate(body):
        if units >= character:
            return start + index
        units += 2 if ord(ch) > 0xFFFF else 1
    return start + len(body)


def position_of(text: str, offset: int) -> tuple[int, int]:
    """The LSP (UTF-16) position of a code-point offset."""
    line = 0
    start = 0
    for part in lsp_lines(text):
        if start + len(part) > offset:
            break
        if start + len(part) == offset and not part.endswith(("\n", "\r")):
            break
        start += len(part)
        line += 1
    return line, utf16_units(text[start:offset])


def apply_change(text: str, change: dict[str, Any]) -> str:
    """`text` after one didChange content change as a client holds it."""
    if "range" not in change:
        return str(change["text"])
    rng = change["range"]
    start = offset_at(text, rng["start"]["line"], rng["start"]["character"])
    end = offset_at(text, rng["end"]["line"], rng["end"]["character"])
    start, end = min(start, end), max(start, end)
    return text[:start] + str(change["text"]) + text[end:]


def as_received(text: str) -> str:
    """A string as the server reads it from our JSON: a surrogate pair is its character,
    a lone surrogate (not Unicode) is U+FFFD."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


# ---------------------------------------------------------------- fuzz cases

#: The two documents every case edits, relative to the pipeline folder.
DOCS = ("floe.yaml", "platform/prod/platform.yaml")
#: Typed at random places: YAML syntax, every line break Python or LSP knows, marks that
#: combine, right-to-left text, emoji, lone surrogates, NUL, a BOM, tags and directives.
JUNK = (
    "",
    ":",
    ": ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "'",
    '"',
    "\t",
    "\t- x",
    "\r\n",
    "\r",
    "\n",
    "\n\n\n",
    "\u2028",
    "\u0085",
    "\u2029",
    "\v",
    "\f",
    "#",
    " # c",
    "&a ",
    "*a",
    "*nowhere",
    "<<: *a\n",
    "x: &a [1, 2]\ny: *a\n",
    "---\n",
    "...\n",
    "é😀",
    "😀😀",
    "e\u0301\u0301\u0301",
    "\u202eevil\u202c",
    "שלום عربي",
    "\ud800",
    "\udc00x",
    "\ud83d",
    "\x00",
    "\ufeff",
    "!!binary ",
    "!python/object ",
    "%YAML 1.2\n",
    "? ",
    "|\n",
    ">-\n  x\n",
    "  x:",
    "name: [",
    "storage:",
    "compute: nowhere\n",
    "type: postgres\n",
    "{secret_ref: ",
    "${HOME}",
    "../../../../etc/passwd",
)
#: Methods the server offers, with the shape of their params (see `request_params`).
POSITIONAL = (
    "textDocument/completion",
    "textDocument/hover",
    "textDocument/definition",
    "textDocument/references",
    "textDocument/prepareRename",
    "textDocument/rename",
)
WHOLE_DOCUMENT = (
    "textDocument/documentSymbol",
    "textDocument/codeLens",
    "textDocument/documentLink",
)
RANGED = ("textDocument/codeAction", "textDocument/inlayHint")
#: Commands that only read: the ones that start floe-runtime (compile, run) are not fuzzed.
COMMANDS = ("floe.listEnvironments", "floe.diffEnvironments")
#: Positions a client may send: inside, past a line's end, past the text, at uinteger max.
MAX_UINT = 2**31 - 1


def strategies() -> Any:
    """The hypothesis strategy of one case: a list of operations (see `FuzzSession.run`)."""
    from hypothesis import strategies as st

    line = st.one_of(st.integers(0, 40), st.integers(0, 80), st.just(MAX_UINT))
    char = st.one_of(st.integers(0, 12), st.integers(0, 120), st.just(MAX_UINT))
    position = st.tuples(line, char)
    negative = st.tuples(st.integers(-3, -1), st.integers(-3, 3))
    junk = st.one_of(
        st.sampled_from(JUNK),
        st.text(max_size=8),
        st.lists(st.sampled_from(JUNK), max_size=4).map("".join),
        st.integers(1, 300).map(lambda n: "[" * n),
        st.integers(1, 120).map(lambda n: "".join(f"{'  ' * i}k{i}:\n" for i in range(n))),
        st.integers(1, 200).map(lambda n: "- " * n + "x"),
        st.integers(1, 60_000).map(lambda n: "x" * n),
        st.integers(1, 8).map(
            lambda n: (
                "a: &a [x]\n"
                + "".join(
                    f"b{i}: &b{i} [*{'a' if i == 0 else f'b{i - 1}'}, *{'a' if i == 0 else f'b{i - 1}'}]\n"
                    for i in range(n)
                )
            )
        ),
    )
    doc = st.sampled_from(range(len(DOCS)))
    version = st.sampled_from(["next", "next", "next", "same", "back"])
    full = st.tuples(
        st.just("full"),
        doc,
        version,
        st.sampled_from(["insert", "truncate", "replace", "eol"]),
        st.integers(0, 10**6),
        st.integers(0, 40),
        junk,
    )
    incremental = st.tuples(
        st.just("incr"), doc, version, st.one_of(position, position, negative), position, junk
    )
    requested = st.tuples(
        st.just("req"),
        doc,
        st.sampled_from(POSITIONAL + WHOLE_DOCUMENT + RANGED + COMMANDS + ("floe/unknown",)),
        st.one_of(position, position, negative),
        position,
    )
    malformed = st.tuples(
        st.just("bad"),
        st.sampled_from(POSITIONAL + WHOLE_DOCUMENT + RANGED),
        st.sampled_from(["null", "missing", "negative", "nul-uri", "surrogate-uri", "not-file"]),
    )
    stray = st.tuples(
        st.just("stray"), st.sampled_from(["change-unopened", "close-unopened", "frame"])
    )
    op = st.one_of(
        full, full, incremental, incremental, requested, requested, requested, malformed, stray
    )
    return st.lists(op, min_size=1, max_size=12)


@dataclass
class Outcome:
    """What one request got."""

    method: str
    latency: float | None  # None: unanswered within the deadline
    error: int | None
    expected_errors: tuple[int, ...]


@dataclass
class CaseResult:
    """One case's requests, faults and final diagnostics."""

    outcomes: list[Outcome] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    versions: int = 0


class FuzzSession:
    """One live server over a copy of a project, reused case after case.

    `engine_root` is a second copy the engine checks the final texts in (the server's
    messages name `project`, the engine's `engine_root`).
    """

    DEADLINE = 2.0

    def __init__(self, project: Path, engine_root: Path) -> None:
        self.project = project
        self.engine_root = engine_root
        self.paths = [project / d for d in DOCS]
        self.uris = [file_uri(p) for p in self.paths]
        self.base = [p.read_text(encoding="utf-8") for p in self.paths]
        self.version = 0
        self.server = self._start()

    def _start(self) -> LspProcess:
        server = LspProcess(cwd=self.project)
        server.initialize([self.project.parent])
        return server

    def restart(self) -> None:
        """A fresh server (after one died: the next case must not inherit its death)."""
        self.server.close()
        self.server = self._start()

    def close(self) -> None:
        """Stop the server."""
        self.server.close()

    # ------------------------------------------------------------ a case
    def run(self, ops: list[tuple[Any, ...]]) -> CaseResult:
        """Open both documents afresh, apply `ops`, check what a client can check."""
        server = self.server
        out = CaseResult()
        stderr_from = len(server.stderr)
        texts = list(self.base)
        versions = [0, 0]
        for i in range(len(self.paths)):
            server.notify("textDocument/didClose", {"textDocument": {"uri": self.uris[i]}})
            versions[i] = self._new_version()
            server.notify(
                "textDocument/didOpen",
                {
                    "textDocument": {
                        "uri": self.uris[i],
                        "languageId": "yaml",
                        "version": versions[i],
                        "text": texts[i],
                    }
                },
            )
        for op in ops:
            kind = op[0]
            if kind in ("full", "incr"):
                self._edit(op, texts, versions)
                out.versions += 1
            elif kind == "req":
                self._request(op, texts, out)
            elif kind == "bad":
                self._malformed(op, out)
            else:
                self._stray(op, out)
            if not server.alive():
                out.faults.append(f"server died after {op[:3]}")
                return out
        self._final(texts, versions, out)
        tracebacks = server.tracebacks(stderr_from)
        if tracebacks:
            out.faults.append(
                "traceback in the server's log:\n" + "".join(server.stderr[stderr_from:][-40:])
            )
        for o in out.outcomes:
            if o.latency is None:
                out.faults.append(f"{o.method}: no reply within {self.DEADLINE} s")
            elif o.error is not None and o.error not in o.expected_errors:
                out.faults.append(f"{o.method}: error {o.error}")
        return out

    def _new_version(self) -> int:
        self.version += 1
        return self.version

    def _edit(self, op: tuple[Any, ...], texts: list[str], versions: list[int]) -> None:
        kind, doc, how = op[0], op[1], op[2]
        if how == "next":
            version = self._new_version()
        elif how == "same":
            version = versions[doc]
        else:
            version = max(versions[doc] - 3, 0)
        if kind == "full":
            _, _, _, mode, at, length, junk = op
            base = texts[doc] if at % 2 else self.base[doc]
            at %= len(base) + 1
            if mode == "insert":
                text = base[:at] + junk + base[at:]
            elif mode == "truncate":
                text = base[:at]
            elif mode == "eol":  # every line break another one (the junk's own when it has one)
                breaks = [b for b in ("\r\n", "\r", "\u2028", "\u0085", "\u2029") if b in junk]
                text = base.replace("\n", (breaks or ["\r"])[0])
            else:
                text = base[:at] + junk + base[at + length :]
            change: dict[str, Any] = {"text": text}
        else:
            _, _, _, start, end, junk = op
            change = {
                "range": {
                    "start": {"line": start[0], "character": start[1]},
                    "end": {"line": end[0], "character": end[1]},
                },
                "text": junk,
            }
        self.server.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": self.uris[doc], "version": version},
                "contentChanges": [change],
            },
        )
        if kind == "incr" and min(*op[3], *op[4]) < 0:
            return  # not an LSP position: the server answers nothing and drops the change
        received = {**change, "text": as_received(str(change["text"]))}
        texts[doc] = apply_change(texts[doc], received)
        versions[doc] = version

    def _ask(
        self, method: str, params: Any, out: CaseResult, expected: tuple[int, ...]
    ) -> Reply | None:
        msg_id = self.server.request_nowait(method, params)
        reply = self.server.wait(msg_id, self.DEADLINE)
        out.outcomes.append(
            Outcome(
                method,
                reply.latency if reply else None,
                reply.error_code if reply else None,
                expected,
            )
        )
        return reply

    def _request(self, op: tuple[Any, ...], texts: list[str], out: CaseResult) -> None:
        _, doc, method, start, end = op
        uri = self.uris[doc]
        ident = {"uri": uri}
        used = [*start, *end] if method in RANGED else list(start)
        expected = (INVALID_PARAMS,) if min(used) < 0 else ()
        p = {"line": start[0], "character": start[1]}
        rng = {"start": p, "end": {"line": end[0], "character": end[1]}}
        params: Any
        if method in POSITIONAL:
            params = {"textDocument": ident, "position": p}
            if method == "textDocument/references":
                params["context"] = {"includeDeclaration": True}
            if method == "textDocument/rename":
                params["newName"] = "renamed"
        elif method in WHOLE_DOCUMENT:
            params = {"textDocument": ident}
            expected = ()
        elif method in RANGED:
            params = {"textDocument": ident, "range": rng}
            if method == "textDocument/codeAction":
                params["context"] = {"diagnostics": []}
        elif method in COMMANDS:
            envs = ["prod", "dev", "nowhere", ""]
            args = [uri if start[0] % 3 else self.uris[0], envs[start[1] % 4], envs[end[1] % 4]]
            params = {"command": method, "arguments": args[: 1 + end[0] % 3]}
            method = "workspace/executeCommand"
            expected = ()
        else:
            params = {"textDocument": ident}
            expected = (METHOD_NOT_FOUND,)
        self._ask(method, params, out, expected)

    def _malformed(self, op: tuple[Any, ...], out: CaseResult) -> None:
        _, method, how = op
        ident: dict[str, Any] = {"uri": self.uris[0]}
        params: Any = {"textDocument": ident, "position": {"line": 0, "character": 0}}
        if method in WHOLE_DOCUMENT:
            params = {"textDocument": ident}
        elif method in RANGED:
            zero = {"line": 0, "character": 0}
            params = {"textDocument": ident, "range": {"start": zero, "end": zero}}
            if method == "textDocument/codeAction":
                params["context"] = {"diagnostics": []}
        elif method == "textDocument/references":
            params["context"] = {"includeDeclaration": False}
        elif method == "textDocument/rename":
            params["newName"] = "x"
        expected: tuple[int, ...] = ()
        if how == "null":
            params, expected = None, (INVALID_PARAMS,)
        elif how == "missing":
            params, expected = (
                {"textDocument": ident} if method not in WHOLE_DOCUMENT else {},
                (INVALID_PARAMS,),
            )
        elif how == "negative":
            if "position" in params:
                params["position"] = {"line": -1, "character": -5}
            elif "range" in params:
                params["range"]["start"] = {"line": -1, "character": 0}
            else:
                params["textDocument"] = {"uri": 5}
            expected = (INVALID_PARAMS,)
        elif how == "nul-uri":
            ident["uri"] = self.uris[0].replace("floe.yaml", "fl%00oe.yaml")
        elif how == "surrogate-uri":
            ident["uri"] = self.uris[0].replace("floe.yaml", "\ud800floe.yaml")
        else:
            ident["uri"] = "untitled:Untitled-1"
        self._ask(method, params, out, expected)

    def _stray(self, op: tuple[Any, ...], out: CaseResult) -> None:
        other = file_uri(self.project / "missing" / "floe.yaml")
        if op[1] == "change-unopened":
            self.server.notify(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": other, "version": 7},
                    "contentChanges": [
                        {
                            "range": {
                                "start": {"line": 0, "character": 0},
                                "end": {"line": 0, "character": 0},
                            },
                            "text": "x",
                        }
                    ],
                },
            )
        elif op[1] == "close-unopened":
            self.server.notify("textDocument/didClose", {"textDocument": {"uri": other}})
        else:
            # A frame whose Content-Length is not a number, then the next request: the
            # damaged one is answered with ParseError once the stream resynchronises.
            msg_id = self.server.next_id()
            body = json.dumps(
                {"jsonrpc": "2.0", "id": msg_id, "method": "textDocument/hover", "params": None}
            ).encode()
            self.server.write(b"Content-Length: 1x\r\n\r\n" + body)
            self._ask(
                "textDocument/documentSymbol", {"textDocument": {"uri": self.uris[0]}}, out, ()
            )
            reply = self.server.wait(msg_id, self.DEADLINE)
            out.outcomes.append(
                Outcome(
                    "damaged frame",
                    reply.latency if reply else None,
                    reply.error_code if reply else None,
                    (PARSE_ERROR,),
                )
            )

    # ------------------------------------------------------------ the last version
    def _final(self, texts: list[str], versions: list[int], out: CaseResult) -> None:
        """Touch both documents (platform first) with an empty edit at new versions; the
        last publication of each must be the engine's for the model's text."""
        server = self.server
        for doc in (1, 0):
            versions[doc] = self._new_version()
            zero = {"line": 0, "character": 0}
            server.notify(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": self.uris[doc], "version": versions[doc]},
                    "contentChanges": [{"range": {"start": zero, "end": zero}, "text": ""}],
                },
            )
        # Only the final state publishes floe.yaml at its final version; the platform file
        # is published in the same batch, before the reply to a request sent after it.
        floe_uri, final = self.uris[0], versions[0]
        try:
            server.wait_until(
                lambda: any(p.uri == floe_uri and p.version == final for p in server.published),
                10.0,
                f"diagnostics of version {final}",
            )
        except AssertionError as exc:
            out.faults.append(str(exc))
            return
        barrier = self._ask(
            "textDocument/documentSymbol", {"textDocument": {"uri": floe_uri}}, out, ()
        )
        if barrier is None:
            return
        for doc in (0, 1):
            last = [p for p in server.published if p.uri == self.uris[doc]][-1]
            got = sorted(_seen(d) for d in last.diagnostics)
            want = self.expected(doc, texts)
            if got != want:
                out.faults.append(
                    f"{DOCS[doc]}: published {got} but the engine says {want} for {texts[doc]!r}"
                )
        del server.published[:]  # what is left belongs to this case only

    def expected(self, doc: int, texts: list[str]) -> list[tuple[Any, ...]]:
        """The engine's diagnostics of document `doc` when both hold `texts`."""
        from floe_runtime.analysis import analyze, discover

        for name, text in zip(DOCS, texts, strict=True):
            (self.engine_root / name).write_text(text, encoding="utf-8", newline="")
        target = str(self.engine_root / DOCS[doc])
        diags = analyze(discover(self.engine_root)).by_file().get(target, [])
        lines = lsp_lines(texts[doc])
        severity = {"error": 1, "warning": 2, "information": 3, "hint": 4}

        def at(line: int, char: int) -> tuple[int, int]:
            if line >= len(lines):
                return line, 0
            return line, utf16_units(lines[line][:char])

        out = []
        for d in diags:
            start, end = at(*d.range.start), at(*d.range.end)
            message = d.message.replace(str(self.engine_root), str(self.project))
            out.append((*start, *end, d.code, severity[d.severity.value], message))
        return sorted(out)


def _seen(d: dict[str, Any]) -> tuple[Any, ...]:
    r = d["range"]
    return (
        r["start"]["line"],
        r["start"]["character"],
        r["end"]["line"],
        r["end"]["character"],
        str(d.get("code")),
        int(d.get("severity") or 0),
        d["message"],
    )
