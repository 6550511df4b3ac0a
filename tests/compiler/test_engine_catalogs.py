"""Engine catalogs: compile wires Trino and Spark to the environment's Iceberg catalog.

No Trino or Spark can run here, so the generated configuration is checked against each
engine's documented property names (vendored lists under engine_properties/, with their
sources), parsed the way the engine reads it (Java properties; spark-defaults.conf), and
for secrets: only references the engine resolves itself, never a value.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from floe_runtime.analysis import discover
from floe_runtime.compiler import compile_project, load_artifacts, write_artifacts

REFERENCE = Path(__file__).parent / "engine_properties"

FLOE = "name: shop\nversion: '1.0.0'\ntransforms:\n  - {type: dbt, path: ./dbt}\n"

S3 = """  default:
    type: s3
    bucket: lake
    prefix: iceberg/
    region: eu-west-1
    endpoint: http://127.0.0.1:8333
    path_style_access: true
    credentials:
      access_key_id: {secret_ref: lake-key-id}
      secret_access_key: {secret_ref: lake-secret}
"""

POLARIS = """  default:
    type: polaris
    uri: https://polaris.acme.internal/api/catalog
    warehouse: analytics
    credentials:
      mode: oauth2
      client_id: floe-runtime
      client_secret: {secret_ref: polaris-oauth-secret}
      scope: PRINCIPAL_ROLE:data_engineer
"""

TRINO = (
    "  default: {type: trino, host: trino.acme.internal, user: floe, database: lake, "
    "schema: analytics, password: {secret_ref: trino-password}, method: ldap}\n"
)
SPARK = "  default: {type: spark, method: thrift, host: spark.acme.internal, schema: analytics}\n"


def platform(storage: str, catalog: str, compute: str) -> str:
    return f'version: "1"\nstorage:\n{storage}catalogs:\n{catalog}compute:\n{compute}'


def documented(name: str) -> set[str]:
    lines = (REFERENCE / name).read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def java_properties(text: str) -> dict[str, str]:
    """A properties file as Java's Properties.load reads these (no continuation lines here)."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(("#", "!")):
            continue
        key, sep, value = re.split(r"(?<!\\)([=:]|\s)", line, maxsplit=1)
        assert sep, line
        props[key.replace("\\", "")] = value.strip()
    return props


def spark_defaults(text: str) -> dict[str, str]:
    """spark-defaults.conf as Spark reads it: key, whitespace, value."""
    conf: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split(None, 1)
            conf[key] = value.strip()
    return conf


@pytest.fixture()
def compiled(make_project: Callable[..., Path], tmp_path: Path) -> Callable[[str], Path]:
    """Compile a project with the given platform.yaml into tmp/out; return the out folder."""

    def run(text: str) -> Path:
        root = make_project(floe=FLOE, beside=text)
        artifacts = compile_project(discover(root))
        out = tmp_path / "out"
        write_artifacts(artifacts, out)
        return out

    return run


def test_trino_catalog_file_for_polaris_uses_documented_names(
    compiled: Callable[[str], Path],
) -> None:
    out = compiled(platform(S3, POLARIS, TRINO))
    # The file is named after the Trino catalog dbt-trino builds in (compute `database`).
    text = (out / "trino" / "lake.properties").read_text()
    props = java_properties(text)
    assert set(props) <= documented("trino.txt"), set(props) - documented("trino.txt")
    assert props == {
        "connector.name": "iceberg",
        "iceberg.catalog.type": "rest",
        "iceberg.rest-catalog.uri": "https://polaris.acme.internal/api/catalog",
        "iceberg.rest-catalog.warehouse": "analytics",
        "iceberg.rest-catalog.security": "OAUTH2",
        "iceberg.rest-catalog.oauth2.credential": "${ENV:FLOE_DEFAULT_CATALOG_CREDENTIAL}",
        "iceberg.rest-catalog.oauth2.server-uri": (
            "https://polaris.acme.internal/api/catalog/v1/oauth/tokens"
        ),
        "iceberg.rest-catalog.oauth2.scope": "PRINCIPAL_ROLE:data_engineer",
        "fs.native-s3.enabled": "true",
        "s3.endpoint": "http://127.0.0.1:8333",
        "s3.region": "eu-west-1",
        "s3.path-style-access": "true",
        "s3.aws-access-key": "${ENV:LAKE_KEY_ID}",
        "s3.aws-secret-key": "${ENV:LAKE_SECRET}",
    }
    # Every secret is a whole-value ${ENV:NAME} reference (newer Trino replaces the whole
    # value with the variable, so `id:${ENV:X}` would lose the id).
    for key in ("oauth2.credential", "aws-access-key", "aws-secret-key"):
        value = next(v for k, v in props.items() if k.endswith(key))
        assert re.fullmatch(r"\$\{ENV:[A-Z][A-Z0-9_]*\}", value), value
    artifacts = load_artifacts(out / "compiled_artifacts.json")
    notes = " ".join(artifacts.notes)
    assert "etc/catalog/lake.properties" in notes
    assert "FLOE_DEFAULT_CATALOG_CREDENTIAL" in notes and "floe-runtime:<secret" in notes
    assert "$LAKE_KEY_ID" in notes and "on_table_exists: replace" in notes


