"""The package itself: fresh generated stubs, no server imports, error decoding, message helpers."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from driftwise_client import (
    DriftwiseError,
    InvalidArgument,
    NotFound,
    Unavailable,
    new_event,
    new_item,
)
from driftwise_client.errors import decode_details, error_for, from_rpc_error
from driftwise_client.v1 import common_pb2

CLIENT_ROOT = Path(__file__).resolve().parents[1]


def test_generated_code_is_fresh() -> None:
    # the root buf.gen.yaml's Python plugin (generate.py), run aside and compared (scripts/check_generated.py)
    check = CLIENT_ROOT.parents[1] / "scripts" / "check_generated.py"
    result = subprocess.run(
        [sys.executable, str(check), "clients/python/src/driftwise_client/v1"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr


def test_the_client_never_imports_the_server_package(client_src: Path) -> None:
    pattern = re.compile(r"^\s*(from|import)\s+driftwise(\.|\s|$)", re.MULTILINE)
    offenders = [p.name for p in client_src.rglob("*.py*") if pattern.search(p.read_text())]
    assert not offenders
    code = (
        "import sys, driftwise_client, driftwise_client.aio, driftwise_client.v1.ranking_service_pb2_grpc;"
        "bad = [m for m in sys.modules if m == 'driftwise' or m.startswith('driftwise.')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_stubs_keep_the_wire_names() -> None:
    assert common_pb2.DESCRIPTOR.package == "driftwise.v1"
    assert common_pb2.Event.DESCRIPTOR.full_name == "driftwise.v1.Event"
    assert (CLIENT_ROOT / "src" / "driftwise_client" / "py.typed").exists()


def _status_blob(code: int, message: str, *details: object) -> bytes:
    packed = []
    for d in details:
        a = any_pb2.Any()
        a.Pack(d)  # type: ignore[arg-type]
        packed.append(a)
    return status_pb2.Status(code=code, message=message, details=packed).SerializeToString()  # type: ignore[no-any-return]


def test_details_are_decoded() -> None:
    blob = _status_blob(
        3,
        "bad",
        error_details_pb2.ErrorInfo(reason="INVALIDARGUMENT", domain="driftwise", metadata={"k": "v"}),
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field="events[0].user_id", description="is required"
                ),
                error_details_pb2.BadRequest.FieldViolation(field="count", description="too big"),
            ]
        ),
        error_details_pb2.RetryInfo(),
    )
    details = decode_details(blob)
    assert (
        details.reason == "INVALIDARGUMENT"
        and details.domain == "driftwise"
        and details.metadata == {"k": "v"}
    )
    assert details.field_violations == [("events[0].user_id", "is required"), ("count", "too big")]
    assert details.field_violations[0].field == "events[0].user_id"
    assert len(details.other) == 1 and details.other[0].Is(error_details_pb2.RetryInfo.DESCRIPTOR)
    assert decode_details(None) == decode_details(b"\xff\xff garbage") == decode_details(b"")


def test_codes_map_to_classes() -> None:
    assert isinstance(error_for(grpc.StatusCode.INVALID_ARGUMENT, "m"), InvalidArgument)
    assert isinstance(error_for(grpc.StatusCode.NOT_FOUND, "m"), NotFound)
    assert isinstance(error_for(grpc.StatusCode.UNAVAILABLE, "m"), Unavailable)
    other = error_for(grpc.StatusCode.DATA_LOSS, "lost")
    assert type(other) is DriftwiseError and str(other) == "DATA_LOSS: lost"
    assert from_rpc_error(grpc.RpcError("no status")).code == grpc.StatusCode.UNKNOWN


def test_message_helpers() -> None:
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    e = new_event("u1", "like", item_id="i1", event_time=when, dwell=timedelta(seconds=30))
    assert e.type == common_pb2.EVENT_TYPE_LIKE and e.event_id and e.event_time.ToDatetime(UTC) == when
    assert e.dwell.seconds == 30
    assert new_event("u1", "EVENT_TYPE_SKIP", text="x").type == common_pb2.EVENT_TYPE_SKIP
    assert new_event("u1", common_pb2.EVENT_TYPE_HIDE, item_id="i").type == common_pb2.EVENT_TYPE_HIDE
    assert new_event("u1", "view", item_id="i").event_id != new_event("u1", "view", item_id="i").event_id
    naive = new_event("u1", "view", item_id="i", event_time=datetime(2024, 1, 1))
    assert naive.event_time.ToDatetime(UTC) == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        new_event("u1", "teleport", item_id="i")
    item = new_item("i1", "Alien", tags=["sci-fi"], category="movie", create_time=when, attributes={"a": "b"})
    assert item.tags == ["sci-fi"] and item.attributes["a"] == "b" and item.HasField("create_time")
