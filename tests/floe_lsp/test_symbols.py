"""The outline (documentSymbol) of a platform file never shows a credential."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lsp_helpers import codes, open_doc, uri, wait_for
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning"),
]


def _walk(symbols: list[types.DocumentSymbol]) -> Iterator[types.DocumentSymbol]:
    for s in symbols:
        yield s
        yield from _walk(s.children or [])


async def test_outline_masks_literal_and_url_credentials(
    client: LanguageClient, project: Path
) -> None:
    prod = project / "platform" / "prod" / "platform.yaml"
    prod.write_text(
        prod.read_text()
        .replace("password: {secret_ref: pg-password}", "password: hunter2")
        .replace(
            "uri: https://polaris.acme.internal/api/catalog",
            "uri: https://floe:s3cr3t@polaris.acme.internal/api/catalog",
        )
    )
    open_doc(client, prod)
    await wait_for(lambda: codes(client, prod) == ["FLOE020", "FLOE020"], what="FLOE020 twice")
    found = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri(prod)))
    )
    symbols = list(_walk([s for s in found or [] if isinstance(s, types.DocumentSymbol)]))
    details = {s.name: s.detail for s in symbols}
    assert details["password"] == "***"
    assert details["uri"] == "https://floe:***@polaris.acme.internal/api/catalog"
    assert details["host"] == "warehouse.acme.internal"  # ordinary values still show
    assert not any("hunter2" in (s.detail or "") or "s3cr3t" in (s.detail or "") for s in symbols)
