"""The server's interceptors share one skeleton (`MethodInterceptor`): find the method's handler,
leave the methods the interceptor does not apply to alone, and wrap the others' behaviour,
whatever their kind (`rewrap`). The chain is declared once, in `server_chain`.

    tracing (OpenTelemetry), metrics    outermost: they see every call, refused ones included
    authentication (tokens, scopes)     refuses a call before anything runs
    ownership (profile shards only)     refuses users of other shards
    error mapping                       engine errors -> status codes with details
    stream closing                      ends streams at shutdown (inside the error mapping)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeAlias

import grpc

from driftwise.concurrency import Closing
from driftwise.errors import UnavailableError

OWN_METHODS = "/driftwise."  # full method names of Driftwise's services start with this

Unary = Callable[..., Awaitable[Any]]  # answers once: unary-unary, stream-unary
Streaming = Callable[..., AsyncIterator[Any]]  # answers with a stream: unary-stream, stream-stream


def rewrap(
    handler: grpc.RpcMethodHandler[Any, Any],
    unary: Callable[[Unary], Unary],
    streaming: Callable[[Streaming], Streaming],
) -> grpc.RpcMethodHandler[Any, Any]:
    """The same method with its behaviour wrapped by `unary` or `streaming`, by how it answers."""
    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **kwargs)
    # the grpc stubs type streaming behaviours as sync iterators; grpc.aio takes async ones
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **kwargs)  # type: ignore[arg-type]
    return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **kwargs)  # type: ignore[arg-type]


# strings: grpc's classes are generic only to the type checker
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]"


class MethodInterceptor(grpc.aio.ServerInterceptor):
    """The skeleton: `wrap` the handler of every method `applies` says yes to (by default,
    Driftwise's own methods: health and reflection are grpc's, with their own behaviour)."""

    def applies(self, method: str) -> bool:
        return method.startswith(OWN_METHODS)

    def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        raise NotImplementedError

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or not self.applies(handler_call_details.method):
            return handler
        return self.wrap(handler, handler_call_details)


class StreamClosing(MethodInterceptor):
    """Ends Driftwise's streams with UNAVAILABLE "server shutting down" once `close()` is called.

    grpc.aio's `server.stop(grace)` lets calls run until the grace ends and then cancels them: a
    WatchProfile stream (idle until the profile changes) or an open StreamFeedback / StreamEvents
    would hold the whole grace and end CANCELLED. Instead, at the start of shutdown:
    - a server stream (WatchProfile) stops waiting for its next message and ends at once;
    - a bidi stream reads no more messages: the one being handled is answered, then it ends.
    The status is UNAVAILABLE (a client retries elsewhere; resending is safe, event ids are
    idempotent). Runs inside the error mapping, which turns the UnavailableError into the status;
    unary calls are left to the grace period, other services (health, reflection) to grpc.aio.
    """

    def __init__(self) -> None:
        self._closing = Closing()

    def close(self) -> None:
        self._closing.close()

    def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        if handler.unary_stream:
            return rewrap(handler, lambda b: b, self._guard_responses)
        if handler.stream_stream:
            return rewrap(handler, lambda b: b, self._guard_requests)
        return handler

    @staticmethod
    def _shutting_down() -> UnavailableError:
        return UnavailableError("server shutting down")

    def _guard_responses(self, behavior: Streaming) -> Streaming:
        def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            return self._closing.guard(behavior(request, context), self._shutting_down)

        return guarded

    def _guard_requests(self, behavior: Streaming) -> Streaming:
        def guarded(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            return behavior(self._closing.guard(requests, self._shutting_down), context)

        return guarded


def server_chain(
    telemetry: Sequence[grpc.aio.ServerInterceptor],
    auth: Sequence[grpc.aio.ServerInterceptor],
    role: Sequence[grpc.aio.ServerInterceptor],
    errors: grpc.aio.ServerInterceptor,
    streams: grpc.aio.ServerInterceptor,
) -> list[grpc.aio.ServerInterceptor]:
    """The interceptors of every server, outermost first (see the module's docstring)."""
    return [*telemetry, *auth, *role, errors, streams]
