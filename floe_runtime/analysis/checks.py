"""The rules: each check turns loaded documents into diagnostics with exact ranges.

Every rule of DESIGN §4 lives here once; `engine.analyze` runs them, and the
CLI and the language server only present what they return.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from floe_runtime.analysis.diagnostics import UNLISTED, Diagnostic, Range, error, warning
from floe_runtime.analysis.files import not_regular, os_reason
from floe_runtime.analysis.loader import NodePath, YamlDocument, YNode, scalar_value
from floe_runtime.analysis.secrets import is_literal, looks_like_credential, mask_text, url_secrets
from floe_runtime.analysis.suggest import closest
from floe_runtime.config.base import PROFILE_NAME_PATTERN, SECRET_NAME_PATTERN, SecretRef
from floe_runtime.config.introspect import describe, is_plain_union, keys_at, loc_to_path, slot_at
from floe_runtime.config.pipeline import PIPELINE_NAME_PATTERN, PROFILE_KINDS, SEMVER_PATTERN

M = TypeVar("M", bound=BaseModel)

#: Validation errors mapped to diagnostics per file; a file over the 5 MiB cap can hold
#: 250,000 unknown keys, and mapping one costs tens of microseconds.
MAX_MAPPED_ERRORS = 1000

_TYPE_NAMES = {
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
    "list_type": "a list",
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


# What a scalar member of a plain union says when it is given a mapping.
_SCALAR_TYPE_ERRORS = frozenset(
    {"string_type", "int_type", "float_type", "bool_type", "int_parsing", "bool_parsing"}
)


def _takes_a_model(tp: Any) -> bool:
    return any(isinstance(m, type) and issubclass(m, BaseModel) for m in get_args(tp))


def check_literal_credentials(doc: YamlDocument) -> tuple[list[Diagnostic], set[NodePath]]:
    """FLOE020 by name and in URLs: literal credentials, by the rule of `analysis.secrets`.

    A literal under a key that names a credential (`password: hunter2`), and a
    credential written inside any URL-valued string (`postgresql://u:pw@h/db`,
    `...?token=x`). Returns the diagnostics and the paths flagged by name. Fields
    the model types as a `secret_ref` are caught by `check_schema` from the
    validation error instead, so this walk needs no model and costs a dict lookup
    per key.
    """
    found: list[Diagnostic] = []
    paths: set[NodePath] = set()
    if doc.root is None:
        return found, paths
    verdicts: dict[str, bool] = {}
    stack: list[tuple[NodePath, YNode]] = [((), doc.root)]
    while stack:
        path, node = stack.pop()
        if node.kind == "scalar":
            if type(node.value) is str and "://" in node.value:
                found.extend(_url_credentials(doc, node, path))
            continue
        if node.kind == "seq":
            stack.extend(((*path, i), child) for i, child in enumerate(node.items))
            continue
        for key, child in node.entries.items():
            if child.kind != "scalar":
                stack.append(((*path, key), child))
                continue
            flagged = verdicts.get(key)
            if flagged is None:
                flagged = verdicts[key] = looks_like_credential(key)
            if flagged and is_literal(child):
                found.append(_literal_credential(doc, child, (*path, key), key))
                paths.add((*path, key))
            elif type(child.value) is str and "://" in child.value:  # only a URL holds one
                found.extend(_url_credentials(doc, child, (*path, key)))
    found.sort(key=lambda d: d.range.start)
    return found, paths


def _secret_name(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-") or "secret"


def _literal_credential(doc: YamlDocument, node: YNode, path: NodePath, key: str) -> Diagnostic:
    secret_name = _secret_name(key)
    return error(
        doc.file,
        node.range,
        "FLOE020",
        f"'{key}' is a credential written as a literal; use "
        f"{{secret_ref: {secret_name}}} and keep the value in a secret",
        key=key,
        path=list(path),
        secret_name=secret_name,
    )


def _url_credentials(doc: YamlDocument, node: YNode, path: NodePath) -> list[Diagnostic]:
    """FLOE020 for each credential inside the URL `node` holds, on the credential's own text."""
    value: str = node.value
    spans = url_secrets(value)
    if not spans:
        return []
    label = _label(path)
    key = next((str(p) for p in reversed(path) if isinstance(p, str)), "value")
    hint = (
        "; write the URL without it and give it as `password: {secret_ref: NAME}`"
        if key == "uri" and _sibling(doc, path, "type") == "sql"
        else "; leave it out of the URL and keep it in a secret"
    )
    message = f"'{label}' has a credential written inside its URL ({mask_text(value)}){hint}"
    return [
        error(
            doc.file,
            _substring_range(doc, node, start, end),
            "FLOE020",
            message,
            key=key,
            path=list(path),
            secret_name=_secret_name(key),
            in_url=True,
        )
        for start, end in spans
    ]


