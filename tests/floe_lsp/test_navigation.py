"""Definition, references, rename, symbols, inlay hints, links and quick fixes."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_helpers import apply_edits, codes, find, open_doc, uri, wait_for
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from floe_runtime.analysis import analyze, discover

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning"),
]


def doc_id(path: Path) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri=uri(path))


async def test_definition_of_a_reference_and_a_transform_path(
    client: LanguageClient, project: Path
) -> None:
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    result = await client.text_document_definition_async(
        types.DefinitionParams(
            text_document=doc_id(floe), position=find(client, text, "catalog: default", 11)
        )
    )
    assert isinstance(result, list)
    got = sorted((loc.uri, loc.range.start.line) for loc in result)
    dev = project / "platform" / "dev" / "platform.yaml"
    prod = project / "platform" / "prod" / "platform.yaml"
    want = []
    for platform in (dev, prod):
        lines = platform.read_text().split("\n")
        want.append((uri(platform), lines.index("catalogs:") + 1))
    assert got == sorted(want)
    result = await client.text_document_definition_async(
        types.DefinitionParams(
            text_document=doc_id(floe), position=find(client, text, "path: ./dbt", 8)
        )
    )
    assert isinstance(result, list) and [loc.uri for loc in result] == [
        uri(project / "dbt" / "dbt_project.yml")
    ]
    # Nothing to go to from a plain key.
    result = await client.text_document_definition_async(
        types.DefinitionParams(text_document=doc_id(floe), position=find(client, text, "name:", 1))
    )
    assert not result


async def test_references_from_a_platform_profile(client: LanguageClient, project: Path) -> None:
    prod = project / "platform" / "prod" / "platform.yaml"
    text = open_doc(client, prod)
    position = find(client, text, "compute:\n  default:", len("compute:\n  ") + 2)
    refs = await client.text_document_references_async(
        types.ReferenceParams(
            text_document=doc_id(prod),
            position=position,
            context=types.ReferenceContext(include_declaration=False),
        )
    )
    assert refs is not None and [r.uri for r in refs] == [uri(project / "floe.yaml")]
    floe_text = (project / "floe.yaml").read_text()
    assert refs[0].range.start == find(client, floe_text, "compute: default", len("compute: "))
    with_decl = await client.text_document_references_async(
        types.ReferenceParams(
            text_document=doc_id(prod),
            position=position,
            context=types.ReferenceContext(include_declaration=True),
        )
    )
    assert with_decl is not None and len(with_decl) == 3  # floe.yaml + dev + prod


async def test_prepare_rename_refuses_non_profiles(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    refused = await client.text_document_prepare_rename_async(
        types.PrepareRenameParams(
            text_document=doc_id(floe), position=find(client, text, "name:", 1)
        )
    )
    assert refused is None
    ok = await client.text_document_prepare_rename_async(
        types.PrepareRenameParams(
            text_document=doc_id(floe), position=find(client, text, "compute: default", 11)
        )
    )
    assert isinstance(ok, types.PrepareRenamePlaceholder) and ok.placeholder == "default"


async def test_rename_a_profile_everywhere_keeping_comments(
    client: LanguageClient, project: Path
) -> None:
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    edit = await client.text_document_rename_async(
        types.RenameParams(
            text_document=doc_id(floe),
            position=find(client, text, "compute: default", 11),
            new_name="warehouse",
        )
    )
    assert edit is not None
    changed = {}
    for path, edits in edits_by_path(client, edit).items():
        path = path.resolve()
        before = path.read_text()
        after = apply_edits(client, before, edits)
        path.write_text(after)
        changed[path.relative_to(project.resolve()).as_posix()] = (before, after)
    assert set(changed) == {
        "floe.yaml",
        "platform/dev/platform.yaml",
        "platform/prod/platform.yaml",
    }
    for before, after in changed.values():
        # Only the name token changed: every comment line survives, the line count is the same.
        assert [line for line in before.split("\n") if line.lstrip().startswith("#")] == [
            line for line in after.split("\n") if line.lstrip().startswith("#")
        ]
        assert len(before.split("\n")) == len(after.split("\n"))
    assert "compute: warehouse" in changed["floe.yaml"][1]
    assert "compute:\n  warehouse:\n    type: postgres" in changed["platform/prod/platform.yaml"][1]
    assert analyze(discover(project)).diagnostics == []
    with pytest.raises(Exception, match="not a valid profile name"):
        await client.text_document_rename_async(
            types.RenameParams(
                text_document=doc_id(floe),
                position=find(client, text, "compute: default", 11),
                new_name="9 bad",
            )
        )


async def test_document_symbols(client: LanguageClient, project: Path) -> None:
    prod = project / "platform" / "prod" / "platform.yaml"
    open_doc(client, prod)
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=doc_id(prod))
    )
    assert symbols is not None
    top = [s.name for s in symbols]
    assert top == ["version", "storage", "catalogs", "compute", "observability"]
    compute = next(s for s in symbols if s.name == "compute")
    assert isinstance(compute, types.DocumentSymbol) and compute.children
    assert compute.children[0].name == "default" and compute.children[0].detail == "postgres"
    assert compute.children[0].kind == types.SymbolKind.Module


async def test_document_symbols_survive_a_syntax_error(
    client: LanguageClient, project: Path
) -> None:
    prod = project / "platform" / "prod" / "platform.yaml"
    text = prod.read_text()
    # Half-typed: an unclosed flow sequence in the storage section; the file does not parse.
    broken = text.replace("storage:\n", "storage:\n  half: [typed\n", 1)
    assert broken != text
    open_doc(client, prod, broken)
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=doc_id(prod))
    )
    assert symbols is not None
    assert [s.name for s in symbols] == [
        "version",
        "storage",
        "catalogs",
        "compute",
        "observability",
    ]
    compute = next(s for s in symbols if s.name == "compute")
    assert isinstance(compute, types.DocumentSymbol) and compute.children
    assert compute.children[0].name == "default" and compute.children[0].detail == "postgres"
    assert compute.children[0].kind == types.SymbolKind.Module
    line = broken.split("\n").index("compute:")
    assert compute.range.start == types.Position(line=line, character=0)
    assert compute.selection_range.end == types.Position(line=line, character=len("compute"))


async def test_inlay_hints_and_links(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    end = types.Position(line=len(text.split("\n")), character=0)
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=doc_id(floe),
            range=types.Range(start=types.Position(line=0, character=0), end=end),
        )
    )
    assert hints is not None
    labels = sorted(str(h.label) for h in hints)
    assert labels == [
        "→ duckdb (dev) · postgres (prod)",
        "→ local (dev) · s3 (prod)",
        "→ sql (dev) · polaris (prod)",
    ]
    catalog_hint = next(h for h in hints if "polaris" in str(h.label))
    assert catalog_hint.position == find(client, text, "catalog: default", len("catalog: default"))
    links = await client.text_document_document_link_async(
        types.DocumentLinkParams(text_document=doc_id(floe))
    )
    assert links is not None and len(links) == 1
    assert links[0].target == uri(project / "dbt" / "dbt_project.yml")
    assert links[0].range.start == find(client, text, "./dbt")


async def actions(client: LanguageClient, path: Path, rng: types.Range) -> list[types.CodeAction]:
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=doc_id(path), range=rng, context=types.CodeActionContext(diagnostics=[])
        )
    )
    return [a for a in result or [] if isinstance(a, types.CodeAction)]


def edits_by_path(
    client: LanguageClient, edit: types.WorkspaceEdit
) -> dict[Path, list[types.TextEdit]]:
    """The edits of a WorkspaceEdit per file, in the form the client's profile asked for."""
    from pygls.uris import to_fs_path

    caps = client.capabilities
    wants_changes = (
        caps is not None
        and caps.workspace is not None
        and caps.workspace.workspace_edit is not None
        and bool(caps.workspace.workspace_edit.document_changes)
    )
    out: dict[Path, list[types.TextEdit]] = {}
    if wants_changes:
        assert edit.document_changes is not None and edit.changes is None
        for change in edit.document_changes:
            assert isinstance(change, types.TextDocumentEdit)
            out[Path(str(to_fs_path(change.text_document.uri)))] = [
                e for e in change.edits if isinstance(e, types.TextEdit)
            ]
    else:
        assert edit.changes is not None and edit.document_changes is None
        for target, edits in edit.changes.items():
            out[Path(str(to_fs_path(target)))] = list(edits)
    return out


