"""Failover of cluster mode on JetStream, end to end: a 3-node JetStream cluster (the stream and
both buckets R3), two ingest and two ranking replicas (in this process, each its own App and
port, as test_jetstream_roles.py runs them), two profile workers as `driftwise serve`
processes (role worker, configured by environment as bench/cluster.py does: a SIGKILL is a real
process death), a real Milvus server and Triton.

Mid-ingest, with batches in flight to both ingest replicas, one worker and the NATS node leading
the event stream are SIGKILLed. Then:

- every acknowledged event is applied exactly once: each user's snapshot counts exactly the
  user's acked events and its seen items are theirs, the item counts are the acked positives,
  the stream holds every acked event once, and every acked event sent again comes back a
  duplicate;
- every profile equals a replay of the stream: the user's stored events, in stream order,
  applied one by one to a new profile with the roles' topic model (the labels on Triton);
- the dead worker's users are served their new events again within 10 s of the kill: for each
  partition it held, a Recommend on a ranking replica shows an event acked after the kill;

then a third worker joins while events flow: the partitions rebalance between the two live
workers and the same exactly-once and replay checks hold over every event; and a graceful stop
(SIGTERM) of a worker hands its leases back at once (deleted, not left to expire).

The workers run with the production lease timings (the settings' defaults)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import nats.js.errors
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.js import JetStreamContext, api
from nats.js.kv import KV_DEL

import driftwise
import driftwise_client
from driftwise.cluster.event_stream import STREAM, SUBJECT_PREFIX, connect
from driftwise.cluster.leases import BUCKET as LEASES
from driftwise.cluster.messages import EventMessage, decode
from driftwise.cluster.partitions import partition_of
from driftwise.cluster.snapshots import ProfileSnapshots
from driftwise.datasets.movielens import Movie
from driftwise.engine.encoding import encode_texts
from driftwise.inference.encoder import TritonTextEncoder
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.model.events import NEGATIVE_TYPES
from driftwise.model.profile import UserProfile
from driftwise.model.topics import TopicModel
from driftwise.server import App, running_app
from driftwise.settings import ClusterSettings, MilvusSettings, ServerSettings, Settings, TritonSettings
from driftwise.supervision import ProcessGroupServer
from driftwise_client.v1 import common_pb2, ingest_service_pb2, ranking_service_pb2
from driftwise_testing.milvus_server import LocalMilvusServer
from driftwise_testing.nats_cluster import LocalNatsCluster
from tests.integration.cluster.test_profile_worker import assert_same_profile
from tests.integration.milvus_fixtures import milvus_server
from tests.integration.support import Client
from tests.integration.test_milvus_server import drop_collections

__all__ = ["milvus_server"]  # the fixture, imported for pytest

pytestmark = pytest.mark.integration

PARTITIONS = 8
FAILOVER_BOUND_S = 10.0  # the target: a dead worker's users served again within 10 s
LEASE_DEFAULTS = ClusterSettings()  # what the workers run with: the production lease timings
STARTUP_S = 120.0  # generous bounds on waits that are not what the test measures
SETTLE_S = 60.0
KINDS = [common_pb2.EVENT_TYPE_LIKE, common_pb2.EVENT_TYPE_VIEW, common_pb2.EVENT_TYPE_CLICK]
KINDS.append(common_pb2.EVENT_TYPE_SKIP)
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


# ---------------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WorkerProcess(ProcessGroupServer):
    """A profile worker: `driftwise serve` with role worker in a process group of its own,
    configured by environment; SIGKILLed when the test process dies."""

    def __init__(
        self, name: str, data_dir: Path, nats_cluster: LocalNatsCluster, triton: LocalTritonServer
    ) -> None:
        self.name = name
        self.port = free_port()
        self.data_dir = data_dir
        self.log_path = data_dir / "serve.log"
        # the code under test, whatever the virtualenv's editable install points at
        code = [Path(driftwise.__file__).parents[1], Path(driftwise_client.__file__).parents[1]]
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([*map(str, code), os.environ.get("PYTHONPATH", "")]),
            "DRIFTWISE_DATA_DIR": str(data_dir),
            "DRIFTWISE_SERVER__PORT": str(self.port),
            "DRIFTWISE_SERVER__ROLE": "worker",
            "DRIFTWISE_CLUSTER__NATS_URLS": json.dumps(nats_cluster.client_urls),
            "DRIFTWISE_CLUSTER__PARTITIONS": str(PARTITIONS),
            "DRIFTWISE_CLUSTER__STREAM_REPLICAS": "3",
            "DRIFTWISE_CLUSTER__WORKER_ID": name,
            "DRIFTWISE_TRITON__URL": triton.grpc_url,
        }

    def spawn(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "driftwise.cli", "serve"]
        self._start_in_own_group(command, self.env, Path.cwd(), self.log_path, death_signal=signal.SIGKILL)

    async def wait_serving(self) -> None:
        """Until gRPC health says SERVING (after the worker's first lease round)."""
        deadline = time.monotonic() + STARTUP_S
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                assert self.is_running, f"{self.name} {self.exit_description()}:\n{self.log_tail()}"
                assert time.monotonic() < deadline, f"{self.name} not SERVING:\n{self.log_tail()}"
                with contextlib.suppress(grpc.aio.AioRpcError):
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                await asyncio.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no release of its leases, no commit of the batch in hand."""
        self._kill_now()

    async def terminate(self) -> str:
        """SIGTERM, as Kubernetes stops a pod; how it ended."""
        self._signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STARTUP_S
        while not self._leader_exited():
            assert time.monotonic() < deadline, f"{self.name} did not exit on SIGTERM:\n{self.log_tail()}"
            await asyncio.sleep(0.05)
        ended = self.exit_description()
        self._kill_now()  # reap
        return ended

    def stop(self) -> None:
        self._kill_now()

    def log_tail(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else "(no log)"
        return text[-4000:]


def role_settings(
    tmp_path: Path,
    name: str,
    role: str,
    nats_cluster: LocalNatsCluster,
    triton: LocalTritonServer,
    milvus: LocalMilvusServer,
) -> Settings:
    return Settings(
        data_dir=tmp_path / name,
        server=ServerSettings(port=0, role=role),
        triton=TritonSettings(url=triton.grpc_url),
        milvus=MilvusSettings(uri=milvus.uri, token=milvus.token, index_type="HNSW"),
        cluster=ClusterSettings(
            nats_urls=tuple(nats_cluster.client_urls), partitions=PARTITIONS, stream_replicas=3
        ),
    )


async def roles_topic_model(triton: LocalTritonServer) -> TopicModel:
    """The topic model every role builds at start: the configured labels encoded on Triton."""
    settings = Settings()
    encoder = TritonTextEncoder(triton.grpc_url, model_name=settings.triton.model_name)
    await encoder.connect()
    try:
        labels = list(settings.interest.topics)
        centroids = await encode_texts(encoder, labels, "query")
    finally:
        await encoder.close()
    return TopicModel(labels, centroids, settings.interest.assignment_temperature)


# ---------------------------------------------------------------------------------------- load


@dataclass
class Ledger:
    """Every acknowledged event."""

    events: dict[str, common_pb2.Event] = field(default_factory=dict)

    def record(self, events: Iterable[common_pb2.Event]) -> None:
        for event in events:
            self.events[event.event_id] = event

    def by_user(self) -> dict[str, list[common_pb2.Event]]:
        users: dict[str, list[common_pb2.Event]] = {}
        for event in self.events.values():
            users.setdefault(event.user_id, []).append(event)
        return users

    def positives(self) -> collections.Counter[str]:
        negative = {int(t) for t in NEGATIVE_TYPES}
        return collections.Counter(
            e.item_id for e in self.events.values() if e.item_id and e.type not in negative
        )


async def ingest_until_acked(client: Client, events: Sequence[common_pb2.Event]) -> None:
    """IngestEvents, sent again with the same event ids until acked (a client of a failing
    cluster); records nothing: the caller does, once acked."""
    request = ingest_service_pb2.IngestEventsRequest(events=events)
    while True:
        try:
            await client.ingest.IngestEvents(request, timeout=30)
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in RETRYABLE:
                raise
            await asyncio.sleep(0.1)


class Load:
    """One caller per ingest replica, each sending batches of 8 events (random users and movies,
    now and then a search) one after the other, every batch resent until acked."""

    def __init__(self, ingests: Sequence[Client], users: Sequence[str], items: Sequence[str], ledger: Ledger):
        self.ingests = ingests
        self.users = users
        self.items = items
        self.ledger = ledger
        self._rng = np.random.default_rng(7)
        self._ids = itertools.count()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._stop.clear()
        self._tasks = [asyncio.create_task(self._caller(client)) for client in self.ingests]

    async def stop(self) -> None:
        """Stop; returns once the batches in flight are acked."""
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def batch(self) -> list[common_pb2.Event]:
        events = []
        for _ in range(8):
            n = next(self._ids)
            user = str(self._rng.choice(self.users))
            if n % 25 == 0:
                event = common_pb2.Event(
                    event_id=f"e{n}",
                    user_id=user,
                    type=common_pb2.EVENT_TYPE_SEARCH,
                    text=f"films like {n % 7}",
                )
            else:
                kind = KINDS[int(self._rng.integers(len(KINDS)))]
                item = str(self._rng.choice(self.items))
                event = common_pb2.Event(event_id=f"e{n}", user_id=user, type=kind, item_id=item)
            event.event_time.GetCurrentTime()
            events.append(event)
        return events

    async def _caller(self, client: Client) -> None:
        while not self._stop.is_set():
            events = self.batch()
            await ingest_until_acked(client, events)
            self.ledger.record(events)
            await asyncio.sleep(0.02)


class Probes:
    """A user per partition that only probes send events to: one event, then Recommend on the
    ranking replicas (in turn) until the reply's profile_version shows it."""

    def __init__(
        self, ingests: Sequence[Client], rankings: Sequence[Client], items: Sequence[str], ledger: Ledger
    ):
        self.ingests = ingests
        self.rankings = rankings
        self.items = items
        self.ledger = ledger
        self.users: dict[int, str] = {}
        for n in itertools.count():
            self.users.setdefault(partition_of(f"probe-{n}", PARTITIONS), f"probe-{n}")
            if len(self.users) == PARTITIONS:
                break
        self.sent = dict.fromkeys(self.users.values(), 0)

    async def one(self, partition: int, since: float) -> float:
        """Seconds from `since` (monotonic) to the first Recommend showing a new event of the
        partition's probe user, the event sent now."""
        user = self.users[partition]
        n = self.sent[user]
        event = common_pb2.Event(
            event_id=f"{user}-{n}", user_id=user, type=common_pb2.EVENT_TYPE_LIKE, item_id=self.items[n]
        )
        event.event_time.GetCurrentTime()
        await ingest_until_acked(self.ingests[partition % len(self.ingests)], [event])
        self.ledger.record([event])
        self.sent[user] = version = n + 1
        request = ranking_service_pb2.RecommendRequest(user_id=user, count=5)
        deadline = time.monotonic() + SETTLE_S
        for attempt in itertools.count():
            ranking = self.rankings[attempt % len(self.rankings)]
            with contextlib.suppress(grpc.aio.AioRpcError):  # a snapshot read during an election
                reply = await ranking.ranking.Recommend(request, timeout=5)
                if reply.profile_version >= version:
                    assert reply.source == ranking_service_pb2.RECOMMENDATION_SOURCE_PERSONALIZED
                    return time.monotonic() - since
            assert time.monotonic() < deadline, f"{user}'s event {version} never served"
            await asyncio.sleep(0.05)
        raise AssertionError("unreachable")

    async def all(self, partitions: Iterable[int], since: float) -> dict[int, float]:
        chosen = sorted(partitions)
        return dict(zip(chosen, await asyncio.gather(*(self.one(p, since) for p in chosen)), strict=True))


# ---------------------------------------------------------------------------------------- checks


async def until(condition: Callable[[], object], what: str, timeout_s: float = SETTLE_S) -> None:
    """Poll an async condition (not a timed assertion: a bound on a wait for something that must
    happen, generous so a loaded machine does not fail it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f} s"
        await asyncio.sleep(0.1)


async def lease_holders(js: JetStreamContext) -> dict[int, str]:
    """Partition -> the worker whose lease it is now."""
    kv = await js.key_value(LEASES)
    try:
        keys = await kv.keys()
    except nats.js.errors.NoKeysError:
        return {}
    held: dict[int, str] = {}
    for key in keys:
        if key.startswith("partition."):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                entry = await kv.get(key)
                held[int(key.removeprefix("partition."))] = json.loads(entry.value or b"{}")["worker"]
    return held


async def split_between(js: JetStreamContext, workers: set[str]) -> bool:
    """Whether exactly these workers hold every partition, fairly."""
    shares = collections.Counter((await lease_holders(js)).values())
    return (
        set(shares) == workers
        and sum(shares.values()) == PARTITIONS
        and max(shares.values()) - min(shares.values()) <= 1
    )


@dataclass(frozen=True)
class Stored:
    seq: int
    message: EventMessage


async def stored_events(js: JetStreamContext) -> list[Stored]:
    """Every message of the event stream, in stream order."""
    total = (await js.stream_info(STREAM)).state.messages
    subscription = await js.pull_subscribe(
        f"{SUBJECT_PREFIX}.>", stream=STREAM, config=api.ConsumerConfig(ack_policy=api.AckPolicy.NONE)
    )
    stored: list[Stored] = []
    try:
        while len(stored) < total:
            for msg in await subscription.fetch(500, timeout=5):
                stored.append(Stored(msg.metadata.sequence.stream, decode(msg.data)))
    finally:
        await subscription.unsubscribe()
    return sorted(stored, key=lambda s: s.seq)


async def settled(js: JetStreamContext, snapshots: ProfileSnapshots) -> list[Stored]:
    """Once every partition's applied position has passed its last stored event: the stream."""
    stored = await stored_events(js)
    last: dict[int, int] = {}
    for s in stored:
        p = partition_of(s.message.event.user_id, PARTITIONS)
        last[p] = max(last.get(p, 0), s.seq)

    async def applied() -> bool:
        positions = await asyncio.gather(*(snapshots.position(p) for p in last))
        return all(pos.seq >= last[p] for p, (pos, _) in zip(last, positions, strict=True))

    await until(applied, "every partition applied up to its last event")
    return stored


def replay(user: str, stored: Sequence[Stored], topics: TopicModel, config: Settings) -> UserProfile:
    profile = UserProfile.new(
        user, config.interest, topics.centroids.shape[1], topics.size, topics=topics.fingerprint
    )
    for s in stored:
        if s.message.event.user_id == user:
            vector = s.message.vector.astype(np.float64)
            profile.apply(
                s.message.event, vector, topics.assign_one(vector), s.message.remembered, config.interest, 0.0
            )
    return profile


async def assert_exactly_once_and_replayed(
    js: JetStreamContext, snapshots: ProfileSnapshots, ledger: Ledger, topics: TopicModel
) -> None:
    stored = await settled(js, snapshots)
    ids = collections.Counter(s.message.event.event_id for s in stored)
    assert set(ids) == set(ledger.events), "the stream holds exactly the acked events"
    assert max(ids.values()) == 1, f"stored twice: {[i for i, n in ids.items() if n > 1][:5]}"
    config = Settings()
    for user, events in ledger.by_user().items():
        snapshot, _ = await snapshots.get(user)
        assert snapshot is not None, user
        assert snapshot.profile.event_count == len(events), (
            f"{user}: applied {snapshot.profile.event_count}, acked {len(events)}"
        )
        assert list(snapshot.seen_item_ids) == sorted({e.item_id for e in events if e.item_id}), user
        assert_same_profile(snapshot.profile, replay(user, stored, topics, config))
    assert await snapshots.item_counts() == ledger.positives()


async def assert_all_duplicates(clients: Sequence[Client], events: Sequence[common_pb2.Event]) -> None:
    """Every acked event sent again: each comes back a duplicate (stored once)."""
    for start in range(0, len(events), 200):
        client = clients[(start // 200) % len(clients)]
        reply = await client.ingest.IngestEvents(
            ingest_service_pb2.IngestEventsRequest(events=events[start : start + 200]), timeout=60
        )
        assert all(ack.duplicate for ack in reply.acks), "a resent acked event was stored again"


# ---------------------------------------------------------------------------------------- the test


@contextlib.asynccontextmanager
async def in_process_roles(
    tmp_path: Path, nats_cluster: LocalNatsCluster, triton: LocalTritonServer, milvus: LocalMilvusServer
) -> AsyncIterator[dict[str, App]]:
    async with contextlib.AsyncExitStack() as stack:
        apps = {}
        for name, role in (
            ("ingest1", "ingest"),
            ("ingest2", "ingest"),
            ("ranking1", "ranking"),
            ("ranking2", "ranking"),
        ):
            settings = role_settings(tmp_path, name, role, nats_cluster, triton, milvus)
            apps[name] = await stack.enter_async_context(running_app(settings))
        yield apps


async def test_a_worker_and_a_nats_node_killed_mid_ingest_lose_no_event_and_its_users_are_served_again(
    triton: LocalTritonServer, milvus_server: LocalMilvusServer, movies: list[Movie], tmp_path: Path
) -> None:
    began = time.monotonic()
    drop_collections(milvus_server)
    topics = await roles_topic_model(triton)
    with LocalNatsCluster(tmp_path / "nats", nodes=3) as nats_cluster:
        workers = {n: WorkerProcess(n, tmp_path / n, nats_cluster, triton) for n in ("w1", "w2", "w3")}
        try:
            for name in ("w1", "w2"):
                workers[name].spawn()  # starting while the roles below start
            async with in_process_roles(tmp_path, nats_cluster, triton, milvus_server) as apps:
                await run_scenario(apps, workers, nats_cluster, topics, movies, began)
        finally:
            for worker in workers.values():
                worker.stop()


async def run_scenario(
    apps: dict[str, App],
    workers: dict[str, WorkerProcess],
    nats_cluster: LocalNatsCluster,
    topics: TopicModel,
    movies: list[Movie],
    began: float,
) -> None:
    ingests = [Client.connect(apps[n].target) for n in ("ingest1", "ingest2")]
    rankings = [Client.connect(apps[n].target) for n in ("ranking1", "ranking2")]
    nc = await connect(nats_cluster.client_urls, name="test")
    try:
        js = nc.jetstream()
        await ingests[0].upsert_movies(movies[:60])
        items = [m.item_id for m in movies[:60]]
        await asyncio.gather(workers["w1"].wait_serving(), workers["w2"].wait_serving())
        snapshots = await ProfileSnapshots.open(js, partitions=PARTITIONS, replicas=3)
        await until(lambda: split_between(js, {"w1", "w2"}), "w1 and w2 share the partitions")

        ledger = Ledger()
        probes = Probes(ingests, rankings, items, ledger)
        await probes.all(range(PARTITIONS), time.monotonic())  # every partition served once
        load = Load(ingests, [f"user-{i}" for i in range(32)], items, ledger)
        load.start()
        await until(lambda: len(ledger.events) >= 400, "400 events acked")

        # mid-ingest: w1 and the node leading the event stream die, as processes die
        info = (await js.stream_info(STREAM)).cluster
        assert info is not None and info.leader is not None
        node = int(info.leader.removeprefix("n"))
        dead = sorted(p for p, w in (await lease_holders(js)).items() if w == "w1")
        assert dead, "w1 held no partition"
        killed_at = time.monotonic()
        workers["w1"].kill()
        nats_cluster.kill(node)
        served = await probes.all(dead, killed_at)
        failover = max(served.values())
        assert failover <= FAILOVER_BOUND_S, (
            f"the dead worker's partitions were served fresh again {failover:.1f} s after the kill "
            f"(bound {FAILOVER_BOUND_S:.0f} s; per partition: "
            + ", ".join(f"{p}: {s:.1f} s" for p, s in served.items())
            + f"; lease TTL {LEASE_DEFAULTS.lease_ttl_seconds:g} s, heartbeat "
            f"{LEASE_DEFAULTS.lease_heartbeat_seconds:g} s)"
        )
        await until(lambda: len(ledger.events) >= 1000, "1000 events acked")
        await load.stop()

        await assert_exactly_once_and_replayed(js, snapshots, ledger, topics)
        await assert_all_duplicates(ingests, list(ledger.events.values()))
        first_phase = set(ledger.events)

        # a third worker joins while events flow: the partitions move, none applied twice or skipped
        load.start()
        workers["w3"].spawn()
        await workers["w3"].wait_serving()
        await until(lambda: split_between(js, {"w2", "w3"}), "w2 and w3 share the partitions")
        moved = sum(w == "w3" for w in (await lease_holders(js)).values())
        count = len(ledger.events)
        await until(lambda: len(ledger.events) >= count + 300, "300 more events acked")
        await load.stop()
        await assert_exactly_once_and_replayed(js, snapshots, ledger, topics)
        await assert_all_duplicates(ingests, [e for i, e in ledger.events.items() if i not in first_phase])

        # a graceful stop hands the leases back at once: deleted (or already taken), not left to expire
        held = sorted(p for p, w in (await lease_holders(js)).items() if w == "w3")
        assert await workers["w3"].terminate() == "exited with code 0"
        kv = await js.key_value(LEASES)
        for partition in held:
            try:
                entry = await kv.get(f"partition.{partition}")
            except nats.js.errors.KeyNotFoundError as gone:
                # a delete marker: released; expired keys leave nothing (op None)
                assert gone.op == KV_DEL, f"partition {partition}'s lease was not released"
                continue
            assert json.loads(entry.value or b"{}")["worker"] == "w2", f"partition {partition} still w3's"
        await until(lambda: split_between(js, {"w2"}), "w2 takes every partition back")

        print(
            f"\nfailover: w1 and n{node} (the stream leader) SIGKILLed mid-ingest; w1's {len(dead)} "
            f"partitions served an event acked after the kill in {min(served.values()):.2f}-{failover:.2f} s "
            f"(lease TTL {LEASE_DEFAULTS.lease_ttl_seconds:g} s, heartbeat "
            f"{LEASE_DEFAULTS.lease_heartbeat_seconds:g} s); {len(ledger.events)} acked events applied "
            f"exactly once, profiles equal to a replay of the stream; w3 joined and took {moved} "
            f"partitions; w3's SIGTERM released {len(held)} leases; whole test "
            f"{time.monotonic() - began:.0f} s"
        )
    finally:
        for client in (*ingests, *rankings):
            await client.channel.close()
        await nc.close()
