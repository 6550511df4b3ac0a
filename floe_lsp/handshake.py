"""Answer `initialize` while the server is still loading.

Most of a cold start is importing lsprotocol and pygls (hundreds of attrs
classes), and an editor waits for the `initialize` result before it sends
anything else. The result depends only on this server's code and on the
capabilities the client announces, so the server keeps the result it computed
on an earlier start, keyed by exactly those, and answers a matching
`initialize` from a side thread at once while the main thread imports.

The same `initialize` request is then handed to pygls as if just read, so
every bit of server state (client capabilities, negotiated position encoding,
workspace folders) is set up by pygls as usual; its own reply is dropped when
the client already has one. On a miss the client gets pygls's reply as always,
and that reply is stored for the next start. Anything unexpected (a different
first message, a damaged cache, an unwritable cache folder) falls back to the
ordinary path: the cache only ever saves time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO

#: Cached replies kept; older ones are removed when a new one is written.
KEEP_REPLIES = 16

#: Bytes read for the first message at most (an initialize request is a few KB).
MAX_FIRST_MESSAGE = 4 * 1024 * 1024

#: Parts of InitializeParams that do not change the reply.
_IGNORED_PARAMS = frozenset(
    {"processId", "clientInfo", "locale", "rootPath", "rootUri", "workspaceFolders", "trace", "workDoneToken"}
)


def cache_dir() -> Path:
    """Where replies live: `$XDG_CACHE_HOME/floe-runtime/initialize/` (or ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "floe-runtime" / "initialize"


def _code_fingerprint() -> list[Any]:
    """What the reply depends on besides the client: this server's and pygls's code."""
    from floe_lsp import __version__

    here = Path(__file__).resolve().parent
    parts: list[Any] = [__version__, sys.version]
    for folder in (here, *_package_dirs("pygls", "lsprotocol")):
        for path in sorted(folder.glob("**/*.py")):
            try:
                st = path.stat()
            except OSError:
                continue
            parts.append([str(path), st.st_mtime_ns, st.st_size])
    return parts


def _package_dirs(*names: str) -> list[Path]:
    """Folders of installed packages, found without importing them."""
    out: list[Path] = []
    for name in names:
        spec = importlib.util.find_spec(name)  # a top-level package is located, not run
        if spec is not None and spec.submodule_search_locations:
            out.extend(Path(p) for p in spec.submodule_search_locations)
    return out


def reply_key(params: dict[str, Any]) -> str:
    """The cache key of an initialize request: its reply-relevant params plus the code."""
    relevant = {k: v for k, v in params.items() if k not in _IGNORED_PARAMS}
    blob = json.dumps([relevant, _code_fingerprint()], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def load_reply(key: str, folder: Path | None = None) -> dict[str, Any] | None:
    """The stored result for `key`, or None when there is none (or it is damaged)."""
    path = (folder or cache_dir()) / f"{key}.json"
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "capabilities" in data else None


def save_reply(key: str, result: dict[str, Any], folder: Path | None = None) -> None:
    """Store a result atomically, keeping only the newest `KEEP_REPLIES` files."""
    target = folder or cache_dir()
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target, prefix=key, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(result, handle)
        os.replace(tmp, target / f"{key}.json")
        stored = sorted(target.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in stored[KEEP_REPLIES:]:
            old.unlink(missing_ok=True)
    except OSError:
        return  # a read-only home only costs the speed-up


def frame(body: dict[str, Any]) -> bytes:
    """One JSON-RPC message with its Content-Length header."""
    data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(data) + data


def read_message(stream: BinaryIO) -> tuple[bytes, dict[str, Any] | None]:
    """Read one framed message; returns the raw bytes read and the parsed body (or None)."""
    raw = bytearray()
    length: int | None = None
    while True:
        line = stream.readline()
        raw += line
        if not line or len(raw) > MAX_FIRST_MESSAGE:
            return bytes(raw), None
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("ascii", "replace").partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value.strip())
    if length is None or length > MAX_FIRST_MESSAGE:
        return bytes(raw), None
    body = stream.read(length)
    raw += body
    try:
        message = json.loads(body)
    except ValueError:
        return bytes(raw), None
    return bytes(raw), message if isinstance(message, dict) else None


class ReplayStdin:
    """stdin for pygls: the bytes already read first, then the real stream."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def readline(self) -> bytes:
        """Return one line, from the replayed bytes while any are left."""
        if self._prefix:
            head, sep, rest = self._prefix.partition(b"\n")
            if sep:
                self._prefix = rest
                return head + sep
            self._prefix = b""
            return head + self._stream.readline()
        return self._stream.readline()

    def read(self, n: int) -> bytes:
        """Return `n` bytes (fewer only at end of input)."""
        if self._prefix:
            head, self._prefix = self._prefix[:n], self._prefix[n:]
            if len(head) < n:
                head += self._stream.read(n - len(head))
            return head
        return self._stream.read(n)

    def close(self) -> None:
        """Close the underlying stream."""
        self._stream.close()


class Handshake:
    """Reads the first message on a side thread and answers `initialize` from the cache.

    Start it before the heavy imports; `join()` after them gives the stdin and
    stdout pygls should use.
    """

    def __init__(self, stdin: BinaryIO, stdout: BinaryIO, folder: Path | None = None) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._folder = folder
        self._raw = b""
        self._request_id: Any = None
        self._key: str | None = None
        self._known: dict[str, Any] | None = None  # the stored reply, when there is one
        self.answered = False
        self._thread = threading.Thread(target=self._run, name="floe-lsp-handshake", daemon=True)

    def start(self) -> Handshake:
        """Begin reading the first message."""
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._raw, message = read_message(self._stdin)
            if not message or message.get("method") != "initialize" or "id" not in message:
                return
            params = message.get("params")
            if not isinstance(params, dict):
                return
            self._request_id = message["id"]
            self._key = reply_key(params)
            self._known = load_reply(self._key, self._folder)
            if self._known is None:
                return
            self._stdout.write(frame({"jsonrpc": "2.0", "id": self._request_id, "result": self._known}))
            self._stdout.flush()
            self.answered = True
        except (OSError, ValueError, TypeError):
            return  # pygls reads whatever is left and reports it as usual

    def join(self) -> tuple[ReplayStdin, ReplyFilter]:
        """Wait for the first message; return the streams pygls reads and writes."""
        self._thread.join()
        out = ReplyFilter(
            self._stdout, self._request_id, self._key, self._known, self.answered, self._folder
        )
        return ReplayStdin(self._raw, self._stdin), out


class ReplyFilter:
    """stdout for pygls: drops its `initialize` reply when the client has one, else stores it."""

    def __init__(
        self,
        stream: BinaryIO,
        request_id: Any,
        key: str | None,
        known: dict[str, Any] | None,
        answered: bool,
        folder: Path | None,
    ) -> None:
        self._stream = stream
        self._request_id = request_id
        self._key = key
        self._known = known
        self._answered = answered
        self._folder = folder
        self._pending = key is not None

    def write(self, data: bytes) -> int:
        """Write one framed message (pygls writes header and body together)."""
        if self._pending:
            reply = _parse_frame(data)
            if reply is not None and reply.get("id") == self._request_id and "method" not in reply:
                self._pending = False
                result = reply.get("result")
                key = self._key
                if isinstance(result, dict) and key and result != self._known:
                    save_reply(key, result, self._folder)
                if self._answered:
                    return len(data)
        return self._stream.write(data)

    def flush(self) -> None:
        """Flush the underlying stream."""
        self._stream.flush()

    def close(self) -> None:
        """Close the underlying stream."""
        self._stream.close()


def _parse_frame(data: bytes) -> dict[str, Any] | None:
    _, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    try:
        message = json.loads(body)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None
