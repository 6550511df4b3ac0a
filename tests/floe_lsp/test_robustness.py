"""Randomly damaged documents, in real sessions: every feature answers with ranges inside the
document, and the diagnostics of every version are the engine's for exactly that text.

The engine's expectation comes from a second copy of the project on disk holding the damaged
text, checked by `analyze` the way `floe-runtime validate` checks it, and converted to the
session's position encoding here (not by the server's converter).
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fuzz_client import INVALID_PARAMS, LspProcess
from lsp_helpers import apply_edits, change_doc, codes, find, open_doc, pos, units, uri, wait_for
from lsprotocol import types
from pytest_lsp import LanguageClient

from floe_runtime.analysis import analyze, discover

# The raw-client tests below are not async: the asyncio mark goes on each session test.
pytestmark = [pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning")]

JUNK = [
    "",
    ":",
    "- ",
    "{",
    "}",
    "'",
    '"',
    "\n  ",
    "é😀",
    "  x:",
    "\t",
    "[",
    "#",
    "&a",
    "*a",
    "---\n",
    "\r\n",
]
FILES = ["floe.yaml", "platform/prod/platform.yaml"]
TRIALS = 40
PUBLISH = types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS

#: (line, start, end, code, severity, message): a diagnostic as the client sees it.
Seen = tuple[int, int, int, int, str, int, str]


def damaged(base: str, rng: random.Random) -> str:
    """`base` with one piece of junk typed at a random place over up to 20 characters."""
    start = rng.randrange(len(base))
    return base[:start] + rng.choice(JUNK) + base[min(len(base), start + rng.randrange(20)) :]


class Engine:
    """A second copy of the project: what the engine says of a text of one of its files."""

    def __init__(self, project: Path, tmp: Path) -> None:
        self.project = project
        self.root = tmp / "engine" / project.name
        shutil.copytree(project, self.root)

    def expected(self, client: LanguageClient, name: str, text: str) -> list[Seen]:
        """The engine's diagnostics for `name` holding `text`, in the client's encoding."""
        (self.root / name).write_text(text, encoding="utf-8", newline="")
        diags = analyze(discover(self.root)).by_file().get(str(self.root / name), [])
        severity = {
            "error": types.DiagnosticSeverity.Error,
            "warning": types.DiagnosticSeverity.Warning,
            "information": types.DiagnosticSeverity.Information,
            "hint": types.DiagnosticSeverity.Hint,
        }
        lines = text.split("\n")

        def at(line: int, char: int) -> types.Position:
            return pos(client, text, line, char) if line < len(lines) else types.Position(line, 0)

        out = []
        for d in diags:
            start, end = at(*d.range.start), at(*d.range.end)
            message = d.message.replace(str(self.root), str(self.project))
            out.append(
                (
                    start.line,
                    start.character,
                    end.line,
                    end.character,
                    d.code,
                    int(severity[d.severity.value]),
                    message,
                )
            )
        return sorted(out)


def seen(diags: Sequence[types.Diagnostic]) -> list[Seen]:
    """What the client got, in the shape of `Engine.expected`."""
    return sorted(
        (
            d.range.start.line,
            d.range.start.character,
            d.range.end.line,
            d.range.end.character,
            str(d.code),
            int(d.severity or 0),
            d.message,
        )
        for d in diags
    )


def assert_inside(client: LanguageClient, text: str, rng: types.Range, what: str) -> None:
    """A range lies in the document as it is now (line and column in the client's units)."""
    lines = text.split("\n")
    encoding = getattr(client, "floe_encoding", "utf-16")
    for p in (rng.start, rng.end):
        assert p.line < len(lines), (what, rng, len(lines))
        width = units(lines[p.line].rstrip("\r"), encoding)
        assert p.character <= width, (what, rng, lines[p.line])
    assert (rng.start.line, rng.start.character) <= (rng.end.line, rng.end.character), (what, rng)


def _symbols(items: Sequence[Any]) -> list[Any]:
    out = []
    for item in items:
        out.append(item)
        out.extend(_symbols(getattr(item, "children", None) or []))
    return out


async def ask_everything(
    client: LanguageClient,
    path: Path,
    text: str,
    version: int,
    p: types.Position,
    files: set[str],
) -> None:
    """Every feature at `p`: each answers (an error reply raises) inside the current text."""
    doc = types.TextDocumentIdentifier(uri=uri(path))
    here = uri(path)
    lines = text.split("\n")
    completion = await client.text_document_completion_async(
        types.CompletionParams(text_document=doc, position=p)
    )
    items = completion.items if isinstance(completion, types.CompletionList) else completion or []
    # A cursor on a line past the end (a client's mistake) may get edits at that cursor.
    cursor_inside = p.line < len(lines)
    for item in items if cursor_inside else []:
        if isinstance(item.text_edit, types.TextEdit):
            assert_inside(client, text, item.text_edit.range, f"completion {item.label}")
    hover = await client.text_document_hover_async(types.HoverParams(text_document=doc, position=p))
    if hover is not None and hover.range is not None and cursor_inside:
        assert_inside(client, text, hover.range, "hover")
    definition = await client.text_document_definition_async(
        types.DefinitionParams(text_document=doc, position=p)
    )
    targets = definition if isinstance(definition, list) else [definition] if definition else []
    for target in targets:
        target_uri = target.uri if isinstance(target, types.Location) else target.target_uri
        assert target_uri in files, target_uri
    references = await client.text_document_references_async(
        types.ReferenceParams(
            text_document=doc,
            position=p,
            context=types.ReferenceContext(include_declaration=True),
        )
    )
    for ref in references or []:
        assert ref.uri in files, ref.uri
        if ref.uri == here:
            assert_inside(client, text, ref.range, "reference")
    prepared = await client.text_document_prepare_rename_async(
        types.PrepareRenameParams(text_document=doc, position=p)
    )
    if isinstance(prepared, types.Range):
        assert_inside(client, text, prepared, "prepareRename")
    elif isinstance(prepared, types.PrepareRenamePlaceholder):
        assert_inside(client, text, prepared.range, "prepareRename")
    renamed = await client.text_document_rename_async(
        types.RenameParams(text_document=doc, position=p, new_name="renamed")
    )
    if renamed is not None:
        changes = list((renamed.changes or {}).items())
        for change in renamed.document_changes or []:
            assert isinstance(change, types.TextDocumentEdit), change
            if change.text_document.uri == here:  # versioned: the version being edited
                assert change.text_document.version == version, change.text_document
            changes.append((change.text_document.uri, list(change.edits)))  # type: ignore[arg-type]
        for target_uri, edits in changes:
            assert target_uri in files, target_uri
            if target_uri == here and edits:
                for edit in edits:
                    assert_inside(client, text, edit.range, "rename edit")
                assert "renamed" in apply_edits(client, text, edits)
    whole = types.Range(
        start=types.Position(line=0, character=0),
        end=types.Position(line=len(lines) - 1, character=0),
    )
    # Inlay hints and links answer; where they sit is test_hints_and_links_follow_the_text's.
    await client.text_document_inlay_hint_async(
        types.InlayHintParams(text_document=doc, range=whole)
    )
    await client.text_document_document_link_async(types.DocumentLinkParams(text_document=doc))
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=doc)
    )
    for symbol in _symbols(symbols or []):
        if isinstance(symbol, types.DocumentSymbol):
            assert_inside(client, text, symbol.range, f"symbol {symbol.name}")
            assert_inside(client, text, symbol.selection_range, f"symbol {symbol.name}")
    await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=doc,
            range=types.Range(start=p, end=p),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )


