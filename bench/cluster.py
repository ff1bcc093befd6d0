"""Cluster benchmark: cluster mode on JetStream, 1 vs 2 profile workers and 1 vs 2 ranking replicas,
and failover when a worker and a NATS node die.

    .venv/bin/python bench/cluster.py [--quick] [--events 40000] [--freshness-samples 50]
        [--level-seconds 15] [--callers 8] [--partitions 32] [--failover-cycles 5]
        [--failover-rate 300] [--failover-only] [--out /tmp/driftwise-cluster.json]

One run, side by side, on one machine:

1. one NATS node (LocalNatsCluster, JetStream), a Milvus server (LocalMilvusServer: Milvus Lite
   cannot be shared by processes) and one local Triton (text_encoder); the first --items MovieLens
   movies with their real encoder vectors are written straight into Milvus (bench/serving.py's
   catalogue code, vectors cached by `driftwise eval`);
2. `driftwise serve` subprocesses configured by environment (DRIFTWISE_SERVER__ROLE,
   DRIFTWISE_CLUSTER__NATS_URLS as a JSON list, DRIFTWISE_TRITON__URL, DRIFTWISE_MILVUS__URI,
   DRIFTWISE_CLUSTER__WORKER_ID, a data directory each), waited on until gRPC health SERVING:
   one ingest, one worker and one ranking replica to start with;
3. workers = 1, then a second worker is started (it takes its fair share of the partition leases
   within two heartbeats; the bench waits until the leases bucket shows the split) and workers = 2.
   In each phase, with new user ids (the same MovieLens histories under a per-phase prefix, so the
   two phases carry identical work):
   - ingest: --events MovieLens ratings (item-referencing only, time order) as IngestEvents of
     --ingest-batch events, --ingest-concurrency in flight; "acked" events/s = events / time until
     the last IngestEvents returned; "applied" events/s = events / time until every partition's
     applied position (key pos.<p> of the DRIFTWISE_PROFILES bucket) reaches the stream sequence of
     the partition's last event (polled every 50 ms, read with nats-py from this process). Ingest
     and apply overlap, so the applied rate is bounded by the one ingest process too;
   - drain: as many events again (other user ids) ingested with every worker paused (SIGSTOP;
     the lease TTL is 30 s so they keep their partitions), then resumed (SIGCONT): events / time
     from the resume until applied, the workers' own rate on a backlog;
   - freshness: one-event IngestEvents for a user of the phase; the version before is the user's
     GetProfile version on the ranking replica (the ack's profile_version is 0 in cluster mode:
     the event is published, not yet applied); from the ack, Recommend on the replica until its
     profile_version reaches version + 1: p50/p99 of that time, one sample at a time;
4. ranking = 1, then a second ranking replica is started and ranking = 2: Recommend (count 10,
   random users of both phases) from --callers closed-loop callers for --level-seconds, the calls
   spread over the replicas round-robin, after a warm-up on each replica: QPS, p50/p99.
5. failover (--failover-cycles, 0: none; --failover-only: this phase alone), once the processes
   above are stopped: a fresh 3-node NATS cluster (streams and buckets R3), one ingest and one
   ranking replica, two workers with the production lease timings (the settings' defaults), and
   a continuous load (--failover-rate events/s offered in IngestEvents of --failover-batch, over
   --failover-users users; every call resent with the same event ids until acked). Each partition
   has a probe user that only the probes write to, and each is served once first. Each cycle:
   SIGKILL a worker and a NATS node (n0, n1, n2, n0, ...; what the node led is read just before:
   the JetStream meta group from /jsz, the event stream's and both buckets' leaders), then for
   every partition the dead worker held one event for its probe user, sent after the kill and
   resent until acked, and Recommend on the ranking replica until its profile_version shows it;
   "all served" is the kill to the last of those Recommends, "first served" to the first. Then
   the node and a new worker start, and the cycle ends once every replica is current, the two
   workers split the partitions fairly and the applied positions caught up. After the cycles,
   the load stops, the workers catch up, and each user's applied events (the event count of
   their profile snapshot) are compared with the events acked for them: lost and applied twice.
   The workers run with `driftwise -v serve`, so their logs (in --work-dir) show the leases taken.

Every process (NATS, Milvus, Triton, the serve roles and this client) shares the machine's CPUs:
on a 2-core machine a second worker or ranking replica competes with everything else for the same
two cores, so the 2-vs-1 ratios here are bounded by CPU, not by the design; they say whether the
roles scale out, on hardware with a core (or a machine) per process.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import nats
import nats.js.errors
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import (  # bench/serving.py: catalogue, histories, `driftwise serve` subprocesses
    DIMENSION,
    EVAL_CACHE,
    ServerProcess,
    build_catalogue,
    build_histories,
    commit_hash,
    machine,
    populate,
)

from driftwise.cluster.event_stream import STREAM, SUBJECT_PREFIX, TRANSIENT_ERRORS, connect
from driftwise.cluster.leases import BUCKET as LEASES
from driftwise.cluster.partitions import partition_of
from driftwise.cluster.snapshots import BUCKET as PROFILES
from driftwise.cluster.snapshots import ProfileSnapshots
from driftwise.datasets.movielens import Rating, load_movies, load_ratings
from driftwise.demo import event_message
from driftwise.evaluation.vectors import item_vectors
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.settings import REPO_ROOT, ClusterSettings
from driftwise_client.v1 import (
    common_pb2,
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    profile_service_pb2,
    profile_service_pb2_grpc,
    ranking_service_pb2,
    ranking_service_pb2_grpc,
)

# long enough that workers paused (SIGSTOP) while a backlog is ingested keep their leases
LEASE_TTL_S = 30.0
SCALING_SETTINGS = {
    "DRIFTWISE_CLUSTER__LEASE_TTL_SECONDS": str(LEASE_TTL_S),
    "DRIFTWISE_CLUSTER__LEASE_HEARTBEAT_SECONDS": "1",
}

PRESETS: dict[str, dict[str, Any]] = {
    "full": {
        "items": 2000,
        "events": 40000,
        "freshness_samples": 50,
        "level_seconds": 15.0,
        "warmup": 20,
        "failover_rate": 300.0,
    },
    "quick": {
        "items": 2000,
        "events": 10000,
        "freshness_samples": 12,
        "level_seconds": 4.0,
        "warmup": 5,
        "failover_rate": 100.0,
    },
}


# -- results ---------------------------------------------------------------------------------------


@dataclass
class WorkerPhase:
    workers: int
    events: int
    users: int
    acked_events_per_s: float
    applied_events_per_s: float
    acked_s: float  # first IngestEvents sent -> last acked
    applied_s: float  # first IngestEvents sent -> every partition's position covers its events
    drain_events_per_s: float = float("nan")  # a backlog of as many events, workers resumed
    drain_s: float = float("nan")  # SIGCONT -> every partition's position covers the backlog
    drain_machine_busy: float = float("nan")  # share of all CPUs busy during the drain
    freshness_samples: int = 0
    freshness_p50_ms: float = float("nan")
    freshness_p99_ms: float = float("nan")
    freshness_max_ms: float = float("nan")
    freshness_mean_calls: float = float("nan")  # Recommend calls until one showed the event
    ack_p50_ms: float = float("nan")  # the one-event IngestEvents round trip
    leases: dict[str, int] = field(default_factory=dict)  # worker id -> partitions held


@dataclass
class RankingPhase:
    replicas: int
    callers: int
    requests: int
    qps: float
    p50_ms: float
    p99_ms: float
    personalized_share: float
    machine_busy: float  # share of all CPUs busy during the load (every process, this client too)


# -- the cluster -----------------------------------------------------------------------------------


class Cluster:
    """NATS, Milvus and Triton URLs plus the `driftwise serve` role processes started so far."""

    def __init__(
        self,
        work: Path,
        args: argparse.Namespace,
        nats_urls: Sequence[str],
        milvus: Any,
        triton_url: str,
        *,
        settings: dict[str, str] | None = None,
        verbose: bool = False,
    ):
        self.work = work
        self.args = args
        self.nats_urls = list(nats_urls)
        self.milvus = milvus
        self.triton_url = triton_url
        # what the scaling phases run with: leases that outlast a SIGSTOP, a one-node stream
        self.settings = SCALING_SETTINGS if settings is None else settings
        self.verbose = verbose  # `driftwise -v serve`: INFO logs (leases taken and released)
        self.processes: dict[str, ServerProcess] = {}

    async def start(self, name: str, role: str) -> ServerProcess:
        data_dir = self.work / name
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "DRIFTWISE_DATA_DIR": str(data_dir),
            "DRIFTWISE_SERVER__ROLE": role,
            "DRIFTWISE_CLUSTER__NATS_URLS": json.dumps(self.nats_urls),
            "DRIFTWISE_CLUSTER__PARTITIONS": str(self.args.partitions),
            "DRIFTWISE_CLUSTER__WORKER_ID": name,
            "DRIFTWISE_TRITON__URL": self.triton_url,
            "DRIFTWISE_MILVUS__URI": self.milvus.uri,
            "DRIFTWISE_MILVUS__TOKEN": self.milvus.token,
            "DRIFTWISE_MILVUS__INDEX_TYPE": "HNSW",
            **self.settings,
        }
        process = ServerProcess(data_dir, env)
        self.processes[name] = process
        command = None
        if self.verbose:
            script = Path(sys.executable).with_name("driftwise")
            cli = [str(script)] if script.exists() else [sys.executable, "-m", "driftwise.cli"]
            command = [*cli, "-v", "serve"]
        seconds = await process.start(timeout_s=180.0, command=command)
        print(f"  {name} ({role}) SERVING on {process.target} in {seconds:.1f} s", flush=True)
        return process

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop(timeout_s=30.0) for p in self.processes.values()))


@contextlib.asynccontextmanager
async def infrastructure(work: Path) -> AsyncIterator[tuple[list[str], Any, str]]:
    """One NATS node, a Milvus server and one Triton, for the whole run."""
    from driftwise_testing.milvus_server import LocalMilvusServer
    from driftwise_testing.nats_cluster import LocalNatsCluster

    async with contextlib.AsyncExitStack() as stack:
        print("starting NATS (1 node), a Milvus server and Triton ...", flush=True)
        started = time.perf_counter()
        nats_cluster = LocalNatsCluster(work / "nats", nodes=1)
        triton = LocalTritonServer(
            REPO_ROOT / "model_repository", models=["text_encoder"], log_path=work / "triton.log"
        )
        milvus = LocalMilvusServer(work / "milvus-server")
        stack.enter_context(nats_cluster)
        # one after the other: each picks free ports, then binds them
        await asyncio.to_thread(triton.start)
        stack.push_async_callback(asyncio.to_thread, triton.stop)
        await asyncio.to_thread(milvus.start)
        stack.push_async_callback(asyncio.to_thread, milvus.stop)
        print(f"  up in {time.perf_counter() - started:.1f} s", flush=True)
        yield list(nats_cluster.client_urls), milvus, triton.grpc_url


# -- measurements ----------------------------------------------------------------------------------


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat ((0, 0) where there is none)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


class CpuMeter:
    """How busy the whole machine was between start and stop (0-1 of all its CPUs)."""

    def __init__(self) -> None:
        self.busy, self.total = _machine_jiffies()

    def share(self) -> float:
        busy, total = _machine_jiffies()
        return (busy - self.busy) / (total - self.total) if total > self.total else float("nan")


def _ms(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) * 1000.0 if values else float("nan")


class Progress:
    """What the workers have applied, read from JetStream by this process."""

    def __init__(self, nc: Any, partitions: int) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.partitions = partitions
        self.snapshots: ProfileSnapshots | None = None
        self.last_cpu_share = float("nan")  # machine busy share during the last drain

    async def open(self) -> None:
        self.snapshots = await ProfileSnapshots.open(self.js, partitions=self.partitions)

    async def last_seqs(self) -> dict[int, int]:
        """Each partition's last stream sequence (partitions without events left out)."""

        async def last(p: int) -> int:
            try:
                msg = await self.js.get_msg(STREAM, subject=f"{SUBJECT_PREFIX}.{p}.*")
            except nats.js.errors.NotFoundError:
                return 0
            return int(msg.seq or 0)

        seqs = await asyncio.gather(*(last(p) for p in range(self.partitions)))
        return {p: s for p, s in enumerate(seqs) if s}

    async def behind(self, targets: dict[int, int]) -> int:
        """Partitions whose applied position has not reached its target."""
        assert self.snapshots is not None
        positions = await asyncio.gather(*(self.snapshots.position(p) for p in targets))
        return sum(pos.seq < targets[p] for p, (pos, _) in zip(targets, positions, strict=True))

    async def leases(self) -> dict[str, int]:
        """Worker id -> partitions whose lease it holds."""
        kv = await self.js.key_value(LEASES)
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return {}
        held: dict[str, int] = {}
        for key in keys:
            if key.startswith("partition."):
                with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                    entry = await kv.get(key)
                    if entry.value:
                        worker = json.loads(entry.value)["worker"]
                        held[worker] = held.get(worker, 0) + 1
        return held

    async def wait_for_split(self, workers: int, timeout_s: float = 30.0) -> dict[str, int]:
        """Until `workers` workers hold every partition between them, fairly (their fair share)."""
        deadline = time.monotonic() + timeout_s
        held: dict[str, int] = {}
        while time.monotonic() < deadline:
            held = await self.leases()
            shares = sorted(held.values())
            if len(held) == workers and sum(shares) == self.partitions and shares[-1] - shares[0] <= 1:
                return held
            await asyncio.sleep(0.2)
        print(f"  warning: leases not split over {workers} workers after {timeout_s:.0f} s: {held}")
        return held


