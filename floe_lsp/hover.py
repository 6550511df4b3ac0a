"""Hover: field documentation from the models; on a profile reference, what each environment resolves."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from floe_lsp.completion import locate, type_label
from floe_lsp.server import FloeLanguageServer
from floe_lsp.tiers import SECTION_KINDS, definitions, implicit_kinds, references_in
from floe_runtime.analysis import Position, Project, Range
from floe_runtime.analysis.secrets import profile_settings
from floe_runtime.config.introspect import slot_at
from floe_runtime.config.pipeline import PROFILE_KINDS, Pipeline


def profile_markdown(ls: FloeLanguageServer, projects: list[Project], kind: str, name: str) -> str:
    """What `name` resolves to in each environment (secrets as references only, literals masked)."""
    section = PROFILE_KINDS[kind]
    lines = [f"**{kind}** profile `{name}`", ""]
    for project in projects:
        defs = {d.environment: d for d in definitions(ls, project, section, name)}
        for env in project.environments:
            d = defs.get(env.name)
            if d is None:
                lines.append(
                    f"- **{env.name}**: ✗ not defined in `{_shown(project, env.platform_file)}`"
                )
                continue
            settings = ", ".join(f"{k}: `{v}`" for k, v in profile_settings(section, d.node))
            lines.append(
                f"- **{env.name}**: `{d.type or '?'}`" + (f" — {settings}" if settings else "")
            )
        if not project.environments:
            lines.append("- no platform.yaml found for this pipeline")
    return "\n".join(lines)


def _shown(project: Project, path: object) -> str:
    try:
        return str(path.relative_to(project.root))  # type: ignore[attr-defined]
    except (ValueError, AttributeError):
        return str(path)


def hover(ls: FloeLanguageServer, uri: str, position: types.Position) -> types.Hover | None:
    """Hover contents at a position, or None."""
    here = locate(ls, uri, position)
    if here is None or here.cur.kind == "none" or not here.cur.text:
        return None
    path, model, conv, cur = here.path, here.model, here.conv, here.cur
    rng = conv.range(Range(Position(cur.line, cur.start), Position(cur.line, cur.end)))
    if (
        cur.kind == "value"
        and model is Pipeline
        and len(cur.path) == 1
        and cur.path[0] in PROFILE_KINDS
    ):
        body = profile_markdown(ls, ls.state.ensure(path), str(cur.path[0]), cur.text)
        return _hover(ls, body, rng)
    if (
        cur.kind == "key"
        and model is not Pipeline
        and len(cur.path) == 1
        and cur.path[0] in SECTION_KINDS
    ):
        return _hover(ls, _profile_uses(ls, path, str(cur.path[0]), cur.text), rng)
    target = (*cur.path, cur.text) if cur.kind == "key" else cur.path
    runs = _last_runs(ls, path, model, target)
    if cur.kind == "value":
        parent = slot_at(model, target[:-1], cur.data)
        if parent is not None and parent.discriminator == target[-1]:
            member = parent.tag_values().get(cur.text)
            if member is not None:
                doc_text = (member.__doc__ or "").strip()
                return _hover(ls, f"**{target[-1]}: {cur.text}** — {doc_text}{runs}", rng)
    slot = slot_at(model, target, cur.data)
    if slot is None:
        return None
    body = f"**{target[-1]}** · {type_label(slot)}"
    if slot.description:
        body += f"\n\n{slot.description}"
    if slot.field is not None and not slot.field.is_required() and slot.field.default is not None:
        default = slot.field.default
        if isinstance(default, (str, int, float, bool)):
            body += f"\n\nDefault: `{default}`"
    return _hover(ls, body + runs, rng)


def _last_runs(
    ls: FloeLanguageServer, path: Path, model: object, target: tuple[object, ...]
) -> str:
    """Inside a transform of floe.yaml: its models' last run per environment, as a section."""
    if model is not Pipeline or target[:1] != ("transforms",) or len(target) < 2:
        return ""
    index = target[1]
    if not isinstance(index, int):
        return ""
    from floe_lsp import run_results

    markdown = run_results.transform_markdown(ls, path, index)
    return f"\n\n---\n\n{markdown}" if markdown else ""


def _profile_uses(ls: FloeLanguageServer, path: Path, section: str, name: str) -> str:
    """On a profile's name in a platform.yaml: its kind and the pipelines naming it."""
    kind = SECTION_KINDS[section]
    lines = [f"**{kind}** profile `{name}`", ""]
    users = []
    for project in ls.state.ensure(path):
        for ref in references_in(ls, project.pipeline_file):
            if ref.kind == kind and ref.name == name:
                users.append(f"{project.root.name}/floe.yaml")
        if name == "default" and kind in implicit_kinds(ls, project.pipeline_file):
            users.append(f"{project.root.name}/floe.yaml (by default)")
    if users:
        lines.append("Used by: " + ", ".join(f"`{u}`" for u in users))
    else:
        lines.append("No floe.yaml of this environment names it.")
    return "\n".join(lines)


def _hover(ls: FloeLanguageServer, body: str, rng: types.Range) -> types.Hover:
    kind = types.MarkupKind.Markdown if ls.markdown else types.MarkupKind.PlainText
    return types.Hover(contents=types.MarkupContent(kind=kind, value=body), range=rng)


def on_hover(ls: FloeLanguageServer, params: types.HoverParams) -> types.Hover | None:
    return hover(ls, params.text_document.uri, params.position)
