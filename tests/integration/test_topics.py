"""Topics that mean something in serving: a small catalogue uses the general taxonomy, a large
enough one gets topics learned from its items (named, with examples), kept across restarts, and
every profile is rebuilt under them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from driftwise.datasets.movielens import Movie
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.model.profile import UserProfile
from driftwise_client.v1 import common_pb2, ingest_service_pb2, ranking_service_pb2
from tests.integration.support import NOW, app_and_client, event, get_profile, new_user, settings_for

pytestmark = pytest.mark.integration

BOOKS = [
    ("joy", "The Joy of Cooking", "recipes, baking, kitchen basics"),
    ("three-body", "The Three-Body Problem", "science fiction, aliens, physics"),
    ("pride", "Pride and Prejudice", "romance, marriage, society"),
    ("gatsby", "The Great Gatsby", "jazz age, wealth, tragedy"),
    ("sapiens", "Sapiens", "history of humankind"),
    ("dune", "Dune", "desert planet, science fiction"),
]


def deep_topics(profile: object) -> list[str]:
    (deep,) = [s for s in profile.layers if s.layer == common_pb2.INTEREST_LAYER_DEEP]  # type: ignore[attr-defined]
    return [t.topic for t in deep.top_topics]


async def test_a_stated_interest_maps_onto_the_topic_it_names(
    triton: LocalTritonServer, tmp_path: Path
) -> None:
    """Six books: too few to learn topics from, so the taxonomy's labels are the topics."""
    async with app_and_client(settings_for(tmp_path, triton)) as (app, client):
        items = [common_pb2.Item(item_id=i, title=t, description=d) for i, t, d in BOOKS]
        await client.ingest.UpsertItems(ingest_service_pb2.UpsertItemsRequest(items=items))
        user = new_user()
        stated = event(user, text="I love cooking and recipes", type_=common_pb2.EVENT_TYPE_STATED_INTEREST)
        await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=[stated]))
        await app.engine.refit_learned_models()
        assert not app.engine.topic_model.learned
        profile = await get_profile(client, user)
        assert deep_topics(profile)[0] == "cooking and food"
        recs = await client.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=user, count=3))
        assert recs.items[0].item_id == "joy"
        assert "cooking and food" in recs.items[0].explanation.summary


async def test_topics_are_learned_from_the_catalogue_and_kept(
    triton: LocalTritonServer, movies: list[Movie], tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, triton)
    user = new_user()
    animations = [m for m in movies if "Animation" in m.tags][:6]
    async with app_and_client(settings) as (app, client):
        await client.upsert_movies(movies)
        await client.ingest.IngestEvents(
            ingest_service_pb2.IngestEventsRequest(
                events=[event(user, m.item_id, at=NOW - 100 + i) for i, m in enumerate(animations)]
            )
        )
        taxonomy = app.engine.topic_model
        before = await get_profile(client, user, at=NOW)
        assert not any(t.examples for s in before.layers for t in s.top_topics)

        await app.engine.refit_learned_models()
        topics = app.engine.topic_model
        # 400 movies, 25 per topic: 16 topics, each named and shown with its most central titles
        assert topics.learned and topics.size == 16 and topics is not taxonomy
        assert all(1 <= len(e) <= 3 for e in topics.examples) and len(set(topics.labels)) == 16
        after = await get_profile(client, user, at=NOW)
        top = next(t for s in after.layers if s.layer == common_pb2.INTEREST_LAYER_DEEP for t in s.top_topics)
        assert top.topic in topics.labels and list(top.examples) == list(
            topics.examples[topics.labels.index(top.topic)]
        )
        # the animations the user liked are mostly in one learned topic, whose examples are animations
        assert top.weight > 0.5
        recs = await client.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=user, count=5))
        assert all(any(label in i.explanation.summary for label in topics.labels) for i in recs.items)

        assert app.engine.profiles.rebuild_task is not None
        await app.engine.profiles.rebuild_task  # the stored profiles are rebuilt under the new topics
        with sqlite3.connect(tmp_path / "events.sqlite") as db:
            (state,) = db.execute("SELECT state FROM profiles WHERE user_id = ?", (user,)).fetchone()
        stored = UserProfile.from_bytes(state)
        assert stored.topics == topics.fingerprint and stored.version == len(animations)

    async with app_and_client(settings) as (app, client):  # restarted: the same topics, no rebuild
        assert app.engine.topic_model.fingerprint == topics.fingerprint
        assert app.engine.profiles.rebuild_task is None
        assert await get_profile(client, user, at=NOW) == after
