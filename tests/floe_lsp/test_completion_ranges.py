"""Every completion edit stays on the cursor's line, holds the cursor, and keeps the YAML valid.

The exhaustive and random checks run the server's completion in-process (a live
session per position would take minutes); one check runs the same over a real
pytest-lsp session.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsp_helpers import EXAMPLE, REPO, change_doc, open_doc, uri
from lsprotocol import types
from pygls.workspace import Workspace
from pytest_lsp import LanguageClient

from floe_lsp import completion
from floe_lsp.server import FloeLanguageServer, create_server

SHOP = REPO / "tests" / "runtime" / "projects" / "shop"
#: (project, file) of every fixture: the example's three files and the flow-styled shop files.
FIXTURES = [
    ("customer-analytics", "floe.yaml"),
    ("customer-analytics", "platform/dev/platform.yaml"),
    ("customer-analytics", "platform/prod/platform.yaml"),
    ("shop", "floe.yaml"),
    ("shop", "platform.yaml"),
]


def units(text: str) -> int:
    """UTF-16 code units (the position encoding the in-process server uses)."""
    return len(text.encode("utf-16-le")) // 2


def code_point(line: str, unit: int) -> int:
    count = 0
    for index, char in enumerate(line):
        if count >= unit:
            return index
        count += units(char)
    return len(line)


_CHOICE = re.compile(r"\$\{\d+\|((?:[^,|\\]|\\.)*)[^}]*\|\}")
_PLACEHOLDER = re.compile(r"\$\{\d+:((?:[^}\\]|\\.)*)\}")
_TABSTOP = re.compile(r"\$\d+")


def expand(item: types.CompletionItem, text: str) -> str:
    """An item's text as an editor inserts it: a snippet with its first choice or default."""
    if item.insert_text_format != types.InsertTextFormat.Snippet:
        return text
    text = _CHOICE.sub(lambda m: m.group(1), text)
    text = _PLACEHOLDER.sub(lambda m: m.group(1), text)
    text = _TABSTOP.sub("", text)
    return re.sub(r"\\(.)", r"\1", text)


def parses(text: str) -> bool:
    try:
        yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return True


def problems(
    text: str, line: int, char: int, items: list[types.CompletionItem], check_yaml: bool
) -> Iterator[str]:
    """What is wrong with the items' edits at (line, UTF-16 char) of `text`."""
    lines = text.split("\n")
    raw = lines[line].rstrip("\r")
    for item in items:
        edit = item.text_edit
        where = f"line {line} char {char} {raw!r}: {item.label!r}"
        if not isinstance(edit, types.TextEdit):
            yield f"{where}: no plain TextEdit"
            continue
        start, end = edit.range.start, edit.range.end
        if not (start.line == end.line == line):
            yield f"{where}: range {edit.range} leaves the line"
        elif not (0 <= start.character <= char <= end.character <= units(raw)):
            yield f"{where}: range {start.character}..{end.character} (line has {units(raw)})"
        elif check_yaml:
            a, b = code_point(raw, start.character), code_point(raw, end.character)
            new = raw[:a] + expand(item, edit.new_text) + raw[b:]
            after = "\n".join([*lines[:line], new, *lines[line + 1 :]])
            if not parses(after):
                yield f"{where}: {edit.new_text!r} breaks the YAML: {new!r}"


@cache
def workspace(tmp: Path) -> Path:
    for name, source in (("customer-analytics", EXAMPLE), ("shop", SHOP)):
        shutil.copytree(
            source, tmp / name, ignore=shutil.ignore_patterns("target", ".floe", "logs")
        )
    return tmp


@cache
def server(root: Path, snippets: bool) -> FloeLanguageServer:
    ls = create_server()
    ls.protocol._workspace = Workspace(None)  # what initialize would set up
    ls.protocol.client_capabilities = types.ClientCapabilities()
    ls.snippets = snippets
    ls.state.scan([root])
    return ls


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return workspace(tmp_path_factory.mktemp("ranges"))


def complete_at(
    ls: FloeLanguageServer, path: Path, text: str, line: int, char: int
) -> list[types.CompletionItem]:
    ls.state.set_open(path, text, None)
    result = completion.complete(ls, ls.uri(path), types.Position(line=line, character=char))
    return list(result.items)


