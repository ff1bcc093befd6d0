"""The asyncio client: AsyncDriftwiseClient, over one grpc.aio.Channel, and its stream objects.

Same methods, options and semantics as driftwise_client.DriftwiseClient; create and use it inside a
running event loop (`async with AsyncDriftwiseClient(target) as client: ...`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import grpc
import grpc.aio

from driftwise_client import messages
from driftwise_client._channel import ChannelSpec, TokenSource, channel_spec
from driftwise_client._retry import Attempts
from driftwise_client._version import __version__
from driftwise_client.client import DEFAULT_TIMEOUT
from driftwise_client.errors import Unavailable, from_rpc_error
from driftwise_client.options import RetryPolicy, TlsConfig
from driftwise_client.v1 import (
    common_pb2,
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    insight_service_pb2,
    insight_service_pb2_grpc,
    profile_service_pb2,
    profile_service_pb2_grpc,
    ranking_service_pb2,
    ranking_service_pb2_grpc,
)

__all__ = ["AsyncBidiStream", "AsyncDriftwiseClient", "AsyncResponseStream"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")
T = TypeVar("T")
Metadata = Sequence[tuple[str, str | bytes]]


class AsyncDriftwiseClient:
    """asyncio client of the four Driftwise services over one grpc.aio channel.

    See DriftwiseClient for `timeout` (default deadline per unary call, covering its retries),
    `retry` (idempotent unary calls only; streams are never retried), `tls`, `token` and errors.
    """

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        tls: TlsConfig | None = None,
        token: TokenSource | None = None,
        allow_insecure_token: bool = False,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._spec: ChannelSpec = channel_spec(
            target,
            tls=tls,
            token=token,
            allow_insecure_token=allow_insecure_token,
            options=options,
            version=__version__,
        )
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        if self._spec.credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=self._spec.options)
        else:
            self._channel = grpc.aio.secure_channel(
                target, self._spec.credentials, options=self._spec.options
            )
        self._ingest = ingest_service_pb2_grpc.IngestServiceStub(self._channel)
        self._profiles = profile_service_pb2_grpc.ProfileServiceStub(self._channel)
        self._ranking = ranking_service_pb2_grpc.RankingServiceStub(self._channel)
        self._insights = insight_service_pb2_grpc.InsightServiceStub(self._channel)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def channel(self) -> grpc.aio.Channel:
        return self._channel

    async def wait_until_ready(self, timeout: float | None = None) -> None:
        """Wait until the channel is connected (raises Unavailable after `timeout` seconds)."""
        try:
            await asyncio.wait_for(self._channel.channel_ready(), timeout or self.timeout)
        except TimeoutError:
            raise Unavailable(grpc.StatusCode.UNAVAILABLE, f"{self._spec.target} not ready") from None

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- IngestService -------------------------------------------------------------------------

    async def upsert_items(
        self,
        items: Iterable[common_pb2.Item],
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> ingest_service_pb2.UpsertItemsResponse:
        """Insert or replace items (idempotent: retried)."""
        return await self._unary(
            self._ingest.UpsertItems, messages.upsert_items_request(items), True, timeout, metadata
        )

    async def delete_items(
        self,
        item_ids: Iterable[str],
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> ingest_service_pb2.DeleteItemsResponse:
        """Delete items; unknown ids are ignored (idempotent: retried)."""
        return await self._unary(
            self._ingest.DeleteItems, messages.delete_items_request(item_ids), True, timeout, metadata
        )

    async def ingest_events(
        self,
        events: Iterable[common_pb2.Event],
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> ingest_service_pb2.IngestEventsResponse:
        """Record a batch of events; event ids make the batch idempotent (retried)."""
        request = messages.ingest_events_request(events)
        idempotent = all(e.event_id for e in request.events)
        return await self._unary(self._ingest.IngestEvents, request, idempotent, timeout, metadata)

    def stream_events(
        self,
        requests: Iterable[ingest_service_pb2.StreamEventsRequest]
        | AsyncIterable[ingest_service_pb2.StreamEventsRequest]
        | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> AsyncBidiStream[ingest_service_pb2.StreamEventsRequest, ingest_service_pb2.StreamEventsResponse]:
        """Open a StreamEvents stream (see DriftwiseClient.stream_events)."""
        return AsyncBidiStream(
            self._ingest.StreamEvents, requests, timeout, self._spec.call_metadata(metadata)
        )

    # -- RankingService ------------------------------------------------------------------------

    async def recommend(
        self,
        user_id: str,
        *,
        count: int = 0,
        categories: Iterable[str] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        exclude_item_ids: Iterable[str] = (),
        include_seen: bool = False,
        context: common_pb2.Context | None = None,
        diversity: float = 0.0,
        as_of_time: datetime | None = None,
        page_token: str = "",
        topic_temperature: float = 0.0,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> ranking_service_pb2.RecommendResponse:
        """Recommend items for a user (count 0 means 10)."""
        request = messages.recommend_request(
            user_id,
            count=count,
            categories=categories,
            created_after=created_after,
            created_before=created_before,
            exclude_item_ids=exclude_item_ids,
            include_seen=include_seen,
            context=context,
            diversity=diversity,
            as_of_time=as_of_time,
            page_token=page_token,
            topic_temperature=topic_temperature,
        )
        return await self._unary(self._ranking.Recommend, request, True, timeout, metadata)

    async def iter_recommendation_pages(
        self,
        user_id: str,
        page_size: int = 10,
        *,
        max_pages: int | None = None,
        categories: Iterable[str] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        exclude_item_ids: Iterable[str] = (),
        include_seen: bool = False,
        context: common_pb2.Context | None = None,
        diversity: float = 0.0,
        as_of_time: datetime | None = None,
        topic_temperature: float = 0.0,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> AsyncIterator[ranking_service_pb2.RecommendResponse]:
        """Pages of recommendations following next_page_token (an async generator)."""
        categories, exclude_item_ids = list(categories), list(exclude_item_ids)
        token, pages = "", 0
        while max_pages is None or pages < max_pages:
            page = await self.recommend(
                user_id,
                count=page_size,
                categories=categories,
                created_after=created_after,
                created_before=created_before,
                exclude_item_ids=exclude_item_ids,
                include_seen=include_seen,
                context=context,
                diversity=diversity,
                as_of_time=as_of_time,
                page_token=token,
                topic_temperature=topic_temperature,
                timeout=timeout,
                metadata=metadata,
            )
            pages += 1
            yield page
            token = page.next_page_token
            if not token or not page.items:
                return

    async def iter_recommendations(
        self,
        user_id: str,
        page_size: int = 10,
        *,
        max_items: int | None = None,
        categories: Iterable[str] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        exclude_item_ids: Iterable[str] = (),
        include_seen: bool = False,
        context: common_pb2.Context | None = None,
        diversity: float = 0.0,
        as_of_time: datetime | None = None,
        topic_temperature: float = 0.0,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> AsyncIterator[ranking_service_pb2.ScoredItem]:
        """Recommended items, best first, fetched `page_size` at a time (an async generator)."""
        produced = 0
        async for page in self.iter_recommendation_pages(
            user_id,
            page_size,
            categories=categories,
            created_after=created_after,
            created_before=created_before,
            exclude_item_ids=exclude_item_ids,
            include_seen=include_seen,
            context=context,
            diversity=diversity,
            as_of_time=as_of_time,
            topic_temperature=topic_temperature,
            timeout=timeout,
            metadata=metadata,
        ):
            for item in page.items:
                if max_items is not None and produced >= max_items:
                    return
                produced += 1
                yield item

    async def rank(
        self,
        user_id: str,
        candidate_item_ids: Iterable[str],
        *,
        context: common_pb2.Context | None = None,
        as_of_time: datetime | None = None,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> ranking_service_pb2.RankResponse:
        """Score the caller's candidate items for a user, best first."""
        request = messages.rank_request(user_id, candidate_item_ids, context=context, as_of_time=as_of_time)
        return await self._unary(self._ranking.Rank, request, True, timeout, metadata)

    def stream_feedback(
        self,
        requests: Iterable[ranking_service_pb2.StreamFeedbackRequest]
        | AsyncIterable[ranking_service_pb2.StreamFeedbackRequest]
        | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> AsyncBidiStream[
        ranking_service_pb2.StreamFeedbackRequest, ranking_service_pb2.StreamFeedbackResponse
    ]:
        """Open a StreamFeedback stream:

            async with client.stream_feedback() as stream:
                answer = await stream.exchange(feedback_request(event, count=10))

        or `async for answer in client.stream_feedback(requests)` with an (async) iterable."""
        return AsyncBidiStream(
            self._ranking.StreamFeedback, requests, timeout, self._spec.call_metadata(metadata)
        )

    # -- ProfileService ------------------------------------------------------------------------

    async def get_profile(
        self,
        user_id: str,
        *,
        top_topics: int = 0,
        recent_events: int = 0,
        as_of_time: datetime | None = None,
        topic_temperature: float = 0.0,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> profile_service_pb2.Profile:
        """The user's layered interests (raises NotFound for a user without events);
        `topic_temperature` previews the topic weights at another temperature (0: the server's)."""
        request = messages.get_profile_request(
            user_id,
            top_topics=top_topics,
            recent_events=recent_events,
            as_of_time=as_of_time,
            topic_temperature=topic_temperature,
        )
        return (await self._unary(self._profiles.GetProfile, request, True, timeout, metadata)).profile

    def watch_profile(
        self, user_id: str, *, timeout: float | None = None, metadata: Metadata | None = None
    ) -> AsyncResponseStream[profile_service_pb2.Profile]:
        """The user's profile now and after each change (`async for profile in ...`)."""
        call = self._profiles.WatchProfile(
            profile_service_pb2.WatchProfileRequest(user_id=user_id),
            timeout=timeout,
            metadata=self._spec.call_metadata(metadata),
        )
        return AsyncResponseStream(call, lambda response: response.profile)

    async def delete_user_data(
        self, user_id: str, *, timeout: float | None = None, metadata: Metadata | None = None
    ) -> profile_service_pb2.DeleteUserDataResponse:
        """Forget the user: events, profile and interest vectors (idempotent: retried)."""
        request = profile_service_pb2.DeleteUserDataRequest(user_id=user_id)
        return await self._unary(self._profiles.DeleteUserData, request, True, timeout, metadata)

    # -- InsightService ------------------------------------------------------------------------

    async def list_users(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        user_id_prefix: str = "",
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> insight_service_pb2.ListUsersResponse:
        """A page of the users with events, most recently active first (page_size 0 means 50).
        Raises FailedPrecondition when the server pseudonymises user ids. See iter_users."""
        request = insight_service_pb2.ListUsersRequest(
            page_size=page_size, page_token=page_token, user_id_prefix=user_id_prefix
        )
        return await self._unary(self._insights.ListUsers, request, True, timeout, metadata)

    async def iter_users(
        self,
        *,
        page_size: int = 0,
        user_id_prefix: str = "",
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> AsyncIterator[insight_service_pb2.UserSummary]:
        """Every user with events (whose id starts with `user_id_prefix`), page by page."""
        token = ""
        while True:
            page = await self.list_users(
                page_size=page_size,
                page_token=token,
                user_id_prefix=user_id_prefix,
                timeout=timeout,
                metadata=metadata,
            )
            for user in page.users:
                yield user
            token = page.next_page_token
            if not token:
                return

    async def list_items(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        title_contains: str = "",
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> insight_service_pb2.ListItemsResponse:
        """A page of the catalogue in item id order (page_size 0 means 50). See iter_items."""
        request = insight_service_pb2.ListItemsRequest(
            page_size=page_size, page_token=page_token, title_contains=title_contains
        )
        return await self._unary(self._insights.ListItems, request, True, timeout, metadata)

    async def iter_items(
        self,
        *,
        page_size: int = 0,
        title_contains: str = "",
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> AsyncIterator[common_pb2.Item]:
        """Every item of the catalogue (whose title contains `title_contains`, ignoring case)."""
        token = ""
        while True:
            page = await self.list_items(
                page_size=page_size,
                page_token=token,
                title_contains=title_contains,
                timeout=timeout,
                metadata=metadata,
            )
            for item in page.items:
                yield item
            token = page.next_page_token
            if not token:
                return

    async def search_items(
        self, text: str, *, count: int = 0, timeout: float | None = None, metadata: Metadata | None = None
    ) -> list[insight_service_pb2.ItemHit]:
        """The items nearest a free text, nearest first (count 0 means 10)."""
        request = insight_service_pb2.SearchItemsRequest(text=text, count=count)
        return list((await self._unary(self._insights.SearchItems, request, True, timeout, metadata)).items)

    async def get_item(
        self,
        item_id: str,
        *,
        neighbours: int = 0,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> insight_service_pb2.GetItemResponse:
        """An item, its nearest neighbours, what users chose right after it and its newest events
        (raises NotFound for an unknown item)."""
        request = insight_service_pb2.GetItemRequest(item_id=item_id, neighbours=neighbours)
        return await self._unary(self._insights.GetItem, request, True, timeout, metadata)

    async def get_topic_history(
        self,
        user_id: str,
        *,
        max_points: int = 0,
        top_topics: int = 0,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> list[insight_service_pb2.TopicHistoryPoint]:
        """The user's topic weights per layer after their events, oldest first (raises NotFound
        for a user without events)."""
        request = insight_service_pb2.GetTopicHistoryRequest(
            user_id=user_id, max_points=max_points, top_topics=top_topics
        )
        return list(
            (await self._unary(self._insights.GetTopicHistory, request, True, timeout, metadata)).points
        )

    async def get_server_stats(
        self, *, timeout: float | None = None, metadata: Metadata | None = None
    ) -> insight_service_pb2.GetServerStatsResponse:
        """The answering server's counts, event rate, Recommend latency, dependencies and model."""
        request = insight_service_pb2.GetServerStatsRequest()
        return await self._unary(self._insights.GetServerStats, request, True, timeout, metadata)

    async def get_online_quality(
        self,
        *,
        bucket_seconds: int = 0,
        buckets: int = 0,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> insight_service_pb2.GetOnlineQualityResponse:
        """What became of the items Recommend issued: feedback by reason, layer, position and time
        (bucket_seconds 0 means 60, buckets 0 means 30)."""
        request = insight_service_pb2.GetOnlineQualityRequest(bucket_seconds=bucket_seconds, buckets=buckets)
        return await self._unary(self._insights.GetOnlineQuality, request, True, timeout, metadata)

    # -- the retry loop (see driftwise_client._retry for why a loop) ---------------------------

    async def _unary(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        idempotent: bool,
        timeout: float | None,
        metadata: Metadata | None,
    ) -> Resp:
        attempts = Attempts(self.retry, self.timeout if timeout is None else timeout, idempotent=idempotent)
        while True:
            attempt_timeout = attempts.start()
            try:
                return await method(
                    request, timeout=attempt_timeout, metadata=self._spec.call_metadata(metadata)
                )
            except grpc.RpcError as rpc_error:
                error = from_rpc_error(rpc_error)
                delay = attempts.retry_delay(error)
                if delay is None:
                    raise attempts.finish(error) from rpc_error
            await asyncio.sleep(delay)


def _request_iterator(requests: Iterable[Req] | AsyncIterable[Req]) -> AsyncIterator[Req] | Iterator[Req]:
    if isinstance(requests, AsyncIterable):
        return aiter(requests)
    return iter(requests)


class AsyncBidiStream(Generic[Req, Resp]):
    """A bidirectional stream: `await send()` requests and read answers (`async for`, `read()` or
    `exchange()`). As an async context manager, a normal exit half-closes the stream and waits for
    the remaining answers; an exception cancels it. Stream errors raise DriftwiseError."""

    def __init__(
        self,
        method: grpc.aio.StreamStreamMultiCallable[Req, Resp],
        requests: Iterable[Req] | AsyncIterable[Req] | None,
        timeout: float | None,
        metadata: tuple[tuple[str, str | bytes], ...] | None,
    ) -> None:
        self._fed = requests is not None
        iterator = None if requests is None else _request_iterator(requests)
        self._call = method(iterator, timeout=timeout, metadata=metadata)

    async def send(self, request: Req) -> None:
        """Write one request (not allowed when the stream was opened with requests)."""
        if self._fed:
            raise RuntimeError("this stream sends the requests it was opened with")
        try:
            await self._call.write(request)
        except grpc.RpcError as rpc_error:
            raise from_rpc_error(rpc_error) from rpc_error

    async def read(self) -> Resp | None:
        """The next answer, or None once the server has ended the stream."""
        try:
            response = await self._call.read()
        except grpc.RpcError as rpc_error:
            raise from_rpc_error(rpc_error) from rpc_error
        if response is grpc.aio.EOF:
            return None
        return response  # type: ignore[return-value]

    async def exchange(self, request: Req) -> Resp:
        """send(request) and return its answer (the server answers every message, in order)."""
        await self.send(request)
        response = await self.read()
        if response is None:
            raise RuntimeError("the stream ended before answering")
        return response

    async def done_writing(self) -> None:
        """Half-close: no more requests; the answers still come."""
        if not self._fed:
            await self._call.done_writing()

    def cancel(self) -> None:
        self._call.cancel()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Resp:
        response = await self.read()
        if response is None:
            raise StopAsyncIteration
        return response

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.cancel()
            return
        await self.done_writing()
        while await self.read() is not None:  # drain: everything sent has been processed
            pass


class AsyncResponseStream(Generic[T]):
    """A server stream (WatchProfile): `async for` it; cancel() or leave `async with` to stop."""

    def __init__(self, call: grpc.aio.UnaryStreamCall[Any, Any], convert: Callable[[Any], T]) -> None:
        self._call = call
        self._convert = convert

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        try:
            response = await self._call.read()
        except grpc.RpcError as rpc_error:
            raise from_rpc_error(rpc_error) from rpc_error
        if response is grpc.aio.EOF:
            raise StopAsyncIteration
        return self._convert(response)

    def cancel(self) -> None:
        self._call.cancel()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()
