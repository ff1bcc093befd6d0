"""Collaborative signals: what other people's histories say about an item (docs/interest-model.md §4.2).

``CoOccurrence`` is plain item-to-item similarity over users (the ItemKNN baseline of the
evaluation). ``SequentialCoOccurrence`` is Driftwise's signal: which items FOLLOW which within
users' sequences, read from the user's last few events (docs/interest-model.md §4.2, temporal
dependency). On ml-latest-small it carries most of the ranking quality (docs/evaluation.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
_BLOCK = 1024


def top_k_columns(values: npt.NDArray[np.floating[Any]], k: int) -> npt.NDArray[np.intp]:
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


class CoOccurrence:
    """Item neighbourhoods by co-occurrence: cosine over users.

    X is the binary user x item matrix of the interactions it is fitted on (1 if the user
    interacted with the item at least once, whatever the event type). The similarity of items i
    and j is the cosine between their columns, |U_i & U_j| / sqrt(|U_i| |U_j|), with the item
    itself excluded; each item keeps its ``neighbours`` most similar items (ties: lower index).
    Computed in blocks with numpy so the dense item x item matrix is never held whole.
    """

    def __init__(
        self, items: Sequence[str], neighbour_index: npt.NDArray[np.intp], neighbour_sim: FloatArray
    ) -> None:
        self.items = tuple(items)
        self.item_index = {item: i for i, item in enumerate(self.items)}
        self.neighbour_index = neighbour_index  # (n_items, k)
        self.neighbour_sim = neighbour_sim  # (n_items, k), >= 0

    @classmethod
    def fit(
        cls, interactions: Iterable[tuple[str, str]], items: Sequence[str], neighbours: int = 100
    ) -> CoOccurrence:
        """Fit on (user_id, item_id) pairs; ``items`` is the catalogue (unknown items are an error)."""
        item_index = {item: i for i, item in enumerate(items)}
        users: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for user, item in interactions:
            rows.append(users.setdefault(user, len(users)))
            cols.append(item_index[item])
        n_items = len(items)
        x = np.zeros((len(users), n_items), dtype=np.float32)
        x[rows, cols] = 1.0
        norms = np.sqrt(x.sum(axis=0))
        inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        k = max(0, min(neighbours, n_items - 1))
        neighbour_index = np.zeros((n_items, k), dtype=np.intp)
        neighbour_sim = np.zeros((n_items, k), dtype=np.float64)
        for start in range(0, n_items, _BLOCK) if k else ():
            stop = min(start + _BLOCK, n_items)
            block = np.arange(start, stop)
            sim = (x[:, start:stop].T @ x) * inverse[start:stop, None] * inverse[None, :]
            sim[block - start, block] = -np.inf  # never its own neighbour
            best = top_k_columns(sim, k)
            values = np.take_along_axis(sim, best, axis=1)
            neighbour_index[start:stop] = best
            neighbour_sim[start:stop] = np.where(values > 0, values, 0.0)
        return cls(items, neighbour_index, neighbour_sim)

    def scores(self, history: Iterable[str]) -> FloatArray:
        """Score of item i: the sum of its similarities to those of its neighbours in ``history``."""
        in_history = np.zeros(len(self.items), dtype=bool)
        in_history[[self.item_index[i] for i in history if i in self.item_index]] = True
        scores: FloatArray = np.where(in_history[self.neighbour_index], self.neighbour_sim, 0.0).sum(axis=1)
        return scores


class SequentialCoOccurrence:
    """Which items follow which: co-occurrence within a window of each user's sequence
    (docs/interest-model.md §4.2).

    Fit (``fit``)
        For every user's items in time order and every gap g = 1..``window``, the pair
        (earlier -> later) adds 1 / g and the pair (later -> earlier) adds ``backward`` / g: what
        comes soon after an item says most, what came just before says something too. The total
        T[j -> i] is divided by (n_j * n_i) ** ``popularity_exponent`` (n: the items' interaction
        counts), a mild discount of popular items (0 keeps raw counts, 0.5 is a cosine). Each item
        keeps its ``neighbours`` strongest followers. Items with no interactions (new items) are
        reached by text: each interacted item j gets an edge j -> new item i with weight
        ``content_discount * max(cos(i, j), 0) ** content_power`` times j's strongest edge, for the
        ``content_neighbours`` most similar interacted items j of every new item.
        Pairs are counted by sorting, so memory grows with the number of distinct pairs, not n^2.

    Score (``scores``)
        Recent events, newest first, weigh 0.5 ** (position / half_life_events) with the sign of
        the event's weight; item i scores sum_j weight_j * T[j -> i] / sum_j |weight_j|.
    """

    def __init__(
        self,
        items: Sequence[str],
        indptr: npt.NDArray[np.intp],
        targets: npt.NDArray[np.intp],
        weights: FloatArray,
    ) -> None:
        self.items = tuple(items)
        self.item_index = {item: i for i, item in enumerate(self.items)}
        self.indptr = indptr  # CSR over source items: followers of j are targets[indptr[j]:indptr[j+1]]
        self.targets = targets
        self.weights = weights

    @classmethod
    def fit(
        cls,
        sequences: Iterable[Sequence[str]],
        items: Sequence[str],
        *,
        window: int = 10,
        backward: float = 0.5,
        popularity_exponent: float = 0.2,
        neighbours: int = 200,
        vectors: npt.ArrayLike | None = None,
        content_discount: float = 0.5,
        content_power: float = 3.0,
        content_neighbours: int = 20,
    ) -> SequentialCoOccurrence:
        """Fit on each user's item ids in time order; ``vectors`` (unit rows) reach new items."""
        item_index = {item: i for i, item in enumerate(items)}
        n = len(items)
        counts = np.zeros(n)
        sources, targets, weights = [], [], []
        for sequence in sequences:
            s = np.fromiter((item_index[i] for i in sequence), dtype=np.int64)
            np.add.at(counts, s, 1.0)
            for gap in range(1, min(window, len(s) - 1) + 1):
                sources += [s[:-gap], s[gap:]]
                targets += [s[gap:], s[:-gap]]
                weights += [np.full(len(s) - gap, 1.0 / gap), np.full(len(s) - gap, backward / gap)]
        src = np.concatenate(sources) if sources else np.zeros(0, dtype=np.int64)
        dst = np.concatenate(targets) if targets else np.zeros(0, dtype=np.int64)
        w = np.concatenate(weights) if weights else np.zeros(0)
        keep = src != dst
        pair = src[keep] * n + dst[keep]
        order = np.argsort(pair, kind="stable")
        pair, w = pair[order], w[order]
        unique, first = np.unique(pair, return_index=True)
        total = np.add.reduceat(w, first) if len(unique) else np.zeros(0)
        src, dst = unique // n, unique % n
        total = total / (counts[src] * counts[dst]) ** popularity_exponent
        if vectors is not None and content_neighbours > 0:
            src, dst, total = _with_text_edges(
                src, dst, total, counts, np.asarray(vectors, dtype=np.float32),
                content_discount, content_power, content_neighbours,
            )  # fmt: skip
        return cls(items, *_top_per_row(src, dst, total, n, neighbours))

    def edge(self, source: str, target: str) -> float:
        """T[source -> target]: 0 where ``target`` is not among ``source``'s kept followers."""
        j, i = self.item_index.get(source), self.item_index.get(target)
        if j is None or i is None:
            return 0.0
        start, stop = self.indptr[j], self.indptr[j + 1]
        hits = self.weights[start:stop][self.targets[start:stop] == i]
        return float(hits[0]) if len(hits) else 0.0

    def followers(self, source: str, limit: int) -> list[tuple[str, float]]:
        """The `limit` strongest followers of `source`, strongest first, each with its share of
        the weight of all the followers kept for it (in (0, 1]); none for an unknown item."""
        j = self.item_index.get(source)
        if j is None:
            return []
        start, stop = self.indptr[j], self.indptr[j + 1]
        weights = self.weights[start:stop]
        total = float(weights.sum())
        if total <= 0:
            return []
        return [
            (self.items[target], float(weight) / total)
            for target, weight in zip(self.targets[start:stop][:limit], weights[:limit], strict=True)
            if weight > 0
        ]

    def scores(self, recent: Sequence[tuple[str, float]], half_life_events: float) -> FloatArray:
        """Scores for every item from recent (item_id, signed event weight) pairs, newest first."""
        scores = np.zeros(len(self.items))
        scored, values = self.nonzero_scores(recent, half_life_events)
        scores[scored] = values
        return scores

    def nonzero_scores(
        self, recent: Sequence[tuple[str, float]], half_life_events: float
    ) -> tuple[npt.NDArray[np.intp], FloatArray]:
        """`scores` where they are not 0: (item indices ascending, scores). The work grows with the
        recent events' followers, not with the catalogue (at a million items a dense pass over
        every item cost more than the rest of a Recommend)."""
        targets, weights = [], []
        total = 0.0
        for position, (item, event_weight) in enumerate(recent):
            j = self.item_index.get(item)
            if j is None:  # text-only events and unknown items have no followers
                continue
            weight = 0.5 ** (position / half_life_events) * float(np.sign(event_weight))
            start, stop = self.indptr[j], self.indptr[j + 1]
            targets.append(self.targets[start:stop])
            weights.append(weight * self.weights[start:stop])
            total += abs(weight)
        if not targets:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        scored, owner = np.unique(np.concatenate(targets), return_inverse=True)
        # bincount adds in the events' order, as a dense `+=` per event would
        summed = np.bincount(owner, weights=np.concatenate(weights), minlength=len(scored))
        values = summed.astype(np.float64, copy=False)
        if total:
            values /= total
        keep = values != 0
        return scored[keep].astype(np.intp), values[keep]


