"""Pure parts of the routers: shard statuses, field paths of a split batch, ownership."""

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from driftwise.api.errors import rich_status
from driftwise.cluster.ownership import Ownership
from driftwise.cluster.partitions import Partitioner
from driftwise.cluster.router import renumber_events
from driftwise.cluster.shards import STATUS_DETAILS_KEY, ShardChannels, upstream_status
from driftwise.errors import FieldViolation, InvalidArgumentError
from driftwise.settings import ClusterSettings


def details(status: grpc.Status) -> list[object]:
    rich = status_pb2.Status.FromString(dict(status.trailing_metadata)[STATUS_DETAILS_KEY])
    assert rich.code == status.code.value[0]
    out: list[object] = []
    for any_ in rich.details:
        for cls in (error_details_pb2.BadRequest, error_details_pb2.ErrorInfo):
            if any_.Is(cls.DESCRIPTOR):
                message = cls()
                any_.Unpack(message)
                out.append(message)
    return out


def aio_error(status: grpc.Status) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        status.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        details=status.details,
    )


def test_a_shard_status_passes_through_unchanged() -> None:
    status = rich_status(InvalidArgumentError([FieldViolation("user_id", "is required")]))
    passed = upstream_status(aio_error(status), 1, "shard-1:50051")
    assert (passed.code, passed.details) == (status.code, status.details)
    assert (
        dict(passed.trailing_metadata)[STATUS_DETAILS_KEY]
        == dict(status.trailing_metadata)[STATUS_DETAILS_KEY]
    )


def test_an_unreachable_shard_is_unavailable_by_name() -> None:
    exc = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details="connection refused"
    )
    status = upstream_status(exc, 1, "shard-1:50051")
    assert status.code == grpc.StatusCode.UNAVAILABLE
    assert "profile shard 1 (shard-1:50051)" in status.details and "connection refused" in status.details
    [info] = details(status)
    assert isinstance(info, error_details_pb2.ErrorInfo) and info.reason == "SHARD_UNAVAILABLE"


def test_field_paths_of_a_sub_batch_are_renumbered_to_the_callers_batch() -> None:
    status = rich_status(
        InvalidArgumentError(
            [
                FieldViolation("events[0].item_id", "unknown item 'x'"),
                FieldViolation("events[1].item_id", "?"),
            ]
        )
    )
    renumbered = renumber_events(status, [3, 7])
    assert renumbered.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "events[3].item_id" in renumbered.details and "events[7].item_id" in renumbered.details
    _, bad = details(renumbered)
    assert isinstance(bad, error_details_pb2.BadRequest)
    assert [v.field for v in bad.field_violations] == ["events[3].item_id", "events[7].item_id"]


def test_ownership_names_the_owning_shard() -> None:
    partitioner = Partitioner(256, 2)
    ownership = Ownership(partitioner, shard=0)
    mine = next(u for u in (f"u{i}" for i in range(100)) if partitioner.shard(u) == 0)
    theirs = next(u for u in (f"u{i}" for i in range(100)) if partitioner.shard(u) == 1)
    assert ownership.foreign([mine, ""]) is None  # an empty id is left to validation
    assert ownership.foreign([mine, theirs]) == (theirs, 1)
    status = ownership.status(theirs, 1)
    assert status.code == grpc.StatusCode.FAILED_PRECONDITION and "profile shard 1" in status.details
    [info] = details(status)
    assert isinstance(info, error_details_pb2.ErrorInfo) and info.reason == "WRONG_SHARD"
    assert info.metadata["owner_shard"] == "1"


async def test_channels_need_an_address_per_shard() -> None:
    with pytest.raises(ValueError, match="shard_address"):
        ShardChannels(ClusterSettings(shards=2))
    with pytest.raises(ValueError, match="placeholder"):
        ShardChannels(ClusterSettings(shards=2, shard_address="profile:50051"))
    channels = ShardChannels(ClusterSettings(shards=2, shard_address="profile-{shard}.profile:50051"))
    assert channels.addresses == ["profile-0.profile:50051", "profile-1.profile:50051"]
    await channels.close()
