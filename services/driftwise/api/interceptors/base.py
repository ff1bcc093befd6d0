"""The skeleton every server interceptor shares: find the method's handler, leave the methods the
interceptor does not apply to alone, and wrap the others' behaviour, whatever their kind (`rewrap`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc

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
