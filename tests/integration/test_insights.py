"""InsightService on the all-in-one server, with the real Triton encoder and Milvus Lite, on
MovieLens: 400 movies and every rating of them by 30 users, then a refit (co-occurrence)."""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from driftwise.api.convert import timestamp
from driftwise.datasets.movielens import Movie, Rating, load_ratings
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.model.config import TuningConfig
from driftwise.model.events import NEGATIVE_TYPES
from driftwise.server import App
from driftwise.settings import ObservabilitySettings
from driftwise_client.v1 import common_pb2, ingest_service_pb2, profile_service_pb2, ranking_service_pb2
from driftwise_client.v1 import insight_service_pb2 as pb
from tests.integration.support import (
    Client,
    app_and_client,
    bad_request_fields,
    exchange,
    feedback,
    new_user,
    settings_for,
)

pytestmark = pytest.mark.integration

USERS = 30


@pytest.fixture(scope="module")
def ratings(movies: list[Movie]) -> list[Rating]:
    known = {m.item_id for m in movies}
    rated = [r for r in load_ratings() if r.item_id in known]
    users = set(list(dict.fromkeys(r.user_id for r in rated))[:USERS])
    return [r for r in rated if r.user_id in users]


@pytest.fixture(scope="module")
async def insight_app(
    triton: LocalTritonServer,
    movies: list[Movie],
    ratings: list[Rating],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[App, Client]]:
    """The catalogue, the ratings as events (in time order, as MovieLens is loaded), one refit
    (without self-tuning: seconds) and a metrics endpoint."""
    settings = settings_for(tmp_path_factory.mktemp("insights"), triton).model_copy(
        update={
            "tuning": TuningConfig(enabled=False),
            "observability": ObservabilitySettings(metrics_port=0),
        }
    )
    async with app_and_client(settings) as (app, client):
        await client.upsert_movies(movies)
        events = [
            common_pb2.Event(
                event_id=r.event_id,
                user_id=r.user_id,
                type=int(r.type),  # type: ignore[arg-type]
                item_id=r.item_id,
                event_time=timestamp(r.time),
            )
            for r in ratings
        ]
        for i in range(0, len(events), 500):
            await client.ingest.IngestEvents(
                ingest_service_pb2.IngestEventsRequest(events=events[i : i + 500])
            )
        assert await app.engine.refit_learned_models()
        yield app, client


async def rpc_error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


