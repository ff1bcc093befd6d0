"""Settings of the two backends: Triton, which encodes texts, and Milvus, which stores and searches
the item and interest vectors."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from driftwise.settings.base import REPO_ROOT, Section


class TritonSettings(Section):
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


class MilvusSettings(Section):
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
