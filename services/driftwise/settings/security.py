"""Settings of who may see and call what: pseudonymised user ids, TLS of the server, bearer
tokens with per-tenant scopes."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from driftwise.settings.base import Section


class PrivacySettings(Section):
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


class TlsSettings(Section):
    """TLS of the gRPC server (every role).

    Paths name PEM files, read at start. No cert_file: plaintext (the embedded local default). With
    client_ca_file the server requires mutual TLS: a client without a certificate signed by that CA
    is refused in the handshake, before any call."""

    cert_file: Path | None = Field(None, description="Server certificate chain (PEM); unset: plaintext.")
    key_file: Path | None = Field(None, description="Private key of cert_file (PEM).")
    client_ca_file: Path | None = Field(
        None,
        description="CA certificates (PEM) that sign client certificates; set: mutual TLS required.",
    )

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        # a half configuration would silently serve plaintext or fail at the first handshake
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file go together: set both or neither")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError("tls.client_ca_file (mutual TLS) needs tls.cert_file and tls.key_file")
        return self


class AuthSettings(Section):
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