def random_position(client: LanguageClient, text: str, rng: random.Random) -> types.Position:
    """Anywhere in the text, a line past its end, or a column past a line's end."""
    lines = text.split("\n")
    line = rng.randrange(len(lines) + 1)
    if line == len(lines):
        return types.Position(line=line, character=0)
    return pos(client, text, line, rng.randrange(len(lines[line]) + 2))


def project_files(project: Path) -> set[str]:
    """Where a definition, reference or rename may point: the project's YAML files."""
    return {uri(project / "floe.yaml"), uri(project / "dbt" / "dbt_project.yml")} | {
        uri(p) for p in (project / "platform").glob("*/platform.yaml")
    }


#: The last edit of each session: a damage whose diagnostics are known without the engine.
FINAL = {
    # An unknown key typed before `storage:`, after non-ASCII text: its end column depends on
    # the encoding (é is 1 UTF-16 unit and 2 UTF-8 bytes, 😀 2 units and 4 bytes).
    "floe.yaml": ("storage: default", "é😀storage: default", "é😀storage", "FLOE003"),
    # The compute profile loses its `type`: reported on the profile's own key.
    "platform/prod/platform.yaml": ("    type: postgres\n", "", "  default:\n    host", "FLOE004"),
}


def final_text(base: str, name: str) -> str:
    old, new, _, _ = FINAL[name]
    assert base.count(old) >= 1
    return base.replace(old, new, 1)


