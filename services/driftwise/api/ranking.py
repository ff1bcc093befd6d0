"""RankingService: recommendations from a user's live interests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from driftwise.api import convert
from driftwise.api.backends import RankingBackend
from driftwise.api.errors import error_message
from driftwise.api.stream_rate import StreamRate
from driftwise.engine import RecommendQuery
from driftwise.errors import DriftwiseError
from driftwise_client.v1 import ranking_service_pb2 as pb
from driftwise_client.v1 import ranking_service_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class RankingServicer(ranking_service_pb2_grpc.RankingServiceServicer):
    def __init__(self, engine: RankingBackend) -> None:
        self._engine = engine
        self._limits = engine.settings.limits

    async def Recommend(self, request: pb.RecommendRequest, context: Context) -> pb.RecommendResponse:
        query = convert.recommend_query(request, self._limits)
        started = time.perf_counter()
        recs = await self._engine.recommend(query)
        # the engine's part, in an always-on window (GetServerStats): answered calls only
        self._engine.stats.recommend_latency.record(time.perf_counter() - started)
        return convert.recommendations_to_proto(recs, query)

    async def Rank(self, request: pb.RankRequest, context: Context) -> pb.RankResponse:
        user_id, item_ids, as_of = convert.rank_request(request, self._limits)
        recs = await self._engine.rank(user_id, item_ids, as_of)
        return convert.rank_response(recs)

    async def GetModelStatus(
        self, request: pb.GetModelStatusRequest, context: Context
    ) -> pb.GetModelStatusResponse:
        return pb.GetModelStatusResponse(shards=[convert.model_status_to_proto(self._engine.refitted)])

    async def StreamFeedback(
        self, request_iterator: AsyncIterator[pb.StreamFeedbackRequest], context: Context
    ) -> AsyncIterator[pb.StreamFeedbackResponse]:
        """One response per message, in order. Messages are handled one at a time and the next is
        read only once the previous response is sent, so gRPC flow control holds back a client that
        does not read: memory per stream stays bounded."""
        rate = StreamRate(self._limits.max_stream_messages_per_second)
        async for request in request_iterator:
            event_id = request.event.event_id
            try:
                rate.take("StreamFeedback")  # over the rate: this message only is refused
                event, count = convert.feedback_from_proto(request, self._limits, time.time())
                ack, matched = await self._engine.record_feedback(event)
            except DriftwiseError as exc:  # one bad message gets its own error; the stream goes on
                yield pb.StreamFeedbackResponse(event_id=event_id, error=error_message(exc))
                continue
            response = pb.StreamFeedbackResponse(
                event_id=event_id,
                recorded=True,
                profile_version=ack.profile_version,
                impression_match=pb.ImpressionMatch.ValueType(matched.match),
                impression_position=matched.position,
            )
            try:
                recs = await self._engine.recommend(RecommendQuery(event.event.user_id, count=count))
            except DriftwiseError as exc:  # stored, but no recommendations now (e.g. Milvus down)
                response.error.CopyFrom(error_message(exc))
            else:
                response.recommendations.CopyFrom(convert.recommendations_to_proto(recs))
            yield response
