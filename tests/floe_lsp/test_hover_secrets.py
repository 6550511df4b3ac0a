"""Literal credentials in platform files never reach hover, completion or inlay hints (issue 10.3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_helpers import find, open_doc, uri, wait_for
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning"),
]

SECRET = "Hunter2-s3cr3t"


def _leak_secrets(project: Path) -> None:
    """Write credentials as literals: a password inside a URL, a client secret, an account key."""
    dev = project / "platform" / "dev" / "platform.yaml"
    dev.write_text(
        dev.read_text().replace(
            "uri: sqlite:///.floe/catalog.db", f"uri: postgresql://floe:{SECRET}@db.internal/cat"
        )
    )
    prod = project / "platform" / "prod" / "platform.yaml"
    text = prod.read_text()
    text = text.replace(
        "client_secret: {secret_ref: polaris-oauth-secret}", f"client_secret: {SECRET}"
    )
    text = text.replace(
        "uri: https://polaris.acme.internal/api/catalog",
        f"uri: 'https://polaris.acme.internal/api/catalog?token={SECRET}'",
    )
    text = text.replace("access_key_id: {secret_ref: lake-key-id}", f"access_key_id: {SECRET}")
    prod.write_text(text)


async def _hover(client: LanguageClient, path: Path, position: types.Position) -> str:
    result = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri(path)), position=position
        )
    )
    assert result is not None and isinstance(result.contents, types.MarkupContent)
    return result.contents.value


async def test_hover_on_a_reference_masks_literal_credentials(
    client: LanguageClient, project: Path
) -> None:
    _leak_secrets(project)
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    catalog = await _hover(client, floe, find(client, text, "catalog: default", 10))
    assert SECRET not in catalog
    assert "postgresql://floe:***@db.internal/cat" in catalog  # dev: the URL, its password masked
    assert "client_secret: ***" in catalog  # prod: the literal secret
    assert "api/catalog?token=***" in catalog
    assert "client_id: floe-runtime" in catalog  # what is not a credential is still shown
    storage = await _hover(client, floe, find(client, text, "storage: default", 10))
    assert SECRET not in storage
    # access_key_id does not look like a credential by name; the model types it a secret.
    assert (
        "access_key_id: ***" in storage and "secret_access_key: secret_ref lake-secret" in storage
    )


async def test_no_other_view_of_floe_yaml_shows_a_literal_credential(
    client: LanguageClient, project: Path
) -> None:
    _leak_secrets(project)
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    completion = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri(floe)),
            position=find(client, text, "catalog: default", len("catalog: ")),
        )
    )
    assert completion is not None
    items = completion.items if isinstance(completion, types.CompletionList) else completion
    assert items and SECRET not in repr(items)
    lines = text.count("\n")
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uri(floe)),
            range=types.Range(
                start=types.Position(line=0, character=0),
                end=types.Position(line=lines, character=0),
            ),
        )
    )
    assert hints and SECRET not in repr(hints)


async def test_url_credentials_are_flagged_and_never_repeated_in_the_message(
    client: LanguageClient, project: Path
) -> None:
    _leak_secrets(project)
    dev = project / "platform" / "dev" / "platform.yaml"
    text = open_doc(client, dev)
    await wait_for(
        lambda: any(d.code == "FLOE020" for d in client.diagnostics.get(uri(dev), [])),
        what="FLOE020 on the platform file",
    )
    [diag] = [d for d in client.diagnostics[uri(dev)] if d.code == "FLOE020"]
    start = find(client, text, SECRET)
    assert diag.range.start == start
    assert diag.range.end.character == start.character + len(SECRET)
    assert SECRET not in diag.message and "postgresql://floe:***@db.internal/cat" in diag.message
