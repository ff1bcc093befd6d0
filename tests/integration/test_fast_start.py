"""A restart serves the last full refit at once (`driftwise.engine.saved_fit`): the same model
status and tuning, the same recommendations as before it, without refitting before SERVING; a
corrupt saved fit is ignored and the server fits quickly on its log instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftwise.datasets.movielens import Movie
from driftwise.engine import saved_fit
from driftwise.engine.learned_models import LearnedModels
from driftwise.evaluation.served import until_tuned
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.model.tuning import TuningStatus
from driftwise.server import App
from driftwise.storage import refit_handoff
from driftwise_client.v1 import ingest_service_pb2, ranking_service_pb2
from tests.integration.support import NOW, Client, app_and_client, event, new_user, settings_for

pytestmark = pytest.mark.integration


async def recommend(client: Client, user: str) -> ranking_service_pb2.RecommendResponse:
    request = ranking_service_pb2.RecommendRequest(user_id=user, count=10)
    request.as_of_time.FromSeconds(int(NOW))
    return await client.ranking.Recommend(request)


async def recommended(client: Client, user: str) -> list[str]:
    return [i.item_id for i in (await recommend(client, user)).items]


async def model_status(client: Client) -> ranking_service_pb2.GetModelStatusResponse:
    return await client.ranking.GetModelStatus(ranking_service_pb2.GetModelStatusRequest())


async def fit_on_five_events(app: App, client: Client, movies: list[Movie], user: str) -> None:
    """60 movies, 5 of them liked by `user`, and a full refit (saved for the next start)."""
    await client.upsert_movies(movies[:60])
    await client.ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(events=[event(user, m.item_id) for m in movies[:5]])
    )
    await app.engine.refit_learned_models()


async def test_a_restart_serves_the_saved_fit_without_refitting(
    triton: LocalTritonServer, movies: list[Movie], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path, triton)
    users = [new_user() for _ in range(12)]
    async with app_and_client(settings) as (app, client):
        await client.upsert_movies(movies)
        events = [
            event(user, movies[(7 * u + 3 * i) % len(movies)].item_id, at=NOW - 1000 + i)
            for u, user in enumerate(users)
            for i in range(8)
        ]
        await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=events))
        assert await app.engine.refit_learned_models()  # a full refit: saved for the next start
        assert (tmp_path / saved_fit.FILE_NAME).exists()
        assert not list(tmp_path.glob(refit_handoff.FILE_PATTERN))  # its catalogue file is gone
        before = app.engine.refitted
        status, lists = await model_status(client), [await recommended(client, u) for u in users]
        assert all(lists)
    assert before is not None and before.tuning.status is not TuningStatus.PENDING

    async def no_refit(self: LearnedModels, *args: object, **kwargs: object) -> object:
        raise AssertionError("refitted at start although a saved fit was there")

    monkeypatch.setattr(LearnedModels, "quick_refit", no_refit)
    monkeypatch.setattr(LearnedModels, "_refit", no_refit)  # the periodic one: nothing new to fit
    async with app_and_client(settings) as (app, client):
        restored = app.engine.refitted
        assert restored is not None and restored.finished_at == before.finished_at
        assert restored.tuning == before.tuning and restored.ranking == before.ranking
        assert restored.topics is app.engine.topic_model
        assert await model_status(client) == status
        assert [await recommended(client, u) for u in users] == lists
        # nothing logged since the saved fit: the lists say their learned signals are complete
        assert (
            await recommend(client, users[0])
        ).learned_models == ranking_service_pb2.LEARNED_MODELS_STATE_CURRENT


async def test_a_corrupt_saved_fit_is_ignored(
    triton: LocalTritonServer, movies: list[Movie], tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, triton)
    user = new_user()
    async with app_and_client(settings) as (app, client):
        await fit_on_five_events(app, client, movies, user)
    path = tmp_path / saved_fit.FILE_NAME
    path.write_bytes(path.read_bytes()[:100])
    damaged_at = path.stat().st_mtime
    async with app_and_client(settings) as (app, client):  # fitted quickly on the log, as before
        assert app.engine.refitted is not None and app.engine.refitted.events == 5
        assert app.engine.refitted.finished_at > damaged_at
        assert await recommended(client, user)


async def test_events_logged_since_the_saved_fit_are_refitted_in_the_background(
    triton: LocalTritonServer, movies: list[Movie], tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, triton)
    user = new_user()
    async with app_and_client(settings) as (app, client):
        await fit_on_five_events(app, client, movies, user)
        saved = app.engine.refitted
        await client.ingest.IngestEvents(
            ingest_service_pb2.IngestEventsRequest(events=[event(user, m.item_id) for m in movies[5:8]])
        )
    assert saved is not None and saved.events == 5
    async with app_and_client(settings) as (app, client):
        # served at once: the saved fit; GetModelStatus says its refit is under way, and so
        # does each list ranked with it
        served = await recommend(client, user)
        (shard,) = (await model_status(client)).shards
        if shard.fitted_events == 5:  # (the background refit may already have finished)
            assert shard.tuning.status == ranking_service_pb2.SELF_TUNING_STATUS_PENDING
            assert served.learned_models == ranking_service_pb2.LEARNED_MODELS_STATE_REFITTING
        assert served.items
        shard = await until_tuned(client.channel)
        assert shard.fitted_events == 8
        served = await recommend(client, user)
        assert served.learned_models == ranking_service_pb2.LEARNED_MODELS_STATE_CURRENT
