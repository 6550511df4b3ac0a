"""Changes made on disk, outside the editor, for a client that cannot watch files.

Neovim on Linux announces no `workspace.didChangeWatchedFiles` dynamic registration,
so the server watches the floe files itself (floe_lsp/watch.py): a platform file
edited, added or deleted on disk re-checks the pipeline and updates the lenses, and
a `floe-runtime run` in a terminal puts its failures on their dbt lines (FLOE050).
"""

from __future__ import annotations

import asyncio
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import REPO, SERVER, capabilities, open_doc, start, uri, wait_for
from lsprotocol import types
from pytest_lsp import LanguageClient

from floe_lsp.lifecycle import WATCH_ID
from floe_lsp.watch import Watcher

pytestmark = pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning")

#: A staging environment that defines storage and catalog but no compute.
STAGING = """\
version: "1"
storage:
  default: {type: local, path: ./.floe/warehouse}
catalogs:
  default: {type: sql, uri: "sqlite:///.floe/catalog.db"}
"""
#: Seconds a change on disk may take to reach the client ("within a couple of seconds").
WITHIN = 3.0
#: A pipeline whose model `bad` selects a column that does not exist and whose test fails.
FAILING = REPO / "tests" / "runtime" / "projects" / "failing"
#: The longest a terminal run of FAILING may take on a loaded machine.
RUN_SECONDS = 300


def terminal_run(project: Path, env: str = "dev") -> tuple[int, str]:
    """`floe-runtime run --env ENV` typed in a terminal: the venv's script on a pseudo-terminal.

    Its exit code and what the terminal showed.
    """
    script = Path(sys.executable).parent / "floe-runtime"
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(script), "run", "--env", env],
        cwd=project,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")},
    )
    os.close(slave)
    shown = bytearray()
    deadline = time.monotonic() + RUN_SECONDS
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the run exited and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        else:
            proc.kill()
        return proc.wait(timeout=30), shown.decode("utf-8", "replace")
    finally:
        os.close(master)


def watching(client: LanguageClient) -> list[str]:
    """The server's log lines saying which folders it watches itself."""
    return [m.message for m in client.log_messages if "for changes on disk" in m.message]


@pytest_lsp.fixture(config=SERVER, params=["neovim"])  # type: ignore[untyped-decorator]
async def unwatched(
    lsp_client: LanguageClient, request: pytest.FixtureRequest, project: Path
) -> AsyncIterator[None]:
    """A server for Neovim's capabilities on Linux: no file watching by the client."""
    refreshes: list[str] = []
    lsp_client.floe_refreshes = refreshes  # type: ignore[attr-defined]

    @lsp_client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)  # type: ignore[untyped-decorator]
    def inlay_hint_refresh(params: None) -> None:
        refreshes.append(types.WORKSPACE_INLAY_HINT_REFRESH)

    await start(lsp_client, request.param, [project.parent])
    yield
    await lsp_client.shutdown_session()


async def lens_titles(client: LanguageClient, floe: Path) -> list[str]:
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri(floe)))
    )
    return [lens.command.title for lens in lenses or [] if lens.command is not None]


async def hover_on_compute(client: LanguageClient, floe: Path, text: str) -> str:
    line = text.split("\n").index("compute: default")
    result = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri(floe)),
            position=types.Position(line=line, character=len("compute: d")),
        )
    )
    assert result is not None and isinstance(result.contents, types.MarkupContent)
    return result.contents.value


def messages(client: LanguageClient, path: Path, code: str) -> list[str]:
    return [d.message for d in client.diagnostics.get(uri(path), []) if d.code == code]


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    """A fresh copy of FAILING, never run: it has no `.floe` folder yet."""
    dest = tmp_path / "ws" / "failing"
    shutil.copytree(FAILING, dest)
    return dest


