"""Builders for the API's messages, shared by the sync and asyncio clients, plus two conveniences
for callers: `new_item` and `new_event` (which fills the idempotency key and the event time)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from google.protobuf import duration_pb2, timestamp_pb2

from driftwise_client.v1 import common_pb2, ingest_service_pb2, profile_service_pb2, ranking_service_pb2

__all__ = ["EventTypeLike", "feedback_request", "new_event", "new_item", "stream_event_request", "timestamp"]

EventTypeLike = int | str
"""An EventType: its number (common_pb2.EVENT_TYPE_LIKE) or name ("LIKE" or "EVENT_TYPE_LIKE")."""


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """A protobuf Timestamp; a naive datetime is taken as UTC."""
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value if value.tzinfo is not None else value.replace(tzinfo=UTC))
    return ts


def event_type(value: EventTypeLike) -> common_pb2.EventType.ValueType:
    if isinstance(value, str):
        name = value.upper()
        return common_pb2.EventType.Value(name if name.startswith("EVENT_TYPE_") else f"EVENT_TYPE_{name}")
    return common_pb2.EventType.ValueType(value)


def new_item(
    item_id: str,
    title: str,
    *,
    description: str = "",
    tags: Iterable[str] = (),
    category: str = "",
    create_time: datetime | None = None,
    attributes: Mapping[str, str] | None = None,
) -> common_pb2.Item:
    """A catalogue item."""
    item = common_pb2.Item(
        item_id=item_id,
        title=title,
        description=description,
        tags=list(tags),
        category=category,
        attributes=dict(attributes or {}),
    )
    if create_time is not None:
        item.create_time.CopyFrom(timestamp(create_time))
    return item


def new_event(
    user_id: str,
    type: EventTypeLike,
    *,
    item_id: str = "",
    text: str = "",
    event_time: datetime | None = None,
    event_id: str | None = None,
    dwell: timedelta | None = None,
    context: common_pb2.Context | None = None,
    impression_id: str = "",
) -> common_pb2.Event:
    """An event. event_id defaults to a random UUID: keep the message and resend the same one
    when retrying, so the server applies it once. event_time defaults to now."""
    event = common_pb2.Event(
        event_id=event_id or str(uuid.uuid4()),
        user_id=user_id,
        type=event_type(type),
        item_id=item_id,
        text=text,
        impression_id=impression_id,
    )
    event.event_time.CopyFrom(timestamp(event_time or datetime.now(UTC)))
    if dwell is not None:
        d = duration_pb2.Duration()
        d.FromTimedelta(dwell)
        event.dwell.CopyFrom(d)
    if context is not None:
        event.context.CopyFrom(context)
    return event


# -- requests (internal) ------------------------------------------------------------------------


def upsert_items_request(items: Iterable[common_pb2.Item]) -> ingest_service_pb2.UpsertItemsRequest:
    return ingest_service_pb2.UpsertItemsRequest(items=list(items))


def delete_items_request(item_ids: Iterable[str]) -> ingest_service_pb2.DeleteItemsRequest:
    if isinstance(item_ids, str):
        raise TypeError("item_ids must be a collection of ids, not one string")
    return ingest_service_pb2.DeleteItemsRequest(item_ids=list(item_ids))


def ingest_events_request(events: Iterable[common_pb2.Event]) -> ingest_service_pb2.IngestEventsRequest:
    return ingest_service_pb2.IngestEventsRequest(events=list(events))


def recommend_request(
    user_id: str,
    *,
    count: int,
    categories: Iterable[str],
    created_after: datetime | None,
    created_before: datetime | None,
    exclude_item_ids: Iterable[str],
    include_seen: bool,
    context: common_pb2.Context | None,
    diversity: float,
    as_of_time: datetime | None,
    page_token: str,
    topic_temperature: float = 0.0,
) -> ranking_service_pb2.RecommendRequest:
    request = ranking_service_pb2.RecommendRequest(
        user_id=user_id,
        count=count,
        exclude_item_ids=list(exclude_item_ids),
        include_seen=include_seen,
        diversity=diversity,
        page_token=page_token,
        topic_temperature=topic_temperature,
    )
    request.filter.categories.extend(categories)
    if created_after is not None:
        request.filter.created_after.CopyFrom(timestamp(created_after))
    if created_before is not None:
        request.filter.created_before.CopyFrom(timestamp(created_before))
    if context is not None:
        request.context.CopyFrom(context)
    if as_of_time is not None:
        request.as_of_time.CopyFrom(timestamp(as_of_time))
    return request


def rank_request(
    user_id: str,
    candidate_item_ids: Iterable[str],
    *,
    context: common_pb2.Context | None,
    as_of_time: datetime | None,
) -> ranking_service_pb2.RankRequest:
    request = ranking_service_pb2.RankRequest(user_id=user_id, candidate_item_ids=list(candidate_item_ids))
    if context is not None:
        request.context.CopyFrom(context)
    if as_of_time is not None:
        request.as_of_time.CopyFrom(timestamp(as_of_time))
    return request


def get_profile_request(
    user_id: str,
    *,
    top_topics: int,
    recent_events: int,
    as_of_time: datetime | None,
    topic_temperature: float = 0.0,
) -> profile_service_pb2.GetProfileRequest:
    request = profile_service_pb2.GetProfileRequest(
        user_id=user_id,
        top_topics=top_topics,
        recent_events=recent_events,
        topic_temperature=topic_temperature,
    )
    if as_of_time is not None:
        request.as_of_time.CopyFrom(timestamp(as_of_time))
    return request


def feedback_request(event: common_pb2.Event, count: int = 0) -> ranking_service_pb2.StreamFeedbackRequest:
    """One StreamFeedback message: feedback on an item shown in a list (event.impression_id set to
    that list's recommendation_id) and how many refreshed recommendations to return (0: 10)."""
    return ranking_service_pb2.StreamFeedbackRequest(event=event, count=count)


def stream_event_request(event: common_pb2.Event) -> ingest_service_pb2.StreamEventsRequest:
    return ingest_service_pb2.StreamEventsRequest(event=event)
