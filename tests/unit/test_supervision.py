"""Supervisor: restarts a dead server, backs off in a crash loop, never restarts once closing."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from driftwise.supervision import Supervisor


class FakeServer:
    """A server whose death is a flag; `restart` takes `start_seconds` and may fail or be cancelled."""

    def __init__(self, start_seconds: float = 0.0, failures: int = 0) -> None:
        self.running = True
        self.start_seconds = start_seconds
        self.failures = failures  # restarts that fail before one succeeds
        self.restart_times: list[float] = []
        self.cancelled = threading.Event()
        self.pid: int | None = 1
        self.log_path: Path | None = Path("/tmp/fake.log")

    @property
    def is_running(self) -> bool:
        return self.running

    def exit_description(self) -> str:
        return "killed by SIGKILL"

    def restart(self) -> None:
        self.restart_times.append(time.monotonic())
        if self.cancelled.wait(self.start_seconds):
            raise RuntimeError("start cancelled")
        if self.failures:
            self.failures -= 1
            raise RuntimeError("did not become ready\nlog tail...")
        assert self.pid is not None
        self.pid += 1
        self.running = True

    def cancel_start(self) -> None:
        self.cancelled.set()


async def until(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


async def test_restarts_a_dead_server_at_once_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeServer()
    supervisor = Supervisor(server, "fake", poll_seconds=0.01)
    supervisor.start()
    server.running = False
    await until(lambda: supervisor.restarts == 1)
    assert server.is_running and supervisor.up and supervisor.deaths == 1 and server.pid == 2
    await supervisor.close()
    assert "fake (pid 1) killed by SIGKILL; restarting it in 0.0 s (log: /tmp/fake.log)" in caplog.text
    assert "fake restarted: pid 2" in caplog.text


async def test_failed_restarts_back_off() -> None:
    server = FakeServer(failures=2)
    supervisor = Supervisor(server, "fake", poll_seconds=0.01, backoff_seconds=0.1, max_backoff_seconds=0.15)
    supervisor.start()
    server.running = False
    await until(lambda: supervisor.restarts == 1)
    first, second, third = server.restart_times
    assert second - first >= 0.1 and third - second >= 0.15  # doubled, capped
    await supervisor.close()


async def test_close_cancels_a_restart_in_progress_and_never_restarts_after() -> None:
    server = FakeServer(start_seconds=30.0)
    supervisor = Supervisor(server, "fake", poll_seconds=0.01)
    supervisor.start()
    server.running = False
    await until(lambda: len(server.restart_times) == 1)
    started = time.monotonic()
    await supervisor.close()
    assert time.monotonic() - started < 1.0  # did not wait for the 30 s start
    assert supervisor.restarts == 0 and not supervisor.up
    server.running = False
    await asyncio.sleep(0.05)
    assert len(server.restart_times) == 1


async def test_no_restart_once_closed() -> None:
    server = FakeServer()
    supervisor = Supervisor(server, "fake", poll_seconds=0.01)
    supervisor.start()
    await supervisor.close()
    server.running = False  # dies during shutdown
    await asyncio.sleep(0.05)
    assert server.restart_times == [] and supervisor.deaths == 0
