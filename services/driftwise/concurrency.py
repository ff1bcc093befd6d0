"""Per-user writers and profile watches: the asyncio plumbing of "one writer per user"
(docs/interest-model.md §6.2), and a child process for the heavy work that must not hold the
serving process's GIL.

Free of gRPC and storage: the engine holds a `KeyedLocks` for its writers, a `Watches` for
WatchProfile streams and a `WorkerProcess` for its refits; the server a `Closing` that ends its
streams at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import multiprocessing.process
import os
import signal
import traceback
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")


class KeyedLocks:
    """One asyncio lock per key (user id), created on demand and dropped when nobody holds it.

    `hold(keys)` takes the locks of several keys in sorted order, so two batches that share users
    can never deadlock; batches for different users run concurrently.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    @contextlib.asynccontextmanager
    async def hold(self, keys: Iterable[str]) -> AsyncIterator[None]:
        locks = [self._lock(k) for k in sorted(set(keys))]  # strong refs while held
        async with contextlib.AsyncExitStack() as stack:
            for lock in locks:
                await stack.enter_async_context(lock)
            yield


class Watch(Generic[T]):
    """The newest value published for one key since the reader last looked (conflated: a slow
    reader skips values in between, so memory per watcher is one value however slow it is)."""

    def __init__(self) -> None:
        self._value: T | None = None
        self._changed = asyncio.Event()
        self._closed = False

    def _publish(self, value: T | None, *, close: bool = False) -> None:
        self._value = value
        self._closed = self._closed or close
        self._changed.set()

    async def next(self) -> T | None:
        """Wait for a change; returns the newest value, or None once the key was closed."""
        await self._changed.wait()
        self._changed.clear()
        return None if self._closed else self._value


class Watches(Generic[T]):
    """Watchers per key; `publish` wakes them all with the new value, `close` ends their watch."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[Watch[T]]] = {}

    @contextlib.contextmanager
    def watch(self, key: str) -> Iterator[Watch[T]]:
        watch: Watch[T] = Watch()
        self._watchers.setdefault(key, set()).add(watch)
        try:
            yield watch
        finally:
            watchers = self._watchers.get(key)
            if watchers is not None:
                watchers.discard(watch)
                if not watchers:
                    del self._watchers[key]

    def publish(self, key: str, value: T) -> None:
        for watch in self._watchers.get(key, ()):
            watch._publish(value)

    def close(self, key: str) -> None:
        for watch in self._watchers.get(key, ()):
            watch._publish(None, close=True)

    def count(self) -> int:
        return sum(len(w) for w in self._watchers.values())


class Closing:
    """A switch thrown once (at shutdown) that ends the iterations it guards.

    `guard(items, error)` passes `items` through until `close()`; from then on the next item is
    not awaited: a pending wait for one is cancelled and `error()` raised instead. An item being
    handled when the switch is thrown is not interrupted (the guard only stands between items).

    No task per item: `close()` cancels the tasks waiting in a guard, and the guard turns that
    cancellation (and only that one) into `error()`.
    """

    def __init__(self) -> None:
        self._closed = False
        self._waiting: set[asyncio.Task[Any]] = set()  # tasks awaiting a guarded iterator's next item
        self._cancelled: set[asyncio.Task[Any]] = set()  # of those, the ones close() cancelled

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        for task in self._waiting:
            self._cancelled.add(task)
            task.cancel()

    async def guard(self, items: AsyncIterable[T], error: Callable[[], BaseException]) -> AsyncIterator[T]:
        iterator = aiter(items)
        task = asyncio.current_task()
        assert task is not None
        while True:
            if self._closed:
                raise error()
            self._waiting.add(task)
            try:
                item = await anext(iterator)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if task not in self._cancelled:
                    raise
                self._cancelled.discard(task)
                task.uncancel()
                raise error() from None
            finally:
                self._waiting.discard(task)
            yield item


class WorkerProcess:
    """One long-lived child process that runs calls one at a time: CPU-heavy pure work (a refit)
    off this process's GIL, so the event loop serving requests never waits for it.

    Started at the first call, from a fork server (`multiprocessing` "forkserver", started once
    per process, with `preload` imported): a fresh interpreter rather than a copy of this threaded
    process, and cheap to fork again. The function and arguments are pickled to it and the result
    back, so both must be picklable (module-level functions, plain data). The child gets SIGKILL
    when its parent (the fork server, which exits with this process) dies. A child that dies
    during a call fails that call; the next call starts a new one.
    """

    def __init__(self, name: str, preload: Sequence[str] = (), nice: int = 0) -> None:
        self.name = name
        self.nice = nice  # added to the child's niceness: > 0 yields the CPU to this process
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(list(preload))
        self._process: multiprocessing.process.BaseProcess | None = None
        self._connection: Connection | None = None
        self._lock = asyncio.Lock()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._lock:
            return await asyncio.to_thread(self._call, fn, args)

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._process is None or not self._process.is_alive():
            self._start()
        # locals: `close` may clear the attributes from another thread while this one waits
        process, connection = self._process, self._connection
        assert process is not None and connection is not None
        try:
            connection.send((fn, args))
            ok, value = connection.recv()
        except (EOFError, OSError) as e:  # it died (killed, out of memory, closed)
            process.join(timeout=5)
            if self._process is process:
                self._process = None
            raise RuntimeError(
                f"{self.name} process ended during a call (exit code {process.exitcode})"
            ) from e
        if not ok:
            raise RuntimeError(f"{self.name} process: {value}")
        return cast(T, value)

    def _start(self) -> None:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve_calls, args=(theirs, self.nice), name=self.name, daemon=True
        )
        process.start()
        theirs.close()
        self._process, self._connection = process, ours

    def close(self) -> None:
        """Stop the child, also in the middle of a call (which then fails)."""
        if self._process is not None:
            self._process.kill()
            self._process.join(timeout=5)
            self._process = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _serve_calls(connection: Connection, nice: int) -> None:
    """The child's loop: run each call it is sent, send back (True, result) or (False, error)."""
    _PR_SET_PDEATHSIG = 1  # <linux/prctl.h>: SIGKILL when the parent (the fork server) dies
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.nice(nice)
    while True:
        try:
            fn, args = connection.recv()
        except EOFError:  # the parent closed its end
            return
        try:
            reply: tuple[bool, Any] = (True, fn(*args))
        except Exception:
            reply = (False, traceback.format_exc())
        connection.send(reply)
