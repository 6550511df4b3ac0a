"""One test per diagnostic code: the code, the file and the exact range; the code registry
against the README's table, the codes the sources write and the codes the engine emits."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import floe_lsp
import floe_runtime
from floe_runtime.analysis import Diagnostic, Range, Severity, analyze, discover

FLOE = """name: demo
version: "1.0.0"
transforms:
  - type: dbt
    path: ./dbt
"""

DEV = """version: "1"
storage:
  default: {type: local}
catalogs:
  default: {type: sql}
compute:
  default: {type: duckdb}
"""


def run(root: Path, env: str | None = None) -> list[Diagnostic]:
    return analyze(discover(root, env)).diagnostics


def only(diags: list[Diagnostic], code: str) -> Diagnostic:
    found = [d for d in diags if d.code == code]
    assert len(found) == 1, diags
    return found[0]


MakeProject = Callable[..., Path]


def test_clean_project_has_no_diagnostics(make_project: MakeProject) -> None:
    root = make_project(FLOE, {"dev": DEV})
    assert run(root) == []


def test_floe001_syntax_error(make_project: MakeProject) -> None:
    root = make_project('name: demo\nversion: "1.0.0\ntransforms: []\n', {"dev": DEV})
    diag = only(run(root), "FLOE001")
    assert diag.file == str(root / "floe.yaml")
    assert diag.severity is Severity.ERROR
    # The unclosed quote where it opens (libyaml notices it at the end of the input): from
    # `"` after `version: ` to the end of that line.
    assert diag.range == Range.of(1, 9, 1, len('version: "1.0.0'))
    assert diag.message.startswith("YAML syntax error: ")


def test_floe001_in_platform_file(make_project: MakeProject) -> None:
    root = make_project(FLOE, {"dev": "version: '1'\nstorage: [a\n"})
    diag = only(run(root), "FLOE001")
    assert diag.file == str(root / "platform" / "dev" / "platform.yaml")
    # The unclosed bracket where it opens, to the end of its line.
    assert diag.range == Range.of(1, len("storage: "), 1, len("storage: [a"))


def test_floe002_duplicate_key(make_project: MakeProject) -> None:
    root = make_project(FLOE + "name: other\n", {"dev": DEV})
    diag = only(run(root), "FLOE002")
    assert diag.range == Range.of(5, 0, 5, 4)
    assert "duplicate key 'name'" in diag.message and "line 1" in diag.message


def test_floe003_unknown_key_with_suggestion(make_project: MakeProject) -> None:
    root = make_project(FLOE.replace("    path:", "    pth:"), {"dev": DEV})
    diags = run(root)
    diag = only(diags, "FLOE003")
    assert diag.range == Range.of(4, 4, 4, 7)
    assert diag.message == "unknown key 'pth'; did you mean 'path'?"
    assert diag.data["suggestion"] == "path"
    assert only(diags, "FLOE004").message == "missing required key 'path'"


def test_floe003_does_not_suggest_a_key_already_present(make_project: MakeProject) -> None:
    root = make_project(FLOE.replace("    path:", "    pth: x\n    path:"), {"dev": DEV})
    diag = only(run(root), "FLOE003")
    assert diag.range == Range.of(4, 4, 4, 7)
    assert "did you mean 'path'" not in diag.message


def test_floe003_in_tagged_union_names_field_of_that_type(make_project: MakeProject) -> None:
    dev = DEV.replace("default: {type: local}", "default: {type: local, bucket: x}")
    root = make_project(FLOE, {"dev": dev})
    diag = only(run(root), "FLOE003")
    assert diag.file.endswith("platform.yaml")
    assert diag.range == Range.of(2, 25, 2, 31)
    assert "unknown key 'bucket'" in diag.message


def test_floe004_missing_key_points_at_parent_key(make_project: MakeProject) -> None:
    root = make_project(FLOE.replace("    path: ./dbt\n", ""), {"dev": DEV})
    diag = only(run(root), "FLOE004")
    # The transform item has no key of its own: the range is its first key.
    assert diag.range == Range.of(3, 4, 3, 8)
    assert diag.message == "missing required key 'path'"


def test_floe004_missing_top_level_key_points_at_first_line(make_project: MakeProject) -> None:
    root = make_project(
        "# comment\nname: demo\ntransforms:\n  - {type: dbt, path: ./dbt}\n", {"dev": DEV}
    )
    diag = only(run(root), "FLOE004")
    assert diag.range == Range.of(1, 0, 1, 10)
    assert "'version'" in diag.message


def test_floe004_missing_nested_key_points_at_mapping_key(make_project: MakeProject) -> None:
    dev = DEV + "observability:\n  traces:\n    exporter: otlp\n"
    root = make_project(FLOE, {"dev": dev})
    diag = only(run(root), "FLOE004")
    assert diag.range == Range.of(8, 2, 8, 8)
    assert "'endpoint'" in diag.message


def test_floe005_invalid_enum_lists_values(make_project: MakeProject) -> None:
    dev = DEV.replace("{type: sql}", "{type: sqll}")
    root = make_project(FLOE, {"dev": dev})
    diag = only(run(root), "FLOE005")
    assert diag.range == Range.of(4, 18, 4, 22)
    assert "expected one of: sql, polaris, rest, glue" in diag.message
    assert "did you mean 'sql'" in diag.message


def test_floe005_invalid_value(make_project: MakeProject) -> None:
    root = make_project(FLOE.replace('"1.0.0"', '"1.0"'), {"dev": DEV})
    diag = only(run(root), "FLOE005")
    assert diag.range == Range.of(1, 9, 1, 14)
    assert "'version'" in diag.message


def test_floe005_cron_and_timezone(make_project: MakeProject) -> None:
    floe = FLOE + 'schedule:\n  cron: "0 25 * * *"\n  timezone: Europe/Berlinn\n'
    root = make_project(floe, {"dev": DEV})
    diags = [d for d in run(root) if d.code == "FLOE005"]
    assert [d.range for d in diags] == [Range.of(6, 8, 6, 20), Range.of(7, 12, 7, 26)]
    assert "hour" in diags[0].message and "outside 0-23" in diags[0].message
    assert "unknown IANA time zone" in diags[1].message


def test_floe010_reference_missing_in_one_environment(make_project: MakeProject) -> None:
    prod = DEV.replace("  default: {type: sql}", "  lake: {type: sql}")
    root = make_project(
        FLOE.replace("transforms:", "catalog: lake\ntransforms:"), {"dev": DEV, "prod": prod}
    )
    diag = only(run(root), "FLOE010")
    assert diag.file == str(root / "floe.yaml")
    assert diag.range == Range.of(2, 9, 2, 13)
    assert "environment 'dev'" in diag.message
    assert "platform/dev/platform.yaml" in diag.message
    assert diag.data["environment"] == "dev"


def test_floe010_suggests_closest_name(make_project: MakeProject) -> None:
    root = make_project(FLOE.replace("transforms:", "compute: defalt\ntransforms:"), {"dev": DEV})
    diag = only(run(root), "FLOE010")
    assert diag.message.endswith("did you mean 'default'?")
    assert diag.data["suggestion"] == "default"


def test_floe010_env_narrows_to_one(make_project: MakeProject) -> None:
    prod = DEV.replace("  default: {type: sql}", "  lake: {type: sql}")
    root = make_project(
        FLOE.replace("transforms:", "catalog: lake\ntransforms:"), {"dev": DEV, "prod": prod}
    )
    assert [d.code for d in run(root, "prod")] == []
    assert [d.data["environment"] for d in run(root, "dev")] == ["dev"]


def test_floe020_literal_credential_in_platform(make_project: MakeProject) -> None:
    dev = DEV.replace(
        "  default: {type: duckdb}",
        "  default: {type: duckdb}\n  wh:\n    type: postgres\n    host: h\n    user: u\n"
        "    dbname: d\n    password: hunter2-sentinel\n",
    )
    root = make_project(FLOE, {"dev": dev})
    diags = run(root)
    diag = only(diags, "FLOE020")
    assert diag.range == Range.of(12, 14, 12, 30)
    assert "hunter2-sentinel" not in diag.message
    assert "secret_ref" in diag.message
    # The type error pydantic also finds there is not reported twice.
    assert [d.code for d in diags] == ["FLOE020"]


def test_floe020_literal_credential_in_floe_yaml(make_project: MakeProject) -> None:
    floe = FLOE + "    vars:\n      api_token: abc123-sentinel\n"
    root = make_project(floe, {"dev": DEV})
    diag = only(run(root), "FLOE020")
    assert diag.range == Range.of(6, 17, 6, 32)
    assert "abc123-sentinel" not in diag.message


def test_floe030_missing_dbt_project(make_project: MakeProject) -> None:
    root = make_project(FLOE.replace("./dbt", "./nowhere"), {"dev": DEV})
    diag = only(run(root), "FLOE030")
    assert diag.range == Range.of(4, 10, 4, 19)
    assert "does not exist" in diag.message


def test_floe030_folder_without_dbt_project_yml(make_project: MakeProject) -> None:
    root = make_project(FLOE, {"dev": DEV}, dbt=False)
    (root / "dbt").mkdir()
    diag = only(run(root), "FLOE030")
    assert diag.message == "no dbt_project.yml in './dbt'"


def test_floe040_no_platform_is_a_warning(make_project: MakeProject) -> None:
    root = make_project(FLOE)
    diag = only(run(root), "FLOE040")
    assert diag.severity is Severity.WARNING
    assert diag.range == Range.of(0, 0, 0, 10)


# ---------------------------------------------------------------- the registry, the docs, the engine

README = Path(__file__).resolve().parents[2] / "README.md"
PACKAGES = [Path(floe_runtime.__file__).parent, Path(floe_lsp.__file__).parent]
ENGINE = Path(floe_runtime.__file__).parent / "analysis"
REGISTRY = ENGINE / "diagnostics.py"
CODE = re.compile(r"FLOE\d{3}")


def documented_codes() -> dict[str, str]:
    """The README's "Diagnostic codes" table: code → meaning."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Diagnostic codes\n", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| *(FLOE\d{3}) *\| *(.+?) *\|$", section, re.MULTILINE)
    assert rows, section
    return dict(rows)


