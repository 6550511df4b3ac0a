"""compile: validate, then resolve one environment into `CompiledArtifacts`."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from floe_runtime import __version__
from floe_runtime.analysis import Analysis, Diagnostic, Project, ProjectError, analyze
from floe_runtime.analysis.engine import Reader, read_disk
from floe_runtime.analysis.files import UnreadableFile, not_regular, read_text_file
from floe_runtime.compiler.artifacts import (
    ARTIFACTS_FILE,
    CompiledArtifacts,
    DbtTarget,
    ResolvedCatalog,
    ResolvedCompute,
    ResolvedStorage,
)
from floe_runtime.compiler.catalog import catalog_properties
from floe_runtime.compiler.engines import engine_config
from floe_runtime.compiler.profiles import profiles_yml, secret_jinja
from floe_runtime.config.base import SecretRef
from floe_runtime.config.platform import SqlCatalog


class CompileError(Exception):
    """Compilation refused: the diagnostics say why."""

    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics or []


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


#: A dbt project file compile reads may be this large (schema files of big projects are).
DBT_FILE_MAX_BYTES = 64 * 1024 * 1024


def _dbt_profile_name(project_dir: Path) -> str:
    path = project_dir / "dbt_project.yml"
    try:
        data: Any = yaml.safe_load(read_text_file(path, DBT_FILE_MAX_BYTES))
    except UnreadableFile as exc:
        raise CompileError(str(exc)) from None
    except (yaml.YAMLError, RecursionError) as exc:
        problem = getattr(exc, "problem", None) or (
            str(exc) if isinstance(exc, yaml.YAMLError) else "nested too deeply"
        )
        raise CompileError(f"{path} is not valid YAML: {problem}") from None
    name = data.get("profile") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        raise CompileError(f"{path} names no 'profile'")
    return name


def collect_secret_refs(value: Any) -> list[str]:
    """Every secret_ref name inside a (pydantic) value, in order, without repeats."""
    found: dict[str, None] = {}

    def visit(item: Any) -> None:
        if isinstance(item, SecretRef):
            found[item.secret_ref] = None
        elif isinstance(item, BaseModel):
            for name in type(item).model_fields:
                visit(getattr(item, name))
        elif isinstance(item, dict):
            for child in item.values():
                visit(child)
        elif isinstance(item, list | tuple):
            for child in item:
                visit(child)

    visit(value)
    return list(found)


def compile_project(
    project: Project, env: str | None = None, read: Reader = read_disk
) -> CompiledArtifacts:
    """Compile `project` for one environment.

    `env` may be omitted when the project has exactly one. Raises CompileError
    (with the diagnostics) when validation finds errors or no environment fits.
    """
    if env is not None:
        try:
            project = Project(project.root, project.pipeline_file, (project.environment(env),))
        except ProjectError as exc:
            raise CompileError(str(exc)) from None
    if not project.environments:
        raise CompileError(
            "no platform.yaml found: add platform.yaml beside floe.yaml or "
            "platform/<env>/platform.yaml"
        )
    if len(project.environments) > 1:
        names = ", ".join(e.name for e in project.environments)
        raise CompileError(f"several environments ({names}): choose one with --env")
    analysis: Analysis = analyze(project, read)
    if analysis.has_errors:
        raise CompileError("validation failed", analysis.diagnostics)
    environment = project.environments[0]
    pipeline = analysis.pipeline.model
    platform = analysis.platforms[environment.name].model
    assert pipeline is not None and platform is not None  # no errors means both are valid

    targets: list[DbtTarget] = []
    for index, transform in enumerate(pipeline.transforms):
        project_dir = (project.root / transform.path).resolve()
        targets.append(
            DbtTarget(
                index=index,
                project_dir=str(project_dir),
                profile_name=_dbt_profile_name(project_dir),
                target=environment.name,
                namespace=transform.namespace or pipeline.default_namespace,
                select=transform.select or None,
                exclude=transform.exclude or None,
                vars=dict(transform.vars),
            )
        )
    storage = ResolvedStorage(name=pipeline.storage, profile=platform.storage[pipeline.storage])
    catalog = ResolvedCatalog(name=pipeline.catalog, profile=platform.catalogs[pipeline.catalog])
    compute = ResolvedCompute(name=pipeline.compute, profile=platform.compute[pipeline.compute])
    engine = engine_config(
        storage.profile, catalog.name, catalog.profile, compute.profile, project.root
    )
    pipeline_text = read(project.pipeline_file) or ""
    platform_text = read(environment.platform_file) or ""
    return CompiledArtifacts(
        floe_runtime_version=__version__,
        environment=environment.name,
        project_root=str(project.root),
        pipeline_file=str(project.pipeline_file),
        platform_file=str(environment.platform_file),
        pipeline=pipeline,
        storage=storage,
        catalog=catalog,
        compute=compute,
        observability=platform.observability,
        source_hashes={
            "floe.yaml": _sha256(pipeline_text),
            "platform.yaml": _sha256(platform_text),
        },
        dbt=targets,
        profiles_yml=profiles_yml(
            [t.profile_name for t in targets],
            environment.name,
            compute.profile,
            project.root,
            _iceberg_source_catalog(targets, storage, catalog, project.root),
        ),
        secret_refs=collect_secret_refs([storage, catalog, compute, platform.observability]),
        engine_files=engine.files,
        notes=engine.notes,
    )


_ICEBERG_SOURCE = re.compile(r"""plugin:\s*["']?iceberg\b""")
_SKIP_DIRS = {"target", "dbt_packages", "logs", ".git"}