def assert_final(client: LanguageClient, name: str, text: str, got: list[Seen]) -> None:
    """The last version's diagnostics, from what the edit is (not from the engine)."""
    _, _, needle, code = FINAL[name]
    [(line, start, end_line, end, got_code, severity, message)] = got
    if name == "floe.yaml":
        start_pos = find(client, text, needle)
        width = {"utf-8": 4 + 2 + len("storage"), "utf-16": 2 + 1 + len("storage")}
        encoding = getattr(client, "floe_encoding", "utf-16")
        assert (line, start, end_line, end) == (start_pos.line, 0, start_pos.line, width[encoding])
        assert message == "unknown key 'é😀storage'; did you mean 'storage'?"
    else:
        key = find(client, text, needle, 2)  # `default`, the compute profile's key
        assert (line, start, end_line, end) == (key.line, 2, key.line, 2 + len("default"))
        assert message == (
            "missing required key 'type' "
            "(one of: duckdb, postgres, snowflake, trino, spark, bigquery, databricks)"
        )
    assert (got_code, severity) == (code, int(types.DiagnosticSeverity.Error))


@pytest.mark.asyncio
@pytest.mark.parametrize("name", FILES)
async def test_push_diagnostics_follow_every_damaged_version(
    client: LanguageClient, project: Path, tmp_path: Path, name: str
) -> None:
    """Every publication for the file is the engine's for the text of the version it names;
    the last version is published; features answer inside each damaged text."""
    engine = Engine(project, tmp_path)
    files = project_files(project)
    path = project / name
    published: list[types.PublishDiagnosticsParams] = []
    original = client.protocol.fm.features[PUBLISH]

    def spy(params: types.PublishDiagnosticsParams) -> None:
        published.append(params)
        original(params)

    client.protocol.fm.features[PUBLISH] = spy
    base = open_doc(client, path)
    texts = {1: base}
    rng = random.Random(20261125)
    for version in range(2, TRIALS + 2):
        text = damaged(base, rng)
        texts[version] = text
        change_doc(client, path, text, version)
        await ask_everything(client, path, text, version, random_position(client, text, rng), files)
    last = TRIALS + 2
    texts[last] = final_text(base, name)
    change_doc(client, path, texts[last], last)
    here = uri(path)
    await wait_for(
        lambda: any(p.uri == here and p.version == last for p in published),
        what=f"version {last}",
    )
    mine = [p for p in published if p.uri == here]
    # Start-up publishes files not yet open (no version); once open, every publication names
    # its version, and never an older version after a newer one.
    opened = next(i for i, p in enumerate(mine) if p.version is not None)
    mine = mine[opened:]
    versions = [p.version or 0 for p in mine]
    assert all(p.version is not None for p in mine), versions
    assert versions == sorted(versions), versions
    for params in mine:
        assert params.version in texts, params.version
        want = engine.expected(client, name, texts[params.version])
        assert seen(params.diagnostics) == want, (params.version, texts[params.version])
    assert_final(client, name, texts[last], seen(mine[-1].diagnostics))
    # The random texts are damage, not noise the engine ignores.
    assert sum(bool(engine.expected(client, name, texts[v])) for v in range(2, last)) >= 5
    # Undamaged again: clean, and still answering from the new text.
    change_doc(client, path, base, last + 1)
    await wait_for(
        lambda: any(
            p.uri == here and p.version == last + 1 and not p.diagnostics for p in published
        ),
        what="clean diagnostics",
    )
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri(path)),
            position=find(client, base, "postgres" if "platform" in name else "default", 2),
        )
    )
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert ("prod" if "platform" not in name else "PostgreSQL") in hover.contents.value


