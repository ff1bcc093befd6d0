"""The console's defences, as pure functions the HTTP layer applies:

- which Host headers it answers (a page of another site whose name was rebound to 127.0.0.1 must
  not reach a loopback console: DNS rebinding);
- whether a write (a POST) comes from the console's own pages: the session's CSRF token in a
  header, a same-origin Origin or Sec-Fetch-Site, a JSON body (a cross-site form cannot send one);
- the headers every answer carries: a strict Content-Security-Policy (scripts and styles only from
  the console itself, no inline script), no framing, no MIME sniffing, no referrer;
- JSON text with <, > and & escaped, so that even a mislabelled answer holds no markup.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from driftwise.console.sessions import Session

CSRF_HEADER = "X-Driftwise-CSRF"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def is_loopback_host(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def allowed_hosts(bind_host: str, configured: tuple[str, ...]) -> frozenset[str] | None:
    """The Host values to answer: the configured ones; else loopback names when bound to
    loopback; else None (any)."""
    if configured:
        return frozenset(h.lower() for h in configured)
    if is_loopback_host(bind_host):
        return LOOPBACK_NAMES
    return None


def _split_host(host: str) -> tuple[str, str]:
    """'name:port' -> (name, port); '[::1]:80' -> ('[::1]', '80'); no port -> (name, '')."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1], host[end + 2 :] if end >= 0 else ""
    if host.count(":") == 1:
        name, port = host.split(":")
        return name, port
    return host, ""


def host_allowed(host: str | None, allowed: frozenset[str] | None) -> bool:
    """Whether a request with this Host header is answered. An allowed entry without a port allows
    the name on any port."""
    if allowed is None:
        return True
    if not host:
        return False
    name, _ = _split_host(host)
    return host.strip().lower() in allowed or name in allowed


def write_refusal(headers: Mapping[str, str], session: Session | None) -> str | None:
    """Why a POST must be refused, or None when it comes from the console's own page: the
    session's CSRF token in its header, an Origin naming this very host (or Sec-Fetch-Site
    same-origin; a browser sends at least one of them with a POST), and a JSON body."""
    if session is None:
        return "no session: load a console page first"
    if not session.csrf_matches(headers.get(CSRF_HEADER)):
        return f"missing or wrong {CSRF_HEADER} header"
    origin, fetch_site = headers.get("Origin"), headers.get("Sec-Fetch-Site")
    if origin is None and fetch_site is None:
        return "no Origin or Sec-Fetch-Site header"
    if fetch_site is not None and fetch_site != "same-origin":
        return f"a {fetch_site} request"
    if origin is not None and urlsplit(origin).netloc.lower() != headers.get("Host", "").lower():
        return "a request from another origin"
    if headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
        return "the body must be application/json"
    return None


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def json_text(value: Any) -> str:
    """JSON with <, > and & as \\u escapes (still the same JSON for any parser); NaN and infinities
    (which JSON cannot hold) as null."""
    text = json.dumps(_finite(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
