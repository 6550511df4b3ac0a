"""Hostile and clumsy inputs: the engine answers with clear diagnostics, bounded and per file.

Many unknown keys (capped per file, the last saying how many more), nesting past what the
steps after loading can walk, special files where a config file should be, and transform
paths the OS refuses.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from floe_runtime.analysis import Diagnostic, Severity, analyze, discover
from floe_runtime.analysis.diagnostics import (
    MAX_PER_FILE,
    NOT_LISTED,
    error,
    limit_per_file,
    warning,
)
from floe_runtime.analysis.loader import MAX_DEPTH, load_yaml
from tests.analysis.test_codes import DEV, FLOE

pytestmark = pytest.mark.timeout(60)

MakeProject = Callable[..., Path]


def diagnostics_of(root: Path, file: Path) -> list[Diagnostic]:
    return analyze(discover(root)).by_file()[str(file)]


# ------------------------------------------------------------------ many diagnostics


def test_ten_thousand_unknown_keys_list_the_first_and_count_the_rest(
    make_project: MakeProject,
) -> None:
    unknown = "".join(f"unknown_{i}: 1\n" for i in range(10_000))
    root = make_project(FLOE + unknown, {"dev": DEV})
    found = diagnostics_of(root, root / "floe.yaml")
    assert len(found) == MAX_PER_FILE
    assert [d.code for d in found] == ["FLOE003"] * MAX_PER_FILE
    # The first ones in the file, in order; the last listed stands for all the others.
    lines = [d.range.start.line for d in found]
    assert lines == list(range(5, 5 + MAX_PER_FILE))
    expected = "expected one of: description, storage, catalog, compute, schedule, observability"
    assert found[-2].message == f"unknown key 'unknown_98'; {expected}"
    assert found[-1].message == (
        f"unknown key 'unknown_99'; {expected} (and 9,900 more problems in this file, "
        "not listed: at most 100 are shown per file)"
    )
    assert found[-1].data[NOT_LISTED] == {"error": 9_900}  # for a summary that counts all


def test_the_count_stays_exact_past_what_is_mapped(make_project: MakeProject) -> None:
    """Only so many validation errors are turned into diagnostics; the rest are counted."""
    unknown = "".join(f"unknown_{i}: 1\n" for i in range(3_000))
    root = make_project(FLOE + unknown, {"dev": DEV})
    *_, last = diagnostics_of(root, root / "floe.yaml")
    assert "(and 2,900 more problems in this file" in last.message
    assert last.data[NOT_LISTED] == {"error": 2_900}


def test_a_capped_file_does_not_cap_the_others(make_project: MakeProject) -> None:
    root = make_project(FLOE + "".join(f"x{i}: 1\n" for i in range(500)), {"dev": DEV})
    platform = root / "platform" / "dev" / "platform.yaml"
    platform.write_text(DEV + "extra: 1\n")
    by_file = analyze(discover(root)).by_file()
    assert len(by_file[str(root / "floe.yaml")]) == MAX_PER_FILE
    assert [d.message for d in by_file[str(platform)]] == [
        "unknown key 'extra'; expected one of: observability"
    ]


def test_the_last_one_listed_takes_the_worst_severity_and_limiting_is_idempotent() -> None:
    from floe_runtime.analysis.diagnostics import Range

    diags = [warning("f", Range.of(i, 0), "FLOE040", f"w{i}") for i in range(10)]
    diags.append(error("f", Range.of(20, 0), "FLOE003", "e"))
    diags.append(warning("g", Range.of(0, 0), "FLOE040", "other file"))
    limited = limit_per_file(diags, limit=5)
    assert [d.message for d in limited if d.file == "f"][:4] == ["w0", "w1", "w2", "w3"]
    last = [d for d in limited if d.file == "f"][-1]
    assert last.severity is Severity.ERROR  # an error among those not listed is not hidden
    assert last.message.startswith("w4 (and 6 more problems in this file")
    assert last.data[NOT_LISTED] == {"warning": 5, "error": 1}
    assert [d.message for d in limited if d.file == "g"] == ["other file"]
    assert limit_per_file(limited, limit=5) == limited


# ------------------------------------------------------------------ nesting


@pytest.mark.parametrize("depth", [500, 999])
def test_deep_flow_nesting_is_one_clear_error(make_project: MakeProject, depth: int) -> None:
    nested = "{a: " * depth + "1" + "}" * depth
    root = make_project(FLOE + f"    vars: {nested}\n", {"dev": DEV})
    [diag] = diagnostics_of(root, root / "floe.yaml")
    assert diag.code == "FLOE001"
    assert diag.message == (
        f"mappings and lists nest deeper than {MAX_DEPTH} levels here; "
        "refusing to load the document"
    )
    # Where the first level past the limit opens: the root mapping, the transforms list and
    # its item are three levels, so that is the brace after the first MAX_DEPTH - 3.
    column = len("    vars: ") + len("{a: ") * (MAX_DEPTH - 3)
    assert (diag.range.start.line, diag.range.start.character) == (5, column)


def test_deep_block_nesting_is_one_clear_error(make_project: MakeProject) -> None:
    block = "".join("  " * (i + 1) + f"k{i}:\n" for i in range(600)) + "  " * 601 + "1\n"
    root = make_project(FLOE + "extra:\n" + block, {"dev": DEV})
    [diag] = diagnostics_of(root, root / "floe.yaml")
    assert diag.code == "FLOE001" and "nest deeper than" in diag.message


def test_nesting_up_to_the_limit_loads() -> None:
    doc = load_yaml("{a: " * MAX_DEPTH + "1" + "}" * MAX_DEPTH, "f.yaml")
    assert doc.diagnostics == [] and doc.root is not None
    deeper = load_yaml("{a: " * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1), "f.yaml")
    assert [d.code for d in deeper.diagnostics] == ["FLOE001"] and deeper.root is None


def test_aliases_that_nest_deep_are_refused() -> None:
    """Each anchor wraps the one before: a short text whose tree is 800 levels deep."""
    lines = ["a0: &a0 [1]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 800)]
    doc = load_yaml("\n".join(lines) + "\n", "chain.yaml")
    [diag] = doc.diagnostics
    assert diag.code == "FLOE001" and "once aliases are followed" in diag.message
    assert doc.root is None


# ------------------------------------------------------------------ special files


def test_a_fifo_platform_file_keeps_its_environment_and_says_why(
    make_project: MakeProject,
) -> None:
    root = make_project(FLOE, {"dev": DEV, "prod": DEV})
    fifo = root / "platform" / "prod" / "platform.yaml"
    fifo.unlink()
    os.mkfifo(fifo)
    project = discover(root)
    assert [e.name for e in project.environments] == ["dev", "prod"]
    [diag] = analyze(project).by_file()[str(fifo)]
    assert diag.code == "FLOE001"
    assert diag.message == ("the file is a named pipe (FIFO), not a regular file; it was not read")


def test_a_looping_platform_file_keeps_its_environment(make_project: MakeProject) -> None:
    root = make_project(FLOE, beside="")
    beside = root / "platform.yaml"
    beside.unlink()
    beside.symlink_to(beside)
    project = discover(root)
    assert [e.name for e in project.environments] == ["default"]
    [diag] = analyze(project).by_file()[str(beside)]
    assert diag.code == "FLOE001" and "symbolic link that loops" in diag.message


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_floe_platform_file_naming_a_special_file(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, special: str
) -> None:
    root = make_project(FLOE)
    target = Path(special) if special.startswith("/") else tmp_path / special
    if not target.exists():
        os.mkfifo(target)
    monkeypatch.setenv("FLOE_PLATFORM_FILE", str(target))
    [diag] = diagnostics_of(root, target)
    assert diag.code == "FLOE001" and "not a regular file; it was not read" in diag.message


def test_a_fifo_floe_yaml_is_reported_not_waited_on(make_project: MakeProject) -> None:
    root = make_project(FLOE, {"dev": DEV})
    (root / "floe.yaml").unlink()
    os.mkfifo(root / "floe.yaml")
    [diag] = diagnostics_of(root, root / "floe.yaml")
    assert diag.code == "FLOE001" and "named pipe" in diag.message


def test_a_fifo_dbt_project_yml_is_named(make_project: MakeProject) -> None:
    root = make_project(FLOE, {"dev": DEV})
    (root / "dbt" / "dbt_project.yml").unlink()
    os.mkfifo(root / "dbt" / "dbt_project.yml")
    [diag] = diagnostics_of(root, root / "floe.yaml")
    assert (diag.code, diag.message) == (
        "FLOE030",
        "dbt_project.yml in './dbt' is a named pipe (FIFO), not a regular file",
    )


# ------------------------------------------------------------------ paths the OS refuses


@pytest.mark.parametrize(
    "value",
    [
        "./" + "/".join(["d" * 200] * 25),  # 5,000 characters, every name allowed
        "./" + "x" * 300,  # one name over 255 bytes, in a folder that exists
        "./dbt/" + "é" * 200,  # 400 bytes in UTF-8
    ],
)
def test_transform_path_too_long_for_the_os(make_project: MakeProject, value: str) -> None:
    root = make_project(FLOE.replace("./dbt", value), {"dev": DEV})
    [diag] = diagnostics_of(root, root / "floe.yaml")
    assert diag.code == "FLOE030"
    assert "is too long for the file system" in diag.message
    assert f"({len(value):,} characters" in diag.message
    assert len(diag.message) < 250  # the value is shortened in the message
    assert diag.range.start.line == 4  # on the path's value


@pytest.mark.parametrize("zone", ["Europe/Berlin" + "[" * 300, "Europe", "../../etc/passwd"])
def test_a_time_zone_that_is_no_zone_file_is_one_clear_error(
    make_project: MakeProject, zone: str
) -> None:
    # Found by bench/fuzz_lsp.py: a name too long for a path raised OSError out of the engine.
    root = make_project(
        FLOE + f'schedule:\n  cron: "0 6 * * *"\n  timezone: "{zone}"\n', {"dev": DEV}
    )
    [diag] = diagnostics_of(root, root / "floe.yaml")
    assert "unknown IANA time zone" in diag.message
    assert len(diag.message) < 200
