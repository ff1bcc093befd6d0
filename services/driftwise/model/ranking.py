"""Scoring, diversity and explanations for recommendations (docs/interest-model.md §7).

Retrieval happens elsewhere (the vector store); this module gets candidates with their vectors
and turns them into an ordered, explained list.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from opentelemetry import trace

from driftwise.model.config import RankingConfig
from driftwise.model.events import Layer
from driftwise.model.layers import Vector, decay_factor
from driftwise.model.profile import RecentEvent, UserProfile
from driftwise.model.topics import Matrix, TopicModel, UnitRows, normalize_rows, unit_rows32

# the tracing API only (no-op unless the process configures an SDK): spans for the model's steps
_tracer = trace.get_tracer(__name__)


@dataclass(frozen=True, slots=True)
class Candidate:
    """An item that may be recommended. `popularity` is in [0, 1]; `created_at` Unix seconds."""

    item_id: str
    vector: npt.NDArray[np.floating[Any]]  # float32 from the store is fine: ranking converts
    popularity: float = 0.0
    created_at: float | None = None


class Reason(enum.IntEnum):
    """What contributed most to an item's score. Numbers match driftwise.v1.ExplanationReason."""

    INTEREST = 1  # close to an interest layer
    SEQUENCE = 2  # often comes right after the user's recent events
    NEW_ITEM = 3  # lifted into a place kept for new items
    POPULAR = 4  # cold start: popular or fresh


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
    reason: Reason = Reason.INTEREST


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


def mmr_order(scores: Vector, vectors: UnitRows, diversity: float, count: int) -> list[int]:
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
    item_vector: Vector, positives: Sequence[RecentEvent], positive_vectors: Matrix, limit: int
) -> tuple[tuple[RecentEvent, float], ...]:
    """The positive recent events most similar to the item (``positive_vectors``: their unit rows)."""
    if not positives or limit == 0:
        return ()
    sims = positive_vectors @ item_vector
    best = np.argsort(-sims, kind="stable")[:limit]
    return tuple((positives[i], float(sims[i])) for i in best)


def near_rejected(
    vectors: UnitRows, recent: Sequence[RecentEvent], threshold: float
) -> npt.NDArray[np.bool_]:
    """Which items (unit rows) are near-duplicates of a recently rejected event's item or text."""
    rejected = [r.vector for r in recent if r.weight < 0]
    if not rejected:
        return np.zeros(len(vectors), dtype=bool)
    sims = vectors @ normalize_rows(np.stack(rejected)).T.astype(vectors.dtype)
    return np.asarray(sims.max(axis=1) >= threshold)


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


def promote_new_items(
    scores: Vector, is_new: npt.NDArray[np.bool_], eligible: npt.NDArray[np.bool_], slots: int, position: int
) -> Vector:
    """Give the best ``slots`` new items (no interactions yet) a place at ``position`` (1-based).

    Collaborative and popularity signals cannot see an item nobody has touched, so without help it
    never reaches the top of a list and never gets the interactions it needs
    (docs/interest-model.md §7.4). The ``slots`` eligible new items with the highest scores are
    lifted just above the established item ranked ``position``, and only if they are below it;
    every other score is unchanged.
    """
    if slots <= 0 or position <= 0:
        return scores
    new = np.flatnonzero(is_new & eligible)
    established = np.flatnonzero(~is_new & eligible)
    if not len(new) or len(established) < position:
        return scores
    bar = np.partition(scores[established], len(established) - position)[len(established) - position]
    best_new = new[np.argsort(-scores[new], kind="stable")[:slots]]
    lifted = best_new[scores[best_new] < bar]
    if not len(lifted):
        return scores
    out = scores.copy()
    # keep their order among themselves, all just above the bar
    out[lifted] = bar + 1e-6 * (1.0 + scores[lifted] - scores[lifted].min())
    return out


@dataclass(frozen=True)
class Scored:
    """Candidates scored for a profile, before the new-item slots and the final order."""

    candidates: list[Candidate]  # Recommend: without the near-duplicates of rejected items
    vectors: UnitRows
    scores: ItemScores
    popularity: Vector  # (n,) of the candidates, in [0, 1]
    rejected: npt.NDArray[np.bool_]  # (n,) near-duplicates of rejected items, kept (Rank) to go last

    def final(self, config: RankingConfig) -> tuple[Vector, Vector]:
        """(scores to order by, scores before that): see `final_scores`."""
        return final_scores(self.scores.total, self.popularity, self.rejected, config), self.scores.total


def final_scores(
    total: Vector, popularity: Vector, rejected: npt.NDArray[np.bool_], config: RankingConfig
) -> Vector:
    """The scores candidates are ordered by: the best new items (no interactions: popularity 0)
    lifted into their slots, and kept rejected items put after every other item."""
    everything = np.ones(len(total), dtype=bool)
    slots, position = config.new_item_slots, config.new_item_position
    out = promote_new_items(total, popularity <= 0, everything, slots, position)
    if rejected.any():  # below every other item, in their own order
        out = np.where(rejected, out - (out.max() - out.min()) - 1.0, out)
    return out


