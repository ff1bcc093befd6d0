"""`driftwise eval` end to end on a tiny MovieLens-format dataset (real encoder, in process)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from driftwise.cli import main
from driftwise.evaluation.interest_model import DriftwiseUnderTest
from driftwise.evaluation.protocol import Interaction, evaluate, leave_one_out
from driftwise.evaluation.run import cold_split
from driftwise.model.config import InterestModelConfig, RankingConfig
from driftwise.model.topics import TopicModel

GENRES = ("Western", "Horror", "Musical", "Documentary")


def write_dataset(folder: Path) -> None:
    """12 users; each rates the movies of one genre, in movie order, one per day."""
    folder.mkdir()
    with open(folder / "movies.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["movieId", "title", "genres"])
        for m in range(40):
            w.writerow([m + 1, f"{GENRES[m % 4]} story number {m} (1990)", GENRES[m % 4]])
    with open(folder / "tags.csv", "w", newline="") as f:
        csv.writer(f).writerow(["userId", "movieId", "tag", "timestamp"])
    with open(folder / "ratings.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["userId", "movieId", "rating", "timestamp"])
        for u in range(12):
            genre = u % 4
            movies = [m for m in range(40) if m % 4 == genre][u // 4 : u // 4 + 8]
            for day, m in enumerate(movies):
                w.writerow([u + 1, m + 1, 4.0, 1_000_000 + 86_400 * day + u])


def test_eval_writes_every_method_a_table_and_a_plot(tmp_path: Path) -> None:
    dataset, out = tmp_path / "ml", tmp_path / "out"
    write_dataset(dataset)
    main(["--data-dir", str(tmp_path / "state"), "eval", "--dataset", str(dataset), "--out", str(out)])
    result = json.loads((out / "results.json").read_text())
    assert {"popularity", "item_knn", "driftwise"} <= set(result["test"])
    assert result["users"] == 12 and result["items"] == 40
    assert (out / "metrics.png").stat().st_size > 10_000
    assert "| driftwise |" in (out / "results.md").read_text()
    # genre-pure users: Driftwise finds the next movie of the genre far better than popularity
    assert result["test"]["driftwise"]["hr@10"] > result["test"]["popularity"]["hr@10"]
    assert (tmp_path / "state" / "eval-cache").is_dir()  # vectors cached for the next run


def _interactions(rows: list[tuple[str, str, float]]) -> list[Interaction]:
    return [Interaction(u, i, t, n, 4.0) for n, (u, i, t) in enumerate(rows)]


def test_the_replay_uses_the_serving_profile_code_and_scores_every_item() -> None:
    rows = [(u, f"{g}{k}", 10.0 * k) for u, g in (("u1", "a"), ("u2", "b"), ("u3", "a")) for k in range(5)]
    split = leave_one_out(_interactions(rows))
    vectors = np.array([[1.0, 0.0] if i.startswith("a") else [0.0, 1.0] for i in split.items])
    topics = TopicModel(["a", "b"], np.eye(2), 0.05)
    model = DriftwiseUnderTest(split, vectors, topics, InterestModelConfig(), RankingConfig())
    profiles = model.replay("validation")
    assert profiles["u1"].event_count == 3 and profiles["u2"].event_count == 3
    parts = model.components("validation")
    assert set(parts.parts) == {"layers", "topics", "collaborative", "sequence", "popularity"}
    # content alone: u2 (all b) ranks its b target first among unseen items
    metrics = evaluate(parts.score_fn({"layers": 1.0}), split, "validation")
    assert metrics["hr@10"] == 1.0
    with pytest.raises(ValueError, match="item vectors"):
        DriftwiseUnderTest(split, vectors[:3], topics, InterestModelConfig(), RankingConfig())


def test_the_serving_path_rows_rank_only_what_retrieval_finds() -> None:
    # u1 and u3 watch "a" items; u2 watches "b" items, whose vectors lean a little towards "a"
    rows = [(u, f"{g}{k}", 10.0 * k) for u, g in (("u1", "a"), ("u2", "b"), ("u3", "a")) for k in range(6)]
    split = leave_one_out(_interactions(rows))
    vectors = np.array([[1.0, 0.1 * int(i[1:])] if i.startswith("a") else [0.3, 1.0] for i in split.items])
    topics = TopicModel(["a", "b"], np.eye(2), 0.05)
    ranking = RankingConfig(collaborative_candidates=0)  # the layers' searches only
    model = DriftwiseUnderTest(split, vectors, topics, InterestModelConfig(), ranking)
    parts = model.components("validation", retrieval_depths=(1, 20))
    u1 = parts.users.index("u1")
    seen = {split.item_index[i] for i in split.histories("validation")["u1"]}
    found = np.flatnonzero(parts.retrieved[1][u1])
    # one hit per layer with a direction, never a seen item, the nearest unseen "a" items
    assert 1 <= len(found) <= 3 and not seen & set(found)
    assert all(split.items[i].startswith("a") for i in found)
    assert parts.retrieved[20][u1].sum() == split.n_items - len(seen)  # deep enough: everything
    score = parts.score_fn({"layers": 1.0}, depth=1)
    scores = score("u1", split.histories("validation")["u1"])
    unseen_not_found = [i for i in range(split.n_items) if i not in seen and i not in set(found)]
    assert scores[unseen_not_found].max() < scores[found].min()
    # at full depth the serving path ranks like the whole-catalogue evaluation
    full, deep = parts.score_fn({"layers": 1.0}), parts.score_fn({"layers": 1.0}, depth=20)
    assert evaluate(deep, split, "validation") == evaluate(full, split, "validation")


def test_cold_split_removes_cold_items_from_all_training_but_keeps_them_as_targets() -> None:
    rows = [(f"u{u}", f"i{(u + k) % 30}", float(k)) for u in range(20) for k in range(6)]
    split = leave_one_out(_interactions(rows))
    cold_data, cold = cold_split(split, 0.5, seed=0)
    assert cold and cold <= set(split.test.values())
    assert not {e.item_id for e in cold_data.training("test")} & cold
    assert cold_data.test == split.test and cold_data.items == split.items


def test_a_stale_item_vector_cache_is_encoded_again(tmp_path: Path) -> None:
    from driftwise.datasets.movielens import Movie
    from driftwise.evaluation.run import item_vectors

    movies = [Movie(str(i), f"{g} story (1990)", (g,), None) for i, g in enumerate(GENRES)]
    fresh = item_vectors(movies, tmp_path, lambda _: None)
    (cache,) = tmp_path.glob("item-vectors-*.npy")
    np.save(cache, np.random.default_rng(1).normal(size=fresh.shape).astype(np.float32))
    messages: list[str] = []
    again = item_vectors(movies, tmp_path, messages.append)
    np.testing.assert_allclose(again, fresh, atol=1e-5)
    assert any("stale" in m for m in messages)
    np.testing.assert_allclose(np.load(cache), fresh, atol=1e-5)  # the cache was mended
