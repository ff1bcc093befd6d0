"""The Engine: the one object the servicers call, composed of the rooms that do the work.

    catalogue    Catalogue (catalogue.py)             upsert_items, delete_items
    writes       WritePath (writes.py)                ingest_events, record_feedback, delete_user
    profiles     Profiles (profiles.py)               get_profile, rebuild_profile, watch_profile
                 profile_view.py                      explain_profile
    learned      LearnedModels (learned_models.py)    refit_learned_models, refit_with, ranking
    recommender  Recommender (recommend.py)           recommend, rank
    insights     Insights (insights.py)               list_users, list_items, search_items, get_item,
                                                      topic_history, server_stats, online_quality
    stats        ServingStats (serving_stats.py)      Recommend's latency, acks, online quality

It opens the stores and the rooms in order, starts the background work (the interest mirror,
periodic refits) and closes it all again.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import numpy as np

from driftwise.concurrency import Watch
from driftwise.engine.catalogue import Catalogue
from driftwise.engine.encoding import EventEncoding, encode_texts
from driftwise.engine.insights import CatalogueReads, Insights, LocalTriton, encoder_health
from driftwise.engine.learned_models import LearnedModels
from driftwise.engine.log_access import LogAccess
from driftwise.engine.popularity import Popularity
from driftwise.engine.profile_view import ProfileView, explain_profile
from driftwise.engine.profiles import Profiles
from driftwise.engine.reads import LogReads
from driftwise.engine.recommend import Recommender
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
from driftwise.engine.writes import WritePath
from driftwise.errors import NotFoundError
from driftwise.inference.coverage import TextCoverage
from driftwise.inference.encoder import TextEncoder
from driftwise.model.config import RankingConfig
from driftwise.model.impressions import ImpressionMatch, Impressions, Matched, OtherUsersImpression
from driftwise.model.online_quality import QualityReport
from driftwise.model.profile import UserProfile
from driftwise.model.refit import Refitted
from driftwise.model.topics import TopicModel
from driftwise.privacy import UserIdScheme
from driftwise.settings import Settings
from driftwise.storage.event_log import EventLog, LoggedEvent
from driftwise.storage.interest_mirror import InterestMirror
from driftwise.storage.item_cache import ItemCache
from driftwise.storage.milvus_tls import MilvusTls
from driftwise.storage.vector_store import (
    InterestRow,
    MilvusVectorStore,
)

log = logging.getLogger(__name__)


async def open_store(settings: Settings, dimension: int) -> MilvusVectorStore:
    """The vector store settings.milvus_uri names (Milvus Lite or a server), open."""
    store = MilvusVectorStore(
        settings.milvus_uri,
        dimension,
        token=settings.milvus.token,
        index_type=settings.milvus.index_type,
        timeout_seconds=settings.milvus.request_timeout_seconds,
        connect_timeout_seconds=settings.milvus.connect_timeout_seconds,
        tls=MilvusTls.from_settings(settings.milvus),
    )
    await store.open()
    return store


class Engine:
    def __init__(
        self,
        settings: Settings,
        encoder: TextEncoder,
        store: MilvusVectorStore,
        topics: TopicModel,
        user_ids: UserIdScheme | None = None,
        coverage: TextCoverage | None = None,
    ) -> None:
        self.settings = settings
        # every public method maps the caller's user ids through this before storing or looking up
        self.user_ids = user_ids or UserIdScheme()
        self.encoder = encoder
        self.store = store
        self.items = ItemCache(store, settings.milvus.item_cache_size, settings.milvus.item_cache_ttl_seconds)
        self.logs = self._open_log(settings.data_dir / "events.sqlite", self.user_ids)
        self.encoding = EventEncoding(
            encoder,  # without a coverage check (open() always builds one), nothing is checked
            coverage
            or TextCoverage(settings.triton.model_name, None, settings.triton.unknown_share_threshold),
        )
        self.impressions = Impressions(settings.limits.impressions_remembered)  # lists for StreamFeedback
        self.stats = ServingStats()  # Recommend's latency, acks, the online quality of the lists
        self.local_triton: LocalTriton | None = None  # the local Triton's supervisor, if one runs
        self._popularity = Popularity()
        self._warming: asyncio.Task[None] | None = None  # the item cache's warm-up, while it runs
        self.profiles = Profiles(
            settings.interest,
            encoder.dimension,
            self._topics_built_with(topics, settings, encoder.dimension),
            self.logs,
            self.items,
            self.encoding,
        )
        self.learned = LearnedModels(
            settings, topics, encoder.dimension, store, self.items, self.logs, self.profiles
        )
        self.interest_mirror = InterestMirror(store, self.interest_rows)
        self.catalogue = Catalogue(self.user_ids, store, self.items, self.encoding)
        self.writes = WritePath(
            settings.interest,
            self.catalogue,
            self.user_ids,
            store,
            self.logs,
            self.profiles,
            self._popularity,
            self.impressions,
            self.interest_mirror,
        )
        self.recommender = self._recommender()
        self.insights = self._insights()

    def _recommender(self) -> Recommender:
        reads = LogReads(self.profiles, self.logs, self._popularity)
        return Recommender(
            self.settings,
            self.user_ids,
            self.store,
            self.items,
            reads,
            self.learned,
            self.impressions,
            self.stats,
        )

    def _insights(self) -> Insights:
        return Insights(
            self.settings,
            self.user_ids,
            self.logs,
            CatalogueReads(self.store, self.items, self.encoding),
            self.profiles,
            self._popularity,
            lambda: self.learned.refitted,
            self.stats,
        )

    @staticmethod
    def _open_log(path: Path, user_ids: UserIdScheme) -> LogAccess:
        logs = LogAccess(path)
        try:  # before anything is written: data of another scheme would split every user in two
            user_ids.check_scheme(logs.log.user_id_scheme())
        except BaseException:
            logs.close_now()
            raise
        logs.log.record_user_id_scheme(user_ids.name)
        return logs

    def _topics_built_with(self, taxonomy: TopicModel, settings: Settings, dimension: int) -> TopicModel:
        """The topics the stored profiles were built with: learned at a refit and recorded in the
        log, unless another encoder is configured now; otherwise the zero-shot taxonomy."""
        if (learned := self.logs.log.learned_topics()) is not None:
            model = TopicModel.from_json(learned, settings.interest.assignment_temperature)
            if model.centroids.shape[1] == dimension:
                return model
        return taxonomy

    @classmethod
    async def open(
        cls, settings: Settings, encoder: TextEncoder, user_ids: UserIdScheme | None = None
    ) -> Engine:
        """Open the stores and embed the topic labels (the zero-shot taxonomy) with the encoder.
        `user_ids`: how user ids are stored; by default from settings.privacy (reads the key)."""
        if user_ids is None:
            user_ids = UserIdScheme.from_settings(settings.privacy)
        labels = settings.interest.topics
        centroids = await encode_texts(encoder, list(labels), "query")
        coverage = await asyncio.to_thread(  # reads the model's vocabulary (up to ~2 s)
            TextCoverage.for_model, settings.triton.model_name, settings.triton.unknown_share_threshold
        )
        store = await open_store(settings, encoder.dimension)
        topics = TopicModel(labels, centroids, settings.interest.assignment_temperature)
        try:
            engine = cls(settings, encoder, store, topics, user_ids, coverage)
        except BaseException:
            await store.close()
            raise
        engine._popularity.add(await engine.logs.read(EventLog.item_counts))
        if not await engine.learned.restore():  # the last saved fit, or a quick one on the log
            await engine.learned.quick_refit()
        if settings.milvus.warm_item_cache:  # alongside the first requests: they read what they miss
            engine._warming = asyncio.create_task(engine._warm_item_cache())
        engine.interest_mirror.start()
        engine.learned.start_periodic()
        rebuilt_for = await engine.logs.read(EventLog.profiles_topics)
        if rebuilt_for != engine.topic_model.fingerprint:  # a crash during a rebuild, another encoder
            engine.profiles.rebuild_stale()
        return engine

    async def _warm_item_cache(self) -> None:
        """Read the catalogue into the item cache in the background, from the start on: the
        server is SERVING meanwhile (before, at 100k items, it waited ~25 s on Milvus Lite and
        100-180 s on a server). Until it is done, a request reads the items it misses itself
        (read-through: the same lists, slower) and the warm-up's reads take turns with the
        requests' on the store's thread."""
        started = time.perf_counter()
        try:
            cached = await self.items.warm()
        except Exception:  # only a head start: requests read what they miss
            log.exception("could not warm the item cache")
            return
        gc.freeze()  # long-lived, acyclic: out of the collector's way (see LearnedModels._refit)
        log.info("item cache warmed: %d items in %.1f s", cached, time.perf_counter() - started)

    async def close(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._warming
        await self.learned.close()
        await self.profiles.close()
        await self.interest_mirror.close()
        await self.store.close()
        await self.logs.close()

    # -- what the rooms hold, read by the api, metrics and tests ----------------------------------

    @property
    def log(self) -> EventLog:
        """The event log's writing connection."""
        return self.logs.log

    @property
    def coverage(self) -> TextCoverage:
        return self.encoding.coverage

    @property
    def topic_model(self) -> TopicModel:
        """The topics served now: the zero-shot taxonomy, or the ones learned at the last refit."""
        return self.profiles.topics

    @property
    def refitted(self) -> Refitted | None:
        return self.learned.refitted

    @refitted.setter
    def refitted(self, value: Refitted | None) -> None:  # driftwise eval serves what it measures
        self.learned.refitted = value

    @property
    def ranking(self) -> RankingConfig:
        """The ranking settings served: the configured ones, as the last refit tuned them."""
        return self.learned.ranking

    @property
    def popularity(self) -> Mapping[str, int]:
        """Positive events per item, as every Recommend reads it (in step with the log)."""
        return self._popularity.counts

    def interest_rows(self, profile: UserProfile) -> list[InterestRow]:
        """The profile's layer directions as `user_interests` rows."""
        return [
            InterestRow(
                profile.user_id, layer, direction.astype(np.float32), state.mass, int(profile.updated_at)
            )
            for layer, state in profile.layers.items()
            if (direction := state.direction(self.ranking.negative_max_push)) is not None
        ]

    # -- items ------------------------------------------------------------------------------------

    async def upsert_items(self, items: Sequence[NewItem]) -> int:
        return await self.catalogue.upsert_items(items)

    async def delete_items(self, item_ids: Sequence[str]) -> int:
        return await self.catalogue.delete_items(item_ids)

    # -- events -----------------------------------------------------------------------------------

    async def ingest_events(
        self, events: Sequence[LoggedEvent], field_prefix: str = "events", indexed: bool = True
    ) -> list[Ack]:
        acks = await self.writes.ingest_events(events, field_prefix, indexed)
        self.stats.acknowledged(len(acks))
        # feedback may come through IngestEvents too: an event with the impression id of a list
        # issued here counts in the online quality as StreamFeedback's does (a list issued to
        # another user is not refused here, only not counted)
        for logged, ack in zip(events, acks, strict=True):
            if logged.event.impression_id and not ack.duplicate:
                self.stats.count_feedback(logged.event, self._quiet_match(logged))
        return acks

    def _quiet_match(self, logged: LoggedEvent) -> Matched:
        event = logged.event
        try:
            return self.impressions.match(
                event.impression_id, self.user_ids.stored_id(event.user_id), event.item_id
            )
        except OtherUsersImpression:
            return Matched(ImpressionMatch.UNKNOWN)

    async def record_feedback(self, feedback: LoggedEvent) -> tuple[Ack, Matched]:
        ack, matched = await self.writes.record_feedback(feedback)
        self.stats.feedback(feedback.event, ack, matched)
        return ack, matched

    async def delete_user(self, user_id: str) -> tuple[int, bool]:
        return await self.writes.delete_user(user_id)

    # -- profiles ---------------------------------------------------------------------------------

    async def get_profile(self, user_id: str) -> UserProfile:
        profile = await self.profiles.load(self.user_ids.stored_id(user_id))
        if profile is None:
            raise NotFoundError(f"user {user_id!r} has no events")
        return profile

    def explain_profile(
        self,
        profile: UserProfile,
        at: float,
        top_topics: int = 5,
        recent: int = 10,
        tau: float | None = None,
    ) -> ProfileView:
        """The profile at time `at` as people read it: each layer's heaviest topics (labelled with
        the topics served now, weighed at temperature `tau`, by default the server's) and its
        newest events."""
        return explain_profile(
            profile,
            self.topic_model,
            tau=tau or self.settings.interest.topic_temperature,
            at=at,
            top_topics=top_topics,
            recent=recent,
        )

    async def rebuild_profile(self, user_id: str) -> UserProfile:
        """Replay the user's events from the log (the source of truth) into a new profile."""
        profile = await self.profiles.replay(self.user_ids.stored_id(user_id))
        if profile is None:
            raise NotFoundError(f"user {user_id!r} has no events")
        return profile

    def watch_profile(
        self, user_id: str
    ) -> AbstractAsyncContextManager[tuple[UserProfile | None, Watch[UserProfile]]]:
        """The user's profile now (None without events) and a watch on its later changes."""
        return self.profiles.watch(self.user_ids.stored_id(user_id))

    # -- learned models ---------------------------------------------------------------------------

    async def refit_learned_models(self, reread_items: bool = True) -> bool:
        """Refit on the log if it grew (`LearnedModels.refit`); whether anything was refitted."""
        return await self.learned.refit(reread_items)

    async def refit_with(self, ranking: RankingConfig) -> Refitted:
        return await self.learned.refit_with(ranking)

    # -- ranking ----------------------------------------------------------------------------------

    async def recommend(self, query: RecommendQuery) -> Recommendations:
        return await self.recommender.recommend(query)

    async def rank(
        self, user_id: str, item_ids: Sequence[str], as_of: float | None = None
    ) -> Recommendations:
        return await self.recommender.rank(user_id, item_ids, as_of)

    # -- insights ---------------------------------------------------------------------------------

    async def list_users(self, prefix: str, after: tuple[float, str] | None, limit: int) -> UserPage:
        return await self.insights.list_users(prefix, after, limit)

    async def list_items(self, title_contains: str, after: str | None, limit: int) -> ItemPage:
        return await self.insights.catalogue.list_items(title_contains, after, limit)

    async def search_items(self, text: str, count: int) -> list[ItemHit]:
        return await self.insights.catalogue.search_items(text, count)

    async def get_item(self, item_id: str, neighbours: int) -> ItemDetail:
        return await self.insights.item(item_id, neighbours)

    async def topic_history(self, user_id: str, max_points: int, top_topics: int) -> TopicHistory:
        return await self.insights.topic_history(user_id, max_points, top_topics)

    async def server_stats(self) -> ServerStats:
        encoder = encoder_health(self.encoder, self.local_triton)
        return await self.insights.server_stats(encoder, self.encoder.dimension)

    def online_quality(self, bucket_seconds: int, buckets: int) -> QualityReport:
        return self.insights.online_quality(bucket_seconds, buckets)
