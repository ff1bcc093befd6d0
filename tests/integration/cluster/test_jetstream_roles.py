"""Cluster mode on JetStream, process roles as `driftwise serve` runs them (in this process, each
with its own gRPC server on a free loopback port): an ingest replica, a profile worker and two
ranking replicas over one NATS node, a real Milvus server and Triton. Events sent to the ingest
replica show in Recommend, GetProfile and WatchProfile on either ranking replica; DeleteUserData
on one replica removes the user's events, profile and rows everywhere."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from driftwise.api.convert import timestamp
from driftwise.cluster.event_stream import STREAM, connect
from driftwise.cluster.snapshots import ProfileSnapshots
from driftwise.datasets.movielens import Movie
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.server import App, running_app
from driftwise.settings import ClusterSettings, MilvusSettings, ServerSettings, Settings, TritonSettings
from driftwise_client.v1 import (
    common_pb2,
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    insight_service_pb2,
    profile_service_pb2,
    profile_service_pb2_grpc,
    ranking_service_pb2,
    ranking_service_pb2_grpc,
)
from driftwise_testing.milvus_server import LocalMilvusServer
from driftwise_testing.nats_cluster import LocalNatsCluster
from tests.integration.milvus_fixtures import milvus_server
from tests.integration.support import Client, new_user, spans_of
from tests.integration.test_milvus_server import drop_collections

__all__ = ["milvus_server"]  # the fixture, imported for pytest

pytestmark = pytest.mark.integration

PARTITIONS = 8


@contextlib.asynccontextmanager
async def roles(
    tmp_path: Path,
    triton: LocalTritonServer,
    milvus: LocalMilvusServer,
    nats: LocalNatsCluster,
    which: tuple[tuple[str, str], ...] = (
        ("ingest", "ingest"),
        ("worker", "worker"),
        ("ranking", "ranking"),
        ("ranking2", "ranking"),
    ),
) -> AsyncIterator[dict[str, App]]:
    def settings(name: str, role: str) -> Settings:
        return Settings(
            data_dir=tmp_path / name,
            server=ServerSettings(port=0, role=role),  # type: ignore[arg-type]
            triton=TritonSettings(url=triton.grpc_url),
            milvus=MilvusSettings(uri=milvus.uri, token=milvus.token, index_type="HNSW"),
            cluster=ClusterSettings(
                nats_urls=tuple(nats.client_urls),
                partitions=PARTITIONS,
                lease_ttl_seconds=3.0,
                lease_heartbeat_seconds=1.0,
                worker_id=name,
            ),
        )

    async with contextlib.AsyncExitStack() as stack:
        apps = {}
        for name, role in which:
            apps[name] = await stack.enter_async_context(running_app(settings(name, role)))
        yield apps


async def recommended(client: Client, user: str, version: int) -> ranking_service_pb2.RecommendResponse:
    """The first Recommend of a full list that reflects the user's profile at `version` or later
    (the items a replica searches become visible within Milvus's bounded staleness)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        response = await client.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=user, count=5))
        if response.profile_version >= version and len(response.items) == 5:
            return response
        await asyncio.sleep(0.02)
    raise AssertionError(f"profile version {version} of {user} not served within 20 s")


async def test_events_sent_to_ingest_are_served_by_every_ranking_replica_and_deleted_everywhere(
    triton: LocalTritonServer,
    milvus_server: LocalMilvusServer,
    memory_spans: InMemorySpanExporter,
    movies: list[Movie],
    tmp_path: Path,
) -> None:
    drop_collections(milvus_server)
    with LocalNatsCluster(tmp_path / "nats", nodes=1) as nats:
        async with roles(tmp_path, triton, milvus_server, nats) as apps:
            ingest, ranking, ranking2 = (
                Client.connect(apps[n].target) for n in ("ingest", "ranking", "ranking2")
            )
            await ingest.upsert_movies(movies[:60])
            user = new_user()
            cold = await ranking.ranking.Recommend(
                ranking_service_pb2.RecommendRequest(user_id=user, count=5)
            )
            assert cold.source == ranking_service_pb2.RECOMMENDATION_SOURCE_COLD_START

            profiles = ranking2.profiles.WatchProfile(profile_service_pb2.WatchProfileRequest(user_id=user))
            now = time.time()
            liked = movies[:4]
            events = [
                common_pb2.Event(
                    event_id=f"{user}-{i}",
                    user_id=user,
                    type=common_pb2.EVENT_TYPE_LIKE,
                    item_id=m.item_id,
                    event_time=timestamp(now - 600 + i),
                )
                for i, m in enumerate(liked)
            ]
            sent = time.monotonic()
            acks, trace_id = await traced_ingest(apps["ingest"].target, events)
            assert [a.duplicate for a in acks.acks] == [False] * 4
            served = await recommended(ranking, user, 4)
            freshness = time.monotonic() - sent
            assert served.source == ranking_service_pb2.RECOMMENDATION_SOURCE_PERSONALIZED
            # the ranking role has no learned models (no refits in cluster mode), and says so
            assert served.learned_models == ranking_service_pb2.LEARNED_MODELS_STATE_NONE
            shown = [r.item_id for r in served.items]
            assert len(shown) == 5 and not set(shown) & {m.item_id for m in liked}  # seen items left out

            watched = await asyncio.wait_for(profiles.read(), 10)
            while watched.profile.version < 4:
                watched = await asyncio.wait_for(profiles.read(), 10)
            got = await ranking2.profiles.GetProfile(profile_service_pb2.GetProfileRequest(user_id=user))
            assert got.profile.event_count == 4
            assert [e.event_id for e in got.profile.recent_events] == [e.event_id for e in reversed(events)]

            again = await ingest.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=events))
            assert all(a.duplicate for a in again.acks)

            deleted = await ranking.profiles.DeleteUserData(
                profile_service_pb2.DeleteUserDataRequest(user_id=user)
            )
            assert (deleted.deleted_event_count, deleted.profile_deleted) == (4, True)
            with pytest.raises(grpc.aio.AioRpcError) as gone:
                await ranking2.profiles.GetProfile(profile_service_pb2.GetProfileRequest(user_id=user))
            assert gone.value.code() == grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                while True:
                    await asyncio.wait_for(profiles.read(), 10)
            assert ended.value.code() == grpc.StatusCode.NOT_FOUND
            # nothing of the user: no event, no snapshot, no share of the item counts
            assert await left_behind(nats) == (0, Counter(), [])
            for client in (ingest, ranking, ranking2):
                await client.channel.close()
            print(f"\nJetStream roles: ingest ack -> Recommend shows the events in {freshness * 1000:.0f} ms")
            # one trace from the client through the ingest replica and the stream into the worker
            names = {span.name for span in spans_of(memory_spans, trace_id)}
            assert {"client IngestEvents", "event_stream.publish", "worker.apply"} <= names, names
            assert "/driftwise.v1.IngestService/IngestEvents" in names, names

            # free text: Triton encodes it in the ingest request's trace; Recommend's searches Milvus
            searcher = new_user()
            search = common_pb2.Event(
                event_id="s-1",
                user_id=searcher,
                type=common_pb2.EVENT_TYPE_SEARCH,
                text="a heist film with a twist",
                event_time=timestamp(time.time() - 5),
            )
            _, text_trace = await traced_ingest(apps["ingest"].target, [search])
            async with grpc.aio.insecure_channel(
                apps["ranking2"].target, interceptors=aio_client_interceptors()
            ) as channel:
                with trace.get_tracer("test-client").start_as_current_span("client Recommend") as root:
                    stubs = Client(
                        channel,
                        ingest_service_pb2_grpc.IngestServiceStub(channel),
                        profile_service_pb2_grpc.ProfileServiceStub(channel),
                        ranking_service_pb2_grpc.RankingServiceStub(channel),
                    )
                    ranked = await recommended(stubs, searcher, 1)
                    recommend_trace = root.get_span_context().trace_id
            assert ranked.source == ranking_service_pb2.RECOMMENDATION_SOURCE_PERSONALIZED
            names = {span.name for span in spans_of(memory_spans, text_trace)}
            assert {"triton.infer", "event_stream.publish", "worker.apply"} <= names, names
            names = {span.name for span in spans_of(memory_spans, recommend_trace)}
            assert {"ranking.retrieve", "milvus.search"} <= names, names


