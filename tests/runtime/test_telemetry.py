"""The traces `file` exporter writes OTLP JSON: one `ExportTraceServiceRequest` per line, as the
OpenTelemetry Collector's `otlpjsonfile` receiver reads it. Real SDK and proto package, no mocks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from floe_runtime import __version__
from floe_runtime.analysis import discover
from floe_runtime.compiler import compile_project
from floe_runtime.config.platform import FileTraces
from floe_runtime.runtime.secrets import Secrets
from floe_runtime.runtime.telemetry import OtlpJsonFileSpanExporter, create_telemetry
from tests.runtime.conftest import copy_example
from tests.runtime.otlp import attributes, load_spans, parse_request

HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")


@pytest.fixture
def no_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
    ):
        monkeypatch.delenv(name, raising=False)


def _raw_spans(line: str) -> list[dict[str, Any]]:
    request = json.loads(line)
    return [
        span
        for resource_spans in request["resourceSpans"]
        for scope_spans in resource_spans["scopeSpans"]
        for span in scope_spans["spans"]
    ]


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


def test_file_traces_are_otlp_json_the_proto_package_decodes(
    tmp_path: Path, no_otel_env: None
) -> None:
    base = compile_project(discover(copy_example(tmp_path / "ca"), "dev"))
    path = tmp_path / "out" / "nested" / "traces.jsonl"  # parent dirs do not exist yet
    obs = base.observability.model_copy(
        update={"traces": FileTraces(exporter="file", path=str(path))}
    )
    artifacts = base.model_copy(update={"observability": obs})
    telemetry = create_telemetry(artifacts, Secrets({}))
    assert telemetry.description == str(path)

    tracer = telemetry.tracer
    with (
        tracer.start_as_current_span("floe.run") as parent,
        tracer.start_as_current_span(
            "dbt.model.orders", record_exception=False, set_status_on_exception=False
        ) as child,
    ):
        child.set_attributes({"dbt.unique_id": "model.x.orders", "floe.rows": 60, "ok": False})
        try:
            raise ValueError("division by zero in orders")
        except ValueError as exc:
            child.record_exception(exc)
        child.set_status(Status(StatusCode.ERROR, "orders failed: see dbt log"))
    telemetry.shutdown()
    parent_ctx, child_ctx = parent.get_span_context(), child.get_span_context()

    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2  # SimpleSpanProcessor: one export (one request) per ended span

    # The raw JSON: OTLP/JSON's hex ids, lowerCamelCase names, enums as ints, int64 as strings.
    raw_child, raw_parent = _raw_spans(lines[0])[0], _raw_spans(lines[1])[0]
    assert raw_child["traceId"] == format(child_ctx.trace_id, "032x")
    assert HEX32.fullmatch(raw_child["traceId"]) and HEX16.fullmatch(raw_child["spanId"])
    assert raw_child["parentSpanId"] == raw_parent["spanId"] == format(parent_ctx.span_id, "016x")
    assert "parentSpanId" not in raw_parent
    assert raw_child["status"] == {"code": 2, "message": "orders failed: see dbt log"}
    assert raw_child["kind"] == 1  # SPAN_KIND_INTERNAL
    assert re.fullmatch(r"[0-9]+", raw_child["startTimeUnixNano"])
    assert re.fullmatch(r"[0-9]+", raw_child["endTimeUnixNano"])
    keys = _keys([json.loads(line) for line in lines])
    assert {"resourceSpans", "scopeSpans", "startTimeUnixNano", "traceId", "spanId"} <= keys
    assert not [k for k in keys if "_" in k]

    # Decoded with the proto package: the SDK's ids, parentage, attributes, status, event, resource.
    [child_rs], [parent_rs] = (parse_request(line).resource_spans for line in lines)
    [child_ss] = child_rs.scope_spans
    assert (child_ss.scope.name, child_ss.scope.version) == ("floe_runtime", __version__)
    [pb_child] = child_ss.spans
    [pb_parent] = parent_rs.scope_spans[0].spans
    assert len(pb_child.trace_id) == 16 and len(pb_child.span_id) == 8
    assert int.from_bytes(pb_child.trace_id, "big") == child_ctx.trace_id
    assert int.from_bytes(pb_child.span_id, "big") == child_ctx.span_id
    assert int.from_bytes(pb_parent.span_id, "big") == parent_ctx.span_id
    assert pb_parent.trace_id == pb_child.trace_id
    assert pb_child.parent_span_id == pb_parent.span_id
    assert pb_parent.parent_span_id == b""
    assert attributes(pb_child.attributes) == {
        "dbt.unique_id": "model.x.orders",
        "floe.rows": 60,
        "ok": False,
    }
    assert pb_child.status.code == 2
    assert pb_child.status.message == "orders failed: see dbt log"
    [event] = pb_child.events
    assert event.name == "exception"
    event_attrs = attributes(event.attributes)
    assert event_attrs["exception.type"] == "ValueError"
    assert event_attrs["exception.message"] == "division by zero in orders"
    assert "Traceback" in event_attrs["exception.stacktrace"]
    resource = attributes(child_rs.resource.attributes)
    assert resource["service.name"] == "floe-runtime"
    assert resource["floe.pipeline"] == artifacts.pipeline.name
    assert resource["floe.environment"] == "dev"

    # The test helper other tests use sees the same thing.
    flat = {s["name"]: s for s in load_spans(path)}
    assert flat["dbt.model.orders"]["parent_span_id"] == flat["floe.run"]["span_id"]
    assert flat["floe.run"]["parent_span_id"] is None
    assert flat["dbt.model.orders"]["trace_id"] == format(parent_ctx.trace_id, "032x")
    assert flat["dbt.model.orders"]["status_code"] == 2
    assert flat["dbt.model.orders"]["status_message"] == "orders failed: see dbt log"
    assert flat["dbt.model.orders"]["attributes"]["floe.rows"] == 60
    assert [e["name"] for e in flat["dbt.model.orders"]["events"]] == ["exception"]
    assert flat["floe.run"]["resource"]["service.name"] == "floe-runtime"


def _finished_spans(*names: str) -> list[ReadableSpan]:
    """Spans ended by a real SDK provider (one root per name), kept in memory."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "append-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    for name in names:
        with tracer.start_as_current_span(name):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_each_export_appends_one_request_line(tmp_path: Path) -> None:
    a, b, c = _finished_spans("a", "b", "c")
    path = tmp_path / "traces.jsonl"
    exporter = OtlpJsonFileSpanExporter(path)
    exporter.export([a])
    exporter.export([b, c])
    assert [len(_raw_spans(line)) for line in path.read_text().splitlines()] == [1, 2]
    # A later run's exporter on the same file appends, it does not truncate.
    OtlpJsonFileSpanExporter(path).export([a])
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    assert [s["name"] for s in load_spans(path)] == ["a", "b", "c", "a"]
    assert {s["resource"]["service.name"] for s in load_spans(path)} == {"append-test"}
