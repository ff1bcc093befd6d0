"""OpenTelemetry tracing: configured by the standard OTEL_* variables, off by default
(docs/interest-model.md §9).

Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and
OTEL_SDK_DISABLED is not true): spans go over OTLP/HTTP (protobuf), the protocol Triton's own
OpenTelemetry trace mode speaks, so one collector endpoint serves both. The sampler, resource and
batch settings are the SDK's own OTEL_* variables (OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, ...).

Without it every span below is the API's no-op (about a microsecond), so the code paths are the
same traced or not. W3C trace context travels in gRPC metadata (`traceparent`), including to
Triton, which continues the trace (`triton_trace_args`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, SpanKind

tracer = trace.get_tracer("driftwise")


def otlp_traces_endpoint(environ: Mapping[str, str] = os.environ) -> str | None:
    """The OTLP/HTTP traces URL the standard variables name, or None when tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if url := environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip():
        return url
    if base := environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        return base.rstrip("/") + "/v1/traces"
    return None


def configure_tracing(default_service_name: str = "driftwise") -> TracerProvider | None:
    """Install an SDK tracer provider exporting over OTLP/HTTP when the OTEL_* variables ask for
    it; returns the provider (shut it down on exit to flush), or None when tracing is off. An SDK
    provider installed before (a test's in-memory one, a host application's) is kept."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return None  # someone else owns it and its shutdown
    endpoint = otlp_traces_endpoint()
    if endpoint is None:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    service = os.environ.get("OTEL_SERVICE_NAME") or default_service_name
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    return provider


def tracing_enabled() -> bool:
    """Whether spans are recorded in this process (an SDK provider is installed)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def triton_trace_args(service_name: str = "triton") -> list[str]:
    """tritonserver flags for its OpenTelemetry trace mode, exporting where the services do and
    continuing the `traceparent` the encoder client sends; [] when tracing is off."""
    endpoint = otlp_traces_endpoint()
    if endpoint is None:
        return []
    host_port_path = endpoint.split("://", 1)[-1]  # Triton takes host:port/path
    return [
        "--trace-config=mode=opentelemetry",
        f"--trace-config=opentelemetry,url={host_port_path}",
        f"--trace-config=opentelemetry,resource=service.name={service_name}",
        "--trace-config=rate=1",
        "--trace-config=level=TIMESTAMPS",
    ]


def trace_headers() -> dict[str, str]:
    """W3C trace context of the current span, as request headers (gRPC metadata)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def client_span(
    name: str, system: str, attributes: Mapping[str, Any] | None = None, links: list[Link] | None = None
) -> Iterator[Span]:
    """A CLIENT span for a call to a dependency (Triton, Milvus), with `peer.service` set."""
    with tracer.start_as_current_span(
        name, kind=SpanKind.CLIENT, links=links, attributes={"peer.service": system, **(attributes or {})}
    ) as span:
        yield span
