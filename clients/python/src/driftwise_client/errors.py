"""Typed exceptions for failed calls, with the google.rpc details the server sends.

Driftwise reports errors as gRPC status codes whose trailing metadata (`grpc-status-details-bin`)
carries a google.rpc.Status with an ErrorInfo (reason, domain) and, for INVALID_ARGUMENT, a
BadRequest listing every invalid field. `from_rpc_error` turns a grpc.RpcError (sync or asyncio)
into the matching DriftwiseError subclass with those details decoded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, cast

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "Aborted",
    "AlreadyExists",
    "Cancelled",
    "DeadlineExceeded",
    "DriftwiseError",
    "ErrorDetails",
    "FailedPrecondition",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "from_rpc_error",
]

DETAILS_METADATA_KEY = "grpc-status-details-bin"


class FieldViolation(NamedTuple):
    """One invalid request field (google.rpc.BadRequest.FieldViolation).

    For example ("events[3].user_id", "is required"); a plain tuple too."""

    field: str
    description: str


@dataclass(frozen=True)
class ErrorDetails:
    """The decoded google.rpc.Status details of an error (empty when the server sent none)."""

    reason: str = ""
    """ErrorInfo.reason, e.g. "INVALIDARGUMENT" or "NOTFOUND"."""
    domain: str = ""
    """ErrorInfo.domain, "driftwise" for errors of the Driftwise services."""
    metadata: dict[str, str] = field(default_factory=dict)
    """ErrorInfo.metadata."""
    field_violations: list[FieldViolation] = field(default_factory=list)
    """BadRequest field violations, in the server's order."""
    other: list[any_pb2.Any] = field(default_factory=list)
    """Details of any other type, still packed (e.g. RetryInfo, DebugInfo)."""


class DriftwiseError(Exception):
    """A failed call: the gRPC status `code`, the server's `message` and decoded `details`."""

    code: grpc.StatusCode
    message: str
    details: ErrorDetails
    attempts: int
    """How many attempts the client made before giving up (1 without retries)."""

    def __init__(self, code: grpc.StatusCode, message: str, details: ErrorDetails | None = None) -> None:
        super().__init__(f"{code.name}: {message}" if message else code.name)
        self.code = code
        self.message = message
        self.details = details if details is not None else ErrorDetails()
        self.attempts = 1

    @property
    def reason(self) -> str:
        """Shortcut for details.reason."""
        return self.details.reason

    @property
    def field_violations(self) -> list[FieldViolation]:
        """Shortcut for details.field_violations."""
        return self.details.field_violations


class Cancelled(DriftwiseError):
    """CANCELLED: the call was cancelled, usually by the caller."""


class InvalidArgument(DriftwiseError):
    """INVALID_ARGUMENT: the request is invalid; see field_violations. Retrying will not help."""


class DeadlineExceeded(DriftwiseError):
    """DEADLINE_EXCEEDED: the call's deadline passed before it completed."""


class NotFound(DriftwiseError):
    """NOT_FOUND: e.g. GetProfile of a user without events."""


class AlreadyExists(DriftwiseError):
    """ALREADY_EXISTS."""


class PermissionDenied(DriftwiseError):
    """PERMISSION_DENIED: authenticated, but not allowed."""


class ResourceExhausted(DriftwiseError):
    """RESOURCE_EXHAUSTED: a quota or a message size limit."""


class FailedPrecondition(DriftwiseError):
    """FAILED_PRECONDITION: the system is not in a state the call needs."""


class Aborted(DriftwiseError):
    """ABORTED: a concurrency conflict; an idempotent call may be retried."""


class Unimplemented(DriftwiseError):
    """UNIMPLEMENTED: the server does not serve this method (e.g. a router for another service)."""


class Internal(DriftwiseError):
    """INTERNAL: a server bug; the message hides internals."""


class Unavailable(DriftwiseError):
    """UNAVAILABLE: the server or one of its dependencies is down; an idempotent call may be retried."""


class Unauthenticated(DriftwiseError):
    """UNAUTHENTICATED: missing or invalid credentials."""


_BY_CODE: dict[grpc.StatusCode, type[DriftwiseError]] = {
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
}


class _StatusCarrier(Protocol):
    """What both grpc.Call (sync) and grpc.aio.AioRpcError offer, as plain methods."""

    def code(self) -> grpc.StatusCode: ...

    def details(self) -> str | None: ...

    def trailing_metadata(self) -> Any: ...


def error_for(code: grpc.StatusCode, message: str, details: ErrorDetails | None = None) -> DriftwiseError:
    """The DriftwiseError subclass for `code` (the base class for codes without one)."""
    return _BY_CODE.get(code, DriftwiseError)(code, message, details)


def from_rpc_error(error: grpc.RpcError) -> DriftwiseError:
    """The typed exception for a failed call; decodes google.rpc details from trailing metadata.

    Works for sync errors (grpc.RpcError that is also a grpc.Call) and grpc.aio.AioRpcError. An
    RpcError without a status (should not happen) becomes UNKNOWN."""
    if not all(hasattr(error, name) for name in ("code", "details", "trailing_metadata")):
        return DriftwiseError(grpc.StatusCode.UNKNOWN, str(error))
    call = cast(_StatusCarrier, error)
    code = call.code() or grpc.StatusCode.UNKNOWN
    message = call.details() or ""
    return error_for(code, message, decode_details(_details_blob(call.trailing_metadata())))


def _details_blob(metadata: Iterable[tuple[str, str | bytes]] | None) -> bytes | None:
    for key, value in metadata or ():
        if key == DETAILS_METADATA_KEY and isinstance(value, bytes):
            return value
    return None


def decode_details(blob: bytes | None) -> ErrorDetails:
    """ErrorDetails from a serialized google.rpc.Status (None or undecodable: no details).

    The same decoding as grpc_status.rpc_status.from_call, without its consistency check between
    the status code in the details and the call's code, which would turn a server's mistake into a
    ValueError here instead of the error the caller expects."""
    if not blob:
        return ErrorDetails()
    status: Any = status_pb2.Status()
    try:
        status.ParseFromString(blob)
    except Exception:  # a corrupt detail must not hide the status code
        return ErrorDetails()
    reason, domain = "", ""
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    other: list[any_pb2.Any] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info: Any = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, domain, metadata = str(info.reason), str(info.domain), dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad: Any = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [FieldViolation(str(v.field), str(v.description)) for v in bad.field_violations]
        else:
            other.append(detail)
    return ErrorDetails(reason, domain, metadata, violations, other)
