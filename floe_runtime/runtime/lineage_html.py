"""A run's OpenLineage events as one self-contained HTML page (inline SVG, CSS and JS).

No network fetches: the layout is computed here; the page fits it to the window and adds
zoom, pan, click-to-highlight, focus and, inside VS Code, opening a model's .sql file.
"""

from __future__ import annotations

import html
import json
import sys
from collections import defaultdict
from collections.abc import Callable
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
    path: Path,
    environment: str | None = None,
    pipeline: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """The run events of an NDJSON file, only those of `environment` and `pipeline` when named.

    Both are read from floe's own run facet, so one file shared by several environments
    (or pipelines) never mixes them up; an event without that facet belongs to none.
    A line that is not a JSON event (bytes that are not UTF-8, a line cut short when a
    run was killed) is skipped, and `warn` (default: standard error) told which, once.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LineageError(f"cannot read {path}: {exc.strerror or exc}") from None
    events: list[dict[str, Any]] = []
    bad: list[int] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            event = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            bad.append(number)
            continue
        if isinstance(event, dict) and "run" not in event:
            continue  # a dataset or job event (OpenLineage's static lineage): no run to draw
        if not _is_run_event(event):
            bad.append(number)
            continue
        floe = _floe_facet(event)
        if environment is not None and floe.get("environment") != environment:
            continue
        if pipeline is not None and floe.get("pipeline") != pipeline:
            continue
        events.append(event)
    if len(bad) == 1:
        (warn or _warn)(f"warning: {path}: skipped line {bad[0]}: not a JSON lineage event")
    elif bad:
        lines = ", ".join(map(str, bad[:10])) + (f" and {len(bad) - 10} more" * (len(bad) > 10))
        (warn or _warn)(
            f"warning: {path}: skipped {len(bad)} lines that are not JSON lineage events: {lines}"
        )
    return events


def _is_run_event(event: Any) -> bool:
    """Whether a parsed line has the shape of a run event (what the page reads of it)."""
    if not isinstance(event, dict):
        return False
    run, job = event.get("run"), event.get("job", {})
    return (
        isinstance(run, dict)
        and isinstance(run.get("runId"), str)
        and isinstance(run.get("facets", {}), dict)
        and isinstance(job, dict)
        and isinstance(job.get("facets", {}), dict)
    )


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def load_events(
    path: Path,
    run_id: str | None = None,
    environment: str | None = None,
    pipeline: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """The events of one pipeline run (`run_id`, or the latest) from an NDJSON file.

    With `environment` (and `pipeline`), only that environment's runs count: the latest
    run is the latest of that environment, never one of another environment sharing the file.
    """
    events = read_events(path, environment, pipeline, warn)
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


def _ds_key(ds: dict[str, Any]) -> str:
    return f"{ds.get('namespace')}:{ds.get('name')}"


def _seconds(start: str | None, end: str | None) -> float | None:
    from datetime import datetime

    try:
        if start and end:
            return max(
                0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
            )
    except ValueError:
        return None
    return None


def _iceberg_table(ds: dict[str, Any]) -> str | None:
    facets = ds.get("facets") or {}
    catalog = facets.get("catalog")
    if not isinstance(catalog, dict) or catalog.get("framework") != "iceberg":
        return None
    links = (facets.get("symlinks") or {}).get("identifiers") or []
    for link in links:
        if isinstance(link, dict) and link.get("name"):
            return str(link["name"])
    return str(ds.get("name"))


def build_graph(events: list[dict[str, Any]]) -> dict[str, Any]:
    """One node per job (model, seed, snapshot) with what it wrote, and edges between them.

    A job's output datasets (the compute relation and its Iceberg table) are folded into
    the job's node: its Iceberg table, row count and columns. Inputs no job of the run
    produced are drawn as source nodes. TEST runs (jobs ending in `.test`) are not drawn:
    their `dataQualityAssertions` become badges on the node of the dataset they tested.
    """
    jobs: dict[str, dict[str, Any]] = {}
    producer: dict[str, str] = {}  # dataset key -> job id
    inputs_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    tests: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (event, dataset)
    pipeline: dict[str, Any] = {}
    started: dict[str, str] = {}

    for event in events:
        job = event.get("job", {})
        run = event.get("run", {})
        facets = run.get("facets", {})
        if _parent_run_id(event) is None:
            pipeline.setdefault("started", event.get("eventTime"))
            pipeline.update(
                name=job.get("name"),
                namespace=job.get("namespace"),
                state=event.get("eventType"),
                runId=run.get("runId"),
                eventTime=event.get("eventTime"),
                facets=facets,
                duration=_seconds(pipeline.get("started"), event.get("eventTime")),
            )
            continue
        if _job_type(event) == "TEST" or str(job.get("name", "")).endswith(".test"):
            for ds in event.get("inputs") or []:
                tests.append((event, ds))
            continue
        job_id = f"job:{job.get('namespace')}:{job.get('name')}"
        full = str(job.get("name") or "")
        node = jobs.setdefault(
            job_id,
            {
                "id": job_id,
                "kind": "job",
                "name": full.rsplit(".", 1)[-1],
                "fullName": full,
                "namespace": job.get("namespace"),
                "facets": {},
                "outputs": [],
                "tests": [],
                "rows": None,
                "table": None,
                "columns": [],
            },
        )
        run_id = str(run.get("runId"))
        started.setdefault(run_id, str(event.get("eventTime") or ""))
        node.update(
            state=event.get("eventType"),
            runId=run_id,
            eventTime=event.get("eventTime"),
            duration=_seconds(started[run_id], event.get("eventTime")),
        )
        node["facets"].update(job.get("facets") or {})
        node["facets"].update(facets)
        node["jobType"] = _job_type(event) or "JOB"
        source = (job.get("facets") or {}).get("sourceCodeLocation")
        if isinstance(source, dict) and source.get("path"):
            node["sourcePath"] = str(source["path"])
        for ds in event.get("inputs") or []:
            if _ds_key(ds) not in {_ds_key(d) for d in inputs_of[job_id]}:
                inputs_of[job_id].append(ds)
        for ds in event.get("outputs") or []:
            producer[_ds_key(ds)] = job_id
            if _ds_key(ds) not in node["outputs"]:
                node["outputs"].append(_ds_key(ds))
            table = _iceberg_table(ds)
            if table:
                node["table"] = table
            rows = ((ds.get("outputFacets") or {}).get("outputStatistics") or {}).get("rowCount")
            if rows is not None:
                node["rows"] = rows
            fields = ((ds.get("facets") or {}).get("schema") or {}).get("fields")
            if fields and not table:
                node["columns"] = [{"name": f.get("name"), "type": f.get("type")} for f in fields]
    for node in jobs.values():
        floe = node["facets"].get("floe")
        recorded = floe.get("materialization") if isinstance(floe, dict) else None
        if recorded:
            node["materialization"] = str(recorded)
        elif node["jobType"] == "MODEL":
            # Events written before floe recorded it: a model published to Iceberg is a
            # table (or incremental); one that is not is a view.
            node["materialization"] = "table" if node["table"] else "view"
        else:
            node["materialization"] = node["jobType"].lower()

    nodes: dict[str, dict[str, Any]] = dict(jobs)
    edges: set[tuple[str, str]] = set()
    for job_id, inputs in inputs_of.items():
        for ds in inputs:
            key = _ds_key(ds)
            upstream = producer.get(key)
            if upstream is None:
                upstream = f"src:{key}"
                nodes.setdefault(
                    upstream,
                    {
                        "id": upstream,
                        "kind": "source",
                        "name": str(ds.get("name") or "").rsplit(".", 1)[-1],
                        "fullName": ds.get("name"),
                        "namespace": ds.get("namespace"),
                        "facets": ds.get("facets") or {},
                        "tests": [],
                        "rows": None,
                        "table": None,
                        "columns": [],
                    },
                )
            if upstream != job_id:
                edges.add((upstream, job_id))
    for event, ds in tests:
        key = _ds_key(ds)
        target = producer.get(key) or (f"src:{key}" if f"src:{key}" in nodes else None)
        assertions = ((ds.get("inputFacets") or {}).get("dataQualityAssertions") or {}).get(
            "assertions"
        )
        if target is None or not isinstance(assertions, list):
            continue
        kept = {t.get("name") or t.get("assertion"): t for t in nodes[target]["tests"]}
        for a in assertions:
            if isinstance(a, dict):
                kept[a.get("name") or a.get("assertion")] = {
                    "name": a.get("name") or a.get("assertion"),
                    "assertion": a.get("assertion"),
                    "column": a.get("column"),
                    "success": bool(a.get("success")),
                    "severity": a.get("severity"),
                    "actual": a.get("actual"),
                }
        nodes[target]["tests"] = list(kept.values())
        error = (event.get("run", {}).get("facets", {}).get("errorMessage") or {}).get("message")
        if error:
            nodes[target]["testError"] = error
    return {
        "pipeline": pipeline,
        "nodes": list(nodes.values()),
        "edges": [list(e) for e in sorted(edges)],
    }


def _layout(graph: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Layered layout: column = longest path from a source; rows ordered to follow their parents."""
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
    order: dict[str, float] = {}
    tallest = max((len(items) for items in columns.values()), default=1)
    for r in sorted(columns):
        items = columns[r]
        # Barycentre of the parents' rows keeps edges short; the name breaks ties.
        items.sort(
            key=lambda n: (
                sum(order.get(p, 0) for p in preds[n["id"]]) / max(1, len(preds[n["id"]])),
                n["name"] or "",
            )
        )
        offset = (tallest - len(items)) * (_H + _GAP_Y) / 2
        for i, n in enumerate(items):
            order[n["id"]] = i + offset / (_H + _GAP_Y)
            positions[n["id"]] = (r * (_W + _GAP_X), offset + i * (_H + _GAP_Y))
    return positions


