"""A local server run as the leader of its own process group (Triton, Milvus for tests), and a
supervisor that restarts one when it dies.

Both servers start helpers of their own (Triton's python-backend stubs, Milvus's etcd), and both
can hang on SIGTERM; stopping them means signalling the whole group while the unreaped leader
still reserves the group id, then reaping it. Subclasses start `_process` with
`_start_in_own_group` and implement `start` and `stop`.

A server in its own session outlives a parent that dies without stopping it (SIGKILL, the OOM
killer): `_start_in_own_group(death_signal=...)` has the kernel signal it then, and a watchdog
remove its files (see `driftwise.parent_death`); `stop_stray_group` stops one an earlier process
left anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

_log = logging.getLogger(__name__)

_PARENT_DEATH = [sys.executable, "-I", "-S", str(Path(__file__).with_name("parent_death.py"))]
T = TypeVar("T")


class ProcessGroupServer:
    _process: subprocess.Popen[bytes] | None = None
    _watchdog: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """Process id of the running server, None when not running."""
        return self._process.pid if self._process is not None else None

    @property
    def is_running(self) -> bool:
        return self._process is not None and not self._leader_exited()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __del__(self) -> None:
        # Last resort: never leave a server behind when the owner forgot stop().
        if getattr(self, "_process", None) is not None:
            with contextlib.suppress(Exception):
                self._kill_now()

    def _start_in_own_group(
        self,
        command: list[str],
        env: dict[str, str],
        cwd: Path,
        log_path: Path,
        *,
        death_signal: signal.Signals | None = None,
        remove_after: Sequence[str] = (),
    ) -> subprocess.Popen[bytes]:
        """Start the server in a process group of its own, output appended to `log_path`.

        Linux, with `death_signal`: the server gets it when this process dies, however it dies,
        and a watchdog (in a session of its own too) then removes what the glob patterns
        `remove_after` match once the server's group is gone. See driftwise.parent_death, which
        execs the server (same pid)."""
        if death_signal is not None and sys.platform == "linux":
            command = [*_PARENT_DEATH, "exec", str(int(death_signal)), str(os.getpid()), "--", *command]
        else:
            remove_after = ()

        def spawn() -> subprocess.Popen[bytes]:
            with open(log_path, "ab") as log:
                return subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=cwd,
                    start_new_session=True,
                )

        self._process = _in_spawn_thread(spawn)
        if remove_after:
            watch = [*_PARENT_DEATH, "watch", str(os.getpid()), str(self._process.pid), *remove_after]
            with open(log_path, "ab") as log:
                self._watchdog = subprocess.Popen(
                    watch,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        return self._process

    def _stop_watchdog(self) -> None:
        """Kill and reap the watchdog: it has nothing to do while this process lives."""
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog = None

    def _leader_exited(self) -> bool:
        """True once the server process has exited; does not reap it (keeps its pgid valid)."""
        process = self._process
        if process is None or process.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def exit_description(self) -> str:
        """How the server ended ("killed by SIGKILL", "exited with code 1"), without reaping it."""
        process = self._process
        if process is None:
            return "not started"
        if process.returncode is not None:
            code = process.returncode
        else:
            try:
                info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return "exited"
            if info is None:
                return "running"
            code = -info.si_status if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else info.si_status
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def _signal_group(self, sig: signal.Signals) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    def _kill_now(self) -> None:
        """SIGKILL the whole group while the unreaped leader still holds its id; reap."""
        if self._process is not None:
            self._signal_group(signal.SIGKILL)
            self._process.wait()
            self._process = None
        self._stop_watchdog()


# The kernel sends the parent-death signal when the *thread* that forked the child ends, not the
# process: a server (re)started from a short-lived thread (asyncio.to_thread's workers, which end
# with the event loop; a test's thread) would be killed with it. Every server is forked by this one
# daemon thread instead, which lives as long as the process.
_spawn_requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
_spawn_lock = threading.Lock()
_spawn_thread: threading.Thread | None = None


def _in_spawn_thread(call: Callable[[], T]) -> T:
    """Run `call` (a fork) in the process's spawning thread; return its result or raise its error."""
    global _spawn_thread
    with _spawn_lock:
        if _spawn_thread is None or not _spawn_thread.is_alive():
            _spawn_thread = threading.Thread(target=_spawn_loop, name="driftwise-spawn", daemon=True)
            _spawn_thread.start()
    done: Future[T] = Future()
    _spawn_requests.put((call, done))
    return done.result()


def _spawn_loop() -> None:
    while True:
        call, done = _spawn_requests.get()
        try:
            done.set_result(call())
        except BaseException as exc:
            done.set_exception(exc)


def process_start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks after boot, /proc/<pid>/stat), None when there is no such
    live process: with the pid, it tells a process from a later one that reuses the pid."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields is not None and fields[0] != "Z" else None


