"""The early `initialize` answer: a reply cached from an earlier start, sent while pygls loads."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lsp_helpers import EXAMPLE, uri

from floe_lsp.handshake import ReplayStdin, frame, read_message, reply_key

CAPS: dict[str, Any] = {
    "general": {"positionEncodings": ["utf-16"]},
    "textDocument": {"completion": {"completionItem": {"snippetSupport": True}}},
}


# ------------------------------------------------------------------ units


def test_replayed_bytes_come_first_then_the_stream() -> None:
    stdin = ReplayStdin(b"Content-Length: 4\r\n\r\nab", io.BytesIO(b"cd\nnext line\nrest"))
    assert stdin.readline() == b"Content-Length: 4\r\n"
    assert stdin.readline() == b"\r\n"
    assert stdin.read(4) == b"abcd"  # crosses from the replayed bytes into the stream
    assert stdin.readline() == b"\n"
    assert stdin.readline() == b"next line\n"
    assert stdin.read(10) == b"rest"


def test_a_line_split_across_the_replay_boundary_is_joined() -> None:
    stdin = ReplayStdin(b"Content-Le", io.BytesIO(b"ngth: 2\r\n"))
    assert stdin.readline() == b"Content-Length: 2\r\n"


def test_read_message_returns_every_byte_read() -> None:
    body = {"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": {}}
    data = frame(body) + b"more"
    stream = io.BytesIO(data)
    raw, message = read_message(stream)
    assert message == body and raw + stream.read() == data


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage without header end", b"Content-Length: x\r\n\r\n{}", b"Content-Length: 5\r\n\r\nnot j"],
)
def test_read_message_gives_up_on_anything_odd_without_losing_bytes(data: bytes) -> None:
    stream = io.BytesIO(data)
    raw, message = read_message(stream)
    assert message is None and raw + stream.read() == data


def test_the_key_follows_capabilities_not_the_workspace() -> None:
    base = {"processId": 1, "rootUri": "file:///a", "capabilities": CAPS}
    moved = {"processId": 2, "rootUri": "file:///b", "workspaceFolders": [], "capabilities": CAPS}
    other = {**base, "capabilities": {**CAPS, "general": {"positionEncodings": ["utf-32"]}}}
    assert reply_key(base) == reply_key(moved)
    assert reply_key(base) != reply_key(other)


# ------------------------------------------------------------------ a real server


class Session:
    """A floe-lsp process over stdio, spoken to in raw JSON-RPC."""

    def __init__(self, cache_home: Path, cwd: Path) -> None:
        env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "floe_lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, cwd=cwd,
        )

    def send(self, body: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(frame(body))
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        _, message = read_message(self.proc.stdout)  # type: ignore[arg-type]
        assert message is not None, "server closed its output"
        return message

    def until(self, want: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Read until a message matches; also return everything read before it."""
        seen = []
        while True:
            message = self.receive()
            if want(message):
                return message, seen
            seen.append(message)

    def initialize(self, root: Path, caps: dict[str, Any]) -> dict[str, Any]:
        self.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": os.getpid(), "rootUri": uri(root), "capabilities": caps,
            "workspaceFolders": [{"uri": uri(root), "name": root.name}],
        }})
        return self.receive()

    def close(self) -> list[dict[str, Any]]:
        """Shut down; return what arrived before the shutdown reply."""
        self.send({"jsonrpc": "2.0", "id": 99, "method": "shutdown"})
        _, before = self.until(lambda m: m.get("id") == 99)
        self.send({"jsonrpc": "2.0", "method": "exit"})
        assert self.proc.wait(timeout=20) == 0
        return before


def _project(tmp_path: Path) -> Path:
    dest = tmp_path / "ws" / "customer-analytics"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("target", ".floe", "logs"))
    return dest


def _cached(cache_home: Path) -> list[Path]:
    return sorted((cache_home / "floe-runtime" / "initialize").glob("*.json"))


def test_a_second_start_is_answered_from_the_cache_and_works_fully(tmp_path: Path) -> None:
    project, cache_home = _project(tmp_path), tmp_path / "cache"
    first = Session(cache_home, project)
    reply = first.initialize(project.parent, CAPS)
    assert reply["id"] == 1 and reply["result"]["capabilities"]["completionProvider"]
    first.close()
    (stored,) = _cached(cache_home)
    assert json.loads(stored.read_text()) == reply["result"]

    # Mark the stored reply: only an answer served from the cache carries the mark.
    marked = {**reply["result"], "serverInfo": {"name": "floe-lsp", "version": "from-cache"}}
    stored.write_text(json.dumps(marked))
    floe = project / "floe.yaml"
    text = floe.read_text().replace("compute: default", "compute: nowhere")
    second = Session(cache_home, project)
    early = second.initialize(project.parent, CAPS)
    assert early == {"jsonrpc": "2.0", "id": 1, "result": marked}
    second.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    second.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri(floe), "languageId": "yaml", "version": 1, "text": text}}})
    published, before = second.until(
        lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri(floe)
        and m["params"]["diagnostics"]
    )
    assert "FLOE010" in {d["code"] for d in published["params"]["diagnostics"]}
    rest = second.close()
    # pygls's own reply to the same request was not sent a second time...
    assert not [m for m in before + rest if m.get("id") == 1]
    # ...and, as it differs from the marked one, it replaced it for the next start.
    assert json.loads(stored.read_text()) == reply["result"]


def test_other_capabilities_get_their_own_reply(tmp_path: Path) -> None:
    project, cache_home = _project(tmp_path), tmp_path / "cache"
    for encodings, expected in ((["utf-16"], "utf-16"), (["utf-32"], "utf-32"), (["utf-16"], "utf-16")):
        caps = {**CAPS, "general": {"positionEncodings": encodings}}
        session = Session(cache_home, project)
        reply = session.initialize(project.parent, caps)
        assert reply["result"]["capabilities"]["positionEncoding"] == expected
        session.close()
    assert len(_cached(cache_home)) == 2


def test_a_damaged_cache_entry_falls_back_to_the_ordinary_start(tmp_path: Path) -> None:
    project, cache_home = _project(tmp_path), tmp_path / "cache"
    first = Session(cache_home, project)
    reply = first.initialize(project.parent, CAPS)
    first.close()
    (stored,) = _cached(cache_home)
    stored.write_text("{not json")
    second = Session(cache_home, project)
    assert second.initialize(project.parent, CAPS) == reply
    second.close()
    assert json.loads(stored.read_text()) == reply["result"]


def test_a_first_message_other_than_initialize_reaches_pygls_untouched(tmp_path: Path) -> None:
    project, cache_home = _project(tmp_path), tmp_path / "cache"
    session = Session(cache_home, project)
    session.send({"jsonrpc": "2.0", "id": 5, "method": "textDocument/hover", "params": {
        "textDocument": {"uri": uri(project / "floe.yaml")}, "position": {"line": 0, "character": 0}}})
    answer = session.receive()
    assert answer["id"] == 5 and "error" in answer  # pygls: not initialized yet
    assert session.initialize(project.parent, CAPS)["result"]["capabilities"]
    session.close()
    assert _cached(cache_home) == []  # only an initialize that comes first is answered early
