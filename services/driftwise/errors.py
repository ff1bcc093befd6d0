"""Errors the engine raises; the gRPC layer maps each to one status code (driftwise.api.errors)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str  # path in the request, e.g. "events[3].user_id"
    description: str


class StartupError(ValueError):
    """A file the settings name (certificate, tokens, key) or the data directory cannot be used:
    the server does not start. Raised before anything starts where possible; `driftwise serve`
    prints the message and exits with status 2."""


class DriftwiseError(Exception):
    """Base of the errors below."""


class InvalidArgumentError(DriftwiseError):
    """The request is invalid; nothing was stored. Maps to INVALID_ARGUMENT."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))


class NotFoundError(DriftwiseError):
    """The named resource does not exist. Maps to NOT_FOUND."""


class UnavailableError(DriftwiseError):
    """A dependency (the encoder, the vector store) is down; retry later. Maps to UNAVAILABLE."""


class ResourceExhaustedError(DriftwiseError):
    """A limit on how much or how fast a caller may send was reached (a stream's message rate);
    nothing of the rejected request was stored; retry later. Maps to RESOURCE_EXHAUSTED."""

    def __init__(self, subject: str, description: str) -> None:
        self.subject = subject  # what is limited, e.g. "stream:StreamEvents"
        self.description = description
        super().__init__(description)


class FailedPreconditionError(DriftwiseError):
    """The request is valid but the server's state or configuration rules it out (ListUsers while
    user ids are pseudonymised). Maps to FAILED_PRECONDITION."""


class UnimplementedError(DriftwiseError):
    """This process's role cannot answer the method (a cluster ranking replica has no event log).
    Maps to UNIMPLEMENTED."""


class AbortedError(DriftwiseError):
    """A concurrent request holds the same resource (an event id being written); retry. Maps to ABORTED."""


class AccessError(DriftwiseError):
    """Base of the two refusals below; `reason` and `metadata` go into google.rpc ErrorInfo."""

    def __init__(self, reason: str, message: str, metadata: dict[str, str] | None = None) -> None:
        self.reason = reason  # e.g. MISSING_TOKEN, SCOPE_REQUIRED
        self.metadata = metadata or {}
        super().__init__(message)


class UnauthenticatedError(AccessError):
    """No token, or one that is malformed or unknown. Maps to UNAUTHENTICATED."""


class PermissionDeniedError(AccessError):
    """A valid token whose tenant lacks the method's scope. Maps to PERMISSION_DENIED."""
