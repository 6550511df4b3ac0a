"""How two environments of a pipeline differ: per profile the pipeline uses, type and settings.

One rule for both fronts: `floe-runtime diff ENV_A ENV_B` prints it as a table,
the language server's `floe.diffEnvironments` as markdown. Values are rendered
by the engine's credential rule (analysis/secrets.py): a secret reference shows
its name, a literal credential `***`, a URL its password masked. A resolved
secret is never read: the comparison works on the files only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from floe_runtime.analysis.engine import analyze, read_disk
from floe_runtime.analysis.project import Project
from floe_runtime.analysis.secrets import mask_text, profile_settings
from floe_runtime.config.pipeline import PROFILE_KINDS

#: Shown for a setting (or a profile) an environment does not have.
ABSENT = "—"


@dataclass(frozen=True)
class SettingDiff:
    """One setting of a profile in both environments (ABSENT where one lacks it)."""

    key: str
    a: str
    b: str

    @property
    def same(self) -> bool:
        return self.a == self.b


@dataclass(frozen=True)
class ProfileDiff:
    """One profile the pipeline uses (`kind` storage/catalog/compute, its `name`), in both."""

    kind: str
    name: str
    #: Where each environment defines it (`platform/dev/platform.yaml`), None when it does not.
    file_a: str | None
    file_b: str | None
    #: `type` first, then every other setting either environment has, in file order.
    settings: tuple[SettingDiff, ...]

    @property
    def same(self) -> bool:
        return (
            self.file_a is not None
            and self.file_b is not None
            and all(s.same for s in self.settings)
        )

    @property
    def differences(self) -> list[SettingDiff]:
        """The settings whose values differ."""
        return [s for s in self.settings if not s.same]


@dataclass(frozen=True)
class EnvironmentDiff:
    """The profiles of a pipeline compared across two environments."""

    pipeline: str
    env_a: str
    env_b: str
    profiles: tuple[ProfileDiff, ...]
    #: Files that could not be read in full (YAML errors): their profiles may show as missing.
    unreadable: tuple[str, ...] = ()

    @property
    def same(self) -> bool:
        return all(p.same for p in self.profiles)


def _settings(section: str, node: object) -> dict[str, str]:
    """A profile's `type` and its other settings, rendered without credentials."""
    from floe_runtime.analysis.loader import YNode

    if not isinstance(node, YNode) or node.kind != "map":
        return {}
    out: dict[str, str] = {}
    kind = node.entries.get("type")
    if kind is not None:
        out["type"] = mask_text(kind.raw) if kind.kind == "scalar" else "?"
    out.update(profile_settings(section, node))
    return out


def diff_environments(
    project: Project,
    env_a: str,
    env_b: str,
    read: Callable[[Path], str | None] = read_disk,
) -> EnvironmentDiff:
    """Compare environments `env_a` and `env_b` of `project` (ProjectError for an unknown one).

    `read` gives a file's text (the editor passes its open documents). Profiles are
    the ones floe.yaml names (`default` where it names none), as `validate` reads them.
    """
    envs = [project.environment(env_a), project.environment(env_b)]
    analysis = analyze(Project(project.root, project.pipeline_file, tuple(envs)), read)
    root = analysis.pipeline.document.root
    entries = root.entries if root is not None and root.kind == "map" else {}
    profiles = []
    for kind, section in PROFILE_KINDS.items():
        named = entries.get(kind)
        name = named.value if named is not None and isinstance(named.value, str) else "default"
        sides: list[dict[str, str] | None] = []
        files: list[str | None] = []
        for env in envs:
            doc = analysis.platforms[env.name].document
            node = doc.node((section, name)) if doc.root is not None else None
            sides.append(_settings(section, node) if node is not None else None)
            files.append(_shown(env.platform_file, project.root) if node is not None else None)
        a, b = sides[0] or {}, sides[1] or {}
        keys = list(dict.fromkeys([*a, *b]))
        settings = tuple(SettingDiff(k, a.get(k, ABSENT), b.get(k, ABSENT)) for k in keys)
        profiles.append(ProfileDiff(kind, name, files[0], files[1], settings))
    pipeline = entries.get("name")
    title = pipeline.value if pipeline is not None and isinstance(pipeline.value, str) else ""
    unreadable = [
        _shown(path, project.root)
        for path, doc in [
            (project.pipeline_file, analysis.pipeline.document),
            *((e.platform_file, analysis.platforms[e.name].document) for e in envs),
        ]
        if not doc.ok
    ]
    return EnvironmentDiff(
        title or project.root.name, env_a, env_b, tuple(profiles), tuple(dict.fromkeys(unreadable))
    )


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def rows(diff: EnvironmentDiff) -> list[tuple[str, str, str, str]]:
    """(profile, setting, value in A, value in B) for every difference; one `(same)` row otherwise."""
    out = []
    for p in diff.profiles:
        label = f"{p.kind} {p.name}"
        if p.file_a is None or p.file_b is None:
            out.append((label, "(profile)", *_defined(p)))
        elif p.same:
            out.append((label, "(same)", "", ""))
            continue
        out.extend((label, s.key, s.a, s.b) for s in p.differences)
    return out


def _defined(p: ProfileDiff) -> tuple[str, str]:
    return (
        p.file_a if p.file_a is not None else "not defined",
        p.file_b if p.file_b is not None else "not defined",
    )


def table(diff: EnvironmentDiff) -> str:
    """The comparison as aligned plain-text columns (the CLI's output)."""
    header = ("profile", "setting", diff.env_a, diff.env_b)
    body = rows(diff)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *body]
    ]
    return "\n".join(lines)


def markdown(diff: EnvironmentDiff) -> str:
    """The comparison as markdown (the editor's)."""
    out = [f"# {diff.pipeline}: `{diff.env_a}` ↔ `{diff.env_b}`", ""]
    for file in diff.unreadable:
        out += [f"> `{file}` has YAML errors: its profiles may show as not defined.", ""]
    if diff.same:
        out += ["The environments define the same profiles with the same settings.", ""]
    for p in diff.profiles:
        out.append(f"## {p.kind} `{p.name}`" + (" — same" if p.same else ""))
        out.append("")
        if p.file_a is None or p.file_b is None:
            a, b = _defined(p)
            out += [f"- `{diff.env_a}`: {a}", f"- `{diff.env_b}`: {b}", ""]
        if p.same or not p.settings:
            continue
        out += [f"| setting | {diff.env_a} | {diff.env_b} |", "|---|---|---|"]
        for s in p.settings:
            mark = "" if s.same else " ≠"
            out.append(f"| `{s.key}`{mark} | {_cell(s.a)} | {_cell(s.b)} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _cell(value: str) -> str:
    return ABSENT if value == ABSENT else "`" + value.replace("|", "\\|").replace("`", "'") + "`"
