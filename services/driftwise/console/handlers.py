"""The console's JSON endpoints: each parses its parameters, makes one call through the gateway and
answers its JSON, or the call's failure (driftwise.console.gateway.CallFailed) as an error object.
GETs only read; the writes (feedback, login, logout) are POSTs that the guard middleware
(driftwise.console.pages) has already checked against cross-site requests."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from driftwise.console.gateway import FEEDBACK_TYPES
from driftwise.console.reports import latest_report
from driftwise.console.sessions import COOKIE
from driftwise.console.state import (
    BadParameter,
    console_of,
    error_response,
    float_param,
    int_param,
    json_response,
    session_of,
    text_param,
    token_of,
)

MAX_TEMPERATURE = 10.0


def _temperature(request: web.Request) -> float:
    value = float_param(request, "temperature", 0.0, MAX_TEMPERATURE)
    if 0 < value < 0.01:
        raise BadParameter("temperature must be 0 (the server's) or in [0.01, 10]")
    return value


async def stats(request: web.Request) -> web.Response:
    return json_response(await console_of(request).gateway.server_stats(token_of(request)))


async def model(request: web.Request) -> web.Response:
    return json_response(await console_of(request).gateway.model_status(token_of(request)))


async def quality(request: web.Request) -> web.Response:
    bucket_seconds = int_param(request, "bucket_seconds", 10, 3600, 60)
    buckets = int_param(request, "buckets", 1, 1440, 30)
    gateway = console_of(request).gateway
    return json_response(await gateway.online_quality(token_of(request), bucket_seconds, buckets))


async def users(request: web.Request) -> web.Response:
    prefix, page = (
        text_param(request, "prefix", max_chars=128),
        text_param(request, "page_token", max_chars=2048),
    )
    return json_response(await console_of(request).gateway.users(token_of(request), prefix, page))


async def profile(request: web.Request) -> web.Response:
    user_id, temperature = text_param(request, "user_id", required=True), _temperature(request)
    return json_response(await console_of(request).gateway.profile(token_of(request), user_id, temperature))


async def history(request: web.Request) -> web.Response:
    user_id = text_param(request, "user_id", required=True)
    return json_response(await console_of(request).gateway.topic_history(token_of(request), user_id))


async def recommendations(request: web.Request) -> web.Response:
    user_id = text_param(request, "user_id", required=True)
    diversity, temperature = float_param(request, "diversity", 0.0, 1.0), _temperature(request)
    gateway = console_of(request).gateway
    return json_response(await gateway.recommendations(token_of(request), user_id, diversity, temperature))


async def items(request: web.Request) -> web.Response:
    title, page = (
        text_param(request, "title", max_chars=512),
        text_param(request, "page_token", max_chars=2048),
    )
    return json_response(await console_of(request).gateway.items(token_of(request), title, page))


async def search(request: web.Request) -> web.Response:
    text = text_param(request, "text", required=True, max_chars=1000)
    return json_response(await console_of(request).gateway.search_items(token_of(request), text))


async def item(request: web.Request) -> web.Response:
    item_id = text_param(request, "item_id", required=True)
    return json_response(await console_of(request).gateway.item(token_of(request), item_id))


async def evaluation(request: web.Request) -> web.Response:
    report = latest_report(console_of(request).config.eval_report)
    if report is None:
        where = str(console_of(request).config.eval_report)
        return json_response({"report": None, "looked_in": where})
    try:
        return json_response({"report": report.to_json()})
    except (OSError, ValueError) as exc:
        return error_response(500, "BAD_REPORT", f"cannot read {report.path}: {exc}")


async def evaluation_plot(request: web.Request) -> web.StreamResponse:
    report = latest_report(console_of(request).config.eval_report)
    if report is None or report.plot is None:
        raise web.HTTPNotFound()
    return web.FileResponse(report.plot, headers={"Content-Type": "image/png", "Cache-Control": "no-store"})


# -- writes ---------------------------------------------------------------------------------------


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise BadParameter("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadParameter("the body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, max_chars: int = 128) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > max_chars:
        raise BadParameter(f"{name} must be a non-empty string of at most {max_chars} characters")
    return value


async def feedback(request: web.Request) -> web.Response:
    """LIKE / DISLIKE / SKIP on a shown item: the event, then the list as it is now (with the
    page's diversity and temperature)."""
    body = await _body(request)
    kind = _field(body, "type")
    if kind not in FEEDBACK_TYPES:
        raise BadParameter(f"type must be one of {', '.join(FEEDBACK_TYPES)}")
    user_id, item_id = _field(body, "user_id"), _field(body, "item_id")
    impression_id = _field(body, "impression_id")
    diversity, temperature = _number(body, "diversity", 0.0, 1.0), _number(body, "temperature", 0.0, 10.0)
    gateway, token = console_of(request).gateway, token_of(request)
    ack = await gateway.feedback(token, user_id, item_id, kind, impression_id)
    listed = await gateway.recommendations(token, user_id, diversity, temperature)
    return json_response({"ack": ack, "recommendations": listed})


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float:
    value = body.get(name, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadParameter(f"{name} must be a number in [{low}, {high}]")
    return float(value)


async def session_info(request: web.Request) -> web.Response:
    console, session = console_of(request), session_of(request)
    return json_response(
        {
            "csrf": session.csrf if session else None,
            "logged_in": session is not None and session.token is not None,
            "console_token": console.config.default_token is not None,
            "auth_seen": console.auth_seen,
            "target": console.gateway.target.address,
        }
    )


async def login(request: web.Request) -> web.Response:
    """Check the token against the server, then hold it in a fresh session."""
    console, session = console_of(request), session_of(request)
    token = _field(await _body(request), "token", max_chars=4096).strip()
    console.gateway.target.check_token()
    if not await console.gateway.token_accepted(token):
        return error_response(401, "UNAUTHENTICATED", "the server does not accept this token")
    assert session is not None  # the guard refuses a write without one
    fresh = console.sessions.login(session, token)
    response = json_response({"csrf": fresh.csrf, "logged_in": True})
    set_session_cookie(response, fresh.id, request.secure)
    return response


async def logout(request: web.Request) -> web.Response:
    console, session = console_of(request), session_of(request)
    if session is not None:
        console.sessions.drop(session)
    response = json_response({"logged_in": False})
    response.del_cookie(COOKIE, path="/")
    return response


def set_session_cookie(response: web.StreamResponse, session_id: str, secure: bool) -> None:
    response.set_cookie(COOKIE, session_id, path="/", httponly=True, samesite="Strict", secure=secure)
