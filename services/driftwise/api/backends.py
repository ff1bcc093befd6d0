"""What each servicer needs of the domain, as small interfaces: the embedded `Engine` provides all
four; in cluster mode on JetStream an ingest replica provides `IngestBackend`
(cluster/ingest.py) and a ranking replica `RankingBackend` and `ProfileBackend`
(cluster/ranking.py) and `InsightBackend` (cluster/insights.py: what that role can answer)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from driftwise.engine.profile_view import ProfileView
from driftwise.engine.serving_stats import ServingStats
from driftwise.engine.types import (
    Ack,
    ItemDetail,
    ItemHit,
    ItemPage,
    NewItem,
    Recommendations,
    RecommendQuery,
    ServerStats,
    TopicHistory,
    UserPage,
)
from driftwise.model.impressions import Matched
from driftwise.model.online_quality import QualityReport
from driftwise.model.profile import UserProfile
from driftwise.model.refit import Refitted
from driftwise.settings import Settings
from driftwise.storage.event_log import LoggedEvent


class ProfileChanges(Protocol):
    async def next(self) -> UserProfile | None:
        """The profile after its next change; None once the user's data is deleted."""
        ...


class IngestBackend(Protocol):
    @property
    def settings(self) -> Settings: ...

    async def upsert_items(self, items: Sequence[NewItem]) -> int: ...

    async def delete_items(self, item_ids: Sequence[str]) -> int: ...

    async def ingest_events(
        self, events: Sequence[LoggedEvent], field_prefix: str = "events", indexed: bool = True
    ) -> list[Ack]: ...


class RankingBackend(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def refitted(self) -> Refitted | None: ...

    @property
    def stats(self) -> ServingStats:
        """Where Recommend's latency is recorded (the servicer measures it)."""
        ...

    async def recommend(self, query: RecommendQuery) -> Recommendations: ...

    async def rank(
        self, user_id: str, item_ids: Sequence[str], as_of: float | None = None
    ) -> Recommendations: ...

    async def record_feedback(self, feedback: LoggedEvent) -> tuple[Ack, Matched]: ...


class ProfileBackend(Protocol):
    @property
    def settings(self) -> Settings: ...

    async def get_profile(self, user_id: str) -> UserProfile: ...

    def explain_profile(
        self,
        profile: UserProfile,
        at: float,
        top_topics: int = 5,
        recent: int = 10,
        tau: float | None = None,
    ) -> ProfileView:
        """The profile as people read it; `tau`: another topic temperature than the server's."""
        ...

    def watch_profile(
        self, user_id: str
    ) -> AbstractAsyncContextManager[tuple[UserProfile | None, ProfileChanges]]: ...

    async def delete_user(self, user_id: str) -> tuple[int, bool]: ...


class InsightBackend(Protocol):
    @property
    def settings(self) -> Settings: ...

    async def list_users(self, prefix: str, after: tuple[float, str] | None, limit: int) -> UserPage:
        """`after`: (newest event time, user id) of the last user of the previous page."""
        ...

    async def list_items(self, title_contains: str, after: str | None, limit: int) -> ItemPage:
        """`after`: the item id of the last item of the previous page."""
        ...

    async def search_items(self, text: str, count: int) -> list[ItemHit]: ...

    async def get_item(self, item_id: str, neighbours: int) -> ItemDetail: ...

    async def topic_history(self, user_id: str, max_points: int, top_topics: int) -> TopicHistory: ...

    async def server_stats(self) -> ServerStats: ...

    def online_quality(self, bucket_seconds: int, buckets: int) -> QualityReport: ...
