"""Preparing dbt for a run: the generated profiles.yml, the venv's dbt, a fresh manifest."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from floe_runtime.compiler.artifacts import CompiledArtifacts, DbtTarget

# Folders of a dbt project whose content never changes what `dbt parse` produces.
_IGNORED_DIRS = {"target", "logs", "dbt_packages", ".git", "__pycache__", ".floe"}


class DbtParseError(Exception):
    """`dbt parse` failed; the message holds dbt's error text."""


def dbt_executable() -> str:
    """The `dbt` installed beside this Python (dagster-dbt must not pick another one)."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def floe_dir(artifacts: CompiledArtifacts) -> Path:
    """`<project>/target/floe`: compiled artifacts, profiles.yml, manifests."""
    return Path(artifacts.project_root) / "target" / "floe"


def dbt_env() -> dict[str, str]:
    """Environment settings for every dbt process floe-runtime starts."""
    return {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}


def write_profiles(artifacts: CompiledArtifacts) -> Path:
    """Write the generated profiles.yml (secrets as env_var() calls) and return its folder."""
    out = floe_dir(artifacts)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "profiles.yml"
    if not path.exists() or path.read_text(encoding="utf-8") != artifacts.profiles_yml:
        path.write_text(artifacts.profiles_yml, encoding="utf-8")
    return out


@dataclass(frozen=True)
class PreparedDbt:
    """A dbt transform ready for dagster-dbt: its manifest and where things are."""

    target: DbtTarget
    profiles_dir: Path
    target_path: Path
    manifest_path: Path

    def manifest(self) -> dict[str, Any]:
        """The parsed manifest.json."""
        data: dict[str, Any] = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        return data


def _fingerprint(target: DbtTarget, profiles_text: str) -> str:
    """A hash of everything `dbt parse` reads: project files (by mtime and size), profile, vars."""
    digest = hashlib.sha256()
    digest.update(profiles_text.encode())
    digest.update(json.dumps(target.vars, sort_keys=True).encode())
    digest.update(target.target.encode())
    root = Path(target.project_dir)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _IGNORED_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                stat = path.stat()
            except OSError:
                continue
            digest.update(f"{path.relative_to(root)}:{stat.st_mtime_ns}:{stat.st_size}\n".encode())
    return digest.hexdigest()


def prepare_dbt(
    artifacts: CompiledArtifacts, target: DbtTarget, env: dict[str, str]
) -> PreparedDbt:
    """Write profiles.yml and make sure the manifest is current (`dbt parse` when stale).

    `env` carries the resolved secrets for the dbt process (profiles read them with env_var()).
    """
    profiles_dir = write_profiles(artifacts)
    target_path = floe_dir(artifacts) / "dbt" / str(target.index)
    manifest_path = target_path / "manifest.json"
    stamp = target_path / "floe_parse.sha256"
    fingerprint = _fingerprint(target, artifacts.profiles_yml)
    fresh = (
        manifest_path.exists()
        and stamp.exists()
        and stamp.read_text(encoding="utf-8").strip() == fingerprint
    )
    if not fresh:
        target_path.mkdir(parents=True, exist_ok=True)
        cmd = [
            dbt_executable(),
            "--log-format",
            "json",
            "parse",
            "--project-dir",
            target.project_dir,
            "--profiles-dir",
            str(profiles_dir),
            "--target",
            target.target,
            "--target-path",
            str(target_path),
        ]
        if target.vars:
            cmd += ["--vars", json.dumps(target.vars)]
        proc = subprocess.run(
            cmd,
            cwd=target.project_dir,
            env={**os.environ, **env, **dbt_env(), "DBT_LOG_PATH": str(target_path)},
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not manifest_path.exists():
            raise DbtParseError(_dbt_errors(proc.stdout + proc.stderr) or "dbt parse failed")
        stamp.write_text(fingerprint + "\n", encoding="utf-8")
    return PreparedDbt(target, profiles_dir, target_path, manifest_path)


def _dbt_errors(output: str) -> str:
    """The error lines of dbt's JSON log output (or the raw text when it is not JSON)."""
    errors: list[str] = []
    for line in output.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            if line.strip():
                errors.append(line.strip())
            continue
        info = event.get("info", {}) if isinstance(event, dict) else {}
        if info.get("level") == "error" and info.get("msg"):
            errors.append(str(info["msg"]))
    return "\n".join(errors)
