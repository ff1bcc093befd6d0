"""Client options: retry policy and TLS settings (plain, immutable values)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import grpc

__all__ = ["DEFAULT_RETRYABLE_CODES", "RetryPolicy", "TlsConfig"]

DEFAULT_RETRYABLE_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}
)


@dataclass(frozen=True)
class RetryPolicy:
    """How idempotent unary calls are retried (streams are never retried).

    Attempt n+1 starts after a random delay in [0, min(max_backoff, initial_backoff *
    backoff_multiplier ** (n - 1))] seconds ("full jitter", as in gRPC's own retry design A6), at
    most `max_attempts` attempts in all, and never past the call's overall deadline: a retry whose
    delay would end after the deadline is not made, and each attempt's timeout is what is left.

    DEADLINE_EXCEEDED is retryable only when `attempt_timeout` cuts attempts shorter than the
    overall deadline (or the server itself reports it): once the overall deadline is spent there
    is nothing left to retry in.
    """

    max_attempts: int = 5
    """Attempts in all, the first included (1 disables retries)."""
    initial_backoff: float = 0.1
    """Upper bound of the first retry's random delay, seconds."""
    max_backoff: float = 5.0
    """Upper bound of any retry's random delay, seconds."""
    backoff_multiplier: float = 2.0
    """Growth of the delay bound per retry."""
    attempt_timeout: float | None = None
    """Deadline of one attempt in seconds (capped by what is left of the overall deadline); None: the
    whole remaining deadline."""
    retryable_codes: frozenset[grpc.StatusCode] = field(default=DEFAULT_RETRYABLE_CODES)
    """Status codes worth another attempt."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.backoff_multiplier < 1:
            raise ValueError("backoffs must be >= 0 and backoff_multiplier >= 1")
        if self.attempt_timeout is not None and self.attempt_timeout <= 0:
            raise ValueError("attempt_timeout must be positive")

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """One attempt only."""
        return cls(max_attempts=1)

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """Random delay before retry number `retry` (1 for the second attempt), in seconds."""
        bound = min(self.max_backoff, self.initial_backoff * self.backoff_multiplier ** (retry - 1))
        return (rng or random).uniform(0.0, bound)


@dataclass(frozen=True)
class TlsConfig:
    """TLS for the channel: server verification and, for mutual TLS, a client certificate.

    All values are PEM bytes. root_certificates None uses gRPC's default roots (its bundled roots,
    or GRPC_DEFAULT_SSL_ROOTS_FILE_PATH)."""

    root_certificates: bytes | None = None
    """CA certificates that sign the server's certificate; None: default roots."""
    certificate_chain: bytes | None = None
    """Client certificate chain, for mutual TLS (with private_key)."""
    private_key: bytes | None = None
    """Client private key, for mutual TLS (with certificate_chain)."""
    server_name_override: str | None = None
    """Host name to verify the server certificate against instead of the target's (testing only)."""

    def __post_init__(self) -> None:
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("mutual TLS needs both certificate_chain and private_key")

    @classmethod
    def from_files(
        cls,
        root_certificates: str | Path | None = None,
        certificate_chain: str | Path | None = None,
        private_key: str | Path | None = None,
        server_name_override: str | None = None,
    ) -> TlsConfig:
        """TlsConfig from PEM files."""

        def read(path: str | Path | None) -> bytes | None:
            return None if path is None else Path(path).read_bytes()

        return cls(read(root_certificates), read(certificate_chain), read(private_key), server_name_override)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )
