"""One interceptor maps engine errors to gRPC status codes with google.rpc details.

InvalidArgumentError -> INVALID_ARGUMENT (+ BadRequest field violations), NotFoundError ->
NOT_FOUND, UnavailableError -> UNAVAILABLE, AbortedError -> ABORTED, anything else -> INTERNAL
without internals.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from driftwise.api.interceptors import rewrap
from driftwise.errors import (
    AbortedError,
    DriftwiseError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from driftwise.v1 import common_pb2

log = logging.getLogger(__name__)
ERROR_DOMAIN = "driftwise"

_CODES: list[tuple[type[DriftwiseError], grpc.StatusCode]] = [
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (AbortedError, grpc.StatusCode.ABORTED),
]


def status_code(exc: DriftwiseError) -> grpc.StatusCode:
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def rich_status(exc: DriftwiseError) -> grpc.Status:
    """A status whose trailing metadata carries google.rpc ErrorInfo (+ BadRequest)."""
    code = status_code(exc)
    details = []
    info = error_details_pb2.ErrorInfo(
        reason=type(exc).__name__.removesuffix("Error").upper(), domain=ERROR_DOMAIN
    )
    details.append(_pack(info))
    if isinstance(exc, InvalidArgumentError):
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                        for v in exc.violations
                    ]
                )
            )
        )
    status = status_pb2.Status(code=code.value[0], message=str(exc), details=details)
    return rpc_status.to_status(status)


def error_message(exc: DriftwiseError) -> common_pb2.Error:
    """The per-message error of a stream, for the same exception."""
    violations = exc.violations if isinstance(exc, InvalidArgumentError) else []
    return common_pb2.Error(
        code=status_code(exc).value[0],
        message=str(exc),
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


def _wrap_unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc)

    return wrapper


def _wrap_stream(behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        try:
            async for response in behavior(request, context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc)

    return wrapper


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        return None if handler is None else rewrap(handler, _wrap_unary, _wrap_stream)