@pytest.mark.asyncio
@pytest.mark.parametrize("name", FILES)
async def test_pulled_diagnostics_are_the_engines_for_each_damaged_text(
    pull_client: LanguageClient, project: Path, tmp_path: Path, name: str
) -> None:
    """A pull after each edit returns exactly the engine's diagnostics for that text."""
    client = pull_client
    engine = Engine(project, tmp_path)
    files = project_files(project)
    path = project / name
    base = open_doc(client, path)
    rng = random.Random(20261126)
    damaging = 0
    texts = [damaged(base, rng) for _ in range(TRIALS)] + [final_text(base, name)]
    for version, text in enumerate(texts, start=2):
        change_doc(client, path, text, version)
        report = await client.text_document_diagnostic_async(
            types.DocumentDiagnosticParams(
                text_document=types.TextDocumentIdentifier(uri=uri(path))
            )
        )
        assert isinstance(report, types.RelatedFullDocumentDiagnosticReport)
        want = engine.expected(client, name, text)
        assert seen(report.items) == want, text
        damaging += bool(want)
        await ask_everything(client, path, text, version, random_position(client, text, rng), files)
    assert_final(client, name, texts[-1], seen(report.items))
    assert damaging >= 5


@pytest.mark.asyncio
async def test_hints_and_links_follow_the_text(client: LanguageClient, project: Path) -> None:
    """A hint sits right after the profile name it explains, a link on the path it opens,
    in the text as it is now, also while it does not parse."""
    floe = project / "floe.yaml"
    base = open_doc(client, floe)
    await wait_for(lambda: uri(floe) in client.diagnostics, what="first diagnostics")
    # One line fewer, and a syntax error (a second ': ' in a plain scalar).
    text = base.replace(" and payments\nstorage:", ":storage:")
    assert text.isascii() and text.count("\n") == base.count("\n") - 1
    change_doc(client, floe, text, 2)
    await wait_for(lambda: "FLOE001" in codes(client, floe), what="FLOE001")
    lines = text.split("\n")
    doc = types.TextDocumentIdentifier(uri=uri(floe))
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=doc,
            range=types.Range(
                start=types.Position(line=0, character=0),
                end=types.Position(line=len(lines) - 1, character=0),
            ),
        )
    )
    for hint in hints or []:
        assert_inside(client, text, types.Range(start=hint.position, end=hint.position), "hint")
        line = lines[hint.position.line]  # ASCII: a column is a character in any encoding
        assert line[: hint.position.character].endswith(": default"), (hint.position, line)
    links = await client.text_document_document_link_async(
        types.DocumentLinkParams(text_document=doc)
    )
    for link in links or []:
        assert_inside(client, text, link.range, "document link")
        assert lines[link.range.start.line].strip() == "path: ./dbt", (link.range, lines)


# ---------------------------------------------------------------- every request answered
# A raw client (fuzz_client.LspProcess) on the real server's stdin: these messages are
# what a typed client refuses to build.


@pytest.fixture
def raw(project: Path) -> Iterator[LspProcess]:
    """A live `python -m floe_lsp` over the example's workspace, spoken to in raw frames."""
    server = LspProcess(cwd=project)
    server.initialize([project.parent])
    yield server
    server.close()


def assert_quiet(server: LspProcess) -> None:
    """Alive, no traceback in its log and no error popped up in the editor."""
    assert server.alive()
    assert not server.tracebacks(), "".join(server.stderr)
    popups = [n for n in server.notifications if n["method"] == "window/showMessage"]
    assert not [p for p in popups if p["params"]["type"] == 1], popups


