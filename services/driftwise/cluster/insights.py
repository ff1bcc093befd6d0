"""InsightService on a stateless ranking replica (cluster mode on JetStream): what it can answer
honestly without the embedded event log (docs/insights.md, "Cluster mode").

- ListItems, SearchItems: from Milvus and Triton, as the embedded server answers them.
- GetItem: the item and its neighbours from Milvus, its positive events from the partitions'
  item counts; no followers (no refits in cluster mode) and no recent interactions (no log to
  read them from).
- GetServerStats: the catalogue's size, this replica's Recommend latency, the events it
  acknowledged (feedback), its dependencies, its start and role; users and events are 0 (they
  are counted by the workers, in the stream), and no model status (no refits).
- GetOnlineQuality: the lists this replica issued (each replica counts its own).
- ListUsers and GetTopicHistory: UNIMPLEMENTED (they read the event log of role all).
"""

from __future__ import annotations

import time

from driftwise.cluster.reads import SnapshotReads
from driftwise.engine.insights import CatalogueReads, encoder_health, server_stats
from driftwise.engine.serving_stats import ServingStats
from driftwise.engine.types import ItemDetail, ItemHit, ItemPage, ServerStats, TopicHistory, UserPage
from driftwise.errors import UnimplementedError
from driftwise.inference.encoder import TextEncoder
from driftwise.model.online_quality import QualityReport
from driftwise.settings import Settings


class ClusterInsights:
    def __init__(
        self,
        settings: Settings,
        catalogue: CatalogueReads,
        reads: SnapshotReads,
        encoder: TextEncoder,
        stats: ServingStats,
    ) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.reads = reads  # the item counts
        self.encoder = encoder
        self.stats = stats  # the ranking replica's own (its Recommender's)

    async def list_users(self, prefix: str, after: tuple[float, str] | None, limit: int) -> UserPage:
        raise _needs_the_log("ListUsers", "lists the users of the event log")

    async def list_items(self, title_contains: str, after: str | None, limit: int) -> ItemPage:
        return await self.catalogue.list_items(title_contains, after, limit)

    async def search_items(self, text: str, count: int) -> list[ItemHit]:
        return await self.catalogue.search_items(text, count)

    async def get_item(self, item_id: str, neighbours: int) -> ItemDetail:
        item, hits = await self.catalogue.item_and_neighbours(item_id, neighbours)
        return ItemDetail(item, hits, [], [], self.reads.popularity.counts.get(item_id, 0))

    async def topic_history(self, user_id: str, max_points: int, top_topics: int) -> TopicHistory:
        raise _needs_the_log("GetTopicHistory", "replays the user's events from the event log")

    async def server_stats(self) -> ServerStats:
        items, vector_store = await self.catalogue.size_and_health()
        encoder = encoder_health(self.encoder)
        return server_stats(
            self.settings, self.stats, items, 0, 0, encoder, vector_store, self.encoder.dimension
        )

    def online_quality(self, bucket_seconds: int, buckets: int) -> QualityReport:
        return self.stats.quality.report(bucket_seconds, buckets, time.time())


def _needs_the_log(method: str, what: str) -> UnimplementedError:
    return UnimplementedError(
        f"{method} {what}, which only a server of role all keeps; this is a ranking replica of "
        "cluster mode (its events are in the JetStream stream, applied by the workers)"
    )
