"""CLI start-up benchmark (DESIGN §7): `floe-runtime --help` < 0.3 s, `validate` < 0.5 s.

Prints the median wall time of each command over N runs, beside `python -c pass`
(the floor every Python CLI pays), as seconds and as a ratio to that floor.

    python bench/cli_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "customer-analytics"
BUDGETS = {"--help": 0.3, "validate": 0.5}


def wall(command: list[str], runs: int) -> float:
    """Median wall time of `command` over `runs` runs (after one warm-up run)."""
    subprocess.run(command, capture_output=True, check=False)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("floe-runtime")
    floe = [str(exe)] if exe.exists() else [sys.executable, "-m", "floe_runtime"]
    floor = wall([sys.executable, "-c", "pass"], args.runs)
    rows = [
        ("python -c pass", floor, None),
        ("floe-runtime --help", wall([*floe, "--help"], args.runs), BUDGETS["--help"]),
        (
            "floe-runtime validate examples/customer-analytics",
            wall([*floe, "validate", str(EXAMPLE)], args.runs),
            BUDGETS["validate"],
        ),
    ]
    print(f"median of {args.runs} runs on {sys.platform}, python {sys.version.split()[0]}")
    for name, seconds, budget in rows:
        ratio = seconds / floor if floor else float("nan")
        verdict = "" if budget is None else ("  ok" if seconds < budget else "  OVER BUDGET")
        limit = "" if budget is None else f"  budget < {budget:.1f} s"
        print(f"{name:<52} {seconds:7.3f} s  {ratio:5.1f}x python{limit}{verdict}")


if __name__ == "__main__":
    main()
