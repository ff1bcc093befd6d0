"""Cluster ingest against the embedded engine: the same events, prepared by the same catalogue
(real Triton, Milvus Lite), published to a real JetStream and applied by a profile worker, build
the profile the embedded engine builds; a resend is all duplicates; a bad batch publishes nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from driftwise.cluster.event_stream import STREAM, EventStream
from driftwise.cluster.ingest import StreamIngest
from driftwise.cluster.leases import PartitionLeases
from driftwise.cluster.reads import ConfiguredModels, SnapshotReads
from driftwise.cluster.snapshots import ProfileSnapshots
from driftwise.cluster.worker import ProfileWorker
from driftwise.datasets.movielens import Movie
from driftwise.engine import Engine, RecommendQuery
from driftwise.engine.reads import LogReads
from driftwise.engine.recommend import Recommender
from driftwise.errors import InvalidArgumentError
from driftwise.model.events import Event, EventType
from driftwise.model.impressions import Impressions
from driftwise.model.profile import UserProfile
from driftwise.server import App
from driftwise.storage.event_log import LoggedEvent
from driftwise_testing.nats_cluster import LocalNatsCluster
from tests.integration.support import Client, new_user

pytestmark = pytest.mark.integration

PARTITIONS = 8


@pytest.fixture
async def stream(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EventStream]:
    with LocalNatsCluster(tmp_path_factory.mktemp("nats"), nodes=1) as cluster:
        events = await EventStream.open(cluster.client_urls, partitions=PARTITIONS)
        try:
            yield events
        finally:
            await events.close()


def history(user: str, movies: list[Movie]) -> list[LoggedEvent]:
    """A user's events as the api validates them: likes, a view, a skip and a search (free text
    encoded by Triton), one minute apart."""
    start = time.time() - 3600
    kinds = [EventType.LIKE, EventType.LIKE, EventType.VIEW, EventType.SKIP, EventType.LIKE]
    events = [
        Event(f"{user}-e{i}", user, kind, start + 60 * i, item_id=movie.item_id)
        for i, (kind, movie) in enumerate(zip(kinds, movies[:5], strict=True))
    ]
    events.append(Event(f"{user}-search", user, EventType.SEARCH, start + 600, text="space adventure"))
    return [LoggedEvent(e, {}) for e in events]


async def applied(snapshots: ProfileSnapshots, user: str, events: int) -> UserProfile:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        snapshot, _ = await snapshots.get(user)
        if snapshot is not None and snapshot.profile.event_count >= events:
            return snapshot.profile
        await asyncio.sleep(0.05)
    raise AssertionError(f"the worker did not apply {events} events of {user} within 20 s")


async def test_events_through_the_stream_build_the_profile_the_embedded_engine_builds(
    loaded: tuple[App, Client], movies: list[Movie], stream: EventStream
) -> None:
    engine = loaded[0].engine
    user = new_user()
    logged = history(user, movies)
    await engine.ingest_events(logged)
    embedded = await engine.get_profile(user)

    ingest = StreamIngest(engine.settings, engine.catalogue, stream)
    acks = await ingest.ingest_events(logged)
    assert [a.event_id for a in acks] == [le.event.event_id for le in logged]
    assert not any(a.duplicate for a in acks)
    assert all(a.duplicate for a in await ingest.ingest_events(logged))  # a resend is stored once

    leases = await PartitionLeases.open(
        stream.nc, worker_id="w1", partitions=PARTITIONS, ttl_s=3.0, heartbeat_s=1.0
    )
    snapshots = await ProfileSnapshots.open(stream.js, partitions=PARTITIONS)
    worker = ProfileWorker(
        stream, leases, snapshots, engine.topic_model, engine.settings.interest, engine.encoder.dimension
    )
    await worker.start()
    try:
        clustered = await applied(snapshots, user, len(logged))
    finally:
        await worker.stop()
    await assert_same_recommendations(engine, snapshots, user)

    assert (clustered.version, clustered.event_count) == (embedded.version, embedded.event_count) == (6, 6)
    assert [r.event_id for r in clustered.recent] == [r.event_id for r in embedded.recent]
    assert [r.text for r in clustered.recent] == [r.text for r in embedded.recent]
    for layer, state in embedded.layers.items():
        other = clustered.layers[layer]
        assert other.last_time == state.last_time
        assert other.mass == pytest.approx(state.mass, rel=1e-6)
        np.testing.assert_allclose(other.vector, state.vector, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(other.affinity, state.affinity, rtol=1e-5, atol=1e-6)


async def assert_same_recommendations(engine: Engine, snapshots: ProfileSnapshots, user: str) -> None:
    """A ranking replica's Recommender over the snapshots ranks as the embedded one over its log
    (both with the configured ranking: no refit in either)."""
    models = ConfiguredModels(engine.settings.ranking, engine.topic_model)
    cluster_reads = SnapshotReads(snapshots, engine.topic_model)
    await cluster_reads.refresh()
    assert dict(cluster_reads.popularity.counts) == dict(engine.popularity)
    lists = []
    for reads in (LogReads(engine.profiles, engine.logs, engine._popularity), cluster_reads):
        recommender = Recommender(
            engine.settings, engine.user_ids, engine.store, engine.items, reads, models, Impressions(100)
        )
        recs = await recommender.recommend(RecommendQuery(user, count=10))
        assert not recs.cold_start
        lists.append([(r.item_id, round(r.score, 6)) for r in recs.ranked])
    embedded, clustered = lists
    assert len(embedded) == 10
    assert clustered == embedded


async def test_a_batch_with_an_unknown_item_is_refused_whole_and_publishes_nothing(
    loaded: tuple[App, Client], movies: list[Movie], stream: EventStream
) -> None:
    engine = loaded[0].engine
    ingest = StreamIngest(engine.settings, engine.catalogue, stream)
    user = new_user()
    good = history(user, movies)[:2]
    bad = LoggedEvent(Event(f"{user}-bad", user, EventType.LIKE, time.time(), item_id="no-such-item"), {})
    with pytest.raises(InvalidArgumentError) as refused:
        await ingest.ingest_events([*good, bad])
    assert [v.field for v in refused.value.violations] == ["events[2].item_id"]
    info = await stream.js.stream_info(STREAM)
    assert info.state.messages == 0
