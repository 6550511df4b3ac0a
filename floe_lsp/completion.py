"""Completion: keys valid at the cursor, enum and tag values, profile names, dbt paths, secrets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from floe_lsp.context import Cursor, cursor_at
from floe_lsp.convert import Converter
from floe_lsp.server import FloeLanguageServer
from floe_lsp.state import SKIP_DIRS, file_kind
from floe_lsp.tiers import SECTION_KINDS, platform_doc, profile_names, references_in
from floe_runtime.analysis import Position, Project, Range
from floe_runtime.config.base import SecretRef
from floe_runtime.config.introspect import Slot, keys_at, slot_at, slot_of_field
from floe_runtime.config.pipeline import PROFILE_KINDS, Pipeline
from floe_runtime.config.platform import Platform

TRIGGERS = [":", " ", "/", "."]


def model_for(path: Path) -> type[BaseModel] | None:
    """The model a file is checked against."""
    kind = file_kind(path)
    return Pipeline if kind == "pipeline" else Platform if kind == "platform" else None


@dataclass(frozen=True)
class Located:
    """A request's position resolved against its document: file, model, converter, cursor."""

    path: Path
    text: str
    model: type[BaseModel]
    conv: Converter
    cur: Cursor


def locate(ls: FloeLanguageServer, uri: str, position: types.Position) -> Located | None:
    """Where a completion or hover request points, or None for a file floe does not check."""
    doc = ls.document(uri)
    if doc is None:
        return None
    path, text = doc
    model = model_for(path)
    if model is None:
        return None
    conv = ls.converter(path, text)
    pos = conv.from_client(position)
    return Located(
        path, text, model, conv, cursor_at(text, pos.line, pos.character, ls.trees, str(path))
    )


def type_label(slot: Slot) -> str:
    """A short human name of what a slot holds."""
    if slot.discriminator is not None:
        return f"one of {len(slot.members)} kinds by '{slot.discriminator}'"
    if slot.model is SecretRef:
        return "secret_ref"
    if slot.model is not None:
        return "mapping"
    if slot.is_mapping:
        return "mapping of names"
    if slot.is_list:
        return "list"
    values = slot.enum_values
    if values:
        return " | ".join(_yaml(v) for v in values)
    tp = slot.tp
    return getattr(tp, "__name__", str(tp))


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("$", "\\$").replace("}", "\\}")


def _docs(ls: FloeLanguageServer, text: str | None) -> types.MarkupContent | None:
    if not text:
        return None
    kind = types.MarkupKind.Markdown if ls.markdown else types.MarkupKind.PlainText
    return types.MarkupContent(kind=kind, value=text)


@dataclass(frozen=True)
class Spot:
    """Where a completion edit goes: the cursor's span, shaped for what surrounds it."""

    cur: Cursor
    conv: Converter

    def _range(self, span: tuple[int, int]) -> types.Range:
        line = self.cur.line
        return self.conv.range(Range(Position(line, span[0]), Position(line, span[1])))

    def key(self, body: str) -> types.TextEdit:
        """An edit putting a key (with what follows it) at the cursor."""
        cur = self.cur
        # A quoted key still without its `:` is replaced with its quotes: the body brings one.
        span = cur.outer if cur.quote and cur.outer is not None and not cur.colon else None
        return types.TextEdit(range=self._range(span or cur.edit_span), new_text=cur.lead + body)

    def value(self, text: str, string: str | None = None) -> types.TextEdit:
        """An edit putting a value, as YAML `text`, at the cursor.

        `string` is the value when it is a plain string: inside quotes it goes in
        as it is; any other value replaces the quotes too.
        """
        cur = self.cur
        if cur.quote and string is not None and cur.quote not in string and "\\" not in string:
            return types.TextEdit(range=self._range(cur.edit_span), new_text=string)
        if cur.quote and cur.outer is not None:
            return types.TextEdit(range=self._range(cur.outer), new_text=text)
        return types.TextEdit(range=self._range(cur.edit_span), new_text=cur.lead + text)


