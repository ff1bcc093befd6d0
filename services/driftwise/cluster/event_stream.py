"""The event log of cluster mode: one NATS JetStream stream, one subject per user partition.

Ingest publishes each event to ``driftwise.events.<partition>`` (the partition of its user id,
:func:`driftwise.cluster.partitions.partition_of`) and acknowledges its caller only after
JetStream's PubAck: the event is then stored on a quorum of the stream's replicas.

Idempotency: every message carries ``Nats-Msg-Id: <event_id>``; within the stream's duplicate
window (2 min by default) JetStream stores a resend once and answers ``duplicate=True`` with the
first copy's sequence. That is what makes retries safe: a publish whose ack was lost (a node died,
a leader election) is sent again until acked or the deadline passes. Past the window a resend
is stored again, so the applying side still checks: each profile snapshot records the last
stream sequence applied to it (see :mod:`driftwise.cluster.worker`).

Failover (measured, 3 nodes on loopback, R3): after SIGKILL of the stream's leader node,
publishes fail with ``NoStreamResponseError`` (or time out) for about 2-5 s until a new leader
is elected; :meth:`EventStream.publish` retries through that with backoff, up to
``publish_deadline_s`` (15 s), then raises :class:`PublishError`.

Reading: the worker holding a partition's lease (:mod:`driftwise.cluster.leases`) reads it
through a durable pull consumer of its own, ``driftwise-p<N>-<token>`` (the lease's fencing
token; filtered on the partition's subject, ack policy "all"), fetches batches in order and acks
the last one after applying it. The read position lives in JetStream as the consumers' ack
floors: a new owner's consumer starts after the highest ack floor of the partition's earlier
consumers, which it deletes. Why not one shared durable per partition: what the last owner had
fetched but not acked would come again only after ``ack_wait``, and until then the new owner
would be served newer events first, out of order (an applier skipping "at or below the last
applied sequence" would then skip the late ones); and a stale owner still fetching would take
events from the new owner's consumer. With a consumer per owner the new one starts in order at
once, and a stale owner's fetches and acks reach a deleted consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from driftwise.cluster.partitions import partition_of

__all__ = [
    "STREAM",
    "SUBJECT_PREFIX",
    "TRANSIENT_ERRORS",
    "Event",
    "EventStream",
    "PartitionReader",
    "PublishError",
    "Published",
    "StoredEvent",
    "connect",
]

_log = logging.getLogger(__name__)

STREAM = "DRIFTWISE_EVENTS"
SUBJECT_PREFIX = "driftwise.events"
_USER_HEADER = "Driftwise-User-Id"
_PARTITIONS_METADATA = "driftwise_partitions"
_STREAM_IN_USE = 10058  # JetStream: "stream name already in use with a different configuration"
_CONSUMER_PREFIX = "driftwise-p"
_CONSUMERS_PAGE = 256  # JetStream lists consumers in pages of this many
_FIRST_BACKOFF_S = 0.05
_MAX_BACKOFF_S = 1.0

# Errors that a leader election or a lost connection cause, and a resend can cure.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    TimeoutError,
)


class PublishError(RuntimeError):
    """Some events were not acked by JetStream before the deadline; none of them may be
    acknowledged to the caller (those that were acked are in ``published``)."""

    def __init__(self, message: str, published: list[Published | None]) -> None:
        super().__init__(message)
        self.published = published


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    user_id: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Published:
    seq: int
    """The stream sequence of the stored copy (the first one, for a duplicate)."""
    duplicate: bool
    """The stream already held this event id (an earlier send, perhaps an earlier try of this
    call whose ack was lost)."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    event_id: str
    user_id: str
    payload: bytes
    partition: int
    seq: int
    """Stream sequence: grows along the partition, so "applied up to seq" is a read position."""
    redelivered: bool
    msg: Msg = field(repr=False, compare=False)


async def connect(
    servers: Sequence[str],
    *,
    tls: ssl.SSLContext | None = None,
    credentials_file: Path | None = None,
    token: str | None = None,
    name: str = "driftwise",
) -> NatsClient:
    """A NATS connection that reconnects to any of ``servers`` forever (a node may die)."""
    options: dict[str, Any] = {}
    if tls is not None:
        options["tls"] = tls
    if credentials_file is not None:
        options["user_credentials"] = str(credentials_file)
    if token is not None:
        options["token"] = token
    return await nats.connect(
        servers=list(servers),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,  # the default 2 s would add to every failover
        connect_timeout=5,
        **options,
    )


