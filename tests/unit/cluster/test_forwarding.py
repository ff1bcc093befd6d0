"""A ranking router (running_app, role ranking) in front of two fake shards on loopback: deadlines,
metadata, error statuses and stream order, with real gRPC and no engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from driftwise.api.interceptors.errors import ErrorMappingInterceptor
from driftwise.cluster.partitions import Partitioner
from driftwise.errors import FieldViolation, InvalidArgumentError
from driftwise.server import running_app
from driftwise.settings import ClusterSettings, ServerSettings, Settings
from driftwise_client.v1 import ranking_service_pb2 as pb
from driftwise_client.v1 import ranking_service_pb2_grpc
from tests.integration.support import bad_request_fields

PARTITIONER = Partitioner(256, 2)
USERS = {s: [u for u in (f"u{i}" for i in range(200)) if PARTITIONER.shard(u) == s][:3] for s in (0, 1)}


class FakeShard(ranking_service_pb2_grpc.RankingServiceServicer):
    def __init__(self, index: int) -> None:
        self.index = index
        self.seen: list[tuple[dict[str, Any], float | None]] = []

    async def Recommend(self, request: pb.RecommendRequest, context: Any) -> pb.RecommendResponse:
        self.seen.append((dict(context.invocation_metadata()), context.time_remaining()))
        if request.user_id == USERS[self.index][2]:
            raise InvalidArgumentError([FieldViolation("count", "too many")])
        return pb.RecommendResponse(recommendation_id=f"shard-{self.index}")

    async def StreamFeedback(
        self, request_iterator: AsyncIterator[pb.StreamFeedbackRequest], context: Any
    ) -> AsyncIterator[pb.StreamFeedbackResponse]:
        async for request in request_iterator:
            await asyncio.sleep(0.05 if self.index == 0 else 0)  # shard 1 answers first
            yield pb.StreamFeedbackResponse(event_id=request.event.event_id, recorded=True)


@pytest.fixture
async def routed() -> AsyncIterator[tuple[ranking_service_pb2_grpc.RankingServiceAsyncStub, list[Any]]]:
    servers, shards, port = [], [], 0
    for i in (0, 1):  # shard i on 127.0.0.1{i}, both on one port (all of 127/8 is loopback)
        server = grpc.aio.server(interceptors=[ErrorMappingInterceptor()])
        shard = FakeShard(i)
        ranking_service_pb2_grpc.add_RankingServiceServicer_to_server(shard, server)
        port = server.add_insecure_port(f"127.0.0.1{i}:{port}")
        await server.start()
        servers.append(server)
        shards.append(shard)
    settings = Settings(
        server=ServerSettings(port=0, role="ranking", grace_seconds=0),
        cluster=ClusterSettings(
            shards=2, shard_address=f"127.0.0.1{{shard}}:{port}", forward_timeout_seconds=7
        ),
    )
    try:
        async with running_app(settings) as app, grpc.aio.insecure_channel(app.target) as channel:
            with pytest.raises(RuntimeError, match="no engine"):
                _ = app.engine
            yield ranking_service_pb2_grpc.RankingServiceStub(channel), [servers, shards]
    finally:
        for server in servers:
            await server.stop(0)


async def test_calls_go_to_the_owner_with_deadline_and_trace_context(routed: Any) -> None:
    stub, (_, shards) = routed
    metadata = (("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), ("x-other", "no"))
    for shard in (0, 1):
        response = await stub.Recommend(
            pb.RecommendRequest(user_id=USERS[shard][0]), metadata=metadata, timeout=3
        )
        assert response.recommendation_id == f"shard-{shard}"
        forwarded, remaining = shards[shard].seen[-1]
        # the same trace (when this process traces, the router's own span becomes the parent)
        assert forwarded["traceparent"].split("-")[1] == metadata[0][1].split("-")[1]
        assert "x-other" not in forwarded
        assert remaining is not None and 2 < remaining < 3.1  # the caller's deadline, not the default
    await stub.Recommend(pb.RecommendRequest(user_id=USERS[1][1]))
    _, remaining = shards[1].seen[-1]
    assert remaining is not None and 6 < remaining < 7.1  # cluster.forward_timeout_seconds


async def test_a_shard_error_passes_through_with_its_details(routed: Any) -> None:
    stub, _ = routed
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Recommend(pb.RecommendRequest(user_id=USERS[1][2]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details() == "count: too many"
    assert bad_request_fields(err.value) == ["count"]


async def test_feedback_is_answered_in_request_order(routed: Any) -> None:
    stub, _ = routed
    users = [USERS[i % 2][i % 3] for i in range(12)]
    requests = [
        pb.StreamFeedbackRequest(event={"event_id": f"e{i}", "user_id": u}) for i, u in enumerate(users)
    ]
    answers = [a async for a in stub.StreamFeedback(iter(requests))]
    assert [a.event_id for a in answers] == [f"e{i}" for i in range(12)] and all(a.recorded for a in answers)


async def test_a_stopped_shard_fails_its_messages_only(routed: Any) -> None:
    stub, (servers, _) = routed
    await servers[1].stop(0)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Recommend(pb.RecommendRequest(user_id=USERS[1][0]))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "profile shard 1" in (
        err.value.details() or ""
    )
    requests = [
        pb.StreamFeedbackRequest(event={"event_id": f"e{i}", "user_id": USERS[i % 2][0]}) for i in range(4)
    ]
    answers = [a async for a in stub.StreamFeedback(iter(requests))]
    assert [a.event_id for a in answers] == ["e0", "e1", "e2", "e3"]
    assert [a.recorded for a in answers] == [True, False, True, False]
    assert answers[1].error.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert "profile shard 1" in answers[1].error.message


async def test_a_shard_without_an_index_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "laptop")
    settings = Settings(server=ServerSettings(role="profile"), cluster=ClusterSettings(shards=2))
    with pytest.raises(ValueError, match="cannot tell which profile shard"):
        async with running_app(settings):
            pass
