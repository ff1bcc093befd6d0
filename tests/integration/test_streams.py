"""Real-time ranking over the streams: StreamFeedback, WatchProfile, Rank and pages (issue 5).

The all-in-one server with the real Triton encoder and Milvus Lite, the first 400 MovieLens movies.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence

import grpc
import numpy as np
import pytest

from driftwise.datasets.movielens import Movie
from driftwise.server import App
from driftwise_client.v1 import common_pb2, ingest_service_pb2, profile_service_pb2, ranking_service_pb2
from tests.integration.support import NOW, Client, bad_request_fields, event, exchange, feedback, new_user

pytestmark = pytest.mark.integration

LIKE, DISLIKE = common_pb2.EVENT_TYPE_LIKE, common_pb2.EVENT_TYPE_DISLIKE


async def vectors(app: App, item_ids: Sequence[str]) -> dict[str, np.ndarray]:
    items = await app.engine.store.get_items(item_ids)
    return {i: it.vector.astype(np.float64) for i, it in items.items()}


async def neighbours(app: App, item_id: str, k: int) -> list[str]:
    """The k items nearest to item_id in the catalogue (cosine of the encoder's vectors)."""
    (hits,) = await app.engine.store.search_items(np.stack([(await vectors(app, [item_id]))[item_id]]), k + 1)
    return [item.item_id for item, _ in hits if item.item_id != item_id][:k]


async def recommend(client: Client, user: str, count: int = 10) -> ranking_service_pb2.RecommendResponse:
    return await client.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=user, count=count))


async def test_a_like_on_the_stream_moves_recommendations_toward_that_item(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    app, client = loaded
    user = new_user()
    horror = [m.item_id for m in movies if "Horror" in m.tags][:4]
    target = next(m.item_id for m in movies if "Animation" in m.tags and "Children" in m.tags)
    two_days_ago = NOW - 2 * 86_400  # the history is older than the feedback, as it would be
    history = [event(user, i, at=two_days_ago) for i in horror]
    await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=history))
    near = set(await neighbours(app, target, 20))

    before = await recommend(client, user)
    (answer,) = await exchange(client, [feedback(user, target, LIKE, before.recommendation_id)])
    after = answer.recommendations

    assert answer.recorded and answer.profile_version == 5 and after.profile_version == 5
    vecs = await vectors(app, [target, *(i.item_id for i in before.items), *(i.item_id for i in after.items)])

    def closeness(recs: ranking_service_pb2.RecommendResponse) -> float:
        return float(np.mean([vecs[i.item_id] @ vecs[target] for i in recs.items]))

    assert closeness(after) > closeness(before)
    moved_in = len(near & {i.item_id for i in after.items}) - len(near & {i.item_id for i in before.items})
    assert moved_in >= 1, moved_in  # some of the liked item's 20 nearest items came in
    assert target not in {i.item_id for i in after.items}  # seen now


async def test_a_dislike_removes_the_item_and_its_near_duplicates(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    app, client = loaded
    user = new_user()
    original = next(m for m in movies if "Comedy" in m.tags and "Romance" in m.tags)
    shelf = f"{user}-shelf"  # a category of its own: the filter makes every item a candidate

    def on_shelf(item_id: str, title: str, tags: Sequence[str]) -> common_pb2.Item:
        return common_pb2.Item(item_id=item_id, title=title, tags=tags, category=shelf)

    disliked = on_shelf(f"{user}-x", original.title, original.tags)
    copies = [
        on_shelf(f"{user}-x-dc", f"{original.title} (Director's Cut)", original.tags),
        on_shelf(f"{user}-x-hd", f"{original.title} [Remastered]", original.tags),
    ]
    # 10 items: each layer's search returns all of them, even where Milvus Lite caps it at 10
    others = [on_shelf(f"{user}-{m.item_id}", m.title, m.tags) for m in movies[300:307]]
    await client.ingest.UpsertItems(ingest_service_pb2.UpsertItemsRequest(items=[disliked, *copies, *others]))
    duplicates = {disliked.item_id, *(c.item_id for c in copies)}
    vecs = await vectors(app, list(duplicates))
    threshold = app.engine.settings.ranking.rejected_similarity
    assert all(
        vecs[c.item_id] @ vecs[disliked.item_id] >= threshold for c in copies
    )  # really near-duplicates

    liked = [i for i in await neighbours(app, original.item_id, 10) if not i.startswith(user)][:3]
    await client.ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(events=[event(user, i) for i in liked])
    )
    request = ranking_service_pb2.RecommendRequest(user_id=user, count=20)
    request.filter.categories.append(shelf)
    before = await client.ranking.Recommend(request)
    assert {i.item_id for i in before.items} == duplicates | {o.item_id for o in others}

    (answer,) = await exchange(client, [feedback(user, disliked.item_id, DISLIKE, before.recommendation_id)])
    assert answer.recorded and not duplicates & {i.item_id for i in answer.recommendations.items}
    after = await client.ranking.Recommend(request)
    assert {i.item_id for i in after.items} == {o.item_id for o in others}  # the rest of the shelf stays

    # Rank scores a caller's own candidates: the near-duplicates are kept but put last
    ranked = await client.ranking.Rank(
        ranking_service_pb2.RankRequest(
            user_id=user, candidate_item_ids=[*sorted(duplicates), *(o.item_id for o in others)]
        )
    )
    assert {i.item_id for i in ranked.items[-3:]} == duplicates
    assert [i.item_id for i in ranked.items[:7]] == [
        i.item_id for i in after.items
    ]  # the order Recommend gave


