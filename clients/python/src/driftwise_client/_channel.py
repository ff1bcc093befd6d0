"""What a channel needs, the same for the sync and the asyncio client: credentials and options.

Tokens: over TLS the token travels as call credentials composed into the channel credentials
(`grpc.access_token_call_credentials` for a fixed token, a metadata plugin for a token provider), so
gRPC attaches `authorization: Bearer <token>` to every call and never sends it in clear text. gRPC
refuses call credentials on an insecure channel; for local testing against a loopback server (or
with allow_insecure_token=True) the client adds the same header as per-call metadata instead.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from driftwise_client.options import TlsConfig

TokenSource = str | Callable[[], str]
"""A bearer token, or a function returning the current one (called for every call)."""

Metadata = tuple[tuple[str, str | bytes], ...]

USER_AGENT = "driftwise-client-python"


class _TokenPlugin(grpc.AuthMetadataPlugin):
    """Call credentials from a token provider: `authorization: Bearer <provider()>` per call."""

    def __init__(self, provider: Callable[[], str]) -> None:
        self._provider = provider

    def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        try:
            token = self._provider()
        except Exception as exc:  # reported to the call as UNAVAILABLE/UNAUTHENTICATED by gRPC
            callback((), exc)
            return
        callback((("authorization", f"Bearer {token}"),), None)


def is_loopback(target: str) -> bool:
    """True for unix sockets, localhost and loopback addresses (a token may go in clear text there)."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    host = target.removeprefix("dns:///").removeprefix("ipv4:").removeprefix("ipv6:")
    if host.startswith("["):  # [::1]:50051
        host = host[1 : host.find("]")]
    elif host.count(":") == 1:  # host:port
        host = host.rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ChannelSpec:
    """Everything needed to open a channel and decorate its calls."""

    target: str
    credentials: grpc.ChannelCredentials | None  # None: insecure channel
    options: list[tuple[str, Any]]
    token: TokenSource | None  # sent as per-call metadata (insecure channels only)

    def call_metadata(self, extra: Sequence[tuple[str, str | bytes]] | None) -> Metadata | None:
        """Metadata for one call: the token header where the channel cannot send it, then `extra`."""
        metadata: list[tuple[str, str | bytes]] = []
        if self.token is not None:
            token = self.token() if callable(self.token) else self.token
            metadata.append(("authorization", f"Bearer {token}"))
        if extra:
            metadata.extend(extra)
        return tuple(metadata) or None


def channel_spec(
    target: str,
    *,
    tls: TlsConfig | None,
    token: TokenSource | None,
    allow_insecure_token: bool,
    options: Sequence[tuple[str, Any]],
    version: str,
) -> ChannelSpec:
    opts: list[tuple[str, Any]] = [("grpc.primary_user_agent", f"{USER_AGENT}/{version}")]
    if tls is not None and tls.server_name_override:
        opts.append(("grpc.ssl_target_name_override", tls.server_name_override))
    opts.extend(options)
    if tls is None:
        if token is not None and not (allow_insecure_token or is_loopback(target)):
            raise ValueError(
                f"refusing to send a token in clear text to {target}: use tls=TlsConfig(...), "
                "or allow_insecure_token=True if the network is trusted"
            )
        return ChannelSpec(target, None, opts, token)
    credentials = tls.channel_credentials()
    if token is not None:
        call_credentials = (
            grpc.metadata_call_credentials(_TokenPlugin(token), name="driftwise-token")
            if callable(token)
            else grpc.access_token_call_credentials(token)
        )
        credentials = grpc.composite_channel_credentials(credentials, call_credentials)
    return ChannelSpec(target, credentials, opts, None)
