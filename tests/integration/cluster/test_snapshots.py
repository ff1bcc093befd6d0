"""ProfileSnapshots against a real nats-server: compare-and-set writes, fencing, listing a
partition's users (any user id), deletion, and watching one user's profile."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NatsClient

from driftwise.cluster.partitions import partition_of
from driftwise.cluster.snapshots import Fenced, Position, ProfileSnapshots, Snapshot, SnapshotFormatError
from driftwise.model.config import InterestModelConfig
from driftwise.model.profile import UserProfile

pytestmark = pytest.mark.integration

PARTITIONS = 4
ODD_USERS = ["a.b", "with space", "ünïcödé/€", "*>", "x" * 300]


def snapshot(user_id: str, applied_seq: int, version: int = 0) -> Snapshot:
    profile = UserProfile.new(user_id, InterestModelConfig(), dimension=8, n_topics=3)
    profile.version = version
    return Snapshot(profile, applied_seq, token=7)


@pytest.fixture
async def snapshots(nc: NatsClient, request: pytest.FixtureRequest) -> AsyncIterator[ProfileSnapshots]:
    bucket = f"T_{request.node.name.upper()[:40]}"
    yield await ProfileSnapshots.open(nc.jetstream(), partitions=PARTITIONS, bucket=bucket)
    await nc.jetstream().delete_key_value(bucket)


async def test_writes_are_compare_and_set_on_the_revision(snapshots: ProfileSnapshots) -> None:
    assert await snapshots.get("u1") == (None, 0)
    first = await snapshots.put("u1", snapshot("u1", 10, version=1), None)
    with pytest.raises(Fenced):  # another writer created it first
        await snapshots.put("u1", snapshot("u1", 11), None)
    second = await snapshots.put("u1", snapshot("u1", 12, version=2), first)
    with pytest.raises(Fenced):  # a writer still holding the first revision
        await snapshots.put("u1", snapshot("u1", 13), first)

    got, revision = await snapshots.get("u1")
    assert revision == second
    assert got is not None
    assert (got.applied_seq, got.token, got.profile.version, got.profile.user_id) == (12, 7, 2, "u1")

    with pytest.raises(Fenced):  # a deletion based on an older revision
        await snapshots.delete("u1", first)
    await snapshots.delete("u1", second)
    assert await snapshots.get("u1") == (None, 0)
    with pytest.raises(Fenced):  # the owner that read `second` lost the profile to the deletion
        await snapshots.put("u1", snapshot("u1", 14), second)
    assert await snapshots.put("u1", snapshot("u1", 15), None) > second  # created anew


async def test_any_user_id_is_stored_and_listed_under_its_partition(snapshots: ProfileSnapshots) -> None:
    for seq, user in enumerate(ODD_USERS, start=1):
        await snapshots.put(user, snapshot(user, seq), None)
    listed = {p: sorted(await snapshots.users(p)) for p in range(PARTITIONS)}
    expected = {
        p: sorted(u for u in ODD_USERS if partition_of(u, PARTITIONS) == p) for p in range(PARTITIONS)
    }
    assert listed == expected
    for user in ODD_USERS:
        got, _ = await snapshots.get(user)
        assert got is not None and got.profile.user_id == user


async def test_a_watch_sees_the_current_snapshot_then_each_write_and_the_deletion(
    snapshots: ProfileSnapshots,
) -> None:
    revision = await snapshots.put("w", snapshot("w", 1), None)
    changes = snapshots.watch("w")
    first = await asyncio.wait_for(anext(changes), 5)
    assert first is not None and first.applied_seq == 1
    revision = await snapshots.put("w", snapshot("w", 2), revision)
    second = await asyncio.wait_for(anext(changes), 5)
    assert second is not None and second.applied_seq == 2
    await snapshots.delete("w", revision)
    assert await asyncio.wait_for(anext(changes), 5) is None
    await changes.aclose()


async def test_a_partitions_applied_position_is_compare_and_set(snapshots: ProfileSnapshots) -> None:
    assert await snapshots.position(2) == (Position(), 0)
    first = await snapshots.put_position(2, Position(40, Counter({"i.1": 2, "ü €": 1})), None)
    assert await snapshots.position(2) == (Position(40, Counter({"i.1": 2, "ü €": 1})), first)
    second = await snapshots.put_position(2, Position(90, Counter({"i.1": 3})), first)
    with pytest.raises(Fenced):  # an owner that lost the partition and still holds `first`
        await snapshots.put_position(2, Position(60, Counter({"i.1": 9})), first)
    assert await snapshots.position(2) == (Position(90, Counter({"i.1": 3})), second)
    assert await snapshots.users(2) == []  # positions are not users

    await snapshots.put_position(0, Position(7, Counter({"i.1": 1, "i.2": 4})), None)
    assert await snapshots.item_counts() == Counter({"i.1": 4, "i.2": 4})


def test_a_snapshot_round_trips_its_seen_items_duplicate_seqs_counts_and_forgets() -> None:
    profile = snapshot("u", 9).profile
    assert profile is not None
    original = Snapshot(
        profile, 9, 3, ("a", "ü.b", "z"), (4, 8), Counter({"a": 2, "ü.b": 1}), {6: Counter({"x": 3})}
    )
    got = Snapshot.from_bytes(original.to_bytes())
    assert (got.applied_seq, got.token, got.seen_item_ids, got.duplicate_seqs) == (
        9,
        3,
        ("a", "ü.b", "z"),
        (4, 8),
    )
    assert (got.counted, got.forgets) == (Counter({"a": 2, "ü.b": 1}), {6: Counter({"x": 3})})
    assert got.profile is not None and got.profile.to_bytes() == profile.to_bytes()
    forgotten = Snapshot.from_bytes(Snapshot(None, 12, 3, forgets={12: Counter({"a": 2})}).to_bytes())
    assert forgotten.forgotten and forgotten.profile is None and forgotten.forgets == {12: Counter({"a": 2})}
    for old in (1, 2):  # before seen items; before counts and forgets
        with pytest.raises(SnapshotFormatError):
            Snapshot.from_bytes(bytes([old]) + original.to_bytes()[1:])
