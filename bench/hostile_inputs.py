"""How long validation takes on hostile input (issue 12): many unknown keys, up to the 5 MiB cap.

Prints, for floe.yaml files with N unknown keys, the engine's time (`analyze`, in process,
median of runs) and the wall time of `floe-runtime validate` as a process, beside the
budget: 10,000 unknown keys validate in < 1 s. The time must grow linearly with N.

    python bench/hostile_inputs.py [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "customer-analytics"
BUDGET_10K = 1.0
SIZES = (1_000, 4_000, 10_000, 40_000, 240_000)  # 240,000 keys: just under 5 MiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from floe_runtime.analysis import analyze, discover
    from floe_runtime.analysis.engine import check_pipeline_text

    exe = Path(sys.executable).with_name("floe-runtime")
    floe = [str(exe)] if exe.exists() else [sys.executable, "-m", "floe_runtime"]
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "ca"
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target", ".floe"))
        base = (project / "floe.yaml").read_text()
        print(f"{'unknown keys':>12} {'size':>9} {'engine':>9} {'validate':>9} {'listed':>7}")
        for count in SIZES:
            text = base + "".join(f"unknown_key_{i}: 1\n" for i in range(count))
            (project / "floe.yaml").write_text(text)
            engine = []
            for _ in range(args.runs):
                check_pipeline_text.cache_clear()  # measure the work, not the memo
                started = time.perf_counter()
                analysis = analyze(discover(project, "dev"))
                engine.append(time.perf_counter() - started)
            listed = len(analysis.by_file()[str(project / "floe.yaml")])
            walls = []
            for _ in range(args.runs):
                started = time.perf_counter()
                subprocess.run(
                    [*floe, "validate", str(project), "--env", "dev"], capture_output=True
                )
                walls.append(time.perf_counter() - started)
            wall = statistics.median(walls)
            verdict = ""
            if count == 10_000:
                verdict = f"  budget < {BUDGET_10K:.1f} s: " + (
                    "ok" if wall < BUDGET_10K else "OVER"
                )
            print(
                f"{count:>12,} {len(text) / 1048576:>7.2f}MB {statistics.median(engine):>7.3f} s "
                f"{wall:>7.3f} s {listed:>7}{verdict}"
            )


if __name__ == "__main__":
    main()
