"""The evaluation measures what Recommend serves: the same replay, into an engine in process and
through the public gRPC API of a restarted server, gives the same HR@10 (issue: one path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftwise.datasets.movielens import Movie, load_ratings
from driftwise.evaluation.served import GrpcBackend, Replay, in_process, load, score, until_tuned
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.model.config import TuningConfig
from driftwise.model.tuning import TuningStatus, apply_choice
from driftwise.server import running_app
from driftwise.settings import Settings
from driftwise_client.v1 import ranking_service_pb2
from tests.integration.support import app_and_client, settings_for

pytestmark = pytest.mark.integration

USERS = 60  # the first users, with their ratings of the small catalogue: seconds to replay


def small_replay(movies: list[Movie]) -> Replay:
    known = {m.item_id for m in movies}
    ratings = [r for r in load_ratings() if r.item_id in known]
    users = list(dict.fromkeys(r.user_id for r in ratings))[:USERS]
    chosen = set(users)
    return Replay.of(movies, [r for r in ratings if r.user_id in chosen])


async def test_the_in_process_evaluation_and_the_black_box_replay_agree(
    triton: LocalTritonServer, movies: list[Movie], tmp_path: Path
) -> None:
    replay = small_replay(movies)
    assert len(replay.targets) >= 50 and len(replay.events) > 1000

    async with running_app(tuned(settings_for(tmp_path / "in-process", triton))) as app:
        inside = await in_process(app.engine, replay)
        assert app.engine.refitted is not None
        tuning_inside = app.engine.refitted.tuning

    settings = tuned(settings_for(tmp_path / "black-box", triton))
    async with app_and_client(settings) as (_, client):
        await load(GrpcBackend(client.channel), replay)
    async with app_and_client(settings) as (_, client):  # restarted: it refits on the log as it opens
        shard = await until_tuned(client.channel)
        outside = await score(GrpcBackend(client.channel), replay)

    print(
        f"\nin process HR@10 {inside.hr:.4f} NDCG@10 {inside.ndcg:.4f}; "
        f"black box HR@10 {outside.hr:.4f} NDCG@10 {outside.ndcg:.4f} ({outside.users} users)"
    )
    assert inside.users == outside.users == len(replay.targets)
    assert inside.hits > 0  # a replay that recommends nothing would agree too
    assert abs(inside.hr - outside.hr) <= 0.003
    assert abs(inside.ndcg - outside.ndcg) <= 0.003

    # both tuned themselves on their own log, the same way, and say so
    assert shard.fitted_events == len(replay.events) and shard.refit_seconds > 0
    tuning = shard.tuning
    assert tuning.status == ranking_service_pb2.SELF_TUNING_STATUS_TUNED
    assert tuning.held_out_users == tuning_inside.held_out_users >= 50
    assert tuning.chosen_tune.users + tuning.chosen_report.users == tuning.held_out_users
    assert tuning.chosen_tune.ndcg_at_10 >= tuning.defaults_tune.ndcg_at_10  # chosen on that half
    assert dict(tuning.chosen) == {
        name: str(v).lower() if isinstance(v, bool) else str(v) for name, v in tuning_inside.chosen.items()
    }

    # the next start serves that fit at once (saved in the data dir): nothing was logged since, so
    # it is served as it was, no refit pending (tests/integration/test_fast_start.py: more cases)
    async with running_app(settings) as app:
        assert app.engine.refitted is not None
        assert app.engine.refitted.tuning.status is TuningStatus.TUNED
        assert app.engine.ranking == apply_choice(settings.ranking, tuning_inside)


def tuned(settings: Settings) -> Settings:
    """Self-tuning on the small replay's users (a deployment needs 100 by default)."""
    return settings.model_copy(update={"tuning": TuningConfig(min_users=20)})
