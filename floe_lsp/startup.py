"""Start-up speed: keep the code attrs generates for lsprotocol across server starts.

Importing `lsprotocol.types` builds about 570 attrs classes, and attrs compiles
the source of each generated method (`__init__`, `__repr__`, ...) with
`compile()` on every start: about 40% of the import, which is most of the time
before `initialize` can be answered. The generated source is the same on every
start, so its code objects are kept in a marshal file in the user's cache
folder and reused; anything not found there is compiled as before.

The cache is keyed by the generated source text itself, so a different attrs or
lsprotocol version simply misses and is compiled; a run that misses more than a
few entries rewrites the file with exactly what it used. When attrs no longer
has the hook this relies on, nothing is patched.
"""

from __future__ import annotations

import marshal
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import CodeType
from typing import Any

#: Misses tolerated before the cache file is rewritten (a few scripts differ per run).
REWRITE_AFTER_MISSES = 8


def cache_file() -> Path:
    """Where the code cache lives: `$XDG_CACHE_HOME/floe-runtime/` (or ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    tag = sys.implementation.cache_tag or "python"
    try:
        import attr

        version = str(attr.__version__)
    except (ImportError, AttributeError):  # pragma: no cover - attrs is a pygls dependency
        version = "unknown"
    return Path(base) / "floe-runtime" / f"attrs-code-{version}-{tag}.marshal"


def _load(path: Path) -> dict[str, CodeType]:
    try:
        data = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(path: Path, codes: Mapping[str, CodeType]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(marshal.dumps(dict(codes)))
        os.replace(tmp, path)  # atomic: a concurrent start reads the old or the new file
    except OSError:
        return  # a read-only home only costs the speed-up


def import_lsp_libraries(path: Path | None = None) -> None:
    """Import lsprotocol and pygls with attrs' generated code served from the cache."""
    if "lsprotocol.types" in sys.modules:
        return
    try:
        import attr._make as make
    except ImportError:  # pragma: no cover
        make = None  # type: ignore[assignment]
    original: Callable[..., None] | None = getattr(make, "_compile_and_eval", None)
    if make is None or original is None:
        import lsprotocol.types  # noqa: F401
        import pygls.lsp.server  # noqa: F401

        return
    target = path or cache_file()
    known = _load(target)
    used: dict[str, CodeType] = {}
    misses = 0

    def compile_and_eval(
        script: str,
        globs: dict[str, Any] | None,
        locs: Mapping[str, object] | None = None,
        filename: str = "",
    ) -> None:
        nonlocal misses
        code = known.get(script)
        if code is None:
            misses += 1
            code = compile(script, filename, "exec")
        used[script] = code
        eval(code, globs, locs)  # noqa: S307 - attrs' own generated source, as attrs does

    make._compile_and_eval = compile_and_eval
    try:
        import lsprotocol.types  # noqa: F401
        import pygls.lsp.server  # noqa: F401
    finally:
        make._compile_and_eval = original
    if misses > REWRITE_AFTER_MISSES:
        _save(target, used)
