"""Protobuf messages <-> engine values. Each request is validated on the way in with the rules of
`driftwise.api.validation` (all violations at once, nothing stored); page tokens are
`driftwise.api.page_tokens`, stream rate limits `driftwise.api.stream_rate`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from google.protobuf import duration_pb2, timestamp_pb2

from driftwise.api.page_tokens import (
    MAX_PAGE_TOKEN_CHARS,
    MAX_PAGED_ITEMS,
    decode_page_token,
    encode_page_token,
)
from driftwise.api.validation import Violations
from driftwise.engine import NewItem, ProfileView, Recommendations, RecommendQuery
from driftwise.model.events import Event, EventType
from driftwise.model.ranking import Ranked
from driftwise.model.refit import Refitted
from driftwise.settings import LimitSettings
from driftwise.storage.event_log import LoggedEvent
from driftwise_client.v1 import common_pb2, profile_service_pb2, ranking_service_pb2

_EVENT_TYPES = {t.value for t in EventType}


def seconds(ts: timestamp_pb2.Timestamp | duration_pb2.Duration) -> float:
    return ts.seconds + ts.nanos / 1e9


def timestamp(value: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(round(value * 1e9))
    return ts


# -- ingest ---------------------------------------------------------------------------------------


def items_from_proto(items: Sequence[common_pb2.Item], limits: LimitSettings) -> list[NewItem]:
    v = Violations()
    if not v.check_batch("items", len(items), limits):
        v.raise_if_any()
    seen: set[str] = set()
    for i, it in enumerate(items):
        f = f"items[{i}]"
        v.check_id(f"{f}.item_id", it.item_id, limits)
        if it.item_id in seen:
            v.add(f"{f}.item_id", f"item {it.item_id!r} appears twice in the batch")
        seen.add(it.item_id)
        if not it.title.strip():
            v.add(f"{f}.title", "is required")
        elif len(it.title) > limits.max_title_chars:
            v.add(f"{f}.title", f"is longer than {limits.max_title_chars} characters")
        v.check_text(f"{f}.description", it.description, limits)
        v.check_text(f"{f}.tags", ", ".join(it.tags), limits)
        v.check_id(f"{f}.category", it.category, limits, required=False)
        if it.HasField("create_time"):
            v.check_timestamp(f"{f}.create_time", it.create_time)
        if len(it.attributes) > limits.max_attributes:
            v.add(f"{f}.attributes", f"has {len(it.attributes)} entries; at most {limits.max_attributes}")
        elif sum(len(k) + len(val) for k, val in it.attributes.items()) > limits.max_text_chars:
            v.add(f"{f}.attributes", f"keys and values are longer than {limits.max_text_chars} characters")
    v.raise_if_any()
    return [
        NewItem(
            it.item_id,
            it.title,
            it.description,
            tuple(it.tags),
            it.category,
            seconds(it.create_time) if it.HasField("create_time") else None,
            dict(it.attributes),
        )
        for it in items
    ]


def item_ids_from_proto(item_ids: Sequence[str], limits: LimitSettings) -> list[str]:
    v = Violations()
    if v.check_batch("item_ids", len(item_ids), limits):
        for i, item_id in enumerate(item_ids):
            v.check_id(f"item_ids[{i}]", item_id, limits)
    v.raise_if_any()
    return list(item_ids)


def events_from_proto(
    events: Sequence[common_pb2.Event],
    limits: LimitSettings,
    now: float,
    *,
    prefix: str = "events",
    indexed: bool = True,
) -> list[LoggedEvent]:
    v = Violations()
    if not indexed or v.check_batch(prefix, len(events), limits):
        for i, e in enumerate(events):
            _check_event(v, f"{prefix}[{i}]" if indexed else prefix, e, limits, now)
    v.raise_if_any()
    return [_logged_event(e, now) for e in events]


def _logged_event(e: common_pb2.Event, received: float) -> LoggedEvent:
    """The event to record; without an event_time it happened when the server received it."""
    return LoggedEvent(
        Event(
            e.event_id,
            e.user_id,
            EventType(e.type),
            seconds(e.event_time) if e.HasField("event_time") else received,
            e.item_id,
            e.text,
            seconds(e.dwell) if e.HasField("dwell") else 0.0,
            e.impression_id,
        ),
        {
            k: val
            for k, val in (
                ("device", e.context.device),
                ("surface", e.context.surface),
                ("locale", e.context.locale),
            )
            if val
        },
    )


def feedback_from_proto(
    request: ranking_service_pb2.StreamFeedbackRequest, limits: LimitSettings, now: float
) -> tuple[LoggedEvent, int]:
    """The feedback event of a StreamFeedback message and the number of items wanted back."""
    v = Violations()
    if not request.HasField("event"):
        v.add("event", "is required")
    else:
        _check_event(v, "event", request.event, limits, now)
        if not request.event.item_id:
            v.add("event.item_id", "feedback is about a shown item: item_id is required")
        if not request.event.impression_id:
            v.add(
                "event.impression_id", "the recommendation_id of the list the item was shown in is required"
            )
    if not 0 <= request.count <= limits.max_count:
        v.add("count", f"must be between 0 and {limits.max_count}")
    v.raise_if_any()
    return _logged_event(request.event, now), request.count or 10


def _check_event(v: Violations, f: str, e: common_pb2.Event, limits: LimitSettings, now: float) -> None:
    v.check_id(f"{f}.event_id", e.event_id, limits)
    v.check_id(f"{f}.user_id", e.user_id, limits)
    if e.type not in _EVENT_TYPES:
        v.add(f"{f}.type", "is required" if e.type == 0 else f"unknown event type {e.type}")
    if not e.HasField("event_time"):
        pass  # the time the server received it (_logged_event)
    elif not v.check_timestamp(f"{f}.event_time", e.event_time):
        pass
    elif seconds(e.event_time) <= 0:
        v.add(f"{f}.event_time", "must be after 1970-01-01")
    elif seconds(e.event_time) > now + limits.max_future_seconds:
        v.add(f"{f}.event_time", f"is more than {limits.max_future_seconds:.0f} s in the future")
    if e.type == common_pb2.EVENT_TYPE_STATED_INTEREST and not e.text.strip():
        v.add(f"{f}.text", "a stated interest needs the user's text")
    elif not e.item_id and not e.text.strip():
        v.add(f"{f}.item_id", "an event needs an item_id, a text, or both")
    v.check_id(f"{f}.item_id", e.item_id, limits, required=False)
    v.check_text(f"{f}.text", e.text, limits)
    if e.HasField("dwell") and v.check_duration(f"{f}.dwell", e.dwell) and seconds(e.dwell) < 0:
        v.add(f"{f}.dwell", "must not be negative")
    v.check_id(f"{f}.impression_id", e.impression_id, limits, required=False)
    for name in ("device", "surface", "locale"):
        value = getattr(e.context, name)
        if len(value) > limits.max_id_chars:
            v.add(f"{f}.context.{name}", f"is longer than {limits.max_id_chars} characters")


# -- profiles ---------------------------------------------------------------------------------


def profile_to_proto(view: ProfileView, *, user_id: str) -> profile_service_pb2.Profile:
    """The profile as the caller knows it: under `user_id`, the id they sent (the profile's own
    may be its pseudonym, driftwise.privacy)."""
    return profile_service_pb2.Profile(
        user_id=user_id,
        version=view.version,
        update_time=timestamp(view.updated_at),
        layers=[
            profile_service_pb2.LayerState(
                layer=common_pb2.InterestLayer.ValueType(layer.layer),
                half_life_seconds=layer.half_life_seconds,
                mass=layer.mass,
                last_event_time=timestamp(layer.last_event_time)
                if layer.last_event_time is not None
                else None,
                top_topics=[
                    profile_service_pb2.TopicWeight(
                        topic=t.label, weight=t.weight, affinity=t.affinity, examples=t.examples
                    )
                    for t in layer.top_topics
                ],
            )
            for layer in view.layers
        ],
        recent_events=[
            profile_service_pb2.RecentEvent(
                event_id=r.event_id,
                type=common_pb2.EventType.ValueType(r.type),
                event_time=timestamp(r.time),
                item_id=r.item_id,
                text=r.text,
                weight=r.weight,
            )
            for r in view.recent
        ],
        event_count=view.event_count,
    )


# -- ranking ----------------------------------------------------------------------------------


def recommend_query(request: ranking_service_pb2.RecommendRequest, limits: LimitSettings) -> RecommendQuery:
    v = Violations()
    v.check_id("user_id", request.user_id, limits)
    if not 0 <= request.count <= limits.max_count:
        v.add("count", f"must be between 0 and {limits.max_count}")
    if not 0.0 <= request.diversity <= 1.0:
        v.add("diversity", "must be between 0 and 1")
    if v.check_batch("exclude_item_ids", len(request.exclude_item_ids), limits, required=False):
        for i, item_id in enumerate(request.exclude_item_ids):
            v.check_id(f"exclude_item_ids[{i}]", item_id, limits, required=False)
    flt = request.filter
    if v.check_batch("filter.categories", len(flt.categories), limits, required=False):
        for i, category in enumerate(flt.categories):
            v.check_id(f"filter.categories[{i}]", category, limits, required=False)
    after = flt.HasField("created_after") and v.check_timestamp("filter.created_after", flt.created_after)
    before = flt.HasField("created_before") and v.check_timestamp("filter.created_before", flt.created_before)
    if after and before and seconds(flt.created_after) >= seconds(flt.created_before):
        v.add("filter.created_before", "must be after filter.created_after")
    if request.HasField("as_of_time"):
        v.check_timestamp("as_of_time", request.as_of_time)
    v.check_topic_temperature("topic_temperature", request.topic_temperature)
    v.raise_if_any()
    query = RecommendQuery(
        user_id=request.user_id,
        count=request.count or 10,
        categories=tuple(flt.categories),
        created_after=seconds(flt.created_after) if flt.HasField("created_after") else None,
        created_before=seconds(flt.created_before) if flt.HasField("created_before") else None,
        exclude_item_ids=tuple(request.exclude_item_ids),
        include_seen=request.include_seen,
        diversity=request.diversity,
        as_of=seconds(request.as_of_time) if request.HasField("as_of_time") else None,
        topic_temperature=request.topic_temperature or None,
    )
    if len(request.page_token) > MAX_PAGE_TOKEN_CHARS:
        v.add("page_token", "is not a token this service issued (too long)")
    elif request.page_token:
        try:
            query = dataclasses.replace(query, shown=decode_page_token(request.page_token, query))
        except ValueError as exc:
            v.add("page_token", str(exc))
    v.raise_if_any()
    return query


def recommendations_to_proto(
    recs: Recommendations, query: RecommendQuery | None = None
) -> ranking_service_pb2.RecommendResponse:
    """The response; with the query, a next_page_token exactly when more items pass the request
    (and the pages so far and the next one stay within MAX_PAGED_ITEMS)."""
    next_page_token = ""
    if query is not None and recs.more:
        shown = (*query.shown, *(r.item_id for r in recs.ranked))
        if len(shown) + query.count <= MAX_PAGED_ITEMS:
            next_page_token = encode_page_token(query, shown)
    return ranking_service_pb2.RecommendResponse(
        items=[_scored_item(r, recs) for r in recs.ranked],
        recommendation_id=recs.recommendation_id,
        profile_version=recs.profile_version,
        source=ranking_service_pb2.RECOMMENDATION_SOURCE_COLD_START
        if recs.cold_start
        else ranking_service_pb2.RECOMMENDATION_SOURCE_PERSONALIZED,
        next_page_token=next_page_token,
        learned_models=ranking_service_pb2.LearnedModelsState.ValueType(recs.learned),
    )


def rank_request(
    request: ranking_service_pb2.RankRequest, limits: LimitSettings
) -> tuple[str, list[str], float | None]:
    """(user_id, candidate ids without repeats, as_of) of a valid RankRequest."""
    v = Violations()
    v.check_id("user_id", request.user_id, limits)
    if v.check_batch("candidate_item_ids", len(request.candidate_item_ids), limits):
        for i, item_id in enumerate(request.candidate_item_ids):
            v.check_id(f"candidate_item_ids[{i}]", item_id, limits)
    if request.HasField("as_of_time"):
        v.check_timestamp("as_of_time", request.as_of_time)
    v.raise_if_any()
    as_of = seconds(request.as_of_time) if request.HasField("as_of_time") else None
    return request.user_id, list(dict.fromkeys(request.candidate_item_ids)), as_of


def rank_response(recs: Recommendations) -> ranking_service_pb2.RankResponse:
    return ranking_service_pb2.RankResponse(
        items=[_scored_item(r, recs) for r in recs.ranked],
        learned_models=ranking_service_pb2.LearnedModelsState.ValueType(recs.learned),
    )


def _scored_item(r: Ranked, recs: Recommendations) -> ranking_service_pb2.ScoredItem:
    item, why = recs.items[r.item_id], recs.explanations[r.item_id]
    return ranking_service_pb2.ScoredItem(
        item_id=item.item_id,
        title=item.title,
        category=item.category,
        score=r.score,
        attributes=item.attributes,
        explanation=ranking_service_pb2.Explanation(
            layer=common_pb2.InterestLayer.ValueType(r.layer or 0),
            topic=why.topic,
            topic_weight=r.topic_weight,
            similarity=r.similarity,
            evidence=[
                ranking_service_pb2.Evidence(
                    event_id=ev.event_id, item_id=ev.item_id, text=ev.text, similarity=sim
                )
                for ev, sim in r.evidence
            ],
            summary=why.summary,
            reason=ranking_service_pb2.ExplanationReason.ValueType(r.reason),
        ),
    )


def model_status_to_proto(refitted: Refitted | None, shard: int = 0) -> ranking_service_pb2.ModelStatus:
    """What one server ranks with: its last refit and the settings its self-tuning chose."""
    status = ranking_service_pb2.ModelStatus(shard=shard)
    if refitted is None:
        return status
    status.refit_time.CopyFrom(timestamp(refitted.finished_at))
    status.fitted_events = refitted.events
    status.refit_seconds = refitted.seconds
    report = refitted.tuning
    tuning = status.tuning
    tuning.status = int(report.status)  # type: ignore[assignment]  # numbers match SelfTuningStatus
    for name, value in report.chosen.items():
        tuning.chosen[name] = _setting_text(value)
    for name, value in report.rejected.items():
        tuning.rejected[name] = _setting_text(value)
    tuning.held_out_users = report.held_out_users
    tuning.trials = report.trials
    tuning.seconds = report.seconds
    for field, quality in (
        (tuning.defaults_tune, report.defaults_tune),
        (tuning.chosen_tune, report.chosen_tune),
        (tuning.defaults_report, report.defaults_report),
        (tuning.chosen_report, report.chosen_report),
    ):
        if quality is not None:
            field.users, field.hr_at_10, field.ndcg_at_10 = quality.users, quality.hr, quality.ndcg
    return status


def _setting_text(value: bool | int | float) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
