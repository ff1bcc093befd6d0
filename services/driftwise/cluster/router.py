"""The stateless routers: each call goes to the profile shard that owns its user.

role ingest serves IngestService; role ranking serves RankingService and ProfileService. They
hold no engine, event log, Milvus or Triton: only a channel per shard (see `shards`).

- User calls (Recommend, Rank, GetProfile, DeleteUserData, WatchProfile) go to the user's shard.
- Item writes (UpsertItems, DeleteItems) are global (Milvus is shared): any shard takes them; the
  first item id's hash picks one, which spreads the load.
- IngestEvents validates the whole batch here first, with the engine path's own validation, so a
  bad batch gets INVALID_ARGUMENT (field paths like `events[3].user_id`) and nothing is forwarded.
  Then the batch is split by owning shard and the sub-batches are sent concurrently; the acks come
  back in the request's order. A batch is atomic per shard only: if one shard fails (UNAVAILABLE,
  an unknown item...), its status is returned (field paths renumbered to the caller's batch) while
  other shards may have recorded their events. Retrying the whole batch is safe: event ids are
  idempotent, so already-recorded events come back as duplicates.
- StreamEvents and StreamFeedback route each message to its user's shard (see `streams`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2

from driftwise.api import convert
from driftwise.cluster.partitions import Partitioner
from driftwise.cluster.shards import (
    STATUS_DETAILS_KEY,
    CallOptions,
    ShardChannels,
    Status,
    abort_with,
    upstream_status,
)
from driftwise.cluster.streams import route_stream
from driftwise.settings import Settings
from driftwise_client.v1 import (
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    profile_service_pb2,
    profile_service_pb2_grpc,
    ranking_service_pb2,
    ranking_service_pb2_grpc,
)

Context = grpc.aio.ServicerContext[Any, Any]
Resp = TypeVar("Resp")


class _Router:
    def __init__(self, settings: Settings, channels: ShardChannels) -> None:
        self._channels = channels
        self._partitioner = Partitioner.from_settings(settings.cluster)
        self._timeout = settings.cluster.forward_timeout_seconds
        self._limits = settings.limits

    def _shard(self, key: str) -> int:
        return self._partitioner.shard(key)

    async def _forward(
        self,
        shard: int,
        method: Callable[..., Awaitable[Resp]],
        request: Any,
        context: Context,
    ) -> Resp:
        """A unary call on a shard; its failure aborts this call with the shard's status."""
        options = CallOptions.of(context, self._timeout)
        try:
            return await method(request, timeout=options.timeout, metadata=options.metadata)
        except grpc.aio.AioRpcError as exc:
            await abort_with(context, upstream_status(exc, shard, self._channels.addresses[shard]))

    def _stream_options(self, context: Context) -> CallOptions:
        # streams live as long as the caller wants: only the caller's own deadline applies
        return CallOptions.of(context, None)


class IngestRouter(_Router, ingest_service_pb2_grpc.IngestServiceServicer):
    def __init__(self, settings: Settings, channels: ShardChannels) -> None:
        super().__init__(settings, channels)
        self._stubs = [
            ingest_service_pb2_grpc.IngestServiceStub(channels.channel(i)) for i in range(len(channels))
        ]

    async def UpsertItems(
        self, request: ingest_service_pb2.UpsertItemsRequest, context: Context
    ) -> ingest_service_pb2.UpsertItemsResponse:
        shard = self._shard(request.items[0].item_id if request.items else "")
        return await self._forward(shard, self._stubs[shard].UpsertItems, request, context)

    async def DeleteItems(
        self, request: ingest_service_pb2.DeleteItemsRequest, context: Context
    ) -> ingest_service_pb2.DeleteItemsResponse:
        shard = self._shard(request.item_ids[0] if request.item_ids else "")
        return await self._forward(shard, self._stubs[shard].DeleteItems, request, context)

    async def IngestEvents(
        self, request: ingest_service_pb2.IngestEventsRequest, context: Context
    ) -> ingest_service_pb2.IngestEventsResponse:
        convert.events_from_proto(request.events, self._limits, time.time())  # raises: nothing sent
        positions: dict[int, list[int]] = {}  # shard -> positions of its events in the request
        for i, event in enumerate(request.events):
            positions.setdefault(self._shard(event.user_id), []).append(i)
        options = CallOptions.of(context, self._timeout)

        async def send(shard: int, where: list[int]) -> ingest_service_pb2.IngestEventsResponse:
            sub = ingest_service_pb2.IngestEventsRequest(events=[request.events[i] for i in where])
            return await self._stubs[shard].IngestEvents(
                sub, timeout=options.timeout, metadata=options.metadata
            )

        # every shard's call runs to its end (none is cancelled half-way by another's failure)
        results = await asyncio.gather(
            *(send(shard, where) for shard, where in positions.items()), return_exceptions=True
        )
        acks: list[ingest_service_pb2.EventAck] = [ingest_service_pb2.EventAck()] * len(request.events)
        for (shard, where), result in zip(positions.items(), results, strict=True):
            if isinstance(result, grpc.aio.AioRpcError):
                status = upstream_status(result, shard, self._channels.addresses[shard])
                await abort_with(context, renumber_events(status, where))
            if isinstance(result, BaseException):
                raise result
            for i, ack in zip(where, result.acks, strict=True):
                acks[i] = ack
        return ingest_service_pb2.IngestEventsResponse(acks=acks)

    async def StreamEvents(
        self, request_iterator: AsyncIterator[ingest_service_pb2.StreamEventsRequest], context: Context
    ) -> AsyncIterator[ingest_service_pb2.StreamEventsResponse]:
        stubs = self._stubs
        async for response in route_stream(
            request_iterator,
            shard_of=lambda r: self._shard(r.event.user_id),
            open_stream=lambda shard, o: stubs[shard].StreamEvents(timeout=o.timeout, metadata=o.metadata),
            options=self._stream_options(context),
            addresses=self._channels.addresses,
            error_response=lambda r, error: ingest_service_pb2.StreamEventsResponse(
                event_id=r.event.event_id, error=error
            ),
        ):
            yield response


