"""The VS Code extension end to end in a real VS Code: code-server 4.100.3 driven by Playwright.

The session installs code-server and playwright-core once into ~/.cache/floe-runtime-ci
(scripts/install-vscode-test-deps.sh) and builds editors/vscode/floe.vsix (`make vsix`), then
installs the .vsix into a code-server with its own user-data dir and opens a copy of the example
set up as the README tells a user: floe-runtime installed in the workspace's `.venv`. The test's
`.venv` is a symlink to this checkout's venv (which is such an installation: `.venv/bin/floe-lsp`
and `.venv/bin/python` with floe-runtime and its dependencies); PATH holds no floe-lsp and no
setting is given, so the extension must find the server in the workspace on its own.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import vscode_test_deps
from tests.runtime.conftest import REPO, copy_example

pytestmark = [pytest.mark.vscode, pytest.mark.slow]

DRIVER = Path(__file__).with_name("drive.js")
VSIX = REPO / "editors" / "vscode" / "floe.vsix"
SHOTS = REPO / "docs"
MODELS = {
    "stg_customers",
    "stg_orders",
    "stg_payments",
    "customer_orders",
    "customer_revenue",
    "orders",
}


@pytest.fixture(scope="session")
def code_server() -> Path:
    """The cached code-server install (installed on first use, outside the repository)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the VS Code test (apt-get install nodejs npm)")
    return vscode_test_deps()