def symbols_of(server: LspProcess, path: Path) -> Any:
    """documentSymbol of a file: a result (an error reply fails the test)."""
    reply = server.request(
        "textDocument/documentSymbol", {"textDocument": {"uri": uri(path)}}, timeout=5
    )
    assert reply.error_code is None, reply.message
    return reply.result


def hover_params(path: Path, line: int = 2, character: int = 2) -> dict[str, Any]:
    return {"textDocument": {"uri": uri(path)}, "position": {"line": line, "character": character}}


@pytest.mark.parametrize(
    "params",
    [
        None,
        {"textDocument": {"uri": "file:///x/floe.yaml"}},
        {"textDocument": {"uri": "file:///x/floe.yaml"}, "position": {"line": "zero"}},
        {"textDocument": {"uri": "file:///x/floe.yaml"}, "position": {"line": -1, "character": 0}},
        {"textDocument": {"uri": "file:///x/floe.yaml"}, "position": {"line": 0, "character": -4}},
    ],
    ids=["null", "missing-position", "line-not-a-number", "negative-line", "negative-column"],
)
def test_malformed_params_get_invalid_params(raw: LspProcess, project: Path, params: Any) -> None:
    """pygls failed these while decoding and never answered: now InvalidParams, one log line."""
    reply = raw.request("textDocument/hover", params, timeout=5)
    assert reply.error_code == INVALID_PARAMS, reply.message
    assert "textDocument/hover" in reply.message["error"]["message"]
    # A malformed notification is dropped with a warning, not an "Error in server" popup.
    raw.notify("textDocument/didOpen", params)
    hover = raw.request("textDocument/hover", hover_params(project / "floe.yaml"), timeout=5)
    assert hover.error_code is None and "name" in json.dumps(hover.result)
    assert_quiet(raw)


def _body(msg_id: int, method: str = "textDocument/documentSymbol", uri_: str = "") -> bytes:
    params = {"textDocument": {"uri": uri_}}
    return json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}).encode()


#: name → (bytes written for request `id`, what request `id` gets: a result or an error code).
FRAMES: dict[str, Callable[[int, str], tuple[bytes, int | None]]] = {
    "length-not-a-number": lambda i, u: (b"Content-Length: 12a\r\n\r\n" + _body(i, uri_=u), -32700),
    "length-missing": lambda i, u: (b"Content-Type: x\r\n\r\n" + _body(i, uri_=u), -32700),
    "garbage-header-line": lambda i, u: (
        b"garbage\r\nContent-Length: %d\r\n\r\n" % len(_body(i, uri_=u)) + _body(i, uri_=u),
        None,
    ),
    "garbage-before-header": lambda i, u: (
        b"\x00\xff junk Content-Length: %d\r\n\r\n" % len(_body(i, uri_=u)) + _body(i, uri_=u),
        None,
    ),
    "body-not-json": lambda i, u: (
        b'Content-Length: 40\r\n\r\n{"jsonrpc": "2.0", "id": %d, "method": ' % i + b" " * 20,
        -32700,
    ),
    "body-not-utf8": lambda i, u: (
        LspProcess.frame({"jsonrpc": "2.0", "id": i, "method": "x", "params": "\xff"}).replace(
            b"\\u00ff", b"\xff\xfe\xfd\xfc\xfb\xfa"
        ),
        -32700,
    ),
    "length-too-long": lambda i, u: (
        b"Content-Length: %d\r\n\r\n" % (len(_body(i, uri_=u)) + 500) + _body(i, uri_=u),
        -32700,
    ),
    "length-too-short": lambda i, u: (
        b"Content-Length: %d\r\n\r\n" % (len(_body(i, uri_=u)) - 9) + _body(i, uri_=u),
        -32700,
    ),
    "not-an-object": lambda i, u: (b"Content-Length: 5\r\n\r\n[1,2]", None),
}


