"""Start-up over stdio: pygls answers `initialize` itself, and nothing is cached between starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def _frame(body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    return b"Content-Length: %d\r\n\r\n" % len(data) + data


def _replies(out: bytes) -> list[dict[str, Any]]:
    """Every framed message a server wrote."""
    messages = []
    while out:
        head, sep, rest = out.partition(b"\r\n\r\n")
        assert sep, f"unframed output: {out[:80]!r}"
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        messages.append(json.loads(rest[:length]))
        out = rest[length:]
    return messages


def _initialize(capabilities: dict[str, Any], home: Path) -> dict[str, Any]:
    """Start `floe-lsp` on stdio with an empty home, initialize, shut down; the initialize result."""
    stdin = b"".join(
        [
            _frame(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {"processId": None, "rootUri": None, "capabilities": capabilities},
                }
            ),
            _frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
            _frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}),
            _frame({"jsonrpc": "2.0", "method": "exit"}),
        ]
    )
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "floe_lsp"],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=home,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    replies = {m["id"]: m for m in _replies(proc.stdout) if "id" in m and "method" not in m}
    assert set(replies) == {1, 2}, replies  # one reply per request: nothing answered twice
    result = replies[1]["result"]
    assert isinstance(result, dict)
    return result


PULL = {
    "textDocument": {"diagnostic": {"dynamicRegistration": False}},
    "workspace": {"diagnostics": {"refreshSupport": True}},
}


@pytest.mark.parametrize(
    ("capabilities", "pull"),
    [
        ({}, False),
        (
            {"textDocument": {"diagnostic": {"dynamicRegistration": False}}},
            False,
        ),  # pull without refresh
        (PULL, True),
    ],
)
def test_pull_diagnostics_are_offered_only_to_clients_that_pull_and_refresh(
    tmp_path: Path, capabilities: dict[str, Any], pull: bool
) -> None:
    caps = _initialize(capabilities, tmp_path)["capabilities"]
    assert ("diagnosticProvider" in caps) is pull
    if pull:
        assert caps["diagnosticProvider"]["identifier"] == "floe"
        assert caps["diagnosticProvider"]["interFileDependencies"] is True
    assert caps["completionProvider"]["triggerCharacters"] == [":", " ", "/", "."]
    assert caps["textDocumentSync"]["change"] == 2  # incremental


def test_start_up_writes_nothing_and_the_second_start_answers_the_same(tmp_path: Path) -> None:
    first = _initialize(PULL, tmp_path)
    assert (
        sorted(p.name for p in tmp_path.rglob("*")) == []
    )  # no cache, no code, no state left behind
    assert _initialize(PULL, tmp_path) == first
    assert first["serverInfo"]["name"] == "floe-lsp"


def test_a_cache_folder_from_an_older_version_is_never_read(tmp_path: Path) -> None:
    # What the removed start-up caches left behind: a start must neither run nor answer from it.
    old = tmp_path / ".cache" / "floe-runtime"
    (old / "initialize").mkdir(parents=True)
    (old / "initialize" / ("0" * 32 + ".json")).write_text('{"capabilities": {"bogus": true}}')
    (old / "attrs-code-0-cpython-311.marshal").write_bytes(b"\x00not code")
    caps = _initialize({}, tmp_path)["capabilities"]
    assert "bogus" not in caps and "hoverProvider" in caps
