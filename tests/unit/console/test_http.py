"""The console's HTTP layer against a fake gateway: headers, sessions and cookies, the write
checks, errors as the pages see them, the live stream, login."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp.test_utils import TestClient, TestServer

from driftwise.console import app as console_app
from driftwise.console.app import build_app, running_console
from driftwise.console.gateway import CallFailed, Target
from driftwise.console.guard import CSRF_HEADER
from driftwise.console.state import ConsoleConfig

PROFILE = {"user_id": "u1", "version": 3, "layers": [], "recent_events": []}


class FakeGateway:
    """Records the calls and the token each came with."""

    def __init__(self) -> None:
        self.target = Target("127.0.0.1:50051")
        self.calls: list[tuple[str, str | None, tuple[Any, ...]]] = []
        self.fail: CallFailed | None = None

    def _record(self, name: str, token: str | None, *args: Any) -> None:
        self.calls.append((name, token, args))
        if self.fail is not None:
            raise self.fail

    async def server_stats(self, token: str | None) -> dict[str, Any]:
        self._record("stats", token)
        return {"items": 1, "title": "<script>alert(1)</script>"}

    async def feedback(self, token: str | None, *args: Any) -> dict[str, Any]:
        self._record("feedback", token, *args)
        return {"event_id": "e", "duplicate": False, "profile_version": 4}

    async def recommendations(self, token: str | None, *args: Any) -> dict[str, Any]:
        self._record("recommendations", token, *args)
        return {"recommendation_id": "r2", "profile_version": 4, "source": "personalized", "items": []}

    async def token_accepted(self, token: str) -> bool:
        self._record("token_accepted", token)
        return token == "good"

    async def watch_profile(self, token: str | None, user_id: str) -> AsyncIterator[dict[str, Any]]:
        self._record("watch", token, user_id)
        yield PROFILE
        yield {**PROFILE, "version": 4}
        raise CallFailed(grpc.StatusCode.NOT_FOUND, "user deleted")

    async def close(self) -> None:
        pass


@pytest.fixture
async def console() -> AsyncIterator[tuple[TestClient[Any, Any], FakeGateway]]:
    gateway = FakeGateway()
    config = ConsoleConfig(target=gateway.target, allowed_hosts=frozenset({"127.0.0.1"}))
    app = build_app(config, gateway)  # type: ignore[arg-type]
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client, gateway


async def csrf_of(client: TestClient[Any, Any]) -> str:
    """Load a page (which starts the session) and read its CSRF token from the meta tag."""
    page = await client.get("/")
    text = await page.text()
    return text.split('name="driftwise-csrf" content="', 1)[1].split('"', 1)[0]


def feedback_body() -> dict[str, Any]:
    return {"user_id": "u1", "item_id": "i1", "type": "like", "impression_id": "r1"}


async def test_a_page_starts_a_strict_session_and_carries_the_headers(console: Any) -> None:
    client, _ = console
    response = await client.get("/user?id=1")
    assert response.status == 200
    cookie = response.headers["Set-Cookie"]
    assert "driftwise_console=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert (
        response.headers["X-Frame-Options"] == "DENY"
        and response.headers["X-Content-Type-Options"] == "nosniff"
    )
    asset = await client.get("/static/js/main.js")
    assert (
        asset.headers["Content-Type"].startswith("text/javascript")
        and "Content-Security-Policy" in asset.headers
    )
    again = await client.get("/static/js/main.js", headers={"If-None-Match": asset.headers["ETag"]})
    assert again.status == 304


async def test_json_answers_hold_no_markup(console: Any) -> None:
    client, _ = console
    response = await client.get("/api/stats")
    assert response.headers["Content-Type"].startswith("application/json")
    text = await response.text()
    assert "<script>" not in text and (await response.json())["title"] == "<script>alert(1)</script>"


@pytest.mark.parametrize(
    ("code", "status", "summary"),
    [
        (grpc.StatusCode.UNIMPLEMENTED, 501, "not available from this server"),
        (grpc.StatusCode.PERMISSION_DENIED, 403, "the token lacks the scope for this"),
        (grpc.StatusCode.UNAUTHENTICATED, 401, "a token is needed"),
        (grpc.StatusCode.UNAVAILABLE, 503, "the server is unavailable"),
    ],
)
async def test_failed_calls_are_errors_the_pages_can_show(
    console: Any, code: grpc.StatusCode, status: int, summary: str
) -> None:
    client, gateway = console
    gateway.fail = CallFailed(code, "the server's words")
    response = await client.get("/api/stats")
    assert response.status == status
    assert (await response.json())["error"] == {
        "code": code.name,
        "summary": summary,
        "message": "the server's words",
    }


async def test_a_same_origin_write_with_the_token_is_made(console: Any) -> None:
    client, gateway = console
    csrf = await csrf_of(client)
    origin = f"http://127.0.0.1:{client.port}"
    response = await client.post(
        "/api/feedback", json=feedback_body(), headers={CSRF_HEADER: csrf, "Origin": origin}
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["recommendations"]["recommendation_id"] == "r2"
    assert [c[0] for c in gateway.calls] == ["feedback", "recommendations"]
    assert gateway.calls[0][2] == ("u1", "i1", "like", "r1")


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no CSRF header
        {CSRF_HEADER: "wrong"},
        {"Origin": "http://evil.example"},  # the right token, another origin
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_a_cross_site_write_is_refused_and_nothing_is_called(
    console: Any, headers: dict[str, str]
) -> None:
    client, gateway = console
    csrf = await csrf_of(client)
    sent = {CSRF_HEADER: csrf, "Origin": f"http://127.0.0.1:{client.port}", **headers}
    if not headers:
        del sent[CSRF_HEADER]
    response = await client.post("/api/feedback", json=feedback_body(), headers=sent)
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "CROSS_SITE_REFUSED"
    assert gateway.calls == []


async def test_a_form_post_without_a_session_is_refused(console: Any) -> None:
    client, gateway = console
    response = await client.post("/api/feedback", data={"user_id": "u1"})
    assert response.status == 403 and gateway.calls == []


async def test_another_host_name_is_not_answered(console: Any) -> None:
    client, gateway = console
    response = await client.get("/api/stats", headers={"Host": f"evil.example:{client.port}"})
    assert response.status == 421 and gateway.calls == []


async def test_bad_parameters_are_refused_before_any_call(console: Any) -> None:
    client, gateway = console
    for path in ("/api/recommendations?user_id=u&diversity=2", "/api/profile", "/api/quality?buckets=x"):
        response = await client.get(path)
        assert response.status == 400, path
        assert (await response.json())["error"]["code"] == "BAD_PARAMETER"
    assert gateway.calls == []


async def test_the_live_stream_carries_profiles_then_the_failure(console: Any) -> None:
    client, _ = console
    response = await client.get("/api/live?user_id=u1")
    assert response.headers["Content-Type"] == "text/event-stream"
    assert "Content-Security-Policy" in response.headers
    text = await response.text()
    events = [block.split("\n")[0] for block in text.strip().split("\n\n")]
    # a reader slower than the changes gets the newest profile (here both came at once), then the end
    assert events[0] == "retry: 3000" and events[-1] == "event: failure"
    assert set(events[1:-1]) == {"event: profile"} and 1 <= len(events[1:-1]) <= 2
    last_profile = text.split("event: profile\ndata: ")[-1].split("\n", 1)[0]
    assert '"version":4' in last_profile and '"code":"NOT_FOUND"' in text


async def test_login_checks_the_token_and_calls_with_it(console: Any) -> None:
    client, gateway = console
    csrf = await csrf_of(client)
    origin = {"Origin": f"http://127.0.0.1:{client.port}"}
    refused = await client.post("/api/login", json={"token": "bad"}, headers={CSRF_HEADER: csrf, **origin})
    assert refused.status == 401
    accepted = await client.post("/api/login", json={"token": "good"}, headers={CSRF_HEADER: csrf, **origin})
    assert accepted.status == 200
    assert "HttpOnly" in accepted.headers["Set-Cookie"]
    new_csrf = (await accepted.json())["csrf"]
    assert new_csrf != csrf
    await client.get("/api/stats")
    assert gateway.calls[-1] == ("stats", "good", ())
    session = await (await client.get("/api/session")).json()
    assert session["logged_in"] is True and "good" not in str(session)
    out = await client.post("/api/logout", json={}, headers={CSRF_HEADER: new_csrf, **origin})
    assert out.status == 200
    await client.get("/api/stats")
    assert gateway.calls[-1] == ("stats", None, ())


async def test_stopping_the_console_ends_open_live_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """A browser tab left open on a user page does not hold the console's shutdown (which would
    otherwise wait out the runner's 2 s shutdown timeout)."""

    class Quiet(FakeGateway):
        async def watch_profile(self, token: str | None, user_id: str) -> AsyncIterator[dict[str, Any]]:
            yield PROFILE
            await asyncio.Event().wait()  # no change, ever

    monkeypatch.setattr(console_app, "Gateway", lambda target: Quiet())
    async with aiohttp.ClientSession() as http:
        async with running_console(ConsoleConfig(target=Target("127.0.0.1:1"), port=0)) as console:
            response = await http.get(f"{console.url}api/live?user_id=u1")
            assert (await response.content.readuntil(b"event: profile")).endswith(b"event: profile")
            started = time.monotonic()
        assert time.monotonic() - started < 1.0
        await asyncio.wait_for(response.content.read(), 1.0)  # the stream has ended