def _sibling(doc: YamlDocument, path: NodePath, key: str) -> object:
    parent = doc.node(path[:-1])
    node = parent.get(key) if parent is not None else None
    return node.value if node is not None and node.kind == "scalar" else None


def _substring_range(doc: YamlDocument, node: YNode, start: int, end: int) -> Range:
    """Where `value[start:end]` of a one-line scalar is written; the whole value when unsure."""
    rng = node.range
    if rng.start.line != rng.end.line:
        return rng
    lines = doc.lines()
    if rng.start.line >= len(lines):
        return rng
    written = lines[rng.start.line][rng.start.character : rng.end.character]
    part = str(node.value)[start:end]
    if written == node.value:  # plain: the text is the value
        at = start
    else:  # quoted: find the part, unless escapes hide it or it occurs twice
        at = written.find(part)
        if at < 0 or written.find(part, at + 1) >= 0:
            return rng
    first = rng.start.character + at
    return Range.of(rng.start.line, first, rng.start.line, first + len(part))


def check_schema(
    doc: YamlDocument, model: type[M], skip: Iterable[NodePath] = ()
) -> tuple[M | None, list[Diagnostic]]:
    """Validate a document against its model; map every error to a FLOE code and a range.

    Errors at or below a path in `skip` (already reported, e.g. as FLOE020) are left out.
    """
    if not doc.ok:
        return None, []
    root = doc.root
    if root is not None and root.kind != "map":
        return None, [
            error(
                doc.file, root.range, "FLOE005", "expected a mapping of keys at the top of the file"
            )
        ]
    data = doc.data() if root is not None else {}
    try:
        # Strict: a value has the type YAML gives it, as JSON Schema tools see it; a quoted
        # "5432" is a string, not a port (the schema, generated from the same models, agrees).
        return model.model_validate(data, strict=True), []
    except ValidationError as exc:
        skipped = set(skip)
        out: list[Diagnostic] = []
        seen: set[tuple[int, int, str, str]] = set()
        # Every error of one mapping asks which keys it may still take: answered once per
        # mapping, so 10,000 unknown keys cost 10,000 steps, not 10,000².
        valid_keys: dict[NodePath, list[str]] = {}
        errors = exc.errors(include_url=False, include_input=True)
        for index, err in enumerate(errors):
            if len(out) > MAX_MAPPED_ERRORS:
                # Far more than anyone reads (the engine lists 100 per file): the last
                # mapped one carries how many pydantic errors were not mapped.
                out[-1].data[UNLISTED] = len(errors) - index
                break
            diag = _map_error(doc, model, data, err, valid_keys)
            if diag is None:
                continue
            path = tuple(diag.data.get("path", ()))
            if skipped and any(path[:end] in skipped for end in range(len(path) + 1)):
                continue
            # Union members repeat one complaint; each missing key of a mapping is its own.
            start = diag.range.start
            marker = (start.line, start.character, diag.code, diag.message)
            if marker in seen:
                continue
            seen.add(marker)
            out.append(diag)
        return None, out


