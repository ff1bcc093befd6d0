"""EventStream against real nats-server: idempotent publishes, partition readers, and no acked
event lost or doubled when a node of a 3-node cluster dies mid-publish."""

from __future__ import annotations

import asyncio
import collections
import time
import uuid

import pytest
from nats.aio.client import Client as NatsClient
from nats.js import api

from driftwise.cluster import partition_reader
from driftwise.cluster.event_stream import TRANSIENT_ERRORS, Event, EventStream, Published, ReaderLost
from driftwise.cluster.partition_reader import event_id_of
from driftwise.cluster.partitions import partition_of, user_key
from driftwise_testing.nats_cluster import LocalNatsCluster

pytestmark = pytest.mark.integration

PARTITIONS = 16


def events(count: int, users: int = 50) -> list[Event]:
    return [Event(uuid.uuid4().hex, f"user-{i % users}", f"payload {i}".encode()) for i in range(count)]


async def all_event_ids(stream: EventStream) -> list[str]:
    """Every stored message's event id, read by an ephemeral consumer over all partitions."""
    info = await stream.js.stream_info(stream.stream)
    subscription = await stream.js.pull_subscribe(
        f"{stream.subject_prefix}.>",
        stream=stream.stream,
        config=api.ConsumerConfig(ack_policy=api.AckPolicy.NONE),
    )
    ids: list[str] = []
    retries = 20  # a consumer made just after a node came back may have no leader for a moment
    while len(ids) < info.state.messages:
        try:
            messages = await subscription.fetch(1000, timeout=5)
        except TRANSIENT_ERRORS:
            retries -= 1
            assert retries > 0, "the reading consumer never answered"
            await asyncio.sleep(0.1)
            continue
        ids.extend(event_id_of((message.headers or {})[api.Header.MSG_ID]) for message in messages)
    await subscription.unsubscribe()
    return ids


