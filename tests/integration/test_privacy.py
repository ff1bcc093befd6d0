"""Pseudonymised user ids (privacy.pseudonymise_user_ids) in the all-in-one app: callers use their
ids, the stores hold only keyed hashes, deletion works through the pseudonym, and a data directory
is never reopened under another scheme."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import grpc
import pytest

from driftwise.datasets.movielens import Movie
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.privacy import SchemeMismatchError, UserIdScheme
from driftwise.settings import PrivacySettings, Settings
from driftwise.storage.vector_store import INTERESTS
from driftwise_client.v1 import (
    ingest_service_pb2,
    insight_service_pb2,
    profile_service_pb2,
    ranking_service_pb2,
)
from tests.integration.support import NOW, app_and_client, event, get_profile, settings_for

pytestmark = pytest.mark.integration

USER = "alice@example.com"


def stored_user_ids(data_dir: Path) -> set[str]:
    """Every user id the event log holds, read with sqlite itself."""
    with contextlib.closing(sqlite3.connect(data_dir / "events.sqlite")) as db:
        return {
            row[0]
            for table in ("events", "profiles")
            for row in db.execute(f"SELECT DISTINCT user_id FROM {table}")
        }


def pseudonymising(settings: Settings, key_file: Path) -> Settings:
    privacy = PrivacySettings(pseudonymise_user_ids=True, user_id_key_file=key_file)
    return settings.model_copy(update={"privacy": privacy})


async def test_pseudonymised_ids_never_reach_the_stores(
    triton: LocalTritonServer, movies: list[Movie], tmp_path: Path
) -> None:
    key_file = tmp_path / "user-id.key"
    key_file.write_text("0123456789abcdef" * 4 + "\n")
    data_dir = tmp_path / "data"
    settings = pseudonymising(settings_for(data_dir, triton), key_file)
    pseudonym = UserIdScheme.from_key_file(key_file).stored_id(USER)
    async with app_and_client(settings) as (app, client):
        await client.upsert_movies(movies[:40])
        liked = movies[:5]
        events = [event(USER, m.item_id, at=NOW - 100 + i) for i, m in enumerate(liked)]
        acks = (await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=events))).acks
        assert [a.profile_version for a in acks] == [5] * 5

        # the caller sees their own id, the stores only the pseudonym
        profile = await get_profile(client, USER, at=NOW)
        assert profile.user_id == USER and profile.version == 5
        assert stored_user_ids(data_dir) == {pseudonym}
        await app.engine.interest_mirror.flush()
        assert len(await app.engine.store.get_interests(pseudonym)) == 3
        assert await app.engine.store.get_interests(USER) == []
        assert app.engine.store.client is not None
        rows = app.engine.store.client.query(INTERESTS, filter="", output_fields=["user_id"], limit=100)
        assert {r["user_id"] for r in rows} == {pseudonym}

        recs = await client.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=USER, count=5))
        assert recs.source == ranking_service_pb2.RECOMMENDATION_SOURCE_PERSONALIZED
        assert not {i.item_id for i in recs.items} & {m.item_id for m in liked}  # seen: found by pseudonym
        # InsightService: no list of ids nobody knows; interactions without the pseudonym; the
        # caller's id still names the user's topic history
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.insight.ListUsers(insight_service_pb2.ListUsersRequest())
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "pseudonymised" in (refused.value.details() or "")
        item = await client.insight.GetItem(insight_service_pb2.GetItemRequest(item_id=liked[0].item_id))
        assert [i.user_id for i in item.recent_interactions] == [""]
        history = await client.insight.GetTopicHistory(
            insight_service_pb2.GetTopicHistoryRequest(user_id=USER)
        )
        assert len(history.points) == 5
        watch = client.profiles.WatchProfile(profile_service_pb2.WatchProfileRequest(user_id=USER))
        first = await watch.read()
        assert first.profile.user_id == USER and first.profile.version == 5

        deleted = await client.profiles.DeleteUserData(
            profile_service_pb2.DeleteUserDataRequest(user_id=USER)
        )
        assert deleted.deleted_event_count == 5 and deleted.profile_deleted
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await watch.read()
        assert ended.value.code() == grpc.StatusCode.NOT_FOUND
        await app.engine.interest_mirror.flush()
        assert stored_user_ids(data_dir) == set()
        assert app.engine.store.client.query(INTERESTS, filter="", output_fields=["user_id"], limit=100) == []

        await client.ingest.IngestEvents(
            ingest_service_pb2.IngestEventsRequest(events=[event("bob", movies[0].item_id)])
        )
        assert stored_user_ids(data_dir) == {UserIdScheme.from_key_file(key_file).stored_id("bob")}

    # the same data directory under the same key: the same users
    async with app_and_client(settings) as (_, client):
        assert (await get_profile(client, "bob")).version == 1
    # plain ids, or another key, would split every user in two: refused before serving
    with pytest.raises(SchemeMismatchError, match="pseudonymised"):
        async with app_and_client(settings_for(data_dir, triton)):
            pass
    other_key = tmp_path / "other.key"
    other_key.write_text("f" * 64)
    with pytest.raises(SchemeMismatchError):
        async with app_and_client(pseudonymising(settings_for(data_dir, triton), other_key)):
            pass
