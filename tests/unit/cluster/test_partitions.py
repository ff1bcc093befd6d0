import collections

import pytest

from driftwise.cluster.partitions import partition_of, user_key, user_of_key

# Pinned: a change here sends a user's new events to another partition than their old ones, so
# two workers could apply one user's events at once and out of order.
PINNED = {"alice": 137, "bob": 146, "user-42": 166, "": 180, "Zoë": 154, "用户": 94}


@pytest.mark.parametrize(("user", "partition"), PINNED.items())
def test_partition_of_a_user_never_changes(user: str, partition: int) -> None:
    assert partition_of(user, 256) == partition


@pytest.mark.parametrize("partitions", [8, 16, 256])
def test_users_spread_evenly_over_partitions(partitions: int) -> None:
    counts = collections.Counter(partition_of(f"user-{i}", partitions) for i in range(200_000))
    expected = 200_000 / partitions
    assert len(counts) == partitions
    assert all(abs(n - expected) < 0.2 * expected for n in counts.values()), counts


@pytest.mark.parametrize("user", ["alice", "Zoë", "用户", "a.b*c>d e", "x" * 128])
def test_user_key_is_a_subject_token_that_round_trips(user: str) -> None:
    key = user_key(user)
    # one NATS subject token and KV key: no dots, wildcards or spaces
    assert key and not set(key) & set(".*> \t")
    assert user_of_key(key) == user


def test_empty_user_has_no_key() -> None:
    with pytest.raises(ValueError):
        user_key("")
