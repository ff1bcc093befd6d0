"""The ranked, explained list for a profile (or for nobody: cold start), made of the steps in the
other modules: score the candidates, order them, explain each item."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from opentelemetry import trace

from driftwise.model.config import RankingConfig
from driftwise.model.layers import decay_factor
from driftwise.model.profile import UserProfile
from driftwise.model.ranking.candidates import Candidate, score_candidates
from driftwise.model.ranking.explanations import Ranked, Reason, explain_order
from driftwise.model.ranking.ordering import mmr_order
from driftwise.model.ranking.scoring import Signals
from driftwise.model.topics import TopicModel, rows, unit_rows32

# the tracing API only (no-op unless the process configures an SDK); one scope for all of ranking
_tracer = trace.get_tracer("driftwise.model.ranking")


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
    final, before = scored.final(config)
    with _tracer.start_as_current_span("ranking.diversify", attributes={"diversity": diversity}):
        order = mmr_order(final, scored.vectors, diversity, count)
    followed = None if signals is None else signals.followed
    return explain_order(scored, order, final, before, profile.recent, config, followed)


def rank_cold_start(
    candidates: Sequence[Candidate], topics: TopicModel, *, now: float, count: int, config: RankingConfig
) -> list[Ranked]:
    """For users without a profile: popular and fresh items, diversified."""
    if not candidates:
        return []
    vectors = unit_rows32(rows([c.vector for c in candidates]))
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
