"""Cluster mode's building blocks on real nats-server processes (loopback): publish rates, the
failover window when a node dies, and lease takeover with the production timings.

    PYTHONPATH=services .venv/bin/python bench/event_log.py [--events 20000] [--quick] [--sync-only]

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
  worker's death its partitions are all held again;
* sync policy: JetStream's ``sync_interval`` left at the server default (fsync every 2 min) vs
  ``always`` (fsync every write before its ack), on 1 node (R1) and on 3 nodes (R3). Both clusters
  of a topology run at once and are measured in alternating rounds (the order flips each round),
  so load from elsewhere on the machine hits both alike: single-event publishes (ack latency per
  call) and pipelined batches of 500 as ingest sends them (latency of the whole call, which is
  what the ingest RPC waits for). Printed: events/s, p50/p99, and always/default ratios (the
  throughput ratio is the median of the per-round ratios, with their range). Then the fsync
  latency of the disk under the stores, before and after, since ``always`` pays it per sync.

``--quick``: 5,000 events for the publish rates and 4 sync rounds instead of 16 (small samples);
``--sync-only``: only the sync policy comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import statistics
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
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


SYNC_POLICIES: dict[str, str | None] = {"default": None, "always": "always"}
SYNC_BATCH = 500


@dataclass
class SyncRuns:
    """One variant's samples over all rounds: call latencies (s) and each round's events/s."""

    latencies: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fsync_latency(directory: Path, count: int = 300) -> tuple[float, float]:
    """p50/p99 (s) of fsync after a 200-byte append to a file in ``directory``."""
    path = directory / "fsync-probe"
    samples = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for _ in range(count):
            os.write(fd, PAYLOAD)
            began = time.perf_counter()
            os.fsync(fd)
            samples.append(time.perf_counter() - began)
    finally:
        os.close(fd)
        path.unlink()
    return percentile(samples, 0.5), percentile(samples, 0.99)


def sync_always(cluster: LocalNatsCluster) -> bool:
    """Whether every node reports ``sync_always`` in /varz (the option reached the servers)."""
    flags = set()
    for node in cluster.nodes:
        with urllib.request.urlopen(f"http://127.0.0.1:{node.monitor_port}/varz", timeout=5) as response:
            flags.add(bool(json.load(response)["jetstream"]["config"].get("sync_always", False)))
    assert len(flags) == 1, "nodes disagree on sync_always"
    return flags.pop()


async def timed_calls(stream: EventStream, batch_size: int, calls: int, runs: SyncRuns) -> None:
    batch_list = [events(batch_size) for _ in range(calls)]
    began = time.perf_counter()
    for batch in batch_list:
        call_began = time.perf_counter()
        await stream.publish(batch)
        runs.latencies.append(time.perf_counter() - call_began)
    runs.rates.append(batch_size * calls / (time.perf_counter() - began))


async def sync_policies(tmp: Path, nodes: int, rounds: int, singles: int, batches: int) -> None:
    """Default vs ``always`` on ``nodes`` nodes, R``nodes``, alternated in ``rounds`` rounds."""
    runs = {(policy, size): SyncRuns() for policy in SYNC_POLICIES for size in (1, SYNC_BATCH)}
    with contextlib.ExitStack() as stack:
        clusters = {
            policy: stack.enter_context(
                LocalNatsCluster(tmp / f"sync-{policy}-{nodes}", nodes=nodes, sync_interval=interval)
            )
            for policy, interval in SYNC_POLICIES.items()
        }
        assert [sync_always(cluster) for cluster in clusters.values()] == [False, True]
        streams = {
            policy: await EventStream.open(cluster.client_urls, partitions=PARTITIONS, replicas=nodes)
            for policy, cluster in clusters.items()
        }
        try:
            for stream in streams.values():  # warm up
                await stream.publish(events(SYNC_BATCH))
                for _ in range(20):
                    await stream.publish(events(1))
            for round_ in range(rounds):
                order = list(SYNC_POLICIES) if round_ % 2 == 0 else list(reversed(SYNC_POLICIES))
                for policy in order:
                    await timed_calls(streams[policy], 1, singles, runs[policy, 1])
                    await timed_calls(streams[policy], SYNC_BATCH, batches, runs[policy, SYNC_BATCH])
        finally:
            for stream in streams.values():
                await stream.close()
    for size, label in ((1, "one event per call"), (SYNC_BATCH, f"batches of {SYNC_BATCH}")):
        for policy in SYNC_POLICIES:
            measured = runs[policy, size]
            print(
                f"sync {policy:7} {nodes} node(s) R{nodes}, {label}: "
                f"{statistics.median(measured.rates):,.0f} events/s, call p50 "
                f"{percentile(measured.latencies, 0.5) * 1e3:.2f} ms, p99 "
                f"{percentile(measured.latencies, 0.99) * 1e3:.2f} ms ({len(measured.latencies)} calls)"
            )
        default, always = runs["default", size], runs["always", size]
        ratios = [a / d for a, d in zip(always.rates, default.rates, strict=True)]
        print(
            f"sync always/default {nodes} node(s) R{nodes}, {label}: throughput "
            f"{statistics.median(ratios):.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f}), "
            f"p50 {percentile(always.latencies, 0.5) / percentile(default.latencies, 0.5):.2f}x, "
            f"p99 {percentile(always.latencies, 0.99) / percentile(default.latencies, 0.99):.2f}x"
        )


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
    parser.add_argument(
        "--events", type=int, default=None, help="publish rates: events (default 20,000; 5,000 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer events and sync rounds (small samples)")
    parser.add_argument("--sync-only", action="store_true", help="only the sync policy comparison")
    args = parser.parse_args()
    total = args.events or (5_000 if args.quick else 20_000)
    rounds, singles, batches = (4, 100, 3) if args.quick else (16, 150, 4)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.sync_only:
            with LocalNatsCluster(Path(tmp) / "one") as one:
                await publish_rates(one, total)
            with LocalNatsCluster(Path(tmp) / "three", nodes=3) as three:
                await publish_rates(three, total)
            with LocalNatsCluster(Path(tmp) / "failover", nodes=3) as three:
                await failover(three)
            with LocalNatsCluster(Path(tmp) / "leases", nodes=3) as three:
                await lease_takeover(three)
        disk = [fsync_latency(Path(tmp))]
        for nodes in (1, 3):
            await sync_policies(Path(tmp), nodes, rounds, singles, batches)
        disk.append(fsync_latency(Path(tmp)))
        print(
            "fsync of a 200-byte append on the stores' disk, before / after the sync comparison: "
            + " / ".join(f"p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms" for p50, p99 in disk)
        )


if __name__ == "__main__":
    asyncio.run(main())
