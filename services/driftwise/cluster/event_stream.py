"""The event log of cluster mode: one NATS JetStream stream, one subject per user, grouped by
partition.

Ingest publishes each event to ``driftwise.events.<partition>.<user key>`` (the partition of its
user id, :func:`driftwise.cluster.partitions.partition_of`; the key, the user id in URL-safe
base64) and acknowledges its caller only after JetStream's PubAck: the event is then stored on a
quorum of the stream's replicas. A partition is read through ``driftwise.events.<partition>.*``;
one user's events can be purged by their own subject (:meth:`EventStream.purge_user`).

Idempotency: every message carries ``Nats-Msg-Id: <user key>:<event_id>``
(:func:`~driftwise.cluster.partition_reader.message_id`: event ids are unique per user only, and
the duplicate window spans the whole stream); within that window (2 min by default) JetStream
stores a resend once and answers ``duplicate=True`` with the first copy's sequence. That is what
makes retries safe: a publish whose ack was lost (a node died, a leader election) is sent again
until acked or the deadline passes. Past the window a resend is stored again, so the applying
side still checks: each profile snapshot records the last stream sequence applied to it (see
:mod:`driftwise.cluster.worker`).

Failover (measured, 3 nodes on loopback, R3): after SIGKILL of the stream's leader node,
publishes fail with ``NoStreamResponseError`` (or time out) for about 2-5 s until a new leader
is elected; :meth:`EventStream.publish` retries through that with backoff, up to
``publish_deadline_s`` (15 s), then raises :class:`PublishError`.

Reading: the worker holding a partition's lease (:mod:`driftwise.cluster.leases`) reads it in
stream order from a position it keeps itself (the partition's applied position, stored with the
profiles: :mod:`driftwise.cluster.snapshots`), through a consumer of its own for as long as it
runs the partition: a named ephemeral pull consumer, one replica, in memory, no acks, filtered on
the partition's subject, starting at that position; the server deletes it after
``inactive_threshold`` without fetches. A reader that misses a delivery (its consumer sequence
jumps) or whose consumer vanished (its node died) raises :class:`ReaderLost`: make a new one
from the applied position.

Why not one durable consumer per partition, acked, shared by its successive owners: what one
owner fetched but did not ack comes again only after ``ack_wait``, and until then the next owner
is served newer events first (out of order: an applier skipping "at or below the last applied
sequence" would lose the late ones); a stale owner still fetching takes events from under the
new one; and recreating a replicated (R3) consumer at each takeover is what a degraded cluster
does worst (measured, 3 nodes, one SIGKILLed: creating R3 consumers failed for 20 s, listing
consumers stalled 4 s per call; one-replica ephemeral consumers were created in ~10 ms once the
meta leader was back, ~5 s after the kill).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext, api

from driftwise.cluster.nats_security import NatsSecurity
from driftwise.cluster.partition_reader import (
    USER_HEADER,
    PartitionReader,
    ReaderLost,
    StoredEvent,
    message_id,
)
from driftwise.cluster.partitions import partition_of, user_key
from driftwise.errors import StartupError
from driftwise.observability.tracing import client_span, trace_headers

__all__ = [
    "STREAM",
    "SUBJECT_PREFIX",
    "TRANSIENT_ERRORS",
    "Event",
    "EventStream",
    "PartitionReader",
    "PublishError",
    "Published",
    "ReaderLost",
    "StoredEvent",
    "connect",
]

_log = logging.getLogger(__name__)

STREAM = "DRIFTWISE_EVENTS"
SUBJECT_PREFIX = "driftwise.events"
_PARTITIONS_METADATA = "driftwise_partitions"
_STREAM_IN_USE = 10058  # JetStream: "stream name already in use with a different configuration"
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


async def connect(
    servers: Sequence[str],
    *,
    security: NatsSecurity | None = None,
    name: str = "driftwise",
) -> NatsClient:
    """A NATS connection that reconnects to any of ``servers`` forever (a node may die).

    ``security`` (from settings.cluster.nats_*: :class:`NatsSecurity`) adds TLS and credentials.
    A server that refuses them (a certificate of another CA, a wrong token) is retried like an
    unreachable one, each refusal logged as a warning: the connection never opens. With TLS on,
    every connection must be TLS: nats-py upgrades only when the server asks for TLS, and would go
    on in plaintext with one that does not; such a server is refused here (before a token is sent
    to it, at the first connect and at every reconnect)."""
    security = security or NatsSecurity()
    nc = NatsClient()
    options: dict[str, Any] = {}
    if security.tls is not None:
        options["tls"] = security.tls
        if security.tls_hostname:
            options["tls_hostname"] = security.tls_hostname
        options["reconnected_cb"] = functools.partial(_check_reconnected_over_tls, nc)
    if security.credentials_file is not None:
        options["user_credentials"] = str(security.credentials_file)
    if security.token is not None:
        token = security.token
        # called while CONNECT is built, after the TLS upgrade (when there is one)
        options["token"] = token if security.tls is None else functools.partial(_token_over_tls, nc, token)
    await nc.connect(
        servers=list(servers),
        name=name,
        max_reconnect_attempts=-1,
        # the default 2 s would add to every failover (typed int, used as seconds)
        reconnect_time_wait=0.25,  # type: ignore[arg-type]
        connect_timeout=5,
        error_cb=_log_error,
        **options,
    )
    if security.tls is not None and not _over_tls(nc):
        url = nc.connected_url
        await nc.close()
        raise StartupError(
            f"NATS server {url} offers no TLS, which cluster.nats_tls_ca_file requires: refused"
        )
    return nc


async def _log_error(error: Exception) -> None:
    """nats-py's asynchronous errors (a refused or lost connection, a slow consumer) in one line:
    a refused TLS handshake or token is retried every reconnect_time_wait."""
    _log.warning("NATS: %s", error if str(error) else repr(error))


def _over_tls(nc: NatsClient) -> bool:
    """Whether nc's current connection is TLS. nats-py has no public way to tell: its transport's
    stream writer is the TLS one after an upgrade."""
    writer = getattr(getattr(nc, "_transport", None), "_io_writer", None)
    return writer is not None and writer.get_extra_info("ssl_object") is not None


def _token_over_tls(nc: NatsClient, token: str) -> str:
    if not _over_tls(nc):
        raise nats.errors.Error("NATS server offers no TLS: the token is not sent in plaintext")
    return token


async def _check_reconnected_over_tls(nc: NatsClient) -> None:
    if not _over_tls(nc):
        _log.error(
            "NATS server %s offers no TLS, which cluster.nats_tls_ca_file requires: closing", nc.connected_url
        )
        task = asyncio.get_running_loop().create_task(nc.close())  # not from inside its reconnect task
        _closing.add(task)
        task.add_done_callback(_closing.discard)


_closing: set[asyncio.Task[None]] = set()


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
        security: NatsSecurity | None = None,
    ) -> EventStream:
        nc = await connect(servers, security=security)
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

    def subject_for(self, user_id: str) -> str:
        """The subject of a user's events."""
        return f"{self.subject_prefix}.{partition_of(user_id, self.partitions)}.{user_key(user_id)}"

    def partition_subjects(self, partition: int) -> str:
        """The subjects of a partition's users."""
        return f"{self.subject_prefix}.{partition}.*"

    async def count_user(self, user_id: str) -> int:
        """How many messages of the user the stream holds."""
        subject = self.subject_for(user_id)
        info = await self.js.stream_info(self.stream, subjects_filter=subject)
        return (info.state.subjects or {}).get(subject, 0)

    async def purge_user(self, user_id: str, *, through_seq: int | None = None) -> int:
        """Remove the user's messages from the stream, on every replica: all of them, or those
        at or below ``through_seq``; returns how many there were (counted just before)."""
        count = await self.count_user(user_id)
        upper = None if through_seq is None else through_seq + 1  # purge keeps `seq` and after
        await self.js.purge_stream(self.stream, subject=self.subject_for(user_id), seq=upper)
        return count

    def stream_config(self) -> api.StreamConfig:
        return api.StreamConfig(
            name=self.stream,
            subjects=[f"{self.subject_prefix}.*.*"],
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
        with client_span("event_stream.publish", "nats", {"events": len(events)}):
            return await self._publish(events)

    async def _publish(self, events: Sequence[Event]) -> list[Published]:
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
        # the trace context of the publish span: the worker that applies the event continues it
        msg_id = message_id(event.user_id, event.event_id)
        return {**trace_headers(), api.Header.MSG_ID: msg_id, USER_HEADER: event.user_id}

    def _subject_of(self, event: Event) -> str:
        return self.subject_for(event.user_id)

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
        self, partition: int, *, start_seq: int, token: int = 0, inactive_threshold_s: float = 60.0
    ) -> PartitionReader:
        """A reader of ``partition`` from stream sequence ``start_seq`` on, through a consumer of
        its own (module docstring); ``token``, the owner's fencing token, only names it."""
        if not 0 <= partition < self.partitions:
            raise ValueError(f"partition {partition} out of range [0, {self.partitions})")
        name = f"driftwise-p{partition}-{token}-{uuid.uuid4().hex[:8]}"
        config = api.ConsumerConfig(
            name=name,
            filter_subject=self.partition_subjects(partition),
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(1, start_seq),
            ack_policy=api.AckPolicy.NONE,  # the applier keeps the position; nothing to redeliver
            num_replicas=1,
            mem_storage=True,
            inactive_threshold=inactive_threshold_s,
        )
        # ack_timeout_s, not the context's 5 s: a request sent while the meta group elects a leader
        # is never answered; the worker taking a partition over tries again within a second
        await self.js.add_consumer(self.stream, config, timeout=self.ack_timeout_s)
        subscription = await self.js.pull_subscribe_bind(consumer=name, stream=self.stream)
        return PartitionReader(partition, self.js, self.stream, name, subscription)