_COLOURS = {
    "COMPLETE": "#2e7d32",
    "FAIL": "#c62828",
    "START": "#1565c0",
    "RUNNING": "#1565c0",
    "ABORT": "#757575",
}
_W, _H, _GAP_X, _GAP_Y = 240, 92, 90, 28

_CSS = """
:root{--fg:#1f2328;--muted:#59636e;--bg:#f6f8fa;--panel:#fff;--line:#d0d7de;--hl:#ff9800}
body{font:13px system-ui,sans-serif;margin:0;display:flex;flex-direction:column;height:100vh;color:var(--fg);background:var(--bg);overflow:hidden}
header{padding:6px 12px;border-bottom:1px solid var(--line);background:var(--panel);display:flex;gap:12px;align-items:center;flex-wrap:wrap}
header button{font:inherit;padding:2px 8px;border:1px solid var(--line);border-radius:4px;background:var(--bg);cursor:pointer}
main{flex:1;display:flex;min-height:0}
#graph{flex:1;min-width:0;position:relative}
#graph svg{width:100%;height:100%;display:block;cursor:grab;user-select:none}
#graph svg.panning{cursor:grabbing}
#side{width:320px;border-left:1px solid var(--line);padding:10px 12px;overflow:auto;background:var(--panel)}
.node{cursor:pointer}.node rect.box{stroke-width:2;fill:#fff}
.node.source rect.box{stroke:#8c959f;stroke-dasharray:4 3;fill:#f6f8fa}
.node text{font-size:12px;fill:var(--fg)}.node text.title{font-weight:600;font-size:13px}
.node text.sub{fill:var(--muted);font-size:11px}
.node.selected rect.box{stroke:var(--hl)!important;stroke-width:4}
.dim{opacity:.18}.hidden{display:none}
.edge{stroke:#8c959f;stroke-width:1.6;fill:none;marker-end:url(#arrow)}
.edge.hl{stroke:var(--hl);stroke-width:2.6}
.badge{cursor:pointer}.badge rect{rx:8}.badge text{font-size:11px;fill:#fff;font-weight:600}
.badge.pass rect{fill:#2e7d32}.badge.fail rect{fill:#c62828}.badge.warn rect{fill:#b26a00}
h1{font-size:15px;margin:4px 0}h2{font-size:13px;margin:12px 0 4px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:2px 4px;text-align:left;font-size:12px}
pre{white-space:pre-wrap;font-size:11px;background:#f4f4f4;padding:6px}
.fail{color:#c62828;font-weight:600}.legend span{margin-right:10px}
.sw{display:inline-block;width:10px;height:10px;margin-right:3px;vertical-align:middle;border-radius:2px}
a.open{cursor:pointer;color:#0969da;text-decoration:underline}
@media (max-width:1000px){main{flex-direction:column}#side{width:auto;height:28%;border-left:0;border-top:1px solid var(--line)}}
"""

