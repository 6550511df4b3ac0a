"""What publishing a table to Iceberg costs in memory and time, beside DuckDB's own Parquet COPY.

A generated floe project (DuckDB compute, SQL catalog, local warehouse) holds a fact table of
each size. Each measurement runs in a fresh process, with its peak RSS counted from just
before the operation (after imports and connections):

  copy     DuckDB's `COPY fact TO 'x.parquet' (FORMAT parquet)` of the table
  publish  floe's `publish_table` of the same relation, one commit: into this local warehouse
           DuckDB writes the Iceberg data files itself (target size, field ids, zstd)
  stream   the same, the rows streamed out as Arrow batches that pyarrow encodes: the path
           for object storage and PostgreSQL (not the budget's case; shown for comparison)

and, for an incremental dbt model (built by `dbt run`, unique_key `id`, strategy merge):

  full         the first publish of the model (the whole table)
  +new rows    the second run added --increment new rows: only they are published (append)
  +updates     the third run changed --increment existing rows: they replace theirs (upsert)

Budget (DESIGN §7): publish extra peak RSS < 200 MB at any size, rows/s ≥ 0.7 × COPY;
incremental publishing in time ∝ the increment.

    .venv/bin/python bench/publish.py [--rows 1000000,10000000,30000000] [--repeat 3]
                                      [--incremental-rows 10000000] [--increment 10000]

Times are medians of --repeat interleaved runs (30M rows: one run), peaks the largest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
MB = 2**20

#: One fact-table shape for every size: ids, a low-cardinality status, money, a timestamp
#: and an incompressible text column, like an orders fact table.
FACT_SQL = """
select i as id, (i % 100000)::integer as customer_id,
  ((i * 7919) % 1000000 / 100.0)::decimal(12,2) as amount,
  (['new','paid','shipped','returned'])[(i % 4) + 1] as status,
  timestamp '2024-01-01' + to_seconds(i) as created_at,
  md5(i::varchar) as note
from range({start}, {stop}) t(i)
"""

INCREMENTAL_MODEL = """
{{ config(materialized='incremental', unique_key='id', incremental_strategy='merge') }}
select i as id, (i % 100000)::integer as customer_id,
  ((i * 7919) % 1000000 / 100.0 + {{ var('bump') }})::decimal(12,2) as amount,
  (['new','paid','shipped','returned'])[(i % 4) + 1] as status,
  timestamp '2024-01-01' + to_seconds(i) as created_at,
  md5(i::varchar) as note
from range({{ var('start') }}, {{ var('stop') }}) t(i)
{% if is_incremental() %}
where i >= {{ var('changed_from') }}
{% endif %}
"""

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024
        return 0

    def reset_peak():
        try:  # Linux: restart VmHWM from the current RSS
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass

    mode, arg = sys.argv[1], json.loads(sys.argv[2])
    if mode == "copy":
        import duckdb
        con = duckdb.connect(arg["db"], read_only=True)
        reset_peak(); base = status("VmRSS"); started = time.perf_counter()
        con.execute(f"copy {arg['table']} to '{arg['out']}' (format parquet)")
        seconds = time.perf_counter() - started
        out = {"seconds": seconds, "extra": status("VmHWM") - base, "rows": arg["rows"]}
    else:
        from floe_runtime.compiler.artifacts import load_artifacts
        from floe_runtime.runtime.compute import Relation, open_reader
        from floe_runtime.runtime.iceberg import Increment, load_catalog, publish_table
        from floe_runtime.runtime.secrets import Secrets
        # Imports are not the publish's cost (pyiceberg's schema check imports rich, which a
        # floe run has loaded already).
        import pyarrow, pyiceberg.io.pyarrow, rich.console, rich.table  # noqa: F401

        artifacts = load_artifacts(Path(arg["artifacts"]))
        secrets = Secrets({})
        catalog = load_catalog(artifacts, secrets)
        catalog.create_namespace_if_not_exists(("bench",))
        increment = Increment(*arg["increment"]) if arg.get("increment") else None
        with open_reader(artifacts, secrets) as reader:
            data = reader.read(Relation(None, "main", arg["table"]))
            if arg.get("via") == "stream":  # as Arrow batches, as for object storage
                data = pyarrow.RecordBatchReader.from_batches(data.schema(), data.batches())
            reset_peak(); base = status("VmRSS"); started = time.perf_counter()
            result = publish_table(
                catalog, "bench", arg["name"], data, {"floe.run-id": "bench"},
                increment=increment,
            )
            seconds = time.perf_counter() - started
        table = catalog.load_table(("bench", arg["name"]))
        summary = table.current_snapshot().summary
        out = {
            "seconds": seconds, "extra": status("VmHWM") - base, "rows": result.rows,
            "mode": result.mode, "added": int(summary.get("added-records") or 0),
            "files": int(summary.get("added-data-files") or 0),
            "file_mb": int(summary.get("added-files-size") or 0)
            / max(1, int(summary.get("added-data-files") or 1)) / 2**20,
            "inserted": summary.get("floe.rows-inserted"),
            "updated": summary.get("floe.rows-updated"),
        }
    print(json.dumps(out))
    """
)


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return proc.stdout


