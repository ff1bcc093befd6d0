import asyncio
import math
import os
import time
from collections.abc import AsyncIterator

import pytest

from driftwise.concurrency import Closing, KeyedLocks, Watches, WorkerProcess


async def test_one_writer_per_key_and_different_keys_in_parallel() -> None:
    locks = KeyedLocks()
    running: dict[str, int] = {"a": 0, "b": 0}
    overlap: list[tuple[str, ...]] = []

    async def write(keys: tuple[str, ...]) -> None:
        async with locks.hold(keys):
            for k in keys:
                assert running[k] == 0, f"two writers for {k}"
                running[k] += 1
            overlap.append(tuple(k for k, n in running.items() if n))
            await asyncio.sleep(0.01)
            for k in keys:
                running[k] -= 1

    # batches sharing keys in opposite orders must not deadlock
    await asyncio.wait_for(
        asyncio.gather(*(write(k) for k in [("a",), ("b",), ("a", "b"), ("b", "a")] * 3)), 5
    )
    assert ("a", "b") in overlap  # "a" and "b" alone did run at the same time


async def test_a_slow_watcher_gets_the_newest_value_only_and_a_close() -> None:
    watches: Watches[int] = Watches()
    with watches.watch("u") as watch, watches.watch("other") as unrelated:
        for v in range(100):
            watches.publish("u", v)
        assert await watch.next() == 99  # conflated: one value held however many were published
        watches.publish("u", 100)
        assert await watch.next() == 100
        watches.close("u")
        assert await watch.next() is None
        assert not unrelated._changed.is_set()
    assert watches.count() == 0


async def test_closing_ends_a_waiting_iteration_with_the_error_and_lets_other_cancels_through() -> None:
    closing = Closing()
    gate = asyncio.Event()

    async def items() -> AsyncIterator[int]:
        yield 1
        await gate.wait()  # the next item never comes on its own
        yield 2

    got: list[int] = []

    async def consume() -> None:
        async for item in closing.guard(items(), lambda: RuntimeError("shutting down")):
            got.append(item)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    assert got == [1] and not task.done()
    closing.close()
    with pytest.raises(RuntimeError, match="shutting down"):
        await task
    # after close, a new guard ends before its first item
    with pytest.raises(RuntimeError):
        async for _ in closing.guard(items(), lambda: RuntimeError("closed")):
            pass
    # a cancellation that is not close()'s stays a cancellation
    other = Closing()
    waiting = asyncio.create_task(consume_with(other, items()))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def consume_with(closing: Closing, items: AsyncIterator[int]) -> None:
    async for _ in closing.guard(items, lambda: RuntimeError("closed")):
        pass


async def test_a_worker_process_runs_calls_in_another_process_and_survives_its_child_dying() -> None:
    worker = WorkerProcess("test-worker")
    try:
        child = await worker.run(os.getpid)
        assert child != os.getpid()
        assert await worker.run(math.factorial, 20) == 2432902008176640000
        assert await worker.run(os.getpid) == child  # one long-lived child
        with pytest.raises(RuntimeError, match="math domain error"):  # its error, with the traceback
            await worker.run(math.sqrt, -1.0)
        assert await worker.run(os.getpid) == child  # an error does not end it
        with pytest.raises(RuntimeError, match="exit code 3"):
            await worker.run(os._exit, 3)
        assert await worker.run(os.getpid) not in (child, os.getpid())  # a new child
    finally:
        worker.close()


async def test_closing_a_worker_process_ends_the_call_it_is_running() -> None:
    worker = WorkerProcess("test-worker")
    call = asyncio.create_task(worker.run(time.sleep, 60))
    while worker._process is None:  # started: the call is on its way
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    worker.close()
    with pytest.raises(RuntimeError, match="ended during a call"):
        await call
    assert time.perf_counter() - started < 10


async def test_a_worker_process_runs_at_the_niceness_it_was_given() -> None:
    worker = WorkerProcess("test-worker", nice=5)
    try:
        assert await worker.run(os.nice, 0) == os.nice(0) + 5
    finally:
        worker.close()
