"""Knowledge of both tiers: which profiles each environment defines, and where.

floe.yaml names logical profiles; each environment's platform.yaml defines
them. Completion, hover, definition, references, rename and inlay hints all
ask the same questions, answered here from the engine's documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from floe_lsp.server import FloeLanguageServer
from floe_runtime.analysis import Project, Range
from floe_runtime.analysis.loader import YamlDocument, YNode
from floe_runtime.analysis.secrets import shown
from floe_runtime.config.pipeline import PROFILE_KINDS

#: platform.yaml section → the floe.yaml key that references it.
SECTION_KINDS = {section: kind for kind, section in PROFILE_KINDS.items()}
#: Settings shown in hover and inlay hints, in this order, when a profile has them.
KEY_SETTINGS = (
    "bucket",
    "prefix",
    "region",
    "path",
    "uri",
    "warehouse",
    "host",
    "port",
    "dbname",
    "schema",
    "account",
    "database",
    "project",
    "dataset",
    "endpoint",
    "container",
)


@dataclass(frozen=True)
class ProfileDef:
    """One profile as one environment defines it."""

    environment: str
    platform_file: Path
    name: str
    node: YNode  # the profile's value node; node.key_range is the name

    @property
    def type(self) -> str | None:
        """The profile's `type`, when written as a scalar."""
        tag = self.node.get("type") if self.node.kind == "map" else None
        return str(tag.value) if tag is not None and tag.kind == "scalar" else None


def describe(node: YNode, key: str = "") -> str:
    """A short rendering of a value (under `key`) that never shows a credential."""
    return shown(key, node)


def platform_doc(ls: FloeLanguageServer, path: Path) -> YamlDocument | None:
    """The parsed platform.yaml (editor text first)."""
    checked = ls.state.checked_platform(path)
    return checked.document if checked is not None and checked.document.root is not None else None


def pipeline_doc(ls: FloeLanguageServer, path: Path) -> YamlDocument | None:
    """The parsed floe.yaml (editor text first)."""
    checked = ls.state.checked_pipeline(path)
    return checked.document if checked is not None and checked.document.root is not None else None


def is_current(ls: FloeLanguageServer, path: Path, doc: YamlDocument | None) -> bool:
    """Whether `doc` was parsed from the file's current text, so its positions hold there.

    While a file does not parse, the state hands out its last good parse: its names still
    resolve references, but its ranges point into an older text.
    """
    return doc is not None and doc.text == ls.text(path)


def definitions(
    ls: FloeLanguageServer, project: Project, section: str, name: str | None = None
) -> list[ProfileDef]:
    """Profiles of `section` across the project's environments (only `name` when given)."""
    out: list[ProfileDef] = []
    for env in project.environments:
        doc = platform_doc(ls, env.platform_file)
        node = doc.node((section,)) if doc is not None else None
        if node is None or node.kind != "map":
            continue
        for key, child in node.entries.items():
            if name is None or key == name:
                out.append(ProfileDef(env.name, env.platform_file, key, child))
    return out


def profile_names(
    ls: FloeLanguageServer, project: Project, section: str
) -> dict[str, list[ProfileDef]]:
    """Profile name → its definitions per environment."""
    out: dict[str, list[ProfileDef]] = {}
    for d in definitions(ls, project, section):
        out.setdefault(d.name, []).append(d)
    return out


@dataclass(frozen=True)
class Reference:
    """A profile reference written in a floe.yaml."""

    pipeline_file: Path
    kind: str  # storage | catalog | compute
    name: str
    range: Range  # the name token only (quotes excluded)


def name_range(node: YNode) -> Range:
    """The range of a scalar's text without its quotes."""
    rng = node.range
    if node.style in ("'", '"') and rng.start.line == rng.end.line:
        return Range.of(
            rng.start.line, rng.start.character + 1, rng.end.line, rng.end.character - 1
        )
    return rng


def references_in(ls: FloeLanguageServer, pipeline_file: Path) -> list[Reference]:
    """Profile references written in one floe.yaml."""
    doc = pipeline_doc(ls, pipeline_file)
    if doc is None or doc.root is None or doc.root.kind != "map":
        return []
    out = []
    for kind in PROFILE_KINDS:
        node = doc.root.entries.get(kind)
        if node is not None and node.kind == "scalar" and isinstance(node.value, str):
            out.append(Reference(pipeline_file, kind, node.value, name_range(node)))
    return out


def implicit_kinds(ls: FloeLanguageServer, pipeline_file: Path) -> list[str]:
    """Kinds a floe.yaml leaves out (so it uses the profile named `default`)."""
    doc = pipeline_doc(ls, pipeline_file)
    if doc is None or doc.root is None or doc.root.kind != "map":
        return []
    return [k for k in PROFILE_KINDS if k not in doc.root.entries]


def profile_at_platform(doc: YamlDocument, line: int, char: int) -> tuple[str, str, YNode] | None:
    """In a platform.yaml: (section, name, node) when (line, char) is on a profile's name."""
    from floe_runtime.analysis import Position

    if doc.root is None or doc.root.kind != "map":
        return None
    pos = Position(line, char)
    for section in SECTION_KINDS:
        node = doc.root.entries.get(section)
        if node is None or node.kind != "map":
            continue
        for name, child in node.entries.items():
            if child.key_range is not None and child.key_range.contains(pos):
                return section, name, child
    return None


def reference_at_pipeline(doc: YamlDocument, line: int, char: int) -> tuple[str, YNode] | None:
    """In a floe.yaml: (kind, node) when (line, char) is on a profile reference's value."""
    from floe_runtime.analysis import Position

    if doc.root is None or doc.root.kind != "map":
        return None
    pos = Position(line, char)
    for kind in PROFILE_KINDS:
        node = doc.root.entries.get(kind)
        if node is not None and node.kind == "scalar" and node.range.contains(pos):
            return kind, node
    return None


def as_mapping(data: Any) -> Mapping[str, Any]:
    """`data` when it is a mapping, else an empty one."""
    return data if isinstance(data, Mapping) else {}
