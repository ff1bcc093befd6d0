"""Property and fuzz testing of every RPC against one live all-in-one server (issue: input limits).

Hypothesis draws requests of all ten RPCs (strings from empty to huge and any Unicode, ids, enum
values known and unknown, timestamps and durations at and past their limits, repeated fields of
any length, page tokens of random text, random base64 and crafted bombs) and sends them to one
server with the real Triton encoder and Milvus Lite; then raw bytes go to every method at the wire.
No answer may be INTERNAL or UNKNOWN, every INVALID_ARGUMENT names fields (google.rpc BadRequest),
nothing of a rejected batch is stored, and the server answers normally afterwards.

Hypothesis runs derandomized in a worker thread with a blocking channel while the server serves
on the test's event loop. `pytest -s` prints the status codes per RPC (docs/reliability/input.md).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from driftwise.api.page_tokens import encode_page_token
from driftwise.datasets.movielens import Movie
from driftwise.engine import RecommendQuery
from driftwise.server import App
from driftwise.settings import LimitSettings
from driftwise.storage.event_log import EventLog
from driftwise_client.v1 import (
    common_pb2,
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    insight_service_pb2,
    profile_service_pb2,
    profile_service_pb2_grpc,
    ranking_service_pb2,
    ranking_service_pb2_grpc,
)
from tests.integration.support import Client, app_and_client, settings_for

pytestmark = pytest.mark.integration

# Generated calls per RPC (a stream counts once; its messages are counted apart), 11,200 in all
# with the wire bytes; fewer of the calls that encode text with Triton, more of the cheap ones.
EXAMPLES = {
    "UpsertItems": 400,
    "DeleteItems": 700,
    "IngestEvents": 1000,
    "StreamEvents": 500,
    "GetProfile": 1600,
    "WatchProfile": 300,
    "DeleteUserData": 1600,
    "Recommend": 1400,
    "Rank": 1300,
    "StreamFeedback": 400,
}
WIRE_EXAMPLES = 2000  # raw bytes, spread over the methods (InsightService's too)
# DRIFTWISE_FUZZ_SCALE=0.1 for a quick run while developing (the 10,000 floor scales with it)
SCALE = float(os.environ.get("DRIFTWISE_FUZZ_SCALE", "1"))
TIMES: dict[str, float] = {}
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
NOW = time.time()
USERS = [f"fuzz-user-{i}" for i in range(8)]  # a few users that build up profiles as the fuzz goes
BIG = 2**63 - 1
I32 = st.integers(-(2**31), 2**31 - 1)


# -- strategies ----------------------------------------------------------------------------------
#
# Each request is drawn from its fields, each field with two strategies: values the service accepts
# and any values (the accepted ones among them). A request is then valid (half the time), valid
# but for one field (a quarter), or any values in every field (a quarter): the valid ones go all
# the way through Triton, Milvus and the event log, the others probe one limit or all at once.


def fields(
    build: Callable[..., Any], **spec: tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    names = list(spec)
    valid = st.fixed_dictionaries({n: spec[n][0] for n in names})
    anything = st.fixed_dictionaries({n: spec[n][1] for n in names})
    one_bad = st.builds(lambda v, a, n: {**v, n: a[n]}, valid, anything, st.sampled_from(names))
    return st.one_of(valid, valid, one_bad, anything).map(lambda kw: build(**kw))


def _repeat(chars: st.SearchStrategy[str], sizes: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    return st.builds(lambda c, n: c * n, chars, sizes)


def _near(s: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=int(NOW) - s)


def _set(message: Any, field: str, value: Any) -> None:
    if value is not None:
        getattr(message, field).CopyFrom(value)


SPECIAL = st.text(alphabet="\"\\'`[](){}<>,;:%*$#@!?\n\r\t\x00\x1f\x7f\u2028\ufeff\U0001f600 ", max_size=12)
WORDS = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12)  # letters, digits
SHORT = st.one_of(st.just(""), st.text(max_size=16), SPECIAL)
# any Unicode (Hypothesis leaves out surrogates, which protobuf strings cannot carry), empty,
# blank, and huge: around and far past max_text_chars (4096), in 1- to 4-byte characters
TEXT = st.one_of(
    st.just(""),
    st.just(" \t\n"),
    st.text(max_size=40),
    SPECIAL,
    _repeat(st.sampled_from(["a", "é", "語", "\U0001f600", "\x00"]), st.integers(4000, 5000)),
    _repeat(st.sampled_from(["x", "\u0301"]), st.integers(10_000, 100_000)),
)
# ids: random Unicode, empty, past max_id_chars (128) in characters or in UTF-8 bytes (fewer than
# 128 characters of 2 to 4 bytes), quotes, backslashes, control characters
ANY_ID = st.one_of(
    st.text(min_size=1, max_size=10),
    st.just(""),
    SPECIAL,
    _repeat(st.sampled_from(["i", "é", "\U0001f600"]), st.integers(100, 140)),
    _repeat(st.just("z"), st.integers(129, 2000)),
)
USER = st.one_of(st.sampled_from(USERS), WORDS.map(lambda w: f"fuzz-{w}"))  # pool users build profiles
# unset, recent (a few in the future), or anything an int64 and an int32 can say, with the
# limits of the type (years 1 and 9999) and of the epoch
ANY_TIME = st.one_of(
    st.none(),
    st.builds(_near, st.integers(-1000, 10**8)),
    st.builds(
        lambda s, n: timestamp_pb2.Timestamp(seconds=s, nanos=n),
        st.one_of(
            st.integers(-BIG - 1, BIG),
            st.sampled_from([0, -1, 253_402_300_799, 253_402_300_800, -62_135_596_800, -62_135_596_801]),
        ),
        st.one_of(st.just(0), I32),
    ),
)
PAST = st.builds(_near, st.integers(1, 10**7))
ANY_DURATION = st.one_of(
    st.none(),
    st.builds(lambda s: duration_pb2.Duration(seconds=s), st.integers(-10, 3600)),
    st.builds(lambda s, n: duration_pb2.Duration(seconds=s, nanos=n), st.integers(-BIG - 1, BIG), I32),
)
DWELL = st.one_of(st.none(), st.builds(lambda s: duration_pb2.Duration(seconds=s), st.integers(0, 3600)))


def counts(most: int) -> tuple[st.SearchStrategy[int], st.SearchStrategy[int]]:
    return st.integers(0, most), st.one_of(st.integers(-2, most + 2), I32)


def lists(
    elements: st.SearchStrategy[Any], max_size: int, huge: Any, min_size: int = 0
) -> st.SearchStrategy[list[Any]]:
    """Lists of random length, now and then past max_batch (1000)."""
    short = st.lists(elements, min_size=min_size, max_size=max_size)
    return st.one_of(*[short] * 9, st.integers(995, 1100).map(lambda n: [huge] * n))


def _b64z(raw: bytes) -> str:
    return base64.urlsafe_b64encode(zlib.compress(raw)).decode()


DEEP = "[" * 100_000 + "]" * 100_000
ZIP_BOMB = _b64z(b"0" * 50_000_000)  # 50 MB of zeros in ~50 KB
JSON = st.recursive(
    st.none() | st.integers() | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
    max_leaves=8,
)
# what a page token is made of: (kind, random text, random bytes, random JSON, shown ids)
TOKEN = st.tuples(
    st.integers(0, 8), st.text(max_size=60), st.binary(max_size=60), JSON, st.lists(WORDS, max_size=5)
)


def page_token(user: str, parts: tuple[int, str, bytes, Any, list[str]]) -> str:
    """Empty, random text, base64 of random bytes, zlib of random JSON, bombs (JSON nested
    100,000 deep, 50 MB of zeros), another user's token, odd entries, or a token as issued."""
    kind, text, raw, value, shown = parts
    return [
        lambda: "",
        lambda: text,
        lambda: base64.urlsafe_b64encode(raw).decode(),
        lambda: _b64z(json.dumps(value).encode()),
        lambda: _b64z(f'{{"u": {json.dumps(user)}, "s": {DEEP}}}'.encode()),
        lambda: ZIP_BOMB,
        lambda: encode_page_token(RecommendQuery(user + "x"), shown),
        lambda: _b64z(json.dumps({"u": user, "s": [1, None, {"a": 1}, "z" * 200]}).encode()),
        lambda: encode_page_token(RecommendQuery(user), shown),
    ][kind]()


