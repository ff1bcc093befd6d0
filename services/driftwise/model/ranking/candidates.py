"""Candidates scored for a profile: their vectors made unit rows, the near-duplicates of recently
rejected items left out or marked (docs/interest-model.md §7.3), the rest scored (`scoring`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from opentelemetry import trace

from driftwise.model.config import RankingConfig
from driftwise.model.layers import Vector
from driftwise.model.profile import RecentEvent, UserProfile
from driftwise.model.ranking.ordering import final_scores
from driftwise.model.ranking.scoring import ItemScores, Signals, score_items
from driftwise.model.topics import TopicModel, UnitRows, normalize_rows, rows, unit_rows32

# the tracing API only (no-op unless the process configures an SDK); one scope for all of ranking
_tracer = trace.get_tracer("driftwise.model.ranking")


@dataclass(frozen=True, slots=True)
class Candidate:
    """An item that may be recommended. `popularity` is in [0, 1]; `created_at` Unix seconds."""

    item_id: str
    vector: npt.NDArray[np.floating[Any]]  # float32 from the store is fine: ranking converts
    popularity: float = 0.0
    created_at: float | None = None


def near_rejected(
    vectors: UnitRows, recent: Sequence[RecentEvent], threshold: float
) -> npt.NDArray[np.bool_]:
    """Which items (unit rows) are near-duplicates of a recently rejected event's item or text."""
    rejected = [r.vector for r in recent if r.weight < 0]
    if not rejected:
        return np.zeros(len(vectors), dtype=bool)
    sims = vectors @ normalize_rows(np.stack(rejected)).T.astype(vectors.dtype)
    return np.asarray(sims.max(axis=1) >= threshold)


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
    vectors = unit_rows32(rows([c.vector for c in candidates]))  # (n, d)
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
