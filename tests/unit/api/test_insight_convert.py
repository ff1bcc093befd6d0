import base64

import pytest

from driftwise.api import insight_convert as convert
from driftwise.api.page_tokens import encode_list_token
from driftwise.engine.types import ItemPage, UserPage
from driftwise.errors import InvalidArgumentError
from driftwise.model.events import Layer
from driftwise.model.online_quality import Counts, QualityReport
from driftwise.model.ranking.explanations import Reason
from driftwise.settings import LimitSettings
from driftwise.storage.event_log import UserRow
from driftwise.storage.vector_store import UNKNOWN_TIME, StoredItem
from driftwise_client.v1 import common_pb2, ranking_service_pb2
from driftwise_client.v1 import insight_service_pb2 as pb

LIMITS = LimitSettings()


def fields(call: object) -> list[str]:
    with pytest.raises(InvalidArgumentError) as info:
        call()  # type: ignore[operator]
    return [v.field for v in info.value.violations]


def item(item_id: str) -> StoredItem:
    import numpy as np

    return StoredItem(item_id, f"title {item_id}", "", UNKNOWN_TIME, np.zeros(0, np.float32))


def test_sizes_and_counts_take_their_defaults_and_bounds() -> None:
    assert convert.list_users_request(pb.ListUsersRequest(), LIMITS) == ("", None, 50)
    assert convert.list_items_request(pb.ListItemsRequest(page_size=500), LIMITS) == ("", None, 500)
    assert convert.search_items_request(pb.SearchItemsRequest(text="space"), LIMITS) == ("space", 10)
    assert convert.get_item_request(pb.GetItemRequest(item_id="i1"), LIMITS) == ("i1", 10)
    assert convert.topic_history_request(pb.GetTopicHistoryRequest(user_id="u"), LIMITS) == ("u", 100, 5)
    assert convert.online_quality_request(pb.GetOnlineQualityRequest()) == (60, 30)
    assert convert.online_quality_request(pb.GetOnlineQualityRequest(bucket_seconds=10, buckets=1440)) == (
        10,
        1440,
    )

    assert fields(lambda: convert.list_users_request(pb.ListUsersRequest(page_size=501), LIMITS)) == [
        "page_size"
    ]
    assert fields(lambda: convert.list_items_request(pb.ListItemsRequest(page_size=-1), LIMITS)) == [
        "page_size"
    ]
    assert fields(
        lambda: convert.search_items_request(pb.SearchItemsRequest(text=" ", count=101), LIMITS)
    ) == [
        "text",
        "count",
    ]
    assert fields(lambda: convert.get_item_request(pb.GetItemRequest(neighbours=101), LIMITS)) == [
        "item_id",
        "neighbours",
    ]
    request = pb.GetTopicHistoryRequest(user_id="u", max_points=1001, top_topics=21)
    assert fields(lambda: convert.topic_history_request(request, LIMITS)) == ["max_points", "top_topics"]
    for seconds in (9, 3601, -5):
        bad = pb.GetOnlineQualityRequest(bucket_seconds=seconds)
        assert fields(lambda bad=bad: convert.online_quality_request(bad)) == ["bucket_seconds"]
    assert fields(lambda: convert.online_quality_request(pb.GetOnlineQualityRequest(buckets=1441))) == [
        "buckets"
    ]
    long_title = pb.ListItemsRequest(title_contains="x" * (LIMITS.max_title_chars + 1))
    assert fields(lambda: convert.list_items_request(long_title, LIMITS)) == ["title_contains"]


def test_list_pages_round_trip_through_their_tokens() -> None:
    users = UserPage([UserRow("ann", 3, 50.5, 3), UserRow("bob", 1, 20.0, 1)], more=True, total=9)
    response = convert.users_to_proto(users, "b")
    assert response.total_users == 9 and [u.user_id for u in response.users] == ["ann", "bob"]
    next_request = pb.ListUsersRequest(user_id_prefix="b", page_token=response.next_page_token)
    assert convert.list_users_request(next_request, LIMITS) == ("b", (20.0, "bob"), 50)
    assert convert.users_to_proto(UserPage(users.users, more=False, total=9), "b").next_page_token == ""

    items = ItemPage([item("a"), item("b")], more=True, total=5)
    response_items = convert.items_to_proto(items, "Star")
    assert response_items.total_items == 5 and not response_items.items[0].HasField("create_time")
    again = pb.ListItemsRequest(title_contains="Star", page_token=response_items.next_page_token)
    assert convert.list_items_request(again, LIMITS) == ("Star", "b", 50)


def test_a_list_token_is_taken_only_by_its_method_and_with_its_filter() -> None:
    users_token = encode_list_token("ListUsers", [1.0, "ann"], "")
    items_token = encode_list_token("ListItems", ["a"], "Star")
    other_filter = pb.ListItemsRequest(title_contains="Trek", page_token=items_token)
    with pytest.raises(InvalidArgumentError) as info:
        convert.list_items_request(other_filter, LIMITS)
    (violation,) = info.value.violations
    assert violation.field == "page_token" and "title_contains" in violation.description
    for request in (pb.ListItemsRequest(page_token=users_token), pb.ListItemsRequest(page_token="garbage!")):
        assert fields(lambda r=request: convert.list_items_request(r, LIMITS)) == ["page_token"]
    assert fields(
        lambda: convert.list_users_request(pb.ListUsersRequest(page_token=items_token), LIMITS)
    ) == ["page_token"]


@pytest.mark.parametrize(
    "cursor",
    [[], ["ann"], [True, "ann"], [float("inf"), "ann"], ["1", "ann"], [1.0, ""], [1.0, "x" * 129], [1.0, 2]],
)
def test_made_up_user_cursors_are_refused(cursor: list[object]) -> None:
    token = encode_list_token("ListUsers", cursor, "")  # type: ignore[arg-type]  # ours in form only
    assert fields(lambda: convert.list_users_request(pb.ListUsersRequest(page_token=token), LIMITS)) == [
        "page_token"
    ]


def test_an_oversized_token_is_refused_before_it_is_decoded() -> None:
    token = base64.urlsafe_b64encode(b"[" * 100_000).decode()
    assert fields(lambda: convert.list_items_request(pb.ListItemsRequest(page_token=token), LIMITS)) == [
        "page_token"
    ]


def test_online_quality_maps_every_count() -> None:
    c = Counts(issued=5, clicks=1, likes=2, skips=3, dislikes=4)
    report = QualityReport(c, ((Reason.SEQUENCE, c),), ((Layer.MIDDLE, c),), ((20, c),), ((1800.0, c),))
    message = convert.online_quality_to_proto(report)
    assert (message.total.issued, message.total.clicks, message.total.likes) == (5, 1, 2)
    assert (message.total.skips, message.total.dislikes) == (3, 4)
    assert message.by_reason[0].reason == ranking_service_pb2.EXPLANATION_REASON_SEQUENCE
    assert message.by_layer[0].layer == common_pb2.INTEREST_LAYER_MIDDLE
    assert message.by_position[0].position == 20 and message.over_time[0].start_time.seconds == 1800
