"""The VS Code extension end to end in a real VS Code: code-server 4.100.3 driven by Playwright.

The session installs code-server and playwright-core once into ~/.cache/floe-runtime-ci
(scripts/install-vscode-test-deps.sh) and builds editors/vscode/floe.vsix (`make vsix`), then
installs the .vsix into a code-server with its own user-data dir and opens a copy of the example
set up as the README tells a user: floe-runtime installed in the workspace's `.venv`. The test's
`.venv` is a symlink to this checkout's venv (which is such an installation: `.venv/bin/floe-lsp`
and `.venv/bin/python` with floe-runtime and its dependencies); PATH holds no floe-lsp and no
setting is given, so the extension must find the server in the workspace on its own.

A third session installs, beside the .vsix, a stand-in for the Python extension
(tests/vscode/python-standin: the documented `@vscode/python-extension` environments API only, the
real extension cannot be installed here) and a workspace without `.venv`: the server must come from
the interpreter that extension reports, and restart when another is selected.

drive.js stops at named checkpoints; the test then looks at the processes and files (the run's
dbt process, the server's interpreter, the catalog) before letting it go on.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sysconfig
import threading
import time
import venv
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import vscode_test_deps
from tests.runtime.conftest import REPO, copy_example

pytestmark = [pytest.mark.vscode, pytest.mark.slow]

DRIVER = Path(__file__).with_name("drive.js")
STANDIN = Path(__file__).with_name("python-standin")
VSIX = REPO / "editors" / "vscode" / "floe.vsix"
VSCE = REPO / "editors" / "vscode" / "node_modules" / ".bin" / "vsce"
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


@pytest.fixture(scope="session")
def standin_vsix(vsix: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/vscode/python-standin packaged with the extension's own vsce (after `make vsix`)."""
    out = tmp_path_factory.mktemp("standin") / "ms-python-standin.vsix"
    done = subprocess.run(
        [
            str(VSCE),
            "package",
            "--no-dependencies",
            "--allow-missing-repository",
            "--skip-license",
            "-o",
            str(out),
        ],
        cwd=STANDIN,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and out.is_file(), done.stdout + done.stderr
    return out


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


def _processes() -> dict[int, tuple[int, list[str]]]:
    """pid → (parent pid, argv) of every process, read from /proc."""
    found: dict[int, tuple[int, list[str]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:  # it ended meanwhile
            continue
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        found[int(stat.parent.name)] = (ppid, [a.decode(errors="replace") for a in argv if a])
    return found


def _dbt_processes(project: Path) -> list[int]:
    """dbt processes working for `project`, wherever they were re-parented (orphans included).

    Known by the DBT_PROJECT_DIR the runtime gives each dbt invocation, not by argv (dbt may run
    as `dbt ...` or `python -c ...`).
    """
    want = f"DBT_PROJECT_DIR={project}".encode()
    found = []
    for pid in _processes():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(var.startswith(want) for var in environ):
            found.append(pid)
    return found


def _wait(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


class CodeServer:
    def __init__(
        self,
        cs: Path,
        extensions: Sequence[Path],
        home: Path,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
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
                    **(settings or {}),
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
        installs = [arg for ext in extensions for arg in ("--install-extension", str(ext))]
        done = subprocess.run(
            [str(self.bin), *self.common, *installs],
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

    def drive(
        self,
        folder: Path,
        mode: str,
        shots: Path,
        checkpoints: Mapping[str, Callable[[], None]] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Run drive.js; at each checkpoint it names, call that check, then let it go on.

        A failing check aborts the drive (the browser closes) and is raised afterwards.
        """
        proc = subprocess.Popen(
            [
                "node",
                str(DRIVER),
                f"http://127.0.0.1:{self.port}/?folder={folder}",
                mode,
                str(shots),
            ],
            env={**os.environ, "PLAYWRIGHT_CORE": str(self.playwright), **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(shots / f"drive-{mode}.log").open("w"),
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        watchdog = threading.Timer(900, proc.kill)
        watchdog.start()
        failure: BaseException | None = None
        last = ""
        try:
            for line in proc.stdout:
                message = json.loads(line) if line.startswith("{") else {}
                name = message.get("checkpoint")
                if name is None:
                    last = line if line.strip() else last
                    continue
                reply = "ok"
                try:
                    (checkpoints or {})[name]()
                except BaseException as exc:  # reported after the browser has closed
                    failure, reply = exc, f"abort: {exc!r}".replace("\n", " ")
                proc.stdin.write(reply + "\n")
                proc.stdin.flush()
            proc.wait(60)
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
        if failure is not None:
            raise failure
        assert last.strip(), (shots / f"drive-{mode}.log").read_text()
        seen: dict[str, Any] = json.loads(last)
        return seen

    def server_processes(self) -> list[list[str]]:
        """argv of every process below code-server (the extension host's children included)."""
        procs = _processes()
        below, queue = [], [self.proc.pid]
        while queue:
            parent = queue.pop()
            for pid, (ppid, argv) in procs.items():
                if ppid == parent:
                    below.append(argv)
                    queue.append(pid)
        return below

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
    server = CodeServer(code_server, [vsix], tmp_path / "code-server")
    yield server
    server.stop()


def _catalog_tables(project: Path) -> set[str]:
    """The tables of the dev catalog's `analytics` namespace (none before anything published)."""
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.exceptions import NoSuchNamespaceError

    if not (project / ".floe" / "catalog.db").exists():
        return set()
    catalog = SqlCatalog(
        "default",
        uri=f"sqlite:///{project / '.floe' / 'catalog.db'}",
        warehouse=(project / ".floe" / "warehouse").as_uri(),
    )
    try:
        return {t[-1] for t in catalog.list_tables("analytics")}
    except NoSuchNamespaceError:
        return set()


# A Python model that holds the run in its dbt process (saying so in a file), so that Cancel
# meets a dbt that is busy and silent: a dbt that still logs would die of the closed pipe anyway.
HOLD_MODEL = """import pathlib
import time


def model(dbt, session):
    pathlib.Path({marker!r}).touch()
    time.sleep(600)
    return session.sql("select 1 as held")
"""


class CancelChecks:
    """The checkpoints of the Run → Cancel step for `project`."""

    def __init__(self, project: Path, server: CodeServer) -> None:
        self.project = project
        self.server = server
        self.model = project / "dbt" / "models" / "hold_run.py"
        self.marker = project / "held"
        self.dbt: list[int] = []

    def hold_run(self) -> None:
        self.model.write_text(HOLD_MODEL.format(marker=str(self.marker)))

    def runs(self) -> list[list[str]]:
        """The server's runs: `floe_runtime run` processes, or forks of the warm runner
        (they keep its command line; the runner itself is the first of them)."""
        processes = self.server.server_processes()
        cold = [a for a in processes if a[1:4] == ["-m", "floe_runtime", "run"]]
        warm = [a for a in processes if a[1:3] == ["-m", "floe_runtime.runtime.warm"]]
        return cold + warm[1:]

    def run_started(self) -> None:
        assert _wait(self.marker.exists, 240), "the run never reached the holding model"
        self.dbt = _dbt_processes(self.project)
        assert self.dbt, "no dbt process runs the holding model"
        assert self.runs(), self.server.server_processes()

    def run_cancelled(self) -> None:
        self.model.unlink()  # the next run is not held
        assert _wait(lambda: not self.runs(), 15), f"the cancelled run goes on: {self.runs()}"
        gone = _wait(lambda: not _dbt_processes(self.project), 15)
        left = _dbt_processes(self.project)
        for pid in left:  # leave nothing running for the next step and the next test
            os.kill(pid, 9)
        assert gone, f"dbt processes {left} of the cancelled run (started as {self.dbt}) survived"
        assert _catalog_tables(self.project) == set(), "the cancelled run published tables"


def test_extension_in_code_server(vscode: CodeServer, tmp_path: Path) -> None:
    project = copy_example(tmp_path / "customer-analytics")
    (project / ".venv").symlink_to(REPO / ".venv", target_is_directory=True)
    shots = tmp_path / "shots"
    shots.mkdir()
    cancel = CancelChecks(project, vscode)
    seen = vscode.drive(
        project,
        "full",
        shots,
        {
            "hold-run": cancel.hold_run,
            "run-started": cancel.run_started,
            "run-cancelled": cancel.run_cancelled,
        },
    )
    log = vscode.floe_log()
    # The README's screenshots are refreshed on request only: a test run leaves the tree clean.
    for name in ("vscode-diagnostic.png", "vscode-lineage.png"):
        if os.environ.get("FLOE_UPDATE_SCREENSHOTS") and (shots / name).is_file():
            SHOTS.mkdir(exist_ok=True)
            shutil.copy(shots / name, SHOTS / name)
    print("seen:", json.dumps(seen), "\nfloe log:\n", log)
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
    # Cancel in the run's notification: the notification went, the server said so (and the
    # checkpoints saw no dbt left and nothing published).
    assert "floe run (dev) cancelled" in seen["cancelled"], seen["cancelled"]
    assert seen["progressAfterCancel"] == 0
    # Run from the palette: cancellable progress, then tables in the catalog.
    assert seen["progressCancellable"] is True
    assert "succeeded" in seen["run"], seen["run"]
    assert {"customer_orders", "customer_revenue", "orders"} <= _catalog_tables(project)
    # Open Lineage: a webview with the models.
    assert set(seen["lineageNames"]) >= MODELS, seen["lineageNames"]
    # Its `orders` node opened that model's .sql in the editor.
    sql = project / "dbt" / "models" / "marts" / "orders.sql"
    opened = [part.strip() for part in seen["openedPath"]]
    assert opened[:4] == ["dbt", "models", "marts", "orders.sql"], seen["openedPath"]
    first = sql.read_text().splitlines()[0]
    assert seen["openedText"].replace("\u00a0", " ").startswith(first), seen["openedText"]


def test_missing_server_is_one_notification(vscode: CodeServer, tmp_path: Path) -> None:
    project = copy_example(tmp_path / "no-server")
    seen = vscode.drive(project, "missing", tmp_path)
    assert "error" not in seen, seen["error"]
    text = seen["missing"]["text"]
    assert "floe-lsp was not found" in text
    assert "floe.server.command: not set" in text and "floe-lsp on PATH: not found" in text
    assert f"{project}/.venv/bin/floe-lsp: not found" in text
    assert {"Select interpreter", "Open settings", "Show output"} <= set(seen["missing"]["buttons"])


def _second_interpreter(dest: Path) -> Path:
    """A second virtual environment that reaches this checkout's packages (via a .pth file)."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(dest)
    python = dest / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]  # this venv's: floe-runtime and its dependencies
    Path(site, "floe-checkout.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def test_python_extension_interpreter_restart_and_task(
    code_server: Path, vsix: Path, standin_vsix: Path, tmp_path: Path
) -> None:
    project = copy_example(tmp_path / "py-workspace")  # no .venv, no setting, none on PATH
    floe_yaml = project / "floe.yaml"
    floe_yaml.write_text(floe_yaml.read_text().replace("catalog: default", "catalog: defualt"))
    (project / ".vscode").mkdir()
    (project / ".vscode" / "tasks.json").write_text(
        json.dumps(
            {
                "version": "2.0.0",
                "tasks": [{"type": "floe", "command": "validate", "label": "floe validate"}],
            }
        )
    )
    first = REPO / ".venv" / "bin" / "python"
    other = _second_interpreter(tmp_path / "other-venv")
    server = CodeServer(
        code_server,
        [vsix, standin_vsix],
        tmp_path / "code-server",
        {"python.defaultInterpreterPath": str(first)},
    )

    def runs(python: Path) -> bool:
        return [str(python), "-m", "floe_lsp"] in server.server_processes()

    def started() -> None:
        line = f"starting {first} -m floe_lsp (found via Python interpreter {first})"
        assert _wait(lambda: line in server.floe_log() and runs(first), 30), server.floe_log()

    def changed() -> None:
        line = f"starting {other} -m floe_lsp (found via Python interpreter {other})"

        def restarted() -> bool:
            log = server.floe_log()
            return line in log and "server ready" in log.split(line)[1]

        assert _wait(lambda: restarted() and runs(other) and not runs(first), 60), (
            server.floe_log(),
            server.server_processes(),
        )

    shots = tmp_path / "shots"
    shots.mkdir()
    try:
        seen = server.drive(
            project,
            "python",
            shots,
            {"server-started": started, "interpreter-changed": changed},
            env={"FLOE_OTHER_PYTHON": str(other)},
        )
    finally:
        server.stop()
    print("seen:", json.dumps(seen), "\nfloe log:\n", server.floe_log())
    assert "error" not in seen, f"{seen['error']}\n{json.dumps(seen, indent=1)}"
    # The tasks.json task's output went through the problem matcher into the Problems panel,
    # beside (not instead of) the server's own entry for the same typo.
    rows = [row.split("\n") for row in seen["taskProblems"]]
    assert any("floe-runtime" in r and "FLOE010" in r and "defualt" in r[0] for r in rows), rows
    assert any("floe" in r and "FLOE010" in r for r in rows), rows
    # After the restart the new server reports the typo again.
    assert any("floe" in row.split("\n") for row in seen["problemsAfterRestart"])
