"""The profile tier as shards (docs/interest-model.md §6.4), and the stateless routers in front of it.

- `partitions`: user id -> partition -> shard (a stable hash; never Python's `hash()`).
- `shards`: one gRPC channel per shard, and forwarding (deadline, metadata, error pass-through).
- `ownership`: a profile shard refuses users it does not own (FAILED_PRECONDITION).
- `router`: the ingest and ranking routers (IngestService; RankingService + ProfileService).
- `streams`: bidi streams fanned out to one upstream stream per shard, answered in order.
"""
