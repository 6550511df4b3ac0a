"""Publishing dbt-built tables to an Iceberg catalog with pyiceberg.

Catalog properties (including resolved secrets) are built in memory, never written.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.config.platform import (
    GlueCatalog,
    LocalStorage,
    OAuth2Auth,
    PolarisCatalog,
    RestCatalog,
    S3Storage,
    SqlCatalog,
    TokenAuth,
)
from floe_runtime.runtime.secrets import Secrets

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped]
    from pyiceberg.catalog import Catalog


def storage_location(artifacts: CompiledArtifacts) -> str | None:
    """The warehouse location of the pipeline's storage profile, as a URI."""
    storage = artifacts.storage.profile
    if isinstance(storage, LocalStorage):
        return artifacts.resolve_path(storage.path).as_uri()
    if isinstance(storage, S3Storage):
        prefix = storage.prefix.strip("/")
        return f"s3://{storage.bucket}/{prefix}" if prefix else f"s3://{storage.bucket}"
    bucket = getattr(storage, "bucket", None)
    if bucket:
        scheme = "gs" if storage.type == "gcs" else storage.type
        return f"{scheme}://{bucket}/{getattr(storage, 'prefix', '').strip('/')}".rstrip("/")
    return None


def _storage_properties(artifacts: CompiledArtifacts, secrets: Secrets) -> dict[str, str]:
    """pyiceberg FileIO properties from the storage profile (S3 endpoint, style, keys)."""
    storage = artifacts.storage.profile
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
            props["s3.access-key-id"] = secrets.get(storage.credentials.access_key_id.secret_ref)
            props["s3.secret-access-key"] = secrets.get(
                storage.credentials.secret_access_key.secret_ref
            )
            if storage.credentials.session_token is not None:
                props["s3.session-token"] = secrets.get(
                    storage.credentials.session_token.secret_ref
                )
    return props


def _sqlite_uri(uri: str, root: Path) -> str:
    """A SQLite URL with its path made absolute against the project root (and its folder made)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri == "sqlite:///:memory:":
        return uri
    raw = uri[len(prefix) :]
    path = Path(raw)
    if not path.is_absolute():
        path = (root / path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return prefix + str(path)


def catalog_properties(artifacts: CompiledArtifacts, secrets: Secrets) -> dict[str, str]:
    """The pyiceberg properties of the resolved catalog (in memory only: may hold secrets)."""
    profile = artifacts.catalog.profile
    root = Path(artifacts.project_root)
    props: dict[str, str] = dict(_storage_properties(artifacts, secrets))
    if isinstance(profile, SqlCatalog):
        uri = _sqlite_uri(profile.uri, root)
        if profile.password is not None and "://" in uri and "@" in uri:
            # user@host → user:password@host, quoted for URL safety.
            scheme, rest = uri.split("://", 1)
            user, host = rest.split("@", 1)
            password = quote(secrets.get(profile.password.secret_ref), safe="")
            uri = f"{scheme}://{user}:{password}@{host}"
        props.update({"type": "sql", "uri": uri})
        warehouse = profile.warehouse or storage_location(artifacts)
        if warehouse:
            if "://" not in warehouse:
                warehouse = artifacts.resolve_path(warehouse).as_uri()
            props["warehouse"] = warehouse
            if warehouse.startswith("file://"):
                Path(warehouse[len("file://") :]).mkdir(parents=True, exist_ok=True)
    elif isinstance(profile, PolarisCatalog | RestCatalog):
        props.update({"type": "rest", "uri": profile.uri})
        if profile.warehouse:
            props["warehouse"] = profile.warehouse
        creds = profile.credentials
        if isinstance(creds, OAuth2Auth):
            secret = secrets.get(creds.client_secret.secret_ref)
            props["credential"] = f"{creds.client_id}:{secret}"
            props["oauth2-server-uri"] = creds.token_endpoint or (
                profile.uri.rstrip("/") + "/v1/oauth/tokens"
            )
            if creds.scope:
                props["scope"] = creds.scope
        elif isinstance(creds, TokenAuth):
            props["token"] = secrets.get(creds.token.secret_ref)
        props.update(profile.properties)
    elif isinstance(profile, GlueCatalog):
        props.update({"type": "glue", "glue.region": profile.region})
        if profile.catalog_id:
            props["glue.id"] = profile.catalog_id
        warehouse = profile.warehouse or storage_location(artifacts)
        if warehouse:
            props["warehouse"] = warehouse
        if profile.credentials is not None:
            props["glue.access-key-id"] = secrets.get(profile.credentials.access_key_id.secret_ref)
            props["glue.secret-access-key"] = secrets.get(
                profile.credentials.secret_access_key.secret_ref
            )
    return props


def catalog_namespace_uri(artifacts: CompiledArtifacts) -> str:
    """The OpenLineage dataset namespace of the catalog's tables (no secrets)."""
    profile = artifacts.catalog.profile
    if isinstance(profile, SqlCatalog):
        return "iceberg+" + _sqlite_uri(profile.uri, Path(artifacts.project_root)).split("@")[-1]
    if isinstance(profile, PolarisCatalog | RestCatalog):
        base = profile.uri.rstrip("/")
        return f"iceberg+{base}" + (f"/{profile.warehouse}" if profile.warehouse else "")
    return f"iceberg+glue://{profile.region}"


