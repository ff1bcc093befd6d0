"""PartitionLeases against a real nats-server: fair shares, rebalance when a worker joins or
leaves, takeover of a dead worker's partitions within TTL + heartbeat, and fencing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import pytest
from nats.aio.client import Client as NatsClient

from driftwise.cluster.leases import OnChange, PartitionLeases

pytestmark = pytest.mark.integration

PARTITIONS = 16
TTL_S = 3.0  # short, to keep the tests quick; production defaults are 6 s and 1.5 s
HEARTBEAT_S = 1.0
# how long two fresh workers may take to settle their first shares on a loaded machine (not a
# claim the test checks; the takeover and hand-over bounds below are)
SETTLE_S = 15.0


class OwnershipMonitor:
    """Samples every worker's locally valid leases every 20 ms and records any partition held
    by two workers at once (a lease is exclusive only if this never happens)."""

    def __init__(self, workers: list[PartitionLeases]) -> None:
        self.workers = workers
        self.overlaps: list[tuple[int, list[str]]] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            holders: dict[int, list[str]] = {}
            for worker in self.workers:
                for partition in worker.owned():
                    holders.setdefault(partition, []).append(worker.worker_id)
            self.overlaps += [(p, ids) for p, ids in holders.items() if len(ids) > 1]
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def wait_for(condition: Callable[[], bool], timeout_s: float) -> float:
    """Seconds until ``condition`` held; fails after ``timeout_s``."""
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout_s, f"not within {timeout_s} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - began


def counts(workers: list[PartitionLeases]) -> list[int]:
    return [len(worker.owned()) for worker in workers]


class Workers:
    """Opens started workers on a bucket of the test's own; stops them all at the end."""

    def __init__(self, nc: NatsClient, bucket: str) -> None:
        self.nc = nc
        self.bucket = bucket
        self.started: list[PartitionLeases] = []

    async def open(self, worker_id: str, on_change: OnChange | None = None) -> PartitionLeases:
        worker = await PartitionLeases.open(
            self.nc,
            worker_id=worker_id,
            partitions=PARTITIONS,
            bucket=self.bucket,
            ttl_s=TTL_S,
            heartbeat_s=HEARTBEAT_S,
            on_change=on_change,
        )
        await worker.start()
        self.started.append(worker)
        return worker


@pytest.fixture
async def workers(nc: NatsClient, request: pytest.FixtureRequest) -> AsyncIterator[Workers]:
    opened = Workers(nc, f"T_{request.node.name.upper()[:40]}")
    yield opened
    for worker in opened.started:
        await worker.stop(release=False)
    await nc.jetstream().delete_key_value(opened.bucket)


async def test_workers_share_partitions_rebalance_and_take_over_a_dead_one(workers: Workers) -> None:
    a = await workers.open("a")
    b = await workers.open("b")
    monitor = OwnershipMonitor([a, b])
    await wait_for(lambda: counts([a, b]) == [8, 8], SETTLE_S)

    c = await workers.open("c")  # joins: the others hand over without a restart
    monitor.workers.append(c)
    joined = await wait_for(lambda: counts([a, b, c]) == [6, 5, 5], 3 * HEARTBEAT_S)
    assert joined <= 2 * HEARTBEAT_S + 0.5

    b_held = b.owned()
    await b.stop(release=False)  # dies: no release, its leases and liveness key just expire
    taken_over = await wait_for(lambda: counts([a, c]) == [8, 8], TTL_S + 2 * HEARTBEAT_S + 1)
    assert taken_over <= TTL_S + HEARTBEAT_S + 0.5, taken_over
    await monitor.stop()
    assert monitor.overlaps == []

    now_held = a.owned() | c.owned()
    assert set(now_held) == set(range(PARTITIONS))
    for partition, token in b_held.items():
        assert not await b.still_owns(partition, token)
        assert now_held[partition] > token  # fencing tokens grow with every new owner


async def test_a_stopping_worker_hands_over_at_once(workers: Workers) -> None:
    a = await workers.open("a")
    b = await workers.open("b")
    await wait_for(lambda: counts([a, b]) == [8, 8], SETTLE_S)
    await b.stop(release=True)
    # released keys are free at once: the next round of a takes them, no TTL wait
    assert await wait_for(lambda: counts([a]) == [16], 2 * HEARTBEAT_S) <= HEARTBEAT_S + 0.5


async def test_still_owns_asks_the_bucket_and_a_lost_lease_is_reported(
    nc: NatsClient, workers: Workers
) -> None:
    changes: list[tuple[int, int | None]] = []

    async def on_change(partition: int, token: int | None) -> None:
        changes.append((partition, token))

    a = await workers.open("a", on_change=on_change)
    token = a.owned()[0]
    assert await a.still_owns(0, token)
    assert not await a.still_owns(0, token + 1)
    assert (0, token) in changes

    # someone else holds partition 0 now (as after an expiry a's clock missed): a's local lease
    # is still valid, but the bucket says otherwise
    kv = await nc.jetstream().key_value(workers.bucket)
    await kv.delete("partition.0")
    intruder = await kv.create("partition.0", b'{"worker": "x"}')
    assert 0 in a.owned()
    assert not await a.still_owns(0, token)

    await a.balance()  # the renewal's compare-and-set fails: a drops it and says so
    assert 0 not in a.owned()
    assert changes[-1] == (0, None)
    assert intruder > token
