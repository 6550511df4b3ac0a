"""The tolerant reader (tree-sitter) on half-typed documents: the cursor's place, tokens, outline."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from lsp_helpers import EXAMPLE

from floe_lsp.context import cursor_at
from floe_lsp.reader import Trees, top_mapping

UNCLOSED_FLOW = """name: x
storage: {type: s3, bucket
catalog: lake
transforms:
  - type: dbt
    pa
"""
MISSING_COLON = """version: "1"
storage:
  lake:
    type: s3
    buck
  default: {type: local}
"""
WRONG_INDENT = """version: "1"
compute:
  warehouse:
    type: postgres
   host: x
    us
"""


def at(text: str, needle: str, offset: int | None = None) -> tuple[int, int]:
    """(line, character) of `needle` in `text` (plus `offset`, default its end)."""
    index = text.index(needle) + (len(needle) if offset is None else offset)
    return text.count("\n", 0, index), index - (text.rfind("\n", 0, index) + 1)


@pytest.mark.parametrize(
    ("text", "needle", "path", "token", "present", "data_check"),
    [
        (
            UNCLOSED_FLOW,
            "    pa",
            ("transforms", 0),
            "pa",
            {"type"},
            ("transforms", 0, "type", "dbt"),
        ),
        (
            MISSING_COLON,
            "    buck",
            ("storage", "lake"),
            "buck",
            {"type"},
            ("storage", "lake", "type", "s3"),
        ),
        (
            WRONG_INDENT,
            "    us",
            ("compute", "warehouse"),
            "us",
            {"type"},
            ("compute", "warehouse", "type", "postgres"),
        ),
    ],
)
def test_a_key_being_typed_is_placed_in_its_mapping(
    text: str,
    needle: str,
    path: tuple[object, ...],
    token: str,
    present: set[str],
    data_check: tuple[object, ...],
) -> None:
    line, char = at(text, needle)
    cur = cursor_at(text, line, char)
    assert cur.kind == "key" and cur.path == path and cur.present == present
    raw = text.split("\n")[line]
    assert (
        raw[cur.start : cur.end] == cur.text == token
    )  # the range is the token, read from the text
    *steps, key, value = data_check
    here = cur.data
    for step in steps:
        here = here[step]
    assert here[key] == value  # the sibling that picks the union member


def test_a_value_inside_an_unclosed_flow_mapping() -> None:
    text = 'version: "1"\nstorage:\n  lake:\n    type: s3\n    credentials:\n      access_key_id: {secret_ref: lake\n'
    line, char = at(text, "{secret_ref: lake")
    cur = cursor_at(text, line, char)
    assert cur.kind == "value" and cur.flow
    assert cur.path == ("storage", "lake", "credentials", "access_key_id", "secret_ref")
    assert text.split("\n")[line][cur.start : cur.end] == "lake"


def test_a_comment_is_nothing_and_a_value_is_its_key() -> None:
    text = "name: x  # a comment\ncompute: ware\n"
    assert cursor_at(text, *at(text, "# a co")).kind == "none"
    cur = cursor_at(text, *at(text, "compute: ware"))
    assert (cur.kind, cur.path, cur.text, cur.typed) == ("value", ("compute",), "ware", "ware")


def test_the_outline_of_a_half_typed_document_keeps_the_other_sections() -> None:
    trees = Trees()
    data = UNCLOSED_FLOW.replace("    pa\n", "").encode()  # one broken line (two flatten the tree)
    _, tree = trees.repaired(data, trees.parse("doc", data))
    top = top_mapping(tree)
    assert top is not None
    keys = [child.child_by_field_name("key").text for child in top.named_children]  # type: ignore[union-attr]
    assert keys == [b"name", b"catalog", b"transforms"]  # only the broken line is left out


def test_reparsing_an_edited_text_reuses_the_tree_and_matches_a_fresh_parse() -> None:
    trees = Trees()
    text = (EXAMPLE / "floe.yaml").read_text()
    first = trees.parse("doc", text.encode())
    edited = text.replace("compute:", "compute_typo:", 1).encode()
    second = trees.parse("doc", edited)
    assert second is not first
    assert str(second.root_node) == str(Trees().parse_alone(edited).root_node)
    assert trees.parse("doc", edited) is second  # same text: the same tree


FIXTURES = [
    EXAMPLE / "floe.yaml",
    EXAMPLE / "platform" / "dev" / "platform.yaml",
    EXAMPLE / "platform" / "prod" / "platform.yaml",
]
JUNK = ["", ":", " ", "{", "}", "[", "- ", "\n", "  ", "ty", "type: ", '"', "#", "\t", "é"]


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.parent.name + "/" + p.name)
def test_every_token_range_lies_on_the_cursor_line_and_holds_the_cursor(fixture: Path) -> None:
    rng = random.Random(fixture.name)
    base = fixture.read_text()
    trees = Trees()
    for _ in range(60):
        text = base
        for _ in range(rng.randint(1, 3)):  # a few random edits: insert, delete or replace
            i = rng.randrange(len(text) + 1)
            j = min(len(text), i + rng.randint(0, 6))
            text = text[:i] + rng.choice(JUNK) + text[j:]
        lines = text.split("\n")
        for _ in range(5):
            line = rng.randrange(len(lines))
            char = rng.randint(0, len(lines[line]))
            cur = cursor_at(text, line, char, trees, "doc")
            if cur.kind == "none":
                continue
            raw = lines[line].rstrip("\r")
            # What completion turns into each item's range: (line, start)-(line, max(end, char)).
            assert cur.line == line
            assert (
                0 <= cur.start <= min(char, len(raw)) <= max(cur.end, char) <= max(len(raw), char)
            )
            assert raw[cur.start : cur.end] == cur.text


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.parent.name + "/" + p.name)
def test_a_clean_document_read_from_its_own_tree_matches_the_placeholder_read(
    fixture: Path,
) -> None:
    # On a document without syntax errors, a cursor line holding `key: value` is found
    # in the document's current tree; a syntax error elsewhere (an unclosed `{` on a new
    # last line) sends every cursor through the placeholder re-read instead. Both must
    # tell the same story about every other line.
    text = fixture.read_text()
    assert text.endswith("\n")
    broken = text + "{\n"
    clean_trees, broken_trees = Trees(), Trees()
    assert not clean_trees.parse("clean", text.encode()).root_node.has_error
    assert broken_trees.parse("broken", broken.encode()).root_node.has_error
    lines = text.split("\n")[:-1]  # the last (empty) line is the `{` in the broken text
    compared = 0
    for line, raw in enumerate(lines):
        indent = len(raw) - len(raw.lstrip())
        for char in sorted({0, indent, indent + 1, len(raw) // 2, len(raw)}):
            from_tree = cursor_at(text, line, char, clean_trees, "clean")
            from_probe = cursor_at(broken, line, char, broken_trees, "broken")
            assert from_tree == from_probe, (line, char, raw)
            compared += from_tree.kind != "none"
    assert compared > 3 * len(lines)


FLOW = """version: "1"
compute:
  local: {type: duckdb, settings: {memory_limit: 1GB, thr}, path: "./x.duckdb"}
transforms: [{type: dbt, select: [orders, cu]}]
"""


@pytest.mark.parametrize(
    ("needle", "kind", "path", "token", "present"),
    [
        # A key half typed in a mapping nested in a flow mapping; siblings after it count.
        ("thr}", "key", ("compute", "local", "settings"), "thr", {"memory_limit"}),
        ("{type: duckdb", "key", ("compute", "local"), "type", {"settings", "path"}),
        ("duckdb,", "value", ("compute", "local", "type"), "duckdb", set()),
        ('"./x', "value", ("compute", "local", "path"), "./x.duckdb", set()),
        ("cu]", "value", ("transforms", 0, "select", 1), "cu", set()),
        ("dbt, select", "value", ("transforms", 0, "type"), "dbt", set()),
    ],
)
def test_a_cursor_inside_flow_collections(
    needle: str, kind: str, path: tuple[object, ...], token: str, present: set[str]
) -> None:
    line, char = at(FLOW, needle, 1)
    cur = cursor_at(FLOW, line, char)
    assert (cur.kind, cur.path, cur.text, cur.flow) == (kind, path, token, True)
    assert FLOW.split("\n")[line][cur.start : cur.end] == token
    if kind == "key":
        assert cur.present == present
    # The tag beside the cursor picks the member, before or after it on the line.
    if path[:2] == ("compute", "local") and "type" not in (token, path[-1]):
        assert cur.data["compute"]["local"]["type"] == "duckdb"


def test_flow_edit_spans_and_what_an_insertion_needs_before_it() -> None:
    text = "compute:\n  local: {type:, path: x}\n"
    line, char = at(text, "{type:")
    cur = cursor_at(text, line, char)
    assert (cur.kind, cur.path, cur.lead, cur.edit_span) == (
        "value",
        ("compute", "local", "type"),
        " ",  # `type:duckdb` would be one scalar
        (char, char),
    )
    # In the blank before a key the edit replaces that key; the key keeps its `:`.
    text = "compute:\n  local: {type: duckdb,  path: x}\n"
    line, char = at(text, "duckdb, ")
    cur = cursor_at(text, line, char)
    assert (cur.kind, cur.text, cur.colon) == ("key", "", True)
    assert cur.edit_span == (char, char + 1 + len("path"))
    assert cur.present == {"type"}


def test_a_block_value_cursor_before_or_inside_quotes() -> None:
    text = 'version: "1"\n'
    before = cursor_at(text, 0, len("version:"))  # right after the colon
    assert (before.text, before.lead, before.edit_span) == ("", " ", (8, 12))
    inside = cursor_at(text, 0, len('version: "'))
    assert (inside.text, inside.quote, inside.edit_span, inside.outer) == (
        "1",
        '"',
        (10, 11),
        (9, 12),
    )
    empty = cursor_at("catalog: \n", 0, 9)
    assert (empty.start, empty.end, empty.edit_span) == (9, 9, (9, 9))
    bare = cursor_at("catalog:\n", 0, 8)
    assert (bare.edit_span, bare.lead) == ((8, 8), " ")


def test_nothing_in_the_indentation_or_inside_a_flow_mapping_opened_above() -> None:
    text = "compute:\n  local:\n    type: duckdb\n  wide: {type: duckdb,\n    path: x}\n"
    assert cursor_at(text, 2, 2).kind == "none"  # before `type`, in its indentation
    assert cursor_at(text, 2, 4).kind == "key"
    assert cursor_at(text, 4, 6).kind == "none"  # `path` belongs to the `{` above
    # A blank line takes the key where the cursor is.
    blank = "compute:\n  local:\n    type: duckdb\n        \n"
    cur = cursor_at(blank, 3, 4)
    assert (cur.kind, cur.path, cur.start) == ("key", ("compute", "local"), 4)
