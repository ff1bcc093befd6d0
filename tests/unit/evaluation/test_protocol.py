import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from driftwise.evaluation.protocol import (
    Split,
    evaluate,
    intra_list_diversity,
    leave_one_out,
    rank_of,
    top_items,
)


@dataclass(frozen=True)
class R:
    user_id: str
    item_id: str
    time: float
    rating: float = 4.0


def split_of(rows: Sequence[tuple[str, str, float]], catalogue: Sequence[str] = ()) -> Split:
    return leave_one_out([R(u, i, t) for u, i, t in rows], catalogue)


def test_last_is_test_second_last_is_validation_rest_is_train() -> None:
    s = split_of([("u", "c", 3), ("u", "a", 1), ("u", "d", 4), ("u", "b", 2), ("v", "x", 0)])
    assert [(e.user_id, e.item_id) for e in s.train] == [("v", "x"), ("u", "a"), ("u", "b")]
    assert s.validation == {"u": "c"} and s.test == {"u": "d"}
    assert [e.time for e in s.train] == sorted(e.time for e in s.train)


def test_timestamp_ties_keep_input_order() -> None:
    # same second: the one given later counts as later, whatever its id
    s = split_of([("u", "a", 1), ("u", "z", 5), ("u", "b", 5), ("u", "c", 5)])
    assert s.validation == {"u": "b"} and s.test == {"u": "c"}
    assert [e.item_id for e in s.train] == ["a", "z"]
    s = split_of([("u", "a", 1), ("u", "c", 5), ("u", "b", 5), ("u", "z", 5)])
    assert s.validation == {"u": "b"} and s.test == {"u": "z"}


def test_users_with_fewer_than_three_interactions_stay_in_train_unevaluated() -> None:
    s = split_of([("u", "a", 1), ("u", "b", 2), ("v", "a", 3), ("v", "b", 4), ("v", "c", 5)])
    assert set(s.test) == {"v"} and s.evaluated_users == ("v",)
    assert [(e.user_id, e.item_id) for e in s.train] == [("u", "a"), ("u", "b"), ("v", "a")]
    seen: list[str] = []

    def score(user: str, history: Sequence[str]) -> npt.NDArray[np.float64]:
        seen.append(user)
        return np.zeros(s.n_items)

    assert evaluate(score, s, "test")["users"] == 1.0 and seen == ["v"]


def test_item_index_follows_first_appearance_then_catalogue() -> None:
    s = split_of([("u", "b", 2), ("u", "a", 1), ("u", "c", 3)], catalogue=["d", "a"])
    assert s.items == ("a", "b", "c", "d")
    assert s.item_index == {"a": 0, "b": 1, "c": 2, "d": 3}


def test_training_data_per_phase() -> None:
    s = split_of([("u", "a", 1), ("v", "p", 2), ("u", "b", 3), ("v", "q", 4), ("u", "c", 5), ("v", "r", 6)])
    assert [e.item_id for e in s.training("validation")] == ["a", "p"]
    assert [e.item_id for e in s.training("test")] == ["a", "p", "b", "q"]
    assert s.histories("validation") == {"u": ("a",), "v": ("p",)}
    assert s.history("u", "test") == ("a", "b")
    assert s.targets("validation") == {"u": "b", "v": "q"}
    assert s.targets("test") == {"u": "c", "v": "r"}
    with pytest.raises(ValueError):
        s.training("train")  # type: ignore[arg-type]


def _catalogue_split(n_items: int) -> Split:
    """One user: train i0, validation i1, test i2; catalogue i0..i{n-1}."""
    return split_of(
        [("u", "i0", 0), ("u", "i1", 1), ("u", "i2", 2)], catalogue=[f"i{k}" for k in range(n_items)]
    )


def _scores_with_target_at(rank: int, target: int, n: int, seen: Sequence[int]) -> npt.NDArray[np.float64]:
    """Distinct scores such that ``target`` has the given rank among the items not in ``seen``."""
    others = [i for i in range(n) if i != target and i not in seen]
    order = [*others[: rank - 1], target, *others[rank - 1 :]]
    scores = np.zeros(n)
    scores[order] = np.arange(len(order), 0, -1, dtype=np.float64)
    scores[list(seen)] = 1000.0  # seen items score highest but must be filtered
    return scores


@pytest.mark.parametrize("rank", [1, 3, 10, 11, 15, 20, 21, 40])
def test_known_rank_gives_known_metrics(rank: int) -> None:
    s = _catalogue_split(50)
    scores = _scores_with_target_at(rank, target=2, n=50, seen=[0, 1])  # test phase: i0 and i1 seen
    m = evaluate(lambda u, h: scores, s, "test")
    for k in (10, 20):
        hit = rank <= k
        assert m[f"hr@{k}"] == float(hit)
        assert m[f"ndcg@{k}"] == pytest.approx(1 / math.log2(rank + 1) if hit else 0.0)
        assert m[f"mrr@{k}"] == pytest.approx(1 / rank if hit else 0.0)


def test_seen_items_are_filtered_per_phase() -> None:
    s = _catalogue_split(30)
    scores = np.zeros(30)
    scores[[0, 1]] = 10.0  # i0 (train) and i1 (validation target) score highest
    scores[2] = 5.0  # i2, the test target
    # test phase: i0, i1 seen -> i2 is rank 1
    assert evaluate(lambda u, h: scores, s, "test")["mrr@10"] == 1.0
    # validation phase: only i0 seen, target i1 is rank 1; i2 is not seen then
    assert evaluate(lambda u, h: scores, s, "validation")["mrr@10"] == 1.0
    scores2 = scores.copy()
    scores2[1] = 1.0  # validation target now behind i2 (unseen in validation phase)
    assert evaluate(lambda u, h: scores2, s, "validation")["mrr@10"] == 0.5