def _map_error(
    doc: YamlDocument,
    model: type[BaseModel],
    data: Any,
    err: Mapping[str, Any],
    valid_keys: dict[NodePath, list[str]],
) -> Diagnostic | None:
    kind: str = err["type"]
    loc: tuple[str | int, ...] = tuple(err["loc"])
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    if loc and loc[-1] == "[key]":  # a dict key that fails its pattern (profile names)
        path = loc_to_path(model, loc[:-1], data)
        node = doc.node(path)
        rng = node.key_range if node is not None and node.key_range else _nearest(doc, path)
        return error(
            doc.file,
            rng,
            "FLOE005",
            f"invalid name '{path[-1]}': {_PATTERN_HINTS[PROFILE_NAME_PATTERN]}",
            path=list(path),
        )
    path = loc_to_path(model, loc, data)
    if kind == "extra_forbidden":
        key = str(path[-1])
        node = doc.node(path)
        rng = node.key_range if node is not None and node.key_range else _nearest(doc, path)
        valid = valid_keys.get(path[:-1])
        if valid is None:
            present = _present(doc, path[:-1])
            valid = [k for k in keys_at(model, path[:-1], data) if k not in present]
            valid_keys[path[:-1]] = valid
        suggestion = closest(key, valid)
        if suggestion:
            message = f"unknown key '{key}'; did you mean '{suggestion}'?"
        elif valid:
            message = f"unknown key '{key}'; expected one of: {', '.join(valid)}"
        else:
            message = f"unknown key '{key}'"
        return error(
            doc.file, rng, "FLOE003", message, path=list(path), key=key, suggestion=suggestion
        )
    if kind == "missing":
        here = doc.node(path)
        if loc and isinstance(loc[-1], str) and here is not None and here.kind == "map":
            # loc ends with the missing key, which is absent; under a plain union (`settings:
            # {x: {}}`, x maybe a SecretRef) the path walk takes it for a member name and drops it.
            path = (*path, loc[-1])
        return _missing(doc, path, str(path[-1]))
    if kind == "union_tag_not_found":
        disc = str(ctx.get("discriminator", "type")).strip("'")
        slot = slot_at(model, path, data)
        tags = ", ".join(slot.tag_values()) if slot else ""
        diag = _missing(doc, (*path, disc), disc)
        if tags:
            diag = _with_message(diag, f"{diag.message} (one of: {tags})")
        return diag
    if kind == "union_tag_invalid":
        disc = str(ctx.get("discriminator", "type")).strip("'")
        tag_path = (*path, disc)
        node = doc.node(tag_path)
        slot = slot_at(model, path, data)
        tag_options = list(slot.tag_values()) if slot else []
        tag = str(ctx.get("tag", ""))
        suggestion = closest(tag, tag_options)
        message = f"invalid {disc} '{tag}'; expected one of: {', '.join(tag_options)}"
        if suggestion:
            message += f" (did you mean '{suggestion}'?)"
        return error(
            doc.file,
            node.range if node is not None else _nearest(doc, path),
            "FLOE005",
            message,
            path=list(tag_path),
            suggestion=suggestion,
            options=tag_options,
        )
    node = doc.node(path)
    rng = node.range if node is not None else _nearest(doc, path)
    key = _label(path)
    slot = slot_at(model, path, data)
    if slot is not None and slot.model is SecretRef and node is not None and is_literal(node):
        return _literal_credential(doc, node, path, str(path[-1]))
    if (
        kind in _SCALAR_TYPE_ERRORS
        and node is not None
        and node.kind == "map"
        and slot is not None
        and is_plain_union(slot)
        and _takes_a_model(slot.tp)
    ):
        # A mapping where `str | ... | SecretRef` stands is meant for the model: the
        # scalar members' complaints are noise, the model's own errors say what is wrong.
        return None
    if slot is not None and is_plain_union(slot):
        message = f"'{key}' should be {describe(slot.tp)}"
    else:
        message = _value_message(kind, key, err, node)
    options = [str(v) for v in slot.enum_values] if slot is not None else []
    return error(doc.file, rng, "FLOE005", message, path=list(path), options=options)


# Type errors of strict validation that a quoted value (or a YAML 1.1 word) explains.
_STRICT_HINTS = frozenset({"int_type", "float_type", "bool_type"})
# Booleans of YAML 1.1 (PyYAML, old tools) that YAML 1.2 reads as strings.
_YAML11_BOOLS = {"yes": True, "no": False, "on": True, "off": False, "y": True, "n": False}


def _reads_as(text: str, kind: str) -> bool:
    """Whether `text`, written without quotes, would be a value of the kind `kind` wants."""
    value = scalar_value(text)
    if kind == "bool_type":
        return isinstance(value, bool)
    if kind == "int_type":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# What a pattern means, for people: the patterns live with the models.
