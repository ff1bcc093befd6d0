"""A headless Chromium for the console's browser tests: Debian's chromium and chromium-driver,
driven by Selenium. Selenium is synchronous and the server and the console answer on the test's
event loop, so every browser step runs in a thread (`off_loop`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
T = TypeVar("T")


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking browser step in a thread: the server and the console answer on this loop."""
    return await asyncio.to_thread(fn, *args)


def severe(entries: list[dict[str, Any]]) -> list[str]:
    """The browser console's errors."""
    return [e["message"] for e in entries if e.get("level") == "SEVERE"]


@dataclass
class Browser:
    driver: Any
    base: str
    logs: list[dict[str, Any]] = field(default_factory=list)
    loads: dict[str, tuple[float, float]] = field(default_factory=dict)  # path -> (load event, ready) ms

    def open(self, path: str) -> None:
        """Load a page and wait until it has drawn its data; note its times and the console log."""
        self.driver.get(self.base + path)
        self.wait(lambda: bool(self.js("return document.documentElement.dataset.ready === '1'")), 15, path)
        load, ready = self.js(
            "const n = performance.getEntriesByType('navigation')[0];"
            "const r = performance.getEntriesByName('driftwise-ready')[0];"
            "return [n.loadEventEnd - n.startTime, r.startTime];"
        )
        self.loads[path] = (float(load), float(ready))
        self.collect_logs()

    def collect_logs(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.driver.get_log("browser")
        self.logs.extend(entries)
        return entries

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def count(self, css: str) -> int:
        return int(self.js("return document.querySelectorAll(arguments[0]).length", css))

    def text(self, css: str) -> str:
        return str(
            self.js("const n = document.querySelector(arguments[0]); return n ? n.textContent : ''", css)
        )

    def notices(self) -> list[str]:
        found: list[str] = self.js(
            "return [...document.querySelectorAll('.notice')].map(n => n.dataset.code + ': ' + n.textContent)"
        )
        return found

    def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> float:
        """Seconds until `condition` holds, polled every 5 ms; AssertionError after `timeout`."""
        started = time.perf_counter()
        while not condition():
            if time.perf_counter() - started > timeout:
                raise AssertionError(f"{what}: not within {timeout} s")
            time.sleep(0.005)
        return time.perf_counter() - started


def require_chromium() -> None:
    """Skip without the browser, unless CI is set: there it must be installed."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = f"the browser tests need {CHROMIUM} and {CHROMEDRIVER} (Debian chromium, chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def chromium_browser(base: str) -> Iterator[Browser]:
    """Headless Chromium with a 1200x800 page and its console log kept."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--window-size=1200,800", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    viewport = {"width": 1200, "height": 800, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", viewport)  # the page itself 1200x800
    try:
        yield Browser(driver, base)
    finally:
        driver.quit()