async def test_the_service_is_registered_with_health(insight_app: tuple[App, Client]) -> None:
    _, client = insight_app  # reflection: test_all_in_one.py lists the services
    health = health_pb2_grpc.HealthStub(client.channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service="driftwise.v1.InsightService"))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_item_pages_cover_the_catalogue_exactly_once(
    insight_app: tuple[App, Client], movies: list[Movie]
) -> None:
    _, client = insight_app
    listed, token, pages = [], "", 0
    while True:
        page = await client.insight.ListItems(pb.ListItemsRequest(page_size=37, page_token=token))
        assert page.total_items == len(movies)
        listed += [i.item_id for i in page.items]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == -(-len(movies) // 37) and listed == sorted(m.item_id for m in movies)
    first = (await client.insight.ListItems(pb.ListItemsRequest())).items[0]
    movie = next(m for m in movies if m.item_id == first.item_id)
    assert first.title == movie.title and first.create_time.seconds == int(movie.create_time or 0)

    # a title filter, ignoring case, in pages as small as one
    titles, token = [], ""
    while True:
        page = await client.insight.ListItems(
            pb.ListItemsRequest(page_size=1, page_token=token, title_contains="STAR")
        )
        titles += [i.title for i in page.items]
        token = page.next_page_token
        if not token:
            break
    assert sorted(titles) == sorted(m.title for m in movies if "star" in m.title.lower()) and len(titles) == 3

    page = await client.insight.ListItems(pb.ListItemsRequest(page_size=2))
    error = await rpc_error(
        client.insight.ListItems(pb.ListItemsRequest(page_token=page.next_page_token, title_contains="x"))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_request_fields(error) == ["page_token"]
    error = await rpc_error(client.insight.ListItems(pb.ListItemsRequest(page_size=501)))
    assert bad_request_fields(error) == ["page_size"]


async def test_a_free_text_search_finds_science_fiction(
    insight_app: tuple[App, Client], movies: list[Movie]
) -> None:
    _, client = insight_app
    tags = {m.item_id: m.tags for m in movies}
    found = (await client.insight.SearchItems(pb.SearchItemsRequest(text="space adventure", count=5))).items
    assert len(found) == 5
    sci_fi = [h.item.title for h in found if "Sci-Fi" in tags[h.item.item_id]]
    assert len(sci_fi) >= 3, [h.item.title for h in found]
    similarities = [h.similarity for h in found]
    assert similarities == sorted(similarities, reverse=True) and all(-1 <= s <= 1 for s in similarities)
    assert len((await client.insight.SearchItems(pb.SearchItemsRequest(text="comedy"))).items) == 10
    error = await rpc_error(client.insight.SearchItems(pb.SearchItemsRequest(text="  ", count=200)))
    assert sorted(bad_request_fields(error)) == ["count", "text"]


async def test_an_item_with_its_neighbours_followers_and_interactions(
    insight_app: tuple[App, Client], movies: list[Movie], ratings: list[Rating]
) -> None:
    _, client = insight_app
    counts = Counter(r.item_id for r in ratings)
    popular, _ = counts.most_common(1)[0]
    got = await client.insight.GetItem(pb.GetItemRequest(item_id=popular, neighbours=8))
    assert got.item.item_id == popular
    neighbours = [h.item.item_id for h in got.neighbours]
    assert len(neighbours) == 8 and popular not in neighbours and len(set(neighbours)) == 8
    similarities = [h.similarity for h in got.neighbours]
    assert similarities == sorted(similarities, reverse=True)

    # the co-occurrence of the refit: what the users chose right after it
    shares = [f.share for f in got.followed_by]
    assert 0 < len(shares) <= 8 and shares == sorted(shares, reverse=True)
    assert all(0 < s <= 1 for s in shares) and sum(shares) <= 1 + 1e-9
    assert popular not in {f.item.item_id for f in got.followed_by}
    by_user: dict[str, list[str]] = {}
    for r in sorted(ratings, key=lambda r: r.time):
        by_user.setdefault(r.user_id, []).append(r.item_id)
    near = {  # within the co-occurrence window, before or after it (the strongest edge is no text edge)
        other
        for seq in by_user.values()
        for i, item in enumerate(seq)
        if item == popular
        for other in seq[max(0, i - 10) : i + 11]
    }
    assert got.followed_by[0].item.item_id in near - {popular}

    # newest event time first; among equal times the one that arrived last
    about = [r for _, r in sorted(((r.time, k), r) for k, r in enumerate(ratings) if r.item_id == popular)][
        ::-1
    ]
    assert [(i.user_id, i.event_id) for i in got.recent_interactions] == [
        (r.user_id, r.event_id) for r in about[:20]
    ]
    assert got.recent_interactions[0].type == int(about[0].type)
    assert got.positive_events == sum(1 for r in about if r.type not in NEGATIVE_TYPES)

    error = await rpc_error(client.insight.GetItem(pb.GetItemRequest(item_id="no-such-movie")))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await rpc_error(client.insight.GetItem(pb.GetItemRequest(item_id="", neighbours=101)))
    assert sorted(bad_request_fields(error)) == ["item_id", "neighbours"]


async def test_users_most_recently_active_first_in_pages(
    insight_app: tuple[App, Client], ratings: list[Rating]
) -> None:
    _, client = insight_app
    listed: list[pb.UserSummary] = []
    token = ""
    while True:
        page = await client.insight.ListUsers(pb.ListUsersRequest(page_size=7, page_token=token))
        listed += page.users
        token = page.next_page_token
        if not token:
            break
    ids = [u.user_id for u in listed]
    assert len(ids) == len(set(ids)) == page.total_users  # each user exactly once
    times = [(u.last_event_time.ToNanoseconds(), u.user_id) for u in listed]
    assert times == sorted(times, key=lambda t: (-t[0], t[1]))
    events = Counter(r.user_id for r in ratings)
    newest = {r.user_id: r.time for r in sorted(ratings, key=lambda r: r.time)}
    summaries = {u.user_id: u for u in listed}
    for user, n in events.items():
        assert summaries[user].event_count == summaries[user].profile_version == n
        assert summaries[user].last_event_time.ToSeconds() == int(newest[user])

    ones = (await client.insight.ListUsers(pb.ListUsersRequest(user_id_prefix="1", page_size=500))).users
    assert {u.user_id for u in ones} == {u for u in ids if u.startswith("1")} and ones
    error = await rpc_error(client.insight.ListUsers(pb.ListUsersRequest(page_token="made-up")))
    assert bad_request_fields(error) == ["page_token"]


async def test_topic_history_ends_at_the_profiles_current_weights(
    insight_app: tuple[App, Client], ratings: list[Rating]
) -> None:
    _, client = insight_app
    user, n = Counter(r.user_id for r in ratings).most_common(1)[0]
    history = await client.insight.GetTopicHistory(
        pb.GetTopicHistoryRequest(user_id=user, max_points=40, top_topics=4)
    )
    points = history.points
    applied = [r for r in ratings if r.user_id == user]  # in the order they were ingested
    assert len(points) == 40 and n > 40
    assert points[0].event_id == applied[0].event_id and points[-1].event_id == applied[-1].event_id
    assert [p.time.ToNanoseconds() for p in points] == sorted(p.time.ToNanoseconds() for p in points)
    last = points[-1]
    profile = (
        await client.profiles.GetProfile(
            profile_service_pb2.GetProfileRequest(user_id=user, top_topics=4, as_of_time=last.time)
        )
    ).profile
    assert [layer.layer for layer in last.layers] == [layer.layer for layer in profile.layers]
    for then, now in zip(last.layers, profile.layers, strict=True):
        assert then.mass == pytest.approx(now.mass, rel=1e-9)
        assert [t.topic for t in then.top_topics] == [t.topic for t in now.top_topics]
        assert [t.weight for t in then.top_topics] == pytest.approx(
            [t.weight for t in now.top_topics], rel=1e-6
        )
        assert [t.affinity for t in then.top_topics] == pytest.approx([t.affinity for t in now.top_topics])
    # the weights moved along the way
    assert points[0].layers[2].top_topics[0].weight != pytest.approx(last.layers[2].top_topics[0].weight)

    error = await rpc_error(client.insight.GetTopicHistory(pb.GetTopicHistoryRequest(user_id="nobody")))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await rpc_error(
        client.insight.GetTopicHistory(
            pb.GetTopicHistoryRequest(user_id=user, max_points=1001, top_topics=21)
        )
    )
    assert sorted(bad_request_fields(error)) == ["max_points", "top_topics"]


async def test_topic_temperature_previews_the_weights_and_the_list_and_stores_nothing(
    insight_app: tuple[App, Client], ratings: list[Rating]
) -> None:
    _, client = insight_app
    user, _ = Counter(r.user_id for r in ratings).most_common(2)[1]
    as_of = timestamp(max(r.time for r in ratings) + 3600)

    async def profile(temperature: float = 0.0) -> profile_service_pb2.Profile:
        request = profile_service_pb2.GetProfileRequest(
            user_id=user, top_topics=50, as_of_time=as_of, topic_temperature=temperature
        )
        return (await client.profiles.GetProfile(request)).profile

    async def recommend(temperature: float, token: str = "") -> ranking_service_pb2.RecommendResponse:
        request = ranking_service_pb2.RecommendRequest(
            user_id=user, count=10, as_of_time=as_of, topic_temperature=temperature, page_token=token
        )
        return await client.ranking.Recommend(request)

    before, served_list = await profile(), await recommend(0.0)
    peaked, flat = await profile(0.02), await profile(5.0)
    for sharp, even, served in zip(peaked.layers, flat.layers, before.layers, strict=True):
        assert [t.topic for t in sharp.top_topics] == [t.topic for t in served.top_topics]  # same order
        assert sharp.top_topics[0].weight > served.top_topics[0].weight > even.top_topics[0].weight
        assert even.top_topics[0].weight - even.top_topics[-1].weight < 0.05
    sharp_list, even_list = await recommend(0.01), await recommend(10.0)
    assert [i.item_id for i in sharp_list.items] != [i.item_id for i in even_list.items]
    assert max(i.explanation.topic_weight for i in sharp_list.items) > 0.5
    assert max(i.explanation.topic_weight for i in even_list.items) < 0.2
    # nothing was stored: the server's temperature gives what it gave before the previews
    assert await profile() == before and peaked.version == before.version
    assert (await recommend(0.0)).items == served_list.items

    # the page token fixes the temperature
    second = await recommend(10.0, even_list.next_page_token)
    assert not {i.item_id for i in second.items} & {i.item_id for i in even_list.items}
    error = await rpc_error(recommend(0.0, even_list.next_page_token))
    assert bad_request_fields(error) == ["page_token"]
    for bad in (0.001, 11.0):
        assert bad_request_fields(await rpc_error(recommend(bad))) == ["topic_temperature"]
        assert bad_request_fields(await rpc_error(profile(bad))) == ["topic_temperature"]


def counts_of(response: pb.GetOnlineQualityResponse) -> dict[str, tuple[int, ...]]:
    """Every count of the answer, by where it is (for differences before and after)."""

    def row(c: pb.FeedbackCounts) -> tuple[int, ...]:
        return (c.issued, c.clicks, c.likes, c.skips, c.dislikes)

    counts = {"total": row(response.total)}
    counts.update({f"reason {q.reason}": row(q.counts) for q in response.by_reason})
    counts.update({f"layer {q.layer}": row(q.counts) for q in response.by_layer})
    counts.update({f"position {q.position}": row(q.counts) for q in response.by_position})
    return counts


def delta(
    after: dict[str, tuple[int, ...]], before: dict[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    changed = {}
    for key, now in after.items():
        was = before.get(key, (0,) * 5)
        if now != was:
            changed[key] = tuple(a - b for a, b in zip(now, was, strict=True))
    return changed


async def test_online_quality_counts_issued_items_and_feedback_under_reason_layer_and_position(
    insight_app: tuple[App, Client], ratings: list[Rating]
) -> None:
    app, client = insight_app
    user = ratings[0].user_id
    before = counts_of(await client.insight.GetOnlineQuality(pb.GetOnlineQualityRequest()))
    recs = await client.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=user, count=10))
    issued = counts_of(await client.insight.GetOnlineQuality(pb.GetOnlineQualityRequest()))
    assert issued["total"][0] - before["total"][0] == 10
    assert delta(issued, before)["position 1"] == (1, 0, 0, 0, 0)
    reasons = Counter(i.explanation.reason for i in recs.items)
    for reason, n in reasons.items():
        assert delta(issued, before)[f"reason {reason}"][0] == n

    third = recs.items[2]
    like = feedback(user, third.item_id, common_pb2.EVENT_TYPE_LIKE, recs.recommendation_id, count=5)
    not_shown = feedback(
        user, "no-such-list-item", common_pb2.EVENT_TYPE_SKIP, recs.recommendation_id, count=5
    )
    not_shown.event.item_id = next(
        r.item_id for r in ratings if r.item_id not in {i.item_id for i in recs.items}
    )
    answers = await exchange(client, [like, not_shown, like])  # the like again: a duplicate
    assert [a.impression_match for a in answers] == [
        ranking_service_pb2.IMPRESSION_MATCH_SHOWN,
        ranking_service_pb2.IMPRESSION_MATCH_NOT_IN_LIST,
        ranking_service_pb2.IMPRESSION_MATCH_SHOWN,
    ]
    refreshed = sum(len(a.recommendations.items) for a in answers)
    after = await client.insight.GetOnlineQuality(pb.GetOnlineQualityRequest(bucket_seconds=10, buckets=6))
    changed = delta(counts_of(after), issued)
    # the lists StreamFeedback answered with are issued too; one like, once, where the item was
    assert changed.pop("total") == (refreshed, 0, 1, 0, 0)
    assert changed.pop(f"reason {third.explanation.reason}")[2] == 1
    assert changed.pop(f"layer {third.explanation.layer}")[2] == 1
    assert changed.pop("position 3")[2] == 1
    assert all(row[1:] == (0, 0, 0, 0) for row in changed.values()), changed
    # counted in the time bucket of the list the like answers
    assert len(after.over_time) == 6 and sum(b.counts.likes for b in after.over_time) >= 1
    starts = [b.start_time.seconds for b in after.over_time]
    assert (
        starts == list(range(starts[0], starts[0] + 60, 10)) and starts[-1] <= time.time() < starts[-1] + 10
    )

    # the same counts on the metrics endpoint
    assert app.metrics_port is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{app.metrics_port}/metrics", timeout=10) as http:
        text = http.read().decode()
    reason = ranking_service_pb2.ExplanationReason.Name(third.explanation.reason).removeprefix(
        "EXPLANATION_REASON_"
    )
    layer = common_pb2.InterestLayer.Name(third.explanation.layer).removeprefix("INTEREST_LAYER_")
    assert (
        f'driftwise_feedback_total{{kind="like",layer="{layer.lower()}",reason="{reason.lower()}"}}' in text
    )
    assert "driftwise_recommended_items_total{" in text

    # feedback sent as an event through IngestEvents, with the list's id, counts the same (once)
    fifth = recs.items[4]
    skip = feedback(user, fifth.item_id, common_pb2.EVENT_TYPE_SKIP, recs.recommendation_id, count=5).event
    for _ in range(2):  # the second time a duplicate
        await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=[skip]))
    again = delta(
        counts_of(await client.insight.GetOnlineQuality(pb.GetOnlineQualityRequest())), counts_of(after)
    )
    assert again.pop("total") == (0, 0, 0, 1, 0)
    assert again.pop("position 5")[3] == 1

    error = await rpc_error(client.insight.GetOnlineQuality(pb.GetOnlineQualityRequest(bucket_seconds=5)))
    assert bad_request_fields(error) == ["bucket_seconds"]


