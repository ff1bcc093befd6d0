"""Side-by-side costs of the choices on Recommend's path, each pair measured in one run.

    .venv/bin/python bench/recommend_path.py [--repeats 300]

1. Scoring: `rank_for_profile` on 800 candidates (3 layers x 200 hits + 200 followers, the old
   depth) vs 350 (3 x 50 + 200, `ranking.candidates_per_layer` = 50), and candidate vectors in
   float64 vs float32 (same code; the dtype of the stacked rows decides).
2. Milvus search result decoding (C++ Milvus Lite, 10k items, 3 queries x 50 hits): asking for the
   key as an output field and indexing every hit vs no output fields and reading the id column.
3. Popularity of 350 candidates: the SQLite item_stats query (IN + MAX scan, 9k items) vs the
   in-memory counter the engine keeps now.
4. A profile's co-occurrence signal (20 recent events, 200 followers kept per item, 200 taken) at
   10k, 100k and 1M items: the dense scores over every item (then `argpartition` and the nonzero
   entries, the old `signals_for`) vs `SequentialCoOccurrence.nonzero_scores`, which touches only
   the recent events' followers. Computed once per profile and remembered (`ProfileMemo`), so it is
   paid on a user's first Recommend after each write.

Prints the median time of each variant and the ratio. One BLAS thread, as the server runs.
"""

from __future__ import annotations

import argparse
import math
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from driftwise.model.config import InterestModelConfig, RankingConfig
from driftwise.model.events import Event, EventType
from driftwise.model.profile import UserProfile
from driftwise.model.ranking import Candidate, Signals, rank_for_profile
from driftwise.model.topics import TopicModel

DIM, TOPICS = 384, 20
rng = np.random.default_rng(0)