def apply_workspace_edit(client: LanguageClient, edit: types.WorkspaceEdit) -> None:
    for path, edits in edits_by_path(client, edit).items():
        path.write_text(apply_edits(client, path.read_text(), edits))


async def test_quick_fix_unknown_key(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    floe.write_text(floe.read_text().replace("  timezone:", "  timezon:"))
    text = open_doc(client, floe)
    await wait_for(lambda: codes(client, floe) == ["FLOE003"], what="FLOE003")
    diag = client.diagnostics[uri(floe)][0]
    found = await actions(client, floe, diag.range)
    assert [a.title for a in found] == ["Change to 'timezone'"]
    assert found[0].kind == types.CodeActionKind.QuickFix and found[0].edit is not None
    apply_workspace_edit(client, found[0].edit)
    assert floe.read_text() == text.replace("  timezon:", "  timezone:")


async def test_quick_fixes_for_a_missing_profile(client: LanguageClient, project: Path) -> None:
    floe = project / "floe.yaml"
    floe.write_text(floe.read_text().replace("storage: default", "storage: defalt"))
    text = open_doc(client, floe)
    await wait_for(lambda: codes(client, floe) == ["FLOE010", "FLOE010"], what="FLOE010 x2")
    rng = client.diagnostics[uri(floe)][0].range
    found = await actions(client, floe, rng)
    titles = sorted(a.title for a in found)
    assert titles == [
        "Add storage profile 'defalt' to platform/dev/platform.yaml",
        "Add storage profile 'defalt' to platform/prod/platform.yaml",
        "Use 'default' instead of 'defalt'",
    ]
    use = next(a for a in found if a.title.startswith("Use"))
    assert use.edit is not None
    apply_workspace_edit(client, use.edit)
    assert floe.read_text() == text.replace("defalt", "default")
    # Or add the profile to each platform: ruamel.yaml keeps the comments; the result validates.
    floe.write_text(text)
    prod = project / "platform" / "prod" / "platform.yaml"
    before = prod.read_text()
    for action in found:
        if action.title.startswith("Add") and action.edit is not None:
            apply_workspace_edit(client, action.edit)
    after = prod.read_text()
    assert after.startswith(before.split("storage:")[0])  # header comments untouched
    assert "  defalt:\n    type: s3\n    bucket: TODO\n" in after
    assert after.replace("  defalt:\n    type: s3\n    bucket: TODO\n", "") == before
    dev_after = (project / "platform" / "dev" / "platform.yaml").read_text()
    assert "  defalt:\n    type: local\n    path: ./.floe/warehouse\n" in dev_after
    assert [d.code for d in analyze(discover(project)).diagnostics] == []


async def test_quick_fix_literal_credential(client: LanguageClient, project: Path) -> None:
    prod = project / "platform" / "prod" / "platform.yaml"
    prod.write_text(
        prod.read_text().replace("password: {secret_ref: pg-password}", "password: hunter2")
    )
    open_doc(client, prod)
    await wait_for(lambda: codes(client, prod) == ["FLOE020"], what="FLOE020")
    diag = client.diagnostics[uri(prod)][0]
    assert "hunter2" not in diag.message
    found = await actions(client, prod, diag.range)
    assert [a.title for a in found] == ["Move this literal credential to a secret_ref (password)"]
    assert found[0].edit is not None
    apply_workspace_edit(client, found[0].edit)
    assert "password: {secret_ref: password}" in prod.read_text()
    assert "hunter2" not in prod.read_text()


async def test_rename_the_implicit_default_names_it_in_floe_yaml(
    client: LanguageClient, project: Path
) -> None:
    floe = project / "floe.yaml"
    floe.write_text(floe.read_text().replace("storage: default\n", ""))
    dev = project / "platform" / "dev" / "platform.yaml"
    text = open_doc(client, dev)
    edit = await client.text_document_rename_async(
        types.RenameParams(
            text_document=doc_id(dev),
            position=find(client, text, "storage:\n  default:", len("storage:\n  ") + 1),
            new_name="main",
        )
    )
    assert edit is not None
    apply_workspace_edit(client, edit)
    assert "storage: main\n" in floe.read_text()
    assert "storage:\n  main:" in (project / "platform" / "prod" / "platform.yaml").read_text()
    assert analyze(discover(project)).diagnostics == []


async def test_rename_onto_an_existing_profile_is_refused(
    client: LanguageClient, project: Path
) -> None:
    prod = project / "platform" / "prod" / "platform.yaml"
    prod.write_text(
        prod.read_text().replace(
            "compute:\n  default:", "compute:\n  warehouse:\n    type: duckdb\n  default:", 1
        )
    )
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    before = {p: p.read_text() for p in project.rglob("*.yaml")}
    with pytest.raises(JsonRpcException) as refused:
        await client.text_document_rename_async(
            types.RenameParams(
                text_document=doc_id(floe),
                position=find(client, text, "compute: default", 11),
                new_name="warehouse",
            )
        )
    assert refused.value.code == types.LSPErrorCodes.RequestFailed
    assert refused.value.message == (
        "cannot rename compute profile 'default' to 'warehouse': "
        "a compute profile 'warehouse' already exists in platform/prod/platform.yaml"
    )
    # From the platform file too; and a name of another kind is no clash.
    ptext = open_doc(client, prod)
    with pytest.raises(JsonRpcException, match="already exists in platform/prod/platform.yaml"):
        await client.text_document_rename_async(
            types.RenameParams(
                text_document=doc_id(prod),
                position=find(client, ptext, "  default:\n    type: postgres", 3),
                new_name="warehouse",
            )
        )
    assert {p: p.read_text() for p in project.rglob("*.yaml")} == before
    edit = await client.text_document_rename_async(
        types.RenameParams(
            text_document=doc_id(floe),
            position=find(client, text, "catalog: default", 11),
            new_name="warehouse",
        )
    )
    assert edit is not None and set(edits_by_path(client, edit)) == {
        floe.resolve(),
        (project / "platform" / "dev" / "platform.yaml").resolve(),
        prod.resolve(),
    }


@pytest.mark.parametrize("bad", ["9 bad", "my profile", "ok\n", "", "a" * 64])
async def test_rename_to_a_name_the_pattern_refuses(
    client: LanguageClient, project: Path, bad: str
) -> None:
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    with pytest.raises(JsonRpcException) as refused:
        await client.text_document_rename_async(
            types.RenameParams(
                text_document=doc_id(floe),
                position=find(client, text, "compute: default", 11),
                new_name=bad,
            )
        )
    assert refused.value.code == types.ErrorCodes.InvalidParams
    assert f"'{bad}' is not a valid profile name" in refused.value.message


async def test_rename_while_a_file_concerned_does_not_parse_is_refused(
    client: LanguageClient, project: Path
) -> None:
    """Edits from the last good parse of a broken platform file would hit the wrong text."""
    dev = project / "platform" / "dev" / "platform.yaml"
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    dtext = open_doc(client, dev)
    broken = "version: [\n" + dtext  # one more line above everything, and a syntax error
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri(dev), version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=broken)],
        )
    )
    await wait_for(lambda: "FLOE001" in codes(client, dev), what="FLOE001 in dev")
    with pytest.raises(JsonRpcException) as refused:
        await client.text_document_rename_async(
            types.RenameParams(
                text_document=doc_id(floe),
                position=find(client, text, "compute: default", 11),
                new_name="warehouse",
            )
        )
    assert refused.value.code == types.LSPErrorCodes.RequestFailed
    assert f"while {dev} does not parse" in refused.value.message
