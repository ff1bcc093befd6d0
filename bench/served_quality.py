"""Served quality: a MovieLens-format dataset replayed through the public gRPC API of
`driftwise serve` on the embedded defaults, exactly as a platform would, scored on what
Recommend returns.

    .venv/bin/python bench/served_quality.py [--dataset DIR] [--phase test|validation]
        [--data-dir DIR] [--model text_encoder_multilingual] [--out results.json]

1. start `driftwise serve` (fresh data dir, free port, embedded defaults: a local Triton,
   Milvus Lite) and wait for health SERVING;
2. UpsertItems every movie (title + genres + top user tags), IngestEvents every rating of the
   phase's training data in time order (ties in file order), batches of 1000
   (`driftwise.evaluation.served.load`);
3. restart it: a server refits on its log as it opens, self-tuning included, and the replay waits
   for that (`until_tuned`; what it chose is printed, from GetModelStatus);
4. Recommend(count=10, as_of_time = the held-out rating's time) per evaluated user, seen items
   excluded (`served.score`): HR@10 and NDCG@10 of the held-out item;
5. popularity and item-kNN on the same split (`driftwise.evaluation.baselines`, full catalogue),
   for scale.
tests/integration/test_served_quality.py shows the same replay into an engine in process gives
the same numbers. About 4 minutes on 2 cores for ml-latest-small (most of it encoding 9,742
items on Triton's CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import grpc
from google.protobuf import json_format

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import ServerProcess  # bench/serving.py: `driftwise serve` as a subprocess

from driftwise.datasets.movielens import DEFAULT_PATH, load_movies, load_ratings
from driftwise.evaluation.baselines import item_knn, popularity
from driftwise.evaluation.protocol import evaluate, leave_one_out
from driftwise.evaluation.served import GrpcBackend, Replay, load, score, until_tuned


async def main(args: argparse.Namespace) -> dict[str, object]:
    movies, ratings = load_movies(args.dataset), load_ratings(args.dataset)
    replay = Replay.of(movies, ratings, args.phase)
    print(f"{len(movies)} items, {len(replay.events)} events, {len(replay.targets)} users ({args.phase})")
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="driftwise-served-"))
    env = {"DRIFTWISE_DATA_DIR": str(data_dir)}
    if args.model:
        env["DRIFTWISE_TRITON__MODEL_NAME"] = args.model
    server = ServerProcess(data_dir, env)
    seconds: dict[str, float] = {}
    try:
        seconds["start"] = await server.start()
        started = time.perf_counter()
        async with grpc.aio.insecure_channel(server.target) as channel:
            await load(GrpcBackend(channel), replay)
        seconds["load"] = time.perf_counter() - started
        await server.stop()
        seconds["restart"] = await server.start()
        started = time.perf_counter()
        async with grpc.aio.insecure_channel(server.target) as channel:
            shard = await until_tuned(channel)
            seconds["first refit"] = time.perf_counter() - started
            started = time.perf_counter()
            served = await score(GrpcBackend(channel), replay)
            seconds["recommend"] = time.perf_counter() - started
    finally:
        await server.stop()
    split = leave_one_out(ratings, catalogue=[m.item_id for m in movies])
    rows = {"Driftwise, served (Recommend over gRPC)": {"hr@10": served.hr, "ndcg@10": served.ndcg}}
    for name, fn in (("popularity", popularity), ("item-kNN", item_knn)):
        metrics = evaluate(fn(split, args.phase), split, args.phase)
        rows[name] = {"hr@10": metrics["hr@10"], "ndcg@10": metrics["ndcg@10"]}
    print(f"\n| method ({served.users} users, {args.phase}) | HR@10 | NDCG@10 |\n|---|---:|---:|")
    for name, m in rows.items():
        print(f"| {name} | {m['hr@10']:.4f} | {m['ndcg@10']:.4f} |")
    tuning = json_format.MessageToDict(shard.tuning)
    print(f"refit on {shard.fitted_events} events in {shard.refit_seconds:.1f} s; self-tuning: {tuning}")
    print("seconds:", {k: round(v, 1) for k, v in seconds.items()}, f"(data in {data_dir})")
    return {
        "dataset": str(args.dataset),
        "model": args.model or "default",
        "phase": args.phase,
        "users": served.users,
        "rows": rows,
        "seconds": seconds,
        "refit_seconds": shard.refit_seconds,
        "self_tuning": tuning,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--phase", choices=("test", "validation"), default="test")
    parser.add_argument("--data-dir", help="the server's data dir (default: a new temporary one)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--model", help="encoder model (triton.model_name; default: the settings' default)")
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments))
    if arguments.out:
        arguments.out.write_text(json.dumps(result, indent=2))
