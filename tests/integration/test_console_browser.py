"""The web console in a real browser: headless Chromium (Debian chromium + chromium-driver) driven by
Selenium, against a live all-in-one server with MovieLens loaded (the first 400 movies, their
12,802 ratings, one refit) and the console on free loopback ports.

It loads every page (no error notice, no browser console error; each page's load time from
Navigation Timing and the time until the page has drawn its data are printed), sees the layer and
topic-history charts render, clicks LIKE on a recommendation and sees the list change within a
second (p50 of click -> refreshed list on screen printed), sees the list follow an event sent
by another client (server-sent events from WatchProfile), shows a planted <script> title as text,
and sees cross-site writes refused: from Python with a foreign Origin or without the CSRF header,
and from a page of another origin in the same browser.

DRIFTWISE_CONSOLE_SCREENSHOTS=<folder> saves the overview and a user page there as small PNGs
(docs/console/ holds the ones in the docs).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from driftwise.console import console_config, running_console
from driftwise.datasets.movielens import Movie, load_ratings
from driftwise.demo import event_message
from driftwise.server import App
from driftwise.settings import REPO_ROOT, ConsoleSettings
from driftwise_client.v1 import common_pb2, ingest_service_pb2, profile_service_pb2, ranking_service_pb2
from tests.integration.browser import Browser, chromium_browser, off_loop, require_chromium, severe
from tests.integration.support import Client, event, exchange, feedback

pytestmark = pytest.mark.integration

USER = "414"  # 204 ratings among the first 400 movies
PLANTED_TITLE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> Planted'
LIKES = 7


@dataclass
class Console:
    app: App
    client: Client
    url: str  # http://127.0.0.1:<port>


@pytest.fixture(scope="module")
async def console(loaded: tuple[App, Client], movies: list[Movie]) -> AsyncIterator[Console]:
    """The server with the movies' ratings and a planted item, refitted; the console beside it."""
    require_chromium()  # before a minute of loading
    app, client = loaded
    ids = {m.item_id for m in movies}
    ratings = [r for r in load_ratings() if r.item_id in ids]
    for i in range(0, len(ratings), 1000):
        batch = [event_message(r) for r in ratings[i : i + 1000]]
        await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=batch), timeout=120)
    planted = common_pb2.Item(
        item_id="planted-1", title=PLANTED_TITLE, tags=["<b>bold</b>"], category="movie"
    )
    await client.ingest.UpsertItems(ingest_service_pb2.UpsertItemsRequest(items=[planted]), timeout=60)
    await client.ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(events=[event("planted-fan", "planted-1")]), timeout=60
    )
    await app.engine.refit_learned_models()
    settings = ConsoleSettings(port=0, eval_report=REPO_ROOT / "docs" / "evaluation")
    async with running_console(console_config(settings, app.target)) as running:
        yield Console(app, client, running.url.rstrip("/"))


@pytest.fixture(scope="module")
def browser(console: Console) -> Iterator[Browser]:
    with chromium_browser(console.url) as opened:
        yield opened


PAGES = [
    "/",
    "/quality",
    "/users",
    f"/user?id={USER}",
    "/items",
    "/items?q=astronauts+lost+in+space",
    "/item?id=1",
    "/evaluation",
    "/login",
]


async def test_every_page_loads_without_an_error(console: Console, browser: Browser) -> None:
    for path in PAGES:
        await off_loop(browser.open, path)
        assert await off_loop(browser.notices) == [], path
    assert severe(browser.logs) == []
    print("\npage load, ms (Navigation Timing load event / page drawn with its data):")
    for path, (load, ready) in browser.loads.items():
        print(f"  {path:<36} {load:7.1f} {ready:7.1f}")
    print(
        f"  slowest drawn: {max(r for _, r in browser.loads.values()):.1f} ms (target <= 1000, not asserted)"
    )


async def test_the_pages_show_what_the_server_holds(console: Console, browser: Browser) -> None:
    await off_loop(browser.open, "/")
    tiles = await off_loop(
        browser.js,
        "return Object.fromEntries([...document.querySelectorAll('.tile')].map("
        "t => [t.dataset.metric, t.querySelector('.tile-value').textContent]))",
    )
    assert tiles["items"] == "401" and int(tiles["events"].replace(",", "")) >= 12_802
    assert await off_loop(browser.count, ".health.up") == 2  # Triton and Milvus
    overview = await off_loop(browser.js, "return document.querySelector('main').textContent")
    assert "Last refit" in overview and "Held-out metrics" in overview
    # feedback on a shown list, sent as a front end does (StreamFeedback): the quality page counts it
    recs = await console.client.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=USER))
    like = feedback(USER, recs.items[0].item_id, common_pb2.EVENT_TYPE_LIKE, recs.recommendation_id)
    (answer,) = await exchange(console.client, [like])
    assert answer.impression_match == ranking_service_pb2.IMPRESSION_MATCH_SHOWN
    await off_loop(browser.open, "/quality")
    assert await off_loop(browser.text, "[data-metric=likes] .tile-note") == "1 likes"
    assert await off_loop(browser.count, "svg.quality-chart rect.bar") > 0
    assert await off_loop(browser.count, "svg.quality-time path.line") == 3
    await off_loop(browser.open, "/items?q=astronauts+lost+in+space")
    assert await off_loop(browser.count, "table.search-results tbody tr") >= 5
    await off_loop(browser.open, "/item?id=1")
    assert await off_loop(browser.count, "table.neighbours tbody tr") == 10
    await off_loop(browser.open, "/evaluation")
    assert await off_loop(browser.count, "svg.eval-chart rect.bar") > 0
    assert await off_loop(browser.count, "table.metrics tbody tr") >= 4


