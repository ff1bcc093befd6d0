"""ProfileWorker against real nats-server: profiles equal a replay of the stream; every event
applied exactly once while a NATS node is SIGKILLed and a worker crashes mid-ingest; partitions
rebalance to a joining worker without an event applied twice or skipped.

A synthetic topic model (3 labels, dimension 8) stands in for the encoder's: messages carry
their vectors, so no Triton is needed."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import api

from driftwise.cluster.batches import positive_item
from driftwise.cluster.event_stream import EventStream, Published, connect
from driftwise.cluster.leases import PartitionLeases
from driftwise.cluster.messages import EventMessage, ForgetMessage, encode
from driftwise.cluster.partitions import partition_of
from driftwise.cluster.snapshots import Position, ProfileSnapshots
from driftwise.cluster.worker import ProfileWorker
from driftwise.model.config import InterestModelConfig
from driftwise.model.events import NEGATIVE_TYPES, Event, EventType, Layer
from driftwise.model.profile import UserProfile
from driftwise.model.topics import TopicModel
from driftwise_testing.nats_cluster import LocalNatsCluster

pytestmark = pytest.mark.integration

DIMENSION = 8
TOPICS = TopicModel(["a", "b", "c"], np.random.default_rng(0).normal(size=(3, DIMENSION)), temperature=0.1)
CONFIG = InterestModelConfig()
TTL_S = 3.0  # short, to keep the tests quick; production defaults are 6 s and 1.5 s
HEARTBEAT_S = 1.0
TYPES = [EventType.CLICK, EventType.VIEW, EventType.LIKE, EventType.SKIP, EventType.STATED_INTEREST]


class Events:
    """Synthetic event messages: distinct, increasing times; random unit vectors; items from a
    pool of 23 (users meet the same items, positively and negatively); stated interests are
    free text, without an item."""

    def __init__(self, users: int, seed: int = 1) -> None:
        self.users = [f"user {i}/ü" for i in range(users)]
        self._rng = np.random.default_rng(seed)
        self._clock = itertools.count()

    def batch(self, size: int) -> list[EventMessage]:
        messages = []
        for _ in range(size):
            tick = next(self._clock)
            vector = self._rng.normal(size=DIMENSION).astype(np.float32)
            kind = TYPES[tick % len(TYPES)]
            stated = kind == EventType.STATED_INTEREST
            event = Event(
                uuid.uuid4().hex,
                self.users[int(self._rng.integers(len(self.users)))],
                kind,
                1.7e9 + 60.0 * tick,
                item_id="" if stated else f"item-{tick % 23}",
                text=f"about {tick}" if stated else "",
                dwell_seconds=float(tick % 7),
            )
            messages.append(EventMessage(event, vector / np.linalg.norm(vector), f"title {tick}"))
        return messages


class Ledger:
    """What was acked: each event's message and stream sequence."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.seq: dict[str, int] = {}
        self.messages: dict[str, EventMessage] = {}

    def record(self, batch: Sequence[EventMessage], published: Sequence[Published]) -> None:
        for message, ack in zip(batch, published, strict=True):
            self.messages[message.event.event_id] = message
            self.seq[message.event.event_id] = ack.seq

    def last_seq_by_user(self) -> dict[str, int]:
        last: dict[str, int] = {}
        for event_id, seq in self.seq.items():
            user = self.messages[event_id].event.user_id
            last[user] = max(last.get(user, 0), seq)
        return last

    def last_seq_by_partition(self) -> dict[int, int]:
        last: dict[int, int] = {}
        for user, seq in self.last_seq_by_user().items():
            partition = partition_of(user, self.partitions)
            last[partition] = max(last.get(partition, 0), seq)
        return last

    def replay(self, user: str) -> UserProfile:
        """The user's events in stream order, applied one by one to a new profile."""
        ordered = sorted(
            (seq, eid) for eid, seq in self.seq.items() if self.messages[eid].event.user_id == user
        )
        profile = UserProfile.new(user, CONFIG, DIMENSION, TOPICS.size, topics=TOPICS.fingerprint)
        for _, event_id in ordered:
            m = self.messages[event_id]
            vector = m.vector.astype(np.float64)
            profile.apply(m.event, vector, TOPICS.assign_one(vector), m.remembered, CONFIG, 0.0)
        return profile


