"""The engine over a whole project, with an in-memory reader as the language server uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from floe_runtime.analysis import analyze, discover
from tests.conftest import EXAMPLE

MakeProject = Callable[..., Path]


def test_example_validates_clean_in_both_environments() -> None:
    analysis = analyze(discover(EXAMPLE))
    assert analysis.diagnostics == []
    assert set(analysis.platforms) == {"dev", "prod"}
    assert analysis.pipeline.model is not None
    assert analysis.pipeline.model.name == "customer-analytics"


def test_reader_overrides_disk(example: Path) -> None:
    project = discover(example)
    floe = example / "floe.yaml"
    edited = floe.read_text().replace("catalog: default", "catalog: lakehouse")

    def reader(path: Path) -> str | None:
        return edited if path == floe else path.read_text()

    codes = sorted((d.code, d.data["environment"]) for d in analyze(project, reader).diagnostics)
    assert codes == [("FLOE010", "dev"), ("FLOE010", "prod")]
    # The file on disk is untouched and still clean.
    assert analyze(project).diagnostics == []


def test_unreadable_file_is_a_diagnostic(example: Path) -> None:
    (example / "platform" / "dev" / "platform.yaml").write_bytes(b"\xff\xfe\x00bad")
    diags = analyze(discover(example)).diagnostics
    assert [d.code for d in diags] == ["FLOE001"]
    assert "UTF-8" in diags[0].message


def test_by_file_lists_every_file(example: Path) -> None:
    grouped = analyze(discover(example)).by_file()
    assert set(grouped) == {
        str(example / "floe.yaml"),
        str(example / "platform" / "dev" / "platform.yaml"),
        str(example / "platform" / "prod" / "platform.yaml"),
    }


def test_top_level_not_a_mapping(make_project: MakeProject) -> None:
    root = make_project("- a\n- b\n", {"dev": "version: '1'\n"})
    [diag] = analyze(discover(root)).diagnostics
    assert diag.code == "FLOE005" and "mapping" in diag.message


def test_text_memo_is_bounded_by_characters() -> None:
    from floe_runtime.analysis.engine import TextMemo
    from floe_runtime.config.pipeline import Pipeline

    memo = TextMemo(Pipeline, budget_chars=100)
    first = memo("name: a\n" + "#" * 40 + "\n", "f.yaml")
    assert memo("name: a\n" + "#" * 40 + "\n", "f.yaml") is first  # remembered
    memo("name: b\n" + "#" * 40 + "\n", "f.yaml")
    assert memo.chars <= 100
    memo("name: c\n" + "#" * 40 + "\n", "f.yaml")  # pushes the oldest out
    assert memo.chars <= 100
    assert memo("name: a\n" + "#" * 40 + "\n", "f.yaml") is not first