async def ingest_and_apply(
    target: str,
    events: Sequence[Rating],
    batch: int,
    concurrency: int,
    progress: Progress,
    paused: Sequence[ServerProcess] = (),
) -> tuple[float, float]:
    """IngestEvents batches from `concurrency` callers; seconds until the last ack and until the
    workers applied everything (every partition's position at its last sequence).

    With `paused` workers (SIGSTOP for the ingest, SIGCONT after the last ack) the second figure
    counts from the SIGCONT: the workers drain a backlog, at their own pace, not ingest's."""
    requests = iter(
        [
            ingest_service_pb2.IngestEventsRequest(events=[event_message(r) for r in events[i : i + batch]])
            for i in range(0, len(events), batch)
        ]
    )  # built before the clock starts: protobuf construction is client cost

    async with grpc.aio.insecure_channel(target) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)

        async def caller() -> None:
            for request in requests:
                await stub.IngestEvents(request, timeout=300)

        for worker in paused:
            assert worker.proc is not None
            worker.proc.send_signal(signal.SIGSTOP)
        try:
            started = time.perf_counter()
            await asyncio.gather(*(caller() for _ in range(concurrency)))
            acked_s = time.perf_counter() - started
            targets = await progress.last_seqs()
        finally:
            for worker in paused:
                assert worker.proc is not None
                worker.proc.send_signal(signal.SIGCONT)
    if paused:
        started = time.perf_counter()
        meter = CpuMeter()
    deadline = time.monotonic() + 600.0
    while await progress.behind(targets):
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not apply the events within 600 s")
        await asyncio.sleep(0.05)
    applied_s = time.perf_counter() - started
    if paused:
        progress.last_cpu_share = meter.share()
    return acked_s, applied_s


