"""The asyncio client against the live all-in-one server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from driftwise_client import (
    AsyncDriftwiseClient,
    InvalidArgument,
    Item,
    NotFound,
    feedback_request,
    new_event,
)
from driftwise_client.v1 import ranking_service_pb2

pytestmark = pytest.mark.live


def user() -> str:
    return f"async-{uuid.uuid4().hex[:12]}"


def ids(items: list[Item], category: str, tag: str | None = None) -> list[str]:
    return [i.item_id for i in items if i.category == category and (tag is None or tag in i.tags)]


async def test_ingest_recommend_and_pages(target: str, items: list[Item]) -> None:
    u = user()
    async with AsyncDriftwiseClient(target) as client:
        await client.wait_until_ready(30)
        liked = ids(items, "movie", "animation")[:2]
        acks = (await client.ingest_events([new_event(u, "LIKE", item_id=i) for i in liked])).acks
        assert acks[-1].profile_version == 2

        recs = await client.recommend(u, count=4, categories=["movie"])
        assert recs.source == ranking_service_pb2.RECOMMENDATION_SOURCE_PERSONALIZED
        assert all(i.category == "movie" for i in recs.items) and len(recs.items) == 4

        got = [i.item_id async for i in client.iter_recommendations(u, page_size=5, categories=["movie"])]
        assert len(got) == len(set(got)) == len(ids(items, "movie")) - len(liked)

        profile = await client.get_profile(u)
        assert profile.version == 2


async def test_typed_errors(target: str) -> None:
    async with AsyncDriftwiseClient(target) as client:
        with pytest.raises(InvalidArgument) as info:
            await client.recommend("", count=1000, diversity=2.0)
        assert {v.field for v in info.value.field_violations} == {"user_id", "count", "diversity"}
        with pytest.raises(NotFound):
            await client.get_profile(user())


async def test_stream_feedback_with_send_and_with_an_async_generator(target: str, items: list[Item]) -> None:
    u = user()
    async with AsyncDriftwiseClient(target) as client:
        shown = await client.recommend(u, count=6)

        async with client.stream_feedback() as stream:
            await stream.send(
                feedback_request(
                    new_event(
                        u, "LIKE", item_id=shown.items[0].item_id, impression_id=shown.recommendation_id
                    ),
                    3,
                )
            )
            await stream.send(
                feedback_request(
                    new_event(
                        u, "LIKE", item_id=shown.items[1].item_id, impression_id=shown.recommendation_id
                    ),
                    3,
                )
            )
            await stream.done_writing()
            answers = [a async for a in stream]
        assert [a.profile_version for a in answers] == [1, 2]
        assert all(len(a.recommendations.items) == 3 for a in answers)

        async def requests() -> AsyncIterator[ranking_service_pb2.StreamFeedbackRequest]:
            for scored in shown.items[2:4]:
                yield feedback_request(
                    new_event(u, "CLICK", item_id=scored.item_id, impression_id=shown.recommendation_id), 2
                )
                await asyncio.sleep(0)

        versions = [a.profile_version async for a in client.stream_feedback(requests(), timeout=60)]
        assert versions == [3, 4]


async def test_watch_profile_until_the_user_is_deleted(target: str, items: list[Item]) -> None:
    u = user()
    async with AsyncDriftwiseClient(target) as client:
        await client.ingest_events([new_event(u, "LIKE", item_id=ids(items, "game")[0])])
        seen: list[int] = []

        async def watch() -> None:
            async for profile in client.watch_profile(u, timeout=60):
                seen.append(profile.version)
                if profile.version == 1:
                    await client.ingest_events([new_event(u, "LIKE", item_id=ids(items, "game")[1])])
                elif profile.version == 2:
                    await client.delete_user_data(u)

        with pytest.raises(NotFound):  # the stream ends with NOT_FOUND when the data is deleted
            await asyncio.wait_for(watch(), 60)
        assert seen == [1, 2]


async def test_insight_methods(target: str, items: list[Item]) -> None:
    u = user()
    async with AsyncDriftwiseClient(target) as client:
        await client.ingest_events(
            [new_event(u, "LIKE", item_id=i) for i in ids(items, "movie", "animation")[:2]]
        )
        listed = [i.item_id async for i in client.iter_items(page_size=5)]
        assert listed == sorted(i.item_id for i in items)
        assert u in {s.user_id async for s in client.iter_users(user_id_prefix="async-")}
        assert (await client.list_users(page_size=1)).total_users >= 1
        hits = await client.search_items("a clownfish in the ocean", count=2)
        assert hits[0].item.title == "Finding Nemo"
        got = await client.get_item(hits[0].item.item_id)
        assert got.item.title == "Finding Nemo" and len(got.neighbours) == 10
        assert len(await client.get_topic_history(u)) == 2
        assert (await client.get_server_stats()).embedding_dimension > 0
        assert len((await client.get_online_quality()).over_time) == 30
        with pytest.raises(NotFound):
            await client.get_item("no-such-item")