def group_members(pgid: int, marker: str) -> list[int]:
    """The live processes of process group `pgid` whose command line contains `marker`."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _proc_stat(int(name))
        if fields is None or fields[0] == "Z" or int(fields[2]) != pgid:
            continue
        with contextlib.suppress(OSError):
            if marker.encode() in Path(f"/proc/{name}/cmdline").read_bytes():
                members.append(int(name))
    return members


def stop_stray_group(pgid: int, marker: str, timeout_s: float = 10.0) -> list[int]:
    """Stop a process group that no process of ours leads (a server an earlier process left):
    SIGTERM (and SIGCONT: a stopped process acts on no other signal, as systemd does), up to
    `timeout_s` for it to exit, then SIGKILL. Only a group with members whose command line has
    `marker` is signalled (a unique string, e.g. Triton's shm prefix: a reused pgid does not have
    it, and the group id cannot be reused while they live). Returns the pids found."""
    found = left = group_members(pgid, marker)
    for sig, seconds in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        if not left:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
            if sig == signal.SIGTERM:
                os.killpg(pgid, signal.SIGCONT)
        deadline = time.monotonic() + seconds
        while (left := group_members(pgid, marker)) and time.monotonic() < deadline:
            time.sleep(0.1)
    if left:
        _log.error("process group %d: %s still alive after SIGKILL", pgid, left)
    return found


def _proc_stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on: [0] state, [2] pgrp, [19] starttime."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # the command name, in parentheses, may hold anything


class Restartable(Protocol):
    """What the supervisor needs of a server (LocalTritonServer has it)."""

    @property
    def pid(self) -> int | None: ...

    @property
    def is_running(self) -> bool: ...

    @property
    def log_path(self) -> Path | None: ...

    def exit_description(self) -> str: ...

    def restart(self) -> None: ...

    def cancel_start(self) -> None: ...


class Supervisor:
    """Restarts a started server whenever its process exits, until `close()`.

    An asyncio task polls the process (a non-reaping waitid, every `poll_seconds`); a death is
    logged with the server's log path and the server restarted in a thread (`restart` blocks
    until it is ready). Tries are spaced by a backoff that doubles from `backoff_seconds` to
    `max_backoff_seconds` while the server keeps dying within `max_backoff_seconds` of its last
    start (a crash loop must not spin), and starts over once it has stayed up that long.
    `close()` stops restarting at once, also in the middle of a restart; the caller stops the
    server itself afterwards.
    """

    def __init__(
        self,
        server: Restartable,
        name: str,
        *,
        poll_seconds: float = 0.5,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        self._server = server
        self._name = name
        self._poll = poll_seconds
        self._initial_backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.up = server.is_running
        """Whether the server is running and was ready at its last (re)start."""
        self.deaths = 0
        self.restarts = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"supervise-{self._name}")

    async def close(self) -> None:
        """Stop supervising; a restart in progress gives up (the server's cancel_start). Idempotent."""
        self._stopping.set()
        self._server.cancel_start()
        if self._task is not None:
            await self._task  # returns within a poll: the restart thread checks cancel_start
            self._task = None

    async def _pause(self, seconds: float) -> None:
        """Sleep, or return early when closing."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _run(self) -> None:
        backoff = 0.0  # the first restart after a stable run is immediate
        started = time.monotonic()
        while not self._stopping.is_set():
            if self._server.is_running:
                if backoff and time.monotonic() - started >= self._max_backoff:
                    backoff = 0.0  # stayed up: the next death is not part of a crash loop
                await self._pause(self._poll)
                continue
            self.up = False
            self.deaths += 1
            _log.error(
                "%s (pid %s) %s; restarting it in %.1f s (log: %s)",
                self._name,
                self._server.pid,
                self._server.exit_description(),
                backoff,
                self._server.log_path,
            )
            while not self._stopping.is_set():
                await self._pause(backoff)
                if self._stopping.is_set():
                    return
                backoff = min(self._max_backoff, max(self._initial_backoff, 2 * backoff))
                began = time.monotonic()
                try:
                    # a thread: restart blocks for seconds; the event loop keeps serving (the
                    # fork itself happens in _in_spawn_thread: the death signal follows the forking
                    # thread, and this worker thread ends with the loop)
                    await asyncio.to_thread(self._server.restart)
                except Exception as exc:
                    if self._stopping.is_set():
                        return
                    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    _log.error(
                        "%s restart failed: %s; next try in %.1f s (log: %s)",
                        self._name,
                        first_line,
                        backoff,
                        self._server.log_path,
                    )
                    continue
                started = time.monotonic()
                self.up = True
                self.restarts += 1
                _log.warning(
                    "%s restarted: pid %s, ready in %.1f s (log: %s)",
                    self._name,
                    self._server.pid,
                    started - began,
                    self._server.log_path,
                )
                break
