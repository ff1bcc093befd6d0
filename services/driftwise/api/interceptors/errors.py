"""Every Driftwise call ends with a status code that says what went wrong (api/errors.py's
mapping), never with grpc.aio's UNKNOWN: an engine error becomes its code with details, anything
else INTERNAL without internals, and a request whose bytes do not parse INVALID_ARGUMENT (left to
grpc.aio, a failing request deserializer ends the call with UNKNOWN and the exception's text).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from driftwise.api.errors import rich_status
from driftwise.api.interceptors.base import Handler, MethodInterceptor, rewrap
from driftwise.errors import DriftwiseError, FieldViolation, InvalidArgumentError

log = logging.getLogger(__name__)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException) -> None:
    if isinstance(exc, DriftwiseError):
        status = rich_status(exc)
        await context.abort(status.code, status.details, status.trailing_metadata)
    log.exception("unhandled error", exc_info=exc)
    await context.abort(
        grpc.StatusCode.INTERNAL,
        "internal error",
        rpc_status.to_status(
            status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")
        ).trailing_metadata,
    )


# -- requests that do not parse ------------------------------------------------------------------


class Malformed:
    """What the bytes of a request that does not parse become, instead of an exception inside
    grpc.aio (which answers UNKNOWN): the wrappers below answer INVALID_ARGUMENT for it. An
    interceptor that runs before them and reads fields sees those of an empty request."""

    __slots__ = ("_empty", "error")

    def __init__(self, error: Exception, empty: Any) -> None:
        self.error = error
        self._empty = empty

    def __getattr__(self, name: str) -> Any:
        return getattr(self._empty, name)

    def invalid(self) -> InvalidArgumentError:
        name = self._empty.DESCRIPTOR.full_name if self._empty is not None else "request"
        return InvalidArgumentError(
            [FieldViolation("", f"the request is not a valid {name} message ({self.error})")]
        )


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None
    message_class = getattr(deserializer, "__self__", None)  # RequestType.FromString

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # DecodeError: bad wire format, invalid UTF-8 in a string field
            return Malformed(exc, message_class() if isinstance(message_class, type) else None)

    return deserialize


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A request stream that raises InvalidArgumentError at the first message that did not parse
    (the stream ends: its framing can no longer be trusted)."""
    async for request in requests:
        if isinstance(request, Malformed):
            raise request.invalid()
        yield request


def _parsed(request: Any) -> Any:
    if isinstance(request, Malformed):
        raise request.invalid()
    if hasattr(request, "__aiter__"):  # a client-streaming call: check each message as it comes
        return _checked(request)
    return request


class _TolerantHandler:
    """The attributes `rewrap` reads of a handler, with a request deserializer that never raises."""

    def __init__(self, handler: grpc.RpcMethodHandler[Any, Any]) -> None:
        self.request_streaming = handler.request_streaming
        self.response_streaming = handler.response_streaming
        self.request_deserializer = _tolerant(handler.request_deserializer)
        self.response_serializer = handler.response_serializer
        self.unary_unary = handler.unary_unary
        self.unary_stream = handler.unary_stream
        self.stream_unary = handler.stream_unary
        self.stream_stream = handler.stream_stream


def _wrap_unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(_parsed(request), context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc)

    return wrapper


def _wrap_stream(behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        try:
            async for response in behavior(_parsed(request), context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc)

    return wrapper


class ErrorMappingInterceptor(MethodInterceptor):
    """Engine errors to status codes with details (health and reflection keep their own)."""

    def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        tolerant = cast("grpc.RpcMethodHandler[Any, Any]", _TolerantHandler(handler))
        return rewrap(tolerant, _wrap_unary, _wrap_stream)
