"""Definition, references, rename, document links and inlay hints across both tiers."""

from __future__ import annotations

import re
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from floe_lsp.server import FloeLanguageServer
from floe_lsp.state import file_kind
from floe_lsp.tiers import (
    SECTION_KINDS,
    definitions,
    is_current,
    name_range,
    pipeline_doc,
    platform_doc,
    profile_at_platform,
    reference_at_pipeline,
    references_in,
)
from floe_runtime.analysis import Project, Range
from floe_runtime.config.base import PROFILE_NAME_PATTERN
from floe_runtime.config.pipeline import PROFILE_KINDS

_NAME = re.compile(PROFILE_NAME_PATTERN)


class Target:
    """A profile under the cursor: its kind, name, and the projects concerned."""

    def __init__(self, kind: str, name: str, rng: Range, projects: list[Project]) -> None:
        self.kind = kind
        self.section = PROFILE_KINDS[kind]
        self.name = name
        self.range = rng
        self.projects = projects


def target_at(
    ls: FloeLanguageServer, uri: str, position: types.Position
) -> tuple[Path, Target] | None:
    """The profile reference (floe.yaml) or definition (platform.yaml) at a position."""
    doc = ls.document(uri)
    if doc is None:
        return None
    path, text = doc
    conv = ls.converter(path, text)
    pos = conv.from_client(position)
    kind = file_kind(path)
    projects = ls.state.ensure(path)
    if kind == "pipeline":
        ydoc = pipeline_doc(ls, path)
        current = ydoc if is_current(ls, path, ydoc) else None
        found = reference_at_pipeline(current, pos.line, pos.character) if current else None
        if found is None:
            return None
        ref_kind, node = found
        return path, Target(ref_kind, str(node.value), name_range(node), projects)
    if kind == "platform":
        ydoc = platform_doc(ls, path)
        current = ydoc if is_current(ls, path, ydoc) else None
        hit = profile_at_platform(current, pos.line, pos.character) if current else None
        if hit is None:
            return None
        section, name, node = hit
        assert node.key_range is not None
        return path, Target(SECTION_KINDS[section], name, node.key_range, projects)
    return None


def _location(ls: FloeLanguageServer, path: Path, rng: Range) -> types.Location:
    return types.Location(uri=ls.uri(path), range=ls.converter(path).range(rng))


def definition(ls: FloeLanguageServer, uri: str, position: types.Position) -> list[types.Location]:
    """Reference → the profile's key in each platform.yaml; transform path → dbt_project.yml."""
    found = target_at(ls, uri, position)
    if found is not None:
        _, target = found
        out = []
        for project in target.projects:
            for d in definitions(ls, project, target.section, target.name):
                if d.node.key_range is not None:
                    out.append(_location(ls, d.platform_file, d.node.key_range))
        return out
    link = _transform_link_at(ls, uri, position)
    if link is not None:
        return [
            types.Location(
                uri=ls.uri(link),
                range=types.Range(
                    start=types.Position(line=0, character=0),
                    end=types.Position(line=0, character=0),
                ),
            )
        ]
    return []


def _transform_links(ls: FloeLanguageServer, path: Path) -> list[tuple[Range, Path]]:
    doc = pipeline_doc(ls, path)
    if doc is None or not is_current(ls, path, doc):
        return []
    node = doc.node(("transforms",))
    if node is None or node.kind != "seq":
        return []
    out = []
    for item in node.items:
        p = item.get("path") if item.kind == "map" else None
        if p is None or p.kind != "scalar" or not isinstance(p.value, str) or not p.value:
            continue
        try:
            target = (path.parent / p.value / "dbt_project.yml").resolve()
            found = target.is_file()
        except (OSError, ValueError):  # too long for the OS, NUL: the engine reports it
            continue
        if found:
            out.append((name_range(p), target))
    return out


def _transform_link_at(ls: FloeLanguageServer, uri: str, position: types.Position) -> Path | None:
    doc = ls.document(uri)
    if doc is None or file_kind(doc[0]) != "pipeline":
        return None
    pos = ls.converter(doc[0], doc[1]).from_client(position)
    for rng, target in _transform_links(ls, doc[0]):
        if rng.contains(pos):
            return target
    return None


