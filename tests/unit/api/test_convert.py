import time

import pytest
from google.protobuf import duration_pb2
from google.protobuf.message import Message

from driftwise.api import convert
from driftwise.errors import InvalidArgumentError
from driftwise.model.events import EventType
from driftwise.settings import LimitSettings
from driftwise.v1 import common_pb2, ranking_service_pb2

LIMITS = LimitSettings(max_text_chars=50, max_batch=3)
NOW = time.time()


def good_event(**overrides: object) -> common_pb2.Event:
    e = common_pb2.Event(
        event_id="e1",
        user_id="u1",
        type=common_pb2.EVENT_TYPE_LIKE,
        item_id="i1",
        event_time=convert.timestamp(NOW - 10),
    )
    for k, v in overrides.items():
        if v is None:
            e.ClearField(k)
        elif isinstance(v, Message):
            getattr(e, k).CopyFrom(v)
        else:
            setattr(e, k, v)
    return e


def violations(events: list[common_pb2.Event]) -> dict[str, str]:
    with pytest.raises(InvalidArgumentError) as info:
        convert.events_from_proto(events, LIMITS, NOW)
    return {v.field: v.description for v in info.value.violations}


def test_valid_event_converts() -> None:
    e = good_event(dwell=duration_pb2.Duration(seconds=30), text="a comment")
    e.context.device = "tv"
    (le,) = convert.events_from_proto([e], LIMITS, NOW)
    assert le.event.type is EventType.LIKE and le.event.dwell_seconds == 30.0
    assert le.event.time == pytest.approx(NOW - 10, abs=1e-6) and le.context == {"device": "tv"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"user_id": ""}, "events[1].user_id"),
        ({"event_id": ""}, "events[1].event_id"),
        ({"type": 0}, "events[1].type"),
        ({"type": 99}, "events[1].type"),
        ({"event_time": None}, "events[1].event_time"),
        ({"event_time": convert.timestamp(NOW + 3600)}, "events[1].event_time"),
        ({"text": "x" * 51}, "events[1].text"),
        ({"item_id": "", "text": ""}, "events[1].item_id"),
        ({"type": common_pb2.EVENT_TYPE_STATED_INTEREST, "text": " "}, "events[1].text"),
        ({"dwell": duration_pb2.Duration(seconds=-1)}, "events[1].dwell"),
    ],
)
def test_each_invalid_field_is_named(overrides: dict[str, object], field: str) -> None:
    found = violations([good_event(), good_event(**overrides)])
    assert field in found, found
    assert not any(f.startswith("events[0]") for f in found)


def test_batch_limits() -> None:
    assert "events" in violations([])
    assert "events" in violations([good_event()] * 4)


def test_stream_events_are_named_without_index() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        convert.events_from_proto([good_event(user_id="")], LIMITS, NOW, prefix="event", indexed=False)
    assert [v.field for v in info.value.violations] == ["event.user_id"]


def test_items_need_ids_and_titles_once() -> None:
    items = [
        common_pb2.Item(item_id="a", title="A"),
        common_pb2.Item(item_id="a", title=""),
        common_pb2.Item(item_id="", title="B"),
    ]
    with pytest.raises(InvalidArgumentError) as info:
        convert.items_from_proto(items, LIMITS)
    fields = {v.field for v in info.value.violations}
    assert fields == {"items[1].item_id", "items[1].title", "items[2].item_id"}


def test_recommend_request_validation_and_defaults() -> None:
    q = convert.recommend_query(ranking_service_pb2.RecommendRequest(user_id="u"), LIMITS)
    assert q.count == 10 and q.as_of is None and not q.include_seen
    with pytest.raises(InvalidArgumentError) as info:
        convert.recommend_query(ranking_service_pb2.RecommendRequest(count=1000, diversity=2.0), LIMITS)
    assert {v.field for v in info.value.violations} == {"user_id", "count", "diversity"}


def test_page_tokens_round_trip_and_belong_to_one_user() -> None:
    from driftwise.api.convert import decode_page_token, encode_page_token

    token = encode_page_token("alice", ["i1", "i2"])
    assert decode_page_token(token, "alice") == ("i1", "i2")
    for bad, user in ((token, "bob"), ("garbage", "alice"), (token[:-4], "alice")):
        with pytest.raises(ValueError):
            decode_page_token(bad, user)
