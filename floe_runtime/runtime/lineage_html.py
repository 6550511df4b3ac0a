"""A run's OpenLineage events as one self-contained HTML page (inline SVG, CSS and JS).

No network fetches: the layout is computed here, the page only adds click-to-inspect.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from pathlib import Path
from typing import Any


class LineageError(Exception):
    """The events file does not hold the requested run."""


def _parent_run_id(event: dict[str, Any]) -> str | None:
    parent = event.get("run", {}).get("facets", {}).get("parent")
    if isinstance(parent, dict):
        run = parent.get("run", {})
        return run.get("runId") if isinstance(run, dict) else None
    return None


def _floe_facet(event: dict[str, Any]) -> dict[str, Any]:
    facet = event.get("run", {}).get("facets", {}).get("floe")
    return facet if isinstance(facet, dict) else {}


def read_events(
    path: Path, environment: str | None = None, pipeline: str | None = None
) -> list[dict[str, Any]]:
    """The run events of an NDJSON file, only those of `environment` and `pipeline` when named.

    Both are read from floe's own run facet, so one file shared by several environments
    (or pipelines) never mixes them up; an event without that facet belongs to none.
    """
    events: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            raise LineageError(f"{path}:{number}: not a JSON lineage event") from None
        if not isinstance(event, dict) or not isinstance(event.get("run"), dict):
            continue
        floe = _floe_facet(event)
        if environment is not None and floe.get("environment") != environment:
            continue
        if pipeline is not None and floe.get("pipeline") != pipeline:
            continue
        events.append(event)
    return events


def load_events(
    path: Path,
    run_id: str | None = None,
    environment: str | None = None,
    pipeline: str | None = None,
) -> list[dict[str, Any]]:
    """The events of one pipeline run (`run_id`, or the latest) from an NDJSON file.

    With `environment` (and `pipeline`), only that environment's runs count: the latest
    run is the latest of that environment, never one of another environment sharing the file.
    """
    events = read_events(path, environment, pipeline)
    where = f"{path}" + (f" for environment '{environment}'" if environment else "")
    pipeline_runs = [e["run"]["runId"] for e in events if _parent_run_id(e) is None]
    if not pipeline_runs:
        raise LineageError(f"no pipeline runs in {where}")
    wanted = run_id or pipeline_runs[-1]
    if wanted not in pipeline_runs:
        raise LineageError(f"run {wanted} not found in {where}")
    return [e for e in events if e["run"]["runId"] == wanted or _parent_run_id(e) == wanted]


def _job_type(event: dict[str, Any]) -> str:
    facet = event.get("job", {}).get("facets", {}).get("jobType")
    return str(facet.get("jobType") or "") if isinstance(facet, dict) else ""


def build_graph(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Nodes (jobs and datasets) and edges of a run, with each job's final state.

    TEST runs are not drawn as jobs: their assertions (`dataQualityAssertions`) land on
    the dataset they tested, which is where a reader looks for them.
    """
    nodes: dict[str, dict[str, Any]] = {}
    edges: set[tuple[str, str]] = set()
    pipeline: dict[str, Any] = {}

    def dataset(ds: dict[str, Any]) -> str:
        ds_id = f"ds:{ds.get('namespace')}:{ds.get('name')}"
        dnode = nodes.setdefault(
            ds_id,
            {
                "id": ds_id,
                "kind": "dataset",
                "name": ds.get("name"),
                "namespace": ds.get("namespace"),
                "facets": {},
            },
        )
        for key in ("facets", "inputFacets", "outputFacets"):
            if isinstance(ds.get(key), dict):
                dnode["facets"].update(ds[key])
        return ds_id

    for event in events:
        job = event.get("job", {})
        if _parent_run_id(event) is None:
            pipeline = {
                "name": job.get("name"),
                "namespace": job.get("namespace"),
                "state": event.get("eventType"),
                "runId": event["run"]["runId"],
                "eventTime": event.get("eventTime"),
                "facets": event.get("run", {}).get("facets", {}),
            }
            continue
        if _job_type(event) == "TEST":
            for ds in event.get("inputs") or []:
                dataset(ds)
            continue
        job_id = f"job:{job.get('namespace')}:{job.get('name')}"
        node = nodes.setdefault(
            job_id,
            {
                "id": job_id,
                "kind": "job",
                "name": job.get("name"),
                "namespace": job.get("namespace"),
                "facets": {},
            },
        )
        node["state"] = event.get("eventType")
        node["runId"] = event["run"]["runId"]
        node["eventTime"] = event.get("eventTime")
        node["facets"].update(job.get("facets") or {})
        node["facets"].update(event.get("run", {}).get("facets", {}))
        for key, direction in (("inputs", "in"), ("outputs", "out")):
            for ds in event.get(key) or []:
                ds_id = dataset(ds)
                edges.add((ds_id, job_id) if direction == "in" else (job_id, ds_id))
    return {
        "pipeline": pipeline,
        "nodes": list(nodes.values()),
        "edges": [list(e) for e in sorted(edges)],
    }


