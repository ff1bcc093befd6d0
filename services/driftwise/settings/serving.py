"""Settings of the serving process: its gRPC server and role, cluster mode on JetStream,
observability, and what one request may carry."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from driftwise.settings.base import Section

Role = Literal["all", "ingest", "ranking", "worker"]


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
        description="all: every service in one process (embedded default). Cluster mode on "
        "JetStream (needs cluster.nats_urls): ingest (IngestService) publishes events to the "
        "stream, worker applies them to profile snapshots, ranking (RankingService + "
        "ProfileService) serves from the snapshots.",
    )


class ClusterSettings(Section):
    partitions: int = Field(
        256,
        ge=1,
        description="Users hash into this many partitions of the event stream; workers share "
        "whole partitions. Fixed for the life of the stream.",
    )
    nats_urls: tuple[str, ...] = Field(
        (),
        description="NATS servers of the JetStream event log, for roles ingest, worker and ranking "
        "(cluster mode); empty with role all (the embedded event log).",
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
    # TLS and credentials towards the NATS servers of nats_urls (every JetStream role). Paths name
    # files, read at start (driftwise.cluster.nats_security): a missing or bad one stops the start.
    nats_tls_ca_file: Path | None = Field(
        None,
        description="CA certificates (PEM) that sign the NATS servers' certificates; set: TLS to "
        "every server of nats_urls, verified with this CA, and a server that does not offer TLS is "
        "refused; unset: plaintext (unless a server requires TLS: then verified with the system CAs).",
    )
    nats_tls_cert_file: Path | None = Field(
        None,
        description="Client certificate chain (PEM) for NATS servers that require mutual TLS "
        "(tls { verify: true }); needs nats_tls_ca_file and nats_tls_key_file.",
    )
    nats_tls_key_file: Path | None = Field(None, description="Private key of nats_tls_cert_file (PEM).")
    nats_tls_server_name: str = Field(
        "",
        description="Name to verify in the NATS servers' certificates instead of the host of each "
        "URL (e.g. one name shared by all servers); empty: the host.",
    )
    nats_credentials_file: Path | None = Field(
        None,
        description="NATS user credentials file (.creds: the user's JWT and nkey seed, as `nsc` "
        "writes it) for servers with JWT (operator mode) authentication; needs the nkeys package.",
    )
    nats_token_file: Path | None = Field(
        None,
        description="File holding the NATS authorization token (one line; e.g. a mounted Secret), "
        "for servers with token authentication. The token itself is never a setting.",
    )

    @model_validator(mode="after")
    def _nats_security_complete(self) -> ClusterSettings:
        # a half configuration would silently talk plaintext or fail at the first handshake
        if (self.nats_tls_cert_file is None) != (self.nats_tls_key_file is None):
            raise ValueError(
                "cluster.nats_tls_cert_file and cluster.nats_tls_key_file go together: set both or neither"
            )
        if self.nats_tls_cert_file is not None and self.nats_tls_ca_file is None:
            raise ValueError("cluster.nats_tls_cert_file (mutual TLS to NATS) needs cluster.nats_tls_ca_file")
        if self.nats_tls_server_name and self.nats_tls_ca_file is None:
            raise ValueError("cluster.nats_tls_server_name needs cluster.nats_tls_ca_file (TLS to NATS)")
        security = {
            "nats_tls_ca_file": self.nats_tls_ca_file,
            "nats_credentials_file": self.nats_credentials_file,
            "nats_token_file": self.nats_token_file,
        }
        named = [f"cluster.{name}" for name, value in security.items() if value is not None]
        if named and not self.nats_urls:
            raise ValueError(f"{', '.join(named)}: for the NATS servers of cluster.nats_urls, which is empty")
        return self


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
    profiles_remembered: int = Field(
        1024,
        ge=0,
        description="Users whose seen items and learned signals Recommend keeps between calls, while "
        "their profile is unchanged (the next call skips the log read and the signals); up to ~50 KB "
        "each (the co-occurrence scores of their recent events): 50 MB at the default. 0: none.",
    )
    impressions_remembered: int = Field(
        100_000,
        ge=0,
        description="Recommendation lists kept in memory (the newest) so that StreamFeedback can say "
        "whether its impression_id names a list issued to that user and where the item was in it (and "
        "the online quality count the feedback under the item's reason and layer); about 0.5 KB each "
        "at 10 items: 50 MB at the default.",
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
