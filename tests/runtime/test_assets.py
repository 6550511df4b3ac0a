"""The dbt invocation floe starts itself: dagster-dbt's contract, and secrets kept in the child."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
from dagster_dbt import DbtCliInvocation

from floe_runtime.analysis.project import discover
from floe_runtime.compiler import compile_project
from floe_runtime.runtime.assets import dbt_invocation, parse_env
from floe_runtime.runtime.dbt_project import prepare_dbt
from floe_runtime.runtime.plan import plan_transforms
from floe_runtime.runtime.translator import FloeDbtTranslator
from tests.runtime.conftest import copy_project

pytestmark = pytest.mark.slow


def test_dagster_dbt_still_takes_the_invocation_floe_starts() -> None:
    """Fails loudly when a dagster-dbt upgrade changes the (not public) classmethod floe calls."""
    parameters = inspect.signature(DbtCliInvocation.run).parameters
    assert list(parameters)[:10] == [
        "args",
        "env",
        "manifest",
        "dagster_dbt_translator",
        "project_dir",
        "target_path",
        "raise_on_error",
        "context",
        "adapter",
        "cli_version",
    ]


def test_secrets_reach_the_dbt_process_and_never_this_one(tmp_path: Path) -> None:
    project = copy_project("shop", tmp_path / "shop")
    (project / "dbt" / "models" / "marts" / "token_echo.sql").write_text(
        "select '{{ env_var(\"SHOP_TOKEN\") }}' as token\n"
    )
    (project / ".floe").mkdir()
    artifacts = compile_project(discover(project))
    # dbt parse renders env_var() too: it gets a placeholder, the build gets the value.
    prepared = [
        prepare_dbt(artifacts, t, {**parse_env(artifacts), "SHOP_TOKEN": "x"})
        for t in artifacts.dbt
    ]
    (plan,) = plan_transforms(prepared, select="token_echo")
    translator = FloeDbtTranslator(artifacts, plan.prepared.target, plan.own, plan.elsewhere)
    assert "SHOP_TOKEN" not in os.environ

    invocation = dbt_invocation(
        ["build", "--select", "token_echo"], plan, translator, {"SHOP_TOKEN": "tok-sentinel-31"}
    )
    seen_during = "SHOP_TOKEN" in os.environ
    events = list(invocation.stream_raw_events())
    assert invocation.is_successful(), [e.raw_event["info"]["msg"] for e in events][-5:]
    assert not seen_during and "SHOP_TOKEN" not in os.environ

    import duckdb

    with duckdb.connect(str(project / ".floe" / "shop.duckdb"), read_only=True) as con:
        assert con.sql("select token from main.token_echo").fetchall() == [("tok-sentinel-31",)]
    # No `dbt --version` round trip: the version is the dbt-core beside this Python.
    assert str(invocation.cli_version).startswith("1.")
