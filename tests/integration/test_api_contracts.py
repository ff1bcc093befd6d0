"""The API's contracts as a caller sees them over gRPC: how many items Recommend returns and when
it offers another page, what a page token may be sent with, event ids (unique per user), what
feedback on an unknown or another user's impression means, one rule for every id field, and
events without a client clock."""

from __future__ import annotations

import time

import grpc
import pytest

from driftwise.datasets.movielens import Movie
from driftwise.server import App
from driftwise_client.v1 import common_pb2, ingest_service_pb2, ranking_service_pb2
from tests.integration.support import (
    Client,
    bad_request_fields,
    event,
    exchange,
    feedback,
    get_profile,
    new_user,
)

pytestmark = pytest.mark.integration

Recommend = ranking_service_pb2.RecommendRequest


async def ingest(client: Client, *events: common_pb2.Event) -> ingest_service_pb2.IngestEventsResponse:
    return await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=events))


async def pages_of(client: Client, first: Recommend) -> list[list[str]]:
    """The item ids of every page, following next_page_token until it is empty."""
    request = Recommend()
    request.CopyFrom(first)
    pages: list[list[str]] = []
    while True:
        response = await client.ranking.Recommend(request)
        pages.append([i.item_id for i in response.items])
        if not response.next_page_token:
            return pages
        assert len(pages) < 20, "pages never end"
        request.page_token = response.next_page_token  # the same fields with the new token


async def shelf(client: Client, movies: list[Movie], size: int) -> str:
    """A category of `size` items of its own; returns its name."""
    category = f"shelf-{new_user()}"
    items = [
        common_pb2.Item(item_id=f"{category}-{i}", title=m.title, tags=m.tags, category=category)
        for i, m in enumerate(movies[100 : 100 + size])
    ]
    await client.ingest.UpsertItems(ingest_service_pb2.UpsertItemsRequest(items=items))
    return category


# -- Recommend: count and pages ------------------------------------------------------------------


