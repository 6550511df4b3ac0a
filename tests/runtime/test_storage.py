"""Cloud storage for real: ADLS Gen2 on Azurite, GCS on gcp-storage-emulator.

`floe-runtime run` on a copy of the example, with the embedded SQL catalog and the
cloud storage as warehouse, publishes every mart; a pyiceberg reader loads the rows
back; the secret (account key / service account key) appears in no output and in no
file under the project.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from floe_runtime.compiler.catalog import ADLS_FILE_IO, catalog_properties, storage_location
from floe_runtime.config.platform import AdlsStorage, GcsStorage, SqlCatalog
from tests.runtime.conftest import (
    MARTS,
    Azurite,
    GcsEmulator,
    copy_example,
    floe,
    grep_tree,
    write_platform,
)

COMPUTE = """catalogs:
  default: {type: sql, uri: "sqlite:///.floe/catalog.db"}
compute:
  default: {type: duckdb, path: ./.floe/floe.duckdb}
"""


# ---------------------------------------------------------------- the mapping (no server)


def _adls(**extra: object) -> AdlsStorage:
    return AdlsStorage.model_validate(
        {"type": "adls", "account_name": "acct", "container": "lake", "prefix": "/ice/", **extra}
    )


def test_adls_location_and_properties(tmp_path: Path) -> None:
    storage = _adls(
        endpoint="http://127.0.0.1:10000",
        credentials={"account_key": {"secret_ref": "az-key"}},
    )
    assert storage_location(storage, tmp_path) == "abfss://lake@acct.dfs.core.windows.net/ice"
    props = catalog_properties(storage, SqlCatalog(type="sql"), tmp_path, lambda n: f"<{n}>")
    assert props["warehouse"] == "abfss://lake@acct.dfs.core.windows.net/ice"
    assert props["py-io-impl"] == ADLS_FILE_IO
    assert props["adls.account-name"] == "acct"
    assert props["adls.account-key"] == "<az-key>"
    assert "adls.sas-token" not in props
    for kind in ("blob", "dfs"):
        assert props[f"adls.{kind}-storage-authority"] == "127.0.0.1:10000"
        assert props[f"adls.{kind}-storage-scheme"] == "http"
    sas = _adls(credentials={"sas_token": {"secret_ref": "az-sas"}})
    props = catalog_properties(sas, SqlCatalog(type="sql"), tmp_path, lambda n: f"<{n}>")
    assert props["adls.sas-token"] == "<az-sas>" and "adls.account-key" not in props
    assert not any("authority" in k for k in props)  # no endpoint: Azure's own hosts


def test_adls_credentials_need_exactly_one() -> None:
    from pydantic import ValidationError

    for creds in ({}, {"account_key": {"secret_ref": "a"}, "sas_token": {"secret_ref": "b"}}):
        with pytest.raises(ValidationError, match="exactly one of 'account_key' or 'sas_token'"):
            _adls(credentials=creds)


def test_adls_file_io_pyiceberg_builds(tmp_path: Path) -> None:
    """pyiceberg loads floe's FileIO from the properties; its filesystem is pyarrow's Azure one."""
    from pyarrow.fs import AzureFileSystem
    from pyiceberg.io import load_file_io

    storage = _adls(
        endpoint="http://127.0.0.1:10000", credentials={"account_key": {"secret_ref": "k"}}
    )
    props = catalog_properties(storage, SqlCatalog(type="sql"), tmp_path, lambda n: "a2V5")
    location = props["warehouse"] + "/analytics/orders/metadata/v1.metadata.json"
    io = load_file_io(props, location)
    assert type(io).__name__ == "AdlsPyArrowFileIO"
    scheme, netloc, path = io.parse_location(location, io.properties)
    assert (scheme, path) == ("abfss", "lake/ice/analytics/orders/metadata/v1.metadata.json")
    assert isinstance(io.fs_by_scheme(scheme, netloc), AzureFileSystem)


def test_gcs_location_and_properties(tmp_path: Path) -> None:
    from pyarrow.fs import GcsFileSystem
    from pyiceberg.io import load_file_io

    storage = GcsStorage.model_validate(
        {
            "type": "gcs",
            "bucket": "lake",
            "prefix": "ice",
            "project": "floe-test",
            "endpoint": "http://127.0.0.1:9023/",
            "credentials": {"service_account_json": {"secret_ref": "gcs-key"}},
        }
    )
    assert storage_location(storage, tmp_path) == "gs://lake/ice"
    props = catalog_properties(storage, SqlCatalog(type="sql"), tmp_path, lambda n: f"<{n}>")
    assert props["warehouse"] == "gs://lake/ice"
    assert props["gcs.project-id"] == "floe-test"
    assert props["gcs.service.host"] == "http://127.0.0.1:9023"
    # The key never goes into a property: it is exchanged for a token at run time.
    assert "<gcs-key>" not in props.values()
    io = load_file_io(props, "gs://lake/ice/x")
    assert isinstance(io.fs_by_scheme("gs", "lake"), GcsFileSystem)


def test_gcs_bad_key_names_the_secret_not_the_value() -> None:
    from floe_runtime.runtime.iceberg import gcs_token_properties

    with pytest.raises(ValueError, match="secret 'gcs-key' is not a service account key") as info:
        gcs_token_properties('{"private_key": "not-a-key-sentinel"}', "gcs-key")
    assert "sentinel" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


# ---------------------------------------------------------------- real emulators


@pytest.mark.server
@pytest.mark.slow
def test_adls_storage_on_azurite(azurite: Azurite, tmp_path: Path) -> None:
    from pyarrow.fs import AzureFileSystem, FileSelector

    host = azurite.endpoint.removeprefix("http://")
    fs = AzureFileSystem(
        account_name=azurite.account,
        account_key=azurite.key,
        blob_storage_authority=host,
        dfs_storage_authority=host,
        blob_storage_scheme="http",
        dfs_storage_scheme="http",
    )
    fs.create_dir("lake")
    project = copy_example(tmp_path / "ca")
    write_platform(
        project,
        "azure",
        f"""version: "1"
