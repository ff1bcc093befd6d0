"""The evaluation measures what Recommend serves: the same replay, into an engine in process and
through the public gRPC API of a restarted server, gives the same HR@10 (issue: one path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftwise.datasets.movielens import Movie, load_ratings
from driftwise.evaluation.served import GrpcBackend, Replay, in_process, load, score
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.server import running_app
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

    async with running_app(settings_for(tmp_path / "in-process", triton)) as app:
        inside = await in_process(app.engine, replay)

    settings = settings_for(tmp_path / "black-box", triton)
    async with app_and_client(settings) as (_, client):
        await load(GrpcBackend(client.channel), replay)
    async with app_and_client(settings) as (_, client):  # restarted: it refits on the log as it opens
        outside = await score(GrpcBackend(client.channel), replay)

    print(
        f"\nin process HR@10 {inside.hr:.4f} NDCG@10 {inside.ndcg:.4f}; "
        f"black box HR@10 {outside.hr:.4f} NDCG@10 {outside.ndcg:.4f} ({outside.users} users)"
    )
    assert inside.users == outside.users == len(replay.targets)
    assert inside.hits > 0  # a replay that recommends nothing would agree too
    assert abs(inside.hr - outside.hr) <= 0.003
    assert abs(inside.ndcg - outside.ndcg) <= 0.003