def unit(n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    for _ in range(max(3, repeats // 20)):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def row(label: str, before: float, after: float) -> None:
    print(f"| {label} | {before:.2f} ms | {after:.2f} ms | {before / after:.1f}x |")


def scoring(repeats: int) -> None:
    topics = TopicModel([f"t{k}" for k in range(TOPICS)], unit(TOPICS), 0.05)
    config = InterestModelConfig()
    profile = UserProfile.new("u", config, DIM, TOPICS)
    for i, v in enumerate(unit(200)):
        kind = EventType.SKIP if i % 5 == 0 else EventType.LIKE
        profile.apply(
            Event(f"e{i}", "u", kind, 1e9 + 60 * i, f"i{i}"), v, topics.assign_one(v), "t", config, 1e9
        )

    def ranker(n: int, dtype: type) -> Callable[[], object]:
        candidates = [Candidate(f"c{i}", v.astype(dtype), 0.1) for i, v in enumerate(unit(n))]
        signals = Signals(collaborative=rng.random(n))
        return lambda: rank_for_profile(
            profile,
            candidates,
            topics,
            at=1e9 + 20_000,
            count=10,
            diversity=0.2,
            config=RankingConfig(),
            topic_temperature=0.1,
            signals=signals,
        )

    row(
        "scoring 800 vs 350 candidates (float32)",
        median_ms(ranker(800, np.float32), repeats),
        median_ms(ranker(350, np.float32), repeats),
    )
    row(
        "scoring 350 candidates, float64 vs float32 rows",
        median_ms(ranker(350, np.float64), repeats),
        median_ms(ranker(350, np.float32), repeats),
    )


def search_decoding(repeats: int) -> None:
    from driftwise.storage.vector_store import ITEMS, MilvusVectorStore, StoredItem

    with tempfile.TemporaryDirectory() as tmp:
        store = MilvusVectorStore(str(Path(tmp) / "milvus.db"), DIM)
        import asyncio

        async def fill() -> None:
            await store.open()
            vectors = unit(10_000).astype(np.float32)
            for start in range(0, 10_000, 1000):
                await store.upsert_items(
                    [StoredItem(f"i{k}", "t", "c", 0, vectors[k], {}) for k in range(start, start + 1000)]
                )

        asyncio.run(fill())
        queries = [q.astype(np.float32).tolist() for q in unit(3)]
        client = store.client

        def per_hit() -> object:
            found = client.search(ITEMS, data=queries, limit=50, output_fields=["item_id"])
            return [[(str(h["item_id"]), float(h["distance"])) for h in hits] for hits in found]

        def columns() -> object:
            found = client.search(ITEMS, data=queries, limit=50, output_fields=[])
            return [list(zip(map(str, hits.ids), map(float, hits.distances), strict=True)) for hits in found]

        row(
            "search 3x50 hits: key field per hit vs id column",
            median_ms(per_hit, repeats),
            median_ms(columns, repeats),
        )
        asyncio.run(store.close())


def popularity(repeats: int) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE item_stats (item_id TEXT PRIMARY KEY, positives INTEGER NOT NULL)")
    counts = {f"i{k}": int(rng.integers(1, 500)) for k in range(9_000)}
    db.executemany("INSERT INTO item_stats VALUES (?, ?)", counts.items())
    ids = [f"i{k}" for k in rng.choice(10_000, 350, replace=False)]
    memory, top = Counter(counts), max(counts.values())

    def sql() -> object:
        marks = ",".join("?" * len(ids))
        found = dict(db.execute(f"SELECT item_id, positives FROM item_stats WHERE item_id IN ({marks})", ids))
        most = db.execute("SELECT MAX(positives) FROM item_stats").fetchone()[0]
        return [math.log1p(found.get(i, 0)) / math.log1p(most) for i in ids]

    def in_memory() -> object:
        return [math.log1p(memory.get(i, 0)) / math.log1p(top) for i in ids]

    row(
        "popularity of 350 candidates: SQLite vs in memory",
        median_ms(sql, repeats),
        median_ms(in_memory, repeats),
    )


def cooccurrence_signal(n: int) -> tuple[Callable[[], object], Callable[[], object]]:
    """The old and the new way to a profile's co-occurrence signal, on a model of `n` items."""
    from driftwise.model.collaborative import SequentialCoOccurrence
    from driftwise.model.learned import strongest

    kept, taken, interacted = 200, 200, 20_000
    # followers for the items people interacted with; the rest of the catalogue has none
    sources = np.sort(rng.choice(n, min(n, interacted), replace=False))
    lengths = np.zeros(n, dtype=np.intp)
    lengths[sources] = kept
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.intp)
    steps = np.arange(kept) * 4999  # distinct followers per item (gcd(4999, n) = 1), as a fit keeps
    targets = np.concatenate([(s * 7919 + steps) % n for s in sources]).astype(np.intp)
    model = SequentialCoOccurrence([f"i{k}" for k in range(n)], indptr, targets, rng.random(len(targets)))
    recent = [(f"i{k}", 1.0 if k % 5 else -1.0) for k in rng.choice(sources, 20, replace=False)]

    def dense() -> object:  # the old path: a += per event over a vector of every item
        scores, total = np.zeros(n), 0.0
        for position, (item, sign) in enumerate(recent):
            j = model.item_index[item]
            weight = 0.5 ** (position / 3.0) * sign
            edges = slice(indptr[j], indptr[j + 1])
            scores[targets[edges]] += weight * model.weights[edges]
            total += abs(weight)
        scores /= total
        best = np.argpartition(-scores, taken - 1)[:taken]
        scored = np.flatnonzero(scores)
        return best[scores[best] > 0], scored, scores[scored]

    def nonzero() -> object:
        scored, values = model.nonzero_scores(recent, 3.0)
        best = strongest(values, taken)
        return scored[best[values[best] > 0]], scored, values

    return dense, nonzero


def followers(repeats: int) -> None:
    for n in (10_000, 100_000, 1_000_000):
        dense, nonzero = cooccurrence_signal(n)
        row(
            f"co-occurrence signal of a profile, {n:,} items: dense vs nonzero",
            median_ms(dense, max(10, repeats // 10)),
            median_ms(nonzero, max(10, repeats // 10)),
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    print("| what | before | after | ratio |\n|---|---:|---:|---:|")
    with threadpool_limits(limits=1, user_api="blas"):
        scoring(args.repeats)
        search_decoding(args.repeats)
        popularity(args.repeats)
        followers(args.repeats)


if __name__ == "__main__":
    main()
