"""`init`: scaffold a new pipeline project from the packaged template."""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from floe_runtime.schema import json_schema_text

TEMPLATE = "templates/project"
# Files whose text holds placeholders; the rest are copied as they are.
_RENAMES = {"gitignore": ".gitignore"}


class ScaffoldError(Exception):
    """The project cannot be created (files in the way, bad name)."""


def project_name(folder: Path) -> str:
    """A valid pipeline name from a folder name (`My Project` → `my-project`)."""
    name = re.sub(r"[^a-z0-9_-]+", "-", folder.name.lower()).strip("-_")
    if not name or not name[0].isalpha():
        name = f"pipeline-{name}" if name else "pipeline"
    return name[:63]


def _files(node: Traversable, prefix: Path = Path()) -> list[tuple[Path, Traversable]]:
    out: list[tuple[Path, Traversable]] = []
    for child in node.iterdir():
        if child.is_dir():
            out.extend(_files(child, prefix / child.name))
        else:
            out.append((prefix / _RENAMES.get(child.name, child.name), child))
    return out


def scaffold(target: Path, name: str | None = None, force: bool = False) -> list[Path]:
    """Create a project in `target`; return the files written.

    Refuses (ScaffoldError) when a file it would write exists, unless `force`.
    """
    name = name or project_name(target.resolve())
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", name):
        raise ScaffoldError(
            f"invalid pipeline name '{name}': use lower case letters, digits, '-' and '_', "
            "starting with a letter"
        )
    dbt_name = name.replace("-", "_")
    root = resources.files("floe_runtime").joinpath(TEMPLATE)
    plan = [(target / rel, src.read_text(encoding="utf-8")) for rel, src in _files(root)]
    plan.append((target / "schemas" / "floe.schema.json", json_schema_text("floe")))
    plan.append((target / "schemas" / "platform.schema.json", json_schema_text("platform")))
    existing = [path for path, _ in plan if path.exists()]
    if existing and not force:
        shown = ", ".join(str(p.relative_to(target)) for p in existing[:3])
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        raise ScaffoldError(f"{target} already has {shown}{more}; use --force to overwrite")
    written = []
    for path, text in sorted(plan):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            text.replace("__NAME__", name).replace("__DBT_NAME__", dbt_name), encoding="utf-8"
        )
        written.append(path)
    return written