def assert_same_profile(got: UserProfile, replayed: UserProfile) -> None:
    assert (got.user_id, got.version, got.event_count, got.topics) == (
        replayed.user_id,
        replayed.version,
        replayed.event_count,
        replayed.topics,
    )
    assert [r.event_id for r in got.recent] == [r.event_id for r in replayed.recent]
    assert [r.text for r in got.recent] == [r.text for r in replayed.recent]
    for layer in Layer:
        a, b = got.layers[layer], replayed.layers[layer]
        assert a.last_time == b.last_time
        assert np.isclose(a.mass, b.mass)
        assert np.allclose(a.vector, b.vector)
        assert np.allclose(a.affinity, b.affinity)
        assert a.rejected is not None and b.rejected is not None
        assert np.allclose(a.rejected, b.rejected)


@dataclass
class Names:
    stream: str
    subjects: str
    leases: str
    profiles: str


class Workers:
    """Workers of one test, each on a NATS connection of its own (as separate processes)."""

    def __init__(self, urls: list[str], names: Names, partitions: int, replicas: int) -> None:
        self.urls = urls
        self.names = names
        self.partitions = partitions
        self.replicas = replicas
        self.running: dict[str, tuple[ProfileWorker, NatsClient]] = {}

    def stream(self, nc: NatsClient) -> EventStream:
        return EventStream(
            nc,
            partitions=self.partitions,
            replicas=self.replicas,
            stream=self.names.stream,
            subject_prefix=self.names.subjects,
        )

    async def snapshots(
        self, nc: NatsClient, kind: type[ProfileSnapshots] = ProfileSnapshots
    ) -> ProfileSnapshots:
        return await kind.open(
            nc.jetstream(), partitions=self.partitions, bucket=self.names.profiles, replicas=self.replicas
        )

    async def start(
        self, worker_id: str, snapshots_kind: type[ProfileSnapshots] = ProfileSnapshots
    ) -> ProfileWorker:
        nc = await connect(self.urls, name=worker_id)
        events = self.stream(nc)
        await events.ensure_stream()
        leases = await PartitionLeases.open(
            nc,
            worker_id=worker_id,
            partitions=self.partitions,
            bucket=self.names.leases,
            replicas=self.replicas,
            ttl_s=TTL_S,
            heartbeat_s=HEARTBEAT_S,
        )
        snapshots = await self.snapshots(nc, snapshots_kind)
        worker = ProfileWorker(events, leases, snapshots, TOPICS, CONFIG, DIMENSION, batch=64)
        await worker.start()
        self.running[worker_id] = (worker, nc)
        return worker

    async def crash(self, worker_id: str) -> None:
        """What a killed process does: nothing more (no ack, no release), connection gone."""
        worker, nc = self.running.pop(worker_id)
        await worker.stop(release=False)
        await nc.close()

    async def stop_all(self) -> None:
        for worker, nc in self.running.values():
            await worker.stop(release=False)
            await nc.close()
        self.running.clear()