@pytest.mark.parametrize("snippets", [True, False], ids=["snippets", "plain"])
@pytest.mark.parametrize(("project", "name"), FIXTURES, ids=lambda v: str(v))
def test_every_edit_at_every_position_of_the_fixtures(
    root: Path, project: str, name: str, snippets: bool
) -> None:
    ls = server(root, snippets)
    path = (root / project / name).resolve()
    text = path.read_text()
    assert parses(text)
    found: list[str] = []
    offered = 0
    for line, raw in enumerate(text.split("\n")):
        for c in range(len(raw) + 1):
            char = units(raw[:c])
            items = complete_at(ls, path, text, line, char)
            offered += len(items)
            found += problems(text, line, char, items, check_yaml=True)
    assert not found, "\n".join(found[:20])
    assert offered > 20  # the fixtures are completed, not skipped


#: What a person types in the middle of a line: flow collections, quotes, non-ASCII text.
JUNK = st.sampled_from(
    [
        "",
        " ",
        ":",
        ": ",
        "- ",
        "-",
        "{",
        "}",
        "{type: ",
        "{type: duckdb, ",
        "[",
        "[a, ",
        ", ",
        "'",
        '"',
        "#",
        "é😀",
        "名前: ",
        "\t",
        "\n",
        "\n  ",
        "\n    ",
        "secret_ref: ",
        "{secret_ref: ",
    ]
)


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), fixture=st.sampled_from(FIXTURES), snippets=st.booleans())
def test_every_edit_in_an_edited_fixture(
    root: Path, data: st.DataObject, fixture: tuple[str, str], snippets: bool
) -> None:
    ls = server(root, snippets)
    path = (root / fixture[0] / fixture[1]).resolve()
    text = path.read_text()
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        at = data.draw(st.integers(0, len(text)), label="at")
        cut = data.draw(st.integers(0, 6), label="cut")
        text = text[:at] + data.draw(JUNK, label="junk") + text[at + cut :]
    lines = text.split("\n")
    line = data.draw(st.integers(0, len(lines) - 1), label="line")
    raw = lines[line].rstrip("\r")
    c = data.draw(st.integers(0, len(raw)), label="char")
    char = units(raw[:c])
    items = complete_at(ls, path, text, line, char)
    found = list(problems(text, line, char, items, check_yaml=parses(text)))
    assert not found, "\n".join(found)


FLOW_PLATFORM = (SHOP / "platform.yaml").read_text()


@pytest.mark.asyncio
@pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning")
async def test_every_edit_over_a_live_session(client: LanguageClient, project: Path) -> None:
    """The same checks through a real server: floe.yaml, then a flow-styled platform.yaml."""
    floe = project / "floe.yaml"
    dev = project / "platform" / "dev" / "platform.yaml"
    found: list[str] = []
    for path, text in ((floe, floe.read_text()), (dev, FLOW_PLATFORM)):
        open_doc(client, path)
        change_doc(client, path, text, 2)
        for line, raw in enumerate(text.split("\n")):
            for c in range(len(raw) + 1):
                char = units(raw[:c])
                result = await client.text_document_completion_async(
                    types.CompletionParams(
                        text_document=types.TextDocumentIdentifier(uri=uri(path)),
                        position=types.Position(line=line, character=char),
                    )
                )
                assert result is not None
                items = list(result.items) if isinstance(result, types.CompletionList) else result
                found += problems(text, line, char, items, check_yaml=True)
    assert not found, "\n".join(found[:20])


@pytest.mark.asyncio
@pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning")
async def test_an_empty_value_is_completed_on_its_line(
    client: LanguageClient, project: Path
) -> None:
    """`catalog: ` and `catalog:` with nothing typed: the edit sits at the cursor, on the line."""
    floe = project / "floe.yaml"
    text = open_doc(client, floe)
    for typed, want in (("catalog: ", "catalog: default"), ("catalog:", "catalog: default")):
        half = text.replace("catalog: default", typed)
        change_doc(client, floe, half, 2)
        line = half.split("\n").index(typed)
        for char in range(len("catalog:"), len(typed) + 1):
            result = await client.text_document_completion_async(
                types.CompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri(floe)),
                    position=types.Position(line=line, character=char),
                )
            )
            assert isinstance(result, types.CompletionList)
            (item,) = result.items
            edit = item.text_edit
            assert isinstance(edit, types.TextEdit)
            assert edit.range.start.line == edit.range.end.line == line
            assert edit.range.start.character <= char <= edit.range.end.character <= len(typed)
            a, b = edit.range.start.character, edit.range.end.character
            assert typed[:a] + edit.new_text + typed[b:] == want
