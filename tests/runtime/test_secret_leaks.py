"""A secret a run resolves leaks nowhere, in any form, through real runs (`floe-runtime run`).

The secret is a DuckDB setting (`custom_extension_repository`, the URL of a private
extension repository, token included), so the models can read it back with
`current_setting()` and echo it through DuckDB's own error text, as a hostile or
careless model would. Every test looks for the value and the forms it leaks in:
its letter cases, pieces of it, URL- and JSON-encoded, base64.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import yaml

from tests.runtime.conftest import CliResult, copy_project, floe

pytestmark = pytest.mark.slow

#: The secret: special characters (`/`, `@`, `+`, a space) so that its encoded forms differ.
SECRET = "https://ext-Sentinel/o@uth+tok en-7c41e9"

PLATFORM = """version: "1"
storage:
  default: {type: local, path: ./.floe/warehouse}
catalogs:
  default: {type: sql, uri: "sqlite:///.floe/catalog.db"}
compute:
  default:
    type: duckdb
    path: ./.floe/shop.duckdb
    threads: 4
    settings:
      custom_extension_repository: {secret_ref: ext-repo}
observability:
  traces: {exporter: file, path: ./.floe/traces.jsonl}
  lineage: {transport: file, path: ./.floe/lineage.jsonl, namespace: shop-dev}
"""

#: The same platform with no secret at all.
NO_SECRET_PLATFORM = PLATFORM.replace(
    "    settings:\n      custom_extension_repository: {secret_ref: ext-repo}\n", ""
)


def leaked_forms(value: str) -> dict[str, str]:
    """What a leak of `value` looks like, by name of the form."""
    return {
        "plain": value,
        "upper": value.upper(),
        "lower": value.lower(),
        "substr": value[8:24],
        "url-encoded": quote(value, safe=""),
        "form-encoded": quote_plus(value),
        "json": json.dumps(value)[1:-1].replace("/", "\\/"),
        "base64": base64.b64encode(value.encode()).decode(),
    }


def found(text: str, value: str = SECRET) -> list[str]:
    """The forms of `value` that occur in `text`."""
    return [name for name, form in leaked_forms(value).items() if form in text]


def tree_leaks(root: Path, value: str = SECRET) -> dict[str, list[str]]:
    """Files under `root` holding a form of `value`, with the forms each holds."""
    hits: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.endswith(".duckdb"):
            forms = found(path.read_bytes().decode("utf-8", "replace"), value)
            if forms:
                hits[str(path.relative_to(root))] = forms
    return hits


def _shop(tmp_path: Path, models: dict[str, str]) -> Path:
    project = copy_project("shop", tmp_path / "shop")
    (project / "platform.yaml").write_text(PLATFORM)
    for name, sql in models.items():
        (project / "dbt" / "models" / "marts" / f"{name}.sql").write_text(sql)
    return project


def _run(project: Path) -> CliResult:
    return floe("run", str(project), env={"EXT_REPO": SECRET})


def test_the_secret_reaches_duckdb_and_no_file_of_the_run(tmp_path: Path) -> None:
    """A profile using a secret: dbt gets it as DBT_ENV_SECRET_*, and it is in no file."""
    project = _shop(
        tmp_path,
        {"repo_check": "select length(current_setting('custom_extension_repository')) as n\n"},
    )
    result = _run(project)
    assert result.code == 0, result.output
    import duckdb

    with duckdb.connect(str(project / ".floe" / "shop.duckdb"), read_only=True) as con:
        assert con.sql("select n from main.repo_check").fetchall() == [(len(SECRET),)]
    profiles = yaml.safe_load((project / "target" / "floe" / "profiles.yml").read_text())
    [output] = profiles["shop"]["outputs"].values()
    assert output["settings"] == {
        "custom_extension_repository": "{{ env_var('DBT_ENV_SECRET_EXT_REPO') }}"
    }
    assert found(result.output) == []
    assert tree_leaks(project) == {}


def test_a_model_reading_the_secret_with_env_var_gets_nothing_and_dbt_files_hold_nothing(
    tmp_path: Path,
) -> None:
    """`env_var()` of the secret's variable in a model: a clear dbt error, no plaintext in
    dbt.log, run_results.json, manifest.json, compiled SQL or partial_parse.msgpack."""
    project = _shop(tmp_path, {"repo_echo": "select '{{ env_var(\"EXT_REPO\") }}' as repo\n"})
    result = _run(project)
    assert result.code != 0, result.output
    assert "Traceback" not in result.output
    assert "EXT_REPO" in result.stderr  # dbt names the variable it was not given
    assert found(result.output) == []
    dbt_files = project / "target" / "floe" / "dbt"
    assert (dbt_files / "0" / "manifest.json").is_file()  # dbt did parse and write its files
    assert tree_leaks(project) == {}

    # dbt's own name for it is refused in a model outright (dbt allows it in profiles only).
    (project / "dbt" / "models" / "marts" / "repo_echo.sql").write_text(
        "select '{{ env_var(\"DBT_ENV_SECRET_EXT_REPO\") }}' as repo\n"
    )
    again = _run(project)
    assert again.code != 0, again.output
    assert "Traceback" not in again.output
    assert found(again.output) == []
    assert tree_leaks(project) == {}


def _lineage_text(project: Path) -> str:
    return (project / ".floe" / "lineage.jsonl").read_text()


def test_upper_and_substr_of_the_secret_in_dbt_errors_are_redacted_everywhere_floe_writes(
    tmp_path: Path,
) -> None:
    """DuckDB echoes `upper()`/`substr()` of the secret in its error: the console, the
    lineage events and the lineage page show `***` instead."""
    project = _shop(
        tmp_path,
        {
            "echo_upper": (
                "select cast(upper(current_setting('custom_extension_repository')) as integer)"
                " as n\n"
            ),
            "echo_substr": (
                "select cast(substr(current_setting('custom_extension_repository'), 9, 16)"
                " as integer) as n\n"
            ),
        },
    )
    result = _run(project)
    assert result.code == 1, result.output
    assert "Conversion Error" in result.output  # DuckDB's error reached the console...
    assert found(result.output) == []  # ...without the secret in any form
    events = [json.loads(line) for line in _lineage_text(project).splitlines()]
    errors = [
        e["run"]["facets"]["errorMessage"]["message"]
        for e in events
        if e["eventType"] == "FAIL" and "errorMessage" in e["run"]["facets"]
    ]
    assert any("echo_upper" in e["job"]["name"] for e in events if e["eventType"] == "FAIL")
    assert errors and all("***" in m for m in errors if "Conversion Error" in m), errors
    assert found(_lineage_text(project)) == []
    page = floe("lineage", str(project), "--no-open")
    assert page.code == 0, page.output
    html = (project / "target" / "floe" / "lineage.html").read_text()
    assert "Conversion Error" in html
    assert found(html) == [] and found(page.output) == []
    assert found((project / ".floe" / "traces.jsonl").read_text()) == []


# ---------------------------------------------------------------- a catalog that echoes


class _EchoingTokenEndpoint(BaseHTTPRequestHandler):
    """An OAuth2 token endpoint that refuses every client and echoes the request in its error
    (some catalogs and proxies do): the form body, URL-encoded, and the Basic header."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        reply = json.dumps(
            {
                "error": "invalid_client",
                "error_description": (
                    f"rejected {body} (authorization: {self.headers.get('Authorization')})"
                ),
            }
        ).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def do_GET(self) -> None:
        self.do_POST()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echoing_catalog() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingTokenEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_oauth_secret_a_catalog_echoes_url_encoded_is_redacted(
    echoing_catalog: str, tmp_path: Path
) -> None:
    project = copy_project("shop", tmp_path / "shop")
    (project / "platform.yaml").write_text(
        NO_SECRET_PLATFORM.replace(
            'default: {type: sql, uri: "sqlite:///.floe/catalog.db"}',
            f"""default:
    type: rest
    uri: {echoing_catalog}
    credentials:
      mode: oauth2
      client_id: floe-client
      client_secret: {{secret_ref: catalog-secret}}""",
        )
    )
    secret = "c@t/alog+Se cret&x=1-44f0"
    result = floe("run", str(project), env={"CATALOG_SECRET": secret})
    assert result.code != 0, result.output
    assert "invalid_client" in result.output  # the catalog's words reached the console
    assert "client_secret=" in result.output, result.output  # with what it echoed
    assert found(result.output, secret) == [], result.output
    assert tree_leaks(project, secret) == {}


