"""Helpers for integration tests: gRPC stubs and all-in-one apps on free ports."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from driftwise.api.convert import timestamp
from driftwise.datasets.movielens import Movie
from driftwise.demo import item_message
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.server import App, running_app
from driftwise.settings import ServerSettings, Settings, TritonSettings
from driftwise_client.v1 import (
    common_pb2,
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    insight_service_pb2_grpc,
    profile_service_pb2,
    profile_service_pb2_grpc,
    ranking_service_pb2,
    ranking_service_pb2_grpc,
)


@dataclass
class Client:
    """Stubs of the four services over one channel."""

    channel: grpc.aio.Channel
    ingest: ingest_service_pb2_grpc.IngestServiceStub
    profiles: profile_service_pb2_grpc.ProfileServiceStub
    ranking: ranking_service_pb2_grpc.RankingServiceStub
    insight: insight_service_pb2_grpc.InsightServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self.insight = insight_service_pb2_grpc.InsightServiceStub(self.channel)

    @classmethod
    def connect(cls, target: str) -> Client:
        channel = grpc.aio.insecure_channel(target)
        return cls(
            channel,
            ingest_service_pb2_grpc.IngestServiceStub(channel),
            profile_service_pb2_grpc.ProfileServiceStub(channel),
            ranking_service_pb2_grpc.RankingServiceStub(channel),
        )

    async def upsert_movies(self, movies: list[Movie]) -> None:
        for i in range(0, len(movies), 200):
            items = [item_message(m) for m in movies[i : i + 200]]
            await self.ingest.UpsertItems(ingest_service_pb2.UpsertItemsRequest(items=items), timeout=120)


def settings_for(data_dir: Path, triton: LocalTritonServer) -> Settings:
    return Settings(
        data_dir=data_dir, server=ServerSettings(port=0), triton=TritonSettings(url=triton.grpc_url)
    )


@contextlib.asynccontextmanager
async def app_and_client(settings: Settings) -> AsyncIterator[tuple[App, Client]]:
    async with running_app(settings) as app:
        client = Client.connect(app.target)
        try:
            yield app, client
        finally:
            await client.channel.close()


_ids = itertools.count()
NOW = time.time()


def new_user() -> str:
    return f"user-{next(_ids)}-{time.monotonic_ns()}"


def event(
    user: str,
    item: str = "",
    text: str = "",
    type_: int = common_pb2.EVENT_TYPE_LIKE,
    at: float | None = None,
    event_id: str | None = None,
) -> common_pb2.Event:
    return common_pb2.Event(
        event_id=event_id or f"ev-{next(_ids)}",
        user_id=user,
        type=type_,
        item_id=item,
        text=text,
        event_time=timestamp(NOW - 60 if at is None else at),
    )


def animated(movies: list[Movie]) -> list[Movie]:
    return [m for m in movies if "Animation" in m.tags]


def bad_request_fields(err: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(err)
    assert status is not None, "INVALID_ARGUMENT must carry google.rpc details"
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            detail.Unpack(br)
            fields += [v.field for v in br.field_violations]
    return fields


async def get_profile(client: Client, user: str, at: float | None = None) -> profile_service_pb2.Profile:
    request = profile_service_pb2.GetProfileRequest(user_id=user)
    if at is not None:  # layer mass decays with time: fix the time to compare profiles
        request.as_of_time.CopyFrom(timestamp(at))
    return (await client.profiles.GetProfile(request)).profile


async def exchange(
    client: Client, requests: Sequence[ranking_service_pb2.StreamFeedbackRequest]
) -> list[ranking_service_pb2.StreamFeedbackResponse]:
    """Send each request on one StreamFeedback stream and read its answer before the next."""
    call = client.ranking.StreamFeedback()
    responses = []
    for request in requests:
        await call.write(request)
        responses.append(await call.read())
    await call.done_writing()
    assert await call.read() == grpc.aio.EOF
    return responses


def feedback(
    user: str, item: str, type_: int, impression: str, count: int = 10
) -> ranking_service_pb2.StreamFeedbackRequest:
    e = event(user, item, type_=type_)
    e.impression_id = impression
    return ranking_service_pb2.StreamFeedbackRequest(event=e, count=count)


def spans_of(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [
        s for s in exporter.get_finished_spans() if s.context is not None and s.context.trace_id == trace_id
    ]
