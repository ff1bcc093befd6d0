import grpc
from google.rpc import error_details_pb2, status_pb2

from driftwise.api.errors import MAX_REPORTED_VIOLATIONS, error_message, rich_status
from driftwise.api.interceptors.errors import Malformed, _tolerant
from driftwise.errors import (
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    ResourceExhaustedError,
    UnimplementedError,
)
from driftwise_client.v1 import profile_service_pb2


def _details(status: grpc.Status) -> status_pb2.Status:
    ((_, raw),) = [m for m in status.trailing_metadata if m[0] == "grpc-status-details-bin"]
    return status_pb2.Status.FromString(raw)


def test_a_thousand_violations_fit_in_any_clients_metadata() -> None:
    # was: the whole list in the status message and BadRequest (~60 KB); clients refuse trailing
    # metadata over 16 KiB, so the caller saw RESOURCE_EXHAUSTED "Stream removed" instead
    exc = InvalidArgumentError(
        [FieldViolation(f"events[{i}].user_id", "is required " + "x" * 500) for i in range(1000)]
    )
    status = rich_status(exc)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    size = len(status.details) + sum(len(k) + len(v) for k, v in status.trailing_metadata)
    assert size < 8 * 1024
    assert status.details.endswith(f"and {1000 - MAX_REPORTED_VIOLATIONS} more")
    bad_request = error_details_pb2.BadRequest()
    assert _details(status).details[1].Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == [f"events[{i}].user_id" for i in range(10)]
    assert len(error_message(exc).field_violations) == MAX_REPORTED_VIOLATIONS


def test_resource_exhausted_carries_a_quota_failure() -> None:
    exc = ResourceExhaustedError("stream:StreamEvents", "more than 5 messages per second")
    status = rich_status(exc)
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    quota = error_details_pb2.QuotaFailure()
    assert _details(status).details[1].Unpack(quota)
    assert quota.violations[0].subject == "stream:StreamEvents"
    assert error_message(exc).code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


def test_bytes_that_do_not_parse_become_an_invalid_argument_not_an_exception() -> None:
    deserialize = _tolerant(profile_service_pb2.GetProfileRequest.FromString)
    assert deserialize is not None
    assert deserialize(b"\x0a\x01u").user_id == "u"
    malformed = deserialize(b"\x0a\x04\xff\xfe\xc3\x28")  # invalid UTF-8 in user_id
    assert isinstance(malformed, Malformed)
    assert malformed.user_id == ""  # an interceptor before the error mapping reads an empty request
    exc = malformed.invalid()
    assert "driftwise.v1.GetProfileRequest" in exc.violations[0].description


def test_failed_precondition_and_unimplemented_keep_their_message() -> None:
    for exc, code, reason in (
        (
            FailedPreconditionError("user ids are pseudonymised"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "FAILEDPRECONDITION",
        ),
        (UnimplementedError("role ranking has no event log"), grpc.StatusCode.UNIMPLEMENTED, "UNIMPLEMENTED"),
    ):
        status = rich_status(exc)
        assert status.code == code and status.details == str(exc)
        info = error_details_pb2.ErrorInfo()
        assert _details(status).details[0].Unpack(info)
        assert info.reason == reason
