import asyncio
from collections.abc import AsyncIterator

import pytest

from driftwise.concurrency import Closing, KeyedLocks, Watches


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
