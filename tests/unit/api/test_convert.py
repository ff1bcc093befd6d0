import base64
import json
import time
import zlib
from collections.abc import Callable

import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message

from driftwise.api import convert
from driftwise.api.page_tokens import decode_page_token, encode_page_token
from driftwise.api.stream_rate import StreamRate
from driftwise.engine import RecommendQuery
from driftwise.errors import InvalidArgumentError, ResourceExhaustedError
from driftwise.model.events import EventType
from driftwise.settings import LimitSettings
from driftwise_client.v1 import common_pb2, ranking_service_pb2

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


def test_an_event_without_a_time_happened_when_it_was_received() -> None:
    (le,) = convert.events_from_proto([good_event(event_time=None)], LIMITS, NOW)
    assert le.event.time == NOW
    assert "events[0].event_time" in violations([good_event(event_time=convert.timestamp(-5))])


BAD_IDS = ["   ", " a", "a ", "a\n", "a\x00b", "a\\b", "a'b", "\u00a0a"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_one_id_rule_for_every_id_field(bad: str) -> None:
    for name in ("event_id", "user_id", "item_id", "impression_id"):
        assert f"events[0].{name}" in violations([good_event(**{name: bad})]), name
    item = common_pb2.Item(item_id=bad, title="t", category=bad)
    assert fields_of(lambda: convert.items_from_proto([item], LIMITS)) == {
        "items[0].item_id",
        "items[0].category",
    }
    assert fields_of(lambda: convert.item_ids_from_proto([bad], LIMITS)) == {"item_ids[0]"}
    recommend = ranking_service_pb2.RecommendRequest(user_id=bad, exclude_item_ids=[bad])
    recommend.filter.categories.append(bad)
    assert fields_of(lambda: convert.recommend_query(recommend, LIMITS)) == {
        "user_id",
        "exclude_item_ids[0]",
        "filter.categories[0]",
    }
    rank = ranking_service_pb2.RankRequest(user_id=bad, candidate_item_ids=[bad])
    assert fields_of(lambda: convert.rank_request(rank, LIMITS)) == {"user_id", "candidate_item_ids[0]"}


def test_ids_may_hold_inner_spaces_and_any_script() -> None:
    (le,) = convert.events_from_proto(
        [good_event(event_id="a b", user_id="用户 7", item_id="é")], LIMITS, NOW
    )
    assert (le.event.event_id, le.event.user_id, le.event.item_id) == ("a b", "用户 7", "é")


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

    alice = RecommendQuery("alice")
    token = encode_page_token(alice, ["i1", "i2"])
    assert decode_page_token(token, alice) == ("i1", "i2")
    for bad, query in ((token, RecommendQuery("bob")), ("garbage", alice), (token[:-4], alice)):
        with pytest.raises(ValueError):
            decode_page_token(bad, query)


def test_a_page_token_is_taken_only_with_the_request_it_continues() -> None:
    first = ranking_service_pb2.RecommendRequest(user_id="alice", count=5, exclude_item_ids=["a", "b"])
    first.filter.categories.extend(["x", "y"])
    token = encode_page_token(convert.recommend_query(first, LIMITS), ["i1"])

    same = ranking_service_pb2.RecommendRequest()
    same.CopyFrom(first)
    same.page_token = token
    same.exclude_item_ids[:] = ["b", "a"]  # lists that are sets may come in another order
    assert convert.recommend_query(same, LIMITS).shown == ("i1",)

    changes: dict[str, Callable[[ranking_service_pb2.RecommendRequest], object]] = {
        "count": lambda r: setattr(r, "count", 6),
        "filter": lambda r: r.filter.categories.append("z"),
        "exclude_item_ids": lambda r: r.exclude_item_ids.append("c"),
        "include_seen": lambda r: setattr(r, "include_seen", True),
        "diversity": lambda r: setattr(r, "diversity", 0.5),
        "as_of_time": lambda r: r.as_of_time.FromSeconds(1_700_000_000),
        "topic_temperature": lambda r: setattr(r, "topic_temperature", 0.5),
    }
    for field, change in changes.items():
        other = ranking_service_pb2.RecommendRequest()
        other.CopyFrom(same)
        change(other)
        with pytest.raises(InvalidArgumentError) as info:
            convert.recommend_query(other, LIMITS)
        (violation,) = info.value.violations
        assert violation.field == "page_token" and field in violation.description, violation


def test_topic_temperature_is_zero_or_within_its_range_and_fixed_by_the_page_token() -> None:
    request = ranking_service_pb2.RecommendRequest(user_id="alice")
    assert convert.recommend_query(request, LIMITS).topic_temperature is None  # 0: the server's
    for value in (0.01, 1.0, 10.0):
        request.topic_temperature = value
        assert convert.recommend_query(request, LIMITS).topic_temperature == value
    for value in (0.001, -1.0, 10.5, float("nan"), float("inf")):
        request.topic_temperature = value
        with pytest.raises(InvalidArgumentError) as info:
            convert.recommend_query(request, LIMITS)
        assert [v.field for v in info.value.violations] == ["topic_temperature"]

    # a token of a preview continues only that preview, and the server's temperature only its own
    request.topic_temperature = 2.0
    preview = convert.recommend_query(request, LIMITS)
    request.page_token = encode_page_token(preview, ["i1"])
    assert convert.recommend_query(request, LIMITS).shown == ("i1",)
    request.topic_temperature = 0
    with pytest.raises(InvalidArgumentError):
        convert.recommend_query(request, LIMITS)
    request.page_token = ""
    request.page_token = encode_page_token(convert.recommend_query(request, LIMITS), ["i1"])
    request.topic_temperature = 2.0
    with pytest.raises(InvalidArgumentError):
        convert.recommend_query(request, LIMITS)


def test_a_token_issued_before_topic_temperature_existed_still_continues_its_request() -> None:
    query = RecommendQuery("alice")
    token = json.loads(zlib.decompress(base64.urlsafe_b64decode(encode_page_token(query, ["i1"]))))
    assert "topic_temperature" not in token["q"]  # the digests an older server wrote
    assert decode_page_token(encode_page_token(query, ["i1"]), query) == ("i1",)


# -- limits and values found by the fuzzer (tests/integration/test_fuzz.py) -------------------------


def fields_of(call: object) -> set[str]:
    with pytest.raises(InvalidArgumentError) as info:
        call()  # type: ignore[operator]
    return {v.field for v in info.value.violations}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        # was OverflowError in Duration.ToTimedelta: INTERNAL
        ({"dwell": duration_pb2.Duration(seconds=2**62)}, "events[0].dwell"),
        ({"dwell": duration_pb2.Duration(seconds=1, nanos=-5)}, "events[0].dwell"),
        ({"event_time": timestamp_pb2.Timestamp(seconds=2**63 - 1)}, "events[0].event_time"),
        ({"event_time": timestamp_pb2.Timestamp(seconds=int(NOW), nanos=-1)}, "events[0].event_time"),
        ({"event_time": timestamp_pb2.Timestamp(seconds=-(2**63))}, "events[0].event_time"),
        # pymilvus puts item ids in '...' unescaped: a quote changes the lookup, a backslash breaks it
        ({"item_id": "x','y"}, "events[0].item_id"),
        ({"item_id": "a\\b"}, "events[0].item_id"),
        ({"item_id": "a\nb"}, "events[0].item_id"),
        ({"user_id": "o'@"}, "events[0].user_id"),  # stalled the interest mirror (Milvus Lite upsert)
        ({"user_id": "\U0001f600" * 40}, "events[0].user_id"),  # 40 characters, 160 bytes
        ({"context": common_pb2.Context(device="d" * 129)}, "events[0].context.device"),
    ],
)
def test_values_that_used_to_fail_inside_are_named(overrides: dict[str, object], field: str) -> None:
    assert field in violations([good_event(**overrides)])


