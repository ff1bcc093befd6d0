"""Cluster mode's building blocks on real nats-server processes (loopback): publish rates, the
failover window when a node dies, and lease takeover with the production timings.

    PYTHONPATH=services .venv/bin/python bench/event_log.py [--events 20000]

Prints one line per measurement:

* publish rate (events/s, 200-byte payloads) of ``EventStream.publish`` on 1 node (R1) and on
  3 nodes (R3): batches of 500 (pipelined, acks gathered) and one event per call (what one
  ingest RPC carrying one event costs);
* failover: batches of 100 published back to back while the stream leader of a 3-node R3
  cluster is SIGKILLed; the longest call is the window in which acks stopped; every acked event
  is then checked to be stored exactly once;
* leases with the defaults (cluster.lease_ttl_seconds, lease_heartbeat_seconds), 3 nodes, R3
  bucket: leases lost by live workers while the bucket's leader node is SIGKILLed (0 unless the
  election outlasts TTL - heartbeat; then they lapse and are taken again), then how long after a
  worker's death its partitions are all held again.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import tempfile
import time
import uuid
from pathlib import Path

from nats.js import api

from driftwise.cluster.event_stream import Event, EventStream, connect
from driftwise.cluster.leases import PartitionLeases
from driftwise_testing.nats_cluster import LocalNatsCluster

PARTITIONS = 16
PAYLOAD = b"x" * 200


def events(count: int) -> list[Event]:
    return [Event(uuid.uuid4().hex, f"user-{i % 500}", PAYLOAD) for i in range(count)]


async def publish_rates(cluster: LocalNatsCluster, total: int) -> None:
    nodes = len(cluster.nodes)
    stream = await EventStream.open(cluster.client_urls, partitions=PARTITIONS, replicas=nodes)
    try:
        await stream.publish(events(500))  # warm up
        for batch_size, count in ((500, total), (1, total // 10)):
            batch_list = [events(batch_size) for _ in range(count // batch_size)]
            began = time.perf_counter()
            for batch in batch_list:
                await stream.publish(batch)
            rate = count / (time.perf_counter() - began)
            print(f"publish {nodes} node(s) R{nodes}, batches of {batch_size}: {rate:,.0f} events/s")
    finally:
        await stream.close()


async def stored_ids(stream: EventStream) -> collections.Counter[str]:
    info = await stream.js.stream_info(stream.stream)
    subscription = await stream.js.pull_subscribe(
        f"{stream.subject_prefix}.>",
        stream=stream.stream,
        config=api.ConsumerConfig(ack_policy=api.AckPolicy.NONE),
    )
    ids: collections.Counter[str] = collections.Counter()
    while sum(ids.values()) < info.state.messages:
        for message in await subscription.fetch(1000, timeout=5):
            ids[(message.headers or {})[api.Header.MSG_ID]] += 1
    await subscription.unsubscribe()
    return ids


async def failover(cluster: LocalNatsCluster) -> None:
    stream = await EventStream.open(cluster.client_urls, partitions=PARTITIONS, replicas=3)
    try:
        info = await stream.js.stream_info(stream.stream)
        assert info.cluster is not None and info.cluster.leader is not None
        leader = int(info.cluster.leader.removeprefix("n"))
        acked: list[str] = []
        calls: list[tuple[float, float]] = []
        loop = asyncio.get_running_loop()
        kill_at = loop.time() + 1.0
        killed = False
        while loop.time() < kill_at + 10.0:
            if not killed and loop.time() >= kill_at:
                cluster.kill(leader)
                killed = True
            batch = events(100)
            began = loop.time()
            await stream.publish(batch)
            calls.append((began, loop.time() - began))
            acked.extend(e.event_id for e in batch)
        longest_start, longest = max(calls, key=lambda call: call[1])
        stored = await stored_ids(stream)
        exact = set(stored) == set(acked) and max(stored.values()) == 1
        print(
            f"failover: stream leader n{leader} SIGKILLed; longest publish call {longest:.2f} s "
            f"(began {longest_start - kill_at:+.2f} s from the kill); {len(acked)} acked, "
            f"stored exactly once: {exact}"
        )
    finally:
        await stream.close()


async def lease_takeover(cluster: LocalNatsCluster) -> None:
    lost: list[tuple[str, int]] = []
    workers: list[PartitionLeases] = []
    connections = []
    for worker_id in ("a", "b"):
        nc = await connect(cluster.client_urls)
        connections.append(nc)

        async def on_change(partition: int, token: int | None, worker_id: str = worker_id) -> None:
            if token is None:
                lost.append((worker_id, partition))

        worker = await PartitionLeases.open(
            nc, worker_id=worker_id, partitions=PARTITIONS, replicas=3, on_change=on_change
        )
        await worker.start()
        workers.append(worker)
    a, b = workers
    loop = asyncio.get_running_loop()
    while [len(a.owned()), len(b.owned())] != [8, 8]:
        await asyncio.sleep(0.05)
    lost.clear()
    info = await connections[0].jetstream().stream_info("KV_DRIFTWISE_LEASES")
    assert info.cluster is not None and info.cluster.leader is not None
    leader = int(info.cluster.leader.removeprefix("n"))
    cluster.kill(leader)
    await asyncio.sleep(12.0)
    print(
        f"leases: bucket leader n{leader} SIGKILLed; leases lost by live workers in the next 12 s: "
        f"{len(lost)}; held {len(a.owned())}/{len(b.owned())}"
    )
    await b.stop(release=False)
    died = loop.time()
    while len(a.owned()) < PARTITIONS:
        await asyncio.sleep(0.02)
    print(
        f"leases: worker b dead (TTL {a.ttl_s:g} s, heartbeat {a.heartbeat_s:g} s): all its "
        f"partitions held by a {loop.time() - died:.1f} s later"
    )
    await a.stop()
    for nc in connections:
        await nc.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with LocalNatsCluster(Path(tmp) / "one") as one:
            await publish_rates(one, args.events)
        with LocalNatsCluster(Path(tmp) / "three", nodes=3) as three:
            await publish_rates(three, args.events)
        with LocalNatsCluster(Path(tmp) / "failover", nodes=3) as three:
            await failover(three)
        with LocalNatsCluster(Path(tmp) / "leases", nodes=3) as three:
            await lease_takeover(three)


if __name__ == "__main__":
    asyncio.run(main())
