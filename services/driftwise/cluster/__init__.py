"""Cluster mode on NATS JetStream (docs/architecture.md §6): ingest replicas publish events to a
replicated stream, profile workers apply them to profile snapshots in a replicated KV bucket, and
stateless ranking replicas serve from the snapshots and Milvus.

- `partitions`: user id -> partition of the stream (a stable hash; never Python's `hash()`).
- `event_stream`, `partition_reader`, `messages`: the stream, reading one partition, the event format.
- `leases`: which worker applies which partition (KV leases with a TTL, fencing tokens).
- `worker`, `batches`, `snapshots`: applying a partition's events to the users' snapshots.
- `ingest`, `reads`, `ranking`: the ingest and ranking replicas' backends.
- `serving`: what `driftwise serve` runs for roles ingest, worker and ranking.
"""
