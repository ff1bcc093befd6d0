"""Item vectors and user interest vectors in Milvus (docs/interest-model.md §6.3).

`MilvusVectorStore(uri)` works with Milvus Lite (a local `*.db` file, the embedded default) and with
a Milvus server (an http:// URI) alike. Its calls run one at a time on one worker thread, and a
server that is down raises `driftwise.errors.UnavailableError` (`driftwise.storage.milvus_calls`);
TLS to a server is `driftwise.storage.milvus_tls.MilvusTls`; request filters are
`driftwise.storage.item_filter`.

Milvus Lite is the C++ one (milvus-lite 2.5): pymilvus starts a child `milvus` process per file,
which serves it over a Unix socket and holds a lock on it, and never stops it; `close` releases it.
It has no HNSW (FLAT, IVF_FLAT or AUTOINDEX only).

Server differences handled here (checked against Milvus 2.3.5 standalone, see
`driftwise_testing.milvus_server`): writes are upserts (an insert of an existing primary key would
duplicate the row); reads pass consistency level Strong (a server's default, Bounded, could miss a
write just made) except the searches of the ranking path: Strong waits for Milvus's next time tick
(~200 ms per read on Milvus 2.3, measured by bench/serving.py), so they read Bounded and may miss
an item upserted in the last moments (Session did not see deletes on 2.3.5); HNSW gets explicit
M/efConstruction and `ef` >= limit at search; search hits from a 2.3 server carry no primary-key
name, so the key is requested as an output field.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pymilvus import AsyncMilvusClient, DataType, MilvusClient
from pymilvus.client.constants import ITERATOR_FIELD, REDUCE_STOP_FOR_BEST

from driftwise.errors import UnavailableError
from driftwise.model.events import Layer
from driftwise.storage.milvus_calls import MilvusCalls
from driftwise.storage.milvus_tls import MilvusTls, tls_hint

UNKNOWN_TIME = -(2**62)  # create_time of items whose creation time is unknown
STRONG = "Strong"  # reads that must see every acknowledged write
BOUNDED = "Bounded"  # ranking's searches: no wait for a time tick, staleness bounded by Milvus
ITEMS = "items"
INTERESTS = "user_interests"


@dataclass(frozen=True, slots=True)
class StoredItem:
    item_id: str
    title: str
    category: str
    create_time: int  # Unix seconds, UNKNOWN_TIME if unknown
    vector: npt.NDArray[np.float32]
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InterestRow:
    user_id: str
    layer: Layer
    vector: npt.NDArray[np.float32]  # unit direction of the layer
    mass: float
    updated_at: int


class MilvusVectorStore:
    def __init__(
        self,
        uri: str,
        dimension: int,
        *,
        token: str = "",
        index_type: str = "FLAT",
        timeout_seconds: float = 10.0,
        connect_timeout_seconds: float = 3.0,
        tls: MilvusTls | None = None,
    ) -> None:
        self.dimension = dimension
        self._uri = uri
        self._token = token
        self._tls = tls
        self._index_type = index_type
        self._timeout = timeout_seconds
        self._connect_timeout = connect_timeout_seconds
        self._lite = uri.endswith(".db")  # pymilvus's own rule for a Milvus Lite file
        if tls is not None and self._lite:
            raise ValueError("TLS needs a Milvus server; Milvus Lite is a local file")
        self._calls = MilvusCalls(uri)
        self._client: MilvusClient | None = None
        # a server's searches: on the event loop, sparing a thread hand-off per call (bench/serving.py)
        self._searcher: AsyncMilvusClient | None = None

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self._client is not None and getattr(fn, "__self__", None) is self._client:
            kwargs.setdefault("timeout", self._timeout)  # every MilvusClient call has a deadline
        return await self._calls.run(fn, *args, **kwargs)

    @property
    def client(self) -> MilvusClient:
        if self._client is None:
            raise RuntimeError("vector store is not open")
        return self._client

    async def open(self) -> None:
        if self._tls is not None:
            self._tls.check()
        try:
            await self._call(self._open)
            if not self._lite:
                tls = self._tls.client_kwargs() if self._tls is not None else {}
                self._searcher = AsyncMilvusClient(  # connects at its first search
                    uri=self._uri, token=self._token, timeout=self._connect_timeout, dedicated=True, **tls
                )
        except UnavailableError as exc:
            if self._lite:
                raise
            # a refused TLS handshake looks like an unreachable server: say what to check
            hint = tls_hint(self._tls)
            raise UnavailableError(f"cannot connect to Milvus at {self._uri} ({hint}): {exc}") from exc

    def _open(self) -> None:
        if self._lite and Path(self._uri).is_dir():
            raise RuntimeError(
                f"{self._uri} is a directory, the format of the pure-Python Milvus Lite (milvus-lite 3.x); "
                "the C++ Milvus Lite keeps one file there: move the directory away (the items must be "
                "upserted again)"
            )
        if self._lite:  # Milvus Lite starts its local server process here: left to its own timeout
            self._client = MilvusClient(uri=self._uri, token=self._token)
        else:  # a connection of our own: pymilvus shares one per URI, with the first client's timeout
            tls = self._tls.client_kwargs() if self._tls is not None else {}
            self._client = MilvusClient(
                uri=self._uri, token=self._token, timeout=self._connect_timeout, dedicated=True, **tls
            )
        try:
            self._create_and_load()
        except BaseException:
            self._close()
            raise

    def _create_and_load(self) -> None:
        if not self.client.has_collection(ITEMS):
            self._create(
                ITEMS,
                [
                    ("item_id", DataType.VARCHAR, {"is_primary": True, "max_length": 128}),
                    ("title", DataType.VARCHAR, {"max_length": 2048}),
                    ("category", DataType.VARCHAR, {"max_length": 128}),
                    ("create_time", DataType.INT64, {}),
                    ("attributes", DataType.JSON, {}),
                ],
            )
        if not self.client.has_collection(INTERESTS):
            self._create(
                INTERESTS,
                [
                    ("row_id", DataType.VARCHAR, {"is_primary": True, "max_length": 160}),
                    ("user_id", DataType.VARCHAR, {"max_length": 128}),
                    ("layer", DataType.INT64, {}),
                    ("mass", DataType.DOUBLE, {}),
                    ("updated_at", DataType.INT64, {}),
                ],
            )
        for name in (ITEMS, INTERESTS):
            self.client.load_collection(name)  # needed after reopening an existing store

    def _create(self, name: str, fields: list[tuple[str, DataType, dict[str, Any]]]) -> None:
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        for field_name, dtype, kwargs in fields:
            schema.add_field(field_name, dtype, **kwargs)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimension)
        index = self.client.prepare_index_params()
        params = {"M": 16, "efConstruction": 200} if self._index_type == "HNSW" else {}
        index.add_index(field_name="vector", index_type=self._index_type, metric_type="IP", params=params)
        self.client.create_collection(name, schema=schema, index_params=index, consistency_level=STRONG)

    async def close(self) -> None:
        if self._searcher is not None:
            await self._searcher.close()
            self._searcher = None
        if self._client is not None:
            await self._call(self._close)
        self._calls.shutdown()

    def _close(self) -> None:
        self.client.close()
        self._client = None
        if self._lite:
            # MilvusClient.close leaves the child `milvus` process running with the file locked, so
            # no other process could open it: release it (the child exits once the lock goes)
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self._uri)

    # -- items ---------------------------------------------------------------------------------

    async def upsert_items(self, items: Sequence[StoredItem]) -> None:
        rows = [
            {
                "item_id": it.item_id,
                "title": it.title,
                "category": it.category,
                "create_time": it.create_time,
                "attributes": it.attributes,
                "vector": it.vector.astype(np.float32).tolist(),
            }
            for it in items
        ]
        await self._call(self.client.upsert, ITEMS, rows)

    async def delete_items(self, item_ids: Sequence[str]) -> int:
        existing = await self.get_items(item_ids, with_vectors=False)
        if existing:
            await self._call(self.client.delete, ITEMS, ids=list(existing))
        return len(existing)

    async def get_items(
        self, item_ids: Sequence[str], *, with_vectors: bool = True, consistency: str = STRONG
    ) -> dict[str, StoredItem]:
        if not item_ids:
            return {}
        fields = ["title", "category", "create_time", "attributes"] + (["vector"] if with_vectors else [])
        rows = await self._call(
            self.client.get,
            ITEMS,
            ids=list(dict.fromkeys(item_ids)),
            output_fields=fields,
            consistency_level=consistency,
        )
        return {row["item_id"]: self._item(row) for row in rows}

    async def search_items(
        self,
        queries: npt.NDArray[np.float64],
        limit: int,
        filter_expr: str = "",
        *,
        with_vectors: bool = True,
        consistency: str = BOUNDED,
    ) -> list[list[tuple[StoredItem, float]]]:
        """For each query vector, the `limit` nearest items (inner product) passing the filter.
        Without `with_vectors` the items' vectors are empty (less to transfer and decode).
        Bounded consistency by default (the ranking path); pass STRONG to see every write."""
        results = await self._search(queries, limit, filter_expr, _item_fields(with_vectors), consistency)
        # hit["item_id"]: the key is an output field, so pymilvus finds it in the entity on both
        return [
            [
                (self._item({**hit["entity"], "item_id": hit["item_id"]}), float(hit["distance"]))
                for hit in hits
            ]
            for hits in results
        ]

    async def search_ids(
        self, queries: npt.NDArray[np.float64], limit: int, filter_expr: str = "", consistency: str = BOUNDED
    ) -> list[list[tuple[str, float]]]:
        """`search_items` without the items: (item_id, score) per hit. The ranking path takes the
        items from its cache; decoding 3 x 200 hits' fields cost more than the search itself."""
        # no output fields: the keys come back as the result's id column anyway, and pymilvus
        # decodes every output field hit by hit; indexing each hit costs ~10 us more (a dict per hit)
        results = await self._search(queries, limit, filter_expr, [], consistency)
        return [list(zip(map(str, hits.ids), map(float, hits.distances), strict=True)) for hits in results]

    async def _search(
        self,
        queries: npt.NDArray[np.float64],
        limit: int,
        filter_expr: str,
        output_fields: list[str],
        consistency: str,
    ) -> Any:
        if len(queries) == 0:
            return []
        arguments: dict[str, Any] = {
            "data": [q.astype(np.float32).tolist() for q in queries],
            "limit": limit,
            "filter": filter_expr,
            "output_fields": output_fields,  # a 2.3 server names the key only as an output field
            "search_params": {"metric_type": "IP", "params": {"ef": max(64, limit)}},
            "consistency_level": consistency,
        }
        if self._searcher is not None:
            return await self._calls.run_on_loop(
                self._searcher.search, ITEMS, timeout=self._timeout, **arguments
            )
        return await self._call(self.client.search, ITEMS, **arguments)

    async def query_items(
        self, filter_expr: str, limit: int = 1000, *, with_vectors: bool = True
    ) -> list[StoredItem]:
        """Items passing a filter expression, in no particular order; vectors empty unless
        `with_vectors`."""
        rows = await self._call(
            self.client.query,
            ITEMS,
            filter=filter_expr,
            limit=limit,
            output_fields=_item_fields(with_vectors),
            consistency_level=STRONG,
        )
        return [self._item(row) for row in rows]

    async def scan_items(self, batch: int = 2048) -> AsyncIterator[list[StoredItem]]:
        """Every item with its vector, `batch` at a time; each batch is one call on the store's
        thread, so other calls on it (item reads, upserts) get their turn in between; larger
        batches read the catalogue in fewer calls (the warm-up and every full refit read it)."""
        iterator = await self._call(
            self.client.query_iterator, ITEMS, batch_size=batch, output_fields=_item_fields(True)
        )
        try:
            while rows := await self._call(iterator.next):
                yield [self._item(row) for row in rows]
        finally:
            await self._call(iterator.close)

    async def count_items(self, consistency: str = STRONG) -> int:
        rows = await self._call(
            self.client.query, ITEMS, filter="", output_fields=["count(*)"], consistency_level=consistency
        )
        return int(rows[0]["count(*)"])

    async def page_items(self, after: str | None, limit: int, consistency: str = BOUNDED) -> list[StoredItem]:
        """The first `limit` items in item id order (UTF-8 byte order) after `after`, without
        vectors. Sent as pymilvus's own query_iterator sends its queries, which Milvus answers in
        primary-key order; one call, where the iterator makes three (and warns on Milvus Lite)."""
        filter_expr = "" if after is None else f"item_id > {json.dumps(after, ensure_ascii=False)}"
        rows = await self._call(
            self.client.query,
            ITEMS,
            filter=filter_expr,
            limit=limit,
            output_fields=_item_fields(False),
            consistency_level=consistency,
            **{ITERATOR_FIELD: "True", REDUCE_STOP_FOR_BEST: "True"},
        )
        return [self._item(row) for row in rows]

    @property
    def address(self) -> str:
        """Where the store is, for people: "local" for Milvus Lite, else the URI without any
        user information."""
        if self._lite:
            return "local"
        scheme, sep, rest = self._uri.partition("://")
        return f"{scheme}{sep}{rest.rsplit('@', 1)[-1]}" if sep else self._uri.rsplit("@", 1)[-1]

    def outage(self) -> str | None:
        """None while Milvus answers; else since when it does not, and why."""
        down_for = self._calls.down_for
        if down_for is None:
            return None
        return f"unavailable for {down_for:.0f} s: {self._calls.last_outage}"

    @staticmethod
    def _item(row: dict[str, Any]) -> StoredItem:
        attributes = row.get("attributes") or {}
        if isinstance(attributes, str):
            attributes = json.loads(attributes)
        vector = np.asarray(row.get("vector", ()), dtype=np.float32)
        return StoredItem(
            row["item_id"],
            row["title"],
            row["category"],
            int(row["create_time"]),
            vector,
            {str(k): str(v) for k, v in attributes.items()},
        )

    # -- user interests ----------------------------------------------------------------------------

    async def upsert_interests(self, rows: Sequence[InterestRow]) -> None:
        if rows:
            await self._call(
                self.client.upsert,
                INTERESTS,
                [
                    {
                        "row_id": f"{r.user_id}#{int(r.layer)}",
                        "user_id": r.user_id,
                        "layer": int(r.layer),
                        "mass": r.mass,
                        "updated_at": r.updated_at,
                        "vector": r.vector.astype(np.float32).tolist(),
                    }
                    for r in rows
                ],
            )

    async def get_interests(self, user_id: str) -> list[InterestRow]:
        rows = await self._call(
            self.client.query,
            INTERESTS,
            filter=_user_filter(user_id),
            output_fields=["user_id", "layer", "mass", "updated_at", "vector"],
            consistency_level=STRONG,
        )
        return [
            InterestRow(
                r["user_id"],
                Layer(r["layer"]),
                np.asarray(r["vector"], dtype=np.float32),
                float(r["mass"]),
                int(r["updated_at"]),
            )
            for r in rows
        ]

    async def delete_user(self, user_id: str) -> None:
        await self._call(
            self.client.delete, INTERESTS, filter=f"user_id == {json.dumps(user_id, ensure_ascii=False)}"
        )


def _item_fields(with_vectors: bool) -> list[str]:
    fields = ["item_id", "title", "category", "create_time", "attributes"]
    return [*fields, "vector"] if with_vectors else fields


def _user_filter(user_id: str) -> str:
    return f"user_id == {json.dumps(user_id, ensure_ascii=False)}"  # Lite does not decode \u escapes
