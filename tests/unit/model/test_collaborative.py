import math

import numpy as np
import pytest

from driftwise.model.collaborative import CoOccurrence, top_k_columns


def test_top_k_columns_matches_a_stable_sort() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 4, size=(50, 40)).astype(np.float32)  # many ties
    for k in (1, 5, 39, 40):
        expected = np.sort(np.argsort(-values, axis=1, kind="stable")[:, :k], axis=1)
        assert np.array_equal(top_k_columns(values, k), expected)


@pytest.fixture
def model() -> CoOccurrence:
    # u1: a b, u2: a b, u3: b c, u4: d  ->  sim(a,b)=2/sqrt(2*3), sim(b,c)=1/sqrt(3), d alone
    pairs = [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "b"), ("u3", "c"), ("u4", "d")]
    return CoOccurrence.fit(pairs, ["a", "b", "c", "d"], neighbours=2)


def test_recent_items_count_more_than_older_ones(model: CoOccurrence) -> None:
    # newest first: c was just seen, a three events ago
    recent_c = model.scores([("c", 1.0), ("x", 1.0), ("y", 1.0), ("a", 1.0)], half_life_events=1.0)
    recent_a = model.scores([("a", 1.0), ("x", 1.0), ("y", 1.0), ("c", 1.0)], half_life_events=1.0)
    b = model.item_index["b"]
    w_new, w_old = 1.0, 0.5**3
    assert recent_c[b] == pytest.approx((w_new / math.sqrt(3) + w_old * 2 / math.sqrt(6)) / (w_new + w_old))
    assert recent_a[b] == pytest.approx((w_new * 2 / math.sqrt(6) + w_old / math.sqrt(3)) / (w_new + w_old))
    assert recent_a[b] > recent_c[b]  # a and b co-occur more than c and b


def test_a_rejected_item_pulls_its_neighbours_down(model: CoOccurrence) -> None:
    scores = model.scores([("a", -1.5)], half_life_events=3.0)
    assert scores[model.item_index["b"]] < 0
    assert scores[model.item_index["d"]] == 0.0  # never co-occurs with anything


def test_no_known_recent_items_scores_zero(model: CoOccurrence) -> None:
    assert not model.scores([("unknown", 1.0)], half_life_events=3.0).any()
    assert not model.scores([], half_life_events=3.0).any()