_PATTERN_HINTS = {
    PIPELINE_NAME_PATTERN: "use lower case letters, digits, '-' and '_', starting with a letter (at most 63)",
    SEMVER_PATTERN: 'expected a semantic version such as "1.0.0"',
    PROFILE_NAME_PATTERN: "use letters, digits, '-' and '_', starting with a letter",
    SECRET_NAME_PATTERN: "expected a Kubernetes secret name: lower case letters, digits, '-' and '.'",
}


def _label(path: Sequence[str | int]) -> str:
    """How a message names the place: `version`, `transforms[3]`."""
    if not path:
        return "document"
    last = path[-1]
    if isinstance(last, int):
        parent = next((str(p) for p in reversed(path) if isinstance(p, str)), "item")
        return f"{parent}[{last}]"
    return str(last)


def _value_message(kind: str, key: str, err: Mapping[str, Any], node: YNode | None) -> str:
    msg = str(err.get("msg", "invalid value"))
    scalar = node is not None and node.kind == "scalar"
    if msg.startswith("Value error, "):
        return f"invalid '{key}': {msg.removeprefix('Value error, ')}"
    if kind == "literal_error":
        shown = node.raw if node is not None and scalar else None
        expected = str((err.get("ctx") or {}).get("expected", ""))
        quoted_would_do = f"'{shown}'" in expected  # `version: 1` where the string "1" is wanted
        if (
            shown is not None
            and node is not None
            and not isinstance(node.value, str)
            and quoted_would_do
        ):
            return f"'{key}' should be the string \"{shown}\": put it in quotes"
        if shown is not None and len(shown) <= 60:
            return f"invalid value '{shown}' for '{key}'; expected {expected}"
        return f"invalid value for '{key}'; expected {expected}"
    if kind == "string_type" and node is not None and scalar and node.value is not None:
        return f"'{key}' should be a string: put {node.raw} in quotes"
    if kind in _STRICT_HINTS and node is not None and scalar and isinstance(node.value, str):
        wanted = _TYPE_NAMES[kind]
        if node.style is not None and _reads_as(node.raw, kind):
            return f"'{key}' should be {wanted}, not a string: remove the quotes around {node.raw}"
        if node.style is None and node.raw.lower() in _YAML11_BOOLS and kind == "bool_type":
            word = "true" if _YAML11_BOOLS[node.raw.lower()] else "false"
            return (
                f"'{key}' should be true or false: YAML 1.2 reads {node.raw} as a string; "
                f"write {word}"
            )
    if kind in _TYPE_NAMES:
        return f"'{key}' should be {_TYPE_NAMES[kind]}"
    if kind == "string_pattern_mismatch":
        pattern = str(err["ctx"]["pattern"])
        hint = _PATTERN_HINTS.get(pattern, f"does not match the pattern {pattern}")
        return f"invalid '{key}': {hint}"
    if kind == "too_short" and node is not None and node.kind == "seq":
        return f"'{key}' needs at least {err['ctx'].get('min_length', 1)} item(s)"
    return f"invalid '{key}': {msg[0].lower() + msg[1:] if msg else msg}"


def _missing(doc: YamlDocument, path: NodePath, key: str) -> Diagnostic:
    parent_path = path[:-1]
    parent = doc.node(parent_path)
    if parent is not None and parent.key_range is not None:
        rng = parent.key_range
    elif parent is not None and parent.kind == "map" and parent.entries and parent_path:
        first = next(iter(parent.entries.values()))
        rng = first.key_range or parent.range
    else:
        rng = doc.first_line_range() if not parent_path else _nearest(doc, parent_path)
    return error(
        doc.file, rng, "FLOE004", f"missing required key '{key}'", path=list(path), key=key
    )


def _with_message(diag: Diagnostic, message: str) -> Diagnostic:
    return Diagnostic(diag.file, diag.range, diag.severity, diag.code, message, diag.data)


def _present(doc: YamlDocument, path: NodePath) -> set[str]:
    node = doc.node(path)
    return set(node.entries) if node is not None and node.kind == "map" else set()


def _nearest(doc: YamlDocument, path: Sequence[str | int]) -> Range:
    """The range of the deepest node that exists along `path`."""
    for end in range(len(path), 0, -1):
        node = doc.node(tuple(path[:end]))
        if node is not None:
            return node.key_range or node.range
    return doc.first_line_range()


