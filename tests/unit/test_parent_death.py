"""A server started with a death signal dies with its parent, even one killed by SIGKILL.

Real processes (`sleep` as the server), no Triton: `_start_in_own_group(death_signal=...)` runs
it through driftwise/parent_death.py (PR_SET_PDEATHSIG, then exec), from the spawning thread.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import driftwise
from driftwise.supervision import ProcessGroupServer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")

EXEC = [sys.executable, "-I", "-S", str(Path(driftwise.__file__).with_name("parent_death.py")), "exec"]


class Sleeper(ProcessGroupServer):
    """`sleep 600` in its own group, SIGTERM when its parent dies, `remove_after` removed after."""

    def __init__(self, directory: Path, remove_after: list[str] | None = None) -> None:
        self._directory = directory
        self._remove_after = remove_after or []

    def start(self) -> None:
        self._start_in_own_group(
            ["/bin/sleep", "600"],
            dict(os.environ),
            self._directory,
            self._directory / "sleeper.log",
            death_signal=signal.SIGTERM,
            remove_after=self._remove_after,
        )

    def stop(self) -> None:
        self._kill_now()


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def until(predicate: object, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, "not within the bound"
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_server_started_from_a_thread_that_ends_keeps_running(tmp_path: Path) -> None:
    """The kernel signals when the forking *thread* ends (Supervisor restarts from asyncio's worker
    threads): every server is forked by one long-lived thread instead."""
    server = Sleeper(tmp_path)
    thread = threading.Thread(target=server.start)
    thread.start()
    thread.join()
    try:
        time.sleep(0.5)
        assert server.is_running, server.exit_description()
        assert Path(f"/proc/{server.pid}/exe").resolve() == Path("/bin/sleep").resolve(), "exec'd: same pid"
    finally:
        server.stop()


def test_the_server_dies_with_its_sigkilled_parent_and_its_files_are_removed(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (tmp_path / "region-1").write_bytes(b"x")
    parent = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from tests.unit.test_parent_death import Sleeper
        server = Sleeper(Path({str(tmp_path)!r}), [{str(work)!r}, {str(tmp_path / "region-*")!r}])
        server.start()
        print(server.pid, server._watchdog.pid, flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    server_pid, watchdog_pid = map(int, proc.stdout.readline().split())
    try:
        # Popen returns once python runs parent_death.py: killed before its prctl, it would not
        # exec the server at all (the next test)
        until(lambda: Path(f"/proc/{server_pid}/exe").resolve() == Path("/bin/sleep").resolve())
        proc.kill()
        proc.wait()
        until(lambda: not alive(server_pid))
        until(lambda: not work.exists() and not (tmp_path / "region-1").exists())
        assert (tmp_path / "sleeper.log").exists(), "only what the patterns match"
        until(lambda: not alive(watchdog_pid))
    finally:
        proc.kill()
        proc.wait()
        for pid in (server_pid, watchdog_pid):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_while_the_parent_lives_the_watchdog_does_nothing_and_stop_reaps_it(tmp_path: Path) -> None:
    """The owner stops the server and removes its files itself; the watchdog goes with the server."""
    work = tmp_path / "work"
    work.mkdir()
    server = Sleeper(tmp_path, [str(work)])
    server.start()
    assert server._watchdog is not None
    watchdog = server._watchdog.pid
    time.sleep(0.6)  # more than the watchdog's poll
    server.stop()
    assert not alive(watchdog) and work.exists()


def test_nothing_starts_when_the_parent_died_before_the_death_signal_was_set() -> None:
    """parent_death.py is told the parent's pid: once re-parented, it does not exec the server."""
    done = subprocess.run(
        [*EXEC, "15", "1", "--", "/bin/echo", "started"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1 and "started" not in done.stdout
    assert "parent 1 gone before /bin/echo started; not starting it" in done.stderr


def test_the_server_does_not_inherit_the_signals_python_ignores() -> None:
    done = subprocess.run(
        [*EXEC, "15", str(os.getpid()), "--", "/bin/cat", "/proc/self/status"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    ignored = next(line for line in done.stdout.splitlines() if line.startswith("SigIgn:"))
    mask = int(ignored.split()[1], 16)
    assert not mask & (1 << (signal.SIGPIPE - 1)) and not mask & (1 << (signal.SIGXFSZ - 1)), ignored
