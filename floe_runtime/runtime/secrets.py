"""Secret resolution at run time (DESIGN §3).

Order: environment variable NAME upper-cased with non-alphanumerics as `_`,
then the file `$FLOE_SECRETS_DIR/NAME` (default `/var/run/secrets/floe/NAME`).
An empty value (or one of only blanks) counts as missing. Values live only in
memory; this module never logs or formats them.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, quote_plus

from floe_runtime.analysis.files import read_bytes_file
from floe_runtime.analysis.secrets import mask_text
from floe_runtime.compiler.profiles import (
    DBT_SECRET_PREFIX,
    dbt_secret_env_var,
    json_field_env_var,
)
from floe_runtime.config.base import secret_env_var

DEFAULT_SECRETS_DIR = "/var/run/secrets/floe"


class MissingSecretError(Exception):
    """Secrets a run needs that could be found neither in the environment nor on disk.

    `missing` holds (name, environment variable, file) of each; `problems` one line
    per secret file that exists but cannot serve as a secret (`SecretFileError`).
    """

    def __init__(self, missing: list[tuple[str, str, Path]], problems: Iterable[str] = ()) -> None:
        self.missing = missing
        self.problems = list(problems)
        parts = [
            f"secret '{name}' not found: set environment variable {var} or create file {path}"
            + _empty_note(var, path)
            for name, var, path in missing
        ]
        super().__init__("; ".join([*self.problems, *parts]))


class SecretFileError(Exception):
    """A secret's file exists but cannot be read as text (loop, not a folder, binary)."""


def _empty_note(var: str, path: Path) -> str:
    if var in os.environ:
        return f" ({var} is set but empty)"
    return f" ({path} is empty)" if _is_file(path) else ""


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def secrets_dir() -> Path:
    """The folder holding one file per secret (a Kubernetes secret mount)."""
    return Path(os.environ.get("FLOE_SECRETS_DIR") or DEFAULT_SECRETS_DIR)


def _present(value: str | None) -> str | None:
    """`value`, or None when it is empty or blank: an empty secret is a missing one."""
    return value if value is not None and value.strip() else None


def resolve_secret(name: str) -> str | None:
    """The value of one secret, or None when neither place has a non-empty one.

    Raises SecretFileError (one line, naming the file) when the file exists but is
    not readable text: a symbolic link loop, a FLOE_SECRETS_DIR that is not a
    folder, bytes that are not UTF-8.
    """
    value = _present(os.environ.get(secret_env_var(name)))
    if value is not None:
        return value
    path = secrets_dir() / name
    try:
        # A mounted secret usually ends with a newline that is not part of the value.
        # Only a regular file, opened without blocking: a FIFO here would hang the run.
        return _present(read_bytes_file(path).decode("utf-8").rstrip("\r\n"))
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None
    except UnicodeDecodeError:
        raise SecretFileError(f"secret '{name}': {path} is not UTF-8 text") from None
    except OSError as exc:
        raise SecretFileError(f"secret '{name}': {_unreadable(path, exc)}") from None


def _unreadable(path: Path, exc: OSError) -> str:
    """Why the secret file `path` cannot be read, in words."""
    if exc.errno == errno.ELOOP:
        return f"{path} cannot be read: its symbolic links form a loop"
    if exc.errno == errno.ENOTDIR:
        folder = secrets_dir()
        if not folder.is_dir():
            return f"FLOE_SECRETS_DIR ({folder}) is not a folder"
        return f"{path} cannot be read: a part of it is not a folder"
    return f"{path} cannot be read ({exc.strerror or type(exc).__name__})"


#: Shortest value redacted at all: a shorter one would blank out ordinary words.
_MIN_REDACTED = 4
#: A value (or text form of it) of at least `_SUBSTRINGS_FROM` characters also has every
#: run of text made of its `_SUBSTRING`-character pieces redacted (what `substr()` shows).
_SUBSTRINGS_FROM = 12
_SUBSTRING = 8
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _text_forms(value: str) -> set[str]:
    """How `value` appears inside other text: itself, URL-encoded, JSON-escaped."""
    escaped = json.dumps(value)[1:-1]
    return {
        value,
        quote(value, safe=""),  # a query value or path segment, every reserved character
        quote(value),  # a path, `/` kept
        quote_plus(value, safe=""),  # a form body (application/x-www-form-urlencoded)
        quote_plus(value),
        escaped,
        json.dumps(value, ensure_ascii=False)[1:-1],
        escaped.replace("/", "\\/"),  # JSON writers that escape `/` too
    }


