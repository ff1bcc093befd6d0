"""Profiles: the cache of the log's profile snapshots and its commit rule, one writer per user,
WatchProfile streams, and the rebuild of profiles from the log (the source of truth) when the
topics change.

One writer per user: every profile update holds that user's lock (`writers`), so a user's events
are applied in one place and never race, while different users are written concurrently
(docs/interest-model.md §6.2; on a cluster, one worker at a time applies each user's partition).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from driftwise.concurrency import KeyedLocks, Watch, Watches
from driftwise.engine.encoding import EventEncoding
from driftwise.engine.log_access import LogAccess
from driftwise.model.config import InterestModelConfig
from driftwise.model.events import Event
from driftwise.model.layers import Matrix
from driftwise.model.profile import UserProfile
from driftwise.model.topics import TopicModel
from driftwise.storage.event_log import EventLog
from driftwise.storage.item_cache import ItemCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replay:
    """A user's events as they are applied again: each with its unit vector, soft topics (under
    `topics`) and text."""

    events: list[Event]
    vectors: Matrix
    topic_probs: Matrix
    texts: list[str]
    topics: TopicModel


class Profiles:
    def __init__(
        self,
        config: InterestModelConfig,
        dimension: int,
        topics: TopicModel,
        logs: LogAccess,
        items: ItemCache,
        encoding: EventEncoding,
        cache_size: int = 10_000,
    ) -> None:
        self.config = config
        self.dimension = dimension
        self.topics = topics  # the topics profiles are built with now (learned again at refits)
        self.logs = logs
        self.items = items
        self.encoding = encoding
        self.writers = KeyedLocks()
        self.watches: Watches[UserProfile] = Watches()
        # LRU cache of the log's profile snapshots; entries are replaced, never mutated in place
        self._cached: OrderedDict[str, UserProfile] = OrderedDict()
        self._cache_size = cache_size
        self._commits = 0  # writes to the log so far: readers cache a snapshot only if none raced it
        self.rebuild_task: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self.rebuild_task is not None:
            self.rebuild_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.rebuild_task

    def new(self, user_id: str) -> UserProfile:
        topics = self.topics
        return UserProfile.new(user_id, self.config, self.dimension, topics.size, topics.fingerprint)

    def committed(self, profiles: list[UserProfile]) -> None:
        """After a write to the log: the written profiles replace the cached ones and are
        published to their watchers; readers that raced the write do not cache what they read."""
        self._commits += 1
        for profile in profiles:
            self.cache(profile)
            self.watches.publish(profile.user_id, profile)

    def forget(self, user_id: str) -> None:
        """After the user's deletion from the log (caller holds their lock): open watches end."""
        self._commits += 1
        self._cached.pop(user_id, None)
        self.watches.close(user_id)

    def cache(self, profile: UserProfile) -> None:
        self._cached[profile.user_id] = profile
        self._cached.move_to_end(profile.user_id)
        while len(self._cached) > self._cache_size:
            self._cached.popitem(last=False)

    async def load(self, user_id: str, *, writer: bool = False) -> UserProfile | None:
        """The user's newest profile, from the cache or the log, under the current topics.

        A `writer` holds the user's lock, so what it reads is the newest state. A reader's snapshot
        may be overtaken by a write or a deletion while it is read: it is cached only if no write
        at all was committed meanwhile (it must never replace what a writer cached). A profile
        built with other topics (learned again since) is rebuilt from the log first."""
        topics = self.topics.fingerprint
        cached = self._cached.get(user_id)
        if cached is not None and cached.topics == topics:
            return cached
        commits = self._commits
        profile = cached
        if profile is None:
            data = await self.logs.read(EventLog.load_profile, user_id)
            if data is None:
                return None
            profile = UserProfile.from_bytes(data)
        if profile.topics != topics:
            profile = await self._replayed(profile)
        if writer or (commits == self._commits and self._cached.get(user_id) is cached):
            self.cache(profile)
        return profile

    async def _replayed(self, stale: UserProfile) -> UserProfile:
        """`stale` rebuilt from the log under the current topics, its version kept (readers
        of WatchProfile and acks count versions)."""
        profile = await self.replay(stale.user_id) or stale
        profile.version, profile.event_count, profile.updated_at = (
            stale.version,
            stale.event_count,
            stale.updated_at,
        )
        return profile

    async def replay(self, stored_id: str) -> UserProfile | None:
        """A new profile from the user's events in the log (the source of truth); None without."""
        inputs = await self.replay_inputs(stored_id)
        if inputs is None:
            return None
        profile = self.new(stored_id)
        if inputs.events:
            profile.apply_many(
                inputs.events, inputs.vectors, inputs.topic_probs, inputs.texts, self.config, 0.0
            )
        profile.topics = inputs.topics.fingerprint
        return profile

    async def replay_inputs(self, stored_id: str) -> Replay | None:
        """The user's logged events in the order they were applied, with what applying them takes
        (under the current topics); None without events. Events about deleted items are left out."""
        logged = await self.logs.read(EventLog.events_for_user, stored_id)
        if not logged:
            return None
        events = [le.event for le in logged]
        items = await self.items.get([e.item_id for e in events if e.item_id])
        replayable = [e for e in events if not e.item_id or e.item_id in items]
        if len(replayable) < len(events):
            log.warning("user %s: %d events refer to deleted items", stored_id, len(events) - len(replayable))
        # replayed texts were checked (and counted) when they arrived
        vectors, texts = await self.encoding.event_vectors(replayable, items, check_coverage=False)
        topics = self.topics
        matrix = np.stack(vectors) if vectors else np.zeros((0, self.dimension))
        probs = topics.assign(matrix) if vectors else np.zeros((0, topics.size))
        return Replay(replayable, matrix, probs, texts, topics)

    @contextlib.asynccontextmanager
    async def watch(self, stored_id: str) -> AsyncIterator[tuple[UserProfile | None, Watch[UserProfile]]]:
        """The user's profile now (None without events) and a watch on its later changes.

        The watch is registered before the profile is read, so no change is missed; a change may
        arrive both ways (readers skip versions they have sent)."""
        with self.watches.watch(stored_id) as watch:
            async with self.writers.hold([stored_id]):
                current = await self.load(stored_id)
            yield current, watch

    # -- new topics ------------------------------------------------------------------------------

    async def adopt_topics(self, topics: TopicModel) -> None:
        """Serve with new topics: recorded first (the profiles about to be rebuilt depend on
        them), then swapped in; every profile is rebuilt in the background, and any profile read
        before that is rebuilt as it is read (`load`)."""
        await self.logs.write(EventLog.record_learned_topics, topics.to_json())
        self.topics = topics
        log.info("topics learned from %d items: %s", topics.items, "; ".join(topics.labels))
        self.rebuild_stale()

    def rebuild_stale(self) -> None:
        if self.rebuild_task is None or self.rebuild_task.done():
            self.rebuild_task = asyncio.create_task(self._rebuild_all())

    async def _rebuild_all(self, batch: int = 100) -> None:
        """Rebuild and store every profile whose topic affinities were computed with other topics,
        `batch` users at a time under their writer locks (their writes wait, nobody else's)."""
        started, rebuilt, topics = time.perf_counter(), 0, self.topics
        users = await self.logs.read(EventLog.user_ids)
        for i in range(0, len(users), batch):
            async with self.writers.hold(users[i : i + batch]):
                fresh = []
                for user_id in users[i : i + batch]:
                    data = await self.logs.read(EventLog.load_profile, user_id)
                    stored = None if data is None else UserProfile.from_bytes(data)
                    if stored is None or stored.topics == topics.fingerprint:
                        continue
                    # one rebuilt on read meanwhile is stored as it is; the snapshot is not read again
                    profile = self._cached.get(user_id)
                    if profile is None or profile.topics != self.topics.fingerprint:
                        profile = await self._replayed(stored)
                        self.cache(profile)
                    fresh.append(profile)
                snapshots = [(p.user_id, p.version, p.to_bytes()) for p in fresh]
                await self.logs.write(EventLog.save_profiles, snapshots)
                self.committed(fresh)
                rebuilt += len(fresh)
            if topics is not self.topics:  # newer topics came meanwhile: their rebuild follows
                break
        if topics is not self.topics:
            self.rebuild_task = asyncio.create_task(self._rebuild_all())
            return
        await self.logs.write(EventLog.record_profiles_topics, topics.fingerprint)
        log.info("%d profiles rebuilt for new topics in %.1f s", rebuilt, time.perf_counter() - started)
