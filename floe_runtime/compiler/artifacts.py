"""`CompiledArtifacts`: everything a run needs, resolved for one environment (DESIGN §5).

Secrets stay `secret_ref`s here; the generated dbt profiles refer to them with
`env_var()`. Nothing in this model is ever a secret value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from floe_runtime.analysis.secrets import mask_text
from floe_runtime.config.pipeline import Pipeline
from floe_runtime.config.platform import (
    CatalogProfile,
    ComputeProfile,
    PlatformObservability,
    StorageProfile,
)

ARTIFACTS_FILE = "compiled_artifacts.json"
SCHEMA_VERSION: Literal["1"] = "1"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ResolvedStorage(_Frozen):
    """The storage profile floe.yaml named, as this environment defines it."""

    name: str
    profile: StorageProfile


class ResolvedCatalog(_Frozen):
    """The catalog profile floe.yaml named, as this environment defines it."""

    name: str
    profile: CatalogProfile


class ResolvedCompute(_Frozen):
    """The compute profile floe.yaml named, as this environment defines it."""

    name: str
    profile: ComputeProfile


class DbtTarget(_Frozen):
    """One dbt transform, ready to run."""

    index: int = Field(description="Position of the transform in floe.yaml.")
    project_dir: str = Field(description="Absolute path of the dbt project.")
    profile_name: str = Field(description="The `profile:` dbt_project.yml names.")
    target: str = Field(description="dbt target name: the environment.")
    namespace: str = Field(description="Iceberg namespace the models are published to.")
    select: str | None = None
    exclude: str | None = None
    vars: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class CompiledArtifacts(_Frozen):
    """The compiled form of a pipeline in one environment."""

    schema_version: Literal["1"] = SCHEMA_VERSION
    floe_runtime_version: str
    environment: str
    project_root: str = Field(description="Absolute folder of floe.yaml.")
    pipeline_file: str
    platform_file: str
    pipeline: Pipeline
    storage: ResolvedStorage
    catalog: ResolvedCatalog
    compute: ResolvedCompute
    observability: PlatformObservability
    source_hashes: dict[str, str] = Field(description="sha256 of floe.yaml and platform.yaml.")
    dbt: list[DbtTarget]
    profiles_yml: str = Field(description="Generated dbt profiles.yml (secrets as env_var()).")
    secret_refs: list[str] = Field(description="Every secret a run of these artifacts needs.")
    engine_files: dict[str, str] = Field(
        default_factory=dict,
        description="Engine configuration for trino/spark compute (the Trino catalog file, "
        "spark-defaults.conf), by path under the compile output folder; secrets as references.",
    )
    notes: list[str] = Field(
        default_factory=list,
        description="What compile says about this environment: how to install the engine "
        "files, which variables the engine needs, what floe does not publish.",
    )

    def public_json(self) -> str:
        """The JSON written to `compiled_artifacts.json`: every credential written inside a
        URL masked (`postgresql://u:***@h/db`) by the engine's one rule (FLOE020's)."""
        data = _masked(self.model_dump(mode="json", by_alias=True))
        return json.dumps(data, indent=2, ensure_ascii=False)

    def resolve_path(self, value: str) -> Path:
        """A path from the config, made absolute against the project root."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else (Path(self.project_root) / path).resolve()


def _masked(value: Any) -> Any:
    """JSON data with `mask_text` applied to every string in it."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def load_artifacts(path: Path) -> CompiledArtifacts:
    """Read compiled artifacts from a JSON file."""
    return CompiledArtifacts.model_validate_json(path.read_text(encoding="utf-8"))