async def test_a_ranking_replica_answers_what_it_can_of_the_insight_service(
    triton: LocalTritonServer, milvus_server: LocalMilvusServer, movies: list[Movie], tmp_path: Path
) -> None:
    drop_collections(milvus_server)
    three = (("ingest", "ingest"), ("worker", "worker"), ("ranking", "ranking"))
    with LocalNatsCluster(tmp_path / "nats", nodes=1) as nats:
        async with roles(tmp_path, triton, milvus_server, nats, three) as apps:
            ingest, ranking = (Client.connect(apps[n].target) for n in ("ingest", "ranking"))
            catalogue = movies[:60]
            await ingest.upsert_movies(catalogue)
            insight = ranking.insight

            # the catalogue from Milvus: pages, a search, an item and its neighbours
            listed, token = [], ""
            while True:
                page = await insight.ListItems(
                    insight_service_pb2.ListItemsRequest(page_size=25, page_token=token)
                )
                listed += [i.item_id for i in page.items]
                token = page.next_page_token
                if not token:
                    break
            assert listed == sorted(m.item_id for m in catalogue) and page.total_items == 60
            found = await insight.SearchItems(
                insight_service_pb2.SearchItemsRequest(text="animated toys", count=5)
            )
            assert len(found.items) == 5 and found.items[0].item.item_id == catalogue[0].item_id  # Toy Story
            item = await insight.GetItem(
                insight_service_pb2.GetItemRequest(item_id=catalogue[0].item_id, neighbours=5)
            )
            assert len(item.neighbours) == 5 and catalogue[0].item_id not in {
                h.item.item_id for h in item.neighbours
            }
            assert not item.followed_by and not item.recent_interactions  # no refits, no event log here

            # what needs the embedded event log
            for call in (
                insight.ListUsers(insight_service_pb2.ListUsersRequest()),
                insight.GetTopicHistory(insight_service_pb2.GetTopicHistoryRequest(user_id="u")),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await call
                assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
                assert "role all" in (refused.value.details() or "")

            # the online quality of this replica's own lists
            user, now = new_user(), time.time()
            liked = catalogue[1:4]
            events = [
                common_pb2.Event(
                    event_id=f"{user}-{i}",
                    user_id=user,
                    type=common_pb2.EVENT_TYPE_LIKE,
                    item_id=m.item_id,
                    event_time=timestamp(now - 60 + i),
                )
                for i, m in enumerate(liked)
            ]
            await ingest.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=events))
            served = await recommended(ranking, user, 3)
            second = served.items[1]
            like = common_pb2.Event(
                event_id=f"{user}-like",
                user_id=user,
                type=common_pb2.EVENT_TYPE_LIKE,
                item_id=second.item_id,
                impression_id=served.recommendation_id,
            )
            call = ranking.ranking.StreamFeedback()
            await call.write(ranking_service_pb2.StreamFeedbackRequest(event=like, count=5))
            answer = await call.read()
            await call.done_writing()
            assert answer.impression_match == ranking_service_pb2.IMPRESSION_MATCH_SHOWN
            quality = await insight.GetOnlineQuality(insight_service_pb2.GetOnlineQualityRequest())
            assert quality.total.likes == 1 and quality.total.issued >= 5
            (at_two,) = [p for p in quality.by_position if p.position == 2]
            assert at_two.counts.likes == 1
            (reason,) = [r for r in quality.by_reason if r.reason == second.explanation.reason]
            assert reason.counts.likes == 1

            stats = await insight.GetServerStats(insight_service_pb2.GetServerStatsRequest())
            assert (stats.role, stats.items, stats.users, stats.events) == ("ranking", 60, 0, 0)
            assert stats.recommend_latency.calls >= 1 and stats.events_per_second > 0  # the feedback
            assert (
                stats.encoder.up and stats.vector_store.up and stats.vector_store.address == milvus_server.uri
            )
            assert not stats.model.HasField("refit_time")

            # an item's positive events: the workers' item counts (read again every few seconds)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                got = await insight.GetItem(insight_service_pb2.GetItemRequest(item_id=liked[0].item_id))
                if got.positive_events == 1:
                    break
                await asyncio.sleep(0.5)
            assert got.positive_events == 1
            for client in (ingest, ranking):
                await client.channel.close()


async def traced_ingest(
    target: str, events: list[common_pb2.Event]
) -> tuple[ingest_service_pb2.IngestEventsResponse, int]:
    """IngestEvents through an OpenTelemetry-instrumented channel, in a client span; its trace id."""
    async with grpc.aio.insecure_channel(target, interceptors=aio_client_interceptors()) as channel:
        with trace.get_tracer("test-client").start_as_current_span("client IngestEvents") as root:
            acks = await ingest_service_pb2_grpc.IngestServiceStub(channel).IngestEvents(
                ingest_service_pb2.IngestEventsRequest(events=events), timeout=30
            )
            return acks, root.get_span_context().trace_id


async def left_behind(nats: LocalNatsCluster) -> tuple[int, Counter[str], list[str]]:
    """Messages left in the stream, the item counts, and the users with a snapshot."""
    nc = await connect(nats.client_urls)
    try:
        snapshots = await ProfileSnapshots.open(nc.jetstream(), partitions=PARTITIONS)
        users = [u for p in range(PARTITIONS) for u in await snapshots.users(p)]
        messages = (await nc.jetstream().stream_info(STREAM)).state.messages
        return messages, await snapshots.item_counts(), users
    finally:
        await nc.close()
