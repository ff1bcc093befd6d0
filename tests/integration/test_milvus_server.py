"""MilvusVectorStore against Milvus Lite and a real Milvus server, and the app in production mode."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from pymilvus import MilvusClient

from driftwise.api.convert import timestamp
from driftwise.datasets.movielens import Movie
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.model.events import Layer
from driftwise.settings import MilvusSettings
from driftwise.storage.item_filter import ItemFilter, item_filter
from driftwise.storage.vector_store import (
    INTERESTS,
    ITEMS,
    STRONG,
    InterestRow,
    MilvusVectorStore,
    StoredItem,
)
from driftwise_client.v1 import common_pb2, ingest_service_pb2, profile_service_pb2, ranking_service_pb2
from driftwise_testing.milvus_server import LocalMilvusServer
from tests.integration.milvus_fixtures import milvus_server
from tests.integration.support import app_and_client, settings_for

pytestmark = pytest.mark.integration
__all__ = ["milvus_server"]  # the fixture, imported for pytest

DIM = 8


def drop_collections(server: LocalMilvusServer) -> None:
    """Tests sharing the session's server start from empty collections."""
    client = MilvusClient(uri=server.uri, token=server.token)
    try:
        for name in (ITEMS, INTERESTS):
            client.drop_collection(name)
    finally:
        client.close()


@pytest.fixture(params=["lite", "server"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, MilvusVectorStore]]:
    if request.param == "lite":
        vectors = MilvusVectorStore(str(tmp_path / "milvus.db"), DIM)
    else:
        server: LocalMilvusServer = request.getfixturevalue("milvus_server")
        drop_collections(server)
        vectors = MilvusVectorStore(server.uri, DIM, token=server.token, index_type="HNSW")
    await vectors.open()
    try:
        yield request.param, vectors
    finally:
        await vectors.close()


def unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