@pytest_lsp.fixture(config=SERVER, params=["neovim"])  # type: ignore[untyped-decorator]
async def unwatched_failing(
    lsp_client: LanguageClient, request: pytest.FixtureRequest, failing: Path
) -> AsyncIterator[None]:
    """A server for Neovim's capabilities over FAILING's workspace."""
    await start(lsp_client, request.param, [failing.parent])
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
async def test_platform_files_changed_on_disk_reach_diagnostics_lenses_and_hover(
    unwatched: LanguageClient, project: Path
) -> None:
    client = unwatched
    workspace = capabilities("neovim").workspace
    assert workspace is not None and workspace.did_change_watched_files is not None
    assert not workspace.did_change_watched_files.dynamic_registration  # as Neovim on Linux
    await wait_for(lambda: bool(watching(client)), timeout=10, what="the server's own watch")
    assert watching(client) == [
        f"floe: watching {project.parent.resolve()} for changes on disk (inotify)"
    ]
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    await wait_for(lambda: uri(floe) in client.diagnostics, what="first diagnostics")
    assert "Run (staging)" not in await lens_titles(client, floe)

    # A new environment: platform/staging/platform.yaml without the compute profile.
    staging = project / "platform" / "staging" / "platform.yaml"
    staging.parent.mkdir()
    staging.write_text(STAGING)
    await wait_for(
        lambda: any("'staging'" in m for m in messages(client, floe, "FLOE010")),
        timeout=WITHIN,
        what="FLOE010 for the new staging environment",
    )
    assert "Run (staging)" in await lens_titles(client, floe)
    # Neovim re-asks for inlay hints (`→ duckdb (dev) · …`) when told to; it has no lens refresh.
    assert client.floe_refreshes  # type: ignore[attr-defined]
    assert "**staging**: ✗ not defined" in await hover_on_compute(client, floe, text)

    # An edit on disk to a platform file nobody has open.
    dev = project / "platform" / "dev" / "platform.yaml"
    dev.write_text(
        dev.read_text().replace("  default:\n    type: duckdb", "  local:\n    type: duckdb")
    )
    await wait_for(
        lambda: any("'dev'" in m for m in messages(client, floe, "FLOE010")),
        timeout=WITHIN,
        what="FLOE010 for dev after its compute profile was renamed on disk",
    )

    # The environment deleted: its findings, lens and hover line go at once.
    shutil.rmtree(staging.parent)
    await wait_for(
        lambda: not any("'staging'" in m for m in messages(client, floe, "FLOE010")),
        timeout=WITHIN,
        what="staging's FLOE010 to clear",
    )
    assert "Run (staging)" not in await lens_titles(client, floe)
    assert "staging" not in await hover_on_compute(client, floe, text)
    assert any("'dev'" in m for m in messages(client, floe, "FLOE010"))


@pytest.mark.asyncio
async def test_a_deleted_platform_file_takes_its_diagnostics_with_it(
    unwatched: LanguageClient, project: Path
) -> None:
    client = unwatched
    await wait_for(lambda: bool(watching(client)), timeout=10, what="the server's own watch")
    staging = project / "platform" / "staging" / "platform.yaml"
    staging.parent.mkdir()
    staging.write_text(STAGING + "storag: oops\n")
    await wait_for(
        lambda: bool(messages(client, staging, "FLOE003")),
        timeout=WITHIN,
        what="FLOE003 on the new platform file",
    )
    staging.unlink()
    await wait_for(
        lambda: len(client.diagnostics[uri(staging)]) == 0,
        timeout=WITHIN,
        what="the deleted file's diagnostics to be withdrawn",
    )


@pytest.mark.asyncio
async def test_a_new_pipeline_outside_the_workspace_folders_is_watched_once_opened(
    unwatched: LanguageClient, project: Path, tmp_path: Path
) -> None:
    client = unwatched
    await wait_for(lambda: bool(watching(client)), timeout=10, what="the server's own watch")
    other = tmp_path / "elsewhere" / "pipeline"
    shutil.copytree(project, other)
    open_doc(client, other / "floe.yaml")
    await wait_for(lambda: len(watching(client)) == 2, timeout=10, what="a second watched folder")
    assert watching(client)[1] == f"floe: watching {other.resolve()} for changes on disk (inotify)"
    dev = other / "platform" / "dev" / "platform.yaml"
    dev.write_text(dev.read_text() + "storag: oops\n")
    await wait_for(
        lambda: bool(messages(client, dev, "FLOE003")), timeout=WITHIN, what="FLOE003 on disk edit"
    )


