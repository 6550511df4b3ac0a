"""Which dbt nodes each transform builds, and in how many dbt invocations.

Pure manifest logic (no dbt process, no Dagster run): the asset factory turns a
plan into a multi-asset and its body runs one `dbt build` per phase.

- A transform's nodes are its own `select`/`exclude`, narrowed by the run's
  `--select` (never replaced by it), so a selection can neither drop the
  transform's `exclude` nor pull another transform's nodes in.
- Transforms sharing one dbt project build each node once: the first transform
  selecting a node builds it; a test selected by several runs with the
  transform that builds the model it is attached to.
- A seed whose relation a source reads (the jaffle-shop pattern) is built in an
  earlier phase than the models reading that source: dbt does not know the two
  are one table, and plain `dbt build` runs the views first on a fresh database.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from floe_runtime.runtime.dbt_project import PreparedDbt

_BUILT = ("model", "seed", "snapshot")


class SelectionError(Exception):
    """A selection matches no node: nothing would run."""


def select_ids(manifest: Mapping[str, Any], select: str, exclude: str = "") -> frozenset[str]:
    """Unique ids dbt's own selector picks (eager indirect selection, as `dbt build` does)."""
    from dagster_dbt.utils import select_unique_ids

    # dbt's logger prints "does not match any enabled nodes" (with colour codes) straight to
    # the stdout it captured at start-up; floe says it in its own words.
    with _quiet_stdout():
        return frozenset(select_unique_ids(select, exclude, "", None, manifest))


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Send file descriptor 1 (and sys.stdout) to /dev/null for the block."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(io.StringIO()):
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def node(manifest: Mapping[str, Any], unique_id: str) -> Mapping[str, Any]:
    """A node's manifest entry (nodes, sources or unit tests); {} when unknown."""
    for section in ("nodes", "sources", "unit_tests"):
        value = manifest.get(section, {}).get(unique_id)
        if value is not None:
            return value  # type: ignore[no-any-return]
    return {}


def parents(manifest: Mapping[str, Any], unique_id: str) -> list[str]:
    """The nodes a node depends on (models, seeds, snapshots, sources)."""
    return list(node(manifest, unique_id).get("depends_on", {}).get("nodes", []))


def fqn_selector(manifest: Mapping[str, Any], unique_ids: Iterable[str]) -> str:
    """A dbt selection naming exactly these nodes by fully qualified name."""
    names = {"fqn:" + ".".join(node(manifest, uid).get("fqn") or [uid]) for uid in unique_ids}
    return " ".join(sorted(names))


def _relation(props: Mapping[str, Any]) -> tuple[str, str, str]:
    name = props.get("identifier") if props.get("resource_type") == "source" else None
    name = name or props.get("alias") or props.get("name") or ""
    return (
        str(props.get("database") or "").lower(),
        str(props.get("schema") or "").lower(),
        str(name).lower(),
    )


def seeds_read_as_sources(manifest: Mapping[str, Any]) -> dict[str, str]:
    """source unique id → the seed whose relation it reads."""
    seeds = {
        _relation(props): uid
        for uid, props in manifest.get("nodes", {}).items()
        if props.get("resource_type") == "seed"
    }
    return {
        uid: seeds[_relation(props)]
        for uid, props in manifest.get("sources", {}).items()
        if _relation(props) in seeds
    }


