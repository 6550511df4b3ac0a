"""pyiceberg catalog properties from the resolved storage and catalog profiles.

Pure translation, used twice: the runtime passes resolved secret values (the
properties then live in memory only), and the dbt profile generator passes
`env_var()` references, so dbt-duckdb's `iceberg` plugin can read Iceberg
sources without a secret ever being written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit

from floe_runtime.config.platform import (
    AdlsStorage,
    CatalogProfile,
    GcsStorage,
    GlueCatalog,
    LocalStorage,
    OAuth2Auth,
    PolarisCatalog,
    RestCatalog,
    S3Storage,
    SqlCatalog,
    StorageProfile,
    TokenAuth,
)

#: Turns a secret_ref name into what goes into a property (a value, or a reference).
SecretLookup = Callable[[str], str]


def _absolute(value: str, root: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (root / path).resolve()


def file_uri(path: Path) -> str:
    """`file://` and the absolute `path` as it is, not percent-encoded (`Path.as_uri`).

    pyiceberg's FileIO takes a location's path without decoding it, so in a folder
    `my proj` the encoded `file:///…/my%20proj/…` would be another folder (`my%20proj`).
    """
    return "file://" + path.as_posix()


def storage_location(storage: StorageProfile, root: Path) -> str | None:
    """The warehouse location of a storage profile, as a URI (`file_uri` for local ones)."""
    if isinstance(storage, LocalStorage):
        return file_uri(_absolute(storage.path, root))
    if isinstance(storage, S3Storage):
        prefix = storage.prefix.strip("/")
        return f"s3://{storage.bucket}/{prefix}" if prefix else f"s3://{storage.bucket}"
    if isinstance(storage, GcsStorage):
        prefix = storage.prefix.strip("/")
        return f"gs://{storage.bucket}/{prefix}" if prefix else f"gs://{storage.bucket}"
    # ADLS Gen2 as Iceberg (Java, Spark, Polaris) names it: container@account host.
    base = f"abfss://{storage.container}@{storage.account_name}.dfs.core.windows.net"
    prefix = storage.prefix.strip("/")
    return f"{base}/{prefix}" if prefix else base


#: The FileIO for ADLS: pyiceberg's PyArrowFileIO, reading `container@account.dfs...` locations.
ADLS_FILE_IO = "floe_runtime.runtime.iceberg.AdlsPyArrowFileIO"


def storage_properties(storage: StorageProfile, secret: SecretLookup) -> dict[str, str]:
    """pyiceberg FileIO properties from the storage profile (S3 endpoint, style, keys)."""
    props: dict[str, str] = {}
    if isinstance(storage, S3Storage):
        if storage.endpoint:
            props["s3.endpoint"] = storage.endpoint
        if storage.region:
            props["s3.region"] = storage.region
        props["s3.path-style-access"] = "true" if storage.path_style_access else "false"
        if storage.path_style_access:
            props["s3.force-virtual-addressing"] = "false"
        if storage.credentials is not None:
            props["s3.access-key-id"] = secret(storage.credentials.access_key_id.secret_ref)
            props["s3.secret-access-key"] = secret(storage.credentials.secret_access_key.secret_ref)
            if storage.credentials.session_token is not None:
                props["s3.session-token"] = secret(storage.credentials.session_token.secret_ref)
    elif isinstance(storage, GcsStorage):
        # The service account key is exchanged for an access token at run time
        # (runtime/iceberg.py): pyarrow's GcsFileSystem takes a token, not a key.
        if storage.project:
            props["gcs.project-id"] = storage.project
        if storage.endpoint:
            props["gcs.service.host"] = storage.endpoint.rstrip("/")
    elif isinstance(storage, AdlsStorage):
        props["py-io-impl"] = ADLS_FILE_IO
        props["adls.account-name"] = storage.account_name
        if storage.endpoint:
            url = urlsplit(storage.endpoint)
            for kind in ("blob", "dfs"):
                props[f"adls.{kind}-storage-authority"] = url.netloc
                props[f"adls.{kind}-storage-scheme"] = url.scheme or "https"
        creds = storage.credentials
        if creds is not None and creds.account_key is not None:
            props["adls.account-key"] = secret(creds.account_key.secret_ref)
        if creds is not None and creds.sas_token is not None:
            props["adls.sas-token"] = secret(creds.sas_token.secret_ref)
    return props


def sqlite_uri(uri: str, root: Path) -> str:
    """A SQLite URL with its path made absolute against the project root."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri == "sqlite:///:memory:":
        return uri
    return prefix + str(_absolute(uri[len(prefix) :], root))


def catalog_properties(
    storage: StorageProfile, catalog: CatalogProfile, root: Path, secret: SecretLookup
) -> dict[str, str]:
    """The pyiceberg properties of a catalog profile (with whatever `secret` gives for secrets)."""
    props: dict[str, str] = dict(storage_properties(storage, secret))
    if isinstance(catalog, SqlCatalog):
        uri = sqlite_uri(catalog.uri, root)
        if catalog.password is not None and "://" in uri and "@" in uri:
            # user@host → user:password@host, quoted for URL safety.
            scheme, rest = uri.split("://", 1)
            user, host = rest.split("@", 1)
            password = quote(secret(catalog.password.secret_ref), safe="")
            uri = f"{scheme}://{user}:{password}@{host}"
        props.update({"type": "sql", "uri": uri})
        warehouse = catalog.warehouse or storage_location(storage, root)
        if warehouse:
            if "://" not in warehouse:
                warehouse = file_uri(_absolute(warehouse, root))
            props["warehouse"] = warehouse
    elif isinstance(catalog, PolarisCatalog | RestCatalog):
        props.update({"type": "rest", "uri": catalog.uri})
        if catalog.warehouse:
            props["warehouse"] = catalog.warehouse
        creds = catalog.credentials
        if isinstance(creds, OAuth2Auth):
            props["credential"] = f"{creds.client_id}:{secret(creds.client_secret.secret_ref)}"
            props["oauth2-server-uri"] = creds.token_endpoint or (
                catalog.uri.rstrip("/") + "/v1/oauth/tokens"
            )
            if creds.scope:
                props["scope"] = creds.scope
        elif isinstance(creds, TokenAuth):
            props["token"] = secret(creds.token.secret_ref)
        props.update(catalog.properties)
    elif isinstance(catalog, GlueCatalog):
        props.update({"type": "glue", "glue.region": catalog.region})
        if catalog.catalog_id:
            props["glue.id"] = catalog.catalog_id
        if catalog.endpoint:
            props["glue.endpoint"] = catalog.endpoint
        warehouse = catalog.warehouse or storage_location(storage, root)
        if warehouse:
            props["warehouse"] = warehouse
        if catalog.credentials is not None:
            props["glue.access-key-id"] = secret(catalog.credentials.access_key_id.secret_ref)
            props["glue.secret-access-key"] = secret(
                catalog.credentials.secret_access_key.secret_ref
            )
    return props
