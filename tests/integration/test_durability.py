"""Crash durability of the all-in-one process: the event log is the source of truth
(docs/interest-model.md §6.1).

`driftwise serve` runs as a subprocess in its own process group on a temporary data dir (Milvus
Lite in it, the session's Triton shared so restarts are quick). A client streams events
(StreamEvents, plus concurrent IngestEvents batches) for 20 users; after a seeded random delay the
whole process group gets SIGKILL, Milvus Lite's `milvus` child included, five times. After each
kill the SQLite log is read directly: every acknowledged event must be in it. The server is
restarted on the same data and the client retries: it resends some acknowledged events (they must
come back as duplicates) and every sent-but-unacknowledged one (a duplicate exactly when the log
already had it). At the end every event is in the log exactly once, the derived state (profiles,
item_stats) agrees with the log, and every user's profile equals a clean replay of the log.

A SIGKILL tests a process crash, not a power cut: what was written reaches the disk from the page
cache either way, so this does not exercise fsync (synchronous=FULL covers that).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from driftwise.api.convert import profile_to_proto, timestamp
from driftwise.datasets.movielens import Movie
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.model.events import NEGATIVE_TYPES, EventType
from driftwise_client.v1 import common_pb2, ingest_service_pb2, profile_service_pb2
from tests.integration.support import Client, app_and_client, settings_for

pytestmark = pytest.mark.integration

SEED = 20261122
KILLS = 5
USERS = [f"durable-user-{i:02d}" for i in range(20)]
CATALOGUE = 50  # the first MovieLens movies
STREAM_WINDOW = 32  # stream requests sent ahead of their acks
BATCH_WRITERS = 2  # concurrent IngestEvents callers beside the stream
RESEND_ACKED = 12  # acknowledged events the client resends after each restart
TYPES = [
    (common_pb2.EVENT_TYPE_VIEW, 5),
    (common_pb2.EVENT_TYPE_CLICK, 3),
    (common_pb2.EVENT_TYPE_LIKE, 2),
    (common_pb2.EVENT_TYPE_SHARE, 1),
    (common_pb2.EVENT_TYPE_PURCHASE, 1),
    (common_pb2.EVENT_TYPE_DISLIKE, 1),
    (common_pb2.EVENT_TYPE_SKIP, 2),
    (common_pb2.EVENT_TYPE_HIDE, 1),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in the process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def member_names(pids: list[int]) -> list[str]:
    names = []
    for pid in pids:
        with contextlib.suppress(OSError):
            names.append(Path(f"/proc/{pid}/comm").read_text().strip())
    return names


class ServeProcess:
    """`driftwise serve` in its own process group, on a fresh port each start."""

    def __init__(self, data_dir: Path, triton_url: str) -> None:
        self.data_dir = data_dir
        self.triton_url = triton_url
        self.log_path = data_dir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts: list[float] = []  # seconds from Popen to SERVING
        self.killed_members: list[list[str]] = []  # what each SIGKILL took down

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        assert self.proc is None
        self.port = free_port()
        env = {
            **os.environ,
            "DRIFTWISE_DATA_DIR": str(self.data_dir),
            "DRIFTWISE_SERVER__PORT": str(self.port),
            "DRIFTWISE_TRITON__URL": self.triton_url,
        }
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(f"\n---- start on port {self.port}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "driftwise.cli", "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: SIGKILL takes Milvus Lite too
            )
        await self._wait_serving(started + 120)
        self.starts.append(time.monotonic() - started)

    async def _wait_serving(self, deadline: float) -> None:
        assert self.proc is not None
        async with grpc.aio.insecure_channel(self.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="driftwise.v1.IngestService")
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(grpc.aio.AioRpcError):
                    reply = await health.Check(request, timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"serve not SERVING in time:\n{self.log_tail()}")
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the whole process group and wait until every member is gone."""
        assert self.proc is not None
        pgid = self.proc.pid
        self.killed_members.append(member_names(group_members(pgid)))
        os.killpg(pgid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._wait_group_gone(pgid, 10)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM, as an operator stops it; the group must be gone after."""
        assert self.proc is not None
        pgid = self.proc.pid
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            raise
        assert code == 0, self.log_tail()
        self._wait_group_gone(pgid, 10)
        self.proc = None

    def ensure_dead(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            self._wait_group_gone(self.proc.pid, 10)
            self.proc = None

    @staticmethod
    def _wait_group_gone(pgid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while members := group_members(pgid):
            if time.monotonic() > deadline:
                raise AssertionError(f"still alive after the group was stopped: {member_names(members)}")
            time.sleep(0.02)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@dataclass(frozen=True)
class Round:
    """What one kill did, for the figures."""

    kill_after_s: float
    sent: int  # events sent in the round
    acked_before_kill: int
    unacked_at_kill: int
    unacked_but_logged: int  # recorded, the ack lost with the process: duplicates on resend
    acked_resent: int  # acknowledged events resent after the restart (all duplicates)
    restart_s: float
    killed: tuple[str, ...]  # the process group's members the SIGKILL took down


@dataclass
class Ledger:
    """What the client sent and what the server acknowledged."""

    sent: dict[str, common_pb2.Event] = field(default_factory=dict)
    acked: dict[str, ingest_service_pb2.EventAck] = field(default_factory=dict)  # first ack per id
    errors: list[str] = field(default_factory=list)
    fresh_duplicates: list[str] = field(default_factory=list)  # first sends answered "duplicate"

    def send(self, event: common_pb2.Event) -> None:
        self.sent[event.event_id] = event

    def ack(self, ack: ingest_service_pb2.EventAck) -> None:
        if ack.event_id not in self.acked:
            self.acked[ack.event_id] = ack

    @property
    def unacked(self) -> list[str]:
        return [i for i in self.sent if i not in self.acked]


class Traffic:
    """Item events for the users with unique ids and strictly increasing event times."""

    def __init__(self, rng: random.Random, item_ids: list[str], base_time: float) -> None:
        self.rng = rng
        self.item_ids = item_ids
        self.base_time = base_time
        self.counter = itertools.count()
        self.types, self.weights = zip(*TYPES, strict=True)

    def next_event(self) -> common_pb2.Event:
        k = next(self.counter)
        type_ = self.rng.choices(self.types, self.weights)[0]
        event = common_pb2.Event(
            event_id=f"dur-{k:06d}",
            user_id=self.rng.choice(USERS),
            type=type_,
            item_id=self.rng.choice(self.item_ids),
            event_time=timestamp(self.base_time + k * 0.01),
        )
        if type_ == common_pb2.EVENT_TYPE_VIEW:
            event.dwell.CopyFrom(duration_pb2.Duration(seconds=self.rng.randrange(1, 600)))
        return event


async def stream_until_killed(client: Client, traffic: Traffic, ledger: Ledger) -> None:
    """StreamEvents with up to STREAM_WINDOW events in flight, until the stream breaks."""
    slots = asyncio.Semaphore(STREAM_WINDOW)

    async def requests() -> AsyncIterator[ingest_service_pb2.StreamEventsRequest]:
        while True:
            await slots.acquire()
            event = traffic.next_event()
            ledger.send(event)
            yield ingest_service_pb2.StreamEventsRequest(event=event)

    call = client.ingest.StreamEvents(requests())
    with contextlib.suppress(grpc.aio.AioRpcError):
        async for reply in call:
            slots.release()
            if reply.WhichOneof("result") == "error":
                ledger.errors.append(f"{reply.event_id}: {reply.error}")
            else:
                if reply.ack.duplicate:
                    ledger.fresh_duplicates.append(reply.event_id)
                ledger.ack(reply.ack)


async def batches_until_killed(client: Client, traffic: Traffic, ledger: Ledger, rng: random.Random) -> None:
    """IngestEvents batches of 1-8 events, one at a time, until a call fails."""
    while True:
        events = [traffic.next_event() for _ in range(rng.randint(1, 8))]
        for event in events:
            ledger.send(event)
        try:
            reply = await client.ingest.IngestEvents(
                ingest_service_pb2.IngestEventsRequest(events=events), timeout=15
            )
        except grpc.aio.AioRpcError:
            return
        for ack in reply.acks:
            if ack.duplicate:
                ledger.fresh_duplicates.append(ack.event_id)
            ledger.ack(ack)


async def resend_stream(client: Client, events: list[common_pb2.Event]) -> list[ingest_service_pb2.EventAck]:
    async def requests() -> AsyncIterator[ingest_service_pb2.StreamEventsRequest]:
        for event in events:
            yield ingest_service_pb2.StreamEventsRequest(event=event)

    acks = []
    async for reply in client.ingest.StreamEvents(requests(), timeout=30):
        assert reply.WhichOneof("result") == "ack", reply
        acks.append(reply.ack)
    return acks


async def resend_batch(client: Client, events: list[common_pb2.Event]) -> list[ingest_service_pb2.EventAck]:
    if not events:
        return []
    reply = await client.ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(events=events), timeout=30
    )
    return list(reply.acks)


def read_log(data_dir: Path) -> list[tuple[str, str, int, str]]:
    """(event_id, user_id, type, item_id) of every logged event, in arrival order; server stopped."""
    with contextlib.closing(sqlite3.connect(data_dir / "events.sqlite")) as db:
        return list(db.execute("SELECT event_id, user_id, type, item_id FROM events ORDER BY seq"))


def assert_profiles_match(served: profile_service_pb2.Profile, replayed: profile_service_pb2.Profile) -> None:
    """GetProfile of the crashed-and-restarted server against the replay, rendered the same way
    (update_time is the server clock of the last write, not part of the log)."""
    assert served.user_id == replayed.user_id
    assert served.version == replayed.version and served.event_count == replayed.event_count
    assert [r.event_id for r in served.recent_events] == [r.event_id for r in replayed.recent_events]
    for a, b in zip(served.recent_events, replayed.recent_events, strict=True):
        assert (a.type, a.item_id, a.text, a.event_time) == (b.type, b.item_id, b.text, b.event_time)
        assert a.weight == pytest.approx(b.weight, rel=1e-6)
    assert [layer.layer for layer in served.layers] == [layer.layer for layer in replayed.layers]
    for a, b in zip(served.layers, replayed.layers, strict=True):
        assert a.mass == pytest.approx(b.mass, rel=1e-5, abs=1e-9), (served.user_id, a.layer)
        assert a.last_event_time == b.last_event_time
        served_topics = {t.topic: (t.weight, t.affinity) for t in a.top_topics}
        replayed_topics = {t.topic: (t.weight, t.affinity) for t in b.top_topics}
        assert served_topics.keys() == replayed_topics.keys()
        for topic, (weight, affinity) in served_topics.items():
            assert weight == pytest.approx(replayed_topics[topic][0], rel=1e-4, abs=1e-6), topic
            assert affinity == pytest.approx(replayed_topics[topic][1], rel=1e-4, abs=1e-6), topic


async def test_acknowledged_events_survive_sigkill_exactly_once(
    triton: LocalTritonServer, movies: list[Movie], tmp_path: Path
) -> None:
    began = time.monotonic()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    catalogue = movies[:CATALOGUE]
    delays = random.Random(SEED)
    traffic_rng = random.Random(SEED + 1)
    traffic = Traffic(traffic_rng, [m.item_id for m in catalogue], base_time=time.time() - 3600)
    as_of = float(int(time.time()) + 60)  # GetProfile evaluates decayed masses at this fixed time
    ledger = Ledger()
    rounds: list[Round] = []
    server = ServeProcess(data_dir, triton.grpc_url)
    try:
        await server.start()
        client = Client.connect(server.target)
        await client.upsert_movies(catalogue)

        for kill in range(KILLS):
            sent_before, acked_before = len(ledger.sent), len(ledger.acked)
            tasks = [asyncio.create_task(stream_until_killed(client, traffic, ledger))]
            tasks += [
                asyncio.create_task(batches_until_killed(client, traffic, ledger, traffic_rng))
                for _ in range(BATCH_WRITERS)
            ]
            delay = delays.uniform(0.3, 2.0)
            await asyncio.sleep(delay)
            server.kill()
            _, pending = await asyncio.wait(tasks, timeout=15)
            for task in pending:  # the stream must notice the dead server by itself
                task.cancel()
            assert not pending, "the client did not notice the killed server"
            for task in tasks:
                task.result()
            await client.channel.close()

            # right after the crash, before any retry: everything acknowledged is in the log
            logged = {event_id for event_id, *_ in read_log(data_dir)}
            missing = [i for i in ledger.acked if i not in logged]
            assert not missing, f"kill {kill + 1}: acknowledged events lost: {missing[:10]}"
            acked_at_kill = len(ledger.acked) - acked_before
            unacked = ledger.unacked
            recorded_unacked = {i for i in unacked if i in logged}
            assert logged <= ledger.sent.keys(), "the log holds events nobody sent"

            await server.start()
            client = Client.connect(server.target)
            # the client's retry: some acknowledged events (half by stream, half by batch) ...
            again = traffic_rng.sample(sorted(ledger.acked), min(RESEND_ACKED, len(ledger.acked)))
            half = len(again) // 2
            acks = await resend_stream(client, [ledger.sent[i] for i in again[:half]])
            acks += await resend_batch(client, [ledger.sent[i] for i in again[half:]])
            assert [a.event_id for a in acks] == again
            assert all(a.duplicate for a in acks), [a.event_id for a in acks if not a.duplicate]
            resent_duplicates = sum(a.duplicate for a in acks)
            # ... and every event it sent without an ack: a duplicate exactly if the log had it
            acks = await resend_batch(client, [ledger.sent[i] for i in unacked])
            assert [a.event_id for a in acks] == unacked
            for a in acks:
                assert a.duplicate == (a.event_id in recorded_unacked), a.event_id
                ledger.ack(a)
            rounds.append(
                Round(
                    kill_after_s=round(delay, 2),
                    sent=len(ledger.sent) - sent_before,
                    acked_before_kill=acked_at_kill,
                    unacked_at_kill=len(unacked),
                    unacked_but_logged=len(recorded_unacked),
                    acked_resent=resent_duplicates,
                    restart_s=round(server.starts[-1], 2),
                    killed=tuple(sorted(set(server.killed_members[-1]))),
                )
            )

        assert not ledger.errors, ledger.errors[:10]
        assert not ledger.fresh_duplicates, (
            f"first sends answered as duplicates: {ledger.fresh_duplicates[:10]}"
        )
        assert ledger.acked.keys() == ledger.sent.keys()  # after the retries, every event is acknowledged

        served = {}
        for user in USERS:
            request = profile_service_pb2.GetProfileRequest(
                user_id=user, top_topics=50, recent_events=100, as_of_time=timestamp(as_of)
            )
            served[user] = (await client.profiles.GetProfile(request)).profile
        await client.channel.close()
        server.stop()

        # the log: every event exactly once, nothing else
        log = read_log(data_dir)
        ids = Counter(event_id for event_id, *_ in log)
        assert not [i for i, n in ids.items() if n > 1], "an event id is logged twice"
        assert ids.keys() == ledger.acked.keys()
        for event_id, user, type_, item in log:
            sent = ledger.sent[event_id]
            assert (user, type_, item) == (sent.user_id, sent.type, sent.item_id)
        with contextlib.closing(sqlite3.connect(data_dir / "events.sqlite")) as db:
            versions = dict(db.execute("SELECT user_id, version FROM profiles"))
            positives = dict(db.execute("SELECT item_id, positives FROM item_stats"))
        per_user = Counter(user for _, user, _, _ in log)
        assert versions == dict(per_user), "a profile version is not its user's event count"
        expected_positives = Counter(item for _, _, t, item in log if EventType(t) not in NEGATIVE_TYPES)
        assert positives == dict(expected_positives), "item_stats disagrees with the log"

        # every profile equals a clean replay of the log: the stored snapshot, array by array,
        # and what GetProfile served after the last crash, rendered from the replay
        async with app_and_client(settings_for(data_dir, triton)) as (app, _):
            engine = app.engine
            for user in USERS:
                stored = await engine.get_profile(user)
                rebuilt = await engine.rebuild_profile(user)
                assert rebuilt.version == stored.version == per_user[user]
                assert rebuilt.event_count == stored.event_count == per_user[user]
                assert [r.event_id for r in rebuilt.recent] == [r.event_id for r in stored.recent]
                for layer, state in stored.layers.items():
                    again_state = rebuilt.layers[layer]
                    assert again_state.last_time == state.last_time
                    assert again_state.mass == pytest.approx(state.mass, rel=1e-6), (user, layer)
                    np.testing.assert_allclose(again_state.vector, state.vector, rtol=1e-4, atol=1e-5)
                    np.testing.assert_allclose(again_state.affinity, state.affinity, rtol=1e-4, atol=1e-5)
                view = engine.explain_profile(rebuilt, as_of, top_topics=50, recent=100)
                replayed = profile_to_proto(view, user_id=user)
                assert_profiles_match(served[user], replayed)
    finally:
        server.ensure_dead()

    elapsed = time.monotonic() - began
    print(
        f"\ndurability: {KILLS} kills, {len(ledger.sent)} events sent, "
        f"{sum(r.acked_before_kill for r in rounds)} acked before their kill, "
        f"{sum(r.unacked_at_kill for r in rounds)} unacked at a kill "
        f"({sum(r.unacked_but_logged for r in rounds)} of them already logged), "
        f"{sum(r.acked_resent for r in rounds)} acked events resent (all duplicates), "
        f"{len(log)} events logged, starts {[round(s, 1) for s in server.starts]} s, {elapsed:.1f} s"
    )
    for i, r in enumerate(rounds, 1):
        print(f"  kill {i}: {r}")