@pytest.mark.asyncio
async def test_a_workspace_folder_added_later_is_watched(
    unwatched: LanguageClient, project: Path, tmp_path: Path
) -> None:
    client = unwatched
    await wait_for(lambda: bool(watching(client)), timeout=10, what="the server's own watch")
    added = tmp_path / "added"
    shutil.copytree(project, added / "pipeline")
    client.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(
                added=[types.WorkspaceFolder(uri=uri(added), name="added")], removed=[]
            )
        )
    )
    # The folder's pipeline may be seen (and watched) a moment before the folder itself.
    shown = f"floe: watching {added.resolve()} for changes on disk (inotify)"
    await wait_for(lambda: shown in watching(client), timeout=10, what="the added folder's watch")
    dev = added / "pipeline" / "platform" / "dev" / "platform.yaml"
    dev.write_text(dev.read_text() + "storag: oops\n")
    await wait_for(
        lambda: bool(messages(client, dev, "FLOE003")), timeout=WITHIN, what="FLOE003 on disk edit"
    )


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_terminal_run_reaches_a_client_that_cannot_watch(
    unwatched_failing: LanguageClient, failing: Path
) -> None:
    client, project = unwatched_failing, failing
    await wait_for(lambda: bool(watching(client)), timeout=10, what="the server's own watch")
    assert not (project / ".floe").exists()  # watching made no folder: the run makes it
    models = project / "dbt" / "models"
    bad, props = models / "bad.sql", models / "_models.yml"

    code, shown = await asyncio.to_thread(terminal_run, project)
    assert code == 1, shown
    assert "dbt/models/bad.sql:4" in shown  # the terminal's report (coloured: a tty)
    await wait_for(
        lambda: bool(messages(client, bad, "FLOE050")) and bool(messages(client, props, "FLOE050")),
        timeout=WITHIN,
        what="FLOE050 on bad.sql and _models.yml after the terminal run",
    )
    [failure] = [d for d in client.diagnostics[uri(bad)] if d.code == "FLOE050"]
    line = bad.read_text().split("\n").index("    no_such_column")
    assert failure.range.start == types.Position(line=line, character=4)
    assert failure.source == "floe run (dev)"
    assert "no_such_column" in failure.message
    assert uri(models / "fast.sql") not in client.diagnostics  # it built

    # Fixed on disk and run again: the passing run withdraws them.
    bad.write_text("select id\nfrom {{ ref('fast') }}\n")
    (models / "nulls.sql").write_text("select 1 as id\n")
    code, shown = await asyncio.to_thread(terminal_run, project)
    assert code == 0, shown
    await wait_for(
        lambda: all(len(client.diagnostics.get(uri(f), [None])) == 0 for f in (bad, props)),
        timeout=WITHIN,
        what="FLOE050 to clear after the passing terminal run",
    )


@pytest.mark.asyncio
async def test_only_a_client_that_cannot_watch_gets_the_servers_watcher(
    client: LanguageClient, project: Path
) -> None:
    floe = project / "floe.yaml"
    open_doc(client, floe)
    await wait_for(lambda: uri(floe) in client.diagnostics, what="diagnostics")
    registered = [
        r.method
        for r in client.floe_registrations  # type: ignore[attr-defined]
        if r.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES and r.id == WATCH_ID
    ]
    if client.floe_profile == "neovim":  # type: ignore[attr-defined]
        await wait_for(lambda: bool(watching(client)), timeout=10, what="the server's own watch")
        assert registered == []
    else:  # VS Code watches, and is asked to
        await asyncio.sleep(0.5)
        assert registered == [types.WORKSPACE_DID_CHANGE_WATCHED_FILES]
        assert watching(client) == []


# ------------------------------------------------------------------ the watcher on its own


