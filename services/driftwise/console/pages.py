"""The console's pages and assets, and the middleware every request passes.

Every page is the same HTML shell (static/index.html, with the session's CSRF token in a meta tag);
its script module draws the page named by the path from the JSON endpoints. The assets are read
once from the package (static/), so the console needs nothing from the network but its target.

The middleware: the Host check (guard.host_allowed), the browser session from its cookie (a page
load without one starts one), the write check for every POST (guard.write_refusal), the security
headers on every answer, and failed calls turned into JSON errors.
"""

from __future__ import annotations

import hashlib
import html
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

import grpc
from aiohttp import web

from driftwise.console.gateway import CallFailed, TokenInClearText
from driftwise.console.guard import SECURITY_HEADERS, host_allowed, write_refusal
from driftwise.console.handlers import set_session_cookie
from driftwise.console.sessions import COOKIE
from driftwise.console.state import (
    CURRENT_SESSION,
    BadParameter,
    console_of,
    error_response,
    json_response,
    session_of,
)

log = logging.getLogger(__name__)

PAGES = ("/", "/quality", "/users", "/user", "/items", "/item", "/evaluation", "/login")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
CSRF_PLACEHOLDER = "__CSRF_TOKEN__"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Every file under static/ by its path there ("js/main.js")."""
    assets: dict[str, Asset] = {}
    root = resources.files("driftwise.console") / "static"

    def walk(folder: resources.abc.Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif "." + entry.name.rsplit(".", 1)[-1] in CONTENT_TYPES:
                body = entry.read_bytes()
                content_type = CONTENT_TYPES["." + entry.name.rsplit(".", 1)[-1]]
                assets[prefix + entry.name] = Asset(body, content_type, hashlib.sha256(body).hexdigest()[:20])

    walk(root, "")
    return assets


ASSETS = web.AppKey("assets", dict)


async def asset(request: web.Request) -> web.Response:
    found: Asset | None = request.app[ASSETS].get(request.match_info["path"])
    if found is None:
        raise web.HTTPNotFound()
    etag = f'"{found.etag}"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(
        body=found.body,
        headers={"Content-Type": found.content_type, "ETag": etag, "Cache-Control": "no-cache"},
    )


async def favicon(request: web.Request) -> web.Response:
    found: Asset = request.app[ASSETS]["favicon.svg"]
    return web.Response(body=found.body, headers={"Content-Type": found.content_type})


async def page(request: web.Request) -> web.Response:
    """The shell, with this session's CSRF token."""
    session = session_of(request)
    assert session is not None  # the guard starts one for every page
    shell: Asset = request.app[ASSETS]["index.html"]
    text = shell.body.decode().replace(CSRF_PLACEHOLDER, html.escape(session.csrf, quote=True))
    return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-store"})


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    console = console_of(request)
    if not host_allowed(request.headers.get("Host"), console.config.allowed_hosts):
        return _secured(web.Response(status=421, text="this console does not answer that host name\n"))
    session = console.sessions.get(request.cookies.get(COOKIE))
    fresh = session is None and request.method == "GET" and request.path in PAGES
    if fresh:
        session = console.sessions.create()
    CURRENT_SESSION.set(session)
    if request.method not in ("GET", "HEAD"):
        refusal = write_refusal(request.headers, session)
        if refusal is not None:
            log.warning("console: refused %s %s: %s", request.method, request.path, refusal)
            return _secured(error_response(403, "CROSS_SITE_REFUSED", f"refused: {refusal}"))
    response = await _answer(request, handler)
    if response.prepared:  # a stream (live.py) sent its headers itself
        return response
    if fresh and session is not None:
        set_session_cookie(response, session.id, request.secure)
    return _secured(response)


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CallFailed as failed:
        if failed.code == grpc.StatusCode.UNAUTHENTICATED:
            console_of(request).auth_seen = True
        return error_response_of(failed)
    except BadParameter as bad:
        return error_response(400, "BAD_PARAMETER", str(bad))
    except TokenInClearText as refused:
        return error_response(400, "TOKEN_IN_CLEAR_TEXT", str(refused))
    except web.HTTPException as http:  # raised by routing (404, 405) or a handler
        return web.Response(status=http.status, text=f"{http.reason}\n", headers=http.headers)


def error_response_of(failed: CallFailed) -> web.Response:
    return json_response({"error": failed.to_json()}, failed.http_status)


def _secured(response: web.StreamResponse) -> web.StreamResponse:
    """The security headers (guard.SECURITY_HEADERS) on an answer."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
