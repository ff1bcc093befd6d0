"""Settings of the serving process: its gRPC server and role, the cluster of profile shards,
observability, and what one request may carry."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from driftwise.settings.base import Section

Role = Literal["all", "ingest", "ranking", "profile", "worker"]


class ServerSettings(Section):
    host: str = Field("127.0.0.1", description="Address the gRPC server binds.")
    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free port.")
    grace_seconds: float = Field(5.0, ge=0, description="Time in-flight calls get on shutdown.")
    health_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Also serve grpc.health.v1 (only it) in plaintext on this port (0: a free one), "
        "for Kubernetes' native gRPC probes, which cannot speak TLS; unset: health only on port.",
    )
    role: Role = Field(
        "all",
        description="all: every service in one process (embedded default). On a cluster: profile "
        "(a shard: event log, profiles and ranking for the users it owns), ingest (IngestService) "
        "and ranking (RankingService + ProfileService): stateless routers that send each call to "
        "the shard owning its user (see cluster.*). With cluster.nats_urls set (JetStream): ingest "
        "publishes events, worker applies them to profile snapshots, ranking serves from them.",
    )


class ClusterSettings(Section):
    shards: int = Field(1, ge=1, description="Profile shards (StatefulSet replicas).")
    partitions: int = Field(
        256,
        ge=1,
        description="Users hash into this many partitions, assigned to shards round-robin, so "
        "that adding shards moves whole partitions. Fixed for the life of the data.",
    )
    shard_address: str = Field(
        "",
        description="host:port of a shard, with {shard} standing for its index, e.g. "
        "driftwise-profile-{shard}.driftwise-profile:50051 (routers use it).",
    )
    shard_index: int = Field(
        -1,
        ge=-1,
        description="This shard's index (role profile); -1 takes it from the host name's "
        "trailing -N (a StatefulSet pod).",
    )
    forward_timeout_seconds: float = Field(
        10.0, gt=0, description="Deadline of a routed call when the caller set none."
    )
    nats_urls: tuple[str, ...] = Field(
        (),
        description="NATS servers of the JetStream event log (cluster mode on JetStream): roles "
        "ingest, worker and ranking then publish, apply and serve through it instead of shards.",
    )
    stream_replicas: int = Field(
        1, ge=1, le=5, description="Replicas of the event stream and the KV buckets (3 in production)."
    )
    lease_ttl_seconds: float = Field(
        6.0,
        gt=0,
        description="A worker's partitions are taken over this long after its last renewal: a dead "
        "worker's users are served again within about TTL + heartbeat + 1.5 s (9 s measured with the "
        "defaults, a NATS node killed with the worker); a worker stalled longer than TTL - heartbeat "
        "loses its leases. More than twice the heartbeat.",
    )
    lease_heartbeat_seconds: float = Field(
        1.5, gt=0, description="How often a worker renews its leases (and takes over free ones)."
    )
    worker_id: str = Field("", description="This worker's id (role worker); empty: host name and pid.")


class ObservabilitySettings(Section):
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Serve Prometheus metrics over HTTP at /metrics on this port (0: a free "
        "one); unset: no metrics endpoint. Tracing follows the standard OTEL_* variables: on "
        "when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.",
    )
    metrics_host: str = Field("127.0.0.1", description="Address the metrics endpoint binds.")
    log_format: Literal["text", "json"] = Field(
        "text", description="json: one JSON object per line, with the trace and span ids."
    )


class LimitSettings(Section):
    """What one request may carry. A request over a size limit is rejected whole with
    INVALID_ARGUMENT and a google.rpc BadRequest naming the field (nothing of it is stored);
    max_message_bytes and max_stream_messages_per_second answer RESOURCE_EXHAUSTED."""

    max_batch: int = Field(
        1000,
        ge=1,
        description="Entries of a repeated field: items or events per request, ids per DeleteItems, "
        "candidates per Rank, exclude_item_ids and filter categories per Recommend.",
    )
    max_text_chars: int = Field(
        4096,
        ge=1,
        description="Characters of one text field (event text, item description, tags joined, "
        "an item's attribute keys and values together).",
    )
    max_title_chars: int = Field(
        512,
        ge=1,
        le=512,
        description="Characters of an item title: stored in a 2048-byte Milvus field, which 512 "
        "characters of any script fit.",
    )
    max_id_chars: int = Field(
        128,
        ge=1,
        le=128,
        description="Characters of an id (item, user, event, impression), a category or an event "
        "context field; an id or category must also fit the 128 bytes of its Milvus field in UTF-8.",
    )
    max_attributes: int = Field(64, ge=0, description="Attributes of one item.")
    max_future_seconds: float = Field(300.0, ge=0, description="How far in the future an event may be.")
    max_count: int = Field(100, ge=1, description="Items per Recommend.")
    impressions_remembered: int = Field(
        100_000,
        ge=0,
        description="Recommendation lists kept in memory (the newest) so that StreamFeedback can say "
        "whether its impression_id names a list issued to that user and where the item was in it; "
        "about 0.4 KB each at 10 items: 40 MB at the default.",
    )
    max_message_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="Largest request message the server accepts (grpc.max_receive_message_length); "
        "a larger one is refused by gRPC with RESOURCE_EXHAUSTED before it is parsed.",
    )
    max_stream_messages_per_second: float = Field(
        500.0,
        gt=0,
        description="Messages per second one StreamEvents or StreamFeedback stream may send (a token "
        "bucket holding one second's worth): a message over the rate is not processed and gets its "
        "own error with code RESOURCE_EXHAUSTED; the stream goes on.",
    )