storage:
  default:
    type: adls
    account_name: {azurite.account}
    container: lake
    prefix: iceberg/
    endpoint: {azurite.endpoint}
    credentials:
      account_key: {{secret_ref: az-account-key}}
{COMPUTE}""",
    )
    result = floe("run", str(project), "--env", "azure", env={"AZ_ACCOUNT_KEY": azurite.key})
    assert result.code == 0, result.output

    from pyiceberg.catalog.sql import SqlCatalog as Reader

    catalog = Reader(
        "default",  # the SQL catalog's rows are keyed by the catalog profile's name
        uri=f"sqlite:///{project / '.floe' / 'catalog.db'}",
        warehouse=f"abfss://lake@{azurite.account}.dfs.core.windows.net/iceberg",
        **{
            "py-io-impl": ADLS_FILE_IO,
            "adls.account-name": azurite.account,
            "adls.account-key": azurite.key,
            "adls.blob-storage-authority": host,
            "adls.dfs-storage-authority": host,
            "adls.blob-storage-scheme": "http",
            "adls.dfs-storage-scheme": "http",
        },
    )
    for name, rows in MARTS.items():
        table = catalog.load_table(("analytics", name))
        assert table.location().startswith(
            f"abfss://lake@{azurite.account}.dfs.core.windows.net/iceberg/"
        )
        assert table.scan().to_arrow().num_rows == rows
    # The files are in the container, under the prefix, where another engine would look.
    names = [i.path for i in fs.get_file_info(FileSelector("lake/iceberg", recursive=True))]
    assert any(n.endswith(".parquet") for n in names)
    assert any(n.endswith(".metadata.json") for n in names)
    assert azurite.key not in result.output
    assert grep_tree(project, azurite.key) == []


@pytest.mark.server
@pytest.mark.slow
def test_gcs_storage_on_emulator(gcs_emulator: GcsEmulator, tmp_path: Path) -> None:
    import urllib.request

    request = urllib.request.Request(
        f"{gcs_emulator.endpoint}/storage/v1/b?project=floe-test",
        data=json.dumps({"name": "gcs-lake"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).close()
    project = copy_example(tmp_path / "ca")
    write_platform(
        project,
        "gcp",
        f"""version: "1"
storage:
  default:
    type: gcs
    bucket: gcs-lake
    prefix: iceberg
    project: floe-test
    endpoint: {gcs_emulator.endpoint}
    credentials:
      service_account_json: {{secret_ref: gcs-key}}
{COMPUTE}""",
    )
    before = len(gcs_emulator.grants)
    result = floe(
        "run", str(project), "--env", "gcp", env={"GCS_KEY": gcs_emulator.service_account_json}
    )
    assert result.code == 0, result.output
    # The token endpoint verified assertions signed with this very key.
    assert gcs_emulator.grants[before:]
    assert set(gcs_emulator.grants[before:]) == {
        json.loads(gcs_emulator.service_account_json)["client_email"]
    }

    from pyiceberg.catalog.sql import SqlCatalog as Reader

    catalog = Reader(
        "default",  # the SQL catalog's rows are keyed by the catalog profile's name
        uri=f"sqlite:///{project / '.floe' / 'catalog.db'}",
        warehouse="gs://gcs-lake/iceberg",
        **{
            "gcs.service.host": gcs_emulator.endpoint,
            "gcs.project-id": "floe-test",
            "gcs.oauth2.token": "reader-token",
            "gcs.oauth2.token-expires-at": "4102444800000",
        },
    )
    for name, rows in MARTS.items():
        table = catalog.load_table(("analytics", name))
        assert table.location().startswith("gs://gcs-lake/iceberg/")
        assert table.scan().to_arrow().num_rows == rows
    for secret in (gcs_emulator.sentinel, gcs_emulator.access_token):
        assert secret not in result.output
        assert grep_tree(project, secret) == []
