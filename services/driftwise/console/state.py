"""What the console's handlers share: its configuration, the gateway to the target, the browser
sessions, the live streams to end on shutdown; and the small request helpers they all use."""

from __future__ import annotations

import asyncio
import math
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from driftwise.console.gateway import Gateway, Target
from driftwise.console.guard import json_text
from driftwise.console.sessions import Session, Sessions


@dataclass(frozen=True)
class ConsoleConfig:
    """The console, resolved from settings and flags (files already read)."""

    target: Target
    host: str = "127.0.0.1"
    port: int = 8080
    default_token: str | None = None  # the token file's: used until someone logs in
    allowed_hosts: frozenset[str] | None = None  # None: any Host header
    eval_report: Path = Path("eval-results")
    session_idle_seconds: float = 8 * 3600.0


@dataclass
class Console:
    config: ConsoleConfig
    gateway: Gateway
    sessions: Sessions
    live: set[asyncio.Task[None]] = field(default_factory=set)  # WatchProfile readers
    auth_seen: bool = False  # the target answered UNAUTHENTICATED once: the pages offer a login

    def token_for(self, session: Session | None) -> str | None:
        if session is not None and session.token is not None:
            return session.token
        return self.config.default_token


CONSOLE = web.AppKey("console", Console)
# the browser session of the request being answered (set by the guard middleware, which awaits the
# handler in the same task); a context variable rather than request storage, whose typed keys only
# recent aiohttp versions have
CURRENT_SESSION: ContextVar[Session | None] = ContextVar("driftwise_console_session", default=None)


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE]


def session_of(request: web.Request) -> Session | None:
    return CURRENT_SESSION.get()


def token_of(request: web.Request) -> str | None:
    return console_of(request).token_for(session_of(request))


def json_response(value: object, status: int = 200) -> web.Response:
    return web.Response(
        text=json_text(value),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def error_response(status: int, code: str, message: str) -> web.Response:
    return json_response({"error": {"code": code, "summary": message, "message": message}}, status)


class BadParameter(ValueError):
    """A query or body value the console cannot use (answered 400)."""


def text_param(request: web.Request, name: str, *, required: bool = False, max_chars: int = 512) -> str:
    value = request.query.get(name, "")
    if required and not value:
        raise BadParameter(f"{name} is required")
    if len(value) > max_chars:
        raise BadParameter(f"{name} is longer than {max_chars} characters")
    return value


def float_param(request: web.Request, name: str, low: float, high: float, default: float = 0.0) -> float:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(f"{name} must be a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise BadParameter(f"{name} must be in [{low}, {high}]")
    return value


def int_param(request: web.Request, name: str, low: int, high: int, default: int) -> int:
    value = float_param(request, name, low, high, default)
    if value != int(value):
        raise BadParameter(f"{name} must be a whole number")
    return int(value)
