"""Wire distributed engines (Trino, Spark) to the environment's Iceberg catalog.

For `trino` and `spark` compute, dbt materializes the models as Iceberg tables in the engine
itself, so the engine has to know the catalog floe publishes to: compile generates that
configuration here (a Trino Iceberg connector catalog file, Spark `spark.sql.catalog.*`
settings). floe then only verifies and records each table (`runtime/verify.py`).

Secrets are never written: a value becomes a reference the engine resolves from its own
environment when it loads the configuration — Trino's `${ENV:NAME}` and Iceberg's `env:NAME`
(resolved by its REST catalog client), both whole-value references. `NAME` is the variable
floe itself reads the secret from (`secret_env_var`), except for an OAuth2 client credential:
both engines want `client_id:client_secret` in one property, so that one is a variable of its
own (`credential_env_var`) the deployment sets to `<client_id>:<secret>`.

Property names are each engine's documented ones; tests/compiler/engine_properties/ holds
the documented lists they are checked against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from floe_runtime.compiler.catalog import storage_location
from floe_runtime.config.base import SecretRef, secret_env_var
from floe_runtime.config.platform import (
    AdlsStorage,
    CatalogProfile,
    ComputeProfile,
    GcsStorage,
    GlueCatalog,
    LocalStorage,
    OAuth2Auth,
    PolarisCatalog,
    RestCatalog,
    S3Storage,
    SparkCompute,
    SqlCatalog,
    StorageProfile,
    TokenAuth,
    TrinoCompute,
)

#: Compute types whose engine writes the Iceberg tables itself (floe verifies and records).
ENGINE_WRITERS = ("trino", "spark")

#: Where the engine configuration goes, relative to the compile output folder.
TRINO_DIR = "trino"
SPARK_DEFAULTS = "spark-defaults.conf"

#: What each warehouse's dbt adapter offers to write Iceberg tables, and where it is documented.
ICEBERG_TABLE_FEATURES = {
    "snowflake": (
        "dbt-snowflake's Iceberg tables: `+table_format: iceberg` with `+external_volume` "
        "(or a `catalogs.yml` write integration); Snowflake then manages their catalog "
        "(https://docs.getdbt.com/docs/build/iceberg/adapters/snowflake-iceberg-support)"
    ),
    "bigquery": (
        "dbt-bigquery's BigLake Iceberg tables: a `catalogs.yml` write integration "
        "(`catalog_type: biglake_metastore`, `table_format: iceberg`, `external_volume: "
        "gs://...`) and `+catalog_name` on the models; BigLake metastore is their catalog "
        "(https://docs.getdbt.com/docs/build/iceberg/adapters/bigquery-iceberg-support)"
    ),
    "databricks": (
        "dbt-databricks' `+table_format: iceberg` (Unity Catalog managed Iceberg or UniForm); "
        "Unity Catalog is their catalog "
        "(https://docs.getdbt.com/docs/build/iceberg/adapters/databricks-iceberg-support)"
    ),
}


@dataclass(frozen=True)
class EngineConfig:
    """What compile generates for a distributed engine: files and the notes that go with them.

    `files` maps a path relative to the compile output folder to the file's text (no secret
    values in it); `notes` say how to install the files, which environment variables the
    engine needs, and what floe could not map.
    """

    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def writes_iceberg(compute: ComputeProfile) -> bool:
    """Whether the engine writes the models' Iceberg tables itself (floe only verifies)."""
    return compute.type in ENGINE_WRITERS


def iceberg_warning(compute: ComputeProfile) -> str | None:
    """The warning for a warehouse floe does not publish from (Snowflake, BigQuery,
    Databricks): its tables stay in the warehouse unless the adapter's Iceberg tables are
    configured. None for every other compute type."""
    feature = ICEBERG_TABLE_FEATURES.get(compute.type)
    if feature is None:
        return None
    return (
        f"floe-runtime does not publish tables built on {compute.type} to the Iceberg catalog: "
        f"they stay in {compute.type}. To have them as Iceberg tables, configure {feature}."
    )


def credential_env_var(catalog_name: str) -> str:
    """The variable holding `<client_id>:<client_secret>` for an engine's OAuth2 credential
    (`lake` → `FLOE_LAKE_CATALOG_CREDENTIAL`)."""
    return secret_env_var(f"floe-{catalog_name}-catalog-credential")


