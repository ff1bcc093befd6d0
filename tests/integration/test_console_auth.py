"""The web console in front of a server with TLS and tokens, in a real browser: the console reaches
the server over TLS (trusting its CA); a page asks for a token; a wrong token is refused; a
reader's token shows the pages but its LIKE is refused for want of events:write, and the page
says so; after logging out, a writer's token makes LIKE work. The token never reaches the page."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from driftwise.console import console_config, running_console
from driftwise.datasets.movielens import Movie
from driftwise.demo import item_message
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.security.tokens import hash_token
from driftwise.server import running_app
from driftwise.settings import (
    AuthSettings,
    ConsoleSettings,
    ServerSettings,
    Settings,
    TlsSettings,
    TritonSettings,
)
from driftwise_client.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from tests.integration.browser import Browser, chromium_browser, off_loop, require_chromium
from tests.integration.support import event

pytestmark = pytest.mark.integration

READER = "reader-token-0123456789"  # profiles:read, insights:read, recommend
WRITER = "writer-token-0123456789"  # the same and events:write
LOADER = "loader-token-0123456789"  # items:write and events:write: the test's own loading
READ_SCOPES = ["profiles:read", "insights:read", "recommend"]
USER = "console-user"


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def server_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    ca, ca_key = folder / "ca.crt", folder / "ca.key"
    cert, key, csr, ext = (folder / f"server.{s}" for s in ("crt", "key", "csr", "ext"))
    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl(
        "req", "-x509", *curve, "-keyout", ca_key, "-out", ca, "-days", "1", "-subj", "/CN=console-test-ca"
    )
    openssl("req", "-new", *curve, "-keyout", key, "-out", csr, "-subj", "/CN=server")
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl(
        "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "1", "-extfile", ext,
    )  # fmt: skip
    return ca, cert, key


def tokens_file(folder: Path) -> Path:
    tenants = {
        "reader": (READ_SCOPES, READER),
        "writer": ([*READ_SCOPES, "events:write"], WRITER),
        "loader": (["items:write", "events:write"], LOADER),
    }
    path = folder / "tokens.toml"
    path.write_text(
        "".join(
            f"[tenants.{name}]\nscopes = [{', '.join(f'{s!r}' for s in scopes)}]\n"
            f"token_sha256 = ['{hash_token(token)}']\n"
            for name, (scopes, token) in tenants.items()
        )
    )
    return path


@dataclass
class Secured:
    console_url: str


@pytest.fixture(scope="module")
async def secured(
    triton: LocalTritonServer, movies: list[Movie], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Secured]:
    require_chromium()
    folder = tmp_path_factory.mktemp("console-auth")
    ca, cert, key = server_certificate(folder)
    settings = Settings(
        data_dir=folder / "data",
        server=ServerSettings(port=0),
        triton=TritonSettings(url=triton.grpc_url),
        tls=TlsSettings(cert_file=cert, key_file=key),
        auth=AuthSettings(enabled=True, tokens_file=tokens_file(folder)),
    )
    async with running_app(settings) as app:
        credentials = grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(ca.read_bytes()), grpc.access_token_call_credentials(LOADER)
        )
        async with grpc.aio.secure_channel(app.target, credentials) as channel:
            ingest = ingest_service_pb2_grpc.IngestServiceStub(channel)
            items = [item_message(m) for m in movies[:80]]
            await ingest.UpsertItems(ingest_service_pb2.UpsertItemsRequest(items=items), timeout=120)
            events = [event(USER, m.item_id) for m in movies[:6]]
            await ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=events), timeout=60)
        config = console_config(ConsoleSettings(port=0, tls_ca_file=ca), app.target)
        async with running_console(config) as console:
            yield Secured(console.url.rstrip("/"))


@pytest.fixture(scope="module")
def browser(secured: Secured) -> Iterator[Browser]:
    with chromium_browser(secured.console_url) as opened:
        yield opened


def log_in(browser: Browser, token: str) -> None:
    browser.wait(lambda: browser.count("#login-form") == 1, 10, "the login page")
    field = browser.driver.find_element("id", "token")
    field.clear()
    field.send_keys(token)
    browser.js("document.querySelector('#login-form button').click()")


def list_id(browser: Browser) -> str:
    return str(
        browser.js("const l = document.getElementById('recs'); return l ? l.dataset.recommendationId : ''")
    )


async def test_the_console_asks_for_a_token_and_calls_with_it(secured: Secured, browser: Browser) -> None:
    # a page without a token: the server answers UNAUTHENTICATED and the page sends the browser to log in
    await off_loop(browser.driver.get, f"{secured.console_url}/user?id={USER}")
    await off_loop(browser.wait, lambda: "/login" in browser.driver.current_url, 10, "the login page")
    await off_loop(log_in, browser, "not-a-token")
    await off_loop(browser.wait, lambda: browser.count("#login-status .notice") == 1, 10, "the refusal")
    assert "does not accept" in await off_loop(browser.text, "#login-status")

    # a reader reads every page; its LIKE is refused for want of events:write, and the page says so
    await off_loop(log_in, browser, READER)
    await off_loop(browser.wait, lambda: "/user" in browser.driver.current_url, 10, "back to the page")
    await off_loop(browser.wait, lambda: browser.count("#recs li.rec") == 10, 10, "the reader's list")
    assert await off_loop(browser.notices) == []
    assert await off_loop(browser.count, "svg.layer-chart") == 3
    before = await off_loop(list_id, browser)
    await off_loop(browser.js, "document.querySelector('#recs li.rec button.like').click()")
    await off_loop(browser.wait, lambda: browser.count("#feedback-status .notice") == 1, 10, "the refusal")
    refusal = await off_loop(browser.text, "#feedback-status")
    assert "lacks the scope" in refusal and "events:write" in refusal
    assert await off_loop(list_id, browser) == before
    for path in ("/", "/items", "/item?id=1", "/quality", "/users"):
        await off_loop(browser.open, path)
        assert await off_loop(browser.notices) == [], path

    # the token stays in the console: not in the page, not in a cookie the page can read
    source = await off_loop(lambda: browser.driver.page_source)
    cookies = await off_loop(browser.driver.get_cookies)
    assert READER not in source and all(READER not in c["value"] for c in cookies)
    assert await off_loop(browser.js, "return document.cookie") == ""

    # log out, log in as a writer: LIKE changes the list
    await off_loop(browser.open, f"/user?id={USER}")
    await off_loop(browser.wait, lambda: browser.count("#session button.link") == 1, 10, "the log-out button")
    await off_loop(browser.js, "document.querySelector('#session button.link').click()")
    await off_loop(log_in, browser, WRITER)
    await off_loop(browser.wait, lambda: browser.count("#recs li.rec") == 10, 10, "the writer's list")
    before = await off_loop(list_id, browser)
    await off_loop(browser.js, "document.querySelector('#recs li.rec button.like').click()")
    await off_loop(browser.wait, lambda: list_id(browser) != before, 1.0, "the list after LIKE")
    assert await off_loop(browser.count, "#feedback-status .notice") == 0
