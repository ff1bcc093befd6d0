"""What InsightService reads (docs/insights.md): free of gRPC, like the rest of the engine.

- `CatalogueReads`: the catalogue in Milvus and searches of it (ListItems, SearchItems, GetItem's
  item and neighbours), which any process with Milvus and Triton can answer: the embedded engine
  and a cluster's ranking replica alike;
- `Insights`: the embedded server's reads of its event log, profiles and learned models (ListUsers,
  GetItem's followers and interactions, GetTopicHistory), its counts (GetServerStats) and the
  online quality of the lists it issued (GetOnlineQuality).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from driftwise.engine.encoding import EventEncoding
from driftwise.engine.log_access import LogAccess
from driftwise.engine.popularity import Popularity
from driftwise.engine.profiles import Profiles
from driftwise.engine.serving_stats import ServingStats
from driftwise.engine.types import (
    Dependency,
    Following,
    ItemDetail,
    ItemHit,
    ItemPage,
    ServerStats,
    TopicHistory,
    UserPage,
)
from driftwise.errors import FailedPreconditionError, NotFoundError, UnavailableError
from driftwise.inference.encoder import TextEncoder, TritonTextEncoder
from driftwise.model.online_quality import QualityReport
from driftwise.model.refit import Refitted
from driftwise.model.topic_history import topic_history
from driftwise.privacy import UserIdScheme
from driftwise.settings import Settings
from driftwise.storage.event_log import EventLog
from driftwise.storage.item_cache import ItemCache
from driftwise.storage.item_filter import item_filter
from driftwise.storage.vector_store import BOUNDED, MilvusVectorStore, StoredItem

MAX_INTERACTIONS = 20  # GetItem's recent interactions
TITLE_SCAN_BATCH = 1000  # items read per call while ListItems looks for titles

LocalTriton = Callable[[], tuple[bool, int]]  # the supervised local Triton: (running, restarts)


class CatalogueReads:
    def __init__(self, store: MilvusVectorStore, items: ItemCache, encoding: EventEncoding) -> None:
        self.store = store
        self.items = items
        self.encoding = encoding

    async def list_items(self, title_contains: str, after: str | None, limit: int) -> ItemPage:
        """Up to `limit` items after the item id `after`, in item id order, whose title contains
        `title_contains` ignoring case. Without a title: one Milvus query of `limit` + 1 items.
        With one, the catalogue is read on from `after` until `limit` + 1 match (in the worst case
        all of it)."""
        total = await self.store.count_items(BOUNDED)
        if not title_contains:
            page = await self.store.page_items(after, limit + 1)
            return ItemPage(page[:limit], len(page) > limit, total)
        needle, found = title_contains.casefold(), list[StoredItem]()
        while len(found) <= limit:
            batch = await self.store.page_items(after, TITLE_SCAN_BATCH)
            found += [item for item in batch if needle in item.title.casefold()]
            if len(batch) < TITLE_SCAN_BATCH:
                break
            after = batch[-1].item_id
        return ItemPage(found[:limit], len(found) > limit, total)

    async def search_items(self, text: str, count: int) -> list[ItemHit]:
        """The `count` items nearest the text, encoded as a query (as a search event's text)."""
        query = await self.encoding.encode([text], "query")
        (hits,) = await self.store.search_items(query.astype(np.float64), count, with_vectors=False)
        return [ItemHit(item, _cosine(similarity)) for item, similarity in hits]

    async def item_and_neighbours(self, item_id: str, neighbours: int) -> tuple[StoredItem, list[ItemHit]]:
        """The item and the `neighbours` items nearest its vector (itself left out); NotFoundError
        for an unknown item."""
        item = (await self.items.get([item_id])).get(item_id)
        if item is None:
            raise NotFoundError(f"unknown item {item_id!r}")
        (hits,) = await self.store.search_items(
            item.vector.astype(np.float64)[np.newaxis],
            neighbours,
            item_filter(exclude_ids=[item_id]),
            with_vectors=False,
        )
        return dataclasses.replace(item, vector=np.zeros(0, np.float32)), [
            ItemHit(hit, _cosine(similarity)) for hit, similarity in hits
        ]

    async def size_and_health(self) -> tuple[int, Dependency]:
        """Items in the catalogue (0 if Milvus cannot say) and the vector store's health."""
        address = self.store.address
        try:
            items = await self.store.count_items(BOUNDED)
        except UnavailableError as exc:
            return 0, Dependency(False, address, str(exc))
        outage = self.store.outage()
        return items, Dependency(outage is None, address, outage or "")


class Insights:
    def __init__(
        self,
        settings: Settings,
        user_ids: UserIdScheme,
        logs: LogAccess,
        catalogue: CatalogueReads,
        profiles: Profiles,
        popularity: Popularity,
        refitted: Callable[[], Refitted | None],
        stats: ServingStats,
    ) -> None:
        self.settings = settings
        self.user_ids = user_ids
        self.logs = logs
        self.catalogue = catalogue
        self.profiles = profiles
        self.popularity = popularity
        self.refitted = refitted  # the learned models of the last refit (followers)
        self.stats = stats

    async def list_users(self, prefix: str, after: tuple[float, str] | None, limit: int) -> UserPage:
        """Users with events, most recently active first; FailedPreconditionError while user ids
        are pseudonymised (the log holds no id a caller knows)."""
        if self.user_ids.pseudonymises:
            raise FailedPreconditionError(
                "user ids are pseudonymised (privacy.pseudonymise_user_ids): the server never stored "
                "the ids callers know, so it cannot list them"
            )
        users = await self.logs.read(EventLog.list_users, prefix, after, limit + 1)
        total, _ = await self.logs.read(EventLog.totals)
        return UserPage(users[:limit], len(users) > limit, total)

    async def item(self, item_id: str, neighbours: int) -> ItemDetail:
        """The item, its `neighbours` nearest items, as many of the items most often chosen right
        after it (co-occurrence of the last refit), and its newest events."""
        item, hits = await self.catalogue.item_and_neighbours(item_id, neighbours)
        recent = await self.logs.read(EventLog.item_interactions, item_id, MAX_INTERACTIONS)
        if self.user_ids.pseudonymises:  # the stored ids are pseudonyms: no caller knows them
            recent = [dataclasses.replace(r, user_id="") for r in recent]
        followed = await self._followers(item_id, neighbours)
        return ItemDetail(item, hits, followed, recent, self.popularity.counts.get(item_id, 0))

    async def _followers(self, item_id: str, limit: int) -> list[Following]:
        refitted = self.refitted()
        if refitted is None or refitted.fitted is None:
            return []
        shares = refitted.fitted.cooccurrence.followers(item_id, limit)
        found = await self.catalogue.items.get([follower for follower, _ in shares])
        return [
            Following(dataclasses.replace(found[f], vector=np.zeros(0, np.float32)), share)
            for f, share in shares
            if f in found  # deleted since the refit: left out
        ]

    async def topic_history(self, user_id: str, max_points: int, top_topics: int) -> TopicHistory:
        """The user's events replayed from the log into a new profile under the topics served now,
        each layer's heaviest topics read after up to `max_points` of them (the last included)."""
        replay = await self.profiles.replay_inputs(self.user_ids.stored_id(user_id))
        if replay is None:
            raise NotFoundError(f"user {user_id!r} has no events")
        points = topic_history(
            self.profiles.new(""),
            replay.events,
            replay.vectors,
            replay.topic_probs,
            replay.texts,
            self.settings.interest,
            max_points=max_points,
            top_topics=top_topics,
            tau=self.settings.interest.topic_temperature,
        )
        return TopicHistory(points, replay.topics.labels)

    async def server_stats(self, encoder: Dependency, dimension: int) -> ServerStats:
        users, events = await self.logs.read(EventLog.totals)
        items, vector_store = await self.catalogue.size_and_health()
        return server_stats(
            self.settings, self.stats, items, users, events, encoder, vector_store, dimension, self.refitted()
        )

    def online_quality(self, bucket_seconds: int, buckets: int) -> QualityReport:
        return self.stats.quality.report(bucket_seconds, buckets, time.time())


def server_stats(
    settings: Settings,
    stats: ServingStats,
    items: int,
    users: int,
    events: int,
    encoder: Dependency,
    vector_store: Dependency,
    dimension: int,
    refitted: Refitted | None = None,
) -> ServerStats:
    """What this process knows of itself, with the counts and dependencies read by its caller."""
    return ServerStats(
        items=items,
        users=users,
        events=events,
        events_per_second=stats.acked_events.per_second(),
        recommend_latency=stats.recommend_latency.summary(),
        encoder=encoder,
        vector_store=vector_store,
        encoder_model=settings.triton.model_name,
        embedding_dimension=dimension,
        refitted=refitted,
        started_at=stats.started_at,
        role=settings.server.role,
    )


def encoder_health(encoder: TextEncoder, local_triton: LocalTriton | None = None) -> Dependency:
    """Whether the encoder answered its last request (and the local Triton runs, when this
    process supervises one), where it is, and what went wrong or how often Triton restarted."""
    if not isinstance(encoder, TritonTextEncoder):
        return Dependency(True, "in process")
    up, details = not encoder.last_failure, list[str]()
    if local_triton is not None:
        running, restarts = local_triton()
        up = up and running
        if not running:
            details.append("the local Triton is down: its supervisor is restarting it")
        if restarts:
            details.append(f"restarted {restarts} time{'s' if restarts != 1 else ''}")
    if encoder.last_failure:
        details.append(f"last request failed: {encoder.last_failure}")
    return Dependency(up, encoder.url, "; ".join(details))


def _cosine(score: float) -> float:
    """An inner product of unit vectors as a cosine: float32 rounding can pass 1 a little."""
    return min(1.0, max(-1.0, score))
