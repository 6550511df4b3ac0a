"""OpenTelemetry for runs: one tracer provider per run, built from platform observability.

A provider per run (never the global one) so repeated runs in one process (tests,
`dagster dev`) each export to their own destination and shut down cleanly.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from google.protobuf import json_format  # type: ignore[import-untyped]
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import NoOpTracerProvider, Tracer

from floe_runtime import __version__
from floe_runtime.compiler.artifacts import CompiledArtifacts
from floe_runtime.config.platform import ConsoleTraces, FileTraces, OtlpTraces
from floe_runtime.runtime.secrets import Secrets

# OTLP/JSON writes trace and span ids as hex, where protobuf's JSON mapping writes bytes as base64.
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(message: dict[str, Any]) -> None:
    for key in _ID_FIELDS:
        if key in message:
            message[key] = base64.b64decode(message[key]).hex()


def otlp_json(spans: Sequence[ReadableSpan]) -> str:
    """One `ExportTraceServiceRequest` in the OTLP/JSON encoding, on one line.

    The protobuf JSON mapping (lowerCamelCase names, 64-bit integers as decimal strings) with
    the OTLP/JSON deviations: enums as integers and ids as lowercase hex, as the Collector's
    `otlpjsonfile` receiver reads it.
    """
    request: dict[str, Any] = json_format.MessageToDict(
        encode_spans(spans), use_integers_for_enums=True
    )
    for resource_spans in request.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                _hex_ids(span)
                for link in span.get("links", []):
                    _hex_ids(link)
    return json.dumps(request, separators=(",", ":"))


class OtlpJsonFileSpanExporter(SpanExporter):
    """Appends one OTLP/JSON `ExportTraceServiceRequest` per export call, one per line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        line = otlp_json(spans)
        with self._lock, self._path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class Telemetry:
    """A run's tracer and how to shut it down without ever delaying exit for long."""

    def __init__(self, provider: TracerProvider | None, description: str) -> None:
        self._provider = provider
        self.description = description
        self.tracer: Tracer = (provider or NoOpTracerProvider()).get_tracer(
            "floe_runtime", __version__
        )

    def shutdown(self, timeout_millis: int = 3000) -> None:
        """Flush and close the exporters (bounded: a dead collector costs at most the timeout)."""
        if self._provider is not None:
            self._provider.force_flush(timeout_millis)
            self._provider.shutdown()
            self._provider = None


def _otel_disabled() -> bool:
    return (
        os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
        or os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none"
    )


def create_telemetry(
    artifacts: CompiledArtifacts, secrets: Secrets, stderr: IO[str] | None = None
) -> Telemetry:
    """The tracer for a run from platform observability, honouring standard OTEL_* variables."""
    config = artifacts.observability.traces
    if not artifacts.pipeline.observability.traces or _otel_disabled():
        return Telemetry(None, "off")
    attributes = {
        "service.name": os.environ.get("OTEL_SERVICE_NAME") or "floe-runtime",
        "service.version": __version__,
        "floe.pipeline": artifacts.pipeline.name,
        "floe.environment": artifacts.environment,
    }
    # Resource.create merges OTEL_RESOURCE_ATTRIBUTES; OTEL_SERVICE_NAME wins as the spec says.
    resource = Resource.create(attributes)
    exporter: SpanExporter
    processor: SpanProcessor
    if isinstance(config, FileTraces):
        path = artifacts.resolve_path(config.path)
        exporter = OtlpJsonFileSpanExporter(path)
        processor = SimpleSpanProcessor(exporter)
        description = str(path)
    elif isinstance(config, ConsoleTraces):
        exporter = ConsoleSpanExporter(out=stderr or sys.stderr)
        processor = SimpleSpanProcessor(exporter)
        description = "console"
    elif isinstance(config, OtlpTraces):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = (
            os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            or (
                os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
                if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                else None
            )
            or config.endpoint.rstrip("/") + "/v1/traces"
        )
        headers = {key: secrets.get(ref.secret_ref) for key, ref in config.headers.items()}
        exporter = OTLPSpanExporter(
            endpoint=endpoint, headers=headers or None, timeout=config.timeout_seconds
        )
        processor = BatchSpanProcessor(
            exporter, export_timeout_millis=int(config.timeout_seconds * 1000)
        )
        description = endpoint
    else:
        return Telemetry(None, "off")
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(processor)
    return Telemetry(provider, description)