async def test_server_stats(
    insight_app: tuple[App, Client], movies: list[Movie], triton: LocalTritonServer
) -> None:
    app, client = insight_app
    user = new_user()
    await client.ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(
            events=[
                common_pb2.Event(
                    event_id=f"e{k}", user_id=user, type=common_pb2.EVENT_TYPE_VIEW, item_id=movies[k].item_id
                )
                for k in range(6)
            ]
        )
    )
    for _ in range(3):
        await client.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=user))
    stats = await client.insight.GetServerStats(pb.GetServerStatsRequest())
    assert stats.items == len(movies)
    assert stats.users == (await client.insight.ListUsers(pb.ListUsersRequest())).total_users
    assert stats.events == app.engine.log.event_count()
    assert stats.events_per_second >= 6 / 61
    latency = stats.recommend_latency
    assert latency.calls >= 3 and latency.window_seconds == 300 and 0 < latency.p50_ms <= latency.p99_ms
    assert stats.encoder.up and stats.encoder.address == triton.grpc_url
    assert stats.vector_store.up and stats.vector_store.address == "local"
    assert (stats.encoder_model, stats.embedding_dimension, stats.role) == ("text_encoder", 384, "all")
    assert stats.model.fitted_events > 0 and stats.model.refit_time.seconds > 0
    assert 0 < stats.start_time.seconds <= time.time()


