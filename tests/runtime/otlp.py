"""Reading the traces `file` exporter's output: OTLP JSON, one `ExportTraceServiceRequest` a line.

Lines are decoded with the OpenTelemetry proto package itself (so a line the Collector's
`otlpjsonfile` receiver could not read fails here too), after turning OTLP/JSON's hex ids back
into the base64 that protobuf's JSON mapping expects for bytes.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _base64_ids(message: dict[str, Any]) -> None:
    for key in _ID_FIELDS:
        if key in message:
            message[key] = base64.b64encode(bytes.fromhex(message[key])).decode("ascii")


def parse_request(line: str) -> ExportTraceServiceRequest:
    """One line of the file as the protobuf message (strict: unknown fields are errors)."""
    request = json.loads(line)
    for resource_spans in request.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                _base64_ids(span)
                for link in span.get("links", []):
                    _base64_ids(link)
    message = ExportTraceServiceRequest()
    json_format.Parse(json.dumps(request), message)
    return message


def value(any_value: AnyValue) -> Any:
    """An OTLP `AnyValue` as the Python value it carries."""
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return attributes(any_value.kvlist_value.values)
    return getattr(any_value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    """Repeated OTLP `KeyValue`s as a plain dict."""
    items: list[KeyValue] = list(pairs)
    return {kv.key: value(kv.value) for kv in items}


def load_spans(path: Path) -> list[dict[str, Any]]:
    """Every span in an OTLP JSON traces file, flattened, in file order.

    Keys: name, trace_id and span_id (lowercase hex), parent_span_id (hex, None for roots),
    attributes (plain dict), status_code (int: 0 unset, 1 ok, 2 error), status_message,
    events (list of {name, attributes}), resource (its attributes as a plain dict).
    """
    spans: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        for resource_spans in parse_request(line).resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        {
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex() or None,
                            "attributes": attributes(span.attributes),
                            "status_code": int(span.status.code),
                            "status_message": span.status.message,
                            "events": [
                                {"name": e.name, "attributes": attributes(e.attributes)}
                                for e in span.events
                            ],
                            "resource": resource,
                        }
                    )
    return spans