async def freshness(
    ingest_target: str,
    ranking_target: str,
    users: Sequence[str],
    item_ids: Sequence[str],
    samples: int,
    rng: random.Random,
) -> tuple[list[float], list[int], list[float]]:
    """Ack of a one-event IngestEvents -> first Recommend on the replica whose profile_version
    reaches the user's version before + 1. Returns delays (s), Recommend calls, ack round trips."""
    delays: list[float] = []
    calls: list[int] = []
    acks: list[float] = []
    async with (
        grpc.aio.insecure_channel(ingest_target) as ingest_channel,
        grpc.aio.insecure_channel(ranking_target) as ranking_channel,
    ):
        ingest = ingest_service_pb2_grpc.IngestServiceStub(ingest_channel)
        ranking = ranking_service_pb2_grpc.RankingServiceStub(ranking_channel)
        profiles = profile_service_pb2_grpc.ProfileServiceStub(ranking_channel)
        for user in rng.sample(list(users), min(samples, len(users))):
            got = await profiles.GetProfile(profile_service_pb2.GetProfileRequest(user_id=user), timeout=30)
            version = got.profile.version + 1
            event = common_pb2.Event(
                event_id=f"fresh-{uuid.uuid4().hex}",
                user_id=user,
                type=common_pb2.EVENT_TYPE_VIEW,
                item_id=rng.choice(item_ids),
            )
            event.event_time.GetCurrentTime()
            sent = time.perf_counter()
            await ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=[event]), timeout=30)
            acked = time.perf_counter()
            request = ranking_service_pb2.RecommendRequest(user_id=user, count=10)
            deadline = acked + 30.0
            attempt = 0
            while True:
                attempt += 1
                response = await ranking.Recommend(request, timeout=30)
                if response.profile_version >= version:
                    delays.append(time.perf_counter() - acked)
                    calls.append(attempt)
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"version {version} of {user} not in Recommend within 30 s")
            acks.append(acked - sent)
    return delays, calls, acks


async def recommend_qps(
    targets: Sequence[str],
    users: Sequence[str],
    callers: int,
    seconds: float,
    warmup: int,
    rng: random.Random,
) -> RankingPhase:
    """Closed loop: `callers` callers, Recommend for random users, call n on replica n mod len."""
    channels = [grpc.aio.insecure_channel(t) for t in targets]
    try:
        stubs = [ranking_service_pb2_grpc.RankingServiceStub(c) for c in channels]
        for stub in stubs:  # warm-up on every replica
            for _ in range(warmup):
                await stub.Recommend(
                    ranking_service_pb2.RecommendRequest(user_id=rng.choice(users), count=10), timeout=60
                )
        latencies: list[float] = []
        sources: list[int] = []
        counter = iter(range(10**9))
        deadline = time.perf_counter() + seconds

        async def caller() -> None:
            while time.perf_counter() < deadline:
                stub = stubs[next(counter) % len(stubs)]
                request = ranking_service_pb2.RecommendRequest(user_id=rng.choice(users), count=10)
                started = time.perf_counter()
                reply = await stub.Recommend(request, timeout=60)
                latencies.append(time.perf_counter() - started)
                sources.append(reply.source)

        started, meter = time.perf_counter(), CpuMeter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        wall, busy = time.perf_counter() - started, meter.share()
    finally:
        for channel in channels:
            await channel.close()
    personalized = sources.count(ranking_service_pb2.RECOMMENDATION_SOURCE_PERSONALIZED) / max(
        len(sources), 1
    )
    return RankingPhase(
        len(targets),
        callers,
        len(latencies),
        len(latencies) / wall,
        _ms(latencies, 50),
        _ms(latencies, 99),
        personalized,
        busy,
    )


# -- failover: 3 NATS nodes, a worker and a node SIGKILLed together ---------------------------------