#: Files dbt reads when it parses a project.
_DBT_SUFFIXES = frozenset({".yml", ".yaml", ".sql", ".csv", ".md", ".py", ".jinja"})


def _dbt_files(project_dir: Path) -> list[Path]:
    """The files of a dbt project that dbt reads (build output and packages left out).

    CompileError when one of them is not a regular file: a named pipe blocks whoever reads
    it (dbt too, for good), so compile refuses and names it instead of hanging.
    """
    found: list[Path] = []
    folders = [project_dir]
    seen: set[tuple[int, int]] = set()  # a linked folder may lead back up
    while folders:
        folder = folders.pop()
        try:
            info = folder.stat()
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir():
                    if entry.name not in _SKIP_DIRS:
                        folders.append(Path(entry.path))
                elif os.path.splitext(entry.name)[1] not in _DBT_SUFFIXES:
                    continue
                elif entry.is_file():
                    found.append(Path(entry.path))
                else:
                    reason = not_regular(entry.stat().st_mode)
                    if reason is not None:
                        raise CompileError(
                            f"dbt project file {entry.path} {reason}; "
                            "dbt would block or fail reading it"
                        )
            except OSError:
                continue  # vanished, or a dangling link: dbt reports those itself
    return found


def reads_iceberg_sources(project_dir: Path) -> bool:
    """Whether a dbt project declares sources read through dbt-duckdb's `iceberg` plugin.

    CompileError for a project file dbt could not read without blocking (see `_dbt_files`).
    """
    for path in _dbt_files(project_dir):
        if path.suffix != ".yml":
            continue
        try:
            if _ICEBERG_SOURCE.search(read_text_file(path, DBT_FILE_MAX_BYTES)):
                return True
        except UnreadableFile:
            continue  # too large or not UTF-8: dbt's own parse says so
    return False


def _iceberg_source_catalog(
    targets: list[DbtTarget], storage: ResolvedStorage, catalog: ResolvedCatalog, root: Path
) -> dict[str, str] | None:
    """Catalog properties for dbt's iceberg plugin, when a project reads Iceberg sources.

    Only then: the plugin opens the catalog at every dbt start. Secrets are
    env_var() references. A SQL catalog with a password is left out, because its
    password would have to be URL-quoted before dbt renders it.
    """
    # Every project is walked (not `any` over a generator): each must be free of files dbt
    # would block on.
    folders = sorted({t.project_dir for t in targets})
    if not any([reads_iceberg_sources(Path(folder)) for folder in folders]):  # noqa: C419
        return None
    if isinstance(catalog.profile, SqlCatalog) and catalog.profile.password is not None:
        return None
    # pyiceberg's SQL catalog scopes tables by catalog name: use the one run publishes with.
    props = catalog_properties(storage.profile, catalog.profile, root, secret_jinja)
    return {"catalog": catalog.name, **props}


def default_output_dir(project: Project) -> Path:
    """Where compile writes by default: `<project>/target/floe/`."""
    return project.root / "target" / "floe"


def write_artifacts(artifacts: CompiledArtifacts, out_dir: Path) -> tuple[Path, Path]:
    """Write compiled_artifacts.json, profiles.yml and the engine files (trino/spark compute)
    into `out_dir`; return the first two paths (the engine files are `engine_paths`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    artifacts_path = out_dir / ARTIFACTS_FILE
    profiles_path = out_dir / "profiles.yml"
    artifacts_path.write_text(artifacts.public_json() + "\n", encoding="utf-8")
    profiles_path.write_text(artifacts.profiles_yml, encoding="utf-8")
    for relative, text in artifacts.engine_files.items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return artifacts_path, profiles_path


def engine_paths(artifacts: CompiledArtifacts, out_dir: Path) -> list[Path]:
    """Where `write_artifacts` puts the engine files of `artifacts` under `out_dir`."""
    return [out_dir / relative for relative in artifacts.engine_files]
