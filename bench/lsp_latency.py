"""Editing latency of floe-lsp beside Red Hat's yaml-language-server (DESIGN §7).

Both servers get the same generated pipelines (a 2.5 KB and a 50 KB floe.yaml,
five environments). yaml-language-server validates floe.yaml against the JSON
Schema from `floe-runtime schema floe` (associated through `yaml.schemas`);
floe-lsp runs the analysis engine over both tiers. The script toggles an
unknown key and measures edit → diagnostics, completion and hover latency,
start → initialize result, and resident memory, and prints both as ratios.

    python bench/lsp_latency.py [--yls PATH/TO/node_modules/.bin/yaml-language-server] [--rounds 40]

yaml-language-server comes from npm; install it outside the repository:
    npm install --prefix /tmp/yls yaml-language-server@1.25.0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ENVS = ["dev", "test", "staging", "preprod", "prod"]

# ------------------------------------------------------------------ workspace


def platform_text(env: str) -> str:
    """A platform.yaml that defines every profile the generated pipelines use."""
    return f"""# {env}: generated for the latency benchmark
version: "1"
storage:
  default: {{type: local, path: ./.floe/warehouse}}
  lake:
    type: s3
    bucket: acme-{env}
    region: eu-west-1
    credentials:
      access_key_id: {{secret_ref: lake-key-id}}
      secret_access_key: {{secret_ref: lake-secret}}
catalogs:
  default: {{type: sql, uri: "sqlite:///.floe/catalog.db"}}
  lake:
    type: polaris
    uri: https://polaris.{env}.internal/api/catalog
    warehouse: analytics
    credentials:
      mode: oauth2
      client_id: floe-runtime
      client_secret: {{secret_ref: polaris-oauth-secret}}
compute:
  default: {{type: duckdb, path: ./.floe/floe.duckdb, threads: 4}}
  warehouse:
    type: postgres
    host: pg.{env}.internal
    user: floe
    password: {{secret_ref: pg-password}}
    dbname: analytics
"""


def pipeline_text(target_bytes: int) -> str:
    """A valid floe.yaml of about `target_bytes`, ending with an empty line."""
    head = """# generated for the latency benchmark
name: latency-bench
version: "1.0.0"
description: Benchmark pipeline
storage: lake
catalog: lake
compute: warehouse
schedule:
  cron: "0 6 * * *"
  timezone: Europe/Berlin
observability:
  traces: true
  lineage: true
  attributes:
    team: growth
transforms:
"""
    parts = [head]
    size = len(head)
    index = 0
    while size < target_bytes - 40 or index == 0:
        item = (
            f'  - type: dbt\n    path: ./dbt\n    select: "+mart_{index}"\n'
            f'    namespace: analytics_{index}\n    vars:\n      start_date: "2024-01-01"\n'
            f"      batch: {index}\n"
        )
        parts.append(item)
        size += len(item)
        index += 1
    return "".join(parts) + "\n"


def make_project(root: Path, target_bytes: int) -> Path:
    """A pipeline folder with floe.yaml, five platform files and a dbt project."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "floe.yaml").write_text(pipeline_text(target_bytes))
    (root / "dbt").mkdir(exist_ok=True)
    (root / "dbt" / "dbt_project.yml").write_text("name: bench\nversion: '1.0'\nprofile: floe\n")
    for env in ENVS:
        (root / "platform" / env).mkdir(parents=True, exist_ok=True)
        (root / "platform" / env / "platform.yaml").write_text(platform_text(env))
    return root


def uri(path: Path) -> str:
    return path.resolve().as_uri()


# ------------------------------------------------------------------ a small LSP client


