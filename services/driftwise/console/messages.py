"""Protobuf messages of the public API -> plain JSON values for the console's pages.

One function per message, explicit about every field the pages draw: enums become short lower-case
names ("surface", "like", "new_item"), timestamps ISO 8601 strings (None when unset), int64 plain
ints. Text stays as the server sent it: the pages put it into the DOM as text, never as markup.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from driftwise_client.v1 import (
    common_pb2,
    insight_service_pb2,
    profile_service_pb2,
    ranking_service_pb2,
)

Json = dict[str, Any]


def enum_name(enum: Any, value: int, prefix: str) -> str:
    """EVENT_TYPE_LIKE -> "like"; an unknown number -> its digits."""
    try:
        name: str = enum.Name(value)
    except ValueError:
        return str(value)
    return name.removeprefix(prefix).lower()


def layer(value: int) -> str:
    return enum_name(common_pb2.InterestLayer, value, "INTEREST_LAYER_")


def event_type(value: int) -> str:
    return enum_name(common_pb2.EventType, value, "EVENT_TYPE_")


def reason(value: int) -> str:
    return enum_name(ranking_service_pb2.ExplanationReason, value, "EXPLANATION_REASON_")


def time_of(message: Message, field: str) -> str | None:
    """The timestamp field as ISO 8601 in UTC, None when unset."""
    if not message.HasField(field):
        return None
    ts: timestamp_pb2.Timestamp = getattr(message, field)
    return ts.ToDatetime().isoformat(timespec="milliseconds") + "Z"


# -- profiles -------------------------------------------------------------------------------------


def topic_weight(t: profile_service_pb2.TopicWeight) -> Json:
    return {"topic": t.topic, "weight": t.weight, "affinity": t.affinity, "examples": list(t.examples)}


def profile(p: profile_service_pb2.Profile) -> Json:
    return {
        "user_id": p.user_id,
        "version": p.version,
        "update_time": time_of(p, "update_time"),
        "event_count": p.event_count,
        "layers": [
            {
                "layer": layer(s.layer),
                "half_life_seconds": s.half_life_seconds,
                "mass": s.mass,
                "last_event_time": time_of(s, "last_event_time"),
                "top_topics": [topic_weight(t) for t in s.top_topics],
            }
            for s in p.layers
        ],
        "recent_events": [
            {
                "event_id": e.event_id,
                "type": event_type(e.type),
                "event_time": time_of(e, "event_time"),
                "item_id": e.item_id,
                "text": e.text,
                "weight": e.weight,
            }
            for e in p.recent_events
        ],
    }


def topic_history(h: insight_service_pb2.GetTopicHistoryResponse) -> Json:
    return {
        "points": [
            {
                "time": time_of(point, "time"),
                "event_id": point.event_id,
                "layers": [
                    {
                        "layer": layer(lt.layer),
                        "mass": lt.mass,
                        "top_topics": [{"topic": t.topic, "weight": t.weight} for t in lt.top_topics],
                    }
                    for lt in point.layers
                ],
            }
            for point in h.points
        ]
    }


# -- recommendations ------------------------------------------------------------------------------


def scored_item(s: ranking_service_pb2.ScoredItem) -> Json:
    x = s.explanation
    return {
        "item_id": s.item_id,
        "title": s.title,
        "category": s.category,
        "score": s.score,
        "explanation": {
            "layer": layer(x.layer),
            "topic": x.topic,
            "topic_weight": x.topic_weight,
            "similarity": x.similarity,
            "summary": x.summary,
            "reason": reason(x.reason),
            "evidence": [
                {"event_id": e.event_id, "item_id": e.item_id, "text": e.text, "similarity": e.similarity}
                for e in x.evidence
            ],
        },
    }


def recommendations(r: ranking_service_pb2.RecommendResponse) -> Json:
    return {
        "recommendation_id": r.recommendation_id,
        "profile_version": r.profile_version,
        "source": enum_name(ranking_service_pb2.RecommendationSource, r.source, "RECOMMENDATION_SOURCE_"),
        "items": [scored_item(s) for s in r.items],
    }


# -- the catalogue --------------------------------------------------------------------------------


def item(i: common_pb2.Item) -> Json:
    return {
        "item_id": i.item_id,
        "title": i.title,
        "description": i.description,
        "tags": list(i.tags),
        "category": i.category,
        "create_time": time_of(i, "create_time"),
        "attributes": dict(sorted(i.attributes.items())),
    }


def item_hit(h: insight_service_pb2.ItemHit) -> Json:
    return {"item": item(h.item), "similarity": h.similarity}


def items_page(r: insight_service_pb2.ListItemsResponse) -> Json:
    return {
        "items": [item(i) for i in r.items],
        "next_page_token": r.next_page_token,
        "total_items": r.total_items,
    }


def search_hits(r: insight_service_pb2.SearchItemsResponse) -> Json:
    return {"items": [item_hit(h) for h in r.items]}


def item_detail(r: insight_service_pb2.GetItemResponse) -> Json:
    return {
        "item": item(r.item),
        "neighbours": [item_hit(h) for h in r.neighbours],
        "followed_by": [{"item": item(f.item), "share": f.share} for f in r.followed_by],
        "recent_interactions": [
            {
                "user_id": x.user_id,
                "event_id": x.event_id,
                "type": event_type(x.type),
                "event_time": time_of(x, "event_time"),
            }
            for x in r.recent_interactions
        ],
        "positive_events": r.positive_events,
    }


def users_page(r: insight_service_pb2.ListUsersResponse) -> Json:
    return {
        "users": [
            {
                "user_id": u.user_id,
                "event_count": u.event_count,
                "last_event_time": time_of(u, "last_event_time"),
                "profile_version": u.profile_version,
            }
            for u in r.users
        ],
        "next_page_token": r.next_page_token,
        "total_users": r.total_users,
    }


# -- the server -----------------------------------------------------------------------------------


def holdout(q: ranking_service_pb2.HoldoutQuality, present: bool) -> Json | None:
    if not present:
        return None
    return {"users": q.users, "hr_at_10": q.hr_at_10, "ndcg_at_10": q.ndcg_at_10}


def model_status(m: ranking_service_pb2.ModelStatus) -> Json:
    t = m.tuning
    tuning = {
        "status": enum_name(ranking_service_pb2.SelfTuningStatus, t.status, "SELF_TUNING_STATUS_"),
        "chosen": dict(sorted(t.chosen.items())),
        "rejected": dict(sorted(t.rejected.items())),
        "held_out_users": t.held_out_users,
        "trials": t.trials,
        "seconds": t.seconds,
    }
    for name in ("defaults_tune", "chosen_tune", "defaults_report", "chosen_report"):
        tuning[name] = holdout(getattr(t, name), t.HasField(name))
    return {
        "refit_time": time_of(m, "refit_time"),
        "fitted_events": m.fitted_events,
        "refit_seconds": m.refit_seconds,
        "tuning": tuning,
    }


def model_statuses(r: ranking_service_pb2.GetModelStatusResponse) -> Json:
    return {"models": [model_status(m) for m in r.shards]}


def dependency(d: insight_service_pb2.DependencyHealth) -> Json:
    return {"up": d.up, "address": d.address, "detail": d.detail}


def server_stats(r: insight_service_pb2.GetServerStatsResponse) -> Json:
    lat = r.recommend_latency
    return {
        "items": r.items,
        "users": r.users,
        "events": r.events,
        "events_per_second": r.events_per_second,
        "recommend_latency": {
            "calls": lat.calls,
            "p50_ms": lat.p50_ms,
            "p99_ms": lat.p99_ms,
            "window_seconds": lat.window_seconds,
        },
        "encoder": dependency(r.encoder),
        "vector_store": dependency(r.vector_store),
        "encoder_model": r.encoder_model,
        "embedding_dimension": r.embedding_dimension,
        "model": model_status(r.model) if r.HasField("model") else None,
        "start_time": time_of(r, "start_time"),
        "role": r.role,
    }


def counts(c: insight_service_pb2.FeedbackCounts) -> Json:
    return {
        "issued": c.issued,
        "clicks": c.clicks,
        "likes": c.likes,
        "skips": c.skips,
        "dislikes": c.dislikes,
    }


def online_quality(r: insight_service_pb2.GetOnlineQualityResponse) -> Json:
    return {
        "total": counts(r.total),
        "by_reason": [{"reason": reason(q.reason), "counts": counts(q.counts)} for q in r.by_reason],
        "by_layer": [{"layer": layer(q.layer), "counts": counts(q.counts)} for q in r.by_layer],
        "by_position": [{"position": q.position, "counts": counts(q.counts)} for q in r.by_position],
        "over_time": [
            {"start_time": time_of(q, "start_time"), "counts": counts(q.counts)} for q in r.over_time
        ],
    }