@dataclass
class FailoverCycle:
    cycle: int
    worker: str  # the worker SIGKILLed
    node: str  # the NATS node SIGKILLed with it
    node_led: list[str]  # what that node led: meta (the JetStream meta group), events, leases, profiles
    partitions: int  # partitions the dead worker held
    first_s: float  # kill -> the first Recommend showing an event acked after the kill, on one of them
    all_s: float  # kill -> such a Recommend for every one of its partitions
    probe_ack_p50_s: float  # kill -> the probe events' acks (the stream's own failover, in that time)
    probe_ack_max_s: float
    steady_s: float  # restarts -> replicas current, the two workers' fair split, applied caught up
    killed_at: str  # wall clock (HH:MM:SS), to find the kill in the processes' logs


@dataclass
class FailoverPhase:
    cycles: list[FailoverCycle]
    lease_ttl_s: float
    lease_heartbeat_s: float
    partitions: int
    ingest_events_per_s: float  # the continuous load's target
    all_p50_s: float = float("nan")
    all_p99_s: float = float("nan")
    all_max_s: float = float("nan")
    first_p50_s: float = float("nan")
    first_max_s: float = float("nan")
    users: int = 0
    acked_events: int = 0  # distinct events acked by IngestEvents, over the whole phase
    applied_events: int = 0  # the snapshots' event counts, summed over the same users
    lost: int = 0  # acked, not in the user's profile (summed over users)
    twice: int = 0  # in the profile more often than acked (summed over users)
    users_off: int = 0  # users whose applied count differs from their acked count
    resend_calls: int = 0  # IngestEvents calls that failed and were sent again (same event ids)


_RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,  # a connection reset mid-call
}


async def ingest_until_acked(
    stub: ingest_service_pb2_grpc.IngestServiceAsyncStub, request: ingest_service_pb2.IngestEventsRequest
) -> int:
    """IngestEvents, sent again (the same event ids: a resend is stored once) until acked, as a
    client of a failing cluster does; returns how many calls failed first."""
    failed = 0
    while True:
        try:
            await stub.IngestEvents(request, timeout=30)
            return failed
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in _RETRYABLE:
                raise
            failed += 1
            await asyncio.sleep(0.2)


class Loader:
    """Continuous ingest: `callers` loops each sending IngestEvents of `batch` events (random users
    of the pool, random known items, event time now) so that together they offer about `rate`
    events/s; every call is sent again until acked. Counts the acked events per user."""

    def __init__(
        self,
        target: str,
        users: Sequence[str],
        item_ids: Sequence[str],
        rate: float,
        batch: int,
        seed: int,
        callers: int = 2,
    ) -> None:
        self.target = target
        self.users = list(users)
        self.item_ids = list(item_ids)
        self.rate = rate
        self.batch = batch
        self.callers = callers
        self.rng = random.Random(seed)
        self.acked: collections.Counter[str] = collections.Counter()
        self.resends = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ids = itertools.count()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._caller()) for _ in range(self.callers)]

    async def stop(self) -> None:
        """Stop sending; returns once every call in flight is acked."""
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def _request(self) -> ingest_service_pb2.IngestEventsRequest:
        kinds = (common_pb2.EVENT_TYPE_VIEW, common_pb2.EVENT_TYPE_CLICK, common_pb2.EVENT_TYPE_LIKE)
        events = []
        for _ in range(self.batch):
            event = common_pb2.Event(
                event_id=f"fo-{next(self._ids)}-{uuid.uuid4().hex[:8]}",
                user_id=self.rng.choice(self.users),
                type=self.rng.choice(kinds),
                item_id=self.rng.choice(self.item_ids),
            )
            event.event_time.GetCurrentTime()
            events.append(event)
        return ingest_service_pb2.IngestEventsRequest(events=events)

    async def _caller(self) -> None:
        interval = self.batch * self.callers / self.rate
        loop = asyncio.get_running_loop()
        async with grpc.aio.insecure_channel(self.target) as channel:
            stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
            next_at = loop.time()
            while not self._stop.is_set():
                request = self._request()
                self.resends += await ingest_until_acked(stub, request)
                self.acked.update(e.user_id for e in request.events)
                # after a stall (an election), go on at the rate, without a burst to catch up
                next_at = max(next_at + interval, loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), max(0.0, next_at - loop.time()))


def probe_users(partitions: int) -> dict[int, str]:
    """One user id per partition that only the probes send events for."""
    found: dict[int, str] = {}
    for n in itertools.count():
        user = f"probe-{n}"
        found.setdefault(partition_of(user, partitions), user)
        if len(found) == partitions:
            return found
    raise AssertionError("unreachable")


class Probes:
    """One event at a time for a partition's probe user, then Recommend on the ranking replica until
    its profile_version shows it: the moment that partition is served fresh again."""

    def __init__(self, ingest_target: str, ranking_target: str, partitions: int, item_ids: Sequence[str]):
        self.users = probe_users(partitions)
        self.versions = dict.fromkeys(self.users.values(), 0)  # events acked per probe user
        self.item_ids = list(item_ids)
        self._ingest = grpc.aio.insecure_channel(ingest_target)
        self._ranking = grpc.aio.insecure_channel(ranking_target)
        self._recommend_slots = asyncio.Semaphore(4)  # Recommend polls in flight, all partitions together

    async def close(self) -> None:
        await self._ingest.close()
        await self._ranking.close()

    async def one(self, partition: int, since: float, timeout_s: float = 60.0) -> tuple[float, float]:
        """Seconds from `since` (perf_counter) to the ack of a new event for the partition's probe
        user, and to the first Recommend that reflects it."""
        user = self.users[partition]
        event = common_pb2.Event(
            event_id=f"probe-{uuid.uuid4().hex}",
            user_id=user,
            type=common_pb2.EVENT_TYPE_LIKE,
            item_id=random.choice(self.item_ids),
        )
        event.event_time.GetCurrentTime()
        stub = ingest_service_pb2_grpc.IngestServiceStub(self._ingest)
        await ingest_until_acked(stub, ingest_service_pb2.IngestEventsRequest(events=[event]))
        acked = time.perf_counter() - since
        self.versions[user] += 1
        ranking = ranking_service_pb2_grpc.RankingServiceStub(self._ranking)
        request = ranking_service_pb2.RecommendRequest(user_id=user, count=10)
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            with contextlib.suppress(grpc.aio.AioRpcError):  # a snapshot read during an election
                async with self._recommend_slots:
                    reply = await ranking.Recommend(request, timeout=10)
                if reply.profile_version >= self.versions[user]:
                    return acked, time.perf_counter() - since
            await asyncio.sleep(0.05)
        raise RuntimeError(f"partition {partition}: {user}'s event not served within {timeout_s:.0f} s")

    async def all(self, partitions: Sequence[int], since: float) -> dict[int, tuple[float, float]]:
        results = await asyncio.gather(*(self.one(p, since) for p in partitions))
        return dict(zip(partitions, results, strict=True))