@pytest.mark.parametrize("name", FRAMES)
def test_a_damaged_frame_does_not_make_the_server_deaf(
    raw: LspProcess, project: Path, name: str
) -> None:
    """After any framing error the next well-framed request is answered (pygls's reader
    let each later body swallow the next header), and a damaged request whose id can
    still be read gets ParseError."""
    floe = project / "floe.yaml"
    damaged_id = raw.next_id()
    data, expected = FRAMES[name](damaged_id, uri(floe))
    raw.write(data)
    for _ in range(3):  # the stream is in step again, for good
        assert symbols_of(raw, floe)
    if name == "not-an-object":
        raw.wait_until(lambda: bool(raw.stderr), 5, "a warning")
        assert "not a JSON object" in "".join(raw.stderr)
        return
    reply = raw.wait(damaged_id, 5)
    assert reply is not None, f"request {damaged_id} was never answered"
    assert reply.error_code == expected, reply.message
    if expected is None:
        assert reply.result, reply.message
    assert_quiet(raw)
    assert any("skipped" in line or "answered" in line for line in raw.stderr) or expected is None


def test_lone_surrogates_are_read_as_replacement_characters(raw: LspProcess, project: Path) -> None:
    """JSON can carry "\\ud800", which no encoder accepts (every feature failed with
    UnicodeEncodeError): read as U+FFFD, one UTF-16 unit, so later positions hold."""
    floe = project / "floe.yaml"
    text = floe.read_text().replace("name: customer-analytics", "name: a\ud800b\udc00")
    raw.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri(floe), "languageId": "yaml", "version": 1, "text": text}},
    )
    assert symbols_of(raw, floe)
    for method in ("textDocument/hover", "textDocument/completion", "textDocument/definition"):
        reply = raw.request(method, hover_params(floe, 2, 8), timeout=5)
        assert reply.error_code is None, (method, reply.message)
    raw.wait_until(
        lambda: any(p.uri == uri(floe) and p.version == 1 for p in raw.published), 10, "diagnostics"
    )
    [published] = [p for p in raw.published if p.uri == uri(floe) and p.version == 1][-1:]
    [diag] = published.diagnostics
    assert diag["code"] == "FLOE005" and "'name'" in diag["message"], diag
    # The value's range ends after the two replacement characters: one unit each.
    assert diag["range"]["end"] == {"line": 2, "character": len("name: a?b?")}, diag
    assert_quiet(raw)


def test_a_uri_with_nul_names_no_document(raw: LspProcess, project: Path) -> None:
    """`%00` made every feature fail with "embedded null byte": now nothing is there."""
    nul = uri(project / "floe.yaml").replace("floe.yaml", "fl%00oe.yaml")
    doc = {"textDocument": {"uri": nul}}
    zero = {"line": 0, "character": 0}
    for method, params in [
        ("textDocument/hover", {**doc, "position": zero}),
        ("textDocument/definition", {**doc, "position": zero}),
        ("textDocument/documentSymbol", doc),
        ("textDocument/documentLink", doc),
        ("textDocument/codeLens", doc),
        ("textDocument/inlayHint", {**doc, "range": {"start": zero, "end": zero}}),
    ]:
        reply = raw.request(method, params, timeout=5)
        assert reply.error_code is None and not reply.result, (method, reply.message)
    raw.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": nul, "languageId": "yaml", "version": 1, "text": "name: x\n"}},
    )
    assert symbols_of(raw, project / "floe.yaml")
    assert_quiet(raw)


def test_a_document_that_is_a_symlink_to_itself(raw: LspProcess, project: Path) -> None:
    """Resolving a self-symlink raised RuntimeError in every feature and in the watcher."""
    loop = project.parent / "loop" / "floe.yaml"
    loop.parent.mkdir()
    loop.symlink_to(loop)
    text = (project / "floe.yaml").read_text()
    raw.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri(loop), "languageId": "yaml", "version": 1, "text": text}},
    )
    assert [s["name"] for s in symbols_of(raw, loop)][:2] == ["name", "version"]
    hover = raw.request("textDocument/hover", hover_params(loop), timeout=5)
    assert hover.error_code is None and hover.result is not None, hover.message
    links = raw.request("textDocument/documentLink", {"textDocument": {"uri": uri(loop)}})
    assert links.error_code is None, links.message
    raw.wait_until(lambda: any(p.uri == uri(loop) for p in raw.published), 10, "diagnostics")
    raw.notify("textDocument/didClose", {"textDocument": {"uri": uri(loop)}})
    assert symbols_of(raw, project / "floe.yaml")
    assert_quiet(raw)


