"""Dagster `Definitions` for compiled artifacts: dbt assets, dbt tests as checks, the schedule."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, ScheduleDefinition, define_asset_job

from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.runtime.assets import SessionProvider, build_dbt_assets

JOB_NAME = "floe_pipeline"


def build_definitions(
    artifacts: CompiledArtifacts,
    provider: SessionProvider | None = None,
    select: str | None = None,
    exclude: str | None = None,
) -> Definitions:
    """The pipeline as Dagster definitions (what `dagster dev` and Kubernetes load)."""
    assets = build_dbt_assets(artifacts, provider or SessionProvider(artifacts), select, exclude)
    job = define_asset_job(JOB_NAME, selection=AssetSelection.all())
    schedules = []
    if artifacts.pipeline.schedule is not None:
        schedules.append(
            ScheduleDefinition(
                name=f"{artifacts.pipeline.name.replace('-', '_')}_schedule",
                job=job,
                cron_schedule=artifacts.pipeline.schedule.cron,
                execution_timezone=artifacts.pipeline.schedule.timezone,
            )
        )
    return Definitions(assets=assets, jobs=[job], schedules=schedules)
