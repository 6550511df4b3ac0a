"""The wire: every request gets a result or a JSON-RPC error, and no frame makes the server deaf.

pygls 2 leaves three holes that this module closes (each was seen with a real client or
the fuzz suite, tests/floe_lsp/test_robustness.py):

* A request whose params do not fit the method's type (`null`, a negative position, a
  missing field) fails inside pygls's JSON decoding, which only logs it: the client
  waits forever. `FloeProtocol.structure_message` turns it into a marker that
  `handle_message` answers with InvalidParams (-32602).
* pygls's stdio loop reads one header line at a time and keeps a frame's body only
  when a valid `Content-Length` came first: one bad header, a wrong length or a body
  that is not JSON makes every later body swallow the next header, so the server
  stays alive but never answers again. `Frames` splits the byte stream itself and
  resynchronises on the next `Content-Length` header; a request in a damaged frame is
  answered with ParseError when its id can still be read.
* JSON may carry lone surrogates (`"\\ud800"`), which are not Unicode: every later
  `encode()` of the text fails. They are read as U+FFFD (one UTF-16 unit, like the
  surrogate it replaces, so positions do not move); a surrogate pair is its character.

Kept out of the start-up path's heavy imports: only pygls, cattrs and lsprotocol.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import sys
import threading
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from cattrs.errors import BaseValidationError, ClassValidationError
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
    JsonRpcServerNotInitialized,
)
from pygls.io_ import StdoutWriter
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
)
from pygls.protocol.language_server import lsp_method

if TYPE_CHECKING:
    from pygls.server import JsonRPCServer

log = logging.getLogger(__name__)

#: A header line giving the body's length (LSP header names are case-insensitive).
_LENGTH = re.compile(rb"Content-Length:[ \t]*(\d+)[ \t]*(?:\r\n|\Z)", re.IGNORECASE)
#: The start of a frame, as it can never occur inside JSON: a raw line break is not allowed
#: in a JSON string, and `Content-Length` outside a string is not JSON.
_FRAME_START = re.compile(rb"Content-Length:[ \t]*\d+[ \t]*\r\n", re.IGNORECASE)
#: A header line of any name (`Content-Type: ...`).
_HEADER_LINE = re.compile(rb"[A-Za-z][A-Za-z0-9-]*:[^\r\n]*")
#: The id of a request in a damaged body (only a JSON key `"id"`, never an escaped one).
_ID = re.compile(rb'"id"\s*:\s*(-?\d{1,15}|"(?:[^"\\\r\n]|\\.){0,200}")')
#: A lone surrogate written as a JSON escape (only escapes can carry one into a str).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abAB]|\\u[dD][c-fC-F]")
#: More bytes than any document the engine reads (5 MiB) in JSON: larger is not a frame.
MAX_BODY = 256 * 1024 * 1024
#: Bytes without a blank line (the end of a header) after which they are dropped.
MAX_HEADER = 64 * 1024
#: How far back a partial body is rescanned for a frame start split across reads.
_OVERLAP = 64


@dataclass
class Body:
    """A frame's body, as its header announced it."""

    data: bytes


@dataclass
class Garbage:
    """Bytes that are not a frame (or a body cut short by the next frame), and why."""

    data: bytes
    reason: str


