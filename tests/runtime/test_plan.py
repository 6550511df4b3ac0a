"""Who builds what, in which dbt invocation: plans over manifests real `dbt parse` wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from floe_runtime.analysis.project import discover
from floe_runtime.compiler import compile_project
from floe_runtime.runtime.assets import parse_env
from floe_runtime.runtime.dbt_project import PreparedDbt, prepare_dbt
from floe_runtime.runtime.plan import SelectionError, plan_transforms, seeds_read_as_sources
from tests.runtime.conftest import copy_example, copy_project


def _prepared(project: Path, env: str | None = None) -> list[PreparedDbt]:
    artifacts = compile_project(discover(project, env))
    return [prepare_dbt(artifacts, t, parse_env(artifacts)) for t in artifacts.dbt]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> list[PreparedDbt]:
    return _prepared(copy_project("shop", tmp_path_factory.mktemp("plan") / "shop"))


def test_sources_over_seed_relations_are_found(shop: list[PreparedDbt]) -> None:
    assert seeds_read_as_sources(shop[0].manifest()) == {
        "source.shop.ecom.raw_customers": "seed.shop.raw_customers",
        "source.shop.ecom.raw_orders": "seed.shop.raw_orders",
    }


def test_seeds_read_as_sources_build_in_an_earlier_invocation(shop: list[PreparedDbt]) -> None:
    (plan,) = plan_transforms(shop)
    first, second = plan.phases
    assert first == {"seed.shop.raw_customers", "seed.shop.raw_orders"}
    assert first | second == plan.own and not first & second
    assert "model.shop.stg_orders" in second
    assert "unit_test.shop.customers.customers_sums_order_totals" in second


def test_a_failed_seed_skips_what_reads_it_through_its_source(shop: list[PreparedDbt]) -> None:
    (plan,) = plan_transforms(shop)
    below = plan.descendants({"seed.shop.raw_orders"})
    assert {"model.shop.stg_orders", "model.shop.orders", "model.shop.customers"} <= below
    assert "model.shop.stg_customers" not in below


def test_select_narrows_and_nothing_selected_is_an_error(shop: list[PreparedDbt]) -> None:
    (plan,) = plan_transforms(shop, select="customers")
    assert "model.shop.customers" in plan.own and "model.shop.orders" not in plan.own
    with pytest.raises(SelectionError, match="--select 'no_such' matches no node"):
        plan_transforms(shop, select="no_such")


def test_two_transforms_sharing_a_project_build_each_node_once(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "ca")
    floe_yaml = project / "floe.yaml"
    floe_yaml.write_text(
        floe_yaml.read_text().replace(
            "  - type: dbt\n    path: ./dbt\n    namespace: analytics\n",
            "  - type: dbt\n    path: ./dbt\n    exclude: customer_orders\n    namespace: analytics\n"
            "  - type: dbt\n    path: ./dbt\n    select: staging\n    namespace: staging\n",
        )
    )
    prepared = _prepared(project, "dev")
    marts, staging = plan_transforms(prepared)
    assert not marts.own & staging.own  # the first transform selecting a node builds it
    assert "model.customer_analytics.customer_orders" not in marts.own | staging.own
    assert "model.customer_analytics.stg_orders" in marts.own
    assert staging.elsewhere["model.customer_analytics.stg_orders"] == "analytics"
    # --select narrows each transform: its exclude still holds, and nothing is built twice.
    plans = plan_transforms(prepared, select="customer_orders stg_orders")
    owned = [uid for plan in plans for uid in plan.own if uid.startswith("model.")]
    assert sorted(owned) == ["model.customer_analytics.stg_orders"]
