"""Models of `platform.yaml`, the platform tier (DESIGN §3).

Each profile kind is a discriminated union on `type`, so an error names the
field that is wrong for *that* type. Every credential is a `SecretRef`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from floe_runtime.config.base import FloeModel, ProfileName, SecretRef

# ---------------------------------------------------------------- storage


class LocalStorage(FloeModel):
    """Files on the local disk (the embedded default)."""

    type: Literal["local"] = Field(description="Local filesystem storage.")
    path: str = Field(
        default="./.floe/warehouse",
        description="Warehouse folder, relative to floe.yaml unless absolute.",
    )


class S3Credentials(FloeModel):
    """Static AWS-style keys; leave out to use the default AWS credential chain."""

    access_key_id: SecretRef = Field(description="Access key id, as a secret reference.")
    secret_access_key: SecretRef = Field(description="Secret access key, as a secret reference.")
    session_token: SecretRef | None = Field(
        default=None, description="Session token for temporary credentials."
    )


class S3Storage(FloeModel):
    """An S3 (or S3-compatible) bucket."""

    type: Literal["s3"] = Field(description="Amazon S3 or an S3-compatible object store.")
    bucket: str = Field(min_length=3, description="Bucket name.")
    prefix: str = Field(default="", description="Key prefix under which tables are written.")
    region: str | None = Field(default=None, description="AWS region, e.g. `eu-west-1`.")
    endpoint: str | None = Field(
        default=None, description="Endpoint URL of an S3-compatible store (MinIO, SeaweedFS)."
    )
    path_style_access: bool = Field(
        default=False, description="Use path-style URLs (needed by most S3-compatible stores)."
    )
    credentials: S3Credentials | None = Field(
        default=None, description="Static credentials; omit for the default credential chain."
    )


class GcsCredentials(FloeModel):
    """A Google service account key."""

    service_account_json: SecretRef = Field(
        description="Service account key JSON, as a secret reference."
    )


class GcsStorage(FloeModel):
    """A Google Cloud Storage bucket."""

    type: Literal["gcs"] = Field(description="Google Cloud Storage.")
    bucket: str = Field(min_length=3, description="Bucket name.")
    prefix: str = Field(default="", description="Object prefix under which tables are written.")
    project: str | None = Field(default=None, description="Google Cloud project id.")
    endpoint: str | None = Field(
        default=None,
        description="Base URL of a GCS-compatible service or emulator, e.g. `http://127.0.0.1:9023`.",
    )
    credentials: GcsCredentials | None = Field(
        default=None,
        description="Service account key (exchanged for an access token at run time, in memory); "
        "omit for application default credentials.",
    )


class AdlsCredentials(FloeModel):
    """An Azure storage account key or SAS token."""

    account_key: SecretRef | None = Field(default=None, description="Storage account key.")
    sas_token: SecretRef | None = Field(default=None, description="Shared access signature.")

    @model_validator(mode="after")
    def _one_credential(self) -> AdlsCredentials:
        if (self.account_key is None) == (self.sas_token is None):
            raise ValueError("give exactly one of 'account_key' or 'sas_token'")
        return self


class AdlsStorage(FloeModel):
    """An Azure Data Lake Storage Gen2 container."""

    type: Literal["adls"] = Field(description="Azure Data Lake Storage Gen2.")
    account_name: str = Field(description="Storage account name.")
    container: str = Field(description="Container (file system) name.")
    prefix: str = Field(default="", description="Path prefix under which tables are written.")
    endpoint: str | None = Field(
        default=None,
        description="Blob endpoint of an Azure-compatible service or emulator (Azurite), "
        "e.g. `http://127.0.0.1:10000`; omit for `<account>.blob/dfs.core.windows.net`.",
    )
    credentials: AdlsCredentials | None = Field(
        default=None, description="Account key or SAS token; omit for Azure default credentials."
    )


StorageProfile = Annotated[
    Union[LocalStorage, S3Storage, GcsStorage, AdlsStorage],  # noqa: UP007
    Field(discriminator="type"),
]

# ---------------------------------------------------------------- catalogs


class NoAuth(FloeModel):
    """No authentication."""

    mode: Literal["none"] = Field(description="Send no credentials.")


class OAuth2Auth(FloeModel):
    """OAuth2 client credentials (Polaris, most REST catalogs)."""

    mode: Literal["oauth2"] = Field(description="OAuth2 client-credentials flow.")
    client_id: str = Field(description="OAuth2 client id (not a secret).")
    client_secret: SecretRef = Field(description="OAuth2 client secret, as a secret reference.")
    scope: str | None = Field(
        default=None, description="OAuth2 scope, e.g. `PRINCIPAL_ROLE:ALL` for Polaris."
    )
    token_endpoint: str | None = Field(
        default=None,
        description="Token URL; default: `<uri>/v1/oauth/tokens` as the REST spec describes.",
    )


class TokenAuth(FloeModel):
    """A bearer token."""

    mode: Literal["token"] = Field(description="A static bearer token.")
    token: SecretRef = Field(description="Bearer token, as a secret reference.")


CatalogCredentials = Annotated[
    Union[NoAuth, OAuth2Auth, TokenAuth],  # noqa: UP007
    Field(discriminator="mode"),
]


class SqlCatalog(FloeModel):
    """pyiceberg's SQL catalog: SQLite embedded by default, or PostgreSQL."""

    type: Literal["sql"] = Field(description="SQL-database-backed Iceberg catalog.")
    uri: str = Field(
        default="sqlite:///.floe/catalog.db",
        description="SQLAlchemy URL of the catalog database; SQLite paths are relative to floe.yaml.",
    )
    warehouse: str | None = Field(
        default=None,
        description="Warehouse location; default: the pipeline's storage profile.",
    )
    password: SecretRef | None = Field(
        default=None, description="Password of the catalog database, when it needs one."
    )