def _trino_env(secret: SecretRef) -> str:
    return "${ENV:" + secret_env_var(secret.secret_ref) + "}"


def _iceberg_env(secret: SecretRef) -> str:
    return "env:" + secret_env_var(secret.secret_ref)


def _warehouse(
    storage: StorageProfile, catalog: SqlCatalog | GlueCatalog, root: Path
) -> str | None:
    return catalog.warehouse or storage_location(storage, root)


def _jdbc_url(uri: str) -> tuple[str, str | None] | None:
    """A SQLAlchemy PostgreSQL URL as (JDBC URL, user); None for anything else (SQLite)."""
    parts = urlsplit(uri)
    if not parts.scheme.startswith("postgresql"):
        return None
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"jdbc:postgresql://{host}{port}{parts.path}", parts.username


def _oauth_note(catalog_name: str, creds: OAuth2Auth, engine: str) -> str:
    return (
        f"{engine} reads the catalog's OAuth2 credential from ${credential_env_var(catalog_name)}: "
        f"set it to `{creds.client_id}:<secret {creds.client_secret.secret_ref}>` "
        f"(the client id, a colon, then the secret floe reads from "
        f"${secret_env_var(creds.client_secret.secret_ref)})."
    )


def _secret_notes(engine: str, secrets: list[SecretRef], style: str) -> list[str]:
    if not secrets:
        return []
    variables = dict.fromkeys(secret_env_var(s.secret_ref) for s in secrets)
    names = ", ".join(f"${name}" for name in variables)
    return [f"{engine} reads {names} from its own environment ({style}): set them there."]


# ---------------------------------------------------------------- Trino


def trino_catalog_properties(
    storage: StorageProfile, catalog_name: str, catalog: CatalogProfile, root: Path
) -> tuple[dict[str, str], list[str]]:
    """The Trino Iceberg connector catalog properties for the environment's catalog, and notes.

    Returns ({} and the reason) when Trino cannot share the catalog (a SQLite file, a
    local warehouse folder).
    """
    notes: list[str] = []
    secrets: list[SecretRef] = []
    props: dict[str, str] = {"connector.name": "iceberg"}
    if isinstance(catalog, PolarisCatalog | RestCatalog):
        props["iceberg.catalog.type"] = "rest"
        props["iceberg.rest-catalog.uri"] = catalog.uri
        if catalog.warehouse:
            props["iceberg.rest-catalog.warehouse"] = catalog.warehouse
        creds = catalog.credentials
        if isinstance(creds, OAuth2Auth):
            props["iceberg.rest-catalog.security"] = "OAUTH2"
            # Whole-value reference: newer Trino replaces the whole value with the variable.
            props["iceberg.rest-catalog.oauth2.credential"] = (
                "${ENV:" + credential_env_var(catalog_name) + "}"
            )
            # The same token endpoint floe (pyiceberg) uses.
            props["iceberg.rest-catalog.oauth2.server-uri"] = creds.token_endpoint or (
                catalog.uri.rstrip("/") + "/v1/oauth/tokens"
            )
            if creds.scope:
                props["iceberg.rest-catalog.oauth2.scope"] = creds.scope
            notes.append(_oauth_note(catalog_name, creds, "Trino"))
        elif isinstance(creds, TokenAuth):
            props["iceberg.rest-catalog.security"] = "OAUTH2"
            props["iceberg.rest-catalog.oauth2.token"] = _trino_env(creds.token)
            secrets.append(creds.token)
        if catalog.properties:
            notes.append(
                "the catalog's extra `properties` are pyiceberg settings and are not mapped "
                "for Trino: " + ", ".join(sorted(catalog.properties))
            )
    elif isinstance(catalog, GlueCatalog):
        props["iceberg.catalog.type"] = "glue"
        props["hive.metastore.glue.region"] = catalog.region
        if catalog.catalog_id:
            props["hive.metastore.glue.catalogid"] = catalog.catalog_id
        if catalog.endpoint:
            props["hive.metastore.glue.endpoint-url"] = catalog.endpoint
        warehouse = _warehouse(storage, catalog, root)
        if warehouse:
            props["hive.metastore.glue.default-warehouse-dir"] = warehouse
        if catalog.credentials is not None:
            props["hive.metastore.glue.aws-access-key"] = _trino_env(
                catalog.credentials.access_key_id
            )
            props["hive.metastore.glue.aws-secret-key"] = _trino_env(
                catalog.credentials.secret_access_key
            )
            secrets += [catalog.credentials.access_key_id, catalog.credentials.secret_access_key]
    else:
        jdbc = _jdbc_url(catalog.uri)
        if jdbc is None:
            return {}, [
                "Trino cannot share an SQLite catalog file: use a rest, polaris or glue "
                "catalog, or a sql catalog on PostgreSQL, for trino compute"
            ]
        url, user = jdbc
        props["iceberg.catalog.type"] = "jdbc"
        # pyiceberg's SQL catalog scopes its rows by catalog name, as Iceberg's JDBC catalog does.
        props["iceberg.jdbc-catalog.catalog-name"] = catalog_name
        props["iceberg.jdbc-catalog.driver-class"] = "org.postgresql.Driver"
        props["iceberg.jdbc-catalog.connection-url"] = url
        if user:
            props["iceberg.jdbc-catalog.connection-user"] = user
        if catalog.password is not None:
            props["iceberg.jdbc-catalog.connection-password"] = _trino_env(catalog.password)
            secrets.append(catalog.password)
        warehouse = _warehouse(storage, catalog, root)
        if warehouse:
            props["iceberg.jdbc-catalog.default-warehouse-dir"] = warehouse
    storage_props, storage_secrets, storage_notes = _trino_storage(storage)
    if storage_props is None:
        return {}, storage_notes
    props.update(storage_props)
    secrets += storage_secrets
    notes += storage_notes
    return props, _secret_notes("Trino", secrets, "${ENV:NAME} references") + notes


