"""The source-mapped loader: ranges, duplicates, syntax errors, limits."""

from __future__ import annotations

import time

from floe_runtime.analysis.diagnostics import Range
from floe_runtime.analysis.loader import MAX_BYTES, load_yaml


def test_key_and_value_ranges_count_code_points() -> None:
    doc = load_yaml("naïve: café\nb:\n  c: [1, 2]\n", "f.yaml")
    node = doc.node(("naïve",))
    assert node is not None
    assert node.key_range == Range.of(0, 0, 0, 5)
    assert node.range == Range.of(0, 7, 0, 11)
    inner = doc.node(("b", "c", 1))
    assert inner is not None and inner.value == 2
    assert inner.range == Range.of(2, 9, 2, 10)


def test_scalars_become_python_values_but_dates_stay_text() -> None:
    doc = load_yaml("a: 1\nb: true\nc: null\nd: 2024-01-01\ne: '07'\nf: 1.5\n", "f.yaml")
    assert doc.data() == {"a": 1, "b": True, "c": None, "d": "2024-01-01", "e": "07", "f": 1.5}


def test_keys_are_source_text() -> None:
    doc = load_yaml("on: 1\n1: x\n", "f.yaml")
    assert doc.data() == {"on": 1, "1": "x"}


def test_duplicate_key_reported_first_kept() -> None:
    doc = load_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert doc.data() == {"a": 1, "b": 2}
    [diag] = doc.diagnostics
    assert (diag.code, diag.range) == ("FLOE002", Range.of(2, 0, 2, 1))


def test_syntax_error_has_position() -> None:
    doc = load_yaml("a: [1, 2\nb: 3\n", "f.yaml")
    assert doc.root is None and not doc.ok
    [diag] = doc.diagnostics
    assert diag.code == "FLOE001"
    assert diag.range.start.line == 1


def test_tabs_are_a_syntax_error() -> None:
    doc = load_yaml("a:\n\tb: 1\n", "f.yaml")
    assert [d.code for d in doc.diagnostics] == ["FLOE001"]


def test_two_documents_are_a_syntax_error() -> None:
    doc = load_yaml("a: 1\n---\nb: 2\n", "f.yaml")
    assert [d.code for d in doc.diagnostics] == ["FLOE001"]


def test_empty_document() -> None:
    doc = load_yaml("# only a comment\n", "f.yaml")
    assert doc.root is None and doc.ok and doc.diagnostics == []


def test_merge_keys_and_aliases() -> None:
    doc = load_yaml("base: &b {x: 1, y: 2}\na:\n  <<: *b\n  y: 3\nc: *b\n", "f.yaml")
    assert doc.data()["a"] == {"y": 3, "x": 1}
    assert doc.data()["c"] == {"x": 1, "y": 2}
    c = doc.node(("c",))
    assert c is not None and c.key_range == Range.of(4, 0, 4, 1)


def test_only_a_plain_or_tagged_double_angle_key_merges() -> None:
    text = (
        "base: &b {x: 1}\n"
        'quoted: {"<<": *b}\n'
        "tagged: {!!merge <<: *b, y: 2}\n"
        "&k anchored: 1\n"
        "again: *k\n"
    )
    doc = load_yaml(text, "f.yaml")
    assert doc.diagnostics == []
    assert doc.data()["quoted"] == {"<<": {"x": 1}}  # a quoted key is just text
    assert doc.data()["tagged"] == {"y": 2, "x": 1}
    assert doc.data()["again"] == "anchored"  # an anchored key can be referred to


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    started = time.perf_counter()
    doc = load_yaml("\n".join(lines) + "\n", "bomb.yaml")
    assert time.perf_counter() - started < 5  # generous: the point is "no hang"
    [diag] = doc.diagnostics
    assert diag.code == "FLOE001" and "expands to more than" in diag.message
    assert doc.root is None


def test_oversized_file_is_refused() -> None:
    text = "a: " + "x" * (MAX_BYTES + 1) + "\n"
    doc = load_yaml(text, "big.yaml")
    [diag] = doc.diagnostics
    assert diag.code == "FLOE001" and "limit" in diag.message


def test_first_line_range_skips_comments() -> None:
    doc = load_yaml("# header\n\n  name: x  \n", "f.yaml")
    assert doc.first_line_range() == Range.of(2, 2, 2, 9)
