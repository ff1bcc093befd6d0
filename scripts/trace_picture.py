"""Draw the spans of one IngestEvents and one Recommend: docs/deploy/trace.png.

    .venv/bin/python scripts/trace_picture.py [--out docs/deploy/trace.png]

Starts the all-in-one app (local Triton in its OpenTelemetry trace mode, Milvus Lite) in a temp
dir, upserts 200 MovieLens movies, then makes the two calls through an OpenTelemetry-instrumented
client. The services' spans come from an in-memory exporter, Triton's from a local OTLP receiver;
both are drawn on one time axis per trace, as a tracing UI would show them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import grpc
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from driftwise.datasets.movielens import load_movies
from driftwise.demo import item_message
from driftwise.server import running_app
from driftwise.settings import ServerSettings, Settings
from driftwise_client.v1 import (
    common_pb2,
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    ranking_service_pb2,
    ranking_service_pb2_grpc,
)
from driftwise_testing.otlp_receiver import OtlpReceiver, ReceivedSpan

COLOURS = {"client": "#4c72b0", "driftwise": "#55a868", "triton": "#8172b2"}  # by emitting process


def as_received(exporter: InMemorySpanExporter, trace_id: int) -> list[ReceivedSpan]:
    out = []
    for s in exporter.get_finished_spans():
        if s.context is None or s.context.trace_id != trace_id:
            continue
        peer = str((s.attributes or {}).get("peer.service", ""))
        scope = s.instrumentation_scope.name if s.instrumentation_scope else ""
        in_client = scope == "trace-picture" or (s.kind.name == "CLIENT" and not peer)
        service = "client" if in_client else "driftwise"
        out.append(
            ReceivedSpan(
                format(trace_id, "032x"),
                format(s.context.span_id, "016x"),
                format(s.parent.span_id, "016x") if s.parent else "",
                f"{s.name} (-> {peer})" if peer else s.name,
                service,
                s.start_time or 0,
                s.end_time or 0,
            )
        )
    return out


def ordered(spans: list[ReceivedSpan]) -> list[tuple[int, ReceivedSpan]]:
    """Depth-first from the roots, children by start time: (depth, span)."""
    children: dict[str, list[ReceivedSpan]] = {}
    ids = {s.span_id for s in spans}
    for s in spans:
        children.setdefault(s.parent_id if s.parent_id in ids else "", []).append(s)
    out: list[tuple[int, ReceivedSpan]] = []

    def walk(parent: str, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda s: s.start_ns):
            out.append((depth, s))
            walk(s.span_id, depth + 1)

    walk("", 0)
    return out


def draw(traces: list[tuple[str, list[ReceivedSpan]]], path: Path) -> None:
    rows = sum(len(spans) for _, spans in traces)
    fig, axes = plt.subplots(
        len(traces),
        1,
        figsize=(11, 0.32 * rows + 1.6 * len(traces)),
        gridspec_kw={"height_ratios": [len(s) for _, s in traces]},
    )
    for ax, (title, spans) in zip(axes, traces, strict=True):
        items = ordered(spans)
        start = min(s.start_ns for s in spans)
        for row, (depth, s) in enumerate(items):
            left, width = (s.start_ns - start) / 1e6, max((s.end_ns - s.start_ns) / 1e6, 0.02)
            ax.barh(row, width, left=left, color=COLOURS.get(s.service, "#999999"), height=0.7)
            ax.text(
                left + width + 0.1, row, f"{'  ' * depth}{s.name}  {width:.1f} ms", va="center", fontsize=8
            )
        ax.set_yticks(range(len(items)), [s.service for _, s in items], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{title} — trace {spans[0].trace_id}", fontsize=10, loc="left")
        ax.set_xlabel("ms since the client span started", fontsize=8)
        ax.set_xlim(0, (max(s.end_ns for s in spans) - start) / 1e6 * 1.45)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


async def collect(
    receiver: OtlpReceiver, exporter: InMemorySpanExporter, data_dir: Path
) -> list[tuple[str, list[ReceivedSpan]]]:
    settings = Settings(data_dir=data_dir, server=ServerSettings(port=0))
    async with running_app(settings) as app:
        os.environ.pop("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        movies = load_movies()[:200]
        async with grpc.aio.insecure_channel(app.target, interceptors=aio_client_interceptors()) as channel:
            ingest = ingest_service_pb2_grpc.IngestServiceStub(channel)
            ranking = ranking_service_pb2_grpc.RankingServiceStub(channel)
            await ingest.UpsertItems(
                ingest_service_pb2.UpsertItemsRequest(items=[item_message(m) for m in movies]), timeout=120
            )
            now = time.time()
            history = [
                common_pb2.Event(
                    event_id=f"e{k}",
                    user_id="alice",
                    type=common_pb2.EVENT_TYPE_LIKE,
                    item_id=movies[k].item_id,
                )
                for k in range(0, 40, 4)
            ]
            for k, e in enumerate(history):
                e.event_time.FromSeconds(int(now) - 600 + k)
            await ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=history), timeout=30)
            tracer = trace.get_tracer("trace-picture")
            for _ in range(3):  # warm: the first searches of a fresh Milvus Lite collection are slow
                await ranking.Recommend(
                    ranking_service_pb2.RecommendRequest(user_id="alice", count=10), timeout=30
                )
            search = common_pb2.Event(
                event_id="search-1",
                user_id="alice",
                type=common_pb2.EVENT_TYPE_SEARCH,
                text="animated films about toys",
            )
            search.event_time.FromSeconds(int(now))
            with tracer.start_as_current_span("client: IngestEvents") as span:
                await ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=[search]), timeout=30)
                ingest_trace = span.get_span_context().trace_id
            with tracer.start_as_current_span("client: Recommend") as span:
                await ranking.Recommend(
                    ranking_service_pb2.RecommendRequest(user_id="alice", count=10), timeout=30
                )
                recommend_trace = span.get_span_context().trace_id
        hex_id = format(ingest_trace, "032x")
        for _ in range(50):  # Triton exports in the background
            if receiver.of_trace(hex_id):
                break
            await asyncio.sleep(0.2)
    return [
        (
            "IngestEvents (one SEARCH event: encoded by Triton)",
            as_received(exporter, ingest_trace) + receiver.of_trace(hex_id),
        ),
        ("Recommend (count 10)", as_received(exporter, recommend_trace)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("docs/deploy/trace.png"))
    args = parser.parse_args()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    with OtlpReceiver() as receiver, tempfile.TemporaryDirectory() as tmp:
        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = receiver.url  # Triton exports here
        traces = asyncio.run(collect(receiver, exporter, Path(tmp)))
    draw(traces, args.out)
    for title, spans in traces:
        print(f"{title}: {len(spans)} spans, services {sorted({s.service for s in spans})}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