async def test_concurrent_streams_for_one_user_end_as_a_replay_in_time_order(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    """Two StreamFeedback streams and one IngestService.StreamEvents stream send one user's events
    at once, out of time order; the profile equals applying the events in time order."""
    app, client = loaded
    rng = random.Random(5)
    user, reference = new_user(), new_user()
    types = [
        LIKE,
        DISLIKE,
        common_pb2.EVENT_TYPE_CLICK,
        common_pb2.EVENT_TYPE_SKIP,
        common_pb2.EVENT_TYPE_VIEW,
    ]
    times = sorted(rng.sample(range(1, 86_400), 36))
    events = [
        event(user, rng.choice(movies).item_id, type_=rng.choice(types), at=NOW - 86_400 + t) for t in times
    ]
    for e in events:
        e.impression_id = "impression-1"
    shuffled = rng.sample(events, len(events))
    parts = [shuffled[0::3], shuffled[1::3], shuffled[2::3]]

    async def over_feedback(part: list[common_pb2.Event]) -> None:
        responses = await exchange(
            client, [ranking_service_pb2.StreamFeedbackRequest(event=e, count=3) for e in part]
        )
        assert all(r.recorded and r.HasField("recommendations") for r in responses)

    async def over_ingest(part: list[common_pb2.Event]) -> None:
        async def requests() -> AsyncIterator[ingest_service_pb2.StreamEventsRequest]:
            for e in part:
                yield ingest_service_pb2.StreamEventsRequest(event=e)

        acks = [r async for r in client.ingest.StreamEvents(requests())]
        assert all(r.HasField("ack") for r in acks) and len(acks) == len(part)

    await asyncio.gather(over_feedback(parts[0]), over_feedback(parts[1]), over_ingest(parts[2]))

    in_time_order = []
    for e in events:  # already sorted by time
        copy = common_pb2.Event()
        copy.CopyFrom(e)
        copy.user_id, copy.event_id = reference, f"{e.event_id}-replayed"
        in_time_order.append(copy)
    await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=in_time_order))

    live, replayed = await app.engine.get_profile(user), await app.engine.get_profile(reference)
    assert live.version == replayed.version == len(events)
    for layer, state in live.layers.items():
        other = replayed.layers[layer]
        np.testing.assert_allclose(state.vector, other.vector, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(state.affinity, other.affinity, rtol=1e-9, atol=1e-12)
        assert state.rejected is not None and other.rejected is not None
        np.testing.assert_allclose(state.rejected, other.rejected, rtol=1e-9, atol=1e-12)
        assert state.mass == pytest.approx(other.mass) and state.last_time == other.last_time
    assert [(r.item_id, r.type, r.time) for r in live.recent] == [
        (r.item_id, r.type, r.time) for r in replayed.recent
    ]


async def test_a_bad_feedback_message_gets_its_own_error_and_the_stream_goes_on(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    app, client = loaded
    user = new_user()
    good = feedback(user, movies[0].item_id, LIKE, "imp")
    no_impression = feedback(user, movies[1].item_id, LIKE, "")
    unknown_item = feedback(user, "no-such-item", LIKE, "imp")
    too_many = feedback(user, movies[2].item_id, LIKE, "imp", count=1000)
    later = feedback(user, movies[3].item_id, common_pb2.EVENT_TYPE_CLICK, "imp")
    responses = await exchange(client, [good, no_impression, unknown_item, too_many, later])

    assert [r.event_id for r in responses] == [
        r.event.event_id for r in (good, no_impression, unknown_item, too_many, later)
    ]
    ok, *bad, last = responses
    assert ok.recorded and ok.HasField("recommendations") and ok.profile_version == 1
    expected_fields = [["event.impression_id"], ["event.item_id"], ["count"]]
    for response, fields in zip(bad, expected_fields, strict=True):
        assert not response.recorded and response.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert [v.field for v in response.error.field_violations] == fields
    assert last.recorded and last.profile_version == 2  # nothing of the bad ones was stored
    assert len((await app.engine.get_profile(user)).recent) == 2


async def test_watch_profile_pushes_each_change_and_ends_when_the_user_is_deleted(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    _, client = loaded
    user = new_user()
    call = client.profiles.WatchProfile(profile_service_pb2.WatchProfileRequest(user_id=user))
    await asyncio.sleep(0.5)  # the watch is registered before the first event (no profile yet)
    seen: list[int] = []
    for i, movie in enumerate(movies[:5]):
        await client.ingest.IngestEvents(
            ingest_service_pb2.IngestEventsRequest(events=[event(user, movie.item_id)])
        )
        update = await asyncio.wait_for(call.read(), timeout=10)
        assert isinstance(update, profile_service_pb2.WatchProfileResponse)
        seen.append(update.profile.version)
        assert update.profile.recent_events[0].item_id == movie.item_id, i
    assert seen == [1, 2, 3, 4, 5]

    await client.profiles.DeleteUserData(profile_service_pb2.DeleteUserDataRequest(user_id=user))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        while True:
            await asyncio.wait_for(call.read(), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_watch_opened_on_a_known_user_starts_with_the_current_profile(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    _, client = loaded
    user = new_user()
    await client.ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(events=[event(user, m.item_id) for m in movies[:3]])
    )
    call = client.profiles.WatchProfile(profile_service_pb2.WatchProfileRequest(user_id=user))
    first = await asyncio.wait_for(call.read(), timeout=10)
    assert isinstance(first, profile_service_pb2.WatchProfileResponse) and first.profile.version == 3
    call.cancel()


async def test_rank_scores_only_the_callers_candidates(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    _, client = loaded
    user = new_user()
    await client.ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(
            events=[event(user, m.item_id) for m in movies if "Animation" in m.tags][:3]
        )
    )
    candidates = [m.item_id for m in movies[100:130]]
    ranked = await client.ranking.Rank(
        ranking_service_pb2.RankRequest(user_id=user, candidate_item_ids=candidates)
    )
    assert sorted(i.item_id for i in ranked.items) == sorted(candidates)
    scores = [i.score for i in ranked.items]
    assert scores == sorted(scores, reverse=True)
    assert all(i.explanation.summary for i in ranked.items)

    cold = await client.ranking.Rank(
        ranking_service_pb2.RankRequest(user_id=new_user(), candidate_item_ids=candidates[:5])
    )
    assert sorted(i.item_id for i in cold.items) == sorted(candidates[:5])

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client.ranking.Rank(
            ranking_service_pb2.RankRequest(
                user_id=user, candidate_item_ids=[candidates[0], "", "no-such-item"]
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(info.value) == ["candidate_item_ids[1]"]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client.ranking.Rank(
            ranking_service_pb2.RankRequest(user_id=user, candidate_item_ids=[candidates[0], "no-such-item"])
        )
    assert bad_request_fields(info.value) == ["candidate_item_ids[1]"]


async def test_recommend_pages_never_repeat_items_and_end(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    _, client = loaded
    user, stranger = new_user(), new_user()
    await client.ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(events=[event(user, m.item_id) for m in movies[:3]])
    )
    # a category of 8 items: pages of 5 end after two
    shelf = [
        common_pb2.Item(item_id=f"{user}-shelf-{i}", title=m.title, tags=m.tags, category=f"{user}-shelf")
        for i, m in enumerate(movies[200:208])
    ]
    await client.ingest.UpsertItems(ingest_service_pb2.UpsertItemsRequest(items=shelf))
    request = ranking_service_pb2.RecommendRequest(user_id=user, count=5)
    request.filter.categories.append(f"{user}-shelf")
    first = await client.ranking.Recommend(request)
    assert len(first.items) == 5 and first.next_page_token
    request.page_token = first.next_page_token
    second = await client.ranking.Recommend(request)
    ids = [i.item_id for i in (*first.items, *second.items)]
    assert sorted(ids) == sorted(i.item_id for i in shelf)  # every item once
    assert len(second.items) == 3 and not second.next_page_token

    for token, who in (("not-a-token", user), (first.next_page_token, stranger)):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.ranking.Recommend(
                ranking_service_pb2.RecommendRequest(user_id=who, page_token=token)
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_fields(info.value) == ["page_token"]