def codes_in_source(*roots: Path) -> dict[str, set[str]]:
    """Every code written as a string literal in the modules under `roots` (not comments or
    docstrings): code → the files, the registry itself left out."""
    found: dict[str, set[str]] = {}
    for root in roots:
        for module in sorted(root.rglob("*.py")):
            if module == REGISTRY:
                continue
            for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and CODE.fullmatch(str(node.value)):
                    found.setdefault(node.value, set()).add(str(module))
    return found


def test_registry_is_the_documented_table() -> None:
    from floe_runtime.analysis import CODES

    documented = documented_codes()
    assert list(documented) == sorted(documented)  # the table reads in code order
    assert sorted(CODES) == list(documented)
    assert all(CODES[code] and documented[code] for code in CODES)


def test_every_code_the_code_writes_is_registered_and_every_registered_code_is_used() -> None:
    from floe_runtime.analysis import CODES

    used = codes_in_source(*PACKAGES)
    assert set(used) - set(CODES) == set(), "codes emitted but not in CODES"
    assert set(CODES) - set(used) == set(), "codes in CODES that nothing emits"


#: A project that makes the engine emit exactly one diagnostic, of that code, in floe.yaml
#: (or, for FLOE040, on it): keyword arguments of `make_project`.
TRIGGERS: dict[str, dict[str, Any]] = {
    "FLOE001": {"floe": 'name: demo\nversion: "1.0.0\ntransforms: []\n', "platforms": {"dev": DEV}},
    "FLOE002": {"floe": FLOE + "name: other\n", "platforms": {"dev": DEV}},
    "FLOE003": {
        "floe": FLOE.replace("    path:", "    pth: x\n    path:"),
        "platforms": {"dev": DEV},
    },
    "FLOE004": {"floe": FLOE.replace("    path: ./dbt\n", ""), "platforms": {"dev": DEV}},
    "FLOE005": {"floe": FLOE.replace('"1.0.0"', '"1.0"'), "platforms": {"dev": DEV}},
    "FLOE010": {
        "floe": FLOE.replace("transforms:", "compute: defalt\ntransforms:"),
        "platforms": {"dev": DEV},
    },
    "FLOE020": {
        "floe": FLOE + "    vars:\n      api_token: abc123-sentinel\n",
        "platforms": {"dev": DEV},
    },
    "FLOE030": {"floe": FLOE.replace("./dbt", "./nowhere"), "platforms": {"dev": DEV}},
    "FLOE040": {"floe": FLOE},
}