def _trino_storage(
    storage: StorageProfile,
) -> tuple[dict[str, str] | None, list[SecretRef], list[str]]:
    props: dict[str, str] = {}
    secrets: list[SecretRef] = []
    notes: list[str] = []
    if isinstance(storage, LocalStorage):
        return (
            None,
            [],
            [
                "Trino cannot write a local warehouse folder: use s3, gcs or adls storage for "
                "trino compute"
            ],
        )
    if isinstance(storage, S3Storage):
        # `fs.native-s3.enabled`: its name up to Trino 480, still accepted (as a legacy
        # name) after 481 renamed it `fs.s3.enabled`.
        props["fs.native-s3.enabled"] = "true"
        if storage.endpoint:
            props["s3.endpoint"] = storage.endpoint
        if storage.region:
            props["s3.region"] = storage.region
        props["s3.path-style-access"] = "true" if storage.path_style_access else "false"
        if storage.credentials is not None:
            props["s3.aws-access-key"] = _trino_env(storage.credentials.access_key_id)
            props["s3.aws-secret-key"] = _trino_env(storage.credentials.secret_access_key)
            secrets += [storage.credentials.access_key_id, storage.credentials.secret_access_key]
            if storage.credentials.session_token is not None:
                notes.append(
                    "Trino's S3 file system takes no session token: use an IAM role "
                    "(`s3.iam-role`) or static keys"
                )
    elif isinstance(storage, GcsStorage):
        props["fs.native-gcs.enabled"] = "true"
        if storage.project:
            props["gcs.project-id"] = storage.project
        if storage.credentials is not None:
            props["gcs.json-key"] = _trino_env(storage.credentials.service_account_json)
            secrets.append(storage.credentials.service_account_json)
        if storage.endpoint:
            notes.append(
                "Trino's GCS file system has no endpoint setting: `endpoint` is not mapped"
            )
    elif isinstance(storage, AdlsStorage):
        props["fs.native-azure.enabled"] = "true"
        creds = storage.credentials
        if creds is not None and creds.account_key is not None:
            props["azure.auth-type"] = "ACCESS_KEY"
            props["azure.access-key"] = _trino_env(creds.account_key)
            secrets.append(creds.account_key)
        elif creds is not None:
            notes.append("Trino's Azure file system takes no SAS token: use an access key or OAuth")
        if storage.endpoint:
            notes.append("Trino's Azure endpoint is a host suffix: `endpoint` is not mapped")
    return props, secrets, notes


