"""Retrieval and ranking: Recommend (the layers' nearest items in Milvus plus the learned
followers, ranked for the profile; cold start from the topics and popularity) and Rank (the
caller's candidates). Each list is recorded as an impression for StreamFeedback to match, and
counted (each item's reason, layer and position) for the online quality (`ServingStats`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import numpy as np

from driftwise.engine.profile_memo import ProfileMemo
from driftwise.engine.reads import RankingModels, UserReads
from driftwise.engine.serving_stats import ServingStats
from driftwise.engine.types import Explanation, Recommendations, RecommendQuery
from driftwise.errors import FieldViolation, InvalidArgumentError
from driftwise.model.impressions import Impressions
from driftwise.model.layers import Vector
from driftwise.model.learned import Learned
from driftwise.model.profile import UserProfile
from driftwise.model.ranking import Ranked, explain, rank_cold_start, rank_for_profile
from driftwise.observability.tracing import tracer
from driftwise.privacy import UserIdScheme
from driftwise.settings import Settings
from driftwise.storage.item_cache import ItemCache
from driftwise.storage.item_filter import NOTHING_EXCLUDED, Excluded, ItemFilter
from driftwise.storage.vector_store import MilvusVectorStore, StoredItem

# Milvus answers at most this many hits per search (its topk limit)
MAX_SEARCH_LIMIT = 16_384

Attempt = Callable[[int], Awaitable[tuple[list[Ranked], dict[str, StoredItem], bool]]]


class Recommender:
    def __init__(
        self,
        settings: Settings,
        user_ids: UserIdScheme,
        store: MilvusVectorStore,
        items: ItemCache,
        reads: UserReads,
        models: RankingModels,
        impressions: Impressions,
        stats: ServingStats | None = None,
    ) -> None:
        self.settings = settings
        self.user_ids = user_ids
        self.store = store
        self.items = items
        self.reads = reads  # profiles, seen items, popularity: the log's or the snapshots'
        self.models = models  # the ranking settings served and the learned signals
        self.impressions = impressions
        self.stats = stats or ServingStats()  # the issued lists are counted there
        # the seen items, while the profile is served
        self._seen: ProfileMemo[Excluded] = ProfileMemo(settings.limits.profiles_remembered)

    async def recommend(self, query: RecommendQuery) -> Recommendations:
        stored_id = self.user_ids.stored_id(query.user_id)
        profile = await self.reads.profile(stored_id)
        at = query.as_of if query.as_of is not None else time.time()
        seen = NOTHING_EXCLUDED
        if not query.include_seen and profile is not None:
            seen = self._seen.get(profile) or self._seen.put(
                profile, Excluded.of(await self.reads.seen_item_ids(stored_id))
            )
        allowed = ItemFilter(
            categories=query.categories,
            created_after=_opt_int(query.created_after),
            created_before=_opt_int(query.created_before),
            exclude_ids=frozenset((*query.exclude_item_ids, *query.shown)),
            also_excluded=seen,
        )
        directions = [] if profile is None else self._directions(profile)
        wanted = query.count + 1  # one more than asked for tells whether another page exists
        if profile is not None and directions:
            learned = self.models.signals(profile)
            queries = np.stack(directions)

            async def personal(limit: int) -> tuple[list[Ranked], dict[str, StoredItem], bool]:
                with tracer.start_as_current_span("ranking.retrieve", attributes={"limit": limit}) as span:
                    # one Milvus search for all layers, ids only; the items come from the cache
                    hits = await self.store.search_ids(queries, limit, allowed.expression())
                    # with what usually follows the recent events, within the same filter
                    ids = [item_id for layer_hits in hits for item_id, _ in layer_hits]
                    found = await self.items.get([*ids, *learned.followers])
                    items = {i: item for i, item in found.items() if allowed.allows(item)}
                    span.set_attribute("candidates", len(items))
                ranked = self._rank_personal(
                    profile, items, at, wanted, query.diversity, learned, query.topic_temperature
                )
                return ranked, items, any(len(layer_hits) >= limit for layer_hits in hits)

            first = max(self.settings.candidates_per_layer, query.count)
            ranked, items = await _searching_deeper(personal, first, wanted)
            return self._recommendations(query, stored_id, ranked, items, profile.version, cold_start=False)

        async def cold_start(per_topic: int) -> tuple[list[Ranked], dict[str, StoredItem], bool]:
            items, full = await self._cold_start_pool(allowed, per_topic)
            ranked = self._rank_cold_start(items, at, wanted)
            return ranked, items, full

        ranked, items = await _searching_deeper(cold_start, max(2, query.count // 2), wanted)
        version = 0 if profile is None else profile.version
        return self._recommendations(query, stored_id, ranked, items, version, cold_start=True)

    async def rank(
        self, user_id: str, item_ids: Sequence[str], as_of: float | None = None
    ) -> Recommendations:
        """Score the caller's candidates (known items) for the user, best first; all are returned."""
        stored = await self.items.get(item_ids)
        unknown = [
            FieldViolation(f"candidate_item_ids[{i}]", f"unknown item {item_id!r}")
            for i, item_id in enumerate(item_ids)
            if item_id not in stored
        ]
        if unknown:
            raise InvalidArgumentError(unknown)
        items = {item_id: stored[item_id] for item_id in item_ids}  # the caller's order, no repeats
        profile = await self.reads.profile(self.user_ids.stored_id(user_id))
        at = as_of if as_of is not None else time.time()
        version = 0 if profile is None else profile.version
        if profile is not None and self._directions(profile):
            learned = self.models.signals(profile)
            ranked = self._rank_personal(profile, items, at, len(items), 0.0, learned, keep_rejected=True)
            cold_start = False
        else:
            ranked, cold_start = self._rank_cold_start(items, at, len(items)), True
        why = self._explanations(ranked)
        state = self.models.learned_state
        return Recommendations(
            ranked, items, why, uuid.uuid4().hex, version, cold_start=cold_start, learned=state
        )

    def _recommendations(
        self,
        query: RecommendQuery,
        stored_id: str,
        ranked: list[Ranked],
        items: dict[str, StoredItem],
        profile_version: int,
        *,
        cold_start: bool,
    ) -> Recommendations:
        """The first `query.count` of `ranked` (ranked one further to tell whether more exist),
        recorded as an impression of the user (`stored_id`) and counted as issued."""
        shown = ranked[: query.count]
        recommendation_id, issued_at = uuid.uuid4().hex, time.time()
        why = self.stats.issued(shown, issued_at)
        self.impressions.record(recommendation_id, stored_id, [r.item_id for r in shown], why, issued_at)
        return Recommendations(
            shown,
            items,
            self._explanations(shown),
            recommendation_id,
            profile_version,
            cold_start=cold_start,
            more=len(ranked) > len(shown),
            learned=self.models.learned_state,
        )

    def _explanations(self, ranked: list[Ranked]) -> dict[str, Explanation]:
        """In words, with the topics just ranked with (nothing awaited since: they cannot have
        changed)."""
        topics = self.reads.topics
        return {r.item_id: Explanation(topics.labels[r.topic], explain(r, topics)) for r in ranked}

    def _directions(self, profile: UserProfile) -> list[Vector]:
        max_push = self.models.ranking.negative_max_push
        return [d for s in profile.layers.values() if (d := s.direction(max_push)) is not None]

    def _rank_personal(
        self,
        profile: UserProfile,
        items: dict[str, StoredItem],
        at: float,
        count: int,
        diversity: float,
        learned: Learned,
        topic_temperature: float | None = None,
        keep_rejected: bool = False,
    ) -> list[Ranked]:
        """`topic_temperature`: a preview of another one than the server's (nothing is stored)."""
        candidates = self.reads.popularity.candidates(items)
        return rank_for_profile(
            profile,
            candidates,
            self.reads.topics,
            at=at,
            count=count,
            diversity=diversity,
            config=self.models.ranking,
            topic_temperature=topic_temperature or self.settings.interest.topic_temperature,
            signals=learned.for_candidates([c.item_id for c in candidates], at),
            keep_rejected=keep_rejected,
        )

    def _rank_cold_start(self, items: dict[str, StoredItem], at: float, count: int) -> list[Ranked]:
        candidates = self.reads.popularity.candidates(items)
        topics, config = self.reads.topics, self.models.ranking
        return rank_cold_start(candidates, topics, now=at, count=count, config=config)

    async def _cold_start_pool(
        self, allowed: ItemFilter, per_topic: int
    ) -> tuple[dict[str, StoredItem], bool]:
        """Candidates for a user without a profile: `per_topic` items near each topic (variety),
        plus the 10 x `per_topic` most popular items, that pass the request's filter; and whether
        a topic's search came back full (a deeper one may find more)."""
        hits = await self.store.search_ids(self.reads.topics.centroids, per_topic, allowed.expression())
        popular = await self.reads.popular_items(per_topic * 10)
        ids = [item_id for topic_hits in hits for item_id, _ in topic_hits]
        found = await self.items.get([*ids, *(item_id for item_id, _ in popular)])
        # the popular items only add to the pool: whether a deeper look may find more is the
        # filtered searches' to say (one that came back short has every item the filter allows)
        full = any(len(topic_hits) >= per_topic for topic_hits in hits)
        return {i: item for i, item in found.items() if allowed.allows(item)}, full


async def _searching_deeper(
    attempt: Attempt, limit: int, wanted: int
) -> tuple[list[Ranked], dict[str, StoredItem]]:
    """Rank what a search of `limit` hits finds; while fewer than `wanted` items could be ranked
    (a filter, seen or rejected items thinned them out) and a search came back full, so the store
    may hold more, search again four times as deep."""
    while True:
        ranked, items, full = await attempt(limit)
        if len(ranked) >= wanted or not full or limit >= MAX_SEARCH_LIMIT:
            return ranked, items
        limit = min(limit * 4, MAX_SEARCH_LIMIT)


def _opt_int(value: float | None) -> int | None:
    return None if value is None else int(value)