@pytest.mark.parametrize("code", sorted(TRIGGERS))
def test_trigger_makes_the_engine_emit_its_code(code: str, make_project: MakeProject) -> None:
    from floe_runtime.analysis import CODES

    root = make_project(**TRIGGERS[code])
    diags = run(root)
    assert [(d.code, d.file) for d in diags] == [(code, str(root / "floe.yaml"))], diags
    assert code in CODES


def test_every_code_the_engine_writes_has_a_trigger() -> None:
    """Each code the engine (floe_runtime/analysis) emits is shown emitted above; codes other
    fronts emit (the language server after a run) are registered and documented, and tested
    where they are made."""
    engine = set(codes_in_source(ENGINE))
    assert engine - set(TRIGGERS) == set(), "add a project that triggers these to TRIGGERS"


def test_floe020_where_the_model_expects_a_secret_ref(make_project: MakeProject) -> None:
    # `access_key_id` does not look like a credential by name; the model types it as a secret.
    dev = DEV.replace(
        "  default: {type: local}",
        "  default: {type: local}\n  lake:\n    type: s3\n    bucket: acme\n    credentials:\n"
        "      access_key_id: AKIA-sentinel\n      secret_access_key: {secret_ref: lake-secret}\n",
    )
    root = make_project(FLOE, {"dev": dev})
    diags = run(root)
    diag = only(diags, "FLOE020")
    assert diag.range == Range.of(7, 21, 7, 34)
    assert "AKIA-sentinel" not in diag.message
    assert [d.code for d in diags] == ["FLOE020"]


