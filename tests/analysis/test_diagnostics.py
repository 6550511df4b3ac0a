"""Diagnostic values and their text and JSON forms."""

from __future__ import annotations

from floe_runtime.analysis.diagnostics import Diagnostic, Position, Range, Severity, error, warning
from floe_runtime.cli.common import sort_diagnostics, summary


def test_text_form_is_one_based_like_a_compiler() -> None:
    diag = error("/p/floe.yaml", Range.of(2, 4, 2, 9), "FLOE003", "unknown key 'x'")
    assert diag.to_text("floe.yaml") == "floe.yaml:3:5: error FLOE003 unknown key 'x'"


def test_json_form_has_exactly_the_design_fields() -> None:
    diag = warning("/p/floe.yaml", Range.of(0, 0, 0, 4), "FLOE040", "no platform", extra="x")
    assert diag.to_json() == {
        "file": "/p/floe.yaml",
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 4}},
        "severity": "warning",
        "code": "FLOE040",
        "message": "no platform",
    }


def test_positions_order_and_ranges_contain() -> None:
    rng = Range.of(1, 2, 3, 0)
    assert rng.contains(Position(2, 50)) and rng.contains(Position(3, 0))
    assert not rng.contains(Position(1, 1))
    assert Position(1, 9) < Position(2, 0)


def test_sorting_and_summary() -> None:
    a = Diagnostic("b.yaml", Range.of(0, 0), Severity.ERROR, "FLOE001", "x")
    b = Diagnostic("a.yaml", Range.of(5, 0), Severity.WARNING, "FLOE040", "y")
    c = Diagnostic("a.yaml", Range.of(1, 0), Severity.ERROR, "FLOE003", "z")
    assert sort_diagnostics([a, b, c]) == [c, b, a]
    assert summary([a, b, c]) == "Found 2 errors and 1 warning."
    assert summary([]) == ""
