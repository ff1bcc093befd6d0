import collections

import pytest

from driftwise.cluster.partitions import (
    Partitioner,
    partition_of,
    resolve_shard_index,
    shard_index_from_host,
)
from driftwise.settings import ClusterSettings

# Pinned: a change here moves users to other shards, stranding their event logs.
PINNED = {"alice": 137, "bob": 146, "user-42": 166, "": 180, "Zoë": 154, "用户": 94}


@pytest.mark.parametrize(("user", "partition"), PINNED.items())
def test_partition_of_a_user_never_changes(user: str, partition: int) -> None:
    assert partition_of(user, 256) == partition


def test_partitions_go_to_shards_round_robin() -> None:
    partitioner = Partitioner(partitions=256, shards=3)
    assert [partitioner.shard(u) for u in PINNED] == [p % 3 for p in PINNED.values()]
    # one shard owns every partition
    assert {Partitioner(256, 1).shard(u) for u in PINNED} == {0}


def test_adding_a_shard_moves_whole_partitions() -> None:
    before, after = Partitioner(256, 4), Partitioner(256, 8)
    users = [f"user-{i}" for i in range(2000)]
    # users of one partition stay together: they move (or not) as one
    moved_by_partition = collections.defaultdict(set)
    for u in users:
        moved_by_partition[before.partition(u)].add(before.shard(u) != after.shard(u))
    assert all(len(moved) == 1 for moved in moved_by_partition.values())


@pytest.mark.parametrize("shards", [2, 3, 8])
def test_users_spread_evenly_over_shards(shards: int) -> None:
    partitioner = Partitioner(256, shards)
    counts = collections.Counter(partitioner.shard(f"user-{i}") for i in range(20_000))
    expected = 20_000 / shards
    assert len(counts) == shards
    assert all(abs(n - expected) < 0.1 * expected for n in counts.values()), counts


@pytest.mark.parametrize(
    ("hostname", "index"),
    [
        ("driftwise-profile-3", 3),
        ("driftwise-profile-0.driftwise-profile.ns.svc.cluster.local", 0),
        ("profile-12", 12),
        ("laptop", None),
        ("driftwise-profile", None),
        ("node-3a", None),
    ],
)
def test_shard_index_from_host_name(hostname: str, index: int | None) -> None:
    assert shard_index_from_host(hostname) == index


def test_shard_index_setting_wins_over_host_name() -> None:
    cluster = ClusterSettings(shards=4, shard_index=2)
    assert resolve_shard_index(cluster, hostname="driftwise-profile-1") == 2
    assert resolve_shard_index(ClusterSettings(shards=4), hostname="driftwise-profile-1") == 1


def test_shard_index_must_be_found_and_in_range() -> None:
    with pytest.raises(ValueError, match="DRIFTWISE_CLUSTER__SHARD_INDEX"):
        resolve_shard_index(ClusterSettings(shards=2), hostname="laptop")
    with pytest.raises(ValueError, match="out of range"):
        resolve_shard_index(ClusterSettings(shards=2), hostname="driftwise-profile-2")
