"""What Recommend and Rank read about users and what the models learned, behind two small
interfaces, so that one Recommender serves from either place the state lives:

- embedded (`LogReads`, `LearnedModels`): the profile cache over the SQLite log, the log's item
  counts, the models refitted on the log;
- cluster mode (driftwise.cluster.reads): the profile snapshots the workers write to JetStream.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from driftwise.engine.log_access import LogAccess
from driftwise.engine.popularity import Popularity
from driftwise.engine.profiles import Profiles
from driftwise.engine.types import LearnedState
from driftwise.model.config import RankingConfig
from driftwise.model.learned import Learned
from driftwise.model.profile import UserProfile
from driftwise.model.topics import TopicModel
from driftwise.storage.event_log import EventLog


class UserReads(Protocol):
    @property
    def topics(self) -> TopicModel:
        """The topics the profiles are built with now."""
        ...

    @property
    def popularity(self) -> Popularity:
        """Positive events per item."""
        ...

    async def profile(self, stored_id: str) -> UserProfile | None: ...

    async def seen_item_ids(self, stored_id: str) -> Collection[str]:
        """Every item the user has an event on (Recommend leaves them out unless asked)."""
        ...

    async def popular_items(self, limit: int) -> list[tuple[str, int]]:
        """The `limit` items with the most positive events, most first."""
        ...


class RankingModels(Protocol):
    @property
    def ranking(self) -> RankingConfig:
        """The ranking settings served."""
        ...

    def signals(self, profile: UserProfile) -> Learned:
        """What the learned models say about the profile's next items."""
        ...

    @property
    def learned_state(self) -> LearnedState:
        """How complete those signals are now."""
        ...


class LogReads:
    """The embedded server's reads: the profile cache and the log it is built from."""

    def __init__(self, profiles: Profiles, logs: LogAccess, popularity: Popularity) -> None:
        self._profiles = profiles
        self._logs = logs
        self._popularity = popularity

    @property
    def topics(self) -> TopicModel:
        return self._profiles.topics

    @property
    def popularity(self) -> Popularity:
        return self._popularity

    async def profile(self, stored_id: str) -> UserProfile | None:
        return await self._profiles.load(stored_id)

    async def seen_item_ids(self, stored_id: str) -> Collection[str]:
        return await self._logs.read(EventLog.seen_item_ids, stored_id)

    async def popular_items(self, limit: int) -> list[tuple[str, int]]:
        return await self._logs.read(EventLog.popular_items, limit)