async def test_vector_store_contract(store: tuple[str, MilvusVectorStore]) -> None:
    _, vectors = store
    rng = np.random.default_rng(7)
    items = [
        StoredItem(f"i{k}", f"title {k}", "a" if k % 2 else "b", 1000 + k, unit(rng), {"n": str(k)})
        for k in range(10)
    ]
    await vectors.upsert_items(items)
    assert await vectors.count_items() == 10

    # upserting an existing key replaces the row (a server's insert would duplicate it)
    replacement = StoredItem("i1", "new title", "c", 5, unit(rng), {"x": "y"})
    await vectors.upsert_items([replacement])
    assert await vectors.count_items() == 10
    got = await vectors.get_items(["i1", "i2", "missing"])
    assert set(got) == {"i1", "i2"}
    assert (got["i1"].title, got["i1"].category, got["i1"].create_time) == ("new title", "c", 5)
    assert got["i1"].attributes == {"x": "y"} and got["i2"].attributes == {"n": "2"}
    np.testing.assert_allclose(got["i1"].vector, replacement.vector, rtol=1e-6)

    # search and query with a filter: category in, create_time >=, item_id not in
    expr = item_filter(categories=["a", "c"], created_after=1003, exclude_ids=["i5"])
    allowed = {"i3", "i7", "i9"}  # odd k >= 3 but i5; i1 is now create_time 5
    query = items[7].vector.astype(np.float64)
    [hits] = await vectors.search_items(np.stack([query]), 5, expr, consistency=STRONG)
    assert hits[0][0].item_id == "i7" and {it.item_id for it, _ in hits} == allowed
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True) and scores[0] == pytest.approx(1.0, abs=1e-5)
    assert all(it.vector.shape == (DIM,) and it.title for it, _ in hits)
    [bare] = await vectors.search_items(np.stack([query]), 5, expr, with_vectors=False, consistency=STRONG)
    assert [it.item_id for it, _ in bare] == [it.item_id for it, _ in hits]
    assert all(it.vector.size == 0 and it.attributes and it.category for it, _ in bare)
    # ids and scores only (the ranking path), several queries in one call
    ids_only = await vectors.search_ids(np.stack([query, items[3].vector]), 2, expr, consistency=STRONG)
    assert ids_only[0] == [(it.item_id, pytest.approx(score, abs=1e-5)) for it, score in hits[:2]]
    assert ids_only[1][0] == ("i3", pytest.approx(1.0, abs=1e-5)) and len(ids_only[1]) == 2

    queried = await vectors.query_items(expr)
    assert {it.item_id for it in queried} == allowed and all(it.vector.shape == (DIM,) for it in queried)
    # the same filter checked in process (on cached items) agrees with Milvus
    in_process = ItemFilter(categories=("a", "c"), created_after=1003, exclude_ids=frozenset({"i5"}))
    assert in_process.expression() == expr
    everything = await vectors.get_items([f"i{k}" for k in range(10)])
    assert {i for i, it in everything.items() if in_process.allows(it)} == allowed
    queried_bare = await vectors.query_items(expr, with_vectors=False)
    assert {it.item_id for it in queried_bare} == allowed and all(it.vector.size == 0 for it in queried_bare)

    scanned = [batch async for batch in vectors.scan_items(batch=3)]
    assert sorted(it.item_id for batch in scanned for it in batch) == sorted(it.item_id for it in items)
    assert max(len(batch) for batch in scanned) == 3 and all(it.vector.shape == (DIM,) for it in scanned[0])

    assert await vectors.delete_items(["i1", "i3", "missing"]) == 2
    assert await vectors.count_items() == 8
    assert set(await vectors.get_items(["i1", "i3", "i4"])) == {"i4"}
    assert {it.item_id for it in await vectors.query_items(expr)} == allowed - {"i3"}

    # interests: one row per (user, layer), upserted; delete_user deletes by filter
    await vectors.upsert_interests(
        [
            InterestRow("u1", Layer.SURFACE, unit(rng), 1.5, 10),
            InterestRow("u1", Layer.DEEP, unit(rng), 2.0, 11),
            InterestRow("u2", Layer.SURFACE, unit(rng), 1.0, 12),
        ]
    )
    newer = unit(rng)
    await vectors.upsert_interests([InterestRow("u1", Layer.SURFACE, newer, 3.5, 20)])
    rows = sorted(await vectors.get_interests("u1"), key=lambda r: r.layer)
    assert [(r.layer, r.mass, r.updated_at) for r in rows] == [
        (Layer.SURFACE, 3.5, 20),
        (Layer.DEEP, 2.0, 11),
    ]
    np.testing.assert_allclose(rows[0].vector, newer, rtol=1e-6)
    await vectors.delete_user("u1")
    assert await vectors.get_interests("u1") == []
    assert [r.user_id for r in await vectors.get_interests("u2")] == ["u2"]


async def test_items_come_in_pages_in_item_id_order(store: tuple[str, MilvusVectorStore]) -> None:
    kind, vectors = store
    rng = np.random.default_rng(3)
    ids = [f"{prefix}{k}" for prefix in ("a", "B", "é", "z-", "ä") for k in range(60)]
    rng.shuffle(ids)
    for start in range(0, len(ids), 70):  # several upserts: several segments on a server
        batch = ids[start : start + 70]
        await vectors.upsert_items([StoredItem(i, f"title {i}", "", 0, unit(rng)) for i in batch])
    listed: list[str] = []
    after = None
    while page := await vectors.page_items(after, 37, consistency=STRONG):
        assert all(it.vector.size == 0 and it.title == f"title {it.item_id}" for it in page)
        listed += [it.item_id for it in page]
        after = page[-1].item_id
    # UTF-8 byte order is code point order: Python's
    assert listed == sorted(ids)
    assert await vectors.count_items(consistency="Bounded") == len(ids)
    assert vectors.outage() is None
    assert (vectors.address == "local") == (kind == "lite")


