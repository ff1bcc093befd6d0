"""RankingService: recommendations from a user's live interests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from driftwise.api import convert
from driftwise.engine import Engine
from driftwise.v1 import ranking_service_pb2 as pb
from driftwise.v1 import ranking_service_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class RankingServicer(ranking_service_pb2_grpc.RankingServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._limits = engine.settings.limits

    async def Recommend(self, request: pb.RecommendRequest, context: Context) -> pb.RecommendResponse:
        query = convert.recommend_query(request, self._limits)
        return convert.recommendations_to_proto(await self._engine.recommend(query), self._engine.topic_model)

    async def Rank(self, request: pb.RankRequest, context: Context) -> pb.RankResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Rank is not implemented yet")
        raise AssertionError("unreachable")

    async def StreamFeedback(
        self, request_iterator: AsyncIterator[pb.StreamFeedbackRequest], context: Context
    ) -> AsyncIterator[pb.StreamFeedbackResponse]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "StreamFeedback is not implemented yet")
        yield pb.StreamFeedbackResponse()  # unreachable: makes this an async generator
