"""Engine errors as gRPC status codes with google.rpc details (the interceptor that applies them to
every call: api/interceptors/errors.py).

InvalidArgumentError -> INVALID_ARGUMENT (+ BadRequest field violations), ResourceExhaustedError
-> RESOURCE_EXHAUSTED (+ QuotaFailure), NotFoundError -> NOT_FOUND, UnavailableError ->
UNAVAILABLE, AbortedError -> ABORTED, FailedPreconditionError -> FAILED_PRECONDITION,
UnimplementedError -> UNIMPLEMENTED, UnauthenticatedError -> UNAUTHENTICATED,
PermissionDeniedError -> PERMISSION_DENIED (ErrorInfo carries their reason, e.g. SCOPE_REQUIRED),
anything else -> INTERNAL without internals.

It also answers a request whose bytes do not parse as the method's message with INVALID_ARGUMENT:
left to grpc.aio, a failing request deserializer ends the call with UNKNOWN and the exception's
text ("Unexpected <class 'google.protobuf.message.DecodeError'>: ...").
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from driftwise.errors import (
    AbortedError,
    AccessError,
    DriftwiseError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
)
from driftwise_client.v1 import common_pb2

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
    (FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (UnimplementedError, grpc.StatusCode.UNIMPLEMENTED),
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