@dataclass
class Client:
    """Just enough JSON-RPC over stdio to drive a server and time it."""

    proc: asyncio.subprocess.Process
    settings: dict[str, Any]
    next_id: int = 0
    pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    diagnostics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    waiters: list[tuple[Callable[[str, list[dict[str, Any]]], bool], asyncio.Future[None]]] = field(
        default_factory=list
    )
    reader: asyncio.Task[None] | None = None

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def request(self, method: str, params: Any) -> Any:
        self.next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        self.send({"id": self.next_id, "method": method, "params": params})
        return await asyncio.wait_for(future, 60)

    def notify(self, method: str, params: Any) -> None:
        self.send({"method": method, "params": params})

    def wait_diagnostics(
        self, check: Callable[[str, list[dict[str, Any]]], bool]
    ) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append((check, future))
        return future

    async def read_loop(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = 0
            while True:
                line = await out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            message = json.loads(await out.readexactly(length))
            if "method" in message and "id" in message:  # a request from the server
                self.send({"id": message["id"], "result": self._answer(message)})
            elif "method" in message:
                if message["method"] == "textDocument/publishDiagnostics":
                    params = message["params"]
                    self.diagnostics[params["uri"]] = params["diagnostics"]
                    for check, future in list(self.waiters):
                        if not future.done() and check(params["uri"], params["diagnostics"]):
                            future.set_result(None)
                            self.waiters.remove((check, future))
            elif "id" in message:
                reply = self.pending.pop(message["id"]) if message["id"] in self.pending else None
                if reply is not None and not reply.done():
                    reply.set_result(message.get("result"))

    def _answer(self, message: dict[str, Any]) -> Any:
        if message["method"] == "workspace/configuration":
            out = []
            for item in message["params"]["items"]:
                section = item.get("section") or ""
                value: Any = self.settings
                for part in section.split(".") if section else []:
                    value = value.get(part, None) if isinstance(value, dict) else None
                out.append(value)
            return out
        return None


async def start(
    cmd: list[str], root: Path, settings: dict[str, Any], env: dict[str, str] | None = None
) -> tuple[Client, float]:
    """Spawn a server and initialize it; returns the client and seconds to the initialize result."""
    began = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=root,
        env={**os.environ, **(env or {})},
    )
    client = Client(proc, settings)
    client.reader = asyncio.create_task(client.read_loop())
    caps = {
        "textDocument": {
            "synchronization": {"didSave": True},
            "completion": {"completionItem": {"snippetSupport": True}},
            "hover": {"contentFormat": ["markdown", "plaintext"]},
            "publishDiagnostics": {"relatedInformation": True},
        },
        "workspace": {"configuration": True, "workspaceFolders": True},
    }
    await client.request(
        "initialize",
        {
            "processId": os.getpid(),
            "rootUri": uri(root),
            "workspaceFolders": [{"uri": uri(root), "name": root.name}],
            "capabilities": caps,
        },
    )
    elapsed = time.perf_counter() - began
    client.notify("initialized", {})
    client.notify("workspace/didChangeConfiguration", {"settings": settings})
    return client, elapsed


async def stop(client: Client) -> None:
    try:
        await client.request("shutdown", None)
        client.notify("exit", None)
        await asyncio.wait_for(client.proc.wait(), 5)
    except (TimeoutError, ConnectionError):
        client.proc.kill()
    if client.reader is not None:
        client.reader.cancel()


