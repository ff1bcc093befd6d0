import math

import numpy as np
import pytest

from driftwise.model.collaborative import CoOccurrence, SequentialCoOccurrence, top_k_columns


def test_top_k_columns_matches_a_stable_sort() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 4, size=(50, 40)).astype(np.float32)  # many ties
    for k in (1, 5, 39, 40):
        expected = np.sort(np.argsort(-values, axis=1, kind="stable")[:, :k], axis=1)
        assert np.array_equal(top_k_columns(values, k), expected)


def test_cosine_neighbours_and_scores() -> None:
    # u1: a b, u2: a b, u3: b c, u4: d  ->  sim(a,b)=2/sqrt(2*3), sim(b,c)=1/sqrt(3), d alone
    pairs = [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "b"), ("u3", "c"), ("u4", "d")]
    model = CoOccurrence.fit(pairs, ["a", "b", "c", "d"], neighbours=2)
    scores = model.scores(["a", "c", "unknown"])
    b = model.item_index["b"]
    assert scores[b] == pytest.approx(2 / math.sqrt(6) + 1 / math.sqrt(3))
    assert scores[model.item_index["d"]] == 0.0


def _weight(model: SequentialCoOccurrence, source: str, target: str) -> float:
    j, i = model.item_index[source], model.item_index[target]
    start, stop = model.indptr[j], model.indptr[j + 1]
    hits = model.weights[start:stop][model.targets[start:stop] == i]
    return float(hits.sum())


def test_followers_weigh_by_order_and_gap() -> None:
    model = SequentialCoOccurrence.fit(
        [["a", "b", "c"]], ["a", "b", "c", "d"], window=10, backward=0.5, popularity_exponent=0.0
    )
    assert _weight(model, "a", "b") == 1.0  # right after
    assert _weight(model, "a", "c") == 0.5  # two steps later: 1 / gap
    assert _weight(model, "b", "a") == 0.5  # came just before: backward / gap
    assert _weight(model, "c", "a") == 0.25
    assert _weight(model, "a", "d") == 0.0 and _weight(model, "a", "a") == 0.0


def test_an_items_followersstrongest_first_with_their_share() -> None:
    model = SequentialCoOccurrence.fit(
        [["a", "b", "c"]], ["a", "b", "c", "d"], window=10, backward=0.5, popularity_exponent=0.0
    )
    assert model.followers("a", 5) == [("b", pytest.approx(1.0 / 1.5)), ("c", pytest.approx(0.5 / 1.5))]
    assert model.followers("a", 1) == [("b", pytest.approx(1.0 / 1.5))]  # a share of all kept followers
    assert model.followers("d", 5) == [] and model.followers("unknown", 5) == []


def test_window_popularity_discount_and_pruning() -> None:
    sequences = [["a", "b", "c"], ["a", "b"], ["a", "c"]]
    narrow = SequentialCoOccurrence.fit(sequences, ["a", "b", "c"], window=1, backward=0.0)
    assert _weight(narrow, "a", "c") == pytest.approx(1.0 / (3 * 2) ** 0.2)  # only u3's a->c is adjacent
    raw = SequentialCoOccurrence.fit(sequences, ["a", "b", "c"], popularity_exponent=0.0, neighbours=1)
    assert _weight(raw, "a", "b") == 2.0 and _weight(raw, "a", "c") == 0.0  # only the strongest kept


def test_new_items_are_reached_through_their_text() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])  # "new" is close to "a" by text
    model = SequentialCoOccurrence.fit(
        [["a", "b"], ["b", "a"]], ["a", "b", "new"], vectors=vectors, content_neighbours=1
    )
    scores = model.scores([("a", 1.0)], half_life_events=2.0)
    assert scores[model.item_index["new"]] > 0
    assert scores[model.item_index["new"]] < scores[model.item_index["b"]]  # a discount, not a takeover


def test_sequential_scores_follow_the_newest_events_and_signs() -> None:
    model = SequentialCoOccurrence.fit([["a", "b"], ["c", "d"]], ["a", "b", "c", "d"], backward=0.0)
    after_c = model.scores([("c", 1.0), ("a", 1.0)], half_life_events=1.0)
    assert after_c[model.item_index["d"]] > after_c[model.item_index["b"]] > 0
    rejected = model.scores([("a", -1.0)], half_life_events=1.0)
    assert rejected[model.item_index["b"]] < 0
    assert not model.scores([("unknown", 1.0)], half_life_events=1.0).any()


def test_nonzero_scores_are_the_scores_without_a_pass_over_every_item() -> None:
    """The sum by hand, over the recent events' kept followers; an item whose terms cancel (a
    liked and a rejected event with the same follower) is left out like any 0."""
    rng = np.random.default_rng(3)
    items = [f"i{n}" for n in range(60)]
    sequences = [list(rng.choice(items, 12, replace=False)) for _ in range(40)]
    model = SequentialCoOccurrence.fit(sequences, items, neighbours=8)
    recent = [(str(item), float(rng.choice([-1.0, 1.0]))) for item in rng.choice(items, 10, replace=False)]
    recent += [("unknown", 1.0)]
    by_hand: dict[int, float] = {}
    for position, (item, sign) in enumerate(recent):
        if item == "unknown":
            continue
        j = model.item_index[item]
        edges = range(model.indptr[j], model.indptr[j + 1])
        for target, weight in zip(model.targets[edges], model.weights[edges], strict=True):
            by_hand[int(target)] = by_hand.get(int(target), 0.0) + sign * 0.5 ** (position / 2.0) * weight
    total = sum(0.5 ** (p / 2.0) for p, (item, _) in enumerate(recent) if item != "unknown")
    scored, values = model.nonzero_scores(recent, half_life_events=2.0)
    assert scored.tolist() == sorted(scored.tolist())
    assert (values != 0).all()
    expected = {i: v / total for i, v in by_hand.items() if v != 0}
    assert dict(zip(scored.tolist(), values.tolist(), strict=True)) == pytest.approx(expected)
    dense = model.scores(recent, half_life_events=2.0)
    assert np.flatnonzero(dense).tolist() == scored.tolist()
    cancelled = model.nonzero_scores([("i0", 1.0), ("i0", -1.0)], half_life_events=math.inf)
    assert len(cancelled[0]) == 0


def test_thestrongest_followers_are_a_stable_sort_cut() -> None:
    from driftwise.model.learned import strongest

    rng = np.random.default_rng(4)
    for size in (0, 5, 300):
        values = rng.integers(-3, 4, size).astype(np.float64)  # many ties at any cut
        for k in (0, 1, 7, 300, 400):
            assert strongest(values, k).tolist() == np.argsort(-values, kind="stable")[:k].tolist()