def check_references(
    pipeline: YamlDocument, env_name: str, platform: YamlDocument, shown_platform: str
) -> list[Diagnostic]:
    """FLOE010: each profile floe.yaml names must be defined in this environment's platform."""
    if not platform.ok or pipeline.root is None or pipeline.root.kind != "map":
        return []
    pdata = platform.data()
    if not isinstance(pdata, Mapping):
        return []
    out: list[Diagnostic] = []
    for kind, section in PROFILE_KINDS.items():
        node = pipeline.root.entries.get(kind)
        if node is not None and (node.kind != "scalar" or not isinstance(node.value, str)):
            continue  # a type error, reported by the schema check
        name = node.value if node is not None else "default"
        defined = pdata.get(section)
        names = list(defined) if isinstance(defined, Mapping) else []
        if name in names:
            continue
        suggestion = closest(name, names)
        where = f"environment '{env_name}' ({shown_platform})"
        message = (
            f"{kind} profile '{name}' is not defined in {where}"
            if node is not None
            else f"{kind} profile 'default' (used when '{kind}' is not set) is not defined in {where}"
        )
        if suggestion:
            message += f"; did you mean '{suggestion}'?"
        elif names:
            message += f"; defined: {', '.join(names)}"
        out.append(
            error(
                pipeline.file,
                node.range if node is not None else pipeline.first_line_range(),
                "FLOE010",
                message,
                path=[kind],
                kind=kind,
                section=section,
                profile=name,
                environment=env_name,
                platform_file=platform.file,
                suggestion=suggestion,
            )
        )
    return out


def check_transform_paths(pipeline: YamlDocument, root: Path) -> list[Diagnostic]:
    """FLOE030: every dbt transform's path must be a folder holding dbt_project.yml."""
    node = pipeline.node(("transforms",))
    if node is None or node.kind != "seq":
        return []
    out: list[Diagnostic] = []
    verdicts: dict[str, str | None] = {}  # many transforms share one project folder
    for index, item in enumerate(node.items):
        if item.kind != "map":
            continue
        type_node = item.entries.get("type")
        path_node = item.entries.get("path")
        if type_node is None or type_node.value != "dbt" or path_node is None:
            continue
        if (
            path_node.kind != "scalar"
            or not isinstance(path_node.value, str)
            or not path_node.value
        ):
            continue
        value = path_node.value
        if value not in verdicts:
            verdicts[value] = _dbt_path_problem(root, value)
        message = verdicts[value]
        if message is None:
            continue
        out.append(
            error(
                pipeline.file,
                path_node.range,
                "FLOE030",
                message,
                path=["transforms", index, "path"],
            )
        )
    return out


def _dbt_path_problem(root: Path, value: str) -> str | None:
    target = root / value
    shown = value if len(value) <= 80 else f"{value[:60]}…{value[-16:]}"
    try:
        info = os.stat(target / "dbt_project.yml")
    except (OSError, ValueError) as exc:
        code = getattr(exc, "errno", None)
        # The OS refuses a name over 255 bytes or a path over PATH_MAX outright.
        if code == errno.ENAMETOOLONG or any(
            len(part.encode("utf-8", "surrogateescape")) > 255 for part in Path(value).parts
        ):
            return (
                f"transform path '{shown}' is too long for the file system "
                f"({len(value):,} characters; a folder name may have at most 255 bytes)"
            )
        if isinstance(exc, OSError) and code not in (errno.ENOENT, errno.ENOTDIR):
            return f"dbt_project.yml in '{shown}' {os_reason(exc)}"
    else:
        reason = not_regular(info.st_mode)
        return None if reason is None else f"dbt_project.yml in '{shown}' {reason}"
    try:
        is_folder = target.is_dir()
    except (OSError, ValueError):
        is_folder = False
    if not is_folder:
        return f"transform path '{shown}' does not exist (relative to floe.yaml)"
    return f"no dbt_project.yml in '{shown}'"


def check_platform_found(pipeline: YamlDocument, has_platform: bool) -> list[Diagnostic]:
    """FLOE040: a warning when no platform.yaml exists for the pipeline."""
    if has_platform:
        return []
    return [
        warning(
            pipeline.file,
            pipeline.first_line_range(),
            "FLOE040",
            "no platform.yaml found for this pipeline (looked for platform.yaml beside floe.yaml "
            "and platform/<env>/platform.yaml); profile references are not checked",
        )
    ]
