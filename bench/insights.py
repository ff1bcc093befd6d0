"""What each InsightService call costs on ml-latest-small, served by the all-in-one process.

    .venv/bin/python bench/insights.py [--repeats 50] [--movies 9742]

Starts `running_app` in this process (a local Triton, Milvus Lite, the event log in a temporary
directory, self-tuning off so the refit takes seconds), loads the movies and every rating of them
through the gRPC API, refits (co-occurrence for GetItem's followers), then times each RPC from a
client on the same loop: median and p90 over --repeats calls (a few warm-up calls first). The
server and the client share the machine's cores. ListItems with a title that matches nothing reads
the whole catalogue: its worst case; GetTopicHistory asks for the user with the most events.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc

from driftwise.datasets.movielens import Rating, load_movies, load_ratings
from driftwise.demo import event_message, item_message
from driftwise.model.config import TuningConfig
from driftwise.server import running_app
from driftwise.settings import ServerSettings, Settings
from driftwise_client.v1 import (
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    insight_service_pb2,
    insight_service_pb2_grpc,
    ranking_service_pb2,
    ranking_service_pb2_grpc,
)


async def timed(call: Callable[[], Awaitable[object]], repeats: int) -> tuple[float, float]:
    for _ in range(3):
        await call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1e3)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


async def main(repeats: int, movie_count: int) -> None:
    movies = load_movies()[:movie_count]
    known = {m.item_id for m in movies}
    ratings = [r for r in load_ratings() if r.item_id in known]
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            data_dir=Path(data_dir), server=ServerSettings(port=0), tuning=TuningConfig(enabled=False)
        )
        async with running_app(settings) as app, grpc.aio.insecure_channel(app.target) as channel:
            ingest = ingest_service_pb2_grpc.IngestServiceStub(channel)
            started = time.perf_counter()
            for i in range(0, len(movies), 500):
                items = [item_message(m) for m in movies[i : i + 500]]
                await ingest.UpsertItems(ingest_service_pb2.UpsertItemsRequest(items=items), timeout=600)
            for i in range(0, len(ratings), 1000):
                events = [event_message(r) for r in ratings[i : i + 1000]]
                await ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=events), timeout=600)
            await app.engine.refit_learned_models()
            print(
                f"loaded {len(movies)} movies and {len(ratings)} ratings, refitted, in "
                f"{time.perf_counter() - started:.0f} s"
            )
            await measure(channel, ratings, repeats)


async def measure(channel: grpc.aio.Channel, ratings: list[Rating], repeats: int) -> None:
    insight = insight_service_pb2_grpc.InsightServiceStub(channel)
    ranking = ranking_service_pb2_grpc.RankingServiceStub(channel)
    pb = insight_service_pb2
    heaviest, events = Counter(r.user_id for r in ratings).most_common(1)[0]
    popular, _ = Counter(r.item_id for r in ratings).most_common(1)[0]
    second_page = (await insight.ListItems(pb.ListItemsRequest(page_size=50))).next_page_token
    users_page = (await insight.ListUsers(pb.ListUsersRequest(page_size=50))).next_page_token
    for _ in range(20):  # lists to count, for GetOnlineQuality
        await ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=heaviest))
    calls: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("ListUsers, page of 50", lambda: insight.ListUsers(pb.ListUsersRequest(page_size=50))),
        (
            "ListUsers, second page",
            lambda: insight.ListUsers(pb.ListUsersRequest(page_size=50, page_token=users_page)),
        ),
        ("ListItems, page of 50", lambda: insight.ListItems(pb.ListItemsRequest(page_size=50))),
        (
            "ListItems, second page",
            lambda: insight.ListItems(pb.ListItemsRequest(page_size=50, page_token=second_page)),
        ),
        (
            "ListItems, title 'star'",
            lambda: insight.ListItems(pb.ListItemsRequest(page_size=50, title_contains="star")),
        ),
        (
            "ListItems, a title nothing has",
            lambda: insight.ListItems(pb.ListItemsRequest(page_size=50, title_contains="zzqx")),
        ),
        (
            "SearchItems, 10 (a new text each call)",
            _search(insight),
        ),
        ("GetItem, 10 neighbours", lambda: insight.GetItem(pb.GetItemRequest(item_id=popular))),
        (
            f"GetTopicHistory, {events} events, 100 points",
            lambda: insight.GetTopicHistory(pb.GetTopicHistoryRequest(user_id=heaviest)),
        ),
        ("GetServerStats", lambda: insight.GetServerStats(pb.GetServerStatsRequest())),
        ("GetOnlineQuality, 30 x 60 s", lambda: insight.GetOnlineQuality(pb.GetOnlineQualityRequest())),
        (
            "GetOnlineQuality, 1440 x 3600 s",
            lambda: insight.GetOnlineQuality(pb.GetOnlineQualityRequest(bucket_seconds=3600, buckets=1440)),
        ),
    ]
    print(f"{'call':45} {'p50 ms':>8} {'p90 ms':>8}")
    for name, call in calls:
        p50, p90 = await timed(call, repeats)
        print(f"{name:45} {p50:8.1f} {p90:8.1f}")


def _search(insight: insight_service_pb2_grpc.InsightServiceStub) -> Callable[[], Awaitable[object]]:
    """A text the encoder has not cached: each call pays Triton."""
    n = iter(range(10**9))
    return lambda: insight.SearchItems(
        insight_service_pb2.SearchItemsRequest(text=f"space adventure {next(n)}")
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--movies", type=int, default=9742)
    args = parser.parse_args()
    asyncio.run(main(args.repeats, args.movies))
