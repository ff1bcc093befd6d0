"""Scoring, diversity and explanations for recommendations (DESIGN §6).

Retrieval happens elsewhere (the vector store); this module gets candidates with their vectors
and turns them into an ordered, explained list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from driftwise.model.config import RankingConfig
from driftwise.model.events import Layer
from driftwise.model.layers import Vector, decay_factor
from driftwise.model.profile import RecentEvent, UserProfile
from driftwise.model.topics import Matrix, TopicModel, normalize_rows


@dataclass(frozen=True, slots=True)
class Candidate:
    """An item that may be recommended. `popularity` is in [0, 1]; `created_at` Unix seconds."""

    item_id: str
    vector: Vector
    popularity: float = 0.0
    created_at: float | None = None


@dataclass(frozen=True, slots=True)
class Ranked:
    """A scored item and why it scored: the layer and topic that drove it, and past events."""

    item_id: str
    score: float
    layer: Layer | None  # None for cold start
    topic: int  # index into TopicModel.labels
    topic_weight: float
    similarity: float
    evidence: tuple[tuple[RecentEvent, float], ...] = field(default=())


def layer_weights(profile: UserProfile, at: float, config: RankingConfig) -> dict[Layer, float]:
    """Normalised weight per layer with a direction: prior * (1 - exp(-mass / scale))."""
    usable = {layer: s for layer, s in profile.layers.items() if s.direction() is not None}
    raw = {
        layer: config.layer_priors[layer] * (1.0 - np.exp(-s.mass_at(at) / config.evidence_scale))
        for layer, s in usable.items()
    }
    total = sum(raw.values())
    if total <= 0:  # all evidence decayed away: fall back to equal weights
        return {layer: 1.0 / len(usable) for layer in usable} if usable else {}
    return {layer: float(w / total) for layer, w in raw.items()}


def _direction(profile: UserProfile, layer: Layer) -> Vector:
    direction = profile.layers[layer].direction()
    if direction is None:
        raise ValueError(f"layer {layer.name} has no direction")
    return direction


def mmr_order(scores: Vector, vectors: Matrix, diversity: float, count: int) -> list[int]:
    """Greedy maximal marginal relevance with lambda = 1 - diversity; returns indices."""
    order = list(np.argsort(-scores, kind="stable"))
    if diversity <= 0 or len(order) <= 1:
        return [int(i) for i in order[:count]]
    lam = 1.0 - diversity
    pool = order[: max(count * 5, count)]
    unit = normalize_rows(vectors[pool])
    sims = unit @ unit.T
    chosen: list[int] = []
    max_sim = np.full(len(pool), -np.inf)
    remaining = np.ones(len(pool), dtype=bool)
    pool_scores = scores[pool]
    while remaining.any() and len(chosen) < count:
        redundancy = np.where(np.isfinite(max_sim), max_sim, 0.0)
        value = np.where(remaining, lam * pool_scores - (1 - lam) * redundancy, -np.inf)
        best = int(np.argmax(value))
        chosen.append(best)
        remaining[best] = False
        max_sim = np.maximum(max_sim, sims[best])
    return [int(pool[i]) for i in chosen]


def _evidence(
    item_vector: Vector, recent: Sequence[RecentEvent], limit: int
) -> tuple[tuple[RecentEvent, float], ...]:
    positives = [r for r in recent if r.weight > 0]
    if not positives or limit == 0:
        return ()
    sims = normalize_rows(np.stack([r.vector for r in positives])) @ item_vector
    best = np.argsort(-sims, kind="stable")[:limit]
    return tuple((positives[i], float(sims[i])) for i in best)


def rank_for_profile(
    profile: UserProfile,
    candidates: Sequence[Candidate],
    topics: TopicModel,
    *,
    at: float,
    count: int,
    diversity: float,
    config: RankingConfig,
    topic_temperature: float,
) -> list[Ranked]:
    """Score candidates against every layer, re-rank for diversity, explain each item."""
    weights = layer_weights(profile, at, config)
    if not candidates or not weights:
        return []
    layers = list(weights)
    pi = np.array([weights[layer] for layer in layers])
    directions = np.stack([_direction(profile, layer) for layer in layers])  # (L, d)
    topic_w = np.stack([profile.layers[layer].topic_weights(topic_temperature) for layer in layers])
    vectors = normalize_rows(np.stack([c.vector for c in candidates]))  # (n, d)
    sims = vectors @ directions.T  # (n, L)
    item_topics = topics.assign(vectors)  # (n, K)
    topic_affinity = item_topics @ topic_w.T  # (n, L): the user's weight for the item's topics
    popularity = np.array([c.popularity for c in candidates])
    scores = sims @ pi + config.topic_boost * (topic_affinity @ pi) + config.popularity_boost * popularity

    ranked = []
    for i in mmr_order(scores, vectors, diversity, count):
        best_layer = int(np.argmax(sims[i] * pi))
        topic = int(np.argmax(item_topics[i]))
        ranked.append(
            Ranked(
                item_id=candidates[i].item_id,
                score=float(scores[i]),
                layer=layers[best_layer],
                topic=topic,
                topic_weight=float(topic_w[best_layer, topic]),
                similarity=float(sims[i, best_layer]),
                evidence=_evidence(vectors[i], profile.recent, config.evidence_per_item),
            )
        )
    return ranked


def rank_cold_start(
    candidates: Sequence[Candidate], topics: TopicModel, *, now: float, count: int, config: RankingConfig
) -> list[Ranked]:
    """For users without a profile: popular and fresh items, diversified."""
    if not candidates:
        return []
    vectors = normalize_rows(np.stack([c.vector for c in candidates]))
    freshness = np.array(
        [
            0.0
            if c.created_at is None
            else decay_factor(now - c.created_at, config.freshness_half_life_seconds)
            for c in candidates
        ]
    )
    scores = np.array([c.popularity for c in candidates]) + 0.5 * freshness
    item_topics = topics.assign(vectors)
    return [
        Ranked(candidates[i].item_id, float(scores[i]), None, int(np.argmax(item_topics[i])), 0.0, 0.0)
        for i in mmr_order(scores, vectors, config.cold_start_diversity, count)
    ]


def explain(ranked: Ranked, topics: TopicModel) -> str:
    """One sentence for people: which layer and topic made the item rank, and because of what."""
    topic = topics.labels[ranked.topic]
    if ranked.layer is None:
        return f"popular or new in {topic}"
    text = f"{ranked.layer.name.lower()} interest in {topic} ({ranked.topic_weight:.0%})"
    if ranked.evidence:
        text += f"; like \u201c{ranked.evidence[0][0].text}\u201d"
    return text