def test_a_valid_dwell_is_read_without_timedelta() -> None:
    (le,) = convert.events_from_proto(
        [good_event(dwell=duration_pb2.Duration(seconds=2, nanos=500_000_000))], LIMITS, NOW
    )
    assert le.event.dwell_seconds == 2.5


def test_a_batch_over_the_limit_is_one_violation_not_one_per_entry() -> None:
    assert fields_of(lambda: convert.events_from_proto([common_pb2.Event()] * 4, LIMITS, NOW)) == {"events"}
    assert fields_of(lambda: convert.item_ids_from_proto([""] * 4, LIMITS)) == {"item_ids"}
    many = [common_pb2.Item()] * 4
    assert fields_of(lambda: convert.items_from_proto(many, LIMITS)) == {"items"}


def test_item_limits() -> None:
    items = [
        common_pb2.Item(item_id="a", title="t" * 513),
        common_pb2.Item(item_id="b", title="t", attributes={f"k{i}": "v" for i in range(65)}),
        common_pb2.Item(item_id="c", title="t", attributes={"k": "v" * 50}),
        common_pb2.Item(item_id="d'", title="t"),
    ]
    items[0].create_time.seconds = 253_402_300_800  # year 10000
    limits = LimitSettings(max_text_chars=50, max_batch=10)
    found = fields_of(lambda: convert.items_from_proto(items, limits))
    assert found == {
        "items[0].title",
        "items[0].create_time",
        "items[1].attributes",
        "items[2].attributes",
        "items[3].item_id",
    }