async def test_no_method_answers_internal_on_an_empty_server(
    triton: LocalTritonServer, tmp_path: Path
) -> None:
    async with app_and_client(settings_for(tmp_path, triton)) as (_, client):
        assert (await client.insight.ListItems(pb.ListItemsRequest())).total_items == 0
        assert (await client.insight.ListUsers(pb.ListUsersRequest())).users == []
        assert (await client.insight.SearchItems(pb.SearchItemsRequest(text="anything"))).items == []
        quality = await client.insight.GetOnlineQuality(pb.GetOnlineQualityRequest())
        assert quality.total.issued == 0 and len(quality.over_time) == 30
        stats = await client.insight.GetServerStats(pb.GetServerStatsRequest())
        assert (stats.items, stats.users, stats.events, stats.recommend_latency.calls) == (0, 0, 0, 0)


def _token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


INTS = (-(2**31), -1, 0, 1, 9, 10, 20, 21, 100, 101, 500, 501, 1000, 1001, 1440, 1441, 3600, 3601, 2**31 - 1)
TEXTS = ("", " ", "é", "'", '"', "\\", "a\x00b", "\U0010ffff", "x" * 5000, "Star", "1")
TOKENS = (
    "",
    "garbage",
    "a" * 3000,
    _token({"m": "ListUsers", "c": [1.5, "u"], "f": "x"}),
    _token({"m": "ListItems", "c": [None], "f": "e3b0c44298fc"}),
    _token({"m": "ListItems", "c": ["a'b"], "f": "e3b0c44298fc"}),
    _token({"m": "ListUsers", "c": [1.0, "x" * 200], "f": "e3b0c44298fc"}),
    _token([1, 2, 3]),
    base64.urlsafe_b64encode(b"[" * 1000).decode(),
)


