"""Models of `floe.yaml`, the pipeline tier (DESIGN §2).

floe.yaml says *what* the pipeline does and names logical profiles; it holds no
infrastructure and no credentials.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from floe_runtime.config.base import FloeModel, ProfileName

PIPELINE_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
# semver.org's recommended expression.
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)

_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (field name, lowest, highest, names mapped to numbers)
_CRON_FIELDS: list[tuple[str, int, int, dict[str, int]]] = [
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(_DAYS)}),
]


def check_cron(expr: str) -> str:
    """Validate a five-field cron expression (or an `@daily`-style macro); return it unchanged.

    Raises ValueError naming the offending field.
    """
    text = expr.strip()
    if text in _CRON_MACROS:
        return expr
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(
            f"cron expression needs 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(parts)}"
        )
    for part, (field, low, high, names) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            _check_cron_item(item, field, low, high, names)
    return expr


def _check_cron_item(item: str, field: str, low: int, high: int, names: dict[str, int]) -> None:
    def number(token: str) -> int:
        lowered = token.lower()
        if lowered in names:
            return names[lowered]
        if not token.isdigit():
            raise ValueError(f"cron {field} field: '{token}' is not a number")
        value = int(token)
        if not low <= value <= high:
            raise ValueError(f"cron {field} field: {value} is outside {low}-{high}")
        return value

    base, _, step = item.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        raise ValueError(f"cron {field} field: step '{step}' must be a positive number")
    if base == "*":
        return
    start, dash, end = base.partition("-")
    if not start:
        raise ValueError(f"cron {field} field: empty value")
    first = number(start)
    if dash and number(end) < first:
        raise ValueError(f"cron {field} field: range '{base}' runs backwards")


class DbtTransform(FloeModel):
    """A dbt project run as part of the pipeline."""

    type: Literal["dbt"] = Field(description="Kind of transform. `dbt` runs a dbt project.")
    path: str = Field(
        description="Folder of the dbt project, relative to floe.yaml; it must hold dbt_project.yml.",
        min_length=1,
    )
    select: str | None = Field(
        default=None, description="dbt node selection (`--select`), e.g. `+marts`."
    )
    exclude: str | None = Field(default=None, description="dbt nodes to leave out (`--exclude`).")
    vars: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="dbt project variables passed as `--vars`."
    )
    namespace: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
        description=(
            "Iceberg namespace the models are published to. Default: the pipeline name with "
            "`-` replaced by `_`."
        ),
    )


#: A transform step; a discriminated union on `type` so that more kinds can come.
Transform = Annotated[Union[DbtTransform], Field(discriminator="type")]  # noqa: UP007


class Schedule(FloeModel):
    """When the pipeline runs; becomes a Dagster schedule."""

    cron: str = Field(
        description="Five-field cron expression (`minute hour day-of-month month day-of-week`) "
        "or a macro such as `@daily`."
    )
    timezone: str = Field(default="UTC", description="IANA time zone name, e.g. `Europe/Berlin`.")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        # OSError: a name too long for a file path (ENAMETOOLONG), or a folder ("Europe").
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown IANA time zone '{value[:80]}'") from None
        return value


class PipelineObservability(FloeModel):
    """What the pipeline emits; where it goes is the platform's business."""

    traces: bool = Field(default=True, description="Emit OpenTelemetry traces for runs.")
    lineage: bool = Field(default=True, description="Emit OpenLineage events for runs.")
    attributes: dict[str, str] = Field(
        default_factory=dict,
        description="Extra attributes added to every span and to lineage run facets.",
    )


class Pipeline(FloeModel):
    """`floe.yaml`: a data pipeline, free of infrastructure and credentials."""

    name: str = Field(
        pattern=PIPELINE_NAME_PATTERN,
        description="Pipeline name: lower case letters, digits, `-` and `_`, starting with a letter.",
    )
    version: str = Field(
        pattern=SEMVER_PATTERN, description='Semantic version of the pipeline, e.g. "1.0.0".'
    )
    description: str | None = Field(default=None, description="What the pipeline is for.")
    storage: ProfileName = Field(
        default="default", description="Storage profile (defined in platform.yaml `storage`)."
    )
    catalog: ProfileName = Field(
        default="default", description="Iceberg catalog profile (platform.yaml `catalogs`)."
    )
    compute: ProfileName = Field(
        default="default", description="Compute profile dbt runs on (platform.yaml `compute`)."
    )
    transforms: list[Transform] = Field(
        min_length=1, description="The steps of the pipeline, run in order."
    )
    schedule: Schedule | None = Field(default=None, description="When the pipeline runs.")
    observability: PipelineObservability = Field(
        default_factory=PipelineObservability, description="Traces and lineage for runs."
    )

    @property
    def default_namespace(self) -> str:
        """The Iceberg namespace used when a transform names none."""
        return re.sub(r"-", "_", self.name)


#: Profile references in floe.yaml and the platform.yaml section each one names.
PROFILE_KINDS: dict[str, str] = {"storage": "storage", "catalog": "catalogs", "compute": "compute"}