def key_item(
    ls: FloeLanguageServer,
    key: str,
    info: FieldInfo,
    spot: Spot,
    tags: list[str] | None = None,
) -> types.CompletionItem:
    """A completion item for a key, with a snippet shaped for its value when allowed.

    `tags` lists every value of a tagged union's tag when `key` is that tag. A
    key that already has its `:` is replaced by the name alone; inside a flow
    collection the value's snippet is in flow style, on the line.
    """
    slot = slot_of_field(key, info)
    required = info.is_required()
    detail = type_label(slot)
    if tags:
        detail = " | ".join(tags)
    cur = spot.cur
    indent = " " * (cur.start + len(cur.lead))
    nested = slot.model is not None or slot.is_mapping or slot.discriminator is not None
    if cur.colon:
        body = key
        fmt = types.InsertTextFormat.PlainText
    elif ls.snippets:
        if slot.model is SecretRef:
            body = f"{key}: {{secret_ref: ${{1:name}}}}"
        elif nested:
            body = f"{key}: {{$0}}" if cur.flow else f"{key}:\n{indent}  $0"
        elif slot.is_list:
            body = f"{key}: [$0]" if cur.flow else f"{key}:\n{indent}  - $0"
        elif tags or slot.enum_values:
            choices = ",".join(_escape(_as_yaml_value(v)) for v in (tags or slot.enum_values))
            body = f"{key}: ${{1|{choices}|}}"
        else:
            body = f"{key}: $0"
        fmt = types.InsertTextFormat.Snippet
    else:
        body = f"{key}: "
        fmt = types.InsertTextFormat.PlainText
    return types.CompletionItem(
        label=key,
        kind=types.CompletionItemKind.Property,
        detail=("required · " if required else "") + detail,
        documentation=_docs(ls, slot.description),
        sort_text=("0" if required else "1") + key,
        filter_text=key,
        insert_text_format=fmt,
        text_edit=spot.key(body),
    )


def value_item(
    ls: FloeLanguageServer,
    label: str,
    edit: types.TextEdit,
    *,
    detail: str | None = None,
    doc: str | None = None,
    kind: types.CompletionItemKind = types.CompletionItemKind.Value,
    snippet: bool = False,
    sort: str | None = None,
) -> types.CompletionItem:
    """A completion item for a value (or a name), inserted by `edit`."""
    return types.CompletionItem(
        label=label,
        kind=kind,
        detail=detail,
        documentation=_docs(ls, doc),
        filter_text=label,
        sort_text=sort,
        insert_text_format=types.InsertTextFormat.Snippet
        if snippet
        else types.InsertTextFormat.PlainText,
        text_edit=edit,
    )


def dbt_folders(root: Path, limit: int = 200) -> list[str]:
    """Folders under `root` holding dbt_project.yml, as `./relative` paths."""
    out: list[str] = []
    base = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if len(here.parts) - base >= 4:
            dirnames[:] = []
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        if "dbt_project.yml" in filenames:
            rel = here.relative_to(root).as_posix()
            out.append("./" + rel if rel != "." else ".")
            if len(out) >= limit:
                break
    return out


def complete(ls: FloeLanguageServer, uri: str, position: types.Position) -> types.CompletionList:
    """Completion items at a position (never raises for odd text)."""
    empty = types.CompletionList(is_incomplete=False, items=[])
    here = locate(ls, uri, position)
    if here is None or here.cur.kind == "none":
        return empty
    path, model, conv, cur = here.path, here.model, here.conv, here.cur
    spot = Spot(cur, conv)
    projects = ls.state.ensure(path)
    if cur.kind == "key":
        items = _keys(ls, model, cur, spot, path, projects)
    else:
        items = _values(ls, model, cur, spot, path, projects)
    return types.CompletionList(is_incomplete=False, items=items)


def _keys(
    ls: FloeLanguageServer,
    model: type[BaseModel],
    cur: Cursor,
    spot: Spot,
    path: Path,
    projects: list[Project],
) -> list[types.CompletionItem]:
    if cur.flow:
        slot = slot_at(model, cur.path, cur.data)
        if slot is not None and slot.model is SecretRef:
            return [
                value_item(
                    ls,
                    "secret_ref",
                    spot.key("secret_ref" if cur.colon else "secret_ref: "),
                    detail="secret reference",
                    kind=types.CompletionItemKind.Property,
                    doc=slot.description,
                )
            ]
    fields = keys_at(model, cur.path, cur.data)
    holder = slot_at(model, cur.path, cur.data)
    tag_key = holder.discriminator if holder is not None else None
    tags = list(holder.tag_values()) if holder is not None and tag_key else None
    items = [
        key_item(ls, key, info, spot, tags if key == tag_key else None)
        for key, info in fields.items()
        if key not in cur.present
    ]
    if not fields and model is Platform and len(cur.path) == 1 and cur.path[0] in SECTION_KINDS:
        # A profile name: offer the names floe.yaml files reference but this section lacks.
        kind = SECTION_KINDS[str(cur.path[0])]
        wanted: set[str] = set()
        for project in projects:
            for ref in references_in(ls, project.pipeline_file):
                if ref.kind == kind:
                    wanted.add(ref.name)
        for name in sorted(wanted - cur.present):
            items.append(
                value_item(
                    ls,
                    name,
                    spot.key(name if cur.colon else f"{name}: " if cur.flow else f"{name}:"),
                    detail=f"{kind} profile referenced by floe.yaml",
                    kind=types.CompletionItemKind.Module,
                )
            )
    return items