class _RestCatalogBase(FloeModel):
    uri: str = Field(description="Base URL of the Iceberg REST catalog API.")
    warehouse: str | None = Field(
        default=None, description="Warehouse (catalog) name the server should use."
    )
    credentials: CatalogCredentials = Field(
        default_factory=lambda: NoAuth(mode="none"),
        description="How floe-runtime authenticates to the catalog.",
    )
    properties: dict[str, str] = Field(
        default_factory=dict,
        description="Extra catalog properties passed to pyiceberg (no secrets here).",
    )


class PolarisCatalog(_RestCatalogBase):
    """Apache Polaris (Iceberg REST, OAuth2)."""

    type: Literal["polaris"] = Field(description="Apache Polaris catalog.")


class RestCatalog(_RestCatalogBase):
    """Any Iceberg REST catalog."""

    type: Literal["rest"] = Field(description="Generic Iceberg REST catalog.")


class AwsCredentials(FloeModel):
    """Static AWS keys; leave out to use the default AWS credential chain."""

    access_key_id: SecretRef = Field(description="Access key id, as a secret reference.")
    secret_access_key: SecretRef = Field(description="Secret access key, as a secret reference.")


class GlueCatalog(FloeModel):
    """AWS Glue Data Catalog."""

    type: Literal["glue"] = Field(description="AWS Glue Data Catalog.")
    region: str = Field(description="AWS region of the catalog.")
    catalog_id: str | None = Field(default=None, description="AWS account id owning the catalog.")
    endpoint: str | None = Field(
        default=None,
        description="Glue API endpoint, for a Glue-compatible service (default: AWS's for the region).",
    )
    warehouse: str | None = Field(
        default=None, description="Warehouse location; default: the pipeline's storage profile."
    )
    credentials: AwsCredentials | None = Field(
        default=None, description="Static credentials; omit for the default credential chain."
    )


CatalogProfile = Annotated[
    Union[SqlCatalog, PolarisCatalog, RestCatalog, GlueCatalog],  # noqa: UP007
    Field(discriminator="type"),
]

# ---------------------------------------------------------------- compute

_THREADS = Field(default=4, ge=1, le=64, description="Number of models dbt builds at once.")


class DuckDBCompute(FloeModel):
    """DuckDB, embedded (the local default)."""

    type: Literal["duckdb"] = Field(description="DuckDB through dbt-duckdb.")
    path: str = Field(
        default="./.floe/floe.duckdb",
        description="Database file, relative to floe.yaml unless absolute; `:memory:` for none.",
    )
    threads: int = _THREADS
    extensions: list[str] = Field(default_factory=list, description="DuckDB extensions to load.")
    settings: dict[str, str | int | bool | SecretRef] = Field(
        default_factory=dict,
        description=(
            "DuckDB settings (`SET name = value`). A setting that holds a credential "
            "(`s3_secret_access_key`, `s3_session_token`, ...) is a secret reference, "
            "`{secret_ref: NAME}`, resolved only when a run needs it."
        ),
    )


