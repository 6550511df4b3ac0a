"""What `floe-runtime run` costs beside plain dbt and beside hand-written dagster-dbt.

On the example and on a generated 200-model project, each measured as the wall
time of a fresh process (imports included), median of --repeat runs:

  dbt      plain `dbt build` with the generated profiles.yml
  dagster  a minimal hand-written dagster-dbt `materialize` of the same manifest
  floe     `floe-runtime run` (also publishes table models to Iceberg, traces, lineage)

Budget (DESIGN §7): floe ≤ dagster; stretch floe ≤ 1.5 × dbt.

    .venv/bin/python bench/run_overhead.py [--repeat N] [--models 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "customer-analytics"
BIN = Path(sys.executable).parent

HANDWRITTEN = textwrap.dedent(
    """
    import sys
    from dagster import materialize
    from dagster_dbt import DbtCliResource, dbt_assets

    project_dir, profiles_dir, manifest = sys.argv[1:4]

    @dbt_assets(manifest=manifest)
    def assets(context, dbt: DbtCliResource):
        yield from dbt.cli(["build"], context=context).stream()

    result = materialize(
        [assets],
        resources={"dbt": DbtCliResource(project_dir=project_dir, profiles_dir=profiles_dir,
                                         dbt_executable=sys.argv[4], target="dev")},
    )
    sys.exit(0 if result.success else 1)
    """
)


def generate_project(root: Path, models: int) -> Path:
    """A floe project whose dbt project has one seed and `models` chained models.

    Every fourth model is a table (published to Iceberg by floe); the rest are views.
    """
    shutil.copytree(EXAMPLE / "platform", root / "platform")
    (root / "floe.yaml").write_text(
        'name: bench-generated\nversion: "1.0.0"\ntransforms:\n'
        "  - type: dbt\n    path: ./dbt\n    namespace: bench\n"
    )
    dbt = root / "dbt"
    (dbt / "models").mkdir(parents=True)
    (dbt / "seeds").mkdir()
    (dbt / "dbt_project.yml").write_text(
        'name: bench_generated\nversion: "1.0.0"\nconfig-version: 2\nprofile: bench_generated\n'
        "models:\n  bench_generated:\n    +materialized: view\n"
    )
    rows = "\n".join(f"{i},item_{i},{i * 1.5}" for i in range(100))
    (dbt / "seeds" / "raw_items.csv").write_text("id,name,amount\n" + rows + "\n")
    for i in range(models):
        upstream = "{{ ref('raw_items') }}" if i < 10 else "{{ ref('m_" + f"{i - 10:03d}" + "') }}"
        config = "{{ config(materialized='table') }}\n" if i % 4 == 3 else ""
        (dbt / "models" / f"m_{i:03d}.sql").write_text(
            f"{config}select id, name, amount + {i} as amount from {upstream}\n"
        )
    return root


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return seconds


def bench(project: Path, repeat: int) -> dict[str, float]:
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    floe_cmd = [str(BIN / "floe-runtime"), "run", str(project), "--env", "dev"]
    # Warm up: compile, write profiles.yml, parse the manifest, create the DuckDB file.
    timed(floe_cmd, project, env)
    profiles = project / "target" / "floe"
    manifest = profiles / "dbt" / "0" / "manifest.json"
    dbt_dir = project / "dbt"
    script = project / "handwritten.py"
    script.write_text(HANDWRITTEN)
    commands = {
        "dbt": [
            str(BIN / "dbt"),
            "build",
            "--project-dir",
            str(dbt_dir),
            "--profiles-dir",
            str(profiles),
            "--target",
            "dev",
        ],
        "dagster": [
            sys.executable,
            str(script),
            str(dbt_dir),
            str(profiles),
            str(manifest),
            str(BIN / "dbt"),
        ],
        "floe": floe_cmd,
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, cmd in commands.items():  # interleaved so load drifts hit all three alike
            samples[name].append(timed(cmd, dbt_dir, env))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", type=int, default=200)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, median of {args.repeat}")
    print(
        f"{'project':<24}{'dbt build':>11}{'dagster-dbt':>13}{'floe run':>10}"
        f"{'floe/dagster':>14}{'floe/dbt':>10}"
    )
    with tempfile.TemporaryDirectory(prefix="floe-bench-") as tmp:
        example = Path(tmp) / "example"
        shutil.copytree(
            EXAMPLE, example, ignore=shutil.ignore_patterns("target", ".floe", "logs", "*.duckdb")
        )
        generated = generate_project(Path(tmp) / "generated", args.models)
        for label, project in (
            ("customer-analytics", example),
            (f"generated ({args.models} models)", generated),
        ):
            t = bench(project, args.repeat)
            print(
                f"{label:<24}{t['dbt']:>10.1f}s{t['dagster']:>12.1f}s{t['floe']:>9.1f}s"
                f"{t['floe'] / t['dagster']:>13.2f}x{t['floe'] / t['dbt']:>9.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