class Frames:
    """Splits a byte stream into LSP frame bodies, resynchronising after a framing error.

    Feed it what the transport reads; `next()` yields a `Body`, a `Garbage` (skipped,
    reported once) or None when it needs more bytes.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scanned = 0  # how much of the current partial body holds no frame start

    def feed(self, data: bytes) -> None:
        """Append bytes read from the transport."""
        self._buffer += data

    def next(self) -> Body | Garbage | None:
        """The next frame body or skipped span; None until more bytes arrive."""
        buf = self._buffer
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEADER:  # no header will ever end here: drop all but a tail
                return self._take(len(buf) - 3, "bytes without a frame header")
            return None
        block = bytes(buf[:end])
        matches = list(_LENGTH.finditer(block))
        if not matches:
            return self._take(end + 4, "a header without a valid Content-Length")
        match = matches[-1]
        prefix = block[: match.start()]
        if any(line and not _HEADER_LINE.fullmatch(line) for line in prefix.split(b"\r\n")):
            # Junk before the header (a body cut short, a stray line): report it on its own,
            # the header after it is read next.
            return self._take(match.start(), "bytes before a frame header")
        length = int(match.group(1))
        start = end + 4
        if length > MAX_BODY:
            return self._take(start, f"a Content-Length of {length} bytes")
        # A frame start inside the body means the length was too long: the body ends there.
        scan_from = start + max(self._scanned - _OVERLAP, 0)
        cut = _FRAME_START.search(buf, scan_from, start + length)
        if cut is not None:
            self._scanned = 0
            body = bytes(buf[start : cut.start()])
            del buf[: cut.start()]
            return Garbage(body, "a body shorter than its Content-Length")
        if len(buf) < start + length:
            self._scanned = len(buf) - start
            return None
        self._scanned = 0
        body = bytes(buf[start : start + length])
        del buf[: start + length]
        return Body(body)

    def _take(self, count: int, reason: str) -> Garbage:
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        self._scanned = 0
        return Garbage(data, reason)


def request_id(data: bytes) -> int | str | None:
    """The id of the request a damaged body held, when one can still be read."""
    if b'"method"' not in data:  # a response or nothing we could answer
        return None
    found = _ID.search(data)
    if found is None:
        return None
    raw = found.group(1)
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, (int, str)) else None


def _unicode(value: Any) -> Any:
    """`value` with every string made Unicode (a lone surrogate becomes U+FFFD)."""
    if isinstance(value, str):
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if isinstance(value, list):
        return [_unicode(v) for v in value]
    if isinstance(value, dict):
        return {_unicode(k): _unicode(v) for k, v in value.items()}
    return value


def decode(body: bytes) -> Any:
    """A frame body as JSON; ValueError (or RecursionError) when it is not."""
    data = json.loads(body.decode("utf-8"))
    if _SURROGATE_ESCAPE.search(body):
        data = _unicode(data)
    return data


@dataclass
class Unreadable:
    """A message that does not fit its method's type: answered (a request) or dropped."""

    id: int | str | None
    method: str | None
    error: JsonRpcException
    jsonrpc: str = "2.0"


def _reason(exc: Exception) -> str:
    if isinstance(exc, BaseValidationError):
        from cattrs import transform_error

        return "; ".join(transform_error(exc)[:3])
    return type(exc).__name__