class PostgresCompute(FloeModel):
    """PostgreSQL through dbt-postgres."""

    type: Literal["postgres"] = Field(description="PostgreSQL.")
    host: str = Field(description="Server host name.")
    port: int = Field(default=5432, ge=1, le=65535, description="Server port.")
    user: str = Field(description="User name.")
    password: SecretRef | None = Field(default=None, description="Password, as a secret reference.")
    dbname: str = Field(description="Database name.")
    schema_: str = Field(
        default="public", alias="schema", description="Schema dbt builds models in."
    )
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = (
        Field(default=None, description="libpq SSL mode.")
    )
    threads: int = _THREADS


class SnowflakeCompute(FloeModel):
    """Snowflake through dbt-snowflake."""

    type: Literal["snowflake"] = Field(description="Snowflake.")
    account: str = Field(description="Account identifier, e.g. `xy12345.eu-west-1`.")
    user: str = Field(description="User name.")
    password: SecretRef | None = Field(default=None, description="Password, as a secret reference.")
    private_key: SecretRef | None = Field(
        default=None, description="Private key (PEM) for key-pair authentication."
    )
    authenticator: str | None = Field(
        default=None, description="Authenticator, e.g. `externalbrowser` or `oauth`."
    )
    role: str | None = Field(default=None, description="Role to use.")
    warehouse: str = Field(description="Virtual warehouse that runs queries.")
    database: str = Field(description="Database dbt builds models in.")
    schema_: str = Field(alias="schema", description="Schema dbt builds models in.")
    threads: int = _THREADS


class TrinoCompute(FloeModel):
    """Trino through dbt-trino."""

    type: Literal["trino"] = Field(description="Trino.")
    method: Literal["none", "ldap", "jwt", "oauth", "certificate", "kerberos"] = Field(
        default="none", description="Authentication method."
    )
    host: str = Field(description="Coordinator host name.")
    port: int = Field(default=443, ge=1, le=65535, description="Coordinator port.")
    user: str = Field(description="User name.")
    password: SecretRef | None = Field(default=None, description="Password (ldap method).")
    jwt_token: SecretRef | None = Field(default=None, description="JWT (jwt method).")
    database: str = Field(description="Trino catalog dbt builds models in.")
    schema_: str = Field(alias="schema", description="Schema dbt builds models in.")
    http_scheme: Literal["http", "https"] = Field(default="https", description="HTTP scheme.")
    threads: int = _THREADS


class SparkCompute(FloeModel):
    """Apache Spark through dbt-spark."""

    type: Literal["spark"] = Field(description="Apache Spark.")
    method: Literal["thrift", "http", "odbc", "session"] = Field(
        description="How dbt connects to Spark."
    )
    host: str | None = Field(default=None, description="Thrift/HTTP host (not for `session`).")
    port: int = Field(default=443, ge=1, le=65535, description="Port.")
    user: str | None = Field(default=None, description="User name (thrift).")
    token: SecretRef | None = Field(default=None, description="Access token (http/odbc).")
    cluster: str | None = Field(default=None, description="Cluster id (http/odbc).")
    schema_: str = Field(alias="schema", description="Schema dbt builds models in.")
    threads: int = _THREADS

    @model_validator(mode="after")
    def _host_needed(self) -> SparkCompute:
        if self.method != "session" and not self.host:
            raise ValueError(f"method '{self.method}' needs 'host'")
        return self


class BigQueryCompute(FloeModel):
    """Google BigQuery through dbt-bigquery."""

    type: Literal["bigquery"] = Field(description="Google BigQuery.")
    method: Literal["oauth", "service-account-json"] = Field(
        default="oauth", description="`oauth` uses application default credentials."
    )
    project: str = Field(description="Google Cloud project id.")
    dataset: str = Field(description="Dataset dbt builds models in.")
    keyfile_json: SecretRef | None = Field(
        default=None, description="Service account key JSON (service-account-json method)."
    )
    location: str | None = Field(default=None, description="Dataset location, e.g. `EU`.")
    threads: int = _THREADS

    @model_validator(mode="after")
    def _keyfile_needed(self) -> BigQueryCompute:
        if self.method == "service-account-json" and self.keyfile_json is None:
            raise ValueError("method 'service-account-json' needs 'keyfile_json'")
        return self


class DatabricksCompute(FloeModel):
    """Databricks SQL through dbt-databricks."""

    type: Literal["databricks"] = Field(description="Databricks.")
    host: str = Field(description="Workspace host name, e.g. `adb-123.azuredatabricks.net`.")
    http_path: str = Field(description="HTTP path of the SQL warehouse or cluster.")
    token: SecretRef = Field(description="Personal access token, as a secret reference.")
    catalog: str | None = Field(default=None, description="Unity Catalog name.")
    schema_: str = Field(alias="schema", description="Schema dbt builds models in.")
    threads: int = _THREADS


