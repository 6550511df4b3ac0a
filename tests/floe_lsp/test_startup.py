"""The attrs code cache that shortens the server's start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from floe_lsp.startup import cache_file, import_lsp_libraries
import_lsp_libraries()
from lsprotocol import types
a = types.Position(line=1, character=2)
assert a == types.Position(line=1, character=2) and a != types.Position(line=1, character=3)
item = types.CompletionItem(label="x")  # attrs-generated __init__ with defaults
assert item.label == "x" and item.kind is None
print(cache_file())
"""


def _probe(cache_home: Path) -> Path:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return Path(out.stdout.strip())


def test_first_start_writes_the_cache_and_later_starts_reuse_it(tmp_path: Path) -> None:
    path = _probe(tmp_path)
    assert path.parent == tmp_path / "floe-runtime"
    assert path.stat().st_size > 100_000  # hundreds of generated methods
    before = path.stat().st_mtime_ns
    assert _probe(tmp_path) == path
    assert path.stat().st_mtime_ns == before  # everything was found: no rewrite


def test_a_damaged_cache_is_ignored_and_replaced(tmp_path: Path) -> None:
    path = _probe(tmp_path)
    path.write_bytes(b"not marshal data")
    _probe(tmp_path)
    assert path.stat().st_size > 100_000


def test_an_unwritable_cache_folder_costs_only_speed(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    _probe(blocked)  # XDG_CACHE_HOME is a file: nothing can be written, start-up still works
