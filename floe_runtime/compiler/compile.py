"""compile: validate, then resolve one environment into `CompiledArtifacts`."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from floe_runtime import __version__
from floe_runtime.analysis import Analysis, Diagnostic, Project, ProjectError, analyze
from floe_runtime.analysis.engine import Reader, read_disk
from floe_runtime.compiler.artifacts import (
    ARTIFACTS_FILE,
    CompiledArtifacts,
    DbtTarget,
    ResolvedCatalog,
    ResolvedCompute,
    ResolvedStorage,
)
from floe_runtime.compiler.catalog import catalog_properties
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


def _dbt_profile_name(project_dir: Path) -> str:
    data: Any = yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8"))
    name = data.get("profile") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        raise CompileError(f"{project_dir / 'dbt_project.yml'} names no 'profile'")
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
    )


_ICEBERG_SOURCE = re.compile(r"""plugin:\s*["']?iceberg\b""")
_SKIP_DIRS = {"target", "dbt_packages", "logs", ".git"}


def reads_iceberg_sources(project_dir: Path) -> bool:
    """Whether a dbt project declares sources read through dbt-duckdb's `iceberg` plugin."""
    for path in project_dir.rglob("*.yml"):
        if _SKIP_DIRS.intersection(path.relative_to(project_dir).parts):
            continue
        try:
            if _ICEBERG_SOURCE.search(path.read_text(encoding="utf-8")):
                return True
        except (OSError, UnicodeDecodeError):
            continue
    return False


def _iceberg_source_catalog(
    targets: list[DbtTarget], storage: ResolvedStorage, catalog: ResolvedCatalog, root: Path
) -> dict[str, str] | None:
    """Catalog properties for dbt's iceberg plugin, when a project reads Iceberg sources.

    Only then: the plugin opens the catalog at every dbt start. Secrets are
    env_var() references. A SQL catalog with a password is left out, because its
    password would have to be URL-quoted before dbt renders it.
    """
    if not any(reads_iceberg_sources(Path(t.project_dir)) for t in targets):
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
    """Write compiled_artifacts.json and profiles.yml into `out_dir`; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    artifacts_path = out_dir / ARTIFACTS_FILE
    profiles_path = out_dir / "profiles.yml"
    artifacts_path.write_text(artifacts.public_json() + "\n", encoding="utf-8")
    profiles_path.write_text(artifacts.profiles_yml, encoding="utf-8")
    return artifacts_path, profiles_path