def test_floe020_ignores_booleans_and_references(make_project: MakeProject) -> None:
    floe = FLOE + "    vars:\n      token_refresh: true\n      secret_ref: not-a-value\n"
    root = make_project(floe, {"dev": DEV})
    assert run(root) == []


def test_floe005_messages_say_how_to_fix(make_project: MakeProject) -> None:
    floe = (
        "name: My Pipeline\nversion: 1.0\ntransforms:\n  - type: dbt\n    path: ./dbt\n"
        "    vars: {nested: {a: 1}}\n  - just a string\n"
    )
    root = make_project(floe, {"dev": DEV.replace('version: "1"', "version: 1")})
    messages = {(d.range.start.line, d.file.endswith("floe.yaml")): d.message for d in run(root)}
    assert messages[(0, True)].startswith("invalid 'name': use lower case letters")
    assert messages[(1, True)] == "'version' should be a string: put 1.0 in quotes"
    assert messages[(5, True)] == "'nested' should be a string, a number or true/false"
    assert messages[(6, True)] == "'transforms[1]' should be a mapping"
    assert messages[(0, False)] == "'version' should be the string \"1\": put it in quotes"


DUCKDB_SETTINGS = """  default:
    type: duckdb
    settings:
      s3_region: eu-west-1
"""


def _with_settings(*lines: str) -> str:
    return DEV.replace(
        "  default: {type: duckdb}\n", DUCKDB_SETTINGS + "".join(f"      {x}\n" for x in lines)
    )


def test_duckdb_setting_as_secret_ref_is_clean(make_project: MakeProject) -> None:
    root = make_project(
        FLOE, {"dev": _with_settings("s3_secret_access_key: {secret_ref: lake-secret}")}
    )
    assert run(root) == []


def test_floe020_literal_duckdb_setting(make_project: MakeProject) -> None:
    # The secret_ref sibling must stay quiet: only the literal is reported.
    dev = _with_settings(
        "s3_secret_access_key: abc-sentinel", "s3_session_token: {secret_ref: lake-token}"
    )
    root = make_project(FLOE, {"dev": dev})
    diags = run(root)
    assert [d.code for d in diags] == ["FLOE020"]
    assert diags[0].file == str(root / "platform" / "dev" / "platform.yaml")
    assert diags[0].range == Range.of(10, 28, 10, 40)
    assert "abc-sentinel" not in diags[0].message
    assert "secret_ref" in diags[0].message


def test_bad_secret_ref_in_duckdb_settings_is_reported_once_where_it_is(
    make_project: MakeProject,
) -> None:
    # A mapping where `str | int | bool | SecretRef` stands is a SecretRef: its own error,
    # not "should be a string ... or a mapping", and a missing `secret_ref` under its own key.
    dev = _with_settings("s3_secret_access_key: {secret_ref: Bad_Name}", "s3_session_token: {}")
    root = make_project(FLOE, {"dev": dev})
    diags = run(root)
    assert [(d.code, d.range) for d in diags] == [
        ("FLOE005", Range.of(10, 41, 10, 49)),
        ("FLOE004", Range.of(11, 6, 11, 22)),
    ]
    assert "Kubernetes secret name" in diags[0].message
    assert diags[1].message == "missing required key 'secret_ref'"