def test_recommend_limits() -> None:
    r = ranking_service_pb2.RecommendRequest(user_id="u", exclude_item_ids=["x"] * 4)
    r.filter.categories.extend(["c" * 129])
    r.filter.created_after.seconds = 2**63 - 1
    r.as_of_time.nanos = 10**9
    found = fields_of(lambda: convert.recommend_query(r, LIMITS))
    assert found == {"exclude_item_ids", "filter.categories[0]", "filter.created_after", "as_of_time"}


def test_rank_as_of_time_must_be_a_timestamp() -> None:
    r = ranking_service_pb2.RankRequest(user_id="u", candidate_item_ids=["a"])
    r.as_of_time.seconds = -(2**63)
    assert fields_of(lambda: convert.rank_request(r, LIMITS)) == {"as_of_time"}


def _b64z(raw: bytes) -> str:
    return base64.urlsafe_b64encode(zlib.compress(raw)).decode()


@pytest.mark.parametrize(
    "token",
    [
        _b64z(b'{"u": "alice", "s": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),  # was RecursionError
        _b64z(b"0" * 50_000_000),  # a zip bomb: inflated no further than the largest real token
        _b64z(json.dumps({"u": "alice", "s": [1, None]}).encode()),
        _b64z(json.dumps(["u", "s"]).encode()),
        "YWJj" + "=" * 3 + "!",
    ],
)
def test_page_tokens_a_caller_made_up_are_rejected(token: str) -> None:
    with pytest.raises(ValueError, match="not a token this service issued"):
        decode_page_token(token, RecommendQuery("alice"))
    r = ranking_service_pb2.RecommendRequest(user_id="alice", page_token=token)
    assert fields_of(lambda: convert.recommend_query(r, LIMITS)) == {"page_token"}


def test_stream_rate_refuses_a_message_over_the_rate_and_recovers() -> None:
    now = [0.0]
    rate = StreamRate(5, clock=lambda: now[0])
    for _ in range(5):  # one second's worth at once
        rate.take("StreamEvents")
    with pytest.raises(ResourceExhaustedError) as info:
        rate.take("StreamEvents")
    assert info.value.subject == "stream:StreamEvents"
    now[0] = 0.2  # one token back
    rate.take("StreamEvents")
    with pytest.raises(ResourceExhaustedError):
        rate.take("StreamEvents")
    now[0] = 100.0  # never more than a second's worth
    for _ in range(5):
        rate.take("StreamEvents")
    with pytest.raises(ResourceExhaustedError):
        rate.take("StreamEvents")


def test_learned_state_numbers_match_the_proto_enum() -> None:
    from driftwise.engine.types import LearnedState, Recommendations

    for state in LearnedState:
        assert ranking_service_pb2.LearnedModelsState.Value(f"LEARNED_MODELS_STATE_{state.name}") == state
        recs = Recommendations([], {}, {}, "rid", 3, cold_start=False, learned=state)
        assert convert.recommendations_to_proto(recs).learned_models == state.value
        assert convert.rank_response(recs).learned_models == state.value