def _layout(graph: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Layered layout: rank = longest path from a source; rows in order of name."""
    preds: dict[str, list[str]] = defaultdict(list)
    for a, b in graph["edges"]:
        preds[b].append(a)
    rank: dict[str, int] = {}

    def depth(node: str, seen: frozenset[str] = frozenset()) -> int:
        if node in rank:
            return rank[node]
        if node in seen:
            return 0
        value = max((depth(p, seen | {node}) + 1 for p in preds[node]), default=0)
        rank[node] = value
        return value

    for n in graph["nodes"]:
        depth(n["id"])
    columns: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for n in graph["nodes"]:
        columns[rank[n["id"]]].append(n)
    positions: dict[str, tuple[float, float]] = {}
    for r, items in columns.items():
        items.sort(key=lambda n: (n["kind"], n["name"] or ""))
        for i, n in enumerate(items):
            positions[n["id"]] = (30 + r * 230, 30 + i * 64)
    return positions


_COLOURS = {
    "COMPLETE": "#2e7d32",
    "FAIL": "#c62828",
    "START": "#1565c0",
    "RUNNING": "#1565c0",
    "ABORT": "#757575",
}
_W, _H = 200, 44

_CSS = """
body{font:14px system-ui,sans-serif;margin:0;display:flex;height:100vh;color:#222}
#graph{flex:1;overflow:auto;background:#fafafa}
#side{width:380px;border-left:1px solid #ddd;padding:12px;overflow:auto;background:#fff}
.node{cursor:pointer}.node rect{stroke-width:2}.node text{font-size:12px;pointer-events:none}
.node.selected rect{stroke:#ff9800!important;stroke-width:4}
.edge{stroke:#999;stroke-width:1.5;fill:none;marker-end:url(#arrow)}
h1{font-size:16px;margin:8px 0}h2{font-size:14px;margin:12px 0 4px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:2px 4px;
text-align:left;font-size:12px}pre{white-space:pre-wrap;font-size:11px;background:#f4f4f4;
padding:6px}.legend span{display:inline-block;margin-right:10px}
.sw{display:inline-block;width:10px;height:10px;margin-right:3px;vertical-align:middle}
"""

_JS = """
const data = JSON.parse(document.getElementById('lineage-data').textContent);
const byId = Object.fromEntries(data.nodes.map(n => [n.id, n]));
const side = document.getElementById('details');
function esc(s){return String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));}
function show(id){
  document.querySelectorAll('.node').forEach(e=>e.classList.toggle('selected', e.dataset.id===id));
  const n = byId[id]; let h = '<h1>'+esc(n.name)+'</h1><div>'+esc(n.kind)+' in '+esc(n.namespace)+'</div>';
  if (n.state) h += '<div>state: <b>'+esc(n.state)+'</b> · run '+esc(n.runId)+'</div>';
  const schema = n.facets && n.facets.schema;
  if (schema && schema.fields) {
    h += '<h2>Schema</h2><table><tr><th>column</th><th>type</th></tr>' +
      schema.fields.map(f=>'<tr><td>'+esc(f.name)+'</td><td>'+esc(f.type||'')+'</td></tr>').join('') + '</table>';
  }
  const stats = n.facets && n.facets.outputStatistics;
  if (stats && stats.rowCount !== undefined) h += '<div>rows: <b>'+esc(stats.rowCount)+'</b></div>';
  const dq = n.facets && n.facets.dataQualityAssertions;
  if (dq && dq.assertions) {
    h += '<h2>Tests</h2><table><tr><th>test</th><th>column</th><th>result</th></tr>' +
      dq.assertions.map(a=>'<tr><td>'+esc(a.name||a.assertion)+'</td><td>'+esc(a.column||'')+'</td><td>'+(a.success?'pass':'<b>fail</b>')+'</td></tr>').join('') + '</table>';
  }
  const sql = n.facets && n.facets.sql;
  if (sql && sql.query) h += '<h2>SQL</h2><pre>'+esc(sql.query)+'</pre>';
  const err = n.facets && n.facets.errorMessage;
  if (err) h += '<h2>Error</h2><pre>'+esc(err.message)+'</pre>';
  h += '<h2>Facets</h2><pre>'+esc(JSON.stringify(n.facets, null, 2))+'</pre>';
  side.innerHTML = h;
}
document.querySelectorAll('.node').forEach(e => e.addEventListener('click', () => show(e.dataset.id)));
"""


def render_html(events: list[dict[str, Any]], title: str = "lineage") -> str:
    """The page for one run's events."""
    graph = build_graph(events)
    pos = _layout(graph)
    width = max((x for x, _ in pos.values()), default=0) + _W + 80
    height = max((y for _, y in pos.values()), default=0) + _H + 80
    parts: list[str] = []
    for a, b in graph["edges"]:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        sx, sy, ex, ey = x1 + _W, y1 + _H / 2, x2, y2 + _H / 2
        mid = (sx + ex) / 2
        parts.append(f'<path class="edge" d="M{sx},{sy} C{mid},{sy} {mid},{ey} {ex - 4},{ey}"/>')
    for n in graph["nodes"]:
        x, y = pos[n["id"]]
        if n["kind"] == "job":
            stroke = _COLOURS.get(n.get("state") or "", "#555")
            fill = stroke + "22"
            rx = 4
        else:
            stroke, fill, rx = "#455a64", "#eceff1", 18
        full = n["name"] or ""
        # Jobs are `<pipeline>.<model>`: the model name is what a reader looks for.
        label = full.rsplit(".", 1)[-1] if n["kind"] == "job" else full
        short = label if len(label) <= 30 else "…" + label[-29:]
        sub = n.get("state") or (n["namespace"] or "").split("://")[0]
        parts.append(
            f'<g class="node {n["kind"]}" data-id="{html.escape(n["id"])}" '
            f'data-name="{html.escape(label)}" data-full-name="{html.escape(full)}" data-state="{html.escape(n.get("state") or "")}">'
            f"<title>{html.escape(full)}</title>"
            f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="{rx}" '
            f'fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{x + 8}" y="{y + 18}">{html.escape(short)}</text>'
            f'<text x="{x + 8}" y="{y + 34}" fill="#666">{html.escape(sub)}</text></g>'
        )
    pipeline = graph["pipeline"]
    state = pipeline.get("state") or "?"
    legend = "".join(
        f'<span><i class="sw" style="background:{c}"></i>{s}</span>'
        for s, c in _COLOURS.items()
        if s != "RUNNING"
    )
    payload = json.dumps(graph).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{html.escape(title)} · lineage</title><style>{_CSS}</style></head>
<body><div id="graph">
<div style="padding:8px 12px"><b>{html.escape(title)}</b> · run {html.escape(str(pipeline.get("runId", "")))}
· <span id="run-state" style="color:{_COLOURS.get(state, "#555")}">{html.escape(state)}</span>
· {html.escape(str(pipeline.get("eventTime", "")))} <span class="legend">{legend}</span></div>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7"
orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#999"/></marker></defs>
{"".join(parts)}
</svg></div>
<div id="side"><div id="details">Click a job or dataset to see its schema and facets.</div></div>
<script type="application/json" id="lineage-data">{payload}</script>
<script>{_JS}</script>
</body></html>
"""