ComputeProfile = Annotated[
    Union[  # noqa: UP007
        DuckDBCompute,
        PostgresCompute,
        SnowflakeCompute,
        TrinoCompute,
        SparkCompute,
        BigQueryCompute,
        DatabricksCompute,
    ],
    Field(discriminator="type"),
]

# ---------------------------------------------------------------- observability


class NoTraces(FloeModel):
    """Traces off."""

    exporter: Literal["none"] = Field(description="Export no traces.")


class ConsoleTraces(FloeModel):
    """Traces printed to standard error."""

    exporter: Literal["console"] = Field(description="Print spans to standard error.")


class FileTraces(FloeModel):
    """Traces written to a file as OTLP JSON (one `ExportTraceServiceRequest` per line)."""

    exporter: Literal["file"] = Field(
        description="Write spans to a file as OTLP JSON, one `ExportTraceServiceRequest` per line "
        "(what the OpenTelemetry Collector's `otlpjsonfile` receiver reads)."
    )
    path: str = Field(
        default="./.floe/traces.jsonl", description="File, relative to floe.yaml unless absolute."
    )


class OtlpTraces(FloeModel):
    """Traces sent over OTLP/HTTP."""

    exporter: Literal["otlp"] = Field(description="Send spans to an OTLP/HTTP collector.")
    endpoint: str = Field(description="Collector base URL, e.g. `http://127.0.0.1:4318`.")
    headers: dict[str, SecretRef] = Field(
        default_factory=dict, description="Extra request headers, each a secret reference."
    )
    timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Export timeout; short so a dead collector never stalls.",
    )


TracesConfig = Annotated[
    Union[NoTraces, ConsoleTraces, FileTraces, OtlpTraces],  # noqa: UP007
    Field(discriminator="exporter"),
]


class _LineageBase(FloeModel):
    namespace: str = Field(
        default="floe", description="OpenLineage job namespace for this platform."
    )


class NoLineage(_LineageBase):
    """Lineage off."""

    transport: Literal["none"] = Field(description="Emit no lineage.")


class ConsoleLineage(_LineageBase):
    """Lineage events printed to standard error."""

    transport: Literal["console"] = Field(description="Print lineage events to standard error.")


class FileLineage(_LineageBase):
    """Lineage events appended as JSON lines to a file."""

    transport: Literal["file"] = Field(description="Append events as JSON lines to a file.")
    path: str = Field(
        default="./.floe/lineage.jsonl", description="File, relative to floe.yaml unless absolute."
    )


class HttpLineage(_LineageBase):
    """Lineage events POSTed to a Marquez-compatible server."""

    transport: Literal["http"] = Field(description="POST events to an OpenLineage HTTP endpoint.")
    url: str = Field(description="Server base URL, e.g. `http://127.0.0.1:5000`.")
    endpoint: str = Field(default="api/v1/lineage", description="Path of the lineage endpoint.")
    api_key: SecretRef | None = Field(default=None, description="API key, as a secret reference.")
    timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Request timeout; short so a dead server never stalls.",
    )


LineageConfig = Annotated[
    Union[NoLineage, ConsoleLineage, FileLineage, HttpLineage],  # noqa: UP007
    Field(discriminator="transport"),
]


class PlatformObservability(FloeModel):
    """Where traces and lineage go in this environment."""

    traces: TracesConfig = Field(
        default_factory=lambda: NoTraces(exporter="none"), description="Trace exporter."
    )
    lineage: LineageConfig = Field(
        default_factory=lambda: FileLineage(transport="file"), description="Lineage transport."
    )


# ---------------------------------------------------------------- the file


class Platform(FloeModel):
    """`platform.yaml`: the infrastructure of one environment."""

    version: Literal["1"] = Field(description='Version of the platform file format: "1".')
    storage: dict[ProfileName, StorageProfile] = Field(
        default_factory=dict, description="Storage profiles by name."
    )
    catalogs: dict[ProfileName, CatalogProfile] = Field(
        default_factory=dict, description="Iceberg catalog profiles by name."
    )
    compute: dict[ProfileName, ComputeProfile] = Field(
        default_factory=dict, description="Compute profiles by name."
    )
    observability: PlatformObservability = Field(
        default_factory=PlatformObservability, description="Traces and lineage destinations."
    )