def load_catalog(artifacts: CompiledArtifacts, secrets: Secrets) -> Catalog:
    """Open the resolved catalog."""
    from pyiceberg.catalog import load_catalog as _load

    return _load(artifacts.catalog.name, **catalog_properties(artifacts, secrets))


def iceberg_compatible(table: pa.Table) -> pa.Table:
    """Cast Arrow types Iceberg cannot store (ns timestamps, unsigned ints, nulls) to ones it can."""
    import pyarrow as pa

    fields = []
    changed = False
    for field in table.schema:
        t = field.type
        new = t
        if pa.types.is_timestamp(t) and t.unit != "us":
            new = pa.timestamp("us", tz=t.tz)
        elif pa.types.is_time(t) and t != pa.time64("us"):
            new = pa.time64("us")
        elif pa.types.is_unsigned_integer(t):
            new = pa.int64()
        elif pa.types.is_integer(t) and t.bit_width < 32:
            new = pa.int32()
        elif pa.types.is_null(t):
            new = pa.string()
        elif pa.types.is_float16(t):
            new = pa.float32()
        elif pa.types.is_decimal(t) and t.precision > 38:
            new = pa.float64()
        changed = changed or new != t
        fields.append(pa.field(field.name, new, nullable=True))
    schema = pa.schema(fields)
    if changed or any(not f.nullable for f in table.schema):
        table = table.cast(schema, safe=False)
    return table


@dataclass(frozen=True)
class PublishResult:
    """What a publish wrote."""

    identifier: str
    rows: int
    snapshot_id: int | None
    columns: list[tuple[str, str]]


def publish_table(
    catalog: Catalog,
    namespace: str,
    name: str,
    data: pa.Table,
    properties: Mapping[str, str],
    ensure_namespace: bool = True,
) -> PublishResult:
    """Replace the table's content with `data` in one atomic snapshot, evolving added columns."""
    from pyiceberg.exceptions import NoSuchTableError

    data = iceberg_compatible(data)
    ident = (*namespace.split("."), name)
    if ensure_namespace:
        catalog.create_namespace_if_not_exists(tuple(namespace.split(".")))
    try:
        table = catalog.load_table(ident)
    except NoSuchTableError:
        table = catalog.create_table(ident, schema=data.schema, properties=dict(properties))
        table.append(data)
    else:
        if _needs_evolution(table.schema(), data.schema):
            # A separate commit before the data: a column added by the model is optional, so
            # readers of the previous snapshot are unaffected if the overwrite then fails.
            with table.update_schema() as update:
                update.union_by_name(data.schema)
        with warnings.catch_warnings():
            # pyiceberg warns when the overwrite's delete matched nothing (an empty table).
            warnings.simplefilter("ignore", UserWarning)
            with table.transaction() as tx:
                tx.set_properties(dict(properties))
                tx.overwrite(data)
    snapshot = table.current_snapshot()  # the transaction refreshed `table` on commit
    columns = [(f.name, str(f.field_type)) for f in table.schema().fields]
    return PublishResult(
        ".".join(ident), data.num_rows, snapshot.snapshot_id if snapshot else None, columns
    )


def _needs_evolution(current: Any, arrow_schema: pa.Schema) -> bool:
    names = {f.name for f in current.fields}
    return any(field.name not in names for field in arrow_schema)