def render_properties(props: dict[str, str], header: str) -> str:
    """A Java properties file: `key=value` lines, `\\`, `:`, `=` and `#` in keys escaped."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for key, value in props.items():
        escaped = re.sub(r"([\\:=#! ])", r"\\\1", key)
        lines.append(f"{escaped}={value.replace(chr(10), ' ')}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- Spark


def spark_catalog_conf(
    storage: StorageProfile, catalog_name: str, catalog: CatalogProfile, root: Path
) -> tuple[dict[str, str], list[str]]:
    """Spark settings making the environment's catalog an Iceberg `SparkCatalog` named like
    floe's catalog and the session's default catalog (dbt-spark names tables `schema.table`),
    with Iceberg's SQL extensions. ({} and the reason) when Spark cannot share the catalog."""
    prefix = f"spark.sql.catalog.{catalog_name}"
    conf: dict[str, str] = {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        "spark.sql.defaultCatalog": catalog_name,
        prefix: "org.apache.iceberg.spark.SparkCatalog",
    }
    notes: list[str] = []
    secrets: list[SecretRef] = []
    # Iceberg resolves `env:NAME` values only in its REST catalog client.
    rest = isinstance(catalog, PolarisCatalog | RestCatalog)
    if isinstance(catalog, PolarisCatalog | RestCatalog):
        conf[f"{prefix}.type"] = "rest"
        conf[f"{prefix}.uri"] = catalog.uri
        if catalog.warehouse:
            conf[f"{prefix}.warehouse"] = catalog.warehouse
        creds = catalog.credentials
        if isinstance(creds, OAuth2Auth):
            conf[f"{prefix}.rest.auth.type"] = "oauth2"
            conf[f"{prefix}.credential"] = "env:" + credential_env_var(catalog_name)
            conf[f"{prefix}.oauth2-server-uri"] = creds.token_endpoint or (
                catalog.uri.rstrip("/") + "/v1/oauth/tokens"
            )
            if creds.scope:
                conf[f"{prefix}.scope"] = creds.scope
            notes.append(_oauth_note(catalog_name, creds, "Spark"))
        elif isinstance(creds, TokenAuth):
            conf[f"{prefix}.rest.auth.type"] = "oauth2"
            conf[f"{prefix}.token"] = _iceberg_env(creds.token)
            secrets.append(creds.token)
        for key, value in sorted(catalog.properties.items()):
            conf[f"{prefix}.{key}"] = value  # Iceberg catalog properties: the same names
    elif isinstance(catalog, GlueCatalog):
        conf[f"{prefix}.type"] = "glue"
        conf[f"{prefix}.client.region"] = catalog.region
        if catalog.catalog_id:
            conf[f"{prefix}.glue.id"] = catalog.catalog_id
        if catalog.endpoint:
            conf[f"{prefix}.glue.endpoint"] = catalog.endpoint
        warehouse = _warehouse(storage, catalog, root)
        if warehouse:
            conf[f"{prefix}.warehouse"] = warehouse
        if catalog.credentials is not None:
            notes.append(
                "Spark's Glue client uses the default AWS credential chain: set "
                f"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from secrets "
                f"{catalog.credentials.access_key_id.secret_ref} and "
                f"{catalog.credentials.secret_access_key.secret_ref}"
            )
    else:
        jdbc = _jdbc_url(catalog.uri)
        if jdbc is None:
            return {}, [
                "Spark cannot share an SQLite catalog file: use a rest, polaris or glue "
                "catalog, or a sql catalog on PostgreSQL, for spark compute"
            ]
        url, user = jdbc
        conf[f"{prefix}.type"] = "jdbc"
        conf[f"{prefix}.uri"] = url
        if user:
            conf[f"{prefix}.jdbc.user"] = user
        warehouse = _warehouse(storage, catalog, root)
        if warehouse:
            conf[f"{prefix}.warehouse"] = warehouse
        if catalog.password is not None:
            notes.append(
                f"set {prefix}.jdbc.password at submit time (--conf) from secret "
                f"{catalog.password.secret_ref}: Iceberg's JDBC catalog reads no environment "
                "variables"
            )
    if isinstance(storage, LocalStorage):
        return {}, [
            "Spark cannot write a local warehouse folder: use s3, gcs or adls storage for "
            "spark compute"
        ]
    if isinstance(storage, S3Storage):
        conf[f"{prefix}.io-impl"] = "org.apache.iceberg.aws.s3.S3FileIO"
        if storage.endpoint:
            conf[f"{prefix}.s3.endpoint"] = storage.endpoint
        if storage.region:
            conf[f"{prefix}.client.region"] = storage.region
        conf[f"{prefix}.s3.path-style-access"] = "true" if storage.path_style_access else "false"
        keys = storage.credentials
        if keys is not None and rest:
            conf[f"{prefix}.s3.access-key-id"] = _iceberg_env(keys.access_key_id)
            conf[f"{prefix}.s3.secret-access-key"] = _iceberg_env(keys.secret_access_key)
            secrets += [keys.access_key_id, keys.secret_access_key]
            if keys.session_token is not None:
                conf[f"{prefix}.s3.session-token"] = _iceberg_env(keys.session_token)
                secrets.append(keys.session_token)
        elif keys is not None:
            notes.append(
                "Spark's S3FileIO uses the default AWS credential chain: set "
                f"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from secrets "
                f"{keys.access_key_id.secret_ref} and {keys.secret_access_key.secret_ref}"
            )
    else:
        notes.append(
            f"{storage.type} storage: configure Spark's Iceberg FileIO for it "
            f"({prefix}.io-impl and its credentials), or let the catalog vend credentials"
        )
    return conf, _secret_notes("Spark", secrets, "Iceberg `env:NAME` values") + notes


