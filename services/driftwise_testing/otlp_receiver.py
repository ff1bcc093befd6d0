"""A minimal OTLP/HTTP trace receiver: keeps the spans it is sent, in memory.

For the tests and `scripts/trace_picture.py`, which check and draw the spans Triton exports on its
own; it is not a collector (no retries, no limits, loopback only).
"""

from __future__ import annotations

import http.server
import json
import threading
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_id: str  # "" for a root span
    name: str
    service: str  # the exporter's resource attribute service.name
    start_ns: int
    end_ns: int


class OtlpReceiver:
    """Accepts OTLP/HTTP exports (protobuf, or JSON as Triton sends them) on a free loopback port."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver._add(body, self.headers.get("Content-Type", ""))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()
                self.wfile.write(trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The traces URL, for OTEL_EXPORTER_OTLP_TRACES_ENDPOINT."""
        return f"http://127.0.0.1:{self._server.server_port}/v1/traces"

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def of_trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def _add(self, body: bytes, content_type: str) -> None:
        spans = _from_json(body) if "json" in content_type else _from_protobuf(body)
        with self._lock:
            self.spans.extend(spans)


def _from_json(body: bytes) -> list[ReceivedSpan]:
    """OTLP/JSON: ids are hex strings (not protobuf JSON's base64), times decimal strings."""
    out = []
    for resource_spans in json.loads(body).get("resourceSpans", []):
        attributes = resource_spans.get("resource", {}).get("attributes", [])
        service = next(
            (a["value"].get("stringValue", "") for a in attributes if a["key"] == "service.name"), ""
        )
        for scope in resource_spans.get("scopeSpans", []):
            for span in scope.get("spans", []):
                out.append(
                    ReceivedSpan(
                        span["traceId"].lower(),
                        span["spanId"].lower(),
                        span.get("parentSpanId", "").lower(),
                        span["name"],
                        service,
                        int(span["startTimeUnixNano"]),
                        int(span["endTimeUnixNano"]),
                    )
                )
    return out


def _from_protobuf(body: bytes) -> list[ReceivedSpan]:
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(body)
    out = []
    for resource_spans in request.resource_spans:
        attributes = resource_spans.resource.attributes
        service = next((a.value.string_value for a in attributes if a.key == "service.name"), "")
        for scope in resource_spans.scope_spans:
            for span in scope.spans:
                out.append(
                    ReceivedSpan(
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                        span.name,
                        service,
                        span.start_time_unix_nano,
                        span.end_time_unix_nano,
                    )
                )
    return out