async def _retrying(call: Any, timeout_s: float = 60.0) -> Any:
    """Await `call()` again through the transient errors of a degraded cluster."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await call()
        except TRANSIENT_ERRORS:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def leaders(js: Any, nats_cluster: Any) -> dict[str, str]:
    """Which node leads what: the JetStream meta group (monitoring /jsz), the event stream and
    the two KV buckets."""
    found: dict[str, str] = {}
    for name, stream in (("events", STREAM), ("leases", f"KV_{LEASES}"), ("profiles", f"KV_{PROFILES}")):
        info = await _retrying(lambda stream=stream: js.stream_info(stream))
        if info.cluster is not None and info.cluster.leader:
            found[name] = info.cluster.leader
    for node in nats_cluster.nodes:
        if node.is_running:
            url = f"http://127.0.0.1:{node.monitor_port}/jsz"
            with contextlib.suppress(OSError, ValueError):
                reply = await asyncio.to_thread(_read_url, url)
                leader = json.loads(reply).get("meta_cluster", {}).get("leader")
                if leader:
                    found["meta"] = leader
                    break
    return found


def _read_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2) as response:
        body: bytes = response.read()
        return body


async def replicas_current(js: Any, timeout_s: float = 120.0) -> None:
    """Until the event stream and both buckets have every replica current (a restarted node has
    caught up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        lagging = []
        for stream in (STREAM, f"KV_{LEASES}", f"KV_{PROFILES}"):
            info = await _retrying(lambda stream=stream: js.stream_info(stream))
            cluster = info.cluster
            peers = (cluster.replicas or []) if cluster is not None else []
            led = cluster is not None and bool(cluster.leader)
            if not led or len(peers) < 2 or not all(p.current and not p.offline for p in peers):
                lagging.append(stream)
        if not lagging:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"replicas not current after {timeout_s:.0f} s: {lagging}")
        await asyncio.sleep(0.2)