def score_candidates(
    profile: UserProfile,
    candidates: Sequence[Candidate],
    topics: TopicModel,
    *,
    at: float,
    config: RankingConfig,
    topic_temperature: float,
    signals: Signals | None = None,
    keep_rejected: bool = False,
) -> Scored | None:
    """Score candidates against every layer (None without candidates or any layer).

    Near-duplicates of recently rejected items are left out, or with ``keep_rejected`` (a caller's
    own candidates, `Rank`) kept and marked to go after every other item."""
    if not candidates:
        return None
    vectors = unit_rows32(np.stack([c.vector for c in candidates]))  # (n, d)
    rejected = near_rejected(vectors, profile.recent, config.rejected_similarity)
    if signals is None:
        signals = Signals()
    if rejected.any() and not keep_rejected:
        kept = np.flatnonzero(~rejected)
        candidates = [candidates[i] for i in kept]
        vectors, rejected, signals = vectors[kept], rejected[kept], signals.subset(kept)
        if not candidates:
            return None
    popularity = np.array([c.popularity for c in candidates])
    with _tracer.start_as_current_span("ranking.score", attributes={"candidates": len(candidates)}):
        scored = score_items(
            profile,
            vectors,
            topics,
            at=at,
            config=config,
            topic_temperature=topic_temperature,
            signals=dataclasses.replace(signals, popularity=popularity),
        )
    if scored is None:
        return None
    return Scored(list(candidates), vectors, scored, popularity, rejected)


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
    signals: Signals | None = None,
    keep_rejected: bool = False,
) -> list[Ranked]:
    """Score candidates against every layer, re-rank for diversity, explain each item.

    Near-duplicates of recently rejected items are left out, or with ``keep_rejected`` (a caller's
    own candidates, `Rank`) put after every other item."""
    scored = score_candidates(
        profile,
        candidates,
        topics,
        at=at,
        config=config,
        topic_temperature=topic_temperature,
        signals=signals,
        keep_rejected=keep_rejected,
    )
    if scored is None:
        return []
    candidates, vectors, scores = scored.candidates, scored.vectors, scored.scores
    total, before = scored.final(config)
    followed = None if signals is None else signals.followed
    by_sequence = config.collaborative_boost * scores.components["collaborative"] > (
        config.layer_boost * scores.components["layers"]
    )
    positives = [r for r in profile.recent if r.weight > 0]
    positive_vectors = (
        normalize_rows(np.stack([r.vector for r in positives])) if positives else np.zeros((0, 1))
    )
    with _tracer.start_as_current_span("ranking.diversify", attributes={"diversity": diversity}):
        order = mmr_order(total, vectors, diversity, count)
    ranked = []
    for i in order:
        item_id = candidates[i].item_id
        best_layer = int(np.argmax(scores.layer_sims[i] * scores.layer_weights))
        topic = int(np.argmax(scores.item_topics[i]))
        evidence = _evidence(vectors[i], positives, positive_vectors, config.evidence_per_item)
        promoted = total[i] != before[i] and not scored.rejected[i]
        reason = Reason.NEW_ITEM if promoted else Reason.INTEREST
        if reason is Reason.INTEREST and by_sequence[i] and followed is not None:
            sequence_evidence = followed(item_id)[: config.evidence_per_item]
            if sequence_evidence:
                reason, evidence = Reason.SEQUENCE, tuple(sequence_evidence)
        ranked.append(
            Ranked(
                item_id=item_id,
                score=float(total[i]),
                layer=scores.layers[best_layer],
                topic=topic,
                topic_weight=float(scores.topic_weights[best_layer, topic]),
                similarity=float(scores.layer_sims[i, best_layer]),
                evidence=evidence,
                reason=reason,
            )
        )
    return ranked


def rank_cold_start(
    candidates: Sequence[Candidate], topics: TopicModel, *, now: float, count: int, config: RankingConfig
) -> list[Ranked]:
    """For users without a profile: popular and fresh items, diversified."""
    if not candidates:
        return []
    vectors = unit_rows32(np.stack([c.vector for c in candidates]))
    freshness = np.array(
        [
            0.0
            if c.created_at is None
            else decay_factor(now - c.created_at, config.freshness_half_life_seconds)
            for c in candidates
        ]
    )
    scores = np.array([c.popularity for c in candidates]) + 0.5 * freshness
    item_topics = topics.assign(vectors, unit=True)
    return [
        Ranked(
            candidates[i].item_id,
            float(scores[i]),
            None,
            int(np.argmax(item_topics[i])),
            0.0,
            0.0,
            reason=Reason.POPULAR,
        )
        for i in mmr_order(scores, vectors, config.cold_start_diversity, count)
    ]


def explain(ranked: Ranked, topics: TopicModel) -> str:
    """One sentence for people: which layer and topic made the item rank, and because of what."""
    topic = topics.labels[ranked.topic]
    if ranked.layer is None:
        return f"popular or new in {topic}"
    if ranked.reason is Reason.SEQUENCE and ranked.evidence:
        return f"often chosen right after \u201c{ranked.evidence[0][0].text}\u201d"
    if ranked.reason is Reason.NEW_ITEM:
        return f"new in {topic}" + (
            f"; like \u201c{ranked.evidence[0][0].text}\u201d" if ranked.evidence else ""
        )
    text = f"{ranked.layer.name.lower()} interest in {topic} ({ranked.topic_weight:.0%})"
    if ranked.evidence:
        text += f"; like \u201c{ranked.evidence[0][0].text}\u201d"
    return text