def test_a_change_to_a_document_never_opened_is_ignored(raw: LspProcess, project: Path) -> None:
    """pygls raised KeyError ("Error in server" popup) and the file's text was lost."""
    floe = project / "floe.yaml"
    change = {"range": {"start": {"line": 2, "character": 0}, "end": {"line": 2, "character": 4}}}
    raw.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri(floe), "version": 9},
            "contentChanges": [{**change, "text": "oops"}],
        },
    )
    missing = project / "gone" / "floe.yaml"
    raw.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri(missing), "version": 1}, "contentChanges": [{"text": "x"}]},
    )
    # The disk's text is what the server knows: `name` is still the first key.
    assert [s["name"] for s in symbols_of(raw, floe)][0] == "name"
    assert_quiet(raw)
    assert "not open: ignored" in "".join(raw.stderr)


def test_a_column_past_the_last_line_end_keeps_the_line(raw: LspProcess, project: Path) -> None:
    """pygls clamped such a column to one character short of the line's end *in the
    params the server then applied*: typing at the end of a file's last line (no final
    line break) landed before its last character."""
    platform = project / "platform" / "prod" / "platform.yaml"
    text = platform.read_text()
    text = text[: text.index("    type: postgres") + len("    type: postgres")]
    last = text.count("\n")
    raw.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri(platform), "languageId": "yaml", "version": 1, "text": text}},
    )
    end = {"line": last, "character": 500}
    raw.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri(platform), "version": 2},
            "contentChanges": [{"range": {"start": end, "end": end}, "text": "x"}],
        },
    )
    raw.wait_until(
        lambda: any(p.uri == uri(platform) and p.version == 2 for p in raw.published),
        10,
        "diagnostics of version 2",
    )
    [last_published] = [p for p in raw.published if p.uri == uri(platform)][-1:]
    messages = [d["message"] for d in last_published.diagnostics]
    assert any("invalid type 'postgresx'" in m for m in messages), messages
    assert_quiet(raw)


def test_inlay_hints_in_a_file_whose_lines_end_with_cr(raw: LspProcess, project: Path) -> None:
    """Lines ended by a lone CR (LSP and YAML both count them): hints were looked up in
    the text split at LF only, and raised IndexError."""
    floe = project / "floe.yaml"
    text = floe.read_text().replace("\n", "\r")
    raw.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri(floe), "languageId": "yaml", "version": 1, "text": text}},
    )
    lines = text.split("\r")
    whole = {"start": {"line": 0, "character": 0}, "end": {"line": len(lines), "character": 0}}
    reply = raw.request(
        "textDocument/inlayHint", {"textDocument": {"uri": uri(floe)}, "range": whole}, timeout=5
    )
    assert reply.error_code is None, reply.message
    hints = reply.result
    assert len(hints) == 3, hints  # storage, catalog, compute: default
    for hint in hints:
        line = lines[hint["position"]["line"]]
        assert line[: hint["position"]["character"]].endswith(": default"), (hint, line)
    assert_quiet(raw)


def test_requests_before_initialize_and_after_shutdown_are_answered(project: Path) -> None:
    """Before initialize: ServerNotInitialized (was an internal error); after shutdown:
    InvalidRequest (pygls dropped them without a reply)."""
    server = LspProcess(cwd=project)
    try:
        early = server.request(
            "textDocument/hover", hover_params(project / "floe.yaml"), timeout=20
        )
        assert early.error_code == -32002, early.message
        server.initialize([project.parent])
        assert server.request("shutdown", None).error_code is None
        late = server.request("textDocument/hover", hover_params(project / "floe.yaml"), timeout=5)
        assert late.error_code == -32600, late.message
        assert not server.tracebacks(), "".join(server.stderr)
    finally:
        server.close()