def render_spark_defaults(conf: dict[str, str], header: str) -> str:
    """spark-defaults.conf text: one `key value` line each (whitespace-separated)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    width = max(len(key) for key in conf)
    lines += [f"{key:<{width}}  {value}" for key, value in conf.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- compile


_HEADER = (
    "Generated by floe-runtime compile from platform.yaml; do not edit.\n"
    "Secrets are references the engine resolves from its environment, never values."
)

_TRINO_CATALOG_NAME = re.compile(r"^[a-z0-9_]+$")


def engine_config(
    storage: StorageProfile,
    catalog_name: str,
    catalog: CatalogProfile,
    compute: ComputeProfile,
    root: Path,
) -> EngineConfig:
    """The engine configuration compile writes for `compute` (nothing for DuckDB/PostgreSQL;
    only a warning for warehouses that keep their tables)."""
    warning = iceberg_warning(compute)
    if warning is not None:
        return EngineConfig(notes=[warning])
    if isinstance(compute, TrinoCompute):
        props, notes = trino_catalog_properties(storage, catalog_name, catalog, root)
        if not props:
            return EngineConfig(notes=notes)
        name = compute.database
        if not _TRINO_CATALOG_NAME.match(name):
            notes.append(
                f"Trino catalog names are lower-case letters, digits and `_`: compute "
                f"`database: {name}` cannot name the catalog file"
            )
            return EngineConfig(notes=notes)
        path = f"{TRINO_DIR}/{name}.properties"
        install = (
            f"install {path} as etc/catalog/{name}.properties on every Trino node (or "
            f"`CREATE CATALOG {name} USING iceberg WITH (...)`): dbt-trino builds in Trino "
            f"catalog `{name}` (compute `database`), so its tables land in floe's catalog "
            f"`{catalog_name}`. Set `+on_table_exists: replace` for table models so a rebuild "
            "is one new snapshot of the same table (dbt-trino's default `rename` creates a new "
            "table each run)."
        )
        return EngineConfig({path: render_properties(props, _HEADER)}, [install, *notes])
    if isinstance(compute, SparkCompute):
        conf, notes = spark_catalog_conf(storage, catalog_name, catalog, root)
        if not conf:
            return EngineConfig(notes=notes)
        install = (
            f"add {SPARK_DEFAULTS} to the Spark (Thrift server) conf/spark-defaults.conf, with "
            "the iceberg-spark-runtime (and iceberg-aws-bundle for S3) jars on its classpath; "
            "set `+file_format: iceberg` for models, seeds and snapshots in dbt_project.yml, "
            "or dbt-spark writes parquet tables floe cannot find in the catalog."
        )
        return EngineConfig(
            {SPARK_DEFAULTS: render_spark_defaults(conf, _HEADER)}, [install, *notes]
        )
    return EngineConfig()