def test_score_fn_gets_the_phase_history_in_time_order() -> None:
    s = split_of([("u", "b", 1), ("u", "a", 2), ("u", "c", 3), ("u", "d", 4)])
    got: dict[str, tuple[str, ...]] = {}

    def score(user: str, history: Sequence[str]) -> npt.NDArray[np.float64]:
        got[user] = tuple(history)
        return np.zeros(s.n_items)

    evaluate(score, s, "validation")
    assert got == {"u": ("b", "a")}
    evaluate(score, s, "test")
    assert got == {"u": ("b", "a", "c")}


def test_equal_scores_rank_by_item_index() -> None:
    s = _catalogue_split(30)
    flat = np.zeros(30)
    # all tied: i0 and i1 are seen, so no unseen item has a lower index than the target i2 -> rank 1
    assert evaluate(lambda u, h: flat, s, "test")["mrr@10"] == 1.0
    # all tied: the rank is 1 + the number of unseen items with a lower index
    s2 = split_of(
        [("w", "x", 0), ("w", "y", 1), ("w", "z", 2), ("u", "i5", 3), ("u", "i3", 4), ("u", "i2", 5)],
        catalogue=["a", "b"],
    )
    assert s2.items == ("x", "y", "z", "i5", "i3", "i2", "a", "b")
    # w: target z (index 2), x and y seen -> rank 1; u: target i2 (index 5), x y z unseen -> rank 4
    m = evaluate(lambda u, h: np.zeros(s2.n_items), s2, "test")
    assert m["mrr@10"] == pytest.approx((1 + 1 / 4) / 2)
    candidate = np.array([True, True, True, False, False, True, True, True])
    assert rank_of(np.zeros(8), candidate, 5) == 4
    assert list(top_items(np.zeros(8), candidate, 4)) == [0, 1, 2, 5]


def test_rank_and_top_items_agree() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=200).astype(np.float64)  # many ties
    candidate = rng.random(200) > 0.3
    top = top_items(scores, candidate, 200)
    for position, item in enumerate(top, start=1):
        assert rank_of(scores, candidate, int(item)) == position


def test_seen_target_is_a_miss() -> None:
    s = split_of([("u", "a", 1), ("u", "b", 2), ("u", "a", 3)])  # re-consumption of a
    m = evaluate(lambda u, h: np.ones(s.n_items), s, "test")
    assert m["hr@20"] == 0.0 and m["mrr@20"] == 0.0


def test_coverage_diversity_and_standard_error() -> None:
    rows = []
    for u in range(4):
        rows += [(f"u{u}", "h0", 0), (f"u{u}", "h1", 1), (f"u{u}", f"t{u}", 2)]
    items = [f"x{k}" for k in range(20)]
    s = split_of(rows, catalogue=items)
    n = s.n_items  # h0 h1 t0..t3 x0..x19 = 26 items

    def score(user: str, history: Sequence[str]) -> npt.NDArray[np.float64]:
        scores = np.zeros(n)
        u = int(user[1:])
        if u < 2:  # users 0 and 1 hit at rank 1
            scores[s.item_index[f"t{u}"]] = 1.0
        else:  # users 2 and 3 miss: x0..x9 come first, the target is 11th or later
            scores[[s.item_index[f"x{k}"] for k in range(10)]] = 0.5
        return scores

    m = evaluate(score, s, "test", item_vectors=np.eye(n))
    assert m["hr@10"] == 0.5 and m["users"] == 4.0
    assert m["hr@10_se"] == pytest.approx(math.sqrt(0.5 * 0.5 / 4))
    # ties by index, and t0..t3 have lower indices than the x's:
    # user 0: t0 t1 t2 t3 x0..x5; user 1: t1 t0 t2 t3 x0..x5; users 2, 3: x0..x9 -> 14 items
    assert m["coverage@10"] == pytest.approx(14 / n)
    assert m["diversity@10"] == pytest.approx(1.0)  # one-hot vectors: every pair is orthogonal
    same = np.zeros((n, 2))
    same[:, 0] = 1.0
    assert evaluate(score, s, "test", item_vectors=same)["diversity@10"] == pytest.approx(0.0)
    assert "diversity@10" not in evaluate(score, s, "test")


def test_intra_list_diversity() -> None:
    orthogonal = np.eye(3)
    assert intra_list_diversity(orthogonal) == pytest.approx(1.0)
    opposite = np.array([[1.0, 0.0], [-1.0, 0.0]])
    assert intra_list_diversity(opposite) == pytest.approx(2.0)
    mixed = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 3.0]])  # pairs: 0, 1, 1
    assert intra_list_diversity(mixed) == pytest.approx(2 / 3)
    assert intra_list_diversity(np.ones((1, 4))) == 0.0


def test_bad_scores_are_rejected() -> None:
    s = _catalogue_split(10)
    with pytest.raises(ValueError, match="shape"):
        evaluate(lambda u, h: np.zeros(9), s, "test")
    with pytest.raises(ValueError, match="NaN"):
        evaluate(lambda u, h: np.full(10, np.nan), s, "test")
    with pytest.raises(ValueError, match="rows"):
        evaluate(lambda u, h: np.zeros(10), s, "test", item_vectors=np.zeros((3, 2)))
