"""Chunked loading of large files gives exactly the tree of a whole-file parse."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from floe_runtime.analysis import chunks
from floe_runtime.analysis.loader import YNode, load_whole, load_yaml


def assert_same(a: YNode | None, b: YNode | None, path: str = "root") -> None:
    """Two trees are equal field by field, positions included."""
    if a is None or b is None:
        assert a is b, path
        return
    for name in ("kind", "span", "key_span", "value", "raw", "tag", "style"):
        assert getattr(a, name) == getattr(b, name), (path, name, getattr(a, name), getattr(b, name))
    assert list(a.entries) == list(b.entries), path
    for key in a.entries:
        assert_same(a.entries[key], b.entries[key], f"{path}.{key}")
    assert len(a.items) == len(b.items), path
    for index, (x, y) in enumerate(zip(a.items, b.items, strict=True)):
        assert_same(x, y, f"{path}[{index}]")


def transform(index: int, indent: int) -> str:
    pad = " " * indent
    extra = ""
    if index % 7 == 3:
        extra = f"{pad}  # a comment inside item {index}\n\n"
    if index % 11 == 5:
        extra += f"{pad}  sql: |\n{pad}    select {index}\n{pad}    from t\n"
    if index % 13 == 2:
        extra += f"{pad}  tags: [a, b]\n{pad}  nested:\n{pad}  - x\n{pad}  - y: {{k: v}}\n"
    return (
        f"{pad}- type: dbt\n{pad}  path: ./dbt\n{pad}  select: \"+mart_{index}\"\n"
        f"{pad}  vars:\n{pad}    batch: {index}\n{pad}    start: '2024-01-01'\n{extra}"
    )


def pipeline(count: int, indent: int = 2, tail: str = "") -> str:
    head = (
        "# a large pipeline\n\nname: big\nversion: \"1.0.0\"\nstorage: default\n"
        "schedule:\n  cron: \"0 6 * * *\"\n  timezone: UTC\n"
    )
    items = "".join(transform(i, indent) for i in range(count))
    return f"{head}transforms:\n{items}{tail}"


def edits(text: str, rng: random.Random, count: int) -> Iterator[str]:
    """Random small edits: insert or delete lines and characters anywhere."""
    junk = ["\n", "x", " ", "  - ", ": ", "#", "'", '"', "{", "- type: dbt\n", "  k: v\n", "\n\n", "-"]
    for _ in range(count):
        at = rng.randrange(len(text))
        if rng.random() < 0.5:
            yield text[:at] + rng.choice(junk) + text[at:]
        else:
            yield text[:at] + text[at + rng.randrange(1, 30) :]


@pytest.mark.parametrize("indent", [0, 2, 4])
@pytest.mark.parametrize("tail", ["", "observability:\n  traces: true\n", "# trailing comment\n\n"])
def test_chunked_load_equals_whole_load(indent: int, tail: str) -> None:
    chunks.clear_memo()
    text = pipeline(120, indent, tail)
    assert len(text) > chunks.MIN_CHARS
    doc = chunks.load_by_chunks(text, "floe.yaml")
    assert doc is not None, "a plain large pipeline is loaded in chunks"
    assert_same(doc.root, load_whole(text, "floe.yaml").root)


def test_random_edits_give_the_whole_load_result() -> None:
    rng = random.Random(20261126)
    base = pipeline(100)
    chunked = 0
    for text in edits(base, rng, 300):
        whole = load_whole(text, "floe.yaml")
        got = load_yaml(text, "floe.yaml")
        assert_same(got.root, whole.root)
        assert [(d.code, d.range, d.message) for d in got.diagnostics] == [
            (d.code, d.range, d.message) for d in whole.diagnostics
        ]
        chunked += chunks.load_by_chunks(text, "floe.yaml") is not None
    assert chunked > 80  # many edits keep the file loadable in chunks (junk often breaks the syntax)


def test_line_shifts_and_undo_reuse_nothing_stale() -> None:
    base = pipeline(100)
    lines = base.split("\n")
    at = lines.index("transforms:")
    for step in range(6):
        text = "\n".join(lines[:at] + ["# note"] * step + [f"bogus_{step}: 1"] + lines[at:])
        assert_same(load_yaml(text, "f").root, load_whole(text, "f").root)
    assert_same(load_yaml(base, "f").root, load_whole(base, "f").root)  # back to the start


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",  # anchors across top-level keys
        "---\na: 1\n",  # document marker
        "a: 1\na: 2\n",  # duplicate top-level key
        "a: \"open\nb: 1\"\n",  # quoted scalar running over a key-like line
        "a: {x: 1,\ny: 2}\n",  # flow mapping across lines
        "a: 1\r\nb: 2\r\n",  # CRLF
        "- a\n- b\n",  # a sequence document
        "a:\n  - x: 1\n    y: 2\n  - x: 1\n    x: 2\n",  # a duplicate inside an item
    ],
)
def test_files_the_chunks_cannot_vouch_for_are_parsed_whole(text: str) -> None:
    large = text + "# padding\n" * (chunks.MIN_CHARS // 10 + 1)
    doc = load_yaml(large, "f")
    whole = load_whole(large, "f")
    assert_same(doc.root, whole.root)
    assert [(d.code, d.range) for d in doc.diagnostics] == [(d.code, d.range) for d in whole.diagnostics]
    assert chunks.load_by_chunks(large, "f") is None


def test_the_memo_stays_within_its_budget() -> None:
    chunks.clear_memo()
    for index in range(40):
        load_yaml(pipeline(100).replace("big", f"big{index}").replace("batch: 1\n", f"batch: {index}\n"), "f")
    assert 0 < chunks.memo_chars() <= chunks.MEMO_CHARS + 10_000