def item(**f: Any) -> common_pb2.Item:
    created = f.pop("create_time")
    it = common_pb2.Item(**f)
    _set(it, "create_time", created)
    return it


def event(**f: Any) -> common_pb2.Event:
    event_time, dwell = f.pop("event_time"), f.pop("dwell")
    e = common_pb2.Event(**f)
    _set(e, "event_time", event_time)
    _set(e, "dwell", dwell)
    return e


def recommend_request(
    token: tuple[int, str, bytes, Any, list[str]], **f: Any
) -> ranking_service_pb2.RecommendRequest:
    categories, after, before, as_of = (f.pop(k) for k in ("categories", "after", "before", "as_of_time"))
    r = ranking_service_pb2.RecommendRequest(**f, page_token=page_token(f["user_id"], token))
    r.filter.categories.extend(categories)
    _set(r.filter, "created_after", after)
    _set(r.filter, "created_before", before)
    _set(r, "as_of_time", as_of)
    return r


def with_time(message: Any, field: str) -> Callable[..., Any]:
    def build(**f: Any) -> Any:
        value = f.pop(field)
        m = message(**f)
        _set(m, field, value)
        return m

    return build


class Requests:
    """The strategies of every request, built once: Hypothesis validates a strategy when it is
    first drawn from, which costs ~50 ms per example when strategies are built inside draws."""

    def __init__(self, known: list[str]) -> None:
        item_id = st.one_of(st.sampled_from(known), WORDS.map(lambda w: f"fuzz-{w}"))
        self.item_id = (item_id, st.one_of(item_id, ANY_ID))
        self.item = fields(
            item,
            item_id=self.item_id,
            title=(WORDS, st.one_of(WORDS, TEXT)),
            description=(st.one_of(st.just(""), st.text(max_size=30)), TEXT),
            tags=(st.lists(WORDS, max_size=3), st.lists(SHORT, max_size=4)),
            category=(st.sampled_from(["movie", "book"]), ANY_ID),
            attributes=(
                st.dictionaries(WORDS, WORDS, max_size=3),
                st.one_of(
                    st.dictionaries(SHORT, SHORT, max_size=4),
                    st.builds(lambda n: {f"k{i}": "v" * 100 for i in range(n)}, st.integers(30, 80)),
                ),
            ),
            create_time=(st.one_of(st.none(), PAST), ANY_TIME),
        )
        # a valid event is about a known item, or has a text, or both; any type but a stated
        # interest (which needs a text)
        self.event = fields(
            event,
            event_id=(st.uuids().map(str), st.one_of(st.uuids().map(str), ANY_ID)),
            user_id=(USER, st.one_of(USER, ANY_ID)),
            type=(st.integers(1, 10), st.one_of(st.integers(0, 12), I32)),
            item_id=(st.sampled_from(known), st.one_of(st.just(""), st.sampled_from(known), ANY_ID)),
            text=(st.one_of(st.just(""), WORDS), st.one_of(st.just(""), TEXT)),
            impression_id=(st.one_of(st.just(""), st.uuids().map(lambda u: u.hex)), ANY_ID),
            context=(st.none(), st.builds(common_pb2.Context, device=SHORT, surface=SHORT, locale=SHORT)),
            event_time=(PAST, ANY_TIME),
            dwell=(DWELL, ANY_DURATION),
        )
        self.feedback = fields(
            ranking_service_pb2.StreamFeedbackRequest,
            event=(self.event, st.one_of(st.none(), self.event)),
            count=counts(20),
        )
        exclude = lists(self.item_id[1], 4, huge="e")
        self.recommend = fields(
            recommend_request,
            user_id=(USER, st.one_of(USER, ANY_ID)),
            count=counts(20),
            exclude_item_ids=(st.lists(st.sampled_from(known), max_size=3), exclude),
            include_seen=(st.booleans(), st.booleans()),
            context=(st.none(), st.builds(common_pb2.Context, device=SHORT)),
            diversity=(st.floats(0, 1), st.floats()),
            token=(TOKEN.map(lambda t: (t[0] % 2 * 8, *t[1:])), TOKEN),  # none, or one as issued
            categories=(
                st.lists(st.sampled_from(["movie", "book"]), max_size=2),
                lists(ANY_ID, 3, huge="movie"),
            ),
            after=(st.one_of(st.none(), PAST), ANY_TIME),
            before=(st.none(), ANY_TIME),
            as_of_time=(st.none(), ANY_TIME),
        )
        self.rank = fields(
            with_time(ranking_service_pb2.RankRequest, "as_of_time"),
            user_id=(USER, st.one_of(USER, ANY_ID)),
            candidate_item_ids=(
                st.lists(st.sampled_from(known), min_size=1, max_size=6),
                lists(self.item_id[1], 6, huge=known[0]),
            ),
            as_of_time=(st.none(), ANY_TIME),
        )
        self.get_profile = fields(
            with_time(profile_service_pb2.GetProfileRequest, "as_of_time"),
            user_id=(USER, st.one_of(USER, ANY_ID)),
            top_topics=counts(50),
            recent_events=counts(100),
            as_of_time=(st.none(), ANY_TIME),
        )
        self.user = st.one_of(USER, USER, ANY_ID)


