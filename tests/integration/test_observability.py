"""Tracing end to end (client -> services -> Triton -> Milvus), metrics and JSON logs.

The services' spans are collected in memory (an SDK provider installed before the app starts, the
app keeps it); Triton, started by the app with its OpenTelemetry trace mode because
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, exports to a small OTLP/HTTP receiver
(driftwise_testing.otlp_receiver).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from driftwise.datasets.movielens import Movie
from driftwise.demo import item_message
from driftwise.observability.logs import JsonFormatter
from driftwise.server import App, running_app
from driftwise.settings import ObservabilitySettings, ServerSettings, Settings
from driftwise_client.v1 import (
    common_pb2,
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    ranking_service_pb2,
    ranking_service_pb2_grpc,
)
from driftwise_testing.otlp_receiver import OtlpReceiver
from tests.integration.support import NOW, bad_request_fields, event, new_user, spans_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


@pytest.fixture(scope="module")
async def traced_app(
    memory_spans: InMemorySpanExporter,
    receiver: OtlpReceiver,
    movies: list[Movie],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[App]:
    """An all-in-one app whose own local Triton traces (started with the OTLP endpoint set)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.url)
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("traced"),
            server=ServerSettings(port=0),
            observability=ObservabilitySettings(metrics_port=0),
        )
        async with running_app(settings) as app:
            env.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            async with grpc.aio.insecure_channel(app.target) as channel:
                items = [item_message(m) for m in movies[:50]]
                await ingest_service_pb2_grpc.IngestServiceStub(channel).UpsertItems(
                    ingest_service_pb2.UpsertItemsRequest(items=items), timeout=60
                )
            yield app


async def traced_call(app: App, call: str, request: object) -> int:
    """Make one call through an OpenTelemetry-instrumented client channel; its trace id."""
    async with grpc.aio.insecure_channel(app.target, interceptors=aio_client_interceptors()) as channel:
        stubs = {
            "IngestEvents": ingest_service_pb2_grpc.IngestServiceStub(channel).IngestEvents,
            "Recommend": ranking_service_pb2_grpc.RankingServiceStub(channel).Recommend,
        }
        with trace.get_tracer("test-client").start_as_current_span(f"client {call}") as root:
            await stubs[call](request, timeout=30)
            return root.get_span_context().trace_id


async def wait_for(condition: object, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.2)


async def test_ingest_events_is_one_trace_across_client_services_and_triton(
    traced_app: App, memory_spans: InMemorySpanExporter, receiver: OtlpReceiver
) -> None:
    user = new_user()
    # free text that no cache has seen: the ingest path must call Triton to encode it
    search = event(user, text=f"westerns about trains {time.time_ns()}", type_=common_pb2.EVENT_TYPE_SEARCH)
    trace_id = await traced_call(
        traced_app, "IngestEvents", ingest_service_pb2.IngestEventsRequest(events=[search])
    )
    spans = spans_of(memory_spans, trace_id)
    names = {s.name for s in spans}
    # the client's call span, the service's span, the model steps and the Triton client span
    kinds = {(s.name, s.kind) for s in spans}
    assert ("/driftwise.v1.IngestService/IngestEvents", SpanKind.CLIENT) in kinds
    assert ("/driftwise.v1.IngestService/IngestEvents", SpanKind.SERVER) in kinds
    assert {"triton.infer", "profile.apply", "event_log.append"} <= names
    # Triton's own spans continue the same trace (exported by Triton itself, over OTLP)
    hex_id = format(trace_id, "032x")
    await wait_for(lambda: receiver.of_trace(hex_id))
    triton_spans = receiver.of_trace(hex_id)
    assert triton_spans and all(s.service == "triton" for s in triton_spans)
    assert any(s.name == "text_encoder" for s in triton_spans)
    # Triton's request span is a child of the encoder client's span
    infer = next(s for s in spans if s.name == "triton.infer")
    assert format(infer.context.span_id, "016x") in {s.parent_id for s in triton_spans}


async def test_recommend_is_one_trace_across_client_service_and_milvus(
    traced_app: App, memory_spans: InMemorySpanExporter, movies: list[Movie]
) -> None:
    user = new_user()
    async with grpc.aio.insecure_channel(traced_app.target) as channel:
        await ingest_service_pb2_grpc.IngestServiceStub(channel).IngestEvents(
            ingest_service_pb2.IngestEventsRequest(
                events=[event(user, movies[k].item_id, at=NOW - 60 * k) for k in range(5)]
            ),
            timeout=30,
        )
    trace_id = await traced_call(
        traced_app, "Recommend", ranking_service_pb2.RecommendRequest(user_id=user, count=5)
    )
    spans = spans_of(memory_spans, trace_id)
    by_name = {s.name: s for s in spans if s.kind != SpanKind.CLIENT or s.name.startswith("milvus.")}
    assert {"ranking.retrieve", "milvus.search", "ranking.score", "ranking.diversify"} <= set(by_name)
    server = by_name["/driftwise.v1.RankingService/Recommend"]
    assert server.kind == SpanKind.SERVER
    client = [s for s in spans if s.kind == SpanKind.CLIENT and s.name == server.name]
    assert len(client) == 1 and server.parent.span_id == client[0].context.span_id
    # the Milvus call is a child of retrieval, which is a child of the service's span
    assert by_name["milvus.search"].parent.span_id == by_name["ranking.retrieve"].context.span_id
    assert by_name["ranking.retrieve"].parent.span_id == server.context.span_id
    assert by_name["milvus.search"].attributes["db.collection.name"] == "items"


async def test_metrics_endpoint_counts_rpcs_by_code_and_the_encoder(traced_app: App) -> None:
    async with grpc.aio.insecure_channel(traced_app.target) as channel:
        ingest = ingest_service_pb2_grpc.IngestServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await ingest.IngestEvents(
                ingest_service_pb2.IngestEventsRequest(
                    events=[event("", text="x", type_=common_pb2.EVENT_TYPE_SEARCH)]
                ),
                timeout=10,
            )
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "events[0].user_id" in bad_request_fields(bad.value)
    assert traced_app.metrics_port is not None
    url = f"http://127.0.0.1:{traced_app.metrics_port}/metrics"
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read().decode())
    samples = parse_samples(text)
    assert samples[("driftwise_rpc_requests_total", 'code="INVALID_ARGUMENT",method="IngestEvents"')] >= 1
    assert samples[("driftwise_rpc_requests_total", 'code="OK",method="UpsertItems"')] >= 1
    assert samples[("driftwise_rpc_duration_seconds_count", 'code="OK",method="UpsertItems"')] >= 1
    assert samples[("driftwise_encoder_requests_total", "")] >= 1  # the 50 items were encoded
    assert (
        samples[("driftwise_encoder_batch_size_count", "")]
        == samples[("driftwise_encoder_requests_total", "")]
    )
    assert ("driftwise_item_cache_items", "") in samples
    assert ("driftwise_interest_mirror_lag_seconds", "") in samples


def parse_samples(text: str) -> dict[tuple[str, str], float]:
    """Prometheus text format -> {(name, sorted labels): value}."""
    out: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, labels = head.partition("{")
        labels = ",".join(sorted(labels.rstrip("}").split(","))) if labels else ""
        out[(name, labels)] = float(value)
    return out


def test_json_logs_carry_the_trace_id(memory_spans: InMemorySpanExporter) -> None:
    record = logging.LogRecord("driftwise.test", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    with trace.get_tracer("test").start_as_current_span("logged") as span:
        line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello world" and line["level"] == "INFO"
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    outside = json.loads(JsonFormatter().format(record))
    assert "trace_id" not in outside