async def test_a_user_page_draws_the_layers_and_their_history(console: Console, browser: Browser) -> None:
    await off_loop(browser.open, f"/user?id={USER}")
    assert await off_loop(browser.count, "svg.layer-chart") == 3
    assert await off_loop(browser.count, "svg.layer-chart rect.bar") >= 3
    assert await off_loop(browser.count, "svg.history-chart path.line") >= 1
    assert await off_loop(browser.count, "#recs li.rec") == 10
    assert await off_loop(browser.count, "#recs li.rec .evidence li") >= 1
    assert await off_loop(browser.count, "table.recent-events tbody tr") == 20
    assert severe(await off_loop(browser.collect_logs)) == []


def like_first(browser: Browser) -> tuple[str, float]:
    """Click LIKE on the first item; return it and the time until a new list is on screen."""
    before = browser.js("return document.getElementById('recs').dataset.recommendationId")
    item = browser.js("return document.querySelector('#recs li.rec').dataset.itemId")
    started = time.perf_counter()
    browser.js("document.querySelector('#recs li.rec button.like').click()")
    elapsed = browser.wait(
        lambda: browser.js("return document.getElementById('recs').dataset.recommendationId") != before,
        1.0,
        "the list after LIKE",
    )
    assert started and elapsed <= 1.0
    return item, elapsed


async def test_like_changes_the_list_within_a_second(console: Console, browser: Browser) -> None:
    await off_loop(browser.open, f"/user?id={USER}")
    version = (
        await console.client.profiles.GetProfile(profile_service_pb2.GetProfileRequest(user_id=USER))
    ).profile
    walls = []
    for _ in range(LIKES):
        item, wall = await off_loop(like_first, browser)
        walls.append(wall * 1000)
        shown = await off_loop(
            browser.js, "return [...document.querySelectorAll('#recs li.rec')].map(l => l.dataset.itemId)"
        )
        assert item not in shown and len(shown) == 10  # a liked item is seen: not recommended again
    in_page = await off_loop(browser.js, "return window.driftwiseRefreshes")
    after = (
        await console.client.profiles.GetProfile(profile_service_pb2.GetProfileRequest(user_id=USER))
    ).profile
    assert after.version == version.version + LIKES
    assert [e.type for e in after.recent_events[:LIKES]] == [common_pb2.EVENT_TYPE_LIKE] * LIKES
    assert severe(await off_loop(browser.collect_logs)) == []
    print(
        f"\nLIKE -> refreshed list on screen, {LIKES} clicks: p50 {statistics.median(in_page):.1f} ms in the "
        f"page (click handler to the frame after drawing; max {max(in_page):.1f}), "
        f"p50 {statistics.median(walls):.1f} ms seen through WebDriver (max {max(walls):.1f})"
    )


async def test_the_list_follows_events_from_elsewhere(console: Console, browser: Browser) -> None:
    await off_loop(browser.open, f"/user?id={USER}")
    await off_loop(
        browser.wait,
        lambda: browser.js("return document.getElementById('live-status').textContent.startsWith('live')"),
        5.0,
        "the live stream",
    )
    before = await off_loop(browser.js, "return document.getElementById('recs').dataset.recommendationId")
    first = await off_loop(browser.js, "return document.querySelector('#recs li.rec').dataset.itemId")
    await console.client.ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(events=[event(USER, first, type_=common_pb2.EVENT_TYPE_CLICK)])
    )
    took = await off_loop(
        browser.wait,
        lambda: browser.js("return document.getElementById('recs').dataset.recommendationId") != before,
        5.0,
        "the list after an event sent by another client",
    )
    shown = await off_loop(
        browser.js, "return [...document.querySelectorAll('#recs li.rec')].map(l => l.dataset.itemId)"
    )
    assert first not in shown
    print(f"\nan event from another client -> the list redrawn by itself: {took * 1000:.0f} ms")


