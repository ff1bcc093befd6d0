"""One interceptor maps engine errors to gRPC status codes with google.rpc details.

InvalidArgumentError -> INVALID_ARGUMENT (+ BadRequest field violations), ResourceExhaustedError
-> RESOURCE_EXHAUSTED (+ QuotaFailure), NotFoundError -> NOT_FOUND, UnavailableError ->
UNAVAILABLE, AbortedError -> ABORTED, UnauthenticatedError -> UNAUTHENTICATED,
PermissionDeniedError -> PERMISSION_DENIED (ErrorInfo carries their reason, e.g. SCOPE_REQUIRED),
anything else -> INTERNAL without internals.

It also answers a request whose bytes do not parse as the method's message with INVALID_ARGUMENT:
left to grpc.aio, a failing request deserializer ends the call with UNKNOWN and the exception's
text ("Unexpected <class 'google.protobuf.message.DecodeError'>: ...").
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from driftwise.api.interceptors import Handler, MethodInterceptor, rewrap
from driftwise.errors import (
    AbortedError,
    AccessError,
    DriftwiseError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from driftwise_client.v1 import common_pb2

log = logging.getLogger(__name__)
ERROR_DOMAIN = "driftwise"
# The status travels in trailing metadata, which clients refuse above 8-16 KiB (grpc's
# max_metadata_size, soft and hard): a batch of 1000 bad events would have 1000+ violations. The
# first ones are reported, with the count of the others; each text is cut to a bounded length.
MAX_REPORTED_VIOLATIONS = 10
MAX_DESCRIPTION_CHARS = 200
MAX_MESSAGE_CHARS = 1000

_CODES: list[tuple[type[DriftwiseError], grpc.StatusCode]] = [
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (AbortedError, grpc.StatusCode.ABORTED),
    (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
]


def status_code(exc: DriftwiseError) -> grpc.StatusCode:
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reported(exc: DriftwiseError) -> tuple[list[FieldViolation], str]:
    """The violations to report (clipped) and the status message."""
    if not isinstance(exc, InvalidArgumentError):
        return [], _clip(str(exc), MAX_MESSAGE_CHARS)
    shown = [
        FieldViolation(_clip(v.field, MAX_DESCRIPTION_CHARS), _clip(v.description, MAX_DESCRIPTION_CHARS))
        for v in exc.violations[:MAX_REPORTED_VIOLATIONS]
    ]
    message = _clip("; ".join(f"{v.field}: {v.description}" for v in shown), MAX_MESSAGE_CHARS)
    if (more := len(exc.violations) - len(shown)) > 0:
        message += f"; and {more} more"
    return shown, message


def rich_status(exc: DriftwiseError) -> grpc.Status:
    """A status whose trailing metadata carries google.rpc ErrorInfo (+ BadRequest or
    QuotaFailure), small enough for any client's metadata limit."""
    code = status_code(exc)
    violations, message = _reported(exc)
    details = []
    info = error_details_pb2.ErrorInfo(
        reason=type(exc).__name__.removesuffix("Error").upper(), domain=ERROR_DOMAIN
    )
    if isinstance(exc, AccessError):
        info.reason = exc.reason
        info.metadata.update(exc.metadata)
    details.append(_pack(info))
    if isinstance(exc, InvalidArgumentError):
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                        for v in violations
                    ]
                )
            )
        )
    if isinstance(exc, ResourceExhaustedError):
        details.append(
            _pack(
                error_details_pb2.QuotaFailure(
                    violations=[
                        error_details_pb2.QuotaFailure.Violation(
                            subject=exc.subject, description=exc.description
                        )
                    ]
                )
            )
        )
    status = status_pb2.Status(code=code.value[0], message=message, details=details)
    return rpc_status.to_status(status)


def error_message(exc: DriftwiseError) -> common_pb2.Error:
    """The per-message error of a stream, for the same exception."""
    violations, message = _reported(exc)
    return common_pb2.Error(
        code=status_code(exc).value[0],
        message=message,
        field_violations=[
            common_pb2.FieldViolation(field=v.field, description=v.description) for v in violations
        ],
    )


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


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
