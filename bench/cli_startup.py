"""CLI start-up benchmark (DESIGN §7): `floe-runtime --help` < 0.3 s, `validate` < 0.5 s.

Prints the median wall time of each command over N runs, beside `python -c pass`
(the floor every Python CLI pays), as seconds and as a ratio to that floor.

    python bench/cli_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "customer-analytics"
BUDGETS = {"--help": 0.3, "validate": 0.5}


def measure(command: list[str], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of `command` over `runs` runs.

    CPU time is printed too because it hardly moves when other work shares the
    machine, while wall time does.
    """
    subprocess.run(command, capture_output=True, check=False)  # warm the file cache
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("floe-runtime")
    floe = [str(exe)] if exe.exists() else [sys.executable, "-m", "floe_runtime"]
    floor, floor_cpu = measure([sys.executable, "-c", "pass"], args.runs)
    rows = [
        ("python -c pass", (floor, floor_cpu), None),
        ("floe-runtime --help", measure([*floe, "--help"], args.runs), BUDGETS["--help"]),
        (
            "floe-runtime validate examples/customer-analytics",
            measure([*floe, "validate", str(EXAMPLE)], args.runs),
            BUDGETS["validate"],
        ),
    ]
    load = os.getloadavg()[0]
    print(
        f"median of {args.runs} runs; python {sys.version.split()[0]}; "
        f"{os.cpu_count()} cores; load average {load:.2f}"
    )
    print(f"{'command':<52} {'wall':>9} {'cpu':>9}  {'vs python':>9}")
    for name, (seconds, cpu), budget in rows:
        ratio = seconds / floor if floor else float("nan")
        verdict = "" if budget is None else ("  ok" if seconds < budget else "  OVER BUDGET")
        limit = "" if budget is None else f"  budget < {budget:.1f} s wall"
        print(f"{name:<52} {seconds:7.3f} s {cpu:7.3f} s  {ratio:8.1f}x{limit}{verdict}")


if __name__ == "__main__":
    main()