async def test_lite_close_stops_the_milvus_process(tmp_path: Path) -> None:
    """pymilvus starts Milvus Lite as a child process and leaves it running; close stops it, and
    the file opens again with its rows."""
    path = tmp_path / "milvus.db"

    def lite_processes() -> str:  # the child's command line names the file
        return subprocess.run(["pgrep", "-f", str(path)], capture_output=True, text=True).stdout

    item = StoredItem("i0", "title", "a", 1, unit(np.random.default_rng(3)))
    for expected in (0, 1):
        vectors = MilvusVectorStore(str(path), DIM)
        await vectors.open()
        assert lite_processes()
        assert await vectors.count_items() == expected
        await vectors.upsert_items([item])
        await vectors.close()
        assert not lite_processes()


async def test_lite_refuses_a_pure_python_lite_directory(tmp_path: Path) -> None:
    (tmp_path / "milvus.db").mkdir()  # what milvus-lite 3.x left there
    vectors = MilvusVectorStore(str(tmp_path / "milvus.db"), DIM)
    with pytest.raises(RuntimeError, match="pure-Python Milvus Lite"):
        await vectors.open()
    await vectors.close()


async def test_all_in_one_app_on_a_milvus_server(
    milvus_server: LocalMilvusServer, triton: LocalTritonServer, movies: list[Movie], tmp_path: Path
) -> None:
    drop_collections(milvus_server)
    milvus = MilvusSettings(uri=milvus_server.uri, token=milvus_server.token, index_type="HNSW")
    settings = settings_for(tmp_path, triton).model_copy(update={"milvus": milvus})
    catalogue = movies[:60]
    liked = catalogue[:4]
    user = f"milvus-user-{time.monotonic_ns()}"
    async with app_and_client(settings) as (app, client):
        assert app.engine.store.client is not None
        await client.upsert_movies(catalogue)
        await client.upsert_movies(catalogue[:5])  # again: upserted, not duplicated
        assert await app.engine.store.count_items() == len(catalogue)

        now = time.time()
        events = [
            common_pb2.Event(
                event_id=f"{user}-{i}",
                user_id=user,
                type=common_pb2.EVENT_TYPE_LIKE,
                item_id=m.item_id,
                event_time=timestamp(now - 600 + i),
            )
            for i, m in enumerate(liked)
        ]
        acks = (await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=events))).acks
        assert [a.profile_version for a in acks] == [4] * 4

        recs = await client.ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=user, count=10))
        assert recs.source == ranking_service_pb2.RECOMMENDATION_SOURCE_PERSONALIZED
        ids = [i.item_id for i in recs.items]
        assert len(ids) == 10 and len(set(ids)) == 10
        assert set(ids) <= {m.item_id for m in catalogue} and not set(ids) & {m.item_id for m in liked}
        assert all(i.explanation.summary for i in recs.items)

        await app.engine.interest_mirror.flush()
        direct = MilvusClient(uri=milvus_server.uri, token=milvus_server.token)
        try:
            rows = direct.query(
                INTERESTS, filter=f'user_id == "{user}"', output_fields=["layer"], consistency_level="Strong"
            )
            assert sorted(r["layer"] for r in rows) == [1, 2, 3]
            deleted = await client.profiles.DeleteUserData(
                profile_service_pb2.DeleteUserDataRequest(user_id=user)
            )
            assert deleted.deleted_event_count == 4 and deleted.profile_deleted
            await app.engine.interest_mirror.flush()
            rows = direct.query(
                INTERESTS, filter=f'user_id == "{user}"', output_fields=["layer"], consistency_level="Strong"
            )
            assert rows == []
            # and the event log, read with sqlite itself: no event, no profile snapshot left
            with contextlib.closing(sqlite3.connect(tmp_path / "events.sqlite")) as db:
                for table in ("events", "profiles"):
                    count = db.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id = ?", (user,)).fetchone()
                    assert count == (0,), table
        finally:
            direct.close()
