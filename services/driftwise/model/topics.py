"""Topics: labelled centroids and the soft assignment of vectors to them (DESIGN §4.2)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from driftwise.model.layers import Vector

Matrix = npt.NDArray[np.float64]


def normalize_rows(x: npt.ArrayLike) -> Matrix:
    m = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return np.asarray(m / np.maximum(norms, 1e-12), dtype=np.float64)


class TopicModel:
    """K topics with a label and a unit centroid each.

    Centroids come from the encoder's embedding of each label: a zero-shot taxonomy.
    """

    def __init__(self, labels: Sequence[str], centroids: npt.ArrayLike, temperature: float) -> None:
        c = normalize_rows(centroids)
        if c.ndim != 2 or c.shape[0] != len(labels):
            raise ValueError(f"{len(labels)} labels but centroids of shape {c.shape}")
        self.labels = tuple(labels)
        self.centroids = c
        self.temperature = temperature

    @property
    def size(self) -> int:
        return len(self.labels)

    def assign(self, vectors: npt.ArrayLike) -> Matrix:
        """Soft assignment (n, K): softmax over cosine similarity to the centroids."""
        sims = normalize_rows(np.atleast_2d(np.asarray(vectors))) @ self.centroids.T
        z = sims / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return np.asarray(p / p.sum(axis=1, keepdims=True), dtype=np.float64)

    def assign_one(self, vector: Vector) -> Vector:
        return np.asarray(self.assign(vector)[0], dtype=np.float64)