def test_spark_defaults_for_polaris_uses_documented_names(compiled: Callable[[str], Path]) -> None:
    out = compiled(platform(S3, POLARIS, SPARK))
    conf = spark_defaults((out / "spark-defaults.conf").read_text())
    names = {
        re.sub(r"^spark\.sql\.catalog\.default\b", "spark.sql.catalog.<catalog>", k) for k in conf
    }
    assert names <= documented("iceberg_spark.txt"), names - documented("iceberg_spark.txt")
    assert conf == {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        # dbt-spark names tables schema.table: the floe catalog is the session's default.
        "spark.sql.defaultCatalog": "default",
        "spark.sql.catalog.default": "org.apache.iceberg.spark.SparkCatalog",
        "spark.sql.catalog.default.type": "rest",
        "spark.sql.catalog.default.uri": "https://polaris.acme.internal/api/catalog",
        "spark.sql.catalog.default.warehouse": "analytics",
        "spark.sql.catalog.default.rest.auth.type": "oauth2",
        "spark.sql.catalog.default.credential": "env:FLOE_DEFAULT_CATALOG_CREDENTIAL",
        "spark.sql.catalog.default.oauth2-server-uri": (
            "https://polaris.acme.internal/api/catalog/v1/oauth/tokens"
        ),
        "spark.sql.catalog.default.scope": "PRINCIPAL_ROLE:data_engineer",
        "spark.sql.catalog.default.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        "spark.sql.catalog.default.s3.endpoint": "http://127.0.0.1:8333",
        "spark.sql.catalog.default.client.region": "eu-west-1",
        "spark.sql.catalog.default.s3.path-style-access": "true",
        "spark.sql.catalog.default.s3.access-key-id": "env:LAKE_KEY_ID",
        "spark.sql.catalog.default.s3.secret-access-key": "env:LAKE_SECRET",
    }
    notes = " ".join(load_artifacts(out / "compiled_artifacts.json").notes)
    assert "+file_format: iceberg" in notes and "spark-defaults.conf" in notes


def test_glue_and_jdbc_catalogs_map_to_documented_names(compiled: Callable[[str], Path]) -> None:
    glue = (
        "  default: {type: glue, region: eu-west-1, catalog_id: '123456789012', "
        "endpoint: 'http://127.0.0.1:5000', credentials: {access_key_id: {secret_ref: glue-id}, "
        "secret_access_key: {secret_ref: glue-secret}}}\n"
    )
    out = compiled(platform(S3, glue, TRINO))
    props = java_properties((out / "trino" / "lake.properties").read_text())
    assert set(props) <= documented("trino.txt"), set(props) - documented("trino.txt")
    assert props["iceberg.catalog.type"] == "glue"
    assert props["hive.metastore.glue.catalogid"] == "123456789012"
    assert props["hive.metastore.glue.aws-secret-key"] == "${ENV:GLUE_SECRET}"
    assert props["hive.metastore.glue.default-warehouse-dir"] == "s3://lake/iceberg"

    jdbc = (
        "  default: {type: sql, uri: 'postgresql+psycopg2://iceberg@pg.acme.internal:5432/cat', "
        "password: {secret_ref: cat-password}}\n"
    )
    out = compiled(platform(S3, jdbc, TRINO))
    props = java_properties((out / "trino" / "lake.properties").read_text())
    assert set(props) <= documented("trino.txt"), set(props) - documented("trino.txt")
    assert props["iceberg.jdbc-catalog.connection-url"] == (
        "jdbc:postgresql://pg.acme.internal:5432/cat"
    )
    assert props["iceberg.jdbc-catalog.connection-user"] == "iceberg"
    assert props["iceberg.jdbc-catalog.connection-password"] == "${ENV:CAT_PASSWORD}"
    # pyiceberg's SQL catalog keeps its rows under the catalog's name: Trino must use it too.
    assert props["iceberg.jdbc-catalog.catalog-name"] == "default"

    out = compiled(platform(S3, jdbc, SPARK))
    conf = spark_defaults((out / "spark-defaults.conf").read_text())
    names = {
        re.sub(r"^spark\.sql\.catalog\.default\b", "spark.sql.catalog.<catalog>", k) for k in conf
    }
    assert names <= documented("iceberg_spark.txt"), names - documented("iceberg_spark.txt")
    assert conf["spark.sql.catalog.default.type"] == "jdbc"
    # Iceberg's JDBC catalog resolves no env: values: the password is left to the deployment.
    assert not any("password" in key for key in conf)


