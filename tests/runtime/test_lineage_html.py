"""Reading lineage.jsonl for the page: a damaged line is skipped and named, never a traceback."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from floe_runtime.analysis import discover
from floe_runtime.compiler import compile_project
from floe_runtime.runtime.lineage import LineageEmitter, RunState
from floe_runtime.runtime.lineage_html import load_events, read_events
from floe_runtime.runtime.secrets import Secrets
from tests.runtime.conftest import copy_project, floe


def _emitted_run(tmp_path: Path) -> tuple[Path, str]:
    """The shop project with one real pipeline run (START, COMPLETE) in its lineage file."""
    project = copy_project("shop", tmp_path / "shop")
    artifacts = compile_project(discover(project))
    run_id = str(uuid.uuid4())
    emitter = LineageEmitter(artifacts, Secrets({}), run_id)
    emitter.pipeline_event(RunState.START)
    emitter.pipeline_event(RunState.COMPLETE)
    return project, run_id


def _damage(path: Path) -> None:
    """A bad byte, a line cut short by a kill, JSON that is no run event, a non-event."""
    good = path.read_bytes().splitlines()
    path.write_bytes(
        b"\n".join(
            [
                good[0],
                b'{"eventType": "START", "run": {"runId": "\xff\xfe"}}',
                b'{"eventType": "COMPLETE", "run": {"runI',
                good[1],
                b'{"run": {"runId": 7, "facets": []}}',
                b"[1, 2]",
                b'{"dataset": {"namespace": "n", "name": "static lineage, no run"}}',
            ]
        )
        + b"\n"
    )


def test_damaged_lines_are_skipped_and_named_once(tmp_path: Path) -> None:
    project, run_id = _emitted_run(tmp_path)
    path = project / ".floe" / "lineage.jsonl"
    _damage(path)
    said: list[str] = []
    events = load_events(path, warn=said.append)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert {e["run"]["runId"] for e in events} == {run_id}
    assert said == [
        f"warning: {path}: skipped 4 lines that are not JSON lineage events: 2, 3, 5, 6"
    ]
    # One bad line is named on its own.
    path.write_bytes(path.read_bytes().split(b"\n", 1)[0] + b"\n\x80\n")
    said.clear()
    assert len(read_events(path, warn=said.append)) == 1
    assert said == [f"warning: {path}: skipped line 2: not a JSON lineage event"]


def test_the_lineage_command_renders_a_file_with_a_bad_byte(tmp_path: Path) -> None:
    project, run_id = _emitted_run(tmp_path)
    path = project / ".floe" / "lineage.jsonl"
    _damage(path)
    result = floe("lineage", str(project), "--no-open")
    assert result.code == 0, result.output
    assert "Traceback" not in result.output
    assert result.stderr.splitlines() == [
        f"warning: {path}: skipped 4 lines that are not JSON lineage events: 2, 3, 5, 6"
    ]
    page = (project / "target" / "floe" / "lineage.html").read_text()
    assert run_id in page or json.dumps(run_id) in page
