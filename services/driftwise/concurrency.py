"""Per-user writers and profile watches: the asyncio plumbing of "one writer per user" (DESIGN §5).

Free of gRPC and storage: the engine holds a `KeyedLocks` for its writers and a `Watches` for
WatchProfile streams; the server a `Closing` that ends its streams at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

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
