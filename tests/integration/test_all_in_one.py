"""The all-in-one server over gRPC, with the real Triton encoder and Milvus Lite."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from driftwise.api.convert import timestamp
from driftwise.datasets.movielens import Movie
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.server import App
from driftwise_client.v1 import (
    common_pb2,
    ingest_service_pb2,
    profile_service_pb2,
    ranking_service_pb2,
)
from tests.integration.support import (
    NOW,
    Client,
    animated,
    app_and_client,
    bad_request_fields,
    event,
    get_profile,
    new_user,
    settings_for,
)

pytestmark = pytest.mark.integration


async def grpcurl(*args: str) -> str:
    """Run grpcurl without blocking the event loop that serves the app under test."""
    exe = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    proc = await asyncio.create_subprocess_exec(
        exe, "-plaintext", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_reflection_lists_the_services_and_health_says_serving(loaded: tuple[App, Client]) -> None:
    app, _ = loaded
    listed = (await grpcurl(app.target, "list")).split()
    assert {
        "driftwise.v1.IngestService",
        "driftwise.v1.ProfileService",
        "driftwise.v1.RankingService",
        "driftwise.v1.InsightService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= set(listed)
    methods = (await grpcurl(app.target, "describe", "driftwise.v1.RankingService")).split()
    assert "Recommend" in " ".join(methods)
    health = await grpcurl(
        "-d", '{"service": "driftwise.v1.RankingService"}', app.target, "grpc.health.v1.Health/Check"
    )
    assert json.loads(health)["status"] == "SERVING"


async def test_event_updates_profile_and_recommendations(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    _, client = loaded
    user, liked = new_user(), animated(movies)[:6]
    acks = (
        await client.ingest.IngestEvents(
            ingest_service_pb2.IngestEventsRequest(
                events=[event(user, m.item_id, at=NOW - 600 + i) for i, m in enumerate(liked[:5])]
            )
        )
    ).acks
    assert [a.profile_version for a in acks] == [5] * 5 and not any(a.duplicate for a in acks)
    before = await get_profile(client, user)
    assert before.version == 5 and before.event_count == 5
    assert [e.item_id for e in before.recent_events] == [m.item_id for m in reversed(liked[:5])]
    surface = before.layers[0]
    assert surface.layer == common_pb2.INTEREST_LAYER_SURFACE and surface.mass > 0
    assert surface.top_topics[0].topic == "animation and cartoons for kids"
    assert sum(t.weight for t in surface.top_topics) <= 1.0 + 1e-9

    # one more event (a free-text search, encoded by Triton) moves the profile
    await client.ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(
            events=[event(user, text="romantic comedy about a wedding", type_=common_pb2.EVENT_TYPE_SEARCH)]
        )
    )
    after = await get_profile(client, user)
    assert after.version == 6
    assert [(t.topic, round(t.weight, 6)) for t in after.layers[0].top_topics] != [
        (t.topic, round(t.weight, 6)) for t in surface.top_topics
    ]

    recs = await client.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=user, count=10))
    assert recs.source == ranking_service_pb2.RECOMMENDATION_SOURCE_PERSONALIZED
    assert recs.profile_version == 6 and recs.recommendation_id
    ids = [i.item_id for i in recs.items]
    catalogue = {m.item_id: m for m in movies}
    assert len(ids) == 10 and len(set(ids)) == 10
    assert set(ids) <= set(catalogue) and not set(ids) & {m.item_id for m in liked[:5]}
    assert all(i.explanation.summary and i.explanation.topic and i.explanation.layer for i in recs.items)
    assert all(i.explanation.evidence for i in recs.items)
    kids = [{"Animation", "Children"} & set(catalogue[i].tags) for i in ids]
    assert sum(map(bool, kids)) >= 3, [catalogue[i].title for i in ids]


async def test_duplicate_event_id_is_applied_once(loaded: tuple[App, Client], movies: list[Movie]) -> None:
    _, client = loaded
    user = new_user()
    e = event(user, movies[0].item_id)
    first = (await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=[e]))).acks[0]
    again = (await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=[e, e]))).acks
    assert not first.duplicate and all(a.duplicate for a in again)
    assert all(a.profile_version == 1 for a in again)
    assert (await get_profile(client, user)).event_count == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"user_id": ""}, "events[1].user_id"),
        ({"type": 0}, "events[1].type"),
        ({"type": 42}, "events[1].type"),
        ({"event_time": timestamp(NOW + 86400)}, "events[1].event_time"),
        ({"text": "x" * 5000}, "events[1].text"),
        ({"item_id": "no-such-item"}, "events[1].item_id"),
    ],
)
async def test_invalid_event_is_rejected_and_nothing_is_stored(
    loaded: tuple[App, Client], movies: list[Movie], change: dict[str, object], field: str
) -> None:
    _, client = loaded
    user = new_user()
    good, bad = event(user, movies[0].item_id), event(user, movies[1].item_id)
    for key, value in change.items():
        if isinstance(value, type(bad.event_time)):
            getattr(bad, key).CopyFrom(value)
        else:
            setattr(bad, key, value)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=[good, bad]))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in bad_request_fields(info.value)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await get_profile(client, user)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    ack = (await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=[good]))).acks[0]
    assert not ack.duplicate  # the good event of the rejected batch was not stored either


async def test_stream_events_answers_each_event_in_order(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    _, client = loaded
    user = new_user()
    sent = [
        event(user, movies[0].item_id),
        event("", movies[1].item_id),
        event(user, "nope"),
        event(user, movies[2].item_id),
    ]
    call = client.ingest.StreamEvents(iter([ingest_service_pb2.StreamEventsRequest(event=e) for e in sent]))
    answers = [r async for r in call]
    assert [a.event_id for a in answers] == [e.event_id for e in sent]
    assert [a.WhichOneof("result") for a in answers] == ["ack", "error", "error", "ack"]
    assert answers[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [v.field for v in answers[1].error.field_violations] == ["event.user_id"]
    assert [v.field for v in answers[2].error.field_violations] == ["event.item_id"]
    assert answers[3].ack.profile_version == 2


async def test_new_user_gets_popular_and_fresh_items(loaded: tuple[App, Client]) -> None:
    _, client = loaded
    recs = await client.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=new_user(), count=8))
    assert recs.source == ranking_service_pb2.RECOMMENDATION_SOURCE_COLD_START
    assert len(recs.items) == 8 and recs.profile_version == 0
    assert len({i.explanation.topic for i in recs.items}) >= 3  # diversified across topics


async def test_recommend_filters_and_exclusions(loaded: tuple[App, Client], movies: list[Movie]) -> None:
    _, client = loaded
    user = new_user()
    await client.ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(events=[event(user, m.item_id) for m in animated(movies)[:3]])
    )
    first = await client.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=user, count=5))
    excluded = [i.item_id for i in first.items[:2]]
    cutoff = timestamp(time.mktime((1995, 1, 1, 0, 0, 0, 0, 0, 0)))
    recs = await client.ranking.Recommend(
        ranking_service_pb2.RecommendRequest(
            user_id=user,
            count=5,
            exclude_item_ids=excluded,
            filter=ranking_service_pb2.RecommendFilter(created_after=cutoff),
        )
    )
    catalogue = {m.item_id: m for m in movies}
    assert recs.items and not {i.item_id for i in recs.items} & set(excluded)
    assert all(catalogue[i.item_id].create_time >= cutoff.seconds for i in recs.items)
    none = await client.ranking.Recommend(
        ranking_service_pb2.RecommendRequest(
            user_id=user, filter=ranking_service_pb2.RecommendFilter(categories=["book"])
        )
    )
    assert len(none.items) == 0


async def test_rank_and_watch_validate_their_requests(loaded: tuple[App, Client]) -> None:
    _, client = loaded
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client.ranking.Rank(ranking_service_pb2.RankRequest(user_id="u"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(info.value) == ["candidate_item_ids"]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in client.profiles.WatchProfile(profile_service_pb2.WatchProfileRequest(user_id="")):
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(info.value) == ["user_id"]


async def test_profile_equals_a_replay_of_the_event_log(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    app, client = loaded
    user = new_user()
    for i, m in enumerate(movies[10:30]):  # out of time order, negatives and free text included
        kind = common_pb2.EVENT_TYPE_DISLIKE if i % 5 == 0 else common_pb2.EVENT_TYPE_VIEW
        await client.ingest.IngestEvents(
            ingest_service_pb2.IngestEventsRequest(
                events=[
                    event(user, m.item_id, type_=kind, at=NOW - 10_000 + (i * 7919) % 5000),
                    event(
                        user,
                        text=f"looking for something like {m.title}",
                        type_=common_pb2.EVENT_TYPE_SEARCH,
                        at=NOW - 9000 + i,
                    ),
                ]
            )
        )
    stored = await app.engine.get_profile(user)
    rebuilt = await app.engine.rebuild_profile(user)
    assert rebuilt.version == stored.version == 40
    for layer, state in stored.layers.items():
        np.testing.assert_allclose(rebuilt.layers[layer].vector, state.vector, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(rebuilt.layers[layer].affinity, state.affinity, rtol=1e-4, atol=1e-5)


async def test_delete_user_data_removes_events_profile_and_vectors(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    app, client = loaded
    user = new_user()
    await client.ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(events=[event(user, m.item_id) for m in movies[:4]])
    )
    await app.engine.interest_mirror.flush()  # the mirror is written behind the acknowledgement
    assert len(await app.engine.store.get_interests(user)) == 3
    await client.ingest.IngestEvents(  # a pending mirror write must not bring the rows back
        ingest_service_pb2.IngestEventsRequest(events=[event(user, movies[5].item_id)])
    )
    liked = [m.item_id for m in [*movies[:4], movies[5]]]
    counted = {i: app.engine.popularity.get(i, 0) for i in liked}
    assert all(n >= 1 for n in counted.values())
    deleted = await client.profiles.DeleteUserData(profile_service_pb2.DeleteUserDataRequest(user_id=user))
    assert deleted.deleted_event_count == 5 and deleted.profile_deleted
    await app.engine.interest_mirror.flush()
    assert app.engine.log.events_for_user(user) == [] and app.engine.log.load_profile(user) is None
    # their likes no longer make items popular, in memory and in the log alike
    assert {i: app.engine.popularity.get(i, 0) for i in liked} == {i: n - 1 for i, n in counted.items()}
    assert {i: app.engine.log.item_counts().get(i, 0) for i in liked} == {
        i: n - 1 for i, n in counted.items()
    }
    assert await app.engine.store.get_interests(user) == []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await get_profile(client, user)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_restart_on_the_same_data_keeps_items_and_profiles(
    triton: LocalTritonServer, movies: list[Movie], tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, triton)
    user = "restart-user"
    async with app_and_client(settings) as (app, client):
        await client.upsert_movies(movies[:50])
        await client.ingest.IngestEvents(
            ingest_service_pb2.IngestEventsRequest(
                events=[event(user, m.item_id, at=NOW - 100 + i) for i, m in enumerate(movies[:8])]
            )
        )
        profile = await get_profile(client, user, at=NOW)
        # a restarted engine fits co-occurrence and transitions on the log at once: do it here too
        await app.engine.refit_learned_models()
        request = ranking_service_pb2.RecommendRequest(user_id=user, count=5, as_of_time=timestamp(NOW))
        recs = await client.ranking.Recommend(request)
        count = await app.engine.store.count_items()
    async with app_and_client(settings) as (app, client):
        assert await app.engine.store.count_items() == count == 50
        again = await get_profile(client, user, at=NOW)
        assert again == profile
        recs_again = await client.ranking.Recommend(request)
        assert [i.item_id for i in recs_again.items] == [i.item_id for i in recs.items]
        ack = (
            await client.ingest.IngestEvents(
                ingest_service_pb2.IngestEventsRequest(events=[event(user, movies[9].item_id)])
            )
        ).acks[0]
        assert ack.profile_version == 9


async def test_what_usually_comes_next_is_recommended_after_a_refit(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    app, client = loaded
    # many users watch a western and then, right after, a particular documentary
    western = next(m for m in movies if "Western" in m.tags)
    documentary = next(m for m in movies if "Documentary" in m.tags)
    crowd = [new_user() for _ in range(5)]
    events = [
        event(u, m.item_id, at=NOW - 900 + 10 * k, type_=common_pb2.EVENT_TYPE_VIEW)
        for u in crowd
        for k, m in enumerate((western, documentary))
    ]
    await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=events))
    assert await app.engine.refit_learned_models()
    assert not await app.engine.refit_learned_models()  # nothing new since: nothing to do

    user = new_user()
    await client.ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(events=[event(user, western.item_id)])
    )
    recs = await client.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=user, count=10))
    (next_one,) = [i for i in recs.items if i.item_id == documentary.item_id]
    assert next_one.explanation.reason == ranking_service_pb2.EXPLANATION_REASON_SEQUENCE
    assert [e.item_id for e in next_one.explanation.evidence] == [western.item_id]
    assert next_one.explanation.summary == f"often chosen right after \u201c{western.title}\u201d"


async def test_a_stated_interest_alone_personalises_a_new_user(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    _, client = loaded
    user = new_user()
    stated = event(user, text="animated films for children", type_=common_pb2.EVENT_TYPE_STATED_INTEREST)
    await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=[stated]))
    profile = await get_profile(client, user)
    masses = {layer.layer: layer.mass for layer in profile.layers}
    assert masses[common_pb2.INTEREST_LAYER_DEEP] > 0
    assert masses[common_pb2.INTEREST_LAYER_SURFACE] == 0 and masses[common_pb2.INTEREST_LAYER_MIDDLE] == 0
    recs = await client.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=user, count=10))
    assert recs.source == ranking_service_pb2.RECOMMENDATION_SOURCE_PERSONALIZED
    catalogue = {m.item_id: m for m in movies}
    kids = [{"Animation", "Children"} & set(catalogue[i.item_id].tags) for i in recs.items]
    assert sum(map(bool, kids)) >= 5, [catalogue[i.item_id].title for i in recs.items]

    with pytest.raises(grpc.aio.AioRpcError) as info:  # a stated interest without words
        await client.ingest.IngestEvents(
            ingest_service_pb2.IngestEventsRequest(
                events=[event(new_user(), text=" ", type_=common_pb2.EVENT_TYPE_STATED_INTEREST)]
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(info.value) == ["events[0].text"]
