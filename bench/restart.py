"""Time to health SERVING when a server restarts on a populated data dir, for this tree and a
baseline commit, side by side in one run (issue 20: start-up independent of the catalogue).

    .venv/bin/python bench/restart.py --baseline REV [--size 10000] [--users 300] [--rounds 3]
        [--vector-cache DIR]

1. A template data dir (Milvus Lite): `--size` items written straight into the store as in
   bench/serving.py (real MovieLens movies with their cached encoder vectors, then synthetic ones
   near them), the users' histories ingested through `driftwise serve` (this tree), then a restart
   that runs the full refit (self-tuning, two-tower) and, in this tree, saves it; then 5% more
   events, so every restart below has a refit to do (the "restart with a refit" of the issue).
2. Per round, alternately per tree: a fresh copy of the template, `driftwise serve` (one shared
   local Triton, not counted) timed to gRPC health SERVING, then to the end of the refit it starts
   with (GetModelStatus no longer PENDING: the baseline's quick refit is then followed by its full
   one, this tree's restored fit by a full refit in the background).
Medians are printed. Both trees run on this .venv.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import (  # bench/serving.py
    EVAL_CACHE,
    ServerProcess,
    build_catalogue,
    build_histories,
    ingest,
    populate,
)

from driftwise.datasets.movielens import load_movies, load_ratings
from driftwise.evaluation.vectors import item_vectors
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.settings import REPO_ROOT
from driftwise_client.v1 import ranking_service_pb2, ranking_service_pb2_grpc


def logged(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "events.sqlite") as db:
        return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])


async def until_fitted(channel: grpc.aio.Channel, events: int, timeout_s: float = 900.0) -> None:
    """Until the served fit is a full one (not PENDING) on all `events`."""
    stub = ranking_service_pb2_grpc.RankingServiceStub(channel)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        (status,) = (await stub.GetModelStatus(ranking_service_pb2.GetModelStatusRequest())).shards
        pending = status.tuning.status == ranking_service_pb2.SELF_TUNING_STATUS_PENDING
        if not pending and status.fitted_events >= events:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no full refit on {events} events in {timeout_s:.0f} s")


def env_for(tree: Path, data_dir: Path, triton_url: str) -> dict[str, str]:
    return {
        "PYTHONPATH": str(tree / "services"),
        "DRIFTWISE_DATA_DIR": str(data_dir),
        "DRIFTWISE_TRITON__URL": triton_url,
    }


async def build_template(args: argparse.Namespace, data_dir: Path, triton_url: str) -> str:
    movies = load_movies()[: args.size]
    vectors = item_vectors(movies, args.vector_cache, lambda line: print(line, flush=True))
    catalogue, _ = build_catalogue(movies, vectors, args.size, 0.05, 7)
    data_dir.mkdir(parents=True)
    await populate(str(data_dir / "milvus.db"), "", "FLAT", catalogue)
    events = build_histories(
        load_ratings(), {i.item_id for i in catalogue}, args.users, args.max_history, 7, time.time()
    )
    later = len(events) // 20
    env = env_for(REPO_ROOT, data_dir, triton_url)
    for part in (events[:-later], events[-later:]):
        server = ServerProcess(data_dir, env)
        await server.start()
        async with grpc.aio.insecure_channel(server.target) as channel:
            await until_fitted(channel, logged(data_dir))  # the full refit (saved by this tree)
            await ingest(channel, part, 500, 2)
        await server.stop()
    return f"{len(catalogue):,} items, {len(events):,} events ({later:,} after the last full refit)"


async def measure(
    tree: Path, template: Path, work: Path, triton_url: str, serving_only: bool
) -> tuple[float, float]:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(template, work)
    server = ServerProcess(work, env_for(tree, work, triton_url))
    started = time.perf_counter()
    try:  # -v: the start's own log lines (cache warm-up, quick refit or restored fit) are printed
        serving_s = await server.start(command=[sys.executable, "-m", "driftwise.cli", "-v", "serve"])
        if serving_only:
            return serving_s, float("nan")
        async with grpc.aio.insecure_channel(server.target) as channel:
            await until_fitted(channel, logged(work))
        return serving_s, time.perf_counter() - started
    finally:
        await server.stop()
        for line in server.log_tail(200_000).splitlines():
            if any(w in line for w in ("item cache warmed", "refitted on", "restored the saved", "ignoring")):
                print(f"    {line[:160]}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--max-history", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serving-only", action="store_true", help="stop at SERVING (no refit wait)")
    parser.add_argument("--vector-cache", type=Path, default=EVAL_CACHE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="driftwise-restart-") as tmp_name:
        tmp = Path(tmp_name)
        baseline = tmp / "baseline"
        git = ["git", "-C", str(REPO_ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", str(baseline), args.baseline], check=True)
        trees = {f"baseline {args.baseline}": baseline, "this tree": REPO_ROOT}
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        triton = LocalTritonServer(
            REPO_ROOT / "model_repository", models=["text_encoder"], log_path=tmp / "triton.log"
        )
        triton.start()
        try:
            what = await build_template(args, tmp / "template", triton.grpc_url)
            print(f"template: {what}", flush=True)
            for round_ in range(args.rounds):
                for name, tree in trees.items():
                    row = await measure(
                        tree, tmp / "template", tmp / "run", triton.grpc_url, args.serving_only
                    )
                    results[name].append(row)
                    print(f"round {round_ + 1} {name}: SERVING {row[0]:.2f} s, refit done {row[1]:.2f} s")
        finally:
            triton.stop()
            subprocess.run([*git, "worktree", "remove", "--force", str(baseline)], check=False)
    print(f"\n# Restart on {what}: {args.rounds} rounds, medians")
    print("| | to health SERVING | to the end of the start's refit |")
    print("|---|---:|---:|")
    for name, rows in results.items():
        serving = statistics.median(r[0] for r in rows)
        refit = statistics.median(r[1] for r in rows)
        print(f"| {name} | {serving:.2f} s | {refit:.2f} s |")


if __name__ == "__main__":
    asyncio.run(main())