class ProfileRouter(_Router, profile_service_pb2_grpc.ProfileServiceServicer):
    def __init__(self, settings: Settings, channels: ShardChannels) -> None:
        super().__init__(settings, channels)
        self._stubs = [
            profile_service_pb2_grpc.ProfileServiceStub(channels.channel(i)) for i in range(len(channels))
        ]

    async def GetProfile(
        self, request: profile_service_pb2.GetProfileRequest, context: Context
    ) -> profile_service_pb2.GetProfileResponse:
        shard = self._shard(request.user_id)
        return await self._forward(shard, self._stubs[shard].GetProfile, request, context)

    async def DeleteUserData(
        self, request: profile_service_pb2.DeleteUserDataRequest, context: Context
    ) -> profile_service_pb2.DeleteUserDataResponse:
        shard = self._shard(request.user_id)
        return await self._forward(shard, self._stubs[shard].DeleteUserData, request, context)

    async def WatchProfile(
        self, request: profile_service_pb2.WatchProfileRequest, context: Context
    ) -> AsyncIterator[profile_service_pb2.WatchProfileResponse]:
        shard = self._shard(request.user_id)
        options = self._stream_options(context)
        call = self._stubs[shard].WatchProfile(request, timeout=options.timeout, metadata=options.metadata)
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as exc:
            await abort_with(context, upstream_status(exc, shard, self._channels.addresses[shard]))
        finally:
            call.cancel()  # the caller went away: stop watching on the shard too


class RankingRouter(_Router, ranking_service_pb2_grpc.RankingServiceServicer):
    def __init__(self, settings: Settings, channels: ShardChannels) -> None:
        super().__init__(settings, channels)
        self._stubs = [
            ranking_service_pb2_grpc.RankingServiceStub(channels.channel(i)) for i in range(len(channels))
        ]

    async def Recommend(
        self, request: ranking_service_pb2.RecommendRequest, context: Context
    ) -> ranking_service_pb2.RecommendResponse:
        shard = self._shard(request.user_id)
        return await self._forward(shard, self._stubs[shard].Recommend, request, context)

    async def Rank(
        self, request: ranking_service_pb2.RankRequest, context: Context
    ) -> ranking_service_pb2.RankResponse:
        shard = self._shard(request.user_id)
        return await self._forward(shard, self._stubs[shard].Rank, request, context)

    async def GetModelStatus(
        self, request: ranking_service_pb2.GetModelStatusRequest, context: Context
    ) -> ranking_service_pb2.GetModelStatusResponse:
        """Every shard's status: each refits and tunes on the log of its own users."""
        answers = await asyncio.gather(
            *(self._forward(i, stub.GetModelStatus, request, context) for i, stub in enumerate(self._stubs))
        )
        shards = []
        for i, answer in enumerate(answers):
            for status in answer.shards:
                status.shard = i
                shards.append(status)
        return ranking_service_pb2.GetModelStatusResponse(shards=shards)

    async def StreamFeedback(
        self, request_iterator: AsyncIterator[ranking_service_pb2.StreamFeedbackRequest], context: Context
    ) -> AsyncIterator[ranking_service_pb2.StreamFeedbackResponse]:
        stubs = self._stubs
        async for response in route_stream(
            request_iterator,
            shard_of=lambda r: self._shard(r.event.user_id),
            open_stream=lambda shard, o: stubs[shard].StreamFeedback(timeout=o.timeout, metadata=o.metadata),
            options=self._stream_options(context),
            addresses=self._channels.addresses,
            error_response=lambda r, error: ranking_service_pb2.StreamFeedbackResponse(
                event_id=r.event.event_id, error=error
            ),
        ):
            yield response


_EVENT_PATH = re.compile(r"\bevents\[(\d+)\]")


def renumber_events(status: grpc.Status, positions: Sequence[int]) -> grpc.Status:
    """A shard's status about a sub-batch, with `events[j]` paths (message and BadRequest
    details) renumbered to the caller's batch."""

    def renumber(text: str) -> str:
        return _EVENT_PATH.sub(lambda m: f"events[{positions[int(m.group(1))]}]", text)

    trailing = []
    for key, value in status.trailing_metadata:
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            rich = status_pb2.Status.FromString(value)
            rich.message = renumber(rich.message)
            for detail in rich.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    for violation in bad.field_violations:
                        violation.field = renumber(violation.field)
                    detail.Pack(bad)
            value = rich.SerializeToString()
        trailing.append((key, value))
    return Status(status.code, renumber(status.details), tuple(trailing))
