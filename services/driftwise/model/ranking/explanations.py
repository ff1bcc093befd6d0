"""Why each ranked item is there: the layer and topic that drove its score, the reason, the past
events that show it (docs/interest-model.md §7.6), and the sentence for people."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from driftwise.model.config import RankingConfig
from driftwise.model.events import Layer
from driftwise.model.layers import Vector
from driftwise.model.profile import RecentEvent
from driftwise.model.ranking.candidates import Scored
from driftwise.model.topics import Matrix, TopicModel, normalize_rows, rows

Evidence = tuple[tuple[RecentEvent, float], ...]  # past events, each with its similarity or share


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
    evidence: Evidence = field(default=())
    reason: Reason = Reason.INTEREST


def explain_order(
    scored: Scored,
    order: Sequence[int],
    final: Vector,
    before: Vector,
    recent: Sequence[RecentEvent],
    config: RankingConfig,
    followed: Callable[[str], list[tuple[RecentEvent, float]]] | None,
) -> list[Ranked]:
    """The items at ``order`` (indices into ``scored``), each with its ``final`` score (``before``:
    the score before the new-item slots and rejected items going last) and why it is there."""
    scores = scored.scores
    # the co-occurrence with recent events outweighed the closeness to the layers
    by_sequence = config.collaborative_boost * scores.components["collaborative"] > (
        config.layer_boost * scores.components["layers"]
    )
    positives = [r for r in recent if r.weight > 0]
    positive_vectors = normalize_rows(rows([r.vector for r in positives])) if positives else np.zeros((0, 1))
    ranked = []
    for i in order:
        item_id = scored.candidates[i].item_id
        best_layer = int(np.argmax(scores.layer_sims[i] * scores.layer_weights))
        topic = int(np.argmax(scores.item_topics[i]))
        alike = _evidence(scored.vectors[i], positives, positive_vectors, config.evidence_per_item)
        promoted = final[i] != before[i] and not scored.rejected[i]
        reason, evidence = _reason(
            item_id, alike, promoted=promoted, by_sequence=by_sequence[i], followed=followed, config=config
        )
        ranked.append(
            Ranked(
                item_id=item_id,
                score=float(final[i]),
                layer=scores.layers[best_layer],
                topic=topic,
                topic_weight=float(scores.topic_weights[best_layer, topic]),
                similarity=float(scores.layer_sims[i, best_layer]),
                evidence=evidence,
                reason=reason,
            )
        )
    return ranked


def _reason(
    item_id: str,
    alike: Evidence,
    *,
    promoted: bool,
    by_sequence: bool,
    followed: Callable[[str], list[tuple[RecentEvent, float]]] | None,
    config: RankingConfig,
) -> tuple[Reason, Evidence]:
    """NEW_ITEM if lifted into a new-item slot; SEQUENCE if co-occurrence led and the item follows
    recent events (those are its evidence); else INTEREST. ``alike``: the liked events most like it."""
    if promoted:
        return Reason.NEW_ITEM, alike
    if by_sequence and followed is not None:
        sequence_evidence = followed(item_id)[: config.evidence_per_item]
        if sequence_evidence:
            return Reason.SEQUENCE, tuple(sequence_evidence)
    return Reason.INTEREST, alike


def _evidence(
    item_vector: Vector, positives: Sequence[RecentEvent], positive_vectors: Matrix, limit: int
) -> Evidence:
    """The positive recent events most similar to the item (``positive_vectors``: their unit rows)."""
    if not positives or limit == 0:
        return ()
    sims = positive_vectors @ item_vector
    best = np.argsort(-sims, kind="stable")[:limit]
    return tuple((positives[i], float(sims[i])) for i in best)


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
