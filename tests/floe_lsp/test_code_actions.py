"""Quick fixes that must not be offered where their edit would be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_helpers import codes, open_doc, uri, wait_for
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning"),
]


async def test_no_secret_ref_fix_inside_a_url(client: LanguageClient, project: Path) -> None:
    """A password inside a URI is FLOE020, but `{secret_ref: …}` pasted into the URL breaks it."""
    prod = project / "platform" / "prod" / "platform.yaml"
    prod.write_text(
        prod.read_text().replace(
            "uri: https://polaris.acme.internal/api/catalog",
            "uri: https://floe:hunter2@polaris.acme.internal/api/catalog",
        )
    )
    open_doc(client, prod)
    await wait_for(lambda: codes(client, prod) == ["FLOE020"], what="FLOE020")
    diag = client.diagnostics[uri(prod)][0]
    assert "hunter2" not in diag.message
    found = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri(prod)),
            range=diag.range,
            context=types.CodeActionContext(diagnostics=[diag]),
        )
    )
    titles = [a.title for a in found or [] if isinstance(a, types.CodeAction)]
    assert not any("secret_ref" in t for t in titles), titles