@pytest.mark.parametrize("native", [True, False], ids=["inotify", "polling"])
@pytest.mark.asyncio
async def test_watcher_reports_floe_files_only_and_debounces(tmp_path: Path, native: bool) -> None:
    batches: list[list[tuple[Path, types.FileChangeType]]] = []
    root = tmp_path / "ws"
    pipeline = root / "pipe"
    (pipeline / "platform" / "dev").mkdir(parents=True)
    (pipeline / "floe.yaml").write_text("name: x\n")
    dev = pipeline / "platform" / "dev" / "platform.yaml"
    dev.write_text('version: "1"\n')
    known = [pipeline / "floe.yaml", dev]
    watcher = Watcher(asyncio.get_running_loop(), batches.append, lambda: known, native=native)
    try:
        kind = await asyncio.to_thread(watcher.cover, root)
        assert kind == ("inotify" if native else "polling")
        assert await asyncio.to_thread(watcher.cover, pipeline) is None  # already inside
        changed, created, deleted = (
            types.FileChangeType.Changed,
            types.FileChangeType.Created,
            types.FileChangeType.Deleted,
        )

        async def next_batch() -> list[tuple[Path, types.FileChangeType]]:
            await wait_for(lambda: bool(batches), timeout=WITHIN, what="a batch of changes")
            return batches.pop(0)

        # Written several times in a row: one batch, one change.
        for n in range(3):
            dev.write_text(f'version: "1"\n# {n}\n')
        (pipeline / "notes.yaml").write_text("ignored: true\n")
        (pipeline / "target").mkdir()
        (pipeline / "target" / "floe.yaml").write_text("build output\n")
        assert await next_batch() == [(dev, changed)]

        staging = pipeline / "platform" / "staging" / "platform.yaml"
        staging.parent.mkdir()
        staging.write_text('version: "1"\n')
        assert await next_batch() == [(staging, created)]

        known.append(staging)
        shutil.move(str(staging.parent), str(tmp_path / "gone"))  # out of the watched folder
        assert await next_batch() == [(staging, deleted)]
        await asyncio.sleep(0.3 if native else 1.5)
        assert batches == []
    finally:
        watcher.stop()


@pytest.mark.parametrize("native", [True, False], ids=["inotify", "polling"])
@pytest.mark.asyncio
async def test_watcher_reports_results_files_of_a_floe_folder_made_later(
    tmp_path: Path, native: bool
) -> None:
    batches: list[list[tuple[Path, types.FileChangeType]]] = []
    root = tmp_path / "ws"
    pipeline = root / "pipe"
    pipeline.mkdir(parents=True)
    (pipeline / "floe.yaml").write_text("name: x\n")
    vendored = root / "node_modules" / "pkg" / ".floe" / "runs"
    vendored.mkdir(parents=True)
    results = pipeline / ".floe" / "runs" / "dev.json"
    known = [pipeline / "floe.yaml", results]
    watcher = Watcher(asyncio.get_running_loop(), batches.append, lambda: known, native=native)
    created, deleted = types.FileChangeType.Created, types.FileChangeType.Deleted

    async def next_batch() -> list[tuple[Path, types.FileChangeType]]:
        await wait_for(lambda: bool(batches), timeout=WITHIN, what="a batch of changes")
        return batches.pop(0)

    def write_results(text: str) -> None:
        # As floe_runtime.runtime.results writes it: a temporary name, then replaced.
        tmp = results.parent / ".dev.json.abc123.tmp"
        tmp.write_text(text)
        os.replace(tmp, results)

    try:
        await asyncio.to_thread(watcher.cover, root)
        # A run makes `.floe` after the watching started, with more than results in it.
        warehouse = pipeline / ".floe" / "warehouse" / "ns"
        warehouse.mkdir(parents=True)
        (warehouse / "metadata.json").write_text("{}")
        (pipeline / ".floe" / "catalog.json").write_text("{}")
        (vendored / "dev.json").write_text("{}")  # a pruned folder's: not ours
        results.parent.mkdir()
        (results.parent / "notes.txt").write_text("not a results file\n")
        write_results('{"run": 1}')
        assert await next_batch() == [(results, created)]

        write_results('{"run": 2}')
        assert await next_batch() == [(results, created)]

        shutil.move(str(pipeline / ".floe"), str(tmp_path / "gone"))  # out of the watched folder
        assert await next_batch() == [(results, deleted)]
        await asyncio.sleep(0.3 if native else 1.5)
        assert batches == []
        assert not (pipeline / ".floe").exists()
    finally:
        watcher.stop()


def test_watchdog_is_not_loaded_before_initialized() -> None:
    # The `initialize` answer waits for nothing but pygls: watchdog loads with the watcher.
    probe = (
        "import sys; from floe_lsp.server import create_server; create_server(); "
        "import floe_lsp.lifecycle; print('watchdog' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
