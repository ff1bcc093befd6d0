"""`driftwise demo`: load MovieLens through the gRPC API, then show a few users' interests.

Everything goes over the wire like any client would: items via UpsertItems, ratings via
IngestEvents, then GetProfile and Recommend per user, evaluated as of the user's last rating.
With --keep the server and its web console (driftwise.console) keep running until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import grpc
from tqdm import tqdm

from driftwise.api.convert import timestamp
from driftwise.datasets.movielens import DEFAULT_PATH, Movie, Rating, load_movies, load_ratings
from driftwise.server import App, running_app
from driftwise.settings import Settings
from driftwise_client.v1 import (
    common_pb2,
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    profile_service_pb2,
    profile_service_pb2_grpc,
    ranking_service_pb2,
    ranking_service_pb2_grpc,
)

ITEM_BATCH = 256
EVENT_BATCH = 1000
DEFAULT_USERS = ("1", "68", "414")
T = TypeVar("T")


@dataclass(frozen=True)
class DemoOptions:
    fresh: bool = True  # start from an empty data directory
    keep_running: bool = False  # then keep the server and its console running until Ctrl-C


async def run_demo(
    settings: Settings,
    dataset: Path = DEFAULT_PATH,
    users: Sequence[str] = DEFAULT_USERS,
    options: DemoOptions | None = None,
) -> None:
    options = options or DemoOptions()
    if options.fresh and settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
    started = time.perf_counter()
    print(f"starting Triton + Driftwise (data in {settings.data_dir}) ...", flush=True)
    async with running_app(settings) as app:
        print(f"ready in {time.perf_counter() - started:.0f} s; serving on {app.target}", flush=True)
        async with grpc.aio.insecure_channel(app.target) as channel:
            await _load(channel, dataset)
            # what the periodic refit (ranking.refit_seconds) would do: learn from the loaded log
            await app.engine.refit_learned_models()
            refitted = app.engine.refitted
            if refitted is not None:
                print(f"refitted in {refitted.seconds:.1f} s; {refitted.tuning.summary()}", flush=True)
                print("topics: " + "; ".join(app.engine.topic_model.labels), flush=True)
            for user in users:
                await _show_user(channel, user)
        print(f"demo finished in {time.perf_counter() - started:.0f} s", flush=True)
        if options.keep_running:
            await _keep_running(settings, app, users)


async def _keep_running(settings: Settings, app: App, users: Sequence[str]) -> None:
    """The web console beside the demo's server (console.port, else a free port) until Ctrl-C."""
    from driftwise.console import app as console_app

    port = 0 if settings.console.port is None else settings.console.port
    config = console_app.hosted_console(
        settings.model_copy(update={"console": settings.console.model_copy(update={"port": port})}), app.port
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with console_app.running_console(config) as console:
        print(f"\nserver: {app.target}", flush=True)
        print(f"console: {console.url}  (a user: {console.url}user?id={quote(users[0])})", flush=True)
        print("keeping both running: Ctrl-C to stop", flush=True)
        await stop.wait()


def item_message(movie: Movie) -> common_pb2.Item:
    """A MovieLens movie as an API item."""
    created = timestamp(movie.create_time) if movie.create_time is not None else None
    return common_pb2.Item(
        item_id=movie.item_id, title=movie.title, tags=movie.tags, category="movie", create_time=created
    )


def event_message(rating: Rating) -> common_pb2.Event:
    """A MovieLens rating as an API event."""
    return common_pb2.Event(
        event_id=rating.event_id,
        user_id=rating.user_id,
        type=common_pb2.EventType.ValueType(rating.type),
        event_time=timestamp(rating.time),
        item_id=rating.item_id,
    )


def _batches(rows: Sequence[T], size: int, desc: str, unit: str) -> Iterator[Sequence[T]]:
    """Consecutive slices of `rows`, with a progress bar."""
    with tqdm(total=len(rows), desc=desc, unit=unit) as bar:
        for i in range(0, len(rows), size):
            yield rows[i : i + size]
            bar.update(len(rows[i : i + size]))


async def _load(channel: grpc.aio.Channel, dataset: Path) -> None:
    ingest = ingest_service_pb2_grpc.IngestServiceStub(channel)
    for movies in _batches(load_movies(dataset), ITEM_BATCH, "items (encoded by Triton)", "item"):
        request = ingest_service_pb2.UpsertItemsRequest(items=[item_message(m) for m in movies])
        await ingest.UpsertItems(request, timeout=300)
    for ratings in _batches(load_ratings(dataset), EVENT_BATCH, "ratings -> events", "event"):
        events = ingest_service_pb2.IngestEventsRequest(events=[event_message(r) for r in ratings])
        await ingest.IngestEvents(events, timeout=120)


async def _show_user(channel: grpc.aio.Channel, user_id: str) -> None:
    profiles = profile_service_pb2_grpc.ProfileServiceStub(channel)
    ranking = ranking_service_pb2_grpc.RankingServiceStub(channel)
    profile = (
        await profiles.GetProfile(
            profile_service_pb2.GetProfileRequest(user_id=user_id, top_topics=3, recent_events=5)
        )
    ).profile
    as_of = profile.recent_events[0].event_time  # replaying history: evaluate at the last rating
    profile = (
        await profiles.GetProfile(
            profile_service_pb2.GetProfileRequest(
                user_id=user_id, top_topics=3, recent_events=5, as_of_time=as_of
            )
        )
    ).profile
    print(
        f"\n=== user {user_id}: {profile.event_count} ratings, profile version {profile.version}, "
        f"as of {as_of.ToDatetime():%Y-%m-%d}"
    )
    print(
        "last ratings: "
        + "; ".join(
            f"{common_pb2.EventType.Name(e.type).removeprefix('EVENT_TYPE_').lower()} {e.text}"
            for e in profile.recent_events
        )
    )
    for layer in profile.layers:
        topics = ", ".join(f"{t.topic} {t.weight:.0%}" for t in layer.top_topics)
        name = common_pb2.InterestLayer.Name(layer.layer).removeprefix("INTEREST_LAYER_").lower()
        half_life = _duration(layer.half_life_seconds)
        print(f"  {name:<7} (half-life {half_life}, evidence {layer.mass:6.1f}): {topics}")
    recs = await ranking.Recommend(
        ranking_service_pb2.RecommendRequest(user_id=user_id, count=10, diversity=0.2, as_of_time=as_of)
    )
    source = ranking_service_pb2.RecommendationSource.Name(recs.source).split("_")[-1].lower()
    print(f"top-10 recommendations ({source}):")
    for rank, item in enumerate(recs.items, 1):
        print(f"  {rank:2}. {item.title:<50.50} {item.score:5.3f}  {item.explanation.summary}")


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
