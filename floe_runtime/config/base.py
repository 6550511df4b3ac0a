"""Shared building blocks of the floe.yaml and platform.yaml models."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

#: A logical profile name (`storage: default`, `catalog: lake`).
PROFILE_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,62}$"
#: A Kubernetes secret name (RFC 1123 subdomain, lower case).
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"

ProfileName = Annotated[
    str,
    Field(pattern=PROFILE_NAME_PATTERN, description="Name of a profile defined in platform.yaml."),
]


class FloeModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


class SecretRef(FloeModel):
    """A reference to a secret that is resolved only when a run needs it."""

    model_config = ConfigDict(title="SecretRef", json_schema_extra={"additionalProperties": False})

    secret_ref: str = Field(
        pattern=SECRET_NAME_PATTERN,
        description=(
            "Name of the secret (a Kubernetes secret name). At run time it is read from the "
            "environment variable NAME upper-cased with non-alphanumerics as `_`, then from "
            "`$FLOE_SECRETS_DIR/NAME` (default `/var/run/secrets/floe/NAME`). The value never "
            "appears in artifacts, logs, spans or lineage."
        ),
    )

    @property
    def env_var(self) -> str:
        """The environment variable that carries this secret (`pg-password` → `PG_PASSWORD`)."""
        return secret_env_var(self.secret_ref)


def secret_env_var(name: str) -> str:
    """Environment variable name for a secret: upper-cased, non-alphanumerics as `_`."""
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()