_JS = r"""
const data = JSON.parse(document.getElementById('lineage-data').textContent);
const byId = Object.fromEntries(data.nodes.map(n => [n.id, n]));
const svg = document.getElementById('canvas');
const world = document.getElementById('world');
const side = document.getElementById('details');
const vscode = typeof acquireVsCodeApi === 'function' ? acquireVsCodeApi() : null;
const up = {}, down = {};
data.edges.forEach(([a, b]) => { (down[a] = down[a] || []).push(b); (up[b] = up[b] || []).push(a); });
function esc(s){return String(s ?? '').replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));}
function walk(id, next, out){(next[id]||[]).forEach(n=>{if(!out.has(n)){out.add(n);walk(n,next,out);}});return out;}
let view = null, selected = null, focused = null;
function setView(v){view=v;svg.setAttribute('viewBox',`${v.x} ${v.y} ${v.w} ${v.h}`);}
function fit(ids){
  const els = [...document.querySelectorAll('.node')].filter(e=>!ids||ids.has(e.dataset.id));
  if(!els.length) return;
  let x1=Infinity,y1=Infinity,x2=-Infinity,y2=-Infinity;
  els.forEach(e=>{const b=e.getBBox();x1=Math.min(x1,b.x);y1=Math.min(y1,b.y);x2=Math.max(x2,b.x+b.width);y2=Math.max(y2,b.y+b.height);});
  const pad=24, r=svg.getBoundingClientRect();
  // Never blow a small graph up beyond 1.25x: it should read like a diagram, not a poster.
  const w=Math.max(x2-x1+2*pad, r.width/1.25), h=Math.max(y2-y1+2*pad, r.height/1.25);
  setView({x:(x1+x2)/2-w/2,y:(y1+y2)/2-h/2,w,h});
}
function zoom(f, cx, cy){
  const r = svg.getBoundingClientRect();
  const px = view.x + (cx===undefined ? .5 : (cx-r.left)/r.width)*view.w;
  const py = view.y + (cy===undefined ? .5 : (cy-r.top)/r.height)*view.h;
  setView({x:px-(px-view.x)*f,y:py-(py-view.y)*f,w:view.w*f,h:view.h*f});
}
svg.addEventListener('wheel', e=>{e.preventDefault();zoom(e.deltaY>0?1.15:1/1.15,e.clientX,e.clientY);},{passive:false});
let drag=null, moved=false;
svg.addEventListener('pointerdown', e=>{drag={x:e.clientX,y:e.clientY,v:{...view}};moved=false;svg.classList.add('panning');});
window.addEventListener('pointermove', e=>{if(!drag)return;const r=svg.getBoundingClientRect();
  const sx=view.w/r.width, sy=view.h/r.height, dx=e.clientX-drag.x, dy=e.clientY-drag.y;
  if(Math.abs(dx)+Math.abs(dy)>3) moved=true;
  setView({...drag.v,x:drag.v.x-dx*Math.max(sx,sy),y:drag.v.y-dy*Math.max(sx,sy),w:view.w,h:view.h});});
window.addEventListener('pointerup', ()=>{drag=null;svg.classList.remove('panning');});
function openSource(path){
  if(vscode) vscode.postMessage({type:'open', path});
  else window.open('file://'+path);
}
function highlight(id){
  const keep = id ? new Set([id, ...walk(id, up, new Set()), ...walk(id, down, new Set())]) : null;
  document.querySelectorAll('.node').forEach(e=>{e.classList.toggle('selected', e.dataset.id===id);
    e.classList.toggle('dim', !!keep && !keep.has(e.dataset.id));});
  document.querySelectorAll('.edge').forEach(e=>{const on=!!keep&&keep.has(e.dataset.from)&&keep.has(e.dataset.to);
    e.classList.toggle('hl', on); e.classList.toggle('dim', !!keep && !on);});
}
function focusHop(id){
  focused = id;
  const keep = id ? new Set([id, ...(up[id]||[]), ...(down[id]||[])]) : null;
  document.querySelectorAll('.node').forEach(e=>e.classList.toggle('hidden', !!keep && !keep.has(e.dataset.id)));
  document.querySelectorAll('.edge').forEach(e=>e.classList.toggle('hidden', !!keep && !(keep.has(e.dataset.from)&&keep.has(e.dataset.to))));
  document.getElementById('unfocus').classList.toggle('hidden', !id);
  fit(keep);
}
function testsHtml(n, only){
  const ts = (n.tests||[]).filter(t=>!only || (only==='fail' ? !t.success : t.success));
  if(!ts.length) return '';
  return '<h2>Tests</h2><table><tr><th>test</th><th>column</th><th>result</th></tr>' + ts.map(t=>
    '<tr><td>'+esc(t.name)+'</td><td>'+esc(t.column||'')+'</td><td>'+(t.success?'pass':'<span class="fail">'+(t.severity==='warn'?'warn':'fail')+'</span>'+(t.actual?' ('+esc(t.actual)+' rows)':''))+'</td></tr>').join('')+'</table>'
    + (n.testError && ts.some(t=>!t.success) ? '<pre class="fail">'+esc(n.testError)+'</pre>' : '');
}
function show(id, only){
  selected = id; highlight(id);
  const n = byId[id];
  let h = '<h1>'+esc(n.name)+'</h1><div>'+esc(n.kind==='source'?'source':n.materialization)+' · '+esc(n.fullName)+'</div>';
  if (n.state) h += '<div>state: <b>'+esc(n.state)+'</b>'+(n.duration!=null?' · '+n.duration.toFixed(1)+' s':'')+'</div>';
  if (n.table) h += '<div>Iceberg table: <b>'+esc(n.table)+'</b></div>';
  if (n.rows != null) h += '<div>rows: <b>'+esc(n.rows)+'</b></div>';
  if (n.sourcePath) h += '<div><a class="open" id="open-sql">Open '+esc(n.sourcePath.split('/').pop())+'</a></div>';
  h += '<div style="margin-top:6px"><button id="focus-one">Focus one hop</button></div>';
  h += testsHtml(n, only);
  if (n.columns && n.columns.length) h += '<h2>Columns</h2><table>'+n.columns.map(c=>'<tr><td>'+esc(c.name)+'</td><td>'+esc(c.type||'')+'</td></tr>').join('')+'</table>';
  const sql = n.facets && n.facets.sql;
  if (sql && sql.query) h += '<h2>SQL</h2><pre>'+esc(sql.query)+'</pre>';
  const err = n.facets && n.facets.errorMessage;
  if (err) h += '<h2>Error</h2><pre class="fail">'+esc(err.message)+'</pre>';
  side.innerHTML = h;
  const o = document.getElementById('open-sql'); if (o) o.onclick = () => openSource(n.sourcePath);
  document.getElementById('focus-one').onclick = () => focusHop(id);
}
document.querySelectorAll('.node').forEach(e => {
  e.addEventListener('click', ev => { if (moved) return; ev.stopPropagation();
    const b = ev.target.closest('.badge'); show(e.dataset.id, b ? b.dataset.kind : undefined); });
  e.addEventListener('dblclick', ev => { ev.stopPropagation(); const n = byId[e.dataset.id]; if (n.sourcePath) openSource(n.sourcePath); });
});
svg.addEventListener('click', () => { if (!moved && selected) { selected = null; highlight(null); } });
document.getElementById('fit').onclick = () => fit(focused ? new Set([focused, ...(up[focused]||[]), ...(down[focused]||[])]) : null);
document.getElementById('zin').onclick = () => zoom(1/1.25);
document.getElementById('zout').onclick = () => zoom(1.25);
document.getElementById('unfocus').onclick = () => focusHop(null);
window.addEventListener('resize', () => { if (!drag) fit(focused ? new Set([focused, ...(up[focused]||[]), ...(down[focused]||[])]) : null); });
fit(null);
"""