async def caught_up(progress: Progress, timeout_s: float = 300.0) -> None:
    """Until every partition's applied position reaches the stream's last sequence of now."""
    targets = await _retrying(progress.last_seqs)
    deadline = time.monotonic() + timeout_s
    while await _retrying(lambda: progress.behind(targets)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers did not catch up within {timeout_s:.0f} s")
        await asyncio.sleep(0.1)


async def held_by(progress: Progress) -> dict[int, str]:
    """Partition -> the worker holding its lease now."""
    kv = await progress.js.key_value(LEASES)
    try:
        keys = await kv.keys()
    except nats.js.errors.NoKeysError:
        return {}
    held: dict[int, str] = {}
    for key in keys:
        if key.startswith("partition."):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                entry = await kv.get(key)
                if entry.value:
                    held[int(key.removeprefix("partition."))] = json.loads(entry.value)["worker"]
    return held


async def quiet_connection(urls: Sequence[str]) -> Any:
    """This process's connection, reconnecting as the roles' do (event_stream.connect), without
    nats-py's default error callback: it prints a traceback at every node this run kills."""

    async def ignore(exc: Exception) -> None:
        pass

    return await nats.connect(
        servers=list(urls),
        name="driftwise-bench-failover",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        connect_timeout=5,
        error_cb=ignore,
    )


async def failover_phase(
    args: argparse.Namespace, work: Path, milvus: Any, triton_url: str, item_ids: Sequence[str]
) -> FailoverPhase:
    """3 NATS nodes (R3), one ingest and one ranking replica, two workers with the production lease
    timings (the settings' defaults); a continuous load; --failover-cycles times: SIGKILL a worker
    and a NATS node, time until the dead worker's partitions serve events acked after the kill,
    restart both, wait until steady. Then every user's applied events against the acked ones."""
    from driftwise_testing.nats_cluster import LocalNatsCluster

    defaults = ClusterSettings()
    phase = FailoverPhase(
        [], defaults.lease_ttl_seconds, defaults.lease_heartbeat_seconds, args.partitions, args.failover_rate
    )
    print(
        f"\n== failover: 3 NATS nodes (R3), 2 workers with the default leases (TTL "
        f"{phase.lease_ttl_s:g} s, heartbeat {phase.lease_heartbeat_s:g} s), {args.failover_cycles} "
        f"cycles, ~{args.failover_rate:g} events/s offered ...",
        flush=True,
    )
    shutil.rmtree(work / "nats-failover", ignore_errors=True)
    with LocalNatsCluster(work / "nats-failover", nodes=3) as nats_cluster:
        settings = {"DRIFTWISE_CLUSTER__STREAM_REPLICAS": "3"}  # lease timings: the defaults
        cluster = Cluster(
            work / "failover",
            args,
            nats_cluster.client_urls,
            milvus,
            triton_url,
            settings=settings,
            verbose=True,
        )
        nc = await quiet_connection(nats_cluster.client_urls)
        loader: Loader | None = None
        probes: Probes | None = None
        try:
            ingest = await cluster.start("ingest", "ingest")
            workers = [await cluster.start(f"worker-{n}", "worker") for n in (1, 2)]
            names = ["worker-1", "worker-2"]
            ranking = await cluster.start("ranking", "ranking")
            progress = Progress(nc, args.partitions)
            progress.snapshots = await ProfileSnapshots.open(
                progress.js, partitions=args.partitions, replicas=3
            )
            probes = Probes(ingest.target, ranking.target, args.partitions, item_ids)
            await probes.all(list(range(args.partitions)), time.perf_counter())  # each partition once
            users = [f"fo-user-{n}" for n in range(args.failover_users)]
            loader = Loader(
                ingest.target, users, item_ids, args.failover_rate, args.failover_batch, args.seed
            )
            loader.start()
            await progress.wait_for_split(2)
            await caught_up(progress)
            for cycle in range(args.failover_cycles):
                victim = cycle % 2
                node = cycle % 3
                led = await leaders(progress.js, nats_cluster)
                dead = sorted(p for p, w in (await held_by(progress)).items() if w == names[victim])
                victim_name = names[victim]
                wall = time.strftime("%H:%M:%S")
                killed_at = time.perf_counter()
                workers[victim].kill()
                nats_cluster.kill(node)
                served = await probes.all(dead, killed_at)
                acks = [ack for ack, _ in served.values()]
                times = [at for _, at in served.values()]
                restarted = time.perf_counter()
                await asyncio.to_thread(nats_cluster.restart, node)
                names[victim] = f"worker-{cycle + 3}"
                workers[victim] = await cluster.start(names[victim], "worker")
                await replicas_current(progress.js)
                await progress.wait_for_split(2, timeout_s=60.0)
                await caught_up(progress)
                record = FailoverCycle(
                    cycle + 1,
                    victim_name,
                    f"n{node}",
                    sorted(what for what, leader in led.items() if leader == f"n{node}"),
                    len(dead),
                    min(times),
                    max(times),
                    float(np.median(acks)),
                    max(acks),
                    time.perf_counter() - restarted,
                    wall,
                )
                phase.cycles.append(record)
                print(
                    f"  cycle {record.cycle}: SIGKILL a worker ({record.partitions} partitions) and "
                    f"{record.node} (leader of {', '.join(record.node_led) or 'nothing'}): first partition "
                    f"served fresh {record.first_s:.2f} s, all {record.all_s:.2f} s (probe acks p50 "
                    f"{record.probe_ack_p50_s:.2f} s, max {record.probe_ack_max_s:.2f} s); steady again "
                    f"{record.steady_s:.1f} s after the restarts",
                    flush=True,
                )
            await loader.stop()
            await caught_up(progress)
            counts = await applied_counts(progress, [*users, *probes.users.values()])
            acked = loader.acked + collections.Counter(probes.versions)
        finally:
            if loader is not None and not loader._stop.is_set():
                with contextlib.suppress(Exception):
                    await loader.stop()
            if probes is not None:
                await probes.close()
            await nc.close()
            await cluster.stop()
    tally(phase, acked, counts)
    phase.resend_calls = loader.resends
    return phase


async def applied_counts(progress: Progress, users: Sequence[str]) -> dict[str, int]:
    """Each user's applied events: the event count of the user's profile snapshot (0: none)."""
    assert progress.snapshots is not None
    snapshots = progress.snapshots
    found = await asyncio.gather(*(_retrying(lambda u=u: snapshots.get(u)) for u in users))
    return {
        u: (s.profile.event_count if s is not None else 0) for u, (s, _) in zip(users, found, strict=True)
    }


def tally(phase: FailoverPhase, acked: collections.Counter[str], applied: dict[str, int]) -> None:
    alls = [c.all_s for c in phase.cycles]
    firsts = [c.first_s for c in phase.cycles]
    if alls:
        phase.all_p50_s, phase.all_p99_s = _pct(alls, 50), _pct(alls, 99)
        phase.all_max_s, phase.first_p50_s, phase.first_max_s = max(alls), _pct(firsts, 50), max(firsts)
    users = set(acked) | set(applied)
    phase.users = len(users)
    phase.acked_events = sum(acked.values())
    phase.applied_events = sum(applied.get(u, 0) for u in users)
    phase.lost = sum(max(0, acked[u] - applied.get(u, 0)) for u in users)
    phase.twice = sum(max(0, applied.get(u, 0) - acked[u]) for u in users)
    phase.users_off = sum(acked[u] != applied.get(u, 0) for u in users)


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# -- the run ---------------------------------------------------------------------------------------


def phase_events(histories: Sequence[Rating], prefix: str) -> list[Rating]:
    """The same histories under the phase's user ids and event ids."""
    return [
        dataclasses.replace(r, user_id=f"{prefix}-{r.user_id}", event_id=f"{prefix}-{r.event_id}")
        for r in histories
    ]


async def worker_phase(
    cluster: Cluster,
    progress: Progress,
    workers: int,
    events: Sequence[Rating],
    backlog: Sequence[Rating],
    item_ids: Sequence[str],
    rng: random.Random,
) -> WorkerPhase:
    args = cluster.args
    ingest, ranking = cluster.processes["ingest"].target, cluster.processes["ranking-1"].target
    held = await progress.wait_for_split(workers)
    print(f"\n== workers = {workers} (leases: {held}); ingesting {len(events):,} events ...", flush=True)
    acked_s, applied_s = await ingest_and_apply(
        ingest, events, args.ingest_batch, args.ingest_concurrency, progress
    )
    users = sorted({r.user_id for r in events})
    phase = WorkerPhase(
        workers, len(events), len(users), len(events) / acked_s, len(events) / applied_s, acked_s, applied_s
    )
    phase.leases = held
    print(
        f"  acked {phase.acked_events_per_s:,.0f} events/s ({acked_s:.1f} s), applied "
        f"{phase.applied_events_per_s:,.0f} events/s ({applied_s:.1f} s)",
        flush=True,
    )
    paused = [p for name, p in cluster.processes.items() if name.startswith("worker-")]
    _, phase.drain_s = await ingest_and_apply(
        ingest, backlog, args.ingest_batch, args.ingest_concurrency, progress, paused
    )
    phase.drain_events_per_s = len(backlog) / phase.drain_s
    phase.drain_machine_busy = progress.last_cpu_share
    print(
        f"  drain: {len(backlog):,} events ingested with the workers paused, applied in "
        f"{phase.drain_s:.1f} s after resuming: {phase.drain_events_per_s:,.0f} events/s "
        f"(machine {phase.drain_machine_busy:.0%} busy)",
        flush=True,
    )
    delays, calls, acks = await freshness(ingest, ranking, users, item_ids, args.freshness_samples, rng)
    phase.freshness_samples = len(delays)
    phase.freshness_p50_ms, phase.freshness_p99_ms = _ms(delays, 50), _ms(delays, 99)
    phase.freshness_max_ms = max(delays) * 1000.0
    phase.freshness_mean_calls = float(np.mean(calls))
    phase.ack_p50_ms = _ms(acks, 50)
    print(
        f"  freshness p50 {phase.freshness_p50_ms:.1f} ms  p99 {phase.freshness_p99_ms:.1f} ms "
        f"({len(delays)} samples, mean {phase.freshness_mean_calls:.1f} Recommend calls; "
        f"ack p50 {phase.ack_p50_ms:.1f} ms)",
        flush=True,
    )
    return phase


async def scaling_phases(
    args: argparse.Namespace,
    work: Path,
    nats_urls: Sequence[str],
    milvus: Any,
    triton_url: str,
    histories: Sequence[Rating],
    item_ids: Sequence[str],
    rng: random.Random,
) -> tuple[list[WorkerPhase], list[RankingPhase]]:
    """Workers 1 then 2, ranking replicas 1 then 2, over the one-node stream."""
    worker_phases: list[WorkerPhase] = []
    ranking_phases: list[RankingPhase] = []
    cluster = Cluster(work, args, nats_urls, milvus, triton_url)
    nc = await connect(nats_urls, name="driftwise-bench")
    try:
        await cluster.start("ingest", "ingest")  # creates the stream
        await cluster.start("worker-1", "worker")
        await cluster.start("ranking-1", "ranking")
        progress = Progress(nc, args.partitions)
        await progress.open()
        worker_phases.append(
            await worker_phase(
                cluster,
                progress,
                1,
                phase_events(histories, "w1"),
                phase_events(histories, "w1d"),
                item_ids,
                rng,
            )
        )
        await cluster.start("worker-2", "worker")
        worker_phases.append(
            await worker_phase(
                cluster,
                progress,
                2,
                phase_events(histories, "w2"),
                phase_events(histories, "w2d"),
                item_ids,
                rng,
            )
        )
        users = sorted({r.user_id for phase in ("w1", "w2") for r in phase_events(histories, phase)})
        targets = [cluster.processes["ranking-1"].target]
        for replicas in (1, 2):
            if replicas == 2:
                targets.append((await cluster.start("ranking-2", "ranking")).target)
            print(f"\n== ranking = {replicas}: Recommend, {args.callers} callers ...", flush=True)
            level = await recommend_qps(targets, users, args.callers, args.level_seconds, args.warmup, rng)
            ranking_phases.append(level)
            print(
                f"  {level.qps:,.1f} QPS  p50 {level.p50_ms:.1f} ms  p99 {level.p99_ms:.1f} ms "
                f"({level.requests} calls, {level.personalized_share:.0%} personalized, "
                f"machine {level.machine_busy:.0%} busy)",
                flush=True,
            )
    finally:
        await nc.close()
        await cluster.stop()
    return worker_phases, ranking_phases


async def run(
    args: argparse.Namespace, work: Path
) -> tuple[list[WorkerPhase], list[RankingPhase], FailoverPhase | None, dict[str, Any]]:
    movies = load_movies()[: args.items]
    vectors = item_vectors(movies, EVAL_CACHE, lambda line: print(line, flush=True))
    catalogue, _ = build_catalogue(movies, vectors, len(movies), 0.0, args.seed)
    known = {it.item_id for it in catalogue}
    item_ids = sorted(known)
    # the last events of every real user (610), as many each as --events needs, in time order
    per_user = -(-args.events // 610)
    histories = build_histories(load_ratings(), known, 610, per_user, args.seed, time.time())[: args.events]
    rng = random.Random(args.seed)
    defaults = ClusterSettings()
    composition = [
        f"{len(catalogue):,} MovieLens movies with real encoder vectors ({DIMENSION}-d) in a Milvus "
        "server (HNSW)",
    ]
    if not args.failover_only:
        composition += [
            f"{len(histories):,} MovieLens ratings per worker phase (each real user's last {per_user}, "
            f"{len({r.user_id for r in histories})} users, in time order, ids prefixed per phase), "
            f"IngestEvents x{args.ingest_batch}, {args.ingest_concurrency} in flight",
            f"{args.partitions} partitions, 1 NATS node (R1), lease TTL {LEASE_TTL_S:g} s / heartbeat 1 s",
            f"Recommend: count 10, {args.callers} closed-loop callers round-robin over the replicas, "
            f"{args.level_seconds:g} s per level after {args.warmup} warm-up calls per replica",
        ]
    if args.failover_cycles:
        composition.append(
            f"failover: 3 NATS nodes (R3), 1 ingest, 1 ranking, 2 workers with the default lease TTL "
            f"{defaults.lease_ttl_seconds:g} s / heartbeat {defaults.lease_heartbeat_seconds:g} s, "
            f"{args.partitions} partitions; ~{args.failover_rate:g} events/s offered continuously "
            f"(IngestEvents x{args.failover_batch}, {args.failover_users} users, each call resent until "
            f"acked); {args.failover_cycles} cycles of SIGKILL a worker + a NATS node (n0, n1, n2, ...), "
            "restart both, wait until steady"
        )
    for line in composition:
        print(line, flush=True)
    worker_phases: list[WorkerPhase] = []
    ranking_phases: list[RankingPhase] = []
    failover: FailoverPhase | None = None
    for stale in [work / "nats", *work.glob("ingest"), *work.glob("worker-*"), *work.glob("ranking-*")]:
        shutil.rmtree(stale, ignore_errors=True)  # a reused --work-dir: a fresh stream and buckets
    shutil.rmtree(work / "failover", ignore_errors=True)
    async with infrastructure(work) as (nats_urls, milvus, triton_url):
        populate_s = await populate(milvus.uri, milvus.token, "HNSW", catalogue)
        print(f"  catalogue written in {populate_s:.1f} s", flush=True)
        if not args.failover_only:
            worker_phases, ranking_phases = await scaling_phases(
                args, work, nats_urls, milvus, triton_url, histories, item_ids, rng
            )
        if args.failover_cycles:
            failover = await failover_phase(args, work, milvus, triton_url, item_ids)
    context = {
        "machine": machine(),
        "cpus": os.cpu_count(),
        "commit": _commit(),
        "composition": composition,
    }
    return worker_phases, ranking_phases, failover, context


# -- report ----------------------------------------------------------------------------------------


def _commit() -> str:
    """HEAD's commit (serving.py's reader, else git: a worktree's .git is a file)."""
    found = commit_hash()
    if found == "unknown":
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            git = ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"]
            found = subprocess.run(git, capture_output=True, text=True, check=True).stdout.strip()
    return found


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def report(
    workers: list[WorkerPhase],
    ranking: list[RankingPhase],
    failover: FailoverPhase | None,
    context: dict[str, Any],
) -> dict[str, float]:
    print(f"\n# Cluster benchmark ({context['machine']}, commit {context['commit'][:12]})")
    for line in context["composition"]:
        print(f"- {line}")
    ratios: dict[str, float] = {}
    if workers and ranking:
        ratios = scaling_report(workers, ranking, context)
    if failover is not None:
        failover_report(failover)
    return ratios


def scaling_report(
    workers: list[WorkerPhase], ranking: list[RankingPhase], context: dict[str, Any]
) -> dict[str, float]:
    print(
        "\n| workers | events | acked ev/s | applied ev/s | drain ev/s (CPU busy) | freshness p50 / p99 ms "
        "| samples |\n|---:|---:|---:|---:|---:|---:|---:|"
    )
    for w in workers:
        print(
            f"| {w.workers} | {w.events:,} | {w.acked_events_per_s:,.0f} | {w.applied_events_per_s:,.0f} | "
            f"{w.drain_events_per_s:,.0f} ({w.drain_machine_busy:.0%}) | "
            f"{w.freshness_p50_ms:.1f} / {w.freshness_p99_ms:.1f} | {w.freshness_samples} |"
        )
    print(
        "\n| ranking replicas | callers | calls | QPS | p50 / p99 ms | CPU busy |\n"
        "|---:|---:|---:|---:|---:|---:|"
    )
    for r in ranking:
        print(
            f"| {r.replicas} | {r.callers} | {r.requests:,} | {r.qps:,.1f} | "
            f"{r.p50_ms:.1f} / {r.p99_ms:.1f} | {r.machine_busy:.0%} |"
        )
    ratios = {
        "drain_2_over_1_workers": _ratio(workers[1].drain_events_per_s, workers[0].drain_events_per_s),
        "applied_2_over_1_workers": _ratio(workers[1].applied_events_per_s, workers[0].applied_events_per_s),
        "acked_2_over_1_workers": _ratio(workers[1].acked_events_per_s, workers[0].acked_events_per_s),
        "qps_2_over_1_ranking": _ratio(ranking[1].qps, ranking[0].qps),
    }
    print(
        f"\nRatios: applied events/s 2 workers / 1 worker = {ratios['applied_2_over_1_workers']:.2f} "
        f"while ingesting (bounded by the one ingest process: acked 2/1 = "
        f"{ratios['acked_2_over_1_workers']:.2f}), {ratios['drain_2_over_1_workers']:.2f} draining a backlog "
        "(the workers' own rate); Recommend QPS 2 ranking / 1 ranking = "
        f"{ratios['qps_2_over_1_ranking']:.2f}."
    )
    print(
        f"On {context['cpus']} CPUs: NATS, Milvus, Triton, every serve process and this client share them, "
        "so a second worker or replica adds a process, not a core; the ratios are bounded by CPU here "
        "(2.0 needs a core, or a machine, per process); CPU busy is the share of all the machine's CPUs "
        "in use during the drain or the load. Freshness includes the worker's fetch and "
        "snapshot write and the replica's KV watch."
    )
    return ratios


def failover_report(f: FailoverPhase) -> None:
    print(
        "\n| failover cycle | SIGKILLed | node led | partitions | first served | all served "
        "| probe acks p50 / max | steady again |\n|---:|---|---|---:|---:|---:|---:|---:|"
    )
    for c in f.cycles:
        print(
            f"| {c.cycle} | {c.worker} + {c.node} | {', '.join(c.node_led) or '-'} | {c.partitions} | "
            f"{c.first_s:.2f} s | {c.all_s:.2f} s | {c.probe_ack_p50_s:.2f} / {c.probe_ack_max_s:.2f} s | "
            f"{c.steady_s:.1f} s |"
        )
    print(
        f"\nFailover (lease TTL {f.lease_ttl_s:g} s, heartbeat {f.lease_heartbeat_s:g} s; SIGKILL of a "
        f"worker and a NATS node -> the first Recommend showing an event acked after the kill, on "
        f"every partition the dead worker held), over {len(f.cycles)} kills: p50 {f.all_p50_s:.2f} s, "
        f"p99 {f.all_p99_s:.2f} s, max {f.all_max_s:.2f} s (target <= 10 s); its first partition: p50 "
        f"{f.first_p50_s:.2f} s, max {f.first_max_s:.2f} s."
    )
    print(
        f"Exactly once, after all cycles: {f.acked_events:,} events acked for {f.users:,} users, "
        f"{f.applied_events:,} applied (the snapshots' event counts); lost {f.lost}, applied twice "
        f"{f.twice}, users off {f.users_off}; {f.resend_calls} IngestEvents calls failed during the "
        "kills and were sent again (the same event ids)."
    )


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke-test preset: " + str(PRESETS["quick"]))
    parser.add_argument("--items", type=int, help="MovieLens movies in the catalogue (default 2000)")
    parser.add_argument("--events", type=int, help="ratings ingested per worker phase (default 40000)")
    parser.add_argument(
        "--freshness-samples", type=int, help="freshness samples per worker phase (default 50)"
    )
    parser.add_argument("--level-seconds", type=float, help="Recommend load per ranking level (default 15)")
    parser.add_argument("--warmup", type=int, help="Recommend warm-up calls per replica (default 20)")
    parser.add_argument("--callers", type=int, default=8, help="closed-loop Recommend callers")
    parser.add_argument("--ingest-batch", type=int, default=500, help="events per IngestEvents")
    parser.add_argument("--ingest-concurrency", type=int, default=4, help="IngestEvents in flight")
    parser.add_argument("--partitions", type=int, default=32, help="cluster.partitions")
    parser.add_argument(
        "--failover-cycles",
        type=int,
        default=5,
        help="failover phase: kills of a worker and a NATS node (0: no failover phase)",
    )
    parser.add_argument("--failover-rate", type=float, help="failover phase: events/s offered (default 300)")
    parser.add_argument(
        "--failover-batch", type=int, default=20, help="failover phase: events per IngestEvents"
    )
    parser.add_argument("--failover-users", type=int, default=320, help="failover phase: users of the load")
    parser.add_argument(
        "--failover-only", action="store_true", help="only the failover phase (no 1-vs-2 scaling phases)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--work-dir", type=Path, help="data directories go here (default: a temp dir, removed)"
    )
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "driftwise-cluster.json")
    args = parser.parse_args(argv)
    for name, value in PRESETS["quick" if args.quick else "full"].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="driftwise-cluster-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        workers, ranking, failover, context = asyncio.run(run(args, work))
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    context["wall_s"] = round(time.perf_counter() - started, 1)
    ratios = report(workers, ranking, failover, context)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    payload = {
        **context,
        "options": options,
        "workers": [dataclasses.asdict(w) for w in workers],
        "ranking": [dataclasses.asdict(r) for r in ranking],
        "ratios": ratios,
        "failover": dataclasses.asdict(failover) if failover is not None else None,
    }
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"\nJSON: {args.out}; whole run {context['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
