"""The served number: a leave-one-out split replayed into a running Driftwise, scored on what
`Recommend` returns.

One replay, two ways in (`Backend`): through the public gRPC API to any server (`GrpcBackend`,
what a platform sees), or into an `Engine` in this process (`EngineBackend`), which takes the
same protobuf messages through the same validation (`driftwise.api.convert`) and the same engine
calls as the servicers. Both send:
- every movie as an item (UpsertItems: title + genres + top user tags, `demo.item_message`);
- every rating of the phase's training data as an event (IngestEvents, batches of 1000, in time
  order with ties in file order, `demo.event_message`);
- then the learned models are fitted on that log, self-tuning included (in process: the engine's
  refit; a server refits as it opens, so the black-box replay restarts it and waits for that
  refit, `until_tuned`);
- then Recommend(count=10, as_of_time = the held-out rating's time) for each evaluated user, seen
  items excluded (the default).
HR@10 and NDCG@10 of the held-out item in that list (its rank in the list, 1-based).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc

from driftwise.api import convert
from driftwise.datasets.movielens import Movie, Rating
from driftwise.demo import event_message, item_message
from driftwise.engine import Engine
from driftwise.evaluation.protocol import Phase, leave_one_out
from driftwise_client.v1 import (
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    ranking_service_pb2,
    ranking_service_pb2_grpc,
)

ITEM_BATCH, EVENT_BATCH, COUNT = 200, 1000, 10


class Backend(Protocol):
    async def upsert(self, items: ingest_service_pb2.UpsertItemsRequest) -> None: ...
    async def ingest(self, events: ingest_service_pb2.IngestEventsRequest) -> None: ...
    async def recommend(self, request: ranking_service_pb2.RecommendRequest) -> list[str]: ...


class EngineBackend:
    """Into an engine in this process, through the servicers' validation and engine calls."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._limits = engine.settings.limits

    async def upsert(self, items: ingest_service_pb2.UpsertItemsRequest) -> None:
        await self._engine.upsert_items(convert.items_from_proto(items.items, self._limits))

    async def ingest(self, events: ingest_service_pb2.IngestEventsRequest) -> None:
        await self._engine.ingest_events(convert.events_from_proto(events.events, self._limits, time.time()))

    async def recommend(self, request: ranking_service_pb2.RecommendRequest) -> list[str]:
        recs = await self._engine.recommend(convert.recommend_query(request, self._limits))
        return [r.item_id for r in recs.ranked]


class GrpcBackend:
    """Through the public API of a server."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._ingest = ingest_service_pb2_grpc.IngestServiceStub(channel)
        self._ranking = ranking_service_pb2_grpc.RankingServiceStub(channel)

    async def upsert(self, items: ingest_service_pb2.UpsertItemsRequest) -> None:
        await self._ingest.UpsertItems(items, timeout=300)

    async def ingest(self, events: ingest_service_pb2.IngestEventsRequest) -> None:
        await self._ingest.IngestEvents(events, timeout=120)

    async def recommend(self, request: ranking_service_pb2.RecommendRequest) -> list[str]:
        response = await self._ranking.Recommend(request, timeout=30)
        return [i.item_id for i in response.items]


@dataclass(frozen=True)
class Replay:
    """What a replay sends: the catalogue, the events of the phase's training data, the targets."""

    movies: Sequence[Movie]
    events: Sequence[Rating]  # time order, ties in file order
    targets: dict[str, Rating]  # evaluated user -> the held-out rating

    @classmethod
    def of(cls, movies: Sequence[Movie], ratings: Sequence[Rating], phase: Phase = "test") -> Replay:
        split = leave_one_out(ratings, catalogue=[m.item_id for m in movies])
        ordered = sorted(ratings, key=lambda r: r.time)  # the split's order: Interaction.seq
        held_out = split.test_events if phase == "test" else split.validation_events
        return cls(
            movies,
            [ordered[e.seq] for e in split.training(phase)],
            {user: ordered[e.seq] for user, e in held_out.items()},
        )


@dataclass(frozen=True)
class Served:
    ranks: dict[str, int]  # user -> 1-based rank of the held-out item in the list (0: not in it)
    lists_with_new_items: int = 0  # lists holding an item nobody had interacted with in the replay

    @property
    def users(self) -> int:
        return len(self.ranks)

    @property
    def hits(self) -> int:
        return sum(1 for r in self.ranks.values() if r)

    @property
    def hr(self) -> float:
        return self.hits / self.users if self.users else 0.0

    @property
    def ndcg(self) -> float:
        total = sum(1.0 / math.log2(r + 1) for r in self.ranks.values() if r)
        return total / self.users if self.users else 0.0


async def until_tuned(channel: grpc.aio.Channel, timeout_s: float = 600.0) -> ranking_service_pb2.ModelStatus:
    """Wait until a (re)started server has finished the refit it starts with, self-tuning included:
    it serves at once with the last tuning's settings, then tunes again in the background."""
    stub = ranking_service_pb2_grpc.RankingServiceStub(channel)
    deadline = time.monotonic() + timeout_s
    while True:
        (status,) = (await stub.GetModelStatus(ranking_service_pb2.GetModelStatusRequest())).shards
        if status.tuning.status != ranking_service_pb2.SELF_TUNING_STATUS_PENDING:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server did not finish its first refit in {timeout_s:.0f} s")
        await asyncio.sleep(0.5)


async def load(backend: Backend, replay: Replay) -> None:
    for i in range(0, len(replay.movies), ITEM_BATCH):
        items = [item_message(m) for m in replay.movies[i : i + ITEM_BATCH]]
        await backend.upsert(ingest_service_pb2.UpsertItemsRequest(items=items))
    for i in range(0, len(replay.events), EVENT_BATCH):
        events = [event_message(r) for r in replay.events[i : i + EVENT_BATCH]]
        await backend.ingest(ingest_service_pb2.IngestEventsRequest(events=events))


async def score(backend: Backend, replay: Replay) -> Served:
    """Recommend for every evaluated user as of their held-out rating, and score the lists."""
    ranks: dict[str, int] = {}
    interacted = {e.item_id for e in replay.events}
    with_new = 0
    for user, target in replay.targets.items():
        request = ranking_service_pb2.RecommendRequest(
            user_id=user, count=COUNT, as_of_time=convert.timestamp(target.time)
        )
        listed = await backend.recommend(request)
        ranks[user] = listed.index(target.item_id) + 1 if target.item_id in listed else 0
        with_new += any(item not in interacted for item in listed)
    return Served(ranks, with_new)


async def in_process(engine: Engine, replay: Replay) -> Served:
    """The replay into `engine` (a fresh one): load, refit, score."""
    backend = EngineBackend(engine)
    await load(backend, replay)
    await engine.refit_learned_models()
    return await score(backend, replay)
