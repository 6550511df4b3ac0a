"""Walk the config models by path: which keys are valid here, what a field means.

One walker serves the engine (mapping pydantic errors to YAML paths, "did you
mean" suggestions) and the language server (completion, hover), so the models
stay the single source of truth for both.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo


@dataclass(frozen=True)
class Slot:
    """What may stand at one place of a config file.

    `tp` is the declared type with Optional and Annotated stripped; `field` is the
    model field holding it (its description is the hover text), if any;
    `discriminator` is set when `tp` is a tagged union of models.
    """

    tp: Any
    field: FieldInfo | None = None
    discriminator: str | None = None
    key: str | None = None

    @property
    def description(self) -> str | None:
        """The field's documentation, or the model's docstring."""
        if self.field is not None and self.field.description:
            return self.field.description
        model = self.model
        return (model.__doc__ or "").strip() or None if model is not None else None

    @cached_property
    def model(self) -> type[BaseModel] | None:
        """The model class when the slot holds exactly one model."""
        if isinstance(self.tp, type) and issubclass(self.tp, BaseModel):
            return self.tp
        return None

    @property
    def members(self) -> list[type[BaseModel]]:
        """The models of a tagged union (empty for anything else)."""
        if self.discriminator is None:
            return []
        if self.model is not None:  # a tagged union of one member collapses to the model
            return [self.model]
        return [m for m in _union_args(self.tp) if isinstance(m, type)]

    def tag_values(self) -> dict[str, type[BaseModel]]:
        """For a tagged union: each tag value and the model it selects."""
        if self.discriminator is None:
            return {}
        out: dict[str, type[BaseModel]] = {}
        for member in self.members:
            for value in literal_values(member.model_fields[self.discriminator].annotation):
                out[str(value)] = member
        return out

    def choose(self, data: Any) -> type[BaseModel] | None:
        """The model this slot holds given the data found there (tagged unions pick by tag)."""
        if self.model is not None:
            return self.model
        if self.discriminator is not None and isinstance(data, Mapping):
            return self.tag_values().get(str(data.get(self.discriminator)))
        return None

    @cached_property
    def is_mapping(self) -> bool:
        """True for `dict[str, X]` slots (free keys, e.g. profile names)."""
        return get_origin(self.tp) in (dict, Mapping)

    @cached_property
    def is_list(self) -> bool:
        """True for `list[X]` slots."""
        return get_origin(self.tp) in (list, Sequence)

    @property
    def enum_values(self) -> list[Any]:
        """Allowed values of a Literal (or bool) slot."""
        if self.tp is bool:
            return [True, False]
        return literal_values(self.tp)


_KIND_NAMES: dict[Any, str] = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true/false",
    type(None): "null",
    dict: "a mapping",
    list: "a list",
}


def describe(tp: Any) -> str:
    """What a value of type `tp` looks like in YAML: 'a string, a whole number or null'."""
    members = _union_args(tp) or (tp,)
    names: list[str] = []
    for member in members:
        origin = get_origin(member) or member
        if isinstance(origin, type) and issubclass(origin, BaseModel):
            name = "a mapping"
        else:
            name = _KIND_NAMES.get(origin, getattr(origin, "__name__", str(origin)))
        if name not in names:
            names.append(name)
    if "a number" in names and "a whole number" in names:
        names.remove("a whole number")
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def is_plain_union(slot: Slot) -> bool:
    """Whether a slot accepts several kinds of value without a tag (`str | int | ...`)."""
    return slot.discriminator is None and bool(_union_args(slot.tp))


def literal_values(tp: Any) -> list[Any]:
    """The values of a `Literal[...]` type (and of Literals inside Optional/Union)."""
    tp = _strip(tp)[0]
    if get_origin(tp) is Literal:
        return list(get_args(tp))
    out: list[Any] = []
    for arg in _union_args(tp):
        out.extend(literal_values(arg))
    return out


def _union_args(tp: Any) -> tuple[Any, ...]:
    if get_origin(tp) in (Union, types.UnionType):
        return get_args(tp)
    return ()


def _strip(tp: Any) -> tuple[Any, str | None]:
    """Remove Annotated and Optional wrappers; return the core type and any discriminator."""
    discriminator: str | None = None
    while True:
        if get_origin(tp) is Annotated:
            args = get_args(tp)
            for meta in args[1:]:
                if isinstance(meta, FieldInfo) and isinstance(meta.discriminator, str):
                    discriminator = meta.discriminator
            tp = args[0]
            continue
        members = _union_args(tp)
        if members and type(None) in members:
            rest = tuple(a for a in members if a is not type(None))
            tp = rest[0] if len(rest) == 1 else Union[rest]  # noqa: UP007
            continue
        return tp, discriminator


_ELEMENT_SLOTS: dict[int, Slot] = {}


def _element_slot(tp: Any) -> Slot:
    # Stripping typing wrappers is slow, and element types are module-level objects
    # that live as long as the process: keep one Slot per type, by identity.
    slot = _ELEMENT_SLOTS.get(id(tp))
    if slot is None:
        slot = _ELEMENT_SLOTS[id(tp)] = Slot(*_strip(tp)[:1], None, _strip(tp)[1])
    return slot


def slot_of_field(name: str, info: FieldInfo) -> Slot:
    """The slot a model field declares."""
    tp, disc = _strip(info.annotation)
    if isinstance(info.discriminator, str):
        disc = info.discriminator
    return Slot(tp, info, disc, name)


@cache
def fields_by_key(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """A model's fields keyed as they are written in YAML (aliases included)."""
    return {(info.alias or name): info for name, info in model.model_fields.items()}


