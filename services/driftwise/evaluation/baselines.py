"""Baselines for the offline evaluation, each fitted on one phase's training data.

``popularity``: an item's score is its number of interactions in the phase's training data (every
interaction counts, whatever the rating); the same list for every user.

``item_knn``: item-to-item co-occurrence. X is the binary user x item matrix of the phase's
training data (1 if the user interacted with the item at least once). The similarity of items i
and j is the cosine between their columns, |U_i & U_j| / sqrt(|U_i| |U_j|) (no shrinkage), with
the item itself excluded. Each item keeps its ``neighbours`` most similar items (ties by lower
index); a user's score for item i is the sum of the similarities of i to those of its neighbours
that are in the user's history. The neighbour table is ``driftwise.model.collaborative.CoOccurrence``
(the same one Driftwise's collaborative signal uses, there weighted by recency).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from driftwise.evaluation.protocol import Phase, ScoreFn, Split
from driftwise.model.collaborative import CoOccurrence

NEIGHBOURS = 100


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


class ItemKNN:
    """Item-to-item cosine neighbourhoods fitted on one phase's training data (see module doc)."""

    def __init__(self, split: Split, phase: Phase, neighbours: int = NEIGHBOURS) -> None:
        pairs = ((e.user_id, e.item_id) for e in split.training(phase))
        self.model = CoOccurrence.fit(pairs, split.items, neighbours)
        self.neighbour_index = self.model.neighbour_index
        self.neighbour_sim = self.model.neighbour_sim

    def scores(self, history: Sequence[str]) -> npt.NDArray[np.float64]:
        return self.model.scores(history)


def item_knn(split: Split, phase: Phase, neighbours: int = NEIGHBOURS) -> ScoreFn:
    model = ItemKNN(split, phase, neighbours)

    def score(user_id: str, history: Sequence[str]) -> npt.NDArray[np.float64]:
        return model.scores(history)

    return score