def worker(root: Path, mode: str, **arg: Any) -> dict[str, Any]:
    out = run([sys.executable, "-c", WORKER, mode, json.dumps(arg)], root)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def make_project(root: Path) -> Path:
    """A floe project over one DuckDB file, with one incremental dbt model; compiled."""
    (root / "floe.yaml").write_text(
        'name: bench-publish\nversion: "1.0.0"\ntransforms:\n'
        "  - type: dbt\n    path: ./dbt\n    namespace: bench\n"
    )
    (root / "platform.yaml").write_text(
        'version: "1"\n'
        "storage:\n  default: {type: local, path: ./.floe/warehouse}\n"
        'catalogs:\n  default: {type: sql, uri: "sqlite:///.floe/catalog.db"}\n'
        "compute:\n  default: {type: duckdb, path: ./.floe/bench.duckdb, threads: 2}\n"
    )
    dbt = root / "dbt"
    (dbt / "models").mkdir(parents=True)
    (dbt / "dbt_project.yml").write_text(
        'name: bench_publish\nversion: "1.0.0"\nconfig-version: 2\nprofile: bench_publish\n'
    )
    (dbt / "models" / "fact_incremental.sql").write_text(INCREMENTAL_MODEL)
    run([str(BIN / "floe-runtime"), "compile", str(root)], root)
    (root / ".floe").mkdir(exist_ok=True)
    return root


def make_table(root: Path, name: str, rows: int) -> None:
    import duckdb

    with duckdb.connect(str(root / ".floe" / "bench.duckdb")) as con:
        con.execute(
            f"create or replace table main.{name} as " + FACT_SQL.format(start=0, stop=rows)
        )


def dbt_run(root: Path, **variables: int) -> None:
    profiles = root / "target" / "floe"
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    run(
        [
            str(BIN / "dbt"),
            "run",
            "--project-dir",
            str(root / "dbt"),
            "--profiles-dir",
            str(profiles),
            "--vars",
            json.dumps(variables),
        ],
        root / "dbt",
        env,
    )


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds / 1e6:6.2f} M rows/s" if seconds > 0 else "-"


