"""What one Recommend's Milvus search costs the Milvus server, on the catalogue it already holds.

    .venv/bin/python bench/milvus_search.py --milvus-uri URI --milvus-pid PID [--calls 300]

Run it after `bench/serving.py --milvus-uri URI --milvus-pid PID` (the items collection it wrote
stays on the server). Every call is the search Recommend makes (`MilvusVectorStore.search_ids`:
3 query vectors, one per layer, ids only, HNSW with ef = max(64, limit)); the queries are stored
items' vectors read from the server, with Gaussian noise, renormalised. The variants, one after
the other and then again in the same order (so drift shows as a difference between the rounds):

- no filter, limit 50 (`ranking.candidates_per_layer`);
- `item_id not in [...]` with 50 and with 200 random stored ids (a user's seen items; the serving
  bench keeps 200 events per user), limit 50;
- no filter, limit 100 and 250 (what leaving the seen items to a filter after the search would
  ask for: the limit plus the seen items that may come back).

For each, at 1 and 8 callers: the Milvus server's CPU per search (its process tree's utime +
stime from /proc over the calls, less its idle rate measured just before), QPS and p50 / p99.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass

import numpy as np
from serving import CpuMeter  # same directory: the serving bench's /proc reader

from driftwise.storage.item_filter import item_filter
from driftwise.storage.vector_store import ITEMS, MilvusVectorStore


@dataclass(frozen=True)
class Variant:
    name: str
    limit: int
    excluded: int  # how many random stored ids the filter leaves out (0: no filter)


VARIANTS = (
    Variant("no filter, limit 50", 50, 0),
    Variant("50 ids excluded, limit 50", 50, 50),
    Variant("200 ids excluded, limit 50", 50, 200),
    Variant("no filter, limit 100", 100, 0),
    Variant("no filter, limit 250", 250, 0),
)


def stored_sample(uri: str, token: str, rows: int) -> tuple[list[str], np.ndarray, int]:
    """Ids and vectors of up to `rows` stored items, and how many items the collection holds."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri, token=token)
    try:
        total = int(client.get_collection_stats(ITEMS)["row_count"])
        found = client.query(ITEMS, filter="", output_fields=["item_id", "vector"], limit=rows)
    finally:
        client.close()
    return [r["item_id"] for r in found], np.array([r["vector"] for r in found], dtype=np.float64), total


async def measure(
    store: MilvusVectorStore, meter: CpuMeter, queries: list[np.ndarray], filters: list[str], limit: int,
    callers: int, calls: int,
) -> tuple[float, float, float, float]:  # fmt: skip
    """(Milvus CPU ms per search, QPS, p50 ms, p99 ms)."""
    idle_start = meter.sample()["server"] or 0.0
    await asyncio.sleep(2.0)
    idle_rate = ((meter.sample()["server"] or 0.0) - idle_start) / 2.0
    latencies: list[float] = []
    issued = 0

    async def caller() -> None:
        nonlocal issued
        while issued < calls:
            n = issued
            issued += 1
            started = time.perf_counter()
            await store.search_ids(queries[n % len(queries)], limit, filters[n % len(filters)])
            latencies.append(time.perf_counter() - started)

    before = meter.sample()["server"] or 0.0
    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    wall = time.perf_counter() - started
    cpu = (meter.sample()["server"] or 0.0) - before - idle_rate * wall
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    return cpu / calls * 1e3, calls / wall, statistics.median(latencies) * 1e3, p99 * 1e3


async def run(args: argparse.Namespace) -> None:
    ids, vectors, total = await asyncio.to_thread(stored_sample, args.milvus_uri, args.milvus_token, 2000)
    rng = np.random.default_rng(args.seed)

    def layer_queries() -> np.ndarray:
        q = vectors[rng.integers(len(vectors), size=3)] + rng.normal(0.0, args.noise, (3, vectors.shape[1]))
        return q / np.linalg.norm(q, axis=1, keepdims=True)

    queries = [layer_queries() for _ in range(64)]
    store = MilvusVectorStore(args.milvus_uri, vectors.shape[1], token=args.milvus_token, index_type="HNSW")
    await store.open()
    # CpuMeter's "server" slot holds the Milvus server's tree here
    meter = CpuMeter(args.milvus_pid, None, None)
    print(f"Milvus server {args.milvus_uri}: {total:,} items; {args.calls} searches per row")
    print("\n| round | search | callers | Milvus CPU ms / search | QPS | p50 ms | p99 ms |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    try:
        for round_ in (1, 2):
            for variant in VARIANTS:
                filters = [
                    item_filter(exclude_ids=sorted(rng.choice(ids, variant.excluded, replace=False)))
                    if variant.excluded
                    else ""
                    for _ in range(64)
                ]
                for callers in (1, 8):
                    cpu, qps, p50, p99 = await measure(
                        store, meter, queries, filters, variant.limit, callers, args.calls
                    )
                    cells = (
                        round_,
                        variant.name,
                        callers,
                        f"{cpu:.2f}",
                        f"{qps:.0f}",
                        f"{p50:.1f}",
                        f"{p99:.1f}",
                    )
                    print("| " + " | ".join(map(str, cells)) + " |", flush=True)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--milvus-uri", required=True, help="a Milvus server holding the serving bench's items"
    )
    parser.add_argument("--milvus-token", default="")
    parser.add_argument("--milvus-pid", type=int, required=True, help="its process on this machine")
    parser.add_argument("--calls", type=int, default=300, help="searches per variant and caller count")
    parser.add_argument("--noise", type=float, default=0.05, help="per-dimension sigma added to a query")
    parser.add_argument("--seed", type=int, default=0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