@pytest.mark.parametrize("compute", [TRINO, SPARK])
def test_no_secret_value_reaches_engine_files(
    compiled: Callable[[str], Path], compute: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Compile never resolves secrets; with values in the environment they still stay out.
    for name, value in {
        "LAKE_KEY_ID": "AKIA-sentinel-7f3a",
        "LAKE_SECRET": "s3-sentinel-91bc",
        "POLARIS_OAUTH_SECRET": "oauth-sentinel-c0de",
        "TRINO_PASSWORD": "trino-sentinel-5e11",
    }.items():
        monkeypatch.setenv(name, value)
    out = compiled(platform(S3, POLARIS, compute))
    for path in out.rglob("*"):
        if path.is_file():
            assert "sentinel" not in path.read_text(), path


@pytest.mark.parametrize(
    ("storage", "catalog", "reason"),
    [
        ("  default: {type: local}\n", POLARIS, "local warehouse folder"),
        (S3, "  default: {type: sql}\n", "SQLite catalog file"),
    ],
)
def test_unshareable_catalog_gives_a_note_not_a_file(
    compiled: Callable[[str], Path], storage: str, catalog: str, reason: str
) -> None:
    out = compiled(platform(storage, catalog, TRINO))
    assert not (out / "trino").exists()
    assert reason in " ".join(load_artifacts(out / "compiled_artifacts.json").notes)


@pytest.mark.parametrize(
    ("compute", "feature"),
    [
        (
            "  default: {type: snowflake, account: a, user: u, warehouse: w, database: d, "
            "schema: s}\n",
            "table_format: iceberg",
        ),
        ("  default: {type: bigquery, project: p, dataset: d}\n", "biglake_metastore"),
        (
            "  default: {type: databricks, host: h, http_path: /sql, token: {secret_ref: t}, "
            "schema: s}\n",
            "table_format: iceberg",
        ),
    ],
)
def test_warehouses_warn_that_floe_does_not_publish(
    compiled: Callable[[str], Path], compute: str, feature: str
) -> None:
    out = compiled(platform(S3, POLARIS, compute))
    [note] = load_artifacts(out / "compiled_artifacts.json").notes
    assert note.startswith("floe-runtime does not publish tables built on ")
    assert feature in note
    assert sorted(p.name for p in out.iterdir()) == ["compiled_artifacts.json", "profiles.yml"]


def test_duckdb_gets_no_engine_files_and_no_notes(compiled: Callable[[str], Path]) -> None:
    out = compiled(platform(S3, POLARIS, "  default: {type: duckdb}\n"))
    artifacts = load_artifacts(out / "compiled_artifacts.json")
    assert artifacts.engine_files == {} and artifacts.notes == []


def test_cli_compile_prints_engine_file_and_install_note(make_project: Callable[..., Path]) -> None:
    root = make_project(floe=FLOE, beside=platform(S3, POLARIS, TRINO))
    done = subprocess.run(
        [sys.executable, "-m", "floe_runtime", "compile", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "target/floe/trino/lake.properties" in done.stdout
    assert "Note: install trino/lake.properties as etc/catalog/lake.properties" in done.stdout
    assert (root / "target" / "floe" / "trino" / "lake.properties").is_file()
