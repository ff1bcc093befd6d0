"""IngestService: items and events in."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from driftwise.api import convert
from driftwise.api.backends import IngestBackend
from driftwise.api.errors import error_message
from driftwise.api.stream_rate import StreamRate
from driftwise.engine import Ack
from driftwise.errors import DriftwiseError
from driftwise_client.v1 import ingest_service_pb2 as pb
from driftwise_client.v1 import ingest_service_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


def _ack(a: Ack) -> pb.EventAck:
    return pb.EventAck(event_id=a.event_id, duplicate=a.duplicate, profile_version=a.profile_version)


class IngestServicer(ingest_service_pb2_grpc.IngestServiceServicer):
    def __init__(self, engine: IngestBackend) -> None:
        self._engine = engine
        self._limits = engine.settings.limits

    async def UpsertItems(self, request: pb.UpsertItemsRequest, context: Context) -> pb.UpsertItemsResponse:
        items = convert.items_from_proto(request.items, self._limits)
        return pb.UpsertItemsResponse(upserted_count=await self._engine.upsert_items(items))

    async def DeleteItems(self, request: pb.DeleteItemsRequest, context: Context) -> pb.DeleteItemsResponse:
        item_ids = convert.item_ids_from_proto(request.item_ids, self._limits)
        return pb.DeleteItemsResponse(deleted_count=await self._engine.delete_items(item_ids))

    async def IngestEvents(
        self, request: pb.IngestEventsRequest, context: Context
    ) -> pb.IngestEventsResponse:
        events = convert.events_from_proto(request.events, self._limits, time.time())
        return pb.IngestEventsResponse(acks=[_ack(a) for a in await self._engine.ingest_events(events)])

    async def StreamEvents(
        self, request_iterator: AsyncIterator[pb.StreamEventsRequest], context: Context
    ) -> AsyncIterator[pb.StreamEventsResponse]:
        rate = StreamRate(self._limits.max_stream_messages_per_second)
        async for request in request_iterator:
            event_id = request.event.event_id
            try:
                rate.take("StreamEvents")  # over the rate: this message only is refused
                events = convert.events_from_proto(
                    [request.event], self._limits, time.time(), prefix="event", indexed=False
                )
                (ack,) = await self._engine.ingest_events(events, "event", indexed=False)
            except DriftwiseError as exc:  # one bad event gets its own error; the stream goes on
                yield pb.StreamEventsResponse(event_id=event_id, error=error_message(exc))
            else:
                yield pb.StreamEventsResponse(event_id=event_id, ack=_ack(ack))
