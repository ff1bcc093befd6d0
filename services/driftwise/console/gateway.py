"""The console's one gRPC client of the target server: every call the pages need, each returning
plain JSON values (driftwise.console.messages) or raising CallFailed with the status.

One channel for all browser sessions; each call carries the session's bearer token: as per-call
credentials over TLS, or, over plaintext, as an `authorization` header, which is allowed only to a
loopback target (the same rule as the Python client). A call the target does not implement (a
cluster ranking replica answers only part of InsightService) fails with UNIMPLEMENTED, which the
pages show as "not available from this server".
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from driftwise.console import messages
from driftwise.console.messages import Json
from driftwise_client._channel import is_loopback
from driftwise_client.options import TlsConfig
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

CALL_TIMEOUT_SECONDS = 15.0
FEEDBACK_TYPES = {
    "like": common_pb2.EVENT_TYPE_LIKE,
    "dislike": common_pb2.EVENT_TYPE_DISLIKE,
    "skip": common_pb2.EVENT_TYPE_SKIP,
}

# gRPC status -> (HTTP status, what the page says); the server's own message follows it
_HTTP = {
    grpc.StatusCode.UNIMPLEMENTED: (501, "not available from this server"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "a token is needed"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "the token lacks the scope for this"),
    grpc.StatusCode.NOT_FOUND: (404, "not found"),
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid request"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "not possible on this server"),
    grpc.StatusCode.UNAVAILABLE: (503, "the server is unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "the server did not answer in time"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "the server is busy"),
}


class CallFailed(Exception):
    """A call the target refused or could not answer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def of(cls, error: grpc.aio.AioRpcError) -> CallFailed:
        return cls(error.code(), error.details() or "")

    @property
    def http_status(self) -> int:
        return _HTTP.get(self.code, (502, ""))[0]

    def to_json(self) -> Json:
        summary = _HTTP.get(self.code, (502, "the call failed"))[1]
        return {"code": self.code.name, "summary": summary, "message": self.message}


class TokenInClearText(ValueError):
    """A token would go in clear text to a target that is not on this machine."""


@dataclass(frozen=True)
class Target:
    """Where the server is and how to reach it."""

    address: str
    tls: TlsConfig | None = None

    @property
    def token_allowed(self) -> bool:
        return self.tls is not None or is_loopback(self.address)

    def check_token(self) -> None:
        if not self.token_allowed:
            raise TokenInClearText(
                f"refusing to send a token in clear text to {self.address}: give the console the "
                "target's TLS files (--tls-ca)"
            )


