"""The sync client against the live all-in-one server (real Triton encoder, Milvus Lite)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from driftwise_client import (
    DeadlineExceeded,
    DriftwiseClient,
    InvalidArgument,
    Item,
    NotFound,
    feedback_request,
    new_event,
    stream_event_request,
)
from driftwise_client.v1 import common_pb2, ranking_service_pb2

pytestmark = pytest.mark.live


def user() -> str:
    return f"sync-{uuid.uuid4().hex[:12]}"


def ids(items: list[Item], category: str, tag: str | None = None) -> list[str]:
    return [i.item_id for i in items if i.category == category and (tag is None or tag in i.tags)]


def test_upsert_ingest_recommend_and_profile(target: str, items: list[Item]) -> None:
    u = user()
    liked = ids(items, "movie", "sci-fi")[:3]
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    events = [new_event(u, "LIKE", item_id=i, event_time=an_hour_ago) for i in liked]
    with DriftwiseClient(target) as client:
        acks = client.ingest_events(events).acks
        assert [a.event_id for a in acks] == [e.event_id for e in events]
        assert not any(a.duplicate for a in acks) and acks[-1].profile_version == 3

        again = client.ingest_events(events).acks  # event ids are idempotency keys
        assert all(a.duplicate for a in again)

        recs = client.recommend(u, count=5)
        assert recs.source == ranking_service_pb2.RECOMMENDATION_SOURCE_PERSONALIZED
        assert recs.profile_version == 3 and recs.recommendation_id
        assert len(recs.items) == 5
        assert not set(liked) & {i.item_id for i in recs.items}, "seen items are not recommended"
        assert recs.items[0].attributes["source"] == "client-tests"

        profile = client.get_profile(u, top_topics=3)
        assert profile.user_id == u and profile.version == 3 and profile.event_count == 3
        assert {e.item_id for e in profile.recent_events} == set(liked)

        ranked = client.rank(u, ids(items, "book"))
        assert {i.item_id for i in ranked.items} == set(ids(items, "book"))
        scores = [i.score for i in ranked.items]
        assert scores == sorted(scores, reverse=True)


def test_a_cold_user_gets_cold_start_recommendations(target: str) -> None:
    with DriftwiseClient(target) as client:
        recs = client.recommend(user(), count=3)
    assert recs.source == ranking_service_pb2.RECOMMENDATION_SOURCE_COLD_START and len(recs.items) == 3


def test_pages_follow_next_page_token_without_repeats(target: str, items: list[Item]) -> None:
    u = user()
    books = ids(items, "book")
    with DriftwiseClient(target) as client:
        client.ingest_events([new_event(u, "LIKE", item_id=ids(items, "movie", "sci-fi")[0])])
        pages = list(client.iter_recommendation_pages(u, page_size=4, categories=["book"]))
        got = [i.item_id for p in pages for i in p.items]
        assert len(pages) >= 3 and all(len(p.items) == 4 for p in pages[:-1])
        assert len(got) == len(set(got)), "pages never repeat items"
        assert set(got) == set(books), "the pages cover the whole category"
        assert not pages[-1].next_page_token

        limited = list(client.iter_recommendations(u, page_size=3, categories=["book"], max_items=5))
        assert len(limited) == 5 and len({i.item_id for i in limited}) == 5


def test_invalid_argument_carries_field_violations(target: str) -> None:
    # no user_id, and an event id with white space at its end (every id follows one rule)
    bad = common_pb2.Event(event_id="e-bad ", type=common_pb2.EVENT_TYPE_LIKE, item_id="movie-0")
    with DriftwiseClient(target) as client, pytest.raises(InvalidArgument) as info:
        client.ingest_events([bad])
    error = info.value
    assert error.code.name == "INVALID_ARGUMENT" and error.attempts == 1, "not retried"
    assert error.details.domain == "driftwise" and error.reason == "INVALIDARGUMENT"
    fields = [v.field for v in error.field_violations]
    assert sorted(fields) == ["events[0].event_id", "events[0].user_id"]
    assert all(isinstance(v, tuple) and len(v) == 2 and v.description for v in error.field_violations)


def test_not_found_and_delete_user_data(target: str, items: list[Item]) -> None:
    u = user()
    with DriftwiseClient(target) as client:
        with pytest.raises(NotFound) as info:
            client.get_profile(u)
        assert info.value.details.reason == "NOTFOUND"
        client.ingest_events([new_event(u, "CLICK", item_id=ids(items, "game")[0])])
        assert client.get_profile(u).version == 1
        deleted = client.delete_user_data(u)
        assert deleted.deleted_event_count == 1 and deleted.profile_deleted
        with pytest.raises(NotFound):
            client.get_profile(u)


def test_delete_items(target: str) -> None:
    with DriftwiseClient(target) as client:
        client.upsert_items([Item(item_id="tmp-1", title="A temporary item", category="tmp")])
        assert client.delete_items(["tmp-1", "never-existed"]).deleted_count == 1
        with pytest.raises(TypeError):
            client.delete_items("tmp-1")


def test_stream_feedback_exchange(target: str, items: list[Item]) -> None:
    u = user()
    with DriftwiseClient(target) as client:
        shown = client.recommend(u, count=5)
        item = shown.items[0].item_id
        with client.stream_feedback() as stream:
            answer = stream.exchange(
                feedback_request(new_event(u, "LIKE", item_id=item, impression_id=shown.recommendation_id), 4)
            )
            assert answer.recorded and answer.profile_version == 1
            assert answer.WhichOneof("result") == "recommendations"
            assert len(answer.recommendations.items) == 4
            assert item not in {i.item_id for i in answer.recommendations.items}

            # a bad message gets its own error; the stream goes on
            bad = stream.exchange(feedback_request(new_event(u, "LIKE", item_id=item), 4))
            assert bad.WhichOneof("result") == "error" and not bad.recorded
            assert [v.field for v in bad.error.field_violations] == ["event.impression_id"]

            again = stream.exchange(
                feedback_request(new_event(u, "CLICK", item_id=item, impression_id=shown.recommendation_id))
            )
            assert again.recorded and again.profile_version == 2
        assert client.get_profile(u).version == 2

        # the iterable form: requests are sent as the answers are read
        requests = [
            feedback_request(
                new_event(u, "SKIP", item_id=i.item_id, impression_id=shown.recommendation_id), 2
            )
            for i in shown.items[1:3]
        ]
        answers = list(client.stream_feedback(requests, timeout=60))
        assert [a.event_id for a in answers] == [r.event.event_id for r in requests]
        assert all(a.recorded for a in answers) and answers[-1].profile_version == 4


def test_stream_events_acks_and_per_message_errors(target: str, items: list[Item]) -> None:
    u = user()
    good = new_event(u, "VIEW", item_id=ids(items, "movie")[0])
    bad = new_event(u, "VIEW")  # neither item nor text
    with DriftwiseClient(target) as client, client.stream_events() as stream:
        first = stream.exchange(stream_event_request(good))
        second = stream.exchange(stream_event_request(bad))
        third = stream.exchange(stream_event_request(good))
    assert first.WhichOneof("result") == "ack" and first.ack.profile_version == 1
    assert second.WhichOneof("result") == "error" and second.error.code == 3
    assert third.ack.duplicate


def test_watch_profile_sees_changes_and_stream_deadline(target: str, items: list[Item]) -> None:
    u = user()
    with DriftwiseClient(target) as client:
        client.ingest_events([new_event(u, "LIKE", item_id=ids(items, "book")[0])])
        started = time.monotonic()
        # streams get no default deadline; this one has one
        with pytest.raises(DeadlineExceeded), client.watch_profile(u, timeout=1.5) as watch:
            first = next(watch)
            assert first.version == 1
            client.ingest_events([new_event(u, "LIKE", item_id=ids(items, "book")[1])])
            assert next(watch).version == 2
            next(watch)  # nothing changes: the deadline ends the stream
        assert 1.0 < time.monotonic() - started < 10


def test_unary_deadline_exceeded(target: str) -> None:
    with DriftwiseClient(target, timeout=0.002) as client, pytest.raises(DeadlineExceeded) as info:
        for _ in range(20):  # a Recommend takes milliseconds: one of these cannot make 2 ms
            client.recommend(user(), count=50, diversity=0.5)
    assert info.value.code.name == "DEADLINE_EXCEEDED"


def test_insight_methods(target: str, items: list[Item]) -> None:
    u = user()
    liked = ids(items, "movie", "sci-fi")[:4]
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with DriftwiseClient(target) as client:
        client.ingest_events([new_event(u, "LIKE", item_id=i, event_time=an_hour_ago) for i in liked])
        listed = [i.item_id for i in client.iter_items(page_size=7)]
        assert listed == sorted(i.item_id for i in items)
        page = client.list_items(page_size=2, title_contains="ALIEN")
        assert [i.title for i in page.items] == ["Alien", "Aliens"] and page.total_items == len(items)

        hits = client.search_items("a crew in space meets a creature", count=3)
        assert hits[0].item.title == "Alien" and len(hits) == 3
        item = client.get_item(liked[0], neighbours=4)
        assert len(item.neighbours) == 4 and liked[0] not in {h.item.item_id for h in item.neighbours}
        assert u in {i.user_id for i in item.recent_interactions}

        assert u in {s.user_id for s in client.iter_users(user_id_prefix="sync-")}
        history = client.get_topic_history(u, max_points=2)
        assert [p.event_id for p in history][-1] == client.get_profile(u).recent_events[0].event_id
        with pytest.raises(NotFound):
            client.get_topic_history(user())

        sharp = client.get_profile(u, topic_temperature=0.02).layers[0].top_topics[0].weight
        assert sharp > client.get_profile(u).layers[0].top_topics[0].weight
        recs = client.recommend(u, count=3, topic_temperature=5.0)
        assert len(recs.items) == 3
        with pytest.raises(InvalidArgument) as info:
            client.recommend(u, topic_temperature=50.0)
        assert [field for field, _ in info.value.field_violations] == ["topic_temperature"]

        stats = client.get_server_stats()
        assert stats.role == "all" and stats.items == len(items) and stats.recommend_latency.calls >= 1
        quality = client.get_online_quality(bucket_seconds=10, buckets=3)
        assert quality.total.issued >= 3 and len(quality.over_time) == 3
