"""What a stateless ranking replica reads: the profile snapshots the workers write (one KV read per
request, so a replica serves what the workers applied the moment they applied it), the item
counts the workers keep beside each partition's position (refreshed every few seconds: they only
scale popularity), and the configured ranking without learned models (refits in cluster mode are
not built yet: every replica ranks with the configured settings)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Collection

from driftwise.cluster.snapshots import ProfileSnapshots, Snapshot
from driftwise.engine.popularity import Popularity
from driftwise.engine.types import LearnedState
from driftwise.model.config import RankingConfig
from driftwise.model.learned import Learned, signals_for
from driftwise.model.profile import UserProfile
from driftwise.model.topics import TopicModel

log = logging.getLogger(__name__)

_RECENT_READS = 1024  # snapshots kept from profile() for the seen_item_ids() that follows it


class SnapshotReads:
    def __init__(self, snapshots: ProfileSnapshots, topics: TopicModel, refresh_seconds: float = 5.0) -> None:
        self._snapshots = snapshots
        self._topics = topics
        self._popularity = Popularity()
        self._popular: list[tuple[str, int]] = []  # most positives first, sorted once per refresh
        self.refresh_seconds = refresh_seconds
        # Recommend reads a profile, then its seen items: one KV read serves both
        self._recent: OrderedDict[str, Snapshot] = OrderedDict()
        self._refresher: asyncio.Task[None] | None = None

    @property
    def topics(self) -> TopicModel:
        return self._topics

    @property
    def snapshots(self) -> ProfileSnapshots:
        return self._snapshots

    @property
    def popularity(self) -> Popularity:
        return self._popularity

    async def profile(self, stored_id: str) -> UserProfile | None:
        snapshot, _ = await self._snapshots.get(stored_id)
        if snapshot is None:
            self._recent.pop(stored_id, None)
            return None
        self._recent[stored_id] = snapshot
        self._recent.move_to_end(stored_id)
        while len(self._recent) > _RECENT_READS:
            self._recent.popitem(last=False)
        return snapshot.profile

    async def seen_item_ids(self, stored_id: str) -> Collection[str]:
        snapshot = self._recent.pop(stored_id, None)
        if snapshot is None:
            snapshot, _ = await self._snapshots.get(stored_id)
        return () if snapshot is None else snapshot.seen_item_ids

    async def popular_items(self, limit: int) -> list[tuple[str, int]]:
        return self._popular[:limit]

    async def refresh(self) -> None:
        """Read every partition's item counts again and swap them in whole."""
        counts = await self._snapshots.item_counts()
        fresh = Popularity()
        fresh.add(counts)
        # the order of EventLog.popular_items: most positives first, then by item id
        self._popular = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        self._popularity = fresh

    def start(self) -> None:
        self._refresher = asyncio.create_task(self._refresh_periodically())

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher

    async def _refresh_periodically(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # the counts only scale popularity: serve the last ones
                log.warning("could not refresh the item counts", exc_info=True)
            await asyncio.sleep(self.refresh_seconds)


class ConfiguredModels:
    """The configured ranking settings and no learned signals (as an embedded server before its
    first refit)."""

    def __init__(self, ranking: RankingConfig, topics: TopicModel) -> None:
        self._ranking = ranking
        self._topics = topics

    @property
    def ranking(self) -> RankingConfig:
        return self._ranking

    def signals(self, profile: UserProfile) -> Learned:
        return signals_for(profile, None, self._topics, self._ranking)

    @property
    def learned_state(self) -> LearnedState:
        return LearnedState.NONE
