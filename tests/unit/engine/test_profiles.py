"""The engine's profile room against a real event log (SQLite), without Milvus or Triton: the cache
and its commit rule, and the popularity counts ranking reads."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from driftwise.engine.log_access import LogAccess
from driftwise.engine.popularity import Popularity
from driftwise.engine.profiles import Profiles
from driftwise.model.config import InterestModelConfig
from driftwise.model.profile import UserProfile
from driftwise.model.topics import TopicModel, normalize_rows
from driftwise.storage.event_log import EventLog
from driftwise.storage.vector_store import UNKNOWN_TIME, StoredItem

DIM = 8


@pytest.fixture
async def profiles(tmp_path: Path) -> AsyncIterator[Profiles]:
    centroids = normalize_rows(np.random.default_rng(0).normal(size=(3, DIM))).astype(np.float32)
    topics = TopicModel(("a", "b", "c"), centroids, 0.1)
    logs = LogAccess(tmp_path / "events.sqlite")
    # no item cache or encoder: these tests never replay events (only stale topics would)
    room = Profiles(InterestModelConfig(), DIM, topics, logs, items=None, encoding=None)  # type: ignore[arg-type]
    yield room
    await room.close()
    await logs.close()


async def stored(profiles: Profiles, user_id: str, version: int) -> UserProfile:
    profile = profiles.new(user_id)
    profile.version = version
    await profiles.logs.write(EventLog.append, [], [(user_id, version, profile.to_bytes())], 0.0)
    return profile


async def test_a_profile_is_read_from_the_log_once_then_from_the_cache(profiles: Profiles) -> None:
    assert await profiles.load("nobody") is None
    await stored(profiles, "u1", 3)
    first = await profiles.load("u1")
    assert first is not None and first.version == 3
    await profiles.logs.write(EventLog.save_profiles, [])  # a write that does not touch u1
    assert await profiles.load("u1") is first  # cached: the same object, not read again


async def test_a_read_raced_by_a_commit_is_not_cached(profiles: Profiles) -> None:
    await stored(profiles, "u1", 1)
    reading = asyncio.create_task(profiles.load("u1"))
    await asyncio.sleep(0)  # the reader is now waiting for the log
    newer = profiles.new("u1")
    newer.version = 2
    profiles.committed([newer])  # a writer commits meanwhile
    old = await reading
    assert old is not None and old.version == 1  # what the reader read
    assert await profiles.load("u1") is newer  # but it did not replace what the writer cached


async def test_a_commit_is_published_to_watches_and_forget_ends_them(profiles: Profiles) -> None:
    async with profiles.watch("u1") as (current, watch):
        assert current is None
        newer = profiles.new("u1")
        newer.version = 1
        profiles.committed([newer])
        assert await asyncio.wait_for(watch.next(), 1) is newer
        profiles.forget("u1")
        assert await asyncio.wait_for(watch.next(), 1) is None  # the watch ended


def item(item_id: str) -> StoredItem:
    return StoredItem(item_id, item_id, "", UNKNOWN_TIME, np.ones(DIM, dtype=np.float32), {})


def test_popularity_is_log_scaled_by_the_top_item_and_follows_deletions() -> None:
    popularity = Popularity()
    popularity.add(Counter({"hit": 7, "rare": 1}))
    candidates = popularity.candidates({i: item(i) for i in ("hit", "rare", "new")})
    scores = {c.item_id: c.popularity for c in candidates}
    assert scores["hit"] == pytest.approx(1.0) and scores["new"] == 0.0
    assert scores["rare"] == pytest.approx(np.log1p(1) / np.log1p(7))
    popularity.remove(Counter({"hit": 7}))  # its users were deleted
    assert "hit" not in popularity.counts
    assert popularity.candidates({"rare": item("rare")})[0].popularity == pytest.approx(1.0)