def _uses(ls: FloeLanguageServer, target: Target) -> list[tuple[Path, Range]]:
    """Every floe.yaml naming the profile, in projects sharing the platform files concerned."""
    platform_files = {e.platform_file for p in target.projects for e in p.environments}
    out = []
    for project in ls.state.all_projects():
        if project in target.projects or platform_files & {
            e.platform_file for e in project.environments
        }:
            if not is_current(ls, project.pipeline_file, pipeline_doc(ls, project.pipeline_file)):
                continue  # its last good parse's ranges point into an older text
            for ref in references_in(ls, project.pipeline_file):
                if ref.kind == target.kind and ref.name == target.name:
                    out.append((project.pipeline_file, ref.range))
    return out


def _definitions(ls: FloeLanguageServer, target: Target) -> list[tuple[Path, Range]]:
    seen: set[Path] = set()
    out = []
    for project in target.projects:
        for d in definitions(ls, project, target.section, target.name):
            if d.platform_file in seen or not is_current(
                ls, d.platform_file, platform_doc(ls, d.platform_file)
            ):
                continue
            if d.node.key_range is not None:
                seen.add(d.platform_file)
                out.append((d.platform_file, d.node.key_range))
    return out


def references(
    ls: FloeLanguageServer, uri: str, position: types.Position, include_declaration: bool
) -> list[types.Location]:
    """Every floe.yaml use of the profile (and its definitions when asked)."""
    found = target_at(ls, uri, position)
    if found is None:
        return []
    _, target = found
    places = _uses(ls, target)
    if include_declaration:
        places += _definitions(ls, target)
    return [_location(ls, p, r) for p, r in places]


def prepare_rename(
    ls: FloeLanguageServer, uri: str, position: types.Position
) -> types.PrepareRenamePlaceholder | None:
    """Only profile names can be renamed."""
    found = target_at(ls, uri, position)
    if found is None:
        return None
    path, target = found
    return types.PrepareRenamePlaceholder(
        range=ls.converter(path).range(target.range), placeholder=target.name
    )


def _clashes(ls: FloeLanguageServer, target: Target, new_name: str) -> list[str]:
    """Platform files (as shown to the user) already defining a profile `new_name` of the kind.

    Every environment of the projects concerned counts, and of the projects whose
    floe.yaml the rename edits: a profile `new_name` in any of them is what those
    floe.yaml files would name afterwards.
    """
    pipelines = {path for path, _ in _uses(ls, target)}
    projects = [*target.projects]
    projects += [p for p in ls.state.all_projects() if p.pipeline_file in pipelines]
    out: list[str] = []
    for project in projects:
        for d in definitions(ls, project, target.section, new_name):
            try:
                shown = d.platform_file.relative_to(project.root).as_posix()
            except ValueError:
                shown = str(d.platform_file)
            if shown not in out:
                out.append(shown)
    return out


def _unparsed(ls: FloeLanguageServer, target: Target) -> list[str]:
    """Files a rename of `target` would edit whose current text does not parse."""
    platform_files = {e.platform_file for p in target.projects for e in p.environments}
    pipelines = {
        p.pipeline_file
        for p in ls.state.all_projects()
        if p in target.projects or platform_files & {e.platform_file for e in p.environments}
    }
    out = []
    for path in sorted(platform_files):
        if ls.text(path) is not None and not is_current(ls, path, platform_doc(ls, path)):
            out.append(str(path))
    for path in sorted(pipelines):
        if not is_current(ls, path, pipeline_doc(ls, path)):
            out.append(str(path))
    return out


