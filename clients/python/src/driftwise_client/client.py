"""The synchronous client: DriftwiseClient, over one grpc.Channel, and its stream objects."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar, cast

import grpc

from driftwise_client import messages
from driftwise_client._channel import ChannelSpec, TokenSource, channel_spec
from driftwise_client._retry import Attempts
from driftwise_client._version import __version__
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

__all__ = ["BidiStream", "DriftwiseClient", "ResponseStream"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")
T = TypeVar("T")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
Metadata = Sequence[tuple[str, str | bytes]]

DEFAULT_TIMEOUT = 10.0
"""Default deadline of a unary call, seconds (streams have none unless given)."""


class DriftwiseClient:
    """Synchronous client of the four Driftwise services over one channel.

    `timeout` is every unary call's default deadline in seconds (each method's `timeout=`
    overrides it; the deadline covers all retries). Idempotent unary calls - every unary method
    of this API: reads, upserts and deletes, and IngestEvents whose events carry their event_id
    (the server's idempotency key) - are retried per `retry` on UNAVAILABLE, ABORTED and
    DEADLINE_EXCEEDED of one attempt. Streams are never retried. Failed calls raise
    driftwise_client.errors.DriftwiseError subclasses.

    `tls` makes the channel secure (mutual TLS with a client certificate); `token` (a string or a
    function returning one) sends `authorization: Bearer <token>` with every call - as call
    credentials over TLS; over an insecure channel only to a loopback target or with
    allow_insecure_token=True. `options` are extra gRPC channel arguments.
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
            self._channel = grpc.insecure_channel(target, options=self._spec.options)
        else:
            self._channel = grpc.secure_channel(target, self._spec.credentials, options=self._spec.options)
        self._ingest = ingest_service_pb2_grpc.IngestServiceStub(self._channel)
        self._profiles = profile_service_pb2_grpc.ProfileServiceStub(self._channel)
        self._ranking = ranking_service_pb2_grpc.RankingServiceStub(self._channel)
        self._insights = insight_service_pb2_grpc.InsightServiceStub(self._channel)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def channel(self) -> grpc.Channel:
        """The underlying channel (for other stubs, e.g. health checks)."""
        return self._channel

    def wait_until_ready(self, timeout: float | None = None) -> None:
        """Block until the channel is connected (raises Unavailable after `timeout` seconds)."""
        ready = grpc.channel_ready_future(self._channel)
        try:
            ready.result(timeout=timeout or self.timeout)
        except grpc.FutureTimeoutError:
            ready.cancel()
            raise Unavailable(grpc.StatusCode.UNAVAILABLE, f"{self._spec.target} not ready") from None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- IngestService -------------------------------------------------------------------------

    def upsert_items(
        self,
        items: Iterable[common_pb2.Item],
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> ingest_service_pb2.UpsertItemsResponse:
        """Insert or replace items (idempotent: retried). At most the server's batch limit (1000)."""
        return self._unary(
            self._ingest.UpsertItems, messages.upsert_items_request(items), True, timeout, metadata
        )

    def delete_items(
        self,
        item_ids: Iterable[str],
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> ingest_service_pb2.DeleteItemsResponse:
        """Delete items; unknown ids are ignored (idempotent: retried)."""
        return self._unary(
            self._ingest.DeleteItems, messages.delete_items_request(item_ids), True, timeout, metadata
        )

    def ingest_events(
        self,
        events: Iterable[common_pb2.Event],
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> ingest_service_pb2.IngestEventsResponse:
        """Record a batch of events. Every event needs its event_id (new_event makes one): it is
        the idempotency key, so a retried batch is applied once (acks say `duplicate`)."""
        request = messages.ingest_events_request(events)
        idempotent = all(e.event_id for e in request.events)  # else the server rejects it anyway
        return self._unary(self._ingest.IngestEvents, request, idempotent, timeout, metadata)

    def stream_events(
        self,
        requests: Iterable[ingest_service_pb2.StreamEventsRequest] | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> BidiStream[ingest_service_pb2.StreamEventsRequest, ingest_service_pb2.StreamEventsResponse]:
        """Open a StreamEvents stream: one answer (ack or per-message error) per event, in order.

        Without `requests`, send() messages (messages.stream_event_request(event)) and iterate the
        answers; with them, they are sent as the stream is read. No deadline unless `timeout`."""
        return BidiStream(self._ingest.StreamEvents, requests, timeout, self._spec.call_metadata(metadata))

    # -- RankingService ------------------------------------------------------------------------

    def recommend(
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
        """Recommend items for a user (count 0 means 10). See iter_recommendations for pages.
        `topic_temperature` previews another temperature of the topic weights (0: the server's)."""
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
        return self._unary(self._ranking.Recommend, request, True, timeout, metadata)

    def iter_recommendation_pages(
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
    ) -> Iterator[ranking_service_pb2.RecommendResponse]:
        """Pages of recommendations, following next_page_token until the server has no more (or
        max_pages). Each page is its own call with its own deadline; pages never repeat items."""
        categories, exclude_item_ids = list(categories), list(exclude_item_ids)
        token, pages = "", 0
        while max_pages is None or pages < max_pages:
            page = self.recommend(
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

    def iter_recommendations(
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
    ) -> Iterator[ranking_service_pb2.ScoredItem]:
        """Recommended items, best first, fetched `page_size` at a time (see
        iter_recommendation_pages; use that one to get each page's recommendation_id)."""
        produced = 0
        for page in self.iter_recommendation_pages(
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

    def rank(
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
        return self._unary(self._ranking.Rank, request, True, timeout, metadata)

    def stream_feedback(
        self,
        requests: Iterable[ranking_service_pb2.StreamFeedbackRequest] | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> BidiStream[ranking_service_pb2.StreamFeedbackRequest, ranking_service_pb2.StreamFeedbackResponse]:
        """Open a StreamFeedback stream: each feedback message (messages.feedback_request) gets
        refreshed recommendations (or its own error) back, in order.

            with client.stream_feedback() as stream:
                answer = stream.exchange(feedback_request(event, count=10))

        Or pass `requests` and iterate the answers. No deadline unless `timeout`."""
        return BidiStream(self._ranking.StreamFeedback, requests, timeout, self._spec.call_metadata(metadata))

    # -- ProfileService ------------------------------------------------------------------------

    def get_profile(
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
        return self._unary(self._profiles.GetProfile, request, True, timeout, metadata).profile

    def watch_profile(
        self, user_id: str, *, timeout: float | None = None, metadata: Metadata | None = None
    ) -> ResponseStream[profile_service_pb2.Profile]:
        """The user's profile now and after each change, until cancelled (or NotFound when the
        user's data is deleted). No deadline unless `timeout`; not retried."""
        call = self._profiles.WatchProfile(
            profile_service_pb2.WatchProfileRequest(user_id=user_id),
            timeout=timeout,
            metadata=self._spec.call_metadata(metadata),
        )
        return ResponseStream(call, lambda response: response.profile)

    def delete_user_data(
        self, user_id: str, *, timeout: float | None = None, metadata: Metadata | None = None
    ) -> profile_service_pb2.DeleteUserDataResponse:
        """Forget the user: events, profile and interest vectors (idempotent: retried)."""
        request = profile_service_pb2.DeleteUserDataRequest(user_id=user_id)
        return self._unary(self._profiles.DeleteUserData, request, True, timeout, metadata)

    # -- InsightService ------------------------------------------------------------------------

    def list_users(
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
        return self._unary(self._insights.ListUsers, request, True, timeout, metadata)

    def iter_users(
        self,
        *,
        page_size: int = 0,
        user_id_prefix: str = "",
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Iterator[insight_service_pb2.UserSummary]:
        """Every user with events (whose id starts with `user_id_prefix`), page by page."""
        token = ""
        while True:
            page = self.list_users(
                page_size=page_size,
                page_token=token,
                user_id_prefix=user_id_prefix,
                timeout=timeout,
                metadata=metadata,
            )
            yield from page.users
            token = page.next_page_token
            if not token:
                return

    def list_items(
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
        return self._unary(self._insights.ListItems, request, True, timeout, metadata)

    def iter_items(
        self,
        *,
        page_size: int = 0,
        title_contains: str = "",
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Iterator[common_pb2.Item]:
        """Every item of the catalogue (whose title contains `title_contains`, ignoring case)."""
        token = ""
        while True:
            page = self.list_items(
                page_size=page_size,
                page_token=token,
                title_contains=title_contains,
                timeout=timeout,
                metadata=metadata,
            )
            yield from page.items
            token = page.next_page_token
            if not token:
                return

    def search_items(
        self, text: str, *, count: int = 0, timeout: float | None = None, metadata: Metadata | None = None
    ) -> list[insight_service_pb2.ItemHit]:
        """The items nearest a free text, nearest first (count 0 means 10)."""
        request = insight_service_pb2.SearchItemsRequest(text=text, count=count)
        return list(self._unary(self._insights.SearchItems, request, True, timeout, metadata).items)

    def get_item(
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
        return self._unary(self._insights.GetItem, request, True, timeout, metadata)

    def get_topic_history(
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
        return list(self._unary(self._insights.GetTopicHistory, request, True, timeout, metadata).points)

    def get_server_stats(
        self, *, timeout: float | None = None, metadata: Metadata | None = None
    ) -> insight_service_pb2.GetServerStatsResponse:
        """The answering server's counts, event rate, Recommend latency, dependencies and model."""
        request = insight_service_pb2.GetServerStatsRequest()
        return self._unary(self._insights.GetServerStats, request, True, timeout, metadata)

    def get_online_quality(
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
        return self._unary(self._insights.GetOnlineQuality, request, True, timeout, metadata)

    # -- the retry loop -------------------------------------------------------------------------

    def _unary(
        self,
        method: grpc.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        idempotent: bool,
        timeout: float | None,
        metadata: Metadata | None,
    ) -> Resp:
        attempts = Attempts(self.retry, self.timeout if timeout is None else timeout, idempotent=idempotent)
        while True:
            attempt_timeout = attempts.start()
            try:
                return method(request, timeout=attempt_timeout, metadata=self._spec.call_metadata(metadata))
            except grpc.RpcError as rpc_error:
                error = from_rpc_error(rpc_error)
                delay = attempts.retry_delay(error)
                if delay is None:
                    raise attempts.finish(error) from rpc_error
            time.sleep(delay)


_END = object()


class BidiStream(Generic[Req, Resp]):
    """A bidirectional stream: send() requests, iterate (or exchange()) the answers.

    Used as a context manager, leaving the block normally half-closes the stream and waits for the
    server's remaining answers (so everything sent is processed); leaving it with an exception
    cancels the stream. Errors of the stream itself raise DriftwiseError; per-message errors
    come back inside the answers (their `error` field)."""

    def __init__(
        self,
        method: grpc.StreamStreamMultiCallable[Req, Resp],
        requests: Iterable[Req] | None,
        timeout: float | None,
        metadata: tuple[tuple[str, str | bytes], ...] | None,
    ) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._fed = requests is not None
        self._half_closed = False
        self._call = method(self._requests(requests), timeout=timeout, metadata=metadata)

    def _requests(self, requests: Iterable[Req] | None) -> Iterator[Req]:
        # gRPC consumes this on its own thread
        if requests is not None:
            yield from requests
            return
        while (item := self._queue.get()) is not _END:
            yield cast(Req, item)

    def send(self, request: Req) -> None:
        """Queue one request for sending (not allowed when the stream was opened with requests)."""
        if self._fed:
            raise RuntimeError("this stream sends the requests it was opened with")
        if self._half_closed:
            raise RuntimeError("done_writing() was called: no more requests")
        self._queue.put(request)

    def exchange(self, request: Req) -> Resp:
        """send(request) and return its answer (the server answers every message, in order)."""
        self.send(request)
        try:
            return next(self)
        except StopIteration:
            raise RuntimeError("the stream ended before answering") from None

    def done_writing(self) -> None:
        """Half-close: no more requests; the answers still come."""
        if not self._fed and not self._half_closed:
            self._half_closed = True
            self._queue.put(_END)

    def cancel(self) -> None:
        self._call.cancel()
        self.done_writing()  # release gRPC's request thread

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Resp:
        try:
            return next(self._call)
        except grpc.RpcError as rpc_error:
            raise from_rpc_error(rpc_error) from rpc_error

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.cancel()
            return
        self.done_writing()
        for _ in self:  # drain: the server has processed everything once the stream ends
            pass


class _StreamingCall(Protocol[R_co]):
    """What grpc returns for a server-streaming call: an iterator that can be cancelled."""

    def __next__(self) -> R_co: ...

    def cancel(self) -> bool: ...


class ResponseStream(Generic[T]):
    """A server stream (WatchProfile): iterate it; cancel() or leave the `with` block to stop."""

    def __init__(self, call: _StreamingCall[R], convert: Callable[[R], T]) -> None:
        self._call: _StreamingCall[Any] = call
        self._convert: Callable[[Any], T] = convert

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        try:
            return self._convert(next(self._call))
        except grpc.RpcError as rpc_error:
            raise from_rpc_error(rpc_error) from rpc_error

    def cancel(self) -> None:
        self._call.cancel()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()
