"""Temporal dependency between topics: P(next topic | current topic) (docs/interest-model.md §4.1).

Learned from the event log: for every pair of consecutive events of one user, the soft topic
assignment of the earlier event (p) and of the later one (q) add the outer product p q^T to a
K x K count matrix. The global transition matrix is that matrix with ``smoothing`` added to every
cell, rows normalised.

Per user, the same counts over the user's own recent events (C_u) are blended with the global
matrix as a Dirichlet prior of strength ``user_prior``:

    P_u(j | i) = (C_u[i, j] + user_prior * P(j | i)) / (sum_j C_u[i, j] + user_prior)

The prediction is the distribution of the next event's topic: p_newest @ P_u. Ranking mixes it
into the surface layer's query (``driftwise.model.ranking``): where a user goes next, not only
where they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from driftwise.model.layers import Vector

Matrix = npt.NDArray[np.float64]


def pair_counts(topic_probs: Sequence[Vector] | Matrix) -> Matrix:
    """Sum of p_t q_{t+1}^T over consecutive rows (oldest first) of a (n, K) sequence."""
    p = np.asarray(topic_probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 2:
        k = p.shape[-1] if p.ndim == 2 else 0
        return np.zeros((k, k))
    counts: Matrix = p[:-1].T @ p[1:]
    return counts


class TopicTransitions:
    """A row-stochastic K x K matrix: row i is the distribution of the topic that follows topic i."""

    def __init__(self, matrix: npt.ArrayLike) -> None:
        m = np.asarray(matrix, dtype=np.float64)
        if m.ndim != 2 or m.shape[0] != m.shape[1] or not np.allclose(m.sum(axis=1), 1.0):
            raise ValueError("a transition matrix is square with rows that sum to 1")
        self.matrix = m

    @property
    def size(self) -> int:
        return int(self.matrix.shape[0])

    @classmethod
    def fit(
        cls, sequences: Iterable[Sequence[Vector] | Matrix], n_topics: int, smoothing: float = 1.0
    ) -> TopicTransitions:
        """Fit on each user's topic assignments in time order (oldest first)."""
        if smoothing <= 0:
            raise ValueError("smoothing must be positive (every transition stays possible)")
        counts = np.zeros((n_topics, n_topics))
        for sequence in sequences:
            if len(sequence) >= 2:
                counts += pair_counts(sequence)
        counts += smoothing
        return cls(counts / counts.sum(axis=1, keepdims=True))

    def for_user(self, recent_topic_probs: Sequence[Vector], user_prior: float) -> Matrix:
        """The user's transition matrix from their recent events (NEWEST first), blended with this one."""
        own = pair_counts(list(reversed(recent_topic_probs)))
        if own.size == 0:
            return self.matrix
        blended: Matrix = (own + user_prior * self.matrix) / (own.sum(axis=1, keepdims=True) + user_prior)
        return blended

    def predict(self, recent_topic_probs: Sequence[Vector], user_prior: float = 5.0) -> Vector | None:
        """Distribution of the next event's topic given the recent events (newest first); None if none."""
        if not len(recent_topic_probs):
            return None
        prediction: Vector = np.asarray(recent_topic_probs[0]) @ self.for_user(recent_topic_probs, user_prior)
        return prediction
