"""Reading one partition of the event stream in order, each event once, for the worker that holds
its lease (why a consumer of its own, not a shared durable one: event_stream's docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from driftwise.cluster.partitions import user_key

_log = logging.getLogger(__name__)

USER_HEADER = "Driftwise-User-Id"
_TRACE_HEADERS = ("traceparent", "tracestate")


def message_id(user_id: str, event_id: str) -> str:
    """The stream's deduplication key of a user's event (event ids hold no control characters,
    so the header stays one line)."""
    return f"{user_key(user_id)}:{event_id}"


def event_id_of(msg_id: str) -> str:
    """The event id in a :func:`message_id` (a message published otherwise: the whole id)."""
    return msg_id.partition(":")[2] or msg_id


_IDLE_CHECK_S = 5.0
_CLOSE_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class StoredEvent:
    event_id: str
    user_id: str
    payload: bytes
    partition: int
    seq: int
    """Stream sequence: grows along the partition, so "applied up to seq" is a read position."""
    trace_context: Mapping[str, str] = field(default_factory=dict)
    """W3C trace context of the publish (``traceparent``): the applier continues the trace."""


class ReaderLost(RuntimeError):
    """The reader's consumer is gone, or a delivery was missed: read on with a new reader from
    the applied position."""


class PartitionReader:
    """Fetches one partition's events in stream order, each once (from :meth:`EventStream.reader`)."""

    def __init__(
        self,
        partition: int,
        js: JetStreamContext,
        stream: str,
        consumer: str,
        subscription: JetStreamContext.PullSubscription,
    ) -> None:
        self.partition = partition
        self.consumer = consumer
        self._js = js
        self._stream = stream
        self._subscription = subscription
        self._delivered = 0  # consumer sequence of the last event fetched: deliveries count 1, 2, ...
        self._idle_since = asyncio.get_running_loop().time()

    async def fetch(self, batch: int = 256, timeout_s: float = 1.0) -> list[StoredEvent]:
        """Up to ``batch`` events; an empty list when none arrived within ``timeout_s``. Raises
        :class:`ReaderLost` (and transient errors: a consumer on a node being replaced)."""
        try:
            messages = await self._subscription.fetch(batch, timeout=timeout_s)
        except TimeoutError:  # nats-py raises its own, or asyncio's when the deadline ran out first
            await self._check_alive()
            return []
        events = []
        for msg in messages:
            delivered = msg.metadata.sequence.consumer
            if delivered != self._delivered + 1:
                raise ReaderLost(f"{self.consumer}: delivery {delivered} after {self._delivered}")
            self._delivered = delivered
            events.append(self._stored(msg))
        self._idle_since = asyncio.get_running_loop().time()
        return events

    async def _check_alive(self) -> None:
        """A consumer whose node died answers nothing, as an idle one does: ask after a while."""
        now = asyncio.get_running_loop().time()
        if now - self._idle_since < _IDLE_CHECK_S:
            return
        self._idle_since = now
        try:
            await self._js.consumer_info(self._stream, self.consumer)
        except nats.js.errors.NotFoundError:
            raise ReaderLost(f"{self.consumer}: consumer gone") from None

    def _stored(self, msg: Msg) -> StoredEvent:
        headers = msg.headers or {}
        return StoredEvent(
            event_id=event_id_of(headers.get(api.Header.MSG_ID, "")),
            user_id=headers.get(USER_HEADER, ""),
            payload=msg.data,
            partition=self.partition,
            seq=msg.metadata.sequence.stream,
            trace_context={k: v for k in _TRACE_HEADERS if (v := headers.get(k))},
        )

    async def close(self) -> None:
        """Stop fetching and delete the consumer (best effort: the server deletes it anyway after
        its inactive threshold)."""
        with contextlib.suppress(Exception):
            await self._subscription.unsubscribe()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._js.delete_consumer(self._stream, self.consumer), _CLOSE_TIMEOUT_S)
