"""Quick fixes for the engine's findings.

Renames touch only the offending token; adding a profile to a platform.yaml
goes through ruamel.yaml's round-trip so comments and layout survive, and the
edit sent is only the part of the file that changed.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from lsprotocol import types
from pydantic import BaseModel
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from floe_lsp.diagnostics import file_diagnostics
from floe_lsp.server import FloeLanguageServer
from floe_lsp.state import file_kind
from floe_runtime.analysis import Diagnostic, Position, Range
from floe_runtime.config.base import SecretRef
from floe_runtime.config.introspect import child_slot, fields_by_key, literal_values, root_slot
from floe_runtime.config.platform import Platform

#: The embedded default kind of each section, used when an environment has no profile to copy.
EMBEDDED = {"storage": "local", "catalogs": "sql", "compute": "duckdb"}


def _overlaps(a: Range, b: Range) -> bool:
    return a.start <= b.end and b.start <= a.end


def stub(section: str, kind: str, name: str) -> CommentedMap:
    """A profile of `kind` for `section` with every required field filled in."""
    slot = child_slot(root_slot(Platform), section, {})
    member: type[BaseModel] | None = None
    if slot is not None:
        inner = child_slot(slot, name, {})
        if inner is not None:
            member = inner.tag_values().get(kind)
    out = CommentedMap()
    out["type"] = kind
    if member is None:
        return out
    _fill(out, member, name, kind in EMBEDDED.values())
    return out


def _fill(out: CommentedMap, model: type[BaseModel], name: str, with_defaults: bool) -> None:
    for key, info in fields_by_key(model).items():
        if key in out:
            continue
        required = info.is_required()
        if not required:
            default = info.default
            if (
                with_defaults
                and isinstance(default, (str, int))
                and not isinstance(default, bool)
                and default != ""
            ):
                out[key] = default
            continue
        ann = info.annotation
        values = literal_values(ann)
        if ann is SecretRef:
            secret = CommentedMap()
            secret["secret_ref"] = f"{name}-{key}".lower().replace("_", "-")
            secret.fa.set_flow_style()
            out[key] = secret
        elif values:
            out[key] = values[0]
        elif isinstance(ann, type) and issubclass(ann, BaseModel):
            inner = CommentedMap()
            _fill(inner, ann, name, with_defaults)
            out[key] = inner
        else:
            out[key] = "TODO"


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def add_profile_text(text: str, section: str, name: str) -> str | None:
    """The platform.yaml text with a stub profile added (None when the text cannot be edited)."""
    y = _yaml()
    try:
        data = y.load(text)
    except YAMLError:
        return None
    if data is None:
        data = CommentedMap()
        data["version"] = "1"
    if not isinstance(data, CommentedMap):
        return None
    existing = data.get(section)
    if existing is None:
        existing = CommentedMap()
        data[section] = existing
    if not isinstance(existing, dict) or name in existing:
        return None
    kind = EMBEDDED[section]
    for profile in existing.values():  # copy the shape this environment already uses
        if isinstance(profile, dict) and isinstance(profile.get("type"), str):
            kind = profile["type"]
            break
    existing[name] = stub(section, kind, name)
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


def minimal_edit(old: str, new: str) -> tuple[Range, str]:
    """The smallest single replacement turning `old` into `new` (range in code points of `old`)."""
    prefix = 0
    limit = min(len(old), len(new))
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    # Start edits at a line start so inserted blocks read naturally.
    prefix = old.rfind("\n", 0, prefix) + 1 if prefix else 0
    suffix = 0
    while (
        suffix < len(old) - prefix
        and suffix < len(new) - prefix
        and old[len(old) - 1 - suffix] == new[len(new) - 1 - suffix]
    ):
        suffix += 1
    start = _pos(old, prefix)
    end = _pos(old, len(old) - suffix)
    return Range(start, end), new[prefix : len(new) - suffix]


def _pos(text: str, offset: int) -> Position:
    line = text.count("\n", 0, offset)
    col = offset - (text.rfind("\n", 0, offset) + 1)
    return Position(line, col)


def _edit(ls: FloeLanguageServer, path: Path, rng: Range, new_text: str) -> types.WorkspaceEdit:
    conv = ls.converter(path)
    return ls.workspace_edit({path: [types.TextEdit(range=conv.range(rng), new_text=new_text)]})


def actions_for(ls: FloeLanguageServer, path: Path, diag: Diagnostic) -> list[types.CodeAction]:
    """The quick fixes one diagnostic allows."""
    data: dict[str, Any] = diag.data
    lsp_diag = ls.converter(path).diagnostic(diag)
    out: list[types.CodeAction] = []

    def action(title: str, edit: types.WorkspaceEdit, preferred: bool = False) -> None:
        out.append(
            types.CodeAction(
                title=title,
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[lsp_diag],
                edit=edit,
                is_preferred=preferred,
            )
        )

    suggestion = data.get("suggestion")
    if diag.code == "FLOE003" and suggestion or diag.code == "FLOE005" and suggestion:
        action(f"Change to '{suggestion}'", _edit(ls, path, diag.range, str(suggestion)), True)
    elif diag.code == "FLOE010":
        profile = str(data.get("profile", ""))
        if suggestion:
            action(
                f"Use '{suggestion}' instead of '{profile}'",
                _edit(ls, path, _unquoted(ls, path, diag.range), str(suggestion)),
                True,
            )
        platform_file = data.get("platform_file")
        section = data.get("section")
        if platform_file and section in EMBEDDED and profile:
            pf = Path(str(platform_file))
            old = ls.text(pf)
            new = add_profile_text(old, str(section), profile) if old is not None else None
            if new is not None and old is not None:
                rng, text = minimal_edit(old, new)
                shown = _shown(pf, path.parent)
                action(
                    f"Add {data.get('kind')} profile '{profile}' to {shown}",
                    _edit(ls, pf, rng, text),
                )
    elif diag.code == "FLOE020" and not data.get("in_url"):
        # A credential inside a URL has no secret_ref form in place: the message says what to do.
        name = str(data.get("secret_name") or "secret")
        action(
            f"Move this literal credential to a secret_ref ({name})",
            _edit(ls, path, diag.range, f"{{secret_ref: {name}}}"),
            True,
        )
    return out


def _unquoted(ls: FloeLanguageServer, path: Path, rng: Range) -> Range:
    text = ls.text(path) or ""
    lines = text.split("\n")
    if rng.start.line == rng.end.line and rng.start.line < len(lines):
        token = lines[rng.start.line][rng.start.character : rng.end.character]
        if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
            return Range.of(
                rng.start.line, rng.start.character + 1, rng.end.line, rng.end.character - 1
            )
    return rng


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def code_actions(ls: FloeLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """Quick fixes for the diagnostics overlapping the requested range."""
    doc = ls.document(params.text_document.uri)
    if doc is None or file_kind(doc[0]) is None:
        return []
    if params.context.only and not any(
        k == types.CodeActionKind.QuickFix or str(k).startswith("quickfix")
        for k in params.context.only
    ):
        return []
    path, text = doc
    conv = ls.converter(path, text)
    wanted = Range(conv.from_client(params.range.start), conv.from_client(params.range.end))
    out: list[types.CodeAction] = []
    titles: set[str] = set()
    for diag in file_diagnostics(ls, path):
        if _overlaps(diag.range, wanted):
            for action in actions_for(ls, path, diag):
                if action.title not in titles:  # one FLOE010 per environment, one rename fix
                    titles.add(action.title)
                    out.append(action)
    return out


def on_code_action(
    ls: FloeLanguageServer, params: types.CodeActionParams
) -> list[types.CodeAction]:
    from floe_lsp import envdiff

    return code_actions(ls, params) + envdiff.code_actions(ls, params)
