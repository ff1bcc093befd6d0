"""A read-through cache of items (fields and vectors) in front of the vector store.

Ranking needs the vectors and fields of a few hundred items per request. Fetching them from Milvus
costs per row (decoding each row's fields; the pure-Python Milvus Lite took ~0.5 ms a row), so
searches ask Milvus for ids and distances only, and the items come from here. Entries are put on
upsert and dropped on delete by this process; `ttl_seconds` bounds how long an upsert made through
another replica can go unseen (the engine refreshes the items people interact with on every refit,
so they rarely expire). Misses are read with Bounded consistency: Strong would wait for the next
time tick of a Milvus server (~200 ms). Bounded LRU: `size` items (~1.6 KB each at 384 dimensions).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from driftwise.storage.vector_store import BOUNDED, MilvusVectorStore, StoredItem


class ItemCache:
    def __init__(
        self,
        store: MilvusVectorStore,
        size: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._size = size
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, StoredItem]] = OrderedDict()  # id -> (expiry, item)
        self.hits = 0
        self.misses = 0

    async def get(self, item_ids: Sequence[str]) -> dict[str, StoredItem]:
        """The known items among `item_ids` (unknown ids are left out), misses in one store call."""
        now = self._clock()
        found: dict[str, StoredItem] = {}
        missing: list[str] = []
        for item_id in dict.fromkeys(item_ids):
            entry = self._entries.get(item_id)
            if entry is not None and entry[0] > now:
                self._entries.move_to_end(item_id)
                found[item_id] = entry[1]
            else:
                missing.append(item_id)
        self.hits += len(found)
        self.misses += len(missing)
        if missing:
            fetched = await self._store.get_items(missing, consistency=BOUNDED)
            self.put(fetched.values())
            found.update(fetched)
        return found

    async def get_in_chunks(self, item_ids: Sequence[str], chunk: int = 256) -> dict[str, StoredItem]:
        """`get` of many items: the misses read `chunk` at a time (a bounded expression per call)."""
        found: dict[str, StoredItem] = {}
        ids = list(dict.fromkeys(item_ids))
        for i in range(0, len(ids), chunk):
            found.update(await self.get(ids[i : i + chunk]))
        return found

    async def warm(self, batch: int = 2048) -> int:
        """Read items from the store until the cache is full (at start: the first requests would
        otherwise read hundreds of items each); returns how many are cached. Items already here
        are left as they are: what a request or an upsert put is at least as fresh as the scan."""
        if self._size <= 0:
            return 0
        async for items in self._store.scan_items(batch):
            self.put(item for item in items if item.item_id not in self._entries)
            if len(self._entries) >= self._size:
                break
        return len(self._entries)

    def put(self, items: Iterable[StoredItem]) -> None:
        if self._size <= 0:
            return
        expiry = self._clock() + self._ttl
        for item in items:
            self._entries[item.item_id] = (expiry, item)
            self._entries.move_to_end(item.item_id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def drop(self, item_ids: Iterable[str]) -> None:
        for item_id in item_ids:
            self._entries.pop(item_id, None)

    def __len__(self) -> int:
        return len(self._entries)
