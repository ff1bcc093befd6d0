from collections.abc import AsyncIterator, Sequence

import numpy as np

from driftwise.storage.item_cache import ItemCache
from driftwise.storage.vector_store import MilvusVectorStore, StoredItem


class CountingStore:
    """Stands in for MilvusVectorStore.get_items only (the cache's one call), counting rows read."""

    def __init__(self, items: dict[str, StoredItem]) -> None:
        self.items = items
        self.rows_read = 0

    async def get_items(self, item_ids: Sequence[str], **_: object) -> dict[str, StoredItem]:
        self.rows_read += len(item_ids)
        return {i: self.items[i] for i in item_ids if i in self.items}

    async def scan_items(self, batch: int = 2) -> AsyncIterator[list[StoredItem]]:
        rows = list(self.items.values())
        for i in range(0, len(rows), batch):
            self.rows_read += len(rows[i : i + batch])
            yield rows[i : i + batch]


def item(i: int) -> StoredItem:
    return StoredItem(f"i{i}", f"t{i}", "c", 0, np.full(4, i, dtype=np.float32))


async def test_reads_through_once_then_serves_from_memory_until_expiry_or_eviction() -> None:
    store = CountingStore({f"i{i}": item(i) for i in range(5)})
    now = [0.0]
    cache = ItemCache(store, size=3, ttl_seconds=10, clock=lambda: now[0])  # type: ignore[arg-type]
    assert set(await cache.get(["i0", "i1", "nope"])) == {"i0", "i1"}
    assert store.rows_read == 3
    assert set(await cache.get(["i0", "i1"])) == {"i0", "i1"} and store.rows_read == 3  # hits
    await cache.get(["i2", "i3"])  # size 3: i0 (least recently used) is evicted
    assert len(cache) == 3
    await cache.get(["i0"])
    assert store.rows_read == 6
    now[0] = 11.0  # expired: read again
    await cache.get(["i0"])
    assert store.rows_read == 7


async def test_put_and_drop_follow_this_processs_writes() -> None:
    store = CountingStore({})
    cache = ItemCache(store, size=10, ttl_seconds=10)  # type: ignore[arg-type]
    cache.put([item(1)])
    assert (await cache.get(["i1"]))["i1"].title == "t1" and store.rows_read == 0
    cache.drop(["i1"])
    assert await cache.get(["i1"]) == {} and store.rows_read == 1


def test_the_store_interface_matches() -> None:
    assert MilvusVectorStore.get_items.__name__ == CountingStore.get_items.__name__


async def test_warming_fills_the_cache_and_stops_when_full() -> None:
    store = CountingStore({f"i{i}": item(i) for i in range(7)})
    cache = ItemCache(store, size=3, ttl_seconds=10)  # type: ignore[arg-type]
    assert await cache.warm(batch=2) == 3 and store.rows_read == 4  # two batches of two, then full
    read = store.rows_read
    await cache.get(["i0", "i1", "i2", "i3"])
    assert store.rows_read == read + 1  # three of the four were warm


async def test_warming_leaves_fresher_entries_as_they_are() -> None:
    """The warm-up runs alongside requests and upserts: what they put is at least as fresh as the
    scan, so the scan does not overwrite it."""
    store = CountingStore({f"i{i}": item(i) for i in range(4)})
    cache = ItemCache(store, size=10, ttl_seconds=10)  # type: ignore[arg-type]
    upserted = StoredItem("i1", "new title", "c", 0, np.ones(4, dtype=np.float32))
    cache.put([upserted])
    assert await cache.warm(batch=2) == 4
    assert (await cache.get(["i1"]))["i1"] is upserted
    assert (await cache.get(["i2"]))["i2"].title == "t2"


async def test_get_in_chunks_reads_only_the_misses_a_chunk_at_a_time() -> None:
    store = CountingStore({f"i{i}": item(i) for i in range(7)})
    cache = ItemCache(store, size=10, ttl_seconds=10)  # type: ignore[arg-type]
    await cache.get(["i0", "i1"])
    reads: list[int] = []
    get_items = store.get_items

    async def counted(item_ids: Sequence[str], **kw: object) -> dict[str, StoredItem]:
        reads.append(len(item_ids))
        return await get_items(item_ids, **kw)

    store.get_items = counted  # type: ignore[method-assign]
    found = await cache.get_in_chunks([f"i{i}" for i in range(8)], chunk=3)
    assert set(found) == {f"i{i}" for i in range(7)}  # i7 is unknown
    assert reads == [1, 3, 2]  # chunks i0-i2, i3-i5, i6-i7: the cached i0 and i1 not read again