@dataclass
class TransformPlan:
    """One transform's nodes, and who builds the nodes it shares with other transforms."""

    prepared: PreparedDbt
    manifest: dict[str, Any]
    own: frozenset[str]
    #: unique id → namespace of the transform that builds it (transforms sharing a project).
    elsewhere: dict[str, str] = field(default_factory=dict)

    @property
    def phases(self) -> list[frozenset[str]]:
        """The dbt invocations, in order: seeds read through sources first, then the rest."""
        backing = seeds_read_as_sources(self.manifest)
        early = {
            seed
            for uid in self.own
            for parent in parents(self.manifest, uid)
            if (seed := backing.get(parent)) in self.own
        }
        if not early:
            return [self.own]
        first = set(early)
        for uid in self.own:
            ups = parents(self.manifest, uid)
            if uid.startswith("test.") and ups and set(ups) <= early:
                first.add(uid)
        return [frozenset(first), self.own - first]

    def descendants(self, unique_ids: Iterable[str]) -> set[str]:
        """Nodes of this plan downstream of these (through sources that read a seed, too)."""
        seed_sources: dict[str, list[str]] = {}
        for source, seed in seeds_read_as_sources(self.manifest).items():
            seed_sources.setdefault(seed, []).append(source)
        children: dict[str, list[str]] = {}
        for uid in self.own:
            for parent in parents(self.manifest, uid):
                children.setdefault(parent, []).append(uid)
        found: set[str] = set()
        todo = list(unique_ids)
        while todo:
            current = todo.pop()
            for child in children.get(current, []) + [
                c for s in seed_sources.get(current, []) for c in children.get(s, [])
            ]:
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found


def plan_transforms(
    prepared: list[PreparedDbt], select: str | None = None, exclude: str | None = None
) -> list[TransformPlan]:
    """Plan every transform; raises SelectionError when a selection matches nothing."""
    plans: list[TransformPlan] = []
    for item in prepared:
        manifest = item.manifest()
        target = item.target
        own = select_ids(manifest, target.select or "fqn:*", target.exclude or "")
        if not own and not select:
            raise SelectionError(
                f"transform {target.index + 1} ({target.namespace}): select "
                f"'{target.select or '*'}'"
                + (f" with exclude '{target.exclude}'" if target.exclude else "")
                + " matches no dbt node"
            )
        if select or exclude:
            own &= select_ids(manifest, select or "fqn:*", exclude or "")
        plans.append(TransformPlan(item, manifest, own))
    if select and not any(plan.own for plan in plans):
        raise SelectionError(
            f"--select '{select}' matches no node of the pipeline's dbt transforms"
            + (
                " (within their own select/exclude)"
                if any(p.prepared.target.select or p.prepared.target.exclude for p in plans)
                else ""
            )
        )
    if len(plans) > 1:  # only transforms sharing a dbt project need to know who builds what
        _share_nodes(plans)
    return [plan for plan in plans if plan.own]


def _share_nodes(plans: list[TransformPlan]) -> None:
    """Give each node to the first transform selecting it, and each shared test to one transform.

    Keys of nodes another transform builds then carry that transform's namespace
    (Dagster orders the two), and a test selected by several transforms runs with
    the one building the model it is attached to (else the last), once.
    """
    builders: dict[tuple[str, str], int] = {}  # (dbt project, unique id) → plan index
    tests: dict[tuple[str, str], list[int]] = {}
    for index, plan in enumerate(plans):
        project_dir = plan.prepared.target.project_dir
        for unique_id in sorted(plan.own):
            key = (project_dir, unique_id)
            if unique_id.startswith(("test.", "unit_test.")):
                tests.setdefault(key, []).append(index)
            elif key not in builders:
                builders[key] = index
            else:
                plan.own -= {unique_id}
    for (project_dir, unique_id), indexes in tests.items():
        props = node(plans[indexes[0]].manifest, unique_id)
        attached = props.get("attached_node") or (
            props.get("depends_on", {}).get("nodes", [None])[0]
            if unique_id.startswith("unit_test.")
            else None
        )
        home = builders.get((project_dir, attached)) if attached else None
        runner = home if home in indexes else indexes[-1]
        for index in indexes:
            if index != runner:
                plans[index].own -= {unique_id}
    for plan in plans:
        project_dir = plan.prepared.target.project_dir
        plan.elsewhere = {
            uid: plans[at].prepared.target.namespace
            for (proj, uid), at in builders.items()
            if proj == project_dir
        }
