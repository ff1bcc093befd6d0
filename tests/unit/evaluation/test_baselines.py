import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from driftwise.datasets.movielens import DEFAULT_PATH, load_ratings
from driftwise.evaluation.baselines import ItemKNN, item_knn, popularity, popularity_counts
from driftwise.evaluation.protocol import Split, evaluate, leave_one_out


@dataclass(frozen=True)
class R:
    user_id: str
    item_id: str
    time: float
    rating: float = 4.0


def split_of(rows: Sequence[tuple[str, str, float]]) -> Split:
    return leave_one_out([R(u, i, t) for u, i, t in rows])


def test_popularity_counts_every_interaction_of_the_phase() -> None:
    rows = [("u", "a", 0), ("u", "b", 1), ("u", "c", 2), ("u", "d", 3)]
    rows += [("v", "a", 4), ("v", "c", 5), ("v", "b", 6), ("v", "d", 7)]
    s = leave_one_out([R(u, i, t, rating=0.5) for u, i, t in rows])  # low ratings count too
    assert s.items == ("a", "b", "c", "d")
    # validation: train only (u: a b, v: a c); test: + validation (u: c, v: b)
    assert list(popularity_counts(s, "validation")) == [2, 1, 1, 0]
    assert list(popularity_counts(s, "test")) == [2, 2, 2, 0]
    score = popularity(s, "test")
    assert list(np.asarray(score("u", ("a",)))) == [2, 2, 2, 0]


def _knn_split() -> Split:
    # test-phase training data: u1 a b c, u2 a b, u3 b c; the last items h1 h2 h3 are test targets
    return split_of(
        [
            ("u1", "a", 0),
            ("u1", "b", 1),
            ("u1", "c", 2),
            ("u1", "h1", 3),
            ("u2", "a", 4),
            ("u2", "b", 5),
            ("u2", "h2", 6),
            ("u3", "b", 7),
            ("u3", "c", 8),
            ("u3", "h3", 9),
        ]
    )


def test_item_knn_is_the_sum_of_cosine_similarities_to_the_history() -> None:
    s = _knn_split()
    a, b, c = (s.item_index[i] for i in "abc")
    ab, ac, bc = 2 / math.sqrt(2 * 3), 1 / math.sqrt(2 * 2), 2 / math.sqrt(3 * 2)
    scores = np.asarray(item_knn(s, "test")("u", ("a",)))
    assert scores[[a, b, c]] == pytest.approx([0.0, ab, ac])  # an item is not its own neighbour
    scores = np.asarray(item_knn(s, "test")("u", ("a", "c")))
    assert scores[[a, b, c]] == pytest.approx([ac, ab + bc, ac])
    assert np.count_nonzero(scores) == 3  # h1 h2 h3 have no training interactions


def test_item_knn_keeps_the_top_neighbours_ties_by_index() -> None:
    s = _knn_split()
    a, b, c = (s.item_index[i] for i in "abc")
    model = ItemKNN(s, "test", neighbours=1)
    # a's nearest is b; b's are a and c (tied, a has the lower index); c's is b
    assert model.neighbour_index[[a, b, c], 0].tolist() == [b, a, b]
    scores = model.scores(("a",))
    assert scores[[a, b, c]] == pytest.approx([0.0, 2 / math.sqrt(6), 0.0])


@pytest.mark.skipif(not (DEFAULT_PATH / "ratings.csv").exists(), reason="ml-latest-small not shipped")
def test_popularity_on_ml_latest_small() -> None:
    split = leave_one_out(load_ratings())
    assert len(split.evaluated_users) == 610  # every user has >= 20 ratings: none left unevaluated
    assert split.n_items == 9724 and len(split.train) == 100836 - 2 * 610
    m = evaluate(popularity(split, "test"), split, "test")
    # Measured with this protocol (ties in file order, model fitted on train + validation for the test
    # phase): 26 hits of 610. The published 0.0393 / 0.0180 (24 hits) is not reproduced: ties broken
    # the other way round, with the popularity counted on train only, gives 24 hits but NDCG 0.0185.
    # The gap is under one standard error (0.008).
    assert m["hr@10"] == pytest.approx(26 / 610)
    assert m["ndcg@10"] == pytest.approx(0.0194, abs=5e-5)
    assert abs(m["hr@10"] - 0.0393) < m["hr@10_se"]
