"""Run results in the editor: FLOE050 on the dbt lines that failed, the last run as a lens.

Real runs of tests/runtime/projects/failing (a model selecting a column that does
not exist, a not_null test on a null): from a terminal before the editor starts,
from the editor's floe.run, then a passing terminal run that clears them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsp_helpers import PROFILES, REPO, SERVER, open_doc, start, uri, wait_for
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.slow,
    pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning"),
]

FAILING = REPO / "tests" / "runtime" / "projects" / "failing"


def terminal_run(project: Path) -> subprocess.CompletedProcess[str]:
    """`floe-runtime run --env dev` in the project, as typed in a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "floe_runtime", "run", "--env", "dev"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The failing project after a failed terminal run (exit 1)."""
    project = tmp_path_factory.mktemp("failed") / "failing"
    shutil.copytree(FAILING, project)
    proc = terminal_run(project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (project / ".floe" / "runs" / "dev.json").is_file()
    return project


@pytest.fixture
def after_failed_run(failed_run: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "ws" / "failing"
    shutil.copytree(failed_run, dest)
    return dest


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    dest = tmp_path / "ws" / "failing"
    shutil.copytree(FAILING, dest)
    return dest


@pytest_lsp.fixture(config=SERVER, params=PROFILES)  # type: ignore[untyped-decorator]
async def started_after_run(
    lsp_client: LanguageClient, request: pytest.FixtureRequest, after_failed_run: Path
) -> AsyncIterator[LanguageClient]:
    """An editor opened on the project after the failed terminal run."""
    await start(lsp_client, request.param, [after_failed_run.parent])
    yield lsp_client
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=SERVER)  # type: ignore[untyped-decorator]
async def vscode(lsp_client: LanguageClient, fresh: Path) -> AsyncIterator[LanguageClient]:
    """A VS Code-like client (it watches files when asked to) on a project never run."""
    refreshes: list[None] = []
    lsp_client.floe_lens_refreshes = refreshes  # type: ignore[attr-defined]

    @lsp_client.feature(types.WORKSPACE_CODE_LENS_REFRESH)  # type: ignore[untyped-decorator]
    def code_lens_refresh(params: None) -> None:
        refreshes.append(params)

    await start(lsp_client, "visual-studio-code", [fresh.parent])
    yield lsp_client
    await lsp_client.shutdown_session()


def _line_of(path: Path, text: str, nth: int = 0) -> int:
    hits = [i for i, line in enumerate(path.read_text().split("\n")) if line.strip() == text]
    return hits[nth]


def _failures(client: LanguageClient, path: Path) -> list[types.Diagnostic]:
    return [d for d in client.diagnostics.get(uri(path), []) if d.code == "FLOE050"]


async def _lens_titles(client: LanguageClient, floe: Path) -> list[str]:
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri(floe)))
    )
    return [lens.command.title for lens in lenses or [] if lens.command]


async def _assert_failures_shown(client: LanguageClient, project: Path) -> None:
    models = project / "dbt" / "models"
    bad, props = models / "bad.sql", models / "_models.yml"
    await wait_for(
        lambda: bool(_failures(client, bad)) and bool(_failures(client, props)),
        timeout=10,
        what="FLOE050 on bad.sql and _models.yml",
    )
    [model] = _failures(client, bad)
    # dbt blames line 13 of the SQL it ran; the source line with that text is line 4.
    line = _line_of(bad, "no_such_column")
    assert model.range.start == types.Position(line=line, character=4)
    assert model.range.end == types.Position(line=line, character=len("    no_such_column"))
    assert model.severity == types.DiagnosticSeverity.Error
    assert model.source == "floe run (dev)"
    assert "Binder Error" in model.message and "no_such_column" in model.message
    assert "LINE 13" in model.message
    [test] = _failures(client, props)
    assert test.range.start.line == _line_of(props, "data_tests: [not_null]", nth=1)
    assert "not_null_nulls_id" in test.message and "Got 1 result" in test.message
    for passed in ("fast.sql", "nulls.sql"):
        assert _failures(client, models / passed) == []


async def test_a_terminal_run_s_failures_show_when_the_editor_starts(
    started_after_run: LanguageClient, after_failed_run: Path
) -> None:
    client, project = started_after_run, after_failed_run
    await _assert_failures_shown(client, project)  # no dbt file was ever opened
    floe = project / "floe.yaml"
    open_doc(client, floe)
    titles = await _lens_titles(client, floe)
    assert titles == ["Compile (dev)", "Run (dev)", "✗ dev · 2 failed", "Open lineage"]


async def test_editor_run_shows_failures_and_a_passing_terminal_run_clears_them(
    vscode: LanguageClient, fresh: Path
) -> None:
    client, project = vscode, fresh
    registrations: list[types.Registration] = client.floe_registrations  # type: ignore[attr-defined]
    await wait_for(
        lambda: any(r.id == "floe-watch-run-results" for r in registrations),
        what="the results files' watcher",
    )
    watchers: Any = next(
        r for r in registrations if r.id == "floe-watch-run-results"
    ).register_options
    assert [w["globPattern"] for w in watchers["watchers"]] == ["**/.floe/runs/*.json"]
    floe = project / "floe.yaml"
    open_doc(client, floe)
    assert await _lens_titles(client, floe) == ["Compile (dev)", "Run (dev)", "Open lineage"]
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="floe.run", arguments=[uri(floe), "dev"])
    )
    assert result is not None and result["exitCode"] == 1, result
    await _assert_failures_shown(client, project)
    assert "✗ dev · 2 failed" in await _lens_titles(client, floe)
    await wait_for(lambda: len(client.floe_lens_refreshes) >= 1, what="codeLens/refresh")  # type: ignore[attr-defined]

    models = project / "dbt" / "models"
    (models / "bad.sql").write_text("select id\nfrom {{ ref('fast') }}\n")
    (models / "nulls.sql").write_text("select 1 as id\n")
    proc = terminal_run(project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # What a watching client sends for the glob it was given.
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[
                types.FileEvent(
                    uri=uri(project / ".floe" / "runs" / "dev.json"),
                    type=types.FileChangeType.Changed,
                )
            ]
        )
    )
    await wait_for(
        lambda: (
            len(client.diagnostics.get(uri(models / "bad.sql"), [None])) == 0
            and len(client.diagnostics.get(uri(models / "_models.yml"), [None])) == 0
        ),
        timeout=10,
        what="FLOE050 to clear",
    )
    titles = await _lens_titles(client, floe)
    assert titles[2] == "✓ dev just now · 3 models · 2 tests", titles


async def test_the_transform_hover_lists_each_model_s_last_run(
    started_after_run: LanguageClient, after_failed_run: Path
) -> None:
    """Hovering inside a transform of floe.yaml shows its models' last run."""
    client = started_after_run
    floe = after_failed_run / "floe.yaml"
    text = open_doc(client, floe)
    line = text.split("\n").index("    path: ./dbt")
    found = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri(floe)),
            position=types.Position(line=line, character=6),
        )
    )
    assert found is not None and isinstance(found.contents, types.MarkupContent)
    lines = found.contents.value.split("\n")
    assert lines[0].startswith("**path**")  # the field's own hover comes first
    assert any(line.startswith("**Last run · dev** ✗ ") for line in lines), lines
    assert any(line.startswith("- ✓ `fast` success · 1 row · ") for line in lines), lines
    assert any(line.startswith("- ✗ `bad` error · ") for line in lines), lines
    assert any(line.startswith("- ✓ `nulls` success, not published · ") for line in lines)
    assert "- tests: 1 passed, 1 failed" in lines
    # Outside the transforms no run is shown.
    name = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri(floe)),
            position=types.Position(line=text.split("\n").index("name: failing"), character=1),
        )
    )
    assert name is not None and isinstance(name.contents, types.MarkupContent)
    assert "Last run" not in name.contents.value
