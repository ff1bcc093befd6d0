"""The fair share each lease worker aims for (pure arithmetic; the leases themselves are tested
against a real nats-server in tests/integration/cluster)."""

from __future__ import annotations

import pytest

from driftwise.cluster.leases import PartitionLeases, fair_share


@pytest.mark.parametrize(
    ("partitions", "workers", "shares"),
    [
        (16, 1, [16]),
        (16, 2, [8, 8]),
        (16, 3, [6, 5, 5]),
        (16, 5, [4, 3, 3, 3, 3]),
        (4, 6, [1, 1, 1, 1, 0, 0]),
    ],
)
def test_shares_sum_to_the_partitions_and_differ_by_at_most_one(
    partitions: int, workers: int, shares: list[int]
) -> None:
    ids = [f"w{i}" for i in range(workers)]
    assert [fair_share(partitions, ids, worker) for worker in ids] == shares


def test_a_worker_not_yet_listed_counts_itself() -> None:
    assert fair_share(16, ["a", "b"], "c") == 5
    assert fair_share(16, [], "a") == 16


@pytest.mark.parametrize(("ttl_s", "heartbeat_s"), [(6.0, 3.0), (6.0, 0.0), (2.0, 5.0)])
def test_a_heartbeat_must_fit_twice_in_the_ttl(ttl_s: float, heartbeat_s: float) -> None:
    with pytest.raises(ValueError, match="heartbeat_s"):
        PartitionLeases(None, worker_id="a", partitions=16, ttl_s=ttl_s, heartbeat_s=heartbeat_s)  # type: ignore[arg-type]


def test_worker_ids_are_key_tokens() -> None:
    with pytest.raises(ValueError, match="worker id"):
        PartitionLeases(None, worker_id="a.b", partitions=16)  # type: ignore[arg-type]
