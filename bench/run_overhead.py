"""What `floe-runtime run` costs beside plain dbt and beside hand-written dagster-dbt.

On the example and on a generated 200-model project, each measured as the wall
time of a fresh process (imports included), median of --repeat runs:

  dbt      plain `dbt build` with the generated profiles.yml
  dagster  a minimal hand-written dagster-dbt `materialize` of the same manifest
  floe     `floe-runtime run` (also publishes table models to Iceberg, traces, lineage)
  editor   the same run from the editor: forked by the language server's warm runner
           (floe_lsp/warm_runner.py, the client the server uses; started once, before timing)

Budget (DESIGN §7): floe ≤ dagster; stretch floe ≤ 1.5 × dbt; editor ≤ 1.2 × dbt (issue 11).

    .venv/bin/python bench/run_overhead.py [--repeat N] [--models 200] [--example-only]
"""

from __future__ import annotations

import argparse
import asyncio
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


class EditorRuns:
    """Runs through a warm runner, as `floe.run` from the editor does."""

    def __init__(self) -> None:
        from floe_lsp.warm_runner import WarmRunner

        self.loop = asyncio.new_event_loop()
        self.runner = WarmRunner(idle=3600)

        async def start() -> bool:
            return await self.runner.start()

        if not self.loop.run_until_complete(start()):
            raise SystemExit("the warm runner did not start")

    def timed(self, project: Path, env: dict[str, str]) -> float:
        from floe_lsp.warm_runner import run_environment

        async def one() -> float:
            started = time.perf_counter()
            argv = ["run", str(project), "--env", "dev"]
            run = await self.runner.launch(argv, project, {**run_environment(), **env})
            if run is None:
                raise SystemExit("the warm runner refused the run")
            output = await run.stdout.read()
            code = await run.wait()
            if code != 0:
                raise SystemExit(f"editor run failed ({code}):\n{output.decode()[-2000:]}")
            return time.perf_counter() - started

        return self.loop.run_until_complete(one())

    def close(self) -> None:
        self.loop.run_until_complete(self.runner.stop())
        self.loop.close()


def bench(project: Path, repeat: int, editor: EditorRuns) -> dict[str, float]:
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
    samples: dict[str, list[float]] = {name: [] for name in [*commands, "editor"]}
    for _ in range(repeat):
        for name, cmd in commands.items():  # interleaved so load drifts hit all four alike
            samples[name].append(timed(cmd, dbt_dir, env))
        samples["editor"].append(editor.timed(project, env))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--example-only", action="store_true", help="skip the generated project")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, median of {args.repeat}")
    print(
        f"{'project':<24}{'dbt build':>11}{'dagster-dbt':>13}{'floe run':>10}{'editor run':>12}"
        f"{'floe/dagster':>14}{'floe/dbt':>10}{'editor/dbt':>12}"
    )
    editor = EditorRuns()
    with tempfile.TemporaryDirectory(prefix="floe-bench-") as tmp:
        example = Path(tmp) / "example"
        shutil.copytree(
            EXAMPLE, example, ignore=shutil.ignore_patterns("target", ".floe", "logs", "*.duckdb")
        )
        projects = [("customer-analytics", example)]
        if not args.example_only:
            generated = generate_project(Path(tmp) / "generated", args.models)
            projects.append((f"generated ({args.models} models)", generated))
        for label, project in projects:
            t = bench(project, args.repeat, editor)
            print(
                f"{label:<24}{t['dbt']:>10.1f}s{t['dagster']:>12.1f}s{t['floe']:>9.1f}s"
                f"{t['editor']:>11.1f}s{t['floe'] / t['dagster']:>13.2f}x"
                f"{t['floe'] / t['dbt']:>9.2f}x{t['editor'] / t['dbt']:>11.2f}x",
                flush=True,
            )
    editor.close()


if __name__ == "__main__":
    main()
