"""Schema checks: every missing key at once, and values typed as YAML 1.2 writes them."""

from __future__ import annotations

from floe_runtime.analysis.diagnostics import Range
from floe_runtime.analysis.engine import check_pipeline_text, check_platform_text


def test_every_missing_key_of_a_mapping_is_reported_at_once() -> None:
    text = 'version: "1"\ncompute:\n  warehouse:\n    type: postgres\n'
    diags = check_platform_text(text, "platform.yaml").diagnostics
    assert [(d.code, d.data["key"], d.range) for d in diags] == [
        ("FLOE004", "host", Range.of(2, 2, 2, 11)),
        ("FLOE004", "user", Range.of(2, 2, 2, 11)),
        ("FLOE004", "dbname", Range.of(2, 2, 2, 11)),
    ]
    assert [d.message for d in diags] == [
        "missing required key 'host'",
        "missing required key 'user'",
        "missing required key 'dbname'",
    ]


def test_missing_top_level_keys_are_all_reported() -> None:
    diags = check_pipeline_text("# a pipeline\nname: demo\n", "floe.yaml").diagnostics
    assert sorted(d.data["key"] for d in diags if d.code == "FLOE004") == ["transforms", "version"]


def _messages(text: str) -> dict[str, str]:
    diags = check_platform_text('version: "1"\n' + text, "platform.yaml").diagnostics
    return {d.data["path"][-1]: d.message for d in diags}


def test_a_quoted_number_is_a_string() -> None:
    text = (
        'compute:\n  w: {type: postgres, host: h, user: u, dbname: d, port: "5432"}\n'
        "observability:\n  traces: {exporter: otlp, endpoint: 'http://c:4318', "
        "timeout_seconds: '2.5'}\n"
    )
    assert _messages(text) == {
        "port": "'port' should be a whole number, not a string: remove the quotes around 5432",
        "timeout_seconds": (
            "'timeout_seconds' should be a number, not a string: remove the quotes around 2.5"
        ),
    }


def test_yaml_1_1_booleans_are_strings() -> None:
    floe = 'name: demo\nversion: "1.0.0"\ntransforms: [{type: dbt, path: d}]\n'
    text = floe + "observability: {traces: on, lineage: yes}\n"
    diags = check_pipeline_text(text, "floe.yaml").diagnostics
    assert sorted(d.message for d in diags) == [
        "'lineage' should be true or false: YAML 1.2 reads yes as a string; write true",
        "'traces' should be true or false: YAML 1.2 reads on as a string; write true",
    ]
    # ... and where a string is wanted they are just that.
    ok = floe + "description: yes\nobservability: {attributes: {team: on}}\n"
    checked = check_pipeline_text(ok, "floe.yaml")
    assert checked.diagnostics == ()
    assert checked.model is not None and checked.model.observability.attributes == {"team": "on"}


def test_numbers_of_yaml_1_2() -> None:
    text = "compute:\n  w: {type: postgres, host: h, user: u, dbname: d, port: 0o17}\n"
    checked = check_platform_text('version: "1"\n' + text, "platform.yaml")
    assert checked.diagnostics == ()
    assert checked.model is not None and checked.model.compute["w"].port == 15  # type: ignore[union-attr]
    # `1_000` is a YAML 1.1 number only.
    assert "'port' should be a whole number" in _messages(text.replace("0o17", "1_000"))["port"]
