"""Hypothesis drives one live `python -m floe_lsp` over stdio with random edits and requests.

Each case reopens floe.yaml and platform/prod/platform.yaml of a copy of the example, sends
random whole-document and incremental edits (truncations, tabs, CR/CRLF and the Unicode
line breaks, deep nesting, aliases, huge scalars, combining marks, emoji, right-to-left
text, lone surrogates, NUL; ranges out of range, versions going backwards, documents never
opened) interleaved with every request the server offers at random positions, malformed
requests and a damaged frame (tests/floe_lsp/fuzz_client.py). A case passes when the server
lives, every request is answered within 2 s with a result or the error the request earned,
its log holds no traceback, and the last published diagnostics of both files are the
engine's for the texts the client holds.

FLOE_FUZZ_EXAMPLES sets the number of cases (300 by default); the run is derandomized, so
CI sees the same cases every time. bench/fuzz_lsp.py runs the same cases by the thousand.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from fuzz_client import FuzzSession, strategies
from hypothesis import HealthCheck, given, settings
from lsp_helpers import EXAMPLE

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(900)]

EXAMPLES = int(os.environ.get("FLOE_FUZZ_EXAMPLES", "300"))
IGNORE = shutil.ignore_patterns("target", ".floe", "logs")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzSession]:
    """One server for every case (documents are reopened between cases)."""
    tmp = tmp_path_factory.mktemp("fuzz")
    project = tmp / "ws" / "customer-analytics"
    engine = tmp / "engine" / "customer-analytics"
    shutil.copytree(EXAMPLE, project, ignore=IGNORE)
    shutil.copytree(EXAMPLE, engine, ignore=IGNORE)
    fuzz = FuzzSession(project, engine)
    yield fuzz
    fuzz.close()


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(ops=strategies())
def test_random_edits_and_requests(session: FuzzSession, ops: list[tuple[Any, ...]]) -> None:
    """Never dies, answers everything in time, logs no traceback, ends on the engine's diagnostics."""
    result = session.run(ops)
    if not session.server.alive():
        session.restart()  # the next case (and hypothesis's shrinking) starts from a live server
    assert not result.faults, "\n".join(result.faults)


def test_the_fuzz_suite_catches_a_wrong_final_diagnostic(session: FuzzSession) -> None:
    """The final check can fail: an engine that sees other texts disagrees with the server."""
    ops: list[tuple[Any, ...]] = [("full", 0, "next", "insert", 0, 0, "oops: 1\n")]
    result = session.run(ops)
    assert not result.faults, result.faults
    base = list(session.base)
    assert session.expected(0, base) == [], "the example itself is clean"
    texts = ["oops: 1\n" + base[0], base[1]]
    [unknown] = session.expected(0, texts)
    assert unknown[4] == "FLOE003" and unknown[:4] == (0, 0, 0, 4), unknown
