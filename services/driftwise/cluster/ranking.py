"""RankingService and ProfileService of a stateless ranking replica (cluster mode on JetStream):
any replica serves any user, from the profile snapshots the workers write.

- Recommend and Rank: the embedded server's `Recommender`, reading the snapshots
  (cluster/reads.py); items from Milvus.
- StreamFeedback: feedback is published like any event (cluster/ingest.py). Its impression id is
  matched against the lists this replica issued; a list another replica issued is unknown here
  and the feedback is recorded all the same.
- GetProfile reads the snapshot; WatchProfile watches it in the KV bucket (every change a worker
  writes, on any replica).
- DeleteUserData publishes a forget message that the user's worker applies (the profile, the
  user's share of the item counts, the events up to it), waits for it, then deletes the Milvus rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

from driftwise.cluster.event_stream import EventStream
from driftwise.cluster.ingest import StreamIngest
from driftwise.cluster.messages import ForgetMessage
from driftwise.cluster.partitions import partition_of
from driftwise.cluster.reads import SnapshotReads
from driftwise.cluster.snapshots import ProfileSnapshots, Snapshot
from driftwise.engine.profile_view import ProfileView, explain_profile
from driftwise.engine.recommend import Recommender
from driftwise.engine.serving_stats import ServingStats
from driftwise.engine.types import Ack, Recommendations, RecommendQuery
from driftwise.engine.writes import match_feedback
from driftwise.errors import NotFoundError, UnavailableError
from driftwise.model.impressions import Impressions, Matched
from driftwise.model.profile import UserProfile
from driftwise.model.refit import Refitted
from driftwise.privacy import UserIdScheme
from driftwise.settings import Settings
from driftwise.storage.event_log import LoggedEvent
from driftwise.storage.vector_store import MilvusVectorStore

_FORGET_WAIT_S = 30.0  # a worker's takeover (lease TTL + heartbeat) fits in it
_FORGET_POLL_S = 0.05


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

    @property
    def stats(self) -> ServingStats:
        """This replica's own: Recommend's latency, its acks, the online quality of its lists."""
        return self.recommender.stats

    async def recommend(self, query: RecommendQuery) -> Recommendations:
        return await self.recommender.recommend(query)

    async def rank(
        self, user_id: str, item_ids: Sequence[str], as_of: float | None = None
    ) -> Recommendations:
        return await self.recommender.rank(user_id, item_ids, as_of)

    async def record_feedback(self, feedback: LoggedEvent) -> tuple[Ack, Matched]:
        matched = match_feedback(self.impressions, self.user_ids, feedback)
        (ack,) = await self.ingest.ingest_events([feedback], "event", indexed=False)
        self.stats.feedback(feedback.event, ack, matched)
        return ack, matched

    async def get_profile(self, user_id: str) -> UserProfile:
        snapshot, _ = await self.snapshots.get(self.user_ids.stored_id(user_id))
        if snapshot is None or snapshot.profile is None:  # none yet, or forgotten
            raise NotFoundError(f"user {user_id!r} has no events")
        return snapshot.profile

    def explain_profile(
        self,
        profile: UserProfile,
        at: float,
        top_topics: int = 5,
        recent: int = 10,
        tau: float | None = None,
    ) -> ProfileView:
        tau = tau or self.settings.interest.topic_temperature
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
        """A forget message in the user's place of the stream: the worker that reaches it has
        applied every event before it, forgets the profile, takes the user's share out of the
        item counts and purges the events up to it (driftwise.cluster.worker). Returns once that
        is done, then purges again (the worker may have died between its position write and its
        purge) and deletes the Milvus rows; UnavailableError if no worker got there in time (the
        deletion then completes when one does, or when the call is repeated)."""
        stored_id = self.user_ids.stored_id(user_id)
        snapshot, _ = await self.snapshots.get(stored_id)
        events = await self.stream.count_user(stored_id)
        (forget,) = await self.stream.publish([ForgetMessage(stored_id, uuid.uuid4().hex).to_stream()])
        await self._until_applied(stored_id, forget.seq)
        await self.stream.purge_user(stored_id, through_seq=forget.seq)
        await self.store.delete_user(stored_id)
        return events, snapshot is not None and snapshot.profile is not None

    async def _until_applied(self, stored_id: str, seq: int) -> None:
        partition = partition_of(stored_id, self.snapshots.partitions)
        deadline = time.monotonic() + _FORGET_WAIT_S
        while (await self.snapshots.position(partition))[0].seq < seq:
            if time.monotonic() > deadline:
                raise UnavailableError(
                    f"no profile worker applied the deletion of user {stored_id!r} (stream sequence "
                    f"{seq}) within {_FORGET_WAIT_S:.0f} s: it is recorded and completes when one does; "
                    "call DeleteUserData again to wait for it"
                )
            await asyncio.sleep(_FORGET_POLL_S)