# ---------------------------------------------------------------- credentials inside URLs


def test_lineage_printed_to_the_console_masks_credentials_written_inside_urls(
    tmp_path: Path,
) -> None:
    """A model's SQL (the `sql` facet) and dbt's error (`errorMessage`) may hold a URL with
    its password or token: the events, the run's error lines and its spans show them
    masked by the engine's rule (FLOE020's)."""
    project = _shop(
        tmp_path,
        {
            "source_uri": (
                "select 'postgresql://etl:pg-url-sentinel@db.internal/wh' as uri,"
                " 'https://files.internal/x.csv?token=tok-url-sentinel&v=1' as file\n"
            ),
            "bad_uri": "select cast('https://u:err-url-sentinel@h.internal/x' as integer) as n\n",
        },
    )
    (project / "platform.yaml").write_text(
        NO_SECRET_PLATFORM.replace(
            "lineage: {transport: file, path: ./.floe/lineage.jsonl, namespace: shop-dev}",
            "lineage: {transport: console, namespace: shop-dev}",
        )
    )
    result = floe("run", str(project))
    assert result.code == 1, result.output
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    sql = {
        e["job"]["name"]: e["job"]["facets"]["sql"]["query"]
        for e in events
        if "sql" in e["job"].get("facets", {})
    }
    assert "postgresql://etl:***@db.internal/wh" in sql["shop.source_uri"]
    assert "?token=***&v=1" in sql["shop.source_uri"]
    errors = [
        e["run"]["facets"]["errorMessage"]["message"]
        for e in events
        if "errorMessage" in e["run"]["facets"] and e["job"]["name"] == "shop.bad_uri"
    ]
    assert errors and "https://u:***@h.internal/x" in errors[-1], errors
    # Nor in the run's own error lines or its spans (both go through the same redaction).
    said = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("{"))
    assert "https://u:***@h.internal/x" in said, said
    traces = (project / ".floe" / "traces.jsonl").read_text()
    for sentinel in ("pg-url-sentinel", "tok-url-sentinel", "err-url-sentinel"):
        assert sentinel not in result.output and sentinel not in traces
