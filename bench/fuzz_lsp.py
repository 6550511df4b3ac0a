"""Long fuzz run of the language server: the fuzz suite's cases, ≥ 10,000 requests.

One live `python -m floe_lsp` over stdio, driven with the strategies of
tests/floe_lsp/fuzz_client.py (hostile edits of floe.yaml and platform.yaml interleaved
with every request kind, malformed params, damaged frames). Prints the cases (documents),
requests, unanswered requests, internal errors, other faults, final-diagnostics
disagreements, p50/p99 latency and the server's RSS growth.

    .venv/bin/python bench/fuzz_lsp.py [--requests 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.floe_lsp.fuzz_client import (  # noqa: E402
    DOCS,
    INTERNAL_ERROR,
    FuzzSession,
    strategies,
)

EXAMPLE = REPO / "examples" / "customer-analytics"


def rss_kib(pid: int) -> int:
    """VmRSS of a process, KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from hypothesis import HealthCheck, given, seed, settings

    base = Path(tempfile.mkdtemp(prefix="floe-fuzz-"))
    ignore = shutil.ignore_patterns("target", ".floe", "logs", "*.duckdb")
    shutil.copytree(EXAMPLE, base / "served", ignore=ignore)
    shutil.copytree(EXAMPLE, base / "engine", ignore=ignore)
    session = FuzzSession(base / "served", base / "engine")
    latencies: list[float] = []
    counts = {"cases": 0, "unanswered": 0, "internal": 0, "deaths": 0}
    faults: list[str] = []
    disagreements: list[str] = []
    rss = [rss_kib(session.server.proc.pid)]

    class Done(Exception):
        pass

    @seed(args.seed)
    @settings(
        max_examples=10**9,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(ops=strategies())
    def case(ops: list[tuple[object, ...]]) -> None:
        if len(latencies) + counts["unanswered"] >= args.requests:
            raise Done
        result = session.run(ops)  # type: ignore[arg-type]
        counts["cases"] += 1
        for o in result.outcomes:
            if o.latency is None:
                counts["unanswered"] += 1
            else:
                latencies.append(o.latency)
            if o.error == INTERNAL_ERROR:
                counts["internal"] += 1
        published = tuple(f"{d}: published" for d in DOCS)
        for fault in result.faults:
            (disagreements if fault.startswith(published) else faults).append(fault)
        if not session.server.alive():
            counts["deaths"] += 1
            session.restart()
            rss[:] = [rss_kib(session.server.proc.pid)]  # growth is measured per server
        if counts["cases"] == 20:  # the engine, pydantic and tree-sitter are loaded by now
            rss.append(rss_kib(session.server.proc.pid))
        if counts["cases"] % 250 == 0:
            print(
                f"  … {counts['cases']} cases, {len(latencies)} requests, "
                f"server RSS {rss_kib(session.server.proc.pid) / 1024:.1f} MiB",
                file=sys.stderr,
            )

    started = time.monotonic()
    end_rss = rss[0]
    try:
        case()
    except Done:
        pass
    finally:
        if session.server.alive():
            end_rss = rss_kib(session.server.proc.pid)
        session.close()
    seconds = time.monotonic() - started
    ordered = sorted(latencies)
    p99 = ordered[int(len(ordered) * 0.99) - 1] if ordered else 0.0
    print(f"cases (document pairs):    {counts['cases']}")
    print(f"requests answered:         {len(latencies)}")
    print(f"unanswered (> 2 s):        {counts['unanswered']}")
    print(f"internal errors (-32603):  {counts['internal']}")
    print(f"server deaths:             {counts['deaths']}")
    print(f"other faults:              {len(faults)}")
    print(f"diagnostics disagreements: {len(disagreements)}")
    if ordered:
        print(
            f"latency p50 / p99 / max:   {statistics.median(ordered) * 1000:.1f} / "
            f"{p99 * 1000:.1f} / {ordered[-1] * 1000:.1f} ms"
        )
    print(
        f"server RSS start → end:    {rss[0] / 1024:.1f} → {end_rss / 1024:.1f} MiB "
        f"(+{(end_rss - rss[0]) / 1024:.1f})"
    )
    if len(rss) > 1:
        print(
            f"  after 20 cases (warm):   {rss[1] / 1024:.1f} MiB, growth since "
            f"+{(end_rss - rss[1]) / 1024:.1f} MiB"
        )
    print(f"wall time:                 {seconds:.0f} s")
    for fault in faults[:5]:
        print("fault:", fault[:300])
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
