import pytest

from driftwise.security.scopes import METHOD_SCOPES, Scope, parse_scope
from driftwise_client.v1 import (
    ingest_service_pb2,
    insight_service_pb2,
    profile_service_pb2,
    ranking_service_pb2,
)


def _all_methods() -> set[str]:
    return {
        f"/{service.full_name}/{method.name}"
        for module in (ingest_service_pb2, profile_service_pb2, ranking_service_pb2, insight_service_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }


def test_every_rpc_has_a_scope() -> None:
    # a new RPC added to protos/ without a line in METHOD_SCOPES fails here (and is refused to all)
    methods = _all_methods()
    assert len(methods) == 18
    assert methods - set(METHOD_SCOPES) == set(), "RPCs without a scope"
    assert set(METHOD_SCOPES) - methods == set(), "scopes for RPCs that do not exist"


def test_every_scope_is_used() -> None:
    assert set(METHOD_SCOPES.values()) == set(Scope)


def test_the_table() -> None:
    by_scope: dict[str, set[str]] = {}
    for method, scope in METHOD_SCOPES.items():
        by_scope.setdefault(scope.value, set()).add(method.rsplit("/", 1)[1])
    assert by_scope == {
        "events:write": {"IngestEvents", "StreamEvents"},
        "items:write": {"UpsertItems", "DeleteItems"},
        "profiles:read": {"GetProfile", "WatchProfile", "ListUsers", "GetTopicHistory", "GetItem"},
        "users:delete": {"DeleteUserData"},
        "recommend": {"Recommend", "Rank", "StreamFeedback", "GetModelStatus"},
        "insights:read": {"ListItems", "SearchItems", "GetServerStats", "GetOnlineQuality"},
    }


def test_unknown_scope_is_named() -> None:
    assert parse_scope("recommend") is Scope.RECOMMEND
    with pytest.raises(ValueError, match=r"unknown scope 'recomend' \(known: events:write"):
        parse_scope("recomend")
