"""The console's defences as pure functions: Host names, the write check, JSON text."""

import json

import pytest

from driftwise.console.guard import (
    CONTENT_SECURITY_POLICY,
    CSRF_HEADER,
    allowed_hosts,
    host_allowed,
    json_text,
    write_refusal,
)
from driftwise.console.sessions import Session

SESSION = Session("sid", "csrf-token")


def same_origin(**overrides: str) -> dict[str, str]:
    headers = {
        "Host": "127.0.0.1:8080",
        "Origin": "http://127.0.0.1:8080",
        "Sec-Fetch-Site": "same-origin",
        "Content-Type": "application/json",
        CSRF_HEADER: "csrf-token",
    }
    headers.update(overrides)
    return {k: v for k, v in headers.items() if v}


def test_a_same_origin_json_post_with_the_token_passes() -> None:
    assert write_refusal(same_origin(), SESSION) is None
    assert write_refusal(same_origin(**{"Content-Type": "application/json; charset=utf-8"}), SESSION) is None
    assert write_refusal(same_origin(**{"Sec-Fetch-Site": ""}), SESSION) is None  # an older browser: Origin


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({CSRF_HEADER: ""}, "CSRF"),
        ({CSRF_HEADER: "csrf-tokem"}, "CSRF"),
        ({"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, "cross-site"),
        ({"Origin": "http://evil.example", "Sec-Fetch-Site": ""}, "another origin"),
        ({"Origin": "http://127.0.0.1:9999", "Sec-Fetch-Site": ""}, "another origin"),
        ({"Sec-Fetch-Site": "same-site"}, "same-site"),
        ({"Origin": "", "Sec-Fetch-Site": ""}, "no Origin"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, "application/json"),
        ({"Content-Type": "text/plain"}, "application/json"),
    ],
)
def test_a_write_from_elsewhere_is_refused(overrides: dict[str, str], why: str) -> None:
    refusal = write_refusal(same_origin(**overrides), SESSION)
    assert refusal is not None and why in refusal


def test_a_write_without_a_session_is_refused() -> None:
    assert write_refusal(same_origin(), None) == "no session: load a console page first"


def test_loopback_consoles_answer_loopback_names_only() -> None:
    allowed = allowed_hosts("127.0.0.1", ())
    for host in ("127.0.0.1:8080", "localhost:8080", "[::1]:8080", "LOCALHOST", "127.0.0.1"):
        assert host_allowed(host, allowed), host
    for host in ("evil.example:8080", "evil.example", "127.0.0.1.evil.example:8080", "", None):
        assert not host_allowed(host, allowed), host  # DNS rebinding: another name, same address


def test_other_binds_answer_any_host_unless_configured() -> None:
    assert allowed_hosts("0.0.0.0", ()) is None
    assert host_allowed("console.example:80", None)
    configured = allowed_hosts("0.0.0.0", ("console.example", "other.example:8443"))
    assert host_allowed("console.example:8080", configured)
    assert host_allowed("other.example:8443", configured)
    assert not host_allowed("other.example:80", configured)
    assert not host_allowed("evil.example", configured)


def test_json_text_holds_no_markup_and_parses_back() -> None:
    value = {
        "title": "</script><script>alert(1)</script> & <b>",
        "n": float("nan"),
        "list": [1.5, float("inf")],
    }
    text = json_text(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"title": value["title"], "n": None, "list": [1.5, None]}


def test_the_policy_allows_no_inline_script_or_foreign_source() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "http" not in CONTENT_SECURITY_POLICY
