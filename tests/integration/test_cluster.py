"""The cluster roles in one process: two profile shards on one Milvus server and one Triton, an
ingest router and a ranking router in front; every client call goes through the routers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from driftwise.cluster.partitions import Partitioner
from driftwise.datasets.movielens import Movie
from driftwise.errors import NotFoundError
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.server import App, running_app
from driftwise.settings import ClusterSettings, MilvusSettings, ServerSettings, Settings, TritonSettings
from driftwise_client.v1 import (
    common_pb2,
    ingest_service_pb2,
    profile_service_pb2,
    ranking_service_pb2,
)
from driftwise_testing.milvus_server import LocalMilvusServer
from tests.integration.milvus_fixtures import milvus_server
from tests.integration.support import Client, bad_request_fields, event
from tests.integration.test_milvus_server import drop_collections

pytestmark = pytest.mark.integration
__all__ = ["milvus_server"]  # the fixture, imported for pytest

SHARDS = 2
PARTITIONER = Partitioner(256, SHARDS)
# Shard i listens on 127.0.0.1{i} (all of 127/8 is loopback), so one {shard} template with one
# port names both shards, as a StatefulSet's DNS names do.
SHARD_HOST = "127.0.0.1{shard}"


@dataclass
class Cluster:
    shards: list[App]
    ingest: Client  # through the ingest router
    ranking: Client  # through the ranking router
    direct: list[Client]  # to each shard, bypassing the routers
    stop_shard: list[contextlib.AsyncExitStack]


def users_of(shard: int, count: int, tag: str) -> list[str]:
    stamp = time.monotonic_ns()
    users = (f"{tag}-{stamp}-{i}" for i in range(10_000))
    return [u for u in users if PARTITIONER.shard(u) == shard][:count]


@contextlib.asynccontextmanager
async def cluster(
    base: Settings, milvus: LocalMilvusServer, triton: LocalTritonServer
) -> AsyncIterator[Cluster]:
    async with contextlib.AsyncExitStack() as stack:
        shards: list[App] = []
        stops: list[contextlib.AsyncExitStack] = []
        port = 0
        for i in range(SHARDS):  # one after the other: the first creates the Milvus collections
            settings = base.model_copy(
                update={
                    "data_dir": base.data_dir / f"shard-{i}",
                    "server": ServerSettings(
                        host=SHARD_HOST.format(shard=i), port=port, role="profile", grace_seconds=0.2
                    ),
                    "cluster": ClusterSettings(shards=SHARDS, shard_index=i),
                }
            )
            shard_stack = contextlib.AsyncExitStack()
            stack.push_async_callback(shard_stack.aclose)
            shards.append(await shard_stack.enter_async_context(running_app(settings)))
            stops.append(shard_stack)
            port = shards[0].port  # the others on the same port, on their own address
        routed = ClusterSettings(
            shards=SHARDS, shard_address=f"{SHARD_HOST}:{port}", forward_timeout_seconds=30
        )
        clients = []
        for role in ("ingest", "ranking"):
            settings = base.model_copy(
                update={
                    "server": ServerSettings(port=0, role=role, grace_seconds=0.2),
                    "cluster": routed,
                }
            )
            router = await stack.enter_async_context(running_app(settings))
            clients.append(Client.connect(router.target))
        clients += [Client.connect(app.target) for app in shards]
        for client in clients:
            stack.push_async_callback(client.channel.close)
        yield Cluster(shards, clients[0], clients[1], clients[2:], stops)


def status_of(err: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str]:
    return err.code(), err.details() or ""


async def test_routers_send_each_user_to_its_shard(
    milvus_server: LocalMilvusServer, triton: LocalTritonServer, movies: list[Movie], tmp_path: Path
) -> None:
    drop_collections(milvus_server)
    base = Settings(
        data_dir=tmp_path,
        triton=TritonSettings(url=triton.grpc_url),
        milvus=MilvusSettings(uri=milvus_server.uri, token=milvus_server.token, index_type="HNSW"),
    )
    catalogue = movies[:60]
    async with cluster(base, milvus_server, triton) as c:
        # the routers run no engine (no Triton, no Milvus, no event log)
        await c.ingest.upsert_movies(catalogue)

        users = {shard: users_of(shard, 2, "cluster-user") for shard in range(SHARDS)}
        everyone = [u for shard_users in users.values() for u in shard_users]
        events = [event(u, m.item_id) for u in everyone for m in catalogue[:3]]
        events.sort(key=lambda e: e.event_id[::-1])  # users interleaved across shards
        acks = (
            await c.ingest.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=events))
        ).acks
        assert [a.event_id for a in acks] == [e.event_id for e in events]  # in the request's order
        assert not any(a.duplicate for a in acks)

        for shard, shard_users in users.items():
            other = 1 - shard
            for user in shard_users:
                recs = await c.ranking.ranking.Recommend(
                    ranking_service_pb2.RecommendRequest(user_id=user, count=5)
                )
                assert recs.source == ranking_service_pb2.RECOMMENDATION_SOURCE_PERSONALIZED
                assert len(recs.items) == 5
                routed = await c.ranking.profiles.GetProfile(
                    profile_service_pb2.GetProfileRequest(user_id=user)
                )
                assert routed.profile.event_count == 3
                # the user's events and profile live on the owning shard only
                assert (await c.shards[shard].engine.get_profile(user)).event_count == 3
                with pytest.raises(NotFoundError):
                    await c.shards[other].engine.get_profile(user)
                with pytest.raises(grpc.aio.AioRpcError) as wrong:
                    await c.direct[other].profiles.GetProfile(
                        profile_service_pb2.GetProfileRequest(user_id=user)
                    )
                code, message = status_of(wrong.value)
                assert code == grpc.StatusCode.FAILED_PRECONDITION and f"profile shard {shard}" in message

        # a bad batch: INVALID_ARGUMENT with the field path, and no shard records anything
        fresh = [users_of(0, 1, "bad-batch")[0], users_of(1, 1, "bad-batch")[0]]
        bad = [event(fresh[i % 2], catalogue[i].item_id) for i in range(5)]
        bad[3].user_id = ""
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await c.ingest.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=bad))
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_fields(invalid.value) == ["events[3].user_id"]
        for user in fresh:
            for app in c.shards:
                with pytest.raises(NotFoundError):
                    await app.engine.get_profile(user)

        # an unknown item found by a shard: its field path is the caller's, not the sub-batch's
        unknown = [event(fresh[0], catalogue[0].item_id), event(fresh[1], "no-such-item")]
        with pytest.raises(grpc.aio.AioRpcError) as not_there:
            await c.ingest.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=unknown))
        assert bad_request_fields(not_there.value) == ["events[1].item_id"]

        # StreamEvents and StreamFeedback through the routers answer in the request's order
        stream_events = [event(everyone[i % len(everyone)], catalogue[10 + i].item_id) for i in range(8)]
        stream_events[2].type = 0  # a bad message gets its own error; the stream goes on
        answers = [
            r
            async for r in c.ingest.ingest.StreamEvents(
                ingest_service_pb2.StreamEventsRequest(event=e) for e in stream_events
            )
        ]
        assert [a.event_id for a in answers] == [e.event_id for e in stream_events]
        assert [a.HasField("ack") for a in answers] == [i != 2 for i in range(8)]
        assert answers[2].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]

        impression = {
            u: (
                await c.ranking.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=u))
            ).recommendation_id
            for u in everyone
        }
        feedback = []
        for i in range(8):
            user = everyone[i % len(everyone)]
            e = event(user, catalogue[20 + i].item_id, type_=common_pb2.EVENT_TYPE_CLICK)
            e.impression_id = "" if i == 5 else impression[user]
            feedback.append(ranking_service_pb2.StreamFeedbackRequest(event=e, count=3))
        answers_fb = [r async for r in c.ranking.ranking.StreamFeedback(iter(feedback))]
        assert [a.event_id for a in answers_fb] == [f.event.event_id for f in feedback]
        assert [a.recorded for a in answers_fb] == [i != 5 for i in range(8)]
        assert all(len(a.recommendations.items) == 3 for i, a in enumerate(answers_fb) if i != 5)
        assert answers_fb[5].error.field_violations[0].field == "event.impression_id"

        # WatchProfile is proxied from the user's shard
        watch = c.ranking.profiles.WatchProfile(profile_service_pb2.WatchProfileRequest(user_id=everyone[1]))
        first = await watch.read()
        assert isinstance(first, profile_service_pb2.WatchProfileResponse)
        assert first.profile.user_id == everyone[1] and first.profile.event_count >= 3
        watch.cancel()

        # a stopped shard: UNAVAILABLE through the router, naming it; the other shard still serves
        await c.stop_shard[1].aclose()
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await c.ranking.ranking.Recommend(
                ranking_service_pb2.RecommendRequest(user_id=users[1][0]), timeout=10
            )
        code, message = status_of(down.value)
        assert code == grpc.StatusCode.UNAVAILABLE and "profile shard 1" in message, message
        with pytest.raises(grpc.aio.AioRpcError) as partly:
            await c.ingest.ingest.IngestEvents(
                ingest_service_pb2.IngestEventsRequest(
                    events=[
                        event(users[0][0], catalogue[40].item_id),
                        event(users[1][0], catalogue[40].item_id),
                    ]
                )
            )
        assert partly.value.code() == grpc.StatusCode.UNAVAILABLE
        recs = await c.ranking.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=users[0][0]))
        assert len(recs.items) == 10
