"""Runs against real servers: PostgreSQL as compute, SeaweedFS as Iceberg REST catalog + S3.

Each run sets secrets to sentinel values and then checks the values appear in no
output: stdout, stderr, compiled artifacts, profiles, dbt logs, spans, lineage.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.conftest import (
    MARTS,
    Postgres,
    Seaweed,
    copy_example,
    floe,
    grep_tree,
    write_platform,
)

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_postgres_compute_publishes_to_sqlite_catalog(postgres: Postgres, tmp_path: Path) -> None:
    project = copy_example(tmp_path / "ca")
    write_platform(
        project,
        "pg",
        f"""version: "1"
storage:
  default: {{type: local, path: ./.floe/warehouse}}
catalogs:
  default: {{type: sql, uri: "sqlite:///.floe/catalog.db"}}
compute:
  default:
    type: postgres
    host: {postgres.host}
    port: {postgres.port}
    user: {postgres.user}
    password: {{secret_ref: pg-password}}
    dbname: {postgres.dbname}
    schema: public
    threads: 4
""",
    )
    result = floe("run", str(project), "--env", "pg", env={"PG_PASSWORD": postgres.password})
    assert result.code == 0, result.output
    assert "tests: 46 passed, 0 failed" in result.stdout

    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(
        "default",
        uri=f"sqlite:///{project / '.floe' / 'catalog.db'}",
        warehouse=(project / ".floe" / "warehouse").as_uri(),
    )
    for name, rows in MARTS.items():
        assert catalog.load_table(("analytics", name)).scan().to_arrow().num_rows == rows
    # The password never leaves memory.
    assert postgres.password not in result.output
    assert grep_tree(project, postgres.password) == []
    import yaml

    profiles = yaml.safe_load((project / "target" / "floe" / "profiles.yml").read_text())
    output = profiles["customer_analytics"]["outputs"]["pg"]
    assert output["password"] == "{{ env_var('DBT_ENV_SECRET_PG_PASSWORD') }}"


def test_missing_secret_fails_before_anything_runs(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "ca")
    result = floe("run", str(project), "--env", "prod", env={"FLOE_SECRETS_DIR": str(tmp_path)})
    assert result.code == 2, result.output
    assert "Traceback" not in result.output
    first = result.stderr.strip().splitlines()[0]
    assert (
        "lake-key-id" in first and "LAKE_KEY_ID" in first and str(tmp_path / "lake-key-id") in first
    )
    assert not (project / ".floe").exists()  # nothing ran


def test_rest_catalog_with_oauth2_and_s3(seaweedfs: Seaweed, tmp_path: Path) -> None:
    project = copy_example(tmp_path / "ca")
    write_platform(
        project,
        "lake",
        f"""version: "1"
storage:
  default:
    type: s3
    bucket: warehouse
    region: us-east-1
    endpoint: {seaweedfs.s3_endpoint}
    path_style_access: true
    credentials:
      access_key_id: {{secret_ref: lake-key-id}}
      secret_access_key: {{secret_ref: lake-secret}}
catalogs:
  default:
    type: rest
    uri: {seaweedfs.catalog_uri}
    warehouse: s3://warehouse
    credentials:
      mode: oauth2
      client_id: {seaweedfs.client_id}
      client_secret: {{secret_ref: catalog-secret}}
compute:
  default: {{type: duckdb, path: ./.floe/floe.duckdb}}
""",
    )
    # The client secret comes from a mounted file, the S3 keys from the environment.
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "catalog-secret").write_text(seaweedfs.client_secret + "\n")
    env = {
        "FLOE_SECRETS_DIR": str(secrets),
        "LAKE_KEY_ID": seaweedfs.client_id,
        "LAKE_SECRET": seaweedfs.client_secret,
    }
    result = floe("run", str(project), "--env", "lake", env=env)
    assert result.code == 0, result.output

    catalog = seaweedfs.catalog()
    for name, rows in MARTS.items():
        table = catalog.load_table(("analytics", name))
        assert table.location().startswith("s3://warehouse/")
        assert table.scan().to_arrow().num_rows == rows
        assert table.properties["dbt.unique-id"] == f"model.customer_analytics.{name}"
    events = [json.loads(x) for x in (project / ".floe" / "lineage.jsonl").read_text().splitlines()]
    outputs = {(o["namespace"], o["name"]) for e in events for o in e.get("outputs", [])}
    # OpenLineage names Iceberg tables by location: s3://bucket + the table's path.
    for name in MARTS:
        location = catalog.load_table(("analytics", name)).location()
        assert ("s3://warehouse", location.removeprefix("s3://warehouse/")) in outputs
    assert seaweedfs.client_secret not in result.output
    assert grep_tree(project, seaweedfs.client_secret) == []

    # A rerun overwrites atomically: a new snapshot, the same rows.
    before = catalog.load_table(("analytics", "orders")).current_snapshot().snapshot_id
    again = floe("run", str(project), "--env", "lake", env=env)
    assert again.code == 0, again.output
    table = catalog.load_table(("analytics", "orders"))
    assert table.current_snapshot().snapshot_id != before
    assert table.scan().to_arrow().num_rows == 60


def test_glue_catalog_with_s3_storage(moto_aws: str, tmp_path: Path) -> None:
    """A Glue Data Catalog (moto's, on 127.0.0.1) with S3 storage: run publishes, a reader loads."""
    import boto3

    key_id, secret = "AKIAFLOETEST", "glue-sentinel-5c2e91d7"
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_aws,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
    s3.create_bucket(Bucket="glue-lake")
    project = copy_example(tmp_path / "ca")
    write_platform(
        project,
        "aws",
        f"""version: "1"
storage:
  default:
    type: s3
    bucket: glue-lake
    prefix: iceberg/
    region: us-east-1
    endpoint: {moto_aws}
    path_style_access: true
    credentials:
      access_key_id: {{secret_ref: aws-key-id}}
      secret_access_key: {{secret_ref: aws-secret}}
catalogs:
  default:
    type: glue
    region: us-east-1
    endpoint: {moto_aws}
    credentials:
      access_key_id: {{secret_ref: aws-key-id}}
      secret_access_key: {{secret_ref: aws-secret}}
compute:
  default: {{type: duckdb, path: ./.floe/floe.duckdb}}
""",
    )
    env = {"AWS_KEY_ID": key_id, "AWS_SECRET": secret}
    result = floe("run", str(project), "--env", "aws", env=env)
    assert result.code == 0, result.output

    from pyiceberg.catalog import load_catalog

    catalog = load_catalog(
        "check",
        type="glue",
        **{
            "glue.region": "us-east-1",
            "glue.endpoint": moto_aws,
            "glue.access-key-id": key_id,
            "glue.secret-access-key": secret,
            "s3.endpoint": moto_aws,
            "s3.region": "us-east-1",
            "s3.path-style-access": "true",
            "s3.access-key-id": key_id,
            "s3.secret-access-key": secret,
        },
    )
    for name, rows in MARTS.items():
        table = catalog.load_table(("analytics", name))
        assert table.location().startswith("s3://glue-lake/iceberg/")
        assert table.scan().to_arrow().num_rows == rows
    assert secret not in result.output
    assert grep_tree(project, secret) == []