class Gateway:
    """The target's services over one channel; every method takes the caller's token (or None)."""

    def __init__(self, target: Target, timeout: float = CALL_TIMEOUT_SECONDS) -> None:
        self.target = target
        self.timeout = timeout
        options = [("grpc.primary_user_agent", "driftwise-console")]
        if target.tls is None:
            self._channel = grpc.aio.insecure_channel(target.address, options=options)
        else:
            if target.tls.server_name_override:
                options.append(("grpc.ssl_target_name_override", target.tls.server_name_override))
            self._channel = grpc.aio.secure_channel(
                target.address, target.tls.channel_credentials(), options=options
            )
        self._insight = insight_service_pb2_grpc.InsightServiceStub(self._channel)
        self._profiles = profile_service_pb2_grpc.ProfileServiceStub(self._channel)
        self._ranking = ranking_service_pb2_grpc.RankingServiceStub(self._channel)
        self._ingest = ingest_service_pb2_grpc.IngestServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    def _auth(self, token: str | None) -> dict[str, Any]:
        """The keyword arguments that send `token` with a call."""
        if token is None:
            return {}
        self.target.check_token()
        if self.target.tls is not None:
            return {"credentials": grpc.access_token_call_credentials(token)}
        return {"metadata": (("authorization", f"Bearer {token}"),)}

    async def _unary(self, method: Any, request: Any, token: str | None) -> Any:
        try:
            return await method(request, timeout=self.timeout, **self._auth(token))
        except grpc.aio.AioRpcError as error:
            raise CallFailed.of(error) from None

    # -- the server ------------------------------------------------------------------------------

    async def server_stats(self, token: str | None) -> Json:
        r = await self._unary(
            self._insight.GetServerStats, insight_service_pb2.GetServerStatsRequest(), token
        )
        return messages.server_stats(r)

    async def model_status(self, token: str | None) -> Json:
        r = await self._unary(
            self._ranking.GetModelStatus, ranking_service_pb2.GetModelStatusRequest(), token
        )
        return messages.model_statuses(r)

    async def online_quality(self, token: str | None, bucket_seconds: int, buckets: int) -> Json:
        request = insight_service_pb2.GetOnlineQualityRequest(bucket_seconds=bucket_seconds, buckets=buckets)
        return messages.online_quality(await self._unary(self._insight.GetOnlineQuality, request, token))

    async def token_accepted(self, token: str) -> bool:
        """Whether the server knows the token: any answer but UNAUTHENTICATED (a missing scope
        still means a valid token)."""
        try:
            await self._unary(
                self._ranking.GetModelStatus, ranking_service_pb2.GetModelStatusRequest(), token
            )
        except CallFailed as failed:
            if failed.code == grpc.StatusCode.UNAUTHENTICATED:
                return False
            if failed.code not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNIMPLEMENTED):
                raise
        return True

    # -- users -----------------------------------------------------------------------------------

    async def users(self, token: str | None, prefix: str, page_token: str, page_size: int = 50) -> Json:
        request = insight_service_pb2.ListUsersRequest(
            page_size=page_size, page_token=page_token, user_id_prefix=prefix
        )
        return messages.users_page(await self._unary(self._insight.ListUsers, request, token))

    async def profile(self, token: str | None, user_id: str, temperature: float) -> Json:
        request = profile_service_pb2.GetProfileRequest(
            user_id=user_id, top_topics=8, recent_events=20, topic_temperature=temperature
        )
        return messages.profile((await self._unary(self._profiles.GetProfile, request, token)).profile)

    async def topic_history(self, token: str | None, user_id: str, max_points: int = 120) -> Json:
        request = insight_service_pb2.GetTopicHistoryRequest(
            user_id=user_id, max_points=max_points, top_topics=5
        )
        return messages.topic_history(await self._unary(self._insight.GetTopicHistory, request, token))

    async def recommendations(
        self, token: str | None, user_id: str, diversity: float, temperature: float, count: int = 10
    ) -> Json:
        request = ranking_service_pb2.RecommendRequest(
            user_id=user_id, count=count, diversity=diversity, topic_temperature=temperature
        )
        return messages.recommendations(await self._unary(self._ranking.Recommend, request, token))

    async def feedback(
        self, token: str | None, user_id: str, item_id: str, kind: str, impression_id: str
    ) -> Json:
        """Record LIKE / DISLIKE / SKIP on a shown item as an event (IngestEvents: scope events:write)
        carrying the list's id; returns the acknowledgement."""
        event = common_pb2.Event(
            event_id=f"console-{uuid.uuid4().hex}",
            user_id=user_id,
            type=FEEDBACK_TYPES[kind],
            item_id=item_id,
            impression_id=impression_id,
            context=common_pb2.Context(surface="driftwise-console"),
        )
        request = ingest_service_pb2.IngestEventsRequest(events=[event])
        response = await self._unary(self._ingest.IngestEvents, request, token)
        ack = response.acks[0]
        return {"event_id": ack.event_id, "duplicate": ack.duplicate, "profile_version": ack.profile_version}

    async def watch_profile(self, token: str | None, user_id: str) -> AsyncIterator[Json]:
        """The user's profile now and after each change, until the caller stops reading; CallFailed
        when the stream ends with an error (NOT_FOUND once the user is deleted)."""
        call = self._profiles.WatchProfile(
            profile_service_pb2.WatchProfileRequest(user_id=user_id), **self._auth(token)
        )
        try:
            async for response in call:
                yield messages.profile(response.profile)
        except grpc.aio.AioRpcError as error:
            raise CallFailed.of(error) from None
        finally:
            call.cancel()

    # -- the catalogue ---------------------------------------------------------------------------

    async def items(self, token: str | None, title: str, page_token: str, page_size: int = 50) -> Json:
        request = insight_service_pb2.ListItemsRequest(
            page_size=page_size, page_token=page_token, title_contains=title
        )
        return messages.items_page(await self._unary(self._insight.ListItems, request, token))

    async def search_items(self, token: str | None, text: str, count: int = 20) -> Json:
        request = insight_service_pb2.SearchItemsRequest(text=text, count=count)
        return messages.search_hits(await self._unary(self._insight.SearchItems, request, token))

    async def item(self, token: str | None, item_id: str, neighbours: int = 10) -> Json:
        request = insight_service_pb2.GetItemRequest(item_id=item_id, neighbours=neighbours)
        return messages.item_detail(await self._unary(self._insight.GetItem, request, token))
