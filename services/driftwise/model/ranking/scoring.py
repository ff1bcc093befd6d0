"""The score of each item for a profile and the parts it is made of (docs/interest-model.md §7.2).

Items arrive as unit vectors; the learned per-request signals (`Signals`) are aligned with them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from driftwise.model.config import RankingConfig
from driftwise.model.events import Layer
from driftwise.model.layers import Vector
from driftwise.model.profile import RecentEvent, UserProfile
from driftwise.model.topics import Matrix, TopicModel, UnitRows, normalize_rows


@dataclass(frozen=True, slots=True)
class Signals:
    """Per-request signals learned from the event log, aligned with the items being scored.

    Any of them may be missing (a fresh deployment has no co-occurrence or sequence model yet).
    """

    popularity: Vector | None = None  # (n,) in [0, 1]
    trending: Vector | None = None  # (n,) in [0, 1]: popularity in a window before the request
    collaborative: Vector | None = None  # (n,) SequentialCoOccurrence.scores for these items
    # item_id -> the recent events it follows, with each one's share of its co-occurrence score
    followed: Callable[[str], list[tuple[RecentEvent, float]]] | None = None
    sequence_query: Vector | None = None  # (d,) the sequence model's next-item query vector
    sequence_bias: Vector | None = None  # (n,) the sequence model's bias of these items
    next_topics: Vector | None = None  # (K,) TopicTransitions.predict for this user

    def subset(self, rows: npt.NDArray[np.intp]) -> Signals:
        """The signals of the items at ``rows`` (per-item arrays sliced; the rest unchanged)."""
        return dataclasses.replace(
            self,
            popularity=None if self.popularity is None else self.popularity[rows],
            trending=None if self.trending is None else self.trending[rows],
            collaborative=None if self.collaborative is None else self.collaborative[rows],
            sequence_bias=None if self.sequence_bias is None else self.sequence_bias[rows],
        )


@dataclass(frozen=True)
class ItemScores:
    """Scores of n items and the parts they are made of (for explanations and ablations)."""

    total: Vector  # (n,) sum of weight * component
    components: dict[str, Vector]  # name -> (n,), before weighting
    layers: list[Layer]
    layer_weights: Vector  # (L,) normalised evidence weight per layer
    layer_sims: Matrix  # (n, L) cosine of each item to each layer's query
    item_topics: Matrix  # (n, K)
    topic_weights: Matrix  # (L, K) dynamic topic weights per layer


# score component -> the RankingConfig field that weighs it
WEIGHT_FIELDS = {
    "layers": "layer_boost",
    "topics": "topic_boost",
    "collaborative": "collaborative_boost",
    "sequence": "sequence_boost",
    "popularity": "popularity_boost",
    "trending": "trending_boost",
}
COMPONENTS = tuple(WEIGHT_FIELDS)


def component_weights(config: RankingConfig) -> dict[str, float]:
    return {name: float(getattr(config, field)) for name, field in WEIGHT_FIELDS.items()}


def layer_weights(profile: UserProfile, at: float, config: RankingConfig) -> dict[Layer, float]:
    """Normalised weight per layer with a direction: prior * (1 - exp(-mass / scale))."""
    usable = {
        layer: s for layer, s in profile.layers.items() if s.direction(config.negative_max_push) is not None
    }
    raw = {
        layer: config.layer_priors[layer] * (1.0 - np.exp(-s.mass_at(at) / config.evidence_scale))
        for layer, s in usable.items()
    }
    total = sum(raw.values())
    if total <= 0:  # all evidence decayed away: fall back to equal weights
        return {layer: 1.0 / len(usable) for layer in usable} if usable else {}
    return {layer: float(w / total) for layer, w in raw.items()}


def _direction(profile: UserProfile, layer: Layer, max_push: float) -> Vector:
    direction = profile.layers[layer].direction(max_push)
    if direction is None:
        raise ValueError(f"layer {layer.name} has no direction")
    return direction


def layer_queries(
    profile: UserProfile,
    layers: Sequence[Layer],
    topics: TopicModel,
    next_topics: Vector | None,
    config: RankingConfig,
) -> Matrix:
    """(L, d) unit query per layer; the surface one leans towards the predicted next topics."""
    queries = np.stack([_direction(profile, layer, config.negative_max_push) for layer in layers])
    mix = config.transition_mix
    if next_topics is not None and mix > 0 and Layer.SURFACE in layers:
        i = list(layers).index(Layer.SURFACE)
        ahead = normalize_rows(next_topics @ topics.centroids)[0]
        queries[i] = normalize_rows((1.0 - mix) * queries[i] + mix * ahead)[0]
    return queries


def score_items(
    profile: UserProfile,
    vectors: UnitRows,
    topics: TopicModel,
    *,
    at: float,
    config: RankingConfig,
    topic_temperature: float,
    signals: Signals = Signals(),
    item_topics: Matrix | None = None,
) -> ItemScores | None:
    """Score items (rows of unit ``vectors``) for a profile; None without any layer
    (docs/interest-model.md §7.2).

    score = layer_boost * sum_l pi_l cos(item, query_l)        (pi: evidence weight per layer)
          + topic_boost * sum_l pi_l weight_l(item's topics)   (dynamic topic weights)
          + collaborative_boost * co-occurrence with recent events
          + sequence_boost * (item . sequence model query + the model's bias of the item)
          + popularity_boost * popularity
          + trending_boost * popularity in the window before the request
    """
    weights = layer_weights(profile, at, config)
    if not weights:
        return None
    layers = list(weights)
    pi = np.array([weights[layer] for layer in layers])
    queries = layer_queries(profile, layers, topics, signals.next_topics, config)
    topic_w = np.stack([profile.layers[layer].topic_weights(topic_temperature) for layer in layers])
    sims = vectors @ queries.T.astype(vectors.dtype)  # (n, L), in the vectors' precision
    assigned = topics.assign(vectors, unit=True) if item_topics is None else item_topics
    n = vectors.shape[0]
    zeros = np.zeros(n)
    components = {
        "layers": sims @ pi,
        "topics": (assigned @ topic_w.T) @ pi,
        "collaborative": zeros if signals.collaborative is None else signals.collaborative,
        "sequence": _sequence_scores(vectors, signals),
        "popularity": zeros if signals.popularity is None else signals.popularity,
        "trending": zeros if signals.trending is None else signals.trending,
    }
    total = np.zeros(n)
    for name, weight in component_weights(config).items():
        if weight:
            total = total + weight * components[name]
    return ItemScores(total, components, layers, pi, sims, assigned, topic_w)


def _sequence_scores(vectors: UnitRows, signals: Signals) -> Vector:
    if signals.sequence_query is None:
        return np.zeros(len(vectors))
    scores = (vectors @ signals.sequence_query.astype(vectors.dtype)).astype(np.float64)
    return scores if signals.sequence_bias is None else scores + signals.sequence_bias
