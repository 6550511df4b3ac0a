"""Monorepos: several pipelines in one workspace, and platform.yaml files of no pipeline.

A platform.yaml belongs to the floe.yaml beside it or two folders up
(`platform/<env>/platform.yaml`); any other (`infra/platform.yaml` of a Kubernetes
deployment, say) is not a floe file: the server neither checks nor completes it.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import EXAMPLE, PROFILES, SERVER, codes, open_doc, start, uri, wait_for
from lsprotocol import types
from pytest_lsp import LanguageClient

from floe_lsp.state import WorkspaceState, file_kind
from floe_runtime.analysis import Project

pytestmark = pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning")

#: Not a floe platform file: a deployment's values, with a key floe would flag (FLOE003).
INFRA = """\
version: "1"
storag: {replicas: 3}
storage:
  default: {type: local, path: /data}
"""


def make_monorepo(root: Path) -> Path:
    """pipelines/a (clean), pipelines/b (compute: nowhere), infra/platform.yaml; returns root."""
    ignore = shutil.ignore_patterns("target", ".floe", "logs")
    for name in ("a", "b"):
        shutil.copytree(EXAMPLE, root / "pipelines" / name, ignore=ignore)
    b = root / "pipelines" / "b" / "floe.yaml"
    b.write_text(b.read_text().replace("compute: default", "compute: nowhere"))
    (root / "infra").mkdir()
    (root / "infra" / "platform.yaml").write_text(INFRA)
    (root / ".git").mkdir()
    return root


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    return make_monorepo(tmp_path / "mono")


@pytest_lsp.fixture(config=SERVER, params=[*PROFILES, "pull"])  # type: ignore[untyped-decorator]
async def mono_client(
    lsp_client: LanguageClient, request: pytest.FixtureRequest, monorepo: Path
) -> AsyncIterator[None]:
    """A server over the whole monorepo as its one workspace folder."""
    await start(lsp_client, request.param, [monorepo])
    yield
    await lsp_client.shutdown_session()


def test_a_platform_file_is_a_floe_file_only_when_it_belongs_to_a_pipeline(
    monorepo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = monorepo / "pipelines" / "a"
    assert file_kind(a / "floe.yaml") == "pipeline"
    assert file_kind(a / "platform" / "dev" / "platform.yaml") == "platform"
    assert file_kind(monorepo / "infra" / "platform.yaml") is None
    beside = monorepo / "pipelines" / "c"
    beside.mkdir()
    (beside / "platform.yaml").write_text(INFRA)
    assert file_kind(beside / "platform.yaml") is None  # no floe.yaml yet
    (beside / "floe.yaml").write_text("name: c\n")
    assert file_kind(beside / "platform.yaml") == "platform"
    # An environment folder without its pipeline: platform/<env>/ under no floe.yaml.
    orphan = monorepo / "infra" / "platform" / "dev" / "platform.yaml"
    orphan.parent.mkdir(parents=True)
    orphan.write_text(INFRA)
    assert file_kind(orphan) is None
    # FLOE_PLATFORM_FILE names the one platform file of every pipeline (a Kubernetes mount).
    monkeypatch.setenv("FLOE_PLATFORM_FILE", str(monorepo / "infra" / "platform.yaml"))
    assert file_kind(monorepo / "infra" / "platform.yaml") == "platform"


def test_state_finds_both_pipelines_and_nothing_for_infra(monorepo: Path) -> None:
    state = WorkspaceState()
    seen: list[Project] = []
    state.on_new_project.append(seen.append)
    state.scan([monorepo])
    assert [p.root.name for p in state.all_projects()] == ["a", "b"]
    assert [p.root.name for p in seen] == ["a", "b"]
    assert state.ensure(monorepo / "infra" / "platform.yaml") == []
    state.add_pipeline(monorepo / "pipelines" / "a" / "floe.yaml")  # rediscovered: not new
    assert len(seen) == 2


@pytest.mark.asyncio
async def test_two_pipelines_side_by_side_and_infra_left_alone(
    mono_client: LanguageClient, monorepo: Path
) -> None:
    client = mono_client
    pull = client.floe_profile == "pull"  # type: ignore[attr-defined]
    a = monorepo / "pipelines" / "a" / "floe.yaml"
    b = monorepo / "pipelines" / "b" / "floe.yaml"
    infra = monorepo / "infra" / "platform.yaml"
    infra_text = open_doc(client, infra)
    open_doc(client, a)
    open_doc(client, b)
    if pull:
        reports = {}
        for path in (a, b, infra):
            report = await client.text_document_diagnostic_async(
                types.DocumentDiagnosticParams(
                    text_document=types.TextDocumentIdentifier(uri=uri(path))
                )
            )
            assert isinstance(report, types.RelatedFullDocumentDiagnosticReport)
            reports[path] = sorted(str(d.code) for d in report.items)
        assert reports == {a: [], b: ["FLOE010", "FLOE010"], infra: []}
    else:
        await wait_for(lambda: codes(client, b) == ["FLOE010", "FLOE010"], what="b's FLOE010")
        await wait_for(lambda: uri(a) in client.diagnostics, what="a's diagnostics")
        assert codes(client, a) == []
        await asyncio.sleep(0.3)  # anything for infra would have come with the others
        assert uri(infra) not in client.diagnostics
    # No features either: infra/platform.yaml belongs to no pipeline.
    doc = types.TextDocumentIdentifier(uri=uri(infra))
    line = infra_text.split("\n").index("  default: {type: local, path: /data}")
    at = types.Position(line=line, character=len("  default: {ty"))
    completion = await client.text_document_completion_async(
        types.CompletionParams(text_document=doc, position=types.Position(line=1, character=0))
    )
    items = completion.items if isinstance(completion, types.CompletionList) else completion
    assert not items
    assert await client.text_document_hover_async(types.HoverParams(doc, at)) is None
    assert not await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=doc)
    )
    assert not await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=doc,
            range=types.Range(start=types.Position(1, 0), end=types.Position(1, 6)),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