# -- calls ---------------------------------------------------------------------------------------


class Tally:
    """Status codes per RPC: calls, and for streams the outcome of each message."""

    def __init__(self) -> None:
        self.calls: dict[str, Counter[str]] = defaultdict(Counter)
        self.messages: dict[str, Counter[str]] = defaultdict(Counter)

    def call(self, rpc: str, code: grpc.StatusCode, detail: Any = None) -> None:
        self.calls[rpc][code.name] += 1
        assert code not in NEVER, f"{rpc} answered {code.name}: {detail!r}"

    def message(self, rpc: str, code: int, detail: Any = None) -> None:
        name = grpc.StatusCode.OK.name if code == 0 else _name(code)
        self.messages[rpc][name] += 1
        assert code not in (2, 13), f"{rpc} message answered {name}: {detail!r}"

    def total_calls(self) -> int:
        return sum(sum(c.values()) for c in self.calls.values())

    def table(self) -> str:
        codes = sorted({k for c in (*self.calls.values(), *self.messages.values()) for k in c})
        rows = [("RPC", "kind", "total", *codes)]
        for rpc in sorted(self.calls):
            for kind, counter in (("calls", self.calls[rpc]), ("messages", self.messages.get(rpc))):
                if counter:
                    rows.append((rpc, kind, str(sum(counter.values())), *(str(counter[k]) for k in codes)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def _name(code: int) -> str:
    return next((c.name for c in grpc.StatusCode if c.value[0] == code), str(code))


def bad_request_fields(err: grpc.RpcError) -> list[str] | None:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        return None
    fields: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            detail.Unpack(br)
            fields += [v.field for v in br.field_violations]
    return fields


def unary(
    tally: Tally, rpc: str, call: Callable[..., Any], request: Any, timeout: float = 60
) -> grpc.StatusCode:
    try:
        call(request, timeout=timeout)
    except grpc.RpcError as err:
        code = err.code()
        tally.call(rpc, code, (err.details(), request))
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            fields = bad_request_fields(err)
            assert fields is not None and fields, (
                f"{rpc}: INVALID_ARGUMENT without BadRequest: {err.details()}"
            )
        return code
    tally.call(rpc, grpc.StatusCode.OK)
    return grpc.StatusCode.OK


def stream(tally: Tally, rpc: str, call: Callable[..., Any], requests: list[Any]) -> list[Any]:
    """Send the messages on one stream; each must get its answer, in order, none INTERNAL."""
    try:
        responses = list(call(iter(requests), timeout=60))
    except grpc.RpcError as err:
        tally.call(rpc, err.code(), (err.details(), requests))
        return []
    tally.call(rpc, grpc.StatusCode.OK)
    assert len(responses) == len(requests), f"{rpc}: {len(responses)} answers to {len(requests)} messages"
    for request, response in zip(requests, responses, strict=True):
        assert response.event_id == request.event.event_id
        if response.HasField("error"):
            tally.message(rpc, response.error.code, (response.error.message, request))
            if response.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]:
                assert response.error.field_violations, response.error.message
        else:
            tally.message(rpc, 0)
    return responses


def run_hypothesis(rpc: str, strategy: st.SearchStrategy[Any], body: Callable[[Any], None]) -> None:
    @settings(
        max_examples=max(1, round(EXAMPLES.get(rpc, WIRE_EXAMPLES) * SCALE)),
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def check(value: Any) -> None:
        body(value)

    check.__name__ = check.__qualname__ = f"fuzz_{rpc}"  # derandomize seeds from the name
    started = time.monotonic()
    check()
    TIMES[rpc] = time.monotonic() - started


# -- the test ------------------------------------------------------------------------------------


def fuzz_all(
    target: str,
    known: list[str],
    tally: Tally,
    rejected_events: set[tuple[str, str]],
    stored_events: set[tuple[str, str]],
) -> None:
    channel = grpc.insecure_channel(target)
    ingest = ingest_service_pb2_grpc.IngestServiceStub(channel)
    profiles = profile_service_pb2_grpc.ProfileServiceStub(channel)
    ranking = ranking_service_pb2_grpc.RankingServiceStub(channel)
    r = Requests(known)
    try:
        run_hypothesis(
            "UpsertItems",
            lists(r.item, 3, huge=common_pb2.Item(item_id="h", title="h"), min_size=1),
            lambda its: unary(
                tally, "UpsertItems", ingest.UpsertItems, ingest_service_pb2.UpsertItemsRequest(items=its)
            ),
        )
        run_hypothesis(
            "DeleteItems",
            lists(st.one_of(WORDS.map(lambda w: f"no-such-{w}"), ANY_ID), 5, huge="d"),
            lambda ids: unary(
                tally, "DeleteItems", ingest.DeleteItems, ingest_service_pb2.DeleteItemsRequest(item_ids=ids)
            ),
        )

        def ingest_batch(batch: list[common_pb2.Event]) -> None:
            code = unary(
                tally,
                "IngestEvents",
                ingest.IngestEvents,
                ingest_service_pb2.IngestEventsRequest(events=batch),
            )
            (stored_events if code == grpc.StatusCode.OK else rejected_events).update(
                (e.user_id, e.event_id) for e in batch
            )

        run_hypothesis("IngestEvents", lists(r.event, 3, huge=common_pb2.Event()), ingest_batch)

        def stream_events(batch: list[common_pb2.Event | None]) -> None:
            requests = [ingest_service_pb2.StreamEventsRequest(event=e) for e in batch]
            responses = stream(tally, "StreamEvents", ingest.StreamEvents, requests)
            for request, response in zip(requests, responses, strict=False):
                stored = not response.HasField("error")
                (stored_events if stored else rejected_events).add(
                    (request.event.user_id, request.event.event_id)
                )

        run_hypothesis(
            "StreamEvents",
            st.lists(st.one_of(r.event, r.event, st.none()), min_size=1, max_size=4),
            stream_events,
        )
        run_hypothesis(
            "GetProfile", r.get_profile, lambda req: unary(tally, "GetProfile", profiles.GetProfile, req)
        )

        def watch(user: str) -> None:
            try:
                for _ in profiles.WatchProfile(
                    profile_service_pb2.WatchProfileRequest(user_id=user), timeout=0.03
                ):
                    pass
            except grpc.RpcError as err:
                tally.call("WatchProfile", err.code(), (err.details(), user))
            else:
                tally.call("WatchProfile", grpc.StatusCode.OK)

        run_hypothesis("WatchProfile", r.user, watch)
        run_hypothesis(
            "DeleteUserData",
            st.one_of(r.user, r.user, r.user, st.just(USERS[-1])),  # one pool user is deleted now and then
            lambda u: unary(
                tally,
                "DeleteUserData",
                profiles.DeleteUserData,
                profile_service_pb2.DeleteUserDataRequest(user_id=u),
            ),
        )
        run_hypothesis(
            "Recommend", r.recommend, lambda req: unary(tally, "Recommend", ranking.Recommend, req)
        )
        run_hypothesis("Rank", r.rank, lambda req: unary(tally, "Rank", ranking.Rank, req))

        def feedback(requests: list[ranking_service_pb2.StreamFeedbackRequest]) -> None:
            responses = stream(tally, "StreamFeedback", ranking.StreamFeedback, requests)
            for request, response in zip(requests, responses, strict=False):
                (stored_events if response.recorded else rejected_events).add(
                    (request.event.user_id, request.event.event_id)
                )

        run_hypothesis("StreamFeedback", st.lists(r.feedback, min_size=1, max_size=3), feedback)
        fuzz_wire(channel, tally)
    finally:
        channel.close()


METHODS: dict[str, tuple[str, Any]] = {
    "UpsertItems": (
        "unary_unary",
        ingest_service_pb2.UpsertItemsRequest(items=[common_pb2.Item(item_id="1", title="t")]),
    ),
    "DeleteItems": ("unary_unary", ingest_service_pb2.DeleteItemsRequest(item_ids=["no-such-item"])),
    "IngestEvents": (
        "unary_unary",
        ingest_service_pb2.IngestEventsRequest(events=[common_pb2.Event(event_id="w", user_id="u")]),
    ),
    "StreamEvents": (
        "stream_stream",
        ingest_service_pb2.StreamEventsRequest(event=common_pb2.Event(event_id="w")),
    ),
    "GetProfile": ("unary_unary", profile_service_pb2.GetProfileRequest(user_id=USERS[0])),
    "WatchProfile": ("unary_stream", profile_service_pb2.WatchProfileRequest(user_id="wire-user")),
    "DeleteUserData": ("unary_unary", profile_service_pb2.DeleteUserDataRequest(user_id="wire-user")),
    "Recommend": ("unary_unary", ranking_service_pb2.RecommendRequest(user_id="wire-user", count=3)),
    "Rank": (
        "unary_unary",
        ranking_service_pb2.RankRequest(user_id="u", candidate_item_ids=["no-such-item"]),
    ),
    "StreamFeedback": (
        "stream_stream",
        ranking_service_pb2.StreamFeedbackRequest(event=common_pb2.Event(event_id="w")),
    ),
    # InsightService: its fields one by one in tests/integration/test_insights.py; here its wire
    "ListUsers": ("unary_unary", insight_service_pb2.ListUsersRequest(page_size=3, user_id_prefix="u")),
    "ListItems": ("unary_unary", insight_service_pb2.ListItemsRequest(page_size=3, title_contains="t")),
    "SearchItems": ("unary_unary", insight_service_pb2.SearchItemsRequest(text="wire", count=3)),
    "GetItem": ("unary_unary", insight_service_pb2.GetItemRequest(item_id="1", neighbours=3)),
    "GetTopicHistory": ("unary_unary", insight_service_pb2.GetTopicHistoryRequest(user_id=USERS[0])),
    "GetServerStats": ("unary_unary", insight_service_pb2.GetServerStatsRequest()),
    "GetOnlineQuality": ("unary_unary", insight_service_pb2.GetOnlineQualityRequest(bucket_seconds=60)),
}
SERVICES = {
    "UpsertItems": "IngestService",
    "DeleteItems": "IngestService",
    "IngestEvents": "IngestService",
    "StreamEvents": "IngestService",
    "GetProfile": "ProfileService",
    "WatchProfile": "ProfileService",
    "DeleteUserData": "ProfileService",
    "Recommend": "RankingService",
    "Rank": "RankingService",
    "StreamFeedback": "RankingService",
    **{
        rpc: "InsightService"
        for rpc in (
            "ListUsers",
            "ListItems",
            "SearchItems",
            "GetItem",
            "GetTopicHistory",
            "GetServerStats",
            "GetOnlineQuality",
        )
    },
}


def wire_message(rpc: str, kind: int, raw: bytes, at: int, flip: int, depth: int) -> bytes:
    """Raw bytes for a request of `rpc`: random, a valid message cut short, with a byte flipped or
    garbage appended, invalid UTF-8 in a string field, a length running past the end, start-group
    tags nested deeper than the parser's recursion limit, or a tag of a deprecated or bad wire type."""
    # a message without fields (GetServerStatsRequest) is empty: an unknown varint field stands in
    valid = METHODS[rpc][1].SerializeToString() or b"\x08\x01"
    i = at % len(valid)
    return [
        lambda: raw,
        lambda: valid[:i],
        lambda: valid[:i] + bytes([valid[i] ^ flip]) + valid[i + 1 :],
        lambda: valid + raw[:16],
        lambda: b"\x0a\x04\xff\xfe\xc3\x28" + raw[:4],
        lambda: b"\x0a\xff\xff\xff\xff\x0f" + raw[:8],
        lambda: b"\x0b" * depth,
        lambda: bytes([flip & 0xF8 | (3 + at % 5)]) + raw[:8],
    ][kind]()


WIRE_MESSAGE = st.tuples(
    st.integers(0, 7),
    st.binary(max_size=64),
    st.integers(0, 10_000),
    st.integers(1, 255),
    st.integers(50, 5000),
)
WIRE_PAYLOAD = st.tuples(st.sampled_from(sorted(METHODS)), st.lists(WIRE_MESSAGE, min_size=1, max_size=3))


def fuzz_wire(channel: grpc.Channel, tally: Tally) -> None:
    def send(payload: tuple[str, list[tuple[int, bytes, int, int, int]]]) -> None:
        rpc, parts = payload
        kind = METHODS[rpc][0]
        messages = [wire_message(rpc, *p) for p in (parts if kind == "stream_stream" else parts[:1])]
        method = getattr(channel, kind)(
            f"/driftwise.v1.{SERVICES[rpc]}/{rpc}"
        )  # no (de)serializers: raw bytes
        timeout = 0.05 if rpc == "WatchProfile" else 30
        try:
            if kind == "unary_unary":
                method(messages[0], timeout=timeout)
            elif kind == "unary_stream":
                for _ in method(messages[0], timeout=timeout):
                    pass
            else:
                for _ in method(iter(messages), timeout=timeout):
                    pass
        except grpc.RpcError as err:
            tally.call("(wire bytes)", err.code(), (err.details(), rpc, messages))
            if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
                assert bad_request_fields(err) is not None, err.details()
        else:
            tally.call("(wire bytes)", grpc.StatusCode.OK)

    run_hypothesis("(wire bytes)", WIRE_PAYLOAD, send)


async def test_every_rpc_survives_10k_generated_requests(
    loaded: tuple[App, Client], movies: list[Movie]
) -> None:
    app, client = loaded
    known = [m.item_id for m in movies[:50]]
    tally = Tally()
    rejected_events: set[tuple[str, str]] = set()  # (user_id, event_id): event ids are per user
    stored_events: set[tuple[str, str]] = set()
    started = time.monotonic()

    await asyncio.to_thread(fuzz_all, app.target, known, tally, rejected_events, stored_events)

    elapsed = time.monotonic() - started
    print(f"\n{tally.total_calls()} calls in {elapsed:.0f} s\n{tally.table()}")
    print("seconds per RPC:", {k: round(v, 1) for k, v in TIMES.items()})
    assert tally.total_calls() >= 10_000 * SCALE

    # a message past max_message_bytes (4 MiB): gRPC refuses it before parsing
    huge = ingest_service_pb2.UpsertItemsRequest(
        items=[common_pb2.Item(item_id="big", title="t", description="x" * (5 << 20))]
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client.ingest.UpsertItems(huge)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    # nothing of a rejected batch or message was stored
    log = EventLog(app.settings.data_dir / "events.sqlite")
    try:
        assert not log.existing_events(sorted(rejected_events - stored_events))
    finally:
        log.close()

    # every profile reached Milvus (a bad user id once stalled the interest mirror for everyone)
    await app.engine.interest_mirror.flush()
    assert app.engine.interest_mirror.pending == 0

    # still healthy, and a normal request still works
    health = health_pb2_grpc.HealthStub(client.channel)
    assert (
        await health.Check(health_pb2.HealthCheckRequest())
    ).status == health_pb2.HealthCheckResponse.SERVING
    user = "after-the-fuzz"
    event = common_pb2.Event(
        event_id="after-1", user_id=user, type=common_pb2.EVENT_TYPE_LIKE, item_id=known[0]
    )
    event.event_time.FromSeconds(int(time.time()) - 5)
    await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=[event]))
    response = await client.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=user, count=5))
    assert len(response.items) == 5 and response.profile_version == 1


async def test_a_stream_over_its_rate_gets_resource_exhausted_per_message_and_goes_on(
    triton: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    base = settings_for(tmp_path_factory.mktemp("rate"), triton)
    settings = base.model_copy(update={"limits": LimitSettings(max_stream_messages_per_second=5)})
    async with app_and_client(settings) as (_, client):
        call = client.ingest.StreamEvents()
        codes = []
        for i in range(12):  # invalid events: answered at once, so all 12 come within the second
            await call.write(ingest_service_pb2.StreamEventsRequest(event=common_pb2.Event(event_id=f"r{i}")))
            codes.append((await call.read()).error.code)
        await asyncio.sleep(0.5)  # 2.5 tokens back
        await call.write(ingest_service_pb2.StreamEventsRequest(event=common_pb2.Event(event_id="later")))
        later = await call.read()
        await call.done_writing()
        assert await call.read() == grpc.aio.EOF
    invalid, exhausted = (
        grpc.StatusCode.INVALID_ARGUMENT.value[0],
        grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
    )
    assert codes[:5] == [invalid] * 5 and set(codes[5:]) == {exhausted}
    assert later.event_id == "later" and later.error.code == invalid
