"""Wrapping a gRPC method handler's behaviour, whatever its kind (shared by the interceptors)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

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