def _with_text_edges(
    src: npt.NDArray[np.int64],
    dst: npt.NDArray[np.int64],
    weight: FloatArray,
    counts: FloatArray,
    vectors: npt.NDArray[np.float32],
    discount: float,
    power: float,
    k: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray]:
    """Add edges from the most text-similar interacted items to every item without interactions."""
    new, warm = np.flatnonzero(counts == 0), np.flatnonzero(counts > 0)
    if not len(new) or len(warm) < k:
        return src, dst, weight
    strongest = np.zeros(len(counts))
    np.maximum.at(strongest, src, weight)
    extra_src, extra_dst, extra_w = [], [], []
    for start in range(0, len(new), _BLOCK):
        rows = new[start : start + _BLOCK]
        sim = vectors[rows] @ vectors[warm].T
        best = top_k_columns(sim, k)
        cos = np.maximum(np.take_along_axis(sim, best, axis=1), 0.0)
        sources = warm[best]
        extra_src.append(sources.ravel())
        extra_dst.append(np.repeat(rows, k))
        extra_w.append((discount * cos**power * strongest[sources]).ravel())
    return (
        np.concatenate([src, *extra_src]),
        np.concatenate([dst, *extra_dst]),
        np.concatenate([weight, *extra_w]),
    )


def _top_per_row(
    src: npt.NDArray[np.int64], dst: npt.NDArray[np.int64], weight: FloatArray, n: int, k: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], FloatArray]:
    """CSR (indptr, targets, weights) keeping each source's ``k`` heaviest edges, heaviest first."""
    order = np.lexsort((-weight, src))  # by source, then heaviest first
    src, dst, weight = src[order], dst[order], weight[order]
    starts = np.searchsorted(src, np.arange(n))
    rank = np.arange(len(src)) - starts[src]
    keep = rank < k
    src, dst, weight = src[keep], dst[keep], weight[keep]
    indptr = np.searchsorted(src, np.arange(n + 1)).astype(np.intp)
    return indptr, dst.astype(np.intp), weight.astype(np.float64)
