"""InsightService messages <-> engine values: each request validated on the way in with the rules of
`driftwise.api.validation` (every violation at once, the field named), the list methods' page
tokens (`driftwise.api.page_tokens`), and the engine's answers mapped to messages."""

from __future__ import annotations

import math
from collections.abc import Sequence

from driftwise.api.convert import model_status_to_proto, timestamp
from driftwise.api.page_tokens import decode_list_token, encode_list_token
from driftwise.api.validation import ID_BYTES, Violations
from driftwise.engine.types import (
    Dependency,
    ItemDetail,
    ItemHit,
    ItemPage,
    ServerStats,
    TopicHistory,
    UserPage,
)
from driftwise.model.online_quality import Counts, QualityReport
from driftwise.settings import LimitSettings
from driftwise.storage.vector_store import UNKNOWN_TIME, StoredItem
from driftwise_client.v1 import common_pb2, profile_service_pb2, ranking_service_pb2
from driftwise_client.v1 import insight_service_pb2 as pb

# the bounds the proto's comments give: (default for 0, most)
PAGE_SIZE = (50, 500)
SEARCH_COUNT = (10, 100)
NEIGHBOURS = (10, 100)
MAX_POINTS = (100, 1000)
TOP_TOPICS = (5, 20)
BUCKETS = (30, 1440)
BUCKET_SECONDS = (60, 10, 3600)  # default, least, most


def _bounded(v: Violations, field: str, value: int, default: int, most: int) -> int:
    if not 0 <= value <= most:
        v.add(field, f"must be between 0 (the default, {default}) and {most}")
    return value or default


def _cursor(
    v: Violations, token: str, method: str, filter_name: str, filter_value: str
) -> list[object] | None:
    """The token's cursor; None (and the violation added) if the token is refused."""
    try:
        return decode_list_token(token, method, filter_name, filter_value)
    except ValueError as exc:
        v.add("page_token", str(exc))
        return None


def _an_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value.encode()) <= ID_BYTES


# -- ListUsers ------------------------------------------------------------------------------------


def list_users_request(
    request: pb.ListUsersRequest, limits: LimitSettings
) -> tuple[str, tuple[float, str] | None, int]:
    """(user id prefix, the last user of the previous page as (newest event time, id), page size)."""
    v = Violations()
    size = _bounded(v, "page_size", request.page_size, *PAGE_SIZE)
    v.check_id("user_id_prefix", request.user_id_prefix, limits, required=False, lengths_only=True)
    after = None
    if request.page_token:
        cursor = _cursor(v, request.page_token, "ListUsers", "user_id_prefix", request.user_id_prefix)
        time_ = cursor[0] if cursor is not None and len(cursor) == 2 else None
        if cursor is not None and isinstance(time_, int | float) and _a_time(time_) and _an_id(cursor[1]):
            after = (float(time_), str(cursor[1]))
        elif cursor is not None:
            v.add("page_token", "is not a token this method issued")
    v.raise_if_any()
    return request.user_id_prefix, after, size


def _a_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def users_to_proto(page: UserPage, prefix: str) -> pb.ListUsersResponse:
    token = ""
    if page.more and page.users:
        last = page.users[-1]
        token = encode_list_token("ListUsers", [last.last_event_time, last.user_id], prefix)
    return pb.ListUsersResponse(
        users=[
            pb.UserSummary(
                user_id=u.user_id,
                event_count=u.event_count,
                last_event_time=timestamp(u.last_event_time),
                profile_version=u.profile_version,
            )
            for u in page.users
        ],
        next_page_token=token,
        total_users=page.total,
    )


# -- ListItems, SearchItems, GetItem -----------------------------------------------------------


def list_items_request(request: pb.ListItemsRequest, limits: LimitSettings) -> tuple[str, str | None, int]:
    """(title filter, the item id of the last item of the previous page, page size)."""
    v = Violations()
    size = _bounded(v, "page_size", request.page_size, *PAGE_SIZE)
    if len(request.title_contains) > limits.max_title_chars:
        v.add("title_contains", f"is longer than {limits.max_title_chars} characters")
    after = None
    if request.page_token:
        cursor = _cursor(v, request.page_token, "ListItems", "title_contains", request.title_contains)
        if cursor is not None and len(cursor) == 1 and _an_id(cursor[0]):
            after = str(cursor[0])
        elif cursor is not None:
            v.add("page_token", "is not a token this method issued")
    v.raise_if_any()
    return request.title_contains, after, size


def items_to_proto(page: ItemPage, title_contains: str) -> pb.ListItemsResponse:
    token = ""
    if page.more and page.items:
        token = encode_list_token("ListItems", [page.items[-1].item_id], title_contains)
    return pb.ListItemsResponse(
        items=[item_to_proto(item) for item in page.items], next_page_token=token, total_items=page.total
    )


def search_items_request(request: pb.SearchItemsRequest, limits: LimitSettings) -> tuple[str, int]:
    v = Violations()
    if not request.text.strip():
        v.add("text", "is required")
    v.check_text("text", request.text, limits)
    count = _bounded(v, "count", request.count, *SEARCH_COUNT)
    v.raise_if_any()
    return request.text, count


def hits_to_proto(hits: Sequence[ItemHit]) -> list[pb.ItemHit]:
    return [pb.ItemHit(item=item_to_proto(h.item), similarity=h.similarity) for h in hits]


