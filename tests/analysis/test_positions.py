"""Every diagnostic range lies inside its document, however the file is damaged (issue 10.10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from floe_runtime.analysis import Diagnostic, Range, analyze, discover
from floe_runtime.analysis.loader import load_yaml
from tests.conftest import EXAMPLE, REPO

SHOP = REPO / "tests" / "runtime" / "projects" / "shop"
FIXTURES = [
    EXAMPLE / "floe.yaml",
    EXAMPLE / "platform" / "dev" / "platform.yaml",
    EXAMPLE / "platform" / "prod" / "platform.yaml",
    SHOP / "floe.yaml",
    SHOP / "platform.yaml",
]

# What a damaged YAML file is made of: its own syntax, whitespace that matters, line
# breaks of every kind (LSP's and the ones only YAML 1.1 counts), and wide characters.
PIECES = [
    ":", "-", "- ", " ", "  ", "\t", "\n", "\r", "\r\n", "[", "]", "{", "}", ",", "'", '"',
    "#", "&a", "*a", "!", "!!int", "|", ">", "?", "%", "@", "`", "---", "...", "<<: ",
    "é", "😀", "\u2028", "\x85", "\ufeff", "\x0b", "\x00", "x: y", "key:", "\\",
]  # fmt: skip


def lsp_lines(text: str) -> list[str]:
    """The document's lines as an LSP client counts them (`\\n`, `\\r\\n`, `\\r`)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def inside(text: str, rng: Range) -> bool:
    """Whether both ends of `rng` are positions of the document and start <= end."""
    lines = lsp_lines(text)
    for pos in (rng.start, rng.end):
        if not (0 <= pos.line < len(lines) and 0 <= pos.character <= len(lines[pos.line])):
            return False
    return rng.start <= rng.end


@st.composite
def damaged(draw: st.DrawFn, text: str) -> str:
    """`text` after a few random edits: truncation, deletion, insertion, re-indentation."""
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "delete", "insert", "indent", "tab", "join"]))
        at = draw(st.integers(0, len(text)))
        lines = text.split("\n")
        row = draw(st.integers(0, max(len(lines) - 1, 0)))
        if kind == "truncate":
            text = text[:at]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 8)) :]
        elif kind == "insert":
            text = text[:at] + draw(st.sampled_from(PIECES)) + text[at:]
        elif kind == "indent":
            shift = draw(st.integers(-3, 3))
            line = lines[row]
            lines[row] = " " * shift + line if shift > 0 else line[min(-shift, len(line)) :]
            text = "\n".join(lines)
        elif kind == "tab":
            lines[row] = "\t" + lines[row].lstrip(" ")
            text = "\n".join(lines)
        else:  # two lines become one
            text = "\n".join([*lines[:row], " ".join(lines[row : row + 2]), *lines[row + 2 :]])
    return text


def _outside(diags: list[Diagnostic], texts: dict[str, str]) -> list[str]:
    return [
        f"{Path(d.file).name}: {d.code} {d.range} {d.message}"
        for d in diags
        if d.file in texts and not inside(texts[d.file], d.range)
    ]


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: str(p.relative_to(REPO)))
@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_every_diagnostic_lies_inside_the_damaged_file(fixture: Path, data: st.DataObject) -> None:
    original = fixture.read_text(encoding="utf-8")
    text = data.draw(damaged(original), label="damaged text")
    project = discover(fixture.parent if fixture.name == "floe.yaml" else _pipeline_of(fixture))
    target = fixture.resolve()

    def reader(path: Path) -> str | None:
        return text if path.resolve() == target else path.read_text(encoding="utf-8")

    analysis = analyze(project, reader)
    texts = {str(project.pipeline_file): reader(project.pipeline_file) or ""}
    texts.update(
        {str(e.platform_file): reader(e.platform_file) or "" for e in project.environments}
    )
    assert str(target) in texts
    assert _outside(analysis.diagnostics, texts) == []


def _pipeline_of(platform_file: Path) -> Path:
    folder = platform_file.parent
    return folder if (folder / "floe.yaml").is_file() else folder.parent.parent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A key without ':' on the last line: libyaml notices on the line after, past the end.
        ("name: x\nversion", Range.of(1, 0, 1, 7)),
        ("name: x\nversion\ntransforms: []\n", Range.of(1, 0, 1, 7)),
        # An unclosed quote or bracket: where it opens, not where the text ends.
        ('name: x\nversion: "1.0.0\ntransforms: []\n', Range.of(1, 9, 1, 15)),
        ("version: '1'\nstorage: [a\n", Range.of(1, 9, 1, 11)),
        # libyaml counts U+2028 and NEL as line breaks, and not a BOM; the LSP does the opposite.
        ("a: 'x\u2028y'\nb: c: d\n", Range.of(1, 4, 1, 7)),
        ("# a\x85b\nc: d: e\n", Range.of(1, 1, 1, 7)),  # libyaml: `b c` is a key there
        ("\ufeffa: 1\nb: c: d\n", Range.of(1, 4, 1, 7)),
        # A character YAML forbids: where it is, not at the top of the file.
        ("a: 1\nb: x\x0by\n", Range.of(1, 4, 1, 5)),
    ],
)
def test_syntax_errors_point_at_the_line_to_fix(text: str, expected: Range) -> None:
    [diag] = load_yaml(text, "f.yaml").diagnostics
    assert (diag.code, diag.range) == ("FLOE001", expected), diag.message
    assert inside(text, diag.range)


def test_node_positions_follow_the_lsp_lines_after_an_odd_line_break() -> None:
    doc = load_yaml("a: 'x\u2028y'\nb: 1\nb: 2\n", "f.yaml")
    node = doc.node(("b",))
    assert node is not None and node.range == Range.of(1, 3, 1, 4)
    [dup] = doc.diagnostics
    assert dup.range == Range.of(2, 0, 2, 1) and "first defined on line 2" in dup.message
    bom = load_yaml("\ufeffname: x\n", "f.yaml").node(("name",))
    assert bom is not None and bom.key_range == Range.of(0, 1, 0, 5)


def test_a_lone_surrogate_is_a_diagnostic_not_a_crash() -> None:
    [diag] = load_yaml("a: 1\nb: \ud800\n", "f.yaml").diagnostics
    assert diag.code == "FLOE001" and diag.range.start == Range.of(1, 3).start
