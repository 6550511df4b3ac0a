"""Diagnostics: same codes and ranges as the engine (and `validate`), push and pull, across files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsp_helpers import change_doc, change_range, codes, open_doc, pos, uri, wait_for
from lsprotocol import types
from pytest_lsp import LanguageClient

from floe_lsp.lifecycle import WATCH_ID
from floe_runtime.analysis import analyze, discover

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning"),
]

BROKEN_UNICODE = """\
name: customer-analytics
version: "1.0.0"
description: "Zoë's revenue 😀"
storage: lake
catalog: default
compute: default
transforms:
  - type: dbt
    path: ./dbt
observability: {attributes: {owner: "Zoë 😀"}, trace: true}
"""


async def test_initialize_negotiates_encoding_and_capabilities(client: LanguageClient) -> None:
    profile = client.floe_profile  # type: ignore[attr-defined]
    expected = "utf-8" if profile == "neovim" else "utf-16"
    assert client.floe_encoding == expected  # type: ignore[attr-defined]


async def test_published_diagnostics_match_the_engine(
    any_client: LanguageClient, project: Path
) -> None:
    client = any_client
    floe = project / "floe.yaml"
    floe.write_text(BROKEN_UNICODE)
    text = open_doc(client, floe)
    await wait_for(lambda: "FLOE003" in codes(client, floe), what="FLOE003")
    published = client.diagnostics[uri(floe)]
    engine = analyze(discover(project)).by_file()[str(floe)]
    assert (
        sorted(d.code for d in engine) == codes(client, floe) == ["FLOE003", "FLOE010", "FLOE010"]
    )
    lines = text.split("\n")
    for want in engine:
        rng = types.Range(
            start=pos(client, text, want.range.start.line, want.range.start.character),
            end=pos(client, text, want.range.end.line, want.range.end.character),
        )
        match = [
            d
            for d in published
            if d.code == want.code and d.range == rng and d.message == want.message
        ]
        assert match, (want, published)
    # The unknown key sits after non-ASCII text: its column depends on the negotiated encoding.
    unknown = next(d for d in published if d.code == "FLOE003")
    line = lines[unknown.range.start.line]
    prefix = line[: line.index("trace")]
    encoding = client.floe_encoding  # type: ignore[attr-defined]
    expected = {
        "utf-8": len(prefix.encode("utf-8")),
        "utf-32": len(prefix),
        "utf-16": len(prefix.encode("utf-16-le")) // 2,
    }[encoding]
    assert encoding == {"neovim": "utf-8", "utf-32": "utf-32"}.get(client.floe_profile, "utf-16")  # type: ignore[attr-defined]
    assert unknown.range.start.character == expected
    assert unknown.severity == types.DiagnosticSeverity.Error
    assert unknown.source == "floe"


async def test_edit_introduces_and_fixes_an_error(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    await wait_for(lambda: uri(floe) in client.diagnostics, what="first diagnostics")
    assert codes(client, floe) == []
    # Incremental change: type an unknown key at the top of the file.
    line = text.split("\n").index("storage: default")
    change_range(client, floe, 2, line, 0, 0, "storag: default\n")
    await wait_for(lambda: codes(client, floe) == ["FLOE003"], what="FLOE003 after edit")
    diag = client.diagnostics[uri(floe)][0]
    assert "storag" in diag.message
    assert diag.range.start == types.Position(line=line, character=0)
    change_doc(client, floe, text, 3)
    await wait_for(lambda: codes(client, floe) == [], what="clean after fix")


async def test_only_the_latest_version_is_published(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    await wait_for(lambda: uri(floe) in client.diagnostics, what="first diagnostics")
    published: list[types.PublishDiagnosticsParams] = []
    original = client.protocol.fm.features["textDocument/publishDiagnostics"]

    def spy(params: types.PublishDiagnosticsParams) -> None:
        published.append(params)
        original(params)

    client.protocol.fm.features["textDocument/publishDiagnostics"] = spy
    for version in range(2, 30):
        change_doc(client, floe, text + f"bogus{version}: 1\n", version)
    await wait_for(
        lambda: any(p.uri == uri(floe) and p.version == 29 for p in published), what="v29"
    )
    await asyncio.sleep(0.2)
    mine = [p for p in published if p.uri == uri(floe)]
    assert mine[-1].version == 29
    assert "bogus29" in mine[-1].diagnostics[0].message
    # Older versions were dropped rather than analysed one by one.
    assert len(mine) < 28
    assert [p.version for p in mine] == sorted(p.version or 0 for p in mine)


async def test_platform_edit_rechecks_the_pipeline(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    prod = project / "platform" / "prod" / "platform.yaml"
    open_doc(client, floe)
    text = open_doc(client, prod)
    await wait_for(
        lambda: uri(floe) in client.diagnostics and uri(prod) in client.diagnostics, what="both"
    )
    assert codes(client, floe) == []
    change_doc(client, prod, text.replace("compute:\n  default:", "compute:\n  warehouse:"), 2)
    await wait_for(lambda: codes(client, floe) == ["FLOE010"], what="FLOE010 from platform edit")
    message = client.diagnostics[uri(floe)][0].message
    assert "prod" in message and "warehouse" in message
    change_doc(client, prod, text.replace('version: "1"', 'version: "1"\nbogus: 1'), 3)
    await wait_for(
        lambda: codes(client, prod) == ["FLOE003"] and codes(client, floe) == [],
        what="platform own",
    )


async def test_platform_changed_on_disk(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    dev = project / "platform" / "dev" / "platform.yaml"
    open_doc(client, floe)
    await wait_for(lambda: uri(floe) in client.diagnostics, what="first")
    # Watching is registered dynamically where the client allows it (VS Code, not Neovim on Linux).
    # The run-results watcher (its own id) may be registered before or after this check.
    registered = [
        r.method
        for r in client.floe_registrations  # type: ignore[attr-defined]
        if r.id == WATCH_ID
    ]
    dynamic = client.floe_profile == "visual-studio-code"  # type: ignore[attr-defined]
    assert registered == (["workspace/didChangeWatchedFiles"] if dynamic else [])
    dev.write_text(dev.read_text().replace("storage:\n  default:", "storage:\n  local:"))
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=uri(dev), type=types.FileChangeType.Changed)]
        )
    )
    await wait_for(lambda: codes(client, floe) == ["FLOE010"], what="FLOE010 from disk change")
    # A new environment appears on disk: it is discovered and checked too.
    staging = project / "platform" / "staging" / "platform.yaml"
    staging.parent.mkdir()
    staging.write_text('version: "1"\n')
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=uri(staging), type=types.FileChangeType.Created)]
        )
    )
    await wait_for(
        lambda: codes(client, floe).count("FLOE010") == 4, what="staging lacks every profile"
    )


async def test_platform_opened_alone_is_paired(bare_client: LanguageClient, project: Path) -> None:
    client = bare_client
    floe = project / "floe.yaml"
    prod = project / "platform" / "prod" / "platform.yaml"
    text = prod.read_text().replace("bucket: acme-lake", "buckt: acme-lake")
    open_doc(client, prod, text)
    await wait_for(lambda: "FLOE003" in codes(client, prod), what="platform diagnostics")
    # Paired with its floe.yaml: the pipeline is checked against this environment.
    await wait_for(lambda: uri(floe) in client.diagnostics, what="pipeline diagnostics")
    assert any("buckt" in d.message for d in client.diagnostics[uri(prod)])
    assert codes(client, prod) == ["FLOE003", "FLOE004"]


async def test_pull_diagnostics_and_refresh(pull_client: LanguageClient, project: Path) -> None:
    client = pull_client
    floe = project / "floe.yaml"
    prod = project / "platform" / "prod" / "platform.yaml"
    open_doc(client, floe)
    text = open_doc(client, prod)
    report = await client.text_document_diagnostic_async(
        types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri(floe)))
    )
    assert isinstance(report, types.RelatedFullDocumentDiagnosticReport)
    assert list(report.items) == []
    refreshes = client.diagnostic_refresh_count
    change_doc(client, prod, text.replace("catalogs:\n  default:", "catalogs:\n  lake:"), 2)
    await wait_for(lambda: client.diagnostic_refresh_count > refreshes, what="refresh request")
    report2 = await client.text_document_diagnostic_async(
        types.DocumentDiagnosticParams(
            text_document=types.TextDocumentIdentifier(uri=uri(floe)),
            previous_result_id=report.result_id,
        )
    )
    assert isinstance(report2, types.RelatedFullDocumentDiagnosticReport)
    assert [d.code for d in report2.items] == ["FLOE010"]
    assert "catalog profile 'default'" in report2.items[0].message
    # Nothing changed since: the client is told so.
    report3 = await client.text_document_diagnostic_async(
        types.DocumentDiagnosticParams(
            text_document=types.TextDocumentIdentifier(uri=uri(floe)),
            previous_result_id=report2.result_id,
        )
    )
    assert isinstance(report3, types.RelatedUnchangedDocumentDiagnosticReport)
    # A pull client gets no pushed diagnostics (no duplicates).
    assert uri(floe) not in client.diagnostics


async def test_multi_root_workspace(multi_root_client: LanguageClient, tmp_path: Path) -> None:
    client = multi_root_client
    one = tmp_path / "one" / "customer-analytics" / "floe.yaml"
    two = tmp_path / "two" / "customer-analytics" / "floe.yaml"
    # Published at start-up for every pipeline found, without opening anything.
    await wait_for(
        lambda: uri(one) in client.diagnostics and uri(two) in client.diagnostics, what="both roots"
    )
    assert codes(client, one) == []
    await wait_for(
        lambda: codes(client, two) == ["FLOE010", "FLOE010"], what="FLOE010 in the second root"
    )
    # A folder removed from the workspace: its diagnostics are withdrawn.
    client.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(
                added=[], removed=[types.WorkspaceFolder(uri=uri(two.parent.parent), name="two")]
            )
        )
    )
    await wait_for(lambda: codes(client, two) == [], what="withdrawn")
