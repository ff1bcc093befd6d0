"""The one typed settings object. Defaults run everything embedded on one machine.

Override with environment variables (prefix DRIFTWISE_, nested with "__", for example
DRIFTWISE_SERVER__PORT=6000 or DRIFTWISE_MILVUS__URI=http://milvus:19530) or with a TOML file named
by DRIFTWISE_CONFIG (or `--config`). Environment variables win over the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from driftwise.model.config import InterestModelConfig, RankingConfig, TuningConfig

REPO_ROOT = Path(__file__).resolve().parents[2]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Role = Literal["all", "ingest", "ranking", "profile"]


class ServerSettings(_Section):
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
        "the shard owning its user (see cluster.*).",
    )


class ClusterSettings(_Section):
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


class ObservabilitySettings(_Section):
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


class TritonSettings(_Section):
    url: str = Field(
        "",
        description="host:port of a running Triton's gRPC endpoint; empty starts "
        "the bundled tritonserver locally on free loopback ports.",
    )
    model_repository: Path = Field(
        REPO_ROOT / "model_repository", description="Repository served by the local Triton."
    )
    model_name: str = Field(
        "text_encoder",
        description="Encoder model: text_encoder (torch), text_encoder_onnx (ONNX Runtime fp32), "
        "text_encoder_onnx_int8, or text_encoder_multilingual (Chinese + English, 512-d). The local "
        "Triton loads only this model; vector dimension follows it.",
    )
    config_name: str = Field(
        "",
        description="Triton custom model configuration for the local server, e.g. gpu "
        "(model_repository/<model>/configs/gpu.pbtxt); empty uses config.pbtxt.",
    )
    startup_timeout_seconds: float = Field(180.0, gt=0, description="Wait for the local Triton.")
    request_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Deadline of one Triton request: a hung Triton holds callers this long before "
        "UNAVAILABLE (a dead or restarting one answers within ~0.5 s, retries included).",
    )
    restart_backoff_seconds: float = Field(
        1.0,
        gt=0,
        description="Local Triton only: wait before restarting it after a death that follows its "
        "last start closely (a first death restarts at once); doubles per try.",
    )
    restart_max_backoff_seconds: float = Field(
        30.0,
        gt=0,
        description="Local Triton only: longest wait between restarts; a server that stays up "
        "this long counts as stable again.",
    )
    max_batch_size: int = Field(64, ge=1, description="Texts per Triton request.")
    max_in_flight: int = Field(4, ge=1, description="Triton requests in flight per process.")
    cache_size: int = Field(10_000, ge=0, description="Embeddings kept in the LRU cache (0: none).")
    batch_window_seconds: float = Field(
        0.001, ge=0, description="How long concurrent encode calls wait to share a request."
    )
    unknown_share_threshold: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A text to encode (item text, event text, stated interest) of which at least "
        "this share is unknown to the model's vocabulary (MiniLM: words that become [UNK], each "
        "Chinese character a word; multilingual: characters; letters and digits only) is logged "
        "and counted in driftwise_encoder_unrepresented_texts_total, then encoded all the same.",
    )
    # TLS to a remote Triton (triton.url). The local Triton (url empty) is a child process on
    # 127.0.0.1 and stays plaintext: loopback traffic never leaves the host.
    tls_ca_file: Path | None = Field(
        None,
        description="Remote Triton: CA certificates (PEM) that sign Triton's gRPC server certificate; "
        "set: TLS to triton.url (tritonserver --grpc-use-ssl); unset: plaintext.",
    )
    tls_cert_file: Path | None = Field(
        None,
        description="Remote Triton: client certificate chain (PEM), for a Triton that requires mutual "
        "TLS (--grpc-use-ssl-mutual).",
    )
    tls_key_file: Path | None = Field(None, description="Private key of triton.tls_cert_file (PEM).")
    tls_server_name: str = Field(
        "",
        description="Remote Triton: name to verify in its certificate instead of the host of "
        "triton.url; empty: the host.",
    )

    @model_validator(mode="after")
    def _complete(self) -> TritonSettings:
        # a half configuration would silently talk plaintext or fail at the first handshake
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("triton.tls_cert_file and triton.tls_key_file go together: set both or neither")
        if self.tls_cert_file is not None and self.tls_ca_file is None:
            raise ValueError("triton.tls_cert_file (mutual TLS to Triton) needs triton.tls_ca_file")
        if self.tls_server_name and self.tls_ca_file is None:
            raise ValueError("triton.tls_server_name needs triton.tls_ca_file (TLS to Triton)")
        if self.tls_ca_file is not None and not self.url:
            raise ValueError(
                "triton.tls_ca_file is for a remote Triton (triton.url): the local Triton listens "
                "in plaintext on 127.0.0.1"
            )
        return self


class MilvusSettings(_Section):
    uri: str = Field(
        "",
        description="Milvus server URI (http://host:19530); empty uses Milvus Lite in <data_dir>/milvus.db.",
    )
    token: str = Field("", description="Milvus token, e.g. root:Milvus.")
    request_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Deadline of one Milvus call: a hung server holds a caller (and the calls queued "
        "behind it on the store's one thread) this long before UNAVAILABLE; a down one answers at once.",
    )
    connect_timeout_seconds: float = Field(
        3.0,
        gt=0,
        description="Deadline of connecting to Milvus, at start and when reconnecting after an outage "
        "(a starting server accepts connections before it answers).",
    )
    index_type: str = Field(
        "FLAT",
        description="Vector index: FLAT or IVF_FLAT for Milvus Lite (no HNSW there), HNSW for a server.",
    )
    lite_candidates_per_layer: int = Field(
        10,
        ge=1,
        description="With Milvus Lite, each layer's search returns at most this many items (a server "
        "is not capped): at 10k items on 2 cores, Recommend p50 at c=1 is ~18 ms with 10, ~23 ms "
        "with 100, ~29 ms uncapped (200). Co-occurrence candidates come from memory and are not "
        "affected.",
    )
    tls_ca_file: Path | None = Field(
        None,
        description="TLS to a Milvus server: CA (PEM) that signs the server's certificate; set: TLS "
        "(Milvus common.security.tlsMode 1 or 2), unset: plaintext. Not with Milvus Lite.",
    )
    tls_cert_file: Path | None = Field(
        None,
        description="Client certificate chain (PEM) for a Milvus server that requires mutual TLS "
        "(tlsMode 2); needs tls_ca_file and tls_key_file.",
    )
    tls_key_file: Path | None = Field(None, description="Private key of tls_cert_file (PEM).")
    tls_server_name: str = Field(
        "",
        description="Name to verify in the Milvus server's certificate instead of the host of uri; "
        "empty: the host.",
    )
    item_cache_size: int = Field(
        100_000, ge=0, description="Items (fields and vector) cached in process for ranking (0: none)."
    )
    warm_item_cache: bool = Field(
        True,
        description="Read the catalogue into the item cache before serving (1-3 ms per item on 2 "
        "cores): slower start, no cold first requests.",
    )
    item_cache_ttl_seconds: float = Field(
        900.0,
        gt=0,
        description="How long a cached item is trusted (upserts via other replicas); items in the "
        "event log are re-read at every refit (ranking.refit_seconds), so keep this longer.",
    )

    @model_validator(mode="after")
    def _tls_complete(self) -> MilvusSettings:
        # a half configuration would silently connect in plaintext or fail at the first handshake
        tls_set = self.tls_ca_file or self.tls_cert_file or self.tls_key_file or self.tls_server_name
        if tls_set and (not self.uri or self.uri.endswith(".db")):
            raise ValueError(
                "milvus.tls_* need a Milvus server (milvus.uri http://host:port); Milvus Lite is a local file"
            )
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("milvus.tls_cert_file and milvus.tls_key_file go together: set both or neither")
        if self.tls_cert_file is not None and self.tls_ca_file is None:
            raise ValueError("milvus.tls_cert_file (mutual TLS to Milvus) needs milvus.tls_ca_file")
        if self.tls_server_name and self.tls_ca_file is None:
            raise ValueError("milvus.tls_server_name needs milvus.tls_ca_file (TLS to Milvus)")
        return self


class LimitSettings(_Section):
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


class PrivacySettings(_Section):
    pseudonymise_user_ids: bool = Field(
        False,
        description="Store users under a keyed hash of their id (HMAC-SHA256 with the key in "
        "user_id_key_file) instead of the id callers send: the event log, profiles and Milvus never "
        "hold the id. Callers go on using their ids. Fixed for the life of the data: a data "
        "directory written with another setting or key is refused at start.",
    )
    user_id_key_file: Path | None = Field(
        None,
        description="File holding the secret key (at least 32 bytes, e.g. `openssl rand -hex 32`; "
        "a mounted Kubernetes Secret on a cluster). Required when pseudonymise_user_ids is on.",
    )

    @model_validator(mode="after")
    def _key_when_pseudonymising(self) -> PrivacySettings:
        if self.pseudonymise_user_ids and self.user_id_key_file is None:
            raise ValueError("privacy.pseudonymise_user_ids needs privacy.user_id_key_file")
        return self


class TlsSettings(_Section):
    """TLS of the gRPC server (every role) and of a router's channels to the profile shards.

    Paths name PEM files, read at start. No cert_file: plaintext (the embedded local default). With
    client_ca_file the server requires mutual TLS: a client without a certificate signed by that CA
    is refused in the handshake, before any call. A router (role ingest or ranking) verifies the
    shards with shard_ca_file and presents shard_cert_file / shard_key_file when the shards
    require mutual TLS (these may be the router's own server certificate and key)."""

    cert_file: Path | None = Field(None, description="Server certificate chain (PEM); unset: plaintext.")
    key_file: Path | None = Field(None, description="Private key of cert_file (PEM).")
    client_ca_file: Path | None = Field(
        None,
        description="CA certificates (PEM) that sign client certificates; set: mutual TLS required.",
    )
    shard_ca_file: Path | None = Field(
        None, description="Router -> shard: CA (PEM) that signs the shards' certificates; unset: plaintext."
    )
    shard_cert_file: Path | None = Field(
        None, description="Router -> shard: client certificate chain (PEM) for shards that require mTLS."
    )
    shard_key_file: Path | None = Field(None, description="Private key of shard_cert_file (PEM).")
    shard_server_name: str = Field(
        "",
        description="Router -> shard: name to verify in the shards' certificates instead of the host "
        "of cluster.shard_address (e.g. a name shared by all shards); empty: the host.",
    )

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        # a half configuration would silently serve plaintext or fail at the first handshake
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file go together: set both or neither")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError("tls.client_ca_file (mutual TLS) needs tls.cert_file and tls.key_file")
        if (self.shard_cert_file is None) != (self.shard_key_file is None):
            raise ValueError("tls.shard_cert_file and tls.shard_key_file go together: set both or neither")
        if self.shard_cert_file is not None and self.shard_ca_file is None:
            raise ValueError("tls.shard_cert_file (mutual TLS to the shards) needs tls.shard_ca_file")
        if self.shard_server_name and self.shard_ca_file is None:
            raise ValueError("tls.shard_server_name needs tls.shard_ca_file (TLS to the shards)")
        return self


class AuthSettings(_Section):
    """Bearer-token authentication with per-tenant scopes (driftwise.security).

    Off by default. On: every Driftwise call needs `authorization: Bearer <token>` of a tenant in
    tokens_file that holds the scope the method needs (driftwise.security.scopes), else
    UNAUTHENTICATED / PERMISSION_DENIED. Health checks stay open. Send tokens only over TLS."""

    enabled: bool = Field(False, description="Require a token on every Driftwise call.")
    tokens_file: Path | None = Field(
        None,
        description="TOML file of tenants: [tenants.<name>] scopes = [...], token_sha256 = [...] "
        "(hex SHA-256 of each token: the file holds no usable secret). `driftwise token` makes one.",
    )

    @model_validator(mode="after")
    def _complete(self) -> AuthSettings:
        if self.enabled and self.tokens_file is None:
            raise ValueError("auth.enabled needs auth.tokens_file (the tenants, scopes and token hashes)")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DRIFTWISE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data_dir: Path = Field(Path(".driftwise"), description="Event log, Milvus Lite file, logs.")
    server: ServerSettings = ServerSettings()
    cluster: ClusterSettings = ClusterSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    triton: TritonSettings = TritonSettings()
    milvus: MilvusSettings = MilvusSettings()
    limits: LimitSettings = LimitSettings()
    privacy: PrivacySettings = PrivacySettings()
    tls: TlsSettings = TlsSettings()
    auth: AuthSettings = AuthSettings()
    interest: InterestModelConfig = InterestModelConfig()
    ranking: RankingConfig = RankingConfig()
    tuning: TuningConfig = TuningConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("DRIFTWISE_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @property
    def milvus_uri(self) -> str:
        return self.milvus.uri or str(self.data_dir / "milvus.db")

    @property
    def candidates_per_layer(self) -> int:
        """Items each layer's Milvus search returns (capped on Milvus Lite)."""
        return self.candidates_per_layer_for(self.ranking)

    def candidates_per_layer_for(self, ranking: RankingConfig) -> int:
        """Items each layer's Milvus search returns with these ranking settings (capped on Lite)."""
        limit = ranking.candidates_per_layer
        return limit if self.milvus.uri else min(limit, self.milvus.lite_candidates_per_layer)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from (in increasing priority) defaults, the TOML file, the environment, overrides."""
    if config_file is not None:
        os.environ["DRIFTWISE_CONFIG"] = str(config_file)
    return Settings(**overrides)
