"""The one rule of what is a credential in a config file, and how it is shown masked.

A value is a credential when its key names one (`password`, `client_secret`,
`api_key`, ...) or when it sits inside a URL (`postgresql://u:PASSWORD@h/db`,
`https://h/api?token=TOKEN`). The engine flags such literals (FLOE020), the
language server masks them wherever it shows a profile, and the JSON Schema
rejects them with the same patterns (`floe_runtime.schema`).

The patterns are written in the subset that Python's `re` and ECMA-262 (the
regular expressions of JSON Schema) read alike: no inline flags, no named
groups, case folded by character classes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from floe_runtime.analysis.loader import YNode
    from floe_runtime.config.introspect import Slot

#: What a masked value is shown as.
MASK = "***"

# Words that name a credential, in a key (as a whole `_`/`-` separated part) or a URL query.
_SECRET_WORDS = ("password", "passwd", "pwd", "secret", "token", "api[_-]?key", "apikey")
_WORDS = (*_SECRET_WORDS, "private[_-]?key", "access[_-]?key", "secret[_-]?key", "credentials?")
# Query parameters also carry signatures (Azure SAS `sig`, S3 `X-Amz-Signature`).
_QUERY_WORDS = (*_SECRET_WORDS, "sig", "signature")
# Keys that *name* or *locate* a credential (`secret_ref`, `token_endpoint`, `client_id`).
_NOT_SUFFIXES = (
    "ref",
    "uri",
    "url",
    "endpoint",
    "path",
    "file",
    "id",
    "name",
    "type",
    "mode",
    "method",
    "ttl",
    "expiry",
)


def _fold(pattern: str) -> str:
    """`pattern` matching letters in either case, by character classes (`ab` → `[aA][bB]`)."""
    out: list[str] = []
    in_class = False
    for char in pattern:
        if char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        if char.isalpha() and char.isascii():
            pair = char.lower() + char.upper()
            out.append(pair if in_class else f"[{pair}]")
        else:
            out.append(char)
    return "".join(out)


def _alternatives(words: tuple[str, ...]) -> str:
    return "(?:" + "|".join(_fold(w) for w in words) + ")"


#: A key whose literal value is a credential (search it over the whole key).
CREDENTIAL_KEY_PATTERN = (
    "^(?![\\s\\S]*_" + _alternatives(_NOT_SUFFIXES) + "$)"
    "[\\s\\S]*(?:^|[_-])" + _alternatives(_WORDS) + "(?:$|[_-])"
)
#: The password of a URL's user info: group 1 of `scheme://user:PASSWORD@host`.
URL_PASSWORD_PATTERN = "[A-Za-z][A-Za-z0-9+.-]*://[^/?#@:\\s]*:([^/?#\\s]+)@"
#: A query parameter that carries a credential (`?token=VALUE`, `&sslpassword=VALUE`):
#: group 1; it counts only after a `://` (in a URL).
URL_QUERY_SECRET_PATTERN = "[?&][A-Za-z0-9._-]*" + _alternatives(_QUERY_WORDS) + "=([^&#\\s]+)"
#: A string holding no credential inside a URL (what the JSON Schema asks of strings).
NO_URL_SECRET_PATTERN = (
    f"^(?![\\s\\S]*{URL_PASSWORD_PATTERN})(?![\\s\\S]*://[\\s\\S]*{URL_QUERY_SECRET_PATTERN})"
)

_CREDENTIAL_KEY = re.compile(CREDENTIAL_KEY_PATTERN)
_URL_PASSWORD = re.compile(URL_PASSWORD_PATTERN)
_URL_QUERY_SECRET = re.compile(URL_QUERY_SECRET_PATTERN)


def looks_like_credential(key: str) -> bool:
    """Whether a key names a credential (`password`, `api_key`, `client_secret`, ...)."""
    return _CREDENTIAL_KEY.search(key) is not None


def url_secrets(text: str) -> list[tuple[int, int]]:
    """The `(start, end)` offsets of each credential written inside a URL in `text`."""
    scheme_end = text.find("://")
    if scheme_end < 0:  # the common case: no URL
        return []
    spans = [m.span(1) for m in _URL_PASSWORD.finditer(text)]
    spans.extend(m.span(1) for m in _URL_QUERY_SECRET.finditer(text, scheme_end))
    return sorted(spans)


def mask_text(text: str) -> str:
    """`text` with every credential inside a URL masked: `postgresql://u:***@h/db`."""
    spans = url_secrets(text)
    for start, end in reversed(spans):
        text = text[:start] + MASK + text[end:]
    return text


def is_literal(node: YNode) -> bool:
    """Whether a node is a value written in the file (not a mapping, list, null or boolean)."""
    return node.kind == "scalar" and node.value is not None and not isinstance(node.value, bool)


def is_secret_ref(node: YNode) -> bool:
    """Whether a node is `{secret_ref: NAME}`."""
    return node.kind == "map" and set(node.entries) == {"secret_ref"}


def shown(key: str, node: YNode, slot: Slot | None = None) -> str:
    """A short rendering of the value under `key` that never shows a credential.

    `slot` is what the model expects there (`config.introspect.slot_at`), when
    known: a literal where the model wants a secret reference is a credential
    whatever its key is called (`account_key`, `keyfile_json`). Secret references
    show their name, credential literals `***`, URLs with their passwords masked.
    """
    if node.kind == "scalar":
        if is_literal(node) and (looks_like_credential(key) or _wants_secret(slot)):
            return MASK
        return mask_text(node.raw)
    if is_secret_ref(node):
        return f"secret_ref {mask_text(node.entries['secret_ref'].raw)}"
    data = node.to_python() if slot is not None else None
    if node.kind == "map":
        parts = [f"{k}: {shown(k, v, _child(slot, k, data))}" for k, v in node.entries.items()]
        return "{" + ", ".join(parts) + "}"
    items = [shown(key, item, _child(slot, i, data)) for i, item in enumerate(node.items)]
    return "[" + ", ".join(items) + "]"


def _wants_secret(slot: Slot | None) -> bool:
    from floe_runtime.config.base import SecretRef

    return slot is not None and slot.model is SecretRef


def _child(slot: Slot | None, key: str | int, data: Any) -> Slot | None:
    if slot is None:
        return None
    from floe_runtime.config.introspect import child_slot

    return child_slot(slot, key, data)


def profile_settings(section: str, node: YNode) -> list[tuple[str, str]]:
    """A platform.yaml profile's settings (all but `type`), each rendered by `shown`."""
    from floe_runtime.config.introspect import child_slot, root_slot
    from floe_runtime.config.platform import Platform

    if node.kind != "map":
        return []
    sections = child_slot(root_slot(Platform), section, None)
    profile = child_slot(sections, "profile", None) if sections is not None else None
    data = node.to_python()
    return [
        (key, shown(key, child, _child(profile, key, data)))
        for key, child in node.entries.items()
        if key != "type"
    ]