async def test_odd_requests_get_invalid_argument_naming_fields_never_internal(
    insight_app: tuple[App, Client],
) -> None:
    _, client = insight_app
    s = client.insight
    calls: list[object] = []
    for n in INTS:
        calls += [
            s.ListUsers(pb.ListUsersRequest(page_size=n)),
            s.ListItems(pb.ListItemsRequest(page_size=n)),
            s.SearchItems(pb.SearchItemsRequest(text="space", count=n)),
            s.GetItem(pb.GetItemRequest(item_id="1", neighbours=n)),
            s.GetTopicHistory(pb.GetTopicHistoryRequest(user_id="1", max_points=n, top_topics=n % 30)),
            s.GetOnlineQuality(pb.GetOnlineQualityRequest(bucket_seconds=n, buckets=n)),
        ]
    for text in TEXTS:
        calls += [
            s.ListUsers(pb.ListUsersRequest(user_id_prefix=text)),
            s.ListItems(pb.ListItemsRequest(title_contains=text)),
            s.SearchItems(pb.SearchItemsRequest(text=text)),
            s.GetItem(pb.GetItemRequest(item_id=text)),
            s.GetTopicHistory(pb.GetTopicHistoryRequest(user_id=text)),
        ]
    for token in TOKENS:
        calls += [
            s.ListUsers(pb.ListUsersRequest(page_token=token)),
            s.ListItems(pb.ListItemsRequest(page_token=token)),
        ]
    codes: Counter[grpc.StatusCode] = Counter()
    for call in calls:
        try:
            await call  # type: ignore[misc]
            codes[grpc.StatusCode.OK] += 1
        except grpc.aio.AioRpcError as err:
            codes[err.code()] += 1
            assert err.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), err
            if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
                assert bad_request_fields(err), err
    assert codes[grpc.StatusCode.OK] and codes[grpc.StatusCode.INVALID_ARGUMENT], codes
