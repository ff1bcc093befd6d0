"""Baselines for the offline evaluation, each fitted on one phase's training data.

``popularity``: an item's score is its number of interactions in the phase's training data (every
interaction counts, whatever the rating); the same list for every user.

``item_knn``: item-to-item co-occurrence. X is the binary user x item matrix of the phase's
training data (1 if the user interacted with the item at least once). The similarity of items i
and j is the cosine between their columns, |U_i & U_j| / sqrt(|U_i| |U_j|) (no shrinkage), with
the item itself excluded. Each item keeps its ``neighbours`` most similar items (ties by lower
index); a user's score for item i is the sum of the similarities of i to those of its neighbours
that are in the user's history. Computed in blocks of items with numpy, keeping only the
(n_items x neighbours) neighbour table, so the dense item x item matrix is never held whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from driftwise.evaluation.protocol import Phase, ScoreFn, Split

NEIGHBOURS = 100
_BLOCK = 1024


def popularity_counts(split: Split, phase: Phase) -> npt.NDArray[np.float64]:
    counts = np.zeros(split.n_items, dtype=np.float64)
    index = [split.item_index[e.item_id] for e in split.training(phase)]
    np.add.at(counts, np.asarray(index, dtype=np.intp), 1.0)
    return counts


def popularity(split: Split, phase: Phase) -> ScoreFn:
    counts = popularity_counts(split, phase)
    counts.setflags(write=False)

    def score(user_id: str, history: Sequence[str]) -> npt.NDArray[np.float64]:
        return counts

    return score


def _top_k_columns(values: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.intp]:
    """Per row, the column indices of the ``k`` largest values (ties at the cut: lower index first).

    Returned in ascending column order, not by value. O(columns) per row (partition, no full sort).
    """
    n = values.shape[1]
    kth = np.partition(values, n - k, axis=1)[:, n - k][:, None]  # k-th largest per row
    above = values > kth
    tied = values == kth
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
    return np.nonzero(chosen)[1].reshape(values.shape[0], k)


class ItemKNN:
    """Item-to-item cosine neighbourhoods fitted on one phase's training data (see module doc)."""

    def __init__(self, split: Split, phase: Phase, neighbours: int = NEIGHBOURS) -> None:
        self.item_index = split.item_index
        n_items = split.n_items
        user_index = {u: i for i, u in enumerate(split.users)}
        x = np.zeros((len(split.users), n_items), dtype=np.float32)
        for e in split.training(phase):
            x[user_index[e.user_id], split.item_index[e.item_id]] = 1.0
        norms = np.sqrt(x.sum(axis=0))
        inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        k = max(0, min(neighbours, n_items - 1))
        self.neighbour_index = np.zeros((n_items, k), dtype=np.intp)
        self.neighbour_sim = np.zeros((n_items, k), dtype=np.float32)
        if k == 0:
            return
        for start in range(0, n_items, _BLOCK):
            stop = min(start + _BLOCK, n_items)
            rows = np.arange(start, stop)
            sim = (x[:, start:stop].T @ x) * inverse[start:stop, None] * inverse[None, :]
            sim[rows - start, rows] = -np.inf  # never its own neighbour
            best = _top_k_columns(sim, k)
            values = np.take_along_axis(sim, best, axis=1)
            self.neighbour_index[start:stop] = best
            self.neighbour_sim[start:stop] = np.where(values > 0, values, 0.0)

    def scores(self, history: Sequence[str]) -> npt.NDArray[np.float64]:
        in_history = np.zeros(len(self.item_index), dtype=bool)
        in_history[[self.item_index[i] for i in history]] = True
        weights = np.where(in_history[self.neighbour_index], self.neighbour_sim, 0.0)
        scores: npt.NDArray[np.float64] = weights.sum(axis=1, dtype=np.float64)
        return scores


def item_knn(split: Split, phase: Phase, neighbours: int = NEIGHBOURS) -> ScoreFn:
    model = ItemKNN(split, phase, neighbours)

    def score(user_id: str, history: Sequence[str]) -> npt.NDArray[np.float64]:
        return model.scores(history)

    return score