def rss_mb(pid: int) -> float:
    """Resident memory of a process (and its children: yaml-language-server is one node)."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total = int(line.split()[1])
    return total / 1024


# ------------------------------------------------------------------ measurements


@dataclass
class Result:
    init_s: float
    diag_ms: list[float]
    completion_ms: list[float]
    hover_ms: list[float]
    rss_mb: float


def has_unknown(diags: list[dict[str, Any]]) -> bool:
    return any("bogus_key" in str(d.get("message", "")) for d in diags)


def expect(doc_uri: str, unknown: bool | None) -> Callable[[str, list[dict[str, Any]]], bool]:
    """A check for diagnostics of `doc_uri` (with or without the unknown key; None: any)."""

    def check(target: str, diags: list[dict[str, Any]]) -> bool:
        return target == doc_uri and (unknown is None or has_unknown(diags) == unknown)

    return check


async def measure(cmd: list[str], root: Path, settings: dict[str, Any], rounds: int) -> Result:
    floe = root / "floe.yaml"
    text = floe.read_text()
    client, init_s = await start(cmd, root, settings)
    doc_uri = uri(floe)
    first = client.wait_diagnostics(lambda u, d: u == doc_uri)
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": doc_uri, "languageId": "yaml", "version": 1, "text": text}},
    )
    await asyncio.wait_for(first, 60)
    lines = text.split("\n")
    insert_at = lines.index("transforms:")
    lines = lines[:insert_at] + [""] * rounds + lines[insert_at:]  # the comments the edits leave
    diag_ms: list[float] = []
    version = 1
    for round_ in range(rounds * 2):
        version += 1
        add = round_ % 2 == 0
        # Every text is new (the engine memoises per text): the unknown key carries the
        # round number, and removing it leaves a numbered comment in its place.
        if add:
            change = {
                "range": {
                    "start": {"line": insert_at, "character": 0},
                    "end": {"line": insert_at, "character": 0},
                },
                "text": f"bogus_key_{round_}: 1\n",
            }
        else:
            change = {
                "range": {
                    "start": {"line": insert_at, "character": 0},
                    "end": {"line": insert_at + 1, "character": 0},
                },
                "text": f"# edit {round_}\n",
            }
        waiter = client.wait_diagnostics(expect(doc_uri, add))
        began = time.perf_counter()
        client.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": doc_uri, "version": version}, "contentChanges": [change]},
        )
        await asyncio.wait_for(waiter, 60)
        diag_ms.append((time.perf_counter() - began) * 1000)
    completion_ms: list[float] = []
    hover_ms: list[float] = []
    last_line = len(lines) - 1  # the final empty line: top-level key completion
    tz_line = next(i for i, line in enumerate(lines) if line.strip().startswith("timezone:"))
    for _ in range(rounds):
        began = time.perf_counter()
        await client.request(
            "textDocument/completion",
            {"textDocument": {"uri": doc_uri}, "position": {"line": last_line, "character": 0}},
        )
        completion_ms.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        await client.request(
            "textDocument/hover",
            {"textDocument": {"uri": doc_uri}, "position": {"line": tz_line, "character": 4}},
        )
        hover_ms.append((time.perf_counter() - began) * 1000)
    memory = rss_mb(client.proc.pid)
    await stop(client)
    starts = [init_s]
    for _ in range(4):  # start-up is noisy: the median of five starts
        again, seconds = await start(cmd, root, settings)
        starts.append(seconds)
        await stop(again)
    return Result(statistics.median(starts), diag_ms, completion_ms, hover_ms, memory)


#: A pygls server with no features at all: what any pygls server pays before `initialize`.
BARE_PYGLS = "from pygls.lsp.server import LanguageServer; LanguageServer('bare', '0').start_io()"


async def bare_pygls_start(root: Path) -> float:
    """Median seconds, over five starts, for a featureless pygls server to answer `initialize`."""
    starts = []
    for _ in range(5):
        client, seconds = await start([sys.executable, "-c", BARE_PYGLS], root, {})
        starts.append(seconds)
        await stop(client)
    return statistics.median(starts)


async def memory_with_pipelines(
    cmd: list[str], root: Path, settings: dict[str, Any], count: int
) -> float:
    """RSS after opening `count` pipelines (2.5 KB floe.yaml, five environments each)."""
    client, _ = await start(cmd, root, settings)
    files = sorted(root.glob("p*/floe.yaml"))[:count]
    waiters = []
    for floe in files:
        doc_uri = uri(floe)
        waiters.append(client.wait_diagnostics(expect(doc_uri, None)))
        client.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": doc_uri,
                    "languageId": "yaml",
                    "version": 1,
                    "text": floe.read_text(),
                }
            },
        )
    await asyncio.wait_for(asyncio.gather(*waiters), 300)
    await asyncio.sleep(0.5)
    memory = rss_mb(client.proc.pid)
    await stop(client)
    return memory


def p50(values: list[float]) -> float:
    return statistics.median(values)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


async def main_async(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="floe-lsp-bench-"))
    schema = work / "floe.schema.json"
    proc = subprocess.run(
        [sys.executable, "-m", "floe_runtime", "schema", "floe"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if proc.returncode == 0 and proc.stdout.strip().startswith("{"):
        schema.write_text(proc.stdout)
    else:  # `floe-runtime schema` not available: the same schema straight from the model
        from floe_runtime.config.pipeline import Pipeline

        schema.write_text(json.dumps(Pipeline.model_json_schema()))
    yls_settings = {
        "yaml": {
            "validate": True,
            "hover": True,
            "completion": True,
            "format": {"enable": False},
            "schemaStore": {"enable": False},
            "schemas": {schema.as_uri(): ["floe.yaml", "**/floe.yaml"]},
        }
    }
    servers: dict[str, tuple[list[str], dict[str, Any]]] = {
        "floe-lsp": ([sys.executable, "-m", "floe_lsp"], {}),
    }
    yls = args.yls or shutil.which("yaml-language-server")
    if yls:
        script = Path(yls).resolve()
        servers["yaml-language-server"] = (["node", str(script), "--stdio"], yls_settings)
    else:
        print(
            "yaml-language-server not found (npm install --prefix /tmp/yls yaml-language-server); "
            "measuring floe-lsp only",
            file=sys.stderr,
        )
    results: dict[tuple[str, str], Result] = {}
    for label, size in (("2.5 KB", 2_500), ("50 KB", 50_000)):
        root = make_project(work / f"bench-{size}", size)
        actual = (root / "floe.yaml").stat().st_size
        for name, (cmd, settings) in servers.items():
            results[(name, label)] = await measure(cmd, root, settings, args.rounds)
            print(f"measured {name} on {label} ({actual} bytes)", file=sys.stderr)
    many = work / "many"
    for index in range(args.pipelines):
        make_project(many / f"p{index:03d}", 2_500)
    memory = {
        name: await memory_with_pipelines(cmd, many, settings, args.pipelines)
        for name, (cmd, settings) in servers.items()
    }

    names = list(servers)
    print()
    print(
        f"floe-lsp vs yaml-language-server — {args.rounds * 2} edits, {args.rounds} completions/hovers each"
    )
    header = (
        f"{'metric':46} "
        + " ".join(f"{n:>20}" for n in names)
        + ("   ratio (yls/floe)" if len(names) > 1 else "")
    )
    print(header)
    print("-" * len(header))

    def row(metric: str, values: list[float], unit: str, budget: str = "") -> None:
        cells = " ".join(f"{v:>17.1f} {unit:<2}" for v in values)
        ratio = f"   {values[1] / values[0]:>8.1f}x" if len(values) > 1 and values[0] > 0 else ""
        print(f"{metric:46} {cells}{ratio}  {budget}")

    for label in ("2.5 KB", "50 KB"):
        rs = [results[(n, label)] for n in names]
        row(
            f"edit→diagnostics p50 ({label})",
            [p50(r.diag_ms) for r in rs],
            "ms",
            "budget ≤ 25 ms" if label == "50 KB" else "",
        )
        row(
            f"edit→diagnostics p99 ({label})",
            [p99(r.diag_ms) for r in rs],
            "ms",
            "budget < 60 ms" if label == "50 KB" else "",
        )
        row(f"edit→diagnostics max ({label})", [max(r.diag_ms) for r in rs], "ms")
        row(f"completion p50 ({label})", [p50(r.completion_ms) for r in rs], "ms", "budget < 10 ms")
        row(f"hover p50 ({label})", [p50(r.hover_ms) for r in rs], "ms", "budget < 10 ms")
        row(
            f"initialize, median of 5 ({label})",
            [r.init_s * 1000 for r in rs],
            "ms",
            "budget < 400 ms",
        )
        row(f"RSS after the runs ({label})", [r.rss_mb for r in rs], "MB")
    for statement in ("import lsprotocol.types", "import pygls.lsp.server"):
        floor = []
        for _ in range(5):
            began = time.perf_counter()
            subprocess.run([sys.executable, "-c", statement], check=True)
            floor.append((time.perf_counter() - began) * 1000)
        print(f"{'floor: python -c ' + statement:46} {statistics.median(floor):>17.1f} ms")
    bare = await bare_pygls_start(work / "bench-2500")
    print(
        f"{'floor: featureless pygls server, initialize':46} {bare * 1000:>17.1f} ms"
        "   (median of 5: what any pygls server pays before it can answer)"
    )
    row(
        f"RSS with {args.pipelines} pipelines open",
        [memory[n] for n in names],
        "MB",
        "budget < 120 MB",
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--yls", help="path to the yaml-language-server executable (npm .bin)")
    parser.add_argument("--rounds", type=int, default=40, help="edit pairs and requests per size")
    parser.add_argument(
        "--pipelines", type=int, default=100, help="pipelines open for the memory figure"
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
