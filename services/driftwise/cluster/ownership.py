"""A profile shard refuses the users it does not own.

With several shards, a call for another shard's user is a routing bug (a router with a different
cluster.shards or cluster.partitions, or a client bypassing the routers): served here, it would
split that user's event log and profile across shards. So it fails with FAILED_PRECONDITION naming
the owning shard (google.rpc ErrorInfo reason WRONG_SHARD), and nothing is stored. On the bidi
streams a foreign message gets that error in its own response and the stream goes on, as for any
bad message. Item writes are global (Milvus is shared) and accepted by every shard. An empty user
id is left to the servicer's validation (INVALID_ARGUMENT).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from driftwise.api.errors import ERROR_DOMAIN
from driftwise.api.interceptors.base import Handler, MethodInterceptor
from driftwise.cluster.partitions import Partitioner
from driftwise_client.v1 import common_pb2, ingest_service_pb2, ranking_service_pb2

Context = grpc.aio.ServicerContext[Any, Any]
UsersOf = Callable[[Any], Iterable[str]]


def _user(request: Any) -> Iterable[str]:
    return (request.user_id,)


def _event_user(request: Any) -> Iterable[str]:
    return (request.event.user_id,)


def _batch_users(request: Any) -> Iterable[str]:
    return (e.user_id for e in request.events)


# full method name -> the users a request touches (unary) or a message names (streams)
_UNARY: dict[str, UsersOf] = {
    "/driftwise.v1.IngestService/IngestEvents": _batch_users,
    "/driftwise.v1.ProfileService/GetProfile": _user,
    "/driftwise.v1.ProfileService/WatchProfile": _user,
    "/driftwise.v1.ProfileService/DeleteUserData": _user,
    "/driftwise.v1.RankingService/Recommend": _user,
    "/driftwise.v1.RankingService/Rank": _user,
}
# bidi streams: the response type, for a per-message error
_STREAMS: dict[str, type[Any]] = {
    "/driftwise.v1.IngestService/StreamEvents": ingest_service_pb2.StreamEventsResponse,
    "/driftwise.v1.RankingService/StreamFeedback": ranking_service_pb2.StreamFeedbackResponse,
}


@dataclass(frozen=True, slots=True)
class Ownership:
    partitioner: Partitioner
    shard: int

    def foreign(self, users: Iterable[str]) -> tuple[str, int] | None:
        """The first user (and its owner) this shard does not own, if any."""
        for user in users:
            if user:
                owner = self.partitioner.shard(user)
                if owner != self.shard:
                    return user, owner
        return None

    def message(self, user: str, owner: int) -> str:
        return (
            f"user {user!r} belongs to profile shard {owner} (partition "
            f"{self.partitioner.partition(user)} of {self.partitioner.partitions}), not to this "
            f"shard {self.shard}: the call was routed to the wrong shard"
        )

    def status(self, user: str, owner: int) -> grpc.Status:
        info = error_details_pb2.ErrorInfo(
            reason="WRONG_SHARD",
            domain=ERROR_DOMAIN,
            metadata={"owner_shard": str(owner), "shard": str(self.shard)},
        )
        packed = any_pb2.Any()
        packed.Pack(info)
        return rpc_status.to_status(
            status_pb2.Status(
                code=grpc.StatusCode.FAILED_PRECONDITION.value[0],
                message=self.message(user, owner),
                details=[packed],
            )
        )


class OwnershipInterceptor(MethodInterceptor):
    """Checks every user-keyed call against the shard's partitions before the servicer runs."""

    def __init__(self, ownership: Ownership) -> None:
        self._ownership = ownership

    def applies(self, method: str) -> bool:
        return method in _UNARY or method in _STREAMS

    def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        method = details.method
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if method in _UNARY and handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._check_unary(handler.unary_unary, _UNARY[method]), **kwargs
            )
        if method in _UNARY and handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._check_server_stream(handler.unary_stream, _UNARY[method]),  # type: ignore[arg-type]
                **kwargs,
            )
        if method in _STREAMS and handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                self._check_bidi(handler.stream_stream, _STREAMS[method]),  # type: ignore[arg-type]
                **kwargs,
            )
        return handler

    def _check_unary(
        self, behavior: Callable[..., Awaitable[Any]], users: UsersOf
    ) -> Callable[..., Awaitable[Any]]:
        async def wrapper(request: Any, context: Context) -> Any:
            if foreign := self._ownership.foreign(users(request)):
                status = self._ownership.status(*foreign)
                await context.abort(status.code, status.details, status.trailing_metadata)
            return await behavior(request, context)

        return wrapper

    def _check_server_stream(
        self, behavior: Callable[..., AsyncIterator[Any]], users: UsersOf
    ) -> Callable[..., AsyncIterator[Any]]:
        async def wrapper(request: Any, context: Context) -> AsyncIterator[Any]:
            if foreign := self._ownership.foreign(users(request)):
                status = self._ownership.status(*foreign)
                await context.abort(status.code, status.details, status.trailing_metadata)
            async for response in behavior(request, context):
                yield response

        return wrapper

    def _check_bidi(
        self, behavior: Callable[..., AsyncIterator[Any]], response_type: type[Any]
    ) -> Callable[..., AsyncIterator[Any]]:
        # The stream servicers keep no state between messages and answer each before reading the
        # next, so handing them one message at a time keeps their order and flow control.
        async def wrapper(request_iterator: AsyncIterable[Any], context: Context) -> AsyncIterator[Any]:
            async for request in request_iterator:
                if foreign := self._ownership.foreign(_event_user(request)):
                    error = common_pb2.Error(
                        code=grpc.StatusCode.FAILED_PRECONDITION.value[0],
                        message=self._ownership.message(*foreign),
                    )
                    yield response_type(event_id=request.event.event_id, error=error)
                    continue
                async for response in behavior(_one(request), context):
                    yield response

        return wrapper


async def _one(message: Any) -> AsyncIterator[Any]:
    yield message
