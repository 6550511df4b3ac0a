"""The server process: entry points, TCP, what it imports, agreement with `floe-runtime validate`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lsp_helpers import codes, open_doc, pos, uri, wait_for
from pytest_lsp import LanguageClient

pytestmark = pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning")

HEAVY = {"dagster", "dbt", "pyiceberg", "pyarrow", "dagster_dbt"}


def test_server_never_imports_the_runtime(project: Path) -> None:
    # Every feature module loaded and a real analysis run, in a fresh interpreter.
    code = f"""
import sys, importlib
from pathlib import Path
from floe_lsp.server import FEATURES, create_server
server = create_server()
for _, _, target in FEATURES:
    importlib.import_module("floe_lsp." + target.split(":")[0])
server.state.scan([Path({str(project)!r})])
for project in server.state.all_projects():
    server.state.analysis(project)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {sorted(HEAVY)!r})
print(len(server.state.projects), heavy)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "1 []"


def test_start_up_does_not_load_the_engine() -> None:
    code = (
        "import sys; from floe_lsp.server import create_server; create_server(); "
        "print(any(m.startswith('floe_runtime') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_entry_points_show_help() -> None:
    for cmd in (
        [sys.executable, "-m", "floe_lsp", "--help"],
        [sys.executable, "-m", "floe_runtime", "lsp", "--help"],
    ):
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        assert "--tcp HOST:PORT" in out
    for front in (["floe_lsp"], ["floe_runtime", "lsp"]):
        bad = subprocess.run(
            [sys.executable, "-m", *front, "--tcp", "nope"], capture_output=True, text=True
        )
        assert bad.returncode == 2 and "HOST:PORT" in bad.stderr and "Traceback" not in bad.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_tcp_transport() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "floe_lsp", "--tcp", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"processId": None, "rootUri": None, "capabilities": {}},
            }
        ).encode()
        sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        while len(rest) < length:
            rest += sock.recv(65536)
        reply = json.loads(rest[:length])
        caps = reply["result"]["capabilities"]
        assert caps["positionEncoding"] == "utf-16"
        assert caps["completionProvider"]["triggerCharacters"] == [":", " ", "/", "."]
        assert caps["renameProvider"]
        assert "diagnosticProvider" not in caps  # no pull support announced → push
        sock.close()
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.asyncio
async def test_same_findings_as_validate(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    prod = project / "platform" / "prod" / "platform.yaml"
    floe.write_text(
        floe.read_text()
        .replace("catalog: default", "catalog: lake")
        .replace("  timezone:", "  tz:")
    )
    prod.write_text(
        prod.read_text().replace("password: {secret_ref: pg-password}", "password: s3cr3t")
    )
    texts = {floe: open_doc(client, floe), prod: open_doc(client, prod)}
    await wait_for(
        lambda: "FLOE003" in codes(client, floe) and "FLOE020" in codes(client, prod), what="diags"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "floe_runtime", "validate", str(project), "--format", "json"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stderr
    expected = json.loads(proc.stdout)
    assert expected
    for path in (floe, prod):
        want = sorted(
            (
                d["code"],
                d["range"]["start"]["line"],
                d["range"]["start"]["character"],
                d["range"]["end"]["line"],
                d["range"]["end"]["character"],
                d["message"],
            )
            for d in expected
            if Path(d["file"]).resolve() == path.resolve()
        )
        text = texts[path]
        got = []
        for d in client.diagnostics[uri(path)]:
            got.append(
                (
                    str(d.code),
                    d.range.start.line,
                    d.range.start.character,
                    d.range.end.line,
                    d.range.end.character,
                    d.message,
                )
            )
        # validate counts code points; the client gets its own encoding (same here: ASCII).
        assert all(pos(client, text, w[1], w[2]).character == w[2] for w in want)
        assert sorted(got) == want
