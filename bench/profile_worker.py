"""Profile workers applying a backlog on real nats-server (loopback): events applied per second by
one worker process and by two.

    PYTHONPATH=services .venv/bin/python bench/profile_worker.py [--events 30000] [--users 1000]

A backlog of ``--events`` event messages (dimension 384, as all-MiniLM-L6-v2; 33 topics, the
default taxonomy's size; users drawn uniformly) is published to a 16-partition stream first; then
each run starts N worker processes (separate processes: one Python process applies on one core)
on a profile bucket of the run's own (so each run applies the whole backlog), and counts the
events they apply. The rate is taken from the moment the workers hold their fair shares (past
start-up and the rebalance when the second worker joins; lease TTL 3 s, heartbeat 1 s) until the
backlog is applied. Prints one line per run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.synchronize
import tempfile
import time
import uuid
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import numpy as np

from driftwise.cluster.event_stream import EventStream, connect
from driftwise.cluster.leases import PartitionLeases
from driftwise.cluster.messages import EventMessage
from driftwise.cluster.snapshots import ProfileSnapshots
from driftwise.cluster.worker import ProfileWorker
from driftwise.model.config import DEFAULT_TOPICS, InterestModelConfig
from driftwise.model.events import Event, EventType
from driftwise.model.topics import TopicModel
from driftwise_testing.nats_cluster import LocalNatsCluster

PARTITIONS = 16
DIMENSION = 384
TYPES = [EventType.CLICK, EventType.VIEW, EventType.LIKE, EventType.SKIP]


def topics() -> TopicModel:
    centroids = np.random.default_rng(0).normal(size=(len(DEFAULT_TOPICS), DIMENSION))
    return TopicModel(DEFAULT_TOPICS, centroids, temperature=0.05)


def messages(count: int, users: int) -> list[EventMessage]:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(count, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    owners = rng.integers(users, size=count)
    return [
        EventMessage(
            Event(uuid.uuid4().hex, f"user-{owners[i]}", TYPES[i % 4], 1.7e9 + i, item_id=f"item-{i}"),
            vectors[i],
            f"title {i}",
        )
        for i in range(count)
    ]


async def publish(urls: list[str], backlog: list[EventMessage]) -> None:
    stream = await EventStream.open(urls, partitions=PARTITIONS)
    try:
        for start in range(0, len(backlog), 500):
            await stream.publish([m.to_stream() for m in backlog[start : start + 500]])
    finally:
        await stream.close()


async def work(
    urls: list[str],
    run: str,
    worker_id: str,
    applied: Synchronized[int],
    held: Synchronized[int],
    done: multiprocessing.synchronize.Event,
) -> None:
    nc = await connect(urls, name=worker_id)
    events = EventStream(nc, partitions=PARTITIONS)
    leases = await PartitionLeases.open(
        nc, worker_id=worker_id, partitions=PARTITIONS, bucket=f"L_{run}", ttl_s=3.0, heartbeat_s=1.0
    )
    snapshots = await ProfileSnapshots.open(nc.jetstream(), partitions=PARTITIONS, bucket=f"P_{run}")
    worker = ProfileWorker(events, leases, snapshots, topics(), InterestModelConfig(), DIMENSION)
    await worker.start()
    while not done.is_set():
        applied.value = worker.stats.applied
        held.value = len(worker.applying())
        await asyncio.sleep(0.02)
    await worker.stop()
    await nc.close()


def work_process(*args: object) -> None:
    asyncio.run(work(*args))  # type: ignore[arg-type]


def measure(urls: list[str], workers: int, total: int) -> tuple[float, int]:
    """Events applied per second once balanced, and how many were applied before that."""
    context = multiprocessing.get_context("spawn")
    run = uuid.uuid4().hex[:8].upper()
    done = context.Event()
    applied = [context.Value("q", 0) for _ in range(workers)]
    held = [context.Value("q", 0) for _ in range(workers)]
    processes = [
        context.Process(target=work_process, args=(urls, run, f"w{i}", applied[i], held[i], done))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        share = PARTITIONS // workers
        while not all(h.value == share for h in held):
            time.sleep(0.005)
        began, before = time.monotonic(), sum(a.value for a in applied)
        while sum(a.value for a in applied) < total:
            time.sleep(0.005)
        return (total - before) / (time.monotonic() - began), before
    finally:
        done.set()
        for process in processes:
            process.join()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--users", type=int, default=1_000)
    args = parser.parse_args()
    backlog = messages(args.events, args.users)
    with tempfile.TemporaryDirectory() as data, LocalNatsCluster(Path(data)) as cluster:
        asyncio.run(publish(cluster.client_urls, backlog))
        for workers in (1, 2):
            rate, before = measure(cluster.client_urls, workers, args.events)
            print(
                f"{workers} worker process(es), 1 node R1, {PARTITIONS} partitions, {args.users} users, "
                f"dimension {DIMENSION}: {rate:,.0f} events applied/s ({before} applied before the "
                f"shares settled, not counted)"
            )


if __name__ == "__main__":
    main()
