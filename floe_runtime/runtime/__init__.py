"""The run engine: secrets, dbt through Dagster, Iceberg publishing, traces and lineage.

Everything here imports heavy libraries (dbt, Dagster, pyiceberg, OpenTelemetry,
OpenLineage) lazily or at module level of its own submodule; the CLI imports
these modules only inside the commands that need them.
"""
