"""RankingService and ProfileService of a stateless ranking replica (cluster mode on JetStream):
any replica serves any user, from the profile snapshots the workers write.

- Recommend and Rank: the embedded server's `Recommender`, reading the snapshots
  (cluster/reads.py); items from Milvus.
- StreamFeedback: feedback is published like any event (cluster/ingest.py). Its impression id is
  matched against the lists this replica issued; a list another replica issued is unknown here
  and the feedback is recorded all the same.
- GetProfile reads the snapshot; WatchProfile watches it in the KV bucket (every change a worker
  writes, on any replica).
- DeleteUserData purges the user's events from the stream, then the snapshot and the Milvus rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

from driftwise.cluster.event_stream import EventStream
from driftwise.cluster.ingest import StreamIngest
from driftwise.cluster.reads import SnapshotReads
from driftwise.cluster.snapshots import ProfileSnapshots, Snapshot
from driftwise.engine.profile_view import ProfileView, explain_profile
from driftwise.engine.recommend import Recommender
from driftwise.engine.types import Ack, Recommendations, RecommendQuery
from driftwise.engine.writes import match_feedback
from driftwise.errors import NotFoundError
from driftwise.model.impressions import Impressions, Matched
from driftwise.model.profile import UserProfile
from driftwise.model.refit import Refitted
from driftwise.privacy import UserIdScheme
from driftwise.settings import Settings
from driftwise.storage.event_log import LoggedEvent
from driftwise.storage.vector_store import MilvusVectorStore


class SnapshotChanges:
    """The profile after each change the workers write; None once it is deleted."""

    def __init__(self, updates: AsyncGenerator[Snapshot | None, None]) -> None:
        self._updates = updates

    async def next(self) -> UserProfile | None:
        snapshot = await anext(self._updates)
        return None if snapshot is None else snapshot.profile


class SnapshotRanking:
    def __init__(
        self,
        settings: Settings,
        user_ids: UserIdScheme,
        recommender: Recommender,
        reads: SnapshotReads,
        snapshots: ProfileSnapshots,
        ingest: StreamIngest,
        stream: EventStream,
        store: MilvusVectorStore,
        impressions: Impressions,
    ) -> None:
        self.settings = settings
        self.user_ids = user_ids
        self.recommender = recommender
        self.reads = reads
        self.snapshots = snapshots
        self.ingest = ingest
        self.stream = stream
        self.store = store
        self.impressions = impressions

    @property
    def refitted(self) -> Refitted | None:
        return None  # no refits in cluster mode yet: the configured ranking is served

    async def recommend(self, query: RecommendQuery) -> Recommendations:
        return await self.recommender.recommend(query)

    async def rank(
        self, user_id: str, item_ids: Sequence[str], as_of: float | None = None
    ) -> Recommendations:
        return await self.recommender.rank(user_id, item_ids, as_of)

    async def record_feedback(self, feedback: LoggedEvent) -> tuple[Ack, Matched]:
        matched = match_feedback(self.impressions, self.user_ids, feedback)
        (ack,) = await self.ingest.ingest_events([feedback], "event", indexed=False)
        return ack, matched

    async def get_profile(self, user_id: str) -> UserProfile:
        snapshot, _ = await self.snapshots.get(self.user_ids.stored_id(user_id))
        if snapshot is None:
            raise NotFoundError(f"user {user_id!r} has no events")
        return snapshot.profile

    def explain_profile(
        self, profile: UserProfile, at: float, top_topics: int = 5, recent: int = 10
    ) -> ProfileView:
        tau = self.settings.interest.topic_temperature
        return explain_profile(
            profile, self.reads.topics, tau=tau, at=at, top_topics=top_topics, recent=recent
        )

    @contextlib.asynccontextmanager
    async def watch_profile(self, user_id: str) -> AsyncIterator[tuple[UserProfile | None, SnapshotChanges]]:
        stored_id = self.user_ids.stored_id(user_id)
        # the watch starts with the snapshot as it is then: WatchProfile sends each version once
        updates = self.snapshots.watch(stored_id)
        try:
            current, _ = await self.snapshots.get(stored_id)
            yield (None if current is None else current.profile), SnapshotChanges(updates)
        finally:
            await updates.aclose()

    async def delete_user(self, user_id: str) -> tuple[int, bool]:
        """The events first: a worker that applies one more of them before the snapshot goes
        is fenced by the delete (its compare-and-set fails)."""
        stored_id = self.user_ids.stored_id(user_id)
        deleted = await self.stream.purge_user(stored_id)
        snapshot, _ = await self.snapshots.get(stored_id)
        if snapshot is not None:
            await self.snapshots.delete(stored_id)
        await self.store.delete_user(stored_id)
        return deleted, snapshot is not None
