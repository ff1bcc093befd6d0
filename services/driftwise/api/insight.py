"""InsightService: what the server holds and how it is doing, read-only (docs/insights.md)."""

from __future__ import annotations

from typing import Any

import grpc

from driftwise.api import insight_convert as convert
from driftwise.api.backends import InsightBackend
from driftwise_client.v1 import insight_service_pb2 as pb
from driftwise_client.v1 import insight_service_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class InsightServicer(insight_service_pb2_grpc.InsightServiceServicer):
    def __init__(self, engine: InsightBackend) -> None:
        self._engine = engine
        self._limits = engine.settings.limits

    async def ListUsers(self, request: pb.ListUsersRequest, context: Context) -> pb.ListUsersResponse:
        prefix, after, size = convert.list_users_request(request, self._limits)
        return convert.users_to_proto(await self._engine.list_users(prefix, after, size), prefix)

    async def ListItems(self, request: pb.ListItemsRequest, context: Context) -> pb.ListItemsResponse:
        title, after, size = convert.list_items_request(request, self._limits)
        return convert.items_to_proto(await self._engine.list_items(title, after, size), title)

    async def SearchItems(self, request: pb.SearchItemsRequest, context: Context) -> pb.SearchItemsResponse:
        text, count = convert.search_items_request(request, self._limits)
        return pb.SearchItemsResponse(
            items=convert.hits_to_proto(await self._engine.search_items(text, count))
        )

    async def GetItem(self, request: pb.GetItemRequest, context: Context) -> pb.GetItemResponse:
        item_id, neighbours = convert.get_item_request(request, self._limits)
        return convert.item_detail_to_proto(await self._engine.get_item(item_id, neighbours))

    async def GetTopicHistory(
        self, request: pb.GetTopicHistoryRequest, context: Context
    ) -> pb.GetTopicHistoryResponse:
        user_id, max_points, top_topics = convert.topic_history_request(request, self._limits)
        history = await self._engine.topic_history(user_id, max_points, top_topics)
        return convert.topic_history_to_proto(history)

    async def GetServerStats(
        self, request: pb.GetServerStatsRequest, context: Context
    ) -> pb.GetServerStatsResponse:
        return convert.server_stats_to_proto(await self._engine.server_stats())

    async def GetOnlineQuality(
        self, request: pb.GetOnlineQualityRequest, context: Context
    ) -> pb.GetOnlineQualityResponse:
        bucket_seconds, buckets = convert.online_quality_request(request)
        return convert.online_quality_to_proto(self._engine.online_quality(bucket_seconds, buckets))