def root_slot(model: type[BaseModel]) -> Slot:
    """The slot of a whole file."""
    return Slot(model)


def child_slot(slot: Slot, key: str | int, data: Any) -> Slot | None:
    """The slot under `key` of `slot`, given the data at `slot` (to pick union members)."""
    if slot.is_mapping:
        return _element_slot(get_args(slot.tp)[1]) if isinstance(key, str) else None
    if slot.is_list:
        return _element_slot(get_args(slot.tp)[0]) if isinstance(key, int) else None
    model = slot.choose(data)
    if model is None or not isinstance(key, str):
        return None
    return _field_slot(model, key)


@cache
def _field_slot(model: type[BaseModel], key: str) -> Slot | None:
    info = fields_by_key(model).get(key)
    return slot_of_field(key, info) if info is not None else None


def slot_at(model: type[BaseModel], path: Sequence[str | int], data: Any) -> Slot | None:
    """The slot at a path of keys/indices in a document whose data is `data`."""
    slot: Slot | None = root_slot(model)
    here = data
    for key in path:
        if slot is None:
            return None
        slot = child_slot(slot, key, here)
        here = _step(here, key)
    return slot


def keys_at(model: type[BaseModel], path: Sequence[str | int], data: Any) -> dict[str, FieldInfo]:
    """The keys a mapping at `path` may hold (empty when keys are free or unknown)."""
    slot = slot_at(model, path, data)
    if slot is None:
        return {}
    chosen = slot.choose(_walk_data(data, path))
    if chosen is not None:
        return fields_by_key(chosen)
    if slot.discriminator is not None:
        # No tag yet: only the tag itself is certain.
        members = slot.members
        return {slot.discriminator: members[0].model_fields[slot.discriminator]} if members else {}
    return {}


def loc_to_path(
    model: type[BaseModel], loc: Sequence[str | int], data: Any
) -> tuple[str | int, ...]:
    """Turn a pydantic error `loc` into a YAML path by dropping tagged-union tags."""
    slot: Slot | None = root_slot(model)
    here = data
    path: list[str | int] = []
    items = list(loc)
    index = 0
    while index < len(items):
        key = items[index]
        # pydantic puts the union tag into loc: ('storage', 'lake', 's3', 'bucket').
        if (
            slot is not None
            and slot.discriminator is not None
            and isinstance(here, Mapping)
            and str(here.get(slot.discriminator)) == str(key)
        ):
            index += 1
            chosen = slot.choose(here)
            slot = Slot(chosen) if chosen is not None else None
            continue
        # A plain union names the member it tried: ('transforms', 0, 'dbt', 'vars', 'x', 'str').
        if (
            slot is not None
            and slot.discriminator is None
            and _union_args(slot.tp)
            and isinstance(key, str)
            and not (isinstance(here, Mapping) and key in here)
        ):
            index += 1
            continue
        path.append(key)
        slot = child_slot(slot, key, here) if slot is not None else None
        here = _step(here, key)
        index += 1
    return tuple(path)


def _step(data: Any, key: str | int) -> Any:
    if isinstance(data, Mapping) and isinstance(key, str):
        return data.get(key)
    if isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
        return data[key]
    return None


def _walk_data(data: Any, path: Sequence[str | int]) -> Any:
    for key in path:
        data = _step(data, key)
    return data