def throughput(root: Path, sizes: list[int], repeat: int) -> list[str]:
    """COPY, publish and stream of each size, interleaved `repeat` times (once from 30M
    rows): median times, the largest peak."""
    import duckdb

    lines = []
    artifacts = str(root / "target" / "floe" / "compiled_artifacts.json")
    database = str(root / ".floe" / "bench.duckdb")
    for rows in sizes:
        name = f"fact_{rows}"
        make_table(root, name, rows)
        out = root / f"{name}.parquet"
        runs: dict[str, list[dict[str, Any]]] = {"copy": [], "engine": [], "stream": []}
        for _ in range(1 if rows >= 30_000_000 else repeat):
            runs["copy"].append(
                worker(root, "copy", db=database, table=name, out=str(out), rows=rows)
            )
            copy_mb = out.stat().st_size / MB
            out.unlink()
            for via in ("engine", "stream"):
                runs[via].append(
                    worker(root, "publish", artifacts=artifacts, table=name, name=name, via=via)
                )
        copy = _summary(runs["copy"])
        lines.append(
            f"{rows:>11,} rows  copy     {copy['seconds']:7.2f} s {rate(rows, copy['seconds'])}"
            f"  +{copy['extra'] / MB:5.0f} MB peak  ({copy_mb:.0f} MB file)"
        )
        print(lines[-1], flush=True)
        for via, label in (("engine", "publish"), ("stream", "stream ")):
            pub = _summary(runs[via])
            ratio = copy["seconds"] / pub["seconds"]
            within = pub["extra"] < 200 * MB and ratio >= 0.7
            verdict = ("[ok]" if within else "[over budget]") if via == "engine" else ""
            lines.append(
                f"{'':>11}       {label}  {pub['seconds']:7.2f} s {rate(rows, pub['seconds'])}"
                f"  +{pub['extra'] / MB:5.0f} MB peak  ({pub['files']} files of"
                f" {pub['file_mb']:.0f} MB)  {ratio:.2f}x COPY  {verdict}"
            )
            print(lines[-1], flush=True)
        with duckdb.connect(database) as con:
            con.execute(f"drop table main.{name}")  # keep the disk use to one table at a time
    return lines


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run by time, with the largest peak of all."""
    median = sorted(runs, key=lambda r: float(r["seconds"]))[len(runs) // 2]
    return {**median, "extra": max(r["extra"] for r in runs)}


def incremental(root: Path, rows: int, increment: int) -> list[str]:
    artifacts = str(root / "target" / "floe" / "compiled_artifacts.json")
    arg = {
        "artifacts": artifacts,
        "table": "fact_incremental",
        "name": "fact_incremental",
        "increment": ["merge", ["id"]],
    }
    lines = []
    dbt_run(root, start=0, stop=rows, changed_from=rows, bump=0)
    full = worker(root, "publish", **arg)
    # Second run: `increment` new ids after the last one.
    dbt_run(root, start=0, stop=rows + increment, changed_from=rows, bump=0)
    new = worker(root, "publish", **arg)
    # Third run: the last `increment` ids change their amount (merge updates them in place).
    total = rows + increment
    dbt_run(root, start=0, stop=total, changed_from=total - increment, bump=1)
    updated = worker(root, "publish", **arg)
    for label, r in (
        ("full", full),
        (f"+{increment:,} new", new),
        (f"{increment:,} updated", updated),
    ):
        lines.append(
            f"incremental {rows:,}: {label:<16} {r['seconds']:7.2f} s"
            f"  ({r['seconds'] / full['seconds']:.3f}x full)  +{r['extra'] / MB:4.0f} MB peak"
            f"  {r['mode']:<7} added-records {r['added']:,}"
            + (f" (inserted {r['inserted']}, updated {r['updated']})" if r["inserted"] else "")
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", default="1000000,10000000,30000000", help="comma-separated table sizes"
    )
    parser.add_argument(
        "--incremental-rows", type=int, default=10_000_000, help="0 skips the incremental rows"
    )
    parser.add_argument("--increment", type=int, default=10_000)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per size below 30M rows (median)"
    )
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.rows.split(",") if s.strip()]
    root = Path(tempfile.mkdtemp(prefix="floe-bench-publish-"))
    try:
        make_project(root)
        print(f"publishing (cpus: {os.cpu_count()}, load {os.getloadavg()[0]:.1f})", flush=True)
        started = time.perf_counter()
        throughput(root, sizes, args.repeat)
        if args.incremental_rows:
            incremental(root, args.incremental_rows, args.increment)
        print(f"({time.perf_counter() - started:.0f} s)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
