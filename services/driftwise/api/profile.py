"""ProfileService: show and forget what Driftwise knows about a user."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from driftwise.api import convert
from driftwise.api.backends import ProfileBackend
from driftwise.api.validation import Violations
from driftwise.errors import NotFoundError
from driftwise.model.profile import UserProfile
from driftwise_client.v1 import profile_service_pb2 as pb
from driftwise_client.v1 import profile_service_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class ProfileServicer(profile_service_pb2_grpc.ProfileServiceServicer):
    def __init__(self, engine: ProfileBackend) -> None:
        self._engine = engine
        self._limits = engine.settings.limits

    async def GetProfile(self, request: pb.GetProfileRequest, context: Context) -> pb.GetProfileResponse:
        v = Violations()
        v.check_id("user_id", request.user_id, self._limits)
        if not 0 <= request.top_topics <= 50:
            v.add("top_topics", "must be between 0 and 50")
        if not 0 <= request.recent_events <= 100:
            v.add("recent_events", "must be between 0 and 100")
        if request.HasField("as_of_time"):
            v.check_timestamp("as_of_time", request.as_of_time)
        v.check_topic_temperature("topic_temperature", request.topic_temperature)
        v.raise_if_any()
        profile = await self._engine.get_profile(request.user_id)
        at = convert.seconds(request.as_of_time) if request.HasField("as_of_time") else time.time()
        top, recent, tau = request.top_topics or 5, request.recent_events or 10, request.topic_temperature
        return pb.GetProfileResponse(profile=self._to_proto(request.user_id, profile, at, top, recent, tau))

    def _to_proto(
        self,
        user_id: str,
        profile: UserProfile,
        at: float,
        top_topics: int = 5,
        recent: int = 10,
        tau: float = 0.0,
    ) -> pb.Profile:
        """`tau`: a preview of another topic temperature (0: the server's); nothing is stored."""
        view = self._engine.explain_profile(profile, at, top_topics, recent, tau or None)
        return convert.profile_to_proto(view, user_id=user_id)

    async def WatchProfile(
        self, request: pb.WatchProfileRequest, context: Context
    ) -> AsyncIterator[pb.WatchProfileResponse]:
        """The profile now and after each change, newest only for a slow reader (never a backlog);
        ends with NOT_FOUND when the user's data is deleted."""
        v = Violations()
        v.check_id("user_id", request.user_id, self._limits)
        v.raise_if_any()
        async with self._engine.watch_profile(request.user_id) as (current, watch):
            sent = -1
            profile = current
            while True:
                if profile is not None and profile.version > sent:
                    yield pb.WatchProfileResponse(
                        profile=self._to_proto(request.user_id, profile, time.time())
                    )
                    sent = profile.version
                profile = await watch.next()
                if profile is None:
                    raise NotFoundError(f"the data of user {request.user_id!r} was deleted")

    async def DeleteUserData(
        self, request: pb.DeleteUserDataRequest, context: Context
    ) -> pb.DeleteUserDataResponse:
        v = Violations()
        v.check_id("user_id", request.user_id, self._limits, lengths_only=True)
        v.raise_if_any()
        deleted, existed = await self._engine.delete_user(request.user_id)
        return pb.DeleteUserDataResponse(deleted_event_count=deleted, profile_deleted=existed)