def rename(
    ls: FloeLanguageServer, uri: str, position: types.Position, new_name: str
) -> types.WorkspaceEdit | None:
    """Rename a profile in every platform file and every floe.yaml using it (name tokens only)."""
    found = target_at(ls, uri, position)
    if found is None:
        return None
    _, target = found
    if not _NAME.fullmatch(new_name):  # fullmatch: `$` alone lets a trailing newline through
        raise JsonRpcInvalidParams(
            f"'{new_name}' is not a valid profile name"
            " (letters, digits, '-' and '_', starting with a letter, at most 63)"
        )
    if new_name == target.name:
        return ls.workspace_edit({})
    clashes = _clashes(ls, target, new_name)
    if clashes:
        # Renaming would leave two keys of one name, or point floe.yaml at another profile.
        raise JsonRpcException(
            f"cannot rename {target.kind} profile '{target.name}' to '{new_name}': "
            f"a {target.kind} profile '{new_name}' already exists in {', '.join(clashes)}",
            code=types.LSPErrorCodes.RequestFailed,
        )
    broken = _unparsed(ls, target)
    if broken:
        # Edits computed from a last good parse would land on the wrong characters.
        raise JsonRpcException(
            f"cannot rename {target.kind} profile '{target.name}' while "
            f"{', '.join(broken)} does not parse: fix the syntax error first",
            code=types.LSPErrorCodes.RequestFailed,
        )
    edits: dict[Path, list[types.TextEdit]] = {}
    for path, rng in _definitions(ls, target) + _uses(ls, target):
        conv = ls.converter(path)
        edits.setdefault(path, []).append(types.TextEdit(range=conv.range(rng), new_text=new_name))
    if target.name == "default":
        # A floe.yaml that leaves the key out uses `default`: name the new profile explicitly.
        for project in target.projects:
            doc = pipeline_doc(ls, project.pipeline_file)
            if doc is None or doc.root is None or doc.root.kind != "map":
                continue
            if target.kind in doc.root.entries:
                continue
            anchor = doc.root.entries.get("version") or doc.root.entries.get("name")
            line = anchor.range.end.line + 1 if anchor is not None else 0
            pos = types.Position(line=line, character=0)
            edits.setdefault(project.pipeline_file, []).append(
                types.TextEdit(
                    range=types.Range(start=pos, end=pos), new_text=f"{target.kind}: {new_name}\n"
                )
            )
    return ls.workspace_edit(edits)


def document_links(ls: FloeLanguageServer, uri: str) -> list[types.DocumentLink]:
    """Links from transform paths to their dbt_project.yml."""
    doc = ls.document(uri)
    if doc is None or file_kind(doc[0]) != "pipeline":
        return []
    conv = ls.converter(doc[0], doc[1])
    caps = ls.client_capabilities.text_document
    link_caps = caps.document_link if caps is not None else None
    tooltip = (
        "Open dbt_project.yml" if link_caps is not None and link_caps.tooltip_support else None
    )
    return [
        types.DocumentLink(range=conv.range(rng), target=ls.uri(target), tooltip=tooltip)
        for rng, target in _transform_links(ls, doc[0])
    ]


def inlay_hints(ls: FloeLanguageServer, uri: str, visible: types.Range) -> list[types.InlayHint]:
    """Beside each profile reference: what it resolves to per environment."""
    doc = ls.document(uri)
    if doc is None or file_kind(doc[0]) != "pipeline":
        return []
    path, text = doc
    if not is_current(ls, path, pipeline_doc(ls, path)):
        return []  # no hint rather than one beside the wrong text
    conv = ls.converter(path, text)
    projects = ls.state.ensure(path)
    hints = []
    for ref in references_in(ls, path):
        if not visible.start.line <= ref.range.end.line <= visible.end.line:
            continue
        parts = []
        for project in projects:
            defs = {
                d.environment: d
                for d in definitions(ls, project, PROFILE_KINDS[ref.kind], ref.name)
            }
            for env in project.environments:
                d = defs.get(env.name)
                parts.append(f"{(d.type or '?') if d else '✗'} ({env.name})")
        if not parts:
            continue
        end = ref.range.end
        # Lines as the LSP (and the engine) count them: `\r` alone ends one too.
        line = conv.lines[end.line] if end.line < len(conv.lines) else ""
        if line[end.character : end.character + 1] in ("'", '"'):
            end = type(end)(end.line, end.character + 1)
        hints.append(
            types.InlayHint(
                position=conv.position(end),
                label="→ " + " · ".join(parts),
                kind=types.InlayHintKind.Type,
                padding_left=True,
            )
        )
    return hints


def on_definition(ls: FloeLanguageServer, params: types.DefinitionParams) -> list[types.Location]:
    return definition(ls, params.text_document.uri, params.position)


def on_references(ls: FloeLanguageServer, params: types.ReferenceParams) -> list[types.Location]:
    return references(
        ls, params.text_document.uri, params.position, params.context.include_declaration
    )


def on_prepare_rename(
    ls: FloeLanguageServer, params: types.PrepareRenameParams
) -> types.PrepareRenamePlaceholder | None:
    return prepare_rename(ls, params.text_document.uri, params.position)


def on_rename(ls: FloeLanguageServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
    return rename(ls, params.text_document.uri, params.position, params.new_name)


def on_links(ls: FloeLanguageServer, params: types.DocumentLinkParams) -> list[types.DocumentLink]:
    return document_links(ls, params.text_document.uri)


def on_inlay(ls: FloeLanguageServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    return inlay_hints(ls, params.text_document.uri, params.range)