def _rows(value: Any) -> str:
    if not isinstance(value, int):
        return ""
    return f"{value:,} rows" if value != 1 else "1 row"


def _duration(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return ""
    return f"{value:.1f} s" if value < 60 else f"{int(value // 60)} min {int(value % 60)} s"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_html(events: list[dict[str, Any]], title: str = "lineage") -> str:
    """The page for one run's events: fits the window, zooms and pans, no network."""
    graph = build_graph(events)
    pos = _layout(graph)
    parts: list[str] = []
    for a, b in graph["edges"]:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        sx, sy, ex, ey = x1 + _W, y1 + _H / 2, x2, y2 + _H / 2
        mid = (sx + ex) / 2
        parts.append(
            f'<path class="edge" data-from="{html.escape(a)}" data-to="{html.escape(b)}" '
            f'd="M{sx},{sy} C{mid},{sy} {mid},{ey} {ex - 4},{ey}"/>'
        )
    for n in graph["nodes"]:
        x, y = pos[n["id"]]
        kind = n["kind"]
        state = n.get("state") or ""
        stroke = _COLOURS.get(state, "#555") if kind == "job" else "#8c959f"
        label = str(n["name"] or "")
        if kind == "job":
            sub = " · ".join(
                s
                for s in (
                    str(n.get("materialization") or ""),
                    state.lower(),
                    _duration(n.get("duration")),
                )
                if s
            )
            line3 = " · ".join(
                s for s in (f"❄ {n['table']}" if n.get("table") else "", _rows(n.get("rows"))) if s
            )
        else:
            sub = "source · " + str(n.get("namespace") or "").split("://")[0]
            line3 = _short(str(n.get("fullName") or ""), 34)
        badges = []
        tests = n.get("tests") or []
        passed = sum(1 for t in tests if t["success"])
        failed = [t for t in tests if not t["success"]]
        bx = x + 10
        for cls, text, count in (("pass", "✓", passed), ("fail", "✗", len(failed))):
            if not count:
                continue
            if cls == "fail" and all(t.get("severity") == "warn" for t in failed):
                cls = "warn"
            label_text = f"{text} {count} {'test' if count == 1 else 'tests'}"
            w = 14 + 7 * len(label_text)
            badges.append(
                f'<g class="badge {cls}" data-kind="{"pass" if cls == "pass" else "fail"}">'
                f"<title>{html.escape(', '.join(t['name'] or '' for t in (failed if cls != 'pass' else [t for t in tests if t['success']])))}</title>"
                f'<rect x="{bx}" y="{y + _H - 24}" width="{w}" height="17" rx="8"/>'
                f'<text x="{bx + 7}" y="{y + _H - 11}">{html.escape(label_text)}</text></g>'
            )
            bx += w + 6
        parts.append(
            f'<g class="node {kind}" data-id="{html.escape(n["id"])}" '
            f'data-name="{html.escape(label)}" data-full-name="{html.escape(str(n.get("fullName") or ""))}" '
            f'data-state="{html.escape(state)}" data-tests-failed="{len(failed)}">'
            f"<title>{html.escape(str(n.get('fullName') or label))}</title>"
            f'<rect class="box" x="{x}" y="{y}" width="{_W}" height="{_H}" rx="8" stroke="{stroke}"/>'
            f'<rect x="{x}" y="{y}" width="6" height="{_H}" rx="3" fill="{stroke}"/>'
            f'<text class="title" x="{x + 14}" y="{y + 20}">{html.escape(_short(label, 30))}</text>'
            f'<text class="sub" x="{x + 14}" y="{y + 37}">{html.escape(_short(sub, 38))}</text>'
            f'<text class="sub" x="{x + 14}" y="{y + 54}">{html.escape(_short(line3, 38))}</text>'
            f"{''.join(badges)}</g>"
        )
    pipeline = graph["pipeline"]
    state = pipeline.get("state") or "?"
    jobs = [n for n in graph["nodes"] if n["kind"] == "job"]
    # A test of two relations (a singular test over two models) shows on both, counted once.
    unique = {
        (t.get("name") or t.get("assertion"), t.get("column")): t
        for n in graph["nodes"]
        for t in n.get("tests") or []
    }
    tests = list(unique.values())
    failures = sum(1 for t in tests if not t["success"])
    summary = f"{len(jobs)} jobs · {len(tests) - failures} tests passed" + (
        f", {failures} failed" if failures else ""
    )
    legend = "".join(
        f'<span><i class="sw" style="background:{c}"></i>{s.lower()}</span>'
        for s, c in _COLOURS.items()
        if s not in ("RUNNING", "START")
    )
    payload = json.dumps(graph).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · lineage</title><style>{_CSS}</style></head>
<body><header><b>{html.escape(title)}</b>
<span>run {html.escape(str(pipeline.get("runId", ""))[:8])} · <span id="run-state" style="color:{_COLOURS.get(state, "#555")}">{html.escape(state)}</span>
{html.escape(" · " + _duration(pipeline.get("duration")) if pipeline.get("duration") is not None else "")}
· {html.escape(str(pipeline.get("eventTime", ""))[:19].replace("T", " "))}</span>
<span>{html.escape(summary)}</span><span class="legend">{legend}</span>
<span style="margin-left:auto"><button id="zin" title="Zoom in">+</button> <button id="zout" title="Zoom out">−</button>
<button id="fit" title="Fit to window">Fit</button> <button id="unfocus" class="hidden">Show all</button></span></header>
<main><div id="graph">
<svg id="canvas" xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7"
orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#8c959f"/></marker></defs>
<g id="world">{"".join(parts)}</g>
</svg></div>
<div id="side"><div id="details">Click a model to highlight what it reads and feeds, and to see its table,
rows, tests and SQL. Double-click opens its .sql file. Scroll to zoom, drag to pan.</div></div></main>
<script type="application/json" id="lineage-data">{payload}</script>
<script>{_JS}</script>
</body></html>
"""