def get_item_request(request: pb.GetItemRequest, limits: LimitSettings) -> tuple[str, int]:
    v = Violations()
    v.check_id("item_id", request.item_id, limits)
    neighbours = _bounded(v, "neighbours", request.neighbours, *NEIGHBOURS)
    v.raise_if_any()
    return request.item_id, neighbours


def item_detail_to_proto(detail: ItemDetail) -> pb.GetItemResponse:
    return pb.GetItemResponse(
        item=item_to_proto(detail.item),
        neighbours=hits_to_proto(detail.neighbours),
        followed_by=[pb.FollowingItem(item=item_to_proto(f.item), share=f.share) for f in detail.followed_by],
        recent_interactions=[
            pb.ItemInteraction(
                user_id=r.user_id,
                event_id=r.event_id,
                type=common_pb2.EventType.ValueType(r.type),
                event_time=timestamp(r.time),
            )
            for r in detail.recent
        ],
        positive_events=detail.positive_events,
    )


def item_to_proto(item: StoredItem) -> common_pb2.Item:
    """What the vector store keeps of an item (no description or tags: only their vector is kept)."""
    message = common_pb2.Item(
        item_id=item.item_id, title=item.title, category=item.category, attributes=item.attributes
    )
    if item.create_time != UNKNOWN_TIME:
        message.create_time.FromSeconds(item.create_time)
    return message


# -- GetTopicHistory ---------------------------------------------------------------------------


def topic_history_request(request: pb.GetTopicHistoryRequest, limits: LimitSettings) -> tuple[str, int, int]:
    v = Violations()
    v.check_id("user_id", request.user_id, limits)
    max_points = _bounded(v, "max_points", request.max_points, *MAX_POINTS)
    top_topics = _bounded(v, "top_topics", request.top_topics, *TOP_TOPICS)
    v.raise_if_any()
    return request.user_id, max_points, top_topics


def topic_history_to_proto(history: TopicHistory) -> pb.GetTopicHistoryResponse:
    labels = history.labels
    return pb.GetTopicHistoryResponse(
        points=[
            pb.TopicHistoryPoint(
                time=timestamp(point.time),
                event_id=point.event_id,
                layers=[
                    pb.LayerTopics(
                        layer=common_pb2.InterestLayer.ValueType(layer.layer),
                        mass=layer.mass,
                        top_topics=[
                            profile_service_pb2.TopicWeight(
                                topic=labels[t.topic], weight=t.weight, affinity=t.affinity
                            )
                            for t in layer.top
                        ],
                    )
                    for layer in point.layers
                ],
            )
            for point in history.points
        ]
    )


# -- GetServerStats, GetOnlineQuality ------------------------------------------------------------


def server_stats_to_proto(stats: ServerStats) -> pb.GetServerStatsResponse:
    latency = stats.recommend_latency
    return pb.GetServerStatsResponse(
        items=stats.items,
        users=stats.users,
        events=stats.events,
        events_per_second=stats.events_per_second,
        recommend_latency=pb.LatencySummary(
            calls=latency.calls,
            p50_ms=latency.p50_ms,
            p99_ms=latency.p99_ms,
            window_seconds=latency.window_seconds,
        ),
        encoder=_dependency(stats.encoder),
        vector_store=_dependency(stats.vector_store),
        encoder_model=stats.encoder_model,
        embedding_dimension=stats.embedding_dimension,
        model=model_status_to_proto(stats.refitted),
        start_time=timestamp(stats.started_at),
        role=stats.role,
    )


def _dependency(d: Dependency) -> pb.DependencyHealth:
    return pb.DependencyHealth(up=d.up, address=d.address, detail=d.detail)


def online_quality_request(request: pb.GetOnlineQualityRequest) -> tuple[int, int]:
    """(bucket width in seconds, buckets)."""
    v = Violations()
    default, least, most = BUCKET_SECONDS
    if request.bucket_seconds != 0 and not least <= request.bucket_seconds <= most:
        v.add("bucket_seconds", f"must be 0 (the default, {default}) or between {least} and {most}")
    buckets = _bounded(v, "buckets", request.buckets, *BUCKETS)
    v.raise_if_any()
    return request.bucket_seconds or default, buckets


def online_quality_to_proto(report: QualityReport) -> pb.GetOnlineQualityResponse:
    return pb.GetOnlineQualityResponse(
        total=_counts(report.total),
        by_reason=[
            pb.ReasonQuality(reason=ranking_service_pb2.ExplanationReason.ValueType(r), counts=_counts(c))
            for r, c in report.by_reason
        ],
        by_layer=[
            pb.LayerQuality(layer=common_pb2.InterestLayer.ValueType(layer), counts=_counts(c))
            for layer, c in report.by_layer
        ],
        by_position=[pb.PositionQuality(position=p, counts=_counts(c)) for p, c in report.by_position],
        over_time=[
            pb.TimeBucketQuality(start_time=timestamp(start), counts=_counts(c))
            for start, c in report.over_time
        ],
    )


def _counts(c: Counts) -> pb.FeedbackCounts:
    return pb.FeedbackCounts(
        issued=c.issued, clicks=c.clicks, likes=c.likes, skips=c.skips, dislikes=c.dislikes
    )