async def test_a_personal_recommend_returns_count_items_beyond_the_first_search(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    app, client = loaded
    assert app.settings.candidates_per_layer == 10  # Milvus Lite's cap: count 50 needs more
    user = new_user()
    await ingest(client, event(user, movies[0].item_id))
    for count in (20, 50, 100):
        response = await client.ranking.Recommend(Recommend(user_id=user, count=count, include_seen=True))
        assert response.source == ranking_service_pb2.RECOMMENDATION_SOURCE_PERSONALIZED
        assert len(response.items) == count, count
        assert len({i.item_id for i in response.items}) == count
        assert response.next_page_token  # the catalogue has hundreds more


async def test_seen_items_left_out_are_made_up_from_a_deeper_search(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    _, client = loaded
    user = new_user()
    # 30 seen items, all near each other: the first search of each layer finds mostly them
    animation = [m.item_id for m in movies if "Animation" in m.tags][:30]
    await ingest(client, *(event(user, item) for item in animation))
    response = await client.ranking.Recommend(Recommend(user_id=user, count=40))
    returned = [i.item_id for i in response.items]
    assert len(returned) == 40 and not set(returned) & set(animation)


@pytest.mark.parametrize("personal", [True, False], ids=["personal", "cold-start"])
async def test_a_page_token_comes_exactly_when_more_items_exist(
    loaded: tuple[App, Client], movies: list[Movie], personal: bool
) -> None:
    _, client = loaded
    user = new_user()
    if personal:
        await ingest(client, event(user, movies[0].item_id))
    category = await shelf(client, movies, 25)
    request = Recommend(user_id=user, count=10)
    request.filter.categories.append(category)

    pages = await pages_of(client, request)
    assert [len(p) for p in pages] == [10, 10, 5]
    assert len({i for p in pages for i in p}) == 25

    for count in (25, 50):  # the whole shelf on one page: no token for an empty page after it
        request.count = count
        pages = await pages_of(client, request)
        assert [len(p) for p in pages] == [25], count


async def test_a_cold_start_recommend_returns_up_to_the_largest_count(
    loaded: tuple[App, Client],
) -> None:
    _, client = loaded
    response = await client.ranking.Recommend(Recommend(user_id=new_user(), count=100))
    assert response.source == ranking_service_pb2.RECOMMENDATION_SOURCE_COLD_START
    assert len(response.items) == 100 and response.next_page_token


async def test_a_page_token_is_refused_with_another_count_or_filter(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    _, client = loaded
    user = new_user()
    await ingest(client, event(user, movies[0].item_id))
    first = Recommend(user_id=user, count=5)
    token = (await client.ranking.Recommend(first)).next_page_token
    assert token

    same = Recommend(user_id=user, count=5, page_token=token)
    assert len((await client.ranking.Recommend(same)).items) == 5

    other_count = Recommend(user_id=user, count=6, page_token=token)
    other_filter = Recommend(user_id=user, count=5, page_token=token)
    other_filter.filter.categories.append("movie")
    other_user = Recommend(user_id=new_user(), count=5, page_token=token)
    for request, named in ((other_count, "count"), (other_filter, "filter"), (other_user, "user_id")):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.ranking.Recommend(request)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_fields(info.value) == ["page_token"]
        assert named in (info.value.details() or ""), info.value.details()


# -- event ids -----------------------------------------------------------------------------------


async def test_event_ids_are_unique_per_user(loaded: tuple[App, Client], movies: list[Movie]) -> None:
    _, client = loaded
    alice, bob = new_user(), new_user()
    shared_id = f"click-{new_user()}"
    first = await ingest(client, event(alice, movies[1].item_id, event_id=shared_id))
    second = await ingest(client, event(bob, movies[2].item_id, event_id=shared_id))
    assert not first.acks[0].duplicate and not second.acks[0].duplicate  # two users, two events
    assert (await get_profile(client, bob)).event_count == 1

    again = await ingest(client, event(alice, movies[3].item_id, event_id=shared_id))
    assert again.acks[0].duplicate  # alice's own id again: applied once
    alice_profile = await get_profile(client, alice)
    assert alice_profile.event_count == 1
    assert [e.item_id for e in alice_profile.recent_events] == [movies[1].item_id]


# -- feedback on impressions ---------------------------------------------------------------------


CLICK = common_pb2.EVENT_TYPE_CLICK


async def test_feedback_says_how_its_impression_matched(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    _, client = loaded
    user, stranger = new_user(), new_user()
    await ingest(client, event(user, movies[0].item_id), event(stranger, movies[0].item_id))
    shown = await client.ranking.Recommend(Recommend(user_id=user, count=5))
    strangers = await client.ranking.Recommend(Recommend(user_id=stranger, count=5))
    not_shown = next(m.item_id for m in movies[5:] if m.item_id not in {i.item_id for i in shown.items})

    responses = await exchange(
        client,
        [
            feedback(user, shown.items[2].item_id, CLICK, shown.recommendation_id, count=3),
            feedback(user, not_shown, CLICK, shown.recommendation_id, count=3),
            feedback(user, movies[6].item_id, CLICK, "not-an-id-this-server-issued", count=3),
            feedback(user, strangers.items[0].item_id, CLICK, strangers.recommendation_id, count=3),
        ],
    )

    on_list, off_list, unknown, others = responses
    assert on_list.recorded and on_list.impression_match == ranking_service_pb2.IMPRESSION_MATCH_SHOWN
    assert on_list.impression_position == 3
    assert off_list.recorded and off_list.impression_match == ranking_service_pb2.IMPRESSION_MATCH_NOT_IN_LIST
    assert unknown.recorded and unknown.impression_match == ranking_service_pb2.IMPRESSION_MATCH_UNKNOWN
    assert unknown.impression_position == 0
    # another user's list: refused, nothing stored
    assert not others.recorded and others.WhichOneof("result") == "error"
    assert others.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [v.field for v in others.error.field_violations] == ["event.impression_id"]
    assert (await get_profile(client, user)).event_count == 1 + 3

    # the lists a feedback refreshes are impressions too
    refreshed = on_list.recommendations
    (answer,) = await exchange(
        client, [feedback(user, refreshed.items[0].item_id, CLICK, refreshed.recommendation_id, count=3)]
    )
    assert answer.impression_match == ranking_service_pb2.IMPRESSION_MATCH_SHOWN
    assert answer.impression_position == 1


# -- one id rule, event times --------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["   ", "a\nb", "a\x00b", "a\\b", " padded", "padded "])
async def test_every_id_field_follows_one_rule(
    loaded: tuple[App, Client], movies: list[Movie], bad: str
) -> None:
    _, client = loaded
    user = new_user()
    for name in ("event_id", "user_id", "item_id", "impression_id"):
        e = event(user, movies[0].item_id)
        setattr(e, name, bad)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await ingest(client, event(user, movies[1].item_id), e)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_fields(info.value) == [f"events[1].{name}"], name
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client.ranking.Recommend(Recommend(user_id=bad))
    assert bad_request_fields(info.value) == ["user_id"]
    with pytest.raises(grpc.aio.AioRpcError):  # nothing of the refused batches was stored
        await get_profile(client, user)


async def test_an_event_without_a_time_happened_when_the_server_received_it(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    _, client = loaded
    user = new_user()
    e = event(user, movies[0].item_id)
    e.ClearField("event_time")
    before = time.time()
    (ack,) = (await ingest(client, e)).acks
    after = time.time()
    assert not ack.duplicate
    (recent,) = (await get_profile(client, user)).recent_events
    assert before - 0.01 <= recent.event_time.ToNanoseconds() / 1e9 <= after + 0.01