class FloeProtocol(LanguageServerProtocol):
    """pygls's protocol, answering what it would leave unanswered."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        """A message as its LSP type; an `Unreadable` for one that does not fit it.

        pygls's own version raises from inside JSON decoding, so the request is never
        answered, and logs a traceback for what is a client's mistake.
        """
        if "jsonrpc" not in data:
            return data
        msg_id = data.get("id")
        method = data.get("method")
        try:
            if "id" in data and "error" in data:
                return self._converter.structure(data, types.ResponseErrorMessage)
            if "id" in data and "method" in data:
                kind = self.get_message_type(str(method)) or JsonRPCRequestMessage
                return self._converter.structure(data, kind)
            if "id" in data:
                kind = self._result_types.pop(msg_id, None) or JsonRPCResponseMessage  # type: ignore[arg-type]
                return self._converter.structure(data, kind)
            kind = self.get_message_type(str(method or "")) or JsonRPCNotification
            return self._converter.structure(data, kind)
        except (ClassValidationError, BaseValidationError, TypeError, ValueError) as exc:
            reason = _reason(exc)
            valid_id = (
                msg_id if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool) else None
            )
            if "method" in data and "id" in data and valid_id is None:
                return Unreadable(None, str(method), JsonRpcInvalidRequest(f"invalid id: {reason}"))
            text = f"{method}: invalid params: {reason}" if method else f"invalid message: {reason}"
            return Unreadable(valid_id, str(method) if method else None, JsonRpcInvalidParams(text))

    def handle_message(self, message: Any) -> None:
        """Dispatch a message; answer what pygls would drop without a word."""
        if isinstance(message, Unreadable):
            self._unreadable(message)
            return
        method = getattr(message, "method", None)
        msg_id = getattr(message, "id", None)
        is_request = method is not None and msg_id is not None
        if not hasattr(message, "jsonrpc"):  # a JSON value that is not a message at all
            log.warning("ignored a JSON value that is not a JSON-RPC message")
            return
        if is_request and method != types.INITIALIZE and self._workspace is None:
            # Before initialize the workspace does not exist: every feature would fail.
            early = JsonRpcServerNotInitialized(f"{method} before initialize")
            self._send_response(msg_id, error=early.to_response_error())  # type: ignore[arg-type]
            return
        if is_request and self._shutdown:
            # pygls drops requests after shutdown; the spec wants InvalidRequest.
            late = JsonRpcInvalidRequest(f"{method} after shutdown")
            self._send_response(msg_id, error=late.to_response_error())  # type: ignore[arg-type]
            return
        super().handle_message(message)

    def _unreadable(self, message: Unreadable) -> None:
        if message.method is not None and (message.id is not None or message.error.code == -32600):
            log.warning("answered %s with an error: %s", message.method, message.error.message)
            self._send_response(message.id, error=message.error.to_response_error())  # type: ignore[arg-type]
            return
        if message.method is None and message.id is not None:
            # A reply of the client's to one of our requests that does not fit its type.
            log.warning("a reply to request %s does not fit: %s", message.id, message.error)
            self._handle_response(message.id, None, message.error.to_response_error())
            return
        log.warning("dropped a notification: %s", message.error.message)

    def reply_to_damaged(self, data: bytes, reason: str) -> None:
        """A damaged frame: log one line; a request whose id is legible gets ParseError."""
        msg_id = request_id(data)
        log.warning("skipped %d bytes on the wire: %s", len(data), reason)
        if msg_id is not None:
            err = JsonRpcParseError(f"could not read request {msg_id!r}: {reason}")
            self._send_response(msg_id, error=err.to_response_error())

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        """pygls's copy of the text follows the change when it can; the feature always runs.

        pygls raises for a document that was never opened (KeyError) and then skips our
        handler; the server keeps its own copy anyway (floe_lsp/diagnostics.py), so its
        failure is only logged. pygls gets a copy of each change: it clamps a column past
        a line's end *in the client's params*, to one character short of it, so our copy
        would lose the line's last character.
        """
        try:
            for change in params.content_changes:
                self.workspace.update_text_document(params.text_document, copy.deepcopy(change))
        except Exception as exc:  # pygls's copy only; ours is floe_lsp.state
            log.warning(
                "didChange of %s not applied to pygls's copy: %s",
                params.text_document.uri,
                type(exc).__name__,
            )
        handler = self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)
        if handler is not None:
            yield handler, (params,), None


async def serve(
    protocol: FloeProtocol,
    read: Callable[[], Awaitable[bytes]],
    stop: threading.Event,
) -> None:
    """Read frames with `read` (b"" at the end) and hand each message to `protocol`."""
    frames = Frames()
    while not stop.is_set():
        item = frames.next()
        if item is None:
            chunk = await read()
            if not chunk:
                return
            frames.feed(chunk)
            continue
        if isinstance(item, Garbage):
            protocol.reply_to_damaged(item.data, item.reason)
            continue
        try:
            data = decode(item.data)
        except (ValueError, RecursionError) as exc:
            protocol.reply_to_damaged(item.data, f"the body is not JSON ({type(exc).__name__})")
            continue
        if not isinstance(data, dict):
            protocol.reply_to_damaged(item.data, "the body is not a JSON object")
            continue
        try:
            message = protocol.structure_message(data)
        except RecursionError:
            protocol.reply_to_damaged(item.data, "the message is nested too deep")
            continue
        protocol.handle_message(message)


def start_io(server: JsonRPCServer, stdin: BinaryIO | None = None) -> None:
    """Serve on stdin/stdout with `serve` (pygls's `start_io`, with our framing)."""
    stdin = stdin or sys.stdin.buffer
    stop = threading.Event()
    server._stop_event = stop
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))
    reader = getattr(stdin, "read1", None) or stdin.read

    async def read() -> bytes:
        return await asyncio.get_running_loop().run_in_executor(server.thread_pool, reader, 65536)

    assert isinstance(server.protocol, FloeProtocol)
    try:
        asyncio.run(serve(server.protocol, read, stop))
    except BrokenPipeError:
        log.error("Connection to the client is lost! Shutting down the server.")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()  # type: ignore[no-untyped-call]


def start_tcp(server: JsonRPCServer, host: str, port: int) -> None:
    """Serve one client at a time on a TCP address (pygls's `start_tcp`, with our framing)."""
    stop = threading.Event()
    server._stop_event = stop
    assert isinstance(server.protocol, FloeProtocol)
    protocol = server.protocol

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        protocol.set_writer(writer)
        await serve(protocol, lambda: reader.read(65536), stop)
        server.shutdown()  # type: ignore[no-untyped-call]

    async def listen() -> None:
        tcp = await asyncio.start_server(connection, host, port)
        server._server = tcp
        log.info("Serving on %s:%s", host, port)
        async with tcp:
            await tcp.serve_forever()

    try:
        asyncio.run(listen())
    except asyncio.CancelledError:
        log.debug("Server was cancelled")