class DyingBeforePosition(ProfileSnapshots):
    """Once ``dying`` is set, a batch's snapshots are written but the applied position never
    moves (the process died between the two writes): the next owner reads those events again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dying = False
        self.stalled: set[int] = set()

    async def put_position(self, partition: int, position: Position, expected_revision: int | None) -> int:
        if self.dying:
            self.stalled.add(partition)
            await asyncio.Event().wait()  # until the crash cancels it
        return await super().put_position(partition, position, expected_revision)


@contextlib.asynccontextmanager
async def workers_of(
    request: pytest.FixtureRequest, urls: list[str], partitions: int, replicas: int
) -> AsyncIterator[Workers]:
    tag = request.node.name.upper()[:30]
    names = Names(f"T_{tag}", f"t.{tag.lower()}", f"TL_{tag}", f"TP_{tag}")
    workers = Workers(urls, names, partitions, replicas)
    try:
        yield workers
    finally:
        await workers.stop_all()


async def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout_s, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - began


async def wait_for_async(
    value: Callable[[], Awaitable[Any]], expected: Any, timeout_s: float, what: str
) -> None:
    began = time.monotonic()
    while (got := await value()) != expected:
        assert time.monotonic() - began < timeout_s, f"{what}: {got!r}, not {expected!r}, after {timeout_s} s"
        await asyncio.sleep(0.05)


async def converge(snapshots: ProfileSnapshots, ledger: Ledger, timeout_s: float) -> dict[str, UserProfile]:
    """Wait until every user's snapshot covers the user's last acked event; the profiles."""
    began = time.monotonic()
    last = ledger.last_seq_by_user()
    while True:
        got = dict(zip(last, await asyncio.gather(*(snapshots.get(u) for u in last)), strict=True))
        behind = [u for u, (s, _) in got.items() if s is None or s.applied_seq < last[u]]
        if not behind:
            return {u: s.profile for u, (s, _) in got.items() if s is not None}
        assert time.monotonic() - began < timeout_s, f"{len(behind)} users behind after {timeout_s} s"
        await asyncio.sleep(0.1)


async def publish(stream: EventStream, ledger: Ledger, batch: list[EventMessage]) -> list[Published]:
    published = await stream.publish([m.to_stream() for m in batch])
    ledger.record(batch, published)
    return published


async def assert_reads(snapshots: ProfileSnapshots, ledger: Ledger, timeout_s: float) -> None:
    """Once every partition's position has passed its last acked event: each user's seen item
    ids are the distinct items of the user's events, and the item counts are the positives
    (item, type not negative) of the distinct events, as the embedded EventLog has them."""
    last = ledger.last_seq_by_partition()
    began = time.monotonic()
    while any([seq > (await snapshots.position(p))[0].seq for p, seq in last.items()]):
        assert time.monotonic() - began < timeout_s, f"positions behind after {timeout_s} s"
        await asyncio.sleep(0.1)
    events = [m.event for m in ledger.messages.values()]
    positives = collections.Counter(e.item_id for e in events if e.item_id and e.type not in NEGATIVE_TYPES)
    assert await snapshots.item_counts() == positives
    assert any(e.type in NEGATIVE_TYPES for e in events) and max(positives.values()) > 1
    for user in {e.user_id for e in events}:
        snapshot, _ = await snapshots.get(user)
        assert snapshot is not None
        seen = sorted({e.item_id for e in events if e.user_id == user and e.item_id})
        assert list(snapshot.seen_item_ids) == seen, user


def distinct_events(ledger: Ledger) -> collections.Counter[str]:
    return collections.Counter(m.event.user_id for m in ledger.messages.values())


def assert_replays(profiles: dict[str, UserProfile], ledger: Ledger, users: Iterable[str]) -> None:
    counts = distinct_events(ledger)
    for user in users:
        assert profiles[user].event_count == counts[user], user
        assert_same_profile(profiles[user], ledger.replay(user))


# ---------------------------------------------------------------------------------------- tests


async def test_profiles_equal_a_replay_of_the_stream(
    nats_node: LocalNatsCluster, nc: NatsClient, request: pytest.FixtureRequest
) -> None:
    partitions = 4
    async with workers_of(request, nats_node.client_urls, partitions, replicas=1) as workers:
        stream = workers.stream(nc)
        await stream.ensure_stream()
        ledger = Ledger(partitions)
        events = Events(users=6)
        await publish(stream, ledger, events.batch(100))  # a backlog before the worker starts
        worker = await workers.start("w1")
        for _ in range(5):
            await publish(stream, ledger, events.batch(20))

        # a resend stored a second time (as past the duplicate window: another message id) and
        # a message of no known format: the first is skipped as remembered, the second skipped
        resent = next(reversed(ledger.messages.values()))
        subject = stream.subject_for(resent.event.user_id)
        await nc.jetstream().publish(subject, encode(resent), headers={api.Header.MSG_ID: "resend"})
        await nc.jetstream().publish(subject, b"\x09garbage", headers={api.Header.MSG_ID: "garbage"})
        await publish(stream, ledger, events.batch(20))

        snapshots = await workers.snapshots(nc)
        profiles = await converge(snapshots, ledger, timeout_s=20)
        assert_replays(profiles, ledger, events.users)
        await assert_reads(snapshots, ledger, timeout_s=10)  # the resend not counted again
        assert (worker.stats.applied, worker.stats.skipped_duplicate, worker.stats.malformed) == (220, 1, 1)
        assert sorted(worker.applying()) == list(range(partitions))
        assert sorted(
            await snapshots.users(0) + await snapshots.users(1) + await snapshots.users(2)
        ) == sorted(u for u in events.users if partition_of(u, partitions) < 3)


async def test_every_event_applied_once_across_a_node_kill_and_a_worker_crash(
    nats_trio: LocalNatsCluster, request: pytest.FixtureRequest
) -> None:
    partitions = 8
    async with workers_of(request, nats_trio.client_urls, partitions, replicas=3) as workers:
        nc = await connect(nats_trio.client_urls, name="test")
        stream = workers.stream(nc)
        await stream.ensure_stream()
        ledger = Ledger(partitions)
        events = Events(users=24)
        survivor = await workers.start("w1")
        doomed = await workers.start("w2", DyingBeforePosition)
        await wait_for(
            lambda: len(survivor.applying()) == len(doomed.applying()) == 4, 3 * HEARTBEAT_S, "4 and 4"
        )

        async def ingest(batches: int) -> None:
            for _ in range(batches):
                await publish(stream, ledger, events.batch(25))
                await asyncio.sleep(0.05)

        info = (await stream.js.stream_info(stream.stream)).cluster
        assert info is not None and info.leader is not None
        stream_leader = int(info.leader.removeprefix("n"))
        publishers = [asyncio.create_task(ingest(14)) for _ in range(2)]
        await asyncio.sleep(0.5)

        # w2 writes a batch's snapshots and dies before moving the partition's position
        assert isinstance(doomed.snapshots, DyingBeforePosition)
        doomed.snapshots.dying = True
        await wait_for(lambda: bool(doomed.snapshots.stalled), 5.0, "w2 writing a batch")
        orphaned = set(doomed.applying())
        backlog = {p: s for p, s in ledger.last_seq_by_partition().items() if p in orphaned}
        crashed_at = time.monotonic()
        await workers.crash("w2")
        # and the stream's leader node (the worst to lose) dies while the survivor takes over
        await asyncio.sleep(0.3)
        nats_trio.kill(stream_leader)
        await wait_for(
            lambda: all(survivor.progress.get(p, 0) >= seq for p, seq in backlog.items()),
            TTL_S + 20.0,
            "the crashed worker's partitions applied again",
        )
        taken_over = time.monotonic() - crashed_at
        await asyncio.gather(*publishers)
        print(
            f"\ntakeover: {taken_over:.2f} s from the worker crash until the survivor had applied "
            f"everything acked before it on the crashed worker's {len(orphaned)} partitions (lease TTL "
            f"{TTL_S:.0f} s, heartbeat {HEARTBEAT_S:.0f} s; the stream leader's node SIGKILLed 0.3 s "
            f"after the crash)"
        )

        # every acked event again: all duplicates within JetStream's window, stored once
        acked = list(ledger.messages.values())
        for start in range(0, len(acked), 100):
            again = await stream.publish([m.to_stream() for m in acked[start : start + 100]])
            assert all(p.duplicate for p in again)
            assert [p.seq for p in again] == [
                ledger.seq[m.event.event_id] for m in acked[start : start + 100]
            ]

        snapshots = await workers.snapshots(nc)
        profiles = await converge(snapshots, ledger, timeout_s=30)
        assert len(ledger.messages) == 2 * 14 * 25
        assert_replays(profiles, ledger, events.users)
        await assert_reads(snapshots, ledger, timeout_s=10)
        # the survivor may be re-taking a lease that lapsed while the bucket elected a leader
        await wait_for(lambda: len(survivor.applying()) == partitions, TTL_S + 3 * HEARTBEAT_S, "all 8")
        assert survivor.stats.skipped_applied > 0  # what w2 had written, read again and skipped
        await nc.close()


async def test_a_joining_worker_takes_its_share_and_no_event_is_applied_twice_or_skipped(
    nats_node: LocalNatsCluster, nc: NatsClient, request: pytest.FixtureRequest
) -> None:
    partitions = 16
    async with workers_of(request, nats_node.client_urls, partitions, replicas=1) as workers:
        stream = workers.stream(nc)
        await stream.ensure_stream()
        ledger = Ledger(partitions)
        events = Events(users=40)
        first = [await workers.start("w1"), await workers.start("w2")]

        async def ingest(batches: int) -> None:
            for _ in range(batches):
                await publish(stream, ledger, events.batch(25))
                await asyncio.sleep(0.1)

        publishing = asyncio.create_task(ingest(30))
        await asyncio.sleep(1.0)
        third = await workers.start("w3")
        everyone = [*first, third]
        await wait_for(lambda: [len(w.applying()) for w in everyone] == [6, 5, 5], 4 * HEARTBEAT_S, "6/5/5")
        await publishing

        snapshots = await workers.snapshots(nc)
        profiles = await converge(snapshots, ledger, timeout_s=20)
        assert_replays(profiles, ledger, events.users)
        await assert_reads(snapshots, ledger, timeout_s=10)
        assert sum(w.stats.applied for w in everyone) == len(ledger.messages) == 750
        assert third.stats.applied > 0


async def test_counts_are_exact_when_a_worker_dies_between_its_snapshots_and_its_position(
    nats_node: LocalNatsCluster, nc: NatsClient, request: pytest.FixtureRequest
) -> None:
    """The first worker writes its batches' snapshots, one of them past a remembered resend, and
    dies before any position write: the next owner reads it all again, skips it in the profiles
    and counts it in the positions, the resend not."""
    partitions = 2
    async with workers_of(request, nats_node.client_urls, partitions, replicas=1) as workers:
        stream = workers.stream(nc)
        await stream.ensure_stream()
        ledger = Ledger(partitions)
        events = Events(users=5, seed=3)
        await publish(stream, ledger, events.batch(40))
        # a positive item event stored again past the duplicate window (another message id)
        resent = next(m for m in ledger.messages.values() if m.event.type == EventType.CLICK)
        subject = stream.subject_for(resent.event.user_id)
        await nc.jetstream().publish(subject, encode(resent), headers={api.Header.MSG_ID: "resend"})

        doomed = await workers.start("w1", DyingBeforePosition)
        assert isinstance(doomed.snapshots, DyingBeforePosition)
        doomed.snapshots.dying = True
        stalled = doomed.snapshots.stalled
        await wait_for(lambda: len(stalled) == partitions, 5.0, "w1 stalled before both positions")
        assert (doomed.stats.applied, doomed.stats.skipped_duplicate) == (40, 1)
        await workers.crash("w1")

        survivor = await workers.start("w2")
        await publish(stream, ledger, events.batch(20))
        snapshots = await workers.snapshots(nc)
        assert_replays(await converge(snapshots, ledger, timeout_s=TTL_S + 10), ledger, events.users)
        await assert_reads(snapshots, ledger, timeout_s=10)
        assert survivor.stats.skipped_applied == 41  # w1's events and its resend, read again
        assert survivor.stats.applied == 20


async def test_forgetting_a_user_takes_their_counts_out_once_across_a_crash(
    nats_node: LocalNatsCluster, nc: NatsClient, request: pytest.FixtureRequest
) -> None:
    """A forget message among a user's events: the first worker writes the batch's snapshots
    (the user forgotten) and dies before the position write; the next owner reads it all again.
    The user's events before the message are gone from the profile, the counts and the stream;
    those after it build a new profile; everyone else is untouched."""
    partitions = 2
    async with workers_of(request, nats_node.client_urls, partitions, replicas=1) as workers:
        stream = workers.stream(nc)
        await stream.ensure_stream()
        ledger = Ledger(partitions)
        events = Events(users=5, seed=4)
        await publish(stream, ledger, events.batch(40))
        victim = events.users[0]
        (forget,) = await stream.publish([ForgetMessage(victim, "r1").to_stream()])
        await publish(stream, ledger, events.batch(20))
        after = [
            m
            for m in ledger.messages.values()
            if m.event.user_id == victim and ledger.seq[m.event.event_id] > forget.seq
        ]
        before = [
            m
            for m in ledger.messages.values()
            if m.event.user_id == victim and ledger.seq[m.event.event_id] < forget.seq
        ]
        assert after and before and any(positive_item(m.event) for m in before)

        doomed = await workers.start("w1", DyingBeforePosition)
        assert isinstance(doomed.snapshots, DyingBeforePosition)
        doomed.snapshots.dying = True
        await wait_for(
            lambda: len(doomed.snapshots.stalled) == partitions, 5.0, "w1 stalled before both positions"
        )
        assert doomed.stats.forgotten == 1
        await workers.crash("w1")
        survivor = await workers.start("w2")

        for message in before:  # as if never sent
            del ledger.messages[message.event.event_id], ledger.seq[message.event.event_id]
        snapshots = await workers.snapshots(nc)
        assert_replays(await converge(snapshots, ledger, timeout_s=TTL_S + 10), ledger, events.users)
        await assert_reads(snapshots, ledger, timeout_s=10)  # the counts, the seen items
        assert survivor.stats.forgotten == 0  # read again under its own snapshot: counted, not applied
        snapshot, _ = await snapshots.get(victim)
        assert snapshot is not None and snapshot.profile is not None
        assert snapshot.counted == collections.Counter(i for m in after if (i := positive_item(m.event)))
        # a forget kept in it is below the position: never read (nor taken out) again
        position, _ = await snapshots.position(partition_of(victim, partitions))
        assert all(seq <= position.seq for seq in snapshot.forgets)
        await wait_for_async(lambda: stream.count_user(victim), len(after), 5.0, "the victim's purge")
