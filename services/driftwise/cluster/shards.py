"""One gRPC channel per profile shard, and how a router forwards a call to one.

Forwarding keeps the caller's deadline (else cluster.forward_timeout_seconds), passes on the
metadata that must cross the hop (trace context, credentials), and hands a shard's error status
back unchanged: code, message and trailing metadata, so google.rpc details (BadRequest, ErrorInfo)
reach the client. A shard that cannot be reached becomes UNAVAILABLE naming the shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from driftwise.api.errors import ERROR_DOMAIN
from driftwise.settings import ClusterSettings

Context = grpc.aio.ServicerContext[Any, Any]
Metadata = tuple[tuple[str, str | bytes], ...]

# OpenTelemetry's W3C propagator (traceparent, tracestate, baggage) and the caller's credentials
FORWARDED_METADATA = frozenset({"traceparent", "tracestate", "baggage", "authorization"})
STATUS_DETAILS_KEY = "grpc-status-details-bin"


def shard_address(template: str, index: int) -> str:
    return template.replace("{shard}", str(index))


class ShardChannels:
    """A `grpc.aio` channel per shard, created up front (they connect lazily), closed by `close`.

    `interceptors` are client interceptors added to every channel (e.g. OpenTelemetry's);
    `credentials` make them TLS channels (driftwise.security.tls), else they are plaintext."""

    def __init__(
        self,
        cluster: ClusterSettings,
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, str]] = (),
    ) -> None:
        if not cluster.shard_address:
            raise ValueError(
                "a router needs cluster.shard_address (host:port of a shard, {shard} for its index), "
                "e.g. DRIFTWISE_CLUSTER__SHARD_ADDRESS=driftwise-profile-{shard}.driftwise-profile:50051"
            )
        if cluster.shards > 1 and "{shard}" not in cluster.shard_address:
            raise ValueError(
                f"cluster.shard_address {cluster.shard_address!r} has no {{shard}} placeholder, so "
                f"all {cluster.shards} shards would be the same address"
            )
        self.addresses = [shard_address(cluster.shard_address, i) for i in range(cluster.shards)]
        self.secure = credentials is not None
        self._channels = [
            grpc.aio.insecure_channel(address, list(options), interceptors=list(interceptors))
            if credentials is None
            else grpc.aio.secure_channel(address, credentials, list(options), interceptors=list(interceptors))
            for address in self.addresses
        ]

    def __len__(self) -> int:
        return len(self._channels)

    def channel(self, shard: int) -> grpc.aio.Channel:
        return self._channels[shard]

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


@dataclass(frozen=True, slots=True)
class CallOptions:
    """What an outgoing call inherits from the incoming one."""

    timeout: float | None
    metadata: Metadata

    @classmethod
    def of(cls, context: Context, default_timeout: float | None) -> CallOptions:
        """The caller's remaining deadline (else `default_timeout`) and its forwarded metadata."""
        remaining = context.time_remaining()
        metadata = tuple(
            (key, value)
            for key, value in context.invocation_metadata() or ()
            if key.lower() in FORWARDED_METADATA
        )
        return cls(remaining if remaining is not None else default_timeout, metadata)


def upstream_status(exc: grpc.aio.AioRpcError, shard: int, address: str) -> grpc.Status:
    """The status to return for a failed forwarded call.

    A status the shard itself sent passes through unchanged. UNAVAILABLE without google.rpc
    details comes from the transport (the shard is down or unreachable): it is re-worded to name
    the shard, so an operator knows which pod to look at."""
    trailing = tuple(exc.trailing_metadata() or ())
    has_details = any(key == STATUS_DETAILS_KEY for key, _ in trailing)
    if exc.code() == grpc.StatusCode.UNAVAILABLE and not has_details:
        info = error_details_pb2.ErrorInfo(
            reason="SHARD_UNAVAILABLE",
            domain=ERROR_DOMAIN,
            metadata={"shard": str(shard), "address": address},
        )
        packed = any_pb2.Any()
        packed.Pack(info)
        status = status_pb2.Status(
            code=grpc.StatusCode.UNAVAILABLE.value[0],
            message=f"profile shard {shard} ({address}) is unavailable: {exc.details()}",
            details=[packed],
        )
        return rpc_status.to_status(status)
    return Status(exc.code(), exc.details() or "", trailing)


@dataclass(frozen=True)
class Status(grpc.Status):
    """A plain grpc.Status (rpc_status builds one only from a google.rpc.Status)."""

    code: grpc.StatusCode
    details: str
    trailing_metadata: Metadata


async def abort_with(context: Context, status: grpc.Status) -> NoReturn:
    await context.abort(status.code, status.details, status.trailing_metadata)