async def test_a_planted_script_title_is_shown_as_text(console: Console, browser: Browser) -> None:
    for path in ("/item?id=planted-1", "/items?title=Planted", "/user?id=planted-fan"):
        await off_loop(browser.open, path)
        assert await off_loop(browser.js, "return window.__pwned === undefined"), path
        texts = await off_loop(browser.js, "return document.querySelector('main').textContent")
        assert PLANTED_TITLE in texts, path
        assert await off_loop(browser.count, "main script, main img:not(.plot)") == 0, path
    await off_loop(browser.open, "/item?id=planted-1")
    assert (
        await off_loop(browser.js, "return document.getElementById('item-title').textContent")
        == PLANTED_TITLE
    )
    assert severe(browser.logs) == []


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def test_cross_site_writes_are_refused(console: Console, browser: Browser) -> None:
    await off_loop(browser.open, f"/user?id={USER}")
    cookie = await off_loop(browser.driver.get_cookie, "driftwise_console")
    csrf = await off_loop(browser.js, "return document.querySelector('meta[name=driftwise-csrf]').content")
    impression = await off_loop(browser.js, "return document.getElementById('recs').dataset.recommendationId")
    item = await off_loop(browser.js, "return document.querySelector('#recs li.rec').dataset.itemId")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    before = await profile_version(console)
    body = {"user_id": USER, "item_id": item, "type": "like", "impression_id": impression}
    host = console.url.removeprefix("http://")
    session = {
        "Cookie": f"driftwise_console={cookie['value']}",
        "Content-Type": "application/json",
        "Host": host,
    }
    attempts = {
        "a foreign Origin": {**session, "X-Driftwise-CSRF": csrf, "Origin": "http://evil.example"},
        "no CSRF header": {**session, "Origin": console.url},
        "no session": {"Content-Type": "application/json", "X-Driftwise-CSRF": csrf, "Origin": console.url},
    }
    for what, headers in attempts.items():
        status, text = await off_loop(post, f"{console.url}/api/feedback", body, headers)
        assert status == 403 and "CROSS_SITE_REFUSED" in text, what
    # a page of another origin (another port: same site, so SameSite alone would send the cookie)
    async with foreign_page(console.url, body) as foreign:
        await off_loop(browser.driver.get, foreign)
        await off_loop(
            browser.wait, lambda: browser.js("return document.title === 'done'"), 10.0, "the foreign page"
        )
    assert await profile_version(console) == before, "a cross-site request changed the profile"
    ok, _ = await off_loop(
        post,
        f"{console.url}/api/feedback",
        body,
        {**session, "X-Driftwise-CSRF": csrf, "Origin": console.url},
    )
    assert ok == 200 and await profile_version(console) == before + 1  # the same request from the console


async def profile_version(console: Console) -> int:
    request = profile_service_pb2.GetProfileRequest(user_id=USER)
    return int((await console.client.profiles.GetProfile(request)).profile.version)


FOREIGN_PAGE = """<!doctype html><title>working</title><body>
<form id="f" method="POST" action="{url}/api/feedback" enctype="text/plain" target="sink">
<input name='{body}' value=''></form><iframe name="sink"></iframe>
<script>
fetch("{url}/api/feedback", {{method: "POST", credentials: "include", mode: "no-cors",
  headers: {{"Content-Type": "text/plain"}}, body: '{body}'}})
  .catch(() => null)
  .then(() => fetch("{url}/api/feedback", {{method: "POST", credentials: "include",
    headers: {{"Content-Type": "application/json", "X-Driftwise-CSRF": "guessed"}}, body: '{body}'}}))
  .catch(() => null)
  .then(() => {{
    document.getElementById("f").submit();
    setTimeout(() => {{ document.title = "done"; }}, 1000);
  }});
</script>"""


class foreign_page:
    """A page on another port of 127.0.0.1 that tries the console's write three ways: a no-cors
    fetch, a CORS fetch with a guessed CSRF header, a form posting JSON-looking text."""

    def __init__(self, console_url: str, body: dict[str, Any]) -> None:
        self.html = FOREIGN_PAGE.format(url=console_url, body=json.dumps(body))
        self.runner: web.AppRunner | None = None

    async def __aenter__(self) -> str:
        async def page(_: web.Request) -> web.Response:
            return web.Response(text=self.html, content_type="text/html")

        app = web.Application()
        app.router.add_get("/", page)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/"

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def test_screenshots(console: Console, browser: Browser, tmp_path: Path) -> None:
    """The overview and a user page at 1200x800, as small PNGs (into the folder named by
    DRIFTWISE_CONSOLE_SCREENSHOTS, else a temporary one)."""
    folder = Path(os.environ.get("DRIFTWISE_CONSOLE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in (("overview", "/"), ("user", f"/user?id={USER}")):
        await off_loop(browser.open, path)
        await asyncio.sleep(0.5)  # the live stream's first message
        shot = folder / f"{name}.png"
        await off_loop(browser.driver.save_screenshot, str(shot))
        small = compress_png(shot)
        print(f"\nscreenshot {shot}: {small // 1024} KiB")
        assert small < 200_000


def compress_png(path: Path) -> int:
    """Fewer colours, same pixels to the eye: a 1200x800 page shot in tens of KiB."""
    from PIL import Image

    with Image.open(path) as image:
        quantized = image.convert("RGB").quantize(colors=96, method=Image.Quantize.MEDIANCUT)
        quantized.save(path.with_suffix(".tmp.png"), optimize=True)
    shutil.move(path.with_suffix(".tmp.png"), path)
    return path.stat().st_size