async def replicas_current(stream: EventStream, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        cluster = (await stream.js.stream_info(stream.stream)).cluster
        assert cluster is not None
        replicas = cluster.replicas or []
        if len(replicas) == 2 and all(peer.current and not peer.offline for peer in replicas):
            return
        assert time.monotonic() < deadline, f"replicas not current: {replicas}"
        await asyncio.sleep(0.1)


async def test_a_resend_is_a_duplicate_stored_once_on_its_partition(nc: NatsClient) -> None:
    stream = EventStream(nc, partitions=PARTITIONS, stream="T_IDEMPOTENT", subject_prefix="t.idempotent")
    await stream.ensure_stream()
    await stream.ensure_stream()  # idempotent
    batch = events(20)

    first = await stream.publish(batch)
    again = await stream.publish(batch)

    assert [p.duplicate for p in first] == [False] * 20
    assert again == [Published(p.seq, True) for p in first]
    info = await nc.jetstream().stream_info("T_IDEMPOTENT")
    assert info.state.messages == 20
    for event, published in zip(batch, first, strict=True):
        stored = await nc.jetstream().get_msg("T_IDEMPOTENT", seq=published.seq)
        partition = partition_of(event.user_id, PARTITIONS)
        assert stored.subject == f"t.idempotent.{partition}.{user_key(event.user_id)}"
        assert stored.data == event.payload


async def test_two_users_may_send_the_same_event_id(nc: NatsClient) -> None:
    # event ids are unique per user: the stream-wide duplicate window must not merge two users'
    stream = EventStream(nc, partitions=PARTITIONS, stream="T_SAME_ID", subject_prefix="t.same_id")
    await stream.ensure_stream()
    batch = [Event("e-1", "alice", b"alice's"), Event("e-1", "bob", b"bob's")]

    first = await stream.publish(batch)
    again = await stream.publish(batch)

    assert [p.duplicate for p in first] == [False, False]
    assert again == [Published(p.seq, True) for p in first]
    stored = [await nc.jetstream().get_msg("T_SAME_ID", seq=p.seq) for p in first]
    assert [m.data for m in stored] == [b"alice's", b"bob's"]


async def test_purging_a_user_removes_their_events_and_no_one_elses(nc: NatsClient) -> None:
    stream = EventStream(nc, partitions=1, stream="T_PURGE", subject_prefix="t.purge")
    await stream.ensure_stream()
    batch = events(30, users=3)  # one partition: the users' events are interleaved in it
    await stream.publish(batch)
    gone = batch[0].user_id

    assert await stream.purge_user(gone) == 10

    reader = await stream.reader(0, start_seq=1)
    left = []
    while fetched := await reader.fetch(100, timeout_s=0.5):
        left.extend(fetched)
    await reader.close()
    assert [s.event_id for s in left] == [e.event_id for e in batch if e.user_id != gone]
    assert len(left) == 20


async def test_another_partition_count_is_refused(nc: NatsClient) -> None:
    await EventStream(nc, partitions=PARTITIONS, stream="T_COUNT", subject_prefix="t.count").ensure_stream()
    with pytest.raises(ValueError, match="16 partitions"):
        await EventStream(nc, partitions=8, stream="T_COUNT", subject_prefix="t.count").ensure_stream()


async def test_a_reader_reads_its_partition_in_order_from_a_position(nc: NatsClient) -> None:
    stream = EventStream(nc, partitions=PARTITIONS, stream="T_READER", subject_prefix="t.reader")
    await stream.ensure_stream()
    batch = [e for e in events(400) if partition_of(e.user_id, PARTITIONS) == 3][:15]
    published = await stream.publish(batch[:10])

    reader = await stream.reader(3, start_seq=1, token=1)
    fetched = await reader.fetch(batch=10)
    assert [e.event_id for e in fetched] == [e.event_id for e in batch[:10]]
    assert [e.seq for e in fetched] == [p.seq for p in published]
    assert {e.user_id for e in fetched} == {e.user_id for e in batch}
    await reader.close()  # applied 4 of them, then the worker died
    assert await nc.jetstream().consumers_info("T_READER") == []
    await stream.publish(batch[10:])

    # the next owner, from the 5th on: at once and in stream order, the newer events after
    reader = await stream.reader(3, start_seq=published[4].seq, token=2)
    resumed = await reader.fetch(batch=20, timeout_s=3.0)
    assert [e.event_id for e in resumed] == [e.event_id for e in batch[4:]]
    assert await reader.fetch(batch=10, timeout_s=0.2) == []
    await reader.close()


async def test_a_reader_whose_consumer_is_gone_says_so(
    nc: NatsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = EventStream(nc, partitions=PARTITIONS, stream="T_LOST", subject_prefix="t.lost")
    await stream.ensure_stream()
    reader = await stream.reader(0, start_seq=1)
    await nc.jetstream().delete_consumer("T_LOST", reader.consumer)  # as when its node dies
    monkeypatch.setattr(partition_reader, "_IDLE_CHECK_S", 0.0)
    with pytest.raises((ReaderLost, *TRANSIENT_ERRORS)):
        for _ in range(3):
            await reader.fetch(batch=10, timeout_s=0.2)
    await reader.close()


async def test_every_acked_event_is_stored_once_across_a_node_kill(nats_trio: LocalNatsCluster) -> None:
    stream = await EventStream.open(nats_trio.client_urls, partitions=PARTITIONS, replicas=3)
    try:
        acked: list[str] = []
        slowest = 0.0
        leader = (await stream.js.stream_info(stream.stream)).cluster
        assert leader is not None and leader.leader is not None

        async def publish_batches(count: int) -> None:
            nonlocal slowest
            for _ in range(count):
                batch = events(100)
                began = time.monotonic()
                await stream.publish(batch)  # raises if any event is not acked in 15 s
                slowest = max(slowest, time.monotonic() - began)
                acked.extend(e.event_id for e in batch)

        await publish_batches(5)
        killed = int(leader.leader.removeprefix("n"))  # the stream leader: the worst node to lose
        publishing = asyncio.create_task(publish_batches(40))
        await asyncio.sleep(0.05)
        nats_trio.kill(killed)
        await publishing
        await asyncio.to_thread(nats_trio.restart, killed)
        await publish_batches(5)
        await replicas_current(stream, timeout_s=10.0)  # the restarted node caught up from its store

        stored = collections.Counter(await all_event_ids(stream))
        assert set(stored) == set(acked)
        assert max(stored.values()) == 1
        # the leader election stalls publishing for seconds, not the 15 s deadline
        assert 0.5 < slowest < 12.0, slowest
    finally:
        await stream.close()