def _base64_forms(value: str) -> set[str]:
    """The base64 text of `value` wherever it starts in an encoded byte stream.

    `Basic base64(id:secret)` puts the value at any of three byte offsets; for each,
    the characters that depend on the value's bytes only (not those around it).
    """
    data = value.encode()
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms.add(encode(data).decode())
        for offset in (0, 1, 2):
            encoded = encode(bytes(offset) + data).decode()
            # Without a first group mixing in the bytes before, and a last partial one.
            forms.add(encoded[4 if offset else 0 : (offset + len(data)) // 3 * 4])
    return {form for form in forms if len(form) >= _SUBSTRING}


def _redaction_patterns(values: Iterable[str]) -> tuple[re.Pattern[str], frozenset[str]]:
    """A pattern of every whole form of `values`, and the lower-cased `_SUBSTRING`-long
    pieces of their long text forms."""
    whole: set[str] = set()
    pieces: set[str] = set()
    for value in values:
        if len(value) < _MIN_REDACTED:
            continue
        whole |= _text_forms(value) | _base64_forms(value)
        # Not from a URL's `scheme://`: a secret that is a URL would blank out every URL.
        tail = _URL_SCHEME.sub("", value, count=1)
        for text in (_lower(t) for t in _text_forms(tail) if len(t) >= _SUBSTRINGS_FROM):
            pieces |= {text[i : i + _SUBSTRING] for i in range(len(text) - _SUBSTRING + 1)}
    alternatives = "|".join(re.escape(w) for w in sorted(whole, key=len, reverse=True))
    return re.compile(alternatives or "(?!)", re.IGNORECASE), frozenset(pieces)


def _lower(text: str) -> str:
    """`text` lower-cased character by character (`str.lower` may lengthen some, like `İ`)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _json_fields(value: str) -> dict[str, str]:
    """The text fields of `value` when it is a JSON object (a service account key)."""
    if not value.lstrip().startswith("{"):
        return {}
    try:
        data = json.loads(value)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, str)}


class Secrets:
    """Resolved secrets of one run, by secret_ref name. `repr` never shows values."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._whole, self._pieces = _redaction_patterns(self._values.values())

    def __repr__(self) -> str:
        return f"Secrets({sorted(self._values)})"

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def get(self, name: str) -> str:
        """The value of a resolved secret (KeyError if the run did not need it)."""
        return self._values[name]

    def values(self) -> list[str]:
        """Every resolved value (for redaction)."""
        return list(self._values.values())

    def env(self) -> dict[str, str]:
        """The dbt process's `DBT_ENV_SECRET_*` variables the generated profiles read.

        dbt scrubs the values of such variables from its logs and artifacts and
        refuses them in models (`dbt_environ` leaves out the plain names). A secret
        holding a JSON object also gives one variable per text field (BigQuery's
        `keyfile_json`, which dbt wants as a mapping).
        """
        env: dict[str, str] = {}
        for name, value in self._values.items():
            env[dbt_secret_env_var(name)] = value
            for field, text in _json_fields(value).items():
                env[json_field_env_var(name, field)] = text
        return env

    def redact(self, text: str) -> str:
        """`text` with every trace of a resolved value, and every credential written inside
        a URL (`postgresql://u:***@h`, `?token=***`: the engine's rule), replaced by `***`.

        Values of 4 characters or more are found in any letter case (SQL's `upper()`),
        URL-encoded (`%2F`, `+` for a space), JSON-escaped and base64-encoded. A value
        (or encoded form) of 12 characters or more also loses every stretch of text
        made of its 8-character pieces, so `substr()` of it is redacted too; shorter
        pieces are left, as they would blank out ordinary words. Leaking is worse than
        masking too much: text that merely shares 8 characters with a secret is masked
        as well (only a URL secret's `scheme://` is exempt).
        """
        # URLs first: masking a secret's piece could break the `://` mask_text looks for.
        text = mask_text(text)
        spans = [m.span() for m in self._whole.finditer(text)]
        if self._pieces:
            low = _lower(text)
            spans.extend(
                (i, i + _SUBSTRING)
                for i in range(len(low) - _SUBSTRING + 1)
                if low[i : i + _SUBSTRING] in self._pieces
            )
        if not spans:
            return text
        merged: list[list[int]] = []
        for start, stop in sorted(spans):
            if merged and start <= merged[-1][1]:  # overlapping or touching: one mask
                merged[-1][1] = max(merged[-1][1], stop)
            else:
                merged.append([start, stop])
        out: list[str] = []
        done = 0
        for start, stop in merged:
            out += [text[done:start], "***"]
            done = stop
        out.append(text[done:])
        return "".join(out)


def dbt_environ(base: Mapping[str, str], secret_env: Mapping[str, str]) -> dict[str, str]:
    """The environment of a dbt process: `base` plus `secret_env` (`Secrets.env`).

    The plain variables secrets are read from (`PG_PASSWORD`) are left out of it, so a
    model's `env_var('PG_PASSWORD')` cannot copy the value into dbt's files: dbt gets
    it only as `DBT_ENV_SECRET_PG_PASSWORD`, which dbt allows in profiles alone.
    """
    plain = {name.removeprefix(DBT_SECRET_PREFIX) for name in secret_env}
    return {k: v for k, v in base.items() if k not in plain} | dict(secret_env)


def resolve_secrets(names: Iterable[str]) -> Secrets:
    """Resolve every secret a run needs, or raise MissingSecretError naming all that are missing."""
    values: dict[str, str] = {}
    missing: list[tuple[str, str, Path]] = []
    problems: list[str] = []
    for name in dict.fromkeys(names):
        try:
            value = resolve_secret(name)
        except SecretFileError as exc:
            problems.append(str(exc))
            continue
        if value is None:
            missing.append((name, secret_env_var(name), secrets_dir() / name))
        else:
            values[name] = value
    if missing or problems:
        raise MissingSecretError(missing, problems)
    return Secrets(values)