@pytest.fixture(scope="session")
def vsix() -> Path:
    done = subprocess.run(
        ["make", "-s", "vsix"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert VSIX.is_file()
    return VSIX


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_path() -> str:
    """PATH without any directory that holds floe-lsp or floe-runtime."""
    dirs = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    return os.pathsep.join(
        d
        for d in dirs
        if d and not (Path(d) / "floe-lsp").exists() and not (Path(d) / "floe-runtime").exists()
    )


class CodeServer:
    def __init__(self, cs: Path, vsix: Path, home: Path) -> None:
        self.bin = cs / "node_modules" / ".bin" / "code-server"
        self.playwright = cs / "node_modules" / "playwright-core"
        self.home = home
        self.port = _free_port()
        (home / "user" / "User").mkdir(parents=True)
        (home / "ext").mkdir()
        (home / "user" / "User" / "settings.json").write_text(
            json.dumps(
                {
                    "security.workspace.trust.enabled": False,
                    "workbench.startupEditor": "none",
                    "telemetry.telemetryLevel": "off",
                    "update.mode": "none",
                    "workbench.tips.enabled": False,
                    "extensions.ignoreRecommendations": True,
                    # Lines are read as text from the DOM: a hint still showing the value just
                    # deleted (VS Code keeps it until the next reply) would read as line text.
                    "editor.inlayHints.enabled": "off",
                }
            )
        )
        (home / "config.yaml").write_text(
            f"bind-addr: 127.0.0.1:{self.port}\nauth: none\ncert: false\n"
        )
        self.env = {
            **os.environ,
            "PATH": _clean_path(),
            "XDG_CONFIG_HOME": str(home / "xdg"),
            "XDG_DATA_HOME": str(home / "xdg-data"),
        }
        self.env.pop("VIRTUAL_ENV", None)
        self.common = [
            "--config",
            str(home / "config.yaml"),
            "--user-data-dir",
            str(home / "user"),
            "--extensions-dir",
            str(home / "ext"),
        ]
        done = subprocess.run(
            [str(self.bin), *self.common, "--install-extension", str(vsix)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0 and "floe" in (done.stdout + done.stderr), (
            done.stdout + done.stderr
        )
        self.proc = subprocess.Popen(
            [
                str(self.bin),
                *self.common,
                "--disable-telemetry",
                "--disable-update-check",
                "--disable-workspace-trust",
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=(home / "code-server.log").open("w"),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("code-server did not listen")

    def drive(self, folder: Path, mode: str, shots: Path) -> dict[str, Any]:
        done = subprocess.run(
            [
                "node",
                str(DRIVER),
                f"http://127.0.0.1:{self.port}/?folder={folder}",
                mode,
                str(shots),
            ],
            env={**os.environ, "PLAYWRIGHT_CORE": str(self.playwright)},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.stdout.strip(), done.stderr
        seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return seen

    def floe_log(self) -> str:
        """The Floe output channel, as VS Code persists it under the user-data dir."""
        return "\n".join(p.read_text() for p in (self.home / "user" / "logs").rglob("*Floe.log"))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def vscode(code_server: Path, vsix: Path, tmp_path: Path) -> Iterator[CodeServer]:
    server = CodeServer(code_server, vsix, tmp_path / "code-server")
    yield server
    server.stop()


def _catalog_tables(project: Path) -> set[str]:
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(
        "default",
        uri=f"sqlite:///{project / '.floe' / 'catalog.db'}",
        warehouse=(project / ".floe" / "warehouse").as_uri(),
    )
    return {t[-1] for t in catalog.list_tables("analytics")}


def test_extension_in_code_server(vscode: CodeServer, tmp_path: Path) -> None:
    project = copy_example(tmp_path / "customer-analytics")
    (project / ".venv").symlink_to(REPO / ".venv", target_is_directory=True)
    shots = tmp_path / "shots"
    shots.mkdir()
    seen = vscode.drive(project, "full", shots)
    log = vscode.floe_log()
    # The README's screenshots are refreshed on request only: a test run leaves the tree clean.
    for name in ("vscode-diagnostic.png", "vscode-lineage.png"):
        if os.environ.get("FLOE_UPDATE_SCREENSHOTS") and (shots / name).is_file():
            SHOTS.mkdir(exist_ok=True)
            shutil.copy(shots / name, SHOTS / name)
    print("steps:", json.dumps(seen.get("steps")), "\nfloe log:\n", log)
    assert "error" not in seen, f"{seen['error']}\n{json.dumps(seen, indent=1)}\n{log}"
    # Found the server in the workspace .venv without settings.
    assert f"found via workspace venv ({project}/.venv/bin/floe-lsp)" in log
    assert "first diagnostics" in log
    assert "Compile (dev)" in seen["lenses"] and "Run (prod)" in seen["lenses"]
    # Completion after `catalog: ` lists the profile names.
    assert seen["line7Blank"].rstrip() == "catalog:"
    assert any(row.startswith("default") for row in seen["completion"]), seen["completion"]
    # The typo: squiggle, Problems entry FLOE010.
    assert any("FLOE010" in row and "defualt" in row for row in seen["problems"]), seen["problems"]
    # Hover: each environment's profile.
    assert "dev" in seen["hover"] and "prod" in seen["hover"], seen["hover"]
    # Quick fix replaced the typo.
    assert seen["line7Fixed"].startswith("catalog: default"), seen[
        "line7Fixed"
    ]  # then the inlay hint
    assert (project / "floe.yaml").read_text().count("catalog: default") == 1
    # Compile lens wrote the artifacts.
    assert "succeeded" in seen["compile"], seen["compile"]
    artifacts = json.loads((project / "target" / "floe" / "compiled_artifacts.json").read_text())
    assert artifacts["environment"] == "dev"
    # Status bar switched environment; the lenses followed.
    assert seen["statusBefore"].strip().startswith("floe: all")
    assert "Run (prod)" in seen["lensesProd"] and "Run (dev)" not in seen["lensesProd"]
    assert seen["statusAfter"].strip() == "floe: dev"
    # Run from the palette: cancellable progress, then tables in the catalog.
    assert seen["progressCancellable"] is True
    assert "succeeded" in seen["run"], seen["run"]
    assert {"customer_orders", "customer_revenue", "orders"} <= _catalog_tables(project)
    # Open Lineage: a webview with the models.
    assert set(seen["lineageNames"]) >= MODELS, seen["lineageNames"]


def test_missing_server_is_one_notification(vscode: CodeServer, tmp_path: Path) -> None:
    project = copy_example(tmp_path / "no-server")
    seen = vscode.drive(project, "missing", tmp_path)
    assert "error" not in seen, seen["error"]
    text = seen["missing"]["text"]
    assert "floe-lsp was not found" in text
    assert "floe.server.command: not set" in text and "floe-lsp on PATH: not found" in text
    assert f"{project}/.venv/bin/floe-lsp: not found" in text
    assert {"Select interpreter", "Open settings", "Show output"} <= set(seen["missing"]["buttons"])
