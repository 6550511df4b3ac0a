"""Secret resolution at run time (DESIGN §3).

Order: environment variable NAME upper-cased with non-alphanumerics as `_`,
then the file `$FLOE_SECRETS_DIR/NAME` (default `/var/run/secrets/floe/NAME`).
Values live only in memory; this module never logs or formats them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from floe_runtime.config.base import secret_env_var

DEFAULT_SECRETS_DIR = "/var/run/secrets/floe"


class MissingSecretError(Exception):
    """A secret a run needs could be found neither in the environment nor on disk."""

    def __init__(self, missing: list[tuple[str, str, Path]]) -> None:
        self.missing = missing
        parts = [
            f"secret '{name}' not found: set environment variable {var} or create file {path}"
            for name, var, path in missing
        ]
        super().__init__("; ".join(parts))


def secrets_dir() -> Path:
    """The folder holding one file per secret (a Kubernetes secret mount)."""
    return Path(os.environ.get("FLOE_SECRETS_DIR") or DEFAULT_SECRETS_DIR)


def resolve_secret(name: str) -> str | None:
    """The value of one secret, or None when neither place has it."""
    value = os.environ.get(secret_env_var(name))
    if value is not None:
        return value
    path = secrets_dir() / name
    try:
        # A mounted secret usually ends with a newline that is not part of the value.
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None


class Secrets:
    """Resolved secrets of one run, by secret_ref name. `repr` never shows values."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

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
        """Environment variables the generated dbt profiles read with env_var()."""
        return {secret_env_var(name): value for name, value in self._values.items()}

    def redact(self, text: str) -> str:
        """`text` with every resolved value replaced by `***` (belt and braces for error text)."""
        for value in sorted(self._values.values(), key=len, reverse=True):
            if len(value) >= 4:
                text = text.replace(value, "***")
        return text


def resolve_secrets(names: Iterable[str]) -> Secrets:
    """Resolve every secret a run needs, or raise MissingSecretError naming all that are missing."""
    values: dict[str, str] = {}
    missing: list[tuple[str, str, Path]] = []
    for name in dict.fromkeys(names):
        value = resolve_secret(name)
        if value is None:
            missing.append((name, secret_env_var(name), secrets_dir() / name))
        else:
            values[name] = value
    if missing:
        raise MissingSecretError(missing)
    return Secrets(values)
