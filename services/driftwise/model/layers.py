"""One interest layer: an exponentially decayed sum of event vectors (docs/interest-model.md §2).

Each event is applied in O(d + K) with no history scan:

    decay = 0.5 ** ((t_event - t_last) / half_life)
    v     = decay * v + w * e
    mass  = decay * mass + |w|

An event older than `t_last` is decayed forward to `t_last` instead, so the final state is
sum_i w_i * e_i * 0.5 ** ((t_max - t_i) / half_life) whatever the order of arrival.

Negative events are also summed on their own (`rejected`, with |w|), so that their push can be
bounded: the direction subtracts at most `max_push` times the length of the positive sum, however
many rejections pile up (a burst of dislikes steers a profile, it does not turn it inside out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]
Matrix = npt.NDArray[np.float64]


def decay_factor(elapsed_seconds: float, half_life_seconds: float) -> float:
    """0.5 ** (elapsed / half_life); elapsed below zero counts as zero (no growth into the past)."""
    return float(0.5 ** (max(elapsed_seconds, 0.0) / half_life_seconds))


def softmax(x: Vector, temperature: float) -> Vector:
    z = x / temperature
    z = z - z.max()
    p = np.exp(z)
    return np.asarray(p / p.sum(), dtype=np.float64)


@dataclass
class LayerState:
    """Decayed interest vector, per-topic affinity and evidence mass of one layer."""

    half_life_seconds: float
    vector: Vector  # (d,) decayed sum of w * e
    affinity: Vector  # (K,) decayed sum of w * p_k(e): per-topic affinity
    mass: float = 0.0  # decayed sum of |w|: how much evidence the layer has
    last_time: float | None = None  # time of the newest event applied
    rejected: Vector | None = None  # (d,) decayed sum of |w| * e over negative events

    @classmethod
    def empty(cls, half_life_seconds: float, dimension: int, n_topics: int) -> LayerState:
        return cls(half_life_seconds, np.zeros(dimension), np.zeros(n_topics), rejected=np.zeros(dimension))

    def add(self, vector: Vector, weight: float, topic_probs: Vector, time: float) -> None:
        if self.rejected is None:
            self.rejected = np.zeros_like(self.vector)
        if self.last_time is None or time >= self.last_time:
            if self.last_time is not None:
                decay = decay_factor(time - self.last_time, self.half_life_seconds)
                self.vector *= decay
                self.affinity *= decay
                self.mass *= decay
                self.rejected *= decay
            self.last_time = time
            scale = weight
        else:  # out of order: decay the late event forward to last_time
            scale = weight * decay_factor(self.last_time - time, self.half_life_seconds)
        self.vector += scale * vector
        self.affinity += scale * topic_probs
        self.mass += abs(scale)
        if scale < 0:
            self.rejected += -scale * vector

    def add_many(self, vectors: Matrix, weights: Vector, topic_probs: Matrix, times: Vector) -> None:
        """The same state as `add` called for each row, in one pass (ingest batches).

        Order does not matter (module docstring): every event ends decayed to the newest time T,
        state <- d(T - t_last) * state + sum_i w_i d(T - t_i) (e_i, p_i, |.|)."""
        if len(weights) == 0:
            return
        if self.rejected is None:
            self.rejected = np.zeros_like(self.vector)
        newest = float(times.max()) if self.last_time is None else max(self.last_time, float(times.max()))
        if self.last_time is not None:
            decay = decay_factor(newest - self.last_time, self.half_life_seconds)
            self.vector *= decay
            self.affinity *= decay
            self.mass *= decay
            self.rejected *= decay
        scales = weights * 0.5 ** ((newest - times) / self.half_life_seconds)
        self.vector += scales @ vectors
        self.affinity += scales @ topic_probs
        self.mass += float(np.abs(scales).sum())
        self.rejected += np.where(scales < 0, -scales, 0.0) @ vectors
        self.last_time = newest

    def mass_at(self, at: float) -> float:
        """Evidence left at time `at` (no decay before last_time)."""
        if self.last_time is None:
            return 0.0
        return self.mass * decay_factor(at - self.last_time, self.half_life_seconds)

    def direction(self, max_push: float) -> Vector | None:
        """Unit vector of the layer's interest, the retrieval query; None without evidence.

        The rejected part is subtracted at most up to ``max_push`` times the positive part's length.
        """
        v = self.vector
        if self.rejected is not None and self.rejected.any():
            positive = self.vector + self.rejected
            push = float(np.linalg.norm(self.rejected))
            allowed = max_push * float(np.linalg.norm(positive))
            if push > allowed:
                v = positive - self.rejected * (allowed / push)
        norm = float(np.linalg.norm(v))
        if norm < 1e-9:
            return None
        return np.asarray(v / norm, dtype=np.float64)

    def topic_affinity(self) -> Vector:
        """Affinity per unit of mass, in [-1, 1]; independent of when it is read."""
        if self.mass <= 0:
            return np.zeros_like(self.affinity)
        return np.asarray(self.affinity / self.mass, dtype=np.float64)

    def topic_weights(self, temperature: float) -> Vector:
        """Dynamic topic weights: softmax(affinity / tau) (docs/interest-model.md §3.3)."""
        return softmax(self.topic_affinity(), temperature)