class EventStream:
    """Publishes events to, and reads partitions of, the DRIFTWISE_EVENTS stream.

    Build it with :meth:`open` (connects, then ensures the stream exists with this config)."""

    def __init__(
        self,
        nc: NatsClient,
        *,
        partitions: int,
        replicas: int = 1,
        duplicate_window_s: float = 120.0,
        publish_deadline_s: float = 15.0,
        ack_timeout_s: float = 2.0,
        stream: str = STREAM,
        subject_prefix: str = SUBJECT_PREFIX,
        owns_connection: bool = False,
    ) -> None:
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.partitions = partitions
        self.replicas = replicas
        self.duplicate_window_s = duplicate_window_s
        self.publish_deadline_s = publish_deadline_s
        self.ack_timeout_s = ack_timeout_s
        self.stream = stream
        self.subject_prefix = subject_prefix
        self._owns_connection = owns_connection

    @classmethod
    async def open(
        cls,
        servers: Sequence[str],
        *,
        partitions: int,
        replicas: int = 1,
        duplicate_window_s: float = 120.0,
        publish_deadline_s: float = 15.0,
        tls: ssl.SSLContext | None = None,
        credentials_file: Path | None = None,
        token: str | None = None,
    ) -> EventStream:
        nc = await connect(servers, tls=tls, credentials_file=credentials_file, token=token)
        events = cls(
            nc,
            partitions=partitions,
            replicas=replicas,
            duplicate_window_s=duplicate_window_s,
            publish_deadline_s=publish_deadline_s,
            owns_connection=True,
        )
        try:
            await events.ensure_stream()
        except BaseException:
            await nc.close()
            raise
        return events

    async def close(self) -> None:
        if self._owns_connection:
            await self.nc.drain()

    def subject(self, partition: int) -> str:
        return f"{self.subject_prefix}.{partition}"

    def stream_config(self) -> api.StreamConfig:
        return api.StreamConfig(
            name=self.stream,
            subjects=[f"{self.subject_prefix}.*"],
            storage=api.StorageType.FILE,
            num_replicas=self.replicas,
            duplicate_window=self.duplicate_window_s,
            # the partition count is fixed for the life of the data: a process configured with
            # another count would publish users to the wrong partitions
            metadata={_PARTITIONS_METADATA: str(self.partitions)},
        )

    async def ensure_stream(self) -> api.StreamInfo:
        """Create the stream, or bring an existing one to this config (replicas, duplicate
        window); refuses one made for another partition count. Safe to call from every process."""
        config = self.stream_config()
        try:
            return await self.js.add_stream(config)
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != _STREAM_IN_USE:
                raise
        existing = await self.js.stream_info(self.stream)
        found = (existing.config.metadata or {}).get(_PARTITIONS_METADATA)
        if found is not None and found != str(self.partitions):
            raise ValueError(
                f"stream {self.stream} was created for {found} partitions, this process has "
                f"{self.partitions}: the partition count cannot change under existing data"
            )
        return await self.js.update_stream(config)

    # ------------------------------------------------------------------ publishing

    async def publish(self, events: Sequence[Event]) -> list[Published]:
        """Store ``events``; return, in order, each one's stream sequence and whether it was a
        duplicate. Returns only when every event is acked; retries sends that failed in a way a
        leader election causes, until ``publish_deadline_s``; then raises :class:`PublishError`.

        The first try pipelines all sends (publish_async, acks gathered). Retries use one request
        per event: nats-py 2.16's publish_async never completes its future when JetStream answers
        with an error (APIError.from_error raises inside its reply handler), so only the
        request path tells a permanent error (raised at once) from a transient one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.publish_deadline_s
        results: list[Published | None] = [None] * len(events)
        pending = await self._publish_pipelined(events, results)
        backoff = _FIRST_BACKOFF_S
        tries = 1
        while pending:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise PublishError(
                    f"{len(pending)} of {len(events)} events not acked by JetStream within "
                    f"{self.publish_deadline_s:.0f} s ({tries} tries); last error: {pending[-1][1]!r}",
                    results,
                )
            await asyncio.sleep(min(backoff, remaining))
            backoff = min(2 * backoff, _MAX_BACKOFF_S)
            tries += 1
            pending = await self._publish_requests(events, [index for index, _ in pending], results, deadline)
        acked = [result for result in results if result is not None]
        assert len(acked) == len(events)
        return acked

    def _headers(self, event: Event) -> dict[str, str]:
        return {api.Header.MSG_ID: event.event_id, _USER_HEADER: event.user_id}

    def _subject_of(self, event: Event) -> str:
        return self.subject(partition_of(event.user_id, self.partitions))

    async def _publish_pipelined(
        self, events: Sequence[Event], results: list[Published | None]
    ) -> list[tuple[int, BaseException]]:
        futures: list[asyncio.Future[api.PubAck]] = []
        failed: list[tuple[int, BaseException]] = []
        for index, event in enumerate(events):
            try:
                future = await self.js.publish_async(
                    self._subject_of(event), event.payload, headers=self._headers(event), wait_stall=None
                )
            except TRANSIENT_ERRORS as exc:  # the connection is down: the rest go by the retry path
                failed = [(left, exc) for left in range(index, len(events))]
                break
            futures.append(future)
        done, not_done = (
            await asyncio.wait(futures, timeout=self.ack_timeout_s) if futures else (set(), set())
        )
        for future in not_done:
            future.cancel()
        for index, future in enumerate(futures):
            if future in done and future.exception() is None:
                ack = future.result()
                results[index] = Published(ack.seq, bool(ack.duplicate))
                continue
            error = future.exception() if future in done else TimeoutError("no PubAck in time")
            assert error is not None
            if not isinstance(error, TRANSIENT_ERRORS):
                raise error
            failed.append((index, error))
        return sorted(failed, key=lambda item: item[0])

    async def _publish_requests(
        self, events: Sequence[Event], indexes: list[int], results: list[Published | None], deadline: float
    ) -> list[tuple[int, BaseException]]:
        """One request per event, in order; stops at the first transient error (the rest would
        fail the same way until a leader is elected) and returns what is left."""
        loop = asyncio.get_running_loop()
        for position, index in enumerate(indexes):
            event = events[index]
            timeout = max(0.05, min(self.ack_timeout_s, deadline - loop.time()))
            try:
                ack = await self.js.publish(
                    self._subject_of(event), event.payload, timeout=timeout, headers=self._headers(event)
                )
            except TRANSIENT_ERRORS as exc:
                return [(left, exc) for left in indexes[position:]]
            results[index] = Published(ack.seq, bool(ack.duplicate))
        return []

    # ------------------------------------------------------------------ reading

    async def reader(
        self, partition: int, *, token: int = 0, max_ack_pending: int = 10_000, ack_wait_s: float = 30.0
    ) -> PartitionReader:
        """A reader of ``partition`` for the owner holding it under fencing token ``token``: a
        fresh durable consumer that starts after the highest ack floor of the partition's
        earlier consumers, which are deleted (module docstring: why one consumer per owner)."""
        if not 0 <= partition < self.partitions:
            raise ValueError(f"partition {partition} out of range [0, {self.partitions})")
        earlier = await self._consumers_of(partition)
        # ack policy "all": every event of the partition up to a consumer's ack floor was applied
        start = 1 + max((c.ack_floor.stream_seq for c in earlier if c.ack_floor is not None), default=0)
        for consumer in earlier:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self.js.delete_consumer(self.stream, consumer.name)
        durable = f"{_CONSUMER_PREFIX}{partition}-{token}"
        config = api.ConsumerConfig(
            durable_name=durable,
            filter_subject=self.subject(partition),
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            ack_policy=api.AckPolicy.ALL,  # one ack per applied batch; the partition is applied in order
            ack_wait=ack_wait_s,
            max_ack_pending=max_ack_pending,
        )
        await self.js.add_consumer(self.stream, config)
        subscription = await self.js.pull_subscribe_bind(durable=durable, stream=self.stream)
        return PartitionReader(partition, subscription)

    async def _consumers_of(self, partition: int) -> list[api.ConsumerInfo]:
        """The partition's consumers: ``driftwise-p<N>-<token>``, and ``driftwise-p<N>`` (the
        one shared durable of earlier builds, whose ack floor is a position all the same)."""
        prefix = f"{_CONSUMER_PREFIX}{partition}"
        found: list[api.ConsumerInfo] = []
        offset = 0
        while True:
            page = await self.js.consumers_info(self.stream, offset=offset)
            found += [c for c in page if c.name == prefix or c.name.startswith(f"{prefix}-")]
            offset += len(page)
            if len(page) < _CONSUMERS_PAGE:
                return found


class PartitionReader:
    """Fetches one partition's events in stream order; :meth:`ack` after applying a batch.

    Delivery is at least once (a batch fetched but not acked comes again, to this worker after
    ``ack_wait`` or from the start of the next owner's reader): the applier skips events at or
    below the sequence its state says it applied."""

    def __init__(self, partition: int, subscription: JetStreamContext.PullSubscription) -> None:
        self.partition = partition
        self._subscription = subscription

    async def fetch(self, batch: int = 256, timeout_s: float = 1.0) -> list[StoredEvent]:
        """Up to ``batch`` events; an empty list when none arrived within ``timeout_s``."""
        try:
            messages = await self._subscription.fetch(batch, timeout=timeout_s)
        except nats.errors.TimeoutError:
            return []
        return [self._stored(msg) for msg in messages]

    def _stored(self, msg: Msg) -> StoredEvent:
        headers = msg.headers or {}
        metadata = msg.metadata
        return StoredEvent(
            event_id=headers.get(api.Header.MSG_ID, ""),
            user_id=headers.get(_USER_HEADER, ""),
            payload=msg.data,
            partition=self.partition,
            seq=metadata.sequence.stream,
            redelivered=metadata.num_delivered > 1,
            msg=msg,
        )

    async def ack(self, applied: Sequence[StoredEvent]) -> None:
        """Ack everything up to the last of ``applied`` (ack policy "all"), and wait for the
        server to confirm: the read position is then stored."""
        if applied:
            await applied[-1].msg.ack_sync()

    async def close(self) -> None:
        """Stop fetching; the durable consumer (the read position) stays."""
        await self._subscription.unsubscribe()