def _values(
    ls: FloeLanguageServer,
    model: type[BaseModel],
    cur: Cursor,
    spot: Spot,
    path: Path,
    projects: list[Project],
) -> list[types.CompletionItem]:
    key = cur.path[-1] if cur.path else None
    if model is Pipeline and len(cur.path) == 1 and key in PROFILE_KINDS:
        return _profiles(ls, str(key), spot, projects)
    if model is Pipeline and len(cur.path) == 3 and cur.path[0] == "transforms" and key == "path":
        return [
            value_item(
                ls,
                folder,
                spot.value(_as_yaml_value(folder), folder),
                detail="dbt project",
                kind=types.CompletionItemKind.Folder,
            )
            for folder in dbt_folders(path.parent)
        ]
    parent = slot_at(model, cur.path[:-1], cur.data)
    if key == "secret_ref" and parent is not None and parent.model is SecretRef:
        return _secret_names(ls, spot, projects)
    if parent is not None and parent.discriminator is not None and parent.discriminator == key:
        return [
            value_item(
                ls,
                tag,
                spot.value(_as_yaml_value(tag), tag),
                detail=member.__name__,
                doc=(member.__doc__ or "").strip(),
                kind=types.CompletionItemKind.EnumMember,
            )
            for tag, member in parent.tag_values().items()
        ]
    slot = slot_at(model, cur.path, cur.data)
    if slot is None:
        return []
    if slot.model is SecretRef:
        if ls.snippets:
            return [
                value_item(
                    ls,
                    "{secret_ref: …}",
                    spot.value("{secret_ref: ${1:name}}"),
                    snippet=True,
                    detail="secret reference",
                    doc=slot.description,
                    kind=types.CompletionItemKind.Snippet,
                )
            ]
        return [
            value_item(
                ls,
                "{secret_ref: }",
                spot.value("{secret_ref: }"),
                detail="secret reference",
                doc=slot.description,
            )
        ]
    return [
        value_item(
            ls,
            _yaml(v),
            spot.value(_as_yaml_value(v), v if isinstance(v, str) else None),
            detail=type_label(slot),
            doc=slot.description,
            kind=types.CompletionItemKind.EnumMember,
        )
        for v in slot.enum_values
    ]


def _as_yaml_value(value: Any) -> str:
    """The value as YAML text: strings YAML would read as something else get quoted."""
    text = _yaml(value)
    if isinstance(value, str):
        import yaml

        try:
            if not isinstance(yaml.safe_load(text), str):
                return f'"{text}"'
        except yaml.YAMLError:
            return f'"{text}"'
    return text


def _profiles(
    ls: FloeLanguageServer, kind: str, spot: Spot, projects: list[Project]
) -> list[types.CompletionItem]:
    section = PROFILE_KINDS[kind]
    found: dict[str, list[tuple[str, str]]] = {}
    env_names: set[str] = set()
    for project in projects:
        env_names.update(e.name for e in project.environments)
        for name, defs in profile_names(ls, project, section).items():
            for d in defs:
                found.setdefault(name, []).append((d.environment, d.type or "?"))
    items = []
    for name, where in sorted(found.items()):
        envs = {env for env, _ in where}
        missing = sorted(env_names - envs)
        detail = " · ".join(f"{t} ({env})" for env, t in where)
        doc = f"`{name}` {kind} profile\n\n" + "\n".join(f"- **{env}**: `{t}`" for env, t in where)
        if missing:
            doc += "\n\n⚠ not defined in: " + ", ".join(missing)
        items.append(
            value_item(
                ls,
                name,
                spot.value(_as_yaml_value(name), name),
                detail=detail,
                doc=doc,
                kind=types.CompletionItemKind.Reference,
                sort=("0" if not missing else "1") + name,
            )
        )
    return items


def _secret_names(
    ls: FloeLanguageServer, spot: Spot, projects: list[Project]
) -> list[types.CompletionItem]:
    names: set[str] = set()
    for project in projects:
        for env in project.environments:
            doc = platform_doc(ls, env.platform_file)
            if doc is None or doc.root is None:
                continue
            for p, node in doc.root.walk():
                if p and p[-1] == "secret_ref" and node.kind == "scalar":
                    names.add(str(node.value))
    return [
        value_item(
            ls,
            n,
            spot.value(_as_yaml_value(n), n),
            detail="secret used in this project",
            kind=types.CompletionItemKind.Constant,
        )
        for n in sorted(names)
    ]


def completion(ls: FloeLanguageServer, params: types.CompletionParams) -> types.CompletionList:
    return complete(ls, params.text_document.uri, params.position)
