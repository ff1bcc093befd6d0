import json
import logging
import re
from pathlib import Path

import grpc
import pytest

from driftwise.api.errors import rich_status, status_code
from driftwise.api.interceptors.auth import authorize
from driftwise.errors import AccessError, PermissionDeniedError, UnauthenticatedError
from driftwise.observability.logs import JsonFormatter
from driftwise.security.scopes import Scope
from driftwise.security.tokens import TokenTable, current_tenant, hash_token, new_token

RECOMMEND = "/driftwise.v1.RankingService/Recommend"
DELETE = "/driftwise.v1.ProfileService/DeleteUserData"


def table(**tenants: tuple[list[str], list[str]]) -> TokenTable:
    return TokenTable.parse(
        {
            "tenants": {
                name: {"scopes": s, "token_sha256": [hash_token(t) for t in ts]}
                for name, (s, ts) in tenants.items()
            }
        }
    )


def test_a_token_finds_its_tenant_and_only_hashes_are_stored() -> None:
    token, other = new_token(), new_token()
    assert token != other and len(token) > 40
    tokens = table(shop=(["recommend", "events:write"], [token, other]), ops=(["users:delete"], ["t-ops"]))
    shop = tokens.tenant(token)
    assert shop is not None and shop.name == "shop"
    assert shop.scopes == {Scope.RECOMMEND, Scope.EVENTS_WRITE}
    assert tokens.tenant(other) == shop  # two tokens during a rotation
    assert tokens.tenant("t-ops") is not None
    assert tokens.tenant(token + "x") is None and tokens.tenant("") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "no tenants"),
        (
            {"tenants": {"a": {"scopes": ["recomend"], "token_sha256": ["0" * 64]}}},
            "unknown scope 'recomend'",
        ),
        ({"tenants": {"a": {"scopes": [], "token_sha256": ["secret-token"]}}}, "never the token itself"),
        ({"tenants": {"a": {"scopes": [], "token_sha256": []}}}, "non-empty list"),
        ({"tenants": {"a": {"scopes": [], "tokens": ["0" * 64]}}}, "exactly the keys"),
        (
            {"tenants": {n: {"scopes": [], "token_sha256": ["0" * 64]} for n in ("a", "b")}},
            "also listed for tenant 'a'",
        ),
        ({"tenant": {}}, "unknown keys"),
    ],
)
def test_bad_tokens_files_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TokenTable.parse(data)


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text('[tenants.a]\nscopes = ["nope"]\ntoken_sha256 = ["' + "0" * 64 + '"]\n')
    with pytest.raises(
        ValueError, match=re.escape(f"auth.tokens_file {path}: tenant 'a': unknown scope 'nope'")
    ):
        TokenTable.load(path)
    with pytest.raises(ValueError, match=r"auth\.tokens_file .*missing\.toml"):
        TokenTable.load(tmp_path / "missing.toml")


def _refusal(metadata: tuple[tuple[str, str], ...], method: str = RECOMMEND) -> AccessError:
    tokens = table(shop=(["recommend"], ["good"]))
    with pytest.raises(AccessError) as info:
        authorize(tokens, method, metadata)
    return info.value


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((), "MISSING_TOKEN"),
        ((("authorization", "good"),), "MALFORMED_TOKEN"),  # no scheme
        ((("authorization", "Basic good"),), "MALFORMED_TOKEN"),
        ((("authorization", "Bearer "),), "MALFORMED_TOKEN"),
        ((("authorization", "Bearer good"), ("authorization", "Bearer good")), "MALFORMED_TOKEN"),
        ((("authorization", "Bearer bad"),), "INVALID_TOKEN"),
    ],
)
def test_unauthenticated(metadata: tuple[tuple[str, str], ...], reason: str) -> None:
    refusal = _refusal(metadata)
    assert isinstance(refusal, UnauthenticatedError) and refusal.reason == reason
    assert status_code(refusal) == grpc.StatusCode.UNAUTHENTICATED


def test_scope_required_names_the_scope() -> None:
    refusal = _refusal((("authorization", "Bearer good"),), DELETE)
    assert isinstance(refusal, PermissionDeniedError) and refusal.reason == "SCOPE_REQUIRED"
    assert refusal.metadata == {"scope": "users:delete", "tenant": "shop"}
    status = rich_status(refusal)
    assert status.code == grpc.StatusCode.PERMISSION_DENIED
    assert "needs scope 'users:delete'" in status.details


def test_allowed_and_fail_closed() -> None:
    tokens = table(shop=(["recommend"], ["good"]))
    ok = (("authorization", "bearer good"),)  # the scheme is case-insensitive (RFC 6750)
    assert authorize(tokens, RECOMMEND, ok).name == "shop"
    # reflection: any valid token; a Driftwise method missing from the table: nobody
    assert authorize(tokens, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", ok)
    refusal = _refusal(ok, "/driftwise.v1.RankingService/NewMethod")
    assert isinstance(refusal, PermissionDeniedError) and refusal.reason == "METHOD_WITHOUT_SCOPE"


def test_json_logs_carry_the_tenant() -> None:
    reset = current_tenant.set("shop")
    try:
        record = logging.LogRecord("driftwise", logging.INFO, __file__, 1, "hello", None, None)
        assert json.loads(JsonFormatter().format(record))["tenant"] == "shop"
    finally:
        current_tenant.reset(reset)
